/* qcow2 refcounts: every host cluster's count lives in memory (rc[]),
 * loaded at open; refcount blocks are written back from it in the order
 * qcow2.h describes.  Allocation is first-fit over clusters whose count is
 * zero (and, during a rebuild, zero in the on-disk generation too). */
#include "block/qcow2.h"
#include "util/fault.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

uint64_t qcow2_rc_get(const Qcow2State *s, uint64_t cluster)
{
    return cluster < s->rc_len ? s->rc[cluster] : 0;
}

static void *xrealloc_zero(void *p, size_t old_n, size_t new_n, size_t elem)
{
    uint8_t *q = xrealloc(p, new_n * elem);
    if (new_n > old_n) {
        memset(q + old_n * elem, 0, (new_n - old_n) * elem);
    }
    return q;
}

void qcow2_rc_set(Qcow2State *s, uint64_t cluster, uint64_t value)
{
    if (cluster >= s->rc_len) {
        if (!value) {
            return;
        }
        uint64_t n = s->rc_len ? s->rc_len : 1024;
        while (n <= cluster) {
            n *= 2;
        }
        s->rc = xrealloc_zero(s->rc, s->rc_len, n, sizeof(*s->rc));
        s->rc_len = n;
    }
    s->rc[cluster] = value;
    uint64_t idx = cluster / s->rb_entries;
    if (idx < s->rt_entries) {
        s->rb_dirty[idx] = 1;
    }
    if (value && cluster >= s->used_end) {
        s->used_end = cluster + 1;
    }
    if (!value && cluster < s->free_hint && cluster > 0) {
        s->free_hint = cluster;
    }
    if (!value) {
        qcow2_bits_clear(&s->meta, cluster); /* no longer metadata */
    }
}

bool qcow2_rc_add_range(Qcow2State *s, uint64_t offset, uint64_t len,
                        int64_t delta, Error **errp)
{
    if (len == 0) {
        return true;
    }
    uint64_t first = offset >> s->cluster_bits;
    uint64_t last = (offset + len - 1) >> s->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        uint64_t v = qcow2_rc_get(s, c);
        if (delta < 0 && v < (uint64_t)-delta) {
            error_setg(errp, "refcount of cluster %llu would drop below zero",
                       (unsigned long long)c);
            return false;
        }
        if (delta > 0 && s->refcount_max - v < (uint64_t)delta) {
            error_setg(errp, "refcount of cluster %llu would exceed %u bits",
                       (unsigned long long)c, s->refcount_bits);
            return false;
        }
        qcow2_rc_set(s, c, v + (uint64_t)delta);
    }
    return true;
}

static bool is_free(const Qcow2State *s, uint64_t c)
{
    if (qcow2_rc_get(s, c)) {
        return false;
    }
    return !s->rc_old || c >= s->rc_old_len || s->rc_old[c] == 0;
}

/* First-fit run of n free clusters; counts set to 1.  No coverage fix. */
static uint64_t alloc_raw(Qcow2State *s, uint64_t n, Error **errp)
{
    uint64_t c = s->free_hint ? s->free_hint : 1;
    uint64_t start = c, run = 0;
    while (run < n) {
        if (is_free(s, c)) {
            if (run == 0) {
                start = c;
            }
            run++;
        } else {
            run = 0;
        }
        c++;
    }
    if (((start + n) << s->cluster_bits) > QCOW2_OFFSET_MASK + 1 ||
        start + n > (UINT64_MAX >> s->cluster_bits)) {
        error_setg(errp, "image would grow past the largest qcow2 offset");
        return 0;
    }
    /* A count of zero on a metadata cluster: the refcounts are corrupt. */
    uint64_t hit;
    if (!qcow2_meta_check(s, start << s->cluster_bits, n << s->cluster_bits,
                          &hit, errp)) {
        return 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        qcow2_rc_set(s, start + i, 1);
    }
    if (s->free_hint == start || s->free_hint == 0) {
        s->free_hint = start + n;
    }
    return start << s->cluster_bits;
}

/* Make the refcount table and blocks cover every cluster in use,
 * allocating blocks and growing (moving) the table as needed. */
