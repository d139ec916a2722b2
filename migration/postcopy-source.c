/* The source's side of postcopy: the switch (guest stopped, discards,
 * the PACKAGED blob), every page left after it, and pauses and recoveries
 * of a link that died.  Called from the migration thread (migration.c). */
#include "migration/migration-priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/machine.h"
#include "migration/accept.h"
#include "migration/globalstate.h"
#include "migration/return-path.h"
#include "vmstate/stream-format.h"
#include "vmstate/stream.h"
#include "util/be.h"
#include "util/clock.h"
#include "util/fault.h"

/* The PING that follows the discards sent before the guest stops. */
#define POSTCOPY_PING_DISCARDED 4
/* How long the guest runs on here while the destination discards; past
 * it, the destination discards the rest during the switch. */
#define POSTCOPY_DISCARD_WAIT_MS 2000

/* Before the guest stops for the switch: the destination drops the pages
 * sent and dirty again while the guest still runs here (freeing tens of
 * thousands of pages takes it milliseconds), and its PONG says it did;
 * the switch then names only the pages dirtied since.  No page goes in
 * between: the destination has no copy of these for a delta (xbzrle).
 * The socket's buffers shrink first, so the PONG also says that what
 * precopy queued is through: the switch's blob, and later a page asked
 * for, wait behind little. */
bool postcopy_discard_early(struct migration *mig, Channel *f, Error **errp)
{
    mig_socket_favor_latency(chan_get_fd(f));
    uint64_t pages;
    if (!ram_postcopy_send_discards(mig->rs, f, &pages, errp)) {
        return false;
    }
    if (!mig->rp.started) {
        return true;
    }
    uint8_t ping[4];
    be32_put(ping, POSTCOPY_PING_DISCARDED);
    stream_put_command(f, STREAM_CMD_PING, ping, sizeof(ping));
    chan_flush(f);
    if (!chan_check(f, errp)) {
        return false;
    }
    Error *err = NULL;
    bool answered = rp_reader_wait_pong(&mig->rp, POSTCOPY_PING_DISCARDED,
                                        POSTCOPY_DISCARD_WAIT_MS, &err);
    char why[512];
    if (atomic_load(&mig->cancel)) {
        error_free(err);
        error_setg(errp, "cancelled");
        return false;
    }
    if (!answered && rp_reader_broken(&mig->rp, why, sizeof(why))) {
        error_propagate(errp, err);
        return false;
    }
    error_free(err); /* only slow: the switch waits for it then */
    return true;
}

/* The postcopy switch's first half: the guest stops (*t0: when), the
 * drives go, the destination drops the pages dirtied since the early
 * discard. */
static bool postcopy_stop(struct migration *mig, Channel *f, bool *stopped,
                          bool *inactivated, uint64_t *t0, Error **errp)
{
    mig_set_status(mig, MIG_STATUS_POSTCOPY_ACTIVE);
    /* As QEMU: pause-before-switchover pauses the postcopy switch too. */
    if (!mig_stop_guest(mig, stopped, t0, MIG_STATUS_POSTCOPY_ACTIVE, errp)) {
        return false;
    }
    machine_set_throttle(mig->m, 0);
    /* A cancel that came as the switch began still keeps the guest. */
    if (atomic_load(&mig->cancel)) {
        error_setg(errp, "cancelled");
        return false;
    }
    if (!fault_inject("migration-switchover", errp)) {
        return false;
    }
    if (mig->ndrives && !blk_is_inactive(mig->drives[0])) {
        if (!blk_inactivate_all(mig->drives, mig->ndrives, errp)) {
            return false;
        }
        *inactivated = true;
    }
    uint64_t pages;
    return ram_postcopy_send_discards(mig->rs, f, &pages, errp);
}

/* The second half: one PACKAGED blob (written into blob first) makes the
 * destination listen for pages, load the devices and run the guest.
 * *switched once it went. */
static bool postcopy_send_package(struct migration *mig, Channel *f,
                                  Channel *blob, bool *switched, Error **errp)
{
    /* Requests may come as soon as the blob is there. */
    ram_postcopy_begin(mig->rs);
    static const uint8_t ping2[4] = { 0, 0, 0, 2 }, ping3[4] = { 0, 0, 0, 3 };
    stream_put_command(f, STREAM_CMD_PING, ping2, sizeof(ping2));
    stream_put_command(blob, STREAM_CMD_POSTCOPY_LISTEN, NULL, 0);
    if (!stream_save_device_sections(mig->reg, blob, errp)) {
        return false;
    }
    stream_put_command(blob, STREAM_CMD_PING, ping3, sizeof(ping3));
    stream_put_command(blob, STREAM_CMD_POSTCOPY_RUN, NULL, 0);
    chan_flush(blob);
    size_t len = 0;
    uint8_t *data = chan_mem_take(blob, &len);
    bool ok = len <= STREAM_PACKAGED_MAX;
    if (!ok) {
        error_setg(errp,
                   "postcopy: the device state is %zu bytes, more than a "
                   "PACKAGED blob carries (%u)",
                   len, STREAM_PACKAGED_MAX);
    } else {
        uint8_t n[4];
        be32_put(n, (uint32_t)len);
        stream_put_command(f, STREAM_CMD_PACKAGED, n, sizeof(n));
        chan_put_buffer(f, data, len);
        chan_flush(f);
        ok = chan_check(f, errp);
        *switched = ok;
    }
    free(data);
    return ok;
}

