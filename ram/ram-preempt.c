/* postcopy-preempt: after the switch, the pages the destination asks for
 * go at once on a channel of their own instead of queueing behind the
 * walk's pages on the main stream.
 *
 * Source: the return path's thread, which reads the requests, writes the
 * pages itself (a page goes once: whoever clears its dirty bit sends it).
 * Destination: a thread reads the channel and places its pages, beside
 * the loading thread that places the main stream's.
 *
 * The channel: POSTCOPY_PREEMPT_MAGIC (checked by the acceptor), then page
 * records as in the RAM section (the first names its block), and an EOS
 * record once the source sent everything. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "machine/memory.h"
#include "ram/ram-internal.h"
#include "util/alloc.h"
#include "util/clock.h"

/* How long the end of a postcopy waits for the preempt channel's EOS. */
#define PREEMPT_DRAIN_MS 10000

/* ---- source ---- */

void ram_postcopy_set_preempt(struct ram_state *rs, Channel *f)
{
    pthread_mutex_lock(&rs->preempt_lock);
    rs->preempt = f;
    rs->preempt_last_block = -1;
    pthread_mutex_unlock(&rs->preempt_lock);
}

/* One page on the preempt channel (under preempt_lock). */
static void put_urgent_page(struct ram_state *rs, int block, uint64_t page)
{
    Channel *f = rs->preempt;
    struct ram_block *b = rs->mem->blocks[block];
    uint64_t offset = page * RAM_PAGE_SIZE;
    const uint8_t *host = b->host + offset;
    bool zero = ram_page_is_zero(host);
    uint64_t flags = zero ? RAM_FLAG_ZERO : RAM_FLAG_PAGE;
    uint64_t start = chan_tell(f);
    if (block == rs->preempt_last_block) {
        chan_put_be64(f, offset | flags | RAM_FLAG_CONTINUE);
    } else {
        chan_put_be64(f, offset | flags);
        chan_put_counted_string(f, b->name);
        rs->preempt_last_block = block;
    }
    if (zero) {
        chan_put_u8(f, 0);
    } else {
        chan_put_buffer(f, host, RAM_PAGE_SIZE);
    }
    atomic_fetch_add(&rs->preempt_bytes, chan_tell(f) - start);
    atomic_fetch_add(&rs->preempt_pages, 1);
}

bool ram_postcopy_send_urgent(struct ram_state *rs, int block, uint64_t page,
                              uint64_t npages)
{
    pthread_mutex_lock(&rs->preempt_lock);
    if (!rs->preempt) {
        pthread_mutex_unlock(&rs->preempt_lock);
        return false;
    }
    struct ram_block *b = rs->mem->blocks[block];
    for (uint64_t p = page; p < page + npages; p++) {
        if (ram_block_test_and_clear_dirty(b, p)) {
            put_urgent_page(rs, block, p);
        }
    }
    chan_flush(rs->preempt);
    bool ok = !chan_has_error(rs->preempt);
    if (!ok) {
        /* The channel broke: these pages go the main stream's way (again,
         * for any that did arrive: placing keeps the first), and so does
         * everything after them. */
        ram_block_set_dirty(b, page * RAM_PAGE_SIZE, npages * RAM_PAGE_SIZE);
        rs->preempt = NULL;
    }
    pthread_mutex_unlock(&rs->preempt_lock);
    return ok;
}

bool ram_postcopy_preempt_end(struct ram_state *rs, Error **errp)
{
    pthread_mutex_lock(&rs->preempt_lock);
    bool ok = true;
    if (rs->preempt) {
        chan_put_be64(rs->preempt, RAM_FLAG_EOS);
        chan_flush(rs->preempt);
        ok = chan_check(rs->preempt, errp);
        if (!ok) {
            error_prepend(errp, "postcopy-preempt channel: ");
        }
        rs->preempt = NULL;
    }
    pthread_mutex_unlock(&rs->preempt_lock);
    return ok;
}

/* ---- destination ---- */

struct preempt_in {
    struct ram_state *rs;
    int fd;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool listening; /* POSTCOPY_LISTEN came: pages can be placed */
    bool stop;
    bool ended;      /* the thread is through */
    bool ended_well; /* EOS came */
    struct ram_decoder dec;
};

static bool place(void *ctx, const struct ram_page *p, Error **errp)
{
    struct preempt_in *pi = ctx;
    struct ram_state *rs = pi->rs;
    int block = rs->block_map[p->block];
    if (p->offset >= rs->mem->blocks[block]->size ||
        (p->kind != RAM_PAGE_NORMAL &&
         !(p->kind == RAM_PAGE_ZERO && p->fill == 0))) {
        error_setg(errp,
                   "postcopy-preempt: page record at offset %llu is not a "
                   "whole or zero page inside its block",
                   (unsigned long long)p->at);
        return false;
    }
    return postcopy_in_place(rs->pc_in, block, p->offset,
                             p->kind == RAM_PAGE_NORMAL ? p->data : NULL, errp);
}

