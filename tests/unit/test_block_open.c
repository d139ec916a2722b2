/* What the block layer guarantees around opening and creating images:
 * QEMU's image locks (the same bytes, so each sees the other), create
 * that never clobbers on a refusal, a probed raw image that cannot be
 * turned into another format by what is written to it, and inactive
 * images handed between two processes (migration). */
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

static char dir[64];
static char img[128];
static char raw[128];

static int setup(void **state)
{
    strcpy(dir, "/tmp/hop-bopen-XXXXXX");
    if (!mkdtemp(dir)) {
        return -1;
    }
    snprintf(img, sizeof(img), "%s/l.qcow2", dir);
    snprintf(raw, sizeof(raw), "%s/r.img", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(img);
    unlink(raw);
    return rmdir(dir);
}

static BlockDev *must_open(const char *path, const char *fmt, unsigned flags)
{
    Error *err = NULL;
    BlockDev *bs = blk_open_flags(path, fmt, flags, &err);
    if (!bs) {
        fail_msg("%s", error_get_pretty(err));
    }
    return bs;
}

static void expect_open_error(const char *path, unsigned flags,
                              const char *fragment)
{
    Error *err = NULL;
    BlockDev *bs = blk_open_flags(path, NULL, flags, &err);
    if (bs) {
        blk_close(bs);
        fail_msg("opened '%s'; expected '%s'", path, fragment);
    }
    const char *msg = error_get_pretty(err);
    if (!strstr(msg, fragment) || strchr(msg, '\n')) {
        fail_msg("error '%s' lacks '%s'", msg, fragment);
    }
    error_free(err);
}

/* Bytes 100..103 and 200..203 of path held by some open file: a string of
 * '1' and '0', as QEMU's file driver would see them. */
static void held_bytes(const char *path, char out[9])
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    static const int bytes[8] = { 100, 101, 102, 103, 200, 201, 202, 203 };
    for (int i = 0; i < 8; i++) {
        struct flock fl = { .l_type = F_WRLCK,
                            .l_whence = SEEK_SET,
                            .l_start = bytes[i],
                            .l_len = 1 };
        assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
        out[i] = fl.l_type == F_UNLCK ? '0' : '1';
    }
    out[8] = '\0';
    close(fd);
}

static void create_qcow2(void)
{
    Error *err = NULL;
    unlink(img);
    assert_true(blk_create(img, "qcow2", 1 << 20, NULL, &err));
}

/* The bytes QEMU 7.2 holds (seen in /proc/locks): a writer uses consistent
 * read, write and resize and shares neither write nor resize; a reader
 * uses consistent read and shares the same; -U uses consistent read only. */
static void test_lock_bytes_as_qemu(void **state)
{
    create_qcow2();
    char held[9];
    BlockDev *bs = must_open(img, NULL, BLK_OPEN_RDWR);
    held_bytes(img, held);
    assert_string_equal(held, "11010101");
    blk_close(bs);
    held_bytes(img, held);
    assert_string_equal(held, "00000000");
    bs = must_open(img, NULL, 0);
    held_bytes(img, held);
    assert_string_equal(held, "10000101");
    blk_close(bs);
    bs = must_open(img, NULL, BLK_OPEN_FORCE_SHARE);
    held_bytes(img, held);
    assert_string_equal(held, "10000000");
    blk_close(bs);
}

static void test_writer_excludes(void **state)
{
    create_qcow2();
    BlockDev *w = must_open(img, NULL, BLK_OPEN_RDWR);
    expect_open_error(img, BLK_OPEN_RDWR,
                      "is in use by another process "
                      "(locked for writing");
    expect_open_error(img, 0,
                      "is in use by another process (locked for "
                      "writing");
    BlockDev *r = must_open(img, NULL, BLK_OPEN_FORCE_SHARE);
    blk_close(r);
    /* A refused open leaves the holder's locks alone. */
    char held[9];
    held_bytes(img, held);
    assert_string_equal(held, "11010101");
    Error *err = NULL;
    assert_false(blk_create(img, "qcow2", 1 << 20, NULL, &err));
    assert_non_null(strstr(error_get_pretty(err), "in use"));
    error_free(err);
    blk_close(w);
    blk_close(must_open(img, NULL, BLK_OPEN_RDWR));
}

