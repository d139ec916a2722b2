/* qcow2 cluster mapping: guest offset -> L1 -> L2 -> host cluster.
 * Reads go through a view (active layer or a snapshot's L1); writes go to
 * the active layer, allocating clusters in contiguous runs and copying
 * clusters shared with snapshots.  Metadata changes stay in memory until
 * qcow2_flush_metadata writes them in crash-safe order. */
#include "block/qcow2.h"
#include "util/fault.h"
#include "util/alloc.h"
#include "util/io.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum cluster_type { CT_UNALLOCATED, CT_ZERO, CT_NORMAL, CT_COMPRESSED };

static enum cluster_type entry_type(const Qcow2State *s, uint64_t e)
{
    if (e & QCOW2_OFLAG_COMPRESSED) {
        return CT_COMPRESSED;
    }
    if ((e & QCOW2_OFLAG_ZERO) && s->h.version >= 3) {
        return CT_ZERO;
    }
    return (e & QCOW2_OFFSET_MASK) ? CT_NORMAL : CT_UNALLOCATED;
}

bool qcow2_entry_host_range(const Qcow2State *s, uint64_t e, uint64_t *off,
                            uint64_t *len)
{
    if (e & QCOW2_OFLAG_COMPRESSED) {
        uint64_t coff = e & s->coffset_mask;
        uint64_t nsec = ((e >> s->csize_shift) & s->csize_mask) + 1;
        *off = coff & ~511ULL;
        *len = nsec * 512;
        return true;
    }
    if (e & QCOW2_OFFSET_MASK) {
        *off = e & QCOW2_OFFSET_MASK;
        *len = s->cluster_size;
        return true;
    }
    return false;
}

static uint32_t l1_index(const Qcow2State *s, uint64_t off)
{
    return (uint32_t)(off >> (s->cluster_bits + s->l2_bits));
}

static uint64_t l2_index(const Qcow2State *s, uint64_t off)
{
    return (off >> s->cluster_bits) & (s->l2_entries - 1);
}

static bool l2_offset_ok(const Qcow2State *s, uint64_t off, Error **errp)
{
    if ((off & (s->cluster_size - 1)) || off >= s->file_size) {
        error_setg(errp,
                   "L2 table offset %#" PRIx64 " is invalid (unaligned "
                   "or past the end of the file): the image is corrupt",
                   off);
        return false;
    }
    return true;
}

bool qcow2_get_l2(Qcow2State *s, uint32_t i, uint64_t **table, Error **errp)
{
    *table = NULL;
    if (i >= s->l1_size) {
        return true;
    }
    if (s->l2[i].table) {
        *table = s->l2[i].table;
        return true;
    }
    uint64_t off = s->l1[i] & QCOW2_OFFSET_MASK;
    if (!off) {
        return true;
    }
    if (!l2_offset_ok(s, off, errp)) {
        return false;
    }
    /* Distinct tables fit in the file; more cached than that means L1
     * entries repeat a table (read-only opens allow it): start over. */
    if (s->readonly && s->l2_cached * s->cluster_size > s->file_size) {
        qcow2_l2_cache_drop(s);
    }
    uint64_t *t = xmalloc(s->cluster_size);
    if (!qcow2_pread_all(s, off, t, s->cluster_size, errp)) {
        free(t);
        return false;
    }
    s->l2[i].table = t;
    s->l2[i].dirty = false;
    s->l2_cached++;
    *table = t;
    return true;
}

void qcow2_l2_cache_drop(Qcow2State *s)
{
    for (uint32_t i = 0; s->l2 && i < s->l1_size; i++) {
        free(s->l2[i].table);
        s->l2[i].table = NULL;
        s->l2[i].dirty = false;
    }
    s->l2_cached = 0;
}

void qcow2_view_active(Qcow2State *s, struct qcow2_view *v)
{
    memset(v, 0, sizeof(*v));
    v->l1 = s->l1;
    v->l1_size = s->l1_size;
    v->active = true;
    v->backing_end = s->disk_size;
}

