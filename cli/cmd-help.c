/* hop help, hop version, and the hidden hop fault-points (hop complete
 * lives in cli/complete.c). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "monitor/monitor.h"
#include "util/fault.h"
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
    /* Hidden: `make man` writes man/hop-monitor.7 and man/hop.1 with
     * these. */
    if (strcmp(argv[1], "--monitor-man") == 0) {
        hmp_print_man_page(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--man") == 0) {
        cli_print_man_page(stdout);
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

int cmd_fault_points(int argc, char **argv)
{
    if (argc > 1) {
        return cli_usage_error(cli_find_command("fault-points"),
                               "unexpected argument '%s'", argv[1]);
    }
    for (const struct fault_point *p = fault_points; p->name; p++) {
        printf("%s\t%s\t%s\t%s\n", p->name, p->can_fail ? "exit+fail" : "exit",
               p->ops, p->what);
    }
    return EXIT_OK;
}
