/* The qcow2 format: header parsing and validation, open/close, create,
 * and the driver table.  Mapping, refcounts, snapshots and the check live
 * in the other qcow2-*.c files (see qcow2.h). */
#include "block/qcow2.h"
#include "util/parse.h"
#include "util/fault.h"
#include "util/alloc.h"
#include "util/io.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool qcow2_pread_all(Qcow2State *s, uint64_t off, void *buf, size_t len,
                     Error **errp)
{
    ssize_t n = io_pread_full(s->fd, buf, len, off);
    if (n < 0) {
        error_setg_errno(errp, errno, "read at %#" PRIx64, off);
        return false;
    }
    /* Past the end of the file: zeros. */
    memset((uint8_t *)buf + n, 0, len - (size_t)n);
    return true;
}

bool qcow2_pwrite_all(Qcow2State *s, uint64_t off, const void *buf, size_t len,
                      Error **errp)
{
    if (!fault_inject("qcow2-write", errp)) {
        return false;
    }
    if (!io_pwrite_full(s->fd, buf, len, off)) {
        error_setg_errno(errp, errno, "write at %#" PRIx64, off);
        return false;
    }
    if (off + len > s->file_size) {
        s->file_size = off + len;
    }
    return true;
}

bool qcow2_sync(Qcow2State *s, Error **errp)
{
    if (fdatasync(s->fd) < 0) {
        error_setg_errno(errp, errno, "flush");
        return false;
    }
    return true;
}

uint64_t qcow2_vmstate_offset(const Qcow2State *s, uint64_t disk_size)
{
    uint64_t span = s->cluster_size * s->l2_entries;
    return (disk_size + span - 1) / span * span;
}

/* The pointer fields (bytes 24..72) in one write: switching L1, refcount
 * table and snapshot table together is what makes rebuilds atomic. */
bool qcow2_write_header_pointers(Qcow2State *s, Error **errp)
{
    uint8_t b[48];
    const struct qcow2_header *h = &s->h;
    be64_put(b + 0, h->size);
    be32_put(b + 8, h->crypt_method);
    be32_put(b + 12, h->l1_size);
    be64_put(b + 16, h->l1_table_offset);
    be64_put(b + 24, h->refcount_table_offset);
    be32_put(b + 32, h->refcount_table_clusters);
    be32_put(b + 36, h->nb_snapshots);
    be64_put(b + 40, h->snapshots_offset);
    return qcow2_pwrite_all(s, 24, b, sizeof(b), errp);
}

static bool write_feature_bits(Qcow2State *s, Error **errp)
{
    uint8_t b[24];
    be64_put(b, s->h.incompatible);
    be64_put(b + 8, s->h.compatible);
    be64_put(b + 16, s->h.autoclear);
    return qcow2_pwrite_all(s, 72, b, sizeof(b), errp);
}

bool qcow2_set_dirty(Qcow2State *s, bool on, Error **errp)
{
    uint64_t was = s->h.incompatible;
    if (s->h.version < 3) {
        return true;
    }
    if (on) {
        s->h.incompatible |= QCOW2_INCOMPAT_DIRTY;
    } else {
        s->h.incompatible &= ~QCOW2_INCOMPAT_DIRTY;
    }
    if (s->h.incompatible == was) {
        return true;
    }
    if (!write_feature_bits(s, errp) || !qcow2_sync(s, errp)) {
        s->h.incompatible = was;
        return false;
    }
    return true;
}

void qcow2_mark_corrupt(Qcow2State *s)
{
    s->corrupt = true;
    if (s->h.version < 3 || (s->h.incompatible & QCOW2_INCOMPAT_CORRUPT)) {
        return;
    }
    s->h.incompatible |= QCOW2_INCOMPAT_CORRUPT;
    Error *err = NULL;
    if (!write_feature_bits(s, &err) || !qcow2_sync(s, &err)) {
        error_prepend(&err, "'%s': cannot set the corrupt bit: ", s->name);
        error_report_err(err);
    }
}

