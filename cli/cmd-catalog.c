/* hop catalog: query and rebuild the snapshot catalog. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "cli/cli.h"
#include "snapshot/catalog-index.h"
#include "snapshot/catalog.h"

static const struct cli_command *self(void)
{
    return cli_find_command("catalog");
}

struct query_out {
    bool json;
    bool header;
    json_t *rows;
};

static void print_row(void *ctx, int ncols, const char *const *names,
                      const char *const *v)
{
    struct query_out *q = ctx;
    if (q->json) {
        json_t *o = json_object();
        for (int i = 0; i < ncols; i++) {
            json_object_set_new(o, names[i], v[i] ? json_string(v[i])
                                                  : json_null());
        }
        json_array_append_new(q->rows, o);
        return;
    }
    if (q->header) {
        for (int i = 0; i < ncols; i++) {
            printf("%s%s", i ? "|" : "", names[i]);
        }
        printf("\n");
        q->header = false;
    }
    for (int i = 0; i < ncols; i++) {
        printf("%s%s", i ? "|" : "", v[i] ? v[i] : "");
    }
    printf("\n");
}

static int do_query(const char *path, int argc, char **argv, bool json,
                    bool header)
{
    if (argc != 1) {
        return cli_usage_error(self(), "query needs one SQL statement");
    }
    Error *err = NULL;
    struct catalog *c = catalog_open(path, true, &err);
    struct query_out q = { .json = json, .header = header,
                           .rows = json ? json_array() : NULL };
    bool ok = c && catalog_query(c, argv[0], print_row, &q, &err);
    catalog_close(c);
    if (!ok) {
        fprintf(stderr, "hop catalog query: %s\n", error_get_pretty(err));
        error_free(err);
    } else if (json) {
        json_dumpf(q.rows, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
    }
    json_decref(q.rows);
    return ok ? EXIT_OK : EXIT_FAIL;
}

static bool sync_one(struct catalog *c, const char *image)
{
    Error *err = NULL;
    if (access(image, F_OK) < 0 && errno == ENOENT) {
        char *key = catalog_image_key(image);
        bool ok = catalog_forget_image(c, key, &err);
        if (ok) {
            printf("%s: gone, removed from the catalog\n", key);
        }
        free(key);
        if (!ok) {
            error_report_err(err);
        }
        return ok;
    }
    BlockDev *bs = blk_open(image, NULL, true, &err);
    if (!bs && blk_image_has_writer(image)) {
        /* Its snapshots may be changing as we read; and a hop machine
         * notes its own savevm and delvm. */
        printf("%s: skipped: in use by a running writer (a hop machine "
               "keeps its own catalog entries)\n", image);
        error_free(err);
        return true;
    }
    struct blk_snapshot *l = NULL;
    size_t n = 0;
    bool ok = bs && catalog_sync_image(c, bs, &err) &&
              blk_snapshot_list(bs, &l, &n, &err);
    if (ok) {
        printf("%s: %zu snapshot%s\n", image, n, n == 1 ? "" : "s");
    } else {
        error_prepend(&err, "%s: ", image);
        error_report_err(err);
    }
    blk_snapshot_list_free(l, n);
    if (bs) {
        blk_close(bs);
    }
    return ok;
}

static int do_sync(const char *path, int argc, char **argv)
{
    Error *err = NULL;
    struct catalog *c = catalog_open(path, false, &err);
    if (!c) {
        error_report_err(err);
        return EXIT_FAIL;
    }
    bool ok = true;
    if (argc > 0) {
        for (int i = 0; i < argc; i++) {
            ok = sync_one(c, argv[i]) && ok;
        }
    } else {
        char **paths;
        size_t n;
        if (!catalog_image_paths(c, &paths, &n, &err)) {
            error_report_err(err);
            ok = false;
            n = 0;
            paths = NULL;
        }
        for (size_t i = 0; i < n; i++) {
            ok = sync_one(c, paths[i]) && ok;
            free(paths[i]);
        }
        free(paths);
    }
    catalog_close(c);
    return ok ? EXIT_OK : EXIT_FAIL;
}

int cmd_catalog(int argc, char **argv)
{
    const char *override = NULL;
    bool json = false, header = false;
    char *rest[256];
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--catalog") == 0 && i + 1 < argc) {
            override = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--header") == 0) {
            header = true;
        } else if (strcmp(argv[i], "--catalog") == 0) {
            return cli_usage_error(self(), "option '--catalog' needs an "
                                   "argument");
        } else if (nrest < 256) {
            rest[nrest++] = argv[i];
        }
    }
    if (nrest < 1) {
        return cli_usage_error(self(), "missing subcommand (query or sync)");
    }
    char *path = catalog_choose_path(override);
    if (!path) {
        fprintf(stderr, "hop catalog: the catalog is turned off "
                "(HOP_CATALOG is empty or 'none')\n");
        return EXIT_FAIL;
    }
    int rc;
    if (strcmp(rest[0], "query") == 0) {
        rc = do_query(path, nrest - 1, rest + 1, json, header);
    } else if (strcmp(rest[0], "sync") == 0) {
        rc = do_sync(path, nrest - 1, rest + 1);
    } else {
        rc = cli_usage_error(self(), "unknown subcommand '%s' (query or "
                             "sync)", rest[0]);
    }
    free(path);
    return rc;
}
