/* hop snapshot: list, show, delete, save and load snapshots from the
 * command line. */
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"
#include "cli/cli.h"
#include "cli/qmp-client.h"
#include "snapshot/catalog-index.h"
#include "snapshot/catalog.h"
#include "snapshot/savevm.h"
#include "snapshot/sections.h"
#include "snapshot/table.h"
#include "util/alloc.h"

static const struct cli_command *self(void)
{
    return cli_find_command("snapshot");
}

struct snap_args {
    bool json;
    bool force_share; /* -U: read an image a writer holds */
    bool background;  /* save: while the guest runs */
    const char *catalog;
    const char *monitor;
    const char *pos[64];
    int npos;
};

#define FIELD(member) .field = offsetof(struct snap_args, member)
#define OPT_FORCE_SHARE                                                        \
    {                                                                          \
        .name = "-U", .alias = "--force-share", .arg = CLI_ARG_NONE,           \
        .store = CLI_STORE_FLAG, FIELD(force_share),                           \
        .help = "list and show: read an image a running machine (or another\n" \
                "writer) holds, as qemu-img -U; without it such an image is\n" \
                "refused with \"in use by another process\"",                  \
        .man =                                                                 \
            ".BR list \" and \" show :\n"                                      \
            "read an image a running machine (or another writer) holds, as\n"  \
            ".BR \"qemu-img -U\" ;\n"                                          \
            "without it such an image is refused with\n"                       \
            ".RI \"\"\"image '\" FILE \"' is in use by another process\"\"\" " \
            ".\n"                                                              \
            "The other subcommands refuse it (exit 2).\n"                      \
    }
#define OPT_JSON                                                               \
    {                                                                          \
        .name = "--json", .arg = CLI_ARG_NONE, .store = CLI_STORE_FLAG,        \
        FIELD(json)                                                            \
    }
#define OPT_CATALOG                                                            \
    {                                                                          \
        .name = "--catalog", .arg = CLI_ARG_FILE, .metavar = "PATH",           \
        .store = CLI_STORE_STRING, FIELD(catalog), .help = CLI_CATALOG_HELP,   \
        .man = "The catalog to use (list, delete).\n"                          \
    }
#define OPT_MONITOR                                                            \
    {                                                                          \
        .name = "--monitor", .arg = CLI_ARG_MONITOR, .metavar = "unix:PATH",   \
        .store = CLI_STORE_STRING, FIELD(monitor)                              \
    }
#define OPT_BACKGROUND                                                         \
    {                                                                          \
        .name = "--background", .alias = "-b", .arg = CLI_ARG_NONE,            \
        .store = CLI_STORE_FLAG, FIELD(background),                            \
        .help = "save: the guest runs on while its RAM is written (savevm\n"   \
                "-b: it pauses only to keep the disks and take the devices'\n" \
                "state; needs userfaultfd)",                                   \
        .man = ".BR save :\n"                                                  \
               "the guest runs on while its RAM is written, as\n"              \
               ".B savevm \\-b\n"                                              \
               "(QMP\n"                                                        \
               ".BR snapshot\\-save \" with \" \"\\(dqx\\-background\\(dq: "   \
               "true\" );\n"                                                   \
               "it pauses only while the disks are kept and the devices'\n"    \
               "state is taken (under kvm it needs userfaultfd).  The other\n" \
               "subcommands\n"                                                 \
               "refuse it (exit 2).\n"                                         \
    }
#define OPTIONS(...) ((const struct cli_option[]){ __VA_ARGS__, { NULL } })

/* Every subcommand's options are read for all of them (a value that does
 * not apply is ignored), so one parse serves the five. */
