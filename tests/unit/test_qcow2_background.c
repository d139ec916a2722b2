/* qcow2 snapshots in two steps (blk_snapshot_begin, commit, abort): the
 * disk of the begin is what the snapshot holds however the disk was
 * written after it; nothing is listed before the commit; an abort, a
 * commit and a crash in between leave an image that qemu-img check finds
 * clean (after a crash: once reopened). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/block.h"

#define MIB (1u << 20)
#define DISK (8 * MIB)

static char dir[64];
static char img[128];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/hop-qbg-XXXXXX");
    if (!mkdtemp(dir)) {
        return -1;
    }
    snprintf(img, sizeof(img), "%s/b.qcow2", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(img);
    return rmdir(dir);
}

/* The disk filled with a pattern of seed (1 MiB of it left unwritten, as
 * a guest leaves space). */
static void fill(BlockDev *bs, uint8_t seed)
{
    uint8_t *buf = malloc(MIB);
    Error *err = NULL;
    for (uint64_t off = 0; off < DISK; off += MIB) {
        if (off == 3 * MIB && seed == 1) {
            continue;
        }
        for (size_t i = 0; i < MIB; i++) {
            buf[i] = (uint8_t)(seed * 31 + i + (off >> 20));
        }
        assert_true(blk_pwrite(bs, off, buf, MIB, &err));
    }
    free(buf);
}

static uint8_t *read_disk(BlockDev *bs, const char *snapshot)
{
    uint8_t *buf = malloc(DISK);
    Error *err = NULL;
    if (snapshot) {
        assert_true(blk_snapshot_pread(bs, snapshot, 0, buf, DISK, &err));
    } else {
        assert_true(blk_pread(bs, 0, buf, DISK, &err));
    }
    return buf;
}

static size_t count_snapshots(BlockDev *bs)
{
    struct blk_snapshot *l;
    size_t n;
    Error *err = NULL;
    assert_true(blk_snapshot_list(bs, &l, &n, &err));
    blk_snapshot_list_free(l, n);
    return n;
}

/* hop's check, and qemu-img's where it is installed: exit status 0
 * (3 would be leaks). */
static void assert_clean(BlockDev *bs)
{
    struct blk_check_result res;
    Error *err = NULL;
    assert_true(blk_check(bs, &res, &err));
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    blk_check_result_free(&res);
    if (system("command -v qemu-img >/dev/null 2>&1") == 0) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "qemu-img check -U -q '%s'", img);
        int st = system(cmd);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
}

static BlockDev *new_image(void)
{
    Error *err = NULL;
    assert_true(blk_create(img, "qcow2", DISK, NULL, &err));
    BlockDev *bs = blk_open(img, NULL, false, &err);
    assert_non_null(bs);
    fill(bs, 1);
    struct blk_snapshot old = { .name = (char *)"old", .icount = -1 };
    assert_true(blk_snapshot_create(bs, &old, &err));
    return bs;
}

static void write_state(BlockDev *bs, uint64_t len)
{
    uint8_t *buf = malloc(len);
    for (uint64_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i * 7 + (i >> 12));
    }
    Error *err = NULL;
    assert_true(blk_vmstate_pwrite(bs, 0, buf, len, &err));
    free(buf);
}

static void test_commit_keeps_the_disk_of_the_begin(void **state)
{
    (void)state;
    BlockDev *bs = new_image();
    Error *err = NULL;
    uint8_t *start = read_disk(bs, NULL);
    assert_true(blk_snapshot_begin(bs, &err));
    /* Written after the begin: the disk and the state. */
    fill(bs, 2);
    uint64_t vm_len = 3 * MIB + 123;
    write_state(bs, vm_len);
    assert_int_equal(count_snapshots(bs), 1);
    /* The other snapshot calls wait for the end. */
    struct blk_snapshot other = { .name = (char *)"other", .icount = -1 };
    assert_false(blk_snapshot_create(bs, &other, &err));
    assert_non_null(strstr(error_get_pretty(err), "background snapshot"));
    error_free(err);
    err = NULL;
    assert_false(blk_snapshot_delete(bs, "old", &err));
    error_free(err);
    err = NULL;
    struct blk_snapshot sn = { .name = (char *)"bg",
                               .vm_state_size = vm_len,
                               .date_sec = 1234,
                               .vm_clock_nsec = 5678,
                               .icount = -1 };
    assert_true(blk_snapshot_commit(bs, &sn, &err));
    assert_int_equal(count_snapshots(bs), 2);
    uint8_t *now = read_disk(bs, NULL);
    uint8_t *kept = read_disk(bs, "bg");
    assert_memory_equal(kept, start, DISK);
    assert_memory_not_equal(now, start, DISK);
    uint8_t *vm = malloc(vm_len);
    assert_true(blk_vmstate_pread(bs, "bg", 0, vm, vm_len, &err));
    for (uint64_t i = 0; i < vm_len; i++) {
        assert_int_equal(vm[i], (uint8_t)(i * 7 + (i >> 12)));
    }
    struct blk_snapshot got;
    assert_true(blk_snapshot_find(bs, "bg", &got, &err));
    assert_int_equal(got.vm_state_size, vm_len);
    assert_int_equal(got.date_sec, 1234);
    assert_int_equal(got.vm_clock_nsec, 5678);
    blk_snapshot_clear(&got);
    assert_clean(bs);
    /* It reverts like any other. */
    assert_true(blk_snapshot_apply(bs, "bg", &err));
    free(now);
    now = read_disk(bs, NULL);
    assert_memory_equal(now, start, DISK);
    assert_clean(bs);
    blk_close(bs);
    free(start);
    free(now);
    free(kept);
    free(vm);
}

