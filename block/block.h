/* Block devices: one interface over the image formats in block/ (raw,
 * qcow2).  Offsets and lengths are in bytes; I/O need not be aligned. */
#ifndef HOP_BLOCK_BLOCK_H
#define HOP_BLOCK_BLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/error.h"

typedef struct BlockDev BlockDev;

/* One internal snapshot, as stored in the image. */
struct blk_snapshot {
    char *id; /* "1", "2", ... (assigned on create) */
    char *name;
    uint64_t vm_state_size; /* 0 = disk-only snapshot */
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec; /* guest run time */
    uint64_t disk_size;     /* virtual disk size when taken */
    int64_t icount;         /* -1: not recorded */
};

/* Format details for `hop img info`. */
struct blk_info {
    uint64_t cluster_size;   /* 0 when the format has none */
    const char *compat;      /* "0.10" (v2), "1.1" (v3) */
    const char *compression; /* "zlib" */
    uint32_t refcount_bits;
    bool lazy_refcounts;
    bool corrupt;
    bool dirty;
    bool extended_l2;
    /* The backing file as the header names it, that name resolved as it
     * is opened (against the image's directory) and its format from the
     * header ("" when the header gives none); NULL when there is none.
     * Valid while the image is open. */
    const char *backing_file;
    const char *full_backing_file;
    const char *backing_format;
    unsigned backing_depth; /* images below this one */
};

/* What `hop img check` found, counted as qemu-img check counts. */
struct blk_check_result {
    uint64_t corruptions;    /* references the refcounts do not cover */
    uint64_t leaks;          /* clusters counted but not referenced */
    uint64_t check_errors;   /* the check itself could not read */
    uint64_t total_clusters; /* guest clusters of the virtual disk */
    uint64_t allocated_clusters;
    uint64_t fragmented_clusters;
    uint64_t compressed_clusters;
    uint64_t image_end_offset;
    char **messages; /* one line each, in order found */
    size_t nmessages;
};

struct block_driver {
    const char *format; /* "raw", "qcow2" */
    /* Does this header look like ours?  (For probing.) */
    bool (*probe)(const uint8_t *head, size_t len);
    bool (*open)(BlockDev *bs, int fd, bool readonly, Error **errp);
    void (*close)(BlockDev *bs);
    bool (*pread)(BlockDev *bs, uint64_t off, void *buf, size_t len,
                  Error **errp);
    bool (*pwrite)(BlockDev *bs, uint64_t off, const void *buf, size_t len,
                   Error **errp);
    bool (*flush)(BlockDev *bs, Error **errp);
    uint64_t (*size)(BlockDev *bs);

    /* Optional (NULL where the format has no such thing).  create_check
     * validates size and options before any file is touched; create then
     * writes a new image over the (locked, possibly non-empty) file. */
    bool (*create_check)(uint64_t size, const char *options, Error **errp);
    bool (*create)(int fd, uint64_t size, const char *options, Error **errp);
    void (*info)(BlockDev *bs, struct blk_info *info);
    bool (*check)(BlockDev *bs, struct blk_check_result *res, Error **errp);
    /* Is [off, off + *pnum) allocated in this image itself (data or zero
     * clusters), not left to a backing file or unwritten?  *pnum is at
     * most len and at least 1 byte; NULL: every byte is (raw). */
    bool (*is_allocated)(BlockDev *bs, uint64_t off, uint64_t len,
                         bool *allocated, uint64_t *pnum, Error **errp);
    bool (*snapshot_list)(BlockDev *bs, struct blk_snapshot **list,
                          size_t *count, Error **errp);
    bool (*snapshot_create)(BlockDev *bs, const struct blk_snapshot *sn,
                            Error **errp);
    bool (*snapshot_apply)(BlockDev *bs, const char *name_or_id, Error **errp);
    bool (*snapshot_delete)(BlockDev *bs, const char *name_or_id, Error **errp);
    bool (*snapshot_check)(BlockDev *bs, const char *name_or_id, Error **errp);
    /* snapshot NULL: the active layer. */
    bool (*snapshot_pread)(BlockDev *bs, const char *name_or_id, bool vmstate,
                           uint64_t off, void *buf, size_t len, Error **errp);
    bool (*vmstate_pwritev)(BlockDev *bs, uint64_t pos, const struct iovec *iov,
                            int iovcnt, Error **errp);
    bool (*snapshot_begin)(BlockDev *bs, Error **errp);
    bool (*snapshot_commit)(BlockDev *bs, const struct blk_snapshot *sn,
                            Error **errp);
    bool (*snapshot_abort)(BlockDev *bs, Error **errp);
};

