/* Sending RAM: bitmap walks over every block, page encoders, statistics. */
#include "ram/ram-internal.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "machine/machine.h"
#include "machine/write-guard.h"
#include "ram/ram-format.h"
#include "ram/ram-thp.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/fault.h"
#include "util/guest-reads.h"
#include "util/io.h"
#include "vmstate/stream-format.h"

/* Dirty bitmap words taken at once (64 pages each). */
#define BATCH_WORDS 16

/* One call to iterate sends for at most this long, so the migration loop
 * can measure bandwidth and check its limits often. */
#define ITERATE_BUDGET_NS (50 * 1000 * 1000ull)

bool ram_page_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    bool zero = true;
    GUEST_READS_BEGIN();
    for (size_t i = 0; i < RAM_PAGE_SIZE / 8; i += 8) {
        if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] |
            w[i + 6] | w[i + 7]) {
            zero = false;
            break;
        }
    }
    GUEST_READS_END();
    return zero;
}

/* A full memory barrier on every thread of the process (an IPI to the
 * CPUs running them), cheaper than one per page. */
static void ram_fence_vcpus(struct ram_state *rs)
{
    if (rs->membarrier_ok) {
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    } else {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
}

static void put_page_header(struct ram_state *rs, Channel *f, int block,
                            uint64_t offset, unsigned flags)
{
    if (block == rs->last_sent_block) {
        chan_put_be64(f, offset | flags | RAM_FLAG_CONTINUE);
    } else {
        chan_put_be64(f, offset | flags);
        chan_put_counted_string(f, rs->mem->blocks[block]->name);
        rs->last_sent_block = block;
    }
}

/* After a batch of dirty bits was taken: which of its pages may hold
 * data at all.  Never-written pages read as zeros, and reading them could
 * allocate them (a shmem read fault does): slow, and it leaves the source
 * holding memory the guest never used.  A write after this look sets the
 * page's dirty bit again. */
static void learn_residency(struct ram_state *rs, struct ram_block *b,
                            uint64_t first_page, uint64_t npages)
{
    if (npages > b->npages - first_page) {
        npages = b->npages - first_page;
    }
    if (npages > sizeof(rs->resident) ||
        !ram_block_may_hold_data(rs->mem, b, first_page, npages,
                                 rs->resident)) {
        rs->resident_pages = 0; /* unknown: every page is read */
        return;
    }
    rs->resident_from = first_page;
    rs->resident_pages = npages;
}

/* Whether the page at offset is known to be zero without reading it. */
static bool page_in_hole(struct ram_state *rs, uint64_t offset)
{
    uint64_t page = offset / RAM_PAGE_SIZE;
    return page >= rs->resident_from &&
        page - rs->resident_from < rs->resident_pages &&
        !rs->resident[page - rs->resident_from];
}

/* ---- mapped-ram ---- */

static void bmap_set(unsigned long *bits, uint64_t page, bool on)
{
    unsigned long m = 1ul << (page % RAM_BITS_PER_WORD);
    if (on) {
        bits[page / RAM_BITS_PER_WORD] |= m;
    } else {
        bits[page / RAM_BITS_PER_WORD] &= ~m;
    }
}

/* Writes the pending run of pages (or queues it for a thread). */
static bool mapped_flush_run(struct ram_state *rs, Error **errp)
{
    if (rs->run_block < 0) {
        return true;
    }
    struct ram_block *b = rs->mem->blocks[rs->run_block];
    uint64_t off = rs->pages_off[rs->run_block] + rs->run_start;
    rs->run_block = -1;
    return mapped_io_run(rs->mio, b->host + rs->run_start, rs->run_len, off,
                         errp);
}

/* A page at its place in the file: runs of neighbours go in one write,
 * up to an aligned chunk of the file; a zero page is only a clear bit. */
static uint64_t mapped_send_page(struct ram_state *rs, Channel *f, int block,
                                 uint64_t page, bool zero)
{
    uint64_t offset = page * RAM_PAGE_SIZE;
    Error *err = NULL;
    bool joins = rs->run_block == block &&
        rs->run_start + rs->run_len == offset && offset % RAM_MAPPED_ALIGN;
    if ((zero || !joins) && !mapped_flush_run(rs, &err)) {
        chan_set_error_obj(f, err);
        return 0;
    }
    bmap_set(rs->file_bmap[block], page, !zero);
    if (zero) {
        rs->stats.zero_pages++;
        return 0;
    }
    if (rs->run_block == block) {
        rs->run_len += RAM_PAGE_SIZE;
    } else {
        rs->run_block = block;
        rs->run_start = offset;
        rs->run_len = RAM_PAGE_SIZE;
    }
    rs->stats.normal_pages++;
    rs->stats.mapped_transferred += RAM_PAGE_SIZE;
    chan_rate_charge(f, RAM_PAGE_SIZE); /* max-bandwidth covers the file */
    return RAM_PAGE_SIZE;
}

/* After the setup entry of block i: its header, and the stream goes on
 * past its pages region. */
static bool mapped_setup_block(struct ram_state *rs, Channel *f, int i,
                               Error **errp)
{
    struct ram_block *b = rs->mem->blocks[i];
    uint64_t at;
    if (!chan_file_offset(f, &at, errp)) {
        error_prepend(errp, "mapped-ram: ");
        return false;
    }
    struct ram_mapped_hdr h;
    uint8_t raw[RAM_MAPPED_HDR_SIZE];
    ram_mapped_layout(&h, at + RAM_MAPPED_HDR_SIZE, b->size);
    ram_mapped_hdr_put(raw, &h);
    chan_put_buffer(f, raw, sizeof(raw));
    rs->pages_off[i] = h.pages_offset;
    rs->bitmap_off[i] = h.bitmap_offset;
    free(rs->file_bmap[i]);
    rs->file_bmap[i] = xcalloc(ram_mapped_bitmap_bytes(b->npages), 1);
    return chan_seek(f, h.pages_offset + b->size, errp);
}

/* At the end: every page is in the file; then the bitmaps, as
 * little-endian 64-bit words. */
static bool mapped_finish(struct ram_state *rs, Channel *f, Error **errp)
{
    if (!mapped_flush_run(rs, errp) || !mapped_io_wait(rs->mio, errp)) {
        return false;
    }
    int fd = chan_get_fd(f);
    for (int i = 0; i < rs->mem->nblocks; i++) {
        struct ram_block *b = rs->mem->blocks[i];
        uint64_t bytes = ram_mapped_bitmap_bytes(b->npages);
        uint8_t *buf = xmalloc(bytes);
        for (uint64_t w = 0; w < bytes / 8; w++) {
            uint64_t v = rs->file_bmap[i][w]; /* unsigned long is 64 bits */
            for (int k = 0; k < 8; k++) {
                buf[w * 8 + k] = (uint8_t)(v >> (8 * k));
            }
        }
        bool ok = io_pwrite_full(fd, buf, bytes, rs->bitmap_off[i]);
        free(buf);
        if (!ok) {
            error_setg_errno(errp, errno,
                             "%s: writing the mapped-ram bitmap of RAM block "
                             "'%s' at offset %llu",
                             chan_name(f), b->name,
                             (unsigned long long)rs->bitmap_off[i]);
            return false;
        }
        rs->stats.transferred += bytes;
    }
    return true;
}

void ram_mapped_reset(struct ram_state *rs)
{
    mapped_io_free(rs->mio);
    rs->mio = NULL;
    rs->run_block = -1;
    for (int i = 0; i < RAM_MAX_BLOCKS; i++) {
        free(rs->file_bmap[i]);
        rs->file_bmap[i] = NULL;
    }
}

/* Sends one page; returns the bytes it took on the wire. */
static uint64_t send_page(struct ram_state *rs, Channel *f, int block,
                          uint64_t page)
{
    struct ram_block *b = rs->mem->blocks[block];
    uint64_t offset = page * RAM_PAGE_SIZE;
    const uint8_t *host = b->host + offset;
    uint64_t start = chan_tell(f);
    uint64_t key = rs->block_base[block] + page;
    bool zero = page_in_hole(rs, offset) || ram_page_is_zero(host);

    if (rs->sent[block]) {
        bmap_set(rs->sent[block], page, true);
    }
    if (rs->mapped_ram) {
        return mapped_send_page(rs, f, block, page, zero);
    }
    if (rs->mfd) {
        /* The channel threads read the page when they send it. */
        Error *err = NULL;
        if (!multifd_send_page(rs->mfd, block, offset, zero, &err)) {
            chan_set_error_obj(f, err);
            return 0;
        }
        rs->mfd_dirty = true;
        uint64_t bytes = zero ? 8 : 8 + RAM_PAGE_SIZE;
        rs->stats.multifd_transferred += bytes;
        chan_rate_charge(f, bytes); /* max-bandwidth covers multifd */
        if (zero) {
            rs->stats.zero_pages++;
        } else {
            rs->stats.normal_pages++;
        }
        return bytes;
    }
    if (zero) {
        put_page_header(rs, f, block, offset, RAM_FLAG_ZERO);
        chan_put_u8(f, 0);
        rs->stats.zero_pages++;
        if (rs->xbzrle_cache && xbzrle_cache_lookup(rs->xbzrle_cache, key)) {
            xbzrle_cache_insert(rs->xbzrle_cache, key, rs->zero_page);
        }
        return chan_tell(f) - start;
    }
    /* After the postcopy switch the destination has no copy to apply a
     * delta to. */
    if (rs->xbzrle_cache && rs->xbzrle_active && !rs->postcopy) {
        rs->stats.xbzrle_pages_checked++;
        uint8_t *old = xbzrle_cache_lookup(rs->xbzrle_cache, key);
        if (!old) {
            /* First time in the cache: this copy is what the peer gets. */
            rs->stats.xbzrle_cache_miss++;
            GUEST_READS_BEGIN();
            xbzrle_cache_insert(rs->xbzrle_cache, key, host);
            GUEST_READS_END();
            old = xbzrle_cache_lookup(rs->xbzrle_cache, key);
            put_page_header(rs, f, block, offset, RAM_FLAG_PAGE);
            chan_put_buffer(f, old, RAM_PAGE_SIZE);
            rs->stats.normal_pages++;
            return chan_tell(f) - start;
        }
        /* Encode against a stable copy: the guest may write meanwhile. */
        GUEST_READS_BEGIN();
        memcpy(rs->scratch, host, RAM_PAGE_SIZE);
        GUEST_READS_END();
        int n = xbzrle_encode(old, rs->scratch, RAM_PAGE_SIZE, rs->delta,
                              RAM_PAGE_SIZE - 64);
        if (n == 0) {
            return 0; /* unchanged since we last sent it */
        }
        memcpy(old, rs->scratch, RAM_PAGE_SIZE);
        if (n > 0) {
            put_page_header(rs, f, block, offset, RAM_FLAG_XBZRLE);
            chan_put_u8(f, RAM_XBZRLE_ENCODING);
            chan_put_be16(f, (uint16_t)n);
            chan_put_buffer(f, rs->delta, (size_t)n);
            rs->stats.xbzrle_pages++;
            rs->stats.xbzrle_bytes += (uint64_t)n + 3;
            rs->stats.xbzrle_raw_bytes += RAM_PAGE_SIZE;
            return chan_tell(f) - start;
        }
        rs->stats.xbzrle_overflow++;
        put_page_header(rs, f, block, offset, RAM_FLAG_PAGE);
        chan_put_buffer(f, old, RAM_PAGE_SIZE);
        rs->stats.normal_pages++;
        return chan_tell(f) - start;
    }
    put_page_header(rs, f, block, offset, RAM_FLAG_PAGE);
    /* The page goes to the kernel straight from guest memory.  If the
     * guest writes it before the flush, its dirty bit is set again and
     * the page is sent once more. */
    chan_put_buffer_ref(f, host, RAM_PAGE_SIZE);
    rs->stats.normal_pages++;
    return chan_tell(f) - start;
}

/* multifd: end an epoch so that no later copy of a page can overtake
 * one sent before (see ram-multifd.h). */
static bool multifd_sync(struct ram_state *rs, Channel *f, Error **errp)
{
    if (!rs->mfd || !rs->mfd_dirty) {
        return true;
    }
    if (!multifd_send_sync(rs->mfd, errp)) {
        return false;
    }
    rs->mfd_dirty = false;
    chan_put_be64(f, RAM_FLAG_MULTIFD_FLUSH);
    return true;
}

/* With x-ignore-shared, memory another process maps too (a shared memfd
 * or file) is not sent: the destination maps the same pages. */
static bool block_ignored(const struct ram_state *rs, const struct ram_block *b)
{
    return rs->ignore_shared && b->map.shared;
}

/* Pull the accelerator's dirty log and count what is left to send. */
static bool count_dirty(struct ram_state *rs, Error **errp)
{
    if (!machine_sync_dirty(rs->m, errp)) {
        return false;
    }
    uint64_t dirty = 0;
    for (int i = 0; i < rs->mem->nblocks; i++) {
        if (!block_ignored(rs, rs->mem->blocks[i])) {
            dirty += ram_block_count_dirty(rs->mem->blocks[i]);
        }
    }
    rs->dirty_pages = dirty;
    rs->stats.dirty_sync_count++;
    return true;
}

/* A pass over the bitmap ended: what it found is the dirty rate. */
static bool end_of_pass(struct ram_state *rs, Error **errp)
{
    if (!count_dirty(rs, errp)) {
        return false;
    }
    rs->stats.passes++;
    uint64_t now = clock_mono_ns();
    if (rs->pass_start_ns && now > rs->pass_start_ns) {
        rs->stats.dirty_pages_rate =
            rs->dirty_pages * 1000000000ull / (now - rs->pass_start_ns);
    }
    rs->pass_start_ns = now;
    return true;
}

/* Sends dirty pages from the walk position until the budget or the
 * channel's rate limit runs out.  Returns 1 when a whole pass found
 * nothing left, 0 if more remains, -1 on error. */
/* Puts the bits of a taken batch that were not sent back into the
 * bitmap, from word w on; the walk resumes there. */
static void put_back(struct ram_state *rs, struct ram_block *b,
                     const unsigned long *batch, int n, int w, uint64_t first)
{
    rs->cur_word = first + (uint64_t)w;
    for (; w < n; w++) {
        unsigned long bits = batch[w];
        while (bits) {
            unsigned bit = (unsigned)__builtin_ctzl(bits);
            bits &= bits - 1;
            ram_block_set_dirty(
                b,
                ((first + (uint64_t)w) * RAM_BITS_PER_WORD + bit) *
                    RAM_PAGE_SIZE,
                RAM_PAGE_SIZE);
        }
    }
}

/* Pages freed at a time with release-ram: 2 MiB. */
#define RELEASE_WORDS (512 / RAM_BITS_PER_WORD)

/* release-ram, guest stopped: the pages of a batch went out (each was
 * dirty and sent now, or clean and sent in an earlier pass); once the
 * channel no longer points into them, they are freed here. */
static bool release_batch(struct ram_state *rs, Channel *f, struct ram_block *b,
                          uint64_t first_word, int n, Error **errp)
{
    if (!chan_flush(f)) {
        return chan_check(f, errp);
    }
    uint64_t first = first_word * RAM_BITS_PER_WORD;
    uint64_t pages = (uint64_t)n * RAM_BITS_PER_WORD;
    if (first + pages > b->npages) {
        pages = b->npages - first;
    }
    if (madvise(b->host + first * RAM_PAGE_SIZE, pages * RAM_PAGE_SIZE,
                MADV_DONTNEED) == 0) {
        rs->stats.released_pages += pages;
    }
    return fault_inject("migration-released", errp);
}

static int send_dirty(struct ram_state *rs, Channel *f, bool bounded,
                      Error **errp)
{
    uint64_t start = clock_mono_ns();
    unsigned checks = 0;
    bool wrapped = false;
    /* Under a bandwidth limit the window is checked after every page: a
     * batch may hold megabytes, far more than a slow link's window. */
    bool paced = bounded && chan_get_rate_limit(f) != 0;
    for (;;) {
        if (rs->cur_block >= rs->mem->nblocks) {
            /* End of a pass: the next one starts from a fresh sync. */
            rs->cur_block = 0;
            rs->cur_word = 0;
            if (!rs->xbzrle_active && rs->xbzrle_cache) {
                rs->xbzrle_active = true; /* after the first pass */
            }
            if (!multifd_sync(rs, f, errp) || !end_of_pass(rs, errp)) {
                return -1;
            }
            if (rs->dirty_pages == 0 || (bounded && wrapped)) {
                return rs->dirty_pages == 0;
            }
            wrapped = true;
        }
        struct ram_block *b = rs->mem->blocks[rs->cur_block];
        uint64_t nwords = block_ignored(rs, b) ? 0 : ram_block_dirty_words(b);
        while (rs->cur_word < nwords) {
            /* Take a batch of dirty bits, then make every vCPU's stores
             * visible before reading the pages: a store whose dirty bit
             * was already set may still sit in a store buffer. */
            unsigned long batch[BATCH_WORDS];
            uint64_t first = rs->cur_word;
            int n = 0;
            bool any = false;
            while (n < BATCH_WORDS && rs->cur_word < nwords) {
                batch[n] = ram_block_take_dirty_word(b, rs->cur_word++);
                any |= batch[n++] != 0;
            }
            if (!any) {
                continue;
            }
            ram_fence_vcpus(rs);
            learn_residency(rs, b, first * RAM_BITS_PER_WORD,
                            (uint64_t)n * RAM_BITS_PER_WORD);
            bool release =
                !bounded && rs->release_ram && !rs->mfd && !b->map.shared;
            int released_to = 0; /* words of the batch freed so far */
            for (int w = 0; w < n; w++) {
                /* Every 2 MiB (a whole huge page) once sent. */
                if (release && w > released_to &&
                    (first + (uint64_t)w) % RELEASE_WORDS == 0) {
                    if (!release_batch(rs, f, b, first + (uint64_t)released_to,
                                       w - released_to, errp)) {
                        return -1;
                    }
                    released_to = w;
                }
                while (batch[w]) {
                    unsigned bit = (unsigned)__builtin_ctzl(batch[w]);
                    batch[w] &= batch[w] - 1;
                    uint64_t page =
                        (first + (uint64_t)w) * RAM_BITS_PER_WORD + bit;
                    rs->stats.transferred +=
                        send_page(rs, f, rs->cur_block, page);
                    if (rs->dirty_pages) {
                        rs->dirty_pages--;
                    }
                    if (paced && chan_rate_limited(f)) {
                        put_back(rs, b, batch, n, w, first);
                        return chan_has_error(f) ? (chan_check(f, errp), -1)
                                                 : 0;
                    }
                }
            }
            if (chan_has_error(f)) {
                chan_check(f, errp);
                return -1;
            }
            if (release &&
                !release_batch(rs, f, b, first + (uint64_t)released_to,
                               n - released_to, errp)) {
                return -1;
            }
            if (bounded && (++checks & 3) == 0 &&
                (chan_rate_limited(f) ||
                 clock_mono_ns() - start > ITERATE_BUDGET_NS)) {
                return 0;
            }
        }
        rs->cur_block++;
        rs->cur_word = 0;
    }
}

/* Copies of pages faulted on, sent at a time. */
#define WP_TAKE 64

/* background-snapshot: one page as it was when tracking started, from a
 * copy (or read in place: zero pages are still protected). */
static void send_copy(struct ram_state *rs, Channel *f, int block,
                      uint64_t page, const uint8_t *data, bool zero)
{
    uint64_t start = chan_tell(f);
    if (zero) {
        put_page_header(rs, f, block, page * RAM_PAGE_SIZE, RAM_FLAG_ZERO);
        chan_put_u8(f, 0);
        rs->stats.zero_pages++;
    } else {
        put_page_header(rs, f, block, page * RAM_PAGE_SIZE, RAM_FLAG_PAGE);
        chan_put_buffer_ref(f, data, RAM_PAGE_SIZE);
        rs->stats.normal_pages++;
    }
    rs->stats.transferred += chan_tell(f) - start;
    if (rs->dirty_pages) {
        rs->dirty_pages--;
    }
}

/* The pages the guest is waiting to write, or has just written, first. */
static int send_faulted(struct ram_state *rs, Channel *f, Error **errp)
{
    struct ram_wp_copy c[WP_TAKE];
    int n = ram_wp_take(rs->wp, c, WP_TAKE);
    for (int i = 0; i < n; i++) {
        send_copy(rs, f, c[i].range, c[i].page, c[i].data,
                  ram_page_is_zero(c[i].data));
    }
    /* The copies are referenced until flushed. */
    chan_flush(f);
    ram_wp_put(rs->wp, c, n);
    rs->stats.wp_faults = ram_wp_faults(rs->wp);
    if (!chan_check(f, errp)) {
        return -1;
    }
    return n;
}

/* The next 64 pages in order: those nobody claimed yet are copied, let
 * go (the guest may write them from here on), then sent. */
static bool send_next_word(struct ram_state *rs, Channel *f, Error **errp)
{
    int bi = rs->cur_block;
    struct ram_block *b = rs->mem->blocks[bi];
    uint64_t first = rs->cur_word * RAM_BITS_PER_WORD;
    uint64_t n = b->npages - first < 64 ? b->npages - first : 64;
    uint64_t mask = ram_wp_claim(rs->wp, bi, rs->cur_word);
    rs->cur_word++;
    if (rs->cur_word * RAM_BITS_PER_WORD >= b->npages) {
        rs->cur_block++;
        rs->cur_word = 0;
    }
    /* Every page of a huge page went (those written first, before): the
     * kernel split it as they were let go; it is whole again. */
    bool rejoin =
        (first + n) % RAM_THP_PAGES == 0 && ram_wp_splits_huge_pages(rs->wp);
    if (!mask) {
        if (rejoin) {
            ram_thp_rejoin(rs->mem, b, first + n - RAM_THP_PAGES);
        }
        return true;
    }
    learn_residency(rs, b, first, n);
    uint64_t zero = 0;
    for (uint64_t m = mask; m; m &= m - 1) {
        unsigned i = (unsigned)__builtin_ctzll(m);
        uint64_t off = (first + i) * RAM_PAGE_SIZE;
        if (page_in_hole(rs, off) || ram_page_is_zero(b->host + off)) {
            zero |= 1ull << i;
        } else {
            GUEST_READS_BEGIN();
            memcpy(rs->wp_stage + (size_t)i * RAM_PAGE_SIZE, b->host + off,
                   RAM_PAGE_SIZE);
            GUEST_READS_END();
        }
    }
    if (!ram_wp_release(rs->wp, bi, first, n, errp)) {
        return false;
    }
    if (rejoin) {
        ram_thp_rejoin(rs->mem, b, first + n - RAM_THP_PAGES);
    }
    for (uint64_t m = mask; m; m &= m - 1) {
        unsigned i = (unsigned)__builtin_ctzll(m);
        send_copy(rs, f, bi, first + i,
                  rs->wp_stage + (size_t)i * RAM_PAGE_SIZE, (zero >> i) & 1);
    }
    chan_flush(f);
    return chan_check(f, errp);
}

/* background-snapshot: faulted pages first, then RAM in order.  Returns
 * 1 once every page went, 0 when the time budget ran out, -1 on error. */
static int send_background(struct ram_state *rs, Channel *f, Error **errp)
{
    uint64_t start = clock_mono_ns();
    for (unsigned k = 1;; k++) {
        if (!ram_wp_ok(rs->wp, errp)) {
            return -1;
        }
        int n = send_faulted(rs, f, errp);
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            if (rs->cur_block >= rs->mem->nblocks) {
                /* Every page is claimed: no more copies can come. */
                rs->stats.passes = 1;
                return 1;
            }
            if (!send_next_word(rs, f, errp)) {
                return -1;
            }
        }
        if ((k & 15) == 0 && clock_mono_ns() - start > ITERATE_BUDGET_NS) {
            return 0;
        }
    }
}