static const struct ram_decode_ops preempt_ops = { .page = place };

static void *preempt_thread(void *opaque)
{
    struct preempt_in *pi = opaque;
    pthread_mutex_lock(&pi->lock);
    while (!pi->listening && !pi->stop) {
        pthread_cond_wait(&pi->cond, &pi->lock);
    }
    bool stop = pi->stop;
    pthread_mutex_unlock(&pi->lock);
    if (stop) {
        return NULL;
    }
    Channel *f = chan_new_socket(pi->fd, false, false, "postcopy-preempt");
    chan_skip(f, 4); /* the magic, seen by the acceptor */
    struct ram_chan_source src;
    struct ram_reader r;
    ram_reader_init_chan(&r, &src, f);
    Error *err = NULL;
    /* Every page up to EOS: the records of one section, as it were. */
    bool ok = ram_decode_section(&pi->dec, &r, &err);
    pthread_mutex_lock(&pi->lock);
    bool stopping = pi->stop;
    pthread_mutex_unlock(&pi->lock);
    if (!ok && !stopping && !chan_has_error(f)) {
        /* A broken link is the main stream's to notice; this is not. */
        error_report("incoming migration: %s", error_get_pretty(err));
    }
    error_free(err);
    chan_close(f, NULL);
    pthread_mutex_lock(&pi->lock);
    pi->ended_well = ok;
    pi->ended = true;
    pthread_cond_broadcast(&pi->cond);
    pthread_mutex_unlock(&pi->lock);
    return NULL;
}

/* The thread may place pages from now on (under preempt_lock). */
static void start_placing(struct ram_state *rs, struct preempt_in *pi)
{
    pthread_mutex_lock(&pi->lock);
    if (!pi->listening) {
        ram_decoder_copy_blocks(&pi->dec, &rs->dec);
        pi->listening = true;
        pthread_cond_broadcast(&pi->cond);
    }
    pthread_mutex_unlock(&pi->lock);
}

/* Ends pi's thread, at its EOS if drain (and it may place pages), else
 * at once; true if EOS came.  NULL is fine. */
static bool finish(struct preempt_in *pi, bool drain)
{
    if (!pi) {
        return true;
    }
    pthread_mutex_lock(&pi->lock);
    /* The source sent EOS before the main stream's end; a channel that
     * stays silent past that broke without a word. */
    struct timespec until = clock_real_deadline(PREEMPT_DRAIN_MS);
    while (drain && pi->listening && !pi->ended &&
           pthread_cond_timedwait(&pi->cond, &pi->lock, &until) == 0) {
    }
    if (!pi->ended) {
        pi->stop = true;
        pthread_cond_broadcast(&pi->cond);
        shutdown(pi->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&pi->lock);
    pthread_join(pi->thread, NULL);
    bool ok = pi->ended_well;
    close(pi->fd);
    ram_decoder_cleanup(&pi->dec);
    pthread_mutex_destroy(&pi->lock);
    pthread_cond_destroy(&pi->cond);
    free(pi);
    return ok;
}

bool ram_incoming_preempt(struct ram_state *rs, int fd, Error **errp)
{
    struct preempt_in *pi = xcalloc(1, sizeof(*pi));
    pi->rs = rs;
    pi->fd = fd;
    pthread_mutex_init(&pi->lock, NULL);
    pthread_cond_init(&pi->cond, NULL);
    ram_decoder_init(&pi->dec, &preempt_ops, pi);
    if (pthread_create(&pi->thread, NULL, preempt_thread, pi) != 0) {
        error_setg(errp, "postcopy-preempt: cannot start its thread");
        ram_decoder_cleanup(&pi->dec);
        pthread_mutex_destroy(&pi->lock);
        pthread_cond_destroy(&pi->cond);
        free(pi);
        close(fd);
        return false;
    }
    pthread_mutex_lock(&rs->preempt_lock);
    struct preempt_in *old = rs->preempt_in;
    rs->preempt_in = pi;
    if (rs->preempt_listening) {
        start_placing(rs, pi);
    }
    pthread_mutex_unlock(&rs->preempt_lock);
    finish(old, false); /* two at once: the older one goes */
    return true;
}

void ram_incoming_preempt_listen(struct ram_state *rs, bool on)
{
    pthread_mutex_lock(&rs->preempt_lock);
    rs->preempt_listening = on;
    if (on && rs->preempt_in) {
        start_placing(rs, rs->preempt_in);
    }
    pthread_mutex_unlock(&rs->preempt_lock);
}

bool ram_incoming_preempt_end(struct ram_state *rs, bool drain)
{
    pthread_mutex_lock(&rs->preempt_lock);
    struct preempt_in *pi = rs->preempt_in;
    rs->preempt_in = NULL;
    pthread_mutex_unlock(&rs->preempt_lock);
    return finish(pi, drain);
}
