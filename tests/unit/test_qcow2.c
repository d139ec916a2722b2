/* The qcow2 driver against an in-memory model of the disk and against
 * qemu-img (check, compare, convert -l) as the outside judge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/block.h"
#include "util/be.h"

struct fixture {
    char dir[64];
    char img[128];
    char raw[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/hop-qcow2-XXXXXX");
    if (!f || !mkdtemp(f->dir)) {
        return -1;
    }
    snprintf(f->img, sizeof(f->img), "%s/t.qcow2", f->dir);
    snprintf(f->raw, sizeof(f->raw), "%s/t.raw", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) {
        return -1;
    }
    free(f);
    return 0;
}

/* Run a shell command, return its exit status. */
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* qemu-io reads that must all succeed and match their pattern (-P). */
static void qemu_io_verify(const char *img, const char *cmds, int nreads)
{
    assert_int_equal(sh("out=$(qemu-io %s '%s') && "
                        "! printf '%%s' \"$out\" | grep -q failed && "
                        "[ $(printf '%%s\\n' \"$out\" | grep -c '^read ') "
                        "-eq %d ]",
                        cmds, img, nreads),
                     0);
}

static BlockDev *must_open(const char *path, bool ro)
{
    Error *err = NULL;
    BlockDev *bs = blk_open(path, NULL, ro, &err);
    if (!bs) {
        fail_msg("%s", error_get_pretty(err));
    }
    return bs;
}

