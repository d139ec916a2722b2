/* The incoming side of migration. */
#include "migration/incoming.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/machine.h"
#include "migration/cpr.h"
#include "migration/globalstate.h"
#include "migration/migration.h"
#include "migration/return-path.h"
#include "ram/ram.h"
#include "util/alloc.h"
#include "util/be.h"
#include "vmstate/stream-walk.h"
#include "vmstate/stream.h"

void incoming_init(struct incoming *in, struct machine *m,
                   struct section_registry *reg, struct ram_state *rs,
                   struct globalstate *gs, struct fd_table *fds, bool autostart,
                   incoming_done_fn done, void *opaque)
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
    in->wake[0] = in->wake[1] = -1;
    in->conn.fd = -1;
    in->recover_lfd = -1;
    in->recover_conn.fd = -1;
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->cond, NULL);
    pthread_mutex_init(&in->rp_lock, NULL);
}

void incoming_set_drives(struct incoming *in, BlockDev *const *drives, size_t n)
{
    in->ndrives = n < INCOMING_MAX_DRIVES ? n : INCOMING_MAX_DRIVES;
    memcpy(in->drives, drives, in->ndrives * sizeof(*drives));
}

static bool quitting(struct incoming *in)
{
    pthread_mutex_lock(&in->lock);
    bool q = in->quitting;
    pthread_mutex_unlock(&in->lock);
    return q;
}

/* A multifd channel: its receiver takes it over (or it is closed). */
static void add_channel(struct incoming *in, struct mig_conn *c,
                        const char *peer)
{
    Error *err = NULL;
    if (!ram_state_multifd_recv_add(in->rs, c->fd, &err)) {
        error_report("incoming migration: %s: %s", peer, error_get_pretty(err));
        error_free(err);
    }
}

/* postcopy-preempt's channel: a thread places its pages. */
static void add_preempt(struct incoming *in, struct mig_conn *c,
                        const char *peer)
{
    Error *err = NULL;
    if (!ram_incoming_preempt(in->rs, c->fd, &err)) {
        error_report("incoming migration: %s: %s", peer, error_get_pretty(err));
        error_free(err);
    }
}

/* While the main stream loads: later connections are multifd channels.
 * Ends when woken (loading ended, or quit); the receiver outlives it. */
static void *acceptor_thread(void *opaque)
{
    struct incoming *in = opaque;
    for (;;) {
        struct mig_conn c;
        enum mig_conn_kind kind;
        char peer[96];
        Error *err = NULL;
        int r =
            mig_acceptor_next(&in->acc, &c, &kind, peer, sizeof(peer), &err);
        if (r <= 0) {
            if (r < 0) {
                error_report_err(err);
            }
            break;
        }
        if (kind == MIG_CONN_MULTIFD) {
            add_channel(in, &c, peer);
        } else if (kind == MIG_CONN_PREEMPT) {
            add_preempt(in, &c, peer);
        } else if (kind == MIG_CONN_CPR) {
            error_report("incoming migration: %s: a cpr channel after the "
                         "migration stream began; connection closed",
                         peer);
            mig_conn_close(&c, NULL);
        } else {
            error_report("incoming migration: %s: a second migration stream; "
                         "only one is loaded; connection closed",
                         peer);
            mig_conn_close(&c, NULL);
        }
    }
    mig_acceptor_clear(&in->acc);
    /* A quit: the load may be waiting for channels or syncs. */
    if (quitting(in)) {
        ram_state_multifd_recv_cancel(in->rs);
    }
    return NULL;
}

/* Capability postcopy-blocktime, as this end has it. */
static bool blocktime_on(struct incoming *in)
{
    struct mig_config c;
    if (!in->mig) {
        return false;
    }
    migration_get_config(in->mig, &c);
    return c.caps[MIG_CAP_POSTCOPY_BLOCKTIME];
}

static void set_status(struct incoming *in, enum mig_status st)
{
    pthread_mutex_lock(&in->lock);
    in->status = st;
    pthread_mutex_unlock(&in->lock);
}

static enum mig_status status_of(struct incoming *in)
{
    pthread_mutex_lock(&in->lock);
    enum mig_status st = (enum mig_status)in->status;
    pthread_mutex_unlock(&in->lock);
    return st;
}

