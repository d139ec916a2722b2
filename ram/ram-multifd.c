/* multifd sender and receiver threads. */
#include "ram/ram-multifd.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "machine/memory.h"
#include "ram/ram-prefault.h"
#include "util/alloc.h"
#include "util/be.h"
#include "util/io.h"
#include "util/iov.h"
#include "util/guest-reads.h"

const char multifd_channel_magic[MULTIFD_MAGIC_LEN] = "HOPMFD01";

#define PACKET_MAGIC 0x4d464450u
#define PACKET_PAGES 0
#define PACKET_SYNC 1
/* Pages per packet: a writev of header, offsets and pages stays under
 * IOV_MAX. */
#define PACKET_MAX 128
/* How long the destination waits for channels that never come. */
#define CONNECT_TIMEOUT_S 30

static bool write_full(int fd, struct iovec *iov, int cnt, Error **errp)
{
    GUEST_READS_BEGIN(); /* the pages come from guest RAM */
    bool ok = io_writev_full(fd, iov, cnt, true);
    GUEST_READS_END();
    if (!ok) {
        error_setg_errno(errp, errno, "multifd channel write");
    }
    return ok;
}

static bool read_full(int fd, void *buf, size_t len, bool *eof, Error **errp)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, p + got, len - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "multifd channel read");
            return false;
        }
        if (n == 0) {
            if (got == 0 && eof) {
                *eof = true;
                return false;
            }
            error_setg(errp,
                       "multifd channel closed in the middle of a "
                       "packet");
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

/* ---- sending ---- */

struct packet {
    uint32_t type;
    uint64_t seq;
    int block;
    int n;
    uint64_t offsets[PACKET_MAX]; /* | 1 for zero pages */
};

struct send_channel {
    struct multifd_send *ms;
    int fd;
    pthread_t thread;
    bool started;  /* thread runs */
    bool has_next; /* next is waiting to be sent */
    bool busy;     /* the thread is sending */
    struct packet next;
    uint64_t bytes;
};

struct multifd_send {
    struct machine_memory *mem;
    int n;
    struct send_channel ch[MULTIFD_MAX_CHANNELS];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool quit;
    Error *err;
    int rr;            /* next channel, round robin */
    struct packet cur; /* being filled */
    uint64_t seq;
};

static bool send_packet(struct send_channel *c, const struct packet *p,
                        Error **errp)
{
    struct machine_memory *mem = c->ms->mem;
    uint8_t head[4 + 4 + 8 + 1 + 255 + 4];
    size_t hl = 0;
    be32_put(head, PACKET_MAGIC);
    be32_put(head + 4, p->type);
    be64_put(head + 8, p->seq);
    hl = 16;
    struct iovec iov[3 + PACKET_MAX];
    int cnt = 0;
    uint8_t offs[8 * PACKET_MAX];
    if (p->type == PACKET_PAGES) {
        struct ram_block *b = mem->blocks[p->block];
        size_t nl = strlen(b->name);
        head[hl++] = (uint8_t)nl;
        memcpy(head + hl, b->name, nl);
        hl += nl;
        be32_put(head + hl, (uint32_t)p->n);
        hl += 4;
        iov[cnt++] = (struct iovec){ head, hl };
        for (int i = 0; i < p->n; i++) {
            be64_put(offs + 8 * i, p->offsets[i]);
        }
        iov[cnt++] = (struct iovec){ offs, 8 * (size_t)p->n };
        for (int i = 0; i < p->n; i++) {
            if (!(p->offsets[i] & 1)) {
                /* Straight from guest memory, no copy. */
                iov[cnt++] =
                    (struct iovec){ b->host + p->offsets[i], RAM_PAGE_SIZE };
            }
        }
    } else {
        iov[cnt++] = (struct iovec){ head, hl };
    }
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        total += iov[i].iov_len;
    }
    if (!write_full(c->fd, iov, cnt, errp)) {
        return false;
    }
    c->bytes += total;
    return true;
}