/* The postcopy switch (QEMU's postcopy_start): the guest stops, the
 * drives go, the destination drops the pages sent and dirty again, then
 * one PACKAGED blob makes it listen for pages, load the devices and run
 * the guest.  *switched once the blob went: from then on the guest is
 * the destination's. */
bool postcopy_switch(struct migration *mig, Channel *f, bool *stopped,
                     bool *inactivated, bool *switched, Error **errp)
{
    /* Made while the guest runs: a new channel's buffer costs a tenth of
     * a millisecond. */
    Channel *blob = chan_new_mem_writer();
    uint64_t t0;
    bool ok = postcopy_stop(mig, f, stopped, inactivated, &t0, errp);
    if (ok) {
        ok = postcopy_send_package(mig, f, blob, switched, errp);
        pthread_mutex_lock(&mig->lock);
        mig->downtime_ns = clock_mono_ns() - t0;
        pthread_mutex_unlock(&mig->lock);
    }
    chan_close(blob, NULL);
    return ok;
}

/* After the switch: every page left, requested ones first, then the END
 * section and EOF.  The return path breaking (the destination died)
 * ends it too. */
static bool postcopy_run(struct migration *mig, Channel *f, Error **errp)
{
    uint64_t bw = mig_live_param(mig, MIG_PARAM_MAX_POSTCOPY_BANDWIDTH);
    chan_set_rate_limit(f, bw ? bw / (1000000000ull / MIG_MEASURE_NS) : 0);
    uint64_t start = clock_mono_ns(), bytes = chan_tell(f);
    for (;;) {
        char why[256];
        if (atomic_load(&mig->cancel)) {
            error_setg(errp, "cancelled");
            return false;
        }
        if (rp_reader_broken(&mig->rp, why, sizeof(why))) {
            error_setg(errp, "%s", why);
            return false;
        }
        int r = stream_save_iterate(mig->reg, f, errp);
        if (r < 0) {
            return false;
        }
        struct ram_stats st;
        ram_state_get_stats(mig->rs, &st);
        uint64_t now = clock_mono_ns();
        pthread_mutex_lock(&mig->lock);
        mig->ram_final = st;
        if (now - start >= MIG_MEASURE_NS) {
            mig->mbps = (double)(chan_tell(f) - bytes) * 8 * 1000 /
                (double)(now - start);
            start = now;
            bytes = chan_tell(f);
        }
        pthread_mutex_unlock(&mig->lock);
        if (r == 1) {
            break;
        }
        if (chan_rate_limited(f) && !chan_has_error(f)) {
            chan_rate_limit_wait(f);
        }
    }
    /* The preempt channel's pages are all out before the main stream
     * ends: the destination drains it then. */
    return ram_postcopy_preempt_end(mig->rs, errp) &&
        stream_save_complete_postcopy(mig->reg, f, errp);
}

/* postcopy-preempt: a second connection, for the pages the destination
 * asks for; it says what it is by its first bytes. */
bool postcopy_connect_preempt(struct migration *mig, Error **errp)
{
    struct mig_conn c;
    if (!mig_connect(&mig->uri, mig->fds, &c, errp)) {
        error_prepend(errp, "postcopy-preempt channel: ");
        return false;
    }
    pthread_mutex_lock(&mig->lock);
    mig->pconn = c;
    pthread_mutex_unlock(&mig->lock);
    mig->pf = chan_new_socket(c.fd, true, false, "postcopy-preempt");
    chan_put_buffer(mig->pf, POSTCOPY_PREEMPT_MAGIC, 4);
    chan_flush(mig->pf);
    if (!chan_check(mig->pf, errp)) {
        error_prepend(errp, "postcopy-preempt channel: ");
        return false;
    }
    ram_postcopy_set_preempt(mig->rs, mig->pf);
    return true;
}

/* The preempt channel goes (the return path's thread is stopped). */
void postcopy_drop_preempt(struct migration *mig)
{
    ram_postcopy_set_preempt(mig->rs, NULL);
    if (mig->pf) {
        chan_close(mig->pf, NULL);
        mig->pf = NULL;
    }
    struct mig_conn c = mig_conn_take(&mig->pconn, &mig->lock);
    if (c.fd >= 0) {
        mig_conn_close(&c, NULL);
    }
}

/* The main connection, its channel and the return path go (postcopy
 * recovery: the link died). */
