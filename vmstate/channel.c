/* Buffered channel core: write buffer + iovec queue, read buffer with
 * peek, latched errors, counters and the rate limiter. */
#include "vmstate/channel.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/be.h"
#include "util/clock.h"

#define CHAN_BUF_SIZE (256 * 1024)
#define CHAN_IOV_MAX 64
/* Puts of at least this many bytes go to the kernel by reference. */
#define CHAN_DIRECT_MIN 4096

struct Channel {
    const struct chan_ops *ops;
    void *opaque;
    bool writable;
    char *name;
    Error *err;

    uint8_t *buf;
    size_t buf_used; /* writer: bytes in buf; reader: valid bytes */
    size_t buf_pos;  /* reader: next byte to consume */
    struct iovec iov[CHAN_IOV_MAX];
    int iovcnt;
    size_t iov_bytes;
    bool backend_eof;

    uint64_t pos; /* bytes put or consumed so far */
    struct chan_stats stats;

    uint64_t rate_limit; /* bytes per window, 0 = none */
    uint64_t window_start_ns;
    uint64_t window_pos; /* pos + charged at window start */
    uint64_t charged;    /* bytes sent elsewhere, for the limit */
};

Channel *chan_new(const struct chan_ops *ops, void *opaque, bool writable,
                  const char *name)
{
    Channel *f = xcalloc(1, sizeof(*f));
    f->buf = xmalloc(CHAN_BUF_SIZE);
    f->name = xstrdup(name ? name : "channel");
    f->ops = ops;
    f->opaque = opaque;
    f->writable = writable;
    f->window_start_ns = clock_mono_ns();
    return f;
}

/* ---- errors ---- */

void chan_set_error_obj(Channel *f, Error *err)
{
    if (f->err) {
        error_free(err);
    } else {
        f->err = err;
    }
}

void chan_set_error(Channel *f, const char *fmt, ...)
{
    if (f->err) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    error_vsetg(&f->err, fmt, ap);
    va_end(ap);
}

bool chan_has_error(const Channel *f)
{
    return f->err != NULL;
}

const char *chan_error_msg(const Channel *f)
{
    return f->err ? error_get_pretty(f->err) : NULL;
}

bool chan_check(const Channel *f, Error **errp)
{
    if (!f->err) {
        return true;
    }
    error_propagate(errp, error_copy(f->err));
    return false;
}

uint64_t chan_tell(const Channel *f)
{
    return f->pos;
}

void *chan_get_opaque(const Channel *f)
{
    return f->opaque;
}

const char *chan_name(const Channel *f)
{
    return f->name;
}

int chan_get_fd(Channel *f)
{
    return f->ops->get_fd ? f->ops->get_fd(f->opaque) : -1;
}

bool chan_file_offset(Channel *f, uint64_t *offset, Error **errp)
{
    int fd = chan_get_fd(f);
    off_t at = fd >= 0 ? lseek(fd, 0, SEEK_CUR) : -1;
    if (at < 0) {
        error_setg(errp, "%s: not a seekable file", f->name);
        return false;
    }
    *offset = f->writable ? (uint64_t)at + f->iov_bytes
                          : (uint64_t)at - (f->buf_used - f->buf_pos);
    return true;
}

bool chan_seek(Channel *f, uint64_t offset, Error **errp)
{
    int fd = chan_get_fd(f);
    if (f->writable && !chan_flush(f)) {
        return chan_check(f, errp);
    }
    if (fd < 0 || offset > INT64_MAX ||
        lseek(fd, (off_t)offset, SEEK_SET) < 0) {
        error_setg(errp, "%s: cannot seek to offset %llu", f->name,
                   (unsigned long long)offset);
        return false;
    }
    if (!f->writable) {
        f->buf_used = f->buf_pos = 0;
        f->backend_eof = false;
    }
    return true;
}

void chan_shutdown(Channel *f)
{
    if (f->ops->shutdown) {
        f->ops->shutdown(f->opaque);
    }
}

void chan_get_stats(const Channel *f, struct chan_stats *st)
{
    *st = f->stats;
}

/* ---- writing ---- */

