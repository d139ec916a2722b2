/* The outgoing migration thread and its state machine. */
#include "migration/migration.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "machine/machine.h"
#include "migration/cpr.h"
#include "migration/globalstate.h"
#include "migration/migration-priv.h"
#include "migration/accept.h"
#include "migration/return-path.h"
#include "ram/ram-multifd.h"
#include "vmstate/stream.h"
#include "util/clock.h"
#include "util/fault.h"
#include "util/alloc.h"

static const char *const status_names[MIG_STATUS__MAX] = {
    [MIG_STATUS_NONE] = "none",
    [MIG_STATUS_SETUP] = "setup",
    [MIG_STATUS_ACTIVE] = "active",
    [MIG_STATUS_PRE_SWITCHOVER] = "pre-switchover",
    [MIG_STATUS_DEVICE] = "device",
    [MIG_STATUS_POSTCOPY_ACTIVE] = "postcopy-active",
    [MIG_STATUS_POSTCOPY_PAUSED] = "postcopy-paused",
    [MIG_STATUS_POSTCOPY_RECOVER] = "postcopy-recover",
    [MIG_STATUS_CANCELLING] = "cancelling",
    [MIG_STATUS_CANCELLED] = "cancelled",
    [MIG_STATUS_COMPLETED] = "completed",
    [MIG_STATUS_FAILED] = "failed",
};

const char *mig_status_name(enum mig_status st)
{
    return st < MIG_STATUS__MAX ? status_names[st] : "unknown";
}

bool mig_status_is_active(enum mig_status st)
{
    return st == MIG_STATUS_SETUP || st == MIG_STATUS_ACTIVE ||
        st == MIG_STATUS_PRE_SWITCHOVER || st == MIG_STATUS_DEVICE ||
        st == MIG_STATUS_POSTCOPY_ACTIVE || mig_status_is_postcopy_paused(st) ||
        st == MIG_STATUS_CANCELLING;
}

bool mig_status_is_postcopy_paused(enum mig_status st)
{
    return st == MIG_STATUS_POSTCOPY_PAUSED ||
        st == MIG_STATUS_POSTCOPY_RECOVER;
}

void migration_init(struct migration *mig, struct machine *m,
                    struct section_registry *reg, struct ram_state *rs,
                    struct globalstate *gs, struct fd_table *fds,
                    mig_notify_fn notify, void *opaque)
{
    memset(mig, 0, sizeof(*mig));
    mig->m = m;
    mig->reg = reg;
    mig->rs = rs;
    mig->gs = gs;
    mig->fds = fds;
    mig->notify = notify;
    mig->opaque = opaque;
    mig_config_init(&mig->cfg);
    pthread_mutex_init(&mig->lock, NULL);
    pthread_cond_init(&mig->cond, NULL);
    mig->conn.fd = -1;
    mig->pconn.fd = -1;
}

static void cancel(struct migration *mig, bool even_postcopy);

void migration_destroy(struct migration *mig)
{
    /* Quitting: even a postcopy stops (the guest is lost then). */
    cancel(mig, true);
    pthread_mutex_lock(&mig->lock);
    bool running = mig->thread_running;
    pthread_mutex_unlock(&mig->lock);
    if (running) {
        pthread_join(mig->thread, NULL);
    }
    mig_uri_clear(&mig->uri);
    free(mig->blocker);
    pthread_mutex_destroy(&mig->lock);
    pthread_cond_destroy(&mig->cond);
}

void migration_set_drives(struct migration *mig, BlockDev *const *drives,
                          size_t n)
{
    mig->ndrives = n < MIG_MAX_DRIVES ? n : MIG_MAX_DRIVES;
    memcpy(mig->drives, drives, mig->ndrives * sizeof(*drives));
}

void migration_set_block(struct migration *mig, struct block_mig *bm)
{
    mig->bm = bm;
}

static bool block_on(const struct migration *mig)
{
    return mig->bm && mig->run.caps[MIG_CAP_BLOCK];
}

/* Disk figures for `info migrate` (migration thread). */
static void measure_disk(struct migration *mig)
{
    if (!block_on(mig)) {
        return;
    }
    struct block_mig_stats d;
    block_mig_get_stats(mig->bm, &d);
    pthread_mutex_lock(&mig->lock);
    mig->disk_final = d;
    pthread_mutex_unlock(&mig->lock);
}

static void notify(struct migration *mig, enum mig_status st)
{
    if (mig->notify && mig->run.caps[MIG_CAP_EVENTS]) {
        mig->notify(mig->opaque, st);
    }
}

/* A setting that may change while the migration runs. */
uint64_t mig_live_param(struct migration *mig, enum mig_param p)
{
    pthread_mutex_lock(&mig->lock);
    uint64_t v = mig->cfg.params[p];
    pthread_mutex_unlock(&mig->lock);
    return v;
}

void mig_set_status(struct migration *mig, enum mig_status st)
{
    pthread_mutex_lock(&mig->lock);
    /* A cancel stays cancelling until the thread ends: the thread must
     * not move it on to the next stage of its work. */
    if (mig->status == MIG_STATUS_CANCELLING &&
        (st == MIG_STATUS_ACTIVE || st == MIG_STATUS_PRE_SWITCHOVER ||
         st == MIG_STATUS_DEVICE || st == MIG_STATUS_POSTCOPY_ACTIVE ||
         mig_status_is_postcopy_paused(st))) {
        pthread_mutex_unlock(&mig->lock);
        return;
    }
    mig->status = st;
    pthread_cond_broadcast(&mig->cond);
    pthread_mutex_unlock(&mig->lock);
    notify(mig, st);
}

enum mig_status migration_status(struct migration *mig)
{
    pthread_mutex_lock(&mig->lock);
    enum mig_status st = mig->status;
    pthread_mutex_unlock(&mig->lock);
    return st;
}

static void fail(struct migration *mig, Error *err)
{
    pthread_mutex_lock(&mig->lock);
    if (!mig->error[0]) {
        snprintf(mig->error, sizeof(mig->error), "%s",
                 err ? error_get_pretty(err) : "unknown error");
    }
    pthread_mutex_unlock(&mig->lock);
    error_free(err);
}

/* Auto-converge: when the guest dirtied more than the threshold share of
 * what was sent since the last check, throttle harder. */
