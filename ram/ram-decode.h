/* Reading the RAM section: the block list of the START section, the page
 * records of every START/PART/END body up to EOS, and XBZRLE deltas.
 *
 * The decoder keeps what carries across sections (the block list, the
 * block a CONTINUE record refers to) and hands every record to callbacks;
 * it owns no guest memory.  Bytes come through a ram_reader, so the same
 * code reads a mapped file (hop inspect) and a live channel (incoming
 * migration). */
#ifndef HOP_RAM_RAM_DECODE_H
#define HOP_RAM_RAM_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ram/ram-format.h"
#include "ram/ram-mapped.h"
#include "util/error.h"
#include "util/lookup.h"
#include "vmstate/channel.h"

/* ---- Byte sources ---- */

struct ram_reader {
    /* The next n bytes, contiguous, valid until the next call; NULL with
     * errp set (naming `what` and the offset) when they are not there. */
    const uint8_t *(*take)(void *opaque, size_t n, const char *what,
                           Error **errp);
    /* Stream offset of the next byte. */
    uint64_t (*tell)(void *opaque);
    /* mapped-ram only (NULL where the source cannot seek): the file
     * offset of the next byte and the file's size; moving on to a file
     * offset past the next byte. */
    bool (*where)(void *opaque, uint64_t *offset, uint64_t *size, Error **errp);
    bool (*seek)(void *opaque, uint64_t offset, Error **errp);
    void *opaque;
};

/* A byte range in memory; base is the stream offset of data[0]. */
struct ram_mem_source {
    const uint8_t *data;
    size_t len;
    size_t pos;
    uint64_t base;
};
void ram_reader_init_mem(struct ram_reader *r, struct ram_mem_source *src,
                         const void *data, size_t len, uint64_t base);

/* A read channel; pages are read where they lie in its buffer. */
struct ram_chan_source {
    Channel *f;
};
void ram_reader_init_chan(struct ram_reader *r, struct ram_chan_source *src,
                          Channel *f);

/* ---- Records ---- */

struct ram_block_info {
    char name[256];
    uint64_t length;     /* used length in bytes */
    uint64_t guest_addr; /* only with x-ignore-shared */
    /* only with mapped-ram: checked against the file before the block
     * callback, which reads the block's pages from the file */
    struct ram_mapped_hdr mapped;
};

enum ram_page_kind {
    RAM_PAGE_NORMAL,     /* data = the page */
    RAM_PAGE_ZERO,       /* every byte is fill */
    RAM_PAGE_XBZRLE,     /* data = delta against the previous page */
    RAM_PAGE_COMPRESSED, /* data = zlib stream of the page */
};
#define RAM_PAGE_KINDS 4

struct ram_page {
    size_t block;    /* index in the decoder's block list */
    uint64_t offset; /* byte offset inside the block */
    enum ram_page_kind kind;
    uint8_t fill;
    const uint8_t *data;
    size_t len;
    uint64_t at;   /* stream offset of the record */
    uint64_t size; /* bytes of the record in the stream */
};

struct ram_decode_ops {
    /* Each entry of the block list, in stream order (may be NULL). */
    bool (*block)(void *ctx, size_t index, const struct ram_block_info *b,
                  Error **errp);
    /* Each page record (may be NULL). */
    bool (*page)(void *ctx, const struct ram_page *p, Error **errp);
    /* A MULTIFD_FLUSH record: pages sent on other channels before it
     * must be in place before going on (may be NULL). */
    bool (*flush)(void *ctx, Error **errp);
};

struct ram_decoder {
    const struct ram_decode_ops *ops;
    void *ctx;
    size_t page_size;
    /* Set when the configuration announced x-ignore-shared: each block
     * entry then carries a be64 guest address. */
    bool ignore_shared;
    /* Set when it announced mapped-ram: each block entry then carries a
     * mapped-ram header, and the stream goes on after its pages. */
    bool mapped_ram;
    struct ram_block_info *blocks;
    size_t nblocks, cap;
    struct lookup names; /* block name -> index in blocks */
    bool have_blocks;
    bool have_last; /* CONTINUE refers to blocks[last_block] */
    size_t last_block;
};

void ram_decoder_init(struct ram_decoder *d, const struct ram_decode_ops *ops,
                      void *ctx);
void ram_decoder_cleanup(struct ram_decoder *d);
/* The block list of from, in its order, for a decoder of another channel
 * of the same stream (postcopy-preempt). */
void ram_decoder_copy_blocks(struct ram_decoder *d,
                             const struct ram_decoder *from);

/* Reads one section body: records up to and including EOS.  Errors are
 * one line naming the offset and what was expected. */
bool ram_decode_section(struct ram_decoder *d, struct ram_reader *r,
                        Error **errp);

/* Index of the block called name, or -1. */
long ram_decoder_find_block(const struct ram_decoder *d, const char *name);

/* Applies an XBZRLE delta to page (page_size bytes) in place.  A delta
 * that is malformed or runs past the page leaves the page untouched and
 * returns false with errp set. */
bool xbzrle_decode(const uint8_t *delta, size_t dlen, uint8_t *page,
                   size_t page_size, Error **errp);

#endif
