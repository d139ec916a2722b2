/* Memory channel backends: a growable buffer to write into (used for
 * in-process save/load and by tests) and a read-only view of bytes. */
#include "vmstate/channel.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

struct mem_backend {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t rpos;
    bool owned;
};

static ssize_t mem_writev(void *opaque, const struct iovec *iov, int iovcnt,
                          Error **errp)
{
    struct mem_backend *m = opaque;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        total += iov[i].iov_len;
    }
    if (m->len + total > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + total) {
            cap *= 2;
        }
        m->data = xrealloc(m->data, cap);
        m->cap = cap;
    }
    for (int i = 0; i < iovcnt; i++) {
        memcpy(m->data + m->len, iov[i].iov_base, iov[i].iov_len);
        m->len += iov[i].iov_len;
    }
    return (ssize_t)total;
}

static ssize_t mem_read(void *opaque, void *buf, size_t len, Error **errp)
{
    struct mem_backend *m = opaque;
    size_t n = m->len - m->rpos;
    if (n > len) {
        n = len;
    }
    memcpy(buf, m->data + m->rpos, n);
    m->rpos += n;
    return (ssize_t)n;
}

static bool mem_close(void *opaque, Error **errp)
{
    struct mem_backend *m = opaque;
    if (m->owned) {
        free(m->data);
    }
    free(m);
    return true;
}

static const struct chan_ops mem_ops = {
    .writev = mem_writev,
    .read = mem_read,
    .close = mem_close,
};

Channel *chan_new_mem_writer(void)
{
    struct mem_backend *m = xcalloc(1, sizeof(*m));
    m->owned = true;
    return chan_new(&mem_ops, m, true, "memory");
}

Channel *chan_new_mem_reader(const void *data, size_t len, const char *name)
{
    struct mem_backend *m = xcalloc(1, sizeof(*m));
    m->data = (uint8_t *)data;
    m->len = len;
    return chan_new(&mem_ops, m, false, name ? name : "memory");
}

uint8_t *chan_mem_take(Channel *f, size_t *len)
{
    struct mem_backend *m = chan_get_opaque(f);
    chan_flush(f);
    uint8_t *data = m->data;
    *len = m->len;
    m->data = NULL;
    m->len = m->cap = 0;
    return data;
}