/* A postcopy state, told to whoever listens (events). */
static void set_postcopy_status(struct incoming *in, enum mig_status st)
{
    set_status(in, st);
    if (in->on_status) {
        in->on_status(in->opaque, st);
    }
}

void incoming_query(struct incoming *in, struct mig_info *mi)
{
    memset(mi, 0, sizeof(*mi));
    pthread_mutex_lock(&in->lock);
    mi->status = (enum mig_status)in->status;
    pthread_mutex_unlock(&in->lock);
    if (mi->status != MIG_STATUS_NONE && blocktime_on(in)) {
        mi->has_blocktime = ram_incoming_blocktime(in->rs, &mi->bt);
        if (!mi->has_blocktime) {
            memset(&mi->bt, 0, sizeof(mi->bt));
            mi->bt.nvcpus = machine_smp(in->m);
            mi->has_blocktime = true;
        }
    }
}

static bool rp_send(struct incoming *in, enum rp_msg type, uint32_t v,
                    Error **errp)
{
    pthread_mutex_lock(&in->rp_lock);
    bool ok = rp_send_u32(in->rp_fd, type, v, errp);
    pthread_mutex_unlock(&in->rp_lock);
    return ok;
}

/* The answer to a PING.  The return path is the stream's own socket: if
 * the link died (a migrate-pause as the postcopy switch goes), reading
 * the stream says so next, and postcopy pauses rather than the load
 * failing on a PONG. */
static void pong(struct incoming *in, uint32_t value)
{
    Error *err = NULL;
    if (!rp_send(in, RP_MSG_PONG, value, &err)) {
        error_free(err);
    }
}

/* Postcopy: the guest faulted on a missing page (fault thread).  No
 * link (paused), or one that just died: the request is asked again after
 * the recovery, so it is no error here (the load sees the link die). */
static bool request_page(void *opaque, const char *name, uint64_t start,
                         uint32_t len, Error **errp)
{
    struct incoming *in = opaque;
    (void)errp;
    pthread_mutex_lock(&in->rp_lock);
    if (in->rp_fd >= 0) {
        Error *err = NULL;
        if (!rp_send_req_pages(in->rp_fd, name, start, len, &err)) {
            error_free(err);
        }
    }
    pthread_mutex_unlock(&in->rp_lock);
    return true;
}

/* The machine was loaded: the drives become ours, and the guest runs if
 * the source's did (unless -S). */
static bool take_over(struct incoming *in, Error **errp)
{
    const char *src = globalstate_get(in->gs);
    bool run = in->autostart && (!src || strcmp(src, "running") == 0);
    /* What block migration wrote is on disk before the guest runs (a
     * drive still inactive has nothing to flush). */
    for (size_t i = 0; i < in->ndrives; i++) {
        if (!blk_flush(in->drives[i], errp)) {
            return false;
        }
    }
    /* The source let go of the drives before its last sections. */
    return blk_activate_all(in->drives, in->ndrives, errp) &&
        (run ? vm_start_after_incoming(in->m, errp)
             : machine_set_runstate(in->m, RUN_STATE_PAUSED, errp));
}

static bool postcopy_allowed(struct incoming *in, Error **errp)
{
    struct mig_config c;
    if (in->mig) {
        migration_get_config(in->mig, &c);
    }
    if (!in->mig || !c.caps[MIG_CAP_POSTCOPY_RAM]) {
        error_setg(errp,
                   "POSTCOPY_ADVISE: capability postcopy-ram is off on this "
                   "destination (migrate_set_capability postcopy-ram on "
                   "here too, before the source connects)");
        return false;
    }
    return true;
}

