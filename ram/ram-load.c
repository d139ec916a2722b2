/* Receiving RAM: the block list is checked against ours, pages are
 * written into the blocks. */
#include "ram/ram-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "machine/machine.h"
#include "ram/ram-format.h"
#include "util/alloc.h"
#include "util/io.h"
#include "util/printable.h"

#define MAP_SIZE                                                               \
    ((int)(sizeof(((struct ram_state *)0)->block_map) / sizeof(int)))

static void mark_received(struct ram_state *rs, int block, uint64_t page);
static bool was_received(struct ram_state *rs, int block, uint64_t page);

/* A mapped-ram block: its bitmap, then each run of written pages read
 * straight into guest memory (by threads with multifd).  Pages left out
 * are zero: only memory that may hold data is cleared. */
static bool load_mapped_block(struct ram_state *rs, int block,
                              const struct ram_block_info *bi, Error **errp)
{
    struct ram_block *b = rs->mem->blocks[block];
    int fd = chan_get_fd(rs->src.f);
    if (!rs->mio) {
        rs->mio = mapped_io_new(fd, chan_name(rs->src.f), false,
                                rs->mapped_threads, rs->direct_io, errp);
        if (!rs->mio) {
            return false;
        }
    }
    uint64_t bytes = ram_mapped_bitmap_bytes(b->npages);
    uint8_t *bits = xmalloc(bytes);
    ssize_t n = io_pread_full(fd, bits, bytes, bi->mapped.bitmap_offset);
    if (n != (ssize_t)bytes) {
        error_setg_errno(errp, n < 0 ? errno : EIO,
                         "RAM block '%s': reading the mapped-ram bitmap at "
                         "offset %llu",
                         b->name, (unsigned long long)bi->mapped.bitmap_offset);
        free(bits);
        return false;
    }
    uint64_t run = 0, run_len = 0;
    bool ok = true;
    for (uint64_t page = 0; page <= b->npages && ok; page++) {
        bool set = page < b->npages && (bits[page / 8] >> (page % 8)) & 1;
        uint64_t off = page * RAM_PAGE_SIZE;
        if (run_len && (!set || off % RAM_MAPPED_ALIGN == 0)) {
            ok = mapped_io_run(rs->mio, b->host + run, run_len,
                               bi->mapped.pages_offset + run, errp);
            run_len = 0;
        }
        if (page == b->npages) {
            break;
        }
        if (set) {
            if (!run_len) {
                run = off;
            }
            run_len += RAM_PAGE_SIZE;
            mark_received(rs, block, page);
        } else if (was_received(rs, block, page) &&
                   !ram_page_is_zero(b->host + off)) {
            memset(b->host + off, 0, RAM_PAGE_SIZE);
        }
    }
    free(bits);
    if (!mapped_io_wait(rs->mio, ok ? errp : NULL) || !ok) {
        error_prepend(errp, "RAM block '%s': ", b->name);
        return false;
    }
    return true;
}

static bool on_block(void *ctx, size_t index, const struct ram_block_info *bi,
                     Error **errp)
{
    struct ram_state *rs = ctx;
    if (index >= (size_t)MAP_SIZE) {
        error_setg(errp, "too many RAM blocks in the stream (more than %d)",
                   MAP_SIZE);
        return false;
    }
    for (int i = 0; i < rs->mem->nblocks; i++) {
        struct ram_block *b = rs->mem->blocks[i];
        if (strcmp(b->name, bi->name) != 0) {
            continue;
        }
        if (rs->ignore_shared &&
            bi->guest_addr != ram_block_guest_addr(rs->mem, b)) {
            error_setg(errp,
                       "RAM block '%s' is at guest address 0x%llx in the "
                       "stream but 0x%llx here",
                       b->name, (unsigned long long)bi->guest_addr,
                       (unsigned long long)ram_block_guest_addr(rs->mem, b));
            return false;
        }
        if (b->size != bi->length) {
            error_setg(errp,
                       "RAM block '%s' is %llu bytes in the stream but "
                       "%llu bytes here (start with the same -m)",
                       PRINTABLE(bi->name), (unsigned long long)bi->length,
                       (unsigned long long)b->size);
            return false;
        }
        rs->block_map[index] = i;
        return !rs->dec.mapped_ram || load_mapped_block(rs, i, bi, errp);
    }
    error_setg(errp, "unknown RAM block '%s' in the stream",
               PRINTABLE(bi->name));
    return false;
}

