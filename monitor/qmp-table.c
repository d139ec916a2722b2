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
    { NULL }
};
