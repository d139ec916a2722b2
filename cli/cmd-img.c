/* hop img: create, inspect, check, snapshot and convert disk images, in
 * qemu-img's habits (same options, same output shapes, same exit codes). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "block/block.h"
#include "cli/cli.h"
#include "snapshot/table.h"
#include "util/alloc.h"
#include "util/parse.h"

static const struct cli_command *self(void)
{
    return cli_find_command("img");
}

static BlockDev *open_image(const char *file, const char *fmt, unsigned flags)
{
    Error *err = NULL;
    BlockDev *bs = blk_open_flags(file, fmt, flags, &err);
    if (!bs) {
        error_report_err(err);
    }
    return bs;
}

/* The options that open an image read-only: -U lets it be read while
 * another process writes it, as qemu-img -U. */
static unsigned read_flags(bool force_share)
{
    return force_share ? BLK_OPEN_FORCE_SHARE : 0;
}

/* A snapshot table entry that cannot be used gets a warning where the
 * snapshots are listed. */
static void warn_unusable(BlockDev *bs, const struct blk_snapshot *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Error *err = NULL;
        if (!blk_snapshot_check(bs, l[i].id, &err)) {
            error_prepend(&err, "warning: ");
            error_report_err(err);
        }
    }
}

/* What the subcommands' options set. */
struct img_args {
    const char *sub;         /* the subcommand, for messages */
    const char *fmt;         /* -f */
    const char *out_fmt;     /* convert -O */
    const char *opts;        /* -o */
    const char *backing;     /* create -b */
    const char *backing_fmt; /* create -F */
    const char *snap;        /* convert -l */
    bool json;               /* --output=json */
    bool force_share;        /* -U */
    bool backing_chain;      /* info --backing-chain */
    bool no_create;          /* convert -n */
    char op;                 /* snapshot: 'l', 'c', 'a' or 'd' */
    const char *tag;         /* snapshot's TAG */
};

/* getopt's code for an option: its letter, or past 255 for a long one. */
static int option_val(const struct cli_option *opts, const struct cli_option *o)
{
    return o->name[1] != '-' ? (unsigned char)o->name[1]
                             : 256 + (int)(o - opts);
}

static const struct cli_option *option_by_val(const struct cli_option *opts,
                                              int val)
{
    for (const struct cli_option *o = opts; o->name; o++) {
        if (option_val(opts, o) == val) {
            return o;
        }
    }
    return NULL;
}

static int bad_option(const struct cli_option *opts, char **argv)
{
    const struct cli_option *o = optopt ? option_by_val(opts, optopt) : NULL;
    if (o && o->name[1] == '-') {
        return cli_usage_error(self(),
                               "%s: unknown option or missing value "
                               "'%s'",
                               argv[0], o->name);
    }
    if (optopt) {
        return cli_usage_error(self(),
                               "%s: unknown option or missing value "
                               "'-%c'",
                               argv[0], optopt);
    }
    return cli_usage_error(self(), "%s: unknown option '%s'", argv[0],
                           argv[optind - 1]);
}

/* getopt's letters ("f:o:") and long options from a table; the arrays
 * hold a subcommand's few options with room to spare. */
struct getopt_spec {
    char shorts[64];
    struct option longs[32];
};

static void build_getopt(const struct cli_option *opts, struct getopt_spec *g)
{
    size_t ns = 0, nl = 0;
    for (const struct cli_option *o = opts;
         o->name && ns + 3 < sizeof(g->shorts) &&
         nl + 3 < sizeof(g->longs) / sizeof(g->longs[0]);
         o++) {
        int val = option_val(opts, o);
        int has_arg = o->arg != CLI_ARG_NONE ? required_argument : no_argument;
        if (val < 256) {
            g->shorts[ns++] = (char)val;
            if (has_arg) {
                g->shorts[ns++] = ':';
            }
        } else {
            g->longs[nl++] = (struct option){ o->name + 2, has_arg, NULL, val };
        }
        if (o->alias) {
            g->longs[nl++] =
                (struct option){ o->alias + 2, has_arg, NULL, val };
        }
    }
    g->shorts[ns] = '\0';
    g->longs[nl] = (struct option){ 0 };
}