static void *send_thread(void *arg)
{
    struct send_channel *c = arg;
    struct multifd_send *ms = c->ms;
    struct packet p;
    pthread_mutex_lock(&ms->lock);
    for (;;) {
        while (!c->has_next && !ms->quit) {
            pthread_cond_wait(&ms->cond, &ms->lock);
        }
        if (!c->has_next) {
            break;
        }
        p = c->next;
        c->has_next = false;
        c->busy = true;
        pthread_cond_broadcast(&ms->cond);
        pthread_mutex_unlock(&ms->lock);
        Error *err = NULL;
        bool ok = send_packet(c, &p, &err);
        pthread_mutex_lock(&ms->lock);
        c->busy = false;
        if (!ok) {
            if (!ms->err) {
                ms->err = err;
            } else {
                error_free(err);
            }
            ms->quit = true;
        }
        pthread_cond_broadcast(&ms->cond);
    }
    pthread_mutex_unlock(&ms->lock);
    return NULL;
}

bool multifd_send_header(int fd, int index, int count, Error **errp)
{
    uint8_t hdr[MULTIFD_HEADER_LEN];
    memcpy(hdr, multifd_channel_magic, MULTIFD_MAGIC_LEN);
    be32_put(hdr + 8, (uint32_t)index);
    be32_put(hdr + 12, (uint32_t)count);
    struct iovec iov = { hdr, sizeof(hdr) };
    return write_full(fd, &iov, 1, errp);
}

static void close_fds(const int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        close(fds[i]);
    }
}

struct multifd_send *multifd_send_new(struct machine_memory *mem,
                                      const int *fds, int n, Error **errp)
{
    if (n < 1 || n > MULTIFD_MAX_CHANNELS) {
        error_setg(errp, "multifd: %d channels (1 to %d)", n,
                   MULTIFD_MAX_CHANNELS);
        close_fds(fds, n < 0 ? 0 : n);
        return NULL;
    }
    struct multifd_send *ms = xcalloc(1, sizeof(*ms));
    ms->mem = mem;
    pthread_mutex_init(&ms->lock, NULL);
    pthread_cond_init(&ms->cond, NULL);
    ms->cur.block = -1;
    for (int i = 0; i < n; i++) {
        ms->ch[i].ms = ms;
        ms->ch[i].fd = fds[i];
    }
    ms->n = n;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&ms->ch[i].thread, NULL, send_thread, &ms->ch[i]) !=
            0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            error_setg(errp, "multifd: cannot start the thread of channel %d",
                       i);
            multifd_send_free(ms);
            return NULL;
        }
        ms->ch[i].started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ms;
}

/* Hands p to the next free channel (round robin, waiting if needed). */
static bool hand_off(struct multifd_send *ms, struct send_channel *c,
                     const struct packet *p, Error **errp)
{
    pthread_mutex_lock(&ms->lock);
    while (c->has_next && !ms->quit) {
        pthread_cond_wait(&ms->cond, &ms->lock);
    }
    if (ms->quit) {
        error_setg(errp, "multifd: %s",
                   ms->err ? error_get_pretty(ms->err) : "stopped");
        pthread_mutex_unlock(&ms->lock);
        return false;
    }
    c->next = *p;
    c->has_next = true;
    pthread_cond_broadcast(&ms->cond);
    pthread_mutex_unlock(&ms->lock);
    return true;
}

static bool flush_cur(struct multifd_send *ms, Error **errp)
{
    if (ms->cur.n == 0) {
        return true;
    }
    ms->cur.type = PACKET_PAGES;
    ms->cur.seq = ms->seq;
    struct send_channel *c = &ms->ch[ms->rr];
    ms->rr = (ms->rr + 1) % ms->n;
    bool ok = hand_off(ms, c, &ms->cur, errp);
    ms->cur.n = 0;
    return ok;
}

bool multifd_send_page(struct multifd_send *ms, int block, uint64_t offset,
                       bool zero, Error **errp)
{
    if (ms->cur.n == PACKET_MAX || (ms->cur.n && ms->cur.block != block)) {
        if (!flush_cur(ms, errp)) {
            return false;
        }
    }
    ms->cur.block = block;
    ms->cur.offsets[ms->cur.n++] = offset | (zero ? 1 : 0);
    return true;
}

bool multifd_send_sync(struct multifd_send *ms, Error **errp)
{
    if (!flush_cur(ms, errp)) {
        return false;
    }
    ms->seq++;
    struct packet p = { .type = PACKET_SYNC, .seq = ms->seq };
    for (int i = 0; i < ms->n; i++) {
        if (!hand_off(ms, &ms->ch[i], &p, errp)) {
            return false;
        }
    }
    return true;
}