/* ---- postcopy ---- */

/* Sends one page after the switch. */
static void send_postcopy_page(struct ram_state *rs, Channel *f, int block,
                               uint64_t page)
{
    uint64_t n = send_page(rs, f, block, page);
    rs->stats.transferred += n;
    rs->stats.postcopy_bytes += n;
    if (rs->dirty_pages) {
        rs->dirty_pages--;
    }
}

/* The pages the destination waits for, those not sent yet, at once. */
static bool serve_requests(struct ram_state *rs, Channel *f, Error **errp)
{
    struct ram_req r;
    bool any = false;
    /* What the walk learnt of holes is about its own batch. */
    uint64_t from = rs->resident_from, pages = rs->resident_pages;
    rs->resident_pages = 0;
    while (ram_postcopy_pop_request(rs, &r)) {
        struct ram_block *b = rs->mem->blocks[r.block];
        for (uint64_t p = r.page; p < r.page + r.npages; p++) {
            if (ram_block_test_and_clear_dirty(b, p)) {
                send_postcopy_page(rs, f, r.block, p);
                any = true;
            }
        }
    }
    rs->resident_from = from;
    rs->resident_pages = pages;
    if (any) {
        chan_flush(f);
    }
    return chan_check(f, errp);
}

/* The walk moves on to just after the page the destination asked for
 * last, as QEMU's does: a guest reading memory in order then finds the
 * next pages on their way. */
