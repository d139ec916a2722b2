/* The QMP tables: commands, events, and the types their arguments,
 * results and data are made of.  Dispatch checks arguments against the
 * command table; query-commands, query-events, query-qmp-schema and
 * hop-monitor(7) describe hop from these tables. */
#include <stddef.h>
#include <string.h>

#include "machine/runstate.h"
#include "migration/migration.h"
#include "migration/params.h"
#include "monitor/qmp-cmds.h"

#define ARGS(...) ((const struct qmp_arg[]){ __VA_ARGS__, { NULL } })
#define VALUES(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* The snapshot commands share their selection of drives. */
#define SNAPSHOT_JOB_ARGS                                                      \
    { "job-id", QMP_STR, false },                                              \
    {                                                                          \
        "tag", QMP_STR, false                                                  \
    }

const struct qmp_cmd qmp_commands[] = {
    { "qmp_capabilities", NULL,
      ARGS({ "enable", QMP_ARRAY, true, "QMPCapability" }), NULL },
    { "query-status", qmp_query_status, NULL, "StatusInfo" },
    { "query-version", qmp_query_version, NULL, "VersionInfo" },
    { "query-name", qmp_query_name, NULL, "NameInfo" },
    { "query-accel", qmp_query_accel, NULL, "AccelInfo" },
    { "query-kvm", qmp_query_kvm, NULL, "KvmInfo" },
    { "query-uuid", qmp_query_uuid, NULL, "UuidInfo" },
    { "query-memdev", qmp_query_memdev, NULL, "[Memdev]" },
    { "query-commands", qmp_query_commands, NULL, "[CommandInfo]" },
    { "query-events", qmp_query_events, NULL, "[EventInfo]" },
    /* SchemaInfo is a union of seven kinds: left undescribed. */
    { "query-qmp-schema", qmp_query_qmp_schema, NULL, "[any]" },
    { "stop", qmp_stop, NULL, NULL },
    { "cont", qmp_cont, NULL, NULL },
    { "system_reset", qmp_system_reset, NULL, NULL },
    { "quit", qmp_quit, NULL, NULL },
    { "query-cpus-fast", qmp_query_cpus_fast, NULL, "[CpuInfoFast]" },
    { "query-block", qmp_query_block, NULL, "[BlockInfo]" },
    { "human-monitor-command", qmp_human_monitor_command,
      ARGS({ "command-line", QMP_STR, false }, { "cpu-index", QMP_INT, true }),
      "str" },
    { "migrate", qmp_migrate,
      ARGS({ "uri", QMP_STR, false }, { "detach", QMP_BOOL, true },
           { "blk", QMP_BOOL, true }, { "inc", QMP_BOOL, true },
           { "resume", QMP_BOOL, true }),
      NULL },
    { "migrate-incoming", qmp_migrate_incoming, ARGS({ "uri", QMP_STR, false }),
      NULL },
    { "migrate_cancel", qmp_migrate_cancel, NULL, NULL },
    { "migrate-start-postcopy", qmp_migrate_start_postcopy, NULL, NULL },
    { "migrate-recover", qmp_migrate_recover, ARGS({ "uri", QMP_STR, false }),
      NULL },
    { "migrate-pause", qmp_migrate_pause, NULL, NULL },
    { "migrate-continue", qmp_migrate_continue,
      ARGS({ "state", QMP_STR, false, "MigrationStatus" }), NULL },
    { "query-migrate", qmp_query_migrate, NULL, "MigrationInfo" },
    { "migrate-set-capabilities", qmp_migrate_set_capabilities,
      ARGS({ "capabilities", QMP_ARRAY, false, "MigrationCapabilityStatus" }),
      NULL },
    { "query-migrate-capabilities", qmp_query_migrate_capabilities, NULL,
      "[MigrationCapabilityStatus]" },
    /* Arguments are the parameter names; their table checks them. */
    { "migrate-set-parameters", qmp_migrate_set_parameters, QMP_ANY_ARGS, NULL,
      "MigrationParameters" },
    { "query-migrate-parameters", qmp_query_migrate_parameters, NULL,
      "MigrationParameters" },
    { "calc-dirty-rate", qmp_calc_dirty_rate,
      ARGS({ "calc-time", QMP_INT, false }), NULL },
    { "query-dirty-rate", qmp_query_dirty_rate, NULL, "DirtyRateInfo" },
    { "getfd", qmp_getfd, ARGS({ "fdname", QMP_STR, false }), NULL },
    { "closefd", qmp_closefd, ARGS({ "fdname", QMP_STR, false }), NULL },
    /* Jobs, as QEMU's: they answer at once and report in query-jobs. */
    { "snapshot-save", qmp_snapshot_save,
      ARGS(SNAPSHOT_JOB_ARGS, { "vmstate", QMP_STR, true },
           { "devices", QMP_ARRAY, true, "str" },
           { "x-background", QMP_BOOL, true }),
      NULL },
    { "snapshot-load", qmp_snapshot_load,
      ARGS(SNAPSHOT_JOB_ARGS, { "vmstate", QMP_STR, true },
           { "devices", QMP_ARRAY, true, "str" }),
      NULL },
    { "snapshot-delete", qmp_snapshot_delete,
      ARGS(SNAPSHOT_JOB_ARGS, { "devices", QMP_ARRAY, true, "str" }), NULL },
    { "query-snapshots", qmp_query_snapshots, NULL, "[SnapshotInfo]" },
    { "query-jobs", qmp_query_jobs, NULL, "[JobInfo]" },
    { "job-dismiss", qmp_job_dismiss, ARGS({ "id", QMP_STR, false }), NULL },
    { "job-cancel", qmp_job_cancel, ARGS({ "id", QMP_STR, false }), NULL },
    { NULL }
};

