/* Argument specs and parsing for monitor commands, read the way QEMU's
 * HMP reads them: words separated by spaces, double-quoted strings with
 * backslash escapes, numbers in decimal or 0x hex, sizes with K/M/G/T
 * suffixes, on/off, `-x` flags, and x/xp's `/fmt`. */
#ifndef HOP_MONITOR_HMP_ARGS_H
#define HOP_MONITOR_HMP_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

enum mon_arg_kind {
    MON_ARG_STRING,     /* a word or "quoted string" */
    MON_ARG_REST,       /* the rest of the line, as typed */
    MON_ARG_INT,        /* -12, 42, 0x2a */
    MON_ARG_SIZE,       /* 4096, 64K, 1.5G (bytes; no suffix = bytes) */
    MON_ARG_BOOL,       /* on | off */
    MON_ARG_FLAG,       /* -d style switch; name is the letter */
    MON_ARG_FORMAT,     /* /[count][format][size] of x and xp */
    MON_ARG_FILE,       /* a path (completes file names) */
    MON_ARG_URI,        /* tcp:... unix:PATH file:PATH exec:CMD fd:NAME */
    MON_ARG_CAPABILITY, /* a migration capability name */
    MON_ARG_PARAMETER,  /* a migration parameter name */
    MON_ARG_TAG,        /* a snapshot tag */
    MON_ARG_KEYS,       /* sendkey combination: ctrl-alt-f1 */
    MON_ARG_INFO,       /* an `info` subcommand name */
    MON_ARG_COMMAND,    /* a monitor command name (for help) */
};

struct mon_arg {
    const char *name; /* shown in usage and errors */
    enum mon_arg_kind kind;
    bool optional;
};

/* x/xp format: count units of size bytes, shown as format. */
struct mon_format {
    int count;   /* default 1 */
    char format; /* x d u o c a i (default x) */
    int size;    /* 1 b, 2 h, 4 w, 8 g (default 4) */
};

struct mon_value {
    const struct mon_arg *spec;
    bool present;
    char *str; /* strings, files, names, rest */
    int64_t i; /* INT, SIZE (bytes), BOOL (0/1), FLAG */
    struct mon_format fmt;
};

#define MON_MAX_ARGS 8

struct mon_args {
    int n;
    struct mon_value v[MON_MAX_ARGS];
};

/* Parse line (the text after the command name) against spec (ends with
 * name NULL).  Errors name the argument: "missing argument 'uri'",
 * "unexpected argument 'extra'", "'12Q' is not a size (argument
 * 'value')". */
bool mon_args_parse(const char *cmd, const struct mon_arg *spec,
                    const char *line, struct mon_args *out, Error **errp);
void mon_args_free(struct mon_args *a);

/* Lookups by argument name; the defaults apply when absent. */
const char *mon_arg_str(const struct mon_args *a, const char *name);
int64_t mon_arg_int(const struct mon_args *a, const char *name, int64_t def);
bool mon_arg_present(const struct mon_args *a, const char *name);
const struct mon_format *mon_arg_fmt(const struct mon_args *a,
                                     const char *name);

/* Usage text generated from a spec: "[-d] uri", "/fmt addr". */
void mon_args_usage(const struct mon_arg *spec, char *buf, size_t len);

/* Split off one word of line (quotes and escapes honoured).  Returns a
 * malloc'd word and advances *line, or NULL at the end; sets errp on an
 * unterminated quote. */
char *mon_next_word(const char **line, Error **errp);

/* Numbers as the monitor reads them. */
bool mon_parse_int(const char *s, int64_t *out);
bool mon_parse_size(const char *s, uint64_t *out);

#endif
