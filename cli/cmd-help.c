/* hop help, hop version, and the hidden hop complete. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "monitor/monitor.h"
#include "vmstate/stream-format.h"

int cmd_help(int argc, char **argv)
{
    const struct cli_command *self = cli_find_command("help");
    if (argc > 2) {
        return cli_usage_error(self, "too many arguments");
    }
    if (argc == 1) {
        cli_print_usage(stdout);
        return EXIT_OK;
    }
    /* Hidden: `make man` writes man/hop-monitor.7 with this. */
    if (strcmp(argv[1], "--monitor-man") == 0) {
        hmp_print_man_page(stdout);
        return EXIT_OK;
    }
    const struct cli_command *cmd = cli_find_command(argv[1]);
    if (!cmd) {
        return cli_usage_error(self, "unknown command '%s'", argv[1]);
    }
    cli_print_command_help(stdout, cmd);
    return EXIT_OK;
}

int cmd_version(int argc, char **argv)
{
    if (argc > 1) {
        return cli_usage_error(cli_find_command("version"),
                               "unexpected argument '%s'", argv[1]);
    }
    printf("hop %s (migration stream version %u)\n", HOP_VERSION,
           STREAM_VERSION);
    return EXIT_OK;
}

static void offer(const char *word, const char *prefix)
{
    if (strncmp(word, prefix, strlen(prefix)) == 0) {
        puts(word);
    }
}

/* hop complete -- hop WORD... : completions for the last word. */
int cmd_complete(int argc, char **argv)
{
    int i = 1;
    if (i < argc && strcmp(argv[i], "--") == 0) {
        i++;
    }
    if (i < argc) {
        i++;   /* the program name, "hop" */
    }
    int nwords = argc - i;
    const char *cur = nwords > 0 ? argv[argc - 1] : "";
    if (nwords <= 1) {
        for (const struct cli_command *c = cli_commands; c->name; c++) {
            if (c->summary) {
                offer(c->name, cur);
            }
        }
        offer("--help", cur);
        offer("--version", cur);
        return EXIT_OK;
    }
    const struct cli_command *cmd = cli_find_command(argv[i]);
    if (!cmd) {
        return EXIT_OK;
    }
    if (strcmp(cmd->name, "help") == 0 && nwords == 2) {
        for (const struct cli_command *c = cli_commands; c->name; c++) {
            if (c->summary) {
                offer(c->name, cur);
            }
        }
        return EXIT_OK;
    }
    for (const char *const *o = cmd->options; o && *o; o++) {
        offer(*o, cur);
    }
    return EXIT_OK;
}