/* Guest bytes [off, off + n) that this image leaves to its backing file:
 * the backing file's data below end and below its own size, zeros past
 * them (and zeros throughout without a backing file). */
static bool read_backing(Qcow2State *s, uint64_t off, uint8_t *buf, uint64_t n,
                         uint64_t end, Error **errp)
{
    uint64_t have = 0;
    if (s->backing) {
        uint64_t bsize = blk_size(s->backing);
        if (end > bsize) {
            end = bsize;
        }
        if (off < end) {
            have = end - off < n ? end - off : n;
        }
    }
    if (have && !blk_pread(s->backing, off, buf, (size_t)have, errp)) {
        return false;
    }
    memset(buf + have, 0, n - have);
    return true;
}

void qcow2_view_release(struct qcow2_view *v)
{
    free(v->l2_buf);
    v->l2_buf = NULL;
}

static bool view_l2(Qcow2State *s, struct qcow2_view *v, uint32_t i,
                    uint64_t **table, Error **errp)
{
    *table = NULL;
    if (v->active) {
        return qcow2_get_l2(s, i, table, errp);
    }
    if (i >= v->l1_size) {
        return true;
    }
    uint64_t off = v->l1[i] & QCOW2_OFFSET_MASK;
    if (!off) {
        return true;
    }
    if (!v->l2_buf || v->l2_offset != off) {
        if (!l2_offset_ok(s, off, errp)) {
            return false;
        }
        if (!v->l2_buf) {
            v->l2_buf = xmalloc(s->cluster_size);
        }
        v->l2_offset = 0;
        if (!qcow2_pread_all(s, off, v->l2_buf, s->cluster_size, errp)) {
            return false;
        }
        v->l2_offset = off;
    }
    *table = v->l2_buf;
    return true;
}

