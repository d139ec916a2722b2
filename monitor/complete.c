/* Monitor completion, driven by the command table's argument kinds. */
#include "monitor/complete.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/session.h"
#include "monitor/monitor.h"
#include "util/alloc.h"

static void offer(const char *word, const char *partial, complete_fn fn,
                  void *ctx)
{
    if (strncmp(word, partial, strlen(partial)) == 0) {
        fn(word, ctx);
    }
}

static void offer_commands(const struct mon_cmd *table, const char *partial,
                           complete_fn fn, void *ctx)
{
    for (const struct mon_cmd *c = table; c->name; c++) {
        offer(c->name, partial, fn, ctx);
    }
}

void complete_paths(const char *keep, const char *partial, complete_fn fn,
                    void *ctx)
{
    char dir[4096], base[1024];
    const char *slash = strrchr(partial, '/');
    if (slash) {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - partial + 1), partial);
        snprintf(base, sizeof(base), "%s", slash + 1);
    } else {
        dir[0] = '\0';
        snprintf(base, sizeof(base), "%s", partial);
    }
    DIR *d = opendir(dir[0] ? dir : ".");
    if (!d) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strncmp(e->d_name, base, strlen(base)) != 0 ||
            (e->d_name[0] == '.' && base[0] != '.')) {
            continue;
        }
        char full[8300], path[8192];
        snprintf(path, sizeof(path), "%s%s", dir, e->d_name);
        struct stat st;
        bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
        snprintf(full, sizeof(full), "%s%s%s", keep, path, is_dir ? "/" : "");
        fn(full, ctx);
    }
    closedir(d);
}

static const char *const uri_schemes[] = { "tcp:",  "unix:",  "exec:", "fd:",
                                           "file:", "memfd:", NULL };

void complete_uri(const char *partial, complete_fn fn, void *ctx)
{
    for (int i = 0; uri_schemes[i]; i++) {
        size_t n = strlen(uri_schemes[i]);
        if (strncmp(partial, uri_schemes[i], n) == 0) {
            if (strcmp(uri_schemes[i], "tcp:") &&
                strcmp(uri_schemes[i], "fd:") &&
                strcmp(uri_schemes[i], "memfd:")) {
                complete_paths(uri_schemes[i], partial + n, fn, ctx);
            }
            return;
        }
    }
    for (int i = 0; uri_schemes[i]; i++) {
        offer(uri_schemes[i], partial, fn, ctx);
    }
}

static void offer_kind(struct vm_session *s, enum mon_arg_kind kind,
                       const char *partial, complete_fn fn, void *ctx)
{
    switch (kind) {
    case MON_ARG_BOOL:
        offer("on", partial, fn, ctx);
        offer("off", partial, fn, ctx);
        break;
    case MON_ARG_FILE:
        complete_paths("", partial, fn, ctx);
        break;
    case MON_ARG_URI:
        complete_uri(partial, fn, ctx);
        break;
    case MON_ARG_INFO:
        offer_commands(hmp_info_commands, partial, fn, ctx);
        break;
    case MON_ARG_COMMAND:
        offer_commands(hmp_commands, partial, fn, ctx);
        break;
    default:
        /* Other kinds draw their words from the session's modules. */
        hmp_complete_kind(s, kind, partial, fn, ctx);
        break;
    }
}

/* Splits line into words (quotes honoured); the last entry is the partial
 * word being typed ("" after a space). */
/* Is w ("-x") one of the flags in the run starting at group? */
static bool is_flag_of(const struct mon_arg *group, const char *w)
{
    if (w[0] != '-' || !w[1] || w[2]) {
        return false;
    }
    for (const struct mon_arg *a = group; a->name && a->kind == MON_ARG_FLAG;
         a++) {
        if (a->name[0] == w[1]) {
            return true;
        }
    }
    return false;
}

static int split(const char *line, char **words, int max)
{
    int n = 0;
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (!*p) {
            if (n < max) {
                words[n++] = xstrdup("");
            }
            return n;
        }
        Error *err = NULL;
        const char *start = p;
        char *w = mon_next_word(&p, &err);
        if (err) {
            /* An open quote: the rest is the partial word. */
            error_free(err);
            w = xstrdup(start + 1);
            p = start + strlen(start);
        }
        if (n < max) {
            words[n++] = w;
        } else {
            free(w);
        }
        if (!*p && p > line && p[-1] != ' ' && p[-1] != '\t') {
            return n; /* the line ends inside this word */
        }
    }
}

bool hmp_complete(struct vm_session *s, const char *line, complete_fn fn,
                  void *ctx)
{
    char *words[32];
    int n = split(line, words, 32);
    const char *partial = words[n - 1];
    if (n == 1) {
        offer_commands(hmp_commands, partial, fn, ctx);
        goto out;
    }
    const struct mon_cmd *c = hmp_find(hmp_commands, words[0]);
    int argi = 1;
    while (c && c->sub) {
        if (argi == n - 1) {
            offer_commands(c->sub, partial, fn, ctx);
            goto out;
        }
        c = hmp_find(c->sub, words[argi++]);
    }
    if (!c) {
        goto out;
    }
    /* Map the word's position onto the spec: flags and /fmt are only
     * counted when they were typed. */
    const struct mon_arg *a = c->args;
    for (int i = argi; a && a->name && i < n; a++) {
        const char *w = words[i];
        if (a->kind == MON_ARG_FLAG) {
            if (i == n - 1 && partial[0] == '-') {
                char flag[4] = { '-', a->name[0], 0, 0 };
                offer(flag, partial, fn, ctx);
            }
            /* The switches typed, in any order, belong to the run of
             * flags that starts here. */
            bool first = a == c->args || a[-1].kind != MON_ARG_FLAG;
            while (first && i < n - 1 && is_flag_of(a, words[i])) {
                i++;
            }
            continue;
        }
        if (a->kind == MON_ARG_FORMAT && w[0] != '/') {
            continue;
        }
        if (i == n - 1) {
            offer_kind(s, a->kind, partial, fn, ctx);
            break;
        }
        if (a->kind == MON_ARG_REST) {
            break;
        }
        i++;
    }
out:
    for (int i = 0; i < n; i++) {
        free(words[i]);
    }
    return false;
}
