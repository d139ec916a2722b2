/* Postcopy RAM (capability postcopy-ram), as QEMU: the guest runs at the
 * destination before all of its RAM arrived.
 *
 * Source: a bitmap of the pages sent in precopy; at the switch, with the
 * guest stopped, the pages sent and dirty again are named in
 * POSTCOPY_RAM_DISCARD commands; afterwards every dirty page goes exactly
 * once, those the destination asks for (REQ_PAGES on the return path)
 * ahead of the rest.
 *
 * Destination: POSTCOPY_ADVISE checks page sizes and drops whatever RAM
 * holds (every page comes from the source); DISCARD punches pages out;
 * LISTEN registers guest RAM with userfaultfd in missing mode and starts
 * a thread that turns each fault into a page request; pages arriving from
 * then on are placed atomically (UFFDIO_COPY / UFFDIO_ZEROPAGE), which
 * wakes whoever waits for them.
 *
 * The wire parsers are here too, apart, for the unit tests. */
#ifndef HOP_RAM_RAM_POSTCOPY_H
#define HOP_RAM_RAM_POSTCOPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct machine_memory;

/* Ranges per POSTCOPY_RAM_DISCARD command, as QEMU sends them. */
#define POSTCOPY_DISCARD_MAX_RANGES 12
/* The largest command: version, name length, name, NUL, the ranges. */
#define POSTCOPY_DISCARD_MAX_LEN (3 + 255 + 16 * POSTCOPY_DISCARD_MAX_RANGES)

/* POSTCOPY_ADVISE's body: be64 summary of the RAM page sizes, be64 target
 * page size.  A body of 0 bytes (postcopy not asked for) is refused. */
bool postcopy_advise_parse(const uint8_t *data, size_t len, uint64_t *summary,
                           uint64_t *target_page, Error **errp);
/* Writes the 16-byte body. */
void postcopy_advise_encode(uint8_t out[16], uint64_t summary,
                            uint64_t target_page);

struct postcopy_discard {
    char name[256];
    unsigned n;
    uint64_t start[POSTCOPY_DISCARD_MAX_RANGES]; /* bytes in the block */
    uint64_t len[POSTCOPY_DISCARD_MAX_RANGES];
};
/* POSTCOPY_RAM_DISCARD's body: u8 version 0, u8 name length, the name,
 * u8 0, then (be64 start, be64 length) pairs. */
bool postcopy_discard_parse(const uint8_t *data, size_t len,
                            struct postcopy_discard *out, Error **errp);
/* Encodes d into out (POSTCOPY_DISCARD_MAX_LEN bytes); returns the
 * length. */
size_t postcopy_discard_encode(const struct postcopy_discard *d, uint8_t *out);

/* A byte range of a named block, as DISCARD and REQ_PAGES name it:
 * the block must exist, the range be page aligned, non-empty and inside
 * it.  *block gets its index.  what names the message in errors. */
bool postcopy_range_check(const struct machine_memory *mem, const char *name,
                          uint64_t start, uint64_t len, const char *what,
                          int *block, Error **errp);

/* Whether this host can serve missing pages of every block of mem with
 * userfaultfd (errors name the block and the reason). */
bool postcopy_host_check(const struct machine_memory *mem, Error **errp);

/* ---- blocktime (capability postcopy-blocktime), as QEMU defines it ----
 *
 * A vCPU is blocked from its fault on a missing page until that page is
 * placed.  Per vCPU: the sum of its waits.  In all: the time during which
 * every vCPU was blocked at once.  Latency: the mean wait of a fault that
 * blocked a vCPU (faults of other threads are not counted).  Times are
 * CLOCK_MONOTONIC nanoseconds; the functions lock, so the fault thread
 * (begin) and the loading thread (end) may call them together. */

#define POSTCOPY_BT_MAX_VCPUS 8

struct postcopy_bt_stats {
    int nvcpus;
    uint64_t total_ns;                       /* all vCPUs blocked */
    uint64_t vcpu_ns[POSTCOPY_BT_MAX_VCPUS]; /* each one's waits */
    uint64_t faults;                         /* waits that ended */
    uint64_t vcpu_faults[POSTCOPY_BT_MAX_VCPUS];
    uint64_t wait_ns; /* sum of those waits */
};