static void mark_received(struct ram_state *rs, int block, uint64_t page)
{
    unsigned long *bits = rs->received[block];
    if (bits) {
        bits[page / RAM_BITS_PER_WORD] |= 1ul << (page % RAM_BITS_PER_WORD);
    }
}

static bool was_received(struct ram_state *rs, int block, uint64_t page)
{
    unsigned long *bits = rs->received[block];
    return !bits ||
        (bits[page / RAM_BITS_PER_WORD] >> (page % RAM_BITS_PER_WORD)) & 1;
}

/* After POSTCOPY_LISTEN: pages go in atomically, waking whoever waits
 * for them. */
static bool place_postcopy(struct ram_state *rs, int block,
                           const struct ram_page *p, Error **errp)
{
    switch (p->kind) {
    case RAM_PAGE_NORMAL:
        return postcopy_in_place(rs->pc_in, block, p->offset, p->data, errp);
    case RAM_PAGE_ZERO:
        if (p->fill == 0) {
            return postcopy_in_place(rs->pc_in, block, p->offset, NULL, errp);
        }
        memset(rs->scratch, p->fill, RAM_PAGE_SIZE);
        return postcopy_in_place(rs->pc_in, block, p->offset, rs->scratch,
                                 errp);
    default:
        error_setg(errp,
                   "page at offset %llu: an %s page after the postcopy "
                   "switch, where only whole and zero pages can be placed",
                   (unsigned long long)p->at,
                   p->kind == RAM_PAGE_XBZRLE ? "XBZRLE" : "compressed");
        return false;
    }
}

static bool on_page(void *ctx, const struct ram_page *p, Error **errp)
{
    struct ram_state *rs = ctx;
    int block = rs->block_map[p->block];
    struct ram_block *b = rs->mem->blocks[block];
    if (p->offset >= b->size) {
        error_setg(errp,
                   "page at offset %llu: 0x%llx is outside RAM block "
                   "'%s'",
                   (unsigned long long)p->at, (unsigned long long)p->offset,
                   b->name);
        return false;
    }
    uint8_t *host = b->host + p->offset;
    uint64_t page = p->offset / RAM_PAGE_SIZE;
    if (rs->pc_in) {
        return place_postcopy(rs, block, p, errp);
    }
    switch (p->kind) {
    case RAM_PAGE_NORMAL:
        ram_prefault_note(rs->prefault, block, p->offset);
        memcpy(host, p->data, RAM_PAGE_SIZE);
        mark_received(rs, block, page);
        return true;
    case RAM_PAGE_ZERO:
        if (p->fill != 0) {
            ram_prefault_note(rs->prefault, block, p->offset);
            memset(host, p->fill, RAM_PAGE_SIZE);
            mark_received(rs, block, page);
        } else if ((rs->pc_advised || was_received(rs, block, page)) &&
                   !ram_page_is_zero(host)) {
            /* Only memory that may hold data is touched; but once
             * postcopy was advised, a page that arrived must be mapped
             * (the read does it), or it would read as missing later. */
            memset(host, 0, RAM_PAGE_SIZE);
        }
        return true;
    case RAM_PAGE_XBZRLE:
        if (!xbzrle_decode(p->data, p->len, host, RAM_PAGE_SIZE, errp)) {
            error_prepend(errp, "XBZRLE page at offset %llu: ",
                          (unsigned long long)p->at);
            return false;
        }
        mark_received(rs, block, page);
        return true;
    case RAM_PAGE_COMPRESSED:
        break;
    }
    error_setg(errp,
               "page at offset %llu is zlib-compressed; hop does not "
               "load the `compress` capability's pages",
               (unsigned long long)p->at);
    return false;
}

static bool on_flush(void *ctx, Error **errp)
{
    struct ram_state *rs = ctx;
    if (rs->dec.mapped_ram) {
        return true; /* QEMU may send one; the pages are in place already */
    }
    if (!rs->mfd_recv) {
        error_setg(errp,
                   "MULTIFD_FLUSH record, but this destination takes "
                   "no multifd channels on its transport");
        return false;
    }
    return multifd_recv_flush(rs->mfd_recv, errp);
}

static const struct ram_decode_ops load_ops = {
    .block = on_block,
    .page = on_page,
    .flush = on_flush,
};

void ram_state_multifd_recv_begin(struct ram_state *rs)
{
    multifd_recv_free(rs->mfd_recv);
    rs->mfd_recv =
        multifd_recv_new(rs->mem, rs->received[0] ? rs->received : NULL);
}

