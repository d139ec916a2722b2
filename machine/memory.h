/* Guest RAM: named blocks backed by memfd (MAP_SHARED, so another process
 * can map the same pages), each with a dirty bitmap of one bit per 4 KiB
 * page, and the PC memory map that places pc.ram in guest physical
 * address space: the first min(size, 3 GiB) at 0, the rest at 4 GiB.
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
    int fd;                       /* the memfd */
    _Atomic unsigned long *dirty; /* npages bits */
};

struct machine_memory {
    struct ram_block *blocks[RAM_MAX_BLOCKS];
    int nblocks;
    /* Guest physical map handed to the accelerator. */
    struct accel_mem_region regions[RAM_MAX_REGIONS];
    int nregions;
    uint64_t ram_size; /* size of pc.ram */
};

/* pc.ram of size bytes (a multiple of 4 KiB, at least 2 MiB) mapped as
 * described above. */
struct machine_memory *memory_new(uint64_t ram_size, Error **errp);
void memory_free(struct machine_memory *mem);

/* Another block (not mapped into guest physical memory). */
struct ram_block *memory_add_block(struct machine_memory *mem, const char *name,
                                   uint64_t size, Error **errp);
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
/* Bytes of RAM below 4 GiB (the multiboot mem_upper source). */
uint64_t memory_below_4g(const struct machine_memory *mem);

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