bool multifd_send_drain(struct multifd_send *ms, Error **errp)
{
    pthread_mutex_lock(&ms->lock);
    for (;;) {
        bool idle = true;
        for (int i = 0; i < ms->n; i++) {
            if (ms->ch[i].has_next || ms->ch[i].busy) {
                idle = false;
            }
        }
        if (idle || ms->quit) {
            break;
        }
        pthread_cond_wait(&ms->cond, &ms->lock);
    }
    bool ok = !ms->err;
    if (!ok) {
        error_setg(errp, "multifd: %s", error_get_pretty(ms->err));
    }
    pthread_mutex_unlock(&ms->lock);
    return ok;
}

uint64_t multifd_send_bytes(struct multifd_send *ms)
{
    pthread_mutex_lock(&ms->lock);
    uint64_t n = 0;
    for (int i = 0; i < ms->n; i++) {
        n += ms->ch[i].bytes;
    }
    pthread_mutex_unlock(&ms->lock);
    return n;
}

void multifd_send_shutdown(struct multifd_send *ms)
{
    for (int i = 0; i < ms->n; i++) {
        shutdown(ms->ch[i].fd, SHUT_RDWR);
    }
    pthread_mutex_lock(&ms->lock);
    ms->quit = true;
    pthread_cond_broadcast(&ms->cond);
    pthread_mutex_unlock(&ms->lock);
}

void multifd_send_free(struct multifd_send *ms)
{
    if (!ms) {
        return;
    }
    pthread_mutex_lock(&ms->lock);
    ms->quit = true;
    pthread_cond_broadcast(&ms->cond);
    pthread_mutex_unlock(&ms->lock);
    for (int i = 0; i < ms->n; i++) {
        if (ms->ch[i].started) {
            pthread_join(ms->ch[i].thread, NULL);
        }
        close(ms->ch[i].fd);
    }
    error_free(ms->err);
    pthread_mutex_destroy(&ms->lock);
    pthread_cond_destroy(&ms->cond);
    free(ms);
}

/* ---- receiving ---- */

struct recv_channel {
    struct multifd_recv *mr;
    int fd;
    int index;
    pthread_t thread;
    uint64_t synced; /* last sync passed */
};

struct multifd_recv {
    struct machine_memory *mem;
    unsigned long **received;
    struct ram_prefault *prefault; /* fed by every channel */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int expected; /* channel count, 0 until known */
    int n;
    struct recv_channel ch[MULTIFD_MAX_CHANNELS];
    uint64_t flushes; /* MULTIFD_FLUSH records seen */
    bool quit;
    Error *err;
};

struct multifd_recv *multifd_recv_new(struct machine_memory *mem,
                                      unsigned long **received)
{
    struct multifd_recv *mr = xcalloc(1, sizeof(*mr));
    mr->mem = mem;
    mr->received = received;
    /* The prefault thread starts with the first channel: most incoming
     * migrations have none. */
    pthread_mutex_init(&mr->lock, NULL);
    pthread_cond_init(&mr->cond, NULL);
    return mr;
}

static void recv_fail(struct multifd_recv *mr, Error *err)
{
    pthread_mutex_lock(&mr->lock);
    if (!mr->err && !mr->quit) {
        mr->err = err;
    } else {
        error_free(err);
    }
    mr->quit = true;
    pthread_cond_broadcast(&mr->cond);
    pthread_mutex_unlock(&mr->lock);
}

static int find_block(struct machine_memory *mem, const char *name)
{
    for (int i = 0; i < mem->nblocks; i++) {
        if (strcmp(mem->blocks[i]->name, name) == 0) {
            return i;
        }
    }
    return -1;
}

