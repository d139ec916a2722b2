/* What this host allows, for the benchmarks to print beside their rows:
 * how long the same bytes take to land in fresh guest memory with nothing
 * but the kernel in the way.
 *
 *   host-limit touch SIZE [BACKEND]    memset of fresh memory (first touch),
 *                                      then a memcpy into it once warm
 *   host-limit stream SIZE [BACKEND]   one thread writes SIZE bytes of
 *                                      guest-like memory into a unix socket,
 *                                      another reads them into fresh memory
 *                                      (a migration's floor)
 *   host-limit save SIZE FILE [BACKEND]  SIZE bytes of guest-like memory
 *                                      written to a new FILE (in writes of
 *                                      128 KiB, as mapped-ram does) and flushed
 *                                      (a savevm's floor; write_ms: before
 *                                      the flush, a file: save's floor),
 *                                      after a first pass that warms the
 *                                      page cache's memory (cold_write_ms)
 *   host-limit load SIZE FILE [BACKEND]  FILE read into fresh memory
 *
 * BACKEND is an -object value (memory-backend-memfd,id=m,size=1G); the
 * default is hop's default, anonymous memory with MADV_HUGEPAGE.
 * Guest-like memory is memory of that backend, filled before the clock
 * starts (on some hosts reading shmem costs far more than reading
 * anonymous memory).  Every result is one JSON line with milliseconds. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "machine/memory-backend.h"
#include "ram/ram-mapped.h"
#include "util/clock.h"
#include "util/io.h"
#include "util/parse.h"

#define CHUNK (256 * 1024)
/* Writes to a file go in smaller pieces: the page cache's folios follow
 * the length of each write, and large ones can cost several times more
 * on a host that takes back a guest's free memory (ram/ram-mapped.c). */
#define FILE_CHUNK RAM_MAPPED_CACHED_WRITE

static void die(const char *what, Error *err)
{
    fprintf(stderr, "host-limit: %s: %s\n", what,
            err ? error_get_pretty(err) : strerror(errno));
    exit(1);
}

static void map_fresh(uint64_t size, const char *spec, struct mem_mapping *m)
{
    struct mem_backend be;
    Error *err = NULL;
    if (spec) {
        if (!mem_backend_parse(&be, spec, &err)) {
            die("backend", err);
        }
    } else {
        mem_backend_default(&be, size);
    }
    if (!mem_backend_map(&be, "host-limit", size, m, &err)) {
        die("map", err);
    }
}

static double ms_since(uint64_t t0)
{
    return (double)(clock_mono_ns() - t0) / 1e6;
}

static void touch(uint64_t size, const char *spec)
{
    struct mem_mapping m;
    map_fresh(size, spec, &m);
    uint64_t t0 = clock_mono_ns();
    memset(m.host, 1, size);
    double first = ms_since(t0);
    uint8_t *src = malloc(CHUNK);
    memset(src, 2, CHUNK);
    t0 = clock_mono_ns();
    for (uint64_t off = 0; off < size; off += CHUNK) {
        memcpy(m.host + off, src, size - off < CHUNK ? size - off : CHUNK);
    }
    double warm = ms_since(t0);
    printf("{\"first_touch_ms\": %.0f, \"first_touch_ms_per_gib\": %.0f, "
           "\"warm_copy_ms\": %.0f}\n",
           first, first * (1 << 30) / (double)size, warm);
    mem_mapping_unmap(&m);
    free(src);
}

/* size bytes of the backend, filled (the source of a save or stream). */
static void map_filled(uint64_t size, const char *spec, struct mem_mapping *m)
{
    map_fresh(size, spec, m);
    memset(m->host, 0x5a, size);
}

/* Writes [src, src+size) to fd in chunk-byte pieces. */
static bool write_from(int fd, const uint8_t *src, uint64_t size,
                       uint64_t chunk)
{
    for (uint64_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (!io_write_full(fd, src + off, n)) {
            return false;
        }
    }
    return true;
}

struct writer {
    int fd;
    uint64_t size;
    const uint8_t *src;
};