/* Options as qemu-img reads them (getopt_long: -fqcow2, -lU, --output=json,
 * --force), with getopt's letters and long names made from the
 * subcommand's table.  argv[0] is the subcommand; the operands are left
 * at argv[optind...].  Returns -1 when all is well, else the exit code. */
static int parse_img_options(int argc, char **argv, struct img_args *a)
{
    const struct cli_command *sub = cli_img_subcommands;
    while (sub->name && strcmp(sub->name, argv[0]) != 0) {
        sub++;
    }
    const struct cli_option *opts = sub->options;
    struct getopt_spec g;
    build_getopt(opts, &g);
    a->sub = argv[0];
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, g.shorts, g.longs, NULL)) != -1) {
        const struct cli_option *o = c == '?' ? NULL : option_by_val(opts, c);
        if (!o) {
            return bad_option(opts, argv);
        }
        int rc = cli_apply_option(self(), o, a, optarg);
        if (rc >= 0) {
            return rc;
        }
    }
    return -1;
}

/* ---- create ---- */

/* create -b FILE -F FMT: the backing file is opened as the new image
 * will open it (relative to the image's directory) to check it, and
 * gives the size when none is given; both go to the driver as qemu-img's
 * -o backing_file and backing_fmt. */
static int backing_options(const struct img_args *a, const char *file,
                           bool have_size, uint64_t *size, char **opts)
{
    if (!a->backing_fmt) {
        error_report("create: '%s': -b needs -F (the backing file's format, "
                     "as qemu-img asks)",
                     file);
        return EXIT_FAIL;
    }
    if (strcmp(a->fmt, "qcow2") != 0) {
        error_report("create: '%s': format '%s' has no backing file (qcow2 "
                     "has)",
                     file, a->fmt);
        return EXIT_FAIL;
    }
    char *path = blk_backing_path(file, a->backing);
    Error *err = NULL;
    BlockDev *bs = blk_open(path, a->backing_fmt, true, &err);
    free(path);
    if (!bs) {
        error_prepend(&err, "create: '%s': cannot open backing file: ", file);
        error_report_err(err);
        return EXIT_FAIL;
    }
    if (!have_size) {
        *size = blk_size(bs);
    }
    blk_close(bs);
    *opts =
        xasprintf("backing_file=%s,backing_fmt=%s%s%s", a->backing,
                  a->backing_fmt, a->opts ? "," : "", a->opts ? a->opts : "");
    return -1;
}

static int img_create(int argc, char **argv)
{
    struct img_args a = { .fmt = "qcow2" };
    int rc = parse_img_options(argc, argv, &a);
    if (rc >= 0) {
        return rc;
    }
    const char *fmt = a.fmt;
    int operands = argc - optind;
    if (operands != 2 && !(a.backing && operands == 1)) {
        return cli_usage_error(self(),
                               a.backing ? "create: expected FILE [SIZE]"
                                         : "create: expected FILE SIZE");
    }
    if (a.backing_fmt && !a.backing) {
        return cli_usage_error(self(), "create: -F goes with -b");
    }
    const char *file = argv[optind];
    uint64_t size = 0;
    if (operands == 2 && !parse_size(argv[optind + 1], 1, &size)) {
        return cli_usage_error(self(),
                               "create: invalid size '%s' (use a "
                               "number with an optional K, M, G or T suffix)",
                               argv[optind + 1]);
    }
    if (strcmp(fmt, "qcow2") != 0 && strcmp(fmt, "raw") != 0) {
        return cli_usage_error(self(),
                               "create: unknown format '%s' (qcow2 "
                               "or raw)",
                               fmt);
    }
    char *opts = a.opts ? xstrdup(a.opts) : NULL;
    if (a.backing) {
        free(opts);
        opts = NULL;
        rc = backing_options(&a, file, operands == 2, &size, &opts);
        if (rc >= 0) {
            return rc;
        }
    }
    Error *err = NULL;
    bool ok = blk_create(file, fmt, size, opts, &err);
    free(opts);
    if (!ok) {
        error_report_err(err);
        return EXIT_FAIL;
    }
    char hs[32];
    snapshot_human_size(size, hs, sizeof(hs));
    printf("Formatting '%s', fmt=%s size=%" PRIu64 " (%s)", file, fmt, size,
           hs);
    if (a.backing) {
        printf(" backing_file=%s backing_fmt=%s", a.backing, a.backing_fmt);
    }
    printf("\n");
    return EXIT_OK;
}

