/* hop catalog: query and rebuild the snapshot catalog. */
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
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
            json_object_set_new(o, names[i],
                                v[i] ? json_string(v[i]) : json_null());
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
    struct query_out q = { .json = json,
                           .header = header,
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
               "keeps its own catalog entries)\n",
               image);
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

struct catalog_args {
    const char *catalog; /* --catalog PATH */
    bool json;
    bool header;
    char *rest[256]; /* the subcommand and its words */
    int nrest;
};

#define FIELD(member) .field = offsetof(struct catalog_args, member)
#define OPT_CATALOG                                                            \
    {                                                                          \
        .name = "--catalog", .arg = CLI_ARG_FILE, .metavar = "PATH",           \
        .store = CLI_STORE_STRING, FIELD(catalog), .help = CLI_CATALOG_HELP,   \
        .man = "The catalog (default\n.BR $HOP_CATALOG ,\nelse\n"              \
               ".BR $XDG_DATA_HOME/hop/catalog.db ).\n"                        \
    }
#define OPTIONS(...) ((const struct cli_option[]){ __VA_ARGS__, { NULL } })

/* Options may come anywhere, before the subcommand too; what is not one
 * of them (any subcommand's) is a word of the subcommand. */
const struct cli_command cli_catalog_subcommands[] = {
    { .name = "query",
      .operands = CLI_ARG_TEXT,
      .operand_usage = "SQL",
      .options = OPTIONS({ .name = "--json",
                           .arg = CLI_ARG_NONE,
                           .store = CLI_STORE_FLAG,
                           FIELD(json) },
                         { .name = "--header",
                           .arg = CLI_ARG_NONE,
                           .store = CLI_STORE_FLAG,
                           FIELD(header) },
                         OPT_CATALOG),
      .help = "    Run one read-only SQL statement on the catalog (tables "
              "images, snapshots,\n    sections; view snapshot_sections; "
              "see hop(1)).  Rows print as a|b|c.\n",
      .man =
          "Run one read-only SQL statement on the snapshot catalog (opened "
          "read-only;\n"
          "statements that would write are refused) and print the rows as\n"
          ".IR a|b|c ,\n"
          "or as a JSON array of objects.\n"
          "The catalog is an sqlite database with the tables\n"
          ".B images\n"
          "(id, path, format, virtual_size, updated),\n"
          ".B snapshots\n"
          "(id, image_id, snapshot_id, name, vm_state_size, date_sec, "
          "date_nsec,\n"
          "vm_clock_ns, icount, disk_size, machine, ram_size, sections_known) "
          "and\n"
          ".B sections\n"
          "(snapshot, idstr, instance, version, size: the device sections "
          "each\n"
          "snapshot's state holds, with their bytes in the stream), and the "
          "view\n"
          ".B snapshot_sections\n"
          "(image, snapshot, id, idstr, instance, version, size).\n"
          "For instance, the snapshots holding serial state older than "
          "version 3:\n"
          ".RS\n"
          ".IP\n"
          ".nf\n"
          "hop catalog query \"SELECT image, snapshot FROM snapshot_sections\n"
          "    WHERE idstr = 'serial' AND version < 3\"\n"
          ".fi\n"
          ".RE\n" },
    { .name = "sync",
      .operands = CLI_ARG_FILE,
      .operand_usage = "[PATH...]",
      .options = OPTIONS(OPT_CATALOG),
      .help = "    Rebuild the catalog's entries for these images (default: "
              "every image it\n    knows; images that are gone are "
              "dropped) by reading each snapshot's state.\n"
              "    An image a running writer holds is skipped with a note "
              "(\"PATH: skipped: ...\"):\n    a running hop machine keeps "
              "its own entries up to date.\n",
      .man =
          "Rebuild the catalog's entries for these images from the images "
          "themselves\n"
          "(each snapshot's state is read and its section headers walked; "
          "QEMU's\n"
          "images too); without\n"
          ".IR PATH ,\n"
          "for every image the catalog knows, dropping those that are gone.\n"
          "The images are the truth; the catalog is an index.\n"
          "It is written in one transaction per image after the image is "
          "durable,\n"
          "and several hop processes may share it (sqlite WAL journal, busy "
          "timeout).\n"
          "An image a running writer holds (a machine using it, hop's or "
          "QEMU's) is\n"
          "not read \\(em its snapshots may be changing \\(em but skipped "
          "with the line\n"
          ".IB PATH \": skipped: in use by a running writer\" ...;\n"
          "a hop machine notes its own\n"
          ".B savevm\n"
          "and\n"
          ".B delvm\n"
          "in the catalog.\n"
          "A skipped image is no failure: the exit status is 0 unless an "
          "image could\n"
          "not be synced for another reason (then 1, after the others are "
          "done).\n" },
    { .name = NULL }
};

static int word(const struct cli_command *cmd, void *target, const char *w)
{
    struct catalog_args *a = target;
    if (a->nrest < 256) {
        a->rest[a->nrest++] = (char *)w;
    }
    return -1;
}

int cmd_catalog(int argc, char **argv)
{
    struct catalog_args a = { .nrest = 0 };
    const struct cli_option *tables[4];
    cli_subcommand_tables(cli_catalog_subcommands, tables, 4);
    const struct cli_parser p = {
        .cmd = self(),
        .tables = tables,
        .target = &a,
        .unknown_is_operand = true,
        .operand = word,
    };
    int prc = cli_parse_options(&p, argc, argv, 1);
    if (prc >= 0) {
        return prc;
    }
    const char *override = a.catalog;
    bool json = a.json, header = a.header;
    char **rest = a.rest;
    int nrest = a.nrest;
    if (nrest < 1) {
        return cli_usage_error(self(), "missing subcommand (query or sync)");
    }
    char *path = catalog_choose_path(override);
    if (!path) {
        fprintf(stderr,
                "hop catalog: the catalog is turned off "
                "(HOP_CATALOG is empty or 'none')\n");
        return EXIT_FAIL;
    }
    int rc;
    if (strcmp(rest[0], "query") == 0) {
        rc = do_query(path, nrest - 1, rest + 1, json, header);
    } else if (strcmp(rest[0], "sync") == 0) {
        rc = do_sync(path, nrest - 1, rest + 1);
    } else {
        rc = cli_usage_error(self(),
                             "unknown subcommand '%s' (query or "
                             "sync)",
                             rest[0]);
    }
    free(path);
    return rc;
}
