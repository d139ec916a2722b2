/* A growable byte buffer for building streams and records by hand in
 * tests (big-endian, as on the wire). */
#ifndef HOP_TESTS_BYTEBUF_H
#define HOP_TESTS_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *d;
    size_t len, cap;
};

void put(struct buf *b, const void *p, size_t n);
void put_u8(struct buf *b, uint8_t v);
void put_be16(struct buf *b, uint16_t v);
void put_be32(struct buf *b, uint32_t v);
void put_be64(struct buf *b, uint64_t v);
/* u8 length + bytes */
void put_str(struct buf *b, const char *s);

#endif
