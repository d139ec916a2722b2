/* VM clock on top of CLOCK_MONOTONIC. */
#include "machine/vmclock.h"

#include "util/clock.h"

void vmclock_init(struct vmclock *c)
{
    pthread_mutex_init(&c->lock, NULL);
    c->base_ns = 0;
    c->started_at = 0;
    c->running = false;
}

void vmclock_destroy(struct vmclock *c)
{
    pthread_mutex_destroy(&c->lock);
}

int64_t vmclock_get_ns(struct vmclock *c)
{
    pthread_mutex_lock(&c->lock);
    int64_t ns = c->base_ns;
    if (c->running) {
        ns += (int64_t)clock_mono_ns() - c->started_at;
    }
    pthread_mutex_unlock(&c->lock);
    return ns;
}

void vmclock_set_ns(struct vmclock *c, int64_t ns)
{
    pthread_mutex_lock(&c->lock);
    c->base_ns = ns;
    c->started_at = (int64_t)clock_mono_ns();
    pthread_mutex_unlock(&c->lock);
}

void vmclock_start(struct vmclock *c)
{
    pthread_mutex_lock(&c->lock);
    if (!c->running) {
        c->started_at = (int64_t)clock_mono_ns();
        c->running = true;
    }
    pthread_mutex_unlock(&c->lock);
}

void vmclock_stop(struct vmclock *c)
{
    pthread_mutex_lock(&c->lock);
    if (c->running) {
        c->base_ns += (int64_t)clock_mono_ns() - c->started_at;
        c->running = false;
    }
    pthread_mutex_unlock(&c->lock);
}
