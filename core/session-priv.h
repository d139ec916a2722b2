/* The session's fields: for the .c files of core/ only.  The interfaces
 * go through core/session.h. */
#ifndef HOP_CORE_SESSION_PRIV_H
#define HOP_CORE_SESSION_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/session.h"
#include "migration/globalstate.h"
#include "machine/machine.h"
#include "migration/incoming.h"

struct session_event {
    char *name;
    json_t *data;
    long long sec, usec;
    struct session_event *next;
};

struct session_subscriber {
    session_event_fn fn;
    void *opaque;
};

struct vm_session {
    struct machine *machine;
    atomic_bool quit;     /* leave the monitor loop (any thread) */
    int wake[2];          /* pipe: events are waiting */
    pthread_mutex_t lock; /* guards the event queue */
    struct session_event *events, **events_tail;
    struct session_subscriber subs[SESSION_MAX_SUBSCRIBERS];

    /* Moving state: RAM as a live section, the run state for the peer,
     * named descriptors (getfd), outgoing and incoming migration. */
    struct ram_state *rs;
    struct globalstate gs;
    struct fd_table *fds;
    struct migration mig;
    struct block_mig blk_mig; /* the "block" section (migrate -b) */
    struct incoming in;
    struct dirty_rate dirty_rate;
    bool wired;      /* the above are initialised */
    bool autostart;  /* not -S */
    int exit_status; /* hop run's exit status */
    /* A descriptor a monitor client sent with SCM_RIGHTS, until getfd
     * names it; -1 if none. */
    int pending_fd;

    /* Every drive, and the snapshot catalog (NULL: HOP_CATALOG or the
     * default). */
    struct snapshot_drive drives[SNAPSHOT_MAX_DRIVES];
    size_t ndrives;
    const char *catalog;

    const struct qmp_cmd *qmp_table;

    /* Snapshot jobs (core/jobs.c), newest first; jobs_lock guards the
     * list and what query-jobs shows of each job. */
    pthread_mutex_t jobs_lock;
    struct session_job *jobs;

    /* cpr-exec: the default command line and the interfaces' hooks. */
    const char *const *exec_argv;
    struct {
        session_exec_hook_fn fn;
        void *opaque;
    } exec_hooks[SESSION_MAX_EXEC_HOOKS];
};

/* Snapshots without the check for a running job (core/snapshot.c): what
 * a job's thread runs. */
bool session_do_savevm(struct vm_session *s, const char *tag,
                       const struct snapshot_select *sel,
                       const struct session_snapshot_io *io, Error **errp);
bool session_do_loadvm(struct vm_session *s, const char *tag,
                       const struct snapshot_select *sel,
                       const struct session_snapshot_io *io, Error **errp);
bool session_do_delvm(struct vm_session *s, const char *tag,
                      const struct snapshot_select *sel,
                      const struct session_snapshot_io *io, Error **errp);

/* true (errp says which job) while a snapshot job that conflicts with
 * `what` runs: any job, or with run set (run control) a save or load. */
bool session_job_conflict(struct vm_session *s, const char *what, bool run,
                          Error **errp);
/* Waits for every job's thread; then frees the jobs. */
void session_jobs_wait(struct vm_session *s);
void session_jobs_free(struct vm_session *s);

/* cpr-exec's part of migration (core/cpr-exec.c). */
bool session_exec(void *opaque, int state_fd, Error **errp);

/* Queue an event (any thread); data is taken over (may be NULL).  The
 * name must be in the event table (core/events.h). */
void session_emit(struct vm_session *s, const char *name, json_t *data);

/* The event policy (core/events.c): what the machine and migration
 * report becomes events (and, for some, the end of the session). */
void session_on_machine_event(void *opaque, enum machine_event ev);
void session_on_runstate(void *opaque, enum run_state from, enum run_state to);
void session_on_migration_status(void *opaque, enum mig_status st);
void session_on_incoming_done(void *opaque, bool ok, const char *error);
void session_on_incoming_status(void *opaque, int status);

#endif
