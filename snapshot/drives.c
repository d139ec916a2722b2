/* Choosing the drives a snapshot spans. */
#include "snapshot/drives.h"

#include <string.h>

bool snapshot_drive_capable(const BlockDev *bs)
{
    return bs && !bs->readonly && bs->drv->snapshot_create;
}

const struct snapshot_drive *snapshot_drive_find(
    const struct snapshot_drive *all, size_t nall, const char *name)
{
    for (size_t i = 0; i < nall; i++) {
        if (strcmp(all[i].name, name) == 0 ||
            strcmp(all[i].bs->filename, name) == 0) {
            return &all[i];
        }
    }
    return NULL;
}

bool snapshot_plan_make(const struct snapshot_drive *all, size_t nall,
                        const char *const *devices, size_t ndevices,
                        const char *vmstate, struct snapshot_plan *plan,
                        Error **errp)
{
    memset(plan, 0, sizeof(*plan));
    if (devices) {
        for (size_t i = 0; i < ndevices; i++) {
            const struct snapshot_drive *d =
                snapshot_drive_find(all, nall, devices[i]);
            if (!d) {
                error_setg(errp, "no drive '%s'", devices[i]);
                return false;
            }
            if (!snapshot_drive_capable(d->bs)) {
                error_setg(errp,
                           "drive '%s' (%s) cannot take snapshots: "
                           "it is %s",
                           d->name, d->bs->filename,
                           d->bs->readonly ? "read-only" : "not qcow2");
                return false;
            }
            if (plan->n < SNAPSHOT_MAX_DRIVES) {
                plan->drives[plan->n++] = *d;
            }
        }
    } else {
        for (size_t i = 0; i < nall; i++) {
            if (all[i].bs->readonly) {
                continue;
            }
            if (!snapshot_drive_capable(all[i].bs)) {
                error_setg(errp,
                           "drive '%s' (%s) is writable but does not "
                           "support snapshots (%s); use qcow2",
                           all[i].name, all[i].bs->filename,
                           blk_format(all[i].bs));
                return false;
            }
            if (plan->n < SNAPSHOT_MAX_DRIVES) {
                plan->drives[plan->n++] = all[i];
            }
        }
    }
    if (plan->n == 0) {
        error_setg(errp,
                   "no qcow2 drive to hold the state: add -drive "
                   "file=X.qcow2 (if=none is enough; create it with "
                   "'hop img create X.qcow2 1G')");
        return false;
    }
    for (size_t i = 0; i < plan->n; i++) {
        if (blk_is_inactive(plan->drives[i].bs)) {
            error_setg(errp,
                       "drive '%s' (%s) is inactive: it belongs to "
                       "the other end of a migration (on a source, 'cont' "
                       "takes it back)",
                       plan->drives[i].name, plan->drives[i].bs->filename);
            return false;
        }
    }
    if (vmstate) {
        for (size_t i = 0; i < plan->n; i++) {
            if (strcmp(plan->drives[i].name, vmstate) == 0 ||
                strcmp(plan->drives[i].bs->filename, vmstate) == 0) {
                plan->state = i;
                return true;
            }
        }
        error_setg(errp,
                   "drive '%s' for the state is not among the "
                   "snapshot's writable qcow2 drives",
                   vmstate);
        return false;
    }
    return true;
}