static bool ensure_coverage(Qcow2State *s, Error **errp)
{
    for (;;) {
        uint64_t need = (s->used_end + s->rb_entries - 1) / s->rb_entries;
        if (need > s->rt_entries) {
            uint64_t want = need + need / 2 + 1;
            uint64_t clusters = qcow2_clusters(s, want * 8);
            if (clusters * s->cluster_size > QCOW2_MAX_RT_BYTES) {
                error_setg(errp, "refcount table would exceed %u MiB",
                           QCOW2_MAX_RT_BYTES >> 20);
                return false;
            }
            uint64_t entries = clusters * s->cluster_size / 8;
            if (s->rt_clusters && s->rt_offset != s->rt_disk_offset) {
                /* a table allocated since the last write: never on disk */
                for (uint64_t i = 0; i < s->rt_clusters; i++) {
                    qcow2_rc_set(s, (s->rt_offset >> s->cluster_bits) + i, 0);
                }
            }
            s->rt =
                xrealloc_zero(s->rt, s->rt_entries, entries, sizeof(*s->rt));
            s->rb_dirty = xrealloc_zero(s->rb_dirty, s->rt_entries, entries, 1);
            s->rt_entries = entries;
            uint64_t off = alloc_raw(s, clusters, errp);
            if (!off) {
                return false;
            }
            qcow2_meta_mark(s, off, clusters * s->cluster_size);
            s->rt_offset = off;
            s->rt_clusters = (uint32_t)clusters;
            s->rt_moved = true;
            s->rt_dirty = true;
            continue;
        }
        bool changed = false;
        for (uint64_t i = 0; i < need; i++) {
            if (!s->rt[i]) {
                uint64_t off = alloc_raw(s, 1, errp);
                if (!off) {
                    return false;
                }
                qcow2_meta_mark(s, off, s->cluster_size);
                s->rt[i] = off;
                s->rb_dirty[i] = 1;
                s->rt_dirty = true;
                changed = true;
            }
        }
        if (!changed) {
            return true;
        }
    }
}

uint64_t qcow2_alloc_clusters(Qcow2State *s, uint64_t n, Error **errp)
{
    uint64_t off = alloc_raw(s, n, errp);
    if (off && !ensure_coverage(s, errp)) {
        return 0;
    }
    return off;
}

bool qcow2_refcount_cover(Qcow2State *s, Error **errp)
{
    return ensure_coverage(s, errp);
}

void qcow2_defer_free(Qcow2State *s, uint64_t offset, uint64_t len)
{
    if (!len) {
        return;
    }
    if (s->npending == s->pending_cap) {
        s->pending_cap = s->pending_cap ? s->pending_cap * 2 : 64;
        s->pending = xrealloc(s->pending, s->pending_cap * sizeof(*s->pending));
    }
    s->pending[s->npending++] = (struct qcow2_free){ offset, len };
}

