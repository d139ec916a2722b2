/* The qcow2 driver's internals, shared by its files:
 *   qcow2.c           header parsing and validation, open/close, create
 *   qcow2-refcount.c  the refcount array, cluster allocation, refblocks
 *   qcow2-cluster.c   L1/L2 mapping, reads, writes, ordered flush
 *   qcow2-snapshot.c  snapshot table, create/apply/delete, vmstate area
 *   qcow2-check.c     reference walk shared by check and snapshot rebuilds
 *   qcow2-overlap.c   the map of metadata clusters that guest writes and
 *                     allocations must not land on
 *
 * Crash safety.  Metadata reaches the file in an order that keeps it
 * consistent after a crash at any point (leaks allowed):
 *   - ordinary writes: data and refcount increments first, then L2 tables,
 *     then L1 entries, then refcount decrements of clusters that lost a
 *     reference; fdatasync between the steps (qcow2_flush_metadata);
 *   - snapshot create/apply/delete build a whole new generation of
 *     metadata (active L1 and L2 tables, snapshot table, refcount table and
 *     blocks) in clusters free in both the old and the new generation, then
 *     switch to it with one write of the header's pointer fields.
 * Each step is a fault-injection point (util/fault.h), so tests can make
 * a writer fail or die there. */
#ifndef HOP_BLOCK_QCOW2_H
#define HOP_BLOCK_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/block.h"
#include "util/be.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_OFLAG_COPIED (1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED (1ULL << 62)
#define QCOW2_OFLAG_ZERO 1ULL
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ULL
#define QCOW2_L1E_RESERVED 0x7f000000000001ffULL
#define QCOW2_L2E_RESERVED 0x3f000000000001feULL
#define QCOW2_RTE_RESERVED 0x1ffULL

/* Feature bits (header v3). */
#define QCOW2_INCOMPAT_DIRTY (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ULL << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)
#define QCOW2_AUTOCLEAR_BITMAPS (1ULL << 0)

/* Header extension types. */
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FMT 0xe2792acau
#define QCOW2_EXT_FEATURE_NAMES 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

/* Limits (as QEMU's, so that what we write QEMU opens). */
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_RT_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536u
#define QCOW2_MAX_SNAPSHOT_TABLE (64u << 20)
#define QCOW2_MAX_EXTRA_DATA 1024u
#define QCOW2_HEADER_V2_LEN 72u
#define QCOW2_HEADER_V3_LEN 112u
/* The backing file's name and format extension (QEMU's bounds). */
#define QCOW2_MAX_BACKING_NAME 1023u
#define QCOW2_MAX_BACKING_FMT 15u

/* An L1 (or L2) entry is one big-endian 64-bit word. */
#define QCOW2_L1E_SIZE 8u
#define QCOW2_MAX_L1_ENTRIES (QCOW2_MAX_L1_BYTES / QCOW2_L1E_SIZE)

/* A snapshot table entry: the fixed fields (offsets below), extra data
 * of extra_data_size bytes, the id and the name (lengths in 16-bit
 * fields, no NUL), zero padding to a multiple of 8 bytes. */
#define QCOW2_SN_L1_TABLE_OFFSET 0u  /* u64 */
#define QCOW2_SN_L1_SIZE 8u          /* u32 */
#define QCOW2_SN_ID_SIZE 12u         /* u16 */
#define QCOW2_SN_NAME_SIZE 14u       /* u16 */
#define QCOW2_SN_DATE_SEC 16u        /* u32 */
#define QCOW2_SN_DATE_NSEC 20u       /* u32 */
#define QCOW2_SN_VM_CLOCK_NSEC 24u   /* u64 */
#define QCOW2_SN_VM_STATE_SIZE 32u   /* u32 */
#define QCOW2_SN_EXTRA_DATA_SIZE 36u /* u32 */
#define QCOW2_SN_FIXED_SIZE 40u
/* Extra data, from its start: each u64 field is there only if
 * extra_data_size reaches past it (older writers wrote less). */
#define QCOW2_SN_EXTRA_VM_STATE_SIZE 0u /* the full vm_state_size */
#define QCOW2_SN_EXTRA_DISK_SIZE 8u     /* the disk size at the snapshot */
#define QCOW2_SN_EXTRA_ICOUNT 16u       /* instruction count, or -1 */
#define QCOW2_SNAPSHOT_EXTRA_SIZE 24u   /* what hop knows and writes */
#define QCOW2_SN_ALIGN 8u               /* each entry starts aligned */
#define QCOW2_SN_STR_MAX UINT16_MAX     /* id or name, bytes */