static void parse_header(struct qcow2_header *h, const uint8_t *b)
{
    memset(h, 0, sizeof(*h));
    h->version = be32_get(b + 4);
    h->backing_file_offset = be64_get(b + 8);
    h->backing_file_size = be32_get(b + 16);
    h->cluster_bits = be32_get(b + 20);
    h->size = be64_get(b + 24);
    h->crypt_method = be32_get(b + 32);
    h->l1_size = be32_get(b + 36);
    h->l1_table_offset = be64_get(b + 40);
    h->refcount_table_offset = be64_get(b + 48);
    h->refcount_table_clusters = be32_get(b + 56);
    h->nb_snapshots = be32_get(b + 60);
    h->snapshots_offset = be64_get(b + 64);
    if (h->version >= 3) {
        h->incompatible = be64_get(b + 72);
        h->compatible = be64_get(b + 80);
        h->autoclear = be64_get(b + 88);
        h->refcount_order = be32_get(b + 96);
        h->header_length = be32_get(b + 100);
        if (h->header_length > 104) {
            h->compression_type = b[104];
        }
    } else {
        h->refcount_order = 4;
        h->header_length = QCOW2_HEADER_V2_LEN;
    }
}

/* A table at off of len bytes must be cluster aligned and inside the file. */
static bool table_ok(const Qcow2State *s, uint64_t off, uint64_t len,
                     const char *what, Error **errp)
{
    if (len && off < s->cluster_size) {
        error_setg(errp, "%s offset %#" PRIx64 " lies in the header cluster",
                   what, off);
        return false;
    }
    if (off & (s->cluster_size - 1)) {
        error_setg(errp, "%s offset %#" PRIx64 " is not cluster aligned", what,
                   off);
        return false;
    }
    if (off > s->file_size || len > s->file_size - off) {
        error_setg(errp,
                   "%s (%#" PRIx64 ", %" PRIu64 " bytes) lies beyond "
                   "the end of the file",
                   what, off, len);
        return false;
    }
    return true;
}

/* The backing file's name lies in the header cluster, after the fixed
 * header, and no longer than QEMU reads. */
static bool backing_fields_ok(const Qcow2State *s, Error **errp)
{
    const struct qcow2_header *h = &s->h;
    if (!h->backing_file_offset) {
        return true;
    }
    if (h->backing_file_size > QCOW2_MAX_BACKING_NAME) {
        error_setg(errp,
                   "backing file name of %u bytes is too long "
                   "(backing_file_size; at most %u)",
                   h->backing_file_size, QCOW2_MAX_BACKING_NAME);
        return false;
    }
    if (h->backing_file_offset < h->header_length ||
        h->backing_file_offset >= s->cluster_size ||
        h->backing_file_size > s->cluster_size - h->backing_file_offset) {
        error_setg(errp,
                   "backing file name at %#" PRIx64 " (%u bytes) is not "
                   "within the header cluster after the header "
                   "(backing_file_offset)",
                   h->backing_file_offset, h->backing_file_size);
        return false;
    }
    if (h->backing_file_offset + h->backing_file_size > s->file_size) {
        error_setg(errp,
                   "backing file name at %#" PRIx64 " (%u bytes) lies "
                   "beyond the end of the file (backing_file_offset)",
                   h->backing_file_offset, h->backing_file_size);
        return false;
    }
    return true;
}

static bool check_features(const Qcow2State *s, bool readonly, Error **errp)
{
    const struct qcow2_header *h = &s->h;
    uint64_t known = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT |
        QCOW2_INCOMPAT_DATA_FILE | QCOW2_INCOMPAT_COMPRESSION |
        QCOW2_INCOMPAT_EXTL2;
    if (h->incompatible & ~known) {
        error_setg(errp, "unsupported incompatible feature bit %d",
                   __builtin_ctzll(h->incompatible & ~known));
        return false;
    }
    if (h->incompatible & QCOW2_INCOMPAT_DATA_FILE) {
        error_setg(errp, "external data files are not supported");
        return false;
    }
    if (h->incompatible & QCOW2_INCOMPAT_EXTL2) {
        error_setg(errp, "extended L2 entries (subclusters) are not supported");
        return false;
    }
    if (h->compression_type != 0) {
        if (!(h->incompatible & QCOW2_INCOMPAT_COMPRESSION)) {
            error_setg(errp, "compression type %u without its feature bit",
                       h->compression_type);
        } else if (h->compression_type == 1) {
            error_setg(errp, "zstd compression is not supported (only zlib)");
        } else {
            error_setg(errp, "unknown compression type %u",
                       h->compression_type);
        }
        return false;
    }
    if (readonly) {
        return true;
    }
    if (h->incompatible & QCOW2_INCOMPAT_CORRUPT) {
        error_setg(errp,
                   "image is marked corrupt; it can only be opened "
                   "read-only (repair with 'qemu-img check -r all')");
        return false;
    }
    return true;
}

