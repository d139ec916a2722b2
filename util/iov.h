/* Helpers for partial vectored I/O. */
#ifndef HOP_UTIL_IOV_H
#define HOP_UTIL_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Drop the first n bytes of the vector (*iov, *cnt elements) after a
 * short readv or writev, adjusting the element it stops in. */
static inline void iov_advance(struct iovec **iov, int *cnt, size_t n)
{
    while (*cnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*cnt)--;
    }
    if (*cnt > 0) {
        (*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

#endif
