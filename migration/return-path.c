#include "migration/return-path.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/be.h"
#include "util/clock.h"
#include "util/io.h"
#include "util/alloc.h"

/* Each type's body length; -1: variable. */
static const struct {
    const char *name;
    int len;
} msgs[RP_MSG__MAX] = {
    [RP_MSG_INVALID] = { "INVALID", -1 },
    [RP_MSG_SHUT] = { "SHUT", 4 },
    [RP_MSG_PONG] = { "PONG", 4 },
    [RP_MSG_REQ_PAGES_ID] = { "REQ_PAGES_ID", -1 },
    [RP_MSG_REQ_PAGES] = { "REQ_PAGES", 12 },
    [RP_MSG_RECV_BITMAP] = { "RECV_BITMAP", -1 },
    [RP_MSG_RESUME_ACK] = { "RESUME_ACK", 4 },
};

const char *rp_msg_name(unsigned type)
{
    return type < RP_MSG__MAX ? msgs[type].name : "unknown";
}

bool rp_check_header(uint16_t type, uint16_t len, Error **errp)
{
    if (type == RP_MSG_INVALID || type >= RP_MSG__MAX) {
        error_setg(errp, "return path: message type %u is not one (1-%d)", type,
                   RP_MSG__MAX - 1);
        return false;
    }
    if (msgs[type].len >= 0 && len != msgs[type].len) {
        error_setg(errp, "return path: %s with %u bytes (it has %d)",
                   msgs[type].name, len, msgs[type].len);
        return false;
    }
    return true;
}

bool rp_parse_req_pages(uint16_t type, const uint8_t *body, uint16_t len,
                        struct rp_req_pages *out, Error **errp)
{
    memset(out, 0, sizeof(*out));
    if (type != RP_MSG_REQ_PAGES && type != RP_MSG_REQ_PAGES_ID) {
        error_setg(errp, "return path: %s is not a page request",
                   rp_msg_name(type));
        return false;
    }
    if (len < 12 || (type == RP_MSG_REQ_PAGES && len != 12)) {
        error_setg(errp, "return path: %s with %u bytes (it has %s)",
                   rp_msg_name(type), len,
                   type == RP_MSG_REQ_PAGES ? "12" : "13 or more");
        return false;
    }
    out->start = be64_get(body);
    out->len = be32_get(body + 8);
    if (type == RP_MSG_REQ_PAGES) {
        return true;
    }
    size_t nlen = len > 12 ? body[12] : 0;
    if (len < 13 || nlen == 0 || len != 13 + nlen) {
        error_setg(errp,
                   "return path: REQ_PAGES_ID with %u bytes for a block "
                   "name of %zu",
                   len, nlen);
        return false;
    }
    memcpy(out->name, body + 13, nlen);
    out->name[nlen] = '\0';
    if (strlen(out->name) != nlen) {
        error_setg(errp,
                   "return path: REQ_PAGES_ID: the block name holds a "
                   "NUL byte");
        return false;
    }
    out->has_name = true;
    return true;
}

bool rp_send_req_pages(int fd, const char *name, uint64_t start, uint32_t len,
                       Error **errp)
{
    uint8_t m[4 + RP_REQ_PAGES_ID_MAX];
    size_t n = 12;
    be64_put(m + 4, start);
    be32_put(m + 12, len);
    if (name) {
        size_t nlen = strlen(name);
        m[16] = (uint8_t)nlen;
        memcpy(m + 17, name, nlen);
        n += 1 + nlen;
    }
    enum rp_msg type = name ? RP_MSG_REQ_PAGES_ID : RP_MSG_REQ_PAGES;
    be16_put(m, (uint16_t)type);
    be16_put(m + 2, (uint16_t)n);
    struct iovec iov = { .iov_base = m, .iov_len = 4 + n };
    if (!io_writev_full(fd, &iov, 1, true)) {
        error_setg_errno(errp, errno, "return path: sending %s",
                         rp_msg_name(type));
        return false;
    }
    return true;
}

bool rp_send_u32(int fd, enum rp_msg type, uint32_t value, Error **errp)
{
    uint8_t m[8];
    be16_put(m, (uint16_t)type);
    be16_put(m + 2, 4);
    be32_put(m + 4, value);
    struct iovec iov = { .iov_base = m, .iov_len = sizeof(m) };
    if (!io_writev_full(fd, &iov, 1, true)) {
        error_setg_errno(errp, errno, "return path: sending %s",
                         rp_msg_name(type));
        return false;
    }
    return true;
}

