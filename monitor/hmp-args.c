/* Reading monitor arguments from a command line. */
#include "monitor/hmp-args.h"

#include "util/parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

static const char *skip_space(const char *p)
{
    while (*p && isspace((unsigned char)*p)) {
        p++;
    }
    return p;
}

char *mon_next_word(const char **line, Error **errp)
{
    const char *p = skip_space(*line);
    if (!*p) {
        *line = p;
        return NULL;
    }
    size_t cap = strlen(p) + 1, n = 0;
    char *w = xmalloc(cap);
    if (*p == '"') {
        p++;
        for (;;) {
            if (!*p) {
                error_setg(errp, "unterminated string (missing closing \")");
                free(w);
                return NULL;
            }
            if (*p == '"') {
                p++;
                break;
            }
            if (*p == '\\' && p[1]) {
                p++;
                switch (*p) {
                case 'n':
                    w[n++] = '\n';
                    break;
                case 't':
                    w[n++] = '\t';
                    break;
                case 'r':
                    w[n++] = '\r';
                    break;
                default:
                    w[n++] = *p;
                    break; /* \" \\ and others */
                }
                p++;
                continue;
            }
            w[n++] = *p++;
        }
    } else {
        while (*p && !isspace((unsigned char)*p)) {
            w[n++] = *p++;
        }
    }
    w[n] = '\0';
    *line = p;
    return w;
}

bool mon_parse_int(const char *s, int64_t *out)
{
    return parse_int(s, out);
}

bool mon_parse_size(const char *s, uint64_t *out)
{
    return parse_size(s, 1, out);
}

static bool parse_format(const char *w, struct mon_format *fmt)
{
    fmt->count = 1;
    fmt->format = 'x';
    fmt->size = 4;
    if (*w != '/') {
        return false;
    }
    w++;
    if (isdigit((unsigned char)*w)) {
        char *end;
        long c = strtol(w, &end, 10);
        if (c <= 0 || c > 1 << 20) {
            return false;
        }
        fmt->count = (int)c;
        w = end;
    }
    bool sized = false;
    for (; *w; w++) {
        switch (*w) {
        case 'x':
        case 'd':
        case 'u':
        case 'o':
        case 'c':
        case 'a':
        case 'i':
            fmt->format = *w;
            break;
        case 'b':
            fmt->size = 1;
            sized = true;
            break;
        case 'h':
            fmt->size = 2;
            sized = true;
            break;
        case 'w':
            fmt->size = 4;
            sized = true;
            break;
        case 'g':
            fmt->size = 8;
            sized = true;
            break;
        default:
            return false;
        }
    }
    if (fmt->format == 'c' && !sized) {
        fmt->size = 1; /* characters count bytes unless sized */
    }
    return true;
}

static bool parse_value(const char *cmd, struct mon_value *v, char *word,
                        Error **errp)
{
    const struct mon_arg *a = v->spec;
    uint64_t size;
    v->present = true;
    switch (a->kind) {
    case MON_ARG_INT:
        if (!mon_parse_int(word, &v->i)) {
            error_setg(errp, "%s: '%s' is not a number (argument '%s')", cmd,
                       word, a->name);
            return false;
        }
        break;
    case MON_ARG_SIZE:
        if (!mon_parse_size(word, &size)) {
            error_setg(errp,
                       "%s: '%s' is not a size (argument '%s'; use a "
                       "number with an optional K, M, G or T suffix)",
                       cmd, word, a->name);
            return false;
        }
        v->i = (int64_t)size;
        break;
    case MON_ARG_BOOL:
        if (strcmp(word, "on") == 0) {
            v->i = 1;
        } else if (strcmp(word, "off") == 0) {
            v->i = 0;
        } else {
            error_setg(errp, "%s: '%s' is not on or off (argument '%s')", cmd,
                       word, a->name);
            return false;
        }
        break;
    case MON_ARG_FORMAT:
        if (!parse_format(word, &v->fmt)) {
            error_setg(errp,
                       "%s: bad format '%s' (expected /[count][xduoca]"
                       "[bhwg])",
                       cmd, word);
            return false;
        }
        break;
    default:
        break;
    }
    v->str = word;
    return true;
}

/* The -x switches at p that name flags of the run starting at group, in
 * any order: bit i of *seen for group[i].  Returns what follows them. */
