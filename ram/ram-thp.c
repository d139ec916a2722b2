/* Huge pages of guest RAM put back together (see ram-thp.h). */
#include "ram/ram-thp.h"

#include <sys/mman.h>

#include "ram/ram-format.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

void ram_thp_rejoin(const struct machine_memory *mem, struct ram_block *b,
                    uint64_t first)
{
    uint8_t *start = b->host + first * RAM_PAGE_SIZE;
    uint64_t bytes = (uint64_t)RAM_THP_PAGES * RAM_PAGE_SIZE;
    if (b->kind != MEM_BACKEND_RAM || b->fd >= 0 ||
        first + RAM_THP_PAGES > b->npages || ((uintptr_t)start % bytes)) {
        return;
    }
    uint8_t vec[RAM_THP_PAGES];
    if (!ram_block_may_hold_data(mem, b, first, RAM_THP_PAGES, vec)) {
        return;
    }
    for (unsigned i = 0; i < RAM_THP_PAGES; i++) {
        if (!vec[i]) {
            return;
        }
    }
    /* Fails harmlessly where it cannot (old kernel, no huge page free). */
    (void)madvise(start, bytes, MADV_COLLAPSE);
}

void ram_thp_rejoin_all(const struct machine_memory *mem)
{
    for (int i = 0; i < mem->nblocks; i++) {
        struct ram_block *b = mem->blocks[i];
        for (uint64_t p = 0; p + RAM_THP_PAGES <= b->npages;
             p += RAM_THP_PAGES) {
            ram_thp_rejoin(mem, b, p);
        }
    }
}
