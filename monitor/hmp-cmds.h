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

#endif
