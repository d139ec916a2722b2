/* mapped-ram (QEMU 9.0): in a file: migration every RAM page has a fixed
 * place in the file.  Each entry of the RAM block list is followed by a
 * packed big-endian header (be32 version 1, be64 page_size, be64
 * bitmap_offset, be64 pages_offset); the block's bitmap of written pages
 * (one bit a page, in little-endian 64-bit words) sits at bitmap_offset,
 * right after the header, and the page at block offset X at
 * pages_offset + X, pages_offset on a 1 MiB boundary.  The stream goes
 * on after the block's pages region.  Zero pages are never written. */
#ifndef HOP_RAM_RAM_MAPPED_H
#define HOP_RAM_RAM_MAPPED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define RAM_MAPPED_VERSION 1
#define RAM_MAPPED_HDR_SIZE 28
#define RAM_MAPPED_ALIGN (1u << 20)
/* Bytes of one write of pages through the page cache (not direct-io). */
#define RAM_MAPPED_CACHED_WRITE (128u << 10)

struct ram_mapped_hdr {
    uint32_t version;
    uint64_t page_size;
    uint64_t bitmap_offset;
    uint64_t pages_offset;
};

/* Bytes of a bitmap for npages (whole 64-bit words). */
uint64_t ram_mapped_bitmap_bytes(uint64_t npages);
void ram_mapped_hdr_put(uint8_t out[RAM_MAPPED_HDR_SIZE],
                        const struct ram_mapped_hdr *h);
void ram_mapped_hdr_get(const uint8_t in[RAM_MAPPED_HDR_SIZE],
                        struct ram_mapped_hdr *h);
/* Where a writer puts a block whose header ends at header_end. */
void ram_mapped_layout(struct ram_mapped_hdr *h, uint64_t header_end,
                       uint64_t length);
/* Checks a header read for block `name` of length bytes, its header
 * ending at header_end, in a file of file_size bytes: version, page size,
 * the bitmap right after the header, the pages after the bitmap and
 * page-aligned, both inside the file. */
bool ram_mapped_check(const struct ram_mapped_hdr *h, const char *name,
                      uint64_t length, uint64_t header_end, uint64_t file_size,
                      Error **errp);

/* ---- Page I/O at fixed offsets ---- */

/* Runs of pages written to (or read from) a file at their offsets: in the
 * caller's thread, or spread over threads (multifd), each run going to
 * the thread its file offset picks, so that two writes of one page keep
 * their order.  With direct, the pages go through a second descriptor
 * opened with O_DIRECT. */
struct mapped_io;
struct mapped_io *mapped_io_new(int fd, const char *what, bool write,
                                int threads, bool direct, Error **errp);
/* Queues (or does) one run: len bytes at host, file offset off.  Runs
 * never cross a RAM_MAPPED_ALIGN boundary of the file. */
bool mapped_io_run(struct mapped_io *io, void *host, uint64_t len, uint64_t off,
                   Error **errp);
/* Waits until every queued run is done; the first failure, if any. */
bool mapped_io_wait(struct mapped_io *io, Error **errp);
/* Stops the threads (queued runs are dropped) and frees. */
void mapped_io_free(struct mapped_io *io);
/* Bytes moved so far. */
uint64_t mapped_io_bytes(struct mapped_io *io);

#endif