/* ---- snapshot listing (shared by info and snapshot -l) ---- */

static void print_snapshot_table(const struct blk_snapshot *l, size_t n)
{
    char line[512];
    snapshot_table_header(line, sizeof(line));
    printf("%s\n", line);
    for (size_t i = 0; i < n; i++) {
        snapshot_table_row(&l[i], NULL, line, sizeof(line));
        printf("%s\n", line);
    }
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(o);
}

/* ---- info ---- */

/* info and check: --output human|json, -U, one FILE. */
static int parse_output_opt(int argc, char **argv, bool *json,
                            bool *force_share)
{
    struct img_args a = { .json = false };
    int rc = parse_img_options(argc, argv, &a);
    if (rc >= 0) {
        return rc;
    }
    if (argc - optind != 1) {
        return cli_usage_error(self(), "%s: expected one FILE", argv[0]);
    }
    *json = a.json;
    *force_share = a.force_share;
    return -1;
}

static int opt_output(const struct cli_command *cmd,
                      const struct cli_option *opt, void *target, const char *v)
{
    struct img_args *a = target;
    if (strcmp(v, "json") == 0) {
        a->json = true;
    } else if (strcmp(v, "human") != 0) {
        return cli_usage_error(cmd,
                               "%s: --output is 'human' or 'json', not "
                               "'%s'",
                               a->sub, v);
    }
    return -1;
}

/* As qemu-img: the name as the header has it, and the path it was
 * opened at when that differs. */
static void print_backing(const struct blk_info *info)
{
    if (!info->backing_file) {
        return;
    }
    printf("backing file: %s", info->backing_file);
    if (strcmp(info->backing_file, info->full_backing_file) != 0) {
        printf(" (actual path: %s)", info->full_backing_file);
    }
    printf("\n");
    if (info->backing_format[0]) {
        printf("backing file format: %s\n", info->backing_format);
    }
}

/* One image's info, printed (human) or appended to out (JSON); *next is
 * then the path of its backing file (and *next_fmt the format its header
 * names, or NULL), for --backing-chain. */