const struct cli_command cli_snapshot_subcommands[] = {
    { .name = "list",
      .operands = CLI_ARG_FILE,
      .operand_usage = "[IMAGE...]",
      .options = OPTIONS(OPT_FORCE_SHARE, OPT_JSON, OPT_CATALOG),
      .help = "    The snapshots of the images given, or of every image in "
              "the catalog.\n",
      .man =
          "List the snapshots of the images given (read from the images), or "
          "of "
          "every\n"
          "image in the catalog.\n"
          "The table is qemu-img's: ID, TAG, VM SIZE, DATE, VM CLOCK, ICOUNT, "
          "under\n"
          "each image's path;\n"
          ".B \\-\\-json\n"
          "prints [{\\fBimage\\fR, \\fBsnapshots\\fR: [{\\fBid\\fR, "
          "\\fBname\\fR,\n"
          "\\fBvm\\-state\\-size\\fR, \\fBdate\\-sec\\fR, "
          "\\fBdate\\-nsec\\fR,\n"
          "\\fBvm\\-clock\\-sec\\fR, \\fBvm\\-clock\\-nsec\\fR[, "
          "\\fBicount\\fR]}]}].\n" },
    { .name = "show",
      .operands = CLI_ARG_FILE,
      .operand_usage = "IMAGE TAG",
      .options = OPTIONS(OPT_FORCE_SHARE, OPT_JSON, OPT_CATALOG),
      .help = "    A snapshot's metadata and the device sections its state "
              "holds (idstr,\n    instance, version, size), read from the "
              "image.\n",
      .man =
          "A snapshot's metadata (id, tag, state size, date, VM clock, disk "
          "size),\n"
          "the machine type and RAM size its state names, and the device "
          "sections it\n"
          "holds (idstr, instance, version, bytes), read from the image.\n" },
    { .name = "delete",
      .operands = CLI_ARG_FILE,
      .operand_usage = "IMAGE TAG",
      .options = OPTIONS(OPT_CATALOG),
      .help = "    Delete a snapshot from an image no machine is using.\n",
      .man = "Delete a snapshot from an image no running machine uses; the "
             "catalog\n"
             "follows.\n" },
    { .name = "save",
      .operands = CLI_ARG_TEXT,
      .synopsis = "[TAG] [--background] --monitor unix:PATH",
      .options = OPTIONS(OPT_MONITOR, OPT_CATALOG, OPT_BACKGROUND) },
    { .name = "load",
      .operands = CLI_ARG_TEXT,
      .synopsis = "TAG --monitor unix:PATH",
      .options = OPTIONS(OPT_MONITOR, OPT_CATALOG),
      .help = "    savevm / loadvm, over QMP, in the running hop whose -qmp "
              "or -monitor\n    socket is PATH.\n",
      .man = "Run\n"
             ".B snapshot\\-save\n"
             "or\n"
             ".B snapshot\\-load\n"
             "(savevm, loadvm) over QMP in the running hop whose\n"
             ".B \\-qmp\n"
             "or\n"
             ".B \\-monitor\n"
             "socket is\n"
             ".I PATH\n"
             "(a monitor socket turns to QMP for it), wait for the job to\n"
             "conclude and dismiss it; exit 0 if it succeeded, or print its\n"
             "error and exit 1.\n"
             "Without\n"
             ".I TAG\n"
             ".B save\n"
             "names the snapshot as savevm does.\n" },
    { .name = NULL }
};

static int positional(const struct cli_command *cmd, void *target,
                      const char *word)
{
    struct snap_args *a = target;
    if (a->npos == 64) {
        return cli_usage_error(cmd, "too many arguments");
    }
    a->pos[a->npos++] = word;
    return -1;
}

/* The words after the subcommand, whichever it is. */
static int parse(int argc, char **argv, struct snap_args *a)
{
    const struct cli_option *tables[8];
    cli_subcommand_tables(cli_snapshot_subcommands, tables, 8);
    const struct cli_parser p = {
        .cmd = self(),
        .tables = tables,
        .target = a,
        .operand = positional,
    };
    return cli_parse_options(&p, argc, argv, 2);
}

/* ---- list ---- */

struct image_list {
    char *image;
    struct blk_snapshot *snaps;
    size_t n;
};

static void print_lists(const struct image_list *l, size_t n, bool json)
{
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_array();
            for (size_t j = 0; j < l[i].n; j++) {
                json_array_append_new(s, snapshot_info_json(&l[i].snaps[j]));
            }
            json_array_append_new(
                arr,
                json_pack("{s:s,s:o}", "image", l[i].image, "snapshots", s));
        }
        json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(arr);
        return;
    }
    char line[1400];
    for (size_t i = 0; i < n; i++) {
        printf("%s%s:\n", i ? "\n" : "", l[i].image);
        snapshot_table_header(line, sizeof(line));
        printf("%s\n", line);
        for (size_t j = 0; j < l[i].n; j++) {
            snapshot_table_row(&l[i].snaps[j], NULL, line, sizeof(line));
            printf("%s\n", line);
        }
    }
}

