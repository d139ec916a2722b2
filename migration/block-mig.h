/* Block migration (`migrate -b`): the "block" live section, in QEMU
 * 7.2's layout, copies every drive to a destination that opened empty
 * images of the same size.  The bulk pass reads each drive in 1 MiB
 * chunks while the guest runs; chunks the guest writes meanwhile are
 * tracked (blk_dirty_*) and sent again, the last of them with the guest
 * stopped.
 *
 * Records, each a be64 of (sector << 9) | flags:
 *   DEVICE_BLOCK: u8 name length, the drive's name ("ide0-hd0"), then
 *                 1 MiB of data (none with ZERO_BLOCK); the destination
 *                 writes as much of it as its drive holds from sector on,
 *                 but for the clusters its image has not allocated that
 *                 would read the same (from its backing file, or zeros)
 *                 without the write: an incremental copy's chunks hold
 *                 backing data around what the source's image allocated,
 *                 and the destination's image keeps only the latter
 *   PROGRESS:     the percentage done in place of the sector (ignored)
 *   EOS:          the end of this section's body
 * The source sends a drive's last MiB first, ending at its last sector
 * and not chunk-aligned: a destination drive too small for it refuses at
 * once, where an aligned chunk would be cut short without a word.
 * Incremental (migrate -i, block-incremental): the bulk pass skips the
 * chunks with nothing allocated in the drive's own image (QEMU's
 * shared_base); chunks written during the copy go as always. */
#ifndef HOP_MIGRATION_BLOCK_MIG_H
#define HOP_MIGRATION_BLOCK_MIG_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "util/error.h"
#include "vmstate/channel.h"

struct section_registry;

#define BLOCK_MIG_IDSTR "block"
#define BLOCK_MIG_VERSION 1
#define BLOCK_MIG_SECTOR 512u
#define BLOCK_MIG_CHUNK (1u << 20)
#define BLOCK_MIG_CHUNK_SECTORS (BLOCK_MIG_CHUNK / BLOCK_MIG_SECTOR)
#define BLOCK_MIG_MAX_DRIVES 8

enum {
    BLOCK_MIG_FLAG_DEVICE_BLOCK = 0x01,
    BLOCK_MIG_FLAG_EOS = 0x02,
    BLOCK_MIG_FLAG_PROGRESS = 0x04,
    BLOCK_MIG_FLAG_ZERO_BLOCK = 0x08,
};

/* What `info migrate` shows as disk, in bytes. */
struct block_mig_stats {
    uint64_t transferred; /* drive data sent, chunks sent again included */
    uint64_t remaining;   /* not sent yet, and written since sent */
    uint64_t total;       /* the drives' sizes; incremental: the chunks
                           * allocated above the backing files */
};

struct block_mig_drive {
    const char *name; /* "ide0-hd0" */
    BlockDev *bs;
    uint64_t sectors;   /* when the save began */
    uint64_t next_bulk; /* the bulk pass's next chunk */
    /* Incremental: the chunks holding anything allocated in the drive's
     * own image (not its backing file) when the save began; the bulk
     * pass sends only those.  NULL: every chunk. */
    uint64_t *want;
    uint64_t bulk_total; /* sectors the bulk pass sends */
    uint64_t bulk_done;  /* of those, sent */
};

struct block_mig {
    struct block_mig_drive drives[BLOCK_MIG_MAX_DRIVES];
    size_t ndrives;
    bool enabled; /* this save sends the section (set before setup) */
    /* This save copies only what lies above each drive's backing file
     * (set with enabled). */
    bool incremental;
    int progress; /* last percentage sent, -1 before the first */
    uint64_t transferred;
    uint8_t *buf; /* one chunk, save or load */
    uint8_t *cmp; /* load: what a drive holds where a chunk goes */
};

void block_mig_init(struct block_mig *bm);
void block_mig_destroy(struct block_mig *bm);
/* The drives, by name (both ends); names must outlive bm. */
bool block_mig_add_drive(struct block_mig *bm, const char *name, BlockDev *bs,
                         Error **errp);
bool block_mig_register(struct block_mig *bm, struct section_registry *reg,
                        Error **errp);

/* Before a migration with block migration on: can every drive be
 * copied?  incremental (migrate -i) copies only the chunks allocated in
 * each drive's own image, the rest being in a backing file both ends
 * share: a drive without a backing file is refused, naming it.
 * bm NULL: this program has no block migration. */
bool block_mig_check(const struct block_mig *bm, bool incremental,
                     Error **errp);
/* From the migration thread. */
void block_mig_get_stats(struct block_mig *bm, struct block_mig_stats *st);

/* One section body (records up to EOS) into the drives; for the section
 * loader and tests.  Errors name the drive and the sector. */
bool block_mig_load_body(struct block_mig *bm, Channel *f, Error **errp);

#endif