struct postcopy_blocktime;

/* Accounts for n vCPUs (at most POSTCOPY_BT_MAX_VCPUS) whose threads have
 * the ids tids[]. */
struct postcopy_blocktime *postcopy_bt_new(int n, const int *tids);
/* Starts afresh for n vCPUs (0: none, nothing accounted). */
void postcopy_bt_reset(struct postcopy_blocktime *bt, int n, const int *tids);
void postcopy_bt_free(struct postcopy_blocktime *bt);
/* The vCPU whose thread has id tid, or -1. */
int postcopy_bt_vcpu(const struct postcopy_blocktime *bt, int tid);
/* vCPU vcpu faulted at now on page of block (again on the same page:
 * still the first wait). */
void postcopy_bt_begin(struct postcopy_blocktime *bt, int vcpu, int block,
                       uint64_t page, uint64_t now);
/* Page of block was placed at now: whoever waits for it goes on. */
void postcopy_bt_end(struct postcopy_blocktime *bt, int block, uint64_t page,
                     uint64_t now);
/* Whether some vCPU waits (a hint, without the lock). */
bool postcopy_bt_any_waiting(struct postcopy_blocktime *bt);
void postcopy_bt_read(struct postcopy_blocktime *bt,
                      struct postcopy_bt_stats *out);
/* Whether the kernel tells which thread faulted (what postcopy-blocktime
 * needs). */
bool postcopy_bt_host_check(Error **errp);

/* ---- destination ---- */

struct postcopy_in;

/* Asks the source for len bytes at start of block name; name is NULL when
 * it is the block of the previous request.  Runs on the fault thread. */
typedef bool (*postcopy_request_fn)(void *opaque, const char *name,
                                    uint64_t start, uint32_t len, Error **errp);

/* postcopy_in_new then postcopy_in_listen. */
struct postcopy_in *postcopy_in_start(struct machine_memory *mem,
                                      postcopy_request_fn fn, void *opaque,
                                      struct postcopy_blocktime *bt,
                                      Error **errp);
/* The part that can be done before the switch (at ADVISE): opens the
 * userfaultfd (thread_id: its faults name their thread, as blocktime
 * needs) and starts the fault thread, with nothing registered yet. */
struct postcopy_in *postcopy_in_new(struct machine_memory *mem,
                                    postcopy_request_fn fn, void *opaque,
                                    bool thread_id, Error **errp);
/* Whether pc's faults name their thread. */
bool postcopy_in_thread_id(const struct postcopy_in *pc);
/* The switch's part (LISTEN): registers every block of mem in missing
 * mode; with bt (may be NULL; needs thread_id), the vCPUs' waits are
 * accounted there. */
bool postcopy_in_listen(struct postcopy_in *pc, struct postcopy_blocktime *bt,
                        Error **errp);
/* Places one page of block (data NULL: a zero page); a page there already
 * is kept. */
bool postcopy_in_place(struct postcopy_in *pc, int block, uint64_t offset,
                       const uint8_t *data, Error **errp);
/* Pages the guest asked for so far. */
uint64_t postcopy_in_requests(struct postcopy_in *pc);
/* Recovery: the pages of block that are in (loaded before the switch or
 * placed since), one bit each in host words (caller frees); NULL with
 * errp if that cannot be told. */
unsigned long *postcopy_in_received(struct postcopy_in *pc, int block,
                                    Error **errp);
/* Recovery: the fault thread asks again for every page it asked for that
 * did not come (NULL is fine). */
void postcopy_in_resend(struct postcopy_in *pc);
/* The link died: the next request names its block (the source forgot
 * which block the last one was for). */
void postcopy_in_forget_block(struct postcopy_in *pc);
/* Ends the fault thread and unregisters RAM (whoever still waits goes on
 * with what the page holds); false with the fault thread's error if it
 * failed.  NULL is fine. */
bool postcopy_in_stop(struct postcopy_in *pc, Error **errp);

/* Drops the pages [start, start+len) of block b: they read as missing
 * (as zeros until registered).  For ADVISE (all of RAM) and DISCARD. */
bool postcopy_discard_range(struct machine_memory *mem, int block,
                            uint64_t start, uint64_t len, Error **errp);

#endif
