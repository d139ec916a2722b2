/* qcow2 images over a backing file: reads fall through to it, writes
 * allocate (copying its data around a partial write), zero clusters hide
 * it, chains of several, and hostile headers (a missing file, a loop, a
 * chain too deep, names too long or out of place) refused with one line
 * naming the image and the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "util/be.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/hop-qback-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static char *path(const char *name)
{
    static char bufs[4][256];
    static int next;
    char *p = bufs[next++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

static void create(const char *name, uint64_t size, const char *opts)
{
    Error *err = NULL;
    if (!blk_create(path(name), "qcow2", size, opts, &err)) {
        fail_msg("create %s: %s", name, error_get_pretty(err));
    }
}

static BlockDev *open_rw(const char *name)
{
    Error *err = NULL;
    BlockDev *bs = blk_open(path(name), NULL, false, &err);
    if (!bs) {
        fail_msg("open %s: %s", name, error_get_pretty(err));
    }
    return bs;
}

static void fill(const char *name, uint64_t off, int byte, size_t len)
{
    BlockDev *bs = open_rw(name);
    uint8_t *buf = malloc(len);
    memset(buf, byte, len);
    Error *err = NULL;
    assert_true(blk_pwrite(bs, off, buf, len, &err));
    free(buf);
    blk_close(bs);
}

/* Every byte of [off, off + len) is byte. */
static void expect_bytes(BlockDev *bs, uint64_t off, int byte, size_t len)
{
    uint8_t *buf = malloc(len);
    Error *err = NULL;
    if (!blk_pread(bs, off, buf, len, &err)) {
        fail_msg("read at %llu: %s", (unsigned long long)off,
                 error_get_pretty(err));
    }
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != byte) {
            fail_msg("byte %llu is %#x, expected %#x",
                     (unsigned long long)(off + i), buf[i], byte);
        }
    }
    free(buf);
}

/* Runs "PROG 'file'" (quiet); it must succeed. */
static void run_ok(const char *prog, const char *file)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s '%s' >/dev/null", prog, file);
    if (system(cmd) != 0) {
        fail_msg("failed: %s", cmd);
    }
}

/* qemu-io reads file with the pattern checks of cmds; all of them pass. */
static void qemu_reads(const char *file, const char *cmds)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "out=$(qemu-io -r %s '%s' 2>&1) && ! printf '%%s' \"$out\" | "
             "grep -q 'verification failed'",
             cmds, file);
    if (system(cmd) != 0) {
        fail_msg("qemu-io found other data: %s", cmd);
    }
}

static const char *over_base = "backing_file=base.qcow2,backing_fmt=qcow2";

static void test_reads_fall_through(void **state)
{
    (void)state;
    create("base.qcow2", 4 << 20, NULL);
    fill("base.qcow2", 0, 0xab, 1 << 20);
    create("top.qcow2", 4 << 20, over_base);
    fill("top.qcow2", 512 << 10, 0x11, 4096);
    BlockDev *bs = open_rw("top.qcow2");
    expect_bytes(bs, 0, 0xab, 512 << 10);
    expect_bytes(bs, 512 << 10, 0x11, 4096);
    /* The rest of the written cluster came from the backing file. */
    expect_bytes(bs, (512 << 10) + 4096, 0xab, (64 << 10) - 4096);
    expect_bytes(bs, 1 << 20, 0, 3 << 20);
    struct blk_info info;
    blk_get_info(bs, &info);
    assert_string_equal(info.backing_file, "base.qcow2");
    assert_string_equal(info.full_backing_file, path("base.qcow2"));
    assert_string_equal(info.backing_format, "qcow2");
    assert_int_equal(info.backing_depth, 1);
    bool alloc;
    uint64_t n;
    Error *err = NULL;
    assert_true(blk_is_allocated(bs, 0, 4 << 20, &alloc, &n, &err));
    assert_false(alloc);
    assert_int_equal(n, 512 << 10);
    assert_true(
        blk_is_allocated(bs, 512 << 10, 4 << 20 >> 1, &alloc, &n, &err));
    assert_true(alloc);
    assert_int_equal(n, 64 << 10);
    blk_close(bs);
    /* The base is untouched; QEMU reads the same through the chain. */
    qemu_reads(path("base.qcow2"),
               "-c 'read -P 0xab 0 1M' -c 'read -P 0 1M 3M'");
    qemu_reads(path("top.qcow2"),
               "-c 'read -P 0xab 0 512k' "
               "-c 'read -P 0x11 512k 4k' "
               "-c 'read -P 0xab 516k 60k'");
    run_ok("qemu-img check -q", path("top.qcow2"));
}