static bool image_info(const char *file, const char *fmt, unsigned flags,
                       json_t *out, char **next, char **next_fmt)
{
    *next = *next_fmt = NULL;
    BlockDev *bs = open_image(file, fmt, flags);
    if (!bs) {
        return false;
    }
    struct stat st;
    uint64_t actual = stat(file, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
    struct blk_info info;
    blk_get_info(bs, &info);
    struct blk_snapshot *snaps = NULL;
    size_t nsnaps = 0;
    if (strcmp(blk_format(bs), "qcow2") == 0) {
        Error *err = NULL;
        if (!blk_snapshot_list(bs, &snaps, &nsnaps, &err)) {
            error_report_err(err);
        }
        warn_unusable(bs, snaps, nsnaps);
    }
    bool qcow2 = info.compat != NULL;
    if (out) {
        json_array_append_new(out, image_info_json(bs, file, snaps, nsnaps));
    } else {
        char vs[32], as[32];
        snapshot_human_size(blk_size(bs), vs, sizeof(vs));
        snapshot_human_size(actual, as, sizeof(as));
        printf("image: %s\nfile format: %s\nvirtual size: %s (%" PRIu64
               " bytes)\ndisk size: %s\n",
               file, blk_format(bs), vs, blk_size(bs), as);
        if (info.cluster_size) {
            printf("cluster_size: %" PRIu64 "\n", info.cluster_size);
        }
        print_backing(&info);
        if (nsnaps) {
            printf("Snapshot list:\n");
            print_snapshot_table(snaps, nsnaps);
        }
        if (qcow2) {
            printf("Format specific information:\n"
                   "    compat: %s\n    compression type: %s\n"
                   "    lazy refcounts: %s\n    refcount bits: %u\n"
                   "    corrupt: %s\n    extended l2: %s\n",
                   info.compat, info.compression,
                   info.lazy_refcounts ? "true" : "false", info.refcount_bits,
                   info.corrupt ? "true" : "false",
                   info.extended_l2 ? "true" : "false");
        }
    }
    if (info.backing_file) {
        *next = xstrdup(info.full_backing_file);
        *next_fmt =
            info.backing_format[0] ? xstrdup(info.backing_format) : NULL;
    }
    blk_snapshot_list_free(snaps, nsnaps);
    blk_close(bs);
    return true;
}

static int img_info(int argc, char **argv)
{
    struct img_args a = { .json = false };
    int rc = parse_img_options(argc, argv, &a);
    if (rc >= 0) {
        return rc;
    }
    if (argc - optind != 1) {
        return cli_usage_error(self(), "info: expected one FILE");
    }
    /* --backing-chain: each image, then its backing file, as qemu-img
     * (the chain was checked, loops and depth, when the first opened). */
    json_t *list = a.json ? json_array() : NULL;
    char *file = xstrdup(argv[optind]), *fmt = NULL;
    bool ok = true;
    for (bool first = true; ok && file; first = false) {
        char *next, *next_fmt;
        if (!first && !list) {
            printf("\n");
        }
        ok = image_info(file, fmt, read_flags(a.force_share), list, &next,
                        &next_fmt);
        free(file);
        free(fmt);
        file = a.backing_chain ? next : NULL;
        fmt = a.backing_chain ? next_fmt : NULL;
        if (!a.backing_chain) {
            free(next);
            free(next_fmt);
        }
    }
    free(file);
    free(fmt);
    if (list && ok) {
        if (a.backing_chain) {
            print_json(list);
        } else {
            print_json(json_incref(json_array_get(list, 0)));
            json_decref(list);
        }
    } else if (list) {
        json_decref(list);
    }
    return ok ? EXIT_OK : EXIT_FAIL;
}

/* ---- check ---- */

static int img_check(int argc, char **argv)
{
    bool json = false, force_share = false;
    int rc = parse_output_opt(argc, argv, &json, &force_share);
    if (rc >= 0) {
        return rc;
    }
    const char *file = argv[optind];
    BlockDev *bs = open_image(file, NULL, read_flags(force_share));
    if (!bs) {
        return EXIT_FAIL;
    }
    struct blk_check_result r;
    Error *err = NULL;
    if (!blk_check(bs, &r, &err)) {
        error_report_err(err);
        blk_close(bs);
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < r.nmessages; i++) {
        fprintf(stderr, "%s\n", r.messages[i]);
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "image-end-offset",
                            json_integer((json_int_t)r.image_end_offset));
        json_object_set_new(o, "total-clusters",
                            json_integer((json_int_t)r.total_clusters));
        json_object_set_new(o, "check-errors",
                            json_integer((json_int_t)r.check_errors));
        if (r.corruptions) {
            json_object_set_new(o, "corruptions",
                                json_integer((json_int_t)r.corruptions));
        }
        if (r.leaks) {
            json_object_set_new(o, "leaks", json_integer((json_int_t)r.leaks));
        }
        if (r.allocated_clusters) {
            json_object_set_new(o, "allocated-clusters",
                                json_integer((json_int_t)r.allocated_clusters));
            json_object_set_new(
                o, "fragmented-clusters",
                json_integer((json_int_t)r.fragmented_clusters));
            json_object_set_new(
                o, "compressed-clusters",
                json_integer((json_int_t)r.compressed_clusters));
        }
        json_object_set_new(o, "filename", json_string(file));
        json_object_set_new(o, "format", json_string(blk_format(bs)));
        print_json(o);
    } else {
        if (!r.corruptions && !r.leaks && !r.check_errors) {
            printf("No errors were found on the image.\n");
        }
        if (r.corruptions) {
            printf("\n%" PRIu64 " errors were found on the image.\nData may "
                   "be corrupted, or further writes to the image may corrupt "
                   "it.\n",
                   r.corruptions);
        }
        if (r.leaks) {
            printf("\n%" PRIu64 " leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n",
                   r.leaks);
        }
        if (r.check_errors) {
            printf("\n%" PRIu64 " internal errors have occurred during the "
                   "check.\n",
                   r.check_errors);
        }
        if (r.total_clusters && r.allocated_clusters) {
            printf("%" PRIu64 "/%" PRIu64 " = %.2f%% allocated, %.2f%% "
                   "fragmented, %.2f%% compressed clusters\n",
                   r.allocated_clusters, r.total_clusters,
                   100.0 * (double)r.allocated_clusters /
                       (double)r.total_clusters,
                   100.0 * (double)r.fragmented_clusters /
                       (double)r.allocated_clusters,
                   100.0 * (double)r.compressed_clusters /
                       (double)r.allocated_clusters);
        }
        printf("Image end offset: %" PRIu64 "\n", r.image_end_offset);
    }
    rc = r.check_errors ? EXIT_FAIL : r.corruptions ? 2 : r.leaks ? 3 : EXIT_OK;
    blk_check_result_free(&r);
    blk_close(bs);
    return rc;
}

