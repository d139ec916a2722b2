/* The drives a snapshot spans.  As QEMU does it: the disk of every
 * writable drive is snapshotted under the same tag, and the machine's
 * state goes into one of them (the first, unless one is named).  A drive
 * not attached to the guest (if=none) may serve only to hold state. */
#ifndef HOP_SNAPSHOT_DRIVES_H
#define HOP_SNAPSHOT_DRIVES_H

#include <stdbool.h>
#include <stddef.h>

#include "block/block.h"
#include "util/error.h"

#define SNAPSHOT_MAX_DRIVES 8

struct snapshot_drive {
    const char *name; /* "ide0-hd0", "none0" */
    BlockDev *bs;
};

/* The drives taking part, in order, and the one holding the state. */
struct snapshot_plan {
    struct snapshot_drive drives[SNAPSHOT_MAX_DRIVES];
    size_t n;
    size_t state; /* index into drives of the state holder */
};

/* Does this drive take internal snapshots (writable qcow2)? */
bool snapshot_drive_capable(const BlockDev *bs);

/* Picks the drives of a snapshot.  devices (NULL: every writable drive)
 * names the drives to include, by name or file name; vmstate (NULL: the
 * first of them) the one to hold the state.  Fails, saying what to add,
 * when there is none, when a writable drive cannot take snapshots, and
 * when one is inactive (handed over by a migration). */
bool snapshot_plan_make(const struct snapshot_drive *all, size_t nall,
                        const char *const *devices, size_t ndevices,
                        const char *vmstate, struct snapshot_plan *plan,
                        Error **errp);

/* A drive by name or file name, or NULL. */
const struct snapshot_drive *snapshot_drive_find(
    const struct snapshot_drive *all, size_t nall, const char *name);

#endif