static void follow_request(struct ram_state *rs)
{
    uint64_t h = atomic_exchange(&rs->req_hint, 0);
    if (!h) {
        return;
    }
    int block = (int)(h >> 40) - 1;
    uint64_t page = h & ((1ull << 40) - 1);
    if (block >= rs->mem->nblocks || page >= rs->mem->blocks[block]->npages) {
        return;
    }
    rs->cur_block = block;
    rs->cur_word = page / RAM_BITS_PER_WORD;
    rs->pc_jumped = true;
}

/* After the switch, guest stopped here: every dirty page once, requested
 * pages first, the walk following the requests.  1 once a walk from the
 * start found nothing left, 0 when the budget or the rate limit ran out,
 * -1 on error. */
static int send_postcopy(struct ram_state *rs, Channel *f, Error **errp)
{
    uint64_t start = clock_mono_ns();
    bool paced = chan_get_rate_limit(f) != 0;
    for (unsigned k = 1;; k++) {
        if (!serve_requests(rs, f, errp)) {
            return -1;
        }
        follow_request(rs);
        if (rs->cur_block >= rs->mem->nblocks) {
            if (!rs->pc_jumped) {
                return 1;
            }
            /* What the jumps passed over is still to go. */
            rs->pc_jumped = false;
            rs->cur_block = 0;
            rs->cur_word = 0;
            continue;
        }
        int bi = rs->cur_block;
        struct ram_block *b = rs->mem->blocks[bi];
        if (rs->cur_word >= ram_block_dirty_words(b)) {
            rs->cur_block++;
            rs->cur_word = 0;
            continue;
        }
        uint64_t w = rs->cur_word++;
        unsigned long bits = ram_block_take_dirty_word(b, w);
        if (bits) {
            learn_residency(rs, b, w * RAM_BITS_PER_WORD, RAM_BITS_PER_WORD);
        }
        while (bits) {
            unsigned bit = (unsigned)__builtin_ctzl(bits);
            bits &= bits - 1;
            send_postcopy_page(rs, f, bi, w * RAM_BITS_PER_WORD + bit);
            if (atomic_load(&rs->req_pending) && !serve_requests(rs, f, errp)) {
                return -1;
            }
            /* max-postcopy-bandwidth: a word may hold far more than a
             * slow link's window; the rest waits for the next one. */
            if (paced && bits && chan_rate_limited(f)) {
                put_back(rs, b, &bits, 1, 0, w);
                return chan_has_error(f) ? (chan_check(f, errp), -1) : 0;
            }
        }
        if (chan_has_error(f)) {
            chan_check(f, errp);
            return -1;
        }
        if ((k & 15) == 0 &&
            (chan_rate_limited(f) ||
             clock_mono_ns() - start > ITERATE_BUDGET_NS)) {
            return 0;
        }
    }
}