/* Inflate a compressed cluster (raw deflate) into out (one cluster). */
static bool decompress(Qcow2State *s, uint64_t e, uint8_t *out, Error **errp)
{
    if (s->zcache && s->zcache_entry == e) {
        memcpy(out, s->zcache, s->cluster_size);
        return true;
    }
    uint64_t coff = e & s->coffset_mask;
    uint64_t nsec = ((e >> s->csize_shift) & s->csize_mask) + 1;
    uint64_t csize = nsec * 512 - (coff & 511);
    uint8_t *in = xmalloc(csize);
    bool ok = qcow2_pread_all(s, coff, in, csize, errp);
    if (ok) {
        z_stream z;
        memset(&z, 0, sizeof(z));
        ok = inflateInit2(&z, -12) == Z_OK;
        if (ok) {
            z.next_in = in;
            z.avail_in = (uInt)csize;
            z.next_out = out;
            z.avail_out = (uInt)s->cluster_size;
            int ret = inflate(&z, Z_FINISH);
            ok =
                (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && z.avail_out == 0;
            inflateEnd(&z);
        }
        if (!ok) {
            error_setg(errp,
                       "compressed cluster at %#" PRIx64 " does not "
                       "inflate to %" PRIu64 " bytes",
                       coff, s->cluster_size);
        }
    }
    free(in);
    if (ok) {
        if (!s->zcache) {
            s->zcache = xmalloc(s->cluster_size);
        }
        memcpy(s->zcache, out, s->cluster_size);
        s->zcache_entry = e;
    }
    return ok;
}

static bool data_offset_ok(const Qcow2State *s, uint64_t e, Error **errp)
{
    if ((e & QCOW2_OFFSET_MASK) & (s->cluster_size - 1)) {
        error_setg(errp,
                   "L2 entry %#" PRIx64 " points to an unaligned "
                   "cluster: the image is corrupt",
                   e);
        return false;
    }
    return true;
}

bool qcow2_read_view(Qcow2State *s, struct qcow2_view *v, uint64_t off,
                     void *buf, size_t len, Error **errp)
{
    uint8_t *p = buf;
    uint8_t *tmp = NULL;
    bool ok = true;
    while (ok && len > 0) {
        uint64_t in_cluster = off & (s->cluster_size - 1);
        uint64_t l2i = l2_index(s, off);
        uint64_t span = (s->l2_entries - l2i) * s->cluster_size - in_cluster;
        if (span > len) {
            span = len;
        }
        uint64_t *t;
        if (!view_l2(s, v, l1_index(s, off), &t, errp)) {
            ok = false;
            break;
        }
        for (uint64_t done = 0; ok && done < span;) {
            uint64_t coff = (in_cluster + done) & (s->cluster_size - 1);
            uint64_t k = l2i + ((in_cluster + done) >> s->cluster_bits);
            uint64_t n = s->cluster_size - coff;
            if (n > span - done) {
                n = span - done;
            }
            uint64_t e = t ? be64_get(&t[k]) : 0;
            switch (entry_type(s, e)) {
            case CT_UNALLOCATED:
                /* The clusters unallocated from here on: one read. */
                for (uint64_t g = 1; done + n < span; g++) {
                    if (t &&
                        entry_type(s, be64_get(&t[k + g])) != CT_UNALLOCATED) {
                        break;
                    }
                    uint64_t more = span - done - n;
                    n += more < s->cluster_size ? more : s->cluster_size;
                }
                ok = read_backing(s, off + done, p + done, n, v->backing_end,
                                  errp);
                break;
            case CT_ZERO:
                memset(p + done, 0, n);
                break;
            case CT_COMPRESSED:
                if (!tmp) {
                    tmp = xmalloc(s->cluster_size);
                }
                ok = decompress(s, e, tmp, errp);
                if (ok) {
                    memcpy(p + done, tmp + coff, n);
                }
                break;
            case CT_NORMAL: {
                if (!(ok = data_offset_ok(s, e, errp))) {
                    break;
                }
                uint64_t host = e & QCOW2_OFFSET_MASK;
                /* Following clusters stored right after: one read. */
                uint64_t g = 1;
                while (done + n < span) {
                    uint64_t e2 = be64_get(&t[k + g]);
                    if (entry_type(s, e2) != CT_NORMAL ||
                        (e2 & QCOW2_OFFSET_MASK) !=
                            host + g * s->cluster_size) {
                        break;
                    }
                    uint64_t more = span - done - n;
                    n += more < s->cluster_size ? more : s->cluster_size;
                    g++;
                }
                ok = qcow2_pread_all(s, host + coff, p + done, n, errp);
                break;
            }
            }
            done += n;
        }
        p += span;
        off += span;
        len -= span;
    }
    free(tmp);
    return ok;
}

/* ---- writing ---- */

static bool grow_l1(Qcow2State *s, uint64_t need, Error **errp)
{
    uint64_t clusters = qcow2_clusters(s, need * 8);
    uint64_t size = clusters * s->cluster_size / 8;
    if (size * 8 > QCOW2_MAX_L1_BYTES) {
        size = QCOW2_MAX_L1_BYTES / 8;
    }
    if (need > size) {
        error_setg(errp, "offset beyond what an L1 table can map");
        return false;
    }
    uint64_t off = qcow2_alloc_clusters(s, clusters, errp);
    if (!off) {
        return false;
    }
    qcow2_meta_mark(s, off, clusters * s->cluster_size);
    if (s->l1_moved && s->l1_size &&
        !qcow2_rc_add_range(s, s->l1_offset, (uint64_t)s->l1_size * 8, -1,
                            errp)) {
        return false; /* (the previous new table never reached disk) */
    }
    uint64_t *l1 = xrealloc(s->l1, size * sizeof(*l1));
    struct qcow2_l2_slot *l2 = xrealloc(s->l2, size * sizeof(*l2));
    memset(l1 + s->l1_size, 0, (size - s->l1_size) * sizeof(*l1));
    memset(l2 + s->l1_size, 0, (size - s->l1_size) * sizeof(*l2));
    s->l1 = l1;
    s->l2 = l2;
    s->l1_size = (uint32_t)size;
    s->l1_offset = off;
    s->l1_moved = true;
    s->l1_dirty = true;
    return true;
}

/* The active L2 table for writing: allocated if missing, copied if shared
 * with a snapshot (its L1 entry lacks COPIED). */
static bool l2_for_write(Qcow2State *s, uint32_t i, uint64_t **table,
                         Error **errp)
{
    if (i >= s->l1_size && !grow_l1(s, (uint64_t)i + 1, errp)) {
        return false;
    }
    uint64_t e = s->l1[i];
    if (!(e & QCOW2_OFFSET_MASK)) {
        uint64_t off = qcow2_alloc_clusters(s, 1, errp);
        if (!off) {
            return false;
        }
        qcow2_meta_mark(s, off, s->cluster_size);
        uint64_t *t = xcalloc(1, s->cluster_size);
        if (s->l2[i].table) {
            free(s->l2[i].table);
        } else {
            s->l2_cached++;
        }
        s->l2[i].table = t;
        s->l2[i].dirty = true;
        s->l1[i] = off | QCOW2_OFLAG_COPIED;
        s->l1_dirty = true;
        *table = t;
        return true;
    }
    if (!qcow2_get_l2(s, i, table, errp)) {
        return false;
    }
    if (e & QCOW2_OFLAG_COPIED) {
        return true;
    }
    uint64_t off = qcow2_alloc_clusters(s, 1, errp);
    if (!off) {
        return false;
    }
    qcow2_meta_mark(s, off, s->cluster_size);
    uint64_t *t = *table;
    for (uint64_t k = 0; k < s->l2_entries; k++) {
        uint64_t l2e = be64_get(&t[k]) & ~QCOW2_OFLAG_COPIED;
        uint64_t ho, hl;
        if (!(l2e & QCOW2_OFLAG_COMPRESSED) &&
            qcow2_entry_host_range(s, l2e, &ho, &hl) &&
            qcow2_rc_get(s, ho >> s->cluster_bits) == 1) {
            l2e |= QCOW2_OFLAG_COPIED;
        }
        be64_put(&t[k], l2e);
    }
    /* The data keeps its count: the new table takes over the active
     * layer's reference from the old one, which loses one. */
    qcow2_defer_free(s, e & QCOW2_OFFSET_MASK, s->cluster_size);
    s->l1[i] = off | QCOW2_OFLAG_COPIED;
    s->l1_dirty = true;
    s->l2[i].dirty = true;
    return true;
}

struct iov_cursor {
    const struct iovec *iov;
    int cnt;
    int i;
    size_t pos;
};

/* Append the next len bytes of the cursor to out[*n]. */
static void iov_take(struct iov_cursor *c, size_t len, struct iovec *out,
                     int *n)
{
    while (len > 0 && c->i < c->cnt) {
        size_t avail = c->iov[c->i].iov_len - c->pos;
        size_t take = avail < len ? avail : len;
        if (take) {
            out[*n].iov_base = (uint8_t *)c->iov[c->i].iov_base + c->pos;
            out[*n].iov_len = take;
            (*n)++;
        }
        c->pos += take;
        len -= take;
        if (c->pos == c->iov[c->i].iov_len) {
            c->i++;
            c->pos = 0;
        }
    }
}

static void iov_copy(struct iov_cursor *c, uint8_t *dst, size_t len)
{
    while (len > 0 && c->i < c->cnt) {
        size_t avail = c->iov[c->i].iov_len - c->pos;
        size_t take = avail < len ? avail : len;
        memcpy(dst, (const uint8_t *)c->iov[c->i].iov_base + c->pos, take);
        dst += take;
        c->pos += take;
        len -= take;
        if (c->pos == c->iov[c->i].iov_len) {
            c->i++;
            c->pos = 0;
        }
    }
}

static bool pwritev_all(Qcow2State *s, uint64_t off, struct iovec *iov, int n,
                        Error **errp)
{
    if (!fault_inject("qcow2-write", errp)) {
        return false;
    }
    uint64_t end = off;
    for (int i = 0; i < n; i++) {
        end += iov[i].iov_len;
    }
    if (!io_pwritev_full(s->fd, iov, n, off)) {
        error_setg_errno(errp, errno, "write at %#" PRIx64, off);
        return false;
    }
    if (end > s->file_size) {
        s->file_size = end;
    }
    return true;
}

/* The current content of the cluster at guest offset guest, about to be
 * replaced (a partial write keeps the rest: copy-on-write from the
 * backing file for an unallocated one). */
static bool old_content(Qcow2State *s, uint64_t e, uint64_t guest, uint8_t *buf,
                        Error **errp)
{
    switch (entry_type(s, e)) {
    case CT_UNALLOCATED:
        return read_backing(s, guest, buf, s->cluster_size, s->disk_size, errp);
    case CT_COMPRESSED:
        return decompress(s, e, buf, errp);
    case CT_NORMAL:
        return data_offset_ok(s, e, errp) &&
            qcow2_pread_all(s, e & QCOW2_OFFSET_MASK, buf, s->cluster_size,
                            errp);
    default:
        memset(buf, 0, s->cluster_size);
        return true;
    }
}

static bool in_place(const Qcow2State *s, uint64_t e)
{
    return entry_type(s, e) == CT_NORMAL && (e & QCOW2_OFLAG_COPIED);
}

struct write_ctx {
    struct iovec *out;
    uint8_t *head;
    uint8_t *tail;
};

/* Write bytes [start, end) of clusters t[k..k+g) (offsets relative to
 * cluster k, which is at guest offset guest) into g newly allocated
 * contiguous clusters. */
static bool write_new_clusters(Qcow2State *s, struct write_ctx *w,
                               struct iov_cursor *cur, uint64_t *t, uint64_t k,
                               uint64_t guest, uint64_t g, uint64_t start,
                               uint64_t end, Error **errp)
{
    uint64_t cs = s->cluster_size;
    uint64_t base = qcow2_alloc_clusters(s, g, errp);
    if (!base) {
        return false;
    }
    int n = 0;
    uint64_t first_end = end < cs ? end : cs;
    if (start > 0 || first_end < cs) {
        if (!old_content(s, be64_get(&t[k]), guest, w->head, errp)) {
            return false;
        }
        iov_copy(cur, w->head + start, first_end - start);
        w->out[n++] = (struct iovec){ w->head, cs };
    } else {
        iov_take(cur, cs, w->out, &n);
    }
    if (g > 1) {
        uint64_t last_start = (g - 1) * cs;
        if (g > 2) {
            iov_take(cur, last_start - cs, w->out, &n);
        }
        uint64_t last_len = end - last_start;
        if (last_len < cs) {
            if (!old_content(s, be64_get(&t[k + g - 1]), guest + (g - 1) * cs,
                             w->tail, errp)) {
                return false;
            }
            iov_copy(cur, w->tail, last_len);
            w->out[n++] = (struct iovec){ w->tail, cs };
        } else {
            iov_take(cur, cs, w->out, &n);
        }
    }
    if (!fault_inject("qcow2-before-data", errp) ||
        !pwritev_all(s, base, w->out, n, errp)) {
        return false;
    }
    for (uint64_t q = 0; q < g; q++) {
        uint64_t old = be64_get(&t[k + q]);
        uint64_t ho, hl;
        if (qcow2_entry_host_range(s, old, &ho, &hl)) {
            qcow2_defer_free(s, ho, hl);
        }
        be64_put(&t[k + q], (base + q * cs) | QCOW2_OFLAG_COPIED);
    }
    return true;
}

bool qcow2_write_iov(Qcow2State *s, uint64_t off, const struct iovec *iov,
                     int iovcnt, Error **errp)
{
    if (s->readonly) {
        error_setg(errp, "image is read-only");
        return false;
    }
    if (s->corrupt) {
        error_setg(errp,
                   "'%s': the image is marked corrupt; writes are "
                   "refused",
                   s->name);
        return false;
    }
    uint64_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        total += iov[i].iov_len;
    }
    uint64_t cs = s->cluster_size;
    uint64_t limit = (uint64_t)(QCOW2_MAX_L1_BYTES / 8) * cs * s->l2_entries;
    if (off > limit || total > limit - off) {
        error_setg(errp, "write at %#" PRIx64 " is beyond what qcow2 can map",
                   off);
        return false;
    }
    struct iov_cursor cur = { iov, iovcnt, 0, 0 };
    struct write_ctx w = {
        .out = xmalloc(((size_t)iovcnt + 2) * sizeof(struct iovec)),
        .head = xmalloc(cs),
        .tail = xmalloc(cs),
    };
    bool ok = true;
    while (ok && total > 0) {
        uint64_t in_cluster = off & (cs - 1);
        uint64_t l2i = l2_index(s, off);
        uint32_t l1i = l1_index(s, off);
        uint64_t span = (s->l2_entries - l2i) * cs - in_cluster;
        if (span > total) {
            span = total;
        }
        uint64_t *t;
        if (!(ok = l2_for_write(s, l1i, &t, errp))) {
            if (s->corrupt) {
                error_prepend(
                    errp, "'%s': write at guest offset 0x%" PRIx64 " refused: ",
                    s->name, off);
            }
            break;
        }
        uint64_t end = in_cluster + span; /* relative to cluster l2i */
        uint64_t nclusters = (end + cs - 1) / cs;
        for (uint64_t j = 0; ok && j < nclusters;) {
            uint64_t e = be64_get(&t[l2i + j]);
            bool inplace = in_place(s, e);
            uint64_t g = 1;
            while (j + g < nclusters) {
                uint64_t e2 = be64_get(&t[l2i + j + g]);
                if (in_place(s, e2) != inplace ||
                    (inplace &&
                     (e2 & QCOW2_OFFSET_MASK) !=
                         (e & QCOW2_OFFSET_MASK) + g * cs)) {
                    break;
                }
                g++;
            }
            uint64_t gs = j * cs > in_cluster ? j * cs : in_cluster;
            uint64_t ge = (j + g) * cs < end ? (j + g) * cs : end;
            uint64_t guest = off - in_cluster; /* of cluster l2i */
            if (inplace) {
                uint64_t host = (e & QCOW2_OFFSET_MASK) + (gs - j * cs);
                uint64_t hit;
                if (!qcow2_meta_check(s, host, ge - gs, &hit, errp)) {
                    uint64_t at = j * cs + (hit - (e & QCOW2_OFFSET_MASK));
                    error_prepend(errp,
                                  "'%s': write at guest offset 0x%" PRIx64
                                  " refused: ",
                                  s->name, guest + (at > gs ? at : gs));
                    ok = false;
                    break;
                }
                int n = 0;
                iov_take(&cur, ge - gs, w.out, &n);
                ok = pwritev_all(s, host, w.out, n, errp);
            } else {
                ok = write_new_clusters(s, &w, &cur, t, l2i + j, guest + j * cs,
                                        g, gs - j * cs, ge - j * cs, errp);
                s->l2[l1i].dirty = true;
                if (!ok && s->corrupt) {
                    error_prepend(errp,
                                  "'%s': write at guest offset 0x%" PRIx64
                                  " refused: ",
                                  s->name, guest + gs);
                }
            }
            j += g;
        }
        off += span;
        total -= span;
    }
    free(w.out);
    free(w.head);
    free(w.tail);
    return ok;
}