/* A zero cluster in the top image reads as zeros, not as the backing
 * file's data; a partial write into it keeps zeros around the data. */
static void test_zero_cluster_hides_backing(void **state)
{
    (void)state;
    create("base.qcow2", 1 << 20, NULL);
    fill("base.qcow2", 0, 0xcd, 1 << 20);
    create("top.qcow2", 1 << 20, over_base);
    run_ok("qemu-io -c 'write -z 0 128k'", path("top.qcow2"));
    BlockDev *bs = open_rw("top.qcow2");
    expect_bytes(bs, 0, 0, 128 << 10);
    expect_bytes(bs, 128 << 10, 0xcd, 64 << 10);
    uint8_t b[512];
    memset(b, 0x77, sizeof(b));
    Error *err = NULL;
    assert_true(blk_pwrite(bs, 1024, b, sizeof(b), &err));
    expect_bytes(bs, 0, 0, 1024);
    expect_bytes(bs, 1024, 0x77, 512);
    expect_bytes(bs, 1536, 0, (128 << 10) - 1536);
    blk_close(bs);
    run_ok("qemu-img check -q", path("top.qcow2"));
}

/* raw under qcow2 under qcow2, named relative to each image's directory;
 * a backing file shorter than the disk reads zeros past its end. */
static void test_chain_of_three(void **state)
{
    (void)state;
    assert_int_equal(mkdir(path("sub"), 0755), 0);
    Error *err = NULL;
    assert_true(blk_create(path("base.raw"), "raw", 1 << 20, NULL, &err));
    BlockDev *raw = blk_open(path("base.raw"), "raw", false, &err);
    uint8_t b[65536];
    memset(b, 0x5a, sizeof(b));
    assert_true(blk_pwrite(raw, (1 << 20) - sizeof(b), b, sizeof(b), &err));
    blk_close(raw);
    create("sub/mid.qcow2", 2 << 20,
           "backing_file=../base.raw,backing_fmt=raw");
    fill("sub/mid.qcow2", 0, 0x01, 4096);
    create("top.qcow2", 2 << 20,
           "backing_file=sub/mid.qcow2,backing_fmt=qcow2");
    BlockDev *bs = open_rw("top.qcow2");
    expect_bytes(bs, 0, 0x01, 4096);
    expect_bytes(bs, 4096, 0, (1 << 20) - 65536 - 4096);
    expect_bytes(bs, (1 << 20) - 65536, 0x5a, 65536);
    expect_bytes(bs, 1 << 20, 0, 1 << 20); /* past base.raw's end */
    /* A write straddling the end of base.raw copies what it has. */
    memset(b, 0x22, 512);
    assert_true(blk_pwrite(bs, (1 << 20) - 256, b, 512, &err));
    expect_bytes(bs, (1 << 20) - 65536, 0x5a, 65536 - 256);
    expect_bytes(bs, (1 << 20) - 256, 0x22, 512);
    expect_bytes(bs, (1 << 20) + 256, 0, (1 << 20) - 256);
    struct blk_info info;
    blk_get_info(bs, &info);
    assert_int_equal(info.backing_depth, 2);
    blk_close(bs);
    /* QEMU reads the same through the chain. */
    qemu_reads(path("top.qcow2"),
               "-c 'read -P 1 0 4k' "
               "-c 'read -P 0 4k 978944' "
               "-c 'read -P 0x5a 983040 65280' "
               "-c 'read -P 0x22 1048320 512' "
               "-c 'read -P 0 1048832 1048320'");
    run_ok("qemu-img check -q", path("top.qcow2"));
}