static void maybe_throttle(struct migration *mig, uint64_t sent_bytes,
                           uint64_t dirtied_bytes, int *strikes)
{
    uint64_t thr = mig_live_param(mig, MIG_PARAM_THROTTLE_TRIGGER_THRESHOLD);
    if (sent_bytes == 0 || dirtied_bytes * 100 < sent_bytes * thr) {
        *strikes = 0;
        return;
    }
    /* As QEMU: react on the second period in a row. */
    if (++*strikes < 2) {
        return;
    }
    *strikes = 0;
    pthread_mutex_lock(&mig->lock);
    int pct = mig->throttle_pct;
    if (pct == 0) {
        pct = (int)mig->cfg.params[MIG_PARAM_CPU_THROTTLE_INITIAL];
    } else {
        pct += (int)mig->cfg.params[MIG_PARAM_CPU_THROTTLE_INCREMENT];
    }
    if (pct > 99) {
        pct = 99;
    }
    mig->throttle_pct = pct;
    pthread_mutex_unlock(&mig->lock);
    machine_set_throttle(mig->m, pct);
}

bool mig_stop_guest(struct migration *mig, bool *stopped, uint64_t *t0,
                    enum mig_status then, Error **errp)
{
    enum run_state before = machine_runstate(mig->m);
    globalstate_set(mig->gs, runstate_name(before));
    *t0 = clock_mono_ns();
    if (!vm_stop(mig->m, RUN_STATE_FINISH_MIGRATE, errp)) {
        return false;
    }
    *stopped = runstate_is_running(before);
    if (!mig->run.caps[MIG_CAP_PAUSE_BEFORE_SWITCHOVER]) {
        return true;
    }
    mig_set_status(mig, MIG_STATUS_PRE_SWITCHOVER);
    pthread_mutex_lock(&mig->lock);
    while (!mig->continue_ok && !atomic_load(&mig->cancel)) {
        pthread_cond_wait(&mig->cond, &mig->lock);
    }
    pthread_mutex_unlock(&mig->lock);
    if (atomic_load(&mig->cancel)) {
        error_setg(errp, "cancelled");
        return false;
    }
    if (then != MIG_STATUS_PRE_SWITCHOVER) {
        mig_set_status(mig, then);
    }
    *t0 = clock_mono_ns();
    return true;
}

/* Stop the guest, hand the drives over, send what is left, and finish.
 * Returns false on failure (the caller takes the drives back, if
 * *inactivated, and restarts the guest). */
static bool complete(struct migration *mig, Channel *f, bool *stopped,
                     bool *inactivated, Error **errp)
{
    uint64_t t0;
    if (!mig_stop_guest(mig, stopped, &t0, MIG_STATUS_PRE_SWITCHOVER, errp)) {
        return false;
    }
    if (!fault_inject("migration-switchover", errp)) {
        return false;
    }
    /* Before the last of the state goes: the destination takes the
     * drives once it has loaded everything.  (They change together;
     * drives inactive already, as after an earlier migration, stay so
     * whatever happens.)  A block migration's destination has images of
     * its own: these stay ours, and the block section reads them last. */
    if (mig->ndrives && !block_on(mig) && !blk_is_inactive(mig->drives[0])) {
        if (!blk_inactivate_all(mig->drives, mig->ndrives, errp)) {
            return false;
        }
        *inactivated = true;
    }
    for (size_t i = 0; block_on(mig) && i < mig->ndrives; i++) {
        if (!blk_flush(mig->drives[i], errp)) {
            return false;
        }
    }
    if (!fault_inject("migration-inactivated", errp)) {
        return false;
    }
    mig_set_status(mig, MIG_STATUS_DEVICE);
    if (!stream_save_complete(mig->reg, f, errp)) {
        return false;
    }
    uint64_t downtime = clock_mono_ns() - t0;
    pthread_mutex_lock(&mig->lock);
    mig->downtime_ns = downtime;
    pthread_mutex_unlock(&mig->lock);
    return true;
}

/* mapped-ram writes pages at offsets of a file; direct-io only means
 * something for those writes. */
static bool check_mapped_ram(const struct mig_config *run,
                             const struct mig_uri *u, const char *uri,
                             Error **errp)
{
    if (!run->caps[MIG_CAP_MAPPED_RAM]) {
        if (run->params[MIG_PARAM_DIRECT_IO]) {
            error_setg(errp,
                       "parameter direct-io needs the mapped-ram "
                       "capability");
            return false;
        }
        return true;
    }
    if (u->kind != MIG_URI_FILE) {
        error_setg(errp, "capability mapped-ram needs a file: URI (got '%s')",
                   uri);
        return false;
    }
    if (run->params[MIG_PARAM_MODE] != MIG_MODE_NORMAL) {
        error_setg(
            errp, "capability mapped-ram cannot be used with mode %s",
            mig_param_enum_name(MIG_PARAM_MODE, run->params[MIG_PARAM_MODE]));
        return false;
    }
    return true;
}

/* Open the extra connections and hand them to the RAM section. */
static bool start_multifd(struct migration *mig, Error **errp)
{
    int n = (int)mig->run.params[MIG_PARAM_MULTIFD_CHANNELS];
    int fds[MULTIFD_MAX_CHANNELS];
    for (int i = 0; i < n; i++) {
        struct mig_conn c;
        bool ok = !atomic_load(&mig->cancel);
        if (!ok) {
            error_setg(errp, "cancelled");
        } else if (!mig_connect(&mig->uri, mig->fds, &c, errp)) {
            error_prepend(errp, "multifd channel %d: ", i);
            ok = false;
        } else if (!multifd_send_header(c.fd, i, n, errp)) {
            error_prepend(errp, "multifd channel %d: ", i);
            close(c.fd);
            ok = false;
        }
        if (!ok) {
            while (i-- > 0) {
                close(fds[i]);
            }
            return false;
        }
        fds[i] = c.fd;
    }
    /* Takes the descriptors over, and closes them if it fails. */
    return ram_state_start_multifd(mig->rs, fds, n, errp);
}

/* The rate limit per measurement period from max-bandwidth, which may
 * change while the migration runs. */
static void apply_rate_limit(struct migration *mig, Channel *f)
{
    /* As QEMU: a background snapshot goes as fast as it can, the guest
     * being slowed down while it runs. */
    uint64_t bw = mig->run.caps[MIG_CAP_BACKGROUND_SNAPSHOT]
        ? 0
        : mig_live_param(mig, MIG_PARAM_MAX_BANDWIDTH);
    chan_set_rate_limit(f, bw ? bw / (1000000000ull / MIG_MEASURE_NS) : 0);
}

/* Postcopy: the destination asks for a page (return path's thread). */
static bool on_page_request(void *opaque, const char *name, uint64_t start,
                            uint32_t len, Error **errp)
{
    struct migration *mig = opaque;
    return ram_postcopy_request(mig->rs, name, start, len, errp);
}