/* Enums and objects whose values or members live in other tables. */
static const char *run_state_value(size_t i)
{
    return i < RUN_STATE__MAX ? runstate_name((enum run_state)i) : NULL;
}

static const char *mig_status_value(size_t i)
{
    return i < MIG_STATUS__MAX ? mig_status_name((enum mig_status)i) : NULL;
}

static const char *mig_cap_value(size_t i)
{
    return i < MIG_CAP__MAX ? mig_caps[i].name : NULL;
}

static const char *mig_mode_value(size_t i)
{
    return i < MIG_MODE__MAX ? mig_param_enum_name(MIG_PARAM_MODE, i) : NULL;
}

/* Every parameter, optional both to set and in what is returned. */
static bool mig_param_member(size_t i, struct qmp_arg *out)
{
    if (i >= MIG_PARAM__MAX) {
        return false;
    }
    if (mig_params[i].kind == MIG_KIND_ENUM) {
        *out = (struct qmp_arg){ mig_params[i].name, QMP_STR, true,
                                 mig_params[i].type_name };
    } else if (mig_params[i].kind == MIG_KIND_BOOL) {
        *out = (struct qmp_arg){ mig_params[i].name, QMP_BOOL, true, "bool" };
    } else if (mig_params[i].kind == MIG_KIND_WORDS) {
        *out = (struct qmp_arg){ mig_params[i].name, QMP_ARRAY, true, "str" };
    } else {
        *out = (struct qmp_arg){ mig_params[i].name, QMP_INT, true, "int" };
    }
    return true;
}