uint64_t rp_recv_bitmap_size(uint64_t npages)
{
    return (npages + 63) / 64 * 8;
}

bool rp_send_recv_bitmap(int fd, const char *name, const unsigned long *bits,
                         uint64_t npages, Error **errp)
{
    size_t nlen = strlen(name);
    uint64_t size = rp_recv_bitmap_size(npages);
    uint8_t *m = xmalloc(4 + 1 + nlen + 8 + size + 8);
    be16_put(m, RP_MSG_RECV_BITMAP);
    be16_put(m + 2, (uint16_t)(1 + nlen));
    m[4] = (uint8_t)nlen;
    memcpy(m + 5, name, nlen);
    uint8_t *p = m + 5 + nlen;
    be64_put(p, size);
    p += 8;
    /* Byte j of the little-endian words holds pages 8j to 8j+7. */
    const unsigned wb = 8 * sizeof(long);
    for (uint64_t j = 0; j < size; j++) {
        uint64_t page = j * 8;
        p[j] = page < npages ? (uint8_t)(bits[page / wb] >> (page % wb)) : 0;
        if (npages - page < 8 && page < npages) {
            p[j] &= (uint8_t)((1u << (npages - page)) - 1);
        }
    }
    p += size;
    be64_put(p, RP_RECV_BITMAP_END);
    struct iovec iov = { .iov_base = m, .iov_len = (size_t)(p + 8 - m) };
    bool ok = io_writev_full(fd, &iov, 1, true);
    if (!ok) {
        error_setg_errno(errp, errno,
                         "return path: sending RECV_BITMAP of '%s'", name);
    }
    free(m);
    return ok;
}

void rp_recv_bitmap_decode(const uint8_t *wire, uint64_t size,
                           unsigned long *bits)
{
    const unsigned wb = 8 * sizeof(long);
    memset(bits, 0, (size * 8 + wb - 1) / wb * sizeof(long));
    for (uint64_t j = 0; j < size; j++) {
        bits[j * 8 / wb] |= (unsigned long)wire[j] << (j * 8 % wb);
    }
}

/* Reads len bytes unless woken; 1 read, 0 end of file before any byte,
 * -1 error or woken (*why says which). */
static int read_exact(struct rp_reader *r, uint8_t *buf, size_t len,
                      const char **why)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd p[2] = { { .fd = r->fd, .events = POLLIN },
                               { .fd = r->wake[0], .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            *why = "poll failed";
            return -1;
        }
        if (p[1].revents) {
            *why = "stopped";
            return -1;
        }
        ssize_t n = read(r->fd, buf + got, len - got);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n < 0) {
            *why = strerror(errno);
            return -1;
        }
        if (n == 0) {
            if (got == 0) {
                return 0;
            }
            *why = "the destination closed it inside a message";
            return -1;
        }
        got += (size_t)n;
    }
    return 1;
}