static bool validate_header(Qcow2State *s, bool readonly, Error **errp)
{
    struct qcow2_header *h = &s->h;
    if (h->version != 2 && h->version != 3) {
        error_setg(errp, "unsupported qcow2 version %u", h->version);
        return false;
    }
    if (h->cluster_bits < 9 || h->cluster_bits > 21) {
        error_setg(errp, "cluster_bits %u out of range (9..21)",
                   h->cluster_bits);
        return false;
    }
    s->cluster_bits = h->cluster_bits;
    s->cluster_size = 1ULL << h->cluster_bits;
    s->l2_bits = h->cluster_bits - 3;
    s->l2_entries = 1ULL << s->l2_bits;
    s->csize_shift = 62 - (h->cluster_bits - 8);
    s->csize_mask = (1ULL << (h->cluster_bits - 8)) - 1;
    s->coffset_mask = (1ULL << s->csize_shift) - 1;
    if (h->version == 3) {
        if (h->header_length < 104 || h->header_length > s->cluster_size ||
            (h->header_length & 7)) {
            error_setg(errp, "invalid header length %u", h->header_length);
            return false;
        }
        if (h->refcount_order > 6) {
            error_setg(errp, "refcount_order %u out of range (0..6)",
                       h->refcount_order);
            return false;
        }
    }
    if (h->crypt_method) {
        error_setg(errp,
                   "encrypted images are not supported (crypt_method "
                   "%u)",
                   h->crypt_method);
        return false;
    }
    if (!backing_fields_ok(s, errp)) {
        return false;
    }
    if (!check_features(s, readonly, errp)) {
        return false;
    }
    uint64_t span = s->cluster_size * s->l2_entries;
    if (h->size > (uint64_t)(QCOW2_MAX_L1_BYTES / 8) * span) {
        error_setg(errp, "virtual size %" PRIu64 " is too large", h->size);
        return false;
    }
    uint64_t l1_needed = (h->size + span - 1) / span;
    if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
        error_setg(errp, "L1 table of %u entries is too large", h->l1_size);
        return false;
    }
    if (h->l1_size < l1_needed) {
        error_setg(errp,
                   "L1 table of %u entries is too small for %" PRIu64 " bytes",
                   h->l1_size, h->size);
        return false;
    }
    if (!table_ok(s, h->l1_table_offset, (uint64_t)h->l1_size * 8, "L1 table",
                  errp)) {
        return false;
    }
    if (h->refcount_table_clusters == 0 ||
        (uint64_t)h->refcount_table_clusters * s->cluster_size >
            QCOW2_MAX_RT_BYTES) {
        error_setg(errp, "refcount table size of %u clusters is invalid",
                   h->refcount_table_clusters);
        return false;
    }
    if (!table_ok(s, h->refcount_table_offset,
                  (uint64_t)h->refcount_table_clusters * s->cluster_size,
                  "refcount table", errp)) {
        return false;
    }
    if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        error_setg(errp, "too many snapshots (%u)", h->nb_snapshots);
        return false;
    }
    if (h->nb_snapshots && h->snapshots_offset < s->cluster_size) {
        error_setg(errp,
                   "snapshot table offset %#" PRIx64 " lies in the "
                   "header cluster",
                   h->snapshots_offset);
        return false;
    }
    if (h->nb_snapshots &&
        !table_ok(s, h->snapshots_offset, 40, "snapshot table", errp)) {
        return false;
    }
    return true;
}

/* The backing format extension: a format name, shorter than 16 bytes. */
static bool read_backing_fmt(Qcow2State *s, const uint8_t *data, uint32_t len,
                             Error **errp)
{
    if (len > QCOW2_MAX_BACKING_FMT || memchr(data, 0, len)) {
        error_setg(errp,
                   "backing format header extension of %u bytes is not a "
                   "format name (at most %u bytes, no NUL)",
                   len, QCOW2_MAX_BACKING_FMT);
        return false;
    }
    memcpy(s->backing_fmt, data, len);
    s->backing_fmt[len] = '\0';
    return true;
}

