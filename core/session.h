/* The session: the running machine and everything the interfaces act on
 * (migration both ways, the drives, the snapshot catalog, named
 * descriptors, events).  The terminal monitor, socket monitors, QMP
 * clients and `hop run` itself are clients of it: they call the
 * functions below and never see its fields.  Migration settings change
 * only through session_get/set_mig_config (the migration thread reads
 * them under its lock).  Events are emitted here, from any thread, and
 * reach the subscribers (the monitor loop) on the loop's thread. */
#ifndef HOP_CORE_SESSION_H
#define HOP_CORE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migration/dirty-rate.h"
#include "migration/migration.h"
#include "snapshot/drives.h"
#include "snapshot/snapshot.h"
#include "util/error.h"

typedef struct json_t json_t;
struct machine;
struct machine_config;
struct qmp_cmd;
struct vm_session;

struct session_config {
    /* The machine to create (NULL: none, for tests of the parts that
     * need only drives).  Its on_event and opaque are the session's. */
    const struct machine_config *machine;
    /* Every drive (attached or if=none), for savevm/loadvm/delvm and the
     * migration hand-over; not owned. */
    const struct snapshot_drive *drives;
    size_t ndrives;
    bool autostart;      /* not -S: run once a stream loaded */
    const char *catalog; /* -catalog; NULL: HOP_CATALOG... */
    const uint8_t *uuid; /* 16 bytes, or NULL */
    /* The QMP commands clients may run (NULL: all); the QMP fuzz target
     * narrows it to those without effects outside the process. */
    const struct qmp_cmd *qmp_table;
    /* What cpr-exec runs unless cpr-exec-command says otherwise: the
     * program (a path) and its arguments, NULL-terminated; NULL: no
     * default.  Not copied: it lives as long as the session. */
    const char *const *exec_argv;
};

struct vm_session *session_new(const struct session_config *cfg, Error **errp);
/* Before the interfaces go: ends a migration and stops the vCPUs. */
void session_shutdown(struct vm_session *s);
void session_free(struct vm_session *s);

/* What the interfaces read. */
struct machine *session_machine(struct vm_session *s);
const struct snapshot_drive *session_drives(struct vm_session *s, size_t *n);
const struct qmp_cmd *session_qmp_table(const struct vm_session *s);
int session_exit_status(const struct vm_session *s);

/* Leaving: any thread may ask; the monitor loop ends. */
void session_request_quit(struct vm_session *s);
bool session_quit_requested(const struct vm_session *s);
void session_clear_quit(struct vm_session *s);

/* Receive on a monitor socket, keeping a passed descriptor (if any) as
 * the pending one getfd names. */
long session_recv(struct vm_session *s, int fd, void *buf, size_t len);

/* Events (core/events.c).  Subscribers get every event, with its data
 * and time, on the thread that flushes; at most SESSION_MAX_SUBSCRIBERS. */
#define SESSION_MAX_SUBSCRIBERS 4
typedef void (*session_event_fn)(void *opaque, const char *name, json_t *data,
                                 long long sec, long long usec);
bool session_subscribe(struct vm_session *s, session_event_fn fn, void *opaque);
void session_unsubscribe(struct vm_session *s, session_event_fn fn,
                         void *opaque);
/* Readable when events wait (or quit was asked): poll it. */
int session_event_fd(const struct vm_session *s);
/* Deliver the waiting events to the subscribers. */
void session_flush_events(struct vm_session *s);

/* cpr-exec (core/cpr-exec.c): this process becomes a new hop that takes
 * the machine over.  Interfaces that hold something across the exec
 * register a hook: called with before = true just before the exec, it
 * may put up to max listening sockets in fds to be kept (the new hop
 * finds them in HOP_CPR_LISTEN, comma-separated numbers, by their
 * paths); called again with before = false if the exec failed and this
 * process goes on.  At most SESSION_MAX_EXEC_HOOKS. */
#define SESSION_MAX_EXEC_HOOKS 4
#define SESSION_EXEC_KEEP_MAX 8
typedef int (*session_exec_hook_fn)(void *opaque, bool before, int *fds,
                                    int max);
bool session_add_exec_hook(struct vm_session *s, session_exec_hook_fn fn,
                           void *opaque);
void session_remove_exec_hook(struct vm_session *s, session_exec_hook_fn fn,
                              void *opaque);

/* Run control (core/run.c). */
bool session_start(struct vm_session *s, Error **errp);
bool session_stop(struct vm_session *s, Error **errp);
bool session_cont(struct vm_session *s, Error **errp);
bool session_reset(struct vm_session *s, Error **errp);
void session_quit(struct vm_session *s);
/* -incoming: wait for a stream on uri, or ("defer") for
 * session_migrate_incoming. */