void ram_postcopy_begin(struct ram_state *rs)
{
    pthread_mutex_lock(&rs->req_lock);
    rs->postcopy = true;
    pthread_mutex_unlock(&rs->req_lock);
    atomic_store(&rs->req_hint, 0);
    rs->pc_jumped = false;
    rs->cur_block = 0;
    rs->cur_word = 0;
    rs->resident_pages = 0;
}

/* One DISCARD command for the ranges gathered in d. */
static void put_discard(Channel *f, struct postcopy_discard *d)
{
    uint8_t buf[POSTCOPY_DISCARD_MAX_LEN];
    size_t len = postcopy_discard_encode(d, buf);
    stream_put_command(f, STREAM_CMD_POSTCOPY_RAM_DISCARD, buf, (uint16_t)len);
    d->n = 0;
}

/* Adds the run [first, first+n) pages to d, sending d when full. */
static void add_discard(Channel *f, struct postcopy_discard *d, uint64_t first,
                        uint64_t n)
{
    d->start[d->n] = first * RAM_PAGE_SIZE;
    d->len[d->n] = n * RAM_PAGE_SIZE;
    if (++d->n == POSTCOPY_DISCARD_MAX_RANGES) {
        put_discard(f, d);
    }
}

/* The runs of set bits in a bitmap, a word at a time; a run may span
 * words. */
