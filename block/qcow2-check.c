/* Counting references the way qemu-img check does: every structure the
 * header leads to, every L1 (active and snapshots), their L2 tables and
 * data.  The same walk recounts refcounts for snapshot rebuilds (strict:
 * any inconsistency stops the operation) and drives `hop img check`. */
#include "block/qcow2.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qcow2_walk_note(struct qcow2_walk *w, bool corruption, const char *fmt,
                     ...)
{
    va_list ap;
    char *msg = NULL;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
    if (corruption) {
        w->corruptions++;
    } else {
        w->check_errors++;
    }
    if (w->strict) {
        if (!w->err) {
            error_setg(&w->err, "%s: the image is corrupt (see 'hop img "
                       "check')", msg);
        }
        free(msg);
        return;
    }
    char **m = realloc(w->msgs, (w->nmsgs + 1) * sizeof(*m));
    if (!m) {
        abort();
    }
    w->msgs = m;
    w->msgs[w->nmsgs++] = msg;
}

void qcow2_walk_free(struct qcow2_walk *w)
{
    for (size_t i = 0; i < w->nmsgs; i++) {
        free(w->msgs[i]);
    }
    free(w->msgs);
    free(w->refs);
    error_free(w->err);
    memset(w, 0, sizeof(*w));
}

void qcow2_walk_add(Qcow2State *s, struct qcow2_walk *w, uint64_t off,
                    uint64_t len)
{
    if (!len) {
        return;
    }
    if (off >= s->file_size || len > s->file_size - off + s->cluster_size) {
        qcow2_walk_note(w, true, "ERROR: clusters at %#" PRIx64 " (%" PRIu64
                        " bytes) lie beyond the end of the image", off, len);
        return;
    }
    uint64_t first = off >> s->cluster_bits;
    uint64_t last = (off + len - 1) >> s->cluster_bits;
    if (last >= w->refs_len) {
        uint64_t n = w->refs_len ? w->refs_len : 1024;
        while (n <= last) {
            n *= 2;
        }
        uint64_t *r = realloc(w->refs, n * sizeof(*r));
        if (!r) {
            abort();
        }
        memset(r + w->refs_len, 0, (n - w->refs_len) * sizeof(*r));
        w->refs = r;
        w->refs_len = n;
    }
    for (uint64_t c = first; c <= last; c++) {
        w->refs[c]++;
    }
}

static void walk_l2(Qcow2State *s, struct qcow2_walk *w, const uint64_t *t,
                    const char *what, bool stats, uint64_t *next)
{
    for (uint64_t k = 0; k < s->l2_entries; k++) {
        uint64_t e = qcow2_be64(&t[k]);
        if (!e) {
            continue;
        }
        uint64_t ho, hl;
        if (e & QCOW2_OFLAG_COMPRESSED) {
            if (e & QCOW2_OFLAG_COPIED) {
                qcow2_walk_note(w, true, "ERROR: %s: compressed L2 entry %#"
                                PRIx64 " has the copied flag set", what, e);
            }
            qcow2_entry_host_range(s, e, &ho, &hl);
            qcow2_walk_add(s, w, ho, hl);
            if (stats) {
                w->allocated++;
                w->compressed++;
            }
            continue;
        }
        uint64_t reserved = QCOW2_L2E_RESERVED |
                            (s->h.version < 3 ? QCOW2_OFLAG_ZERO : 0);
        if (e & reserved) {
            qcow2_walk_note(w, true, "ERROR: %s: L2 entry %#" PRIx64
                            " has reserved bits set", what, e);
        }
        ho = e & QCOW2_OFFSET_MASK;
        if (!ho) {
            continue;
        }
        if (ho & (s->cluster_size - 1)) {
            qcow2_walk_note(w, true, "ERROR offset=%" PRIx64 ": Cluster is "
                            "not properly aligned; L2 entry corrupted.", ho);
            continue;
        }
        qcow2_walk_add(s, w, ho, s->cluster_size);
        if (stats) {
            w->allocated++;
            if (*next && ho != *next) {
                w->fragmented++;
            }
            *next = ho + s->cluster_size;
        }
    }
}