bool ram_state_multifd_recv_add(struct ram_state *rs, int fd, Error **errp)
{
    if (!rs->mfd_recv) {
        error_setg(errp, "not expecting multifd channels");
        return false;
    }
    return multifd_recv_add(rs->mfd_recv, fd, errp);
}

void ram_state_multifd_recv_cancel(struct ram_state *rs)
{
    if (rs->mfd_recv) {
        multifd_recv_cancel(rs->mfd_recv);
    }
}

bool ram_state_multifd_recv_end(struct ram_state *rs, Error **errp)
{
    if (!rs->mfd_recv) {
        return true;
    }
    bool ok = multifd_recv_finish(rs->mfd_recv, errp);
    multifd_recv_free(rs->mfd_recv);
    rs->mfd_recv = NULL;
    return ok;
}

/* Pages of b that may hold data before anything arrives count as
 * received, so a zero page clears them: a file backend's earlier
 * contents, the firmware the machine loaded.  Only memory that reads as
 * zeros already is left alone.  Asking does not touch the memory. */
static void mark_held_data(struct ram_state *rs, int block)
{
    struct ram_block *b = rs->mem->blocks[block];
    uint8_t vec[1024];
    for (uint64_t first = 0; first < b->npages; first += sizeof(vec)) {
        uint64_t n =
            b->npages - first < sizeof(vec) ? b->npages - first : sizeof(vec);
        bool known = ram_block_may_hold_data(rs->mem, b, first, n, vec);
        for (uint64_t i = 0; i < n; i++) {
            if (!known || vec[i]) {
                mark_received(rs, block, first + i);
            }
        }
    }
}

void ram_state_set_fresh(struct ram_state *rs, bool fresh)
{
    for (int i = 0; i < RAM_MAX_BLOCKS; i++) {
        free(rs->received[i]);
        rs->received[i] = NULL;
    }
    if (!fresh) {
        return;
    }
    for (int i = 0; i < rs->mem->nblocks; i++) {
        uint64_t words = (rs->mem->blocks[i]->npages + RAM_BITS_PER_WORD - 1) /
            RAM_BITS_PER_WORD;
        rs->received[i] = xcalloc(words, sizeof(unsigned long));
        /* A block the stream leaves out gets no page: no need to ask
         * (the scan costs ~10 ms per GiB, in cpr-exec's pause). */
        if (!(rs->ignore_shared && rs->mem->blocks[i]->map.shared)) {
            mark_held_data(rs, i);
        }
    }
}

/* Whether the stream brings any RAM: not when every block is shared and
 * left out (x-ignore-shared, the cpr modes). */
static bool loads_ram(const struct ram_state *rs)
{
    for (int i = 0; i < rs->mem->nblocks; i++) {
        if (!(rs->ignore_shared && rs->mem->blocks[i]->map.shared)) {
            return true;
        }
    }
    return false;
}

bool ram_load_setup(void *opaque, Error **errp)
{
    struct ram_state *rs = opaque;
    ram_decoder_init(&rs->dec, &load_ops, rs);
    rs->dec.ignore_shared = rs->ignore_shared;
    ram_prefault_free(rs->prefault);
    /* Postcopy: nothing may touch RAM ahead of the pages. */
    rs->prefault =
        loads_ram(rs) && !rs->pc_advised ? ram_prefault_new(rs->mem) : NULL;
    return true;
}

bool ram_load_state(Channel *f, void *opaque, int version_id, Error **errp)
{
    struct ram_state *rs = opaque;
    if (version_id != RAM_SECTION_VERSION) {
        error_setg(errp, "RAM section version %d (expected %d)", version_id,
                   RAM_SECTION_VERSION);
        return false;
    }
    ram_reader_init_chan(&rs->reader, &rs->src, f);
    rs->dec.mapped_ram = rs->reg && section_registry_get_mapped_ram(rs->reg);
    return ram_decode_section(&rs->dec, &rs->reader, errp);
}

void ram_load_cleanup(void *opaque)
{
    struct ram_state *rs = opaque;
    ram_prefault_free(rs->prefault);
    rs->prefault = NULL;
    ram_decoder_cleanup(&rs->dec);
    ram_incoming_postcopy_done(rs);
    mapped_io_free(rs->mio);
    rs->mio = NULL;
    /* Decoded guest code is stale now, unless no RAM was in the stream
     * (a walk over the code map costs ~10 ms per GiB under emu, all of it
     * in the downtime). */
    /* In postcopy the guest runs already: that was done before it ran. */
    if (loads_ram(rs) && !rs->pc_in) {
        machine_invalidate(rs->m, 0, UINT64_MAX);
    }
}
