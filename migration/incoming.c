/* The incoming side of migration. */
#include "migration/incoming.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "machine/machine.h"
#include "migration/globalstate.h"
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

static void *incoming_thread(void *opaque)
{
    struct incoming *in = opaque;
    Error *err = NULL;
    bool ok = false;
    if (in->lfd >= 0) {
        if (!mig_accept(in->lfd, &in->conn, &err)) {
            goto out;
        }
        /* One source per -incoming. */
        close(in->lfd);
        in->lfd = -1;
    }
    Channel *f = in->conn.is_socket ?
                 chan_new_socket(in->conn.fd, false, false, "incoming") :
                 chan_new_fd(in->conn.fd, false, false, "incoming");
    ram_state_set_fresh(in->rs, true);
    ok = stream_load(in->reg, f, NULL, &err);
    chan_close(f, NULL);
    ram_state_set_fresh(in->rs, false);
    if (!ok) {
        goto out;
    }
    const char *src = globalstate_get(in->gs);
    bool run = in->autostart && (!src || strcmp(src, "running") == 0);
    ok = machine_set_runstate(in->m, RUN_STATE_PAUSED, &err) &&
         (!run || vm_start(in->m, &err));
out:
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