/* ---- snapshot ---- */

static int img_snapshot(int argc, char **argv)
{
    struct img_args a = { .op = 0 };
    int rc = parse_img_options(argc, argv, &a);
    if (rc >= 0) {
        return rc;
    }
    char op = a.op;
    const char *tag = a.tag;
    bool force_share = a.force_share;
    if (!op) {
        return cli_usage_error(self(),
                               "snapshot: give one of -l, -c TAG, "
                               "-a TAG, -d TAG");
    }
    if (argc - optind != 1) {
        return cli_usage_error(self(), "snapshot: expected one FILE");
    }
    if (force_share && op != 'l') {
        return cli_usage_error(self(),
                               "snapshot: -U only goes with -l (a "
                               "change needs the image to itself)");
    }
    const char *file = argv[optind];
    BlockDev *bs = open_image(
        file, NULL, op == 'l' ? read_flags(force_share) : BLK_OPEN_RDWR);
    if (!bs) {
        return EXIT_FAIL;
    }
    Error *err = NULL;
    bool ok = true;
    if (op == 'l') {
        struct blk_snapshot *l;
        size_t n;
        ok = blk_snapshot_list(bs, &l, &n, &err);
        if (ok) {
            printf("Snapshot list:\n");
            print_snapshot_table(l, n);
            fflush(stdout);
            warn_unusable(bs, l, n);
            blk_snapshot_list_free(l, n);
        }
    } else if (op == 'c') {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        struct blk_snapshot sn = {
            .name = (char *)tag,
            .date_sec = (uint32_t)now.tv_sec,
            .date_nsec = (uint32_t)now.tv_nsec,
            .icount = -1,
        };
        ok = blk_snapshot_create(bs, &sn, &err);
    } else if (op == 'a') {
        ok = blk_snapshot_apply(bs, tag, &err);
    } else {
        ok = blk_snapshot_delete(bs, tag, &err);
    }
    if (ok) {
        ok = blk_flush(bs, &err);
    }
    if (!ok) {
        error_report_err(err);
    }
    blk_close(bs);
    return ok ? EXIT_OK : EXIT_FAIL;
}

