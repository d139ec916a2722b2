/* Events: the table of what the session emits, the queue other threads
 * post to, delivery to the subscribers, and the one place that decides
 * which happenings become events. */
#include "core/events.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/session-priv.h"
#include "util/alloc.h"

#define ARGS(...) ((const struct qmp_arg[]){ __VA_ARGS__, { NULL } })

const struct qmp_event qmp_events[] = {
    { "STOP", NULL, "The machine stopped" },
    { "RESUME", NULL, "The machine runs again" },
    { "SHUTDOWN",
      ARGS({ "guest", QMP_BOOL, false },
           { "reason", QMP_STR, false, "ShutdownCause" }),
      "The machine ends: the guest powered off, or quit" },
    { "RESET",
      ARGS({ "guest", QMP_BOOL, false },
           { "reason", QMP_STR, false, "ShutdownCause" }),
      "system_reset restarted the machine" },
    { "GUEST_PANICKED", ARGS({ "action", QMP_STR, false }),
      "A vCPU could not go on; the machine is paused" },
    { "MIGRATION", ARGS({ "status", QMP_STR, false, "MigrationStatus" }),
      "A migration changed status (with the events capability on), or an "
      "incoming one completed" },
    { "JOB_STATUS_CHANGE",
      ARGS({ "id", QMP_STR, false }, { "status", QMP_STR, false, "JobStatus" }),
      "A job (snapshot-save, snapshot-load, snapshot-delete) changed status" },
    { NULL }
};

const struct qmp_event *qmp_event_find(const char *name)
{
    for (const struct qmp_event *e = qmp_events; e->name; e++) {
        if (strcmp(e->name, name) == 0) {
            return e;
        }
    }
    return NULL;
}

void session_emit(struct vm_session *s, const char *name, json_t *data)
{
    /* query-events and the schema list what clients may receive. */
    if (!qmp_event_find(name)) {
        fprintf(stderr, "hop: event %s is not in the QMP event table\n", name);
        abort();
    }
    struct session_event *e = xcalloc(1, sizeof(*e));
    e->name = xstrdup(name);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    e->sec = tv.tv_sec;
    e->usec = tv.tv_usec;
    e->data = data ? data : json_object();
    pthread_mutex_lock(&s->lock);
    *s->events_tail = e;
    s->events_tail = &e->next;
    pthread_mutex_unlock(&s->lock);
    char b = 1;
    (void)!write(s->wake[1], &b, 1);
}

bool session_subscribe(struct vm_session *s, session_event_fn fn, void *opaque)
{
    for (int i = 0; i < SESSION_MAX_SUBSCRIBERS; i++) {
        if (!s->subs[i].fn) {
            s->subs[i] = (struct session_subscriber){ fn, opaque };
            return true;
        }
    }
    return false;
}

void session_unsubscribe(struct vm_session *s, session_event_fn fn,
                         void *opaque)
{
    for (int i = 0; i < SESSION_MAX_SUBSCRIBERS; i++) {
        if (s->subs[i].fn == fn && s->subs[i].opaque == opaque) {
            s->subs[i] = (struct session_subscriber){ NULL, NULL };
        }
    }
}

int session_event_fd(const struct vm_session *s)
{
    return s->wake[0];
}

void session_flush_events(struct vm_session *s)
{
    char buf[64];
    while (read(s->wake[0], buf, sizeof(buf)) > 0) {
    }
    pthread_mutex_lock(&s->lock);
    struct session_event *list = s->events;
    s->events = NULL;
    s->events_tail = &s->events;
    pthread_mutex_unlock(&s->lock);
    while (list) {
        struct session_event *next = list->next;
        for (int i = 0; i < SESSION_MAX_SUBSCRIBERS; i++) {
            if (s->subs[i].fn) {
                s->subs[i].fn(s->subs[i].opaque, list->name, list->data,
                              list->sec, list->usec);
            }
        }
        free(list->name);
        json_decref(list->data);
        free(list);
        list = next;
    }
}

/* ---- the policy: what becomes an event ---- */

/* The guest powered off, or a vCPU failed (on a vCPU thread). */
void session_on_machine_event(void *opaque, enum machine_event ev)
{
    struct vm_session *s = opaque;
    if (ev == MACHINE_EVENT_SHUTDOWN) {
        session_emit(
            s, "SHUTDOWN",
            json_pack("{s:b,s:s}", "guest", 1, "reason", "guest-shutdown"));
        session_request_quit(s);
    } else {
        session_emit(s, "GUEST_PANICKED",
                     json_pack("{s:s}", "action", "pause"));
    }
}

/* STOP and RESUME follow the run state. */
void session_on_runstate(void *opaque, enum run_state from, enum run_state to)
{
    struct vm_session *s = opaque;
    if (from == RUN_STATE_RUNNING && to != RUN_STATE_RUNNING) {
        session_emit(s, "STOP", NULL);
    } else if (from != RUN_STATE_RUNNING && to == RUN_STATE_RUNNING) {
        session_emit(s, "RESUME", NULL);
    }
}

void session_on_migration_status(void *opaque, enum mig_status st)
{
    /* Called only while the events capability is on. */
    struct vm_session *s = opaque;
    session_emit(s, "MIGRATION",
                 json_pack("{s:s}", "status", mig_status_name(st)));
}

/* The destination entered postcopy: the guest will run here before all
 * of its RAM arrived. */
void session_on_incoming_status(void *opaque, int status)
{
    session_emit(
        opaque, "MIGRATION",
        json_pack("{s:s}", "status", mig_status_name((enum mig_status)status)));
}

void session_on_incoming_done(void *opaque, bool ok, const char *error)
{
    struct vm_session *s = opaque;
    if (!ok) {
        /* A destination that could not load has nothing to run. */
        fprintf(stderr, "hop: incoming migration failed: %s\n", error);
        s->exit_status = 1;
        session_request_quit(s);
        return;
    }
    session_emit(s, "MIGRATION", json_pack("{s:s}", "status", "completed"));
}