bool qcow2_is_allocated(BlockDev *bs, uint64_t off, uint64_t len,
                        bool *allocated, uint64_t *pnum, Error **errp)
{
    Qcow2State *s = bs->opaque;
    uint64_t *t;
    if (!qcow2_get_l2(s, l1_index(s, off), &t, errp)) {
        return false;
    }
    /* As far as this L2 table reaches, and len. */
    uint64_t l2i = l2_index(s, off);
    uint64_t in_cluster = off & (s->cluster_size - 1);
    uint64_t span = (s->l2_entries - l2i) * s->cluster_size - in_cluster;
    if (span > len) {
        span = len;
    }
    uint64_t e = t ? be64_get(&t[l2i]) : 0;
    *allocated = entry_type(s, e) != CT_UNALLOCATED;
    uint64_t n = s->cluster_size - in_cluster;
    for (uint64_t k = l2i + 1; n < span; k++) {
        uint64_t e2 = t ? be64_get(&t[k]) : 0;
        if ((entry_type(s, e2) != CT_UNALLOCATED) != *allocated) {
            break;
        }
        n += s->cluster_size;
    }
    *pnum = n < span ? n : span;
    return true;
}

static bool write_l1(Qcow2State *s, Error **errp)
{
    size_t bytes = (size_t)s->l1_size * 8;
    uint8_t *raw = xmalloc(bytes ? bytes : 1);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        be64_put(raw + 8 * i, s->l1[i]);
    }
    bool ok = qcow2_pwrite_all(s, s->l1_offset, raw, bytes, errp);
    free(raw);
    return ok;
}