static void *write_all(void *opaque)
{
    struct writer *w = opaque;
    (void)write_from(w->fd, w->src, w->size, CHUNK);
    close(w->fd);
    return NULL;
}

static void stream(uint64_t size, const char *spec)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        die("socketpair", NULL);
    }
    struct mem_mapping src, m;
    map_filled(size, spec, &src);
    map_fresh(size, spec, &m);
    struct writer w = { .fd = sv[1], .size = size, .src = src.host };
    uint64_t t0 = clock_mono_ns();
    pthread_t t;
    pthread_create(&t, NULL, write_all, &w);
    uint64_t got = 0;
    while (got < size) {
        ssize_t n =
            read(sv[0], m.host + got, size - got < CHUNK ? size - got : CHUNK);
        if (n <= 0) {
            die("read", NULL);
        }
        got += (uint64_t)n;
    }
    double ms = ms_since(t0);
    pthread_join(t, NULL);
    printf("{\"stream_ms\": %.0f}\n", ms);
    close(sv[0]);
    mem_mapping_unmap(&m);
    mem_mapping_unmap(&src);
}

static void save(uint64_t size, const char *file, const char *spec)
{
    struct mem_mapping src;
    map_filled(size, spec, &src);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        die(file, NULL);
    }
    /* Once to warm the page cache's memory up: the first write into
     * memory nothing used for a while can cost many times the second
     * (see "first touch" in bench/README.md); cutting the file frees its
     * cache, unwritten, for the pass that counts. */
    uint64_t t0 = clock_mono_ns();
    if (!write_from(fd, src.host, size, FILE_CHUNK)) {
        die(file, NULL);
    }
    double cold = ms_since(t0);
    if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        die(file, NULL);
    }
    t0 = clock_mono_ns();
    if (!write_from(fd, src.host, size, FILE_CHUNK)) {
        die(file, NULL);
    }
    double written = ms_since(t0);
    if (fdatasync(fd) < 0) {
        die(file, NULL);
    }
    close(fd);
    printf("{\"save_ms\": %.0f, \"write_ms\": %.0f, \"cold_write_ms\": "
           "%.0f}\n",
           ms_since(t0), written, cold);
    mem_mapping_unmap(&src);
}

static void load(uint64_t size, const char *file, const char *spec)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        die(file, NULL);
    }
    struct mem_mapping m;
    map_fresh(size, spec, &m);
    uint64_t t0 = clock_mono_ns();
    for (uint64_t off = 0; off < size;) {
        ssize_t n = pread(fd, m.host + off,
                          size - off < CHUNK ? size - off : CHUNK, (off_t)off);
        if (n <= 0) {
            break; /* the file may be shorter than size */
        }
        off += (uint64_t)n;
    }
    printf("{\"load_ms\": %.0f}\n", ms_since(t0));
    close(fd);
    mem_mapping_unmap(&m);
}

int main(int argc, char **argv)
{
    uint64_t size;
    if (argc < 3 || !parse_size(argv[2], 1, &size) || size == 0) {
        fprintf(stderr,
                "usage: host-limit touch|stream SIZE [BACKEND]\n"
                "       host-limit save SIZE FILE [BACKEND]\n"
                "       host-limit load SIZE FILE [BACKEND]\n");
        return 2;
    }
    if (strcmp(argv[1], "touch") == 0) {
        touch(size, argc > 3 ? argv[3] : NULL);
    } else if (strcmp(argv[1], "stream") == 0) {
        stream(size, argc > 3 ? argv[3] : NULL);
    } else if (strcmp(argv[1], "save") == 0 && argc > 3) {
        save(size, argv[3], argc > 4 ? argv[4] : NULL);
    } else if (strcmp(argv[1], "load") == 0 && argc > 3) {
        load(size, argv[3], argc > 4 ? argv[4] : NULL);
    } else {
        fprintf(stderr, "host-limit: unknown mode '%s'\n", argv[1]);
        return 2;
    }
    return 0;
}