static void test_readers_share(void **state)
{
    create_qcow2();
    BlockDev *a = must_open(img, NULL, 0);
    BlockDev *b = must_open(img, NULL, 0);
    expect_open_error(img, BLK_OPEN_RDWR,
                      "is in use by another process "
                      "(locked against writing");
    blk_close(a);
    expect_open_error(img, BLK_OPEN_RDWR, "locked against writing");
    blk_close(b);
    blk_close(must_open(img, NULL, BLK_OPEN_RDWR));
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void expect_create_refused(const char *fmt, uint64_t size,
                                  const char *opts, const char *fragment)
{
    size_t len0, len1;
    uint8_t *before = slurp(img, &len0);
    Error *err = NULL;
    assert_false(blk_create(img, fmt, size, opts, &err));
    if (!strstr(error_get_pretty(err), fragment)) {
        fail_msg("error '%s' lacks '%s'", error_get_pretty(err), fragment);
    }
    error_free(err);
    assert_int_equal(access(img, F_OK), 0);
    uint8_t *after = slurp(img, &len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(before);
    free(after);
}

/* A refused create leaves the file that was there as it was. */
static void test_create_keeps_existing_file(void **state)
{
    create_qcow2();
    expect_create_refused("qcow2", 1 << 20, "cluster_size=3000",
                          "cluster_size '3000'");
    expect_create_refused("qcow2", 1 << 20, "colour=blue",
                          "unknown option 'colour'");
    expect_create_refused("qcow2", UINT64_MAX, NULL, "too large");
    expect_create_refused("qcow2", 1ULL << 62, "cluster_size=2M", "too large");
    expect_create_refused("raw", 1 << 20, "cluster_size=4K", "no options");
    expect_create_refused("raw", 1ULL << 63, NULL, "too large");
    /* A size the file system refuses (past ext4's 16 TiB, say) fails
     * after the checks; the file still keeps its bytes. */
    size_t len0, len1;
    uint8_t *before = slurp(img, &len0);
    Error *err = NULL;
    if (!blk_create(img, "raw", (1ULL << 62) + 512, NULL, &err)) {
        uint8_t *after = slurp(img, &len1);
        assert_int_equal(len0, len1);
        assert_memory_equal(before, after, len0);
        free(after);
    }
    error_free(err);
    free(before);
    /* A file the refused call would have made is not left behind. */
    unlink(img);
    err = NULL;
    assert_false(blk_create(img, "qcow2", 1 << 20, "cluster_size=3", &err));
    error_free(err);
    assert_int_not_equal(access(img, F_OK), 0);
}

static void make_raw(const uint8_t *sector0)
{
    Error *err = NULL;
    unlink(raw);
    assert_true(blk_create(raw, "raw", 64 << 10, NULL, &err));
    if (sector0) {
        int fd = open(raw, O_RDWR);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, sector0, 512, 0), 512);
        close(fd);
    }
}

static const uint8_t qcow2_magic[4] = { 'Q', 'F', 'I', 0xfb };

/* Writes that would make a probed raw image probe as qcow2 are refused;
 * with the format given, or away from sector 0, they go through. */
static void test_probed_raw_keeps_its_format(void **state)
{
    uint8_t sector[512];
    memset(sector, 0x5a, sizeof(sector));
    memcpy(sector, qcow2_magic, 4);
    make_raw(NULL);
    BlockDev *bs = must_open(raw, NULL, BLK_OPEN_RDWR);
    assert_true(bs->probed);
    assert_string_equal(blk_format(bs), "raw");
    Error *err = NULL;
    assert_false(blk_pwrite(bs, 0, sector, sizeof(sector), &err));
    assert_non_null(strstr(error_get_pretty(err), "sector 0 refused"));
    assert_non_null(strstr(error_get_pretty(err), "format=raw"));
    error_free(err);
    err = NULL;
    assert_false(blk_pwrite(bs, 0, qcow2_magic, 4, &err));
    error_free(err);
    err = NULL;
    /* Only the first byte changes, but it completes the magic. */
    assert_true(blk_pwrite(bs, 1, qcow2_magic + 1, 3, &err));
    assert_false(blk_pwrite(bs, 0, "Q", 1, &err));
    error_free(err);
    err = NULL;
    assert_true(blk_pwrite(bs, 0, "hello", 5, &err));
    assert_true(blk_pwrite(bs, 512, sector, sizeof(sector), &err));
    blk_close(bs);
    uint8_t back[4];
    int fd = open(raw, O_RDONLY);
    assert_int_equal(pread(fd, back, 4, 0), 4);
    close(fd);
    assert_memory_equal(back, "hell", 4);
    bs = must_open(raw, NULL, BLK_OPEN_RDWR);
    assert_string_equal(blk_format(bs), "raw");
    blk_close(bs);

    bs = must_open(raw, "raw", BLK_OPEN_RDWR);
    assert_false(bs->probed);
    assert_true(blk_pwrite(bs, 0, sector, sizeof(sector), &err));
    blk_close(bs);
}

/* An operation on an inactive image fails with a one-line error. */
static void expect_inactive(bool ok, Error **err)
{
    assert_false(ok);
    const char *msg = error_get_pretty(*err);
    if (!strstr(msg, "is inactive") || strchr(msg, '\n')) {
        fail_msg("error '%s' does not say the image is inactive", msg);
    }
    error_free(*err);
    *err = NULL;
}

/* Two processes naming one image in a migration: the destination opens
 * it inactive beside the running source, the source lets go at the
 * switch, the destination takes it; and back. */