bool session_incoming(struct vm_session *s, const char *uri, Error **errp);
bool session_migrate_incoming(struct vm_session *s, const char *uri,
                              Error **errp);

/* Outgoing migration and its settings (core/migrate.c).  blk and inc
 * are migrate's -b and -i (copy the drives; only above a backing file). */
bool session_migrate(struct vm_session *s, const char *uri, bool blk, bool inc,
                     Error **errp);
void session_migrate_cancel(struct vm_session *s);
/* A migration in postcopy-active cannot be cancelled: true, with why. */
bool session_migrate_cancel_refused(struct vm_session *s, Error **errp);
/* migrate_start_postcopy (postcopy-ram on; harmless once complete). */
bool session_migrate_start_postcopy(struct vm_session *s, Error **errp);
/* Postcopy recovery: migrate -r URI (source), migrate_recover URI
 * (destination), migrate_pause (either end, postcopy-active). */
bool session_migrate_resume(struct vm_session *s, const char *uri,
                            Error **errp);
bool session_migrate_recover(struct vm_session *s, const char *uri,
                             Error **errp);
bool session_migrate_pause(struct vm_session *s, Error **errp);
bool session_migrate_continue(struct vm_session *s, Error **errp);
void session_migrate_query(struct vm_session *s, struct mig_info *mi);
enum mig_status session_migrate_status(struct vm_session *s);
/* Waits up to ms for the migration to end; true once it has. */
bool session_migrate_wait(struct vm_session *s, int ms);
void session_get_mig_config(struct vm_session *s, struct mig_config *c);
/* All of next or nothing; capabilities only while no migration runs. */
bool session_set_mig_config(struct vm_session *s, const struct mig_config *next,
                            Error **errp);
bool session_set_mig_capability(struct vm_session *s, const char *name, bool on,
                                Error **errp);
bool session_set_mig_parameter(struct vm_session *s, const char *name,
                               const char *value, Error **errp);
bool session_set_mig_parameter_value(struct vm_session *s, int param,
                                     uint64_t value, Error **errp);
bool session_calc_dirty_rate(struct vm_session *s, int seconds, Error **errp);
void session_query_dirty_rate(struct vm_session *s, struct dirty_rate_info *di);
/* The descriptor the last client passed, under a name (getfd). */
bool session_getfd(struct vm_session *s, const char *name, Error **errp);
bool session_closefd(struct vm_session *s, const char *name, Error **errp);

/* Snapshots (core/snapshot.c): progress and warnings go where the
 * caller says (io may be NULL). */
struct session_snapshot_io {
    snapshot_progress_fn progress;
    void *progress_ctx;
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
};
bool session_savevm(struct vm_session *s, const char *tag,
                    const struct snapshot_select *sel,
                    const struct session_snapshot_io *io, Error **errp);
bool session_loadvm(struct vm_session *s, const char *tag,
                    const struct snapshot_select *sel,
                    const struct session_snapshot_io *io, Error **errp);
bool session_delvm(struct vm_session *s, const char *tag,
                   const struct snapshot_select *sel,
                   const struct session_snapshot_io *io, Error **errp);
/* Snapshot jobs (core/jobs.c): QMP's snapshot-save/-load/-delete as
 * QEMU runs them.  session_job_start checks the id, starts the work on a
 * thread of its own and returns; the job then reports through query-jobs
 * (session_query_jobs: [JobInfo]) and JOB_STATUS_CHANGE events (created,
 * running, then waiting, pending or aborting, concluded) until
 * job-dismiss.  While a job runs, the other snapshot operations and
 * migration refuse, and so does run control during a save or load. */
enum session_job_type {
    SESSION_JOB_SNAPSHOT_SAVE,
    SESSION_JOB_SNAPSHOT_LOAD,
    SESSION_JOB_SNAPSHOT_DELETE,
};
bool session_job_start(struct vm_session *s, enum session_job_type type,
                       const char *id, const char *tag,
                       const struct snapshot_select *sel, Error **errp);
json_t *session_query_jobs(struct vm_session *s);
bool session_job_dismiss(struct vm_session *s, const char *id, Error **errp);
/* Refuses (snapshot jobs run to the end), with QEMU's errors for an
 * unknown or concluded job. */
bool session_job_cancel(struct vm_session *s, const char *id, Error **errp);
/* The snapshots every snapshotted drive has (caller frees the list). */
bool session_list_snapshots(struct vm_session *s, struct blk_snapshot **l,
                            size_t *n, Error **errp);

#endif
