/* The QMP command table. */
#include <stddef.h>

#include "monitor/qmp-cmds.h"

#define ARGS(...) ((const struct qmp_arg[]){ __VA_ARGS__, { NULL } })

const struct qmp_cmd qmp_commands[] = {
    { "query-status", qmp_query_status, NULL },
    { "query-version", qmp_query_version, NULL },
    { "query-name", qmp_query_name, NULL },
    { "query-accel", qmp_query_accel, NULL },
    { "stop", qmp_stop, NULL },
    { "cont", qmp_cont, NULL },
    { "system_reset", qmp_system_reset, NULL },
    { "quit", qmp_quit, NULL },
    { "query-cpus-fast", qmp_query_cpus_fast, NULL },
    { "human-monitor-command", qmp_human_monitor_command,
      ARGS({ "command-line", QMP_STR, false },
           { "cpu-index", QMP_INT, true }) },
    { "migrate", qmp_migrate,
      ARGS({ "uri", QMP_STR, false }, { "detach", QMP_BOOL, true },
           { "blk", QMP_BOOL, true }, { "inc", QMP_BOOL, true },
           { "resume", QMP_BOOL, true }) },
    { "migrate-incoming", qmp_migrate_incoming,
      ARGS({ "uri", QMP_STR, false }) },
    { "migrate_cancel", qmp_migrate_cancel, NULL },
    { "migrate-continue", qmp_migrate_continue,
      ARGS({ "state", QMP_STR, false }) },
    { "query-migrate", qmp_query_migrate, NULL },
    { "migrate-set-capabilities", qmp_migrate_set_capabilities,
      ARGS({ "capabilities", QMP_ARRAY, false }) },
    { "query-migrate-capabilities", qmp_query_migrate_capabilities, NULL },
    /* Arguments are the parameter names; their table checks them. */
    { "migrate-set-parameters", qmp_migrate_set_parameters, QMP_ANY_ARGS },
    { "query-migrate-parameters", qmp_query_migrate_parameters, NULL },
    { "calc-dirty-rate", qmp_calc_dirty_rate,
      ARGS({ "calc-time", QMP_INT, false }) },
    { "query-dirty-rate", qmp_query_dirty_rate, NULL },
    { "getfd", qmp_getfd, ARGS({ "fdname", QMP_STR, false }) },
    { "closefd", qmp_closefd, ARGS({ "fdname", QMP_STR, false }) },
    /* QEMU's are jobs; hop answers when the work is done. */
    { "snapshot-save", qmp_snapshot_save,
      ARGS({ "job-id", QMP_STR, true }, { "tag", QMP_STR, false },
           { "vmstate", QMP_STR, true }, { "devices", QMP_ARRAY, true }) },
    { "snapshot-load", qmp_snapshot_load,
      ARGS({ "job-id", QMP_STR, true }, { "tag", QMP_STR, false },
           { "vmstate", QMP_STR, true }, { "devices", QMP_ARRAY, true }) },
    { "snapshot-delete", qmp_snapshot_delete,
      ARGS({ "job-id", QMP_STR, true }, { "tag", QMP_STR, false },
           { "devices", QMP_ARRAY, true }) },
    { "query-snapshots", qmp_query_snapshots, NULL },
    { NULL }
};