bool chan_flush(Channel *f)
{
    if (!f->writable || f->iovcnt == 0) {
        f->iovcnt = 0;
        f->buf_used = 0;
        f->iov_bytes = 0;
        return !f->err;
    }
    if (!f->err) {
        Error *err = NULL;
        ssize_t n = f->ops->writev(f->opaque, f->iov, f->iovcnt, &err);
        f->stats.backend_calls++;
        if (n < 0) {
            error_prepend(&err, "%s: write failed at offset %llu: ", f->name,
                          (unsigned long long)(f->pos - f->iov_bytes));
            chan_set_error_obj(f, err);
        } else {
            f->stats.bytes += (uint64_t)n;
        }
    }
    f->iovcnt = 0;
    f->buf_used = 0;
    f->iov_bytes = 0;
    return !f->err;
}

static void add_iov(Channel *f, const void *base, size_t len)
{
    struct iovec *last = f->iovcnt ? &f->iov[f->iovcnt - 1] : NULL;
    if (last &&
        (const uint8_t *)last->iov_base + last->iov_len ==
            (const uint8_t *)base) {
        last->iov_len += len;
    } else {
        f->iov[f->iovcnt].iov_base = (void *)base;
        f->iov[f->iovcnt].iov_len = len;
        f->iovcnt++;
    }
    f->iov_bytes += len;
    f->pos += len;
    if (f->iovcnt == CHAN_IOV_MAX) {
        chan_flush(f);
    }
}

static void put_copy(Channel *f, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        if (f->buf_used == CHAN_BUF_SIZE) {
            chan_flush(f);
        }
        size_t n = CHAN_BUF_SIZE - f->buf_used;
        if (n > len) {
            n = len;
        }
        uint8_t *dst = f->buf + f->buf_used;
        memcpy(dst, p, n);
        f->buf_used += n;
        f->stats.copied_bytes += n;
        add_iov(f, dst, n); /* may flush, which empties buf */
        p += n;
        len -= n;
    }
}

static bool writer_ok(Channel *f)
{
    if (!f->writable) {
        chan_set_error(f, "%s: write to a channel opened for reading", f->name);
    }
    return !f->err;
}

void chan_put_buffer_ref(Channel *f, const void *buf, size_t len)
{
    if (!writer_ok(f) || len == 0) {
        return;
    }
    add_iov(f, buf, len);
}

void chan_put_buffer(Channel *f, const void *buf, size_t len)
{
    if (!writer_ok(f) || len == 0) {
        return;
    }
    if (len >= CHAN_DIRECT_MIN) {
        /* Hand the caller's bytes straight to writev, then flush so the
         * caller may reuse its buffer as soon as we return. */
        add_iov(f, buf, len);
        chan_flush(f);
        return;
    }
    put_copy(f, buf, len);
}

void chan_put_u8(Channel *f, uint8_t v)
{
    if (writer_ok(f)) {
        put_copy(f, &v, 1);
    }
}

void chan_put_be16(Channel *f, uint16_t v)
{
    uint8_t b[2];
    be16_put(b, v);
    chan_put_buffer(f, b, sizeof(b));
}

void chan_put_be32(Channel *f, uint32_t v)
{
    uint8_t b[4];
    be32_put(b, v);
    chan_put_buffer(f, b, sizeof(b));
}

void chan_put_be64(Channel *f, uint64_t v)
{
    chan_put_be32(f, (uint32_t)(v >> 32));
    chan_put_be32(f, (uint32_t)v);
}

void chan_put_counted_string(Channel *f, const char *s)
{
    size_t len = strlen(s);
    if (len > 255) {
        chan_set_error(f, "%s: string '%.32s...' is longer than 255 bytes",
                       f->name, s);
        return;
    }
    chan_put_u8(f, (uint8_t)len);
    chan_put_buffer(f, s, len);
}

/* ---- reading ---- */

static bool reader_ok(Channel *f)
{
    if (f->writable) {
        chan_set_error(f, "%s: read from a channel opened for writing",
                       f->name);
    }
    return !f->err;
}

/* Make at least `want` unconsumed bytes available in buf if the stream has
 * them; returns how many are available. */
