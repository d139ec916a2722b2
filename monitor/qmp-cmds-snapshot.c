/* Snapshot operations of the monitor, in QMP's shape.  QEMU runs
 * snapshot-save/-load/-delete as background jobs; hop accepts the same
 * arguments and runs them to the end before it answers. */
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
        !session_delvm(s, json_string_value(json_object_get(args, "tag")), &sel,
                       NULL, errp)) {
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
