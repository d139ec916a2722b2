/* Session bookkeeping and the cross-thread event queue. */
#include "monitor/session.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "monitor/qmp.h"

bool session_init(struct vm_session *s)
{
    memset(s, 0, sizeof(*s));
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        return false;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->events_tail = &s->events;
    return true;
}

void session_destroy(struct vm_session *s)
{
    struct session_event *e = s->events;
    while (e) {
        struct session_event *next = e->next;
        free(e->name);
        json_decref(e->data);
        free(e);
        e = next;
    }
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->lock);
}

void session_emit(struct vm_session *s, const char *name, json_t *data)
{
    struct session_event *e = calloc(1, sizeof(*e));
    if (!e || !(e->name = strdup(name))) {
        abort();
    }
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
        for (int i = 0; i < SESSION_MAX_QMP; i++) {
            if (s->qmp[i]) {
                qmp_client_send_event(s->qmp[i], list->name, list->data,
                                      list->sec, list->usec);
            }
        }
        free(list->name);
        json_decref(list->data);
        free(list);
        list = next;
    }
}

void session_request_quit(struct vm_session *s)
{
    s->quit = true;
    char b = 1;
    (void)!write(s->wake[1], &b, 1);
}