/* The postcopy commands (ram/ram-postcopy.h says what each does here). */
static bool on_postcopy(struct incoming *in, uint16_t cmd, const uint8_t *data,
                        uint16_t len, Error **errp)
{
    switch (cmd) {
    case STREAM_CMD_POSTCOPY_ADVISE:
        return postcopy_allowed(in, errp) &&
            ram_incoming_advise(in->rs, data, len, errp) &&
            ram_incoming_prepare_listen(in->rs, request_page, in,
                                        blocktime_on(in), errp);
    case STREAM_CMD_POSTCOPY_RAM_DISCARD:
        return ram_incoming_discard(in->rs, data, len, errp);
    case STREAM_CMD_POSTCOPY_LISTEN:
        if (in->rp_fd < 0) {
            error_setg(errp,
                       "POSTCOPY_LISTEN without a return path to ask "
                       "for pages on");
            return false;
        }
        if (!ram_incoming_listen(in->rs, request_page, in, blocktime_on(in),
                                 errp)) {
            return false;
        }
        /* Pages queued in a large receive buffer would delay the one
         * the guest asks for (tcp). */
        mig_socket_favor_latency(in->rp_fd);
        in->postcopy = true;
        set_postcopy_status(in, MIG_STATUS_POSTCOPY_ACTIVE);
        /* As QEMU, no vmdesc ends a postcopy stream. */
        in->lo.no_vmdesc = true;
        return true;
    default: /* RUN */
        if (!in->postcopy || in->ran) {
            error_setg(errp, "POSTCOPY_RUN %s",
                       in->ran ? "a second time"
                               : "without POSTCOPY_LISTEN before it");
            return false;
        }
        /* No decoded code is stale: POSTCOPY_ADVISE invalidated it all,
         * and no vCPU ran here since. */
        if (!take_over(in, errp)) {
            return false;
        }
        in->ran = true;
        if (in->pong_due) {
            in->pong_due = false;
            pong(in, in->pong_value);
        }
        return true;
    }
}

/* Postcopy recovery: the source asks which pages of a block came. */
static bool send_recv_bitmap(struct incoming *in, const uint8_t *data,
                             uint16_t len, Error **errp)
{
    if (status_of(in) != MIG_STATUS_POSTCOPY_RECOVER) {
        error_setg(errp, "RECV_BITMAP outside a postcopy recovery");
        return false;
    }
    const char *name;
    uint64_t npages;
    unsigned long *bits =
        ram_incoming_received(in->rs, data, len, &name, &npages, errp);
    if (!bits) {
        return false;
    }
    pthread_mutex_lock(&in->rp_lock);
    bool ok = rp_send_recv_bitmap(in->rp_fd, name, bits, npages, errp);
    pthread_mutex_unlock(&in->rp_lock);
    free(bits);
    return ok;
}

/* Postcopy recovery: the source goes on; what the guest asked for and
 * did not get is asked for again. */
static bool resume(struct incoming *in, Error **errp)
{
    if (status_of(in) != MIG_STATUS_POSTCOPY_RECOVER) {
        error_setg(errp, "POSTCOPY_RESUME outside a postcopy recovery");
        return false;
    }
    set_postcopy_status(in, MIG_STATUS_POSTCOPY_ACTIVE);
    if (!rp_send(in, RP_MSG_RESUME_ACK, RP_RESUME_ACK_VALUE, errp)) {
        return false;
    }
    ram_incoming_resume(in->rs);
    return true;
}

/* COMMAND records the stream carries: the return path's (the source
 * opens it and pings), postcopy's and its recovery's; COLO is not
 * here. */
static bool on_command(void *opaque, uint16_t cmd, const uint8_t *data,
                       uint16_t len, Error **errp)
{
    struct incoming *in = opaque;
    switch (cmd) {
    case STREAM_CMD_POSTCOPY_ADVISE:
    case STREAM_CMD_POSTCOPY_RAM_DISCARD:
    case STREAM_CMD_POSTCOPY_LISTEN:
    case STREAM_CMD_POSTCOPY_RUN:
        return on_postcopy(in, cmd, data, len, errp);
    case STREAM_CMD_OPEN_RETURN_PATH:
        if (!in->conn.is_socket) {
            error_setg(errp,
                       "OPEN_RETURN_PATH: the stream does not come over a "
                       "socket, so no return path can go back");
            return false;
        }
        in->rp_fd = in->conn.fd;
        return true;
    case STREAM_CMD_RECV_BITMAP:
        return send_recv_bitmap(in, data, len, errp);
    case STREAM_CMD_POSTCOPY_RESUME:
        return resume(in, errp);
    case STREAM_CMD_PING:
        if (len != 4) {
            error_setg(errp, "PING with %u bytes (it has 4)", len);
            return false;
        }
        if (in->rp_fd < 0) {
            error_setg(errp, "PING %u without a return path to answer on",
                       be32_get(data));
            return false;
        }
        if (in->postcopy && !in->ran && !in->pong_due) {
            in->pong_due = true;
            in->pong_value = be32_get(data);
            return true;
        }
        pong(in, be32_get(data));
        return true;
    default:
        error_setg(errp,
                   "command %s (%u): not supported by this destination "
                   "(no COLO here)",
                   stream_command_name(cmd), cmd);
        return false;
    }
}