/* Opens an image to read, sharing it with a writer for -U. */
static BlockDev *open_to_read(const struct snap_args *a, const char *image,
                              Error **errp)
{
    return blk_open_flags(image, NULL,
                          a->force_share ? BLK_OPEN_FORCE_SHARE : 0, errp);
}

static bool list_from_images(const struct snap_args *a, struct image_list *l,
                             size_t *n)
{
    bool ok = true;
    for (int i = 0; i < a->npos; i++) {
        Error *err = NULL;
        BlockDev *bs = open_to_read(a, a->pos[i], &err);
        struct image_list *e = &l[*n];
        if (!bs || !blk_snapshot_list(bs, &e->snaps, &e->n, &err)) {
            error_report_err(err);
            ok = false;
        } else {
            e->image = xstrdup(a->pos[i]);
            (*n)++;
        }
        if (bs) {
            blk_close(bs);
        }
    }
    return ok;
}

struct catalog_rows {
    struct image_list *lists;
    size_t n, cap;
};

static void catalog_row(void *ctx, int ncols, const char *const *names,
                        const char *const *v)
{
    struct catalog_rows *r = ctx;
    if (r->n == 0 || strcmp(r->lists[r->n - 1].image, v[0]) != 0) {
        if (r->n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 8;
            r->lists = xreallocarray(r->lists, r->cap, sizeof(*r->lists));
        }
        r->lists[r->n++] = (struct image_list){ .image = xstrdup(v[0]) };
    }
    struct image_list *l = &r->lists[r->n - 1];
    l->snaps = xreallocarray(l->snaps, l->n + 1, sizeof(*l->snaps));
    if (!v[1]) {
        return; /* an image without snapshots */
    }
    l->snaps[l->n++] = (struct blk_snapshot){
        .id = xstrdup(v[1]),
        .name = xstrdup(v[2]),
        .vm_state_size = strtoull(v[3], NULL, 10),
        .date_sec = (uint32_t)strtoul(v[4], NULL, 10),
        .date_nsec = (uint32_t)strtoul(v[5], NULL, 10),
        .vm_clock_nsec = strtoull(v[6], NULL, 10),
        .icount = v[7] ? strtoll(v[7], NULL, 10) : -1,
        .disk_size = strtoull(v[8], NULL, 10),
    };
}

static bool list_from_catalog(const struct snap_args *a,
                              struct catalog_rows *rows)
{
    char *path = catalog_choose_path(a->catalog);
    if (!path) {
        fprintf(stderr,
                "hop snapshot list: no catalog (HOP_CATALOG is "
                "empty); name the images\n");
        return false;
    }
    Error *err = NULL;
    struct catalog *c = catalog_open(path, true, &err);
    free(path);
    bool ok =
        c &&
        catalog_query(
            c,
            "SELECT i.path, s.snapshot_id, s.name, s.vm_state_size, "
            "s.date_sec, "
            "s.date_nsec, s.vm_clock_ns, s.icount, s.disk_size FROM images i "
            "LEFT JOIN snapshots s ON s.image_id = i.id ORDER BY i.path, "
            "CAST(s.snapshot_id AS INTEGER), s.snapshot_id;",
            catalog_row, rows, &err);
    catalog_close(c);
    if (!ok) {
        error_report_err(err);
    }
    return ok;
}

static int do_list(const struct snap_args *a)
{
    struct image_list il[64];
    size_t n = 0;
    struct catalog_rows rows = { 0 };
    bool ok;
    struct image_list *lists;
    if (a->npos) {
        ok = list_from_images(a, il, &n);
        lists = il;
    } else {
        ok = list_from_catalog(a, &rows);
        lists = rows.lists;
        n = rows.n;
    }
    print_lists(lists, n, a->json);
    for (size_t i = 0; i < n; i++) {
        blk_snapshot_list_free(lists[i].snaps, lists[i].n);
        free(lists[i].image);
    }
    free(rows.lists);
    return ok ? EXIT_OK : EXIT_FAIL;
}

/* ---- show ---- */

