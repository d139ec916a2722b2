/* mapped-ram: the per-block header and parallel page I/O at fixed file
 * offsets. */
#include "ram/ram-mapped.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/memory.h"
#include "util/alloc.h"
#include "util/be.h"
#include "util/io.h"
#include "util/printable.h"

uint64_t ram_mapped_bitmap_bytes(uint64_t npages)
{
    return (npages + 63) / 64 * 8;
}

void ram_mapped_hdr_put(uint8_t out[RAM_MAPPED_HDR_SIZE],
                        const struct ram_mapped_hdr *h)
{
    be32_put(out, h->version);
    be64_put(out + 4, h->page_size);
    be64_put(out + 12, h->bitmap_offset);
    be64_put(out + 20, h->pages_offset);
}

void ram_mapped_hdr_get(const uint8_t in[RAM_MAPPED_HDR_SIZE],
                        struct ram_mapped_hdr *h)
{
    h->version = be32_get(in);
    h->page_size = be64_get(in + 4);
    h->bitmap_offset = be64_get(in + 12);
    h->pages_offset = be64_get(in + 20);
}

void ram_mapped_layout(struct ram_mapped_hdr *h, uint64_t header_end,
                       uint64_t length)
{
    uint64_t bitmap = ram_mapped_bitmap_bytes(length / RAM_PAGE_SIZE);
    h->version = RAM_MAPPED_VERSION;
    h->page_size = RAM_PAGE_SIZE;
    h->bitmap_offset = header_end;
    h->pages_offset = (header_end + bitmap + RAM_MAPPED_ALIGN - 1) &
        ~(uint64_t)(RAM_MAPPED_ALIGN - 1);
}

bool ram_mapped_check(const struct ram_mapped_hdr *h, const char *name,
                      uint64_t length, uint64_t header_end, uint64_t file_size,
                      Error **errp)
{
    const char *n = PRINTABLE(name);
    if (h->version != RAM_MAPPED_VERSION) {
        error_setg(errp,
                   "RAM block '%s': mapped-ram header version %u at offset "
                   "%llu (expected %u)",
                   n, h->version,
                   (unsigned long long)(header_end - RAM_MAPPED_HDR_SIZE),
                   RAM_MAPPED_VERSION);
        return false;
    }
    if (h->page_size != RAM_PAGE_SIZE) {
        error_setg(errp,
                   "RAM block '%s': mapped-ram page_size %llu (expected %u)", n,
                   (unsigned long long)h->page_size, RAM_PAGE_SIZE);
        return false;
    }
    uint64_t bitmap = ram_mapped_bitmap_bytes(length / RAM_PAGE_SIZE);
    if (h->bitmap_offset < header_end) {
        error_setg(errp,
                   "RAM block '%s': mapped-ram bitmap_offset %llu overlaps "
                   "the stream before offset %llu",
                   n, (unsigned long long)h->bitmap_offset,
                   (unsigned long long)header_end);
        return false;
    }
    if (h->bitmap_offset > file_size || bitmap > file_size - h->bitmap_offset) {
        error_setg(errp,
                   "RAM block '%s': mapped-ram bitmap_offset %llu + %llu "
                   "bytes is past the end of the file (%llu bytes)",
                   n, (unsigned long long)h->bitmap_offset,
                   (unsigned long long)bitmap, (unsigned long long)file_size);
        return false;
    }
    if (h->pages_offset % RAM_PAGE_SIZE) {
        error_setg(errp,
                   "RAM block '%s': mapped-ram pages_offset %llu is not "
                   "page-aligned",
                   n, (unsigned long long)h->pages_offset);
        return false;
    }
    if (h->pages_offset < h->bitmap_offset + bitmap) {
        error_setg(errp,
                   "RAM block '%s': mapped-ram pages_offset %llu overlaps "
                   "the bitmap at %llu..%llu",
                   n, (unsigned long long)h->pages_offset,
                   (unsigned long long)h->bitmap_offset,
                   (unsigned long long)(h->bitmap_offset + bitmap));
        return false;
    }
    if (h->pages_offset > file_size || length > file_size - h->pages_offset) {
        error_setg(errp,
                   "RAM block '%s': mapped-ram pages_offset %llu + 0x%llx "
                   "bytes is past the end of the file (%llu bytes)",
                   n, (unsigned long long)h->pages_offset,
                   (unsigned long long)length, (unsigned long long)file_size);
        return false;
    }
    return true;
}

