/* State shared by the RAM save and load halves. */
#ifndef HOP_RAM_RAM_INTERNAL_H
#define HOP_RAM_RAM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "machine/memory.h"
#include "ram/ram-decode.h"
#include "ram/ram-mapped.h"
#include "ram/ram-multifd.h"
#include "ram/ram-postcopy.h"
#include "ram/ram-prefault.h"
#include "ram/ram.h"
#include "ram/ram-wp.h"
#include "ram/xbzrle.h"
#include "vmstate/channel.h"

/* Page requests queued at the source; more wait for the walk. */
#define RAM_REQ_QUEUE 1024

struct ram_state {
    struct machine *m;
    struct machine_memory *mem;

    /* saving */
    struct ram_stats stats;
    int last_sent_block; /* CONTINUE applies to it; -1 none */
    int cur_block;       /* the bitmap walk position */
    uint64_t cur_word;
    uint64_t dirty_pages; /* left to send, as last counted */
    uint64_t pass_start_ns;
    uint64_t block_base[RAM_MAX_BLOCKS]; /* page keys for the cache */
    struct xbzrle_cache *xbzrle_cache;
    bool xbzrle_active; /* from the second pass on */
    uint8_t *zero_page, *scratch, *delta;
    bool membarrier_ok; /* vCPU store buffers can be drained */
    bool ignore_shared; /* x-ignore-shared, saving and loading */
    bool release_ram;   /* see struct ram_params */
    bool background;    /* see struct ram_params */
    struct ram_wp *wp;  /* background-snapshot write tracking */
    uint8_t *wp_stage;  /* copies of the pages of one bitmap word */
    uint8_t *wp_queue;  /* copies of pages written ahead of the save */
    unsigned wp_queue_pages;
    /* Which pages of the current batch may hold data (0: never written,
     * so zero), learnt after its dirty bits were taken. */
    unsigned char resident[RAM_BITS_PER_WORD * 16];
    /* loading: guest memory made ready ahead of the data */
    struct ram_prefault *prefault;
    uint64_t resident_from, resident_pages; /* page numbers */
    /* Pages go over these channels.  Set and cleared by the saving
     * thread under mfd_lock, which a cancel from another thread holds
     * while it shuts them down. */
    pthread_mutex_t mfd_lock;
    struct multifd_send *mfd;
    bool mfd_dirty; /* pages queued since the last sync */

    /* mapped-ram, saving and loading */
    struct section_registry *reg; /* says whether a stream is mapped-ram */
    bool mapped_ram;
    int mapped_threads;
    bool direct_io;
    struct mapped_io *mio;
    uint64_t pages_off[RAM_MAX_BLOCKS], bitmap_off[RAM_MAX_BLOCKS];
    unsigned long *file_bmap[RAM_MAX_BLOCKS]; /* pages in the file */
    int run_block; /* pages not written yet: a run of one block, or -1 */
    uint64_t run_start, run_len;

    /* postcopy, saving: the pages sent before the switch; after it
     * (postcopy), the destination's requests, queued by the return
     * path's thread under req_lock */
    bool postcopy_ram;
    bool postcopy;
    unsigned long *sent[RAM_MAX_BLOCKS];
    pthread_mutex_t req_lock;
    struct ram_req {
        int block;
        uint64_t page, npages;
    } req[RAM_REQ_QUEUE];
    unsigned req_head, req_len;
    int req_last_block; /* a request without a name is for it; -1 none */
    /* The walk goes on after the last requested page (a guest that asked
     * for one page likely wants the next ones): (block + 1) << 40 | page
     * after it, 0 none; set by the return path's thread.  jumped: the
     * walk skipped ahead since it last started from the beginning. */
    _Atomic uint64_t req_hint;
    bool pc_jumped;
    _Atomic unsigned req_pending;
    _Atomic uint64_t pc_requests; /* requests received (stats) */
    /* postcopy-preempt, saving: the channel requested pages go on at once,
     * written by the return path's thread under preempt_lock (NULL:
     * none, they are queued) */
    pthread_mutex_t preempt_lock;
    Channel *preempt;
    int preempt_last_block;
    _Atomic uint64_t preempt_bytes, preempt_pages;
    /* loading: the thread that places the pages coming on it, and whether
     * LISTEN came (both under preempt_lock) */
    struct preempt_in *preempt_in;
    bool preempt_listening;
    /* postcopy, loading: ADVISE came; after LISTEN, pages are placed */
    bool pc_advised;
    struct postcopy_in *pc_in;
    /* Between ADVISE and LISTEN: the fault thread, started early, with
     * nothing registered (postcopy_in_new) */
    struct postcopy_in *pc_ready;
    /* postcopy-blocktime: from the first LISTEN with it on, kept for
     * query-migrate after the end (read by the monitor) */
    struct postcopy_blocktime *_Atomic pc_bt;

    /* loading */
    struct ram_decoder dec;
    struct ram_chan_source src;
    struct ram_reader reader;
    int block_map[RAM_MAX_BLOCKS * 4]; /* stream block -> our block */
    /* One bit per page written by this load or holding data before it:
     * zero pages elsewhere need no write, and the memory behind them
     * stays unallocated. */
    unsigned long *received[RAM_MAX_BLOCKS];
    struct multifd_recv *mfd_recv;
};

bool ram_page_is_zero(const uint8_t *p);

bool ram_load_setup(void *opaque, Error **errp);
bool ram_load_state(Channel *f, void *opaque, int version_id, Error **errp);
void ram_load_cleanup(void *opaque);
void ram_mapped_reset(struct ram_state *rs);
/* Postcopy source: takes the oldest queued request. */
bool ram_postcopy_pop_request(struct ram_state *rs, struct ram_req *out);
void ram_postcopy_reset(struct ram_state *rs);
/* Destination, every page in: huge pages again where RAM had them. */
void ram_incoming_postcopy_done(struct ram_state *rs);

#endif
