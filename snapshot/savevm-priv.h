/* What savevm's two forms share (snapshot/savevm.c, savevm-bg.c). */
#ifndef HOP_SNAPSHOT_SAVEVM_PRIV_H
#define HOP_SNAPSHOT_SAVEVM_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "snapshot/snapshot.h"

/* Where the stream's parts lie, so the catalog can read back only the
 * small ones (the start and the device sections at the end). */
struct state_layout {
    uint64_t setup_end;
    uint64_t complete_start;
    uint64_t total;
};

/* The new snapshot into the catalog (warnings only: the snapshot is
 * made). */
void snapshot_note_catalog(const struct snapshot_target *t,
                           const struct snapshot_plan *plan, const char *tag,
                           const struct state_layout *lay);

/* The tag to save under: tag, or a new default name written into buf
 * (SNAPSHOT_TAG_BUF bytes) when tag is NULL or empty.  Refuses a tag
 * over 1024 bytes and, with sel->keep_existing, one that a drive of the
 * plan already has. */
#define SNAPSHOT_TAG_BUF 64
bool snapshot_tag_choose(const struct snapshot_plan *plan,
                         const struct snapshot_select *sel, const char **tag,
                         char *buf, Error **errp);

#endif