struct bit_runs {
    uint64_t first, len; /* the open run; len 0: none */
};

/* Feeds word w; calls emit for each run it closes. */
static void runs_feed(struct bit_runs *r, uint64_t w, unsigned long bits,
                      void (*emit)(void *ctx, uint64_t first, uint64_t n),
                      void *ctx)
{
    uint64_t base = w * RAM_BITS_PER_WORD;
    unsigned pos = 0;
    while (pos < RAM_BITS_PER_WORD) {
        unsigned long rest = bits >> pos;
        if (rest & 1) {
            /* Past pos, ~rest has its top bits set: ctz stops there. */
            unsigned n =
                ~rest ? (unsigned)__builtin_ctzl(~rest) : RAM_BITS_PER_WORD;
            if (!r->len) {
                r->first = base + pos;
            }
            r->len += n;
            pos += n;
            continue;
        }
        if (r->len) {
            emit(ctx, r->first, r->len);
            r->len = 0;
        }
        if (!rest) {
            return;
        }
        pos += (unsigned)__builtin_ctzl(rest);
    }
}

struct discard_ctx {
    Channel *f;
    struct postcopy_discard d;
};

static void emit_discard(void *opaque, uint64_t first, uint64_t n)
{
    struct discard_ctx *c = opaque;
    add_discard(c->f, &c->d, first, n);
}