struct BlockDev {
    const struct block_driver *drv;
    char *filename;
    int fd;
    bool readonly;
    bool probed;    /* no format was given: drv was guessed */
    unsigned flags; /* as opened (blk_open_flags) */
    /* Guards inactive and opaque: a migration thread hands the image over
     * (blk_inactivate, blk_activate) while a monitor may be using it. */
    pthread_mutex_t lock;
    bool inactive; /* no locks held, no driver state */
    void *opaque;  /* driver state; NULL while inactive */
    /* Chunks written since blk_dirty_start (block migration); NULL when
     * nobody tracks them.  Guarded by lock. */
    struct blk_dirty *dirty;
    /* While it opens: the image this one is the backing file of (NULL for
     * an image opened by its user) and how many images lie above it;
     * blk_open_backing uses them to bound the chain and find loops. */
    BlockDev *backed;
    unsigned depth;
    /* The open failed in the backing chain, and the error already says
     * which backing file of which image: images above add no prefix. */
    bool chain_error;
};

/* The deepest backing chain opened: images below the one opened. */
#define BLK_MAX_BACKING_DEPTH 64

/* blk_open_flags() flags. */
enum {
    BLK_OPEN_RDWR = 1u << 0,
    /* Read-only: lock no writer out (qemu-img's -U/--force-share); the
     * image may change under the reader. */
    BLK_OPEN_FORCE_SHARE = 1u << 1,
    /* Open the file but neither lock it nor read its metadata (only the
     * format is probed): another process may be writing it until it is
     * handed over.  blk_activate takes it up. */
    BLK_OPEN_INACTIVE = 1u << 2,
};

/* Open path as format ("raw", "qcow2"), or probe when format is NULL.
 * The image is locked as QEMU locks it, for as long as it is open: a
 * reader keeps writers out, a writer keeps other writers and readers out
 * (QEMU's and other hop processes alike); a conflict fails the open with
 * "image 'PATH' is in use by another process (...)".
 * A raw image whose format was probed refuses writes that would make its
 * first sector probe as another format (a guest could otherwise turn its
 * disk into a qcow2 image pointing at any host file). */
BlockDev *blk_open_flags(const char *path, const char *format, unsigned flags,
                         Error **errp);
/* blk_open_flags with BLK_OPEN_RDWR unless readonly. */
BlockDev *blk_open(const char *path, const char *format, bool readonly,
                   Error **errp);
void blk_close(BlockDev *bs);
bool blk_pread(BlockDev *bs, uint64_t off, void *buf, size_t len, Error **errp);
bool blk_pwrite(BlockDev *bs, uint64_t off, const void *buf, size_t len,
                Error **errp);
/* Nothing to flush on an inactive image: succeeds. */
bool blk_flush(BlockDev *bs, Error **errp);
/* Starts writing back what was written so far, without waiting: a long
 * write (savevm's vmstate) then overlaps with the disk, and the flush at
 * its end waits for less. */
void blk_writeback_start(BlockDev *bs);
/* 0 while inactive. */
uint64_t blk_size(BlockDev *bs);
const char *blk_format(const BlockDev *bs);
const struct block_driver *blk_find_driver(const char *format);

