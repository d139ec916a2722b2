/* The incoming side of migration. */
#include "migration/incoming.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "machine/machine.h"
#include "migration/globalstate.h"
#include "ram/ram-multifd.h"
#include "ram/ram.h"
#include "vmstate/stream.h"

void incoming_init(struct incoming *in, struct machine *m,
                   struct section_registry *reg, struct ram_state *rs,
                   struct globalstate *gs, struct fd_table *fds,
                   bool autostart, incoming_done_fn done, void *opaque)
{
    memset(in, 0, sizeof(*in));
    in->m = m;
    in->reg = reg;
    in->rs = rs;
    in->gs = gs;
    in->fds = fds;
    in->autostart = autostart;
    in->done = done;
    in->opaque = opaque;
    in->lfd = -1;
    in->conn.fd = -1;
}

/* What a new connection is: the main stream ("QEVM") or a multifd
 * channel.  Returns 1 for main, 0 for multifd, -1 for neither. */
static int classify(int fd)
{
    char head[MULTIFD_MAGIC_LEN];
    ssize_t n;
    do {
        n = recv(fd, head, sizeof(head), MSG_PEEK | MSG_WAITALL);
    } while (n < 0 && errno == EINTR);
    if (n >= 4 && memcmp(head, "QEVM", 4) == 0) {
        return 1;
    }
    if (n == (ssize_t)sizeof(head) &&
        memcmp(head, multifd_channel_magic, sizeof(head)) == 0) {
        return 0;
    }
    return -1;
}

/* After the main stream arrived, later connections are multifd channels. */
static void *acceptor_thread(void *opaque)
{
    struct incoming *in = opaque;
    for (;;) {
        struct mig_conn c;
        Error *err = NULL;
        if (!mig_accept(in->lfd, &c, &err)) {
            error_free(err);
            return NULL;        /* the listener was shut down */
        }
        if (classify(c.fd) != 0 ||
            !ram_state_multifd_recv_add(in->rs, c.fd, &err)) {
            error_free(err);
            close(c.fd);
        }
    }
}

static void *incoming_thread(void *opaque)
{
    struct incoming *in = opaque;
    Error *err = NULL;
    bool ok = false, acceptor = false;
    pthread_t acceptor_tid;
    ram_state_set_fresh(in->rs, true);
    ram_state_multifd_recv_begin(in->rs);
    while (in->lfd >= 0) {
        struct mig_conn c;
        if (!mig_accept(in->lfd, &c, &err)) {
            goto out;
        }
        int kind = classify(c.fd);
        if (kind == 1) {
            in->conn = c;
            break;
        }
        if (kind < 0 || !ram_state_multifd_recv_add(in->rs, c.fd, &err)) {
            error_free(err);
            err = NULL;
            if (kind < 0) {
                close(c.fd);
            }
        }
    }
    if (in->lfd >= 0) {
        acceptor = pthread_create(&acceptor_tid, NULL, acceptor_thread,
                                  in) == 0;
    }
    Channel *f = in->conn.is_socket ?
                 chan_new_socket(in->conn.fd, false, false, "incoming") :
                 chan_new_fd(in->conn.fd, false, false, "incoming");
    ok = stream_load(in->reg, f, NULL, &err);
    chan_close(f, NULL);
    if (!ram_state_multifd_recv_end(in->rs, ok ? &err : NULL)) {
        ok = false;
    }
    ram_state_set_fresh(in->rs, false);
    if (!ok) {
        goto out;
    }
    const char *src = globalstate_get(in->gs);
    bool run = in->autostart && (!src || strcmp(src, "running") == 0);
    ok = machine_set_runstate(in->m, RUN_STATE_PAUSED, &err) &&
         (!run || vm_start(in->m, &err));
out:
    if (in->lfd >= 0) {
        shutdown(in->lfd, SHUT_RDWR);
        if (acceptor) {
            pthread_join(acceptor_tid, NULL);
        }
        close(in->lfd);
        in->lfd = -1;
    }
    if (!ok) {
        ram_state_multifd_recv_end(in->rs, NULL);
    }
    {
        Error *cerr = NULL;
        mig_conn_close(&in->conn, &cerr);
        error_free(cerr);
    }
    in->active = false;
    if (in->done) {
        in->done(in->opaque, ok, ok ? NULL : error_get_pretty(err));
    }
    error_free(err);
    return NULL;
}

bool incoming_start(struct incoming *in, const char *uri, Error **errp)
{
    if (in->active || in->started) {
        error_setg(errp, "an incoming migration was already started");
        return false;
    }
    if (!mig_uri_parse(uri, &in->uri, errp)) {
        return false;
    }
    if (!machine_set_runstate(in->m, RUN_STATE_INMIGRATE, errp)) {
        return false;
    }
    if (!mig_listen(&in->uri, in->fds, &in->lfd, &in->conn, errp)) {
        return false;
    }
    in->active = true;
    if (pthread_create(&in->thread, NULL, incoming_thread, in) != 0) {
        error_setg(errp, "cannot start the incoming migration thread");
        in->active = false;
        return false;
    }
    in->started = true;
    return true;
}

void incoming_destroy(struct incoming *in)
{
    if (in->started) {
        if (in->active && in->lfd >= 0) {
            /* Still waiting for a source: stop listening. */
            shutdown(in->lfd, SHUT_RDWR);
        }
        if (in->active && in->conn.fd >= 0) {
            shutdown(in->conn.fd, SHUT_RDWR);
        }
        pthread_join(in->thread, NULL);
        in->started = false;
    }
    if (in->lfd >= 0) {
        close(in->lfd);
        in->lfd = -1;
    }
    mig_uri_clear(&in->uri);
}