/* RAM was handed over (cpr-transfer, cpr-exec): the stream that
 * follows leaves shared RAM out, as with x-ignore-shared. */
static bool become_cpr(struct incoming *in, Error **errp)
{
    struct ram_params rp = { .ignore_shared = true };
    in->cpr = true;
    section_registry_ignore_shared(in->reg, true);
    return ram_state_configure(in->rs, &rp, errp);
}

/* cpr-transfer: the source's RAM replaces this machine's. */
static bool take_memory(struct incoming *in, struct mig_conn *c,
                        const char *peer, Error **errp)
{
    bool ok = !in->cpr;
    if (!ok) {
        error_setg(errp, "%s: a second cpr channel", peer);
    } else {
        ok = cpr_recv_memory(c->fd, machine_memory(in->m), errp);
        if (!ok) {
            error_prepend(errp, "cpr-transfer from %s: ", peer);
        }
    }
    mig_conn_close(c, NULL);
    return ok && become_cpr(in, errp);
}

/* Before the main stream: multifd channels that come first join the
 * receiver, a cpr channel hands RAM over.  false when woken (quit), the
 * listener failed or RAM could not be taken over. */
static bool wait_main(struct incoming *in, struct mig_conn *main, Error **errp)
{
    for (;;) {
        enum mig_conn_kind kind;
        char peer[96];
        int r =
            mig_acceptor_next(&in->acc, main, &kind, peer, sizeof(peer), errp);
        if (r <= 0) {
            if (r == 0) {
                error_setg(errp, "stopped while waiting for the source");
            }
            return false;
        }
        if (kind == MIG_CONN_MAIN) {
            return true;
        }
        if (kind == MIG_CONN_CPR) {
            if (!take_memory(in, main, peer, errp)) {
                return false;
            }
            continue;
        }
        if (kind == MIG_CONN_PREEMPT) {
            add_preempt(in, main, peer);
            continue;
        }
        add_channel(in, main, peer);
    }
}

/* Ends the acceptor thread (multifd channels on the listener). */
static void stop_acceptor(struct incoming *in)
{
    if (in->acceptor_on) {
        char b = 1;
        (void)!write(in->wake[1], &b, 1);
        pthread_join(in->acceptor, NULL);
        in->acceptor_on = false;
        /* The byte was for it: later waits start afresh (a quit sets
         * quitting before it writes, so none is lost). */
        while (read(in->wake[0], &b, 1) == 1) {
        }
    }
}

/* The listener and connection of a link that died go. */
static void drop_link(struct incoming *in, Channel *dead)
{
    pthread_mutex_lock(&in->rp_lock);
    in->rp_fd = -1;
    pthread_mutex_unlock(&in->rp_lock);
    chan_close(dead, NULL);
    in->f = NULL;
    ram_incoming_preempt_end(in->rs, false);
    stop_acceptor(in);
    if (in->lfd >= 0) {
        mig_acceptor_clear(&in->acc);
        close(in->lfd);
        in->lfd = -1;
    }
    struct mig_conn conn = mig_conn_take(&in->conn, &in->lock);
    mig_conn_close(&conn, NULL);
}

/* Waits for migrate_recover and takes what it set up: true, or false
 * when quitting. */
static bool wait_recover(struct incoming *in)
{
    pthread_mutex_lock(&in->lock);
    while (!in->recover_ready && !in->quitting) {
        pthread_cond_wait(&in->cond, &in->lock);
    }
    bool ready = in->recover_ready && !in->quitting;
    if (ready) {
        mig_uri_clear(&in->uri);
        in->uri = in->recover_uri;
        in->lfd = in->recover_lfd;
        in->conn = in->recover_conn;
        memset(&in->recover_uri, 0, sizeof(in->recover_uri));
        in->recover_lfd = -1;
        in->recover_conn.fd = -1;
        in->recover_ready = false;
    }
    pthread_mutex_unlock(&in->lock);
    return ready;
}

/* The source's new connection on what migrate_recover set up: false
 * when quitting. */