static size_t fill(Channel *f, size_t want)
{
    size_t avail = f->buf_used - f->buf_pos;
    if (avail >= want || f->err) {
        return avail;
    }
    if (f->buf_pos > 0) {
        memmove(f->buf, f->buf + f->buf_pos, avail);
        f->buf_used = avail;
        f->buf_pos = 0;
    }
    while (avail < want && !f->backend_eof) {
        Error *err = NULL;
        ssize_t n = f->ops->read(f->opaque, f->buf + f->buf_used,
                                 CHAN_BUF_SIZE - f->buf_used, &err);
        f->stats.backend_calls++;
        if (n < 0) {
            error_prepend(&err, "%s: read failed at offset %llu: ", f->name,
                          (unsigned long long)(f->pos + avail));
            chan_set_error_obj(f, err);
            break;
        }
        if (n == 0) {
            f->backend_eof = true;
            break;
        }
        f->stats.bytes += (uint64_t)n;
        f->buf_used += (size_t)n;
        avail += (size_t)n;
    }
    return avail;
}

static void short_read(Channel *f, uint64_t start, size_t want, size_t got)
{
    chan_set_error(f,
                   "%s: unexpected end of stream at offset %llu "
                   "(wanted %zu bytes, %zu left)",
                   f->name, (unsigned long long)start, want, got);
}

bool chan_get_buffer(Channel *f, void *buf, size_t len)
{
    uint8_t *p = buf;
    uint64_t start = f->pos;
    size_t want = len;
    if (!reader_ok(f)) {
        memset(buf, 0, len);
        return false;
    }
    while (len > 0) {
        size_t avail = f->buf_used - f->buf_pos;
        if (avail == 0) {
            if (len >= CHAN_BUF_SIZE && !f->backend_eof) {
                /* Large read: straight into the caller's memory. */
                Error *err = NULL;
                ssize_t n = f->ops->read(f->opaque, p, len, &err);
                f->stats.backend_calls++;
                if (n < 0) {
                    error_prepend(&err,
                                  "%s: read failed at offset %llu: ", f->name,
                                  (unsigned long long)f->pos);
                    chan_set_error_obj(f, err);
                } else if (n == 0) {
                    f->backend_eof = true;
                } else {
                    f->stats.bytes += (uint64_t)n;
                    f->pos += (uint64_t)n;
                    p += n;
                    len -= (size_t)n;
                    continue;
                }
            } else {
                avail = fill(f, 1);
            }
            if (avail == 0) {
                if (!f->err) {
                    short_read(f, start, want, want - len);
                }
                /* A failed get yields zeros, not half a value. */
                memset(buf, 0, (size_t)(p - (uint8_t *)buf) + len);
                return false;
            }
        }
        size_t n = avail < len ? avail : len;
        memcpy(p, f->buf + f->buf_pos, n);
        f->buf_pos += n;
        f->pos += n;
        p += n;
        len -= n;
    }
    return true;
}

const uint8_t *chan_get_in_place(Channel *f, size_t len)
{
    uint64_t start = f->pos;
    if (!reader_ok(f) || len > CHAN_BUF_SIZE) {
        if (!f->err) {
            chan_set_error(f,
                           "%s: %zu bytes at offset %llu do not fit the "
                           "buffer",
                           f->name, len, (unsigned long long)start);
        }
        return NULL;
    }
    size_t avail = fill(f, len);
    if (avail < len) {
        if (!f->err) {
            short_read(f, start, len, avail);
        }
        return NULL;
    }
    const uint8_t *p = f->buf + f->buf_pos;
    f->buf_pos += len;
    f->pos += len;
    return p;
}

uint8_t chan_get_u8(Channel *f)
{
    uint8_t v = 0;
    chan_get_buffer(f, &v, 1);
    return v;
}

uint16_t chan_get_be16(Channel *f)
{
    uint8_t b[2];
    chan_get_buffer(f, b, sizeof(b));
    return be16_get(b);
}

uint32_t chan_get_be32(Channel *f)
{
    uint8_t b[4];
    chan_get_buffer(f, b, sizeof(b));
    return be32_get(b);
}