/* Does sn's extra data hold the u64 field at offset off? */
#define QCOW2_SN_HAS_EXTRA(sn, off) ((sn)->extra_size >= (off) + 8u)

/* The fixed header fields, host-endian: the copy of what is on disk. */
struct qcow2_header {
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompatible;
    uint64_t compatible;
    uint64_t autoclear;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
};

struct qcow2_snapshot {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    char *id;
    char *name;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t vm_state_size;
    uint64_t disk_size;
    int64_t icount;
    uint32_t extra_size; /* as read; we write at least
                              * QCOW2_SNAPSHOT_EXTRA_SIZE */
    uint8_t *extra_rest; /* extra bytes past those we know, kept */
};

/* A cached active L2 table: big-endian, as on disk. */
struct qcow2_l2_slot {
    uint64_t *table;
    bool dirty;
};

/* Clusters to lose one reference once the metadata that pointed at them
 * is on disk: [offset, offset+len) rounded out to clusters. */
struct qcow2_free {
    uint64_t offset;
    uint64_t len;
};

/* One view through which guest offsets are mapped: the active layer
 * (with the L2 cache) or a snapshot's L1 copy (L2 tables read on demand). */
struct qcow2_view {
    const uint64_t *l1;
    uint32_t l1_size;
    bool active;
    uint64_t l2_offset; /* snapshot views: the L2 table in l2_buf */
    uint64_t *l2_buf;
    /* Unallocated clusters below this guest offset read from the backing
     * file (the view's disk size; 0 for the vmstate area). */
    uint64_t backing_end;
};

/* A growable bitmap over host clusters. */
struct qcow2_bits {
    uint64_t *w;
    uint64_t nbits;
};

typedef struct Qcow2State {
    int fd;
    bool readonly;
    const char *name;      /* the image's file name, for messages */
    struct qcow2_header h; /* as on disk */
    uint64_t file_size;

    uint32_t cluster_bits;
    uint64_t cluster_size;
    uint32_t l2_bits;
    uint64_t l2_entries;
    uint32_t csize_shift; /* compressed L2 entries */
    uint64_t csize_mask;
    uint64_t coffset_mask;
    uint64_t disk_size; /* virtual size */

    /* Active L1 (host-endian, in memory; on disk at l1_offset). */
    uint64_t *l1;
    uint32_t l1_size;
    uint64_t l1_offset;
    bool l1_dirty;
    bool l1_moved;            /* new table not yet in the header */
    struct qcow2_l2_slot *l2; /* one slot per L1 entry */

    /* Refcounts: every host cluster's count, in memory. */
    uint64_t *rc;
    uint64_t rc_len;   /* clusters rc[] can index */
    uint64_t used_end; /* 1 + highest cluster with rc > 0 */
    uint64_t free_hint;
    uint64_t *rc_old; /* during a rebuild: the on-disk generation */
    uint64_t rc_old_len;
    uint32_t refcount_bits;
    uint64_t refcount_max;
    uint64_t rb_entries; /* refcounts per refcount block */
    uint64_t *rt;        /* refcount table, host-endian */
    uint64_t rt_entries; /* capacity */
    uint64_t rt_offset;
    uint32_t rt_clusters;
    bool rt_dirty;
    bool rt_moved;
    uint64_t rt_disk_offset; /* the table the header names */
    uint32_t rt_disk_clusters;
    uint8_t *rb_dirty; /* per refcount table entry */
    uint64_t rb_bad;   /* refcount blocks we could not load */

    struct qcow2_free *pending;
    size_t npending, pending_cap;

    struct qcow2_snapshot *snaps;
    uint32_t nb_snaps;
    uint64_t snapshots_offset;
    uint64_t snapshots_size;

    /* A background snapshot in progress (qcow2_snapshot_begin): the L1
     * table of the disk as it was at its start, counted in the refcounts
     * but not listed; the vmstate goes into the active layer meanwhile. */
    bool frozen;
    uint64_t frozen_l1_offset;
    uint32_t frozen_l1_size;
    bool frozen_was_dirty; /* the dirty bit before the begin */

    /* The last snapshot read through (its L1 copy and one L2 table). */
    int snapview_idx; /* -1: none */
    struct qcow2_view snapview;
    uint64_t *snapview_l1;

    uint64_t zcache_entry; /* last decompressed cluster */
    uint8_t *zcache;
    uint64_t l2_cached; /* tables in the active L2 cache */

    /* Writable images: clusters holding metadata (a superset: a bit whose
     * structure is gone is dropped when met).  A guest write or an
     * allocation landing on one marks the image corrupt and fails. */
    struct qcow2_bits meta;
    bool corrupt; /* since then, every write fails */

    /* The backing file (read-only): unallocated clusters of the disk read
     * from it.  NULL when the header names none. */
    BlockDev *backing;
    char *backing_name;                          /* as in the header */
    char *backing_path;                          /* as opened */
    char backing_fmt[QCOW2_MAX_BACKING_FMT + 1]; /* "" without extension */
} Qcow2State;