static bool accept_again(struct incoming *in, struct mig_conn *c, Error **errp)
{
    if (in->lfd < 0) {
        /* fd: a connected socket */
        pthread_mutex_lock(&in->lock);
        *c = in->conn;
        pthread_mutex_unlock(&in->lock);
        return true;
    }
    mig_acceptor_init(&in->acc, in->lfd, in->wake[0]);
    in->acc.resume = true;
    for (;;) {
        enum mig_conn_kind kind;
        char peer[96];
        int r = mig_acceptor_next(&in->acc, c, &kind, peer, sizeof(peer), errp);
        if (r <= 0) {
            if (r == 0) {
                error_setg(errp, "stopped while waiting for the source");
            }
            return false;
        }
        if (kind == MIG_CONN_MAIN) {
            return true;
        }
        if (kind == MIG_CONN_PREEMPT) {
            add_preempt(in, c, peer);
            continue;
        }
        error_report("incoming migration: %s: not the paused migration's "
                     "stream; connection closed",
                     peer);
        mig_conn_close(c, NULL);
    }
}

/* The stream broke after the switch (stream_load_opts.recover): the guest
 * runs here and waits for its missing pages, so this end pauses
 * (postcopy-paused) until migrate_recover names where the source's
 * migrate -r comes, then loads on from the new link. */
static Channel *recover(void *ctx, Channel *dead, const char *why)
{
    struct incoming *in = ctx;
    if (!in->ran || quitting(in)) {
        return NULL;
    }
    char reason[512];
    snprintf(reason, sizeof(reason), "%s", why);
    for (;;) {
        drop_link(in, dead);
        dead = NULL;
        ram_incoming_pause(in->rs);
        set_postcopy_status(in, MIG_STATUS_POSTCOPY_PAUSED);
        error_report("incoming migration: postcopy paused: %s (the guest "
                     "waits for its missing pages: migrate_recover URI here, "
                     "then migrate -r URI at the source)",
                     reason);
        if (!wait_recover(in)) {
            return NULL;
        }
        struct mig_conn c;
        Error *err = NULL;
        bool ok = accept_again(in, &c, &err);
        pthread_mutex_lock(&in->lock);
        in->recover_triggered = false;
        pthread_mutex_unlock(&in->lock);
        if (!ok) {
            if (quitting(in)) {
                error_free(err);
                return NULL;
            }
            snprintf(reason, sizeof(reason), "recovery failed: %s",
                     error_get_pretty(err));
            error_free(err);
            continue;
        }
        pthread_mutex_lock(&in->lock);
        in->conn = c;
        pthread_mutex_unlock(&in->lock);
        mig_socket_favor_latency(c.fd);
        in->f = chan_new_socket(c.fd, false, false, "incoming");
        pthread_mutex_lock(&in->rp_lock);
        in->rp_fd = c.fd;
        pthread_mutex_unlock(&in->rp_lock);
        /* A preempt channel may follow the main one there. */
        in->acceptor_on = in->lfd >= 0 &&
            pthread_create(&in->acceptor, NULL, acceptor_thread, in) == 0;
        set_postcopy_status(in, MIG_STATUS_POSTCOPY_RECOVER);
        return in->f;
    }
}