bool qcow2_walk_l1(Qcow2State *s, struct qcow2_walk *w, uint64_t l1_offset,
                   uint32_t l1_size, const char *what, bool stats)
{
    uint64_t bytes = (uint64_t)l1_size * 8;
    if (bytes > QCOW2_MAX_L1_BYTES || (l1_offset & (s->cluster_size - 1))) {
        qcow2_walk_note(w, true, "ERROR: %s: L1 table at %#" PRIx64 " with %u "
                        "entries is invalid", what, l1_offset, l1_size);
        return !w->err;
    }
    if (!bytes) {
        return true;
    }
    qcow2_walk_add(s, w, l1_offset, bytes);
    if (l1_offset + bytes > s->file_size) {
        return !w->err;
    }
    uint8_t *l1 = malloc(bytes);
    uint64_t *t = malloc(s->cluster_size);
    if (!l1 || !t) {
        abort();
    }
    Error *err = NULL;
    uint64_t next = 0;
    if (!qcow2_pread_all(s, l1_offset, l1, bytes, &err)) {
        qcow2_walk_note(w, false, "ERROR: %s: %s", what,
                        error_get_pretty(err));
        error_free(err);
        goto out;
    }
    for (uint32_t i = 0; i < l1_size && !w->err; i++) {
        uint64_t e = qcow2_be64(l1 + 8 * i);
        if (e & QCOW2_L1E_RESERVED) {
            qcow2_walk_note(w, true, "ERROR: %s: L1 entry %u has reserved "
                            "bits set (%#" PRIx64 ")", what, i, e);
        }
        uint64_t off = e & QCOW2_OFFSET_MASK;
        if (!off) {
            continue;
        }
        if ((off & (s->cluster_size - 1)) || off >= s->file_size) {
            qcow2_walk_note(w, true, "ERROR l2_offset=%" PRIx64 ": %s: L2 "
                            "table is unaligned or beyond the end of the "
                            "image", off, what);
            continue;
        }
        qcow2_walk_add(s, w, off, s->cluster_size);
        if (!qcow2_pread_all(s, off, t, s->cluster_size, &err)) {
            qcow2_walk_note(w, false, "ERROR: %s: %s", what,
                            error_get_pretty(err));
            error_free(err);
            err = NULL;
            continue;
        }
        walk_l2(s, w, t, what, stats, &next);
    }
out:
    free(l1);
    free(t);
    return !w->err;
}

/* COPIED in the active L1/L2 must say "refcount is exactly 1". */
static void check_copied(Qcow2State *s, struct qcow2_walk *w)
{
    uint64_t *t = malloc(s->cluster_size);
    if (!t) {
        abort();
    }
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t e = s->l1[i];
        uint64_t off = e & QCOW2_OFFSET_MASK;
        if (!off || (off & (s->cluster_size - 1)) || off >= s->file_size) {
            continue;
        }
        uint64_t rc = qcow2_rc_get(s, off >> s->cluster_bits);
        if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
            qcow2_walk_note(w, true, "ERROR OFLAG_COPIED L2 cluster: "
                            "l1_index=%u l1_entry=%" PRIx64 " refcount=%"
                            PRIu64, i, e, rc);
        }
        if (!qcow2_pread_all(s, off, t, s->cluster_size, NULL)) {
            continue;
        }
        for (uint64_t k = 0; k < s->l2_entries; k++) {
            uint64_t l2e = qcow2_be64(&t[k]);
            uint64_t ho = l2e & QCOW2_OFFSET_MASK;
            if ((l2e & QCOW2_OFLAG_COMPRESSED) || !ho ||
                (ho & (s->cluster_size - 1))) {
                continue;
            }
            rc = qcow2_rc_get(s, ho >> s->cluster_bits);
            if ((rc == 1) != !!(l2e & QCOW2_OFLAG_COPIED)) {
                qcow2_walk_note(w, true, "ERROR OFLAG_COPIED data cluster: "
                                "l2_entry=%" PRIx64 " refcount=%" PRIu64,
                                l2e, rc);
            }
        }
    }
    free(t);
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
            qcow2_walk_note(w, true, "ERROR refcount block %" PRIu64 " is not "
                            "cluster aligned; refcount table entry corrupted",
                            i);
        } else if (off >= s->file_size) {
            qcow2_walk_note(w, true, "ERROR refcount block %" PRIu64
                            " is outside image", i);
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
        const struct qcow2_snapshot *sn = &s->snaps[i];
        char what[64];
        snprintf(what, sizeof(what), "snapshot %u", i);
        if (s->h.version >= 3 && sn->extra_size < 16) {
            qcow2_walk_note(&w, true, "ERROR snapshot table entry %u is "
                            "incomplete", i);
        }
        qcow2_walk_l1(s, &w, sn->l1_table_offset, sn->l1_size, what, false);
    }
    qcow2_walk_l1(s, &w, s->h.l1_table_offset, s->h.l1_size, "active L1",
                  true);
    uint64_t n = s->rc_len > w.refs_len ? s->rc_len : w.refs_len;
    uint64_t end = 0;
    for (uint64_t c = 0; c < n; c++) {
        uint64_t stored = qcow2_rc_get(s, c);
        uint64_t ref = c < w.refs_len ? w.refs[c] : 0;
        if (stored || ref) {
            end = c + 1;
        }
        if (stored < ref) {
            qcow2_walk_note(&w, true, "ERROR cluster %" PRIu64 " refcount=%"
                            PRIu64 " reference=%" PRIu64, c, stored, ref);
        } else if (stored > ref) {
            char *msg;
            if (asprintf(&msg, "Leaked cluster %" PRIu64 " refcount=%" PRIu64
                         " reference=%" PRIu64, c, stored, ref) < 0) {
                abort();
            }
            char **m = realloc(w.msgs, (w.nmsgs + 1) * sizeof(*m));
            if (!m) {
                abort();
            }
            w.msgs = m;
            w.msgs[w.nmsgs++] = msg;
            res->leaks++;
        }
    }
    check_copied(s, &w);
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
