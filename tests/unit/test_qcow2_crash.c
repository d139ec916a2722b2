/* Crash safety: a child process runs a workload (writes that allocate and
 * copy clusters, the refcount table growing, the L1 table moving, machine
 * state written, snapshots created, deleted and applied) and is stopped
 * dead at a named step (HOP_FAULT).  Whatever the step, qemu-img check
 * must find no corruption (leaks are allowed), and the snapshot taken
 * before the workload must still hold its data. */
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
#include "util/fault.h"

#define DISK_SIZE (1u << 20)

static char dir[64];
static char img[128];
static uint8_t base[DISK_SIZE];

static const char *const points[] = {
    "qcow2-before-data",     "qcow2-refblocks",       "qcow2-reftable",
    "qcow2-reftable-header", "qcow2-flush-refcounts", "qcow2-flush-l2",
    "qcow2-flush-l1-table",  "qcow2-flush-l1",        "qcow2-flush-done",
    "snapshot-tables",       "snapshot-header",
};

static int setup(void **state)
{
    strcpy(dir, "/tmp/hop-qcrash-XXXXXX");
    if (!mkdtemp(dir)) {
        return -1;
    }
    snprintf(img, sizeof(img), "%s/c.qcow2", dir);
    for (size_t i = 0; i < sizeof(base); i++) {
        base[i] = (uint8_t)(i * 31 + (i >> 12));
    }
    return 0;
}

static int teardown(void **state)
{
    unlink(img);
    return rmdir(dir);
}

/* 512-byte clusters: an L2 table maps 32 KiB and the first refcount table
 * covers 8 MiB of file, so a few MiB of writes reach every step. */
static void make_base_image(void)
{
    Error *err = NULL;
    assert_true(blk_create(img, "qcow2", DISK_SIZE, "cluster_size=512", &err));
    BlockDev *bs = blk_open(img, NULL, false, &err);
    assert_non_null(bs);
    assert_true(blk_pwrite(bs, 0, base, DISK_SIZE, &err));
    struct blk_snapshot sn = { .name = (char *)"base", .icount = -1 };
    assert_true(blk_snapshot_create(bs, &sn, &err));
    blk_close(bs);
}

static void die(Error *err)
{
    fprintf(stderr, "workload: %s\n", error_get_pretty(err));
    _exit(1);
}

static void workload(void)
{
    Error *err = NULL;
    BlockDev *bs = blk_open(img, NULL, false, &err);
    if (!bs) {
        die(err);
    }
    static uint8_t buf[3 << 20];
    memset(buf, 0xc3, sizeof(buf));
    /* copy-on-write of clusters shared with "base", partial clusters */
    for (uint64_t off = 1000; off < DISK_SIZE - 70000; off += 150000) {
        if (!blk_pwrite(bs, off, buf, 70000, &err) || !blk_flush(bs, &err)) {
            die(err);
        }
    }
    /* machine state: the L1 table grows and moves, the refcount table
     * outgrows its cluster */
    for (int i = 0; i < 4; i++) {
        if (!blk_vmstate_pwrite(bs, (uint64_t)i * sizeof(buf), buf, sizeof(buf),
                                &err) ||
            !blk_flush(bs, &err)) {
            die(err);
        }
    }
    struct blk_snapshot sn = { .name = (char *)"vm",
                               .icount = -1,
                               .vm_state_size = 4 * sizeof(buf) };
    if (!blk_snapshot_create(bs, &sn, &err) ||
        !blk_pwrite(bs, 4096, buf, 8192, &err) ||
        !blk_snapshot_delete(bs, "vm", &err) ||
        !blk_snapshot_apply(bs, "base", &err) ||
        !blk_pwrite(bs, 0, buf, 100, &err) || !blk_flush(bs, &err)) {
        die(err);
    }
    blk_close(bs);
    _exit(0);
}

/* Run the workload in a child stopped at point (name or name@N);
 * returns the child's exit status. */
static int run_crashing(const char *point)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("HOP_FAULT", point, 1);
        fault_reload();
        workload();
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void assert_consistent(const char *point)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "qemu-img check '%s' >/dev/null 2>&1", img);
    int st = system(cmd);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (rc != 0 && rc != 3) {
        fail_msg("after a crash at %s, qemu-img check exits %d", point, rc);
    }
    Error *err = NULL;
    BlockDev *bs = blk_open(img, NULL, false, &err);
    if (!bs) {
        fail_msg("after a crash at %s: %s", point, error_get_pretty(err));
    }
    static uint8_t r[DISK_SIZE];
    assert_true(blk_snapshot_pread(bs, "base", 0, r, DISK_SIZE, &err));
    assert_memory_equal(r, base, DISK_SIZE);
    /* and the image keeps working */
    assert_true(blk_pwrite(bs, 512, r, 4096, &err));
    blk_close(bs);
    st = system(cmd);
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (rc != 0 && rc != 3) {
        fail_msg("after a crash at %s and a write, qemu-img check exits %d",
                 point, rc);
    }
}

static void test_workload_completes(void **state)
{
    make_base_image();
    assert_int_equal(run_crashing(""), 0);
    assert_consistent("nowhere");
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s'", img);
    assert_int_equal(system(cmd), 0); /* no crash: not even leaks */
}

static void test_crash_at_each_step(void **state)
{
    static const unsigned passes[] = { 1, 2, 5 };
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        for (size_t j = 0; j < sizeof(passes) / sizeof(passes[0]); j++) {
            char point[64];
            snprintf(point, sizeof(point), "%s@%u", points[i], passes[j]);
            make_base_image();
            int rc = run_crashing(point);
            if (rc != 99) {
                /* every step is reached at least once */
                if (j == 0) {
                    fail_msg("workload never reached %s (exit %d)", point, rc);
                }
                continue;
            }
            assert_consistent(point);
        }
    }
}

/* The same steps failing (as a write error would) instead of dying. */
static void test_failure_at_each_step(void **state)
{
    for (const struct fault_point *p = fault_points; p->name; p++) {
        if (!p->can_fail || !strstr(p->ops, "qcow2-vmstate")) {
            continue;
        }
        for (unsigned pass = 1; pass <= 5; pass += 2) {
            char point[80];
            snprintf(point, sizeof(point), "%s@%u:fail", p->name, pass);
            make_base_image();
            int rc = run_crashing(point);
            if (rc == 0 && pass == 1) {
                fail_msg("workload never failed at %s", point);
            }
            assert_consistent(point);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workload_completes),
        cmocka_unit_test(test_crash_at_each_step),
        cmocka_unit_test(test_failure_at_each_step),
    };
    return cmocka_run_group_tests_name("qcow2 crash safety", tests, setup,
                                       teardown);
}