/* Header extensions, up to the backing file's name when there is one: we
 * act on the backing format only but check that all are well formed; we
 * never rewrite this area, so the ones we do not know are kept. */
static bool check_extensions(Qcow2State *s, const uint8_t *c0, size_t len,
                             Error **errp)
{
    size_t off = s->h.header_length;
    size_t end = len;
    if (s->h.backing_file_offset && s->h.backing_file_offset < len) {
        end = (size_t)s->h.backing_file_offset;
    }
    while (off + 8 <= end) {
        uint32_t type = be32_get(c0 + off);
        uint32_t elen = be32_get(c0 + off + 4);
        if (type == QCOW2_EXT_END) {
            return true;
        }
        off += 8;
        if (elen > end - off) {
            error_setg(errp, "header extension %#x overruns the %s", type,
                       end < len ? "backing file name" : "header cluster");
            return false;
        }
        if (type == QCOW2_EXT_BACKING_FMT &&
            !read_backing_fmt(s, c0 + off, elen, errp)) {
            return false;
        }
        off += ((size_t)elen + 7) & ~(size_t)7;
    }
    if (off + 8 > len && len == s->cluster_size && end == len) {
        error_setg(errp, "header extensions are not terminated");
        return false;
    }
    return true;
}

/* The backing file's name from the header cluster c0 (fields checked by
 * backing_fields_ok); an empty name is no backing file, as for QEMU. */
static bool read_backing_name(Qcow2State *s, const uint8_t *c0, Error **errp)
{
    uint32_t n = s->h.backing_file_size;
    if (!s->h.backing_file_offset || n == 0) {
        return true;
    }
    const uint8_t *name = c0 + s->h.backing_file_offset;
    if (memchr(name, 0, n)) {
        error_setg(errp,
                   "backing file name at %#" PRIx64 " holds a NUL byte "
                   "(backing_file_offset)",
                   s->h.backing_file_offset);
        return false;
    }
    s->backing_name = xmalloc(n + 1);
    memcpy(s->backing_name, name, n);
    s->backing_name[n] = '\0';
    return true;
}

static bool open_backing(Qcow2State *s, BlockDev *bs, Error **errp)
{
    if (!s->backing_name) {
        return true;
    }
    const char *fmt = s->backing_fmt[0] ? s->backing_fmt : NULL;
    if (fmt && !blk_find_driver(fmt)) {
        error_setg(errp,
                   "backing file '%s' of '%s': format '%s' (backing format "
                   "header extension) is not one hop reads (raw, qcow2)",
                   s->backing_name, bs->filename, fmt);
        bs->chain_error = true; /* the message names the chain's link */
        return false;
    }
    s->backing_path = blk_backing_path(bs->filename, s->backing_name);
    s->backing =
        blk_open_backing(bs, s->backing_name, s->backing_path, fmt, errp);
    return s->backing != NULL;
}

static bool load_l1(Qcow2State *s, Error **errp)
{
    s->l1_size = s->h.l1_size;
    s->l1_offset = s->h.l1_table_offset;
    s->l1 = xcalloc(s->l1_size ? s->l1_size : 1, sizeof(*s->l1));
    s->l2 = xcalloc(s->l1_size ? s->l1_size : 1, sizeof(*s->l2));
    if (!s->l1_size) {
        return true;
    }
    uint8_t *raw = xmalloc((size_t)s->l1_size * 8);
    bool ok =
        qcow2_pread_all(s, s->l1_offset, raw, (size_t)s->l1_size * 8, errp);
    for (uint32_t i = 0; ok && i < s->l1_size; i++) {
        s->l1[i] = be64_get(raw + 8 * i);
    }
    free(raw);
    return ok;
}

static void qcow2_state_free(Qcow2State *s)
{
    if (!s) {
        return;
    }
    qcow2_l2_cache_drop(s);
    qcow2_snapview_drop(s);
    free(s->l1);
    free(s->l2);
    qcow2_refcount_free(s);
    qcow2_snapshots_free(s->snaps, s->nb_snaps);
    free(s->zcache);
    qcow2_bits_free(&s->meta);
    blk_close(s->backing);
    free(s->backing_name);
    free(s->backing_path);
    free(s);
}

