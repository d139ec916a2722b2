/* vCPU threads and the start/stop handshake. */
#include "machine/vcpu.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The throttle lets vCPUs run this long between sleeps. */
#define THROTTLE_SLICE_NS (10 * 1000 * 1000L)

static void sleep_ns(long ns)
{
    struct timespec ts = { ns / 1000000000L, ns % 1000000000L };
    while (nanosleep(&ts, &ts) < 0) {
    }
}

static bool may_run(const struct vcpu_set *set, const struct vcpu *v)
{
    return set->started && !v->halted && !atomic_load(&v->stop);
}

/* Stop every vCPU without waiting (set->lock held). */
static void request_stop_locked(struct vcpu_set *set)
{
    set->started = false;
    for (int i = 0; i < set->n; i++) {
        struct vcpu *v = &set->vcpus[i];
        atomic_store(&v->stop, 1);
        if (v->in_guest) {
            set->ops->vcpu_kick(v->av);
        }
    }
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    struct vcpu_set *set = v->set;
    char err[256];

    pthread_mutex_lock(&set->lock);
    atomic_store(&v->tid, (int)gettid());
    pthread_cond_broadcast(&set->cond); /* vcpus_init waits for it */
    for (;;) {
        while (!set->quit && !may_run(set, v)) {
            pthread_cond_wait(&set->cond, &set->lock);
        }
        if (set->quit) {
            break;
        }
        v->in_guest = true;
        pthread_mutex_unlock(&set->lock);

        err[0] = '\0';
        enum accel_exit why =
            set->ops->vcpu_run(v->av, &v->stop, err, sizeof(err));

        pthread_mutex_lock(&set->lock);
        v->in_guest = false;
        v->exits++;
        pthread_cond_broadcast(&set->cond);
        if (why == ACCEL_EXIT_STOP) {
            if (v->throttle_kick) {
                v->throttle_kick = 0;
                int pct = atomic_load(&set->throttle_pct);
                /* Only the throttle stopped us: sleep, then carry on. */
                if (set->started && pct > 0) {
                    atomic_store(&v->stop, 0);
                    pthread_mutex_unlock(&set->lock);
                    sleep_ns(THROTTLE_SLICE_NS * pct / (100 - pct));
                    pthread_mutex_lock(&set->lock);
                } else if (set->started) {
                    atomic_store(&v->stop, 0);
                }
            }
            continue;
        }
        if (why == ACCEL_EXIT_HLT) {
            v->halted = true; /* no interrupts: parked for good */
            continue;
        }
        /* Shutdown or error: the whole machine stops. */
        request_stop_locked(set);
        pthread_mutex_unlock(&set->lock);
        if (set->on_exit) {
            set->on_exit(set->opaque, v->index, why, err);
        }
        pthread_mutex_lock(&set->lock);
    }
    pthread_mutex_unlock(&set->lock);
    return NULL;
}

bool vcpus_init(struct vcpu_set *set, const struct accel_ops *ops,
                struct accel *acc, int n, vcpu_exit_fn on_exit, void *opaque,
                Error **errp)
{
    memset(set, 0, sizeof(*set));
    pthread_mutex_init(&set->lock, NULL);
    pthread_cond_init(&set->cond, NULL);
    set->ops = ops;
    set->on_exit = on_exit;
    set->opaque = opaque;
    if (n < 1 || n > VCPU_MAX) {
        error_setg(errp, "%d vCPUs: must be 1 to %d", n, VCPU_MAX);
        return false;
    }
    for (int i = 0; i < n; i++) {
        struct vcpu *v = &set->vcpus[i];
        v->set = set;
        v->index = i;
        atomic_init(&v->stop, 1);
        v->av = ops->vcpu_create(acc, i, errp);
        if (!v->av) {
            return false;
        }
        set->n = i + 1;
    }
    /* Threads block the kick signal except inside vcpu_run (the
     * accelerator unblocks it there), so other threads never see it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < n; i++) {
        struct vcpu *v = &set->vcpus[i];
        int e = pthread_create(&v->thread, NULL, vcpu_thread, v);
        if (e) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            error_setg_errno(errp, e, "vCPU %d: cannot start its thread", i);
            return false;
        }
        v->thread_started = true;
        char name[16];
        snprintf(name, sizeof(name), "vcpu%d", i);
        pthread_setname_np(v->thread, name);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Every vCPU's thread id is known once the machine exists: info cpus
     * and query-cpus-fast report it from the first moment. */
    pthread_mutex_lock(&set->lock);
    for (int i = 0; i < n; i++) {
        while (atomic_load(&set->vcpus[i].tid) == 0) {
            pthread_cond_wait(&set->cond, &set->lock);
        }
    }
    pthread_mutex_unlock(&set->lock);
    return true;
}

