/* The hop command line: one table of subcommands drives dispatch, `hop
 * help`, `hop COMMAND --help` and the bash completion. */
#ifndef HOP_CLI_CLI_H
#define HOP_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes shared by every subcommand. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,  /* the operation failed */
    EXIT_USAGE = 2, /* bad command line */
};

/* What follows an option, or what a command's operands are: whether the
 * parser takes the next word, and what `hop complete` offers for it. */
enum cli_arg {
    CLI_ARG_NONE,       /* a switch: no value */
    CLI_ARG_TEXT,       /* a value with nothing to offer (size, name) */
    CLI_ARG_FILE,       /* a file name */
    CLI_ARG_DIR,        /* a directory */
    CLI_ARG_ACCEL,      /* an accelerator (machine/accel.c's table) */
    CLI_ARG_GUEST,      /* a built-in firmware (machine/firmware.h) */
    CLI_ARG_SERIAL,     /* cli_serial_backends */
    CLI_ARG_MONITOR,    /* endpoint_forms: stdio, none, unix:PATH,... */
    CLI_ARG_QMP,        /* endpoint_forms without stdio */
    CLI_ARG_INCOMING,   /* defer, or a migration URI */
    CLI_ARG_DRIVE,      /* cli_drive_keys: file=PATH,format=..,if=.. */
    CLI_ARG_IMG_FORMAT, /* cli_img_formats */
    CLI_ARG_OUTPUT,     /* cli_output_formats */
    CLI_ARG_OBJECT,     /* mem_backend_types, then its keys */
    CLI_ARG_MACHINE,    /* memory-backend=ID */
};

struct cli_command;
struct cli_option;

/* What the parser does with an option it meets. */
enum cli_store {
    CLI_STORE_NONE,   /* nothing: the option is seen elsewhere (--help) */
    CLI_STORE_FLAG,   /* sets the bool at .field */
    CLI_STORE_STRING, /* stores the value at .field (a const char *) */
    CLI_STORE_CALL,   /* calls .handle */
};

/* Checks and stores value (NULL for a switch) in target; returns -1 when
 * it is good, else the exit code (after cli_usage_error). */
typedef int cli_option_fn(const struct cli_command *cmd,
                          const struct cli_option *opt, void *target,
                          const char *value);

/* --help of every --catalog option (hop catalog, hop snapshot). */
#define CLI_CATALOG_HELP                                                       \
    "the catalog (default $HOP_CATALOG, else $XDG_DATA_HOME/hop/catalog.db)"

/* One option: parsing, `--help`, completion and man/hop.1 all read it. */
struct cli_option {
    const char *name; /* "-m", "--json", "-U" */
    enum cli_arg arg;
    const char *alias;   /* another spelling: "--force-share" */
    const char *metavar; /* its value in usage lines: "SIZE", "emu|kvm" */
    const char *usage;   /* the usage-line form when not "NAME METAVAR" */
    bool either_next;    /* usage line: [this | the next one] */
    bool with_next;      /* usage line: [this [the next one]] */
    const char *help;    /* for --help; a '\n' starts an indented line */
    const char *man;     /* roff for hop(1)'s option list, or NULL */
    enum cli_store store;
    size_t field; /* offsetof() the target's member */
    cli_option_fn *handle;
};

/* How a command's words are parsed (cli_parse_options). */
struct cli_parser {
    const struct cli_command *cmd; /* named in errors */
    /* Option tables, NULL-terminated: an option of any of them is taken. */
    const struct cli_option *const *tables;
    void *target;
    bool qemu_dashes;        /* --opt means -opt, as QEMU's options */
    bool end_of_options;     /* "--" ends the options */
    bool dash_is_option;     /* a lone "-" is an (unknown) option */
    bool unknown_is_operand; /* an unknown option is an operand */
    /* Takes one operand; returns -1 to go on, else the exit code. */
    int (*operand)(const struct cli_command *cmd, void *target,
                   const char *word);
};

