/* Non-blocking output queues for monitor socket clients. */
#include "monitor/outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/alloc.h"

bool outq_flush(struct outq *q, int fd)
{
    while (q->len && !q->broken) {
        ssize_t n =
            send(fd, q->buf + q->head, q->len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            q->head += (size_t)n;
            q->len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            q->broken = true;
            q->len = 0;
        }
    }
    if (!q->len) {
        q->head = 0;
        /* Give back what a burst of output took. */
        if (q->cap > OUTQ_PAUSE) {
            free(q->buf);
            q->buf = NULL;
            q->cap = 0;
        }
    }
    return !q->broken;
}

void outq_write(struct outq *q, int fd, const void *data, size_t n)
{
    if (q->broken) {
        return;
    }
    if (q->head && q->head + q->len + n > q->cap) {
        memmove(q->buf, q->buf + q->head, q->len);
        q->head = 0;
    }
    if (q->len + n > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->len + n) {
            cap *= 2;
        }
        q->buf = xrealloc(q->buf, cap);
        q->cap = cap;
    }
    memcpy(q->buf + q->head + q->len, data, n);
    q->len += n;
    outq_flush(q, fd);
}

void outq_free(struct outq *q)
{
    free(q->buf);
    memset(q, 0, sizeof(*q));
}