/* Postcopy recovery: the size of a block's bitmap of received pages. */
static bool on_bitmap_size(void *opaque, const char *name, uint64_t *size,
                           Error **errp)
{
    struct migration *mig = opaque;
    return ram_postcopy_bitmap_size(mig->rs, name, size, errp);
}

/* Postcopy recovery: a block's received pages came back. */
static bool on_bitmap(void *opaque, const char *name, const uint8_t *wire,
                      uint64_t size, Error **errp)
{
    struct migration *mig = opaque;
    if (migration_status(mig) != MIG_STATUS_POSTCOPY_RECOVER) {
        error_setg(errp, "a bitmap of '%s' outside a postcopy recovery", name);
        return false;
    }
    return ram_postcopy_take_bitmap(mig->rs, name, wire, size, errp);
}

/* The return path reads the main connection, which must be a socket. */
bool mig_start_return_path(struct migration *mig, Error **errp)
{
    if (!mig->conn.is_socket) {
        error_setg(errp,
                   "capability return-path needs a socket: descriptor "
                   "'%s' is not one",
                   mig->uri.fdname ? mig->uri.fdname : "?");
        return false;
    }
    mig->rp_ops = (struct rp_postcopy_ops){ .on_request = on_page_request,
                                            .bitmap_size = on_bitmap_size,
                                            .on_bitmap = on_bitmap,
                                            .opaque = mig };
    return mig->run.caps[MIG_CAP_POSTCOPY_RAM]
        ? rp_reader_start_postcopy(&mig->rp, mig->conn.fd, &mig->rp_ops, errp)
        : rp_reader_start(&mig->rp, mig->conn.fd, errp);
}

/* Setup phase: RAM state, multifd channels, the stream's setup part. */
static bool setup(struct migration *mig, Channel *f, Error **errp)
{
    const struct mig_config *cfg = &mig->run;
    struct ram_params rp = {
        .xbzrle = cfg->caps[MIG_CAP_XBZRLE],
        .xbzrle_cache_size = cfg->params[MIG_PARAM_XBZRLE_CACHE_SIZE],
        /* cpr modes: the new process maps RAM itself. */
        .ignore_shared = cfg->caps[MIG_CAP_X_IGNORE_SHARED] ||
            cfg->params[MIG_PARAM_MODE] != MIG_MODE_NORMAL,
        .release_ram = cfg->caps[MIG_CAP_RELEASE_RAM],
        .background = cfg->caps[MIG_CAP_BACKGROUND_SNAPSHOT],
        .mapped_ram = cfg->caps[MIG_CAP_MAPPED_RAM],
        .mapped_threads = cfg->caps[MIG_CAP_MULTIFD]
            ? (int)cfg->params[MIG_PARAM_MULTIFD_CHANNELS]
            : 0,
        .direct_io = cfg->params[MIG_PARAM_DIRECT_IO] != 0,
        .postcopy_ram = cfg->caps[MIG_CAP_POSTCOPY_RAM],
    };
    /* As QEMU, postcopy opens the return path: pages are asked on it. */
    bool want_rp = cfg->caps[MIG_CAP_RETURN_PATH] || rp.postcopy_ram;
    apply_rate_limit(mig, f);
    section_registry_validate_uuid(mig->reg, cfg->caps[MIG_CAP_VALIDATE_UUID]);
    section_registry_ignore_shared(mig->reg, rp.ignore_shared);
    section_registry_return_path(mig->reg, want_rp);
    section_registry_mapped_ram(mig->reg, rp.mapped_ram);
    uint8_t advise[16];
    ram_postcopy_advise_body(mig->rs, advise);
    section_registry_postcopy(mig->reg, rp.postcopy_ram ? advise : NULL);
    if (!ram_state_configure(mig->rs, &rp, errp)) {
        return false;
    }
    if (want_rp && !mig_start_return_path(mig, errp)) {
        return false;
    }
    if (rp.postcopy_ram && cfg->caps[MIG_CAP_POSTCOPY_PREEMPT] &&
        !postcopy_connect_preempt(mig, errp)) {
        return false;
    }
    /* The header goes first and at once: the destination tells the main
     * stream from multifd channels by its first bytes, and closes a
     * connection that stays silent past its deadline (MIG_HEADER_TIMEOUT_MS)
     * however long the channels below take to connect. */
    stream_save_header(f);
    if (!chan_flush(f)) {
        chan_check(f, errp);
        return false;
    }
    /* No RAM goes in the cpr modes: no channels for it either.  With
     * mapped-ram the RAM section writes pages into the file itself. */
    if (cfg->caps[MIG_CAP_MULTIFD] && !cfg->caps[MIG_CAP_MAPPED_RAM] &&
        cfg->params[MIG_PARAM_MODE] == MIG_MODE_NORMAL &&
        !start_multifd(mig, errp)) {
        return false;
    }
    if (!stream_save_setup_sections(mig->reg, f, errp) || !chan_flush(f)) {
        chan_check(f, errp);
        return false;
    }
    if (!fault_inject("migration-setup", errp)) {
        return false;
    }
    struct ram_stats st0;
    ram_state_get_stats(mig->rs, &st0);
    pthread_mutex_lock(&mig->lock);
    mig->setup_ns = clock_mono_ns() - mig->start_ns;
    mig->ram_final = st0;
    pthread_mutex_unlock(&mig->lock);
    mig_set_status(mig, MIG_STATUS_ACTIVE);
    return true;
}

/* What one measurement period compares with the last. */
struct period {
    uint64_t first;       /* clock_mono_ns() when iterating began */
    uint64_t first_bytes; /* sent then */
    uint64_t start;       /* clock_mono_ns() */
    uint64_t bytes;       /* sent when it started */
    uint64_t bandwidth;   /* bytes per second, last period */
    uint64_t pages;       /* RAM pages sent when it started */
    int strikes;          /* for auto-converge */
};

/* Bytes sent: the main stream plus the RAM sent on multifd channels or
 * written at file offsets by mapped-ram (RAM records on the main stream
 * are in both). */
static uint64_t bytes_sent(Channel *f, const struct ram_stats *st)
{
    return chan_tell(f) + st->multifd_transferred + st->mapped_transferred;
}

/* End of a measurement period: publish the rates, throttle if asked,
 * and say whether what is left fits in the downtime limit. */
