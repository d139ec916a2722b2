/* The core operations of the monitor, in QMP's shape: each takes the
 * session and its JSON arguments and returns the JSON result (or NULL
 * with errp).  QMP calls them through its table; the HMP handlers call
 * them too and print the result. */
#ifndef HOP_MONITOR_QMP_CMDS_H
#define HOP_MONITOR_QMP_CMDS_H

#include "monitor/qmp.h"
#include "snapshot/snapshot.h"

#define QMP_FN(name) json_t *name(struct vm_session *s, json_t *args, \
                                  Error **errp)

QMP_FN(qmp_query_status);
QMP_FN(qmp_query_version);
QMP_FN(qmp_query_name);
QMP_FN(qmp_stop);
QMP_FN(qmp_cont);
QMP_FN(qmp_system_reset);
QMP_FN(qmp_quit);
QMP_FN(qmp_query_cpus_fast);
QMP_FN(qmp_human_monitor_command);
QMP_FN(qmp_query_accel);
QMP_FN(qmp_query_kvm);
QMP_FN(qmp_query_uuid);
QMP_FN(qmp_query_block);

/* QMP describing itself (monitor/qmp-schema.c). */
QMP_FN(qmp_query_commands);
QMP_FN(qmp_query_events);
QMP_FN(qmp_query_qmp_schema);


/* Migration (monitor/qmp-cmds-migration.c). */
QMP_FN(qmp_migrate);
QMP_FN(qmp_migrate_incoming);
QMP_FN(qmp_migrate_cancel);
QMP_FN(qmp_migrate_continue);
QMP_FN(qmp_query_migrate);
QMP_FN(qmp_migrate_set_capabilities);
QMP_FN(qmp_query_migrate_capabilities);
QMP_FN(qmp_migrate_set_parameters);
QMP_FN(qmp_query_migrate_parameters);
QMP_FN(qmp_calc_dirty_rate);
QMP_FN(qmp_query_dirty_rate);
QMP_FN(qmp_closefd);
QMP_FN(qmp_getfd);

/* Snapshots (monitor/qmp-cmds-snapshot.c). */
QMP_FN(qmp_snapshot_save);
QMP_FN(qmp_snapshot_load);
QMP_FN(qmp_snapshot_delete);
QMP_FN(qmp_query_snapshots);

/* The operations behind them, for the HMP commands too: progress and
 * warnings go where the caller says (io may be NULL). */
struct session_snapshot_io {
    snapshot_progress_fn progress;
    void *progress_ctx;
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
};
bool session_savevm(struct vm_session *s, const char *tag,
                    const struct snapshot_select *sel,
                    const struct session_snapshot_io *io, Error **errp);
bool session_loadvm(struct vm_session *s, const char *tag,
                    const struct snapshot_select *sel,
                    const struct session_snapshot_io *io, Error **errp);
bool session_delvm(struct vm_session *s, const char *tag,
                   const struct snapshot_select *sel,
                   const struct session_snapshot_io *io, Error **errp);
/* The snapshots every snapshotted drive has (caller frees the list). */
bool session_list_snapshots(struct vm_session *s, struct blk_snapshot **l,
                            size_t *n, Error **errp);

#endif
