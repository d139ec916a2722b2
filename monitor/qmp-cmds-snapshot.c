/* Snapshot operations of the monitor, in QMP's shape: snapshot-save,
 * -load and -delete start jobs (core/jobs.c) and answer at once, as
 * QEMU's do; query-jobs, job-dismiss and job-cancel act on the jobs. */
#include "monitor/qmp-cmds.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/session.h"
#include "snapshot/table.h"

/* QMP's "devices" and "vmstate" (node names; hop's drive names or file
 * names).  The strings stay owned by args. */
static bool get_select(json_t *args, struct snapshot_select *sel,
                       const char **names, size_t max, Error **errp)
{
    memset(sel, 0, sizeof(*sel));
    json_t *devs = json_object_get(args, "devices");
    json_t *vm = json_object_get(args, "vmstate");
    /* hop's own (QEMU spells such options with x-): snapshot-save only. */
    sel->background = json_is_true(json_object_get(args, "x-background"));
    if (vm) {
        sel->vmstate = json_string_value(vm);
    }
    if (devs) {
        size_t i;
        json_t *d;
        json_array_foreach(devs, i, d)
        {
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

static json_t *start_job(struct vm_session *s, json_t *args,
                         enum session_job_type type, Error **errp)
{
    const char *names[SNAPSHOT_MAX_DRIVES];
    struct snapshot_select sel;
    if (!get_select(args, &sel, names, SNAPSHOT_MAX_DRIVES, errp) ||
        !session_job_start(
            s, type, json_string_value(json_object_get(args, "job-id")),
            json_string_value(json_object_get(args, "tag")),
            sel.devices || sel.vmstate || sel.background ? &sel : NULL, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_snapshot_save)
{
    return start_job(s, args, SESSION_JOB_SNAPSHOT_SAVE, errp);
}

QMP_FN(qmp_snapshot_load)
{
    return start_job(s, args, SESSION_JOB_SNAPSHOT_LOAD, errp);
}

QMP_FN(qmp_snapshot_delete)
{
    return start_job(s, args, SESSION_JOB_SNAPSHOT_DELETE, errp);
}

QMP_FN(qmp_query_jobs)
{
    (void)args;
    (void)errp;
    return session_query_jobs(s);
}

QMP_FN(qmp_job_dismiss)
{
    return session_job_dismiss(
               s, json_string_value(json_object_get(args, "id")), errp)
        ? json_object()
        : NULL;
}

QMP_FN(qmp_job_cancel)
{
    session_job_cancel(s, json_string_value(json_object_get(args, "id")), errp);
    return NULL;
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
