/* savevm. */
#include "snapshot/savevm.h"
#include "snapshot/savevm-priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine/machine.h"
#include "snapshot/catalog-index.h"
#include "snapshot/channel-vmstate.h"
#include "snapshot/sections.h"
#include "vmstate/stream.h"
#include "util/fault.h"
#include "util/alloc.h"

void snapshot_default_tag(char *buf, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(buf, len, "vm-%Y%m%d%H%M%S", &tm);
}

/* The machine's state into the state drive's vmstate area. */
static bool write_state(const struct snapshot_target *t, BlockDev *bs,
                        struct state_layout *lay, Error **errp)
{
    struct section_registry *reg = machine_registry(t->m);
    Channel *f = chan_new_vmstate_writer(bs, errp);
    if (!f) {
        return false;
    }
    uint64_t total = machine_ram_size(t->m);
    /* Drain what the accelerator logged as dirty while the guest ran:
     * setup marks every page anyway, and a stale log would send each
     * page a second time. */
    bool ok = machine_sync_dirty(t->m, errp) && stream_save_setup(reg, f, errp);
    lay->setup_end = chan_tell(f);
    /* RAM in pieces (the machine is stopped: one pass), so progress shows
     * and a test can stop in the middle. */
    while (ok) {
        int r = stream_save_iterate(reg, f, errp);
        if (r < 0) {
            ok = false;
            break;
        }
        chan_flush(f);
        if (chan_has_error(f)) {
            break;
        }
        if (!fault_inject("savevm-state", errp)) {
            ok = false;
            break;
        }
        if (t->progress) {
            uint64_t pending = stream_save_pending(reg);
            t->progress(t->progress_ctx, "saving",
                        total > pending ? total - pending : 0, total);
        }
        if (r == 1) {
            break;
        }
    }
    lay->complete_start = chan_tell(f);
    ok = ok && stream_save_complete(reg, f, errp);
    stream_save_cleanup(reg);
    if (ok) {
        chan_flush(f);
        ok = chan_check(f, errp);
    }
    lay->total = chan_tell(f);
    Error *cerr = NULL;
    if (!chan_close(f, ok ? &cerr : NULL) && ok) {
        error_propagate(errp, cerr);
        ok = false;
    }
    if (ok && t->progress) {
        t->progress(t->progress_ctx, "saving", total, total);
    }
    return ok && blk_flush(bs, errp);
}

/* Reads back the start and the end of the new snapshot's stream and
 * walks their section headers. */
static bool summarise_new(BlockDev *bs, const char *tag,
                          const struct state_layout *lay,
                          struct state_summary *sum, Error **errp)
{
    uint64_t tail = lay->total - lay->complete_start;
    if (lay->setup_end > (64u << 20) || tail > (256u << 20)) {
        error_setg(errp, "unexpected state layout");
        return false;
    }
    size_t len = (size_t)(lay->setup_end + tail);
    uint8_t *buf = xmalloc(len ? len : 1);
    bool ok =
        blk_vmstate_pread(bs, tag, 0, buf, (size_t)lay->setup_end, errp) &&
        blk_vmstate_pread(bs, tag, lay->complete_start, buf + lay->setup_end,
                          (size_t)tail, errp) &&
        state_summary_read(buf, len, lay->complete_start - lay->setup_end, sum,
                           errp);
    free(buf);
    return ok;
}

static bool drive_has(BlockDev *bs, const char *tag)
{
    struct blk_snapshot sn;
    if (!blk_snapshot_find(bs, tag, &sn, NULL)) {
        return false;
    }
    blk_snapshot_clear(&sn);
    return true;
}

