/* `hop complete -- hop WORD...`: the candidates for the last WORD of a
 * partial command line, one per line, for completions/hop.bash.  Every
 * word comes from a table: the subcommand table and its option tables,
 * the accelerators, the built-in firmware, the endpoint and URI forms. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "machine/memory-backend.h"
#include "machine/accel.h"
#include "machine/firmware.h"
#include "monitor/complete.h"
#include "monitor/endpoint.h"

/* Candidates are printed with a prefix the shell needs back in front
 * (e.g. "--output=" or "file=/tmp/a.qcow2,"). */
struct out {
    const char *keep;
};

static void print(const char *word, void *ctx)
{
    const struct out *o = ctx;
    printf("%s%s\n", o->keep, word);
}

static void offer(const char *word, const char *partial, struct out *o)
{
    if (strncmp(word, partial, strlen(partial)) == 0) {
        print(word, o);
    }
}

static void offer_words(const char *const *words, const char *partial,
                        struct out *o)
{
    for (const char *const *w = words; *w; w++) {
        offer(*w, partial, o);
    }
}

/* Words of which those ending in ':' go on with a path (file:PATH). */
static void offer_forms(const char *const *forms, const char *skip,
                        const char *partial, struct out *o)
{
    for (const char *const *f = forms; *f; f++) {
        size_t n = strlen(*f);
        if (skip && strcmp(*f, skip) == 0) {
            continue;
        }
        if ((*f)[n - 1] == ':' && strncmp(partial, *f, n) == 0) {
            char keep[256];
            snprintf(keep, sizeof(keep), "%s%s", o->keep, *f);
            complete_paths(keep, partial + n, print, &(struct out){ "" });
            return;
        }
    }
    for (const char *const *f = forms; *f; f++) {
        if (!skip || strcmp(*f, skip) != 0) {
            offer(*f, partial, o);
        }
    }
}

/* -drive file=PATH,format=qcow2,if=ide: complete the last key=value. */
static void offer_drive(const char *partial, struct out *o)
{
    const char *comma = strrchr(partial, ',');
    const char *piece = comma ? comma + 1 : partial;
    char keep[4352];
    snprintf(keep, sizeof(keep), "%s%.*s", o->keep, (int)(piece - partial),
             partial);
    struct out head = { keep };
    const char *eq = strchr(piece, '=');
    for (const struct cli_drive_key *k = cli_drive_keys; k->key; k++) {
        size_t n = strlen(k->key);
        if (!eq) {
            char word[64];
            snprintf(word, sizeof(word), "%s=", k->key);
            offer(word, piece, &head);
        } else if ((size_t)(eq - piece) == n &&
                   strncmp(piece, k->key, n) == 0) {
            char kv[4400];
            snprintf(kv, sizeof(kv), "%s%s=", keep, k->key);
            struct out val = { kv };
            if (k->values) {
                offer_words(k->values, eq + 1, &val);
            } else {
                complete_paths(kv, eq + 1, print, &(struct out){ "" });
            }
        }
    }
}

static void offer_value(enum cli_arg kind, const char *partial, struct out *o)
{
    switch (kind) {
    case CLI_ARG_NONE:
    case CLI_ARG_TEXT:
        break;
    case CLI_ARG_FILE:
    case CLI_ARG_DIR:
        complete_paths(o->keep, partial, print, &(struct out){ "" });
        break;
    case CLI_ARG_ACCEL:
        for (int i = 0; accel_name(i); i++) {
            offer(accel_name(i), partial, o);
        }
        break;
    case CLI_ARG_GUEST:
        for (const struct firmware_image *f = firmware_list(); f->name; f++) {
            offer(f->name, partial, o);
        }
        break;
    case CLI_ARG_SERIAL:
        offer_forms(cli_serial_backends, NULL, partial, o);
        break;
    case CLI_ARG_MONITOR:
        offer_forms(endpoint_forms, NULL, partial, o);
        break;
    case CLI_ARG_QMP:
        offer_forms(endpoint_forms, "stdio", partial, o);
        break;
    case CLI_ARG_INCOMING:
        offer("defer", partial, o);
        complete_uri(partial, print, o);
        break;
    case CLI_ARG_DRIVE:
        offer_drive(partial, o);
        break;
    case CLI_ARG_IMG_FORMAT:
        offer_words(cli_img_formats, partial, o);
        break;
    case CLI_ARG_OUTPUT:
        offer_words(cli_output_formats, partial, o);
        break;
    case CLI_ARG_OBJECT:
        offer_words(mem_backend_types, partial, o);
        break;
    case CLI_ARG_MACHINE:
        offer("memory-backend=", partial, o);
        break;
    }
}