void vcpus_destroy(struct vcpu_set *set)
{
    if (!set->ops) {
        return;
    }
    vcpus_stop(set);
    pthread_mutex_lock(&set->lock);
    set->quit = true;
    pthread_cond_broadcast(&set->cond);
    pthread_mutex_unlock(&set->lock);
    if (set->throttle_started) {
        pthread_join(set->throttle_thread, NULL);
        set->throttle_started = false;
    }
    for (int i = 0; i < set->n; i++) {
        struct vcpu *v = &set->vcpus[i];
        if (v->thread_started) {
            pthread_join(v->thread, NULL);
        }
        if (v->av) {
            set->ops->vcpu_destroy(v->av);
        }
    }
    pthread_cond_destroy(&set->cond);
    pthread_mutex_destroy(&set->lock);
    set->ops = NULL;
}

void vcpus_start(struct vcpu_set *set)
{
    pthread_mutex_lock(&set->lock);
    for (int i = 0; i < set->n; i++) {
        atomic_store(&set->vcpus[i].stop, 0);
    }
    set->started = true;
    pthread_cond_broadcast(&set->cond);
    pthread_mutex_unlock(&set->lock);
}

void vcpus_stop(struct vcpu_set *set)
{
    pthread_mutex_lock(&set->lock);
    request_stop_locked(set);
    for (;;) {
        bool any = false;
        for (int i = 0; i < set->n; i++) {
            if (set->vcpus[i].in_guest) {
                any = true;
            }
        }
        if (!any) {
            break;
        }
        pthread_cond_wait(&set->cond, &set->lock);
    }
    pthread_mutex_unlock(&set->lock);
}

void vcpus_set_halted(struct vcpu_set *set, int index, bool halted)
{
    pthread_mutex_lock(&set->lock);
    set->vcpus[index].halted = halted;
    pthread_cond_broadcast(&set->cond);
    pthread_mutex_unlock(&set->lock);
}

uint64_t vcpus_icount(struct vcpu_set *set)
{
    uint64_t n = 0;
    for (int i = 0; i < set->n; i++) {
        if (set->ops->icount) {
            n += set->ops->icount(set->vcpus[i].av);
        }
    }
    return n;
}

/* Every slice, stop the vCPUs that run guest code; each sleeps its share
 * of the time before going on (see vcpu_thread). */
static void *throttle_thread(void *arg)
{
    struct vcpu_set *set = arg;
    pthread_mutex_lock(&set->lock);
    while (!set->quit) {
        if (atomic_load(&set->throttle_pct) == 0) {
            pthread_cond_wait(&set->cond, &set->lock);
            continue;
        }
        pthread_mutex_unlock(&set->lock);
        sleep_ns(THROTTLE_SLICE_NS);
        pthread_mutex_lock(&set->lock);
        for (int i = 0; i < set->n && set->started; i++) {
            struct vcpu *v = &set->vcpus[i];
            if (v->in_guest && !atomic_load(&v->stop)) {
                v->throttle_kick = 1;
                atomic_store(&v->stop, 1);
                set->ops->vcpu_kick(v->av);
            }
        }
    }
    pthread_mutex_unlock(&set->lock);
    return NULL;
}

void vcpus_set_throttle(struct vcpu_set *set, int pct)
{
    if (pct < 0) {
        pct = 0;
    } else if (pct > 99) {
        pct = 99;
    }
    pthread_mutex_lock(&set->lock);
    atomic_store(&set->throttle_pct, pct);
    if (pct > 0 && !set->throttle_started) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        if (pthread_create(&set->throttle_thread, NULL, throttle_thread, set) ==
            0) {
            set->throttle_started = true;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_cond_broadcast(&set->cond);
    pthread_mutex_unlock(&set->lock);
}