static bool end_period(struct migration *mig, Channel *f, struct period *pd,
                       uint64_t now)
{
    chan_flush(f);
    struct ram_stats st;
    ram_state_get_stats(mig->rs, &st);
    uint64_t total_bytes = bytes_sent(f, &st);
    uint64_t sent = total_bytes - pd->bytes;
    uint64_t dt = now - pd->start;
    if (dt > 0 && sent > 0) {
        pd->bandwidth = sent * 1000000000ull / dt;
    }
    uint64_t bandwidth = pd->bandwidth;
    uint64_t pending = stream_save_pending(mig->reg);
    ram_state_get_stats(mig->rs, &st);
    uint64_t pages = st.normal_pages + st.zero_pages + st.xbzrle_pages;
    pthread_mutex_lock(&mig->lock);
    mig->mbps = (double)bandwidth * 8 / 1e6;
    mig->pages_per_second = dt ? (pages - pd->pages) * 1000000000ull / dt : 0;
    mig->expected_downtime_ms = bandwidth ? pending * 1000 / bandwidth : 0;
    mig->ram_final = st;
    pthread_mutex_unlock(&mig->lock);
    measure_disk(mig);
    pd->pages = pages;
    if (mig->run.caps[MIG_CAP_AUTO_CONVERGE]) {
        maybe_throttle(mig, sent,
                       st.dirty_pages_rate * 4096 * dt / 1000000000ull,
                       &pd->strikes);
    }
    pd->start = now;
    pd->bytes = total_bytes;
    /* max-bandwidth and downtime-limit may change while we run. */
    apply_rate_limit(mig, f);
    uint64_t limit_ms = mig_live_param(mig, MIG_PARAM_DOWNTIME_LIMIT);
    /* Converged: what is left goes within the downtime limit, at the
     * lower of the last period's rate and the rate so far: a destination
     * that slows down (fresh memory, a busy host) must not turn a short
     * fast period into a long downtime. */
    uint64_t since = now - pd->first;
    if (since > 0 && total_bytes > pd->first_bytes) {
        uint64_t average =
            (total_bytes - pd->first_bytes) * 1000000000ull / since;
        if (average < bandwidth) {
            bandwidth = average;
        }
    }
    /* And never before every page went once: stopping the guest in the
     * middle of the first pass would send the rest of RAM in the
     * downtime, on a rate measured over a tenth of a second. */
    bool first_pass_done = st.passes > 0;
    return pending == 0 ||
        (first_pass_done && bandwidth &&
         pending <= bandwidth * limit_ms / 1000);
}

/* Iteration phase: send while the guest runs, until converged or until
 * migrate_start_postcopy asks for the switch (*postcopy); with postcopy
 * NULL (background-snapshot), until every page went as it was. */
static bool iterate(struct migration *mig, Channel *f, bool *postcopy,
                    Error **errp)
{
    bool background = !postcopy;
    struct ram_stats st0;
    ram_state_get_stats(mig->rs, &st0);
    struct period pd = {
        .start = clock_mono_ns(),
        .bytes = bytes_sent(f, &st0),
    };
    pd.first = pd.start;
    pd.first_bytes = pd.bytes;
    for (;;) {
        if (atomic_load(&mig->cancel)) {
            error_setg(errp, "cancelled");
            return false;
        }
        if (postcopy && mig->run.caps[MIG_CAP_POSTCOPY_RAM] &&
            atomic_load(&mig->start_postcopy)) {
            *postcopy = true;
            return true;
        }
        int r = stream_save_iterate(mig->reg, f, errp);
        if (r < 0 || !fault_inject("migration-iterate", errp)) {
            return false;
        }
        if (!background && chan_rate_limited(f) && !chan_has_error(f)) {
            chan_rate_limit_wait(f);
        }
        uint64_t now = clock_mono_ns();
        if ((now - pd.start >= MIG_MEASURE_NS || r == 1) &&
            end_period(mig, f, &pd, now) && !background) {
            return true;
        }
        if (background && r == 1) {
            return true;
        }
    }
}

/* background-snapshot: the devices' state now, into a buffer, with the
 * guest paused only for that; RAM write-protected; the guest goes on and
 * RAM follows as it was; the buffered device state ends the stream, as in
 * QEMU (a destination loads RAM, then the devices over it). */
static bool background(struct migration *mig, Channel *f, Error **errp)
{
    enum run_state before = machine_runstate(mig->m);
    bool was_running = runstate_is_running(before);
    globalstate_set(mig->gs, runstate_name(before));
    if (!ram_state_prepare_tracking(mig->rs, errp)) {
        return false;
    }
    uint64_t t0 = clock_mono_ns();
    if (!vm_stop(mig->m, RUN_STATE_FINISH_MIGRATE, errp)) {
        return false;
    }
    Channel *dev = chan_new_mem_writer();
    bool ok = stream_save_devices(mig->reg, dev, errp) &&
        ram_state_start_tracking(mig->rs, errp);
    Error *e2 = NULL;
    if (!(was_running ? vm_start(mig->m, &e2)
                      : machine_set_runstate(mig->m, before, &e2))) {
        error_free(e2);
        e2 = NULL;
        machine_set_runstate(mig->m, RUN_STATE_PAUSED, &e2);
        error_free(e2);
    }
    pthread_mutex_lock(&mig->lock);
    mig->downtime_ns = clock_mono_ns() - t0;
    pthread_mutex_unlock(&mig->lock);
    ok = ok && fault_inject("migration-switchover", errp) &&
        iterate(mig, f, NULL, errp) &&
        stream_save_complete_live(mig->reg, f, errp);
    /* Every page went: the guest writes freely again. */
    ram_state_stop_tracking(mig->rs);
    if (ok) {
        mig_set_status(mig, MIG_STATUS_DEVICE);
        size_t len = 0;
        uint8_t *data = chan_mem_take(dev, &len);
        chan_put_buffer(f, data, len);
        free(data);
        chan_flush(f);
        ok = chan_check(f, errp);
    }
    chan_close(dev, NULL);
    return ok;
}

/* Close the multifd channels, the main stream and the connection, in
 * that order.  Returns ok, or false (with *errp) if closing failed after
 * a successful run. */