/* Internal snapshots of an image over a backing file: the backing data
 * shows in the snapshot and after reverting to it. */
static void test_snapshots_over_backing(void **state)
{
    (void)state;
    create("base.qcow2", 1 << 20, NULL);
    fill("base.qcow2", 0, 0xab, 1 << 20);
    create("top.qcow2", 1 << 20, over_base);
    BlockDev *bs = open_rw("top.qcow2");
    Error *err = NULL;
    uint8_t b[4096];
    memset(b, 0x10, sizeof(b));
    assert_true(blk_pwrite(bs, 0, b, sizeof(b), &err));
    struct blk_snapshot sn = { .name = (char *)"s1", .icount = -1 };
    assert_true(blk_snapshot_create(bs, &sn, &err));
    memset(b, 0x20, sizeof(b));
    assert_true(blk_pwrite(bs, 0, b, sizeof(b), &err));
    assert_true(blk_pwrite(bs, 8192, b, sizeof(b), &err));
    assert_true(blk_snapshot_pread(bs, "s1", 8192, b, sizeof(b), &err));
    assert_int_equal(b[0], 0xab);
    assert_true(blk_snapshot_apply(bs, "s1", &err));
    expect_bytes(bs, 0, 0x10, 4096);
    expect_bytes(bs, 4096, 0xab, (1 << 20) - 4096);
    blk_close(bs);
    run_ok("qemu-img check -q", path("top.qcow2"));
}

/* Writes name and its length into the header of top.qcow2 (made over
 * base.qcow2): offset and size fields as given. */
static void set_backing_fields(uint64_t off, uint32_t size)
{
    int fd = open(path("top.qcow2"), O_RDWR);
    assert_true(fd >= 0);
    uint8_t f[12];
    be64_put(f, off);
    be32_put(f + 8, size);
    assert_int_equal(pwrite(fd, f, sizeof(f), 8), sizeof(f));
    close(fd);
}

static void set_backing_name(const char *name)
{
    int fd = open(path("top.qcow2"), O_RDWR);
    uint8_t f[12];
    assert_int_equal(pread(fd, f, sizeof(f), 8), sizeof(f));
    size_t n = strlen(name);
    assert_int_equal(pwrite(fd, name, n, (off_t)be64_get(f)), (ssize_t)n);
    be32_put(f + 8, (uint32_t)n);
    assert_int_equal(pwrite(fd, f + 8, 4, 16), 4);
    close(fd);
}

static void expect_refusal(const char *name, const char *fragment)
{
    Error *err = NULL;
    BlockDev *bs = blk_open(path(name), NULL, true, &err);
    if (bs) {
        blk_close(bs);
        fail_msg("%s opened; expected an error containing '%s'", name,
                 fragment);
    }
    const char *msg = error_get_pretty(err);
    if (!strstr(msg, fragment)) {
        fail_msg("error '%s' does not contain '%s'", msg, fragment);
    }
    assert_null(strchr(msg, '\n'));
    char quoted[300];
    snprintf(quoted, sizeof(quoted), "'%s': ", path(name));
    if (strncmp(msg, quoted, strlen(quoted)) != 0) {
        fail_msg("error '%s' does not start with the image's name", msg);
    }
    error_free(err);
}

static void test_missing_backing_file(void **state)
{
    (void)state;
    create("base.qcow2", 1 << 20, NULL);
    create("top.qcow2", 1 << 20, over_base);
    assert_int_equal(unlink(path("base.qcow2")), 0);
    expect_refusal("top.qcow2",
                   "backing file 'base.qcow2' of '/tmp/hop-qback-");
    expect_refusal("top.qcow2", "No such file or directory");
}