/* Steps with the machine stopped: state, old tag out, disk snapshots. */
static bool save_stopped(const struct snapshot_target *t,
                         const struct snapshot_plan *plan, const char *tag,
                         struct state_layout *lay, Error **errp)
{
    BlockDev *state = plan->drives[plan->state].bs;
    if (!fault_inject("savevm-stopped", errp) ||
        !write_state(t, state, lay, errp)) {
        error_prepend(errp,
                      "cannot write the state into %s: ", state->filename);
        return false;
    }
    if (!fault_inject("savevm-state-written", errp)) {
        return false;
    }
    for (size_t i = 0; i < plan->n; i++) {
        BlockDev *bs = plan->drives[i].bs;
        if (drive_has(bs, tag) && !blk_snapshot_delete(bs, tag, errp)) {
            error_prepend(errp, "cannot replace snapshot '%s' on %s: ", tag,
                          bs->filename);
            return false;
        }
    }
    if (!fault_inject("savevm-old-deleted", errp)) {
        return false;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct blk_snapshot sn = {
        .name = (char *)tag,
        .date_sec = (uint32_t)now.tv_sec,
        .date_nsec = (uint32_t)now.tv_nsec,
        .vm_clock_nsec = (uint64_t)machine_vm_clock_ns(t->m),
        .icount = -1, /* no record/replay: not recorded, as QEMU */
    };
    for (size_t i = 0; i < plan->n; i++) {
        BlockDev *bs = plan->drives[i].bs;
        sn.vm_state_size = i == plan->state ? lay->total : 0;
        sn.disk_size = blk_size(bs);
        bool made = blk_snapshot_create(bs, &sn, errp);
        if (!made || !fault_inject("savevm-snapshot", errp)) {
            error_prepend(errp, "cannot snapshot %s: ", bs->filename);
            /* All or nothing: undo the drives done so far. */
            for (size_t j = 0; j < i + made; j++) {
                blk_snapshot_delete(plan->drives[j].bs, tag, NULL);
            }
            return false;
        }
    }
    for (size_t i = 0; i < plan->n; i++) {
        if (!blk_flush(plan->drives[i].bs, errp)) {
            error_prepend(errp, "%s: ", plan->drives[i].bs->filename);
            return false;
        }
    }
    fault_exit_point("savevm-durable");
    return true;
}

void snapshot_note_catalog(const struct snapshot_target *t,
                           const struct snapshot_plan *plan, const char *tag,
                           const struct state_layout *lay)
{
    if (!t->catalog) {
        return;
    }
    BlockDev *state = plan->drives[plan->state].bs;
    struct state_summary sum;
    Error *err = NULL;
    bool have = summarise_new(state, tag, lay, &sum, &err);
    if (!have) {
        snapshot_warn(t,
                      "snapshot '%s' is in the catalog without its "
                      "sections: %s",
                      tag, error_get_pretty(err));
        error_free(err);
        err = NULL;
    }
    for (size_t i = 0; i < plan->n; i++) {
        bool mine = i == plan->state;
        if (!catalog_note_image_at(t->catalog, plan->drives[i].bs, tag,
                                   mine && have ? &sum : NULL, &err)) {
            snapshot_warn(t,
                          "the catalog was not updated (run 'hop catalog "
                          "sync %s'): %s",
                          plan->drives[i].bs->filename, error_get_pretty(err));
            error_free(err);
            err = NULL;
        }
    }
    if (have) {
        state_summary_free(&sum);
    }
    fault_exit_point("savevm-catalog");
}

bool snapshot_tag_choose(const struct snapshot_plan *plan,
                         const struct snapshot_select *sel, const char **tag,
                         char *buf, Error **errp)
{
    if (!*tag || !**tag) {
        snapshot_default_tag(buf, SNAPSHOT_TAG_BUF);
        *tag = buf;
    }
    if (strlen(*tag) > 1024) {
        error_setg(errp, "snapshot tag is longer than 1024 bytes");
        return false;
    }
    for (size_t i = 0; sel->keep_existing && i < plan->n; i++) {
        struct blk_snapshot sn;
        if (blk_snapshot_find(plan->drives[i].bs, *tag, &sn, NULL)) {
            blk_snapshot_clear(&sn);
            error_setg(errp,
                       "Snapshot '%s' already exists in one or more devices",
                       *tag);
            return false;
        }
    }
    return true;
}

bool snapshot_save(const struct snapshot_target *t, const char *tag,
                   const struct snapshot_select *sel, struct blk_snapshot *out,
                   Error **errp)
{
    static const struct snapshot_select all = { 0 };
    sel = sel ? sel : &all;
    struct snapshot_plan plan;
    if (!snapshot_plan_make(t->drives, t->ndrives, sel->devices, sel->ndevices,
                            sel->vmstate, &plan, errp)) {
        return false;
    }
    char name[SNAPSHOT_TAG_BUF];
    if (!snapshot_tag_choose(&plan, sel, &tag, name, errp)) {
        return false;
    }
    enum run_state before = machine_runstate(t->m);
    if (!vm_stop(t->m, RUN_STATE_SAVE_VM, errp)) {
        return false;
    }
    struct state_layout lay = { 0 };
    bool ok = save_stopped(t, &plan, tag, &lay, errp);
    /* Back to where it was, whatever happened. */
    Error *rerr = NULL;
    bool back = runstate_is_running(before) ? vm_start(t->m, &rerr)
                                            : vm_stop(t->m, before, &rerr);
    if (!back) {
        snapshot_warn(t, "%s", error_get_pretty(rerr));
        error_free(rerr);
    }
    if (!ok) {
        return false;
    }
    snapshot_note_catalog(t, &plan, tag, &lay);
    if (out && !blk_snapshot_find(plan.drives[plan.state].bs, tag, out, errp)) {
        return false;
    }
    return true;
}
