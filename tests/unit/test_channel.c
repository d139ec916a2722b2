/* The byte channel: encodings, latched errors, counters, backends, the
 * rate limiter and the no-copy path for large writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmstate/channel.h"

static uint8_t *take(Channel *f, size_t *len)
{
    uint8_t *data = chan_mem_take(f, len);
    assert_true(chan_close(f, NULL));
    return data;
}

static void test_big_endian_round_trip(void **state)
{
    Channel *w = chan_new_mem_writer();
    chan_put_u8(w, 0x12);
    chan_put_be16(w, 0x3456);
    chan_put_be32(w, 0x789abcdeu);
    chan_put_be64(w, 0x0102030405060708ull);
    chan_put_counted_string(w, "pc.ram");
    chan_put_buffer(w, "xyz", 3);
    assert_int_equal(chan_tell(w), 1 + 2 + 4 + 8 + 7 + 3);
    size_t len;
    uint8_t *data = take(w, &len);
    assert_int_equal(len, 25);
    /* Big-endian on the wire, byte for byte. */
    static const uint8_t head[] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc,
                                    0xde, 1,    2,    3,    4,    5,
                                    6,    7,    8,    6,    'p',  'c' };
    assert_memory_equal(data, head, sizeof(head));

    Channel *r = chan_new_mem_reader(data, len, "test");
    assert_int_equal(chan_get_u8(r), 0x12);
    assert_int_equal(chan_get_be16(r), 0x3456);
    assert_int_equal(chan_get_be32(r), 0x789abcdeu);
    assert_true(chan_get_be64(r) == 0x0102030405060708ull);
    char s[256];
    assert_true(chan_get_counted_string(r, s));
    assert_string_equal(s, "pc.ram");
    char b[3];
    assert_true(chan_get_buffer(r, b, 3));
    assert_memory_equal(b, "xyz", 3);
    assert_true(chan_at_eof(r));
    assert_int_equal(chan_tell(r), 25);
    assert_true(chan_close(r, NULL));
    free(data);
}

static void test_short_read_latches_with_offset(void **state)
{
    static const uint8_t data[] = { 0, 0, 0, 7, 0xaa };
    Channel *r = chan_new_mem_reader(data, sizeof(data), "short.bin");
    assert_int_equal(chan_get_be32(r), 7);
    assert_false(chan_has_error(r));
    /* Asks for 4 bytes where 1 is left. */
    assert_int_equal(chan_get_be32(r), 0);
    assert_true(chan_has_error(r));
    const char *msg = chan_error_msg(r);
    assert_non_null(strstr(msg, "short.bin"));
    assert_non_null(strstr(msg, "offset 4"));
    /* Later reads return zeros and keep the first error. */
    assert_int_equal(chan_get_u8(r), 0);
    assert_string_equal(chan_error_msg(r), msg);
    Error *err = NULL;
    assert_false(chan_close(r, &err));
    assert_non_null(strstr(error_get_pretty(err), "offset 4"));
    error_free(err);
}

static void test_first_error_wins(void **state)
{
    Channel *w = chan_new_mem_writer();
    chan_set_error(w, "first: %d", 1);
    chan_set_error(w, "second");
    chan_put_be32(w, 5); /* dropped */
    assert_string_equal(chan_error_msg(w), "first: 1");
    size_t len;
    uint8_t *data = chan_mem_take(w, &len);
    assert_int_equal(len, 0);
    free(data);
    Error *err = NULL;
    assert_false(chan_close(w, &err));
    assert_string_equal(error_get_pretty(err), "first: 1");
    error_free(err);
}

static void test_long_string_rejected(void **state)
{
    char s[300];
    memset(s, 'a', sizeof(s) - 1);
    s[299] = '\0';
    Channel *w = chan_new_mem_writer();
    chan_put_counted_string(w, s);
    assert_true(chan_has_error(w));
    assert_non_null(strstr(chan_error_msg(w), "longer than 255"));
    chan_close(w, NULL);
}