/* qcow2.c */
bool qcow2_write_header_pointers(Qcow2State *s, Error **errp);
bool qcow2_pwrite_all(Qcow2State *s, uint64_t off, const void *buf, size_t len,
                      Error **errp);
bool qcow2_pread_all(Qcow2State *s, uint64_t off, void *buf, size_t len,
                     Error **errp);
bool qcow2_sync(Qcow2State *s, Error **errp);
/* Set the corrupt bit in the header (v3) and refuse every later write. */
void qcow2_mark_corrupt(Qcow2State *s);
/* Set or clear the dirty bit (v3; nothing on v2), durably: while it is
 * set, whoever opens the image next for writing recounts its refcounts
 * (QEMU does, and so does hop). */
bool qcow2_set_dirty(Qcow2State *s, bool on, Error **errp);
uint64_t qcow2_vmstate_offset(const Qcow2State *s, uint64_t disk_size);

/* Driver entry points (qcow2-snapshot.c, qcow2-check.c). */
bool qcow2_check(BlockDev *bs, struct blk_check_result *res, Error **errp);
bool qcow2_snapshot_list(BlockDev *bs, struct blk_snapshot **list,
                         size_t *count, Error **errp);
bool qcow2_snapshot_create(BlockDev *bs, const struct blk_snapshot *sn,
                           Error **errp);
bool qcow2_snapshot_apply(BlockDev *bs, const char *name_or_id, Error **errp);
bool qcow2_snapshot_delete(BlockDev *bs, const char *name_or_id, Error **errp);
bool qcow2_snapshot_check(BlockDev *bs, const char *name_or_id, Error **errp);
bool qcow2_snapshot_pread(BlockDev *bs, const char *name_or_id, bool vmstate,
                          uint64_t off, void *buf, size_t len, Error **errp);
bool qcow2_vmstate_pwritev(BlockDev *bs, uint64_t pos, const struct iovec *iov,
                           int iovcnt, Error **errp);
bool qcow2_snapshot_begin(BlockDev *bs, Error **errp);
bool qcow2_snapshot_commit(BlockDev *bs, const struct blk_snapshot *sn,
                           Error **errp);
bool qcow2_snapshot_abort(BlockDev *bs, Error **errp);
/* Recount every reference and switch to fresh refcounts (dirty images). */
bool qcow2_repair_refcounts(Qcow2State *s, Error **errp);

/* qcow2-refcount.c */
bool qcow2_refcount_load(Qcow2State *s, Error **errp);
void qcow2_refcount_free(Qcow2State *s);
uint64_t qcow2_rc_get(const Qcow2State *s, uint64_t cluster);
void qcow2_rc_set(Qcow2State *s, uint64_t cluster, uint64_t value);
bool qcow2_rc_add_range(Qcow2State *s, uint64_t offset, uint64_t len,
                        int64_t delta, Error **errp);
/* Allocate n contiguous clusters (refcount 1); returns the byte offset or
 * 0 with errp set.  Keeps the refcount structure covering them. */
uint64_t qcow2_alloc_clusters(Qcow2State *s, uint64_t n, Error **errp);
void qcow2_defer_free(Qcow2State *s, uint64_t offset, uint64_t len);
/* Allocate refcount blocks (and table room) for every cluster in use. */
bool qcow2_refcount_cover(Qcow2State *s, Error **errp);
/* Write dirty refcount blocks, then the table (moving it if it grew). */
bool qcow2_refcount_write(Qcow2State *s, Error **errp);
bool qcow2_apply_pending_frees(Qcow2State *s, Error **errp);
/* Give the refcount structure fresh clusters (rebuilds). */
bool qcow2_refcount_relocate(Qcow2State *s, Error **errp);
/* Write every refcount block and the table of a relocated structure (no
 * header update: the caller switches to it). */
bool qcow2_refcount_write_fresh(Qcow2State *s, Error **errp);
void qcow2_serialize_refblock(const Qcow2State *s, uint64_t index,
                              uint8_t *out);
uint64_t qcow2_refblock_get(const Qcow2State *s, const uint8_t *blk,
                            uint64_t i);

/* qcow2-cluster.c */
bool qcow2_read_view(Qcow2State *s, struct qcow2_view *v, uint64_t off,
                     void *buf, size_t len, Error **errp);
