/* A channel backend over a block device's vmstate area (the place after
 * the end of a qcow2 disk where savevm keeps the machine's state). */
#ifndef HOP_SNAPSHOT_CHANNEL_VMSTATE_H
#define HOP_SNAPSHOT_CHANNEL_VMSTATE_H

#include "block/block.h"
#include "snapshot/snapshot.h"
#include "vmstate/channel.h"

/* Writes go sequentially from the start of the active layer's vmstate
 * area; after chan_flush, chan_tell() is the size to pass to
 * blk_snapshot_create as vm_state_size.  Fails on formats without
 * snapshots (raw).  Closing does not close bs. */
Channel *chan_new_vmstate_writer(BlockDev *bs, Error **errp);
/* Reads sequentially from the vmstate area of snapshot (by name or id;
 * the stream ends after its vm_state_size bytes), or of the active layer
 * when snapshot is NULL (after blk_snapshot_apply, as QEMU's loadvm does;
 * then the stream has no set end). */
Channel *chan_new_vmstate_reader(BlockDev *bs, const char *snapshot,
                                 Error **errp);
/* The same, calling progress(ctx, "loading", bytes read, bytes in the
 * stream) every few MiB and at the end (progress may be NULL). */
Channel *chan_new_vmstate_reader_progress(BlockDev *bs, const char *snapshot,
                                          snapshot_progress_fn progress,
                                          void *ctx, Error **errp);

#endif
