/* Migration connections and what they queue: precopy's sockets hold
 * megabytes in flight for throughput; once postcopy runs, a page the
 * guest waits for queues behind all of that, so the switch shrinks the
 * buffers (mig_socket_favor_latency) and far less can wait ahead of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/transport.h"

struct pair {
    char dir[64];
    int lfd, out, in; /* listener, source's end, destination's end */
};

/* A connection as migrate makes it: mig_listen, mig_connect, accept. */
static void connect_pair(struct pair *p, bool tcp)
{
    char uri[128];
    snprintf(p->dir, sizeof(p->dir), "/tmp/hop-test-transport.XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(uri, sizeof(uri), "unix:%s/s", p->dir);
    struct mig_uri u;
    Error *err = NULL;
    if (tcp) {
        assert_true(mig_uri_parse("tcp:127.0.0.1:0", &u, &err));
    } else {
        assert_true(mig_uri_parse(uri, &u, &err));
    }
    struct mig_conn c;
    assert_true(mig_listen(&u, NULL, &p->lfd, &c, &err));
    if (tcp) {
        /* Port 0 picked one: connect to it. */
        struct sockaddr_in a;
        socklen_t len = sizeof(a);
        assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &len), 0);
        mig_uri_clear(&u);
        snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%u", ntohs(a.sin_port));
        assert_true(mig_uri_parse(uri, &u, &err));
    }
    struct mig_conn out;
    assert_true(mig_connect(&u, NULL, &out, &err));
    mig_uri_clear(&u);
    p->out = out.fd;
    p->in = accept(p->lfd, NULL, NULL);
    assert_true(p->in >= 0);
    assert_int_equal(fcntl(p->out, F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(p->in, F_SETFL, O_NONBLOCK), 0);
}

static void close_pair(struct pair *p)
{
    close(p->out);
    close(p->in);
    close(p->lfd);
    char path[96];
    snprintf(path, sizeof(path), "%s/s", p->dir);
    unlink(path);
    rmdir(p->dir);
}

/* Bytes the source can write while the destination reads none: what a
 * page written now would wait behind. */
static size_t fill(int fd)
{
    static char chunk[64 * 1024];
    size_t total = 0;
    for (;;) {
        ssize_t n = write(fd, chunk, sizeof(chunk));
        if (n < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            /* tcp: the receiver's window opens in steps; one more try. */
            usleep(20000);
            n = write(fd, chunk, sizeof(chunk));
            if (n < 0) {
                return total;
            }
        }
        total += (size_t)n;
    }
}

static void drain(int fd)
{
    static char chunk[64 * 1024];
    while (read(fd, chunk, sizeof(chunk)) > 0) {
    }
}

/* What the host lets a socket buffer be, for the precondition. */
static long wmem_max(void)
{
    long v = 0;
    FILE *f = fopen("/proc/sys/net/core/wmem_max", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1) {
            v = 0;
        }
        fclose(f);
    }
    return v;
}

static void check_queue_shrinks(bool tcp)
{
    struct pair p;
    connect_pair(&p, tcp);
    size_t before = fill(p.out);
    drain(p.in);
    /* Both ends, as the source at the switch and the destination at
     * POSTCOPY_LISTEN do. */
    mig_socket_favor_latency(p.out);
    mig_socket_favor_latency(p.in);
    drain(p.in);
    size_t after = fill(p.out);
    printf("# %s: %zu KiB could queue before, %zu KiB after\n",
           tcp ? "tcp" : "unix", before >> 10, after >> 10);
    /* Linux doubles what it is given, and each end holds some (tcp). */
    assert_true(after <= 6 * MIG_LATENCY_SOCKET_BUF);
    assert_true(after > 0);
    if (wmem_max() >= 4 * MIG_LATENCY_SOCKET_BUF) {
        /* The host allowed precopy's large buffers: they were larger. */
        assert_true(before > 2 * after);
    }
    close_pair(&p);
}

static void test_unix_queue_shrinks(void **state)
{
    (void)state;
    check_queue_shrinks(false);
}

static void test_tcp_queue_shrinks(void **state)
{
    (void)state;
    check_queue_shrinks(true);
}

static void test_not_a_socket_is_left_alone(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    mig_socket_favor_latency(fds[1]);
    mig_socket_favor_latency(-1);
    assert_int_equal(write(fds[1], "x", 1), 1);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unix_queue_shrinks),
        cmocka_unit_test(test_tcp_queue_shrinks),
        cmocka_unit_test(test_not_a_socket_is_left_alone),
    };
    return cmocka_run_group_tests_name("mig_transport", tests, NULL, NULL);
}