/* Handing an image over to another process (live migration between two
 * processes naming the same image, as QEMU's inactive images).  Inactive,
 * an image holds no lock bytes and no driver state: every operation but
 * blk_size (0), blk_flush (nothing to do) and blk_close fails with
 * "image 'PATH' is inactive ...".  blk_inactivate flushes, forgets the
 * driver state and drops the locks; on a failed flush the image stays
 * active.  blk_activate takes the locks as the open did (failing, with
 * the lock error, while another process holds the image) and reads the
 * metadata afresh, as another process may have written the image in the
 * meantime.  Both do nothing to an image already in that state. */
bool blk_inactivate(BlockDev *bs, Error **errp);
bool blk_activate(BlockDev *bs, Error **errp);
bool blk_is_inactive(BlockDev *bs);
/* All of them or none: on a failure the ones already changed go back. */
bool blk_inactivate_all(BlockDev *const *list, size_t n, Error **errp);
bool blk_activate_all(BlockDev *const *list, size_t n, Error **errp);

/* Dirty tracking for block migration: after blk_dirty_start, every
 * successful write marks the chunks of chunk_size bytes it touched.  A
 * chunk is taken (cleared) before it is read, so a write racing with the
 * read marks it again.  chunk_size is a power of two. */
bool blk_dirty_start(BlockDev *bs, uint64_t chunk_size, Error **errp);
void blk_dirty_stop(BlockDev *bs);
/* The first dirty chunk at or after from (a chunk index), cleared; false
 * when there is none. */
bool blk_dirty_take(BlockDev *bs, uint64_t from, uint64_t *chunk);
/* Clears one chunk (before it is read). */
void blk_dirty_clear(BlockDev *bs, uint64_t chunk);
uint64_t blk_dirty_count(BlockDev *bs);
bool blk_is_readonly(const BlockDev *bs);

/* Is [off, off + *pnum) allocated in bs itself, rather than read from its
 * backing file (or zeros where it has none)?  As QEMU's
 * bdrv_is_allocated: zero clusters count as allocated.  *pnum is at
 * least 1 and at most len (len > 0; the range within the disk). */
bool blk_is_allocated(BlockDev *bs, uint64_t off, uint64_t len, bool *allocated,
                      uint64_t *pnum, Error **errp);
/* The backing file's name, resolved as QEMU resolves it: an absolute
 * name as it is, a relative one against the directory of image (or as it
 * is when image has no directory part).  Freed by the caller. */
char *blk_backing_path(const char *image, const char *backing);
/* Internal to block/: opens the backing file of parent, named name in
 * its header, at path (read-only, sharing it with other readers, probing
 * the format when format is NULL).  Refuses a chain deeper than
 * BLK_MAX_BACKING_DEPTH and a file already in parent's chain (a loop).
 * Errors read "backing file NAME of PARENT: why", however deep. */
BlockDev *blk_open_backing(BlockDev *parent, const char *name, const char *path,
                           const char *format, Error **errp);

/* Create an image file at path of size bytes, over any file there
 * (locked first, as a writer).  options: "key=value,..." as qemu-img -o;
 * qcow2 knows cluster_size (512..2M, a power of two).  Size and options
 * are checked before the file is opened: a refusal leaves an existing
 * file as it was, and only a file this call created is removed on
 * failure. */
bool blk_create(const char *path, const char *format, uint64_t size,
                const char *options, Error **errp);
/* Do path and bs name the same file (through links, too)? */
bool blk_same_file(BlockDev *bs, const char *path);
void blk_get_info(BlockDev *bs, struct blk_info *info);
bool blk_check(BlockDev *bs, struct blk_check_result *res, Error **errp);
void blk_check_result_free(struct blk_check_result *res);

/* Internal snapshots.  Each fails with a clear error on a format without
 * them (raw).  A snapshot is found by name first, then by id. */
bool blk_snapshot_list(BlockDev *bs, struct blk_snapshot **list, size_t *count,
                       Error **errp);