static void test_inactive_hands_over(void **state)
{
    create_qcow2();
    char held[9];
    uint8_t buf[512] = { 0 };
    Error *err = NULL;
    bool ok;
    BlockDev *src = must_open(img, NULL, BLK_OPEN_RDWR);
    BlockDev *dst = must_open(img, NULL, BLK_OPEN_RDWR | BLK_OPEN_INACTIVE);
    held_bytes(img, held);
    assert_string_equal(held, "11010101"); /* the source's alone */
    assert_true(blk_is_inactive(dst));
    assert_string_equal(blk_format(dst), "qcow2");
    assert_int_equal(blk_size(dst), 0);
    assert_true(blk_flush(dst, &err));
    ok = blk_pwrite(dst, 0, buf, sizeof(buf), &err);
    expect_inactive(ok, &err);
    ok = blk_pread(dst, 0, buf, sizeof(buf), &err);
    expect_inactive(ok, &err);
    struct blk_snapshot *l;
    size_t n;
    ok = blk_snapshot_list(dst, &l, &n, &err);
    expect_inactive(ok, &err);
    assert_false(blk_activate(dst, &err));
    assert_non_null(strstr(error_get_pretty(err),
                           "is in use by another "
                           "process"));
    error_free(err);
    err = NULL;
    assert_true(blk_is_inactive(dst));

    assert_true(blk_inactivate(src, &err));
    assert_true(blk_inactivate(src, &err)); /* again: nothing to do */
    held_bytes(img, held);
    assert_string_equal(held, "00000000");
    ok = blk_pwrite(src, 0, buf, sizeof(buf), &err);
    expect_inactive(ok, &err);
    if (!blk_activate(dst, &err)) {
        fail_msg("%s", error_get_pretty(err));
    }
    held_bytes(img, held);
    assert_string_equal(held, "11010101");
    assert_int_equal(blk_size(dst), 1 << 20);
    assert_true(blk_pwrite(dst, 0, buf, sizeof(buf), &err));
    assert_false(blk_activate(src, &err)); /* the destination has it */
    error_free(err);
    err = NULL;
    blk_close(dst);
    assert_true(blk_activate(src, &err));
    assert_true(blk_pwrite(src, 0, buf, sizeof(buf), &err));
    blk_close(src);
}

/* What another process wrote while the image was inactive is read
 * afresh on activation: snapshots, data, size; nothing cached before is
 * written back over it. */
static void test_activate_rereads_metadata(void **state)
{
    create_qcow2();
    Error *err = NULL;
    uint8_t a[4096], b[4096];
    memset(a, 0xaa, sizeof(a));
    BlockDev *src = must_open(img, NULL, BLK_OPEN_RDWR);
    assert_true(blk_pwrite(src, 0, a, sizeof(a), &err));
    assert_true(blk_inactivate(src, &err));

    BlockDev *dst = must_open(img, NULL, BLK_OPEN_RDWR);
    memset(b, 0xbb, sizeof(b));
    assert_true(blk_pwrite(dst, 65536, b, sizeof(b), &err));
    char name[] = "x";
    struct blk_snapshot sn = { .name = name,
                               .icount = -1,
                               .disk_size = blk_size(dst) };
    assert_true(blk_snapshot_create(dst, &sn, &err));
    assert_true(blk_pwrite(dst, 131072, b, sizeof(b), &err));
    blk_close(dst);

    if (!blk_activate(src, &err)) {
        fail_msg("%s", error_get_pretty(err));
    }
    struct blk_snapshot found;
    assert_true(blk_snapshot_find(src, "x", &found, &err));
    blk_snapshot_clear(&found);
    uint8_t got[4096];
    assert_true(blk_pread(src, 131072, got, sizeof(got), &err));
    assert_memory_equal(got, b, sizeof(b));
    /* A write now allocates around what the other process allocated. */
    assert_true(blk_pwrite(src, 196608, a, sizeof(a), &err));
    blk_close(src);

    BlockDev *ro = must_open(img, NULL, 0);
    struct blk_check_result res;
    assert_true(blk_check(ro, &res, &err));
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    blk_check_result_free(&res);
    assert_true(blk_pread(ro, 65536, got, sizeof(got), &err));
    assert_memory_equal(got, b, sizeof(b));
    assert_true(blk_pread(ro, 196608, got, sizeof(got), &err));
    assert_memory_equal(got, a, sizeof(a));
    assert_true(blk_snapshot_pread(ro, "x", 131072, got, sizeof(got), &err));
    assert_memory_equal(got, (uint8_t[4096]){ 0 }, sizeof(got));
    blk_close(ro);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lock_bytes_as_qemu, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_writer_excludes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_keeps_existing_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_probed_raw_keeps_its_format, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_inactive_hands_over, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_activate_rereads_metadata, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("block open", tests, NULL, NULL);
}
