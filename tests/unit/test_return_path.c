/* The return path's reader on the source, fed by a hostile destination
 * over a socketpair: every message it must refuse is refused by name,
 * SHUT decides, and it never hangs (a deadline, a stop). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/return-path.h"

struct pair {
    int src, dst;
};

static void pair_open(struct pair *p)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    p->src = sv[0];
    p->dst = sv[1];
}

static void pair_close(struct pair *p)
{
    if (p->src >= 0) {
        close(p->src);
    }
    if (p->dst >= 0) {
        close(p->dst);
    }
}

/* Starts a reader, lets the destination write bytes (and hang up if
 * asked), and returns what rp_reader_finish says; the message in err. */
static bool feed(const void *bytes, size_t len, bool hang_up, int timeout_ms,
                 char *err, size_t errlen)
{
    struct pair p;
    pair_open(&p);
    struct rp_reader r;
    assert_true(rp_reader_start(&r, p.src, NULL));
    if (len) {
        assert_int_equal(write(p.dst, bytes, len), (ssize_t)len);
    }
    if (hang_up) {
        close(p.dst);
        p.dst = -1;
    }
    Error *e = NULL;
    bool ok = rp_reader_finish(&r, timeout_ms, &e);
    snprintf(err, errlen, "%s", e ? error_get_pretty(e) : "");
    error_free(e);
    rp_reader_stop(&r);
    pair_close(&p);
    return ok;
}

static void test_pong_then_shut_zero_is_loaded(void **state)
{
    (void)state;
    const uint8_t m[] = { 0, 2, 0, 4, 0, 0, 0, 1, 0, 1, 0, 4, 0, 0, 0, 0 };
    char err[256];
    assert_true(feed(m, sizeof(m), false, 10000, err, sizeof(err)));
    assert_string_equal(err, "");
}

static void test_shut_one_is_a_failed_load(void **state)
{
    (void)state;
    const uint8_t m[] = { 0, 1, 0, 4, 0, 0, 0, 1 };
    char err[256];
    assert_false(feed(m, sizeof(m), false, 10000, err, sizeof(err)));
    assert_string_equal(err,
                        "the destination could not load the machine (it said "
                        "so on the return path: SHUT 1); the guest stays here");
}

static void test_hostile_messages_are_named(void **state)
{
    (void)state;
    static const struct {
        uint8_t bytes[16];
        size_t len;
        const char *want;
    } cases[] = {
        { { 0, 0, 0, 0 }, 4, "return path: message type 0 is not one (1-6)" },
        { { 0xff, 0xff, 0, 0 },
          4,
          "return path: message type 65535 is not one (1-6)" },
        { { 0, 1, 0, 3, 0, 0, 0 },
          7,
          "return path: SHUT with 3 bytes (it has 4)" },
        { { 0, 2, 0xff, 0xff },
          4,
          "return path: PONG with 65535 bytes (it has 4)" },
        { { 0, 4, 0, 12 },
          4,
          "return path: REQ_PAGES from the destination, which this "
          "migration (precopy) never asks for" },
        { { 0, 5, 0, 2, 'x', 0 },
          6,
          "return path: RECV_BITMAP from the destination, which this "
          "migration (precopy) never asks for" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256];
        assert_false(
            feed(cases[i].bytes, cases[i].len, false, 10000, err, sizeof(err)));
        assert_string_equal(err, cases[i].want);
    }
}

static void test_hang_ups_are_named(void **state)
{
    (void)state;
    char err[256];
    assert_false(feed(NULL, 0, true, 10000, err, sizeof(err)));
    assert_string_equal(
        err, "return path: the destination closed it without a word");
    const uint8_t half[] = { 0, 1, 0 };
    assert_false(feed(half, sizeof(half), true, 10000, err, sizeof(err)));
    assert_string_equal(err,
                        "return path: the destination closed it inside a "
                        "message");
    const uint8_t cut[] = { 0, 1, 0, 4, 0, 0 };
    assert_false(feed(cut, sizeof(cut), true, 10000, err, sizeof(err)));
    assert_string_equal(err,
                        "return path: SHUT: the destination closed it inside "
                        "a message");
}

static void test_silence_ends_at_the_deadline_and_stop_wakes(void **state)
{
    (void)state;
    char err[256];
    assert_false(feed(NULL, 0, false, 200, err, sizeof(err)));
    assert_string_equal(err,
                        "return path: the destination did not say within 0 s "
                        "whether it loaded the machine");
}

/* The wait before the postcopy switch: for the PONG of one PING, not an
 * earlier one; bounded; and a return path that ends ends it. */
static void test_wait_pong_of_a_value(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p);
    struct rp_reader r;
    assert_true(rp_reader_start(&r, p.src, NULL));
    const uint8_t pong1[] = { 0, 2, 0, 4, 0, 0, 0, 1 };
    const uint8_t pong4[] = { 0, 2, 0, 4, 0, 0, 0, 4 };
    assert_int_equal(write(p.dst, pong1, sizeof(pong1)), sizeof(pong1));
    Error *e = NULL;
    assert_false(rp_reader_wait_pong(&r, 4, 200, &e));
    assert_string_equal(error_get_pretty(e),
                        "return path: no PONG 4 from the destination within "
                        "200 ms");
    error_free(e);
    e = NULL;
    assert_int_equal(write(p.dst, pong4, sizeof(pong4)), sizeof(pong4));
    assert_true(rp_reader_wait_pong(&r, 4, 10000, NULL));
    close(p.dst);
    p.dst = -1;
    assert_false(rp_reader_wait_pong(&r, 5, 10000, &e));
    assert_string_equal(error_get_pretty(e),
                        "return path: the destination closed it without a "
                        "word");
    error_free(e);
    rp_reader_stop(&r);
    pair_close(&p);
}

static void test_check_header(void **state)
{
    (void)state;
    assert_true(rp_check_header(RP_MSG_SHUT, 4, NULL));
    assert_true(rp_check_header(RP_MSG_REQ_PAGES_ID, 100, NULL));
    assert_false(rp_check_header(RP_MSG_RESUME_ACK, 0, NULL));
    assert_false(rp_check_header(RP_MSG__MAX, 4, NULL));
    assert_string_equal(rp_msg_name(RP_MSG_PONG), "PONG");
    assert_string_equal(rp_msg_name(999), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pong_then_shut_zero_is_loaded),
        cmocka_unit_test(test_shut_one_is_a_failed_load),
        cmocka_unit_test(test_hostile_messages_are_named),
        cmocka_unit_test(test_hang_ups_are_named),
        cmocka_unit_test(test_silence_ends_at_the_deadline_and_stop_wakes),
        cmocka_unit_test(test_wait_pong_of_a_value),
        cmocka_unit_test(test_check_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