/* Parses argv[first..]; returns -1 when every word was taken, else the
 * exit code (the error is printed). */
int cli_parse_options(const struct cli_parser *p, int argc, char **argv,
                      int first);
/* The option tables of subcommands, NULL-terminated in tables[max], for
 * a parser that takes any subcommand's options; returns how many. */
size_t cli_subcommand_tables(const struct cli_command *subs,
                             const struct cli_option **tables, size_t max);
/* Applies one option met on the command line, as cli_parse_options does. */
int cli_apply_option(const struct cli_command *cmd,
                     const struct cli_option *opt, void *target,
                     const char *value);

/* Usage lines, --help option lists and man/hop.1 entries from a table. */
enum cli_style { CLI_TEXT, CLI_ROFF };
void cli_print_synopsis(FILE *out, const struct cli_option *opts,
                        enum cli_style style);
void cli_print_option_help(FILE *out, const struct cli_option *opts, int width);
/* Writes usage text as it is, or for CLI_ROFF as cli_roff_usage. */
void cli_print_synopsis_text(FILE *out, const char *text, enum cli_style style);
/* Writes text (options, metavars, brackets) as roff: names and literal
 * words bold, upper-case words italic. */
void cli_roff_usage(FILE *out, const char *text);
/* man/hop.1 (`hop help --man`, make man). */
void cli_print_man_page(FILE *out);

/* -serial backends; an entry ending in ':' is followed by a path. */
extern const char *const cli_serial_backends[];
/* -drive keys and, for all but file=, their values. */
struct cli_drive_key {
    const char *key;
    const char *const *values; /* NULL: a path */
};
extern const struct cli_drive_key cli_drive_keys[];
extern const char *const cli_img_formats[];
extern const char *const cli_output_formats[];

/* The option called name (or aliased so) in a table ending with name
 * NULL (a leading "--" also finds "-name", as QEMU's options allow), or
 * NULL. */
const struct cli_option *cli_find_option(const struct cli_option *opts,
                                         const char *name);

struct cli_command {
    const char *name;
    /* After "hop NAME " in usage lines; NULL: generated from .options
     * and .operand_usage. */
    const char *synopsis;
    const char *operand_usage; /* "FILE SIZE", after the options */
    bool operands_first;       /* ... or before them */
    const char *summary;       /* one line, for `hop --help` */
    const char *help;          /* details, for `hop NAME --help` */
    /* After the option list in --help (exit status, see also). */
    const char *help_tail;
    int help_width;                    /* where option help starts; 0: 19 */
    const char *man;                   /* roff: the man page's paragraph */
    const char *man_tail;              /* roff: after its option list */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    /* Its options (ends with name NULL), for parsing and completion. */
    const struct cli_option *options;
    /* Words that must come first (`hop img create`), each with its own
     * options; NULL if none. */
    const struct cli_command *subcommands;
    /* What its other words are. */
    enum cli_arg operands;
};

/* The commands' tables, each beside its command. */
extern const struct cli_option cli_run_options[];
extern const struct cli_option cli_inspect_options[];
extern const struct cli_option cli_vmstate_check_options[];
extern const struct cli_command cli_snapshot_subcommands[];
extern const struct cli_command cli_catalog_subcommands[];
/* `hop img`'s subcommands (cli/cmd-img.c). */
extern const struct cli_command cli_img_subcommands[];

extern const struct cli_command cli_commands[];

const struct cli_command *cli_find_command(const char *name);
void cli_print_usage(FILE *out);
void cli_print_command_help(FILE *out, const struct cli_command *cmd);
/* What follows "hop NAME " in its usage line. */
void cli_print_command_synopsis(FILE *out, const struct cli_command *cmd,
                                enum cli_style style);
/* Whether an option of cmd or of its subcommands has --help text. */
bool cli_command_has_option_help(const struct cli_command *cmd);
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
