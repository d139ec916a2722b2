/* Hostile snapshot tables: an entry whose fields do not fit its image is
 * refused wherever it would be used (revert, read, check) with one line
 * naming the image, the snapshot and the field, and the image is left
 * byte for byte as it was; a table whose shape is broken (entries past
 * the end, oversized extra data, two entries with one id) is refused at
 * open.  Run under ASan too: none of this may touch memory it should not. */
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

#include "block/qcow2.h"

static char dir[64];
static char img[128];

static int setup(void **state)
{
    strcpy(dir, "/tmp/hop-qsnap-XXXXXX");
    if (!mkdtemp(dir)) {
        return -1;
    }
    snprintf(img, sizeof(img), "%s/s.qcow2", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(img);
    return rmdir(dir);
}

/* A 1 MiB image with disk-only snapshots "a" (id 1) and "b" (id 2). */
static void make_image(void)
{
    Error *err = NULL;
    unlink(img);
    assert_true(blk_create(img, "qcow2", 1 << 20, NULL, &err));
    BlockDev *bs = blk_open(img, NULL, false, &err);
    assert_non_null(bs);
    assert_true(blk_pwrite(bs, 0, "before", 6, &err));
    struct blk_snapshot sn = { .name = (char *)"a", .icount = -1 };
    assert_true(blk_snapshot_create(bs, &sn, &err));
    sn.name = (char *)"b";
    assert_true(blk_snapshot_create(bs, &sn, &err));
    blk_close(bs);
}

static uint8_t *slurp(size_t *len)
{
    FILE *f = fopen(img, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* The file offset of snapshot table entry i. */
static uint64_t entry_offset(unsigned i)
{
    size_t len;
    uint8_t *b = slurp(&len);
    uint64_t off = be64_get(b + 64);
    for (unsigned k = 0; k < i; k++) {
        uint64_t n = 40 + be32_get(b + off + 36) + be16_get(b + off + 12) +
            be16_get(b + off + 14);
        off += (n + 7) & ~7ULL;
    }
    free(b);
    return off;
}

/* Overwrite bytes bytes at field offset field of entry i with v. */
static void patch_entry(unsigned i, size_t field, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int k = bytes - 1; k >= 0; k--) {
        b[k] = (uint8_t)v;
        v >>= 8;
    }
    int fd = open(img, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(
        pwrite(fd, b, (size_t)bytes, (off_t)(entry_offset(i) + field)), bytes);
    close(fd);
}

static void expect_error(Error *err, const char *field)
{
    const char *msg = error_get_pretty(err);
    if (!strstr(msg, field) || !strstr(msg, img) || strchr(msg, '\n')) {
        fail_msg("error '%s' should be one line naming '%s' and '%s'", msg, img,
                 field);
    }
}

struct bad_entry {
    size_t field; /* offset in the entry (extra data starts at 40) */
    int bytes;
    uint64_t value;
    const char *fragment;
};

/* Entry 0 ("a") broken in one field; the image still opens. */
static const struct bad_entry unusable[] = {
    { 48, 8, 1ULL << 63, "disk_size 9223372036854775808" },
    { 48, 8, UINT64_MAX, "disk_size" },
    { 48, 8, (1 << 20) + (512ULL << 20), "disk_size" },
    { 8, 4, 0x7fffffff, "l1_size 2147483647" },
    { 8, 4, 0x400001, "l1_size" },
    { 0, 8, 0x10008, "l1_table_offset 0x10008 is not cluster aligned" },
    { 0, 8, 0, "l1_table_offset 0 lies in the header cluster" },
    { 0, 8, 1ULL << 40, "beyond the end of the file" },
    { 0, 8, UINT64_MAX & ~0xffffULL, "beyond the end of the file" },
    { 40, 8, 1ULL << 40, "vm_state_size 1099511627776" },
};

static void test_unusable_entries(void **state)
{
    for (size_t i = 0; i < sizeof(unusable) / sizeof(unusable[0]); i++) {
        const struct bad_entry *c = &unusable[i];
        make_image();
        patch_entry(0, c->field, c->value, c->bytes);
        size_t len0, len1;
        uint8_t *before = slurp(&len0);
        Error *err = NULL;
        BlockDev *bs = blk_open(img, NULL, false, &err);
        if (!bs) {
            fail_msg("case %zu: %s", i, error_get_pretty(err));
        }
        /* By name and by id: the revert is refused and names the field. */
        assert_false(blk_snapshot_apply(bs, "a", &err));
        expect_error(err, c->fragment);
        assert_non_null(strstr(error_get_pretty(err), "'1' ('a')"));
        error_free(err);
        err = NULL;
        assert_false(blk_snapshot_apply(bs, "1", &err));
        expect_error(err, c->fragment);
        error_free(err);
        err = NULL;
        uint8_t buf[512];
        assert_false(blk_snapshot_pread(bs, "a", 0, buf, sizeof(buf), &err));
        expect_error(err, c->fragment);
        error_free(err);
        err = NULL;
        assert_false(blk_snapshot_check(bs, "a", &err));
        expect_error(err, c->fragment);
        error_free(err);
        err = NULL;
        /* The other snapshot is fine. */
        assert_true(blk_snapshot_check(bs, "b", &err));
        assert_true(blk_snapshot_pread(bs, "b", 0, buf, 6, &err));
        assert_memory_equal(buf, "before", 6);
        blk_close(bs);
        uint8_t *after = slurp(&len1);
        assert_int_equal(len0, len1);
        assert_memory_equal(before, after, len0);
        free(before);
        free(after);
    }
}

static void expect_open_refused(const char *fragment)
{
    size_t len0, len1;
    uint8_t *before = slurp(&len0);
    for (int ro = 0; ro < 2; ro++) {
        Error *err = NULL;
        BlockDev *bs = blk_open(img, NULL, ro, &err);
        if (bs) {
            blk_close(bs);
            fail_msg("opened; expected an error containing '%s'", fragment);
        }
        expect_error(err, fragment);
        error_free(err);
    }
    uint8_t *after = slurp(&len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(before);
    free(after);
}

static void test_broken_tables(void **state)
{
    make_image();
    patch_entry(1, 36, 5000, 4);
    expect_open_refused("entry 1: extra_size 5000 is more than 1024");
    make_image();
    size_t len;
    free(slurp(&len));
    /* (The table is written last: a 64 KiB name cannot fit behind it.) */
    assert_true(entry_offset(1) + 40 + 24 + 1 + 0xffff > len);
    patch_entry(1, 14, 0xffff, 2); /* name_len past the end */
    expect_open_refused("entry 1: its extra data, id and name (65560 bytes at");
    make_image();
    uint64_t id_at = entry_offset(1) + 40 + 24;
    int fd = open(img, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "1", 1, (off_t)id_at), 1);
    close(fd);
    expect_open_refused("entries 0 and 1 both have id '1'");
}

/* The revert checks the entry itself, not only what open found: an entry
 * changed in memory is refused before the image is touched. */
static void test_apply_checks_again(void **state)
{
    make_image();
    size_t len0, len1;
    uint8_t *before = slurp(&len0);
    Error *err = NULL;
    BlockDev *bs = blk_open(img, NULL, false, &err);
    assert_non_null(bs);
    Qcow2State *s = bs->opaque;
    s->snaps[0].disk_size = 1ULL << 63;
    assert_false(blk_snapshot_apply(bs, "a", &err));
    expect_error(err, "disk_size");
    error_free(err);
    err = NULL;
    /* An entry without the field (old format) takes the size from
     * elsewhere; the rebuild still bounds it. */
    s->snaps[0].extra_size = 8;
    assert_false(blk_snapshot_apply(bs, "a", &err));
    expect_error(err, "disk size 9223372036854775808");
    error_free(err);
    err = NULL;
    s->snaps[0].extra_size = QCOW2_SNAPSHOT_EXTRA_SIZE;
    s->snaps[0].disk_size = 1 << 20;
    blk_close(bs);
    uint8_t *after = slurp(&len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(before);
    free(after);
    /* And a sound entry still reverts. */
    bs = blk_open(img, NULL, false, &err);
    assert_non_null(bs);
    assert_true(blk_pwrite(bs, 0, "after!", 6, &err));
    assert_true(blk_snapshot_apply(bs, "a", &err));
    uint8_t buf[6];
    assert_true(blk_pread(bs, 0, buf, 6, &err));
    assert_memory_equal(buf, "before", 6);
    blk_close(bs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unusable_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_checks_again, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("qcow2 snapshot table", tests, NULL,
                                       NULL);
}