static void must_create(const char *path, uint64_t size, const char *opts)
{
    Error *err = NULL;
    if (!blk_create(path, "qcow2", size, opts, &err)) {
        fail_msg("%s", error_get_pretty(err));
    }
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random writes of random lengths (crossing cluster and L2 boundaries),
 * mirrored in a model; hop must read the model back and qemu-img must
 * agree with it and find the image clean. */
static void random_writes(struct fixture *f, const char *opts, uint64_t size,
                          int rounds)
{
    must_create(f->img, size, opts);
    uint8_t *model = calloc(1, size);
    uint8_t *buf = malloc(size);
    BlockDev *bs = must_open(f->img, false);
    Error *err = NULL;
    for (int i = 0; i < rounds; i++) {
        uint64_t off = rnd() % size;
        uint64_t len = 1 + rnd() % (size / 8);
        if (len > size - off) {
            len = size - off;
        }
        memset(buf, (int)(i + 1), len);
        buf[0] = (uint8_t)rnd();
        assert_true(blk_pwrite(bs, off, buf, len, &err));
        memcpy(model + off, buf, len);
        if (i % 7 == 0) {
            assert_true(blk_flush(bs, &err));
        }
    }
    assert_true(blk_pread(bs, 0, buf, size, &err));
    assert_memory_equal(buf, model, size);
    blk_close(bs);
    write_file(f->raw, model, size);
    assert_int_equal(sh("qemu-img check -q '%s'", f->img), 0);
    assert_int_equal(sh("qemu-img compare -q '%s' '%s'", f->raw, f->img), 0);
    free(model);
    free(buf);
}

static void test_random_writes_default(void **state)
{
    random_writes(*state, NULL, 4 << 20, 60);
}

static void test_random_writes_small_clusters(void **state)
{
    /* 512-byte clusters: an L2 table maps 32 KiB, a refcount block 256
     * clusters, so writes cross both boundaries often. */
    random_writes(*state, "cluster_size=512", 1 << 20, 80);
}

static void test_random_writes_large_clusters(void **state)
{
    random_writes(*state, "cluster_size=2M", 8 << 20, 20);
}

/* The refcount table starts at one cluster; enough allocation makes it
 * grow (move), and qemu-img must still find every refcount. */
static void test_refcount_table_grows(void **state)
{
    struct fixture *f = *state;
    must_create(f->img, 12 << 20, "cluster_size=512");
    uint8_t head[64];
    int fd = open(f->img, O_RDONLY);
    assert_int_equal(pread(fd, head, sizeof(head), 0), sizeof(head));
    close(fd);
    uint32_t rt_clusters_before = be32_get(head + 56);
    BlockDev *bs = must_open(f->img, false);
    Error *err = NULL;
    size_t chunk = 1 << 20;
    uint8_t *buf = malloc(chunk);
    for (int i = 0; i < 12; i++) {
        memset(buf, 0x40 + i, chunk);
        assert_true(blk_pwrite(bs, (uint64_t)i * chunk, buf, chunk, &err));
    }
    blk_close(bs);
    fd = open(f->img, O_RDONLY);
    assert_int_equal(pread(fd, head, sizeof(head), 0), sizeof(head));
    close(fd);
    uint32_t rt_clusters_after = be32_get(head + 56);
    assert_true(rt_clusters_after > rt_clusters_before);
    assert_int_equal(sh("qemu-img check -q '%s'", f->img), 0);
    bs = must_open(f->img, true);
    for (int i = 0; i < 12; i++) {
        assert_true(blk_pread(bs, (uint64_t)i * chunk, buf, chunk, &err));
        assert_int_equal(buf[0], 0x40 + i);
        assert_int_equal(buf[chunk - 1], 0x40 + i);
    }
    blk_close(bs);
    free(buf);
}

/* After a snapshot, writes copy the shared clusters: the snapshot keeps
 * the old data (qemu-img convert -l is the judge), the active layer the
 * new, and the COPIED flags satisfy qemu-img check. */
static void test_cow_after_snapshot(void **state)
{
    struct fixture *f = *state;
    uint64_t size = 2 << 20;
    must_create(f->img, size, NULL);
    uint8_t *a = malloc(size), *b = malloc(size), *r = malloc(size);
    for (uint64_t i = 0; i < size; i++) {
        a[i] = (uint8_t)(i * 7 + 3);
    }
    BlockDev *bs = must_open(f->img, false);
    Error *err = NULL;
    assert_true(blk_pwrite(bs, 0, a, size, &err));
    struct blk_snapshot sn = { .name = (char *)"before",
                               .date_sec = 1700000000,
                               .date_nsec = 5,
                               .vm_clock_nsec = 1234567890,
                               .icount = -1 };
    assert_true(blk_snapshot_create(bs, &sn, &err));
    memcpy(b, a, size);
    memset(b + 100000, 0xee, 70000); /* partial clusters both ends */
    assert_true(blk_pwrite(bs, 100000, b + 100000, 70000, &err));
    assert_true(blk_pread(bs, 0, r, size, &err));
    assert_memory_equal(r, b, size);
    assert_true(blk_snapshot_pread(bs, "before", 0, r, size, &err));
    assert_memory_equal(r, a, size);
    blk_close(bs);
    assert_int_equal(sh("qemu-img check -q '%s'", f->img), 0);
    assert_int_equal(sh("qemu-img convert -O raw -l snapshot.name=before "
                        "'%s' '%s'",
                        f->img, f->raw),
                     0);
    FILE *fp = fopen(f->raw, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(r, 1, size, fp), size);
    fclose(fp);
    assert_memory_equal(r, a, size);
    write_file(f->raw, b, size);
    assert_int_equal(sh("qemu-img compare -q '%s' '%s'", f->raw, f->img), 0);
    free(a);
    free(b);
    free(r);
}

/* Reverting and deleting: apply brings the old disk back; deleting the
 * snapshot leaves an image with nothing leaked. */
static void test_apply_and_delete(void **state)
{
    struct fixture *f = *state;
    uint64_t size = 1 << 20;
    must_create(f->img, size, "cluster_size=4096");
    uint8_t *a = malloc(size), *r = malloc(size);
    memset(a, 0x5a, size);
    BlockDev *bs = must_open(f->img, false);
    Error *err = NULL;
    assert_true(blk_pwrite(bs, 0, a, size / 2, &err));
    struct blk_snapshot sn = { .name = (char *)"s1", .icount = -1 };
    assert_true(blk_snapshot_create(bs, &sn, &err));
    sn.name = (char *)"s1";
    assert_false(blk_snapshot_create(bs, &sn, &err)); /* name taken */
    assert_non_null(strstr(error_get_pretty(err), "already exists"));
    error_free(err);
    err = NULL;
    memset(r, 0x77, size);
    assert_true(blk_pwrite(bs, 0, r, size, &err));
    assert_true(blk_snapshot_apply(bs, "1", &err)); /* by id */
    assert_true(blk_pread(bs, 0, r, size, &err));
    assert_memory_equal(r, a, size / 2);
    for (uint64_t i = size / 2; i < size; i++) {
        assert_int_equal(r[i], 0);
    }
    assert_true(blk_snapshot_delete(bs, "s1", &err));
    assert_false(blk_snapshot_delete(bs, "s1", &err));
    error_free(err);
    err = NULL;
    blk_close(bs);
    assert_int_equal(sh("qemu-img check '%s' >/dev/null", f->img), 0);
    assert_int_equal(sh("qemu-img snapshot -l '%s' | grep -q s1", f->img), 1);
    free(a);
    free(r);
}

/* Zero clusters made by qemu-io (-z) read as zeros, and a partial write
 * into one keeps the rest zero. */
static void test_zero_clusters(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(sh("qemu-img create -q -f qcow2 '%s' 1M && qemu-io -c "
                        "'write -P 0x33 0 256k' -c 'write -z 64k 128k' '%s' "
                        ">/dev/null",
                        f->img, f->img),
                     0);
    BlockDev *bs = must_open(f->img, false);
    Error *err = NULL;
    uint8_t *r = malloc(256 << 10);
    assert_true(blk_pread(bs, 0, r, 256 << 10, &err));
    for (size_t i = 0; i < (256 << 10); i++) {
        uint8_t want = (i >= (64 << 10) && i < (192 << 10)) ? 0 : 0x33;
        if (r[i] != want) {
            fail_msg("byte %zu is %#x, not %#x", i, r[i], want);
        }
    }
    uint8_t five[5] = { 1, 2, 3, 4, 5 };
    assert_true(blk_pwrite(bs, (64 << 10) + 1000, five, 5, &err));
    assert_true(blk_pread(bs, 64 << 10, r, 64 << 10, &err));
    for (size_t i = 0; i < (64 << 10); i++) {
        uint8_t want = (i >= 1000 && i < 1005) ? five[i - 1000] : 0;
        assert_int_equal(r[i], want);
    }
    blk_close(bs);
    assert_int_equal(sh("qemu-img check -q '%s'", f->img), 0);
    qemu_io_verify(f->img,
                   "-c 'read -P 0x1 66536 1' -c 'read -P 0 65536 "
                   "1000' -c 'read -P 0 66541 65531' -c 'read -P 0x33 0 64k'",
                   4);
    free(r);
}

/* Compressed clusters from qemu-img convert -c read back right, and
 * writing over one copies it out. */
static void test_compressed_read(void **state)
{
    struct fixture *f = *state;
    size_t size = 4 << 20;
    uint8_t *a = malloc(size), *r = malloc(size);
    for (size_t i = 0; i < size; i++) {
        a[i] = (uint8_t)("compressible text "[i % 18]);
    }
    write_file(f->raw, a, size);
    assert_int_equal(
        sh("qemu-img convert -c -O qcow2 '%s' '%s'", f->raw, f->img), 0);
    struct stat st;
    assert_int_equal(stat(f->img, &st), 0);
    assert_true((size_t)st.st_size < size / 4); /* really compressed */
    BlockDev *bs = must_open(f->img, false);
    Error *err = NULL;
    assert_true(blk_pread(bs, 0, r, size, &err));
    assert_memory_equal(r, a, size);
    memset(a + 1000, 0xab, 10);
    assert_true(blk_pwrite(bs, 1000, a + 1000, 10, &err));
    blk_close(bs);
    write_file(f->raw, a, size);
    assert_int_equal(sh("qemu-img check -q '%s'", f->img), 0);
    assert_int_equal(sh("qemu-img compare -q '%s' '%s'", f->raw, f->img), 0);
    free(a);
    free(r);
}

/* Version 2 images open, take writes and snapshots. */
static void test_version2(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(
        sh("qemu-img create -q -f qcow2 -o compat=0.10 '%s' 1M", f->img), 0);
    BlockDev *bs = must_open(f->img, false);
    struct blk_info info;
    blk_get_info(bs, &info);
    assert_string_equal(info.compat, "0.10");
    Error *err = NULL;
    uint8_t buf[4096];
    memset(buf, 0x99, sizeof(buf));
    assert_true(blk_pwrite(bs, 8192, buf, sizeof(buf), &err));
    struct blk_snapshot sn = { .name = (char *)"v2snap", .icount = -1 };
    assert_true(blk_snapshot_create(bs, &sn, &err));
    memset(buf, 0x11, sizeof(buf));
    assert_true(blk_pwrite(bs, 8192, buf, sizeof(buf), &err));
    blk_close(bs);
    assert_int_equal(sh("qemu-img check -q '%s'", f->img), 0);
    qemu_io_verify(f->img, "-c 'read -P 0x11 8192 4096'", 1);
}

/* The vmstate area: written before the snapshot, read back from it; the
 * active layer no longer holds it afterwards (as QEMU does). */
static void test_vmstate_area(void **state)
{
    struct fixture *f = *state;
    must_create(f->img, 3 << 20, NULL);
    size_t len = (5 << 20) + 12345;
    uint8_t *a = malloc(len), *r = malloc(len);
    for (size_t i = 0; i < len; i++) {
        a[i] = (uint8_t)(i ^ (i >> 9));
    }
    BlockDev *bs = must_open(f->img, false);
    Error *err = NULL;
    size_t half = len / 2 + 3;
    assert_true(blk_vmstate_pwrite(bs, 0, a, half, &err));
    assert_true(blk_vmstate_pwrite(bs, half, a + half, len - half, &err));
    assert_true(blk_vmstate_pread(bs, NULL, 0, r, len, &err));
    assert_memory_equal(r, a, len);
    struct blk_snapshot sn = { .name = (char *)"vm",
                               .vm_state_size = len,
                               .date_sec = 1700000000,
                               .icount = -1 };
    assert_true(blk_snapshot_create(bs, &sn, &err));
    memset(r, 1, len);
    assert_true(blk_vmstate_pread(bs, "vm", 0, r, len, &err));
    assert_memory_equal(r, a, len);
    assert_false(blk_vmstate_pread(bs, "vm", 1, r, len, &err)); /* past it */
    error_free(err);
    err = NULL;
    assert_true(blk_vmstate_pread(bs, NULL, 0, r, 4096, &err));
    for (int i = 0; i < 4096; i++) {
        assert_int_equal(r[i], 0);
    }
    blk_close(bs);
    assert_int_equal(sh("qemu-img check -q '%s'", f->img), 0);
    /* qemu-img reports the state's size: 5.01 MiB */
    assert_int_equal(sh("qemu-img info --output=json '%s' | grep -q "
                        "'\"vm-state-size\": %zu'",
                        f->img, len),
                     0);
    free(a);
    free(r);
}

/* Where the vmstate area starts: the first guest offset an L1 entry maps
 * past the disk (64 MiB disk, 64 KiB clusters: 512 MiB).  Growing the
 * virtual disk with qemu-img makes the area plain guest data that qemu-io
 * reads, which locates it independently of hop. */
static void vmstate_at(struct fixture *f, const char *opts, uint64_t disk,
                       uint64_t want_offset)
{
    must_create(f->img, disk, opts);
    BlockDev *bs = must_open(f->img, false);
    Error *err = NULL;
    uint8_t buf[65536];
    memset(buf, 0xab, sizeof(buf));
    assert_true(blk_vmstate_pwrite(bs, 0, buf, sizeof(buf), &err));
    blk_close(bs);
    assert_int_equal(sh("qemu-img check -q '%s' && qemu-img resize -q '%s' "
                        "%llu",
                        f->img, f->img,
                        (unsigned long long)(want_offset + (1 << 20))),
                     0);
    char cmds[256];
    snprintf(cmds, sizeof(cmds),
             "-c 'read -P 0xab %llu 65536' -c 'read -P 0 "
             "%llu 512'",
             (unsigned long long)want_offset,
             (unsigned long long)want_offset - 512);
    qemu_io_verify(f->img, cmds, 2);
}

static void test_vmstate_offset(void **state)
{
    vmstate_at(*state, NULL, 64 << 20, 512 << 20);
    vmstate_at(*state, "cluster_size=512", 100000, 131072);
    vmstate_at(*state, "cluster_size=4096", 2 << 20, 2 << 20);
}

/* Raw images have no snapshots: a clear error, not a crash. */
static void test_raw_has_no_snapshots(void **state)
{
    struct fixture *f = *state;
    Error *err = NULL;
    assert_true(blk_create(f->raw, "raw", 1 << 20, NULL, &err));
    BlockDev *bs = must_open(f->raw, false);
    struct blk_snapshot sn = { .name = (char *)"x" };
    assert_false(blk_snapshot_create(bs, &sn, &err));
    assert_non_null(
        strstr(error_get_pretty(err), "does not support snapshots"));
    error_free(err);
    err = NULL;
    assert_false(blk_vmstate_pwrite(bs, 0, "x", 1, &err));
    error_free(err);
    blk_close(bs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_random_writes_default, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_random_writes_small_clusters,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_writes_large_clusters,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_refcount_table_grows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cow_after_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_clusters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compressed_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vmstate_area, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vmstate_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_has_no_snapshots, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("qcow2", tests, NULL, NULL);
}