static void offer_commands(const struct cli_command *table, const char *partial,
                           struct out *o)
{
    for (const struct cli_command *c = table; c->name; c++) {
        if (c->summary || table != cli_commands) {
            offer(c->name, partial, o);
        }
    }
}

static void offer_options(const struct cli_option *opts, const char *partial,
                          struct out *o)
{
    for (const struct cli_option *x = opts; x && x->name; x++) {
        offer(x->name, partial, o);
        if (x->alias) {
            offer(x->alias, partial, o);
        }
    }
}

/* The option prev names, in the subcommand's table or its command's. */
static const struct cli_option *find_option(const struct cli_command *cmd,
                                            const struct cli_command *sub,
                                            const char *name)
{
    const struct cli_option *opt = NULL;
    if (sub) {
        opt = cli_find_option(sub->options, name);
    }
    return opt ? opt : cli_find_option(cmd->options, name);
}

int cmd_complete(int argc, char **argv)
{
    int i = 1;
    if (i < argc && strcmp(argv[i], "--") == 0) {
        i++;
    }
    if (i < argc) {
        i++; /* the program name, "hop" */
    }
    char **words = argv + i;
    int n = argc - i;
    const char *cur = n > 0 ? words[n - 1] : "";
    struct out o = { "" };
    if (n <= 1) {
        offer_commands(cli_commands, cur, &o);
        offer("--help", cur, &o);
        offer("--version", cur, &o);
        return EXIT_OK;
    }
    const struct cli_command *cmd = cli_find_command(words[0]);
    if (!cmd) {
        return EXIT_OK;
    }
    if (cmd->run == cmd_help) {
        if (n == 2) {
            offer_commands(cli_commands, cur, &o);
        }
        return EXIT_OK;
    }
    const struct cli_command *sub = NULL;
    if (cmd->subcommands) {
        if (n == 2) {
            offer_commands(cmd->subcommands, cur, &o);
            if (cur[0] == '-') {
                offer_options(cmd->options, cur, &o);
            }
            return EXIT_OK;
        }
        for (sub = cmd->subcommands; sub->name; sub++) {
            if (strcmp(sub->name, words[1]) == 0) {
                break;
            }
        }
        if (!sub->name) {
            return EXIT_OK;
        }
    }
    int first = sub ? 2 : 1;
    /* The value of the option before it. */
    if (n - 2 >= first) {
        const struct cli_option *opt = find_option(cmd, sub, words[n - 2]);
        if (opt && opt->arg != CLI_ARG_NONE) {
            offer_value(opt->arg, cur, &o);
            return EXIT_OK;
        }
    }
    if (cur[0] == '-') {
        /* --option=value */
        const char *eq = strchr(cur, '=');
        if (eq) {
            char name[64], keep[80];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - cur), cur);
            const struct cli_option *opt = find_option(cmd, sub, name);
            if (opt && opt->arg != CLI_ARG_NONE) {
                snprintf(keep, sizeof(keep), "%s=", name);
                offer_value(opt->arg, eq + 1, &(struct out){ keep });
            }
            return EXIT_OK;
        }
        if (sub) {
            offer_options(sub->options, cur, &o);
        }
        offer_options(cmd->options, cur, &o);
        return EXIT_OK;
    }
    offer_value(sub ? sub->operands : cmd->operands, cur, &o);
    return EXIT_OK;
}
