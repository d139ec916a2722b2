/* loadvm and delvm. */
#include "snapshot/loadvm.h"

#include <stdlib.h>
#include <string.h>

#include "machine/machine.h"
#include "ram/ram.h"
#include "snapshot/catalog-index.h"
#include "snapshot/channel-vmstate.h"
#include "vmstate/channel.h"
#include "vmstate/stream.h"
#include "util/fault.h"
#include "util/printable.h"

/* Every drive has the tag, and the state drive's copy holds state. */
static bool check_tag(const struct snapshot_plan *plan, const char *tag,
                      struct blk_snapshot *state_sn, Error **errp)
{
    for (size_t i = 0; i < plan->n; i++) {
        if (!blk_snapshot_find(plan->drives[i].bs, tag, state_sn, NULL)) {
            error_setg(errp,
                       "Snapshot '%s' does not exist in drive '%s' "
                       "(%s)",
                       tag, plan->drives[i].name, plan->drives[i].bs->filename);
            return false;
        }
        blk_snapshot_clear(state_sn);
    }
    if (!blk_snapshot_find(plan->drives[plan->state].bs, tag, state_sn, errp)) {
        return false;
    }
    if (state_sn->vm_state_size == 0) {
        error_setg(errp,
                   "snapshot '%s' is disk-only: it holds no machine "
                   "state (revert the disk offline with 'hop img snapshot "
                   "-a %s')",
                   tag, tag);
        blk_snapshot_clear(state_sn);
        return false;
    }
    return true;
}

/* The state's header and machine type, read before anything changes: a
 * snapshot of another machine (QEMU's, say) must not revert the disks. */
static bool check_state_header(const struct snapshot_target *t, BlockDev *bs,
                               const struct blk_snapshot *sn, Error **errp)
{
    Channel *f = chan_new_vmstate_reader(bs, sn->name, errp);
    if (!f) {
        return false;
    }
    struct stream_header h;
    bool ok = stream_load_header(f, &h, errp);
    chan_close(f, NULL);
    if (!ok) {
        error_prepend(errp, "snapshot '%s': ", sn->name);
        return false;
    }
    const char *mine = section_registry_machine(machine_registry(t->m));
    if (strcmp(h.machine, mine) != 0) {
        error_setg(errp,
                   "snapshot '%s' holds the state of a '%s' machine; "
                   "this one is '%s'",
                   sn->name, PRINTABLE(h.machine), mine);
        return false;
    }
    return true;
}

bool snapshot_load(const struct snapshot_target *t, struct ram_state *rs,
                   const char *tag, const struct snapshot_select *sel,
                   Error **errp)
{
    static const struct snapshot_select all = { 0 };
    sel = sel ? sel : &all;
    /* Before the run state or any disk changes: after a cpr-transfer
     * the disks and the RAM are another process's. */
    if (!machine_owns_ram(t->m, "load a machine state", errp)) {
        return false;
    }
    struct snapshot_plan plan;
    struct blk_snapshot sn = { 0 };
    if (!snapshot_plan_make(t->drives, t->ndrives, sel->devices, sel->ndevices,
                            sel->vmstate, &plan, errp) ||
        !check_tag(&plan, tag, &sn, errp)) {
        return false;
    }
    if (!check_state_header(t, plan.drives[plan.state].bs, &sn, errp)) {
        blk_snapshot_clear(&sn);
        return false;
    }
    enum run_state before = machine_runstate(t->m);
    if (!vm_stop(t->m, RUN_STATE_RESTORE_VM, errp)) {
        blk_snapshot_clear(&sn);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < plan.n; i++) {
        ok = blk_snapshot_apply(plan.drives[i].bs, tag, errp);
        if (!ok) {
            error_prepend(errp, "cannot revert %s to snapshot '%s': ",
                          plan.drives[i].bs->filename, tag);
        }
    }
    ok = ok && fault_inject("loadvm-reverted", errp);
    if (ok) {
        Channel *f = chan_new_vmstate_reader_progress(
            plan.drives[plan.state].bs, tag, t->progress, t->progress_ctx,
            errp);
        if (rs) {
            ram_state_set_fresh(rs, false);
        }
        ok = f && machine_load(t->m, f, errp);
        if (f) {
            chan_close(f, NULL);
        }
        if (!ok) {
            error_prepend(errp,
                          "cannot load the state of snapshot '%s': ", tag);
        }
    }
    blk_snapshot_clear(&sn);
    Error *rerr = NULL;
    bool back;
    if (!ok) {
        /* Disks reverted, state half loaded: do not run it. */
        back = vm_stop(t->m, RUN_STATE_PAUSED, &rerr);
        error_prepend(errp, "(the machine is paused) ");
    } else if (runstate_is_running(before)) {
        back = vm_start(t->m, &rerr);
    } else {
        back = vm_stop(
            t->m, before == RUN_STATE_PRELAUNCH ? before : RUN_STATE_PAUSED,
            &rerr);
    }
    if (!back) {
        snapshot_warn(t, "%s", error_get_pretty(rerr));
        error_free(rerr);
    }
    return ok;
}

bool snapshot_delete(const struct snapshot_target *t, const char *tag,
                     const struct snapshot_select *sel, Error **errp)
{
    static const struct snapshot_select all = { 0 };
    sel = sel ? sel : &all;
    struct snapshot_plan plan;
    if (!snapshot_plan_make(t->drives, t->ndrives, sel->devices, sel->ndevices,
                            sel->vmstate, &plan, errp)) {
        return false;
    }
    size_t found = 0;
    for (size_t i = 0; i < plan.n; i++) {
        BlockDev *bs = plan.drives[i].bs;
        struct blk_snapshot sn;
        if (!blk_snapshot_find(bs, tag, &sn, NULL)) {
            continue;
        }
        found++;
        bool ok = blk_snapshot_delete(bs, sn.id, errp) && blk_flush(bs, errp);
        blk_snapshot_clear(&sn);
        if (!ok) {
            error_prepend(errp, "cannot delete snapshot '%s' on %s: ", tag,
                          bs->filename);
            return false;
        }
        Error *err = NULL;
        if (!catalog_note_image_at(t->catalog, bs, NULL, NULL, &err)) {
            snapshot_warn(t,
                          "the catalog was not updated (run 'hop catalog "
                          "sync %s'): %s",
                          bs->filename, error_get_pretty(err));
            error_free(err);
        }
    }
    if (!found) {
        error_setg(errp, "Snapshot '%s' not found", tag);
        return false;
    }
    return true;
}
