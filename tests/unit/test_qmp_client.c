/* A QMP client on one end of a socket pair, the test on the other: a
 * client that does not read must never block hop, must stop being served
 * while its answers wait, and must be dropped before its events fill
 * hop's memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/session.h"
#include "monitor/outq.h"
#include "monitor/qmp.h"

struct fixture {
    struct vm_session *s;
    int peer; /* the test's end */
    struct qmp_client *c;
};

/* One turn of the monitor loop for this client, without waiting. */
static void pump(struct fixture *f)
{
    struct pollfd p = { .fd = qmp_client_fd(f->c),
                        .events = qmp_client_poll_events(f->c) };
    if (poll(&p, 1, 0) > 0) {
        qmp_client_ready(f->c, p.revents);
    }
}

/* Reads what is there; returns how many messages (CRLF ends) it held. */
static size_t drain_peer(struct fixture *f)
{
    static char buf[65536];
    size_t msgs = 0;
    ssize_t n;
    while ((n = recv(f->peer, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            msgs += buf[i] == '\n';
        }
    }
    return msgs;
}

static void send_all(struct fixture *f, const char *text)
{
    size_t len = strlen(text);
    assert_int_equal(send(f->peer, text, len, 0), (ssize_t)len);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int sv[2];
    if (!f || !(f->s = session_new(&(struct session_config){ 0 }, NULL)) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        return -1;
    }
    f->peer = sv[1];
    f->c = qmp_client_new(f->s, sv[0]);
    qmp_client_start(f->c);
    /* Greeting, then negotiation. */
    send_all(f, "{\"execute\": \"qmp_capabilities\"}\n");
    pump(f);
    if (drain_peer(f) != 2) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    qmp_client_free(f->c);
    close(f->peer);
    session_free(f->s);
    free(f);
    return 0;
}

/* Events keep coming to a client that reads nothing: each is queued
 * without blocking until OUTQ_LIMIT, then the client is dropped. */
static void test_unread_events_drop_the_client(void **state)
{
    struct fixture *f = *state;
    json_t *data = json_pack("{s:s}", "status", "active");
    size_t sent = 0;
    while (!qmp_client_gone(f->c) && sent < 1000000) {
        qmp_client_send_event(f->c, "MIGRATION", data, 1, 2);
        sent++;
    }
    json_decref(data);
    assert_true(qmp_client_gone(f->c));
    /* Each event is about 100 bytes: it went only past the limit. */
    assert_true(sent > OUTQ_LIMIT / 128);
    assert_true(sent < 2 * OUTQ_LIMIT / 64);
}

/* A client that sends requests without reading the answers: hop stops
 * taking its requests while answers wait, and answers all of them once
 * the client reads. */
static void test_requests_wait_for_a_reader(void **state)
{
    struct fixture *f = *state;
    static const char req[] =
        "{\"execute\": \"qmp_capabilities\", \"id\": 1}\n";
    const size_t len = sizeof(req) - 1, count = 100000;
    char *reqs = malloc(len * count);
    assert_non_null(reqs);
    for (size_t i = 0; i < count; i++) {
        memcpy(reqs + i * len, req, len);
    }
    size_t off = 0;
    for (int turns = 0; turns < 100000 && off < len * count &&
         (qmp_client_poll_events(f->c) & POLLIN);
         turns++) {
        ssize_t n = send(f->peer, reqs + off, len * count - off, MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
        } else {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
        }
        pump(f);
    }
    /* Long before the end, hop stopped reading from it (it would block
     * otherwise), and it keeps the client. */
    assert_true(off < len * count / 2);
    assert_false(qmp_client_poll_events(f->c) & POLLIN);
    assert_true(qmp_client_poll_events(f->c) & POLLOUT);
    assert_false(qmp_client_gone(f->c));
    /* Now read (and finish a request cut short): each is answered. */
    size_t total = (off + len - 1) / len, answers = 0;
    for (int turns = 0; answers < total && turns < 1000000; turns++) {
        answers += drain_peer(f);
        if (off % len) {
            ssize_t n =
                send(f->peer, reqs + off, len - off % len, MSG_DONTWAIT);
            off += n > 0 ? (size_t)n : 0;
        }
        pump(f);
    }
    free(reqs);
    assert_int_equal(answers, total);
    assert_false(qmp_client_gone(f->c));
}

/* The peer closes after its last request: the client is gone once it
 * has been answered, not before. */
static void test_gone_after_the_last_answer(void **state)
{
    struct fixture *f = *state;
    send_all(f, "{\"execute\": \"qmp_capabilities\", \"id\": 1}\n");
    shutdown(f->peer, SHUT_WR);
    for (int turns = 0; !qmp_client_gone(f->c) && turns < 1000; turns++) {
        pump(f);
    }
    assert_true(qmp_client_gone(f->c));
    assert_int_equal(drain_peer(f), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unread_events_drop_the_client,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests_wait_for_a_reader, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gone_after_the_last_answer, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("qmp client", tests, NULL, NULL);
}
