/* Option tables at work: one parser for every command's words, and the
 * usage lines, --help lists and man-page entries printed from the same
 * entries. */
#include <ctype.h>
#include <string.h>

#include "cli/cli.h"

static bool option_named(const struct cli_option *o, const char *name)
{
    return strcmp(o->name, name) == 0 ||
        (o->alias && strcmp(o->alias, name) == 0);
}

const struct cli_option *cli_find_option(const struct cli_option *opts,
                                         const char *name)
{
    for (int pass = 0; pass < 2; pass++) {
        for (const struct cli_option *o = opts; o && o->name; o++) {
            if (option_named(o, name)) {
                return o;
            }
        }
        /* QEMU accepts --opt for -opt. */
        if (name[0] != '-' || name[1] != '-' || !name[2]) {
            break;
        }
        name++;
    }
    return NULL;
}

/* The option the parser takes under exactly this name, or NULL. */
static const struct cli_option *parser_find(const struct cli_parser *p,
                                            const char *name)
{
    for (const struct cli_option *const *t = p->tables; *t; t++) {
        for (const struct cli_option *o = *t; o->name; o++) {
            if (o->store != CLI_STORE_NONE && option_named(o, name)) {
                return o;
            }
        }
    }
    return NULL;
}

int cli_apply_option(const struct cli_command *cmd,
                     const struct cli_option *opt, void *target,
                     const char *value)
{
    char *field = (char *)target + opt->field;
    switch (opt->store) {
    case CLI_STORE_NONE:
        break;
    case CLI_STORE_FLAG:
        *(bool *)field = true;
        break;
    case CLI_STORE_STRING:
        *(const char **)field = value;
        break;
    case CLI_STORE_CALL:
        return opt->handle(cmd, opt, target, value);
    }
    return -1;
}

size_t cli_subcommand_tables(const struct cli_command *subs,
                             const struct cli_option **tables, size_t max)
{
    size_t n = 0;
    for (; subs->name && n + 1 < max; subs++) {
        tables[n++] = subs->options;
    }
    tables[n] = NULL;
    return n;
}

static bool looks_like_option(const struct cli_parser *p, const char *w)
{
    return w[0] == '-' && (w[1] || p->dash_is_option);
}

/* The option w names (as -opt too when QEMU's --opt is allowed), with
 * the name it was found under; NULL if none. */
static const struct cli_option *find_word(const struct cli_parser *p,
                                          const char *w, const char **name)
{
    *name = w;
    const struct cli_option *opt = parser_find(p, w);
    if (!opt && p->qemu_dashes && w[1] == '-' && w[2]) {
        *name = w + 1;
        opt = parser_find(p, w + 1);
    }
    return opt;
}

int cli_parse_options(const struct cli_parser *p, int argc, char **argv,
                      int first)
{
    bool options_ended = false;
    for (int i = first; i < argc; i++) {
        const char *w = argv[i], *name = w;
        const struct cli_option *opt = NULL;
        int rc;
        if (!options_ended && looks_like_option(p, w)) {
            if (p->end_of_options && strcmp(w, "--") == 0) {
                options_ended = true;
                continue;
            }
            opt = find_word(p, w, &name);
            if (!opt && !p->unknown_is_operand) {
                return cli_usage_error(p->cmd, "unknown option '%s'", w);
            }
        }
        if (!opt) {
            rc = p->operand(p->cmd, p->target, w);
        } else if (opt->arg == CLI_ARG_NONE) {
            rc = cli_apply_option(p->cmd, opt, p->target, NULL);
        } else if (i + 1 < argc) {
            rc = cli_apply_option(p->cmd, opt, p->target, argv[++i]);
        } else {
            rc = cli_usage_error(p->cmd, "option '%s' needs an argument", name);
        }
        if (rc >= 0) {
            return rc;
        }
    }
    return -1;
}

/* ---- usage lines, option lists, roff ---- */

static bool in_usage(const struct cli_option *o)
{
    return strcmp(o->name, "--help") != 0;
}

/* "NAME METAVAR", or the option's own usage form, into buf. */
static void usage_form(const struct cli_option *o, char *buf, size_t size)
{
    if (o->usage) {
        snprintf(buf, size, "%s", o->usage);
    } else if (o->metavar) {
        snprintf(buf, size, "%s %s", o->name, o->metavar);
    } else {
        snprintf(buf, size, "%s", o->name);
    }
}

void cli_print_synopsis_text(FILE *out, const char *text, enum cli_style style)
{
    if (style == CLI_ROFF) {
        cli_roff_usage(out, text);
    } else {
        fputs(text, out);
    }
}

void cli_print_synopsis(FILE *out, const struct cli_option *opts,
                        enum cli_style style)
{
    const char *sep = "";
    char form[256];
    for (const struct cli_option *o = opts; o && o->name; o++) {
        if (!in_usage(o)) {
            continue;
        }
        fputs(sep, out);
        cli_print_synopsis_text(out, "[", style);
        int nested = 0;
        for (;;) {
            usage_form(o, form, sizeof(form));
            cli_print_synopsis_text(out, form, style);
            if ((!o->either_next && !o->with_next) || !o[1].name) {
                break;
            }
            if (o->with_next) {
                cli_print_synopsis_text(out, " [", style);
                nested++;
            } else {
                cli_print_synopsis_text(out, " | ", style);
            }
            o++;
        }
        for (; nested >= 0; nested--) {
            cli_print_synopsis_text(out, "]", style);
        }
        sep = " ";
    }
}

/* "  -U, --force-share  " then the help, its later lines indented to
 * width. */
void cli_print_option_help(FILE *out, const struct cli_option *opts, int width)
{
    for (const struct cli_option *o = opts; o && o->name; o++) {
        if (!o->help) {
            continue;
        }
        char left[256];
        snprintf(left, sizeof(left), "%s%s%s%s%s", o->name,
                 o->alias ? ", " : "", o->alias ? o->alias : "",
                 o->metavar ? " " : "", o->metavar ? o->metavar : "");
        int n = (int)strlen(left) + 2;
        if (n + 2 <= width) {
            fprintf(out, "  %s%*s", left, width - n, "");
        } else {
            fprintf(out, "  %s\n%*s", left, width, "");
        }
        for (const char *h = o->help; *h; h++) {
            fputc(*h, out);
            if (*h == '\n' && h[1]) {
                fprintf(out, "%*s", width, "");
            }
        }
        fputc('\n', out);
    }
}

static bool word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

void cli_roff_usage(FILE *out, const char *text)
{
    for (const char *s = text; *s;) {
        if (!word_char(*s) || (*s == '.' && s == text)) {
            fputc(*s++, out);
            continue;
        }
        bool italic = isupper((unsigned char)*s);
        fputs(italic ? "\\fI" : "\\fB", out);
        for (; *s && word_char(*s); s++) {
            fputs(*s == '-' ? "\\-" : (char[]){ *s, 0 }, out);
        }
        fputs("\\fR", out);
    }
}
