/* The hop command line: one table of subcommands drives dispatch, `hop
 * help`, `hop COMMAND --help` and the bash completion. */
#ifndef HOP_CLI_CLI_H
#define HOP_CLI_CLI_H

#include <stdio.h>

/* Exit codes shared by every subcommand. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,     /* the operation failed */
    EXIT_USAGE = 2,    /* bad command line */
};

struct cli_command {
    const char *name;
    const char *synopsis;   /* after "hop NAME " in usage lines */
    const char *summary;    /* one line, for `hop --help` */
    const char *help;       /* options and details, for `hop NAME --help` */
    int (*run)(int argc, char **argv);  /* argv[0] is the command name */
    /* Words offered after the command name by `hop complete`. */
    const char *const *options;
};

extern const struct cli_command cli_commands[];

const struct cli_command *cli_find_command(const char *name);
void cli_print_usage(FILE *out);
void cli_print_command_help(FILE *out, const struct cli_command *cmd);
/* True when argv holds -h or --help (before any "--"). */
int cli_wants_help(int argc, char **argv);
/* Prints "hop NAME: message" and the command's usage line to stderr;
 * returns EXIT_USAGE for `return cli_usage_error(...)`. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int cli_main(int argc, char **argv);

/* Subcommand entry points. */
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_complete(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_img(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_catalog(int argc, char **argv);

#endif
