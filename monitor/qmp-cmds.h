/* The QMP commands: each takes the session and its JSON arguments, calls
 * the core (core/session.h) and returns the JSON result (or NULL with
 * errp).  QMP calls them through its table; the HMP handlers call them
 * too and print the result. */
#ifndef HOP_MONITOR_QMP_CMDS_H
#define HOP_MONITOR_QMP_CMDS_H

#include "core/session.h"
#include "monitor/qmp.h"

#define QMP_FN(name)                                                           \
    json_t *name(struct vm_session *s, json_t *args, Error **errp)

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
QMP_FN(qmp_query_memdev);
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
QMP_FN(qmp_migrate_start_postcopy);
QMP_FN(qmp_migrate_recover);
QMP_FN(qmp_migrate_pause);
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
QMP_FN(qmp_query_jobs);
QMP_FN(qmp_job_dismiss);
QMP_FN(qmp_job_cancel);

#endif
