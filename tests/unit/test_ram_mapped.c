/* mapped-ram: the per-block header as the decoder reads it from a file
 * image (layout, every rejection, truncation, random corruption) and the
 * threaded page I/O at fixed offsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ram/ram-decode.h"
#include "ram/ram-mapped.h"
#include "tests/unit/bytebuf.h"

#define PS RAM_PAGE_SIZE
#define BLOCK_LEN (16 * PS)

struct seen {
    int blocks;
    struct ram_mapped_hdr hdr[4];
};

static bool on_block(void *ctx, size_t index, const struct ram_block_info *b,
                     Error **errp)
{
    (void)errp;
    struct seen *s = ctx;
    if (index < 4) {
        s->hdr[index] = b->mapped;
    }
    s->blocks++;
    return true;
}

static const struct ram_decode_ops ops = { .block = on_block };

/* A RAM setup body as a mapped-ram writer lays it out in a file: nblocks
 * blocks of BLOCK_LEN, every other page written, then EOS. */
static void build(struct buf *b, int nblocks)
{
    put_be64(b, (uint64_t)nblocks * BLOCK_LEN | RAM_FLAG_MEM_SIZE);
    for (int i = 0; i < nblocks; i++) {
        char name[16];
        snprintf(name, sizeof(name), "blk%d", i);
        put_str(b, name);
        put_be64(b, BLOCK_LEN);
        struct ram_mapped_hdr h;
        uint8_t raw[RAM_MAPPED_HDR_SIZE];
        ram_mapped_layout(&h, b->len + RAM_MAPPED_HDR_SIZE, BLOCK_LEN);
        ram_mapped_hdr_put(raw, &h);
        put(b, raw, sizeof(raw));
        while (b->len < h.pages_offset + BLOCK_LEN) {
            put_u8(b, 0);
        }
        for (int p = 0; p < (int)(BLOCK_LEN / PS); p += 2) {
            b->d[h.bitmap_offset + (size_t)p / 8] |= (uint8_t)(1u << (p % 8));
            memset(b->d + h.pages_offset + (size_t)p * PS, 0x40 + p, PS);
        }
    }
    put_be64(b, RAM_FLAG_EOS);
}

static bool decode(const uint8_t *d, size_t len, struct seen *s, size_t *used,
                   Error **errp)
{
    struct ram_decoder dec;
    struct ram_reader r;
    struct ram_mem_source src;
    memset(s, 0, sizeof(*s));
    ram_decoder_init(&dec, &ops, s);
    dec.mapped_ram = true;
    ram_reader_init_mem(&r, &src, d, len, 0);
    bool ok = ram_decode_section(&dec, &r, errp);
    *used = src.pos;
    ram_decoder_cleanup(&dec);
    return ok;
}

static void test_layout_reads_back(void **state)
{
    (void)state;
    struct buf b = { 0 };
    build(&b, 2);
    struct seen s;
    size_t used;
    Error *err = NULL;
    assert_true(decode(b.d, b.len, &s, &used, &err));
    assert_int_equal(s.blocks, 2);
    assert_int_equal(used, b.len);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s.hdr[i].version, 1);
        assert_int_equal(s.hdr[i].page_size, PS);
        assert_int_equal(s.hdr[i].pages_offset % RAM_MAPPED_ALIGN, 0);
        assert_true(s.hdr[i].pages_offset >= s.hdr[i].bitmap_offset + 8);
    }
    /* The second block's entry follows the first block's pages. */
    assert_true(s.hdr[1].bitmap_offset > s.hdr[0].pages_offset + BLOCK_LEN);
    free(b.d);
}

/* Field at `off` of the first header set to v (be32 or be64). */
static void set_field(struct buf *b, size_t off, uint64_t v, int width)
{
    size_t hdr = 8 + 1 + 4 + 8; /* MEM_SIZE, "blk0", length */
    for (int i = 0; i < width; i++) {
        b->d[hdr + off + (size_t)i] = (uint8_t)(v >> (8 * (width - 1 - i)));
    }
}

static void expect_error(size_t off, uint64_t v, int width, const char *msg)
{
    struct buf b = { 0 };
    build(&b, 1);
    set_field(&b, off, v, width);
    struct seen s;
    size_t used;
    Error *err = NULL;
    assert_false(decode(b.d, b.len, &s, &used, &err));
    const char *m = error_get_pretty(err);
    if (!strstr(m, msg) || !strstr(m, "RAM block 'blk0'") || strchr(m, '\n')) {
        fail_msg("got '%s', expected '%s'", m, msg);
    }
    error_free(err);
    free(b.d);
}

