/* The "ram" section: guest RAM carried through the section stream as a
 * live handler.  Saving: the block list at setup, every page once in the
 * first pass, then the pages the guest dirtied again, while it runs; at
 * completion the last dirty pages.  Zero pages travel as a flag; with
 * XBZRLE, pages sent before travel as deltas.  Loading: pages land in the
 * machine's RAM blocks; zero pages never touch memory that was never
 * written, so it stays unallocated. */
#ifndef HOP_RAM_RAM_H
#define HOP_RAM_RAM_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"
#include "vmstate/stream.h"

struct machine;
struct ram_state;

struct ram_params {
    bool xbzrle;
    uint64_t xbzrle_cache_size; /* bytes */
    /* x-ignore-shared: blocks on shared memory are neither sent nor
     * expected; each block entry carries its guest address. */
    bool ignore_shared;
    /* release-ram: once the guest stopped, each page is freed on this
     * side as soon as it went out (the destination holds it now). */
    bool release_ram;
    /* background-snapshot: after ram_state_start_tracking, pages go in
     * the state they had then (ram/ram-wp.h), each once. */
    bool background;
    /* mapped-ram (file: only): pages at fixed offsets of the file, zero
     * pages unwritten; with mapped_threads > 0 written and read by that
     * many threads; direct_io through an O_DIRECT descriptor.  Loading
     * takes mapped-ram from the stream, threads and direct_io from here. */
    bool mapped_ram;
    int mapped_threads;
    bool direct_io;
    /* postcopy-ram, saving: remember which pages went, for the discard
     * set at the switch (ram_postcopy_*). */
    bool postcopy_ram;
};

/* Counters, as `info migrate` shows them. */
struct ram_stats {
    uint64_t transferred;         /* bytes of RAM records sent */
    uint64_t multifd_transferred; /* of which over multifd channels */
    uint64_t mapped_transferred;  /* of which written at file offsets */
    uint64_t normal_pages;        /* sent whole */
    uint64_t zero_pages;          /* sent as ZERO ("duplicate") */
    uint64_t xbzrle_pages;
    uint64_t xbzrle_bytes;
    uint64_t xbzrle_cache_miss;
    uint64_t xbzrle_overflow;
    uint64_t xbzrle_pages_checked; /* lookups, for the miss rate */
    uint64_t xbzrle_raw_bytes;     /* page bytes the deltas stood for */
    uint64_t dirty_sync_count;     /* dirty log syncs */
    uint64_t passes;               /* walks over every block finished */
    uint64_t dirty_pages_rate;     /* pages dirtied per second, last pass */
    uint64_t remaining;            /* bytes still dirty */
    uint64_t total;                /* bytes of all blocks */
    uint64_t iterations;
    uint64_t released_pages;    /* freed here after sending (release-ram) */
    uint64_t wp_faults;         /* background-snapshot: sent ahead of turn */
    uint64_t postcopy_requests; /* pages the destination asked for */
    uint64_t postcopy_bytes;    /* RAM bytes sent after the switch */
    uint64_t preempt_bytes;     /* of them, on postcopy-preempt's channel */
};

struct ram_state *ram_state_new(struct machine *m);
void ram_state_free(struct ram_state *rs);
/* Before a save: choose encodings.  false if the cache can't be had. */
bool ram_state_configure(struct ram_state *rs, const struct ram_params *p,
                         Error **errp);
void ram_state_get_stats(struct ram_state *rs, struct ram_stats *st);
/* Loading into a machine that has not run (an incoming migration): zero
 * pages are skipped, not written, where the memory reads as zeros already
 * (it stays unallocated), and clear pages that may hold data (a file
 * backend's earlier contents, the loaded firmware; every page, where the
 * backend cannot tell).  Otherwise (loadvm) zero pages clear whatever the
 * page held. */
void ram_state_set_fresh(struct ram_state *rs, bool fresh);
/* multifd, sending: pages of the passes go over the connections fds
 * (taken over, closed on failure; each has sent its header, see
 * multifd_send_header).  stop waits until they are all written. */
bool ram_state_start_multifd(struct ram_state *rs, const int *fds, int n,
                             Error **errp);
bool ram_state_stop_multifd(struct ram_state *rs, uint64_t *bytes,
                            Error **errp);
/* Unblock the channels of a migration being cancelled (any thread). */
void ram_state_cancel_multifd(struct ram_state *rs);
/* multifd, receiving: ready for channels, a channel arrived (its whole
 * header is in; fd taken over), stop waiting (from another thread that
 * ends before recv_end), loading ended.  Without recv_begin, a stream
 * that uses multifd fails at its first flush. */
void ram_state_multifd_recv_begin(struct ram_state *rs);
bool ram_state_multifd_recv_add(struct ram_state *rs, int fd, Error **errp);
void ram_state_multifd_recv_cancel(struct ram_state *rs);
bool ram_state_multifd_recv_end(struct ram_state *rs, Error **errp);
/* background-snapshot: whether the kernel lets us write-protect every
 * block of guest RAM (errors name the block and the reason). */
bool ram_background_check(struct machine *m, Error **errp);
/* With the guest stopped, after the setup section: write-protect RAM; the
 * iterations then send it as it is now.  stop lifts the protection (also
 * done by cleanup); both are safe to call again. */
/* Before the guest stops for the start: makes room for the copies (up to
 * all of RAM, kept between saves); start does it if not done. */
bool ram_state_prepare_tracking(struct ram_state *rs, Error **errp);
bool ram_state_start_tracking(struct ram_state *rs, Error **errp);
void ram_state_stop_tracking(struct ram_state *rs);
/* Pages the guest wrote first, that went ahead of their turn. */
uint64_t ram_state_tracking_faults(struct ram_state *rs);
/* ---- postcopy-ram (ram/ram-postcopy.h) ---- */

