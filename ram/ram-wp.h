/* Write tracking for background snapshots: guest RAM is write-protected
 * with userfaultfd (or the accelerator's write guard), and every page is
 * copied exactly once, in the state it had when tracking started.  The
 * saving thread claims pages in order, copies them and lifts their
 * protection; a page the guest writes first faults, and a thread of our
 * own (with the guard: the writer itself) copies it into a bounded queue
 * and lets the writer go at once (the writer waits only for that page,
 * unless the queue is full).  The saver sends queued copies before going
 * on in order.
 *
 * A page is claimed once (an atomic bit per page), by whichever of the two
 * gets there first; only the claimer copies it and lifts its protection. */
#ifndef HOP_RAM_RAM_WP_H
#define HOP_RAM_RAM_WP_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

#define RAM_WP_PAGE_SIZE 4096u
#define RAM_WP_MAX_RANGES 8

struct ram_wp;

/* One region of guest RAM: page aligned, name for errors. */
struct ram_wp_range {
    uint8_t *host;
    uint64_t npages;
    const char *name;
};

/* A page the guest faulted on, as it was before the write. */
struct ram_wp_copy {
    int range;
    uint64_t page;
    uint8_t *data; /* RAM_WP_PAGE_SIZE bytes, valid until ram_wp_put */
};

/* Whether the kernel lets this process write-protect these ranges;
 * errors name the range and the reason. */
bool ram_wp_check(const struct ram_wp_range *r, int n, Error **errp);
/* Protects every page of the ranges and starts the fault thread.  Copies
 * go to queue (queue_pages pages, the caller's until ram_wp_stop); when
 * it is full, a faulting writer waits.  With guard (machine/write-guard.h,
 * over exactly the one range r[0]), the guard protects instead of
 * userfaultfd and the writer copies on its own thread: no page table
 * changes, no thread. */
struct write_guard;
struct ram_wp *ram_wp_start(const struct ram_wp_range *r, int n,
                            struct write_guard *guard, uint8_t *queue,
                            unsigned queue_pages, Error **errp);
/* Lifts all protection (every waiting writer goes on), ends the thread
 * and frees everything.  NULL is fine. */
void ram_wp_stop(struct ram_wp *wp);

/* Claims the pages not yet claimed among the (up to) 64 of word `word`
 * of range r, and returns them as a mask (bit i: page word*64+i).  The
 * caller copies them, then releases them. */
uint64_t ram_wp_claim(struct ram_wp *wp, int r, uint64_t word);
/* Lifts the protection of npages from first (claimed pages, copied). */
bool ram_wp_release(struct ram_wp *wp, int r, uint64_t first, uint64_t npages,
                    Error **errp);
/* Up to max queued copies, oldest first; give them back with ram_wp_put
 * once sent. */
int ram_wp_take(struct ram_wp *wp, struct ram_wp_copy *out, int max);
void ram_wp_put(struct ram_wp *wp, const struct ram_wp_copy *c, int n);
/* No copy queued or being made: with every page claimed, nothing more
 * can come. */
bool ram_wp_idle(struct ram_wp *wp);
/* false, with the fault thread's error, once it failed. */
bool ram_wp_ok(struct ram_wp *wp, Error **errp);
/* Pages the guest faulted on so far. */
uint64_t ram_wp_faults(struct ram_wp *wp);
/* The protection splits huge pages (userfaultfd's does; the write
 * guard's leaves page tables alone): worth joining them again after. */
bool ram_wp_splits_huge_pages(const struct ram_wp *wp);

#endif
