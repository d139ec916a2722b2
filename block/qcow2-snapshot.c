/* qcow2 internal snapshots and the vmstate area.
 *
 * Create, apply and delete all go through rebuild(): it recounts every
 * reference from the snapshots' L1 tables, gives the active layer fresh
 * copies of its L1 and L2 tables (with COPIED computed from the new
 * counts), writes a new snapshot table and a new refcount table and
 * blocks -- all in clusters free in both the old and the new generation --
 * and then switches to the new generation with one header write.  A crash
 * before that write leaves the old image untouched; after it, the new one
 * is complete. */
#include "block/qcow2.h"
#include "util/fault.h"
#include "util/alloc.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where the next snapshot table entry starts, after one ending at pos. */
static uint64_t snap_align(uint64_t pos)
{
    return (pos + QCOW2_SN_ALIGN - 1) & ~(uint64_t)(QCOW2_SN_ALIGN - 1);
}

void qcow2_snapshots_free(struct qcow2_snapshot *sn, uint32_t n)
{
    for (uint32_t i = 0; sn && i < n; i++) {
        free(sn[i].id);
        free(sn[i].name);
        free(sn[i].extra_rest);
    }
    free(sn);
}

/* Entry i's next len bytes at pos (what: which of its parts) must lie
 * inside the file and within the largest snapshot table QEMU accepts. */
static bool table_room(const Qcow2State *s, uint32_t i, uint64_t pos,
                       uint64_t len, const char *what, Error **errp)
{
    if (pos + len > s->file_size) {
        error_setg(errp,
                   "snapshot table entry %u: its %s (%" PRIu64 " bytes "
                   "at %#" PRIx64 ") run past the end of the file (%" PRIu64
                   " bytes)",
                   i, what, len, pos, s->file_size);
        return false;
    }
    if (pos + len - s->snapshots_offset > QCOW2_MAX_SNAPSHOT_TABLE) {
        error_setg(errp,
                   "snapshot table entry %u: its %s end past the %u "
                   "MiB a snapshot table may have",
                   i, what, QCOW2_MAX_SNAPSHOT_TABLE >> 20);
        return false;
    }
    return true;
}

#define SNAP_LABEL_LEN 128

/* "'ID' ('NAME')" for messages: a hostile table's strings are cut short
 * and their control bytes shown as '?', so a message stays one line. */
static void snap_label(const struct qcow2_snapshot *sn, char *buf, size_t len)
{
    char id[32], name[64];
    const char *src[2] = { sn->id, sn->name };
    char *dst[2] = { id, name };
    size_t cap[2] = { sizeof(id), sizeof(name) };
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(src[k]), j = 0;
        for (; j < n && j + 4 < cap[k]; j++) {
            unsigned char c = (unsigned char)src[k][j];
            dst[k][j] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
        strcpy(dst[k] + j, j < n ? "..." : "");
    }
    snprintf(buf, len, "'%s' ('%s')", id, name);
}

static int cmp_id(const void *a, const void *b)
{
    const struct qcow2_snapshot *x = *(const struct qcow2_snapshot *const *)a;
    const struct qcow2_snapshot *y = *(const struct qcow2_snapshot *const *)b;
    return strcmp(x->id, y->id);
}

/* Two entries with one id make "snapshot 3" ambiguous: sorted, not
 * compared pairwise (there may be 65536 of them). */
static bool ids_unique(const Qcow2State *s, Error **errp)
{
    const struct qcow2_snapshot **v = xmalloc(s->nb_snaps * sizeof(*v));
    for (uint32_t i = 0; i < s->nb_snaps; i++) {
        v[i] = &s->snaps[i];
    }
    qsort(v, s->nb_snaps, sizeof(*v), cmp_id);
    bool ok = true;
    for (uint32_t i = 1; ok && i < s->nb_snaps; i++) {
        if (strcmp(v[i - 1]->id, v[i]->id) == 0) {
            char label[SNAP_LABEL_LEN];
            snap_label(v[i], label, sizeof(label));
            error_setg(errp,
                       "snapshot table entries %td and %td both have "
                       "id %s",
                       v[i - 1] - s->snaps, v[i] - s->snaps, label);
            ok = false;
        }
    }
    free(v);
    return ok;
}

/* Reads the table and checks its shape: every entry inside the file and
 * the 64 MiB QEMU allows, extra data within bounds, ids unique.  What each
 * entry points at (L1 table, sizes) is checked by qcow2_snapshot_usable() when
 * the entry is used, so one bad entry does not lock the image away. */