static void test_peek_does_not_consume(void **state)
{
    static const uint8_t data[] = { 5, 3, 'a', 'b', 'c', 9 };
    Channel *r = chan_new_mem_reader(data, sizeof(data), NULL);
    uint8_t p[4];
    assert_int_equal(chan_peek(r, p, 4, 1), 4);
    assert_memory_equal(p, data + 1, 4);
    /* Past the end: only what exists. */
    assert_int_equal(chan_peek(r, p, 4, 4), 2);
    assert_int_equal(chan_get_u8(r), 5);
    assert_int_equal(chan_tell(r), 1);
    assert_true(chan_skip(r, 5));
    assert_true(chan_at_eof(r));
    assert_false(chan_has_error(r));
    chan_close(r, NULL);
}

/* A backend that records what writev was handed. */
struct spy {
    const void *bases[256];
    size_t lens[256];
    int n;
    size_t total;
};

static ssize_t spy_writev(void *opaque, const struct iovec *iov, int iovcnt,
                          Error **errp)
{
    struct spy *s = opaque;
    size_t sum = 0;
    for (int i = 0; i < iovcnt && s->n < 256; i++) {
        s->bases[s->n] = iov[i].iov_base;
        s->lens[s->n++] = iov[i].iov_len;
        sum += iov[i].iov_len;
    }
    s->total += sum;
    return (ssize_t)sum;
}

static const struct chan_ops spy_ops = { .writev = spy_writev };

static void test_large_write_goes_by_reference(void **state)
{
    struct spy spy = { 0 };
    size_t big = 1 << 20;
    uint8_t *page = malloc(big);
    memset(page, 0x5a, big);
    Channel *w = chan_new(&spy_ops, &spy, true, "spy");
    chan_put_be64(w, 42);          /* small: buffered */
    chan_put_buffer(w, page, big); /* large: by reference */
    chan_put_buffer_ref(w, page, 4096);
    assert_true(chan_flush(w));
    /* The large buffer reached writev as the caller's own memory. */
    bool found = false;
    for (int i = 0; i < spy.n; i++) {
        if (spy.bases[i] == page && spy.lens[i] == big) {
            found = true;
        }
    }
    assert_true(found);
    struct chan_stats st;
    chan_get_stats(w, &st);
    assert_int_equal(st.copied_bytes, 8); /* only the small put */
    assert_int_equal(st.bytes, 8 + big + 4096);
    assert_int_equal(spy.total, 8 + big + 4096);
    assert_true(chan_close(w, NULL));
    free(page);
}

static void test_fd_pipe_round_trip(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    /* Larger than the pipe buffer: needs a reader running alongside. */
    size_t n = 256 * 1024;
    uint8_t *src = malloc(n), *dst = malloc(n);
    for (size_t i = 0; i < n; i++) {
        src[i] = (uint8_t)(i * 7 + (i >> 12));
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        Channel *w = chan_new_fd(p[1], true, true, "pipe");
        chan_put_be32(w, (uint32_t)n);
        chan_put_buffer(w, src, n);
        _exit(chan_close(w, NULL) ? 0 : 1);
    }
    close(p[1]);
    Channel *r = chan_new_fd(p[0], false, true, "pipe");
    assert_int_equal(chan_get_be32(r), n);
    assert_true(chan_get_buffer(r, dst, n));
    assert_memory_equal(src, dst, n);
    assert_true(chan_at_eof(r));
    assert_true(chan_close(r, NULL));
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(src);
    free(dst);
}

static void test_socket_peer_gone_is_error_not_signal(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    Channel *w = chan_new_socket(sv[0], true, true, "sock");
    static uint8_t buf[8192];
    chan_put_buffer(w, buf, sizeof(buf)); /* would raise SIGPIPE */
    assert_true(chan_has_error(w));
    assert_non_null(strstr(chan_error_msg(w), "sock"));
    Error *err = NULL;
    assert_false(chan_close(w, &err));
    assert_non_null(err);
    error_free(err);
}

static void *shutdown_later(void *arg)
{
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    chan_shutdown(arg);
    return NULL;
}

