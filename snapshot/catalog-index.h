/* Keeping the catalog in step with images: after savevm and delvm (cheap:
 * the image's snapshot table and what the save itself measured), and on
 * `hop catalog sync` (thorough: every snapshot's state is read back and
 * its section headers walked). */
#ifndef HOP_SNAPSHOT_CATALOG_INDEX_H
#define HOP_SNAPSHOT_CATALOG_INDEX_H

#include <stdbool.h>

#include "block/block.h"
#include "snapshot/catalog.h"
#include "snapshot/sections.h"

/* The absolute path the catalog knows an image by (caller frees). */
char *catalog_image_key(const char *filename);

/* Reads a snapshot's whole state into memory (caller frees *data),
 * through the vmstate channel.  A state the header makes longer than the
 * image file is refused before anything is read. */
bool snapshot_read_state(BlockDev *bs, const struct blk_snapshot *sn,
                         uint8_t **data, size_t *len, Error **errp);
/* ... and summarises it. */
bool snapshot_summarise(BlockDev *bs, const struct blk_snapshot *sn,
                        struct state_summary *out, Error **errp);

/* Re-reads every snapshot of bs and rewrites its entry.  A snapshot whose
 * state cannot be walked is listed without sections (a warning says so). */
bool catalog_sync_image(struct catalog *c, BlockDev *bs, Error **errp);
/* The image's snapshot list as it is now; fresh (may be NULL) describes
 * the snapshot called fresh_name. */
bool catalog_note_image(struct catalog *c, BlockDev *bs, const char *fresh_name,
                        const struct state_summary *fresh, Error **errp);
/* Opens the catalog at path (NULL: none, nothing done) and notes bs. */
bool catalog_note_image_at(const char *path, BlockDev *bs,
                           const char *fresh_name,
                           const struct state_summary *fresh, Error **errp);

#endif
