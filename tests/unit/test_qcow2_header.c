/* Malformed qcow2 headers: each one is refused with a one-line message
 * that says what is wrong -- never a crash (run under ASan too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "util/be.h"

static char dir[64];
static char img[128];

static int setup(void **state)
{
    strcpy(dir, "/tmp/hop-qhdr-XXXXXX");
    if (!mkdtemp(dir)) {
        return -1;
    }
    snprintf(img, sizeof(img), "%s/h.qcow2", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(img);
    return rmdir(dir);
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* A fresh 1 MiB image with one header field overwritten. */
static void patch(size_t off, uint64_t v, int bytes)
{
    Error *err = NULL;
    assert_true(blk_create(img, "qcow2", 1 << 20, NULL, &err));
    int fd = open(img, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b[8];
    put_be(b, v, bytes);
    assert_int_equal(pwrite(fd, b, (size_t)bytes, (off_t)off), bytes);
    close(fd);
}

static void expect_refusal(bool readonly, const char *fragment)
{
    Error *err = NULL;
    BlockDev *bs = blk_open(img, NULL, readonly, &err);
    if (bs) {
        blk_close(bs);
        fail_msg("opened; expected an error containing '%s'", fragment);
    }
    const char *msg = error_get_pretty(err);
    if (!strstr(msg, fragment)) {
        fail_msg("error '%s' does not contain '%s'", msg, fragment);
    }
    assert_null(strchr(msg, '\n'));
    assert_non_null(strstr(msg, img)); /* names the file */
    error_free(err);
}

struct bad_header {
    size_t off;
    int bytes;
    uint64_t value;
    const char *fragment;
};

static const struct bad_header cases[] = {
    { 4, 4, 4, "unsupported qcow2 version 4" },
    { 4, 4, 1, "unsupported qcow2 version 1" },
    { 20, 4, 8, "cluster_bits 8" },
    { 20, 4, 22, "cluster_bits 22" },
    { 20, 4, 0xffffffff, "cluster_bits" },
    { 32, 4, 1, "encrypted" },
    { 32, 4, 2, "encrypted" },
    { 8, 8, 0x20000, "backing_file_offset" },
    { 72, 8, 1ULL << 2, "external data file" },
    { 72, 8, 1ULL << 4, "extended L2" },
    { 72, 8, 1ULL << 10, "incompatible feature bit 10" },
    { 72, 8, 1ULL << 63, "incompatible feature bit 63" },
    { 104, 1, 1, "compression type" },
    { 24, 8, UINT64_MAX, "too large" },
    { 24, 8, 1ULL << 52, "too large" },
    { 24, 8, 1ULL << 50, "too small" },
    { 36, 4, 0, "too small" },
    { 36, 4, 0x7fffffff, "L1 table" },
    { 40, 8, 0x12345, "not cluster aligned" },
    { 40, 8, 1ULL << 40, "beyond the end" },
    { 48, 8, 0x10001, "not cluster aligned" },
    { 48, 8, 1ULL << 45, "beyond the end" },
    { 56, 4, 0, "refcount table size" },
    { 56, 4, 0x100000, "refcount table size" },
    { 60, 4, 1000000, "too many snapshots" },
    { 60, 4, 1, "snapshot table" },
    { 96, 4, 7, "refcount_order 7" },
    { 100, 4, 8, "header length" },
    { 100, 4, 0x20000, "header length" },
    { 112, 4, 0x12345678, "" }, /* extension type; overrun checked below */
};

static void test_bad_fields(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_header *c = &cases[i];
        patch(c->off, c->value, c->bytes);
        if (!*c->fragment) {
            continue;
        }
        expect_refusal(true, c->fragment);
    }
}

static void test_bad_magic_and_short_files(void **state)
{
    patch(0, 0x12345678, 4);
    Error *err = NULL;
    /* Probing falls back to raw for a non-qcow2 file; asking for qcow2
     * must refuse it. */
    BlockDev *bs = blk_open(img, "qcow2", true, &err);
    assert_null(bs);
    assert_non_null(strstr(error_get_pretty(err), "bad magic"));
    error_free(err);
    err = NULL;
    assert_int_equal(truncate(img, 40), 0);
    bs = blk_open(img, "qcow2", true, &err);
    assert_null(bs);
    assert_non_null(strstr(error_get_pretty(err), "too short"));
    error_free(err);
}

static void test_extension_overrun(void **state)
{
    /* The feature-name table claims far more bytes than the cluster has. */
    patch(112 + 4, 0x7fff0000, 4);
    expect_refusal(true, "overruns");
}