/* The pages of block i sent and dirty again, as DISCARD commands; they
 * are no longer sent (the destination drops them).  Returns how many. */
static uint64_t discard_block(struct ram_state *rs, Channel *f, int i)
{
    struct ram_block *b = rs->mem->blocks[i];
    struct discard_ctx c = { .f = f, .d = { .n = 0 } };
    snprintf(c.d.name, sizeof(c.d.name), "%s", b->name);
    struct bit_runs r = { 0, 0 };
    uint64_t pages = 0, nwords = ram_block_dirty_words(b);
    for (uint64_t w = 0; w < nwords; w++) {
        unsigned long bits = atomic_load(&b->dirty[w]) & rs->sent[i][w];
        rs->sent[i][w] &= ~bits;
        pages += (uint64_t)__builtin_popcountl(bits);
        runs_feed(&r, w, bits, emit_discard, &c);
    }
    if (r.len) {
        emit_discard(&c, r.first, r.len);
    }
    if (c.d.n) {
        put_discard(f, &c.d);
    }
    return pages;
}

bool ram_postcopy_send_discards(struct ram_state *rs, Channel *f,
                                uint64_t *pages, Error **errp)
{
    *pages = 0;
    if (!count_dirty(rs, errp)) {
        return false;
    }
    for (int i = 0; i < rs->mem->nblocks; i++) {
        if (rs->sent[i]) {
            *pages += discard_block(rs, f, i);
        }
    }
    return chan_check(f, errp);
}

/* The accelerator's write guard when it covers all of RAM (emu, up to
 * 3 GiB), else NULL: userfaultfd.  HOP_WRITE_TRACKING=userfaultfd picks
 * userfaultfd anyway (tests of that path). */
static struct write_guard *tracking_guard(struct machine *m)
{
    struct machine_memory *mem = machine_memory(m);
    struct write_guard *g = machine_write_guard(m);
    const char *env = getenv("HOP_WRITE_TRACKING");
    if (!g || mem->nblocks != 1 || g->npages != mem->blocks[0]->npages ||
        (env && strcmp(env, "userfaultfd") == 0)) {
        return NULL;
    }
    return g;
}

bool ram_background_check(struct machine *m, Error **errp)
{
    struct machine_memory *mem = machine_memory(m);
    if (tracking_guard(m)) {
        return true;
    }
    struct ram_wp_range r[RAM_MAX_BLOCKS];
    for (int i = 0; i < mem->nblocks; i++) {
        r[i] =
            (struct ram_wp_range){ mem->blocks[i]->host, mem->blocks[i]->npages,
                                   mem->blocks[i]->name };
    }
    return ram_wp_check(r, mem->nblocks, errp);
}

/* Room for a copy of every page the guest may write before the save gets
 * to it: all of RAM, up to 1 GiB and half the host's free memory (beyond
 * that a writer waits for the save to make room), at least 1 MiB. */
#define WP_QUEUE_MAX_PAGES (1u << 18)
#define WP_QUEUE_MIN_PAGES 256u

static unsigned queue_pages(const struct ram_state *rs)
{
    uint64_t n = 0;
    for (int i = 0; i < rs->mem->nblocks; i++) {
        n += rs->mem->blocks[i]->npages;
    }
    long free_pages = sysconf(_SC_AVPHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);
    if (free_pages > 0 && page > 0) {
        uint64_t half =
            (uint64_t)free_pages * (uint64_t)page / 2 / RAM_PAGE_SIZE;
        n = n < half ? n : half;
    }
    n = n < WP_QUEUE_MAX_PAGES ? n : WP_QUEUE_MAX_PAGES;
    return n > WP_QUEUE_MIN_PAGES ? (unsigned)n : WP_QUEUE_MIN_PAGES;
}

bool ram_state_prepare_tracking(struct ram_state *rs, Error **errp)
{
    if (!rs->wp_queue) {
        unsigned n = queue_pages(rs);
        size_t len = (size_t)n * RAM_PAGE_SIZE;
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            error_setg_errno(errp, errno,
                             "background-snapshot: a copy queue of %zu bytes",
                             len);
            return false;
        }
        /* Huge pages: one fault per 2 MiB, not one per page. */
        (void)madvise(p, len, MADV_HUGEPAGE);
        rs->wp_queue = p;
        rs->wp_queue_pages = n;
    }
    /* Resident before the guest can write: a writer copies at memory
     * speed instead of waiting on the host for fresh memory (seconds
     * per GiB on some hosts).  Only a speed-up: going on without it. */
    Error *err = NULL;
    if (!mem_populate(rs->wp_queue, (size_t)rs->wp_queue_pages * RAM_PAGE_SIZE,
                      &err)) {
        error_free(err);
    }
    return true;
}

