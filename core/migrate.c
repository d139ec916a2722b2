/* Outgoing migration, its settings, dirty-rate measurement and the named
 * descriptors migration URIs may use.  Settings change only through
 * migration_get/set_config: the migration thread reads them under the
 * migration's lock. */
#include "core/session-priv.h"

bool session_migrate(struct vm_session *s, const char *uri, bool blk, bool inc,
                     Error **errp)
{
    return !session_job_conflict(s, "migrate", false, errp) &&
        migration_start(&s->mig, uri, blk, inc, errp);
}

void session_migrate_cancel(struct vm_session *s)
{
    migration_cancel(&s->mig);
}

bool session_migrate_cancel_refused(struct vm_session *s, Error **errp)
{
    return migration_cancel_refused(&s->mig, errp);
}

bool session_migrate_start_postcopy(struct vm_session *s, Error **errp)
{
    return migration_start_postcopy(&s->mig, errp);
}

bool session_migrate_resume(struct vm_session *s, const char *uri, Error **errp)
{
    return migration_resume(&s->mig, uri, errp);
}

bool session_migrate_recover(struct vm_session *s, const char *uri,
                             Error **errp)
{
    return incoming_recover(&s->in, uri, errp);
}

/* The end whose postcopy is active: the source's, else the incoming. */
bool session_migrate_pause(struct vm_session *s, Error **errp)
{
    struct mig_info mi;
    incoming_query(&s->in, &mi);
    if (migration_status(&s->mig) != MIG_STATUS_POSTCOPY_ACTIVE &&
        mi.status == MIG_STATUS_POSTCOPY_ACTIVE) {
        return incoming_pause(&s->in, errp);
    }
    return migration_pause(&s->mig, errp);
}

bool session_migrate_continue(struct vm_session *s, Error **errp)
{
    return migration_continue(&s->mig, errp);
}

void session_migrate_query(struct vm_session *s, struct mig_info *mi)
{
    migration_query(&s->mig, mi);
    /* As QEMU: an end that never migrated out shows its incoming one. */
    if (mi->status == MIG_STATUS_NONE) {
        incoming_query(&s->in, mi);
    }
}

bool session_migrate_wait(struct vm_session *s, int ms)
{
    return migration_wait(&s->mig, ms);
}

void session_get_mig_config(struct vm_session *s, struct mig_config *c)
{
    migration_get_config(&s->mig, c);
}

bool session_set_mig_config(struct vm_session *s, const struct mig_config *next,
                            Error **errp)
{
    return migration_set_config(&s->mig, next, errp);
}

bool session_set_mig_capability(struct vm_session *s, const char *name, bool on,
                                Error **errp)
{
    return migration_set_capability(&s->mig, name, on, errp);
}

bool session_set_mig_parameter(struct vm_session *s, const char *name,
                               const char *value, Error **errp)
{
    return migration_set_parameter(&s->mig, name, value, errp);
}

bool session_set_mig_parameter_value(struct vm_session *s, int param,
                                     uint64_t value, Error **errp)
{
    return migration_set_parameter_value(&s->mig, param, value, errp);
}

bool session_calc_dirty_rate(struct vm_session *s, int seconds, Error **errp)
{
    return dirty_rate_start(&s->dirty_rate, s->machine, seconds, errp);
}

void session_query_dirty_rate(struct vm_session *s, struct dirty_rate_info *di)
{
    dirty_rate_query(&s->dirty_rate, di);
}

bool session_getfd(struct vm_session *s, const char *name, Error **errp)
{
    if (s->pending_fd < 0) {
        error_setg(errp, "No file descriptor supplied via SCM_RIGHTS");
        return false;
    }
    if (name[0] >= '0' && name[0] <= '9') {
        error_setg(errp,
                   "Parameter 'fdname' expects a name not starting "
                   "with a digit");
        return false;
    }
    if (!fd_table_add(s->fds, name, s->pending_fd, errp)) {
        return false;
    }
    s->pending_fd = -1;
    return true;
}

bool session_closefd(struct vm_session *s, const char *name, Error **errp)
{
    return fd_table_close(s->fds, name, errp);
}

enum mig_status session_migrate_status(struct vm_session *s)
{
    return migration_status(&s->mig);
}