static void test_hostile_headers(void **state)
{
    (void)state;
    expect_error(0, 2, 4, "mapped-ram header version 2");
    expect_error(0, 0, 4, "mapped-ram header version 0");
    expect_error(4, 65536, 8, "mapped-ram page_size 65536");
    expect_error(4, 0, 8, "mapped-ram page_size 0");
    expect_error(12, 0, 8, "mapped-ram bitmap_offset 0 overlaps the stream");
    expect_error(12, UINT64_MAX, 8, "mapped-ram bitmap_offset");
    expect_error(12, RAM_MAPPED_ALIGN + BLOCK_LEN + 4, 8,
                 "past the end of the file");
    expect_error(20, 0, 8, "pages_offset 0 overlaps the bitmap");
    expect_error(20, 4097, 8, "pages_offset 4097 is not page-aligned");
    expect_error(20, UINT64_MAX & ~(uint64_t)(PS - 1), 8,
                 "past the end of the file");
    expect_error(20, 2 * RAM_MAPPED_ALIGN, 8, "past the end of the file");
}

static void test_truncated_everywhere(void **state)
{
    (void)state;
    struct buf b = { 0 };
    build(&b, 2);
    for (size_t cut = 0; cut < b.len; cut += cut < 4096 ? 1 : 4093) {
        struct seen s;
        size_t used;
        Error *err = NULL;
        assert_false(decode(b.d, cut, &s, &used, &err));
        assert_null(strchr(error_get_pretty(err), '\n'));
        error_free(err);
    }
    free(b.d);
}

/* Random bytes over the entries and headers: never a crash, an
 * out-of-range read (ASan) or a multi-line error. */
static void test_random_corruption(void **state)
{
    (void)state;
    struct buf b = { 0 };
    build(&b, 2);
    uint8_t *copy = malloc(b.len);
    srand(14);
    for (int round = 0; round < 3000; round++) {
        memcpy(copy, b.d, b.len);
        int n = 1 + rand() % 4;
        for (int i = 0; i < n; i++) {
            size_t at = (size_t)rand() % 80; /* list, entry, header */
            if (rand() % 4 == 0) {
                at = (size_t)rand() % b.len;
            }
            copy[at] = (uint8_t)rand();
        }
        struct seen s;
        size_t used;
        Error *err = NULL;
        if (!decode(copy, b.len, &s, &used, &err)) {
            assert_null(strchr(error_get_pretty(err), '\n'));
            error_free(err);
        } else {
            assert_true(used <= b.len);
        }
    }
    free(copy);
    free(b.d);
}

static void test_needs_a_file(void **state)
{
    (void)state;
    struct buf b = { 0 };
    build(&b, 1);
    struct ram_decoder dec;
    struct ram_reader r;
    struct ram_mem_source src;
    struct seen s = { 0 };
    ram_decoder_init(&dec, &ops, &s);
    dec.mapped_ram = true;
    ram_reader_init_mem(&r, &src, b.d, b.len, 0);
    r.where = NULL; /* a pipe, say */
    r.seek = NULL;
    Error *err = NULL;
    assert_false(ram_decode_section(&dec, &r, &err));
    assert_non_null(strstr(error_get_pretty(err), "must be read from a file"));
    error_free(err);
    ram_decoder_cleanup(&dec);
    free(b.d);
}

/* Runs written by threads at fixed offsets (two writes of one page keep
 * their order), read back by other threads. */
