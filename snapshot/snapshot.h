/* What savevm, loadvm and delvm act on: the machine, its drives, the
 * catalog, and how to show progress. */
#ifndef HOP_SNAPSHOT_SNAPSHOT_H
#define HOP_SNAPSHOT_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/block.h"
#include "snapshot/drives.h"
#include "util/error.h"

struct machine;

/* done of total bytes of state written or read; called every few MiB on
 * the thread that runs the operation. */
typedef void (*snapshot_progress_fn)(void *ctx, const char *what, uint64_t done,
                                     uint64_t total);

struct snapshot_target {
    struct machine *m;
    const struct snapshot_drive *drives; /* every drive of the machine */
    size_t ndrives;
    const char *catalog;           /* path, or NULL: none */
    snapshot_progress_fn progress; /* may be NULL */
    void *progress_ctx;
    /* A step that failed without failing the operation (the catalog);
     * error_report when NULL. */
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
};

/* Which drives an operation names: all writable ones (devices NULL), or
 * those listed; the state in vmstate's (NULL: the first). */
struct snapshot_select {
    const char *const *devices;
    size_t ndevices;
    const char *vmstate;
    /* savevm: with the guest running (snapshot_save_background). */
    bool background;
    /* savevm: refuse a tag that exists (QMP's snapshot-save) instead of
     * replacing it (HMP's savevm). */
    bool keep_existing;
};

void snapshot_warn(const struct snapshot_target *t, const char *fmt, ...)
    HOP_PRINTF(2, 3);

/* The snapshots of the state drive that every other snapshotted drive
 * also has, as QEMU's `info snapshots` lists them. */
bool snapshot_list_common(const struct snapshot_target *t,
                          struct blk_snapshot **list, size_t *n, Error **errp);

#endif
