/* What a monitor socket client has yet to read.  Writes never block the
 * monitor loop: bytes wait here and go out when the socket takes them
 * (the loop polls for POLLOUT while some wait).
 *
 * What waits is bounded by its users.  Answers: a client's next request
 * is not taken while OUTQ_PAUSE bytes wait, so a client that sends
 * without reading gets one answer past that and no further.  Events come
 * whether the client asks or not: past OUTQ_LIMIT the client is dropped. */
#ifndef HOP_MONITOR_OUTQ_H
#define HOP_MONITOR_OUTQ_H

#include <stdbool.h>
#include <stddef.h>

#define OUTQ_PAUSE (64u << 10)
#define OUTQ_LIMIT (8u << 20)

struct outq {
    char *buf;
    size_t head, len, cap; /* the bytes waiting are buf[head, head+len) */
    bool broken;           /* a send failed: the peer has gone */
};

/* Queues n bytes and sends what the socket takes now.  Once the socket
 * has failed, bytes are discarded. */
void outq_write(struct outq *q, int fd, const void *data, size_t n);
/* Sends what the socket takes now; false if the socket has failed. */
bool outq_flush(struct outq *q, int fd);
static inline size_t outq_pending(const struct outq *q)
{
    return q->len;
}
/* Flow control: take no requests while this is true. */
static inline bool outq_full(const struct outq *q)
{
    return q->len >= OUTQ_PAUSE;
}
void outq_free(struct outq *q);

#endif
