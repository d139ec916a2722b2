/* The metadata map: one bit per host cluster that holds metadata (the
 * header, the L1 table, active L2 tables, the refcount table and blocks,
 * the snapshot table and the snapshots' L1 tables), built once when an
 * image is opened for writing and kept up to date as metadata is
 * allocated and freed.  A guest write in place or an allocation that lands
 * on one of these clusters would overwrite metadata: it is refused and the
 * image marked corrupt, as QEMU's overlap check does. */
#include "block/qcow2.h"
#include "util/alloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool qcow2_bits_test(const struct qcow2_bits *b, uint64_t i)
{
    return i < b->nbits && (b->w[i / 64] >> (i % 64)) & 1;
}

void qcow2_bits_set(struct qcow2_bits *b, uint64_t i)
{
    if (i >= b->nbits) {
        uint64_t n = b->nbits ? b->nbits : 4096;
        while (n <= i) {
            n *= 2;
        }
        uint64_t *w = xrealloc(b->w, n / 8);
        memset(w + b->nbits / 64, 0, (n - b->nbits) / 8);
        b->w = w;
        b->nbits = n;
    }
    b->w[i / 64] |= 1ULL << (i % 64);
}

void qcow2_bits_clear(struct qcow2_bits *b, uint64_t i)
{
    if (i < b->nbits) {
        b->w[i / 64] &= ~(1ULL << (i % 64));
    }
}

void qcow2_bits_free(struct qcow2_bits *b)
{
    free(b->w);
    b->w = NULL;
    b->nbits = 0;
}

/* The first set bit in [first, first+n), word by word; false if none. */
static bool bits_find(const struct qcow2_bits *b, uint64_t first, uint64_t n,
                      uint64_t *hit)
{
    uint64_t end = first + n < b->nbits ? first + n : b->nbits;
    for (uint64_t i = first; i < end;) {
        uint64_t word = b->w[i / 64] >> (i % 64);
        if (word) {
            uint64_t at = i + (uint64_t)__builtin_ctzll(word);
            if (at < end) {
                *hit = at;
                return true;
            }
            return false;
        }
        i = (i / 64 + 1) * 64;
    }
    return false;
}

static bool in_range(const Qcow2State *s, uint64_t c, uint64_t off,
                     uint64_t len)
{
    return len && c >= off >> s->cluster_bits &&
        c <= (off + len - 1) >> s->cluster_bits;
}

enum meta_kind {
    MK_HEADER,
    MK_RT,
    MK_RB,
    MK_L1,
    MK_L2,
    MK_SNAPTABLE,
    MK_SNAPL1
};

static void describe(const Qcow2State *s, enum meta_kind k, uint64_t i,
                     char *buf, size_t n)
{
    switch (k) {
    case MK_HEADER:
        snprintf(buf, n, "the header");
        break;
    case MK_RT:
        snprintf(buf, n, "the refcount table");
        break;
    case MK_RB:
        snprintf(buf, n, "a refcount block (refcount table entry %" PRIu64 ")",
                 i);
        break;
    case MK_L1:
        snprintf(buf, n, "the L1 table");
        break;
    case MK_L2:
        snprintf(buf, n, "an L2 table (L1 entry %" PRIu64 ")", i);
        break;
    case MK_SNAPTABLE:
        snprintf(buf, n, "the snapshot table");
        break;
    case MK_SNAPL1:
        snprintf(buf, n, "the L1 table of snapshot '%s'", s->snaps[i].name);
        break;
    }
}

/* Which structure holds host cluster c, into buf.  The structures are
 * tried in the order build() marks them, so the first that took the
 * cluster is named.  A pass over every table: only for clusters the map
 * says are metadata. */
static bool meta_owner(const Qcow2State *s, uint64_t c, char *buf, size_t n)
{
    uint64_t cs = s->cluster_size;
    enum meta_kind k;
    uint64_t idx = 0;
    if (c == 0) {
        k = MK_HEADER;
        goto found;
    }
    k = MK_RT;
    if (in_range(s, c, s->rt_offset, (uint64_t)s->rt_clusters * cs) ||
        in_range(s, c, s->rt_disk_offset, (uint64_t)s->rt_disk_clusters * cs)) {
        goto found;
    }
    k = MK_RB;
    for (idx = 0; s->rt && idx < s->rt_entries; idx++) {
        uint64_t off = s->rt[idx] & ~QCOW2_RTE_RESERVED;
        if (off && off >> s->cluster_bits == c) {
            goto found;
        }
    }
    k = MK_L1;
    if (in_range(s, c, s->l1_offset, (uint64_t)s->l1_size * 8) ||
        in_range(s, c, s->h.l1_table_offset, (uint64_t)s->h.l1_size * 8)) {
        goto found;
    }
    k = MK_L2;
    for (idx = 0; s->l1 && idx < s->l1_size; idx++) {
        uint64_t off = s->l1[idx] & QCOW2_OFFSET_MASK;
        if (off && off >> s->cluster_bits == c) {
            goto found;
        }
    }
    k = MK_SNAPTABLE;
    if (in_range(s, c, s->snapshots_offset, s->snapshots_size)) {
        goto found;
    }
    k = MK_SNAPL1;
    for (idx = 0; idx < s->nb_snaps; idx++) {
        const struct qcow2_snapshot *sn = &s->snaps[idx];
        if (qcow2_snapshot_usable(s, sn, NULL) &&
            in_range(s, c, sn->l1_table_offset, (uint64_t)sn->l1_size * 8)) {
            goto found;
        }
    }
    return false;
found:
    describe(s, k, idx, buf, n);
    return true;
}