static void test_abort_leaves_nothing(void **state)
{
    (void)state;
    BlockDev *bs = new_image();
    Error *err = NULL;
    assert_true(blk_snapshot_begin(bs, &err));
    fill(bs, 3);
    write_state(bs, 2 * MIB);
    assert_true(blk_snapshot_abort(bs, &err));
    assert_int_equal(count_snapshots(bs), 1);
    uint8_t *now = read_disk(bs, NULL);
    fill(bs, 3);
    uint8_t *again = read_disk(bs, NULL);
    assert_memory_equal(now, again, DISK);
    assert_clean(bs);
    /* Snapshots work again. */
    struct blk_snapshot sn = { .name = (char *)"after", .icount = -1 };
    assert_true(blk_snapshot_create(bs, &sn, &err));
    assert_clean(bs);
    blk_close(bs);
    free(now);
    free(again);
}

static void test_commit_replaces_a_tag(void **state)
{
    (void)state;
    BlockDev *bs = new_image();
    Error *err = NULL;
    fill(bs, 4);
    uint8_t *start = read_disk(bs, NULL);
    assert_true(blk_snapshot_begin(bs, &err));
    fill(bs, 5);
    write_state(bs, MIB);
    struct blk_snapshot sn = { .name = (char *)"old",
                               .vm_state_size = MIB,
                               .icount = -1 };
    assert_true(blk_snapshot_commit(bs, &sn, &err));
    assert_int_equal(count_snapshots(bs), 1);
    uint8_t *kept = read_disk(bs, "old");
    assert_memory_equal(kept, start, DISK);
    assert_clean(bs);
    blk_close(bs);
    free(start);
    free(kept);
}

/* Closed between begin and commit, as a crash would leave it (the
 * metadata of the begin on disk): nothing listed, the disk as written,
 * and the next writer's open frees what the begin kept. */
static void test_interrupted_then_reopened(void **state)
{
    (void)state;
    BlockDev *bs = new_image();
    Error *err = NULL;
    assert_true(blk_snapshot_begin(bs, &err));
    fill(bs, 6);
    write_state(bs, MIB);
    uint8_t *now = read_disk(bs, NULL);
    blk_close(bs);
    bs = blk_open(img, NULL, false, &err);
    assert_non_null(bs);
    assert_int_equal(count_snapshots(bs), 1);
    uint8_t *back = read_disk(bs, NULL);
    assert_memory_equal(back, now, DISK);
    struct blk_info info;
    blk_get_info(bs, &info);
    assert_false(info.dirty);
    assert_clean(bs);
    blk_close(bs);
    free(now);
    free(back);
}

static void test_commit_without_begin(void **state)
{
    (void)state;
    BlockDev *bs = new_image();
    Error *err = NULL;
    struct blk_snapshot sn = { .name = (char *)"x", .icount = -1 };
    assert_false(blk_snapshot_commit(bs, &sn, &err));
    assert_non_null(strstr(error_get_pretty(err), "no background snapshot"));
    error_free(err);
    err = NULL;
    assert_true(blk_snapshot_abort(bs, &err)); /* nothing to do */
    assert_int_equal(count_snapshots(bs), 1);
    blk_close(bs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_keeps_the_disk_of_the_begin,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_commit_replaces_a_tag, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_then_reopened, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_commit_without_begin, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("qcow2 background snapshots", tests,
                                       NULL, NULL);
}