bool qcow2_snapshots_load(Qcow2State *s, Error **errp)
{
    uint32_t n = s->h.nb_snapshots;
    s->snapshots_offset = s->h.snapshots_offset;
    s->snapshots_size = 0;
    if (!n) {
        return true;
    }
    s->snaps = xcalloc(n, sizeof(*s->snaps));
    uint64_t pos = s->snapshots_offset;
    uint8_t *var = xmalloc(QCOW2_MAX_EXTRA_DATA + 2 * QCOW2_SN_STR_MAX);
    bool ok = true;
    for (uint32_t i = 0; ok && i < n; i++) {
        struct qcow2_snapshot *sn = &s->snaps[i];
        uint8_t f[QCOW2_SN_FIXED_SIZE];
        if (!table_room(s, i, pos, sizeof(f), "fixed fields", errp) ||
            !qcow2_pread_all(s, pos, f, sizeof(f), errp)) {
            ok = false;
            break;
        }
        sn->l1_table_offset = be64_get(f + QCOW2_SN_L1_TABLE_OFFSET);
        sn->l1_size = be32_get(f + QCOW2_SN_L1_SIZE);
        uint32_t id_len = be16_get(f + QCOW2_SN_ID_SIZE);
        uint32_t name_len = be16_get(f + QCOW2_SN_NAME_SIZE);
        sn->date_sec = be32_get(f + QCOW2_SN_DATE_SEC);
        sn->date_nsec = be32_get(f + QCOW2_SN_DATE_NSEC);
        sn->vm_clock_nsec = be64_get(f + QCOW2_SN_VM_CLOCK_NSEC);
        sn->vm_state_size = be32_get(f + QCOW2_SN_VM_STATE_SIZE);
        sn->extra_size = be32_get(f + QCOW2_SN_EXTRA_DATA_SIZE);
        sn->disk_size = s->h.size;
        sn->icount = -1;
        if (sn->extra_size > QCOW2_MAX_EXTRA_DATA) {
            error_setg(errp,
                       "snapshot table entry %u: extra_size %u is more "
                       "than %u bytes",
                       i, sn->extra_size, QCOW2_MAX_EXTRA_DATA);
            ok = false;
            break;
        }
        uint64_t vlen = sn->extra_size + id_len + name_len;
        pos += QCOW2_SN_FIXED_SIZE;
        if (!table_room(s, i, pos, vlen, "extra data, id and name", errp) ||
            !qcow2_pread_all(s, pos, var, vlen, errp)) {
            ok = false;
            break;
        }
        if (QCOW2_SN_HAS_EXTRA(sn, QCOW2_SN_EXTRA_VM_STATE_SIZE)) {
            sn->vm_state_size = be64_get(var + QCOW2_SN_EXTRA_VM_STATE_SIZE);
        }
        if (QCOW2_SN_HAS_EXTRA(sn, QCOW2_SN_EXTRA_DISK_SIZE)) {
            sn->disk_size = be64_get(var + QCOW2_SN_EXTRA_DISK_SIZE);
        }
        if (QCOW2_SN_HAS_EXTRA(sn, QCOW2_SN_EXTRA_ICOUNT)) {
            sn->icount = (int64_t)be64_get(var + QCOW2_SN_EXTRA_ICOUNT);
        }
        if (sn->extra_size > QCOW2_SNAPSHOT_EXTRA_SIZE) {
            uint32_t rest = sn->extra_size - QCOW2_SNAPSHOT_EXTRA_SIZE;
            sn->extra_rest = xmalloc(rest);
            memcpy(sn->extra_rest, var + QCOW2_SNAPSHOT_EXTRA_SIZE, rest);
        }
        sn->id = xstrndup((char *)var + sn->extra_size, id_len);
        sn->name = xstrndup((char *)var + sn->extra_size + id_len, name_len);
        s->nb_snaps = i + 1;
        pos = snap_align(pos + vlen);
    }
    free(var);
    s->snapshots_size = pos - s->snapshots_offset;
    return ok && ids_unique(s, errp);
}

/* Can entry sn be used (applied, read)?  Its L1 table must be one this
 * image could hold, inside the file, and address the disk size it claims;
 * its machine state cannot be larger than the file it is stored in. */
bool qcow2_snapshot_usable(const Qcow2State *s, const struct qcow2_snapshot *sn,
                           Error **errp)
{
    uint64_t off = sn->l1_table_offset;
    uint64_t bytes = (uint64_t)sn->l1_size * QCOW2_L1E_SIZE;
    if (bytes > QCOW2_MAX_L1_BYTES) {
        error_setg(errp,
                   "l1_size %u is more than the %u entries of the "
                   "largest L1 table",
                   sn->l1_size, QCOW2_MAX_L1_ENTRIES);
        return false;
    }
    if (bytes && (off & (s->cluster_size - 1))) {
        error_setg(errp,
                   "l1_table_offset %#" PRIx64 " is not cluster "
                   "aligned",
                   off);
        return false;
    }
    if (bytes && off < s->cluster_size) {
        error_setg(errp,
                   "l1_table_offset %#" PRIx64 " lies in the header "
                   "cluster",
                   off);
        return false;
    }
    if (off > s->file_size || bytes > s->file_size - off) {
        error_setg(errp,
                   "L1 table (l1_table_offset %#" PRIx64 ", l1_size "
                   "%u) lies beyond the end of the file (%" PRIu64 " bytes)",
                   off, sn->l1_size, s->file_size);
        return false;
    }
    /* Without the field (old entries) the header's size stands in. */
    uint64_t span = s->cluster_size * s->l2_entries;
    if (QCOW2_SN_HAS_EXTRA(sn, QCOW2_SN_EXTRA_DISK_SIZE) &&
        sn->disk_size > (uint64_t)sn->l1_size * span) {
        error_setg(errp,
                   "disk_size %" PRIu64 " is more than its L1 table "
                   "of %u entries addresses (%" PRIu64 " bytes)",
                   sn->disk_size, sn->l1_size, (uint64_t)sn->l1_size * span);
        return false;
    }
    if (sn->vm_state_size > s->file_size) {
        error_setg(errp,
                   "vm_state_size %" PRIu64 " is more than the image "
                   "file holds (%" PRIu64 " bytes)",
                   sn->vm_state_size, s->file_size);
        return false;
    }
    return true;
}

static uint8_t *serialize_table(const struct qcow2_snapshot *sn, uint32_t n,
                                uint64_t *len_out)
{
    uint64_t len = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t extra = sn[i].extra_size > QCOW2_SNAPSHOT_EXTRA_SIZE
            ? sn[i].extra_size
            : QCOW2_SNAPSHOT_EXTRA_SIZE;
        len += snap_align(QCOW2_SN_FIXED_SIZE + extra + strlen(sn[i].id) +
                          strlen(sn[i].name));
    }
    uint8_t *buf = xcalloc(1, len ? len : 1);
    uint8_t *p = buf;
    for (uint32_t i = 0; i < n; i++) {
        const struct qcow2_snapshot *x = &sn[i];
        uint32_t extra = x->extra_size > QCOW2_SNAPSHOT_EXTRA_SIZE
            ? x->extra_size
            : QCOW2_SNAPSHOT_EXTRA_SIZE;
        size_t id_len = strlen(x->id), name_len = strlen(x->name);
        uint8_t *xd = p + QCOW2_SN_FIXED_SIZE;
        be64_put(p + QCOW2_SN_L1_TABLE_OFFSET, x->l1_table_offset);
        be32_put(p + QCOW2_SN_L1_SIZE, x->l1_size);
        be16_put(p + QCOW2_SN_ID_SIZE, (uint16_t)id_len);
        be16_put(p + QCOW2_SN_NAME_SIZE, (uint16_t)name_len);
        be32_put(p + QCOW2_SN_DATE_SEC, x->date_sec);
        be32_put(p + QCOW2_SN_DATE_NSEC, x->date_nsec);
        be64_put(p + QCOW2_SN_VM_CLOCK_NSEC, x->vm_clock_nsec);
        be32_put(p + QCOW2_SN_VM_STATE_SIZE,
                 x->vm_state_size > UINT32_MAX ? UINT32_MAX
                                               : (uint32_t)x->vm_state_size);
        be32_put(p + QCOW2_SN_EXTRA_DATA_SIZE, extra);
        be64_put(xd + QCOW2_SN_EXTRA_VM_STATE_SIZE, x->vm_state_size);
        be64_put(xd + QCOW2_SN_EXTRA_DISK_SIZE, x->disk_size);
        be64_put(xd + QCOW2_SN_EXTRA_ICOUNT, (uint64_t)x->icount);
        if (x->extra_rest) {
            memcpy(xd + QCOW2_SNAPSHOT_EXTRA_SIZE, x->extra_rest,
                   extra - QCOW2_SNAPSHOT_EXTRA_SIZE);
        }
        memcpy(xd + extra, x->id, id_len);
        memcpy(xd + extra + id_len, x->name, name_len);
        p += snap_align(QCOW2_SN_FIXED_SIZE + extra + id_len + name_len);
    }
    *len_out = len;
    return buf;
}