struct builder {
    Qcow2State *s;
    bool strict; /* fail on a cluster marked twice */
    Error **errp;
    bool failed;
};

/* Mark [off, off+len), clipped to the file (what lies past its end is
 * reported by check and refused when reached). */
static void build_mark(struct builder *b, uint64_t off, uint64_t len,
                       enum meta_kind k, uint64_t index)
{
    Qcow2State *s = b->s;
    if (b->failed || !len || off >= s->file_size) {
        return;
    }
    if (len > s->file_size - off) {
        len = s->file_size - off;
    }
    uint64_t first = off >> s->cluster_bits;
    uint64_t last = (off + len - 1) >> s->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        if (b->strict && qcow2_bits_test(&s->meta, c)) {
            char owner[160], what[160];
            if (!meta_owner(s, c, owner, sizeof(owner))) {
                snprintf(owner, sizeof(owner), "other metadata");
            }
            describe(s, k, index, what, sizeof(what));
            error_setg(b->errp,
                       "host cluster 0x%" PRIx64 " holds both %s "
                       "and %s: the image is corrupt; it can only be opened "
                       "read-only (see 'hop img check')",
                       c << s->cluster_bits, owner, what);
            b->failed = true;
            return;
        }
        qcow2_bits_set(&s->meta, c);
    }
}

/* The structures in the order meta_owner tries them. */
static bool build(Qcow2State *s, bool strict, Error **errp)
{
    struct builder b = { s, strict, errp, false };
    uint64_t cs = s->cluster_size;
    qcow2_bits_free(&s->meta);
    build_mark(&b, 0, cs, MK_HEADER, 0);
    build_mark(&b, s->rt_offset, (uint64_t)s->rt_clusters * cs, MK_RT, 0);
    if (s->rt_disk_offset != s->rt_offset) {
        build_mark(&b, s->rt_disk_offset, (uint64_t)s->rt_disk_clusters * cs,
                   MK_RT, 0);
    }
    for (uint64_t i = 0; s->rt && i < s->rt_entries && !b.failed; i++) {
        uint64_t e = s->rt[i];
        if (e && !(e & QCOW2_RTE_RESERVED) && !(e & (cs - 1))) {
            build_mark(&b, e, cs, MK_RB, i);
        }
    }
    build_mark(&b, s->l1_offset, (uint64_t)s->l1_size * 8, MK_L1, 0);
    if (s->h.l1_table_offset != s->l1_offset) {
        build_mark(&b, s->h.l1_table_offset, (uint64_t)s->h.l1_size * 8, MK_L1,
                   0);
    }
    for (uint32_t i = 0; s->l1 && i < s->l1_size && !b.failed; i++) {
        uint64_t off = s->l1[i] & QCOW2_OFFSET_MASK;
        if (off && !(off & (cs - 1))) {
            build_mark(&b, off, cs, MK_L2, i);
        }
    }
    build_mark(&b, s->snapshots_offset, s->snapshots_size, MK_SNAPTABLE, 0);
    for (uint32_t i = 0; i < s->nb_snaps && !b.failed; i++) {
        /* An entry that can't be used is never read or written through:
         * its L1 claims nothing (it may claim the whole file). */
        if (!qcow2_snapshot_usable(s, &s->snaps[i], NULL)) {
            continue;
        }
        build_mark(&b, s->snaps[i].l1_table_offset,
                   (uint64_t)s->snaps[i].l1_size * 8, MK_SNAPL1, i);
    }
    return !b.failed;
}

bool qcow2_meta_build(Qcow2State *s, Error **errp)
{
    return build(s, true, errp);
}

void qcow2_meta_reset(Qcow2State *s)
{
    if (!s->readonly) {
        build(s, false, NULL);
    }
}

void qcow2_meta_mark(Qcow2State *s, uint64_t off, uint64_t len)
{
    if (!s->meta.w || !len) {
        return; /* no map: read-only, or an image being created */
    }
    uint64_t last = (off + len - 1) >> s->cluster_bits;
    for (uint64_t c = off >> s->cluster_bits; c <= last; c++) {
        qcow2_bits_set(&s->meta, c);
    }
}

bool qcow2_meta_check(Qcow2State *s, uint64_t off, uint64_t len, uint64_t *hit,
                      Error **errp)
{
    if (!len) {
        return true;
    }
    uint64_t first = off >> s->cluster_bits;
    uint64_t n = ((off + len - 1) >> s->cluster_bits) - first + 1;
    uint64_t c;
    while (bits_find(&s->meta, first, n, &c)) {
        char owner[160];
        if (meta_owner(s, c, owner, sizeof(owner))) {
            *hit = c << s->cluster_bits;
            qcow2_mark_corrupt(s);
            error_setg(errp,
                       "host cluster 0x%" PRIx64 " holds %s; the image "
                       "is now marked corrupt",
                       c << s->cluster_bits, owner);
            return false;
        }
        qcow2_bits_clear(&s->meta, c); /* its structure is gone */
        n -= c + 1 - first;
        first = c + 1;
    }
    return true;
}
