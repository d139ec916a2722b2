/* Copy-before-write in software (see write-guard.h). */
#include "machine/write-guard.h"

#include <sched.h>
#include <stdlib.h>

#include "util/alloc.h"

static uint64_t nwords(const struct write_guard *g)
{
    return (g->npages + WRITE_GUARD_BITS - 1) / WRITE_GUARD_BITS;
}

struct write_guard *write_guard_new(uint64_t npages)
{
    struct write_guard *g = xcalloc(1, sizeof(*g));
    g->npages = npages;
    g->bits = xcalloc(nwords(g) + 1, sizeof(uint64_t));
    return g;
}

void write_guard_free(struct write_guard *g)
{
    if (!g) {
        return;
    }
    free((void *)g->bits);
    free(g);
}

void write_guard_arm(struct write_guard *g,
                     void (*before_write)(void *opaque, uint64_t page),
                     void *opaque)
{
    g->before_write = before_write;
    g->opaque = opaque;
    uint64_t n = nwords(g);
    for (uint64_t w = 0; w < n; w++) {
        uint64_t left = g->npages - w * WRITE_GUARD_BITS;
        uint64_t mask = left >= WRITE_GUARD_BITS ? ~0ull : (1ull << left) - 1;
        atomic_store_explicit(&g->bits[w], mask, memory_order_relaxed);
    }
    atomic_store(&g->armed, true);
}

void write_guard_lift(struct write_guard *g, uint64_t first, uint64_t n)
{
    if (first >= g->npages) {
        return;
    }
    if (n > g->npages - first) {
        n = g->npages - first;
    }
    uint64_t end = first + n;
    while (first < end) {
        uint64_t w = first / WRITE_GUARD_BITS, bit = first % WRITE_GUARD_BITS;
        uint64_t take = WRITE_GUARD_BITS - bit;
        if (take > end - first) {
            take = end - first;
        }
        uint64_t mask = (take == WRITE_GUARD_BITS ? ~0ull : (1ull << take) - 1)
            << bit;
        atomic_fetch_and_explicit(&g->bits[w], ~mask, memory_order_release);
        first += take;
    }
}

void write_guard_disarm(struct write_guard *g)
{
    /* Sequentially consistent with write_guard_hit: a thread either
     * counted itself in before the guards went (and is waited for) or
     * sees them gone when it looks again. */
    atomic_store(&g->armed, false);
    write_guard_lift(g, 0, g->npages);
    while (atomic_load(&g->inside) > 0) {
        sched_yield();
    }
}

void write_guard_hit(struct write_guard *g, uint64_t page)
{
    atomic_fetch_add(&g->inside, 1);
    if (atomic_load(&g->armed) && write_guard_test(g, page)) {
        g->before_write(g->opaque, page);
    }
    atomic_fetch_sub(&g->inside, 1);
}