/* ---- page I/O ---- */

#define QUEUE_LEN 64

struct mapped_run {
    void *host;
    uint64_t len, off;
};

struct mapped_worker {
    struct mapped_io *io;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct mapped_run q[QUEUE_LEN];
    unsigned head, count;
    bool busy, stop;
};

struct mapped_io {
    int fd;        /* the caller's, not ours */
    int direct_fd; /* O_DIRECT, ours, or -1 */
    bool write;
    char *what;
    int nthreads;
    struct mapped_worker *w;
    pthread_mutex_t err_lock;
    Error *err;
    uint64_t bytes;
};

/* Through the page cache a run goes in pieces of RAM_MAPPED_CACHED_WRITE:
 * the kernel sizes the cache's folios by the length of each write, and
 * large folios are carved from large free blocks, the ones a host that
 * takes back its guest's free memory has taken: their first touch then
 * faults in the host, many times the cost of small ones (a 1 GiB save 8x
 * slower in 1 MiB writes, 4 GiB 2-3x slower in 256 KiB ones).  Smaller
 * writes cost no more.  On failure *r shrinks to the piece that failed. */
static bool write_run(struct mapped_io *io, int fd, struct mapped_run *r)
{
    uint64_t piece = io->direct_fd >= 0 ? r->len : RAM_MAPPED_CACHED_WRITE;
    for (uint64_t done = 0; done < r->len; done += piece) {
        uint64_t n = r->len - done < piece ? r->len - done : piece;
        if (!io_pwrite_full(fd, (uint8_t *)r->host + done, n, r->off + done)) {
            r->off += done;
            r->len = n;
            return false;
        }
    }
    return true;
}

static bool do_run(struct mapped_io *io, const struct mapped_run *r,
                   Error **errp)
{
    int fd = io->direct_fd >= 0 ? io->direct_fd : io->fd;
    struct mapped_run at = *r;
    bool ok;
    if (io->write) {
        ok = write_run(io, fd, &at);
    } else {
        ssize_t n = io_pread_full(fd, r->host, r->len, r->off);
        ok = n == (ssize_t)r->len;
        if (n >= 0 && !ok) {
            errno = EIO; /* the file ended: checked before, so it shrank */
        }
    }
    if (!ok) {
        error_setg_errno(errp, errno, "%s: %s %llu bytes at offset %llu",
                         io->what, io->write ? "writing" : "reading",
                         (unsigned long long)at.len,
                         (unsigned long long)at.off);
        return false;
    }
    __atomic_fetch_add(&io->bytes, r->len, __ATOMIC_RELAXED);
    return true;
}

static bool failed(struct mapped_io *io)
{
    pthread_mutex_lock(&io->err_lock);
    bool f = io->err != NULL;
    pthread_mutex_unlock(&io->err_lock);
    return f;
}

static void *worker_main(void *opaque)
{
    struct mapped_worker *w = opaque;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->count && !w->stop) {
            pthread_cond_wait(&w->cond, &w->lock);
        }
        if (w->stop) {
            break;
        }
        struct mapped_run r = w->q[w->head];
        w->busy = true;
        pthread_mutex_unlock(&w->lock);
        Error *err = NULL;
        if (!failed(w->io) && !do_run(w->io, &r, &err)) {
            pthread_mutex_lock(&w->io->err_lock);
            if (!w->io->err) {
                w->io->err = err;
                err = NULL;
            }
            pthread_mutex_unlock(&w->io->err_lock);
            error_free(err);
        }
        pthread_mutex_lock(&w->lock);
        w->head = (w->head + 1) % QUEUE_LEN;
        w->count--;
        w->busy = false;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static int open_direct(int fd, bool write, const char *what, Error **errp)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    int d = open(path, (write ? O_WRONLY : O_RDONLY) | O_DIRECT | O_CLOEXEC);
    if (d < 0 && errno == EINVAL) {
        error_setg(errp,
                   "direct-io: the file system of %s does not support "
                   "O_DIRECT (set direct-io off)",
                   what);
    } else if (d < 0) {
        error_setg_errno(errp, errno, "direct-io: cannot reopen %s", what);
    }
    return d;
}

