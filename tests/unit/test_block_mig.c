/* The "block" section of block migration: its records as QEMU 7.2 lays
 * them out, written into drives; hostile records (bad flags, sectors
 * past the end, unknown drives, short data) refused with one line naming
 * the drive and the sector, the drive left as it was; and the dirty
 * tracking that makes the copy live. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migration/block-mig.h"
#include "util/alloc.h"

#define DISK_SECTORS 4096u /* 2 MiB: two chunks */

struct fixture {
    char dir[64];
    char path[128];
    BlockDev *bs;
    struct block_mig bm;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    strcpy(fx->dir, "/tmp/hop-blkmig-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        return -1;
    }
    snprintf(fx->path, sizeof(fx->path), "%s/d.img", fx->dir);
    Error *err = NULL;
    if (!blk_create(fx->path, "raw", DISK_SECTORS * 512ull, NULL, &err) ||
        !(fx->bs = blk_open(fx->path, "raw", false, &err))) {
        fprintf(stderr, "%s\n", error_get_pretty(err));
        return -1;
    }
    block_mig_init(&fx->bm);
    if (!block_mig_add_drive(&fx->bm, "ide0-hd0", fx->bs, &err)) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    block_mig_destroy(&fx->bm);
    blk_close(fx->bs);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void put_block(Channel *f, const char *name, uint64_t sector,
                      unsigned flags, uint8_t fill)
{
    chan_put_be64(f, (sector << 9) | flags);
    chan_put_counted_string(f, name);
    if (!(flags & BLOCK_MIG_FLAG_ZERO_BLOCK)) {
        uint8_t *buf = xmalloc(BLOCK_MIG_CHUNK);
        memset(buf, fill, BLOCK_MIG_CHUNK);
        chan_put_buffer(f, buf, BLOCK_MIG_CHUNK);
        free(buf);
    }
}

/* Loads the bytes written to w; returns the error text (caller frees) or
 * NULL on success. */
static char *load(struct fixture *fx, Channel *w)
{
    chan_flush(w);
    size_t len;
    uint8_t *bytes = chan_mem_take(w, &len);
    chan_close(w, NULL);
    Channel *r = chan_new_mem_reader(bytes, len, "test");
    Error *err = NULL;
    char *msg = NULL;
    if (!block_mig_load_body(&fx->bm, r, &err)) {
        msg = xstrdup(error_get_pretty(err));
        error_free(err);
    }
    chan_close(r, NULL);
    free(bytes);
    return msg;
}

static void expect_error(struct fixture *fx, Channel *w, const char *want)
{
    char *msg = load(fx, w);
    if (!msg) {
        fail_msg("loaded; expected '%s'", want);
    }
    if (strstr(msg, want) == NULL || strchr(msg, '\n')) {
        fail_msg("got '%s'; expected '%s' on one line", msg, want);
    }
    free(msg);
}

static uint8_t sector_byte(struct fixture *fx, uint64_t sector)
{
    uint8_t b[512];
    assert_true(blk_pread(fx->bs, sector * 512, b, sizeof(b), NULL));
    return b[0];
}

/* A body as QEMU 7.2 sends it: progress, blocks, a zero block, EOS. */
static void test_loads_blocks(void **state)
{
    struct fixture *fx = *state;
    Channel *w = chan_new_mem_writer();
    chan_put_be64(w, (0ull << 9) | BLOCK_MIG_FLAG_PROGRESS);
    put_block(w, "ide0-hd0", 0, BLOCK_MIG_FLAG_DEVICE_BLOCK, 0x5a);
    put_block(w, "ide0-hd0", 2048, BLOCK_MIG_FLAG_DEVICE_BLOCK, 0xa5);
    put_block(w, "ide0-hd0", 2048,
              BLOCK_MIG_FLAG_DEVICE_BLOCK | BLOCK_MIG_FLAG_ZERO_BLOCK, 0);
    put_block(w, "ide0-hd0", 4095 - 100, BLOCK_MIG_FLAG_DEVICE_BLOCK, 0);
    chan_put_be64(w, (100ull << 9) | BLOCK_MIG_FLAG_PROGRESS);
    chan_put_be64(w, BLOCK_MIG_FLAG_EOS);
    char *msg = load(fx, w);
    assert_null(msg);
    assert_int_equal(sector_byte(fx, 0), 0x5a);
    assert_int_equal(sector_byte(fx, 2047), 0x5a);
    assert_int_equal(sector_byte(fx, 2048), 0);
}

/* A chunk running past the end with only zeros there is QEMU's last
 * partial chunk: what fits is written. */
static void test_last_chunk_zero_padding_fits(void **state)
{
    struct fixture *fx = *state;
    Channel *w = chan_new_mem_writer();
    chan_put_be64(
        w, ((uint64_t)(DISK_SECTORS - 1) << 9) | BLOCK_MIG_FLAG_DEVICE_BLOCK);
    chan_put_counted_string(w, "ide0-hd0");
    uint8_t *buf = xcalloc(1, BLOCK_MIG_CHUNK);
    memset(buf, 0x77, 512);
    chan_put_buffer(w, buf, BLOCK_MIG_CHUNK);
    free(buf);
    chan_put_be64(w, BLOCK_MIG_FLAG_EOS);
    assert_null(load(fx, w));
    assert_int_equal(sector_byte(fx, DISK_SECTORS - 1), 0x77);
}

static void test_sector_past_end(void **state)
{
    struct fixture *fx = *state;
    Channel *w = chan_new_mem_writer();
    put_block(w, "ide0-hd0", DISK_SECTORS, BLOCK_MIG_FLAG_DEVICE_BLOCK, 1);
    expect_error(fx, w, "drive 'ide0-hd0': sector 4096 is past the end of");
    /* The largest sector the record can carry. */
    w = chan_new_mem_writer();
    put_block(w, "ide0-hd0", UINT64_MAX >> 9, BLOCK_MIG_FLAG_DEVICE_BLOCK, 1);
    expect_error(fx, w, "sector 36028797018963967 is past the end");
}

static void test_data_past_end(void **state)
{
    struct fixture *fx = *state;
    Channel *w = chan_new_mem_writer();
    put_block(w, "ide0-hd0", 3000, BLOCK_MIG_FLAG_DEVICE_BLOCK, 0x11);
    expect_error(fx, w,
                 "drive 'ide0-hd0': the chunk at sector 3000 holds data for "
                 "sector 4096, past the end of");
    /* Nothing of it was written. */
    assert_int_equal(sector_byte(fx, 3000), 0);
}

static void test_unknown_drive(void **state)
{
    struct fixture *fx = *state;
    Channel *w = chan_new_mem_writer();
    put_block(w, "ide1-hd0", 8, BLOCK_MIG_FLAG_DEVICE_BLOCK, 1);
    expect_error(fx, w,
                 "unknown drive 'ide1-hd0' at sector 8 (this machine has "
                 "'ide0-hd0')");
}

static void test_bad_flags(void **state)
{
    struct fixture *fx = *state;
    Channel *w = chan_new_mem_writer();
    chan_put_be64(w, (5ull << 9) | 0x10);
    expect_error(fx, w, "record at offset 0: unknown flags 0x10");
    w = chan_new_mem_writer();
    chan_put_be64(w, 0);
    expect_error(fx, w, "record at offset 0: unknown flags 0x0");
    w = chan_new_mem_writer();
    chan_put_be64(w, BLOCK_MIG_FLAG_DEVICE_BLOCK | 0x100);
    expect_error(fx, w, "bad flags 0x101 for a drive block");
}

static void test_truncated(void **state)
{
    struct fixture *fx = *state;
    /* Data cut short: nothing written, the drive and sector named. */
    Channel *w = chan_new_mem_writer();
    chan_put_be64(w, (16ull << 9) | BLOCK_MIG_FLAG_DEVICE_BLOCK);
    chan_put_counted_string(w, "ide0-hd0");
    chan_put_buffer(w, "abc", 3);
    expect_error(fx, w, "drive 'ide0-hd0' sector 16: ");
    assert_int_equal(sector_byte(fx, 16), 0);
    /* No EOS: the end of the stream is an error, not a hang. */
    w = chan_new_mem_writer();
    chan_put_be64(w, BLOCK_MIG_FLAG_PROGRESS);
    char *msg = load(fx, w);
    assert_non_null(msg);
    free(msg);
}

static void test_read_only_drive(void **state)
{
    struct fixture *fx = *state;
    Error *err = NULL;
    /* Shared: the fixture holds the image for writing. */
    BlockDev *ro = blk_open_flags(fx->path, "raw", BLK_OPEN_FORCE_SHARE, &err);
    assert_non_null(ro);
    struct block_mig bm;
    block_mig_init(&bm);
    assert_true(block_mig_add_drive(&bm, "ide0-hd0", ro, NULL));
    Channel *w = chan_new_mem_writer();
    put_block(w, "ide0-hd0", 0, BLOCK_MIG_FLAG_DEVICE_BLOCK, 1);
    chan_flush(w);
    size_t len;
    uint8_t *bytes = chan_mem_take(w, &len);
    chan_close(w, NULL);
    Channel *r = chan_new_mem_reader(bytes, len, "test");
    assert_false(block_mig_load_body(&bm, r, &err));
    assert_non_null(strstr(error_get_pretty(err), "is read-only"));
    error_free(err);
    chan_close(r, NULL);
    free(bytes);
    block_mig_destroy(&bm);
    blk_close(ro);
}

/* Writes mark their chunks; a chunk taken is clear until written again. */
static void test_dirty_tracking(void **state)
{
    struct fixture *fx = *state;
    uint8_t b[4096] = { 1 };
    assert_true(blk_dirty_start(fx->bs, BLOCK_MIG_CHUNK, NULL));
    assert_int_equal(blk_dirty_count(fx->bs), 0);
    /* Straddles the two chunks. */
    assert_true(blk_pwrite(fx->bs, BLOCK_MIG_CHUNK - 512, b, 1024, NULL));
    assert_int_equal(blk_dirty_count(fx->bs), 2);
    uint64_t c;
    assert_true(blk_dirty_take(fx->bs, 0, &c));
    assert_int_equal(c, 0);
    assert_true(blk_dirty_take(fx->bs, 0, &c));
    assert_int_equal(c, 1);
    assert_false(blk_dirty_take(fx->bs, 0, &c));
    assert_true(blk_pwrite(fx->bs, 0, b, 512, NULL));
    blk_dirty_clear(fx->bs, 0);
    assert_int_equal(blk_dirty_count(fx->bs), 0);
    blk_dirty_stop(fx->bs);
    assert_true(blk_pwrite(fx->bs, 0, b, 512, NULL));
    assert_int_equal(blk_dirty_count(fx->bs), 0);
}

/* Into a qcow2 drive over a backing file (migrate -i's destination): a
 * chunk is the source's data around what its image allocated and backing
 * data elsewhere; only the clusters that differ from what the drive
 * reads get allocated, and a zero block over backing data is written. */
static void test_over_backing_allocates_changes_only(void **state)
{
    struct fixture *fx = *state;
    char base[160], top[160];
    snprintf(base, sizeof(base), "%s/base.qcow2", fx->dir);
    snprintf(top, sizeof(top), "%s/top.qcow2", fx->dir);
    Error *err = NULL;
    assert_true(blk_create(base, "qcow2", DISK_SECTORS * 512ull, NULL, &err));
    BlockDev *b = blk_open(base, "qcow2", false, &err);
    uint8_t *buf = xmalloc(BLOCK_MIG_CHUNK);
    memset(buf, 0xab, BLOCK_MIG_CHUNK);
    assert_true(blk_pwrite(b, 0, buf, BLOCK_MIG_CHUNK, &err));
    assert_true(blk_pwrite(b, BLOCK_MIG_CHUNK, buf, BLOCK_MIG_CHUNK, &err));
    blk_close(b);
    assert_true(blk_create(top, "qcow2", DISK_SECTORS * 512ull,
                           "backing_file=base.qcow2,backing_fmt=qcow2", &err));
    BlockDev *t = blk_open(top, "qcow2", false, &err);
    assert_non_null(t);
    struct block_mig bm;
    block_mig_init(&bm);
    assert_true(block_mig_add_drive(&bm, "ide0-hd0", t, &err));
    Channel *w = chan_new_mem_writer();
    /* Chunk 0: the base's data but one changed 4 KiB at 128 KiB. */
    memset(buf + (128 << 10), 0x11, 4096);
    chan_put_be64(w, BLOCK_MIG_FLAG_DEVICE_BLOCK);
    chan_put_counted_string(w, "ide0-hd0");
    chan_put_buffer(w, buf, BLOCK_MIG_CHUNK);
    /* Chunk 1: zeros, over the base's 0xab. */
    chan_put_be64(w,
                  (2048ull << 9) | BLOCK_MIG_FLAG_DEVICE_BLOCK |
                      BLOCK_MIG_FLAG_ZERO_BLOCK);
    chan_put_counted_string(w, "ide0-hd0");
    chan_put_be64(w, BLOCK_MIG_FLAG_EOS);
    chan_flush(w);
    size_t len;
    uint8_t *bytes = chan_mem_take(w, &len);
    chan_close(w, NULL);
    Channel *r = chan_new_mem_reader(bytes, len, "test");
    assert_true(block_mig_load_body(&bm, r, &err));
    chan_close(r, NULL);
    free(bytes);
    bool alloc;
    uint64_t n;
    assert_true(blk_is_allocated(t, 0, BLOCK_MIG_CHUNK, &alloc, &n, &err));
    assert_false(alloc);
    assert_int_equal(n, 128 << 10);
    assert_true(blk_is_allocated(t, 128 << 10, BLOCK_MIG_CHUNK - (128 << 10),
                                 &alloc, &n, &err));
    assert_true(alloc);
    assert_int_equal(n, 64 << 10); /* one cluster */
    assert_true(blk_is_allocated(t, 192 << 10, BLOCK_MIG_CHUNK - (192 << 10),
                                 &alloc, &n, &err));
    assert_false(alloc);
    uint8_t got[4];
    assert_true(blk_pread(t, 128 << 10, got, sizeof(got), &err));
    assert_int_equal(got[0], 0x11);
    assert_true(blk_pread(t, BLOCK_MIG_CHUNK + 4096, got, sizeof(got), &err));
    assert_int_equal(got[0], 0);
    assert_true(blk_pread(t, 0, got, sizeof(got), &err));
    assert_int_equal(got[0], 0xab);
    block_mig_destroy(&bm);
    blk_close(t);
    free(buf);
    unlink(top);
    unlink(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loads_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_chunk_zero_padding_fits,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sector_past_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_past_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_drive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_drive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_tracking, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_over_backing_allocates_changes_only, setup, teardown),
    };
    return cmocka_run_group_tests_name("block migration", tests, NULL, NULL);
}
