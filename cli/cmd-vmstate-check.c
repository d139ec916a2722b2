/* hop vmstate-check OLD.json NEW.json [--reverse]. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/vmstate-check.h"

int cmd_vmstate_check(int argc, char **argv)
{
    const struct cli_command *self = cli_find_command("vmstate-check");
    const char *files[2] = { NULL, NULL };
    int nfiles = 0;
    bool reverse = false, json = false, dashdash = false;
    for (int i = 1; i < argc; i++) {
        if (!dashdash && strcmp(argv[i], "--") == 0) {
            dashdash = true;
        } else if (!dashdash && strcmp(argv[i], "--reverse") == 0) {
            reverse = true;
        } else if (!dashdash && strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (!dashdash && argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error(self, "unknown option '%s'", argv[i]);
        } else if (nfiles == 2) {
            return cli_usage_error(self, "unexpected argument '%s'", argv[i]);
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (nfiles != 2) {
        return cli_usage_error(self, "expected OLD.json and NEW.json");
    }
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
        json_array_foreach(findings, i, f) {
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