static void show_text(const char *image, const struct blk_snapshot *sn,
                      const struct state_summary *sum)
{
    char size[32], date[32], clock[40];
    snapshot_human_size(sn->vm_state_size, size, sizeof(size));
    snapshot_format_date(sn->date_sec, date, sizeof(date));
    snapshot_format_clock(sn->vm_clock_nsec, clock, sizeof(clock));
    printf("image:          %s\n", image);
    printf("id:             %s\n", sn->id);
    printf("tag:            %s\n", sn->name);
    printf("vm state size:  %s (%" PRIu64 " bytes)\n", size, sn->vm_state_size);
    printf("date:           %s\n", date);
    printf("vm clock:       %s\n", clock);
    if (sn->icount != -1) {
        printf("icount:         %" PRId64 "\n", sn->icount);
    }
    printf("disk size:      %" PRIu64 " bytes\n", sn->disk_size);
    if (!sum) {
        printf("machine state:  none (disk-only snapshot)\n");
        return;
    }
    snapshot_human_size(sum->ram_size, size, sizeof(size));
    printf("machine:        %s\n", sum->machine[0] ? sum->machine : "-");
    printf("ram:            %s\n", size);
    printf("devices:\n  %-24s %8s %7s %12s\n", "IDSTR", "INSTANCE", "VERSION",
           "SIZE");
    for (size_t i = 0; i < sum->nsections; i++) {
        const struct state_section *e = &sum->sections[i];
        printf("  %-24s %8u %7u %12" PRIu64 "\n", e->idstr, e->instance,
               e->version, e->size);
    }
}

static void show_json(const char *image, const struct blk_snapshot *sn,
                      const struct state_summary *sum)
{
    json_t *o = snapshot_info_json(sn);
    json_object_set_new(o, "image", json_string(image));
    json_object_set_new(o, "disk-size",
                        json_integer((json_int_t)sn->disk_size));
    if (sum) {
        json_object_set_new(o, "machine", json_string(sum->machine));
        json_object_set_new(o, "ram-size",
                            json_integer((json_int_t)sum->ram_size));
        json_t *d = json_array();
        for (size_t i = 0; i < sum->nsections; i++) {
            const struct state_section *e = &sum->sections[i];
            json_array_append_new(
                d,
                json_pack("{s:s,s:I,s:I,s:I}", "idstr", e->idstr, "instance",
                          (json_int_t)e->instance, "version",
                          (json_int_t)e->version, "size", (json_int_t)e->size));
        }
        json_object_set_new(o, "sections", d);
    }
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(o);
}

static int do_show(const struct snap_args *a)
{
    if (a->npos != 2) {
        return cli_usage_error(self(), "show needs IMAGE TAG");
    }
    Error *err = NULL;
    BlockDev *bs = open_to_read(a, a->pos[0], &err);
    struct blk_snapshot sn = { 0 };
    struct state_summary sum = { 0 };
    bool ok = bs && blk_snapshot_find(bs, a->pos[1], &sn, &err) &&
        (sn.vm_state_size == 0 || snapshot_summarise(bs, &sn, &sum, &err));
    if (ok) {
        const struct state_summary *s = sn.vm_state_size ? &sum : NULL;
        if (a->json) {
            show_json(a->pos[0], &sn, s);
        } else {
            show_text(a->pos[0], &sn, s);
        }
    } else {
        error_prepend(&err, "%s: ", a->pos[0]);
        error_report_err(err);
    }
    state_summary_free(&sum);
    blk_snapshot_clear(&sn);
    if (bs) {
        blk_close(bs);
    }
    return ok ? EXIT_OK : EXIT_FAIL;
}

/* ---- delete (offline) ---- */

static int do_delete(const struct snap_args *a)
{
    if (a->npos != 2) {
        return cli_usage_error(self(), "delete needs IMAGE TAG");
    }
    Error *err = NULL;
    BlockDev *bs = blk_open(a->pos[0], NULL, false, &err);
    bool ok =
        bs && blk_snapshot_delete(bs, a->pos[1], &err) && blk_flush(bs, &err);
    if (!ok) {
        error_prepend(&err, "%s: ", a->pos[0]);
        error_report_err(err);
    } else {
        char *path = catalog_choose_path(a->catalog);
        if (!catalog_note_image_at(path, bs, NULL, NULL, &err)) {
            error_prepend(&err, "warning: the catalog was not updated: ");
            error_report_err(err);
        }
        free(path);
    }
    if (bs) {
        blk_close(bs);
    }
    return ok ? EXIT_OK : EXIT_FAIL;
}