uint64_t qcow2_refblock_get(const Qcow2State *s, const uint8_t *blk, uint64_t i)
{
    uint32_t order = s->h.refcount_order;
    switch (order) {
    case 3:
        return blk[i];
    case 4:
        return be16_get(blk + 2 * i);
    case 5:
        return be32_get(blk + 4 * i);
    case 6:
        return be64_get(blk + 8 * i);
    default: {
        uint32_t bits = 1u << order;
        uint64_t bit = i * bits;
        return (blk[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    }
}

static void refblock_set(const Qcow2State *s, uint8_t *blk, uint64_t i,
                         uint64_t v)
{
    uint32_t order = s->h.refcount_order;
    switch (order) {
    case 3:
        blk[i] = (uint8_t)v;
        break;
    case 4:
        be16_put(blk + 2 * i, (uint16_t)v);
        break;
    case 5:
        be32_put(blk + 4 * i, (uint32_t)v);
        break;
    case 6:
        be64_put(blk + 8 * i, v);
        break;
    default: {
        uint32_t bits = 1u << order;
        uint64_t bit = i * bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
        blk[bit / 8] =
            (uint8_t)((blk[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
    }
    }
}

void qcow2_serialize_refblock(const Qcow2State *s, uint64_t index, uint8_t *out)
{
    memset(out, 0, s->cluster_size);
    uint64_t base = index * s->rb_entries;
    for (uint64_t i = 0; i < s->rb_entries && base + i < s->rc_len; i++) {
        if (s->rc[base + i]) {
            refblock_set(s, out, i, s->rc[base + i]);
        }
    }
}

bool qcow2_refcount_load(Qcow2State *s, Error **errp)
{
    s->refcount_bits = 1u << s->h.refcount_order;
    s->refcount_max =
        s->refcount_bits == 64 ? UINT64_MAX : (1ULL << s->refcount_bits) - 1;
    s->rb_entries = s->cluster_size * 8 / s->refcount_bits;
    s->rt_offset = s->rt_disk_offset = s->h.refcount_table_offset;
    s->rt_clusters = s->rt_disk_clusters = s->h.refcount_table_clusters;
    s->rt_entries = (uint64_t)s->rt_clusters * s->cluster_size / 8;
    s->rt = xcalloc(s->rt_entries ? s->rt_entries : 1, sizeof(*s->rt));
    s->rb_dirty = xcalloc(s->rt_entries ? s->rt_entries : 1, 1);
    uint8_t *blk = xmalloc(s->cluster_size);
    uint64_t rt_bytes = s->rt_entries * 8;
    uint8_t *raw = xmalloc(rt_bytes ? rt_bytes : 1);
    bool ok = qcow2_pread_all(s, s->rt_offset, raw, rt_bytes, errp);
    /* Only the blocks for clusters inside the file hold counts worth
     * keeping: reading just those keeps a table that names one block a
     * million times as cheap as the file is small.  (A block named twice
     * cannot be written back: writable opens refuse it, qcow2_meta_build.) */
    uint64_t file_clusters = s->file_size >> s->cluster_bits;
    uint64_t useful = file_clusters / s->rb_entries + 1;
    for (uint64_t i = 0; ok && i < s->rt_entries; i++) {
        uint64_t e = be64_get(raw + 8 * i);
        s->rt[i] = e;
        uint64_t off = e & ~QCOW2_RTE_RESERVED;
        if (!e) {
            continue;
        }
        if ((e & QCOW2_RTE_RESERVED) || (off & (s->cluster_size - 1)) ||
            off >= s->file_size) {
            s->rb_bad++; /* reported by check; refused for writing */
            continue;
        }
        if (i >= useful) {
            continue;
        }
        if (!qcow2_pread_all(s, off, blk, s->cluster_size, errp)) {
            ok = false;
            break;
        }
        uint64_t base = i * s->rb_entries;
        for (uint64_t j = 0; j < s->rb_entries && base + j <= file_clusters;
             j++) {
            uint64_t v = qcow2_refblock_get(s, blk, j);
            if (v) {
                qcow2_rc_set(s, base + j, v);
            }
        }
    }
    free(raw);
    free(blk);
    memset(s->rb_dirty, 0, s->rt_entries ? s->rt_entries : 1);
    s->free_hint = 1;
    return ok;
}

void qcow2_refcount_free(Qcow2State *s)
{
    free(s->rc);
    free(s->rc_old);
    free(s->rt);
    free(s->rb_dirty);
    free(s->pending);
    s->rc = s->rc_old = s->rt = NULL;
    s->rb_dirty = NULL;
    s->pending = NULL;
}

static bool write_table(Qcow2State *s, Error **errp)
{
    uint64_t bytes = (uint64_t)s->rt_clusters * s->cluster_size;
    uint8_t *raw = xcalloc(1, bytes);
    for (uint64_t i = 0; i < s->rt_entries && i < bytes / 8; i++) {
        be64_put(raw + 8 * i, s->rt[i]);
    }
    bool ok = qcow2_pwrite_all(s, s->rt_offset, raw, bytes, errp);
    free(raw);
    return ok;
}

static bool write_dirty_blocks(Qcow2State *s, Error **errp)
{
    uint8_t *blk = xmalloc(s->cluster_size);
    bool ok = true;
    for (uint64_t i = 0; ok && i < s->rt_entries; i++) {
        if (s->rb_dirty[i] && s->rt[i]) {
            qcow2_serialize_refblock(s, i, blk);
            ok = qcow2_pwrite_all(s, s->rt[i] & ~QCOW2_RTE_RESERVED, blk,
                                  s->cluster_size, errp);
            s->rb_dirty[i] = 0;
        }
    }
    free(blk);
    return ok;
}

bool qcow2_refcount_write(Qcow2State *s, Error **errp)
{
    if (!write_dirty_blocks(s, errp)) {
        return false;
    }
    if (!fault_inject("qcow2-refblocks", errp)) {
        return false;
    }
    if (!s->rt_dirty) {
        return true;
    }
    /* Blocks before the table entries that point at them. */
    if (!qcow2_sync(s, errp) || !write_table(s, errp) || !qcow2_sync(s, errp)) {
        return false;
    }
    s->rt_dirty = false;
    if (!fault_inject("qcow2-reftable", errp)) {
        return false;
    }
    if (s->rt_moved) {
        uint64_t old = s->rt_disk_offset;
        uint32_t old_clusters = s->rt_disk_clusters;
        s->h.refcount_table_offset = s->rt_offset;
        s->h.refcount_table_clusters = s->rt_clusters;
        if (!qcow2_write_header_pointers(s, errp) || !qcow2_sync(s, errp)) {
            return false;
        }
        s->rt_disk_offset = s->rt_offset;
        s->rt_disk_clusters = s->rt_clusters;
        s->rt_moved = false;
        qcow2_defer_free(s, old, (uint64_t)old_clusters * s->cluster_size);
        fault_exit_point("qcow2-reftable-header");
    }
    return true;
}

bool qcow2_apply_pending_frees(Qcow2State *s, Error **errp)
{
    while (s->npending) {
        size_t n = s->npending;
        s->npending = 0;
        for (size_t i = 0; i < n; i++) {
            if (!qcow2_rc_add_range(s, s->pending[i].offset, s->pending[i].len,
                                    -1, errp)) {
                return false;
            }
        }
        /* Writing may move the table, which frees the old one: loop. */
        if (!qcow2_refcount_write(s, errp) || !qcow2_sync(s, errp)) {
            return false;
        }
    }
    return true;
}

bool qcow2_refcount_relocate(Qcow2State *s, Error **errp)
{
    free(s->rt);
    free(s->rb_dirty);
    s->rt = NULL;
    s->rb_dirty = NULL;
    s->rt_entries = 0;
    s->rt_offset = 0;
    s->rt_clusters = 0;
    if (!ensure_coverage(s, errp)) {
        return false;
    }
    memset(s->rb_dirty, 1, s->rt_entries);
    s->rt_dirty = true;
    s->rt_moved = true;
    return true;
}

bool qcow2_refcount_write_fresh(Qcow2State *s, Error **errp)
{
    if (!write_dirty_blocks(s, errp) || !write_table(s, errp)) {
        return false;
    }
    s->rt_dirty = false;
    return true;
}