static void test_loops_refused(void **state)
{
    (void)state;
    /* Itself. */
    create("base.qcow2", 1 << 20, NULL);
    create("top.qcow2", 1 << 20, over_base);
    set_backing_name("top.qcow2");
    expect_refusal("top.qcow2", "the backing chain loops");
    /* a -> b -> a, through a hard link's other name, too. */
    create("a.qcow2", 1 << 20, "backing_file=b.qcow2,backing_fmt=qcow2");
    /* b does not exist yet: create it over base, then point it at a. */
    create("b.qcow2", 1 << 20, "backing_file=base.qcow2,backing_fmt=qcow2");
    assert_int_equal(link(path("a.qcow2"), path("alias.qcow2")), 0);
    int fd = open(path("b.qcow2"), O_RDWR);
    uint8_t f[12];
    assert_int_equal(pread(fd, f, sizeof(f), 8), sizeof(f));
    const char *n = "alias.qcow2";
    assert_int_equal(pwrite(fd, n, strlen(n), (off_t)be64_get(f)),
                     (ssize_t)strlen(n));
    be32_put(f + 8, (uint32_t)strlen(n));
    assert_int_equal(pwrite(fd, f + 8, 4, 16), 4);
    close(fd);
    expect_refusal("a.qcow2", "backing file 'alias.qcow2' of '");
    expect_refusal("a.qcow2", "again: the backing chain loops");
    expect_refusal("b.qcow2", "the backing chain loops");
}

/* A FIFO named as backing file must not hang the open (nobody writes
 * it); a directory is no image either. */
static void test_backing_not_a_file(void **state)
{
    (void)state;
    create("base.qcow2", 1 << 20, NULL);
    create("top.qcow2", 1 << 20, over_base);
    assert_int_equal(mkfifo(path("fifo"), 0644), 0);
    set_backing_name("fifo");
    expect_refusal("top.qcow2", "fifo' is neither a file nor a block device");
    set_backing_name("sub");
    expect_refusal("top.qcow2", "sub' is neither a file nor a block device");
}

static void test_chain_too_deep(void **state)
{
    (void)state;
    char name[32], opts[96];
    create("d0.qcow2", 1 << 20, "cluster_size=512");
    for (int i = 1; i <= BLK_MAX_BACKING_DEPTH + 1; i++) {
        snprintf(name, sizeof(name), "d%d.qcow2", i);
        snprintf(opts, sizeof(opts),
                 "cluster_size=512,backing_file=d%d.qcow2,backing_fmt=qcow2",
                 i - 1);
        create(name, 1 << 20, opts);
    }
    /* As deep as allowed: it opens and reads. */
    snprintf(name, sizeof(name), "d%d.qcow2", BLK_MAX_BACKING_DEPTH);
    BlockDev *bs = open_rw(name);
    expect_bytes(bs, 0, 0, 4096);
    blk_close(bs);
    snprintf(name, sizeof(name), "d%d.qcow2", BLK_MAX_BACKING_DEPTH + 1);
    expect_refusal(name, "the backing chain is deeper than 64 images");
}

static void test_bad_name_fields(void **state)
{
    (void)state;
    create("base.qcow2", 1 << 20, NULL);
    create("top.qcow2", 1 << 20, over_base);
    int fd = open(path("top.qcow2"), O_RDWR);
    uint8_t f[12];
    assert_int_equal(pread(fd, f, sizeof(f), 8), sizeof(f));
    close(fd);
    uint64_t off = be64_get(f);
    set_backing_fields(off, 5000);
    expect_refusal("top.qcow2", "too long (backing_file_size; at most 1023)");
    set_backing_fields(off, 1023); /* long enough, but zeros: NUL bytes */
    expect_refusal("top.qcow2", "holds a NUL byte (backing_file_offset)");
    set_backing_fields(1 << 16, 10);
    expect_refusal("top.qcow2", "is not within the header cluster");
    set_backing_fields(UINT64_MAX - 4, 10);
    expect_refusal("top.qcow2", "(backing_file_offset)");
    set_backing_fields(40, 10); /* inside the fixed header */
    expect_refusal("top.qcow2", "after the header (backing_file_offset)");
    set_backing_fields((64 << 10) - 8, 10); /* runs past the cluster */
    expect_refusal("top.qcow2", "is not within the header cluster");
    /* An empty name is no backing file (as QEMU reads it). */
    set_backing_fields(off, 0);
    BlockDev *bs = open_rw("top.qcow2");
    struct blk_info info;
    blk_get_info(bs, &info);
    assert_null(info.backing_file);
    blk_close(bs);
}