static bool close_channels(struct migration *mig, Channel *f, bool ok,
                           Error **errp)
{
    /* Channels drain before the main stream closes. */
    Error *merr = NULL;
    uint64_t bytes = 0;
    if (!ram_state_stop_multifd(mig->rs, &bytes, ok ? &merr : NULL) && ok) {
        ok = false;
        error_propagate(errp, merr);
    } else {
        error_free(merr);
    }
    pthread_mutex_lock(&mig->lock);
    mig->multifd_bytes = bytes;
    pthread_mutex_unlock(&mig->lock);
    if (ok) {
        chan_flush(f);
        ok = chan_check(f, errp);
    }
    /* Everything went: the destination's word decides (see roll_back). */
    if (ok && mig->rp.started) {
        ok = rp_reader_finish(&mig->rp, RP_SHUT_TIMEOUT_MS, errp);
    } else if (mig->rp.started && !atomic_load(&mig->cancel)) {
        /* A destination that failed says so before it hangs up: a
         * moment for that word, to say what went wrong first. */
        uint32_t said;
        rp_reader_finish(&mig->rp, 1000, NULL);
        if (rp_reader_said_failed(&mig->rp, &said) && errp && *errp) {
            error_prepend(errp,
                          "the destination failed to load the stream (it "
                          "said SHUT %u on the return path; its log says "
                          "why): ",
                          said);
        }
    }
    rp_reader_stop(&mig->rp);
    postcopy_drop_preempt(mig);
    /* Whatever is left is flushed here; a cancel can still cut that short
     * through conn, which stays open until taken out below.  (No channel
     * when cpr-transfer failed before the main connection.) */
    Error *cerr = NULL;
    bool closed = !f || chan_close(f, ok ? &cerr : NULL);
    mig->f = NULL;
    struct mig_conn conn = mig_conn_take(&mig->conn, &mig->lock);
    /* May wait a while for an exec command to finish. */
    closed = mig_conn_close(&conn, ok ? &cerr : NULL) && closed;
    if (ok && !closed) {
        ok = false;
        error_propagate(errp, cerr);
    } else {
        error_free(cerr);
    }
    return ok;
}

/* After a failure or cancel: report it, and the source carries on as if
 * nothing happened, with its drives back, or else stopped (cont tries
 * again). */
static void roll_back(struct migration *mig, Error *err, bool stopped,
                      bool inactivated)
{
    bool cancelled = atomic_load(&mig->cancel);
    if (cancelled) {
        error_free(err);
    } else {
        fail(mig, err);
    }
    bool drives_ok = true;
    if (inactivated) {
        Error *e2 = NULL;
        drives_ok = blk_activate_all(mig->drives, mig->ndrives, &e2);
        if (!drives_ok) {
            error_prepend(&e2,
                          "migration failed and the drives cannot "
                          "be taken back; the machine stays stopped: ");
            error_report_err(e2);
        }
    }
    enum run_state st = machine_runstate(mig->m);
    if (stopped || st == RUN_STATE_FINISH_MIGRATE) {
        Error *e2 = NULL;
        /* A machine whose RAM is gone stays stopped. */
        if (!(stopped && drives_ok && vm_start(mig->m, &e2))) {
            error_free(e2);
            e2 = NULL;
            machine_set_runstate(mig->m, RUN_STATE_PAUSED, &e2);
        }
        error_free(e2);
    }
    mig_set_status(mig, cancelled ? MIG_STATUS_CANCELLED : MIG_STATUS_FAILED);
}

/* The main connection and its channel (the channel does not own the
 * descriptor: conn does, see migration_cancel). */
bool mig_connect_main(struct migration *mig, Error **errp)
{
    struct mig_conn conn;
    if (!mig_connect(&mig->uri, mig->fds, &conn, errp)) {
        return false;
    }
    pthread_mutex_lock(&mig->lock);
    mig->conn = conn;
    pthread_mutex_unlock(&mig->lock);
    mig->f = conn.is_socket ? chan_new_socket(conn.fd, true, false, "migration")
                            : chan_new_fd(conn.fd, true, false, "migration");
    return true;
}

/* cpr-transfer: RAM goes to the destination as descriptors, on a
 * connection of its own, before anything else. */
static bool hand_over_memory(struct migration *mig, Error **errp)
{
    struct mig_conn c;
    if (!mig_connect(&mig->uri, mig->fds, &c, errp)) {
        error_prepend(errp, "cpr channel: ");
        return false;
    }
    bool ok = cpr_send_memory(c.fd, machine_memory(mig->m), &mig->cancel, errp);
    mig_conn_close(&c, NULL);
    if (ok && atomic_load(&mig->cancel)) {
        error_setg(errp, "cancelled");
        ok = false;
    }
    return ok;
}

/* cpr-exec, once the stream is complete: a descriptor of the state
 * memfd that outlives the connection's, or -1 (with *errp). */
static int keep_state(struct migration *mig, Channel *f, Error **errp)
{
    chan_flush(f);
    if (!chan_check(f, errp)) {
        return -1;
    }
    int fd = fcntl(mig->conn.fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
        error_setg_errno(errp, errno, "cpr-exec: dup of the state memfd");
    }
    return fd;
}

static void *migration_thread(void *opaque)
{
    struct migration *mig = opaque;
    Error *err = NULL;
    bool stopped = false, inactivated = false, switched = false;
    enum mig_mode mode = (enum mig_mode)mig->run.params[MIG_PARAM_MODE];
    bool ok = true;
    int state_fd = -1;
    if (mode == MIG_MODE_CPR_TRANSFER) {
        ok = hand_over_memory(mig, &err) && mig_connect_main(mig, &err);
    } else if (mode == MIG_MODE_CPR_EXEC) {
        /* The memory's descriptors go ahead of the stream. */
        ok = cpr_write_memory(mig->conn.fd, machine_memory(mig->m), &err);
    }
    Channel *f = mig->f;
    if (mig->bm) {
        /* Only this save sends the block section; cleanup turns it off. */
        mig->bm->enabled = mig->run.caps[MIG_CAP_BLOCK];
        mig->bm->incremental =
            mig->run.params[MIG_PARAM_BLOCK_INCREMENTAL] != 0;
    }

    /* Shared RAM is not sent in the cpr modes, so nothing is to iterate:
     * the guest stops at once.  With release-ram, too: pages may only be
     * freed once the guest cannot write them again. */
    bool live = mode == MIG_MODE_NORMAL && !mig->run.caps[MIG_CAP_RELEASE_RAM];
    bool bg = mig->run.caps[MIG_CAP_BACKGROUND_SNAPSHOT];
    if (bg) {
        ok = ok && setup(mig, f, &err) && background(mig, f, &err);
    } else {
        bool postcopy = false;
        ok = ok && setup(mig, f, &err) &&
            (!live || iterate(mig, f, &postcopy, &err));
        if (ok && postcopy) {
            ok = postcopy_discard_early(mig, f, &err) &&
                postcopy_switch(mig, f, &stopped, &inactivated, &switched,
                                &err) &&
                postcopy_go(mig, &f, &err);
        } else {
            ok = ok && complete(mig, f, &stopped, &inactivated, &err);
        }
    }
    if (ok && mode == MIG_MODE_CPR_EXEC) {
        ok = (state_fd = keep_state(mig, f, &err)) >= 0;
    }
    machine_set_throttle(mig->m, 0);
    ok = close_channels(mig, f, ok, &err);
    if (ok && mode == MIG_MODE_CPR_EXEC) {
        /* Returns only if the new binary could not be started. */
        ok = mig->exec(mig->exec_opaque, state_fd, &err);
    }
    if (state_fd >= 0) {
        close(state_fd);
    }

    struct ram_stats final;
    ram_state_get_stats(mig->rs, &final);
    measure_disk(mig);
    pthread_mutex_lock(&mig->lock);
    mig->end_ns = clock_mono_ns();
    mig->ram_final = final;
    pthread_mutex_unlock(&mig->lock);
    if (ok) {
        if (mode == MIG_MODE_CPR_TRANSFER) {
            machine_give_away_ram(mig->m,
                                  "the guest's RAM was handed to another "
                                  "process (cpr-transfer), which runs the "
                                  "guest now");
        }
        fault_exit_point("migration-complete");
        Error *e2 = NULL;
        /* A background snapshot leaves the guest where it was. */
        if (!bg) {
            machine_set_runstate(mig->m, RUN_STATE_POSTMIGRATE, &e2);
        }
        error_free(e2);
        mig_set_status(mig, MIG_STATUS_COMPLETED);
    } else {
        if (final.released_pages) {
            /* Part of the guest's RAM is only at the destination now. */
            machine_give_away_ram(mig->m,
                                  "release-ram freed guest RAM that went to "
                                  "the destination");
            error_prepend(&err,
                          "the guest cannot resume here (release-ram freed "
                          "%llu pages already sent): ",
                          (unsigned long long) final.released_pages);
        }
        if (switched) {
            /* The guest ran at the destination, with part of its RAM
             * still here: neither side can go on with it (QEMU alike). */
            error_prepend(&err,
                          "postcopy failed after the switch; the guest ran "
                          "at the destination and is lost: ");
            fail(mig, err);
            Error *e2 = NULL;
            machine_set_runstate(mig->m, RUN_STATE_POSTMIGRATE, &e2);
            error_free(e2);
            mig_set_status(mig, MIG_STATUS_FAILED);
        } else {
            roll_back(mig, err, stopped, inactivated);
        }
    }
    stream_save_cleanup(mig->reg);
    if (mig->bm) {
        mig->bm->enabled = false;
    }
    return NULL;
}

