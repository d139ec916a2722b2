/* Session bookkeeping and the cross-thread event queue. */
#include "monitor/session.h"

#include <fcntl.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "machine/machine.h"
#include "monitor/qmp.h"
#include "ram/ram.h"

bool session_init(struct vm_session *s)
{
    memset(s, 0, sizeof(*s));
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        return false;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->events_tail = &s->events;
    s->pending_fd = -1;
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
    if (s->pending_fd >= 0) {
        close(s->pending_fd);
    }
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->lock);
}

void session_emit(struct vm_session *s, const char *name, json_t *data)
{
    /* query-events and the schema list what clients may receive. */
    if (!qmp_event_find(name)) {
        fprintf(stderr, "hop: event %s is not in the QMP event table\n",
                name);
        abort();
    }
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

long session_recv(struct vm_session *s, int fd, void *buf, size_t len)
{
    struct iovec iov = { buf, len };
    union {
        char buf[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = ctl.buf,
                          .msg_controllen = sizeof(ctl.buf) };
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) {
        return n;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        int nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int fds[4];
        memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)(nfds > 4 ? 4 : nfds));
        for (int i = 0; i < nfds && i < 4; i++) {
            /* The last one wins, as with QEMU's getfd. */
            if (s->pending_fd >= 0) {
                close(s->pending_fd);
            }
            s->pending_fd = fds[i];
        }
    }
    return n;
}

void session_request_quit(struct vm_session *s)
{
    s->quit = true;
    char b = 1;
    (void)!write(s->wake[1], &b, 1);
}

static void on_migration_status(void *opaque, enum mig_status st)
{
    /* Called only while the events capability is on. */
    struct vm_session *s = opaque;
    session_emit(s, "MIGRATION", json_pack("{s:s}", "status",
                                           mig_status_name(st)));
}

static void on_incoming_done(void *opaque, bool ok, const char *error)
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

bool session_attach_machine(struct vm_session *s, struct machine *m,
                            Error **errp)
{
    s->machine = m;
    s->rs = ram_state_new(m);
    s->fds = fd_table_new();
    struct section_registry *reg = machine_registry(m);
    if (!ram_register(s->rs, reg, errp) ||
        !globalstate_register(&s->gs, reg, errp)) {
        return false;
    }
    dirty_rate_init(&s->dirty_rate);
    migration_init(&s->mig, m, reg, s->rs, &s->gs, s->fds,
                   on_migration_status, s);
    incoming_init(&s->in, m, reg, s->rs, &s->gs, s->fds, s->autostart,
                  on_incoming_done, s);
    /* Both ends of a migration hand the drives over. */
    _Static_assert(SNAPSHOT_MAX_DRIVES <= MIG_MAX_DRIVES &&
                   SNAPSHOT_MAX_DRIVES <= INCOMING_MAX_DRIVES,
                   "every drive can change hands");
    BlockDev *drives[SNAPSHOT_MAX_DRIVES];
    for (size_t i = 0; i < s->ndrives; i++) {
        drives[i] = s->drives[i].bs;
    }
    migration_set_drives(&s->mig, drives, s->ndrives);
    incoming_set_drives(&s->in, drives, s->ndrives);
    return true;
}

void session_detach_machine(struct vm_session *s)
{
    if (!s->machine) {
        return;
    }
    migration_destroy(&s->mig);
    incoming_destroy(&s->in);
    dirty_rate_destroy(&s->dirty_rate);
    ram_state_free(s->rs);
    fd_table_free(s->fds);
    s->rs = NULL;
    s->fds = NULL;
    s->machine = NULL;
}