static bool qcow2_open(BlockDev *bs, int fd, bool readonly, Error **errp)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "stat");
        return false;
    }
    Qcow2State *s = xcalloc(1, sizeof(*s));
    s->fd = fd;
    s->readonly = readonly;
    s->name = bs->filename;
    s->file_size = (uint64_t)st.st_size;
    s->zcache_entry = UINT64_MAX;
    s->snapview_idx = -1;
    uint8_t head[QCOW2_HEADER_V3_LEN] = { 0 };
    bool ok = false;
    if (s->file_size < QCOW2_HEADER_V2_LEN) {
        error_setg(errp, "too short for a qcow2 image (%" PRIu64 " bytes)",
                   s->file_size);
        goto out;
    }
    if (!qcow2_pread_all(s, 0, head, sizeof(head), errp)) {
        goto out;
    }
    if (be32_get(head) != QCOW2_MAGIC) {
        error_setg(errp, "not a qcow2 image (bad magic)");
        goto out;
    }
    parse_header(&s->h, head);
    if (!validate_header(s, readonly, errp)) {
        goto out;
    }
    size_t c0len = (size_t)(s->file_size < s->cluster_size ? s->file_size
                                                           : s->cluster_size);
    uint8_t *c0 = xmalloc(c0len);
    ok = qcow2_pread_all(s, 0, c0, c0len, errp) &&
        check_extensions(s, c0, c0len, errp) && read_backing_name(s, c0, errp);
    free(c0);
    if (!ok) {
        goto out;
    }
    s->disk_size = s->h.size;
    /* A backing file is only read: its refcounts would be memory (8
     * bytes a cluster) spent on nothing. */
    ok = load_l1(s, errp) && (bs->backed || qcow2_refcount_load(s, errp)) &&
        qcow2_snapshots_load(s, errp) && open_backing(s, bs, errp);
    if (!ok) {
        goto out;
    }
    if (!readonly && s->rb_bad) {
        error_setg(errp,
                   "%" PRIu64 " refcount table entries are invalid; "
                   "run 'hop img check'",
                   s->rb_bad);
        ok = false;
        goto out;
    }
    if (!readonly && !qcow2_meta_build(s, errp)) {
        ok = false;
        goto out;
    }
    if (!readonly && s->h.autoclear) {
        /* We keep none of the autoclear structures (bitmaps) up to date,
         * so their bits go, as the format asks of such writers. */
        s->h.autoclear = 0;
        ok = write_feature_bits(s, errp) && qcow2_sync(s, errp);
    }
    if (ok && !readonly && (s->h.incompatible & QCOW2_INCOMPAT_DIRTY)) {
        ok = qcow2_repair_refcounts(s, errp);
        if (ok) {
            s->h.incompatible &= ~QCOW2_INCOMPAT_DIRTY;
            ok = write_feature_bits(s, errp) && qcow2_sync(s, errp);
        }
    }
out:
    if (!ok) {
        qcow2_state_free(s);
        return false;
    }
    bs->opaque = s;
    return true;
}

static void qcow2_close(BlockDev *bs)
{
    Qcow2State *s = bs->opaque;
    if (!s->readonly && !s->corrupt) {
        Error *err = NULL;
        if (!qcow2_flush_metadata(s, &err)) {
            error_prepend(&err, "'%s': ", bs->filename);
            error_report_err(err);
        }
    }
    qcow2_state_free(s);
}

static bool qcow2_probe(const uint8_t *head, size_t len)
{
    /* The magic alone: an unknown version is refused by open, not read
     * as raw. */
    return len >= 4 && be32_get(head) == QCOW2_MAGIC;
}

static bool qcow2_bs_pread(BlockDev *bs, uint64_t off, void *buf, size_t len,
                           Error **errp)
{
    Qcow2State *s = bs->opaque;
    struct qcow2_view v;
    qcow2_view_active(s, &v);
    bool ok = qcow2_read_view(s, &v, off, buf, len, errp);
    qcow2_view_release(&v);
    return ok;
}