void blk_snapshot_list_free(struct blk_snapshot *list, size_t count);
/* Finds one snapshot; out's strings are the caller's to free with
 * blk_snapshot_clear. */
bool blk_snapshot_find(BlockDev *bs, const char *name_or_id,
                       struct blk_snapshot *out, Error **errp);
void blk_snapshot_clear(struct blk_snapshot *sn);
/* Snapshot the disk and the first sn->vm_state_size bytes of the vmstate
 * area (written before with blk_vmstate_pwrite*).  sn->name must be new;
 * sn->id is ignored (the next free id is used).  Afterwards the vmstate
 * area belongs to the snapshot only. */
bool blk_snapshot_create(BlockDev *bs, const struct blk_snapshot *sn,
                         Error **errp);
/* A snapshot taken in two steps, for a machine that runs meanwhile.
 * begin keeps the disk as it is now (writes after it copy on write) and
 * empties the vmstate area, listing nothing; the state then goes into
 * the vmstate area (blk_vmstate_pwrite*) while the guest writes the
 * disk; commit lists snapshot sn (its date and clock those of the begin,
 * vm_state_size what was written) with the disk of the begin, replacing
 * a snapshot of the same name, in one header write; abort drops what
 * begin kept and the state written.  Until commit or abort, the other
 * snapshot calls fail.  A crash in between leaves clusters that nothing
 * lists: leaks, which 'qemu-img check -r leaks' frees. */
bool blk_snapshot_begin(BlockDev *bs, Error **errp);
bool blk_snapshot_commit(BlockDev *bs, const struct blk_snapshot *sn,
                         Error **errp);
/* Whatever fails, the image stays consistent: at worst what begin kept
 * stays counted (a leak) until the next snapshot operation here or the
 * next open for writing.  Nothing to do (true) when none is pending. */
bool blk_snapshot_abort(BlockDev *bs, Error **errp);
/* Revert the disk (and its size) to the snapshot. */
bool blk_snapshot_apply(BlockDev *bs, const char *name_or_id, Error **errp);
bool blk_snapshot_delete(BlockDev *bs, const char *name_or_id, Error **errp);
/* Can the snapshot be used (reverted to, read)?  A snapshot table entry
 * whose fields do not fit the image (L1 table, disk size, state size) is
 * listed but refused, with the field named, wherever it would be used. */
bool blk_snapshot_check(BlockDev *bs, const char *name_or_id, Error **errp);
/* Read the disk as it was at a snapshot. */
bool blk_snapshot_pread(BlockDev *bs, const char *name_or_id, uint64_t off,
                        void *buf, size_t len, Error **errp);

/* The vmstate area (after the end of the virtual disk, where a snapshot's
 * saved machine state lives).  Writes go to the active layer; reads come
 * from the active layer (snapshot NULL) or from a snapshot. */
bool blk_vmstate_pwrite(BlockDev *bs, uint64_t pos, const void *buf, size_t len,
                        Error **errp);
bool blk_vmstate_pwritev(BlockDev *bs, uint64_t pos, const struct iovec *iov,
                         int iovcnt, Error **errp);
bool blk_vmstate_pread(BlockDev *bs, const char *snapshot, uint64_t pos,
                       void *buf, size_t len, Error **errp);

/* Internal to block/: take QEMU's locks on an image file open at fd
 * (block/image-lock.c); path names it in messages. */
bool blk_lock_image(int fd, const char *path, bool write, bool force_share,
                    Error **errp);
/* Internal to block/: marks a write's chunks dirty, if tracked (with
 * bs->lock held). */
void blk_dirty_mark_locked(BlockDev *bs, uint64_t off, size_t len);
/* Internal to block/: release every lock byte held through fd. */
void blk_unlock_image(int fd);

/* Is path locked for writing through another open file (a running
 * machine, a qemu-img writer)?  false when it cannot tell. */
bool blk_image_has_writer(const char *path);

extern const struct block_driver block_driver_raw;
extern const struct block_driver block_driver_qcow2;

#endif