const struct qmp_schema_type qmp_schema_types[] = {
    /* hop offers no capabilities; QEMU's one is out-of-band. */
    { "QMPCapability", QMP_SCHEMA_ENUM, .values = VALUES("oob") },
    { "RunState", QMP_SCHEMA_ENUM, .value = run_state_value },
    { "MigrationStatus", QMP_SCHEMA_ENUM, .value = mig_status_value },
    { "MigrationCapability", QMP_SCHEMA_ENUM, .value = mig_cap_value },
    { "MigMode", QMP_SCHEMA_ENUM, .value = mig_mode_value },
    { "JobType", QMP_SCHEMA_ENUM,
      .values = VALUES("snapshot-load", "snapshot-save", "snapshot-delete") },
    { "JobStatus", QMP_SCHEMA_ENUM,
      .values = VALUES("undefined", "created", "running", "paused", "ready",
                       "standby", "waiting", "pending", "aborting", "concluded",
                       "null") },
    { "JobInfo", QMP_SCHEMA_OBJECT,
      ARGS({ "id", QMP_STR, false }, { "type", QMP_STR, false, "JobType" },
           { "status", QMP_STR, false, "JobStatus" },
           { "current-progress", QMP_INT, false },
           { "total-progress", QMP_INT, false }, { "error", QMP_STR, true }) },
    { "ShutdownCause", QMP_SCHEMA_ENUM,
      .values =
          VALUES("guest-shutdown", "host-qmp-quit", "host-qmp-system-reset") },
    { "StatusInfo", QMP_SCHEMA_OBJECT,
      ARGS({ "running", QMP_BOOL, false }, { "singlestep", QMP_BOOL, false },
           { "status", QMP_STR, false, "RunState" }) },
    { "VersionTriple", QMP_SCHEMA_OBJECT,
      ARGS({ "major", QMP_INT, false }, { "minor", QMP_INT, false },
           { "micro", QMP_INT, false }) },
    { "VersionInfo", QMP_SCHEMA_OBJECT,
      ARGS({ "qemu", QMP_OBJ, false, "VersionTriple" },
           { "package", QMP_STR, false }) },
    { "NameInfo", QMP_SCHEMA_OBJECT, ARGS({ "name", QMP_STR, true }) },
    { "AccelInfo", QMP_SCHEMA_OBJECT, ARGS({ "accel", QMP_STR, false }) },
    { "KvmInfo", QMP_SCHEMA_OBJECT,
      ARGS({ "enabled", QMP_BOOL, false }, { "present", QMP_BOOL, false }) },
    { "UuidInfo", QMP_SCHEMA_OBJECT, ARGS({ "UUID", QMP_STR, false }) },
    { "Memdev", QMP_SCHEMA_OBJECT,
      ARGS({ "id", QMP_STR, true }, { "size", QMP_INT, false },
           { "merge", QMP_BOOL, false }, { "dump", QMP_BOOL, false },
           { "prealloc", QMP_BOOL, false }, { "share", QMP_BOOL, false },
           { "reserve", QMP_BOOL, true },
           { "host-nodes", QMP_ARRAY, false, "int" },
           { "policy", QMP_STR, false }, { "x-hop-type", QMP_STR, false },
           { "x-hop-page-size", QMP_INT, false }) },
    { "CommandInfo", QMP_SCHEMA_OBJECT, ARGS({ "name", QMP_STR, false }) },
    { "EventInfo", QMP_SCHEMA_OBJECT, ARGS({ "name", QMP_STR, false }) },
    { "CpuInstanceProperties", QMP_SCHEMA_OBJECT,
      ARGS({ "node-id", QMP_INT, true }, { "socket-id", QMP_INT, true },
           { "core-id", QMP_INT, true }, { "thread-id", QMP_INT, true }) },
    { "CpuInfoFast", QMP_SCHEMA_OBJECT,
      ARGS({ "cpu-index", QMP_INT, false }, { "qom-path", QMP_STR, false },
           { "thread-id", QMP_INT, false },
           { "props", QMP_OBJ, true, "CpuInstanceProperties" },
           { "target", QMP_STR, false }) },
    { "BlockInfo", QMP_SCHEMA_OBJECT,
      ARGS({ "device", QMP_STR, false }, { "qdev", QMP_STR, true },
           { "type", QMP_STR, false }, { "removable", QMP_BOOL, false },
           { "locked", QMP_BOOL, false },
           { "inserted", QMP_OBJ, true, "BlockDeviceInfo" }) },
    { "BlockdevCacheInfo", QMP_SCHEMA_OBJECT,
      ARGS({ "writeback", QMP_BOOL, false }, { "direct", QMP_BOOL, false },
           { "no-flush", QMP_BOOL, false }) },
    { "BlockDeviceInfo", QMP_SCHEMA_OBJECT,
      ARGS({ "file", QMP_STR, false }, { "ro", QMP_BOOL, false },
           { "drv", QMP_STR, false }, { "encrypted", QMP_BOOL, false },
           { "backing_file", QMP_STR, true },
           { "backing_file_depth", QMP_INT, false },
           { "active", QMP_BOOL, false },
           { "cache", QMP_OBJ, false, "BlockdevCacheInfo" },
           { "image", QMP_OBJ, false, "ImageInfo" }) },
    { "ImageInfo", QMP_SCHEMA_OBJECT,
      ARGS({ "snapshots", QMP_ARRAY, true, "SnapshotInfo" },
           { "virtual-size", QMP_INT, false }, { "filename", QMP_STR, false },
           { "cluster-size", QMP_INT, true }, { "format", QMP_STR, false },
           { "actual-size", QMP_INT, true },
           { "backing-filename", QMP_STR, true },
           { "full-backing-filename", QMP_STR, true },
           { "backing-filename-format", QMP_STR, true },
           { "format-specific", QMP_OBJ, true },
           { "dirty-flag", QMP_BOOL, true }) },
    { "SnapshotInfo", QMP_SCHEMA_OBJECT,
      ARGS({ "icount", QMP_INT, true }, { "vm-clock-nsec", QMP_INT, false },
           { "name", QMP_STR, false }, { "date-sec", QMP_INT, false },
           { "date-nsec", QMP_INT, false }, { "vm-clock-sec", QMP_INT, false },
           { "id", QMP_STR, false }, { "vm-state-size", QMP_INT, false }) },
    { "MigrationInfo", QMP_SCHEMA_OBJECT,
      ARGS({ "status", QMP_STR, true, "MigrationStatus" },
           { "total-time", QMP_INT, true }, { "downtime", QMP_INT, true },
           { "expected-downtime", QMP_INT, true },
           { "setup-time", QMP_INT, true }, { "ram", QMP_OBJ, true },
           { "disk", QMP_OBJ, true }, { "xbzrle-cache", QMP_OBJ, true },
           { "cpu-throttle-percentage", QMP_INT, true },
           { "error-desc", QMP_STR, true }) },
    { "MigrationCapabilityStatus", QMP_SCHEMA_OBJECT,
      ARGS({ "capability", QMP_STR, false, "MigrationCapability" },
           { "state", QMP_BOOL, false }) },
    { "MigrationParameters", QMP_SCHEMA_OBJECT, .member = mig_param_member },
    { "DirtyRateInfo", QMP_SCHEMA_OBJECT,
      ARGS({ "dirty-rate", QMP_INT, true }, { "status", QMP_STR, false },
           { "start-time", QMP_INT, false }, { "calc-time", QMP_INT, false }) },
    { NULL }
};