bool qcow2_flush_metadata(Qcow2State *s, Error **errp)
{
    if (s->readonly) {
        return true;
    }
    if (s->corrupt) {
        error_setg(errp,
                   "'%s': the image is marked corrupt; its metadata "
                   "is left as it is",
                   s->name);
        return false;
    }
    /* 1. refcount increments (and the data written so far) */
    if (!qcow2_refcount_write(s, errp) || !qcow2_sync(s, errp)) {
        return false;
    }
    if (!fault_inject("qcow2-flush-refcounts", errp)) {
        return false;
    }
    /* 2. L2 tables, then the L1 entries that point at new ones */
    bool any = false;
    for (uint32_t i = 0; i < s->l1_size; i++) {
        if (s->l2[i].dirty) {
            if (!qcow2_pwrite_all(s, s->l1[i] & QCOW2_OFFSET_MASK,
                                  s->l2[i].table, s->cluster_size, errp)) {
                return false;
            }
            s->l2[i].dirty = false;
            any = true;
        }
    }
    if (!fault_inject("qcow2-flush-l2", errp)) {
        return false;
    }
    if (any && !qcow2_sync(s, errp)) {
        return false;
    }
    if (s->l1_moved) {
        if (!write_l1(s, errp) || !qcow2_sync(s, errp)) {
            return false;
        }
        if (!fault_inject("qcow2-flush-l1-table", errp)) {
            return false;
        }
        uint64_t old = s->h.l1_table_offset;
        uint64_t old_bytes = (uint64_t)s->h.l1_size * 8;
        s->h.l1_size = s->l1_size;
        s->h.l1_table_offset = s->l1_offset;
        if (!qcow2_write_header_pointers(s, errp) || !qcow2_sync(s, errp)) {
            return false;
        }
        s->l1_moved = false;
        s->l1_dirty = false;
        qcow2_defer_free(s, old, old_bytes);
    } else if (s->l1_dirty) {
        if (!write_l1(s, errp) || !qcow2_sync(s, errp)) {
            return false;
        }
        s->l1_dirty = false;
    }
    if (!fault_inject("qcow2-flush-l1", errp)) {
        return false;
    }
    /* 3. clusters that lost a reference */
    if (!qcow2_apply_pending_frees(s, errp)) {
        return false;
    }
    fault_exit_point("qcow2-flush-done");
    return true;
}