static bool recv_pages(struct recv_channel *c, Error **errp)
{
    struct multifd_recv *mr = c->mr;
    uint8_t len;
    char name[256];
    uint8_t nb[4];
    if (!read_full(c->fd, &len, 1, NULL, errp) ||
        !read_full(c->fd, name, len, NULL, errp) ||
        !read_full(c->fd, nb, 4, NULL, errp)) {
        return false;
    }
    name[len] = '\0';
    uint32_t n = be32_get(nb);
    int bi = find_block(mr->mem, name);
    if (bi < 0) {
        error_setg(errp, "multifd: unknown RAM block '%s'", name);
        return false;
    }
    if (n > PACKET_MAX) {
        error_setg(errp, "multifd: packet of %u pages (at most %d)", n,
                   PACKET_MAX);
        return false;
    }
    struct ram_block *b = mr->mem->blocks[bi];
    uint8_t raw[8 * PACKET_MAX];
    if (!read_full(c->fd, raw, 8 * n, NULL, errp)) {
        return false;
    }
    struct iovec iov[PACKET_MAX];
    int cnt = 0;
    unsigned long *bits = mr->received ? mr->received[bi] : NULL;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = be64_get(raw + 8 * i);
        uint64_t off = v & ~(uint64_t)(RAM_PAGE_SIZE - 1);
        if (off >= b->size || (v & (RAM_PAGE_SIZE - 1) & ~1ull)) {
            error_setg(errp, "multifd: bad page offset 0x%llx in '%s'",
                       (unsigned long long)v, b->name);
            return false;
        }
        uint64_t page = off / RAM_PAGE_SIZE;
        unsigned long mask = 1ul << (page % RAM_BITS_PER_WORD);
        if (v & 1) {
            /* Zero page: memory nobody wrote is zero already. */
            if (!bits ||
                (__atomic_load_n(&bits[page / RAM_BITS_PER_WORD],
                                 __ATOMIC_RELAXED) &
                 mask)) {
                memset(b->host + off, 0, RAM_PAGE_SIZE);
            }
            continue;
        }
        if (bits) {
            __atomic_fetch_or(&bits[page / RAM_BITS_PER_WORD], mask,
                              __ATOMIC_RELAXED);
        }
        ram_prefault_note(mr->prefault, bi, off);
        iov[cnt++] = (struct iovec){ b->host + off, RAM_PAGE_SIZE };
    }
    /* Pages go straight into guest memory. */
    struct iovec *cur = iov;
    while (cnt > 0) {
        ssize_t r = readv(c->fd, cur, cnt);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            error_setg_errno(errp, r < 0 ? errno : EPIPE,
                             "multifd: reading pages");
            return false;
        }
        iov_advance(&cur, &cnt, (size_t)r);
    }
    return true;
}

/* A sync: wait until every channel got here before reading on. */
static bool recv_sync(struct recv_channel *c, uint64_t seq)
{
    struct multifd_recv *mr = c->mr;
    pthread_mutex_lock(&mr->lock);
    c->synced = seq;
    pthread_cond_broadcast(&mr->cond);
    for (;;) {
        bool all = mr->expected > 0 && mr->n == mr->expected;
        for (int i = 0; all && i < mr->n; i++) {
            if (mr->ch[i].synced < seq) {
                all = false;
            }
        }
        if (all || mr->quit) {
            break;
        }
        pthread_cond_wait(&mr->cond, &mr->lock);
    }
    bool ok = !mr->quit;
    pthread_mutex_unlock(&mr->lock);
    return ok;
}

static void *recv_thread(void *arg)
{
    struct recv_channel *c = arg;
    for (;;) {
        uint8_t h[16];
        bool eof = false;
        Error *err = NULL;
        if (!read_full(c->fd, h, sizeof(h), &eof, &err)) {
            if (eof) {
                break; /* the sender is done */
            }
            recv_fail(c->mr, err);
            break;
        }
        if (be32_get(h) != PACKET_MAGIC) {
            error_setg(&err, "multifd channel %d: bad packet magic 0x%08x",
                       c->index, be32_get(h));
            recv_fail(c->mr, err);
            break;
        }
        uint32_t type = be32_get(h + 4);
        if (type == PACKET_PAGES) {
            if (!recv_pages(c, &err)) {
                error_prepend(&err, "channel %d: ", c->index);
                recv_fail(c->mr, err);
                break;
            }
        } else if (type == PACKET_SYNC) {
            if (!recv_sync(c, be64_get(h + 8))) {
                break;
            }
        } else {
            error_setg(&err, "multifd channel %d: unknown packet type %u",
                       c->index, type);
            recv_fail(c->mr, err);
            break;
        }
    }
    return NULL;
}