static void *incoming_thread(void *opaque)
{
    struct incoming *in = opaque;
    Error *err = NULL;
    bool ok = false;
    /* x-ignore-shared as this end has it: the stream must agree. */
    struct ram_params rp = { .ignore_shared = in->ignore_shared,
                             .mapped_threads = in->mapped_threads,
                             .direct_io = in->direct_io };
    in->cpr = false;
    in->rp_fd = -1;
    in->postcopy = in->ran = in->pong_due = false;
    section_registry_ignore_shared(in->reg, in->ignore_shared);
    if (!ram_state_configure(in->rs, &rp, &err)) {
        goto out;
    }
    if (in->uri.kind == MIG_URI_MEMFD) {
        /* cpr-exec: RAM's inherited descriptors, then the stream; first,
         * so that the scan of RAM below skips what was handed over. */
        if (!cpr_read_memory(in->conn.fd, machine_memory(in->m), &err) ||
            !become_cpr(in, &err)) {
            goto out;
        }
    }
    ram_state_set_fresh(in->rs, true);
    if (in->lfd >= 0) {
        ram_state_multifd_recv_begin(in->rs);
        struct mig_conn c;
        if (!wait_main(in, &c, &err)) {
            goto out;
        }
        pthread_mutex_lock(&in->lock);
        in->conn = c;
        bool q = in->quitting;
        pthread_mutex_unlock(&in->lock);
        if (q) {
            error_setg(&err, "stopped");
            goto out;
        }
        /* After a cpr channel no RAM comes, so no multifd channel: no
         * thread to wait for when the guest should start. */
        in->acceptor_on = !in->cpr &&
            pthread_create(&in->acceptor, NULL, acceptor_thread, in) == 0;
    }
    set_status(in, MIG_STATUS_ACTIVE);
    in->f = in->conn.is_socket
        ? chan_new_socket(in->conn.fd, false, false, "incoming")
        : chan_new_fd(in->conn.fd, false, false, "incoming");
    in->lo = (struct stream_load_opts){ .command = on_command,
                                        .command_ctx = in,
                                        .recover = recover };
    ok = stream_load(in->reg, in->f, &in->lo, &err);
    if (in->f) {
        chan_close(in->f, NULL);
        in->f = NULL;
    }
    /* Every page is in: RAM is ours again (a thread still waiting for a
     * page after a failure goes on with what the page holds).  The preempt
     * channel's last pages came before its EOS, which the source sent
     * before the end of the main stream. */
    if (in->postcopy) {
        /* Without EOS the channel broke, and the source sent its pages on
         * the main stream instead. */
        ram_incoming_preempt_end(in->rs, ok);
    }
    if (in->postcopy && !ram_incoming_postcopy_end(in->rs, ok ? &err : NULL)) {
        ok = false;
    }
    ram_incoming_unprepare(in->rs); /* ADVISE without LISTEN */
    /* No channel may join a receiver being freed: the acceptor ends
     * first. */
    stop_acceptor(in);
    if (!ram_state_multifd_recv_end(in->rs, ok ? &err : NULL)) {
        ok = false;
    }
    ram_state_set_fresh(in->rs, false);
    if (!ok) {
        goto out;
    }
    ok = in->ran || take_over(in, &err);
out:
    if (in->rp_fd >= 0) {
        /* The source waits for this word before it lets the guest go. */
        Error *rerr = NULL;
        if (!rp_send(in, RP_MSG_SHUT, ok ? 0 : 1, &rerr)) {
            error_report_err(rerr);
        }
        in->rp_fd = -1;
    }
    if (in->lfd >= 0) {
        mig_acceptor_clear(&in->acc);
        close(in->lfd);
        in->lfd = -1;
    }
    if (!ok) {
        ram_state_multifd_recv_end(in->rs, NULL);
        ram_state_set_fresh(in->rs, false);
    }
    section_registry_ignore_shared(in->reg, false);
    struct mig_conn conn = mig_conn_take(&in->conn, &in->lock);
    mig_conn_close(&conn, NULL);
    pthread_mutex_lock(&in->lock);
    in->active = false;
    in->status = ok ? MIG_STATUS_COMPLETED : MIG_STATUS_FAILED;
    bool q = in->quitting;
    pthread_mutex_unlock(&in->lock);
    if (!ok && in->ran) {
        error_prepend(&err,
                      "postcopy failed after the guest started here; its "
                      "memory is incomplete and the guest is lost: ");
    }
    /* Nobody is told of a load that a quit cut short. */
    if (in->done && !q) {
        in->done(in->opaque, ok, ok ? NULL : error_get_pretty(err));
    }
    error_free(err);
    return NULL;
}

static void close_wake(struct incoming *in)
{
    for (int i = 0; i < 2; i++) {
        if (in->wake[i] >= 0) {
            close(in->wake[i]);
            in->wake[i] = -1;
        }
    }
}

