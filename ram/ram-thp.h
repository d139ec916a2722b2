/* Huge pages of guest RAM put back together after write tracking. */
#ifndef HOP_RAM_RAM_THP_H
#define HOP_RAM_RAM_THP_H

#include <stdint.h>

#include "machine/memory.h"

/* Small pages in a transparent huge page (2 MiB on x86-64). */
#define RAM_THP_PAGES 512u

/* Write-protecting anonymous RAM and letting its pages go a few at a
 * time (ram/ram-wp.h) splits its transparent huge pages into small ones,
 * which the kernel joins again only slowly (khugepaged: a few MiB every
 * few seconds); meanwhile every page the guest touches costs a TLB miss,
 * and many times that where the host itself is virtual.  This joins the
 * huge page of pages [first, first + RAM_THP_PAGES) of b again, once none
 * of them is protected any more: anonymous RAM only (the kind hop asks
 * huge pages for), a whole aligned huge page, and only when every page of
 * it is in memory (joining would allocate the others).  Best effort:
 * nothing happens where the kernel cannot (MADV_COLLAPSE, Linux 6.1). */
void ram_thp_rejoin(const struct machine_memory *mem, struct ram_block *b,
                    uint64_t first);
/* The same for every huge page of every block. */
void ram_thp_rejoin_all(const struct machine_memory *mem);

#endif