bool ram_state_start_tracking(struct ram_state *rs, Error **errp)
{
    if (!rs->wp_queue && !ram_state_prepare_tracking(rs, errp)) {
        return false;
    }
    struct ram_wp_range r[RAM_MAX_BLOCKS];
    for (int i = 0; i < rs->mem->nblocks; i++) {
        r[i] = (struct ram_wp_range){ rs->mem->blocks[i]->host,
                                      rs->mem->blocks[i]->npages,
                                      rs->mem->blocks[i]->name };
    }
    ram_state_stop_tracking(rs);
    rs->wp = ram_wp_start(r, rs->mem->nblocks, tracking_guard(rs->m),
                          rs->wp_queue, rs->wp_queue_pages, errp);
    if (!rs->wp) {
        return false;
    }
    if (!rs->wp_stage) {
        rs->wp_stage = xmalloc(RAM_BITS_PER_WORD * RAM_PAGE_SIZE);
    }
    rs->cur_block = 0;
    rs->cur_word = 0;
    return true;
}

void ram_state_stop_tracking(struct ram_state *rs)
{
    if (!rs->wp) {
        return;
    }
    bool rejoin = ram_wp_splits_huge_pages(rs->wp);
    ram_wp_stop(rs->wp);
    rs->wp = NULL;
    /* Kept for the next save, resident while the host has room. */
    (void)madvise(rs->wp_queue, (size_t)rs->wp_queue_pages * RAM_PAGE_SIZE,
                  MADV_FREE);
    /* The huge pages the loop could not join yet (a page written first
     * was still protected when the loop passed). */
    if (rejoin) {
        ram_thp_rejoin_all(rs->mem);
    }
}

uint64_t ram_state_tracking_faults(struct ram_state *rs)
{
    return rs->stats.wp_faults;
}

static bool ram_save_setup(Channel *f, void *opaque, Error **errp)
{
    struct ram_state *rs = opaque;
    uint64_t total = 0;
    for (int i = 0; i < rs->mem->nblocks; i++) {
        total += rs->mem->blocks[i]->size;
    }
    chan_put_be64(f, total | RAM_FLAG_MEM_SIZE);
    uint64_t base = 0, pages = 0;
    if (rs->mapped_ram) {
        ram_mapped_reset(rs);
        /* Writes through the page cache to one file take the file's
         * lock in the kernel one at a time: more writers only spin on it
         * (half the CPU of a 4-thread save), and even one writer thread
         * was slower than writing here, where the pages were just read.
         * Threads pay off for direct-io, and for reading back. */
        int threads = rs->direct_io ? rs->mapped_threads : 0;
        rs->mio = mapped_io_new(chan_get_fd(f), chan_name(f), true, threads,
                                rs->direct_io, errp);
        if (!rs->mio) {
            return false;
        }
    }
    for (int i = 0; i < rs->mem->nblocks; i++) {
        struct ram_block *b = rs->mem->blocks[i];
        chan_put_counted_string(f, b->name);
        chan_put_be64(f, b->size);
        if (rs->ignore_shared) {
            chan_put_be64(f, ram_block_guest_addr(rs->mem, b));
        }
        if (rs->mapped_ram && !mapped_setup_block(rs, f, i, errp)) {
            return false;
        }
        /* The first pass sends every page: all of them start dirty. */
        if (!block_ignored(rs, b)) {
            ram_block_set_all_dirty(b);
            pages += b->npages;
        }
        rs->block_base[i] = base;
        base += b->npages;
    }
    chan_put_be64(f, RAM_FLAG_EOS);
    ram_postcopy_reset(rs);
    atomic_store(&rs->pc_requests, 0);
    atomic_store(&rs->preempt_bytes, 0);
    atomic_store(&rs->preempt_pages, 0);
    for (int i = 0; rs->postcopy_ram && i < rs->mem->nblocks; i++) {
        rs->sent[i] = xcalloc(ram_block_dirty_words(rs->mem->blocks[i]),
                              sizeof(unsigned long));
    }
    memset(&rs->stats, 0, sizeof(rs->stats));
    rs->stats.total = total;
    rs->last_sent_block = -1;
    rs->cur_block = 0;
    rs->cur_word = 0;
    rs->xbzrle_active = false;
    rs->dirty_pages = pages;
    rs->pass_start_ns = clock_mono_ns();
    return chan_check(f, errp);
}

static int ram_save_iterate(Channel *f, void *opaque, Error **errp)
{
    struct ram_state *rs = opaque;
    rs->last_sent_block = -1; /* each section names its first block */
    rs->stats.iterations++;
    int r = rs->wp     ? send_background(rs, f, errp)
        : rs->postcopy ? send_postcopy(rs, f, errp)
                       : send_dirty(rs, f, true, errp);
    if (r >= 0 && !multifd_sync(rs, f, errp)) {
        r = -1;
    }
    if (r >= 0 && rs->mapped_ram && !mapped_flush_run(rs, errp)) {
        r = -1;
    }
    chan_put_be64(f, RAM_FLAG_EOS);
    return r;
}

static bool ram_save_complete(Channel *f, void *opaque, Error **errp)
{
    struct ram_state *rs = opaque;
    rs->last_sent_block = -1;
    /* The machine is stopped: finish the pass, then sync and send until
     * nothing is dirty.  (A background snapshot sent everything in its
     * iterations, and the guest runs on.) */
    int r = rs->background ? 0 : send_dirty(rs, f, false, errp);
    if (r >= 0 && !multifd_sync(rs, f, errp)) {
        r = -1;
    }
    if (r >= 0 && rs->mapped_ram && !mapped_finish(rs, f, errp)) {
        r = -1;
    }
    chan_put_be64(f, RAM_FLAG_EOS);
    return r >= 0 && chan_check(f, errp);
}

/* Exact: the migration loop decides on it whether to stop the guest. */
static uint64_t ram_save_pending(void *opaque)
{
    struct ram_state *rs = opaque;
    Error *err = NULL;
    if (rs->background) {
        return rs->dirty_pages * RAM_PAGE_SIZE;
    }
    if (!count_dirty(rs, &err)) {
        error_free(err); /* keep the estimate; iterate will report it */
    }
    return rs->dirty_pages * RAM_PAGE_SIZE;
}