/* ---- convert ---- */

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

static int img_convert(int argc, char **argv)
{
    struct img_args a = { .out_fmt = "raw" };
    int rc = parse_img_options(argc, argv, &a);
    if (rc >= 0) {
        return rc;
    }
    const char *in_fmt = a.fmt, *out_fmt = a.out_fmt, *opts = a.opts;
    const char *snap = a.snap;
    bool no_create = a.no_create, force_share = a.force_share;
    if (argc - optind != 2) {
        return cli_usage_error(self(), "convert: expected SOURCE TARGET");
    }
    const char *src = argv[optind], *dst = argv[optind + 1];
    BlockDev *in = open_image(src, in_fmt, read_flags(force_share));
    if (!in) {
        return EXIT_FAIL;
    }
    Error *err = NULL;
    /* Before anything is created: writing the target would destroy the
     * source it reads (also through a symbolic or hard link). */
    if (blk_same_file(in, dst)) {
        error_report("convert: '%s' and '%s' are the same file; refusing "
                     "to overwrite the source",
                     src, dst);
        blk_close(in);
        return EXIT_FAIL;
    }
    uint64_t size = blk_size(in);
    if (snap) {
        struct blk_snapshot sn;
        if (!blk_snapshot_check(in, snap, &err) ||
            !blk_snapshot_find(in, snap, &sn, &err)) {
            error_report_err(err);
            blk_close(in);
            return EXIT_FAIL;
        }
        size = sn.disk_size;
        blk_snapshot_clear(&sn);
    }
    if (!no_create && !blk_create(dst, out_fmt, size, opts, &err)) {
        error_report_err(err);
        blk_close(in);
        return EXIT_FAIL;
    }
    BlockDev *out = open_image(dst, no_create ? NULL : out_fmt, BLK_OPEN_RDWR);
    if (!out) {
        blk_close(in);
        return EXIT_FAIL;
    }
    bool ok = true;
    if (blk_size(out) < size) {
        error_setg(&err,
                   "'%s' (%" PRIu64 " bytes) is smaller than '%s' (%" PRIu64
                   " bytes)",
                   dst, blk_size(out), src, size);
        ok = false;
    }
    size_t chunk = 1 << 20;
    uint8_t *buf = xmalloc(chunk);
    for (uint64_t off = 0; ok && off < size; off += chunk) {
        size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
        ok = snap ? blk_snapshot_pread(in, snap, off, buf, n, &err)
                  : blk_pread(in, off, buf, n, &err);
        if (ok && (no_create || !all_zero(buf, n))) {
            ok = blk_pwrite(out, off, buf, n, &err);
        }
    }
    free(buf);
    ok = ok && blk_flush(out, &err);
    if (!ok) {
        error_report_err(err);
    }
    blk_close(out);
    blk_close(in);
    return ok ? EXIT_OK : EXIT_FAIL;
}

/* ---- the subcommands and their options ---- */

/* -l, -c TAG, -a TAG, -d TAG: one of them. */
static int opt_snapshot_op(const struct cli_command *cmd,
                           const struct cli_option *opt, void *target,
                           const char *v)
{
    struct img_args *a = target;
    if (a->op) {
        return cli_usage_error(cmd, "snapshot: give one of -l, -c, -a, -d");
    }
    a->op = opt->name[1];
    a->tag = v;
    return -1;
}

/* -l [snapshot.name=]TAG */
static int opt_convert_snapshot(const struct cli_command *cmd,
                                const struct cli_option *opt, void *target,
                                const char *v)
{
    struct img_args *a = target;
    a->snap = strncmp(v, "snapshot.name=", 14) == 0 ? v + 14 : v;
    return -1;
}

