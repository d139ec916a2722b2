#include "tests/unit/bytebuf.h"

#include <stdlib.h>
#include <string.h>

#include "util/be.h"

void put(struct buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->d = realloc(b->d, b->cap);
        if (!b->d) {
            abort();
        }
    }
    memcpy(b->d + b->len, p, n);
    b->len += n;
}

void put_u8(struct buf *b, uint8_t v)
{
    put(b, &v, 1);
}

void put_be16(struct buf *b, uint16_t v)
{
    uint8_t x[2];
    be16_put(x, v);
    put(b, x, 2);
}

void put_be32(struct buf *b, uint32_t v)
{
    uint8_t x[4];
    be32_put(x, v);
    put(b, x, 4);
}

void put_be64(struct buf *b, uint64_t v)
{
    put_be32(b, (uint32_t)(v >> 32));
    put_be32(b, (uint32_t)v);
}

void put_str(struct buf *b, const char *s)
{
    put_u8(b, (uint8_t)strlen(s));
    put(b, s, strlen(s));
}
