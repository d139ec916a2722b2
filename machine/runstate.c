/* Run state names and the allowed transitions, as one table. */
#include "machine/runstate.h"

#include <string.h>

static const char *const names[RUN_STATE__MAX] = {
    [RUN_STATE_PRELAUNCH] = "prelaunch",
    [RUN_STATE_RUNNING] = "running",
    [RUN_STATE_PAUSED] = "paused",
    [RUN_STATE_INMIGRATE] = "inmigrate",
    [RUN_STATE_POSTMIGRATE] = "postmigrate",
    [RUN_STATE_FINISH_MIGRATE] = "finish-migrate",
    [RUN_STATE_SAVE_VM] = "save-vm",
    [RUN_STATE_RESTORE_VM] = "restore-vm",
    [RUN_STATE_SHUTDOWN] = "shutdown",
    [RUN_STATE_INTERNAL_ERROR] = "internal-error",
};

#define B(s) (1u << RUN_STATE_##s)

/* For each state, the set of states it may move to. */
static const unsigned allowed[RUN_STATE__MAX] = {
    [RUN_STATE_PRELAUNCH] = B(RUNNING) | B(PAUSED) | B(INMIGRATE) |
        B(FINISH_MIGRATE) | B(POSTMIGRATE) | B(SAVE_VM) | B(RESTORE_VM) |
        B(SHUTDOWN) | B(INTERNAL_ERROR),
    [RUN_STATE_RUNNING] = B(PAUSED) | B(FINISH_MIGRATE) | B(SAVE_VM) |
        B(RESTORE_VM) | B(SHUTDOWN) | B(INTERNAL_ERROR) | B(POSTMIGRATE),
    [RUN_STATE_PAUSED] = B(RUNNING) | B(FINISH_MIGRATE) | B(SAVE_VM) |
        B(RESTORE_VM) | B(POSTMIGRATE) | B(PRELAUNCH) | B(SHUTDOWN) |
        B(INTERNAL_ERROR),
    [RUN_STATE_INMIGRATE] = B(RUNNING) | B(PAUSED) | B(PRELAUNCH) |
        B(POSTMIGRATE) | B(FINISH_MIGRATE) | B(SHUTDOWN) | B(INTERNAL_ERROR),
    [RUN_STATE_POSTMIGRATE] = B(RUNNING) | B(PAUSED) | B(FINISH_MIGRATE) |
        B(PRELAUNCH) | B(SAVE_VM) | B(RESTORE_VM) | B(SHUTDOWN),
    [RUN_STATE_FINISH_MIGRATE] = B(POSTMIGRATE) | B(PAUSED) | B(RUNNING) |
        B(PRELAUNCH) | B(SHUTDOWN) | B(INTERNAL_ERROR),
    [RUN_STATE_SAVE_VM] =
        B(RUNNING) | B(PAUSED) | B(PRELAUNCH) | B(POSTMIGRATE) | B(SHUTDOWN),
    [RUN_STATE_RESTORE_VM] =
        B(RUNNING) | B(PAUSED) | B(PRELAUNCH) | B(INTERNAL_ERROR),
    [RUN_STATE_SHUTDOWN] = B(PAUSED) | B(FINISH_MIGRATE) | B(PRELAUNCH) |
        B(RUNNING) | B(RESTORE_VM),
    [RUN_STATE_INTERNAL_ERROR] = B(PAUSED) | B(FINISH_MIGRATE) | B(PRELAUNCH) |
        B(RUNNING) | B(RESTORE_VM) | B(SHUTDOWN),
};

const char *runstate_name(enum run_state st)
{
    if ((unsigned)st >= RUN_STATE__MAX) {
        return NULL;
    }
    return names[st];
}

int runstate_from_name(const char *name)
{
    for (int i = 0; i < RUN_STATE__MAX; i++) {
        if (strcmp(names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

bool runstate_transition_allowed(enum run_state from, enum run_state to)
{
    if ((unsigned)from >= RUN_STATE__MAX || (unsigned)to >= RUN_STATE__MAX) {
        return false;
    }
    return from == to || (allowed[from] & (1u << to));
}

bool runstate_is_running(enum run_state st)
{
    return st == RUN_STATE_RUNNING;
}
