/* Run control of the session's machine: start, stop, cont, reset, quit,
 * and waiting for an incoming migration. */
#include <jansson.h>
#include <string.h>

#include "core/session-priv.h"

bool session_start(struct vm_session *s, Error **errp)
{
    if (session_job_conflict(s, "cont", true, errp)) {
        return false;
    }
    return vm_start(s->machine, errp);
}

bool session_stop(struct vm_session *s, Error **errp)
{
    if (session_job_conflict(s, "stop", true, errp)) {
        return false;
    }
    if (!runstate_is_running(machine_runstate(s->machine))) {
        return true; /* already stopped: nothing to do */
    }
    return vm_stop(s->machine, RUN_STATE_PAUSED, errp);
}

bool session_cont(struct vm_session *s, Error **errp)
{
    /* A save or load stops the machine and puts it back itself. */
    if (session_job_conflict(s, "cont", true, errp)) {
        return false;
    }
    enum run_state st = machine_runstate(s->machine);
    if (runstate_is_running(st)) {
        return true;
    }
    if (st == RUN_STATE_INMIGRATE || st == RUN_STATE_FINISH_MIGRATE) {
        error_setg(errp, "Migration is not finalized yet");
        return false;
    }
    if (st == RUN_STATE_INTERNAL_ERROR || st == RUN_STATE_SHUTDOWN) {
        error_setg(errp,
                   "Resetting the Virtual Machine is required (it is "
                   "in state '%s'%s%s)",
                   runstate_name(st),
                   *machine_last_error(s->machine) ? ": " : "",
                   machine_last_error(s->machine));
        return false;
    }
    /* After a cpr-transfer the destination runs the guest and holds the
     * drives: never take them back for a machine that cannot run. */
    if (!machine_owns_ram(s->machine, "run the machine", errp)) {
        return false;
    }
    /* After a migration the destination may hold the drives: take them
     * back first, or stay stopped with the lock error. */
    BlockDev *drives[SNAPSHOT_MAX_DRIVES];
    for (size_t i = 0; i < s->ndrives; i++) {
        drives[i] = s->drives[i].bs;
    }
    return blk_activate_all(drives, s->ndrives, errp) &&
        vm_start(s->machine, errp);
}

bool session_reset(struct vm_session *s, Error **errp)
{
    if (session_job_conflict(s, "system_reset", true, errp)) {
        return false;
    }
    if (!machine_reset(s->machine, errp)) {
        return false;
    }
    session_emit(
        s, "RESET",
        json_pack("{s:b,s:s}", "guest", 0, "reason", "host-qmp-system-reset"));
    return true;
}

void session_quit(struct vm_session *s)
{
    session_emit(s, "SHUTDOWN",
                 json_pack("{s:b,s:s}", "guest", 0, "reason", "host-qmp-quit"));
    session_request_quit(s);
}

bool session_incoming(struct vm_session *s, const char *uri, Error **errp)
{
    if (strcmp(uri, "defer") == 0) {
        return machine_set_runstate(s->machine, RUN_STATE_INMIGRATE, errp);
    }
    return incoming_start(&s->in, uri, errp);
}

bool session_migrate_incoming(struct vm_session *s, const char *uri,
                              Error **errp)
{
    if (session_job_conflict(s, "migrate-incoming", false, errp)) {
        return false;
    }
    if (machine_runstate(s->machine) != RUN_STATE_INMIGRATE || s->in.started) {
        error_setg(errp,
                   "'-incoming' was not specified on the command line "
                   "(or 'defer' was already used)");
        return false;
    }
    struct mig_config c;
    migration_get_config(&s->mig, &c);
    s->in.ignore_shared = c.caps[MIG_CAP_X_IGNORE_SHARED];
    s->in.mapped_threads =
        c.caps[MIG_CAP_MULTIFD] ? (int)c.params[MIG_PARAM_MULTIFD_CHANNELS] : 0;
    s->in.direct_io = c.params[MIG_PARAM_DIRECT_IO] != 0;
    return incoming_start(&s->in, uri, errp);
}
