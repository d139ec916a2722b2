/* The human monitor (HMP): one command table drives dispatch, argument
 * parsing, `help`, completion and the man page.  A struct monitor is one
 * conversation — the terminal, or one client of the monitor socket — and
 * all of them act on the same session (the running machine). */
#ifndef HOP_MONITOR_MONITOR_H
#define HOP_MONITOR_MONITOR_H

#include <stdbool.h>
#include <stdio.h>

#include "monitor/hmp-args.h"
#include "util/error.h"

struct monitor;
struct vm_session;

typedef void (*hmp_handler)(struct monitor *mon, const struct mon_args *args);

struct mon_cmd {
    const char *name;
    const char *aliases;        /* comma separated, e.g. "c" */
    const struct mon_arg *args; /* ends with name NULL; NULL = none */
    const char *help;           /* one line */
    const char *long_help;      /* a paragraph, or NULL */
    hmp_handler handler;
    const struct mon_cmd *sub; /* `info`: its subcommand table */
};

/* The command tables (monitor/hmp-table.c).  Both end with name NULL. */
extern const struct mon_cmd hmp_commands[];
extern const struct mon_cmd hmp_info_commands[];

const struct mon_cmd *hmp_find(const struct mon_cmd *table, const char *name);

struct monitor *monitor_new(struct vm_session *s, FILE *out);
void monitor_free(struct monitor *mon);
struct vm_session *monitor_session(struct monitor *mon);
FILE *monitor_out(struct monitor *mon);

/* Run one command line.  Returns false if it failed (the error was
 * printed). */
bool monitor_execute(struct monitor *mon, const char *line);

void mon_printf(struct monitor *mon, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print "Error: <message>" and free err; marks the command failed. */
void mon_report_err(struct monitor *mon, Error *err);

/* Help for the table (all commands) or one command ("help info"). */
void hmp_print_help(struct monitor *mon, const char *name);
/* "name|alias args -- help" as help lists it. */
void hmp_format_usage(const struct mon_cmd *c, const char *prefix, char *buf,
                      size_t len);
/* The commands section of the man page, in roff, from the table. */
void hmp_print_man(FILE *out);
/* The whole hop-monitor(7) page (monitor/man-page.c): prose, the
 * commands section and the QMP command list, all from the tables. */
void hmp_print_man_page(FILE *out);

#endif