uint64_t chan_get_be64(Channel *f)
{
    uint64_t hi = chan_get_be32(f);
    return hi << 32 | chan_get_be32(f);
}

bool chan_get_counted_string(Channel *f, char buf[256])
{
    uint8_t len = chan_get_u8(f);
    bool ok = chan_get_buffer(f, buf, len);
    buf[ok ? len : 0] = '\0';
    return ok;
}

size_t chan_peek(Channel *f, void *buf, size_t len, size_t offset)
{
    if (!reader_ok(f) || offset + len > 512) {
        return 0;
    }
    size_t avail = fill(f, offset + len);
    if (avail <= offset) {
        return 0;
    }
    size_t n = avail - offset < len ? avail - offset : len;
    memcpy(buf, f->buf + f->buf_pos + offset, n);
    return n;
}

bool chan_skip(Channel *f, size_t len)
{
    uint8_t tmp[4096];
    while (len > 0) {
        size_t n = len < sizeof(tmp) ? len : sizeof(tmp);
        if (!chan_get_buffer(f, tmp, n)) {
            return false;
        }
        len -= n;
    }
    return true;
}

bool chan_at_eof(Channel *f)
{
    return reader_ok(f) && fill(f, 1) == 0;
}

/* ---- rate limiting ---- */

void chan_set_rate_limit(Channel *f, uint64_t bytes_per_window)
{
    if (bytes_per_window == f->rate_limit) {
        return;
    }
    /* A new limit starts afresh: what went before it owes nothing. */
    f->rate_limit = bytes_per_window;
    f->window_start_ns = clock_mono_ns();
    f->window_pos = f->pos + f->charged;
}

uint64_t chan_get_rate_limit(const Channel *f)
{
    return f->rate_limit;
}

/* A new window when the last one ended.  What went over the budget of
 * the windows that passed is owed by the new one: a chunk larger than a
 * window's budget (block migration's 1 MiB against 100 KiB at 1 MiB/s)
 * must not turn max-bandwidth into a rate of one chunk per window. */
static void rate_window_roll(Channel *f, uint64_t now)
{
    uint64_t window_ns = CHAN_RATE_WINDOW_MS * 1000000ull;
    if (now - f->window_start_ns < window_ns) {
        return; /* the common case: asked once per page */
    }
    uint64_t windows = (now - f->window_start_ns) / window_ns;
    uint64_t used = f->pos + f->charged - f->window_pos;
    uint64_t owed = 0;
    if (f->rate_limit && used / f->rate_limit >= windows) {
        owed = used - f->rate_limit * windows;
    }
    f->window_start_ns = now;
    f->window_pos = f->pos + f->charged - owed;
}

bool chan_rate_limited(Channel *f)
{
    if (f->err) {
        return true;
    }
    if (f->rate_limit == 0) {
        return false;
    }
    rate_window_roll(f, clock_mono_ns());
    return f->pos + f->charged - f->window_pos >= f->rate_limit;
}

void chan_rate_charge(Channel *f, uint64_t bytes)
{
    f->charged += bytes;
}

void chan_rate_limit_wait(Channel *f)
{
    uint64_t end = f->window_start_ns + CHAN_RATE_WINDOW_MS * 1000000ull;
    uint64_t now = clock_mono_ns();
    if (now < end) {
        chan_flush(f);
        uint64_t d = end - now;
        struct timespec ts = { (time_t)(d / 1000000000ull),
                               (long)(d % 1000000000ull) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
    }
    rate_window_roll(f, clock_mono_ns());
}

/* ---- closing ---- */

bool chan_close(Channel *f, Error **errp)
{
    if (!f) {
        return true;
    }
    if (f->writable) {
        chan_flush(f);
    }
    if (f->ops->close) {
        Error *err = NULL;
        if (!f->ops->close(f->opaque, &err)) {
            error_prepend(&err, "%s: close failed: ", f->name);
            chan_set_error_obj(f, err);
        }
    }
    bool ok = chan_check(f, errp);
    error_free(f->err);
    free(f->buf);
    free(f->name);
    free(f);
    return ok;
}
