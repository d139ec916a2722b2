/* A plain, non-iterative "ram" section in QEMU's RAM format (version 4):
 * the block list at setup, then every page once at completion (ZERO for
 * pages filled with one byte value 0, PAGE otherwise).  It lets a stopped
 * machine save and load itself whole; the ram/ layer replaces it with
 * the iterative handler that live migration needs. */
#ifndef HOP_MACHINE_RAM_SECTION_H
#define HOP_MACHINE_RAM_SECTION_H

#include "machine/memory.h"
#include "vmstate/stream.h"

#define RAM_SECTION_VERSION 4

extern const struct live_handler_ops ram_section_ops;

/* Registers mem as the "ram" live section of reg. */
bool ram_section_register(struct section_registry *reg,
                          struct machine_memory *mem, Error **errp);

#endif
