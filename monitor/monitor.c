/* Monitor conversations: output, dispatch through the command table,
 * help generated from it. */
#include "monitor/monitor.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct monitor {
    struct vm_session *session;
    FILE *out;
    bool failed; /* the current command reported an error */
};

struct monitor *monitor_new(struct vm_session *s, FILE *out)
{
    struct monitor *mon = xcalloc(1, sizeof(*mon));
    mon->session = s;
    mon->out = out;
    return mon;
}

void monitor_free(struct monitor *mon)
{
    free(mon);
}

struct vm_session *monitor_session(struct monitor *mon)
{
    return mon->session;
}

FILE *monitor_out(struct monitor *mon)
{
    return mon->out;
}

void mon_printf(struct monitor *mon, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(mon->out, fmt, ap);
    va_end(ap);
}

void mon_report_err(struct monitor *mon, Error *err)
{
    mon->failed = true;
    mon_printf(mon, "Error: %s\n", error_get_pretty(err));
    error_free(err);
}

static bool name_matches(const struct mon_cmd *c, const char *name)
{
    if (strcmp(c->name, name) == 0) {
        return true;
    }
    const char *a = c->aliases;
    size_t n = strlen(name);
    while (a && *a) {
        const char *end = strchr(a, ',');
        size_t len = end ? (size_t)(end - a) : strlen(a);
        if (len == n && strncmp(a, name, n) == 0) {
            return true;
        }
        a = end ? end + 1 : NULL;
    }
    return false;
}

const struct mon_cmd *hmp_find(const struct mon_cmd *table, const char *name)
{
    for (const struct mon_cmd *c = table; c->name; c++) {
        if (name_matches(c, name)) {
            return c;
        }
    }
    return NULL;
}

static bool execute(struct monitor *mon, const char *line, char **glued_out)
{
    const char *p = line;
    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (!*p || *p == '#') {
        return true;
    }
    Error *err = NULL;
    char *word = mon_next_word(&p, &err);
    if (!word) {
        mon_report_err(mon, err);
        return false;
    }
    /* `x/4xw addr`: QEMU accepts the format glued to the command name. */
    char *glued;
    char *slash = strchr(word, '/');
    if (slash && slash != word) {
        glued = xasprintf("%s %s", slash, p);
        *slash = '\0';
        p = glued;
        *glued_out = glued;
    }
    const struct mon_cmd *table = hmp_commands;
    const struct mon_cmd *c = hmp_find(table, word);
    char full[128];
    snprintf(full, sizeof(full), "%s", word);
    /* `info X`: the subcommand table takes the next word. */
    while (c && c->sub) {
        char *sub = mon_next_word(&p, &err);
        if (!sub) {
            if (err) {
                mon_report_err(mon, err);
                free(word);
                return false;
            }
            hmp_print_help(mon, c->name);
            free(word);
            return true;
        }
        const struct mon_cmd *sc = hmp_find(c->sub, sub);
        if (!sc) {
            error_setg(&err, "%s: unknown subcommand '%s' (try 'help %s')",
                       full, sub, full);
            free(sub);
            free(word);
            mon_report_err(mon, err);
            return false;
        }
        snprintf(full + strlen(full), sizeof(full) - strlen(full), " %s",
                 sc->name);
        free(sub);
        c = sc;
    }
    if (!c) {
        error_setg(&err, "unknown command: '%s' (try 'help')", word);
        free(word);
        mon_report_err(mon, err);
        return false;
    }
    free(word);
    struct mon_args args;
    if (!mon_args_parse(full, c->args, p, &args, &err)) {
        mon_report_err(mon, err);
        return false;
    }
    mon->failed = false;
    c->handler(mon, &args);
    mon_args_free(&args);
    fflush(mon->out);
    return !mon->failed;
}

bool monitor_execute(struct monitor *mon, const char *line)
{
    char *glued = NULL;
    bool ok = execute(mon, line, &glued);
    free(glued);
    return ok;
}

void hmp_format_usage(const struct mon_cmd *c, const char *prefix, char *buf,
                      size_t len)
{
    char names[64], usage[160];
    snprintf(names, sizeof(names), "%s%s%s%s", prefix, c->name,
             c->aliases ? "|" : "", c->aliases ? c->aliases : "");
    for (char *q = names; *q; q++) {
        if (*q == ',') {
            *q = '|';
        }
    }
    mon_args_usage(c->args, usage, sizeof(usage));
    snprintf(buf, len, "%s%s%s", names, usage[0] ? " " : "", usage);
}

static void print_entry(struct monitor *mon, const struct mon_cmd *c,
                        const char *prefix)
{
    char usage[256];
    hmp_format_usage(c, prefix, usage, sizeof(usage));
    mon_printf(mon, "%s -- %s\n", usage, c->help);
}

void hmp_print_help(struct monitor *mon, const char *name)
{
    if (!name) {
        for (const struct mon_cmd *c = hmp_commands; c->name; c++) {
            print_entry(mon, c, "");
        }
        return;
    }
    const struct mon_cmd *c = hmp_find(hmp_commands, name);
    if (!c) {
        Error *err = NULL;
        error_setg(&err, "help: unknown command '%s'", name);
        mon_report_err(mon, err);
        return;
    }
    if (c->sub) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "%s ", c->name);
        for (const struct mon_cmd *s = c->sub; s->name; s++) {
            print_entry(mon, s, prefix);
        }
        return;
    }
    print_entry(mon, c, "");
    if (c->long_help) {
        mon_printf(mon, "\n%s\n", c->long_help);
    }
}

/* roff needs backslashes and leading dots escaped. */
static void roff_text(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'') {
        fputs("\\&", out);
    }
    for (; *s; s++) {
        if (*s == '\\') {
            fputs("\\e", out);
        } else if (*s == '-') {
            fputs("\\-", out);
        } else {
            fputc(*s, out);
        }
    }
}

static void man_entry(FILE *out, const struct mon_cmd *c, const char *prefix)
{
    char usage[256];
    hmp_format_usage(c, prefix, usage, sizeof(usage));
    fputs(".TP\n.B ", out);
    roff_text(out, usage);
    fputs("\n", out);
    roff_text(out, c->help);
    fputs(".\n", out);
    if (c->long_help) {
        fputs(".IP\n", out);
        roff_text(out, c->long_help);
        fputs("\n", out);
    }
}

void hmp_print_man(FILE *out)
{
    for (const struct mon_cmd *c = hmp_commands; c->name; c++) {
        if (c->sub) {
            char prefix[64];
            snprintf(prefix, sizeof(prefix), "%s ", c->name);
            man_entry(out, c, "");
            for (const struct mon_cmd *s = c->sub; s->name; s++) {
                man_entry(out, s, prefix);
            }
        } else {
            man_entry(out, c, "");
        }
    }
}