static bool qcow2_bs_pwrite(BlockDev *bs, uint64_t off, const void *buf,
                            size_t len, Error **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    return qcow2_write_iov(bs->opaque, off, &iov, 1, errp);
}

static bool qcow2_bs_flush(BlockDev *bs, Error **errp)
{
    return qcow2_flush_metadata(bs->opaque, errp);
}

static uint64_t qcow2_bs_size(BlockDev *bs)
{
    return ((Qcow2State *)bs->opaque)->disk_size;
}

static void qcow2_info(BlockDev *bs, struct blk_info *info)
{
    Qcow2State *s = bs->opaque;
    info->cluster_size = s->cluster_size;
    info->compat = s->h.version == 2 ? "0.10" : "1.1";
    info->compression = "zlib";
    info->refcount_bits = s->refcount_bits;
    info->lazy_refcounts = s->h.compatible & QCOW2_COMPAT_LAZY_REFCOUNTS;
    info->corrupt = s->h.incompatible & QCOW2_INCOMPAT_CORRUPT;
    info->dirty = s->h.incompatible & QCOW2_INCOMPAT_DIRTY;
    info->extended_l2 = false;
    if (s->backing) {
        struct blk_info below;
        blk_get_info(s->backing, &below);
        info->backing_file = s->backing_name;
        info->full_backing_file = s->backing_path;
        info->backing_format = s->backing_fmt;
        info->backing_depth = below.backing_depth + 1;
    }
}

/* ---- create ---- */

/* What qemu-img create -o says for qcow2 (the subset hop knows). */
struct create_opts {
    uint32_t cluster_bits;
    char *backing_file; /* NULL: none */
    char *backing_fmt;
};

static void create_opts_free(struct create_opts *o)
{
    free(o->backing_file);
    free(o->backing_fmt);
}

static bool parse_create_option(struct create_opts *o, const char *key,
                                const char *val, Error **errp)
{
    if (strcmp(key, "cluster_size") == 0) {
        uint64_t cs;
        if (!parse_size(val, 1, &cs) || cs < 512 || cs > (2u << 20) ||
            (cs & (cs - 1))) {
            error_setg(errp,
                       "cluster_size '%s' must be a power of two "
                       "from 512 to 2M",
                       val);
            return false;
        }
        o->cluster_bits = (uint32_t)__builtin_ctzll(cs);
    } else if (strcmp(key, "backing_file") == 0) {
        if (!*val || strlen(val) > QCOW2_MAX_BACKING_NAME) {
            error_setg(errp,
                       "backing_file must be 1 to %u bytes long (got %zu)",
                       QCOW2_MAX_BACKING_NAME, strlen(val));
            return false;
        }
        free(o->backing_file);
        o->backing_file = xstrdup(val);
    } else if (strcmp(key, "backing_fmt") == 0) {
        if (!blk_find_driver(val)) {
            error_setg(errp,
                       "backing_fmt '%s' is not a format hop reads "
                       "(raw, qcow2)",
                       val);
            return false;
        }
        free(o->backing_fmt);
        o->backing_fmt = xstrdup(val);
    } else {
        error_setg(errp,
                   "unknown option '%s' (qcow2 knows cluster_size, "
                   "backing_file, backing_fmt)",
                   key);
        return false;
    }
    return true;
}

static bool parse_create_options(const char *options, struct create_opts *o,
                                 Error **errp)
{
    memset(o, 0, sizeof(*o));
    o->cluster_bits = 16;
    if (!options || !*options) {
        return true;
    }
    char *copy = xstrdup(options);
    bool ok = true;
    char *save = NULL;
    for (char *kv = strtok_r(copy, ",", &save); ok && kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            error_setg(errp, "option '%s' needs a value (key=value)", kv);
            ok = false;
            break;
        }
        *eq = '\0';
        ok = parse_create_option(o, kv, eq + 1, errp);
    }
    free(copy);
    if (ok && o->backing_fmt && !o->backing_file) {
        error_setg(errp, "backing_fmt without backing_file");
        ok = false;
    }
    /* As qemu-img: a probed backing format could be a guest's doing. */
    if (ok && o->backing_file && !o->backing_fmt) {
        error_setg(errp,
                   "backing_file without backing_fmt (the backing "
                   "file's format)");
        ok = false;
    }
    if (!ok) {
        create_opts_free(o);
    }
    return ok;
}

