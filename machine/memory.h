/* Guest RAM: named blocks, each on a memory backend (machine/
 * memory-backend.h: anonymous memory by default, or a memfd or a file)
 * with a dirty bitmap of one bit per 4 KiB page, and the PC memory map
 * that places pc.ram in guest physical address space: the first
 * min(size, 3 GiB) at 0, the rest at 4 GiB.
 *
 * Dirty bits are set by the accelerator (emu on every guest store, kvm
 * when the machine syncs its dirty log) and read and cleared atomically
 * by whoever copies RAM out, while vCPUs keep running.  Reading guest
 * memory through this API never marks a page dirty. */
#ifndef HOP_MACHINE_MEMORY_H
#define HOP_MACHINE_MEMORY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/accel.h"
#include "machine/memory-backend.h"
#include "util/error.h"

#define RAM_PAGE_BITS 12
#define RAM_PAGE_SIZE (1u << RAM_PAGE_BITS)
#define RAM_BITS_PER_WORD (8 * sizeof(unsigned long))
#define RAM_MAX_BLOCKS 8
#define RAM_MAX_REGIONS 8
/* Guest physical addresses from here up to 4 GiB are not RAM. */
#define RAM_BELOW_4G_MAX (3ull << 30)
#define RAM_HIGH_BASE (4ull << 30)

struct ram_block {
    char *name;
    uint64_t size; /* bytes, page aligned */
    uint64_t npages;
    uint8_t *host;
    int fd;                 /* the backend's fd, -1 if anonymous */
    struct mem_mapping map; /* host and fd come from here */
    enum mem_backend_kind kind;
    char backend_id[MEM_BACKEND_ID_MAX];
    _Atomic unsigned long *dirty; /* npages bits */
};

struct machine_memory {
    struct ram_block *blocks[RAM_MAX_BLOCKS];
    int nblocks;
    /* Guest physical map handed to the accelerator. */
    struct accel_mem_region regions[RAM_MAX_REGIONS];
    int nregions;
    uint64_t ram_size; /* size of pc.ram */
    int pagemap_fd;    /* /proc/self/pagemap, -1 if it cannot be read */
};

/* pc.ram of size bytes (a multiple of 4 KiB, at least 2 MiB) mapped as
 * described above, on backend (NULL: anonymous memory; its size, when
 * set, must equal ram_size). */
struct machine_memory *memory_new(uint64_t ram_size,
                                  const struct mem_backend *backend,
                                  Error **errp);
void memory_free(struct machine_memory *mem);

/* Another block (not mapped into guest physical memory), on backend
 * (NULL: anonymous memory). */
struct ram_block *memory_add_block(struct machine_memory *mem, const char *name,
                                   uint64_t size,
                                   const struct mem_backend *backend,
                                   Error **errp);
struct ram_block *memory_find_block(const struct machine_memory *mem,
                                    const char *name);
/* pc.ram */
struct ram_block *memory_main_block(const struct machine_memory *mem);

/* Host pointer for [gpa, gpa+len) if it lies within one region, else
 * NULL. */
uint8_t *memory_host_ptr(const struct machine_memory *mem, uint64_t gpa,
                         uint64_t len);
/* Copy guest memory out (marks nothing dirty) or in (marks the pages
 * dirty).  Ranges may span regions but not holes. */
bool memory_read(const struct machine_memory *mem, uint64_t gpa, void *buf,
                 size_t len, Error **errp);
bool memory_write(struct machine_memory *mem, uint64_t gpa, const void *buf,
                  size_t len, Error **errp);
/* Where b starts in guest physical memory (0 for blocks not mapped
 * there), as x-ignore-shared streams carry it. */
uint64_t ram_block_guest_addr(const struct machine_memory *mem,
                              const struct ram_block *b);
/* Bytes of RAM below 4 GiB (the multiboot mem_upper source). */
uint64_t memory_below_4g(const struct machine_memory *mem);

/* Maps fd (the same block of another process, see
 * mem_mapping_adopt_fd) in place of b's pages; b keeps its address. */
bool ram_block_adopt_fd(struct ram_block *b, int fd, Error **errp);

/* ---- What a block holds without reading it ---- */

/* For pages [first, first + n) of b (n at most 1024): vec[i] = 1 when
 * page first+i may hold data, 0 when it was never written and reads as
 * zeros (anonymous memory never touched, or a hole of the backend's
 * shared fd).  Reading a page to find out would allocate it.  Returns
 * false when this cannot be told (every page may hold data). */
bool ram_block_may_hold_data(const struct machine_memory *mem,
                             const struct ram_block *b, uint64_t first,
                             uint64_t n, uint8_t *vec);

/* Faults [offset, offset+len) of b in for writing ahead of use, without
 * changing what it holds; false if the host cannot (nothing happens). */
bool ram_block_prefault(struct ram_block *b, uint64_t offset, uint64_t len);

/* ---- Dirty tracking ---- */

/* Move the accelerator's dirty log into the block bitmaps. */
bool memory_sync_dirty(struct machine_memory *mem, const struct accel_ops *ops,
                       struct accel *acc, Error **errp);
void ram_block_set_dirty(struct ram_block *b, uint64_t offset, uint64_t len);
void ram_block_set_all_dirty(struct ram_block *b);
bool ram_block_test_dirty(const struct ram_block *b, uint64_t page);
/* Atomically read and clear one page's bit; true if it was set. */
bool ram_block_test_and_clear_dirty(struct ram_block *b, uint64_t page);
/* Atomically read and clear a whole word of the bitmap (pages
 * word*BITS .. word*BITS+BITS-1); returns the bits that were set. */
unsigned long ram_block_take_dirty_word(struct ram_block *b, uint64_t word);
uint64_t ram_block_dirty_words(const struct ram_block *b);
uint64_t ram_block_count_dirty(const struct ram_block *b);
void ram_block_clear_all_dirty(struct ram_block *b);

#endif