/* The backing format extension: unknown formats and overlong or
 * NUL-holding names are refused. */
static void test_bad_backing_format(void **state)
{
    (void)state;
    create("base.qcow2", 1 << 20, NULL);
    create("top.qcow2", 1 << 20, over_base);
    int fd = open(path("top.qcow2"), O_RDWR);
    /* The extension comes first, right after the 112-byte header. */
    uint8_t ext[8];
    assert_int_equal(pread(fd, ext, 8, 112), 8);
    assert_int_equal(be32_get(ext), 0xe2792acau);
    assert_int_equal(pwrite(fd, "vmdk\0", 5, 120), 5);
    be32_put(ext + 4, 4);
    assert_int_equal(pwrite(fd, ext, 8, 112), 8);
    expect_refusal("top.qcow2",
                   "format 'vmdk' (backing format header extension) is not "
                   "one hop reads");
    be32_put(ext + 4, 6); /* "vmdk\0" + one more byte: holds a NUL */
    assert_int_equal(pwrite(fd, ext, 8, 112), 8);
    expect_refusal("top.qcow2", "backing format header extension of 6 bytes");
    be32_put(ext + 4, 0x7fffffff);
    assert_int_equal(pwrite(fd, ext, 8, 112), 8);
    expect_refusal("top.qcow2", "overruns the backing file name");
    close(fd);
    /* The format the header names is the one used: raw says raw. */
    create("top.qcow2", 1 << 20, "backing_file=base.qcow2,backing_fmt=raw");
    fill("base.qcow2", 0, 0x42, 512);
    BlockDev *bs = open_rw("top.qcow2");
    uint8_t magic[4];
    Error *err = NULL;
    assert_true(blk_pread(bs, 0, magic, 4, &err));
    assert_memory_equal(magic, "QFI\xfb", 4);
    blk_close(bs);
}

static void test_create_refusals(void **state)
{
    (void)state;
    Error *err = NULL;
    assert_false(blk_create(path("x.qcow2"), "qcow2", 1 << 20,
                            "backing_fmt=qcow2", &err));
    assert_non_null(strstr(error_get_pretty(err), "backing_fmt without"));
    error_free(err);
    err = NULL;
    assert_false(blk_create(path("x.qcow2"), "qcow2", 1 << 20,
                            "backing_file=base.qcow2", &err));
    assert_non_null(strstr(error_get_pretty(err), "without backing_fmt"));
    error_free(err);
    err = NULL;
    assert_false(blk_create(path("x.qcow2"), "qcow2", 1 << 20,
                            "backing_file=a,backing_fmt=vmdk", &err));
    assert_non_null(strstr(error_get_pretty(err), "backing_fmt 'vmdk'"));
    error_free(err);
    err = NULL;
    char opts[1200] = "cluster_size=512,backing_file=";
    memset(opts + strlen(opts), 'n', 600);
    strcat(opts, ",backing_fmt=raw");
    assert_false(blk_create(path("x.qcow2"), "qcow2", 1 << 20, opts, &err));
    assert_non_null(strstr(error_get_pretty(err), "does not fit the header"));
    error_free(err);
    assert_int_equal(access(path("x.qcow2"), F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_fall_through),
        cmocka_unit_test(test_zero_cluster_hides_backing),
        cmocka_unit_test(test_chain_of_three),
        cmocka_unit_test(test_snapshots_over_backing),
        cmocka_unit_test(test_missing_backing_file),
        cmocka_unit_test(test_loops_refused),
        cmocka_unit_test(test_backing_not_a_file),
        cmocka_unit_test(test_chain_too_deep),
        cmocka_unit_test(test_bad_name_fields),
        cmocka_unit_test(test_bad_backing_format),
        cmocka_unit_test(test_create_refusals),
    };
    return cmocka_run_group_tests_name("qcow2 backing files", tests, setup,
                                       teardown);
}
