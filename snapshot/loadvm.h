/* loadvm and delvm.
 *
 * loadvm checks first that every snapshotted drive has the tag and that
 * the state drive's snapshot holds machine state; a missing tag leaves
 * the machine untouched.  Then the machine stops (run state restore-vm),
 * every drive's disk reverts to the snapshot, and the state loads through
 * the section stream into the machine: RAM (zero pages cleared — this is
 * not fresh memory), vCPUs, devices and the VM clock become what they
 * were at the savevm.  The machine resumes if it was running.  A state
 * that fails to load leaves the machine paused with an error. */
#ifndef HOP_SNAPSHOT_LOADVM_H
#define HOP_SNAPSHOT_LOADVM_H

#include <stdbool.h>

#include "snapshot/snapshot.h"

struct ram_state;

/* rs: the machine's RAM section, set here to load into used memory; NULL
 * leaves it as it is (a RAM section never set fresh loads that way). */
bool snapshot_load(const struct snapshot_target *t, struct ram_state *rs,
                   const char *tag, const struct snapshot_select *sel,
                   Error **errp);

/* Deletes the tag on every snapshotted drive that has it; an error if
 * none has it.  The machine keeps running. */
bool snapshot_delete(const struct snapshot_target *t, const char *tag,
                     const struct snapshot_select *sel, Error **errp);

#endif
