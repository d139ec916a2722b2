/* Counting references the way qemu-img check does: every structure the
 * header leads to, every L1 (active and snapshots), their L2 tables and
 * data.  The same walk recounts refcounts for snapshot rebuilds (strict:
 * any inconsistency stops the operation) and drives `hop img check`.
 *
 * Hostile images must not cost more than their size: problems are counted
 * but only the first QCOW2_CHECK_MAX_MESSAGES kept as text; L1 tables that
 * overlap one another are reported, not walked again; and each L2 table is
 * read once, its references counted as many times as L1 entries name it. */
#include "block/qcow2.h"
#include "util/alloc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One kind of problem: the calls that share a message format. */
struct qcow2_msg_kind {
    const char *fmt;
    uint64_t kept, dropped;
    char *first; /* its first message, for the summary */
};

static struct qcow2_msg_kind *msg_kind(struct qcow2_walk *w, const char *fmt)
{
    for (size_t i = 0; i < w->nkinds; i++) {
        if (w->kinds[i].fmt == fmt) {
            return &w->kinds[i];
        }
    }
    struct qcow2_msg_kind *k = xrealloc(w->kinds, (w->nkinds + 1) * sizeof(*k));
    w->kinds = k;
    k = &w->kinds[w->nkinds++];
    *k = (struct qcow2_msg_kind){ .fmt = fmt };
    return k;
}

static void append_message(struct qcow2_walk *w, char *msg)
{
    char **m = xrealloc(w->msgs, (w->nmsgs + 1) * sizeof(*m));
    w->msgs = m;
    w->msgs[w->nmsgs++] = msg;
}

/* The first few of each kind and at most QCOW2_CHECK_MAX_MESSAGES in all
 * become lines; the rest are counted. */
static void keep_message(struct qcow2_walk *w, const char *fmt, va_list ap)
{
    struct qcow2_msg_kind *k = msg_kind(w, fmt);
    bool keep = k->kept < QCOW2_CHECK_MESSAGES_PER_KIND &&
        w->nmsgs < QCOW2_CHECK_MAX_MESSAGES;
    if (!keep && k->first) {
        k->dropped++;
        return;
    }
    char *msg = xvasprintf(fmt, ap);
    if (!k->first) {
        k->first = xstrdup(msg);
    }
    if (keep) {
        k->kept++;
        append_message(w, msg);
    } else {
        k->dropped++;
        free(msg);
    }
}

/* "... and N more like: FIRST" for each kind that had more. */
static void summarize_messages(struct qcow2_walk *w)
{
    for (size_t i = 0; i < w->nkinds; i++) {
        struct qcow2_msg_kind *k = &w->kinds[i];
        if (!k->dropped) {
            continue;
        }
        append_message(w,
                       xasprintf("... and %" PRIu64 " more problems like: "
                                 "%s",
                                 k->dropped, k->first));
    }
}

