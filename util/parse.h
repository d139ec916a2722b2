/* Numbers and sizes as users type them, in one place for the command
 * line, the monitor and the image tools. */
#ifndef HOP_UTIL_PARSE_H
#define HOP_UTIL_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/* Decimal, 0x hex or 0 octal; the full int64 range, and uint64 values
 * above it (read as their two's complement). */
bool parse_int(const char *s, int64_t *out);
/* "4096", "64K", "1.5G", "2T", "32MiB", "64KB": bytes.  A number without
 * a suffix is multiplied by default_unit (1 for bytes, 1<<20 for QEMU's
 * `-m 512`). */
bool parse_size(const char *s, uint64_t default_unit, uint64_t *out);

#endif