static void test_socket_shutdown_unblocks_reader(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    Channel *r = chan_new_socket(sv[0], false, true, "sock");
    pthread_t t;
    pthread_create(&t, NULL, shutdown_later, r);
    chan_get_be32(r); /* blocks until the shutdown */
    pthread_join(t, NULL);
    assert_true(chan_has_error(r));
    chan_close(r, NULL);
    close(sv[1]);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_rate_limit_spreads_writes(void **state)
{
    struct spy spy = { 0 };
    Channel *w = chan_new(&spy_ops, &spy, true, "spy");
    chan_set_rate_limit(w, 10000); /* bytes per 100 ms */
    assert_int_equal(chan_get_rate_limit(w), 10000);
    static uint8_t chunk[1000];
    double t0 = now_s();
    for (int i = 0; i < 50; i++) { /* 50 KB = 5 windows */
        while (chan_rate_limited(w)) {
            chan_rate_limit_wait(w);
        }
        chan_put_buffer(w, chunk, sizeof(chunk));
    }
    double elapsed = now_s() - t0;
    /* Four full windows must have passed before the fifth started. */
    assert_true(elapsed >= 0.35);
    chan_set_rate_limit(w, 0);
    assert_false(chan_rate_limited(w));
    chan_close(w, NULL);
}

/* Chunks three times a window's budget: each is paid for by the windows
 * after it, so four of them take nine windows, not three. */
static void test_rate_limit_holds_for_chunks_larger_than_a_window(void **state)
{
    struct spy spy = { 0 };
    Channel *w = chan_new(&spy_ops, &spy, true, "spy");
    chan_set_rate_limit(w, 10000);
    static uint8_t chunk[30000];
    double t0 = now_s();
    for (int i = 0; i < 4; i++) {
        while (chan_rate_limited(w)) {
            chan_rate_limit_wait(w);
        }
        chan_put_buffer(w, chunk, sizeof(chunk));
    }
    double elapsed = now_s() - t0;
    /* 120 KB at 10 KB per 100 ms: the last chunk starts after 90 KB. */
    assert_true(elapsed >= 0.85);
    chan_close(w, NULL);
}

/* A limit set after bytes went unlimited owes nothing for them. */
static void test_rate_limit_new_limit_starts_afresh(void **state)
{
    struct spy spy = { 0 };
    Channel *w = chan_new(&spy_ops, &spy, true, "spy");
    static uint8_t chunk[100000];
    chan_put_buffer(w, chunk, sizeof(chunk));
    assert_false(chan_rate_limited(w));
    chan_set_rate_limit(w, 10000);
    assert_false(chan_rate_limited(w));
    chan_put_buffer(w, chunk, 10000);
    assert_true(chan_rate_limited(w));
    /* The same limit again changes nothing: the budget stays spent. */
    chan_set_rate_limit(w, 10000);
    assert_true(chan_rate_limited(w));
    chan_close(w, NULL);
}

static void test_wrong_direction(void **state)
{
    Channel *w = chan_new_mem_writer();
    chan_get_u8(w);
    assert_true(chan_has_error(w));
    assert_non_null(strstr(chan_error_msg(w), "opened for writing"));
    chan_close(w, NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_endian_round_trip),
        cmocka_unit_test(test_short_read_latches_with_offset),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_long_string_rejected),
        cmocka_unit_test(test_peek_does_not_consume),
        cmocka_unit_test(test_large_write_goes_by_reference),
        cmocka_unit_test(test_fd_pipe_round_trip),
        cmocka_unit_test(test_socket_peer_gone_is_error_not_signal),
        cmocka_unit_test(test_socket_shutdown_unblocks_reader),
        cmocka_unit_test(test_rate_limit_spreads_writes),
        cmocka_unit_test(test_rate_limit_holds_for_chunks_larger_than_a_window),
        cmocka_unit_test(test_rate_limit_new_limit_starts_afresh),
        cmocka_unit_test(test_wrong_direction),
    };
    return cmocka_run_group_tests_name("channel", tests, NULL, NULL);
}