bool qcow2_write_iov(Qcow2State *s, uint64_t off, const struct iovec *iov,
                     int iovcnt, Error **errp);
bool qcow2_flush_metadata(Qcow2State *s, Error **errp);
void qcow2_view_active(Qcow2State *s, struct qcow2_view *v);
void qcow2_view_release(struct qcow2_view *v);
/* The active L2 table for an L1 index, cached; *table NULL when none. */
bool qcow2_get_l2(Qcow2State *s, uint32_t l1_index, uint64_t **table,
                  Error **errp);
void qcow2_l2_cache_drop(Qcow2State *s);
bool qcow2_entry_host_range(const Qcow2State *s, uint64_t l2e, uint64_t *off,
                            uint64_t *len);
bool qcow2_is_allocated(BlockDev *bs, uint64_t off, uint64_t len,
                        bool *allocated, uint64_t *pnum, Error **errp);

/* qcow2-snapshot.c */
bool qcow2_snapshots_load(Qcow2State *s, Error **errp);
/* Can snapshot entry sn be used (applied, read)?  Its L1 table fits the
 * image and the file, and addresses the disk size it claims. */
bool qcow2_snapshot_usable(const Qcow2State *s, const struct qcow2_snapshot *sn,
                           Error **errp);
void qcow2_snapshots_free(struct qcow2_snapshot *sn, uint32_t n);
int qcow2_snapshot_find(const Qcow2State *s, const char *name_or_id);
void qcow2_snapview_drop(Qcow2State *s);

/* qcow2-overlap.c */
bool qcow2_bits_test(const struct qcow2_bits *b, uint64_t i);
void qcow2_bits_set(struct qcow2_bits *b, uint64_t i);
void qcow2_bits_clear(struct qcow2_bits *b, uint64_t i);
void qcow2_bits_free(struct qcow2_bits *b);
/* Writable open: map every metadata cluster; fails when two structures
 * share a cluster (writing one would clobber the other). */
bool qcow2_meta_build(Qcow2State *s, Error **errp);
/* After a rebuild switched to new structures. */
void qcow2_meta_reset(Qcow2State *s);
void qcow2_meta_mark(Qcow2State *s, uint64_t off, uint64_t len);
/* Before writing [off, off+len) with anything but the metadata that lives
 * there: fails (marking the image corrupt) if metadata lives there; *hit
 * is then the first such cluster's offset. */
bool qcow2_meta_check(Qcow2State *s, uint64_t off, uint64_t len, uint64_t *hit,
                      Error **errp);

/* qcow2-check.c: count references to every cluster from the header's
 * structures (cluster 0, refcount table and blocks, snapshot table, every
 * L1 and its L2 tables and data).  Problems are counted by kind (the
 * message format); the first few of each kind are kept as lines, then
 * one line says how many more there were.  With strict, the first
 * problem fails the walk.  Time and memory follow the file's size: each
 * L2 table is read once however many L1 entries name it. */
#define QCOW2_CHECK_MAX_MESSAGES 100
#define QCOW2_CHECK_MESSAGES_PER_KIND 10
struct qcow2_msg_kind;
struct qcow2_walk {
    uint64_t *refs;
    uint64_t refs_len;
    uint64_t *l2_refs; /* per cluster: L1 entries naming it */
    uint64_t l2_refs_len;
    uint64_t corruptions;
    uint64_t check_errors;
    bool strict;
    Error *err;
    char **msgs;
    size_t nmsgs;
    struct qcow2_msg_kind *kinds; /* problems counted per message */
    size_t nkinds;
    /* active-layer statistics */
    uint64_t allocated, fragmented, compressed;
};
void qcow2_walk_add(Qcow2State *s, struct qcow2_walk *w, uint64_t off,
                    uint64_t len);
/* Every reference from the L1 tables of snaps[0..nb) and, with active,
 * the active L1 as on disk (with its statistics and COPIED flags). */
bool qcow2_walk_tables(Qcow2State *s, struct qcow2_walk *w,
                       const struct qcow2_snapshot *snaps, uint32_t nb,
                       bool active);
void qcow2_walk_note(struct qcow2_walk *w, bool corruption, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));
void qcow2_walk_free(struct qcow2_walk *w);
/* Cluster 0, the refcount table and blocks, the snapshot table. */
void qcow2_walk_fixed(Qcow2State *s, struct qcow2_walk *w);

static inline uint64_t qcow2_clusters(const Qcow2State *s, uint64_t bytes)
{
    return (bytes + s->cluster_size - 1) >> s->cluster_bits;
}

#endif
