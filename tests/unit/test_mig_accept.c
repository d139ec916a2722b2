/* The incoming listener: connections are told apart by their first
 * bytes; a silent, half-sent or foreign one is closed at its deadline
 * (or at once) without holding up the others or spinning, and the wake
 * descriptor ends any wait. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "migration/accept.h"
#include "ram/ram-multifd.h"
#include "util/clock.h"

struct fixture {
    char dir[64];
    struct sockaddr_un addr;
    int lfd;
    int wake[2];
    struct mig_acceptor acc;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hop-accept-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->addr.sun_family = AF_UNIX;
    snprintf(fx->addr.sun_path, sizeof(fx->addr.sun_path), "%s/s", fx->dir);
    fx->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fx->lfd >= 0);
    assert_int_equal(
        bind(fx->lfd, (struct sockaddr *)&fx->addr, sizeof(fx->addr)), 0);
    assert_int_equal(listen(fx->lfd, 16), 0);
    assert_int_equal(pipe2(fx->wake, O_CLOEXEC | O_NONBLOCK), 0);
    mig_acceptor_init(&fx->acc, fx->lfd, fx->wake[0]);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    mig_acceptor_clear(&fx->acc);
    close(fx->lfd);
    close(fx->wake[0]);
    close(fx->wake[1]);
    unlink(fx->addr.sun_path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* A client that connects and sends len bytes of data. */
static int client(struct fixture *fx, const void *data, size_t len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(
        connect(fd, (struct sockaddr *)&fx->addr, sizeof(fx->addr)), 0);
    if (len) {
        assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
    }
    return fd;
}

/* hop closed the client's connection: end of stream, or a reset when
 * what the client sent was still unread. */
static bool closed_by_hop(int fd)
{
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char b;
    ssize_t n = recv(fd, &b, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

struct waker {
    int fd;
    int ms;
    pthread_t thread;
};

static void *wake_later(void *arg)
{
    struct waker *w = arg;
    struct timespec ts = { w->ms / 1000, (long)(w->ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
    char b = 1;
    (void)!write(w->fd, &b, 1);
    return NULL;
}

static void start_waker(struct waker *w, int fd, int ms)
{
    w->fd = fd;
    w->ms = ms;
    assert_int_equal(pthread_create(&w->thread, NULL, wake_later, w), 0);
}

static int next(struct fixture *fx, struct mig_conn *c,
                enum mig_conn_kind *kind)
{
    char peer[96];
    Error *err = NULL;
    int r = mig_acceptor_next(&fx->acc, c, kind, peer, sizeof(peer), &err);
    assert_null(err);
    return r;
}

static void test_main_and_multifd_told_apart(void **state)
{
    struct fixture *fx = *state;
    uint8_t hdr[MULTIFD_HEADER_LEN] = { 0 };
    memcpy(hdr, multifd_channel_magic, MULTIFD_MAGIC_LEN);
    int a = client(fx, hdr, sizeof(hdr));
    int b = client(fx, "QEVM\0\0\0\3", 8);
    bool seen_main = false, seen_mfd = false;
    for (int i = 0; i < 2; i++) {
        struct mig_conn c;
        enum mig_conn_kind kind;
        assert_int_equal(next(fx, &c, &kind), 1);
        /* Nothing was consumed: the header is still there to read. */
        char head[4];
        assert_int_equal(recv(c.fd, head, 4, 0), 4);
        if (kind == MIG_CONN_MAIN) {
            assert_memory_equal(head, "QEVM", 4);
            seen_main = true;
        } else {
            assert_memory_equal(head, multifd_channel_magic, 4);
            seen_mfd = true;
        }
        close(c.fd);
    }
    assert_true(seen_main && seen_mfd);
    close(a);
    close(b);
}

static void test_silent_peer_holds_up_nobody(void **state)
{
    struct fixture *fx = *state;
    fx->acc.timeout_ms = 300;
    int silent = client(fx, NULL, 0);
    int good = client(fx, "QEVM", 4);
    uint64_t t0 = clock_mono_ns();
    struct mig_conn c;
    enum mig_conn_kind kind;
    assert_int_equal(next(fx, &c, &kind), 1);
    assert_int_equal(kind, MIG_CONN_MAIN);
    assert_true(clock_mono_ns() - t0 < 250 * 1000000ull);
    close(c.fd);
    /* Waiting on: the silent one goes at its deadline; then the wake. */
    struct waker w;
    start_waker(&w, fx->wake[1], 700);
    assert_int_equal(next(fx, &c, &kind), 0);
    pthread_join(w.thread, NULL);
    assert_true(clock_mono_ns() - t0 >= 300 * 1000000ull);
    assert_true(closed_by_hop(silent));
    assert_int_equal(fx->acc.npending, 0);
    close(silent);
    close(good);
}

static void test_part_of_a_header_waits_without_spinning(void **state)
{
    struct fixture *fx = *state;
    fx->acc.timeout_ms = 400;
    int part = client(fx, "HOPM", 4);
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    struct waker w;
    start_waker(&w, fx->wake[1], 800);
    struct mig_conn c;
    enum mig_conn_kind kind;
    assert_int_equal(next(fx, &c, &kind), 0);
    pthread_join(w.thread, NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) +
        (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    /* 0.8 s of waiting: a busy loop would burn most of it. */
    assert_true(cpu < 0.2);
    assert_true(closed_by_hop(part));
    close(part);
}

static void test_rest_of_a_header_completes_it(void **state)
{
    struct fixture *fx = *state;
    uint8_t hdr[MULTIFD_HEADER_LEN] = { 0 };
    memcpy(hdr, multifd_channel_magic, MULTIFD_MAGIC_LEN);
    int fd = client(fx, hdr, 10);
    struct mig_conn c;
    enum mig_conn_kind kind;
    /* Nothing to take yet: the wake ends the wait. */
    struct waker w;
    start_waker(&w, fx->wake[1], 100);
    assert_int_equal(next(fx, &c, &kind), 0);
    pthread_join(w.thread, NULL);
    char b;
    assert_int_equal(read(fx->wake[0], &b, 1), 1);
    /* The rest arrives: now it is a channel. */
    assert_int_equal(send(fd, hdr + 10, sizeof(hdr) - 10, 0),
                     (ssize_t)(sizeof(hdr) - 10));
    assert_int_equal(next(fx, &c, &kind), 1);
    assert_int_equal(kind, MIG_CONN_MULTIFD);
    close(c.fd);
    close(fd);
}

static void test_foreign_bytes_closed_at_once(void **state)
{
    struct fixture *fx = *state;
    int junk = client(fx, "GET / HTTP/1.0\r\n\r\n", 18);
    int gone = client(fx, NULL, 0);
    close(gone);
    struct waker w;
    start_waker(&w, fx->wake[1], 300);
    struct mig_conn c;
    enum mig_conn_kind kind;
    assert_int_equal(next(fx, &c, &kind), 0);
    pthread_join(w.thread, NULL);
    assert_int_equal(fx->acc.npending, 0);
    assert_true(closed_by_hop(junk));
    close(junk);
}

static void test_wake_ends_the_wait(void **state)
{
    struct fixture *fx = *state;
    char b = 1;
    assert_int_equal(write(fx->wake[1], &b, 1), 1);
    struct mig_conn c;
    enum mig_conn_kind kind;
    assert_int_equal(next(fx, &c, &kind), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_main_and_multifd_told_apart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_silent_peer_holds_up_nobody, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_part_of_a_header_waits_without_spinning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_of_a_header_completes_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_bytes_closed_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_wake_ends_the_wait, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("mig_accept", tests, NULL, NULL);
}
