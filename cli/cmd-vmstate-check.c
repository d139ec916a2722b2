/* hop vmstate-check OLD.json NEW.json [--reverse] [--json]. */
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/vmstate-check.h"

struct check_args {
    const char *files[2];
    int nfiles;
    bool reverse;
    bool json;
};

const struct cli_option cli_vmstate_check_options[] = {
    { .name = "--reverse",
      .arg = CLI_ARG_NONE,
      .store = CLI_STORE_FLAG,
      .field = offsetof(struct check_args, reverse),
      .help = "check migration from NEW to OLD" },
    { .name = "--json",
      .arg = CLI_ARG_NONE,
      .store = CLI_STORE_FLAG,
      .field = offsetof(struct check_args, json),
      .help = "findings as one JSON document" },
    { .name = "--help", .arg = CLI_ARG_NONE },
    { NULL }
};

/* OLD.json, then NEW.json. */
static int file_operand(const struct cli_command *self, void *target,
                        const char *word)
{
    struct check_args *a = target;
    if (a->nfiles == 2) {
        return cli_usage_error(self, "unexpected argument '%s'", word);
    }
    a->files[a->nfiles++] = word;
    return -1;
}

int cmd_vmstate_check(int argc, char **argv)
{
    const struct cli_command *self = cli_find_command("vmstate-check");
    struct check_args a = { .nfiles = 0 };
    const struct cli_parser p = {
        .cmd = self,
        .tables = (const struct cli_option *const[]){ cli_vmstate_check_options,
                                                      NULL },
        .target = &a,
        .end_of_options = true,
        .operand = file_operand,
    };
    int rc = cli_parse_options(&p, argc, argv, 1);
    if (rc >= 0) {
        return rc;
    }
    if (a.nfiles != 2) {
        return cli_usage_error(self, "expected OLD.json and NEW.json");
    }
    const char *const *files = a.files;
    bool reverse = a.reverse, json = a.json;
    json_t *schema[2] = { NULL, NULL };
    for (int k = 0; k < 2; k++) {
        Error *err = NULL;
        schema[k] = vmcheck_load_schema(files[k], &err);
        if (!schema[k]) {
            fprintf(stderr, "hop vmstate-check: %s\n", error_get_pretty(err));
            error_free(err);
            json_decref(schema[0]);
            return EXIT_FAIL;
        }
    }
    int from = reverse ? 1 : 0;
    json_t *findings = vmcheck_compare(schema[from], schema[1 - from]);
    size_t nerr = vmcheck_count_errors(findings);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "from", json_string(files[from]));
        json_object_set_new(o, "to", json_string(files[1 - from]));
        json_object_set_new(o, "compatible", json_boolean(nerr == 0));
        json_object_set(o, "findings", findings);
        json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        size_t i;
        json_t *f;
        json_array_foreach(findings, i, f)
        {
            printf("%s: %s: %s\n",
                   json_string_value(json_object_get(f, "severity")),
                   json_string_value(json_object_get(f, "path")),
                   json_string_value(json_object_get(f, "message")));
        }
        printf("%s -> %s: %s (%zu errors, %zu warnings)\n", files[from],
               files[1 - from], nerr ? "incompatible" : "compatible", nerr,
               json_array_size(findings) - nerr);
    }
    json_decref(findings);
    json_decref(schema[0]);
    json_decref(schema[1]);
    return nerr ? EXIT_FAIL : EXIT_OK;
}