void migration_set_exec(struct migration *mig, mig_exec_fn fn, void *opaque)
{
    mig->exec = fn;
    mig->exec_opaque = opaque;
}

bool migration_start(struct migration *mig, const char *uri, bool blk, bool inc,
                     Error **errp)
{
    pthread_mutex_lock(&mig->lock);
    enum mig_status st = mig->status;
    bool was_running = mig->thread_running;
    pthread_mutex_unlock(&mig->lock);
    if (mig_status_is_active(st)) {
        error_setg(errp, "There's a migration process in progress");
        return false;
    }
    if (was_running) {
        pthread_join(mig->thread, NULL);
        pthread_mutex_lock(&mig->lock);
        mig->thread_running = false;
        pthread_mutex_unlock(&mig->lock);
    }
    /* From here to the thread's start, nobody else writes these. */
    if (mig->blocker) {
        error_setg(errp, "migration is blocked: %s", mig->blocker);
        return false;
    }
    if (!machine_owns_ram(mig->m, "migrate", errp)) {
        return false;
    }
    enum run_state rs = machine_runstate(mig->m);
    if (rs == RUN_STATE_INMIGRATE || rs == RUN_STATE_INTERNAL_ERROR ||
        rs == RUN_STATE_SHUTDOWN) {
        error_setg(errp, "cannot migrate a machine in state %s",
                   runstate_name(rs));
        return false;
    }
    struct mig_config run;
    migration_get_config(mig, &run);
    /* As QEMU's migrate: -b and -i turn block migration on for this one
     * migration, not for the next. */
    run.caps[MIG_CAP_BLOCK] |= blk || inc;
    run.params[MIG_PARAM_BLOCK_INCREMENTAL] |= inc;
    if (!mig_config_check(&run, errp)) {
        return false;
    }
    if (run.caps[MIG_CAP_BLOCK] &&
        !block_mig_check(mig->bm, run.params[MIG_PARAM_BLOCK_INCREMENTAL] != 0,
                         errp)) {
        return false;
    }
    mig_uri_clear(&mig->uri);
    if (!mig_uri_parse(uri, &mig->uri, errp)) {
        return false;
    }
    if (run.caps[MIG_CAP_POSTCOPY_RAM] &&
        (mig->uri.kind == MIG_URI_EXEC || mig->uri.kind == MIG_URI_FILE ||
         mig->uri.kind == MIG_URI_MEMFD)) {
        error_setg(errp,
                   "capability postcopy-ram needs a socket (tcp:, unix: or "
                   "fd: of a socket): the destination asks for pages on the "
                   "return path, and nothing comes back from '%s'",
                   uri);
        return false;
    }
    if (run.caps[MIG_CAP_POSTCOPY_RAM] && run.caps[MIG_CAP_POSTCOPY_PREEMPT] &&
        !mig_uri_is_socket(&mig->uri)) {
        error_setg(errp,
                   "capability postcopy-preempt needs a tcp: or unix: URI: it "
                   "opens a second connection (got '%s')",
                   uri);
        return false;
    }
    if (run.caps[MIG_CAP_RETURN_PATH] &&
        (mig->uri.kind == MIG_URI_EXEC || mig->uri.kind == MIG_URI_FILE ||
         mig->uri.kind == MIG_URI_MEMFD)) {
        error_setg(errp,
                   "capability return-path needs a socket (tcp:, unix: or "
                   "fd: of a socket): nothing comes back from '%s'",
                   uri);
        return false;
    }
    enum mig_mode mode = (enum mig_mode)run.params[MIG_PARAM_MODE];
    if (!check_mapped_ram(&run, &mig->uri, uri, errp)) {
        return false;
    }
    if (run.caps[MIG_CAP_MULTIFD] && !run.caps[MIG_CAP_MAPPED_RAM] &&
        !mig_uri_is_socket(&mig->uri)) {
        error_setg(errp,
                   "multifd needs a tcp: or unix: URI (or mapped-ram "
                   "with a file: URI)");
        return false;
    }
    bool cpr = mode == MIG_MODE_CPR_TRANSFER;
    if (cpr && mig->uri.kind != MIG_URI_UNIX) {
        error_setg(errp,
                   "mode cpr-transfer needs a unix: URI: descriptors "
                   "pass only over a unix socket (got '%s')",
                   uri);
        return false;
    }
    if ((mode == MIG_MODE_CPR_EXEC) != (mig->uri.kind == MIG_URI_MEMFD)) {
        error_setg(errp,
                   mode == MIG_MODE_CPR_EXEC
                       ? "mode cpr-exec writes its state to a memfd: use "
                         "'migrate memfd:' (got '%s')"
                       : "'%s': memfd: is for mode cpr-exec "
                         "(migrate_set_parameter mode cpr-exec)",
                   uri);
        return false;
    }
    if (mode == MIG_MODE_CPR_EXEC && !mig->exec) {
        error_setg(errp, "mode cpr-exec is not available in this program");
        return false;
    }
    if (mode != MIG_MODE_NORMAL &&
        !cpr_check_memory(machine_memory(mig->m),
                          mig_param_enum_name(MIG_PARAM_MODE, mode), errp)) {
        return false;
    }
    mig->run = run;
    atomic_store(&mig->cancel, false);
    atomic_store(&mig->start_postcopy, false);
    pthread_mutex_lock(&mig->lock);
    memset(mig->error, 0, sizeof(mig->error));
    mig->continue_ok = false;
    mig->throttle_pct = 0;
    mig->setup_ns = 0;
    mig->downtime_ns = 0;
    mig->expected_downtime_ms = 0;
    mig->mbps = 0;
    mig->pages_per_second = 0;
    mig->multifd_bytes = 0;
    memset(&mig->ram_final, 0, sizeof(mig->ram_final));
    memset(&mig->disk_final, 0, sizeof(mig->disk_final));
    mig->start_ns = clock_mono_ns();
    mig->end_ns = 0;
    pthread_mutex_unlock(&mig->lock);
    mig_set_status(mig, MIG_STATUS_SETUP);
    Error *err = NULL;
    /* cpr-transfer connects from the thread, after the memory went. */
    mig->f = NULL;
    if (!cpr && !mig_connect_main(mig, &err)) {
        fail(mig, error_copy(err));
        mig_set_status(mig, MIG_STATUS_FAILED);
        error_propagate(errp, err);
        return false;
    }
    if (pthread_create(&mig->thread, NULL, migration_thread, mig) != 0) {
        error_setg(&err, "cannot start the migration thread");
        if (mig->f) {
            chan_close(mig->f, NULL);
        }
        mig->f = NULL;
        struct mig_conn conn = mig_conn_take(&mig->conn, &mig->lock);
        mig_conn_abort(&conn);
        mig_conn_close(&conn, NULL);
        fail(mig, error_copy(err));
        mig_set_status(mig, MIG_STATUS_FAILED);
        error_propagate(errp, err);
        return false;
    }
    pthread_mutex_lock(&mig->lock);
    mig->thread_running = true;
    pthread_mutex_unlock(&mig->lock);
    return true;
}

