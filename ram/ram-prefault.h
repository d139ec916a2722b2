/* Guest memory made ready ahead of the incoming stream.
 *
 * The first write to a fresh page costs a fault that allocates and clears
 * it: on many hosts that, not the copy, bounds how fast RAM arrives.  A
 * helper thread faults pages in (MADV_POPULATE_WRITE) a little ahead of
 * where page data is landing, so the receiver finds them ready.  Only
 * ahead of data: a run of k chunks that held data prefaults min(k, max)
 * chunks past it, so a sparse or zero guest makes the destination
 * allocate hardly anything it would not have allocated anyway. */
#ifndef HOP_RAM_RAM_PREFAULT_H
#define HOP_RAM_RAM_PREFAULT_H

#include <stdint.h>

#include "machine/memory.h"

struct ram_prefault;

/* NULL when the host cannot prefault (the receiver faults on its own). */
struct ram_prefault *ram_prefault_new(struct machine_memory *mem);
/* Stops and joins the helper; pf may be NULL. */
void ram_prefault_free(struct ram_prefault *pf);

/* Page data is being written at (block, offset).  Cheap; called for
 * every data page by one thread or several (multifd channels). */
void ram_prefault_note(struct ram_prefault *pf, int block, uint64_t offset);

/* Bytes the helper faulted in so far. */
uint64_t ram_prefault_bytes(const struct ram_prefault *pf);

#endif
