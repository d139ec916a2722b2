/* The prefault helper: one thread per load, fed by the receivers. */
#include "ram/ram-prefault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "util/alloc.h"

#define CHUNK_BITS 21 /* 2 MiB: one transparent huge page */
#define MAX_AHEAD 16  /* chunks ahead of the data at most (32 MiB) */
/* A note this far behind the furthest one is a multifd channel lagging
 * the others, not a new run. */
#define JITTER 8

struct block_window {
    _Atomic uint64_t last; /* 1 + the furthest chunk data was noted in */
    uint64_t run;          /* data chunks in a row up to last */
    uint64_t want_end;     /* chunks below this should be made ready */
    uint64_t done_end;     /* the helper made them ready up to here */
    uint64_t nchunks;
};

struct ram_prefault {
    struct machine_memory *mem;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool quit;
    bool failed; /* the host refused once: stop trying */
    struct block_window win[RAM_MAX_BLOCKS];
    _Atomic uint64_t bytes;
};

/* The next range to fault in, or false when there is nothing to do. */
static bool next_range(struct ram_prefault *pf, int *block, uint64_t *from,
                       uint64_t *to)
{
    for (int i = 0; i < pf->mem->nblocks; i++) {
        struct block_window *w = &pf->win[i];
        /* What the receiver reached it faults in itself. */
        uint64_t start = atomic_load_explicit(&w->last, memory_order_relaxed);
        if (start < w->done_end) {
            start = w->done_end;
        }
        if (start < w->want_end) {
            *block = i;
            *from = start;
            *to = w->want_end;
            return true;
        }
    }
    return false;
}

static void *prefault_thread(void *opaque)
{
    struct ram_prefault *pf = opaque;
    pthread_mutex_lock(&pf->lock);
    while (!pf->quit && !pf->failed) {
        int block;
        uint64_t from, to;
        if (!next_range(pf, &block, &from, &to)) {
            pthread_cond_wait(&pf->cond, &pf->lock);
            continue;
        }
        pthread_mutex_unlock(&pf->lock);
        struct ram_block *b = pf->mem->blocks[block];
        uint64_t c = from;
        bool ok = true;
        /* A chunk at a time, so quit and new notes are seen soon. */
        for (; c < to && ok && !__atomic_load_n(&pf->quit, __ATOMIC_RELAXED);
             c++) {
            ok = ram_block_prefault(b, c << CHUNK_BITS, 1ull << CHUNK_BITS);
            if (ok) {
                atomic_fetch_add(&pf->bytes, 1ull << CHUNK_BITS);
            }
        }
        pthread_mutex_lock(&pf->lock);
        if (!ok) {
            pf->failed = true;
        }
        if (pf->win[block].done_end < c) {
            pf->win[block].done_end = c;
        }
    }
    pthread_mutex_unlock(&pf->lock);
    return NULL;
}

struct ram_prefault *ram_prefault_new(struct machine_memory *mem)
{
    struct ram_block *main = memory_main_block(mem);
    /* Length 0 still says whether the kernel knows the advice. */
    if (!main || madvise(main->host, 0, MADV_POPULATE_WRITE) != 0) {
        return NULL;
    }
    struct ram_prefault *pf = xcalloc(1, sizeof(*pf));
    pf->mem = mem;
    for (int i = 0; i < mem->nblocks; i++) {
        pf->win[i].nchunks =
            (mem->blocks[i]->size + (1ull << CHUNK_BITS) - 1) >> CHUNK_BITS;
    }
    pthread_mutex_init(&pf->lock, NULL);
    pthread_cond_init(&pf->cond, NULL);
    if (pthread_create(&pf->thread, NULL, prefault_thread, pf) != 0) {
        pthread_cond_destroy(&pf->cond);
        pthread_mutex_destroy(&pf->lock);
        free(pf);
        return NULL;
    }
    pthread_setname_np(pf->thread, "prefault");
    return pf;
}

void ram_prefault_free(struct ram_prefault *pf)
{
    if (!pf) {
        return;
    }
    pthread_mutex_lock(&pf->lock);
    __atomic_store_n(&pf->quit, true, __ATOMIC_RELAXED);
    pthread_cond_signal(&pf->cond);
    pthread_mutex_unlock(&pf->lock);
    pthread_join(pf->thread, NULL);
    pthread_cond_destroy(&pf->cond);
    pthread_mutex_destroy(&pf->lock);
    free(pf);
}

void ram_prefault_note(struct ram_prefault *pf, int block, uint64_t offset)
{
    if (!pf || block < 0 || block >= pf->mem->nblocks) {
        return;
    }
    struct block_window *w = &pf->win[block];
    uint64_t next = (offset >> CHUNK_BITS) + 1;
    /* Most notes land in the chunk the last one did. */
    if (atomic_load_explicit(&w->last, memory_order_relaxed) == next) {
        return;
    }
    pthread_mutex_lock(&pf->lock);
    uint64_t last = atomic_load_explicit(&w->last, memory_order_relaxed);
    if (next == last + 1) {
        w->run++;
    } else if (next > last || next + JITTER < last) {
        w->run = 1;
    } else {
        pthread_mutex_unlock(&pf->lock);
        return; /* a lagging channel inside the run */
    }
    atomic_store_explicit(&w->last, next, memory_order_relaxed);
    uint64_t ahead = w->run < MAX_AHEAD ? w->run : MAX_AHEAD;
    uint64_t want = next + ahead;
    if (want > w->nchunks) {
        want = w->nchunks;
    }
    if (next + JITTER < last) {
        /* A new pass from lower down: start its window afresh. */
        w->done_end = next;
        w->want_end = next;
    }
    if (want > w->want_end) {
        w->want_end = want;
        pthread_cond_signal(&pf->cond);
    }
    pthread_mutex_unlock(&pf->lock);
}

uint64_t ram_prefault_bytes(const struct ram_prefault *pf)
{
    return pf ? atomic_load(&pf->bytes) : 0;
}