#define FIELD(member) .field = offsetof(struct img_args, member)
#define STRING(member) .store = CLI_STORE_STRING, FIELD(member)
#define FORCE_SHARE                                                            \
    {                                                                          \
        .name = "-U", .alias = "--force-share", .arg = CLI_ARG_NONE,           \
        .store = CLI_STORE_FLAG, FIELD(force_share)                            \
    }
#define OUTPUT                                                                 \
    {                                                                          \
        .name = "--output", .arg = CLI_ARG_OUTPUT, .metavar = "json",          \
        .usage = "--output=json", .store = CLI_STORE_CALL,                     \
        .handle = opt_output                                                   \
    }
#define SNAPSHOT_OP(letter, meta)                                              \
    {                                                                          \
        .name = "-" letter, .arg = (meta) ? CLI_ARG_TEXT : CLI_ARG_NONE,       \
        .metavar = (meta), .store = CLI_STORE_CALL, .handle = opt_snapshot_op  \
    }
#define OPTIONS(...) ((const struct cli_option[]){ __VA_ARGS__, { NULL } })

const struct cli_command cli_img_subcommands[] = {
    { .name = "create",
      .run = img_create,
      .operands = CLI_ARG_FILE,
      .operand_usage = "FILE [SIZE]",
      .options = OPTIONS({ .name = "-f",
                           .arg = CLI_ARG_IMG_FORMAT,
                           .metavar = "qcow2|raw",
                           STRING(fmt) },
                         { .name = "-b",
                           .arg = CLI_ARG_FILE,
                           .metavar = "BACKING",
                           STRING(backing) },
                         { .name = "-F",
                           .arg = CLI_ARG_IMG_FORMAT,
                           .metavar = "qcow2|raw",
                           STRING(backing_fmt) },
                         { .name = "-o",
                           .arg = CLI_ARG_TEXT,
                           .metavar = "cluster_size=N",
                           STRING(opts) }),
      .help = "    Create an image of SIZE bytes (suffixes K, M, G, T).  qcow2 "
              "is version 3 with\n    64 KiB clusters unless -o "
              "cluster_size=N (512 to 2M, a power of two).\n    -b BACKING "
              "-F FMT: a qcow2 image over a backing file (a relative\n    "
              "name is relative to FILE's directory; SIZE defaults to "
              "BACKING's).\n",
      .man = "Create a disk image of\n"
             ".I SIZE\n"
             "bytes (suffixes K, M, G, T: powers of 1024).\n"
             "qcow2 images are version 3 with 64 KiB clusters unless\n"
             ".B cluster_size\n"
             "says otherwise (512 to 2M, a power of two).\n"
             "With\n"
             ".B \\-b\n"
             ".I BACKING\n"
             ".B \\-F\n"
             ".IR FMT ,\n"
             "a qcow2 image whose unwritten clusters read from\n"
             ".I BACKING\n"
             "(opened read-only; a relative name is relative to the new "
             "image's directory,\n"
             "as QEMU reads it), of\n"
             ".IR BACKING 's\n"
             "size unless\n"
             ".I SIZE\n"
             "is given.\n" },
    { .name = "info",
      .run = img_info,
      .operands = CLI_ARG_FILE,
      .operand_usage = "FILE",
      .options = OPTIONS(FORCE_SHARE, OUTPUT,
                         { .name = "--backing-chain",
                           .arg = CLI_ARG_NONE,
                           .store = CLI_STORE_FLAG,
                           FIELD(backing_chain) }),
      .help = "    Format, virtual and disk size, cluster size, backing file, "
              "snapshots.\n",
      .man = "Show the format, virtual and disk size, cluster size, backing "
             "file (and its\n"
             "format), snapshots and qcow2\n"
             "details, with the same fields and JSON keys as\n"
             ".BR \"qemu-img info\" .\n"
             "With\n"
             ".BR \\-\\-backing\\-chain ,\n"
             "the same for every image below it in its backing chain, in "
             "order.\n" },
    { .name = "check",
      .run = img_check,
      .operands = CLI_ARG_FILE,
      .operand_usage = "FILE",
      .options = OPTIONS(FORCE_SHARE, OUTPUT),
      .help = "    Verify a qcow2 image's refcounts and tables.  Exit status: "
              "0 clean, 1 the check\n    failed, 2 corruptions found, 3 only "
              "leaked clusters found.\n",
      .man =
          "Count every reference to every cluster of a qcow2 image and "
          "compare with its\n"
          "refcounts; report clusters referenced more often than counted "
          "(corruption),\n"
          "counted but unused (leaks), and wrong COPIED flags.\n"
          "Each kind of problem is listed at most ten times (a hundred lines "
          "in all);\n"
          "one more line per kind says how many more there were, and the "
          "totals count\n"
          "them all.\n"
          "Exit status as\n"
          ".BR \"qemu-img check\" :\n"
          "0 clean, 1 the check itself failed, 2 corruption found, 3 only "
          "leaks found.\n" },
    { .name = "snapshot",
      .run = img_snapshot,
      .operands = CLI_ARG_FILE,
      .synopsis = "-l [-U]|-c TAG|-a TAG|-d TAG FILE",
      .options = OPTIONS(SNAPSHOT_OP("l", NULL), SNAPSHOT_OP("c", "TAG"),
                         SNAPSHOT_OP("a", "TAG"), SNAPSHOT_OP("d", "TAG"),
                         FORCE_SHARE),
      .help = "    List, create (disk only), apply (revert the disk to) or "
              "delete an internal\n    snapshot; a TAG is a snapshot's name "
              "or ID.\n",
      .man =
          "List the internal snapshots of a qcow2 image (columns ID, TAG, VM "
          "SIZE,\n"
          "DATE, VM CLOCK, ICOUNT), create a disk-only snapshot, apply one "
          "(revert the\n"
          "disk to it) or delete one.\n"
          "A\n"
          ".I TAG\n"
          "is a snapshot's name or, failing that, its ID.\n" },
    { .name = "convert",
      .run = img_convert,
      .operands = CLI_ARG_FILE,
      .operand_usage = "SOURCE TARGET",
      .options = OPTIONS(FORCE_SHARE,
                         { .name = "-f",
                           .arg = CLI_ARG_IMG_FORMAT,
                           .metavar = "FMT",
                           STRING(fmt) },
                         { .name = "-O",
                           .arg = CLI_ARG_IMG_FORMAT,
                           .metavar = "qcow2|raw",
                           STRING(out_fmt) },
                         { .name = "-o",
                           .arg = CLI_ARG_TEXT,
                           .metavar = "OPTIONS",
                           STRING(opts) },
                         { .name = "-l",
                           .arg = CLI_ARG_TEXT,
                           .metavar = "[snapshot.name=]TAG",
                           .store = CLI_STORE_CALL,
                           .handle = opt_convert_snapshot },
                         { .name = "-n",
                           .arg = CLI_ARG_NONE,
                           .store = CLI_STORE_FLAG,
                           FIELD(no_create) }),
      .help = "    Copy a disk (or its state at snapshot TAG) into a new "
              "image; -n writes into an\n    existing TARGET instead.\n",
      .man = "Copy a disk, or its content at snapshot\n"
             ".IR TAG ,\n"
             "into a new image\n"
             ".RB ( \\-n :\n"
             "into the existing\n"
             ".IR TARGET ).\n" },
    { .name = NULL }
};

int cmd_img(int argc, char **argv)
{
    if (argc < 2) {
        return cli_usage_error(self(),
                               "missing subcommand (create, info, "
                               "check, snapshot, convert)");
    }
    for (const struct cli_command *c = cli_img_subcommands; c->name; c++) {
        if (strcmp(argv[1], c->name) == 0) {
            return c->run(argc - 1, argv + 1);
        }
    }
    return cli_usage_error(self(), "unknown subcommand '%s'", argv[1]);
}
