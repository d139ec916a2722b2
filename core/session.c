/* Session life: creation from a config, the machine wired in, teardown;
 * quitting and descriptors passed by monitor clients. */
#include "core/session-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ram/ram.h"
#include "util/alloc.h"

/* Registers the RAM and globalstate sections and readies migration both
 * ways, with the drives to hand over. */
static bool attach_machine(struct vm_session *s, struct machine *m,
                           Error **errp)
{
    s->machine = m;
    s->rs = ram_state_new(m);
    s->fds = fd_table_new();
    struct section_registry *reg = machine_registry(m);
    /* Block before RAM, as QEMU registers them: a section iterates only
     * while the rate limit leaves room, and a guest dirtying RAM faster
     * than the link would otherwise starve the disk copy. */
    block_mig_init(&s->blk_mig);
    for (size_t i = 0; i < s->ndrives; i++) {
        if (!block_mig_add_drive(&s->blk_mig, s->drives[i].name,
                                 s->drives[i].bs, errp)) {
            return false;
        }
    }
    if (!block_mig_register(&s->blk_mig, reg, errp) ||
        !ram_register(s->rs, reg, errp) ||
        !globalstate_register(&s->gs, reg, errp)) {
        return false;
    }
    dirty_rate_init(&s->dirty_rate);
    migration_init(&s->mig, m, reg, s->rs, &s->gs, s->fds,
                   session_on_migration_status, s);
    migration_set_exec(&s->mig, session_exec, s);
    incoming_init(&s->in, m, reg, s->rs, &s->gs, s->fds, s->autostart,
                  session_on_incoming_done, s);
    s->in.mig = &s->mig; /* postcopy-ram must be on at this end too */
    s->in.on_status = session_on_incoming_status;
    s->wired = true;
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
    migration_set_block(&s->mig, &s->blk_mig);
    machine_set_runstate_notify(m, session_on_runstate, s);
    return true;
}

static bool create_machine(struct vm_session *s,
                           const struct session_config *cfg, Error **errp)
{
    struct machine_config mc = *cfg->machine;
    mc.on_event = session_on_machine_event;
    mc.opaque = s;
    struct machine *m = machine_new(&mc, errp);
    if (!m) {
        return false;
    }
    if (!attach_machine(s, m, errp)) {
        return false;
    }
    if (cfg->uuid) {
        section_registry_set_uuid(machine_registry(m), cfg->uuid);
    }
    return true;
}

struct vm_session *session_new(const struct session_config *cfg, Error **errp)
{
    if (cfg->ndrives > SNAPSHOT_MAX_DRIVES) {
        error_setg(errp, "%zu drives: at most %d are supported", cfg->ndrives,
                   SNAPSHOT_MAX_DRIVES);
        return NULL;
    }
    struct vm_session *s = xcalloc(1, sizeof(*s));
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        error_setg_errno(errp, errno, "cannot create a pipe");
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->jobs_lock, NULL);
    s->events_tail = &s->events;
    s->pending_fd = -1;
    s->autostart = cfg->autostart;
    s->catalog = cfg->catalog;
    s->exec_argv = cfg->exec_argv;
    s->qmp_table = cfg->qmp_table;
    for (size_t i = 0; i < cfg->ndrives; i++) {
        s->drives[i] = cfg->drives[i];
    }
    s->ndrives = cfg->ndrives;
    if (cfg->machine && !create_machine(s, cfg, errp)) {
        session_free(s);
        return NULL;
    }
    return s;
}

void session_shutdown(struct vm_session *s)
{
    /* A snapshot job ends its work (it puts the machine back as it was),
     * then migration threads, then the vCPUs. */
    session_jobs_wait(s);
    if (s->machine) {
        migration_cancel(&s->mig);
        /* vCPUs may wait for postcopy's pages: they get none now. */
        if (s->wired) {
            incoming_quit(&s->in);
        }
        if (machine_runstate(s->machine) == RUN_STATE_RUNNING) {
            vm_stop(s->machine, RUN_STATE_SHUTDOWN, NULL);
        }
    }
}

static void detach_machine(struct vm_session *s)
{
    struct machine *m = s->machine;
    if (!m) {
        return;
    }
    if (s->wired) {
        migration_destroy(&s->mig);
        incoming_destroy(&s->in);
        block_mig_destroy(&s->blk_mig);
        dirty_rate_destroy(&s->dirty_rate);
    }
    ram_state_free(s->rs);
    fd_table_free(s->fds);
    s->rs = NULL;
    s->fds = NULL;
    s->machine = NULL;
    machine_free(m);
}

void session_free(struct vm_session *s)
{
    if (!s) {
        return;
    }
    session_jobs_free(s);
    detach_machine(s);
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
    pthread_mutex_destroy(&s->jobs_lock);
    free(s);
}

struct machine *session_machine(struct vm_session *s)
{
    return s->machine;
}

const struct snapshot_drive *session_drives(struct vm_session *s, size_t *n)
{
    *n = s->ndrives;
    return s->drives;
}

const struct qmp_cmd *session_qmp_table(const struct vm_session *s)
{
    return s->qmp_table;
}

int session_exit_status(const struct vm_session *s)
{
    return s->exit_status;
}

void session_request_quit(struct vm_session *s)
{
    s->quit = true;
    char b = 1;
    (void)!write(s->wake[1], &b, 1);
}

bool session_quit_requested(const struct vm_session *s)
{
    return s->quit;
}

void session_clear_quit(struct vm_session *s)
{
    s->quit = false;
}

long session_recv(struct vm_session *s, int fd, void *buf, size_t len)
{
    struct iovec iov = { buf, len };
    union {
        char buf[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = { .msg_iov = &iov,
                          .msg_iovlen = 1,
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
