/* Snapshot operations of the monitor, in QMP's shape.  QEMU runs
 * snapshot-save/-load/-delete as background jobs; hop accepts the same
 * arguments and runs them to the end before it answers. */
#include "monitor/qmp-cmds.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "machine/machine.h"
#include "monitor/session.h"
#include "ram/ram.h"
#include "snapshot/catalog.h"
#include "snapshot/loadvm.h"
#include "snapshot/savevm.h"
#include "snapshot/table.h"

/* Snapshots need a machine that is not migrating either way. */
static bool check_idle(struct vm_session *s, const char *what, Error **errp)
{
    if (mig_status_is_active(migration_status(&s->mig))) {
        error_setg(errp, "%s: there's a migration process in progress",
                   what);
        return false;
    }
    enum run_state st = machine_runstate(s->machine);
    if (st == RUN_STATE_INMIGRATE) {
        error_setg(errp, "%s: the machine is waiting for an incoming "
                   "migration", what);
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

bool session_savevm(struct vm_session *s, const char *tag,
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
    bool ok = ram_state_configure(s->rs, NULL, errp) &&
              snapshot_save(&t, tag, sel, NULL, errp);
    free(catalog);
    return ok;
}

bool session_loadvm(struct vm_session *s, const char *tag,
                    const struct snapshot_select *sel,
                    const struct session_snapshot_io *io, Error **errp)
{
    if (!check_idle(s, "loadvm", errp)) {
        return false;
    }
    struct snapshot_target t;
    char *catalog;
    make_target(s, io, &t, &catalog);
    bool ok = snapshot_load(&t, s->rs, tag, sel, errp);
    free(catalog);
    return ok;
}

bool session_delvm(struct vm_session *s, const char *tag,
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

bool session_list_snapshots(struct vm_session *s, struct blk_snapshot **l,
                            size_t *n, Error **errp)
{
    struct snapshot_target t = {
        .m = s->machine, .drives = s->drives, .ndrives = s->ndrives,
    };
    return snapshot_list_common(&t, l, n, errp);
}

/* QMP's "devices" and "vmstate" (node names; hop's drive names or file
 * names).  The strings stay owned by args. */
static bool get_select(json_t *args, struct snapshot_select *sel,
                       const char **names, size_t max, Error **errp)
{
    memset(sel, 0, sizeof(*sel));
    json_t *devs = json_object_get(args, "devices");
    json_t *vm = json_object_get(args, "vmstate");
    if (vm) {
        sel->vmstate = json_string_value(vm);
    }
    if (devs) {
        size_t i;
        json_t *d;
        json_array_foreach(devs, i, d) {
            if (!json_is_string(d) || i >= max) {
                error_setg(errp, "devices[%zu]: expected a drive name", i);
                return false;
            }
            names[i] = json_string_value(d);
        }
        sel->devices = names;
        sel->ndevices = json_array_size(devs);
    }
    return true;
}

QMP_FN(qmp_snapshot_save)
{
    const char *names[SNAPSHOT_MAX_DRIVES];
    struct snapshot_select sel;
    if (!get_select(args, &sel, names, SNAPSHOT_MAX_DRIVES, errp) ||
        !session_savevm(s, json_string_value(json_object_get(args, "tag")),
                        &sel, NULL, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_snapshot_load)
{
    const char *names[SNAPSHOT_MAX_DRIVES];
    struct snapshot_select sel;
    if (!get_select(args, &sel, names, SNAPSHOT_MAX_DRIVES, errp) ||
        !session_loadvm(s, json_string_value(json_object_get(args, "tag")),
                        &sel, NULL, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_snapshot_delete)
{
    const char *names[SNAPSHOT_MAX_DRIVES];
    struct snapshot_select sel;
    if (!get_select(args, &sel, names, SNAPSHOT_MAX_DRIVES, errp) ||
        !session_delvm(s, json_string_value(json_object_get(args, "tag")),
                       &sel, NULL, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_query_snapshots)
{
    struct blk_snapshot *l;
    size_t n;
    if (!session_list_snapshots(s, &l, &n, errp)) {
        return NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, snapshot_info_json(&l[i]));
    }
    blk_snapshot_list_free(l, n);
    return arr;
}
