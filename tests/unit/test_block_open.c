/* What the block layer guarantees around opening and creating images:
 * create never clobbers an existing file when it refuses. */
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

static int setup(void **state)
{
    strcpy(dir, "/tmp/hop-bopen-XXXXXX");
    if (!mkdtemp(dir)) {
        return -1;
    }
    snprintf(img, sizeof(img), "%s/l.qcow2", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(img);
    return rmdir(dir);
}

static void create_qcow2(void)
{
    Error *err = NULL;
    unlink(img);
    assert_true(blk_create(img, "qcow2", 1 << 20, NULL, &err));
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
    expect_create_refused("qcow2", 1ULL << 62, "cluster_size=2M",
                          "too large");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_keeps_existing_file, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("block open", tests, NULL, NULL);
}