static const char *take_flags(const struct mon_arg *group, const char *p,
                              unsigned *seen)
{
    *seen = 0;
    for (;;) {
        const char *q = skip_space(p);
        if (q[0] != '-' || !q[1] || (q[2] && !isspace((unsigned char)q[2]))) {
            return p;
        }
        unsigned i = 0;
        while (group[i].name && group[i].kind == MON_ARG_FLAG &&
               group[i].name[0] != q[1]) {
            i++;
        }
        if (!group[i].name || group[i].kind != MON_ARG_FLAG || i >= 32) {
            return p;
        }
        *seen |= 1u << i;
        p = q + 2;
    }
}

bool mon_args_parse(const char *cmd, const struct mon_arg *spec,
                    const char *line, struct mon_args *out, Error **errp)
{
    const struct mon_arg *group = NULL;
    unsigned seen = 0;
    memset(out, 0, sizeof(*out));
    const char *p = line ? line : "";
    for (const struct mon_arg *a = spec; a && a->name; a++) {
        if (out->n == MON_MAX_ARGS) {
            error_setg(errp, "%s: too many arguments in its table", cmd);
            return false;
        }
        struct mon_value *v = &out->v[out->n++];
        v->spec = a;
        if (a->kind == MON_ARG_FLAG) {
            /* -x switches come first, in any order among themselves. */
            if (a == spec || a[-1].kind != MON_ARG_FLAG) {
                group = a;
                p = take_flags(group, p, &seen);
            }
            if (a - group < 32 && (seen & (1u << (a - group)))) {
                v->present = true;
                v->i = 1;
            }
            continue;
        }
        if (a->kind == MON_ARG_REST) {
            const char *q = skip_space(p);
            if (*q) {
                v->present = true;
                v->str = xstrdup(q);
                p = q + strlen(q);
            }
        } else if (a->kind == MON_ARG_FORMAT && *skip_space(p) != '/') {
            /* The optional /fmt is absent: defaults. */
            v->fmt = (struct mon_format){ 1, 'x', 4 };
            v->present = true;
        } else {
            Error *err = NULL;
            char *w = mon_next_word(&p, &err);
            if (err) {
                error_propagate(errp, err);
                error_prepend(errp, "%s: ", cmd);
                mon_args_free(out);
                return false;
            }
            if (w && !parse_value(cmd, v, w, errp)) {
                free(w);
                mon_args_free(out);
                return false;
            }
        }
        if (!v->present && !a->optional) {
            error_setg(errp, "%s: missing argument '%s'", cmd, a->name);
            mon_args_free(out);
            return false;
        }
    }
    const char *rest = skip_space(p);
    if (*rest) {
        Error *err = NULL;
        char *w = mon_next_word(&rest, &err);
        error_free(err);
        error_setg(errp, "%s: unexpected argument '%s'", cmd, w ? w : rest);
        free(w);
        mon_args_free(out);
        return false;
    }
    return true;
}

void mon_args_free(struct mon_args *a)
{
    for (int i = 0; i < a->n; i++) {
        free(a->v[i].str);
        a->v[i].str = NULL;
    }
    a->n = 0;
}

static const struct mon_value *find(const struct mon_args *a, const char *name)
{
    for (int i = 0; i < a->n; i++) {
        if (strcmp(a->v[i].spec->name, name) == 0) {
            return &a->v[i];
        }
    }
    return NULL;
}

const char *mon_arg_str(const struct mon_args *a, const char *name)
{
    const struct mon_value *v = find(a, name);
    return v && v->present ? v->str : NULL;
}

int64_t mon_arg_int(const struct mon_args *a, const char *name, int64_t def)
{
    const struct mon_value *v = find(a, name);
    return v && v->present ? v->i : def;
}

bool mon_arg_present(const struct mon_args *a, const char *name)
{
    const struct mon_value *v = find(a, name);
    return v && v->present;
}

const struct mon_format *mon_arg_fmt(const struct mon_args *a, const char *name)
{
    const struct mon_value *v = find(a, name);
    return v ? &v->fmt : NULL;
}

void mon_args_usage(const struct mon_arg *spec, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (const struct mon_arg *a = spec; a && a->name && n < len; a++) {
        const char *sep = n ? " " : "";
        int w;
        if (a->kind == MON_ARG_FLAG) {
            w = snprintf(buf + n, len - n, "%s[-%s]", sep, a->name);
        } else if (a->kind == MON_ARG_FORMAT) {
            w = snprintf(buf + n, len - n, "%s/fmt", sep);
        } else if (a->optional) {
            w = snprintf(buf + n, len - n, "%s[%s]", sep, a->name);
        } else {
            w = snprintf(buf + n, len - n, "%s%s", sep, a->name);
        }
        if (w < 0) {
            break;
        }
        n += (size_t)w;
    }
    if (n >= len && len > 0) {
        buf[len - 1] = '\0';
    }
}
