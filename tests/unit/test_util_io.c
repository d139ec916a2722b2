/* util/io.h: whole reads and writes, and mkdir -p; util/be.h: big-endian
 * loads and stores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/be.h"
#include "util/io.h"

static char dir[] = "/tmp/hop-test-io-XXXXXX";

static int setup(void **state)
{
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static int open_file(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    return fd;
}

/* A read past the end returns what the file has; a write at an offset
 * fills it in; errors come back with errno. */
static void test_pread_pwrite(void **state)
{
    int fd = open_file("rw");
    uint8_t data[10000], back[12000];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 7);
    }
    assert_true(io_pwrite_full(fd, data, sizeof(data), 100));
    memset(back, 0xaa, sizeof(back));
    assert_int_equal(io_pread_full(fd, back, sizeof(back), 100), sizeof(data));
    assert_memory_equal(back, data, sizeof(data));
    assert_int_equal(io_pread_full(fd, back, 16, 1 << 20), 0);
    assert_true(io_pwrite_full(fd, data, 0, 0));
    close(fd);
    assert_int_equal(io_pread_full(fd, back, 16, 0), -1);
    assert_int_equal(errno, EBADF);
    assert_false(io_pwrite_full(fd, data, 16, 0));
    assert_int_equal(errno, EBADF);
}

/* More elements than one pwritev takes are written in batches. */
static void test_pwritev_batches(void **state)
{
    int fd = open_file("vec");
    int n = IOV_MAX + 100;
    struct iovec *iov = calloc((size_t)n, sizeof(*iov));
    uint8_t *bytes = malloc((size_t)n);
    assert_non_null(iov);
    assert_non_null(bytes);
    for (int i = 0; i < n; i++) {
        bytes[i] = (uint8_t)i;
        iov[i] = (struct iovec){ .iov_base = bytes + i, .iov_len = 1 };
    }
    assert_true(io_pwritev_full(fd, iov, n, 5));
    uint8_t *back = malloc((size_t)n);
    assert_non_null(back);
    assert_int_equal(io_pread_full(fd, back, (size_t)n, 5), n);
    assert_memory_equal(back, bytes, (size_t)n);
    free(back);
    free(bytes);
    free(iov);
    close(fd);
}

/* A vector reaches the other end of a stream socket whole; a vanished
 * peer is EPIPE, not SIGPIPE. */
static void test_writev_socket(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char a[] = "one ", b[] = "two ", c[] = "three";
    struct iovec iov[] = {
        { a, strlen(a) },
        { b, strlen(b) },
        { c, strlen(c) },
    };
    assert_true(io_writev_full(sv[0], iov, 3, true));
    char back[32] = { 0 };
    assert_int_equal(io_pread_full(sv[1], back, 13, 0), -1); /* ESPIPE */
    assert_int_equal(read(sv[1], back, sizeof(back) - 1), 13);
    assert_string_equal(back, "one two three");
    close(sv[1]);
    struct iovec one = { a, strlen(a) };
    assert_false(io_writev_full(sv[0], &one, 1, true));
    assert_int_equal(errno, EPIPE);
    close(sv[0]);
}

/* Every missing parent is made; what exists is fine; a file in the way is
 * named in the error. */
static void test_mkdir_p(void **state)
{
    char path[256], file[256];
    Error *err = NULL;
    snprintf(path, sizeof(path), "%s/a/b//c/", dir);
    assert_true(mkdir_p(path, 0700, &err));
    assert_true(mkdir_p(path, 0700, &err));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);

    close(open_file("f"));
    snprintf(file, sizeof(file), "%s/f", dir);
    snprintf(path, sizeof(path), "%s/f/g/h", dir);
    assert_false(mkdir_p(path, 0700, &err));
    char want[300];
    snprintf(want, sizeof(want), "cannot create directory '%s/f/g': ", dir);
    assert_non_null(strstr(error_get_pretty(err), want));
    error_free(err);
    err = NULL;
    assert_false(mkdir_p("", 0700, &err));
    error_free(err);
}

static void test_be(void **state)
{
    uint8_t b[8];
    be64_put(b, 0x0102030405060708ull);
    assert_memory_equal(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_int_equal(be64_get(b), 0x0102030405060708ull);
    assert_int_equal(be32_get(b + 1), 0x02030405u);
    assert_int_equal(be16_get(b + 6), 0x0708);
    be32_put(b, 0xfffefdfcu);
    be16_put(b + 4, 0x8001);
    assert_memory_equal(b, "\xff\xfe\xfd\xfc\x80\x01", 6);
    assert_int_equal(be32_get(b), 0xfffefdfcu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pread_pwrite),
        cmocka_unit_test(test_pwritev_batches),
        cmocka_unit_test(test_writev_socket),
        cmocka_unit_test(test_mkdir_p),
        cmocka_unit_test(test_be),
    };
    return cmocka_run_group_tests_name("util io", tests, setup, teardown);
}