/* Whether this host can serve guest RAM's missing pages (userfaultfd). */
bool ram_postcopy_check(struct machine *m, Error **errp);
/* Source: POSTCOPY_ADVISE's body for this machine. */
void ram_postcopy_advise_body(struct ram_state *rs, uint8_t out[16]);
/* Source, for the postcopy switch: a sync, then POSTCOPY_RAM_DISCARD
 * commands naming every page sent and dirty again, as few ranges as the
 * bitmap allows; those pages count as not sent from then on, so a later
 * call names only what was sent, clean and dirtied since.  *pages: how
 * many it named.  Once with the guest still running (the bulk), once
 * stopped (the rest). */
bool ram_postcopy_send_discards(struct ram_state *rs, Channel *f,
                                uint64_t *pages, Error **errp);
/* Source: from now on each dirty page goes once, requested ones first. */
void ram_postcopy_begin(struct ram_state *rs);
/* Source, any thread (the return path's): the destination asks for len
 * bytes at start of block name (NULL: the block of its last request). */
bool ram_postcopy_request(struct ram_state *rs, const char *name,
                          uint64_t start, uint32_t len, Error **errp);
/* Destination: the commands, and the end of postcopy (RAM unregistered;
 * false with the fault thread's error if it failed). */
bool ram_incoming_advise(struct ram_state *rs, const uint8_t *data,
                         uint16_t len, Error **errp);
/* After ADVISE: what LISTEN needs and can be had before the switch (the
 * userfaultfd, the fault thread asking with request), so that LISTEN
 * only registers RAM; blocktime as the capability is now.  Undone by
 * ram_incoming_unprepare (the migration ended without LISTEN). */
bool ram_incoming_prepare_listen(struct ram_state *rs,
                                 bool (*request)(void *opaque, const char *name,
                                                 uint64_t start, uint32_t len,
                                                 Error **errp),
                                 void *opaque, bool blocktime, Error **errp);
void ram_incoming_unprepare(struct ram_state *rs);
bool ram_incoming_discard(struct ram_state *rs, const uint8_t *data,
                          uint16_t len, Error **errp);
/* blocktime: account for the vCPUs' waits (postcopy-blocktime). */
bool ram_incoming_listen(struct ram_state *rs,
                         bool (*request)(void *opaque, const char *name,
                                         uint64_t start, uint32_t len,
                                         Error **errp),
                         void *opaque, bool blocktime, Error **errp);
/* Destination, postcopy-blocktime: the figures of the last postcopy that
 * accounted them (false: none did). */
struct postcopy_bt_stats;
bool ram_incoming_blocktime(struct ram_state *rs,
                            struct postcopy_bt_stats *out);
/* Whether the kernel tells which thread faulted (postcopy-blocktime). */
bool ram_postcopy_blocktime_check(Error **errp);
bool ram_incoming_postcopy_end(struct ram_state *rs, Error **errp);

/* Postcopy recovery (after the link died and a new one came).
 * Source: a RECV_BITMAP command for every block (returns how many, or -1
 * with errp); the size each block's bitmap has; a bitmap that came (as on
 * the wire, see migration/return-path.h) makes every page not received
 * dirty; then resume starts the walk afresh with an empty request
 * queue. */
int ram_postcopy_send_recv_bitmaps(struct ram_state *rs, Channel *f,
                                   Error **errp);
bool ram_postcopy_bitmap_size(struct ram_state *rs, const char *name,
                              uint64_t *size, Error **errp);
bool ram_postcopy_take_bitmap(struct ram_state *rs, const char *name,
                              const uint8_t *wire, uint64_t size, Error **errp);
void ram_postcopy_resume(struct ram_state *rs);
/* Source: the link died; requests queued are forgotten (the destination
 * asks again after the recovery). */
void ram_postcopy_pause(struct ram_state *rs);
/* Destination: RECV_BITMAP's body names a block; its received pages (host
 * words, caller frees), its name and size in pages.  Resume: the pages
 * asked for that never came are asked for again. */
unsigned long *ram_incoming_received(struct ram_state *rs, const uint8_t *data,
                                     uint16_t len, const char **name,
                                     uint64_t *npages, Error **errp);
void ram_incoming_resume(struct ram_state *rs);
/* Destination: the link died. */
void ram_incoming_pause(struct ram_state *rs);

/* postcopy-preempt (ram/ram-preempt.c).  Source: requested pages go on f
 * (NULL: none; f stays the caller's); ram_postcopy_send_urgent sends
 * those of [page, page+npages) of block still dirty there (false: no
 * channel, or it broke: queue them); preempt_end ends the channel with
 * EOS once everything went.  Destination: a thread places what comes on
 * fd (taken over; a second channel replaces the first); listen says
 * whether POSTCOPY_LISTEN came; end stops it, at its EOS if drain, and
 * says whether EOS came. */
void ram_postcopy_set_preempt(struct ram_state *rs, Channel *f);
bool ram_postcopy_send_urgent(struct ram_state *rs, int block, uint64_t page,
                              uint64_t npages);
bool ram_postcopy_preempt_end(struct ram_state *rs, Error **errp);
bool ram_incoming_preempt(struct ram_state *rs, int fd, Error **errp);
void ram_incoming_preempt_listen(struct ram_state *rs, bool on);
bool ram_incoming_preempt_end(struct ram_state *rs, bool drain);

/* Registers rs as the "ram" section (version 4) of reg. */
bool ram_register(struct ram_state *rs, struct section_registry *reg,
                  Error **errp);

extern const struct live_handler_ops ram_live_ops;

#endif
