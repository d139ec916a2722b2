/* What a saved state holds, for the catalog: the machine type, the RAM
 * size and one entry per device section (idstr, instance, version, bytes
 * in the stream), read from the section headers of a stream in memory —
 * hop's or QEMU's. */
#ifndef HOP_SNAPSHOT_SECTIONS_H
#define HOP_SNAPSHOT_SECTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct state_section {
    char idstr[256];
    uint32_t instance;
    uint32_t version;
    uint64_t size; /* header + body + footer of all its records */
};

struct state_summary {
    char machine[256];
    uint64_t ram_size; /* total of the RAM blocks; 0 if none */
    struct state_section *sections;
    size_t nsections;
};

/* Walks data[0..len).  ram_extra is added to the "ram" section's size:
 * savevm reads back only the start and the end of what it wrote and
 * knows how many bytes of RAM records lay between. */
bool state_summary_read(const uint8_t *data, size_t len, uint64_t ram_extra,
                        struct state_summary *out, Error **errp);
void state_summary_free(struct state_summary *s);

#endif
