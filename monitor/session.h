/* A session: the running machine and everything the monitors act on —
 * shared by the terminal monitor, socket monitors and QMP clients.  Other
 * threads (vCPUs, migration) post events here; the monitor loop wakes up
 * and delivers them. */
#ifndef HOP_MONITOR_SESSION_H
#define HOP_MONITOR_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "migration/dirty-rate.h"
#include "migration/globalstate.h"
#include "migration/incoming.h"
#include "migration/migration.h"
#include "snapshot/drives.h"
#include "util/error.h"

typedef struct json_t json_t;
struct machine;
struct qmp_client;
struct qmp_cmd;
struct ram_state;
struct fd_table;

#define SESSION_MAX_QMP 8

struct session_event {
    char *name;
    json_t *data;
    long long sec, usec;
    struct session_event *next;
};

struct vm_session {
    struct machine *machine;
    const char *name;                /* -name, or NULL */
    const char *accel;               /* "emu" or "kvm" */
    atomic_bool quit;                /* leave the monitor loop (any thread) */
    int wake[2];                     /* pipe: events are waiting */
    pthread_mutex_t lock;            /* guards the event queue */
    struct session_event *events, **events_tail;
    struct qmp_client *qmp[SESSION_MAX_QMP];   /* for event delivery */

    /* Moving state: RAM as a live section, the run state for the peer,
     * named descriptors (getfd), outgoing and incoming migration. */
    struct ram_state *rs;
    struct globalstate gs;
    struct fd_table *fds;
    struct migration mig;
    struct incoming in;
    struct dirty_rate dirty_rate;
    bool autostart;                  /* not -S */
    int exit_status;                 /* hop run's exit status */
    /* A descriptor a monitor client sent with SCM_RIGHTS, until getfd
     * names it; -1 if none. */
    int pending_fd;

    /* Every drive (attached or if=none), for savevm/loadvm/delvm; and the
     * snapshot catalog (-catalog PATH; NULL: HOP_CATALOG or the default). */
    struct snapshot_drive drives[SNAPSHOT_MAX_DRIVES];
    size_t ndrives;
    const char *catalog;

    /* The QMP commands clients may run (NULL: all of qmp_commands); the
     * QMP fuzz target narrows it to those without effects outside the
     * process. */
    const struct qmp_cmd *qmp_table;
};

bool session_init(struct vm_session *s);
void session_destroy(struct vm_session *s);
/* Queue a QMP event (any thread); data is taken over (may be NULL). */
void session_emit(struct vm_session *s, const char *name, json_t *data);
/* Deliver queued events to QMP clients (monitor loop thread). */
void session_flush_events(struct vm_session *s);
void session_request_quit(struct vm_session *s);
/* Receive on a monitor socket, keeping a passed descriptor (if any) as
 * the session's pending one. */
long session_recv(struct vm_session *s, int fd, void *buf, size_t len);
/* Wires the machine in: registers the RAM and globalstate sections and
 * readies migration. */
bool session_attach_machine(struct vm_session *s, struct machine *m,
                            Error **errp);
void session_detach_machine(struct vm_session *s);

#endif
