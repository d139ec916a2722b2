/* The outgoing migration thread and its state machine. */
#include "migration/migration.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "machine/machine.h"
#include "migration/globalstate.h"
#include "vmstate/stream.h"
#include "util/clock.h"

/* How often bandwidth and convergence are measured. */
#define MEASURE_NS (100 * 1000 * 1000ull)

static const char *const status_names[MIG_STATUS__MAX] = {
    [MIG_STATUS_NONE] = "none",
    [MIG_STATUS_SETUP] = "setup",
    [MIG_STATUS_ACTIVE] = "active",
    [MIG_STATUS_PRE_SWITCHOVER] = "pre-switchover",
    [MIG_STATUS_DEVICE] = "device",
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
           st == MIG_STATUS_CANCELLING;
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
}

void migration_destroy(struct migration *mig)
{
    migration_cancel(mig);
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

static void set_status(struct migration *mig, enum mig_status st)
{
    pthread_mutex_lock(&mig->lock);
    mig->status = st;
    pthread_cond_broadcast(&mig->cond);
    pthread_mutex_unlock(&mig->lock);
    if (mig->notify) {
        mig->notify(mig->opaque, st);
    }
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
    uint64_t thr = mig->cfg.params[MIG_PARAM_THROTTLE_TRIGGER_THRESHOLD];
    if (sent_bytes == 0 || dirtied_bytes * 100 < sent_bytes * thr) {
        *strikes = 0;
        return;
    }
    /* As QEMU: react on the second period in a row. */
    if (++*strikes < 2) {
        return;
    }
    *strikes = 0;
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
    machine_set_throttle(mig->m, pct);
}

/* Stop the guest, send what is left, and finish.  Returns false on
 * failure (the caller restarts the guest). */
static bool complete(struct migration *mig, Channel *f, bool *stopped,
                     Error **errp)
{
    enum run_state before = machine_runstate(mig->m);
    globalstate_set(mig->gs, runstate_name(before));
    uint64_t t0 = clock_mono_ns();
    if (!vm_stop(mig->m, RUN_STATE_FINISH_MIGRATE, errp)) {
        return false;
    }
    *stopped = runstate_is_running(before);
    if (mig->cfg.caps[MIG_CAP_PAUSE_BEFORE_SWITCHOVER]) {
        set_status(mig, MIG_STATUS_PRE_SWITCHOVER);
        pthread_mutex_lock(&mig->lock);
        while (!mig->continue_ok && !atomic_load(&mig->cancel)) {
            pthread_cond_wait(&mig->cond, &mig->lock);
        }
        pthread_mutex_unlock(&mig->lock);
        if (atomic_load(&mig->cancel)) {
            error_setg(errp, "cancelled");
            return false;
        }
        t0 = clock_mono_ns();
    }
    set_status(mig, MIG_STATUS_DEVICE);
    if (!stream_save_complete(mig->reg, f, errp)) {
        return false;
    }
    mig->downtime_ns = clock_mono_ns() - t0;
    return true;
}

/* Open the extra connections and hand them to the RAM section. */
static bool start_multifd(struct migration *mig, Error **errp)
{
    int n = (int)mig->cfg.params[MIG_PARAM_MULTIFD_CHANNELS];
    int fds[256];
    for (int i = 0; i < n; i++) {
        struct mig_conn c;
        if (!mig_connect(&mig->uri, mig->fds, &c, errp)) {
            error_prepend(errp, "multifd channel %d: ", i);
            while (i-- > 0) {
                close(fds[i]);
            }
            return false;
        }
        fds[i] = c.fd;
    }
    return ram_state_start_multifd(mig->rs, fds, n, errp);
}

static void *migration_thread(void *opaque)
{
    struct migration *mig = opaque;
    Error *err = NULL;
    bool stopped = false, ok = false;
    Channel *f = mig->f;
    struct ram_params rp = {
        .xbzrle = mig->cfg.caps[MIG_CAP_XBZRLE],
        .xbzrle_cache_size = mig->cfg.params[MIG_PARAM_XBZRLE_CACHE_SIZE],
    };
    uint64_t bw = mig->cfg.params[MIG_PARAM_MAX_BANDWIDTH];
    chan_set_rate_limit(f, bw ? bw / (1000000000ull / MEASURE_NS) : 0);

    section_registry_validate_uuid(mig->reg,
                                   mig->cfg.caps[MIG_CAP_VALIDATE_UUID]);
    if (!ram_state_configure(mig->rs, &rp, &err)) {
        goto out;
    }
    if (mig->cfg.caps[MIG_CAP_MULTIFD] && !start_multifd(mig, &err)) {
        goto out;
    }
    /* Flushed at once: the destination tells the main stream from
     * multifd channels by its first bytes. */
    if (!stream_save_setup(mig->reg, f, &err) || !chan_flush(f)) {
        chan_check(f, &err);
        goto out;
    }
    mig->setup_ns = clock_mono_ns() - mig->start_ns;
    set_status(mig, MIG_STATUS_ACTIVE);

    /* Bytes sent: the main stream plus the RAM sent on multifd
     * channels (RAM records on the main stream are in both). */
    struct ram_stats st0;
    ram_state_get_stats(mig->rs, &st0);
    uint64_t period_start = clock_mono_ns();
    uint64_t period_bytes = chan_tell(f) + st0.multifd_transferred;
    uint64_t bandwidth = 0;        /* bytes per second, last period */
    uint64_t last_pages = 0;
    int strikes = 0;
    uint64_t limit_ms = mig->cfg.params[MIG_PARAM_DOWNTIME_LIMIT];
    for (;;) {
        if (atomic_load(&mig->cancel)) {
            error_setg(&err, "cancelled");
            goto out;
        }
        int r = stream_save_iterate(mig->reg, f, &err);
        if (r < 0) {
            goto out;
        }
        if (chan_rate_limited(f) && !chan_has_error(f)) {
            chan_rate_limit_wait(f);
        }
        uint64_t now = clock_mono_ns();
        if (now - period_start >= MEASURE_NS || r == 1) {
            chan_flush(f);
            struct ram_stats st;
            ram_state_get_stats(mig->rs, &st);
            uint64_t total_bytes = chan_tell(f) + st.multifd_transferred;
            uint64_t sent = total_bytes - period_bytes;
            uint64_t dt = now - period_start;
            if (dt > 0 && sent > 0) {
                bandwidth = sent * 1000000000ull / dt;
            }
            uint64_t pending = stream_save_pending(mig->reg);
            ram_state_get_stats(mig->rs, &st);
            uint64_t pages = st.normal_pages + st.zero_pages + st.xbzrle_pages;
            pthread_mutex_lock(&mig->lock);
            mig->mbps = (double)bandwidth * 8 / 1e6;
            mig->pages_per_second = dt ? (pages - last_pages) * 1000000000ull /
                                         dt : 0;
            mig->expected_downtime_ms = bandwidth ? pending * 1000 / bandwidth
                                                  : 0;
            mig->ram_final = st;
            pthread_mutex_unlock(&mig->lock);
            last_pages = pages;
            if (mig->cfg.caps[MIG_CAP_AUTO_CONVERGE]) {
                maybe_throttle(mig, sent, st.dirty_pages_rate * 4096 * dt /
                               1000000000ull, &strikes);
            }
            period_start = now;
            period_bytes = total_bytes;
            /* max-bandwidth may change while we run. */
            bw = mig->cfg.params[MIG_PARAM_MAX_BANDWIDTH];
            chan_set_rate_limit(f, bw ? bw / (1000000000ull / MEASURE_NS) : 0);
            /* Converged: what is left goes within the downtime limit. */
            if (pending == 0 ||
                (bandwidth && pending <= bandwidth * limit_ms / 1000)) {
                break;
            }
        }
    }
    ok = complete(mig, f, &stopped, &err);
out:
    machine_set_throttle(mig->m, 0);
    {
        /* Channels drain before the main stream closes. */
        Error *merr = NULL;
        uint64_t bytes = 0;
        if (!ram_state_stop_multifd(mig->rs, &bytes, ok ? &merr : NULL) &&
            ok) {
            ok = false;
            err = merr;
        } else {
            error_free(merr);
        }
        mig->multifd_bytes = bytes;
    }
    if (ok) {
        chan_flush(f);
        ok = chan_check(f, &err);
    }
    {
        Error *cerr = NULL;
        bool closed = chan_close(f, ok ? &cerr : NULL);
        closed = mig_conn_close(&mig->conn, ok ? &cerr : NULL) && closed;
        if (ok && !closed) {
            ok = false;
            err = cerr;
        } else {
            error_free(cerr);
        }
    }
    mig->f = NULL;
    mig->end_ns = clock_mono_ns();
    ram_state_get_stats(mig->rs, &mig->ram_final);
    if (ok) {
        Error *e2 = NULL;
        machine_set_runstate(mig->m, RUN_STATE_POSTMIGRATE, &e2);
        error_free(e2);
        set_status(mig, MIG_STATUS_COMPLETED);
    } else {
        bool cancelled = atomic_load(&mig->cancel);
        if (cancelled) {
            error_free(err);
            err = NULL;
        } else {
            fail(mig, err);
        }
        /* The source carries on as if nothing happened. */
        enum run_state st = machine_runstate(mig->m);
        if (stopped || st == RUN_STATE_FINISH_MIGRATE) {
            Error *e2 = NULL;
            if (stopped) {
                vm_start(mig->m, &e2);
            } else {
                machine_set_runstate(mig->m, RUN_STATE_PAUSED, &e2);
            }
            error_free(e2);
        }
        set_status(mig, cancelled ? MIG_STATUS_CANCELLED : MIG_STATUS_FAILED);
    }
    stream_save_cleanup(mig->reg);
    return NULL;
}

bool migration_start(struct migration *mig, const char *uri, Error **errp)
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
        mig->thread_running = false;
    }
    if (mig->blocker) {
        error_setg(errp, "migration is blocked: %s", mig->blocker);
        return false;
    }
    enum run_state rs = machine_runstate(mig->m);
    if (rs == RUN_STATE_INMIGRATE || rs == RUN_STATE_INTERNAL_ERROR ||
        rs == RUN_STATE_SHUTDOWN) {
        error_setg(errp, "cannot migrate a machine in state %s",
                   runstate_name(rs));
        return false;
    }
    if (!mig_config_check(&mig->cfg, errp)) {
        return false;
    }
    mig_uri_clear(&mig->uri);
    if (!mig_uri_parse(uri, &mig->uri, errp)) {
        return false;
    }
    if (mig->cfg.caps[MIG_CAP_MULTIFD] && !mig_uri_is_socket(&mig->uri)) {
        error_setg(errp, "multifd needs a tcp: or unix: URI");
        return false;
    }
    memset(mig->error, 0, sizeof(mig->error));
    atomic_store(&mig->cancel, false);
    mig->continue_ok = false;
    mig->throttle_pct = 0;
    mig->downtime_ns = 0;
    mig->expected_downtime_ms = 0;
    mig->mbps = 0;
    mig->start_ns = clock_mono_ns();
    mig->end_ns = 0;
    set_status(mig, MIG_STATUS_SETUP);
    if (!mig_connect(&mig->uri, mig->fds, &mig->conn, errp)) {
        snprintf(mig->error, sizeof(mig->error), "%s",
                 error_get_pretty(*errp));
        set_status(mig, MIG_STATUS_FAILED);
        return false;
    }
    mig->f = mig->conn.is_socket ?
             chan_new_socket(mig->conn.fd, true, false, "migration") :
             chan_new_fd(mig->conn.fd, true, false, "migration");
    if (pthread_create(&mig->thread, NULL, migration_thread, mig) != 0) {
        error_setg(errp, "cannot start the migration thread");
        chan_close(mig->f, NULL);
        mig_conn_close(&mig->conn, NULL);
        set_status(mig, MIG_STATUS_FAILED);
        return false;
    }
    mig->thread_running = true;
    return true;
}

