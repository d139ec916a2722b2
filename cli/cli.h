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

/* What follows an option, or what a command's operands are: whether the
 * parser takes the next word, and what `hop complete` offers for it. */
enum cli_arg {
    CLI_ARG_NONE,        /* a switch: no value */
    CLI_ARG_TEXT,        /* a value with nothing to offer (size, name) */
    CLI_ARG_FILE,        /* a file name */
    CLI_ARG_DIR,         /* a directory */
    CLI_ARG_ACCEL,       /* an accelerator (machine/accel.c's table) */
    CLI_ARG_GUEST,       /* a built-in firmware (machine/firmware.h) */
    CLI_ARG_SERIAL,      /* cli_serial_backends */
    CLI_ARG_MONITOR,     /* endpoint_forms: stdio, none, unix:PATH,... */
    CLI_ARG_QMP,         /* endpoint_forms without stdio */
    CLI_ARG_INCOMING,    /* defer, or a migration URI */
    CLI_ARG_DRIVE,       /* cli_drive_keys: file=PATH,format=..,if=.. */
    CLI_ARG_IMG_FORMAT,  /* cli_img_formats */
    CLI_ARG_OUTPUT,      /* cli_output_formats */
};

struct cli_option {
    const char *name;        /* "-m", "--json" */
    enum cli_arg arg;
};

/* -serial backends; an entry ending in ':' is followed by a path. */
extern const char *const cli_serial_backends[];
/* -drive keys and, for all but file=, their values. */
struct cli_drive_key {
    const char *key;
    const char *const *values;   /* NULL: a path */
};
extern const struct cli_drive_key cli_drive_keys[];
extern const char *const cli_img_formats[];
extern const char *const cli_output_formats[];

/* The option called name in a table ending with name NULL (a leading
 * "--" also finds "-name", as QEMU's options allow), or NULL. */
const struct cli_option *cli_find_option(const struct cli_option *opts,
                                         const char *name);

struct cli_command {
    const char *name;
    const char *synopsis;   /* after "hop NAME " in usage lines */
    const char *summary;    /* one line, for `hop --help` */
    const char *help;       /* options and details, for `hop NAME --help` */
    int (*run)(int argc, char **argv);  /* argv[0] is the command name */
    /* Its options (ends with name NULL), for parsing and completion. */
    const struct cli_option *options;
    /* Words that must come first (`hop img create`), each with its own
     * options; NULL if none. */
    const struct cli_command *subcommands;
    /* What its other words are. */
    enum cli_arg operands;
};

/* `hop img`'s subcommands (cli/cmd-img.c). */
extern const struct cli_command cli_img_subcommands[];

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
int cmd_fault_points(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_img(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_catalog(int argc, char **argv);

#endif