static void finish(struct rp_reader *r, const char *error)
{
    pthread_mutex_lock(&r->lock);
    if (error) {
        snprintf(r->error, sizeof(r->error), "%s", error);
    }
    r->done = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* Ends the reader with a message of the form "return path: ..." */
static void *broke(struct rp_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void *broke(struct rp_reader *r, const char *fmt, ...)
{
    char e[512];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(e, sizeof(e), "return path: ");
    vsnprintf(e + n, sizeof(e) - (size_t)n, fmt, ap);
    va_end(ap);
    finish(r, e);
    return NULL;
}

static void count(struct rp_reader *r, uint32_t *counter)
{
    pthread_mutex_lock(&r->lock);
    (*counter)++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* RECV_BITMAP's body named the block; its bitmap follows.  NULL when
 * taken in, else the error. */
static bool read_bitmap(struct rp_reader *r, const uint8_t *body, uint16_t len,
                        char *err, size_t errlen)
{
    const char *why = NULL;
    char name[256];
    if (len < 2 || body[0] != len - 1) {
        snprintf(err, errlen,
                 "return path: RECV_BITMAP with %u bytes, not a counted "
                 "block name",
                 len);
        return false;
    }
    memcpy(name, body + 1, len - 1u);
    name[len - 1] = '\0';
    Error *e = NULL;
    uint64_t want;
    if (!r->ops->bitmap_size(r->ops->opaque, name, &want, &e)) {
        snprintf(err, errlen, "return path: RECV_BITMAP: %s",
                 error_get_pretty(e));
        error_free(e);
        return false;
    }
    uint8_t be[8];
    if (read_exact(r, be, 8, &why) <= 0) {
        snprintf(err, errlen, "return path: RECV_BITMAP of '%s': %s", name,
                 why ? why : "cut short");
        return false;
    }
    uint64_t size = be64_get(be);
    if (size != want) {
        snprintf(err, errlen,
                 "return path: RECV_BITMAP of '%s' has %llu bytes, that "
                 "block's has %llu",
                 name, (unsigned long long)size, (unsigned long long)want);
        return false;
    }
    uint8_t *bits = xmalloc(size + 8);
    bool ok = read_exact(r, bits, size + 8, &why) > 0;
    if (!ok) {
        snprintf(err, errlen, "return path: RECV_BITMAP of '%s': %s", name,
                 why ? why : "cut short");
    } else if (be64_get(bits + size) != RP_RECV_BITMAP_END) {
        snprintf(err, errlen,
                 "return path: RECV_BITMAP of '%s' ends with 0x%016llx, not "
                 "the end mark 0x%016llx",
                 name, (unsigned long long)be64_get(bits + size),
                 (unsigned long long)RP_RECV_BITMAP_END);
        ok = false;
    } else if (!r->ops->on_bitmap(r->ops->opaque, name, bits, size, &e)) {
        snprintf(err, errlen, "return path: RECV_BITMAP: %s",
                 error_get_pretty(e));
        error_free(e);
        ok = false;
    }
    free(bits);
    return ok;
}

static void *reader_thread(void *opaque)
{
    struct rp_reader *r = opaque;
    for (;;) {
        uint8_t head[4], body[RP_REQ_PAGES_ID_MAX];
        const char *why = NULL;
        int got = read_exact(r, head, sizeof(head), &why);
        if (got <= 0) {
            return broke(r, "%s",
                         got == 0 ? "the destination closed it without a word"
                                  : why);
        }
        uint16_t type = be16_get(head), len = be16_get(head + 2);
        Error *err = NULL;
        if (!rp_check_header(type, len, &err)) {
            finish(r, error_get_pretty(err));
            error_free(err);
            return NULL;
        }
        bool request = type == RP_MSG_REQ_PAGES || type == RP_MSG_REQ_PAGES_ID;
        bool recovery = type == RP_MSG_RECV_BITMAP || type == RP_MSG_RESUME_ACK;
        if ((request || recovery) && !r->ops) {
            return broke(r,
                         "%s from the destination, which this migration "
                         "(precopy) never asks for",
                         rp_msg_name(type));
        }
        if (len > RP_REQ_PAGES_ID_MAX) {
            return broke(r, "%s with %u bytes (at most %d)", rp_msg_name(type),
                         len, RP_REQ_PAGES_ID_MAX);
        }
        if (read_exact(r, body, len, &why) <= 0) {
            return broke(r, "%s: %s", rp_msg_name(type),
                         why ? why : "cut short");
        }
        if (request) {
            struct rp_req_pages q;
            if (!rp_parse_req_pages(type, body, len, &q, &err) ||
                !r->ops->on_request(r->ops->opaque, q.has_name ? q.name : NULL,
                                    q.start, q.len, &err)) {
                finish(r, error_get_pretty(err));
                error_free(err);
                return NULL;
            }
            continue;
        }
        if (type == RP_MSG_RECV_BITMAP) {
            char e[512];
            if (!read_bitmap(r, body, len, e, sizeof(e))) {
                finish(r, e);
                return NULL;
            }
            count(r, &r->bitmaps);
            continue;
        }
        if (type == RP_MSG_RESUME_ACK) {
            if (be32_get(body) != RP_RESUME_ACK_VALUE) {
                return broke(r, "RESUME_ACK with value %u (it is %d)",
                             be32_get(body), RP_RESUME_ACK_VALUE);
            }
            count(r, &r->resume_acks);
            continue;
        }
        if (type == RP_MSG_PONG) {
            pthread_mutex_lock(&r->lock);
            r->last_pong = be32_get(body);
            pthread_mutex_unlock(&r->lock);
            count(r, &r->pongs);
            continue;
        }
        pthread_mutex_lock(&r->lock);
        r->shut = true;
        r->shut_status = be32_get(body);
        pthread_mutex_unlock(&r->lock);
        finish(r, NULL);
        return NULL;
    }
}

bool rp_reader_start(struct rp_reader *r, int fd, Error **errp)
{
    return rp_reader_start_postcopy(r, fd, NULL, errp);
}

bool rp_reader_broken(struct rp_reader *r, char *why, size_t len)
{
    if (!r->started) {
        return false;
    }
    pthread_mutex_lock(&r->lock);
    bool broken = r->done && !(r->shut && r->shut_status == 0);
    if (broken && r->shut) {
        snprintf(why, len,
                 "the destination failed (it said SHUT %u on the return "
                 "path; its log says why)",
                 r->shut_status);
    } else if (broken) {
        snprintf(why, len, "%s", r->error);
    }
    pthread_mutex_unlock(&r->lock);
    return broken;
}

bool rp_reader_start_postcopy(struct rp_reader *r, int fd,
                              const struct rp_postcopy_ops *ops, Error **errp)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->ops = ops;
    if (pipe2(r->wake, O_CLOEXEC) < 0) {
        error_setg_errno(errp, errno, "return path: pipe");
        return false;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (pthread_create(&r->thread, NULL, reader_thread, r) != 0) {
        error_setg(errp, "return path: cannot start its thread");
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        rp_reader_stop(r);
        return false;
    }
    r->started = true;
    return true;
}

bool rp_reader_wait(struct rp_reader *r, uint32_t bitmaps, uint32_t acks,
                    int timeout_ms, Error **errp)
{
    struct timespec until = clock_real_deadline(timeout_ms);
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    while (!r->done && rc != ETIMEDOUT &&
           (r->bitmaps < bitmaps || r->resume_acks < acks)) {
        rc = pthread_cond_timedwait(&r->cond, &r->lock, &until);
    }
    bool ok = r->bitmaps >= bitmaps && r->resume_acks >= acks;
    if (!ok && r->done) {
        error_setg(errp, "%s",
                   r->error[0] ? r->error
                               : "return path: the destination ended it");
    } else if (!ok) {
        error_setg(errp, "return path: no %s from the destination within %d s",
                   r->bitmaps < bitmaps ? "RECV_BITMAP" : "RESUME_ACK",
                   timeout_ms / 1000);
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

bool rp_reader_wait_pong(struct rp_reader *r, uint32_t value, int timeout_ms,
                         Error **errp)
{
    struct timespec until = clock_real_deadline(timeout_ms);
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    while (!r->done && rc != ETIMEDOUT &&
           !(r->pongs && r->last_pong == value)) {
        rc = pthread_cond_timedwait(&r->cond, &r->lock, &until);
    }
    bool ok = r->pongs && r->last_pong == value;
    if (!ok && r->done) {
        error_setg(errp, "%s",
                   r->error[0] ? r->error
                               : "return path: the destination ended it");
    } else if (!ok) {
        error_setg(errp,
                   "return path: no PONG %u from the destination within %d ms",
                   value, timeout_ms);
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

bool rp_reader_finish(struct rp_reader *r, int timeout_ms, Error **errp)
{
    struct timespec until = clock_real_deadline(timeout_ms);
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    while (!r->done && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&r->cond, &r->lock, &until);
    }
    bool ok = r->done && r->shut && r->shut_status == 0;
    if (!r->done) {
        error_setg(errp,
                   "return path: the destination did not say within %d s "
                   "whether it loaded the machine",
                   timeout_ms / 1000);
    } else if (r->shut && r->shut_status != 0) {
        error_setg(errp,
                   "the destination could not load the machine (it said "
                   "so on the return path: SHUT %u); the guest stays here",
                   r->shut_status);
    } else if (!ok) {
        error_setg(errp, "%s", r->error);
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

void rp_reader_stop(struct rp_reader *r)
{
    if (r->started) {
        char b = 1;
        (void)!write(r->wake[1], &b, 1);
        pthread_join(r->thread, NULL);
        r->started = false;
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
    }
    for (int i = 0; i < 2; i++) {
        if (r->wake[i] > 0) {
            close(r->wake[i]);
        }
        r->wake[i] = -1;
    }
}

bool rp_reader_said_failed(struct rp_reader *r, uint32_t *status)
{
    if (!r->started) {
        return false;
    }
    pthread_mutex_lock(&r->lock);
    bool failed = r->shut && r->shut_status != 0;
    *status = r->shut_status;
    pthread_mutex_unlock(&r->lock);
    return failed;
}