static void drop_link(struct migration *mig, Channel **fp)
{
    rp_reader_stop(&mig->rp);
    postcopy_drop_preempt(mig);
    if (*fp) {
        chan_close(*fp, NULL);
    }
    *fp = mig->f = NULL;
    struct mig_conn conn = mig_conn_take(&mig->conn, &mig->lock);
    mig_conn_close(&conn, NULL);
}

/* migrate -r (which set postcopy-recover): the new URI, or NULL when
 * cancelled (quit). */
static char *wait_resume(struct migration *mig)
{
    pthread_mutex_lock(&mig->lock);
    while (!mig->resume_uri && !atomic_load(&mig->cancel)) {
        pthread_cond_wait(&mig->cond, &mig->lock);
    }
    char *uri = mig->resume_uri;
    mig->resume_uri = NULL;
    pthread_mutex_unlock(&mig->lock);
    if (atomic_load(&mig->cancel)) {
        free(uri);
        return NULL;
    }
    return uri;
}

/* Postcopy recovery over a new link to uri: RECV_BITMAP for every block,
 * each block's received pages come back and whatever did not arrive is
 * dirty again; then RESUME, and the destination's RESUME_ACK. */
static bool resume_link(struct migration *mig, const char *uri, Channel **fp,
                        Error **errp)
{
    struct mig_uri u;
    if (!mig_uri_parse(uri, &u, errp)) {
        return false;
    }
    pthread_mutex_lock(&mig->lock);
    struct mig_uri old = mig->uri;
    mig->uri = u;
    pthread_mutex_unlock(&mig->lock);
    mig_uri_clear(&old);
    /* The preempt channel first: the destination takes connections on the
     * new listener until the main one came. */
    if ((mig->run.caps[MIG_CAP_POSTCOPY_PREEMPT] &&
         !postcopy_connect_preempt(mig, errp)) ||
        !mig_connect_main(mig, errp)) {
        return false;
    }
    *fp = mig->f;
    mig_socket_favor_latency(chan_get_fd(*fp));
    int n = mig_start_return_path(mig, errp)
        ? ram_postcopy_send_recv_bitmaps(mig->rs, *fp, errp)
        : -1;
    if (n < 0 ||
        !rp_reader_wait(&mig->rp, (uint32_t)n, 0, RP_SHUT_TIMEOUT_MS, errp)) {
        return false;
    }
    ram_postcopy_resume(mig->rs);
    stream_put_command(*fp, STREAM_CMD_POSTCOPY_RESUME, NULL, 0);
    chan_flush(*fp);
    return chan_check(*fp, errp) &&
        rp_reader_wait(&mig->rp, (uint32_t)n, 1, RP_SHUT_TIMEOUT_MS, errp);
}

/* The link died after the switch: the guest runs at the destination and
 * its missing pages are here, so both ends wait (postcopy-paused) for a
 * new link (migrate_recover there, migrate -r here) and go on over it.
 * false when quitting (which loses the guest). */
static bool postcopy_pause(struct migration *mig, Channel **fp, const char *why,
                           Error **errp)
{
    char reason[512];
    snprintf(reason, sizeof(reason), "%s", why);
    for (;;) {
        drop_link(mig, fp);
        ram_postcopy_pause(mig->rs);
        pthread_mutex_lock(&mig->lock);
        snprintf(mig->error, sizeof(mig->error), "%s", reason);
        pthread_mutex_unlock(&mig->lock);
        mig_set_status(mig, MIG_STATUS_POSTCOPY_PAUSED);
        error_report("migration: postcopy paused: %s (the guest waits at the "
                     "destination for its missing pages: migrate_recover "
                     "URI there, then migrate -r URI here)",
                     reason);
        char *uri = wait_resume(mig);
        if (!uri) {
            error_setg(errp, "stopped while postcopy was paused (%s)", reason);
            return false;
        }
        Error *err = NULL;
        bool ok = resume_link(mig, uri, fp, &err);
        if (ok) {
            free(uri);
            pthread_mutex_lock(&mig->lock);
            mig->error[0] = '\0';
            pthread_mutex_unlock(&mig->lock);
            mig_set_status(mig, MIG_STATUS_POSTCOPY_ACTIVE);
            return true;
        }
        snprintf(reason, sizeof(reason), "recovery over '%s' failed: %s", uri,
                 error_get_pretty(err));
        free(uri);
        error_free(err);
    }
}

/* Postcopy to the end, through any number of pauses: a link that breaks
 * pauses, unless the destination said it failed or we are quitting. */
bool postcopy_go(struct migration *mig, Channel **fp, Error **errp)
{
    for (;;) {
        Error *err = NULL;
        if (postcopy_run(mig, *fp, &err)) {
            return true;
        }
        uint32_t said;
        if (atomic_load(&mig->cancel) ||
            rp_reader_said_failed(&mig->rp, &said)) {
            error_propagate(errp, err);
            return false;
        }
        bool ok = postcopy_pause(mig, fp, error_get_pretty(err), errp);
        error_free(err);
        if (!ok) {
            return false;
        }
    }
}