static void ram_save_cleanup(void *opaque)
{
    ram_state_stop_tracking(opaque);
    ram_postcopy_reset(opaque);
}

void ram_state_get_stats(struct ram_state *rs, struct ram_stats *st)
{
    *st = rs->stats;
    st->postcopy_requests = atomic_load(&rs->pc_requests);
    /* postcopy-preempt's pages went beside the walk's. */
    uint64_t pre = atomic_load(&rs->preempt_bytes);
    st->postcopy_bytes += pre;
    st->preempt_bytes = pre;
    st->transferred += pre;
    st->normal_pages += atomic_load(&rs->preempt_pages);
    st->remaining = rs->dirty_pages * RAM_PAGE_SIZE;
}

bool ram_state_configure(struct ram_state *rs, const struct ram_params *p,
                         Error **errp)
{
    xbzrle_cache_free(rs->xbzrle_cache);
    rs->xbzrle_cache = NULL;
    rs->ignore_shared = p && p->ignore_shared;
    rs->release_ram = p && p->release_ram;
    rs->background = p && p->background;
    rs->mapped_ram = p && p->mapped_ram;
    rs->mapped_threads = p ? p->mapped_threads : 0;
    rs->direct_io = p && p->direct_io;
    rs->postcopy_ram = p && p->postcopy_ram;
    rs->pc_advised = false;
    ram_mapped_reset(rs);
    if (p && p->xbzrle) {
        rs->xbzrle_cache =
            xbzrle_cache_new(p->xbzrle_cache_size, RAM_PAGE_SIZE);
        if (!rs->xbzrle_cache) {
            error_setg(errp, "cannot allocate an XBZRLE cache of %llu bytes",
                       (unsigned long long)p->xbzrle_cache_size);
            return false;
        }
    }
    return true;
}

struct ram_state *ram_state_new(struct machine *m)
{
    struct ram_state *rs = xcalloc(1, sizeof(*rs));
    rs->m = m;
    rs->mem = machine_memory(m);
    rs->membarrier_ok =
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
                0) == 0;
    rs->zero_page = xcalloc(1, RAM_PAGE_SIZE);
    rs->scratch = xmalloc(RAM_PAGE_SIZE);
    rs->delta = xmalloc(RAM_PAGE_SIZE);
    pthread_mutex_init(&rs->mfd_lock, NULL);
    pthread_mutex_init(&rs->req_lock, NULL);
    pthread_mutex_init(&rs->preempt_lock, NULL);
    rs->req_last_block = -1;
    rs->run_block = -1;
    return rs;
}

void ram_state_free(struct ram_state *rs)
{
    if (!rs) {
        return;
    }
    ram_state_stop_tracking(rs);
    ram_incoming_preempt_end(rs, false);
    postcopy_in_stop(rs->pc_in, NULL);
    ram_incoming_unprepare(rs);
    postcopy_bt_free(atomic_load(&rs->pc_bt));
    ram_postcopy_reset(rs);
    pthread_mutex_destroy(&rs->preempt_lock);
    pthread_mutex_destroy(&rs->req_lock);
    free(rs->wp_stage);
    if (rs->wp_queue) {
        munmap(rs->wp_queue, (size_t)rs->wp_queue_pages * RAM_PAGE_SIZE);
    }
    ram_prefault_free(rs->prefault);
    xbzrle_cache_free(rs->xbzrle_cache);
    multifd_send_free(rs->mfd);
    multifd_recv_free(rs->mfd_recv);
    ram_mapped_reset(rs);
    pthread_mutex_destroy(&rs->mfd_lock);
    free(rs->zero_page);
    free(rs->scratch);
    free(rs->delta);
    for (int i = 0; i < RAM_MAX_BLOCKS; i++) {
        free(rs->received[i]);
    }
    free(rs);
}

bool ram_state_start_multifd(struct ram_state *rs, const int *fds, int n,
                             Error **errp)
{
    struct multifd_send *ms = multifd_send_new(rs->mem, fds, n, errp);
    pthread_mutex_lock(&rs->mfd_lock);
    rs->mfd = ms;
    pthread_mutex_unlock(&rs->mfd_lock);
    rs->mfd_dirty = false;
    return ms != NULL;
}

bool ram_state_stop_multifd(struct ram_state *rs, uint64_t *bytes, Error **errp)
{
    if (!rs->mfd) {
        *bytes = 0;
        return true;
    }
    /* A cancel may shut the channels down meanwhile: drain returns. */
    bool ok = multifd_send_drain(rs->mfd, errp);
    *bytes = multifd_send_bytes(rs->mfd);
    pthread_mutex_lock(&rs->mfd_lock);
    struct multifd_send *ms = rs->mfd;
    rs->mfd = NULL;
    pthread_mutex_unlock(&rs->mfd_lock);
    multifd_send_free(ms);
    return ok;
}

void ram_state_cancel_multifd(struct ram_state *rs)
{
    pthread_mutex_lock(&rs->mfd_lock);
    if (rs->mfd) {
        multifd_send_shutdown(rs->mfd);
    }
    pthread_mutex_unlock(&rs->mfd_lock);
}

bool ram_register(struct ram_state *rs, struct section_registry *reg,
                  Error **errp)
{
    rs->reg = reg;
    return section_register_live(reg, RAM_SECTION_IDSTR, 0, RAM_SECTION_VERSION,
                                 &ram_live_ops, rs, errp) >= 0;
}

const struct live_handler_ops ram_live_ops = {
    .save_setup = ram_save_setup,
    .save_iterate = ram_save_iterate,
    .save_complete = ram_save_complete,
    .save_pending = ram_save_pending,
    .save_cleanup = ram_save_cleanup,
    .load_setup = ram_load_setup,
    .load_state = ram_load_state,
    .load_cleanup = ram_load_cleanup,
};