void migration_cancel(struct migration *mig)
{
    pthread_mutex_lock(&mig->lock);
    if (mig_status_is_active(mig->status)) {
        atomic_store(&mig->cancel, true);
        mig->status = MIG_STATUS_CANCELLING;
        pthread_cond_broadcast(&mig->cond);
        /* Unblock a thread stuck writing to a slow or dead peer. */
        if (mig->f) {
            chan_shutdown(mig->f);
        }
        ram_state_cancel_multifd(mig->rs);
        pthread_mutex_unlock(&mig->lock);
        if (mig->notify) {
            mig->notify(mig->opaque, MIG_STATUS_CANCELLING);
        }
        return;
    }
    pthread_mutex_unlock(&mig->lock);
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
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
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
    info->ram = mig->ram_final;
    snprintf(info->error, sizeof(info->error), "%s", mig->error);
    bool active = mig_status_is_active(mig->status);
    pthread_mutex_unlock(&mig->lock);
    if (active) {
        ram_state_get_stats(mig->rs, &info->ram);
    }
    if (info->status == MIG_STATUS_COMPLETED && info->total_time_ms) {
        info->mbps = (double)info->ram.transferred * 8 / 1000.0 /
                     (double)info->total_time_ms;
    } else {
        info->mbps = mig->mbps;
    }
    if (mig->cfg.caps[MIG_CAP_XBZRLE]) {
        info->xbzrle_cache_size = mig->cfg.params[MIG_PARAM_XBZRLE_CACHE_SIZE];
        struct ram_stats *r = &info->ram;
        info->xbzrle_cache_miss_rate = r->xbzrle_pages_checked ?
            (double)r->xbzrle_cache_miss / (double)r->xbzrle_pages_checked : 0;
        info->xbzrle_encoding_rate = r->xbzrle_bytes ?
            (double)r->xbzrle_raw_bytes / (double)r->xbzrle_bytes : 0;
    }
    if (mig->cfg.caps[MIG_CAP_MULTIFD]) {
        info->multifd_channels = (int)mig->cfg.params[MIG_PARAM_MULTIFD_CHANNELS];
        info->multifd_bytes = mig->multifd_bytes;
    }
}

static bool refuse_while_active(struct migration *mig, const char *what,
                                Error **errp)
{
    if (mig_status_is_active(migration_status(mig))) {
        error_setg(errp, "cannot change %s while a migration is in progress",
                   what);
        return false;
    }
    return true;
}

bool migration_set_capability(struct migration *mig, const char *name,
                              bool on, Error **errp)
{
    return refuse_while_active(mig, "capabilities", errp) &&
           mig_set_capability(&mig->cfg, name, on, errp);
}

bool migration_set_parameter(struct migration *mig, const char *name,
                             const char *value, Error **errp)
{
    return mig_set_parameter_str(&mig->cfg, name, value, errp);
}

void migration_set_blocker(struct migration *mig, const char *reason)
{
    free(mig->blocker);
    mig->blocker = reason ? strdup(reason) : NULL;
}