/* The file's name for messages: its path where the kernel knows it. */
static char *file_name(int fd, const char *what)
{
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0) {
        return xstrdup(what);
    }
    path[n] = '\0';
    return xasprintf("'%s'", path);
}

struct mapped_io *mapped_io_new(int fd, const char *what, bool write,
                                int threads, bool direct, Error **errp)
{
    char *name = file_name(fd, what);
    int dfd = -1;
    if (direct && (dfd = open_direct(fd, write, name, errp)) < 0) {
        free(name);
        return NULL;
    }
    struct mapped_io *io = xcalloc(1, sizeof(*io));
    io->fd = fd;
    io->direct_fd = dfd;
    io->write = write;
    io->what = name;
    pthread_mutex_init(&io->err_lock, NULL);
    if (threads > 0) {
        io->w = xcalloc((size_t)threads, sizeof(*io->w));
    }
    for (int i = 0; i < threads; i++) {
        struct mapped_worker *w = &io->w[i];
        w->io = io;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            pthread_mutex_destroy(&w->lock);
            pthread_cond_destroy(&w->cond);
            error_setg(errp, "%s: cannot start I/O thread %d", name, i);
            mapped_io_free(io);
            return NULL;
        }
        io->nthreads = i + 1;
    }
    return io;
}

bool mapped_io_run(struct mapped_io *io, void *host, uint64_t len, uint64_t off,
                   Error **errp)
{
    struct mapped_run r = { host, len, off };
    if (!io->nthreads) {
        return do_run(io, &r, errp);
    }
    if (failed(io)) {
        return mapped_io_wait(io, errp);
    }
    /* One aligned chunk of the file, one thread: the same page always
     * goes through the same queue, in order. */
    struct mapped_worker *w =
        &io->w[(off / RAM_MAPPED_ALIGN) % (uint64_t)io->nthreads];
    pthread_mutex_lock(&w->lock);
    while (w->count == QUEUE_LEN) {
        pthread_cond_wait(&w->cond, &w->lock);
    }
    w->q[(w->head + w->count) % QUEUE_LEN] = r;
    w->count++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return true;
}

bool mapped_io_wait(struct mapped_io *io, Error **errp)
{
    for (int i = 0; i < io->nthreads; i++) {
        struct mapped_worker *w = &io->w[i];
        pthread_mutex_lock(&w->lock);
        while (w->count || w->busy) {
            pthread_cond_wait(&w->cond, &w->lock);
        }
        pthread_mutex_unlock(&w->lock);
    }
    pthread_mutex_lock(&io->err_lock);
    bool ok = io->err == NULL;
    if (!ok) {
        error_propagate(errp, error_copy(io->err));
    }
    pthread_mutex_unlock(&io->err_lock);
    return ok;
}

uint64_t mapped_io_bytes(struct mapped_io *io)
{
    return __atomic_load_n(&io->bytes, __ATOMIC_RELAXED);
}

void mapped_io_free(struct mapped_io *io)
{
    if (!io) {
        return;
    }
    for (int i = 0; i < io->nthreads; i++) {
        struct mapped_worker *w = &io->w[i];
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
    }
    if (io->direct_fd >= 0) {
        close(io->direct_fd);
    }
    error_free(io->err);
    pthread_mutex_destroy(&io->err_lock);
    free(io->w);
    free(io->what);
    free(io);
}
