/* Big-endian loads and stores at byte pointers of any alignment: the
 * byte order of every on-disk and on-wire format hop speaks (the section
 * stream, the RAM section, multifd packets, qcow2). */
#ifndef HOP_UTIL_BE_H
#define HOP_UTIL_BE_H

#include <stdint.h>

static inline uint16_t be16_get(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t be32_get(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
        b[3];
}

static inline uint64_t be64_get(const void *p)
{
    const uint8_t *b = p;
    return (uint64_t)be32_get(b) << 32 | be32_get(b + 4);
}

static inline void be16_put(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static inline void be32_put(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static inline void be64_put(void *p, uint64_t v)
{
    uint8_t *b = p;
    be32_put(b, (uint32_t)(v >> 32));
    be32_put(b + 4, (uint32_t)v);
}

#endif