static void test_corrupt_bit_read_only(void **state)
{
    patch(72, 1ULL << 1, 8);
    expect_refusal(false, "marked corrupt");
    Error *err = NULL;
    BlockDev *bs = blk_open(img, NULL, true, &err);
    assert_non_null(bs);
    blk_close(bs);
}

/* A dirty image (lazy refcounts) gets its refcounts rebuilt on a writable
 * open; qemu-img check then finds it clean and the bit cleared. */
static void test_dirty_bit_repaired(void **state)
{
    patch(72, 1ULL << 0, 8);
    Error *err = NULL;
    BlockDev *bs = blk_open(img, NULL, false, &err);
    assert_non_null(bs);
    struct blk_info info;
    blk_get_info(bs, &info);
    assert_false(info.dirty);
    blk_close(bs);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s'", img);
    assert_int_equal(system(cmd), 0);
}

/* An extension we do not know survives writes, snapshots and deletes:
 * hop never rewrites the header's extension area. */
static void test_unknown_extension_kept(void **state)
{
    Error *err = NULL;
    assert_true(blk_create(img, "qcow2", 1 << 20, NULL, &err));
    int fd = open(img, O_RDWR);
    uint8_t c0[4096];
    assert_int_equal(pread(fd, c0, sizeof(c0), 0), sizeof(c0));
    size_t off = 112; /* walk to the end marker */
    while (c0[off] | c0[off + 1] | c0[off + 2] | c0[off + 3]) {
        uint32_t len = be32_get(c0 + off + 4);
        off += 8 + ((len + 7) & ~7u);
    }
    static const uint8_t ext[16] = { 0x12, 0x34, 0x56, 0x78, 0,   0, 0, 5,
                                     'h',  'e',  'l',  'l',  'o', 0, 0, 0 };
    assert_int_equal(pwrite(fd, ext, sizeof(ext), (off_t)off), sizeof(ext));
    assert_int_equal(pread(fd, c0, sizeof(c0), 0), sizeof(c0));
    close(fd);
    BlockDev *bs = blk_open(img, NULL, false, &err);
    assert_non_null(bs);
    uint8_t data[70000];
    memset(data, 0x42, sizeof(data));
    assert_true(blk_pwrite(bs, 5000, data, sizeof(data), &err));
    struct blk_snapshot sn = { .name = (char *)"s", .icount = -1 };
    assert_true(blk_snapshot_create(bs, &sn, &err));
    assert_true(blk_pwrite(bs, 0, data, sizeof(data), &err));
    assert_true(blk_snapshot_delete(bs, "s", &err));
    blk_close(bs);
    uint8_t after[4096];
    fd = open(img, O_RDONLY);
    assert_int_equal(pread(fd, after, sizeof(after), 0), sizeof(after));
    close(fd);
    assert_memory_equal(after + 72, c0 + 72, sizeof(c0) - 72);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s'", img);
    assert_int_equal(system(cmd), 0);
}

/* Garbage everywhere after a valid start: refused or read, no crash. */
static void test_fuzzed_headers(void **state)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int round = 0; round < 200; round++) {
        Error *err = NULL;
        assert_true(
            blk_create(img, "qcow2", 1 << 20, "cluster_size=4096", &err));
        int fd = open(img, O_RDWR);
        for (int k = 0; k < 4; k++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            uint8_t byte = (uint8_t)(seed >> 32);
            off_t off = (off_t)((seed >> 8) % 4096);
            if (off < 8) {
                off += 8; /* keep magic and version */
            }
            assert_int_equal(pwrite(fd, &byte, 1, off), 1);
        }
        close(fd);
        BlockDev *bs = blk_open(img, "qcow2", false, &err);
        if (bs) {
            uint8_t buf[4096];
            struct blk_check_result r;
            (void)blk_pread(bs, 0, buf, sizeof(buf), &err);
            (void)blk_pwrite(bs, 4096, buf, sizeof(buf), &err);
            if (blk_check(bs, &r, &err)) {
                blk_check_result_free(&r);
            }
            blk_close(bs);
        }
        error_free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_bad_magic_and_short_files),
        cmocka_unit_test(test_extension_overrun),
        cmocka_unit_test(test_corrupt_bit_read_only),
        cmocka_unit_test(test_dirty_bit_repaired),
        cmocka_unit_test(test_unknown_extension_kept),
        cmocka_unit_test(test_fuzzed_headers),
    };
    return cmocka_run_group_tests_name("qcow2 header", tests, setup, teardown);
}
