/* Handlers of the monitor's commands.  They stay thin: each calls the
 * same core function the QMP command calls and prints its result the way
 * QEMU's HMP does. */
#ifndef HOP_MONITOR_HMP_CMDS_H
#define HOP_MONITOR_HMP_CMDS_H

#include "monitor/monitor.h"

#define HMP(name) void name(struct monitor *mon, const struct mon_args *args)

HMP(hmp_help);
HMP(hmp_info_status);
HMP(hmp_info_accel);
HMP(hmp_info_version);
HMP(hmp_info_name);
HMP(hmp_info_cpus);
HMP(hmp_info_registers);
HMP(hmp_info_ramblock);
HMP(hmp_info_memdev);
HMP(hmp_info_block);
HMP(hmp_info_mice);
HMP(hmp_info_history);
HMP(hmp_info_qtree);
HMP(hmp_stop);
HMP(hmp_cont);
HMP(hmp_system_reset);
HMP(hmp_quit);
HMP(hmp_x);
HMP(hmp_xp);
HMP(hmp_memsave);
HMP(hmp_pmemsave);
HMP(hmp_sendkey);
HMP(hmp_mouse_move);
HMP(hmp_mouse_button);

HMP(hmp_migrate);
HMP(hmp_migrate_incoming);
HMP(hmp_migrate_cancel);
HMP(hmp_migrate_continue);
HMP(hmp_migrate_start_postcopy);
HMP(hmp_migrate_recover);
HMP(hmp_migrate_pause);
HMP(hmp_migrate_set_capability);
HMP(hmp_migrate_set_parameter);
HMP(hmp_migrate_set_speed);
HMP(hmp_migrate_set_downtime);
HMP(hmp_migrate_set_cache_size);
HMP(hmp_info_migrate);
HMP(hmp_info_migrate_capabilities);
HMP(hmp_info_migrate_parameters);
HMP(hmp_info_migrate_cache_size);
HMP(hmp_calc_dirty_rate);
HMP(hmp_info_dirty_rate);
HMP(hmp_closefd);
HMP(hmp_getfd);

HMP(hmp_savevm);
HMP(hmp_loadvm);
HMP(hmp_delvm);
HMP(hmp_info_snapshots);

#endif
