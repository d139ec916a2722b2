/* savevm while the guest runs (see savevm.h). */
#include "snapshot/savevm.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine/machine.h"
#include "ram/ram.h"
#include "snapshot/channel-vmstate.h"
#include "snapshot/savevm-priv.h"
#include "util/fault.h"
#include "vmstate/stream.h"

struct bg_save {
    const struct snapshot_target *t;
    struct section_registry *reg;
    struct ram_state *rs;
    struct snapshot_plan plan;
    const char *tag;
    size_t begun;  /* drives whose disk is kept since the start */
    bool tracking; /* RAM write-protected */
    Channel *f;    /* into the state drive's vmstate area */
    Channel *dev;  /* the devices' state at the start */
    struct blk_snapshot sn;
    struct state_layout lay;
};

static BlockDev *state_drive(const struct bg_save *b)
{
    return b->plan.drives[b->plan.state].bs;
}

/* With the machine stopped: the disks kept, the stream's start and the
 * devices' state taken, RAM write-protected. */
static bool start(struct bg_save *b, Error **errp)
{
    if (!fault_inject("savevm-stopped", errp)) {
        return false;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    b->sn = (struct blk_snapshot){
        .name = (char *)b->tag,
        .date_sec = (uint32_t)now.tv_sec,
        .date_nsec = (uint32_t)now.tv_nsec,
        .vm_clock_nsec = (uint64_t)machine_vm_clock_ns(b->t->m),
        .icount = -1,
    };
    for (size_t i = 0; i < b->plan.n; i++) {
        if (!blk_snapshot_begin(b->plan.drives[i].bs, errp)) {
            return false;
        }
        b->begun = i + 1;
    }
    if (!fault_inject("savevm-disks-kept", errp)) {
        return false;
    }
    b->f = chan_new_vmstate_writer(state_drive(b), errp);
    if (!b->f || !machine_sync_dirty(b->t->m, errp) ||
        !stream_save_setup(b->reg, b->f, errp)) {
        return false;
    }
    b->lay.setup_end = chan_tell(b->f);
    b->dev = chan_new_mem_writer();
    if (!stream_save_devices(b->reg, b->dev, errp) ||
        !ram_state_start_tracking(b->rs, errp)) {
        return false;
    }
    b->tracking = true;
    return true;
}

/* The guest running: RAM as it was at the start, then the devices. */
static bool write_ram(struct bg_save *b, Error **errp)
{
    const struct snapshot_target *t = b->t;
    uint64_t total = machine_ram_size(t->m);
    for (;;) {
        int r = stream_save_iterate(b->reg, b->f, errp);
        if (r < 0) {
            return false;
        }
        chan_flush(b->f);
        if (!chan_check(b->f, errp) || !fault_inject("savevm-state", errp)) {
            return false;
        }
        if (t->progress) {
            uint64_t pending = stream_save_pending(b->reg);
            t->progress(t->progress_ctx, "saving",
                        total > pending ? total - pending : 0, total);
        }
        if (r == 1) {
            break;
        }
    }
    b->lay.complete_start = chan_tell(b->f);
    if (!stream_save_complete_live(b->reg, b->f, errp)) {
        return false;
    }
    /* Every page went: the guest writes freely again. */
    ram_state_stop_tracking(b->rs);
    b->tracking = false;
    size_t len = 0;
    uint8_t *data = chan_mem_take(b->dev, &len);
    chan_put_buffer(b->f, data, len);
    free(data);
    chan_flush(b->f);
    if (!chan_check(b->f, errp)) {
        return false;
    }
    b->lay.total = chan_tell(b->f);
    Channel *f = b->f;
    b->f = NULL;
    return chan_close(f, errp) && blk_flush(state_drive(b), errp) &&
        fault_inject("savevm-state-written", errp);
}

/* Every drive's snapshot listed (a tag that exists replaced), or none. */
static bool commit(struct bg_save *b, Error **errp)
{
    for (size_t i = 0; i < b->plan.n; i++) {
        BlockDev *bs = b->plan.drives[i].bs;
        b->sn.vm_state_size = i == b->plan.state ? b->lay.total : 0;
        b->sn.disk_size = blk_size(bs);
        bool made = blk_snapshot_commit(bs, &b->sn, errp);
        if (!made || !fault_inject("savevm-snapshot", errp)) {
            error_prepend(errp, "cannot snapshot %s: ", bs->filename);
            /* All or nothing: the drives done so far lose it again. */
            for (size_t j = 0; j < i + made; j++) {
                blk_snapshot_delete(b->plan.drives[j].bs, b->tag, NULL);
            }
            return false;
        }
    }
    for (size_t i = 0; i < b->plan.n; i++) {
        if (!blk_flush(b->plan.drives[i].bs, errp)) {
            error_prepend(errp, "%s: ", b->plan.drives[i].bs->filename);
            return false;
        }
    }
    fault_exit_point("savevm-durable");
    return true;
}

/* After a failure, too: protection lifted, the kept disks and the state
 * written dropped (unless committed). */
static void finish(struct bg_save *b, bool ok)
{
    if (b->tracking) {
        ram_state_stop_tracking(b->rs);
    }
    if (b->f) {
        chan_close(b->f, NULL);
    }
    if (b->dev) {
        chan_close(b->dev, NULL);
    }
    stream_save_cleanup(b->reg);
    for (size_t i = 0; !ok && i < b->begun; i++) {
        Error *err = NULL;
        if (!blk_snapshot_abort(b->plan.drives[i].bs, &err)) {
            snapshot_warn(b->t, "%s", error_get_pretty(err));
            error_free(err);
        }
    }
}

/* Back to the run state of before, whatever happened. */
static void resume(const struct snapshot_target *t, enum run_state before)
{
    Error *err = NULL;
    bool back = runstate_is_running(before) ? vm_start(t->m, &err)
                                            : vm_stop(t->m, before, &err);
    if (!back) {
        snapshot_warn(t, "%s", error_get_pretty(err));
        error_free(err);
    }
}

bool snapshot_save_background(const struct snapshot_target *t,
                              struct ram_state *rs, const char *tag,
                              const struct snapshot_select *sel, Error **errp)
{
    static const struct snapshot_select all = { 0 };
    struct bg_save b = { .t = t, .reg = machine_registry(t->m), .rs = rs };
    sel = sel ? sel : &all;
    if (!snapshot_plan_make(t->drives, t->ndrives, sel->devices, sel->ndevices,
                            sel->vmstate, &b.plan, errp)) {
        return false;
    }
    char name[SNAPSHOT_TAG_BUF];
    if (!snapshot_tag_choose(&b.plan, sel, &tag, name, errp)) {
        return false;
    }
    b.tag = tag;
    /* Refused before the guest pauses where RAM cannot be tracked. */
    if (!ram_background_check(t->m, errp)) {
        error_prepend(errp,
                      "cannot save snapshot '%s' while the guest runs: ", tag);
        return false;
    }
    if (!ram_state_prepare_tracking(rs, errp)) {
        return false;
    }
    enum run_state before = machine_runstate(t->m);
    if (!vm_stop(t->m, RUN_STATE_SAVE_VM, errp)) {
        return false;
    }
    bool ok = start(&b, errp);
    resume(t, before);
    if (ok && !write_ram(&b, errp)) {
        error_prepend(errp, "cannot write the state into %s: ",
                      state_drive(&b)->filename);
        ok = false;
    }
    ok = ok && commit(&b, errp);
    finish(&b, ok);
    if (ok) {
        snapshot_note_catalog(t, &b.plan, tag, &b.lay);
    }
    return ok;
}