bool migration_resume(struct migration *mig, const char *uri, Error **errp)
{
    struct mig_uri u;
    if (!mig_uri_parse(uri, &u, errp)) {
        return false;
    }
    bool sock = mig_uri_is_socket(&u) || u.kind == MIG_URI_FD;
    mig_uri_clear(&u);
    if (!sock) {
        error_setg(errp,
                   "postcopy recovery needs a socket (tcp:, unix: or fd: of "
                   "a socket): the destination answers on it (got '%s')",
                   uri);
        return false;
    }
    pthread_mutex_lock(&mig->lock);
    bool ok = mig->status == MIG_STATUS_POSTCOPY_PAUSED && !mig->resume_uri;
    if (mig->resume_uri) {
        error_setg(errp, "a recovery over '%s' is on its way already",
                   mig->resume_uri);
    } else if (!ok) {
        error_setg(errp, "Cannot resume if there is no paused migration");
    } else {
        /* At once: whoever waits for the end sees the recovery begin. */
        mig->resume_uri = xstrdup(uri);
        mig->status = MIG_STATUS_POSTCOPY_RECOVER;
        pthread_cond_broadcast(&mig->cond);
    }
    pthread_mutex_unlock(&mig->lock);
    if (ok) {
        notify(mig, MIG_STATUS_POSTCOPY_RECOVER);
    }
    return ok;
}

bool migration_pause(struct migration *mig, Error **errp)
{
    pthread_mutex_lock(&mig->lock);
    bool ok = mig->status == MIG_STATUS_POSTCOPY_ACTIVE;
    if (ok) {
        /* The thread sees a dead link and pauses. */
        mig_conn_abort(&mig->conn);
    } else {
        error_setg(errp,
                   "migrate-pause is currently only supported during "
                   "postcopy-active state");
    }
    pthread_mutex_unlock(&mig->lock);
    return ok;
}

bool migration_cancel_refused(struct migration *mig, Error **errp)
{
    enum mig_status st = migration_status(mig);
    if (mig_status_is_postcopy_paused(st)) {
        error_setg(errp,
                   "postcopy migration %s, cannot cancel: the guest runs at "
                   "the destination and needs the pages still here "
                   "(migrate -r URI resumes it)",
                   mig_status_name(st));
        return true;
    }
    if (st == MIG_STATUS_POSTCOPY_ACTIVE) {
        error_setg(errp,
                   "postcopy migration in progress, cannot cancel: the guest "
                   "runs at the destination and needs the pages still here");
        return true;
    }
    return false;
}

void migration_cancel(struct migration *mig)
{
    cancel(mig, false);
}

bool migration_start_postcopy(struct migration *mig, Error **errp)
{
    pthread_mutex_lock(&mig->lock);
    enum mig_status st = mig->status;
    bool on = mig_status_is_active(st) ? mig->run.caps[MIG_CAP_POSTCOPY_RAM]
                                       : mig->cfg.caps[MIG_CAP_POSTCOPY_RAM];
    pthread_mutex_unlock(&mig->lock);
    if (!on) {
        error_setg(errp,
                   "Enable postcopy with migrate_set_capability before "
                   "the start of migration");
        return false;
    }
    if (st == MIG_STATUS_NONE) {
        error_setg(errp,
                   "Postcopy must be started after migration has been "
                   "started");
        return false;
    }
    /* As QEMU: no error once it finished, which would race with it. */
    atomic_store(&mig->start_postcopy, true);
    return true;
}

