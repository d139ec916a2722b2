#include "migration/dirty-rate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "machine/machine.h"
#include "util/guest-reads.h"
#include "util/alloc.h"

/* Pages sampled per GiB of RAM (at least 256 in all). */
#define SAMPLES_PER_GIB 4096

const char *dirty_rate_status_name(enum dirty_rate_status st)
{
    switch (st) {
    case DIRTY_RATE_UNSTARTED:
        return "unstarted";
    case DIRTY_RATE_MEASURING:
        return "measuring";
    case DIRTY_RATE_MEASURED:
        return "measured";
    }
    return "unknown";
}

void dirty_rate_init(struct dirty_rate *d)
{
    memset(d, 0, sizeof(*d));
    pthread_mutex_init(&d->lock, NULL);
}

void dirty_rate_destroy(struct dirty_rate *d)
{
    if (d->thread_started) {
        pthread_join(d->thread, NULL);
    }
    pthread_mutex_destroy(&d->lock);
}

static uint64_t page_hash(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    uint64_t h = 1469598103934665603ull;
    GUEST_READS_BEGIN();
    for (size_t i = 0; i < 4096 / 8; i++) {
        h = (h ^ w[i]) * 1099511628211ull;
    }
    GUEST_READS_END();
    return h;
}

static void *measure(void *opaque)
{
    struct dirty_rate *d = opaque;
    struct ram_block *b = memory_main_block(machine_memory(d->m));
    uint64_t n = b->npages * SAMPLES_PER_GIB / (1u << 18);
    if (n < 256) {
        n = b->npages < 256 ? b->npages : 256;
    }
    uint64_t *pages = xmalloc(n * sizeof(*pages));
    uint64_t *hash = xmalloc(n * sizeof(*hash));
    uint64_t seed = (uint64_t)time(NULL) | 1;
    for (uint64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        pages[i] = (seed >> 17) % b->npages;
        hash[i] = page_hash(b->host + pages[i] * 4096);
    }
    pthread_mutex_lock(&d->lock);
    int64_t secs = d->info.calc_time;
    pthread_mutex_unlock(&d->lock);
    sleep((unsigned)secs);
    uint64_t changed = 0;
    for (uint64_t i = 0; i < n; i++) {
        changed += page_hash(b->host + pages[i] * 4096) != hash[i];
    }
    free(pages);
    free(hash);
    pthread_mutex_lock(&d->lock);
    d->info.sampled = n;
    d->info.changed = changed;
    /* Changed share of RAM, per second, in MiB. */
    d->info.rate_mbps = (uint64_t)((double)changed / (double)n *
                                   (double)b->size / (1 << 20) / (double)secs);
    d->info.status = DIRTY_RATE_MEASURED;
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

bool dirty_rate_start(struct dirty_rate *d, struct machine *m, int seconds,
                      Error **errp)
{
    if (seconds < 1 || seconds > 60) {
        error_setg(errp, "calc-time must be between 1 and 60 seconds");
        return false;
    }
    pthread_mutex_lock(&d->lock);
    if (d->info.status == DIRTY_RATE_MEASURING) {
        pthread_mutex_unlock(&d->lock);
        error_setg(errp, "the dirty rate is already being measured");
        return false;
    }
    pthread_mutex_unlock(&d->lock);
    if (d->thread_started) {
        pthread_join(d->thread, NULL);
        d->thread_started = false;
    }
    d->m = m;
    d->info = (struct dirty_rate_info){ .status = DIRTY_RATE_MEASURING,
                                        .start_time = time(NULL),
                                        .calc_time = seconds };
    if (pthread_create(&d->thread, NULL, measure, d) != 0) {
        error_setg(errp, "cannot start the measuring thread");
        d->info.status = DIRTY_RATE_UNSTARTED;
        return false;
    }
    d->thread_started = true;
    return true;
}

void dirty_rate_query(struct dirty_rate *d, struct dirty_rate_info *out)
{
    pthread_mutex_lock(&d->lock);
    *out = d->info;
    pthread_mutex_unlock(&d->lock);
}