/* ---- save / load through a running hop ---- */

/* The status of job id in query-jobs' answer, and its error if it has
 * one; NULL if the list does not hold it. */
static const char *job_status(json_t *jobs, const char *id, const char **error)
{
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        if (strcmp(json_string_value(json_object_get(j, "id")) ?: "", id) ==
            0) {
            *error = json_string_value(json_object_get(j, "error"));
            return json_string_value(json_object_get(j, "status"));
        }
    }
    return NULL;
}

/* Runs a snapshot job to its end, as a QEMU client does: start it, wait
 * until it concluded, take its error, dismiss it. */
static bool run_job(struct qmp_conn *c, const char *cmd, const char *tag,
                    bool background, Error **errp)
{
    char *id = xasprintf("hop-snapshot-%ld", (long)getpid());
    json_t *args = json_pack("{s:s,s:s}", "job-id", id, "tag", tag);
    if (background) {
        json_object_set_new(args, "x-background", json_true());
    }
    json_t *r = qmp_conn_execute(c, cmd, args, errp);
    bool ok = r != NULL, done = false;
    json_decref(r);
    while (ok && !done) {
        json_t *jobs = qmp_conn_execute(c, "query-jobs", NULL, errp);
        const char *error = NULL;
        const char *st = jobs ? job_status(jobs, id, &error) : NULL;
        if (jobs && !st) {
            error_setg(errp, "job '%s' is gone from query-jobs", id);
        }
        ok = st != NULL;
        done = ok && strcmp(st, "concluded") == 0;
        if (done && error) {
            error_setg(errp, "%s", error);
            ok = false;
        }
        json_decref(jobs);
        if (ok && !done) {
            nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
        }
    }
    if (done) {
        json_decref(qmp_conn_execute(c, "job-dismiss",
                                     json_pack("{s:s}", "id", id), NULL));
    }
    free(id);
    return ok;
}

/* snapshot-save or snapshot-load over QMP; without a tag, savevm's
 * default name (made here, as the machine would). */
static int do_remote(const struct snap_args *a, const char *cmd)
{
    bool save = strcmp(cmd, "snapshot-save") == 0;
    if (a->npos != 1 && !(a->npos == 0 && save)) {
        return cli_usage_error(self(), "%s needs TAG", save ? "save" : "load");
    }
    if (!a->monitor) {
        return cli_usage_error(self(),
                               "--monitor unix:PATH is required "
                               "(the running hop's -qmp or -monitor socket)");
    }
    char tag[64];
    if (a->npos == 0) {
        snapshot_default_tag(tag, sizeof(tag));
    }
    Error *err = NULL;
    struct qmp_conn *c = qmp_conn_open(a->monitor, &err);
    bool ok =
        c && run_job(c, cmd, a->npos ? a->pos[0] : tag, a->background, &err);
    qmp_conn_close(c);
    if (!ok) {
        error_report_err(err);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cmd_snapshot(int argc, char **argv)
{
    if (argc < 2) {
        return cli_usage_error(self(),
                               "missing subcommand (list, show, "
                               "delete, save or load)");
    }
    struct snap_args a = { 0 };
    int rc = parse(argc, argv, &a);
    if (rc >= 0) {
        return rc;
    }
    const char *sub = argv[1];
    if (a.force_share && strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0) {
        return cli_usage_error(self(),
                               "-U (--force-share) goes with list "
                               "and show: only a reader may share an image "
                               "with its writer");
    }
    if (a.background && strcmp(sub, "save") != 0) {
        return cli_usage_error(self(),
                               "--background goes with save: only a save "
                               "can be made while the guest runs");
    }
    if (strcmp(sub, "list") == 0) {
        return do_list(&a);
    } else if (strcmp(sub, "show") == 0) {
        return do_show(&a);
    } else if (strcmp(sub, "delete") == 0) {
        return do_delete(&a);
    } else if (strcmp(sub, "save") == 0) {
        return do_remote(&a, "snapshot-save");
    } else if (strcmp(sub, "load") == 0) {
        return do_remote(&a, "snapshot-load");
    }
    return cli_usage_error(self(),
                           "unknown subcommand '%s' (list, show, "
                           "delete, save or load)",
                           sub);
}