static void cancel(struct migration *mig, bool even_postcopy)
{
    pthread_mutex_lock(&mig->lock);
    if (!mig_status_is_active(mig->status) ||
        ((mig->status == MIG_STATUS_POSTCOPY_ACTIVE ||
          mig_status_is_postcopy_paused(mig->status)) &&
         !even_postcopy)) {
        pthread_mutex_unlock(&mig->lock);
        return;
    }
    atomic_store(&mig->cancel, true);
    mig->status = MIG_STATUS_CANCELLING;
    pthread_cond_broadcast(&mig->cond);
    /* Unblock a thread stuck writing to a slow or dead peer.  The
     * connection is still the thread's while it is here (it takes it out
     * under this lock before closing it); the channel over it is never
     * touched from this side. */
    mig_conn_abort(&mig->conn);
    mig_conn_abort(&mig->pconn);
    ram_state_cancel_multifd(mig->rs);
    pthread_mutex_unlock(&mig->lock);
    notify(mig, MIG_STATUS_CANCELLING);
}

bool migration_continue(struct migration *mig, Error **errp)
{
    pthread_mutex_lock(&mig->lock);
    if (mig->status != MIG_STATUS_PRE_SWITCHOVER) {
        error_setg(errp, "migration not in pre-switchover state (it is %s)",
                   mig_status_name(mig->status));
        pthread_mutex_unlock(&mig->lock);
        return false;
    }
    mig->continue_ok = true;
    pthread_cond_broadcast(&mig->cond);
    pthread_mutex_unlock(&mig->lock);
    return true;
}

bool migration_wait(struct migration *mig, int ms)
{
    struct timespec ts = clock_real_deadline(ms);
    pthread_mutex_lock(&mig->lock);
    while (mig_status_is_active(mig->status)) {
        if (pthread_cond_timedwait(&mig->cond, &mig->lock, &ts) == ETIMEDOUT) {
            break;
        }
    }
    bool done = !mig_status_is_active(mig->status);
    pthread_mutex_unlock(&mig->lock);
    return done;
}

void migration_query(struct migration *mig, struct mig_info *info)
{
    memset(info, 0, sizeof(*info));
    pthread_mutex_lock(&mig->lock);
    info->status = mig->status;
    uint64_t end = mig->end_ns ? mig->end_ns : clock_mono_ns();
    if (mig->status != MIG_STATUS_NONE) {
        info->total_time_ms = (end - mig->start_ns) / 1000000;
        info->setup_time_ms = mig->setup_ns / 1000000;
    }
    info->downtime_ms = mig->downtime_ns / 1000000;
    info->expected_downtime_ms = mig->expected_downtime_ms;
    info->pages_per_second = mig->pages_per_second;
    info->throttle_pct = mig->throttle_pct;
    /* While it runs, as of the thread's last measurement (100 ms). */
    info->ram = mig->ram_final;
    info->disk = mig->disk_final;
    info->mbps = mig->mbps;
    info->multifd_bytes = mig->multifd_bytes;
    snprintf(info->error, sizeof(info->error), "%s", mig->error);
    pthread_mutex_unlock(&mig->lock);
    if (info->status == MIG_STATUS_COMPLETED && info->total_time_ms) {
        info->mbps = (double)info->ram.transferred * 8 / 1000.0 /
            (double)info->total_time_ms;
    }
    /* The settings of the migration shown (run is written only by
     * migration_start, on this thread). */
    const struct mig_config *c = &mig->run;
    if (info->status != MIG_STATUS_NONE && c->caps[MIG_CAP_XBZRLE]) {
        info->xbzrle = true;
        info->xbzrle_cache_size = c->params[MIG_PARAM_XBZRLE_CACHE_SIZE];
        struct ram_stats *r = &info->ram;
        info->xbzrle_cache_miss_rate = r->xbzrle_pages_checked
            ? (double)r->xbzrle_cache_miss / (double)r->xbzrle_pages_checked
            : 0;
        info->xbzrle_encoding_rate = r->xbzrle_bytes
            ? (double)r->xbzrle_raw_bytes / (double)r->xbzrle_bytes
            : 0;
    }
    info->has_disk =
        info->status != MIG_STATUS_NONE && mig->bm && c->caps[MIG_CAP_BLOCK];
    if (info->status != MIG_STATUS_NONE && c->caps[MIG_CAP_MULTIFD]) {
        info->multifd_channels = (int)c->params[MIG_PARAM_MULTIFD_CHANNELS];
    } else {
        info->multifd_bytes = 0;
    }
}

void migration_get_config(struct migration *mig, struct mig_config *c)
{
    pthread_mutex_lock(&mig->lock);
    *c = mig->cfg;
    pthread_mutex_unlock(&mig->lock);
}

bool migration_set_config(struct migration *mig, const struct mig_config *next,
                          Error **errp)
{
    bool ok = true;
    /* As QEMU: refused at once where the kernel cannot track writes. */
    struct mig_config cur;
    migration_get_config(mig, &cur);
    if (next->caps[MIG_CAP_BACKGROUND_SNAPSHOT] &&
        !cur.caps[MIG_CAP_BACKGROUND_SNAPSHOT] &&
        !ram_background_check(mig->m, errp)) {
        return false;
    }
    if (next->caps[MIG_CAP_POSTCOPY_RAM] && !cur.caps[MIG_CAP_POSTCOPY_RAM] &&
        !ram_postcopy_check(mig->m, errp)) {
        return false;
    }
    if (next->caps[MIG_CAP_POSTCOPY_BLOCKTIME] &&
        !cur.caps[MIG_CAP_POSTCOPY_BLOCKTIME] &&
        !ram_postcopy_blocktime_check(errp)) {
        return false;
    }
    pthread_mutex_lock(&mig->lock);
    if (memcmp(next->caps, mig->cfg.caps, sizeof(next->caps)) != 0 &&
        mig_status_is_active(mig->status)) {
        error_setg(errp,
                   "cannot change capabilities while a migration is in "
                   "progress");
        ok = false;
    } else {
        mig->cfg = *next;
    }
    pthread_mutex_unlock(&mig->lock);
    return ok;
}

bool migration_set_capability(struct migration *mig, const char *name, bool on,
                              Error **errp)
{
    struct mig_config next;
    migration_get_config(mig, &next);
    return mig_set_capability(&next, name, on, errp) &&
        migration_set_config(mig, &next, errp);
}

bool migration_set_parameter(struct migration *mig, const char *name,
                             const char *value, Error **errp)
{
    struct mig_config next;
    migration_get_config(mig, &next);
    return mig_set_parameter_str(&next, name, value, errp) &&
        migration_set_config(mig, &next, errp);
}

bool migration_set_parameter_value(struct migration *mig, int param,
                                   uint64_t value, Error **errp)
{
    struct mig_config next;
    migration_get_config(mig, &next);
    return mig_set_parameter(&next, param, value, errp) &&
        migration_set_config(mig, &next, errp);
}

void migration_set_blocker(struct migration *mig, const char *reason)
{
    free(mig->blocker);
    mig->blocker = reason ? xstrdup(reason) : NULL;
}