static void test_threaded_io(void **state)
{
    (void)state;
    char path[] = "/tmp/hop-mapped-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    size_t len = 8 * RAM_MAPPED_ALIGN;
    uint8_t *src = malloc(len), *dst = calloc(1, len);
    for (size_t i = 0; i < len; i++) {
        src[i] = (uint8_t)(i * 7 + i / PS);
    }
    Error *err = NULL;
    struct mapped_io *io = mapped_io_new(fd, "test file", true, 3, false, &err);
    assert_non_null(io);
    uint8_t *stale = calloc(1, PS);
    for (size_t off = 0; off < len; off += 64 * 1024) {
        /* A stale copy of the first page of each run goes first. */
        assert_true(mapped_io_run(io, stale, PS, off, &err));
        assert_true(mapped_io_run(io, src + off, 64 * 1024, off, &err));
    }
    assert_true(mapped_io_wait(io, &err));
    assert_int_equal(mapped_io_bytes(io), len + len / (64 * 1024) * PS);
    mapped_io_free(io);
    io = mapped_io_new(fd, "test file", false, 4, false, &err);
    assert_non_null(io);
    for (size_t off = 0; off < len; off += RAM_MAPPED_ALIGN) {
        assert_true(mapped_io_run(io, dst + off, RAM_MAPPED_ALIGN, off, &err));
    }
    assert_true(mapped_io_wait(io, &err));
    assert_memory_equal(src, dst, len);
    /* Reading past the end fails, naming the file and offset. */
    assert_true(mapped_io_run(io, dst, PS, len, &err) || err);
    assert_false(mapped_io_wait(io, &err));
    assert_non_null(strstr(error_get_pretty(err), "/tmp/hop-mapped-"));
    assert_non_null(
        strstr(error_get_pretty(err), ": reading 4096 bytes at offset"));
    error_free(err);
    mapped_io_free(io);
    free(src);
    free(dst);
    free(stale);
    close(fd);
}

/* Runs of every length up to a whole aligned chunk, written in pieces
 * through the page cache, land whole at their offsets: in the caller's
 * thread and from threads. */
static void test_long_runs(void **state)
{
    (void)state;
    /* Offset and length of one run in each aligned chunk. */
    static const size_t runs[][2] = {
        { 0, RAM_MAPPED_ALIGN },
        { PS, RAM_MAPPED_ALIGN - PS },
        { 3 * PS, RAM_MAPPED_CACHED_WRITE + PS },
        { RAM_MAPPED_ALIGN - 2 * PS, PS },
        /* The last ends where the file does. */
        { RAM_MAPPED_ALIGN - 3 * RAM_MAPPED_CACHED_WRITE + PS,
          3 * RAM_MAPPED_CACHED_WRITE - PS },
    };
    size_t n = sizeof(runs) / sizeof(runs[0]), len = n * RAM_MAPPED_ALIGN;
    uint8_t *src = malloc(len), *want = calloc(1, len), *got = malloc(len);
    for (size_t i = 0; i < len; i++) {
        src[i] = (uint8_t)(i * 13 + i / PS);
    }
    for (int threads = 0; threads <= 2; threads += 2) {
        char path[] = "/tmp/hop-mapped-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        Error *err = NULL;
        struct mapped_io *io =
            mapped_io_new(fd, "test file", true, threads, false, &err);
        assert_non_null(io);
        uint64_t bytes = 0;
        for (size_t c = 0; c < n; c++) {
            size_t off = c * RAM_MAPPED_ALIGN + runs[c][0];
            assert_true(mapped_io_run(io, src + off, runs[c][1], off, &err));
            memcpy(want + off, src + off, runs[c][1]);
            bytes += runs[c][1];
        }
        assert_true(mapped_io_wait(io, &err));
        assert_int_equal(mapped_io_bytes(io), bytes);
        mapped_io_free(io);
        assert_int_equal(pread(fd, got, len, 0), (ssize_t)len);
        assert_memory_equal(want, got, len);
        close(fd);
    }
    free(src);
    free(want);
    free(got);
}

/* A write that fails halfway through a run names the piece that failed:
 * the file may not grow past 512 KiB here. */
static void test_write_error_names_piece(void **state)
{
    (void)state;
    char path[] = "/tmp/hop-mapped-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    struct rlimit old, lim = { 512u << 10, 512u << 10 };
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim.rlim_max = old.rlim_max;
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    uint8_t *src = calloc(1, RAM_MAPPED_ALIGN);
    Error *err = NULL;
    struct mapped_io *io = mapped_io_new(fd, "test file", true, 0, false, &err);
    assert_non_null(io);
    bool ok = mapped_io_run(io, src, RAM_MAPPED_ALIGN, 0, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_sig);
    assert_false(ok);
    char want[64];
    snprintf(want, sizeof(want), ": writing %u bytes at offset %u",
             RAM_MAPPED_CACHED_WRITE, 512u << 10);
    assert_non_null(strstr(error_get_pretty(err), want));
    error_free(err);
    mapped_io_free(io);
    free(src);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_reads_back),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_needs_a_file),
        cmocka_unit_test(test_threaded_io),
        cmocka_unit_test(test_long_runs),
        cmocka_unit_test(test_write_error_names_piece),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