bool incoming_start(struct incoming *in, const char *uri, Error **errp)
{
    if (in->started) {
        error_setg(errp, "an incoming migration was already started");
        return false;
    }
    if (!mig_uri_parse(uri, &in->uri, errp)) {
        return false;
    }
    if (!machine_set_runstate(in->m, RUN_STATE_INMIGRATE, errp)) {
        mig_uri_clear(&in->uri);
        return false;
    }
    if (pipe2(in->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        error_setg_errno(errp, errno, "incoming migration: pipe");
        in->wake[0] = in->wake[1] = -1;
        mig_uri_clear(&in->uri);
        return false;
    }
    struct mig_conn c;
    if (!mig_listen(&in->uri, in->fds, &in->lfd, &c, errp)) {
        close_wake(in);
        mig_uri_clear(&in->uri);
        return false;
    }
    if (in->lfd >= 0) {
        mig_acceptor_init(&in->acc, in->lfd, in->wake[0]);
    }
    in->conn = c;
    in->active = true;
    in->status = MIG_STATUS_SETUP;
    if (pthread_create(&in->thread, NULL, incoming_thread, in) != 0) {
        error_setg(errp, "cannot start the incoming migration thread");
        in->active = false;
        mig_conn_abort(&in->conn);
        mig_conn_close(&in->conn, NULL);
        if (in->lfd >= 0) {
            close(in->lfd);
            in->lfd = -1;
        }
        close_wake(in);
        mig_uri_clear(&in->uri);
        return false;
    }
    in->started = true;
    return true;
}

void incoming_quit(struct incoming *in)
{
    if (in->started) {
        /* Stop waiting for connections, and a load in progress: its
         * stream is shut down or its exec command stopped. */
        pthread_mutex_lock(&in->lock);
        in->quitting = true;
        if (in->active) {
            mig_conn_abort(&in->conn);
        }
        pthread_cond_broadcast(&in->cond);
        pthread_mutex_unlock(&in->lock);
        char b = 1;
        (void)!write(in->wake[1], &b, 1);
        pthread_join(in->thread, NULL);
        in->started = false;
    }
}

void incoming_destroy(struct incoming *in)
{
    incoming_quit(in);
    if (in->lfd >= 0) {
        close(in->lfd);
        in->lfd = -1;
    }
    close_wake(in);
    mig_uri_clear(&in->uri);
    if (in->recover_ready) {
        /* migrate_recover came as the load ended. */
        if (in->recover_lfd >= 0) {
            close(in->recover_lfd);
        }
        mig_conn_close(&in->recover_conn, NULL);
        mig_uri_clear(&in->recover_uri);
        in->recover_ready = false;
    }
    pthread_cond_destroy(&in->cond);
    pthread_mutex_destroy(&in->lock);
    pthread_mutex_destroy(&in->rp_lock);
}

bool incoming_recover(struct incoming *in, const char *uri, Error **errp)
{
    struct mig_uri u;
    if (!mig_uri_parse(uri, &u, errp)) {
        return false;
    }
    if (!mig_uri_is_socket(&u) && u.kind != MIG_URI_FD) {
        error_setg(errp,
                   "postcopy recovery needs a socket (tcp:, unix: or fd: of "
                   "a socket): the source's pages and this end's answers "
                   "share it (got '%s')",
                   uri);
        mig_uri_clear(&u);
        return false;
    }
    pthread_mutex_lock(&in->lock);
    bool ok = false;
    if (in->status != MIG_STATUS_POSTCOPY_PAUSED) {
        error_setg(errp,
                   "Migrate recover can only be run when postcopy is paused.");
    } else if (in->recover_triggered) {
        error_setg(errp, "Migrate recovery is triggered already");
    } else {
        in->recover_triggered = ok = true;
    }
    pthread_mutex_unlock(&in->lock);
    if (!ok) {
        mig_uri_clear(&u);
        return false;
    }
    /* Listening before this returns: the source's migrate -r may follow
     * at once. */
    int lfd = -1;
    struct mig_conn c = { .fd = -1 };
    ok = mig_listen(&u, in->fds, &lfd, &c, errp);
    pthread_mutex_lock(&in->lock);
    if (ok) {
        in->recover_uri = u;
        in->recover_lfd = lfd;
        in->recover_conn = c;
        in->recover_ready = true;
        pthread_cond_broadcast(&in->cond);
    } else {
        in->recover_triggered = false;
        mig_uri_clear(&u);
    }
    pthread_mutex_unlock(&in->lock);
    return ok;
}

bool incoming_pause(struct incoming *in, Error **errp)
{
    pthread_mutex_lock(&in->lock);
    bool ok = in->status == MIG_STATUS_POSTCOPY_ACTIVE && in->active;
    if (ok) {
        /* The load sees a dead link and pauses. */
        mig_conn_abort(&in->conn);
    } else {
        error_setg(errp,
                   "migrate-pause is currently only supported during "
                   "postcopy-active state");
    }
    pthread_mutex_unlock(&in->lock);
    return ok;
}