int qcow2_snapshot_find(const Qcow2State *s, const char *name_or_id)
{
    for (uint32_t i = 0; i < s->nb_snaps; i++) {
        if (strcmp(s->snaps[i].name, name_or_id) == 0) {
            return (int)i;
        }
    }
    for (uint32_t i = 0; i < s->nb_snaps; i++) {
        if (strcmp(s->snaps[i].id, name_or_id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* A deep copy of the table, leaving out entry skip (or none: -1). */
static struct qcow2_snapshot *copy_table(const Qcow2State *s, int skip,
                                         uint32_t extra_slots, uint32_t *n)
{
    struct qcow2_snapshot *t =
        xcalloc(s->nb_snaps + extra_slots + 1, sizeof(*t));
    *n = 0;
    for (uint32_t i = 0; i < s->nb_snaps; i++) {
        if ((int)i == skip) {
            continue;
        }
        struct qcow2_snapshot *d = &t[(*n)++];
        *d = s->snaps[i];
        d->id = xstrdup(s->snaps[i].id);
        d->name = xstrdup(s->snaps[i].name);
        if (s->snaps[i].extra_rest) {
            uint32_t rest = d->extra_size - QCOW2_SNAPSHOT_EXTRA_SIZE;
            d->extra_rest = xmalloc(rest);
            memcpy(d->extra_rest, s->snaps[i].extra_rest, rest);
        }
    }
    return t;
}

static uint64_t *read_l1(Qcow2State *s, uint64_t off, uint32_t n, Error **errp)
{
    uint64_t *l1 = xcalloc(n ? n : 1, sizeof(*l1));
    uint8_t *raw = xmalloc(n ? (size_t)n * 8 : 1);
    if (n && (off + (uint64_t)n * 8 > s->file_size)) {
        error_setg(errp,
                   "L1 table at %#" PRIx64 " lies beyond the end of "
                   "the file",
                   off);
        free(l1);
        free(raw);
        return NULL;
    }
    if (!qcow2_pread_all(s, off, raw, (size_t)n * 8, errp)) {
        free(l1);
        free(raw);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        l1[i] = be64_get(raw + 8 * i);
    }
    free(raw);
    return l1;
}

struct rebuild_plan {
    struct qcow2_snapshot *snaps; /* the new table (taken on success) */
    uint32_t nb;
    const uint64_t *src_l1; /* where the new active layer comes from */
    uint32_t src_l1_size;
    bool src_active; /* src is the active L1 (L2s cached) */
    uint64_t disk_size;
    uint64_t discard_from; /* guest offset: entries dropped after */
    /* A background snapshot's disk (L1 table on disk, its size), counted
     * but not listed; l1_size 0: none, the rebuild drops what it held. */
    uint64_t frozen_l1_offset;
    uint32_t frozen_l1_size;
};

/* The refcount state a rebuild replaces: listed once, so saving and
 * rolling back cannot miss a field. */
/* clang-format off */
#define SAVED_GEN_FIELDS(X)                                                 \
    X(rc) X(rc_len) X(used_end) X(free_hint)                                \
    X(rt) X(rt_entries) X(rt_offset) X(rt_clusters) X(rb_dirty)
/* clang-format on */

struct saved_gen {
#define SAVED_GEN_DECLARE(f) __typeof__(((Qcow2State *)0)->f) f;
    SAVED_GEN_FIELDS(SAVED_GEN_DECLARE)
#undef SAVED_GEN_DECLARE
};

static struct saved_gen gen_save(const Qcow2State *s)
{
    struct saved_gen g;
#define SAVED_GEN_SAVE(f) g.f = s->f;
    SAVED_GEN_FIELDS(SAVED_GEN_SAVE)
#undef SAVED_GEN_SAVE
    return g;
}

/* Back to the refcounts of before the rebuild, dropping the new ones. */
static void gen_restore(Qcow2State *s, const struct saved_gen *g)
{
    free(s->rc);
    free(s->rt);
    free(s->rb_dirty);
#define SAVED_GEN_RESTORE(f) s->f = g->f;
    SAVED_GEN_FIELDS(SAVED_GEN_RESTORE)
#undef SAVED_GEN_RESTORE
    s->rt_dirty = s->rt_moved = false;
    s->rc_old = NULL;
}

/* The generation a rebuild writes beside the old one. */
struct new_gen {
    uint32_t l1_size;
    uint64_t *l1;
    struct qcow2_l2_slot *l2;
    uint64_t l1_offset;
    uint8_t *snap_table;
    uint64_t snap_offset, snap_len;
};

static void new_gen_free(struct new_gen *g)
{
    for (uint32_t i = 0; g->l2 && i < g->l1_size; i++) {
        free(g->l2[i].table);
    }
    free(g->l1);
    free(g->l2);
    free(g->snap_table);
}

static bool new_active_table(Qcow2State *s, const struct rebuild_plan *p,
                             uint32_t i, uint64_t **out, Error **errp)
{
    *out = NULL;
    uint64_t off = p->src_l1[i] & QCOW2_OFFSET_MASK;
    if (!off) {
        return true;
    }
    uint64_t *copy = xmalloc(s->cluster_size);
    if (p->src_active) {
        uint64_t *t;
        if (!qcow2_get_l2(s, i, &t, errp)) {
            free(copy);
            return false;
        }
        memcpy(copy, t, s->cluster_size);
    } else if ((off & (s->cluster_size - 1)) || off >= s->file_size ||
               !qcow2_pread_all(s, off, copy, s->cluster_size, errp)) {
        error_setg(errp, "L2 table at %#" PRIx64 " is invalid", off);
        free(copy);
        return false;
    }
    bool keep = false;
    for (uint64_t k = 0; k < s->l2_entries; k++) {
        uint64_t e = be64_get(&copy[k]) & ~QCOW2_OFLAG_COPIED;
        uint64_t guest = ((uint64_t)i << (s->cluster_bits + s->l2_bits)) +
            (k << s->cluster_bits);
        if (e && guest >= p->discard_from) {
            e = s->h.version >= 3 ? QCOW2_OFLAG_ZERO : 0;
        }
        uint64_t ho, hl;
        if (qcow2_entry_host_range(s, e, &ho, &hl)) {
            if (ho >= s->file_size ||
                (!(e & QCOW2_OFLAG_COMPRESSED) &&
                 (ho & (s->cluster_size - 1)))) {
                error_setg(errp,
                           "L2 entry %#" PRIx64 " is invalid: the image "
                           "is corrupt (see 'hop img check')",
                           e);
                free(copy);
                return false;
            }
            if (!qcow2_rc_add_range(s, ho, hl, 1, errp)) {
                free(copy);
                return false;
            }
            keep = true;
        } else if (e && guest < p->disk_size) {
            keep = true;
        }
        be64_put(&copy[k], e);
    }
    if (keep) {
        *out = copy;
    } else {
        free(copy);
    }
    return true;
}

static void set_copied_flags(Qcow2State *s, uint64_t *t)
{
    for (uint64_t k = 0; k < s->l2_entries; k++) {
        uint64_t e = be64_get(&t[k]);
        uint64_t ho = e & QCOW2_OFFSET_MASK;
        if (!(e & QCOW2_OFLAG_COMPRESSED) && ho &&
            qcow2_rc_get(s, ho >> s->cluster_bits) == 1) {
            be64_put(&t[k], e | QCOW2_OFLAG_COPIED);
        }
    }
}

/* The new L1 covers both the source table and the disk size: both
 * bounded before anything is sized by them. */
static bool new_l1_size(const Qcow2State *s, const struct rebuild_plan *p,
                        uint32_t *l1_size, Error **errp)
{
    uint64_t span = s->cluster_size * s->l2_entries;
    uint64_t need = p->disk_size / span + (p->disk_size % span != 0);
    if (need > QCOW2_MAX_L1_ENTRIES || p->src_l1_size > QCOW2_MAX_L1_ENTRIES) {
        error_setg(errp,
                   "disk size %" PRIu64 " (L1 table of %u entries) "
                   "needs more than the %u entries an L1 table may have",
                   p->disk_size, p->src_l1_size, QCOW2_MAX_L1_ENTRIES);
        return false;
    }
    *l1_size = p->src_l1_size > need ? p->src_l1_size : (uint32_t)need;
    return true;
}

/* Step 1: count what the snapshots reference into fresh refcounts, which
 * replace the in-memory ones; *old keeps those for a roll back. */
static bool count_references(Qcow2State *s, struct rebuild_plan *p,
                             struct saved_gen *old, Error **errp)
{
    struct qcow2_walk w = { .strict = true };
    qcow2_walk_add(s, &w, 0, s->cluster_size);
    /* The frozen disk counts as one more snapshot (a shallow copy). */
    struct qcow2_snapshot *all = xcalloc(p->nb + 1, sizeof(*all));
    memcpy(all, p->snaps, p->nb * sizeof(*all));
    all[p->nb] = (struct qcow2_snapshot){
        .l1_table_offset = p->frozen_l1_offset,
        .l1_size = p->frozen_l1_size,
        .id = (char *)"-",
        .name = (char *)"(background snapshot in progress)",
    };
    qcow2_walk_tables(s, &w, all, p->nb + (p->frozen_l1_size != 0), false);
    free(all);
    if (w.err) {
        error_propagate(errp, w.err);
        w.err = NULL;
        qcow2_walk_free(&w);
        return false;
    }
    *old = gen_save(s);
    s->rc_old = s->rc;
    s->rc_old_len = s->rc_len;
    s->rc = w.refs;
    s->rc_len = w.refs_len;
    w.refs = NULL;
    qcow2_walk_free(&w);
    s->used_end = 0;
    for (uint64_t c = 0; c < s->rc_len; c++) {
        if (s->rc[c]) {
            s->used_end = c + 1;
        }
    }
    s->free_hint = 1;
    s->rt = NULL;
    s->rb_dirty = NULL;
    s->rt_entries = 0;
    s->rt_offset = 0;
    s->rt_clusters = 0;
    return true;
}

/* Step 2: the new active layer's L2 tables and L1, with clusters for
 * each. */
static bool place_active(Qcow2State *s, const struct rebuild_plan *p,
                         struct new_gen *g, Error **errp)
{
    for (uint32_t i = 0; i < p->src_l1_size; i++) {
        if (!new_active_table(s, p, i, &g->l2[i].table, errp)) {
            return false;
        }
    }
    for (uint32_t i = 0; i < g->l1_size; i++) {
        if (g->l2[i].table) {
            uint64_t off = qcow2_alloc_clusters(s, 1, errp);
            g->l1[i] = off | QCOW2_OFLAG_COPIED;
            if (!off) {
                return false;
            }
        }
    }
    if (g->l1_size) {
        g->l1_offset = qcow2_alloc_clusters(
            s, qcow2_clusters(s, g->l1_size * (uint64_t)QCOW2_L1E_SIZE), errp);
        return g->l1_offset != 0;
    }
    return true;
}

/* Step 3: the snapshot table, and clusters for it. */
static bool place_snapshot_table(Qcow2State *s, const struct rebuild_plan *p,
                                 struct new_gen *g, Error **errp)
{
    g->snap_table = serialize_table(p->snaps, p->nb, &g->snap_len);
    if (g->snap_len > QCOW2_MAX_SNAPSHOT_TABLE) {
        error_setg(errp, "snapshot table would exceed %u MiB",
                   QCOW2_MAX_SNAPSHOT_TABLE >> 20);
        return false;
    }
    if (g->snap_len) {
        g->snap_offset =
            qcow2_alloc_clusters(s, qcow2_clusters(s, g->snap_len), errp);
        return g->snap_offset != 0;
    }
    return true;
}

static bool refcounts_fit(const Qcow2State *s, Error **errp)
{
    for (uint64_t c = 0; c < s->rc_len; c++) {
        if (s->rc[c] > s->refcount_max) {
            error_setg(errp,
                       "cluster %" PRIu64 " would have %" PRIu64
                       " references; refcount_bits=%u cannot count them",
                       c, s->rc[c], s->refcount_bits);
            return false;
        }
    }
    return true;
}

/* Step 4: write the new generation where nothing of the old one lives. */
static bool write_generation(Qcow2State *s, struct new_gen *g, Error **errp)
{
    for (uint32_t i = 0; i < g->l1_size; i++) {
        if (g->l2[i].table) {
            set_copied_flags(s, g->l2[i].table);
        }
    }
    memset(s->rb_dirty, 1, s->rt_entries);
    s->rt_dirty = true;
    size_t l1_bytes = (size_t)g->l1_size * QCOW2_L1E_SIZE;
    uint8_t *raw = xmalloc(l1_bytes);
    for (uint32_t i = 0; i < g->l1_size; i++) {
        be64_put(raw + QCOW2_L1E_SIZE * i, g->l1[i]);
    }
    bool ok = true;
    for (uint32_t i = 0; ok && i < g->l1_size; i++) {
        if (g->l2[i].table) {
            ok = qcow2_pwrite_all(s, g->l1[i] & QCOW2_OFFSET_MASK,
                                  g->l2[i].table, s->cluster_size, errp);
        }
    }
    ok = ok && qcow2_pwrite_all(s, g->l1_offset, raw, l1_bytes, errp) &&
        qcow2_pwrite_all(s, g->snap_offset, g->snap_table, g->snap_len, errp) &&
        qcow2_refcount_write_fresh(s, errp) && qcow2_sync(s, errp);
    free(raw);
    return ok;
}

/* Step 5: the switch, one header write; the in-memory header follows
 * only if it reached the disk. */
static bool switch_header(Qcow2State *s, const struct rebuild_plan *p,
                          const struct new_gen *g, Error **errp)
{
    struct qcow2_header h = s->h;
    s->h.size = p->disk_size;
    s->h.l1_size = g->l1_size;
    s->h.l1_table_offset = g->l1_offset;
    s->h.refcount_table_offset = s->rt_offset;
    s->h.refcount_table_clusters = s->rt_clusters;
    s->h.nb_snapshots = p->nb;
    s->h.snapshots_offset = g->snap_offset;
    if (!qcow2_write_header_pointers(s, errp) || !qcow2_sync(s, errp)) {
        s->h = h;
        return false;
    }
    return true;
}

/* Step 6: the new generation becomes the image's state; the old one's
 * memory goes. */
static void adopt(Qcow2State *s, struct rebuild_plan *p, struct new_gen *g,
                  struct saved_gen *old)
{
    free(old->rc);
    free(old->rt);
    free(old->rb_dirty);
    s->rc_old = NULL;
    s->rc_old_len = 0;
    s->rt_disk_offset = s->rt_offset;
    s->rt_disk_clusters = s->rt_clusters;
    s->rt_dirty = s->rt_moved = false;
    qcow2_l2_cache_drop(s);
    free(s->l1);
    free(s->l2);
    s->l1 = g->l1;
    s->l2 = g->l2;
    s->l1_size = g->l1_size;
    s->l1_offset = g->l1_offset;
    s->l1_dirty = s->l1_moved = false;
    g->l1 = NULL;
    g->l2 = NULL;
    qcow2_snapshots_free(s->snaps, s->nb_snaps);
    s->snaps = p->snaps;
    s->nb_snaps = p->nb;
    p->snaps = NULL;
    s->snapshots_offset = g->snap_offset;
    s->snapshots_size = g->snap_len;
    s->disk_size = p->disk_size;
    s->frozen = p->frozen_l1_size != 0;
    s->frozen_l1_offset = p->frozen_l1_offset;
    s->frozen_l1_size = p->frozen_l1_size;
    s->zcache_entry = UINT64_MAX;
    qcow2_snapview_drop(s);
    qcow2_meta_reset(s);
}

/* Write a new generation of metadata (active L1/L2, snapshot table,
 * refcounts) beside the old one and switch to it with one header write.
 * On failure the image and the in-memory state are as before. */
static bool rebuild(Qcow2State *s, struct rebuild_plan *p, Error **errp)
{
    struct new_gen g = { 0 };
    struct saved_gen old;
    if (!new_l1_size(s, p, &g.l1_size, errp) ||
        !qcow2_flush_metadata(s, errp) || !count_references(s, p, &old, errp)) {
        return false;
    }
    g.l1 = xcalloc(g.l1_size, sizeof(*g.l1));
    g.l2 = xcalloc(g.l1_size, sizeof(*g.l2));
    bool ok = place_active(s, p, &g, errp) &&
        place_snapshot_table(s, p, &g, errp) && qcow2_refcount_cover(s, errp) &&
        refcounts_fit(s, errp) && write_generation(s, &g, errp) &&
        fault_inject("snapshot-tables", errp) && switch_header(s, p, &g, errp);
    if (!ok) {
        new_gen_free(&g);
        gen_restore(s, &old);
        return false;
    }
    fault_exit_point("snapshot-header");
    adopt(s, p, &g, &old);
    new_gen_free(&g);
    return true;
}

void qcow2_snapview_drop(Qcow2State *s)
{
    qcow2_view_release(&s->snapview);
    free(s->snapview_l1);
    s->snapview_l1 = NULL;
    s->snapview_idx = -1;
}

bool qcow2_repair_refcounts(Qcow2State *s, Error **errp)
{
    struct rebuild_plan p = {
        .src_l1 = s->l1,
        .src_l1_size = s->l1_size,
        .src_active = true,
        .disk_size = s->disk_size,
        .discard_from = UINT64_MAX,
        .frozen_l1_offset = s->frozen_l1_offset,
        .frozen_l1_size = s->frozen ? s->frozen_l1_size : 0,
    };
    p.snaps = copy_table(s, -1, 0, &p.nb);
    bool ok = rebuild(s, &p, errp);
    qcow2_snapshots_free(p.snaps, p.nb);
    return ok;
}

bool qcow2_snapshot_list(BlockDev *bs, struct blk_snapshot **list,
                         size_t *count, Error **errp)
{
    Qcow2State *s = bs->opaque;
    struct blk_snapshot *l = xcalloc(s->nb_snaps + 1, sizeof(*l));
    for (uint32_t i = 0; i < s->nb_snaps; i++) {
        const struct qcow2_snapshot *sn = &s->snaps[i];
        l[i] = (struct blk_snapshot){
            .id = xstrdup(sn->id),
            .name = xstrdup(sn->name),
            .vm_state_size = sn->vm_state_size,
            .date_sec = sn->date_sec,
            .date_nsec = sn->date_nsec,
            .vm_clock_nsec = sn->vm_clock_nsec,
            .disk_size = sn->disk_size,
            .icount = sn->icount,
        };
    }
    *list = l;
    *count = s->nb_snaps;
    return true;
}

static char *next_id(const struct qcow2_snapshot *sn, uint32_t n)
{
    unsigned long long max = 0;
    for (uint32_t i = 0; i < n; i++) {
        char *end;
        unsigned long long v = strtoull(sn[i].id, &end, 10);
        if (*end == '\0' && v > max) {
            max = v;
        }
    }
    char *id = xasprintf("%llu", max + 1);
    return id;
}

/* The others wait for a background snapshot to end: their rebuild
 * would drop the disk it keeps. */
static bool not_frozen(BlockDev *bs, Error **errp)
{
    Qcow2State *s = bs->opaque;
    if (s->frozen) {
        error_setg(errp, "'%s': a background snapshot is being taken",
                   bs->filename);
        return false;
    }
    return true;
}

/* A new snapshot's name; replacing: the index of the one it replaces,
 * -1 when none (a name that exists is refused when not replacing). */
static bool name_ok(BlockDev *bs, const char *name, bool replace, int *old,
                    Error **errp)
{
    Qcow2State *s = bs->opaque;
    *old = -1;
    if (!name || !*name || strlen(name) > 65535) {
        error_setg(errp, "'%s': a snapshot needs a name of 1 to 65535 bytes",
                   bs->filename);
        return false;
    }
    for (uint32_t i = 0; i < s->nb_snaps && *old < 0; i++) {
        if (strcmp(s->snaps[i].name, name) == 0) {
            *old = (int)i;
        }
    }
    if (*old >= 0 && !replace) {
        error_setg(errp, "'%s': snapshot '%s' already exists", bs->filename,
                   name);
        return false;
    }
    if (s->nb_snaps - (*old >= 0) >= QCOW2_MAX_SNAPSHOTS) {
        error_setg(errp, "'%s': too many snapshots", bs->filename);
        return false;
    }
    return true;
}

/* Writes the table again with in added (its L1 at l1_offset, l1_size
 * entries) and entry `replace` left out (-1: none), in one header
 * update. */
static bool add_to_table(Qcow2State *s, const struct blk_snapshot *in,
                         int replace, uint64_t l1_offset, uint32_t l1_size,
                         Error **errp)
{
    struct rebuild_plan p = {
        .src_l1 = s->l1,
        .src_l1_size = s->l1_size,
        .src_active = true,
        .disk_size = s->disk_size,
        .discard_from = qcow2_vmstate_offset(s, s->disk_size),
    };
    p.snaps = copy_table(s, replace, 1, &p.nb);
    p.snaps[p.nb] = (struct qcow2_snapshot){
        .l1_table_offset = l1_offset,
        .l1_size = l1_size,
        .id = next_id(p.snaps, p.nb),
        .name = xstrdup(in->name),
        .date_sec = in->date_sec,
        .date_nsec = in->date_nsec,
        .vm_clock_nsec = in->vm_clock_nsec,
        .vm_state_size = in->vm_state_size,
        .disk_size = s->disk_size,
        .icount = in->icount,
        .extra_size = QCOW2_SNAPSHOT_EXTRA_SIZE,
    };
    p.nb++;
    bool ok = rebuild(s, &p, errp);
    qcow2_snapshots_free(p.snaps, p.nb);
    return ok;
}

bool qcow2_snapshot_create(BlockDev *bs, const struct blk_snapshot *in,
                           Error **errp)
{
    Qcow2State *s = bs->opaque;
    int old;
    if (!not_frozen(bs, errp) || !name_ok(bs, in->name, false, &old, errp)) {
        return false;
    }
    /* The snapshot's L1 is the active one as on disk: flush first. */
    if (!qcow2_flush_metadata(s, errp)) {
        error_prepend(errp, "'%s': ", bs->filename);
        return false;
    }
    bool ok = add_to_table(s, in, -1, s->h.l1_table_offset, s->h.l1_size, errp);
    if (!ok) {
        error_prepend(errp, "'%s': snapshot '%s': ", bs->filename, in->name);
    }
    return ok;
}

static int find_or_fail(BlockDev *bs, const char *name_or_id, Error **errp)
{
    int i = qcow2_snapshot_find(bs->opaque, name_or_id);
    if (i < 0) {
        error_setg(errp, "'%s': no snapshot '%s'", bs->filename, name_or_id);
    }
    return i;
}

/* find_or_fail, for a snapshot about to be used: "'IMG': cannot DOING
 * snapshot 'ID' ('NAME'): FIELD ..." when its entry is not usable. */
static int find_usable(BlockDev *bs, const char *name_or_id, const char *doing,
                       Error **errp)
{
    Qcow2State *s = bs->opaque;
    int i = find_or_fail(bs, name_or_id, errp);
    if (i >= 0 && !qcow2_snapshot_usable(s, &s->snaps[i], errp)) {
        char label[SNAP_LABEL_LEN];
        snap_label(&s->snaps[i], label, sizeof(label));
        error_prepend(errp, "'%s': cannot %s snapshot %s: ", bs->filename,
                      doing, label);
        return -1;
    }
    return i;
}

bool qcow2_snapshot_check(BlockDev *bs, const char *name_or_id, Error **errp)
{
    return find_usable(bs, name_or_id, "use", errp) >= 0;
}

bool qcow2_snapshot_apply(BlockDev *bs, const char *name_or_id, Error **errp)
{
    Qcow2State *s = bs->opaque;
    int idx = not_frozen(bs, errp)
        ? find_usable(bs, name_or_id, "revert to", errp)
        : -1;
    if (idx < 0) {
        return false;
    }
    const struct qcow2_snapshot *sn = &s->snaps[idx];
    uint64_t *l1 = read_l1(s, sn->l1_table_offset, sn->l1_size, errp);
    bool ok = l1 != NULL;
    if (ok) {
        struct rebuild_plan p = {
            .src_l1 = l1,
            .src_l1_size = sn->l1_size,
            .src_active = false,
            .disk_size = sn->disk_size,
            .discard_from = UINT64_MAX,
        };
        p.snaps = copy_table(s, -1, 0, &p.nb);
        ok = rebuild(s, &p, errp);
        qcow2_snapshots_free(p.snaps, p.nb);
    }
    free(l1);
    if (!ok) {
        error_prepend(errp, "'%s': reverting to snapshot '%s': ", bs->filename,
                      name_or_id);
    }
    return ok;
}

bool qcow2_snapshot_delete(BlockDev *bs, const char *name_or_id, Error **errp)
{
    Qcow2State *s = bs->opaque;
    int idx = not_frozen(bs, errp) ? find_or_fail(bs, name_or_id, errp) : -1;
    if (idx < 0) {
        return false;
    }
    struct rebuild_plan p = {
        .src_l1 = s->l1,
        .src_l1_size = s->l1_size,
        .src_active = true,
        .disk_size = s->disk_size,
        .discard_from = UINT64_MAX,
    };
    p.snaps = copy_table(s, idx, 0, &p.nb);
    bool ok = rebuild(s, &p, errp);
    qcow2_snapshots_free(p.snaps, p.nb);
    if (!ok) {
        error_prepend(errp, "'%s': deleting snapshot '%s': ", bs->filename,
                      name_or_id);
    }
    return ok;
}

bool qcow2_snapshot_pread(BlockDev *bs, const char *name_or_id, bool vmstate,
                          uint64_t off, void *buf, size_t len, Error **errp)
{
    Qcow2State *s = bs->opaque;
    struct qcow2_view v, *view = &v;
    uint64_t disk_size = s->disk_size;
    if (!name_or_id) {
        qcow2_view_active(s, &v);
    } else {
        int idx = find_usable(bs, name_or_id, "read", errp);
        if (idx < 0) {
            return false;
        }
        const struct qcow2_snapshot *sn = &s->snaps[idx];
        if (vmstate &&
            (off > sn->vm_state_size || len > sn->vm_state_size - off)) {
            error_setg(errp,
                       "'%s': snapshot '%s' holds %" PRIu64 " bytes of "
                       "machine state; cannot read %zu at %" PRIu64,
                       bs->filename, name_or_id, sn->vm_state_size, len, off);
            return false;
        }
        disk_size = sn->disk_size;
        if (s->snapview_idx != idx) {
            qcow2_snapview_drop(s);
            s->snapview_l1 = read_l1(s, sn->l1_table_offset, sn->l1_size, errp);
            if (!s->snapview_l1) {
                return false;
            }
            memset(&s->snapview, 0, sizeof(s->snapview));
            s->snapview.l1 = s->snapview_l1;
            s->snapview.l1_size = sn->l1_size;
            s->snapview_idx = idx;
        }
        view = &s->snapview;
    }
    bool ok = true;
    if (!vmstate && (off > disk_size || len > disk_size - off)) {
        error_setg(errp,
                   "'%s': read of %zu bytes at %" PRIu64 " is past the "
                   "end of the disk (%" PRIu64 " bytes)",
                   bs->filename, len, off, disk_size);
        ok = false;
    }
    uint64_t base = vmstate ? qcow2_vmstate_offset(s, disk_size) : 0;
    /* The machine state is this image's own, never the backing file's. */
    view->backing_end = vmstate ? 0 : disk_size;
    ok = ok && qcow2_read_view(s, view, base + off, buf, len, errp);
    if (view == &v) {
        qcow2_view_release(&v);
    }
    return ok;
}

bool qcow2_vmstate_pwritev(BlockDev *bs, uint64_t pos, const struct iovec *iov,
                           int iovcnt, Error **errp)
{
    Qcow2State *s = bs->opaque;
    bool ok = qcow2_write_iov(s, qcow2_vmstate_offset(s, s->disk_size) + pos,
                              iov, iovcnt, errp);
    if (!ok) {
        error_prepend(errp, "'%s': saving machine state: ", bs->filename);
    }
    return ok;
}

/* The active layer without its vmstate area, the snapshots as listed,
 * and the frozen disk at (offset, size), or none (size 0). */
static bool rebuild_frozen(Qcow2State *s, uint64_t frozen_offset,
                           uint32_t frozen_size, Error **errp)
{
    struct rebuild_plan p = {
        .src_l1 = s->l1,
        .src_l1_size = s->l1_size,
        .src_active = true,
        .disk_size = s->disk_size,
        .discard_from = qcow2_vmstate_offset(s, s->disk_size),
        .frozen_l1_offset = frozen_offset,
        .frozen_l1_size = frozen_size,
    };
    p.snaps = copy_table(s, -1, 0, &p.nb);
    bool ok = rebuild(s, &p, errp);
    qcow2_snapshots_free(p.snaps, p.nb);
    return ok;
}

/* The active L1 as on disk becomes the frozen disk, as create makes it a
 * snapshot's; the active layer gets copies, so the guest's writes copy
 * on write from here on.  The image is marked dirty meanwhile: after a
 * crash, the next open recounts the refcounts and what the frozen disk
 * held is free again, not leaked. */
bool qcow2_snapshot_begin(BlockDev *bs, Error **errp)
{
    Qcow2State *s = bs->opaque;
    if (!not_frozen(bs, errp)) {
        return false;
    }
    s->frozen_was_dirty = s->h.incompatible & QCOW2_INCOMPAT_DIRTY;
    bool ok = qcow2_flush_metadata(s, errp) && qcow2_set_dirty(s, true, errp);
    if (ok && !rebuild_frozen(s, s->h.l1_table_offset, s->h.l1_size, errp)) {
        qcow2_set_dirty(s, s->frozen_was_dirty, NULL);
        ok = false;
    }
    if (!ok) {
        error_prepend(errp,
                      "'%s': starting a background snapshot: ", bs->filename);
    }
    return ok;
}

/* The new snapshot's L1 table: the frozen disk's entries, and the active
 * layer's past the end of the disk (the vmstate written since the begin),
 * in clusters of its own; *offset 0 on failure. */
static uint64_t *joined_l1(Qcow2State *s, uint32_t *size, uint64_t *offset,
                           Error **errp)
{
    *offset = 0;
    uint64_t *frozen = read_l1(s, s->frozen_l1_offset, s->frozen_l1_size, errp);
    if (!frozen) {
        return NULL;
    }
    uint64_t vm_index =
        qcow2_vmstate_offset(s, s->disk_size) >> (s->cluster_bits + s->l2_bits);
    uint32_t n =
        s->frozen_l1_size > s->l1_size ? s->frozen_l1_size : s->l1_size;
    uint64_t *l1 = xcalloc(n ? n : 1, sizeof(*l1));
    for (uint32_t i = 0; i < n; i++) {
        uint64_t e = i < vm_index ? (i < s->frozen_l1_size ? frozen[i] : 0)
                                  : (i < s->l1_size ? s->l1[i] : 0);
        l1[i] = e & ~QCOW2_OFLAG_COPIED; /* meaningful in the active L1 only */
    }
    free(frozen);
    size_t bytes = (size_t)n * QCOW2_L1E_SIZE;
    uint8_t *raw = xcalloc(1, bytes ? bytes : 1);
    for (uint32_t i = 0; i < n; i++) {
        be64_put(raw + QCOW2_L1E_SIZE * i, l1[i]);
    }
    uint64_t off =
        n ? qcow2_alloc_clusters(s, qcow2_clusters(s, bytes), errp) : 0;
    bool ok = !n || off;
    if (off && !qcow2_pwrite_all(s, off, raw, bytes, errp)) {
        qcow2_defer_free(s, off, qcow2_clusters(s, bytes) << s->cluster_bits);
        ok = false;
        off = 0;
    }
    free(raw);
    if (!ok) {
        free(l1);
        return NULL;
    }
    *size = n;
    *offset = off;
    return l1;
}

bool qcow2_snapshot_commit(BlockDev *bs, const struct blk_snapshot *in,
                           Error **errp)
{
    Qcow2State *s = bs->opaque;
    int old;
    if (!s->frozen) {
        error_setg(errp, "'%s': no background snapshot is being taken",
                   bs->filename);
        return false;
    }
    if (!name_ok(bs, in->name, true, &old, errp)) {
        return false;
    }
    uint32_t l1_size = 0;
    uint64_t l1_offset = 0;
    uint64_t *l1 = NULL;
    bool ok = qcow2_flush_metadata(s, errp) &&
        (l1 = joined_l1(s, &l1_size, &l1_offset, errp)) != NULL;
    free(l1);
    if (ok) {
        /* The tag replaced goes in the same header write. */
        ok = add_to_table(s, in, old, l1_offset, l1_size, errp);
        /* Consistent either way: a failure to clear it costs a recount. */
        if (ok) {
            qcow2_set_dirty(s, s->frozen_was_dirty, NULL);
        }
        if (!ok && l1_offset) {
            qcow2_defer_free(
                s, l1_offset,
                qcow2_clusters(s, (uint64_t)l1_size * QCOW2_L1E_SIZE)
                    << s->cluster_bits);
        }
    }
    if (!ok) {
        error_prepend(errp, "'%s': snapshot '%s': ", bs->filename, in->name);
    }
    return ok;
}

/* Gives the file system back the clusters of [off, off+len), which no
 * metadata points at any more (nothing if it cannot). */
static void punch(Qcow2State *s, uint64_t off, uint64_t len)
{
    if (len &&
        fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                  (off_t)len) < 0) {
        /* The space stays taken: only a full disk needs it back. */
    }
}

/* The state written since the begin leaves the active layer in place,
 * and its clusters go back to the file system: the rebuild of an abort
 * on a disk that filled up has room then. */
static bool drop_vmstate_in_place(Qcow2State *s, Error **errp)
{
    uint64_t vm_index =
        qcow2_vmstate_offset(s, s->disk_size) >> (s->cluster_bits + s->l2_bits);
    uint64_t *ranges = NULL; /* offset, length pairs */
    size_t n = 0;
    for (uint64_t i = vm_index; i < s->l1_size; i++) {
        uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK;
        uint64_t *t;
        if (!l2) {
            continue;
        }
        if (!qcow2_get_l2(s, (uint32_t)i, &t, errp)) {
            return false;
        }
        for (uint64_t k = 0; k < s->l2_entries; k++) {
            uint64_t ho, hl;
            if (qcow2_entry_host_range(s, be64_get(&t[k]), &ho, &hl)) {
                qcow2_defer_free(s, ho, hl);
                if (n && ranges[2 * n - 2] + ranges[2 * n - 1] == ho) {
                    ranges[2 * n - 1] += hl;
                } else {
                    ranges = xrealloc(ranges, (n + 1) * 2 * sizeof(*ranges));
                    ranges[2 * n] = ho;
                    ranges[2 * n + 1] = hl;
                    n++;
                }
            }
        }
        qcow2_defer_free(s, l2, s->cluster_size);
        free(s->l2[i].table);
        s->l2[i].table = NULL;
        s->l2[i].dirty = false;
        s->l2_cached--;
        s->l1[i] = 0;
        s->l1_dirty = true;
    }
    bool ok = qcow2_flush_metadata(s, errp);
    for (size_t r = 0; ok && r < n; r++) {
        punch(s, ranges[2 * r], ranges[2 * r + 1]);
    }
    free(ranges);
    return ok;
}

bool qcow2_snapshot_abort(BlockDev *bs, Error **errp)
{
    Qcow2State *s = bs->opaque;
    if (!s->frozen) {
        return true;
    }
    if (!drop_vmstate_in_place(s, errp) || !rebuild_frozen(s, 0, 0, errp)) {
        error_prepend(errp,
                      "'%s': dropping the disk kept for a background "
                      "snapshot (it stays counted until the image is "
                      "opened again): ",
                      bs->filename);
        /* Still counted on disk (the dirty bit stays: the next open
         * recounts), but let go here: the next rebuild recounts too. */
        s->frozen = false;
        return false;
    }
    qcow2_set_dirty(s, s->frozen_was_dirty, NULL);
    return true;
}
