/* Snapshots of the session: savevm, loadvm, delvm and the list, over
 * every drive, with the catalog kept up to date. */
#include <stdlib.h>

#include "core/session-priv.h"
#include "ram/ram.h"
#include "snapshot/catalog.h"
#include "snapshot/loadvm.h"
#include "snapshot/savevm.h"

/* Snapshots need a machine that is not migrating either way. */
static bool check_idle(struct vm_session *s, const char *what, Error **errp)
{
    if (mig_status_is_active(migration_status(&s->mig))) {
        error_setg(errp, "%s: there's a migration process in progress", what);
        return false;
    }
    enum run_state st = machine_runstate(s->machine);
    if (st == RUN_STATE_INMIGRATE) {
        error_setg(errp,
                   "%s: the machine is waiting for an incoming "
                   "migration",
                   what);
        return false;
    }
    return true;
}

static void make_target(struct vm_session *s,
                        const struct session_snapshot_io *io,
                        struct snapshot_target *t, char **catalog)
{
    *catalog = catalog_choose_path(s->catalog);
    *t = (struct snapshot_target){
        .m = s->machine,
        .drives = s->drives,
        .ndrives = s->ndrives,
        .catalog = *catalog,
    };
    if (io) {
        t->progress = io->progress;
        t->progress_ctx = io->progress_ctx;
        t->warn = io->warn;
        t->warn_ctx = io->warn_ctx;
    }
}

bool session_do_savevm(struct vm_session *s, const char *tag,
                       const struct snapshot_select *sel,
                       const struct session_snapshot_io *io, Error **errp)
{
    if (!check_idle(s, "savevm", errp)) {
        return false;
    }
    struct snapshot_target t;
    char *catalog;
    make_target(s, io, &t, &catalog);
    /* The run state to resume in, for whoever loads it; RAM as one plain
     * pass (no XBZRLE). */
    globalstate_set(&s->gs, runstate_name(machine_runstate(s->machine)));
    section_registry_ignore_shared(machine_registry(s->machine), false);
    section_registry_mapped_ram(machine_registry(s->machine), false);
    bool bg = sel && sel->background;
    struct ram_params rp = { .background = true };
    bool ok = ram_state_configure(s->rs, bg ? &rp : NULL, errp) &&
        (bg ? snapshot_save_background(&t, s->rs, tag, sel, errp)
            : snapshot_save(&t, tag, sel, NULL, errp));
    free(catalog);
    return ok;
}

bool session_do_loadvm(struct vm_session *s, const char *tag,
                       const struct snapshot_select *sel,
                       const struct session_snapshot_io *io, Error **errp)
{
    if (!check_idle(s, "loadvm", errp)) {
        return false;
    }
    struct snapshot_target t;
    char *catalog;
    make_target(s, io, &t, &catalog);
    /* A snapshot holds all of RAM, whatever a migration last used. */
    section_registry_ignore_shared(machine_registry(s->machine), false);
    section_registry_mapped_ram(machine_registry(s->machine), false);
    bool ok = ram_state_configure(s->rs, NULL, errp) &&
        snapshot_load(&t, s->rs, tag, sel, errp);
    free(catalog);
    return ok;
}

bool session_do_delvm(struct vm_session *s, const char *tag,
                      const struct snapshot_select *sel,
                      const struct session_snapshot_io *io, Error **errp)
{
    struct snapshot_target t;
    char *catalog;
    make_target(s, io, &t, &catalog);
    bool ok = snapshot_delete(&t, tag, sel, errp);
    free(catalog);
    return ok;
}

bool session_savevm(struct vm_session *s, const char *tag,
                    const struct snapshot_select *sel,
                    const struct session_snapshot_io *io, Error **errp)
{
    return !session_job_conflict(s, "savevm", false, errp) &&
        session_do_savevm(s, tag, sel, io, errp);
}

bool session_loadvm(struct vm_session *s, const char *tag,
                    const struct snapshot_select *sel,
                    const struct session_snapshot_io *io, Error **errp)
{
    return !session_job_conflict(s, "loadvm", false, errp) &&
        session_do_loadvm(s, tag, sel, io, errp);
}

bool session_delvm(struct vm_session *s, const char *tag,
                   const struct snapshot_select *sel,
                   const struct session_snapshot_io *io, Error **errp)
{
    return !session_job_conflict(s, "delvm", false, errp) &&
        session_do_delvm(s, tag, sel, io, errp);
}

bool session_list_snapshots(struct vm_session *s, struct blk_snapshot **l,
                            size_t *n, Error **errp)
{
    struct snapshot_target t = {
        .m = s->machine,
        .drives = s->drives,
        .ndrives = s->ndrives,
    };
    return snapshot_list_common(&t, l, n, errp);
}
