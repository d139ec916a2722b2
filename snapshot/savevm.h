/* savevm: the whole machine into qcow2 images.  The state goes through
 * the same section stream migration sends, into the vmstate area of the
 * state drive; the disk of every snapshotted drive is snapshotted under
 * the same tag at the same instant.  The machine is stopped meanwhile
 * (run state save-vm) and restarted after if it was running.
 *
 * Order of work, so that a crash at any step leaves every image
 * consistent and the earlier snapshots intact: state written and
 * flushed; an old snapshot of the same tag deleted (a tag is replaced,
 * as QEMU does); the new disk snapshots made and flushed; the catalog
 * written.  Each step is a fault-injection point (util/fault-points.c:
 * savevm-stopped, savevm-state for each piece of RAM written, ...,
 * savevm-catalog) where a test makes savevm fail or hop die. */
#ifndef HOP_SNAPSHOT_SAVEVM_H
#define HOP_SNAPSHOT_SAVEVM_H

#include <stdbool.h>

#include "snapshot/snapshot.h"

/* The name of a snapshot saved without one: "vm-YYYYMMDDhhmmss" in
 * local time, as QEMU names it. */
void snapshot_default_tag(char *buf, size_t len);

/* tag NULL: snapshot_default_tag.  out (may be NULL)
 * receives the state drive's new snapshot (blk_snapshot_clear it). */
bool snapshot_save(const struct snapshot_target *t, const char *tag,
                   const struct snapshot_select *sel, struct blk_snapshot *out,
                   Error **errp);

/* The same while the guest runs: it pauses only while every drive's disk
 * is kept as it is (blk_snapshot_begin: copy on write from then on) and
 * the devices' state is taken; RAM is then written as it was at that
 * moment while the guest runs on (write-protected with userfaultfd: a
 * page the guest is about to write goes first, ram/ram-wp.h); the
 * snapshot, with the date and VM clock of that moment, is listed only
 * once the state is whole (blk_snapshot_commit).  A failure drops
 * everything and leaves the guest running; a tag that exists is
 * replaced as the new snapshot is listed.  Refused, before the guest
 * pauses, where RAM cannot be write-protected.  rs: the machine's RAM
 * section, configured for background saving. */
struct ram_state;
bool snapshot_save_background(const struct snapshot_target *t,
                              struct ram_state *rs, const char *tag,
                              const struct snapshot_select *sel, Error **errp);

#endif