static void walk_message(struct qcow2_walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void walk_message(struct qcow2_walk *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    keep_message(w, fmt, ap);
    va_end(ap);
}

void qcow2_walk_note(struct qcow2_walk *w, bool corruption, const char *fmt,
                     ...)
{
    if (corruption) {
        w->corruptions++;
    } else {
        w->check_errors++;
    }
    va_list ap;
    va_start(ap, fmt);
    if (w->strict) {
        if (!w->err) {
            char *msg = xvasprintf(fmt, ap);
            error_setg(&w->err,
                       "%s: the image is corrupt (see 'hop img "
                       "check')",
                       msg);
            free(msg);
        }
    } else {
        keep_message(w, fmt, ap);
    }
    va_end(ap);
}

void qcow2_walk_free(struct qcow2_walk *w)
{
    for (size_t i = 0; i < w->nmsgs; i++) {
        free(w->msgs[i]);
    }
    free(w->msgs);
    for (size_t i = 0; i < w->nkinds; i++) {
        free(w->kinds[i].first);
    }
    free(w->kinds);
    free(w->refs);
    free(w->l2_refs);
    error_free(w->err);
    memset(w, 0, sizeof(*w));
}

static void grow_counts(uint64_t **a, uint64_t *len, uint64_t index)
{
    if (index < *len) {
        return;
    }
    uint64_t n = *len ? *len : 1024;
    while (n <= index) {
        n *= 2;
    }
    uint64_t *r = xrealloc(*a, n * sizeof(*r));
    memset(r + *len, 0, (n - *len) * sizeof(*r));
    *a = r;
    *len = n;
}

/* n references to every cluster of [off, off+len). */
static void walk_add_n(Qcow2State *s, struct qcow2_walk *w, uint64_t off,
                       uint64_t len, uint64_t n)
{
    if (!len) {
        return;
    }
    if (off >= s->file_size || len > s->file_size - off + s->cluster_size) {
        qcow2_walk_note(w, true,
                        "ERROR: clusters at %#" PRIx64 " (%" PRIu64
                        " bytes) lie beyond the end of the image",
                        off, len);
        return;
    }
    uint64_t first = off >> s->cluster_bits;
    uint64_t last = (off + len - 1) >> s->cluster_bits;
    grow_counts(&w->refs, &w->refs_len, last);
    for (uint64_t c = first; c <= last; c++) {
        w->refs[c] += n;
    }
}

void qcow2_walk_add(Qcow2State *s, struct qcow2_walk *w, uint64_t off,
                    uint64_t len)
{
    walk_add_n(s, w, off, len, 1);
}

/* The references of one L2 table, named by n L1 entries. */
static void walk_l2(Qcow2State *s, struct qcow2_walk *w, uint64_t l2_offset,
                    const uint64_t *t, uint64_t n)
{
    for (uint64_t k = 0; k < s->l2_entries && !w->err; k++) {
        uint64_t e = be64_get(&t[k]);
        if (!e) {
            continue;
        }
        uint64_t ho, hl;
        if (e & QCOW2_OFLAG_COMPRESSED) {
            if (e & QCOW2_OFLAG_COPIED) {
                qcow2_walk_note(w, true,
                                "ERROR: L2 table at %#" PRIx64
                                ": compressed L2 entry %#" PRIx64 " has the "
                                "copied flag set",
                                l2_offset, e);
            }
            qcow2_entry_host_range(s, e, &ho, &hl);
            walk_add_n(s, w, ho, hl, n);
            continue;
        }
        uint64_t reserved =
            QCOW2_L2E_RESERVED | (s->h.version < 3 ? QCOW2_OFLAG_ZERO : 0);
        if (e & reserved) {
            qcow2_walk_note(w, true,
                            "ERROR: L2 table at %#" PRIx64 ": L2 "
                            "entry %#" PRIx64 " has reserved bits set",
                            l2_offset, e);
        }
        ho = e & QCOW2_OFFSET_MASK;
        if (!ho) {
            continue;
        }
        if (ho & (s->cluster_size - 1)) {
            qcow2_walk_note(w, true,
                            "ERROR offset=%" PRIx64 ": Cluster is "
                            "not properly aligned; L2 entry corrupted.",
                            ho);
            continue;
        }
        walk_add_n(s, w, ho, s->cluster_size, n);
    }
}

/* One L1 table to walk. */
struct l1_ref {
    uint64_t offset;
    uint32_t size;
    uint32_t snap; /* index into snaps; nb for the active L1 */
    bool skip;
};

static void l1_label(const struct l1_ref *r, const struct qcow2_snapshot *snaps,
                     uint32_t nb, char *buf, size_t n)
{
    if (r->snap == nb) {
        snprintf(buf, n, "active L1");
    } else {
        snprintf(buf, n, "snapshot '%s'", snaps[r->snap].name);
    }
}

static int by_offset(const void *a, const void *b)
{
    const struct l1_ref *x = *(struct l1_ref *const *)a;
    const struct l1_ref *y = *(struct l1_ref *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Valid and within the file, and no two overlapping: L1 tables never share
 * clusters, and walking one table many times would cost without end. */
static void screen_l1s(Qcow2State *s, struct qcow2_walk *w, struct l1_ref *r,
                       size_t n, const struct qcow2_snapshot *snaps,
                       uint32_t nb)
{
    char what[160], other[160];
    struct l1_ref **sorted = xcalloc(n ? n : 1, sizeof(*sorted));
    size_t m = 0;
    for (size_t i = 0; i < n && !w->err; i++) {
        uint64_t bytes = (uint64_t)r[i].size * 8;
        l1_label(&r[i], snaps, nb, what, sizeof(what));
        if (bytes > QCOW2_MAX_L1_BYTES ||
            (r[i].offset & (s->cluster_size - 1)) ||
            (bytes && r[i].offset < s->cluster_size)) {
            qcow2_walk_note(w, true,
                            "ERROR: %s: L1 table at %#" PRIx64
                            " with %u entries is invalid",
                            what, r[i].offset, r[i].size);
            r[i].skip = true;
        } else if (!bytes) {
            r[i].skip = true;
        } else if (r[i].offset > s->file_size ||
                   bytes > s->file_size - r[i].offset) {
            qcow2_walk_note(w, true,
                            "ERROR: %s: L1 table at %#" PRIx64 " (%" PRIu64
                            " bytes) lies beyond the end of the "
                            "image",
                            what, r[i].offset, bytes);
            r[i].skip = true;
        } else {
            sorted[m++] = &r[i];
        }
    }
    qsort(sorted, m, sizeof(*sorted), by_offset);
    const struct l1_ref *reach = NULL; /* the table ending furthest */
    for (size_t i = 0; i < m && !w->err; i++) {
        struct l1_ref *x = sorted[i];
        uint64_t end = x->offset + (uint64_t)x->size * 8;
        if (reach && x->offset < reach->offset + (uint64_t)reach->size * 8) {
            l1_label(x, snaps, nb, what, sizeof(what));
            l1_label(reach, snaps, nb, other, sizeof(other));
            qcow2_walk_note(w, true,
                            "ERROR: %s: L1 table at %#" PRIx64
                            " overlaps the L1 table of %s",
                            what, x->offset, other);
            x->skip = true;
        } else if (!reach || end > reach->offset + (uint64_t)reach->size * 8) {
            reach = x;
        }
    }
    free(sorted);
}

/* Count the L1 table's clusters and one reference to each L2 table it
 * names (l2_refs: their contents are counted once, by walk_l2s). */
static void walk_l1_entries(Qcow2State *s, struct qcow2_walk *w,
                            const struct l1_ref *r, const char *what,
                            struct qcow2_bits *seen)
{
    uint64_t bytes = (uint64_t)r->size * 8;
    qcow2_walk_add(s, w, r->offset, bytes);
    uint8_t *l1 = xmalloc(bytes);
    Error *err = NULL;
    if (!qcow2_pread_all(s, r->offset, l1, bytes, &err)) {
        qcow2_walk_note(w, false, "ERROR: %s: %s", what, error_get_pretty(err));
        error_free(err);
        free(l1);
        return;
    }
    for (uint32_t i = 0; i < r->size && !w->err; i++) {
        uint64_t e = be64_get(l1 + 8 * i);
        if (e & QCOW2_L1E_RESERVED) {
            qcow2_walk_note(w, true,
                            "ERROR: %s: L1 entry %u has reserved "
                            "bits set (%#" PRIx64 ")",
                            what, i, e);
        }
        uint64_t off = e & QCOW2_OFFSET_MASK;
        if (!off) {
            continue;
        }
        if ((off & (s->cluster_size - 1)) || off >= s->file_size) {
            qcow2_walk_note(w, true,
                            "ERROR l2_offset=%" PRIx64 ": %s: L2 "
                            "table is unaligned or beyond the end of the "
                            "image",
                            off, what);
            continue;
        }
        uint64_t c = off >> s->cluster_bits;
        if (qcow2_bits_test(seen, c)) {
            /* never written so; it would make every write through the
             * table go twice */
            qcow2_walk_note(w, true,
                            "ERROR: %s: L1 entry %u names the L2 "
                            "table at %#" PRIx64 " that an earlier entry "
                            "names",
                            what, i, off);
        }
        qcow2_bits_set(seen, c);
        qcow2_walk_add(s, w, off, s->cluster_size);
        grow_counts(&w->l2_refs, &w->l2_refs_len, c);
        w->l2_refs[c]++;
    }
    for (uint32_t i = 0; i < r->size; i++) {
        uint64_t off = be64_get(l1 + 8 * i) & QCOW2_OFFSET_MASK;
        qcow2_bits_clear(seen, off >> s->cluster_bits);
    }
    free(l1);
}

/* Every L2 table named so far, read once. */
static void walk_l2s(Qcow2State *s, struct qcow2_walk *w)
{
    uint64_t *t = xmalloc(s->cluster_size);
    for (uint64_t c = 0; c < w->l2_refs_len && !w->err; c++) {
        uint64_t n = w->l2_refs[c];
        if (!n) {
            continue;
        }
        Error *err = NULL;
        uint64_t off = c << s->cluster_bits;
        if (!qcow2_pread_all(s, off, t, s->cluster_size, &err)) {
            qcow2_walk_note(w, false, "ERROR: L2 table at %#" PRIx64 ": %s",
                            off, error_get_pretty(err));
            error_free(err);
            continue;
        }
        walk_l2(s, w, off, t, n);
    }
    free(t);
    free(w->l2_refs);
    w->l2_refs = NULL;
    w->l2_refs_len = 0;
}

/* Statistics and COPIED flags of the active layer, each L2 table once. */
static void walk_active(Qcow2State *s, struct qcow2_walk *w)
{
    uint64_t *t = xmalloc(s->cluster_size);
    struct qcow2_bits seen = { 0 };
    uint64_t next = 0;
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t e = s->l1[i];
        uint64_t off = e & QCOW2_OFFSET_MASK;
        if (!off || (off & (s->cluster_size - 1)) || off >= s->file_size) {
            continue;
        }
        uint64_t rc = qcow2_rc_get(s, off >> s->cluster_bits);
        if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
            qcow2_walk_note(w, true,
                            "ERROR OFLAG_COPIED L2 cluster: "
                            "l1_index=%u l1_entry=%" PRIx64
                            " refcount=%" PRIu64,
                            i, e, rc);
        }
        if (qcow2_bits_test(&seen, off >> s->cluster_bits) ||
            !qcow2_pread_all(s, off, t, s->cluster_size, NULL)) {
            continue;
        }
        qcow2_bits_set(&seen, off >> s->cluster_bits);
        for (uint64_t k = 0; k < s->l2_entries; k++) {
            uint64_t l2e = be64_get(&t[k]);
            uint64_t ho = l2e & QCOW2_OFFSET_MASK;
            if (l2e & QCOW2_OFLAG_COMPRESSED) {
                w->allocated++;
                w->compressed++;
                continue;
            }
            if (!ho || (ho & (s->cluster_size - 1))) {
                continue;
            }
            w->allocated++;
            if (next && ho != next) {
                w->fragmented++;
            }
            next = ho + s->cluster_size;
            rc = qcow2_rc_get(s, ho >> s->cluster_bits);
            if ((rc == 1) != !!(l2e & QCOW2_OFLAG_COPIED)) {
                qcow2_walk_note(w, true,
                                "ERROR OFLAG_COPIED data cluster: "
                                "l2_entry=%" PRIx64 " refcount=%" PRIu64,
                                l2e, rc);
            }
        }
    }
    qcow2_bits_free(&seen);
    free(t);
}

bool qcow2_walk_tables(Qcow2State *s, struct qcow2_walk *w,
                       const struct qcow2_snapshot *snaps, uint32_t nb,
                       bool active)
{
    size_t n = (size_t)nb + (active ? 1 : 0);
    struct l1_ref *r = xcalloc(n ? n : 1, sizeof(*r));
    for (uint32_t i = 0; i < nb; i++) {
        r[i] = (struct l1_ref){ snaps[i].l1_table_offset, snaps[i].l1_size, i,
                                false };
    }
    if (active) {
        r[nb] =
            (struct l1_ref){ s->h.l1_table_offset, s->h.l1_size, nb, false };
    }
    screen_l1s(s, w, r, n, snaps, nb);
    struct qcow2_bits seen = { 0 };
    for (size_t i = 0; i < n && !w->err; i++) {
        if (!r[i].skip) {
            char what[160];
            l1_label(&r[i], snaps, nb, what, sizeof(what));
            walk_l1_entries(s, w, &r[i], what, &seen);
        }
    }
    qcow2_bits_free(&seen);
    free(r);
    walk_l2s(s, w);
    if (active && !w->err) {
        walk_active(s, w);
    }
    return !w->err;
}

/* Everything the header leads to, except the L1 tables. */
void qcow2_walk_fixed(Qcow2State *s, struct qcow2_walk *w)
{
    qcow2_walk_add(s, w, 0, s->cluster_size);
    qcow2_walk_add(s, w, s->h.refcount_table_offset,
                   (uint64_t)s->h.refcount_table_clusters * s->cluster_size);
    for (uint64_t i = 0; i < s->rt_entries; i++) {
        uint64_t e = s->rt[i];
        uint64_t off = e & ~QCOW2_RTE_RESERVED;
        if (!e) {
            continue;
        }
        if ((e & QCOW2_RTE_RESERVED) || (off & (s->cluster_size - 1))) {
            qcow2_walk_note(w, true,
                            "ERROR refcount block %" PRIu64 " is not "
                            "cluster aligned; refcount table entry corrupted",
                            i);
        } else if (off >= s->file_size) {
            qcow2_walk_note(w, true,
                            "ERROR refcount block %" PRIu64 " is outside image",
                            i);
        } else {
            qcow2_walk_add(s, w, off, s->cluster_size);
        }
    }
    qcow2_walk_add(s, w, s->h.snapshots_offset, s->snapshots_size);
}

bool qcow2_check(BlockDev *bs, struct blk_check_result *res, Error **errp)
{
    Qcow2State *s = bs->opaque;
    if (!s->readonly && !qcow2_flush_metadata(s, errp)) {
        return false;
    }
    struct qcow2_walk w = { 0 };
    qcow2_walk_fixed(s, &w);
    for (uint32_t i = 0; i < s->nb_snaps; i++) {
        if (s->h.version >= 3 &&
            !QCOW2_SN_HAS_EXTRA(&s->snaps[i], QCOW2_SN_EXTRA_DISK_SIZE)) {
            qcow2_walk_note(&w, true,
                            "ERROR snapshot table entry %u is "
                            "incomplete",
                            i);
        }
    }
    qcow2_walk_tables(s, &w, s->snaps, s->nb_snaps, true);
    uint64_t n = s->rc_len > w.refs_len ? s->rc_len : w.refs_len;
    uint64_t end = 0;
    for (uint64_t c = 0; c < n; c++) {
        uint64_t stored = qcow2_rc_get(s, c);
        uint64_t ref = c < w.refs_len ? w.refs[c] : 0;
        if (stored || ref) {
            end = c + 1;
        }
        if (stored < ref) {
            qcow2_walk_note(&w, true,
                            "ERROR cluster %" PRIu64 " refcount=%" PRIu64
                            " reference=%" PRIu64,
                            c, stored, ref);
        } else if (stored > ref) {
            walk_message(&w,
                         "Leaked cluster %" PRIu64 " refcount=%" PRIu64
                         " reference=%" PRIu64,
                         c, stored, ref);
            res->leaks++;
        }
    }
    summarize_messages(&w);
    res->corruptions = w.corruptions;
    res->check_errors = w.check_errors;
    res->total_clusters = qcow2_clusters(s, s->disk_size);
    res->allocated_clusters = w.allocated;
    res->fragmented_clusters = w.fragmented;
    res->compressed_clusters = w.compressed;
    res->image_end_offset = end << s->cluster_bits;
    res->messages = w.msgs;
    res->nmessages = w.nmsgs;
    w.msgs = NULL;
    w.nmsgs = 0;
    qcow2_walk_free(&w);
    return true;
}
