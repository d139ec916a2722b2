/* A session: the running machine and everything the monitors act on —
 * shared by the terminal monitor, socket monitors and QMP clients.  Other
 * threads (vCPUs, migration) post events here; the monitor loop wakes up
 * and delivers them. */
#ifndef HOP_MONITOR_SESSION_H
#define HOP_MONITOR_SESSION_H

#include <pthread.h>
#include <stdbool.h>

typedef struct json_t json_t;
struct machine;
struct qmp_client;

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
    bool quit;                       /* leave the monitor loop */
    int wake[2];                     /* pipe: events are waiting */
    pthread_mutex_t lock;            /* guards the event queue */
    struct session_event *events, **events_tail;
    struct qmp_client *qmp[SESSION_MAX_QMP];   /* for event delivery */
};

bool session_init(struct vm_session *s);
void session_destroy(struct vm_session *s);
/* Queue a QMP event (any thread); data is taken over (may be NULL). */
void session_emit(struct vm_session *s, const char *name, json_t *data);
/* Deliver queued events to QMP clients (monitor loop thread). */
void session_flush_events(struct vm_session *s);
void session_request_quit(struct vm_session *s);

#endif
