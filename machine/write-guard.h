/* Copy-before-write in software, for an accelerator that sees every
 * guest store (emu).  While armed, a store to a guarded page first calls
 * before_write on the storing thread; the callback saves the page and
 * lifts its guard.  Nothing changes the host's page tables, which on
 * some hosts costs far more than the copy (background snapshots use
 * userfaultfd write-protection where no guard is offered: kvm).
 *
 * One bit per 4 KiB page of the RAM region at guest address 0. */
#ifndef HOP_MACHINE_WRITE_GUARD_H
#define HOP_MACHINE_WRITE_GUARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WRITE_GUARD_BITS 64u
#define WRITE_GUARD_PAGE_SHIFT 12

struct write_guard {
    _Atomic uint64_t *bits; /* set: guarded */
    uint64_t npages;
    _Atomic bool armed;
    atomic_int inside; /* threads between the test and the callback */
    void (*before_write)(void *opaque, uint64_t page);
    void *opaque;
};

struct write_guard *write_guard_new(uint64_t npages);
void write_guard_free(struct write_guard *g);

/* Guards every page; before_write(opaque, page) runs before the first
 * store to each until its guard is lifted.  Only with no store under
 * way (vCPUs stopped). */
void write_guard_arm(struct write_guard *g,
                     void (*before_write)(void *opaque, uint64_t page),
                     void *opaque);
/* Lets stores to pages [first, first + n) through (release: whatever
 * was written before, e.g. the page's copy, is done first). */
void write_guard_lift(struct write_guard *g, uint64_t first, uint64_t n);
/* Lifts every guard and waits until no thread is in before_write or
 * about to enter it: the callback's opaque may go once this returns. */
void write_guard_disarm(struct write_guard *g);

/* The slow path of write_guard_check. */
void write_guard_hit(struct write_guard *g, uint64_t page);

/* Whether stores to page must call before_write first. */
static inline bool write_guard_test(struct write_guard *g, uint64_t page)
{
    return (atomic_load_explicit(&g->bits[page / WRITE_GUARD_BITS],
                                 memory_order_acquire) >>
            (page % WRITE_GUARD_BITS)) &
        1;
}

/* Called before every store to page (g may be NULL).  Unarmed, one load
 * and a branch: the vCPUs were stopped when it was armed, which orders
 * the flag for them. */
static inline void write_guard_check(struct write_guard *g, uint64_t page)
{
    if (__builtin_expect(
            g != NULL && atomic_load_explicit(&g->armed, memory_order_relaxed),
            0) &&
        page < g->npages && write_guard_test(g, page)) {
        write_guard_hit(g, page);
    }
}

#endif
