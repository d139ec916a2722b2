/* Run states of a machine, named and ordered as QEMU's, with the table of
 * transitions that are allowed between them. */
#ifndef HOP_MACHINE_RUNSTATE_H
#define HOP_MACHINE_RUNSTATE_H

#include <stdbool.h>

enum run_state {
    RUN_STATE_PRELAUNCH, /* created, guest code never ran (-S) */
    RUN_STATE_RUNNING,
    RUN_STATE_PAUSED,         /* `stop` */
    RUN_STATE_INMIGRATE,      /* waiting for an incoming migration */
    RUN_STATE_POSTMIGRATE,    /* outgoing migration finished */
    RUN_STATE_FINISH_MIGRATE, /* stopped to send the final state */
    RUN_STATE_SAVE_VM,        /* savevm in progress */
    RUN_STATE_RESTORE_VM,     /* loadvm in progress */
    RUN_STATE_SHUTDOWN,       /* the guest asked to power off */
    RUN_STATE_INTERNAL_ERROR, /* a vCPU could not go on */
    RUN_STATE__MAX
};

/* "running", "finish-migrate", ...; NULL for an out-of-range value. */
const char *runstate_name(enum run_state st);
/* The state named name, or -1. */
int runstate_from_name(const char *name);
bool runstate_transition_allowed(enum run_state from, enum run_state to);
/* States in which vCPUs execute guest code. */
bool runstate_is_running(enum run_state st);

#endif
