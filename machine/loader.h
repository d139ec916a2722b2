/* Puts a guest kernel into RAM the way a multiboot loader does: a flat
 * 32-bit image with a multiboot v1 header using the a.out kludge (flags
 * bit 16) is loaded where its header says; an image without a header is
 * loaded at 1 MiB and entered there.  The multiboot information
 * structure (mem_lower/mem_upper) is built in low memory. */
#ifndef HOP_MACHINE_LOADER_H
#define HOP_MACHINE_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/memory.h"
#include "util/error.h"

#define LOADER_KERNEL_BASE 0x100000u
#define LOADER_MBI_ADDR 0x9000u
#define MULTIBOOT_HEADER_MAGIC 0x1badb002u
#define MULTIBOOT_BOOT_MAGIC 0x2badb002u

struct loader_result {
    uint32_t entry;
    uint32_t mbi;                  /* physical address of the multiboot info */
    uint32_t load_start, load_end; /* bytes written, bss included */
    bool multiboot;                /* a header was found */
};

/* name is used in error messages (a path or a firmware name). */
bool loader_load(struct machine_memory *mem, const uint8_t *image, size_t size,
                 const char *name, struct loader_result *res, Error **errp);
/* Read a whole kernel file (at most max bytes); caller frees *data. */
bool loader_read_file(const char *path, size_t max, uint8_t **data,
                      size_t *size, Error **errp);

#endif