bool multifd_recv_add(struct multifd_recv *mr, int fd, Error **errp)
{
    uint8_t hdr[MULTIFD_HEADER_LEN];
    if (!read_full(fd, hdr, sizeof(hdr), NULL, errp)) {
        close(fd);
        return false;
    }
    uint32_t index = be32_get(hdr + 8), count = be32_get(hdr + 12);
    pthread_mutex_lock(&mr->lock);
    if (memcmp(hdr, multifd_channel_magic, MULTIFD_MAGIC_LEN) != 0 ||
        count == 0 || count > MULTIFD_MAX_CHANNELS || index >= count ||
        (mr->expected && (int)count != mr->expected) || mr->n >= (int)count) {
        pthread_mutex_unlock(&mr->lock);
        error_setg(errp, "multifd: bad channel header (channel %u of %u)",
                   index, count);
        close(fd);
        return false;
    }
    mr->expected = (int)count;
    if (mr->n == 0 && !mr->prefault) {
        mr->prefault = ram_prefault_new(mr->mem);
    }
    struct recv_channel *c = &mr->ch[mr->n];
    c->mr = mr;
    c->fd = fd;
    c->index = (int)index;
    c->synced = 0;
    if (pthread_create(&c->thread, NULL, recv_thread, c) != 0) {
        pthread_mutex_unlock(&mr->lock);
        error_setg(errp, "multifd: cannot start a channel thread");
        close(fd);
        return false;
    }
    mr->n++;
    pthread_cond_broadcast(&mr->cond);
    pthread_mutex_unlock(&mr->lock);
    return true;
}

bool multifd_recv_flush(struct multifd_recv *mr, Error **errp)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += CONNECT_TIMEOUT_S;
    pthread_mutex_lock(&mr->lock);
    uint64_t seq = ++mr->flushes;
    for (;;) {
        bool all = mr->expected > 0 && mr->n == mr->expected;
        for (int i = 0; all && i < mr->n; i++) {
            if (mr->ch[i].synced < seq) {
                all = false;
            }
        }
        if (all || mr->quit) {
            break;
        }
        if (mr->n < mr->expected || mr->expected == 0) {
            /* Channels still to come: don't wait for ever. */
            if (pthread_cond_timedwait(&mr->cond, &mr->lock, &deadline) ==
                ETIMEDOUT) {
                pthread_mutex_unlock(&mr->lock);
                error_setg(errp,
                           "multifd: %d of %d channels connected after "
                           "%d s",
                           mr->n, mr->expected, CONNECT_TIMEOUT_S);
                return false;
            }
        } else {
            pthread_cond_wait(&mr->cond, &mr->lock);
        }
    }
    bool ok = !mr->err && !mr->quit;
    if (!ok) {
        error_setg(errp, "multifd: %s",
                   mr->err ? error_get_pretty(mr->err) : "stopped");
    }
    pthread_mutex_unlock(&mr->lock);
    return ok;
}

void multifd_recv_cancel(struct multifd_recv *mr)
{
    pthread_mutex_lock(&mr->lock);
    mr->quit = true;
    for (int i = 0; i < mr->n; i++) {
        shutdown(mr->ch[i].fd, SHUT_RDWR);
    }
    pthread_cond_broadcast(&mr->cond);
    pthread_mutex_unlock(&mr->lock);
}

bool multifd_recv_finish(struct multifd_recv *mr, Error **errp)
{
    pthread_mutex_lock(&mr->lock);
    mr->quit = true;
    pthread_cond_broadcast(&mr->cond);
    int n = mr->n;
    pthread_mutex_unlock(&mr->lock);
    for (int i = 0; i < n; i++) {
        shutdown(mr->ch[i].fd, SHUT_RDWR);
        pthread_join(mr->ch[i].thread, NULL);
        close(mr->ch[i].fd);
    }
    pthread_mutex_lock(&mr->lock);
    mr->n = 0;
    bool ok = !mr->err;
    if (!ok) {
        error_setg(errp, "multifd: %s", error_get_pretty(mr->err));
    }
    pthread_mutex_unlock(&mr->lock);
    return ok;
}

void multifd_recv_free(struct multifd_recv *mr)
{
    if (!mr) {
        return;
    }
    multifd_recv_finish(mr, NULL);
    ram_prefault_free(mr->prefault);
    error_free(mr->err);
    pthread_mutex_destroy(&mr->lock);
    pthread_cond_destroy(&mr->cond);
    free(mr);
}