/* The feature name table lets qemu-img name our bits. */
static const struct {
    uint8_t kind, bit;
    const char *name;
} feature_names[] = {
    { 0, 0, "dirty bit" },
    { 0, 1, "corrupt bit" },
    { 0, 2, "external data file" },
    { 0, 3, "compression type" },
    { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" },
    { 2, 0, "bitmaps" },
    { 2, 1, "raw external data" },
};

/* Header extension type and data at c0 + off; the new offset. */
static size_t put_extension(uint8_t *c0, size_t off, uint32_t type,
                            const void *data, size_t len)
{
    be32_put(c0 + off, type);
    be32_put(c0 + off + 4, (uint32_t)len);
    memcpy(c0 + off + 8, data, len);
    return off + 8 + ((len + 7) & ~(size_t)7);
}

/* The header cluster: fields, the backing format, the feature names when
 * there is room, the end marker, then the backing file's name.  Its
 * length, or 0 when the backing file's name does not fit the cluster. */
static size_t build_header(const Qcow2State *s, const struct create_opts *o,
                           uint8_t *c0)
{
    const struct qcow2_header *h = &s->h;
    be32_put(c0, QCOW2_MAGIC);
    be32_put(c0 + 4, 3);
    be32_put(c0 + 20, h->cluster_bits);
    be64_put(c0 + 24, h->size);
    be32_put(c0 + 36, h->l1_size);
    be64_put(c0 + 40, h->l1_table_offset);
    be64_put(c0 + 48, h->refcount_table_offset);
    be32_put(c0 + 56, h->refcount_table_clusters);
    be32_put(c0 + 96, h->refcount_order);
    be32_put(c0 + 100, QCOW2_HEADER_V3_LEN);
    size_t off = QCOW2_HEADER_V3_LEN;
    size_t name_len = o->backing_file ? strlen(o->backing_file) : 0;
    if (o->backing_fmt) {
        off = put_extension(c0, off, QCOW2_EXT_BACKING_FMT, o->backing_fmt,
                            strlen(o->backing_fmt));
    }
    size_t n = sizeof(feature_names) / sizeof(feature_names[0]);
    if (off + 8 + n * 48 + 8 + name_len <= s->cluster_size) {
        be32_put(c0 + off, QCOW2_EXT_FEATURE_NAMES);
        be32_put(c0 + off + 4, (uint32_t)(n * 48));
        off += 8;
        for (size_t i = 0; i < n; i++) {
            c0[off] = feature_names[i].kind;
            c0[off + 1] = feature_names[i].bit;
            memcpy(c0 + off + 2, feature_names[i].name,
                   strlen(feature_names[i].name));
            off += 48;
        }
    }
    off += 8; /* the end marker: 8 zero bytes */
    if (o->backing_file) {
        if (off + name_len > s->cluster_size) {
            return 0;
        }
        be64_put(c0 + 8, off);
        be32_put(c0 + 16, (uint32_t)name_len);
        memcpy(c0 + off, o->backing_file, name_len);
        off += name_len;
    }
    return off;
}

/* The largest virtual size an L1 table can map with these clusters. */
static uint64_t max_virtual_size(uint32_t cluster_bits)
{
    return (uint64_t)(QCOW2_MAX_L1_BYTES / 8) << (2 * cluster_bits - 3);
}

static bool qcow2_create_check(uint64_t size, const char *options, Error **errp)
{
    struct create_opts o;
    if (!parse_create_options(options, &o, errp)) {
        return false;
    }
    uint32_t cluster_bits = o.cluster_bits;
    size_t name_len = o.backing_file ? strlen(o.backing_file) : 0;
    create_opts_free(&o);
    /* Header, backing format extension, end marker and the name. */
    if (name_len &&
        QCOW2_HEADER_V3_LEN + 24 + 8 + name_len > (size_t)1 << cluster_bits) {
        error_setg(errp,
                   "backing_file of %zu bytes does not fit the header "
                   "cluster of %u bytes",
                   name_len, 1u << cluster_bits);
        return false;
    }
    if (size > max_virtual_size(cluster_bits)) {
        error_setg(errp,
                   "size %" PRIu64 " is too large for cluster_size %" PRIu64
                   " (at most %" PRIu64 ")",
                   size, (uint64_t)1 << cluster_bits,
                   max_virtual_size(cluster_bits));
        return false;
    }
    return true;
}

static bool qcow2_create(int fd, uint64_t size, const char *options,
                         Error **errp)
{
    if (!qcow2_create_check(size, options, errp)) {
        return false;
    }
    struct create_opts o;
    parse_create_options(options, &o, NULL);
    uint32_t cluster_bits = o.cluster_bits;
    /* What was in the file goes: no old byte must pass for metadata. */
    if (ftruncate(fd, 0) < 0) {
        error_setg_errno(errp, errno, "cannot empty the image file");
        return false;
    }
    Qcow2State *s = xcalloc(1, sizeof(*s));
    s->fd = fd;
    s->cluster_bits = cluster_bits;
    s->cluster_size = 1ULL << cluster_bits;
    s->l2_bits = cluster_bits - 3;
    s->l2_entries = 1ULL << s->l2_bits;
    s->h.version = 3;
    s->h.cluster_bits = cluster_bits;
    s->h.refcount_order = 4;
    s->h.header_length = QCOW2_HEADER_V3_LEN;
    s->refcount_bits = 16;
    s->refcount_max = 0xffff;
    s->rb_entries = s->cluster_size * 8 / 16;
    size = (size + 511) & ~511ULL;
    uint64_t span = s->cluster_size * s->l2_entries;
    bool ok = false;
    uint8_t *c0 = NULL;
    if (size > (uint64_t)(QCOW2_MAX_L1_BYTES / 8) * span) {
        error_setg(errp,
                   "size %" PRIu64 " is too large for cluster_size %" PRIu64,
                   size, s->cluster_size);
        goto out;
    }
    s->h.size = size;
    s->h.l1_size = (uint32_t)((size + span - 1) / span);
    qcow2_rc_set(s, 0, 1);
    s->free_hint = 1;
    if (!qcow2_refcount_relocate(s, errp)) {
        goto out;
    }
    if (s->h.l1_size) {
        s->h.l1_table_offset = qcow2_alloc_clusters(
            s, qcow2_clusters(s, s->h.l1_size * 8ULL), errp);
        if (!s->h.l1_table_offset) {
            goto out;
        }
    }
    s->h.refcount_table_offset = s->rt_offset;
    s->h.refcount_table_clusters = s->rt_clusters;
    if (ftruncate(fd, (off_t)(s->used_end << cluster_bits)) < 0) {
        error_setg_errno(errp, errno, "cannot size the image file");
        goto out;
    }
    c0 = xcalloc(1, s->cluster_size);
    size_t hlen = build_header(s, &o, c0);
    if (!hlen) {
        error_setg(errp, "the backing file's name does not fit the header");
        goto out;
    }
    /* Structures first, the header that names them last. */
    ok = qcow2_refcount_write_fresh(s, errp) && qcow2_sync(s, errp) &&
        qcow2_pwrite_all(s, 0, c0, hlen, errp);
out:
    free(c0);
    create_opts_free(&o);
    qcow2_refcount_free(s);
    free(s);
    return ok;
}

const struct block_driver block_driver_qcow2 = {
    .format = "qcow2",
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .pread = qcow2_bs_pread,
    .pwrite = qcow2_bs_pwrite,
    .flush = qcow2_bs_flush,
    .size = qcow2_bs_size,
    .create_check = qcow2_create_check,
    .create = qcow2_create,
    .info = qcow2_info,
    .check = qcow2_check,
    .is_allocated = qcow2_is_allocated,
    .snapshot_list = qcow2_snapshot_list,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_apply = qcow2_snapshot_apply,
    .snapshot_delete = qcow2_snapshot_delete,
    .snapshot_check = qcow2_snapshot_check,
    .snapshot_pread = qcow2_snapshot_pread,
    .vmstate_pwritev = qcow2_vmstate_pwritev,
    .snapshot_begin = qcow2_snapshot_begin,
    .snapshot_commit = qcow2_snapshot_commit,
    .snapshot_abort = qcow2_snapshot_abort,
};
