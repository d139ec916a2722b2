/* Postcopy's wire parsers with hostile input (POSTCOPY_ADVISE,
 * POSTCOPY_RAM_DISCARD, REQ_PAGES / REQ_PAGES_ID), the range checks
 * against real RAM blocks, the source's reader passing requests on, and
 * the destination's fault thread: a thread touching a missing page waits,
 * its page is asked for once (by name first), and placing it lets the
 * thread go; blocktime's accounting (postcopy-blocktime), alone and with
 * the fault thread naming the waiting thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "machine/machine.h"
#include "machine/memory.h"
#include "migration/return-path.h"
#include "ram/ram-postcopy.h"
#include "ram/ram.h"
#include "tests/unit/machine-fixture.h"
#include "util/be.h"
#include "vmstate/channel.h"
#include "vmstate/stream-format.h"
#include "vmstate/stream.h"

/* The message of a failing call, or "" when it succeeded. */
#define ERR_OF(call)                                                           \
    ({                                                                         \
        Error *e_ = NULL;                                                      \
        static char m_[512];                                                   \
        bool ok_ = (call);                                                     \
        snprintf(m_, sizeof(m_), "%s", ok_ ? "" : error_get_pretty(e_));       \
        error_free(e_);                                                        \
        m_;                                                                    \
    })

static void test_advise(void **state)
{
    (void)state;
    uint8_t b[16];
    uint64_t s, t;
    postcopy_advise_encode(b, 4096, 4096);
    assert_true(postcopy_advise_parse(b, 16, &s, &t, NULL));
    assert_int_equal(s, 4096);
    assert_int_equal(t, 4096);
    assert_string_equal(ERR_OF(postcopy_advise_parse(b, 0, &s, &t, &e_)),
                        "POSTCOPY_ADVISE with 0 bytes: postcopy-ram needs the "
                        "16-byte form (page size summary, target page size)");
    assert_string_not_equal(ERR_OF(postcopy_advise_parse(b, 15, &s, &t, &e_)),
                            "");
}

static void test_discard_round_trip(void **state)
{
    (void)state;
    struct postcopy_discard d = { .name = "pc.ram", .n = 2 }, back;
    d.start[0] = 0x1000;
    d.len[0] = 0x3000;
    d.start[1] = 0x10000;
    d.len[1] = 0x1000;
    uint8_t buf[POSTCOPY_DISCARD_MAX_LEN];
    size_t len = postcopy_discard_encode(&d, buf);
    /* QEMU's layout: version 0, name length, name, NUL, pairs. */
    assert_int_equal(len, 3 + 6 + 32);
    assert_int_equal(buf[0], 0);
    assert_int_equal(buf[1], 6);
    assert_memory_equal(buf + 2, "pc.ram", 6);
    assert_int_equal(buf[8], 0);
    assert_int_equal(be64_get(buf + 9), 0x1000);
    assert_true(postcopy_discard_parse(buf, len, &back, NULL));
    assert_string_equal(back.name, "pc.ram");
    assert_int_equal(back.n, 2);
    assert_int_equal(back.len[0], 0x3000);
    assert_int_equal(back.start[1], 0x10000);
}

static void test_discard_hostile(void **state)
{
    (void)state;
    struct postcopy_discard d;
    uint8_t b[POSTCOPY_DISCARD_MAX_LEN + 64] = { 0 };
    assert_string_equal(ERR_OF(postcopy_discard_parse(b, 2, &d, &e_)),
                        "POSTCOPY_RAM_DISCARD with 2 bytes: too short for its "
                        "header");
    b[0] = 1;
    assert_string_equal(ERR_OF(postcopy_discard_parse(b, 3, &d, &e_)),
                        "POSTCOPY_RAM_DISCARD: version 1 (expected 0)");
    b[0] = 0;
    b[1] = 200; /* a name longer than the command */
    assert_string_equal(ERR_OF(postcopy_discard_parse(b, 20, &d, &e_)),
                        "POSTCOPY_RAM_DISCARD: block name of 200 bytes in a "
                        "command of 20");
    b[1] = 0;
    assert_string_not_equal(ERR_OF(postcopy_discard_parse(b, 20, &d, &e_)), "");
    memcpy(b + 1,
           "\x02"
           "a\0",
           3); /* NUL inside the name */
    b[4] = 0;
    assert_string_equal(ERR_OF(postcopy_discard_parse(b, 5, &d, &e_)),
                        "POSTCOPY_RAM_DISCARD: the block name holds a NUL or "
                        "is not followed by one");
    memcpy(b + 1,
           "\x01"
           "a\0",
           3);
    /* Ranges that are not whole pairs, and too many of them. */
    assert_string_equal(ERR_OF(postcopy_discard_parse(b, 4 + 15, &d, &e_)),
                        "POSTCOPY_RAM_DISCARD for RAM block 'a': 15 bytes of "
                        "ranges (a multiple of 16, at most 12 ranges)");
    assert_string_not_equal(
        ERR_OF(postcopy_discard_parse(b, 4 + 16 * 13, &d, &e_)), "");
    assert_true(postcopy_discard_parse(b, 4 + 16 * 12, &d, NULL));
    assert_int_equal(d.n, 12);
}

static struct machine_memory *new_memory(void)
{
    Error *err = NULL;
    struct machine_memory *mem = memory_new(4u << 20, NULL, &err);
    assert_non_null(mem);
    assert_non_null(memory_add_block(mem, "pc.bios", 64 << 10, NULL, &err));
    return mem;
}

/* Memory whose pc.ram is all missing, as at the switch, for the fault
 * tests; NULL, after printing why, where userfaultfd cannot serve it
 * (with blocktime: cannot name the faulting thread either). */
static struct machine_memory *missing_memory(bool blocktime)
{
    struct machine_memory *mem = new_memory();
    Error *err = NULL;
    if (!postcopy_host_check(mem, &err) ||
        (blocktime && !postcopy_bt_host_check(&err))) {
        print_message("# skip: %s\n", error_get_pretty(err));
        error_free(err);
        memory_free(mem);
        return NULL;
    }
    struct ram_block *b = memory_main_block(mem);
    assert_true(postcopy_discard_range(mem, 0, 0, b->size, NULL));
    return mem;
}

static void test_range_check(void **state)
{
    (void)state;
    struct machine_memory *mem = new_memory();
    int block = -1;
    assert_true(postcopy_range_check(mem, "pc.bios", 0xf000, 0x1000, "X",
                                     &block, NULL));
    assert_int_equal(block, 1);
    assert_string_equal(ERR_OF(postcopy_range_check(
                            mem, "nope", 0, 4096, "REQ_PAGES_ID", &block, &e_)),
                        "REQ_PAGES_ID: unknown RAM block 'nope'");
    assert_string_equal(
        ERR_OF(postcopy_range_check(mem, "pc.ram", 0x800, 4096, "REQ_PAGES",
                                    &block, &e_)),
        "REQ_PAGES: RAM block 'pc.ram': range of 0x1000 bytes at 0x800 is not "
        "whole pages");
    assert_string_not_equal(
        ERR_OF(postcopy_range_check(mem, "pc.ram", 0, 0, "X", &block, &e_)),
        "");
    assert_string_not_equal(
        ERR_OF(postcopy_range_check(mem, "pc.ram", 0, 100, "X", &block, &e_)),
        "");
    assert_string_equal(
        ERR_OF(postcopy_range_check(mem, "pc.bios", 0x10000, 0x1000,
                                    "POSTCOPY_RAM_DISCARD", &block, &e_)),
        "POSTCOPY_RAM_DISCARD: RAM block 'pc.bios': range of 0x1000 bytes at "
        "0x10000 is past its end (0x10000 bytes)");
    /* start + len wrapping around 2^64 is past the end, too. */
    assert_string_not_equal(
        ERR_OF(postcopy_range_check(mem, "pc.bios", 0x1000,
                                    0xfffffffffffff000ull, "X", &block, &e_)),
        "");
    memory_free(mem);
}

static void test_req_pages_parse(void **state)
{
    (void)state;
    struct rp_req_pages q;
    uint8_t b[4 + RP_REQ_PAGES_ID_MAX + 8] = { 0 };
    be64_put(b, 0x2000);
    be32_put(b + 8, 4096);
    assert_true(rp_parse_req_pages(RP_MSG_REQ_PAGES, b, 12, &q, NULL));
    assert_false(q.has_name);
    assert_int_equal(q.start, 0x2000);
    assert_int_equal(q.len, 4096);
    assert_string_equal(
        ERR_OF(rp_parse_req_pages(RP_MSG_REQ_PAGES, b, 13, &q, &e_)),
        "return path: REQ_PAGES with 13 bytes (it has 12)");
    b[12] = 6;
    memcpy(b + 13, "pc.ram", 6);
    assert_true(rp_parse_req_pages(RP_MSG_REQ_PAGES_ID, b, 19, &q, NULL));
    assert_string_equal(q.name, "pc.ram");
    assert_string_equal(
        ERR_OF(rp_parse_req_pages(RP_MSG_REQ_PAGES_ID, b, 18, &q, &e_)),
        "return path: REQ_PAGES_ID with 18 bytes for a block "
        "name of 6");
    b[12] = 0;
    assert_string_not_equal(
        ERR_OF(rp_parse_req_pages(RP_MSG_REQ_PAGES_ID, b, 13, &q, &e_)), "");
    b[12] = 2;
    b[13] = 'a';
    b[14] = 0;
    assert_string_equal(
        ERR_OF(rp_parse_req_pages(RP_MSG_REQ_PAGES_ID, b, 15, &q, &e_)),
        "return path: REQ_PAGES_ID: the block name holds a "
        "NUL byte");
    assert_string_not_equal(
        ERR_OF(rp_parse_req_pages(RP_MSG_PONG, b, 4, &q, &e_)), "");
}

/* The source's reader passes requests on, in order, names as sent. */
struct seen {
    int n;
    char names[4][64];
    uint64_t start[4];
};

static bool on_request(void *opaque, const char *name, uint64_t start,
                       uint32_t len, Error **errp)
{
    struct seen *s = opaque;
    (void)len;
    if (s->n == 2) {
        error_setg(errp, "a third request, refused");
        return false;
    }
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name ? name : "-");
    s->start[s->n++] = start;
    return true;
}

static void test_reader_passes_requests(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct seen s = { 0 };
    struct rp_reader r;
    struct rp_postcopy_ops ops = { .on_request = on_request, .opaque = &s };
    assert_true(rp_reader_start_postcopy(&r, sv[0], &ops, NULL));
    assert_true(rp_send_req_pages(sv[1], "pc.ram", 0x5000, 4096, NULL));
    assert_true(rp_send_req_pages(sv[1], NULL, 0x7000, 4096, NULL));
    assert_true(rp_send_req_pages(sv[1], NULL, 0x9000, 4096, NULL));
    Error *e = NULL;
    assert_false(rp_reader_finish(&r, 5000, &e));
    assert_string_equal(error_get_pretty(e), "a third request, refused");
    error_free(e);
    rp_reader_stop(&r);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.names[0], "pc.ram");
    assert_string_equal(s.names[1], "-");
    assert_int_equal(s.start[1], 0x7000);
    close(sv[0]);
    close(sv[1]);
}

static void test_reader_refuses_long_request(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct seen s = { 0 };
    struct rp_reader r;
    struct rp_postcopy_ops ops = { .on_request = on_request, .opaque = &s };
    assert_true(rp_reader_start_postcopy(&r, sv[0], &ops, NULL));
    uint8_t m[4] = { 0, RP_MSG_REQ_PAGES_ID, 0x40, 0 };
    assert_int_equal(write(sv[1], m, 4), 4);
    Error *e = NULL;
    assert_false(rp_reader_finish(&r, 5000, &e));
    assert_string_equal(error_get_pretty(e),
                        "return path: REQ_PAGES_ID with 16384 bytes (at most "
                        "268)");
    error_free(e);
    rp_reader_stop(&r);
    close(sv[0]);
    close(sv[1]);
}

/* ---- recovery: RECV_BITMAP and RESUME_ACK ---- */

/* Pages 0, 9, 64 and 99 of a 100-page block. */
static void sample_bitmap(unsigned long *bits)
{
    memset(bits, 0, 2 * sizeof(long) * 2);
    uint64_t pages[] = { 0, 9, 64, 99 };
    for (unsigned i = 0; i < 4; i++) {
        bits[pages[i] / (8 * sizeof(long))] |= 1ul
            << (pages[i] % (8 * sizeof(long)));
    }
}

/* The bytes on the wire, read raw: the message, be64 size, little-endian
 * 64-bit words, the end mark. */
static void test_recv_bitmap_wire(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    unsigned long bits[4];
    sample_bitmap(bits);
    assert_true(rp_send_recv_bitmap(sv[1], "pc.ram", bits, 100, NULL));
    uint8_t m[64];
    size_t want = 4 + 7 + 8 + 16 + 8;
    assert_int_equal(read(sv[0], m, sizeof(m)), (ssize_t)want);
    static const uint8_t expect[] = {
        0,    5,    0,    7,    6,    'p',  'c',  '.',
        'r',  'a',  'm',                              /* RECV_BITMAP */
        0,    0,    0,    0,    0,    0,    0,    16, /* be64 size */
        0x01, 0x02, 0,    0,    0,    0,    0,    0,  /* pages 0, 9 */
        0x01, 0,    0,    0,    0x08, 0,    0,    0,  /* pages 64, 99 */
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
    };
    assert_memory_equal(m, expect, want);
    close(sv[0]);
    close(sv[1]);
}

struct bitmaps {
    int n;
    unsigned long got[4];
    uint64_t size;
};

static bool bitmap_size(void *opaque, const char *name, uint64_t *size,
                        Error **errp)
{
    (void)opaque;
    if (strcmp(name, "pc.ram") != 0) {
        error_setg(errp, "no RAM block '%s' here", name);
        return false;
    }
    *size = rp_recv_bitmap_size(100);
    return true;
}

static bool on_bitmap(void *opaque, const char *name, const uint8_t *wire,
                      uint64_t size, Error **errp)
{
    struct bitmaps *b = opaque;
    (void)name;
    (void)errp;
    b->n++;
    b->size = size;
    rp_recv_bitmap_decode(wire, size, b->got);
    return true;
}

static void start_bitmap_reader(struct rp_reader *r, int fd,
                                struct rp_postcopy_ops *ops, struct bitmaps *b)
{
    *ops = (struct rp_postcopy_ops){ .on_request = on_request,
                                     .bitmap_size = bitmap_size,
                                     .on_bitmap = on_bitmap,
                                     .opaque = b };
    assert_true(rp_reader_start_postcopy(r, fd, ops, NULL));
}

/* The source takes the bitmap in as it was sent, then the RESUME_ACK. */
static void test_recv_bitmap_and_resume_ack(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct bitmaps b = { 0 };
    struct rp_postcopy_ops ops;
    struct rp_reader r;
    start_bitmap_reader(&r, sv[0], &ops, &b);
    unsigned long bits[4];
    sample_bitmap(bits);
    assert_true(rp_send_recv_bitmap(sv[1], "pc.ram", bits, 100, NULL));
    Error *e = NULL;
    assert_true(rp_reader_wait(&r, 1, 0, 5000, &e));
    assert_int_equal(b.n, 1);
    assert_int_equal(b.size, 16);
    assert_memory_equal(b.got, bits, 16);
    /* No RESUME_ACK yet: the wait runs out. */
    assert_false(rp_reader_wait(&r, 1, 1, 100, &e));
    assert_string_equal(error_get_pretty(e),
                        "return path: no RESUME_ACK from the destination "
                        "within 0 s");
    error_free(e);
    e = NULL;
    assert_true(
        rp_send_u32(sv[1], RP_MSG_RESUME_ACK, RP_RESUME_ACK_VALUE, NULL));
    assert_true(rp_reader_wait(&r, 1, 1, 5000, &e));
    /* Another value is not QEMU's. */
    assert_true(rp_send_u32(sv[1], RP_MSG_RESUME_ACK, 2, NULL));
    assert_false(rp_reader_wait(&r, 1, 2, 5000, &e));
    assert_string_equal(error_get_pretty(e),
                        "return path: RESUME_ACK with value 2 (it is 1)");
    error_free(e);
    rp_reader_stop(&r);
    close(sv[0]);
    close(sv[1]);
}

/* A bitmap of the wrong size, an unknown block, a broken end mark: the
 * return path ends with one line naming it. */
static void test_recv_bitmap_refused(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint64_t npages;
        bool bad_mark;
        const char *error;
    } cases[] = {
        { "pc.ram", 200, false,
          "return path: RECV_BITMAP of 'pc.ram' has 32 bytes, that block's "
          "has 16" },
        { "vga.vram", 100, false,
          "return path: RECV_BITMAP: no RAM block 'vga.vram' here" },
        { "pc.ram", 100, true,
          "return path: RECV_BITMAP of 'pc.ram' ends with "
          "0x0123456789abcd00, not the end mark 0x0123456789abcdef" },
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        struct bitmaps b = { 0 };
        struct rp_postcopy_ops ops;
        struct rp_reader r;
        start_bitmap_reader(&r, sv[0], &ops, &b);
        unsigned long bits[4] = { 0 };
        if (cases[i].bad_mark) {
            /* The message and size by hand, then a mark one byte off. */
            uint8_t m[4 + 7 + 8 + 16 + 8] = { 0,   5,   0,   7,   6,  'p',
                                              'c', '.', 'r', 'a', 'm' };
            m[18] = 16;
            static const uint8_t mark[8] = { 0x01, 0x23, 0x45, 0x67,
                                             0x89, 0xab, 0xcd, 0x00 };
            memcpy(m + 35, mark, 8);
            assert_int_equal(write(sv[1], m, sizeof(m)), (ssize_t)sizeof(m));
        } else {
            assert_true(rp_send_recv_bitmap(sv[1], cases[i].name, bits,
                                            cases[i].npages, NULL));
        }
        Error *e = NULL;
        assert_false(rp_reader_wait(&r, 1, 0, 5000, &e));
        assert_string_equal(error_get_pretty(e), cases[i].error);
        error_free(e);
        assert_int_equal(b.n, 0);
        rp_reader_stop(&r);
        close(sv[0]);
        close(sv[1]);
    }
}

/* A precopy source never asks for recovery. */
static void test_recv_bitmap_in_precopy_refused(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct rp_reader r;
    assert_true(rp_reader_start(&r, sv[0], NULL));
    unsigned long bits[4] = { 0 };
    assert_true(rp_send_recv_bitmap(sv[1], "pc.ram", bits, 100, NULL));
    Error *e = NULL;
    assert_false(rp_reader_finish(&r, 5000, &e));
    assert_string_equal(error_get_pretty(e),
                        "return path: RECV_BITMAP from the destination, "
                        "which this migration (precopy) never asks for");
    error_free(e);
    rp_reader_stop(&r);
    close(sv[0]);
    close(sv[1]);
}

/* ---- the destination's fault thread ---- */

struct asked {
    pthread_mutex_t lock;
    int n;
    char name[4][64];
    uint64_t start[4];
};

static bool record(void *opaque, const char *name, uint64_t start, uint32_t len,
                   Error **errp)
{
    (void)len;
    (void)errp;
    struct asked *a = opaque;
    pthread_mutex_lock(&a->lock);
    if (a->n < 4) {
        snprintf(a->name[a->n], sizeof(a->name[0]), "%s", name ? name : "-");
        a->start[a->n] = start;
    }
    a->n++;
    pthread_mutex_unlock(&a->lock);
    return true;
}

static volatile uint8_t *touch_at;
/* Atomic: two touchers may store it at once. */
static _Atomic uint8_t touched;

static void *toucher(void *p)
{
    (void)p;
    touched = *touch_at;
    return NULL;
}

static int asked_count(struct asked *a)
{
    pthread_mutex_lock(&a->lock);
    int n = a->n;
    pthread_mutex_unlock(&a->lock);
    return n;
}

/* Waits (up to 5 s) until n pages were asked for, and no more. */
static void wait_asked(struct asked *a, int n)
{
    for (int i = 0; i < 500 && asked_count(a) < n; i++) {
        usleep(10000);
    }
    assert_int_equal(asked_count(a), n);
}

/* A thread that reads *at (blocked there until its page is placed). */
static pthread_t touch(volatile uint8_t *at)
{
    pthread_t t;
    touch_at = at;
    assert_int_equal(pthread_create(&t, NULL, toucher, NULL), 0);
    return t;
}

static void test_fault_asks_once_and_placing_wakes(void **state)
{
    (void)state;
    struct machine_memory *mem = missing_memory(false);
    if (!mem) {
        skip();
    }
    Error *err = NULL;
    struct ram_block *b = memory_main_block(mem);
    struct asked a = { .n = 0 };
    pthread_mutex_init(&a.lock, NULL);
    struct postcopy_in *pc = postcopy_in_start(mem, record, &a, NULL, &err);
    assert_non_null(pc);
    pthread_t t1 = touch(b->host + 0x3000 + 17);
    wait_asked(&a, 1);
    assert_string_equal(a.name[0], "pc.ram");
    assert_int_equal(a.start[0], 0x3000);
    /* A second thread on the same page: not asked again. */
    pthread_t t2 = touch(b->host + 0x3000 + 17);
    usleep(50000);
    assert_int_equal(asked_count(&a), 1);
    uint8_t page[4096];
    memset(page, 0xab, sizeof(page));
    assert_true(postcopy_in_place(pc, 0, 0x3000, page, NULL));
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(touched, 0xab);
    /* Placing again keeps what is there. */
    assert_true(postcopy_in_place(pc, 0, 0x3000, NULL, NULL));
    assert_int_equal(b->host[0x3000], 0xab);
    assert_int_equal(postcopy_in_requests(pc), 1);
    assert_true(postcopy_in_stop(pc, NULL));
    pthread_mutex_destroy(&a.lock);
    memory_free(mem);
}

/* The fault thread started before the switch (at ADVISE) serves faults
 * once LISTEN registered RAM; blocktime needs a userfaultfd that names
 * the faulting thread, which this one was not opened for. */
static void test_started_early_listening_late(void **state)
{
    (void)state;
    struct machine_memory *mem = missing_memory(false);
    if (!mem) {
        skip();
    }
    Error *err = NULL;
    struct ram_block *b = memory_main_block(mem);
    struct asked a = { .n = 0 };
    pthread_mutex_init(&a.lock, NULL);
    struct postcopy_in *pc = postcopy_in_new(mem, record, &a, false, &err);
    assert_non_null(pc);
    assert_false(postcopy_in_thread_id(pc));
    int tid = 1;
    struct postcopy_blocktime *bt = postcopy_bt_new(1, &tid);
    assert_string_equal(ERR_OF(postcopy_in_listen(pc, bt, &e_)),
                        "postcopy-blocktime: this userfaultfd was opened "
                        "without UFFD_FEATURE_THREAD_ID");
    postcopy_bt_free(bt);
    assert_true(postcopy_in_listen(pc, NULL, NULL));
    pthread_t t = touch(b->host + 0x5000);
    wait_asked(&a, 1);
    assert_string_equal(a.name[0], "pc.ram");
    assert_int_equal(a.start[0], 0x5000);
    uint8_t page[4096];
    memset(page, 0x5a, sizeof(page));
    assert_true(postcopy_in_place(pc, 0, 0x5000, page, NULL));
    pthread_join(t, NULL);
    assert_int_equal(touched, 0x5a);
    assert_true(postcopy_in_stop(pc, NULL));
    pthread_mutex_destroy(&a.lock);
    memory_free(mem);
}

/* Recovery: a page asked for that never came (the link died) is asked
 * for again, naming its block, when the fault thread resends; one that
 * came is not; the received bitmap tells the two apart. */
static void test_resend_after_recovery(void **state)
{
    (void)state;
    struct machine_memory *mem = missing_memory(false);
    if (!mem) {
        skip();
    }
    Error *err = NULL;
    struct ram_block *b = memory_main_block(mem);
    struct asked a = { .n = 0 };
    pthread_mutex_init(&a.lock, NULL);
    struct postcopy_in *pc = postcopy_in_start(mem, record, &a, NULL, &err);
    assert_non_null(pc);
    /* Page 0x5000 arrived; the guest waits for 0x3000. */
    uint8_t page[4096];
    memset(page, 0x5a, sizeof(page));
    assert_true(postcopy_in_place(pc, 0, 0x5000, page, NULL));
    pthread_t t1 = touch(b->host + 0x3000 + 5);
    wait_asked(&a, 1);
    unsigned long *got = postcopy_in_received(pc, 0, NULL);
    assert_non_null(got);
    assert_int_equal(got[0] & 0xff, 1ul << 5);
    free(got);
    /* The link died and came back. */
    postcopy_in_forget_block(pc);
    postcopy_in_resend(pc);
    wait_asked(&a, 2);
    assert_string_equal(a.name[1], "pc.ram");
    assert_int_equal(a.start[1], 0x3000);
    assert_true(postcopy_in_place(pc, 0, 0x3000, page, NULL));
    pthread_join(t1, NULL);
    assert_int_equal(touched, 0x5a);
    /* Nothing is missing any more: a resend asks for nothing. */
    postcopy_in_resend(pc);
    usleep(50000);
    assert_int_equal(asked_count(&a), 2);
    assert_true(postcopy_in_stop(pc, NULL));
    pthread_mutex_destroy(&a.lock);
    memory_free(mem);
}

#define MS 1000000ull

/* Two vCPUs blocked over overlapping spans: each one's blocktime is its
 * own waits, the total only the span in which both were blocked, the
 * latency the mean of the waits. */
static void test_blocktime_overlap(void **state)
{
    (void)state;
    int tids[2] = { 101, 102 };
    struct postcopy_blocktime *bt = postcopy_bt_new(2, tids);
    assert_int_equal(postcopy_bt_vcpu(bt, 102), 1);
    assert_int_equal(postcopy_bt_vcpu(bt, 7), -1);
    /* vCPU 0 waits on page 5 over [100, 300], vCPU 1 on page 9 over
     * [150, 400]: both blocked over [150, 300]. */
    postcopy_bt_begin(bt, 0, 0, 5, 100 * MS);
    postcopy_bt_begin(bt, 1, 0, 9, 150 * MS);
    /* The same fault read again changes nothing; another page of
     * another block wakes nobody. */
    postcopy_bt_begin(bt, 0, 0, 5, 160 * MS);
    postcopy_bt_end(bt, 1, 5, 200 * MS);
    assert_true(postcopy_bt_any_waiting(bt));
    postcopy_bt_end(bt, 0, 5, 300 * MS);
    postcopy_bt_end(bt, 0, 9, 400 * MS);
    assert_false(postcopy_bt_any_waiting(bt));
    struct postcopy_bt_stats st;
    postcopy_bt_read(bt, &st);
    assert_int_equal(st.nvcpus, 2);
    assert_int_equal(st.vcpu_ns[0], 200 * MS);
    assert_int_equal(st.vcpu_ns[1], 250 * MS);
    assert_int_equal(st.total_ns, 150 * MS);
    assert_int_equal(st.faults, 2);
    assert_int_equal(st.wait_ns, 450 * MS);
    /* Both on one page: one placing ends both, the span once. */
    postcopy_bt_begin(bt, 0, 0, 3, 1000 * MS);
    postcopy_bt_begin(bt, 1, 0, 3, 1010 * MS);
    postcopy_bt_end(bt, 0, 3, 1030 * MS);
    postcopy_bt_read(bt, &st);
    assert_int_equal(st.total_ns, (150 + 20) * MS);
    assert_int_equal(st.vcpu_ns[0], (200 + 30) * MS);
    assert_int_equal(st.vcpu_ns[1], (250 + 20) * MS);
    /* Waits that never overlap add nothing to the total. */
    postcopy_bt_begin(bt, 0, 0, 4, 2000 * MS);
    postcopy_bt_end(bt, 0, 4, 2050 * MS);
    postcopy_bt_begin(bt, 1, 0, 4, 2100 * MS);
    postcopy_bt_end(bt, 0, 4, 2150 * MS);
    postcopy_bt_read(bt, &st);
    assert_int_equal(st.total_ns, 170 * MS);
    assert_int_equal(st.faults, 6);
    /* A reset starts afresh. */
    postcopy_bt_reset(bt, 1, tids);
    postcopy_bt_read(bt, &st);
    assert_int_equal(st.nvcpus, 1);
    assert_int_equal(st.faults, 0);
    assert_int_equal(st.total_ns, 0);
    postcopy_bt_free(bt);
}

/* Three vCPUs: the total grows only while the third is blocked too. */
static void test_blocktime_needs_all(void **state)
{
    (void)state;
    int tids[3] = { 1, 2, 3 };
    struct postcopy_blocktime *bt = postcopy_bt_new(3, tids);
    postcopy_bt_begin(bt, 0, 0, 1, 0);
    postcopy_bt_begin(bt, 1, 0, 2, 10 * MS);
    postcopy_bt_end(bt, 0, 2, 40 * MS); /* two of three: no total */
    postcopy_bt_begin(bt, 1, 0, 2, 50 * MS);
    postcopy_bt_begin(bt, 2, 0, 3, 60 * MS); /* all three from 60 */
    postcopy_bt_end(bt, 0, 3, 75 * MS);      /* to 75 */
    postcopy_bt_end(bt, 0, 1, 90 * MS);
    postcopy_bt_end(bt, 0, 2, 95 * MS);
    struct postcopy_bt_stats st;
    postcopy_bt_read(bt, &st);
    assert_int_equal(st.total_ns, 15 * MS);
    assert_int_equal(st.vcpu_ns[0], 90 * MS);
    assert_int_equal(st.vcpu_ns[1], (30 + 45) * MS);
    assert_int_equal(st.vcpu_ns[2], 15 * MS);
    assert_int_equal(st.faults, 4);
    postcopy_bt_free(bt);
}

static _Atomic int waiter_tid;
static atomic_bool waiter_go;

static void *waiter(void *p)
{
    (void)p;
    atomic_store(&waiter_tid, (int)gettid());
    while (!atomic_load(&waiter_go)) {
        usleep(1000);
    }
    touched = *touch_at;
    return NULL;
}

/* With blocktime on, the fault thread knows which thread faulted: a
 * "vCPU" blocked until its page is placed has that wait accounted; a
 * page placed with nobody waiting accounts nothing. */
static void test_blocktime_of_a_fault(void **state)
{
    (void)state;
    struct machine_memory *mem = missing_memory(true);
    if (!mem) {
        skip();
    }
    Error *err = NULL;
    struct ram_block *b = memory_main_block(mem);
    struct asked a = { .n = 0 };
    pthread_mutex_init(&a.lock, NULL);
    touch_at = b->host + 0x5000;
    atomic_store(&waiter_tid, 0);
    atomic_store(&waiter_go, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter, NULL), 0);
    while (!atomic_load(&waiter_tid)) {
        usleep(1000);
    }
    int tids[1] = { atomic_load(&waiter_tid) };
    struct postcopy_blocktime *bt = postcopy_bt_new(1, tids);
    struct postcopy_in *pc = postcopy_in_start(mem, record, &a, bt, &err);
    assert_non_null(pc);
    uint8_t page[4096];
    memset(page, 0x5a, sizeof(page));
    assert_true(postcopy_in_place(pc, 0, 0x9000, page, NULL));
    atomic_store(&waiter_go, true);
    wait_asked(&a, 1);
    usleep(20000);
    assert_true(postcopy_in_place(pc, 0, 0x5000, page, NULL));
    pthread_join(t, NULL);
    assert_int_equal(touched, 0x5a);
    struct postcopy_bt_stats st;
    postcopy_bt_read(bt, &st);
    assert_int_equal(st.faults, 1);
    assert_int_equal(st.vcpu_faults[0], 1);
    assert_true(st.vcpu_ns[0] >= 20 * MS);
    assert_int_equal(st.total_ns, st.vcpu_ns[0]); /* one vCPU: all of it */
    assert_int_equal(st.wait_ns, st.vcpu_ns[0]);
    assert_false(postcopy_bt_any_waiting(bt));
    assert_true(postcopy_in_stop(pc, NULL));
    postcopy_bt_free(bt);
    pthread_mutex_destroy(&a.lock);
    memory_free(mem);
}

/* The ranges of the DISCARD commands in buf (the main block only);
 * returns how many, at most max. */
static int discard_ranges(const uint8_t *buf, size_t len, uint64_t *start,
                          uint64_t *rlen, int max)
{
    int n = 0;
    size_t at = 0;
    while (at < len) {
        assert_true(len - at >= 5);
        assert_int_equal(buf[at], STREAM_COMMAND);
        assert_int_equal(be16_get(buf + at + 1),
                         STREAM_CMD_POSTCOPY_RAM_DISCARD);
        uint16_t clen = be16_get(buf + at + 3);
        assert_true(len - at - 5 >= clen);
        struct postcopy_discard d;
        assert_true(postcopy_discard_parse(buf + at + 5, clen, &d, NULL));
        assert_string_equal(d.name, "pc.ram");
        for (unsigned i = 0; i < d.n; i++) {
            assert_true(n < max);
            start[n] = d.start[i] / 4096;
            rlen[n] = d.len[i] / 4096;
            n++;
        }
        at += 5 + clen;
    }
    return n;
}

/* The discard set as the source sends it; *pages: how many it named. */
static int take_discards(struct ram_state *rs, uint64_t *pages, uint64_t *start,
                         uint64_t *rlen, int max)
{
    Channel *f = chan_new_mem_writer();
    assert_true(ram_postcopy_send_discards(rs, f, pages, NULL));
    chan_flush(f);
    size_t len = 0;
    uint8_t *buf = chan_mem_take(f, &len);
    chan_close(f, NULL);
    int n = discard_ranges(buf, len, start, rlen, max);
    free(buf);
    return n;
}

/* Source: the discard set names the pages sent and dirty again, one range
 * per run (runs across bitmap words, a whole word, the last page), and
 * forgets them as sent: the next set (the switch's, after the one sent
 * while the guest still ran) names only the pages sent, clean then and
 * dirtied since. */
static void test_discard_set_then_only_newly_dirtied(void **state)
{
    (void)state;
    struct machine_config cfg = {
        .ram_size = 4 << 20, .smp = 1, .accel = "emu", .guest = "memtest"
    };
    Error *err = NULL;
    struct machine *m = machine_new(&cfg, &err);
    if (!m) {
        fail_msg("machine_new: %s", error_get_pretty(err));
    }
    struct ram_state *rs = fixture_register_ram(m);
    struct ram_params p = { .postcopy_ram = true };
    assert_true(ram_state_configure(rs, &p, NULL));
    struct section_registry *reg = machine_registry(m);
    Channel *f = chan_new_mem_writer();
    assert_true(stream_save_setup(reg, f, NULL));
    int r = 0;
    for (int i = 0; i < 10000 && r == 0; i++) {
        r = stream_save_iterate(reg, f, NULL);
    }
    assert_int_equal(r, 1); /* every page went once */
    chan_close(f, NULL);

    struct ram_block *b = memory_main_block(machine_memory(m));
    uint64_t last = b->npages - 1;
    ram_block_set_dirty(b, 3 * 4096, 2 * 4096);
    ram_block_set_dirty(b, 63 * 4096, 3 * 4096);
    ram_block_set_dirty(b, 128 * 4096, 64 * 4096);
    ram_block_set_dirty(b, last * 4096, 4096);
    uint64_t start[16], len[16], pages;
    int n = take_discards(rs, &pages, start, len, 16);
    assert_int_equal(pages, 2 + 3 + 64 + 1);
    assert_int_equal(n, 4);
    assert_int_equal(start[0], 3);
    assert_int_equal(len[0], 2);
    assert_int_equal(start[1], 63);
    assert_int_equal(len[1], 3);
    assert_int_equal(start[2], 128);
    assert_int_equal(len[2], 64);
    assert_int_equal(start[3], last);
    assert_int_equal(len[3], 1);

    /* Page 4 was named already (still dirty: it goes after the switch);
     * page 10 was sent and clean, and is dirty now. */
    ram_block_set_dirty(b, 4 * 4096, 4096);
    ram_block_set_dirty(b, 10 * 4096, 4096);
    n = take_discards(rs, &pages, start, len, 16);
    assert_int_equal(pages, 1);
    assert_int_equal(n, 1);
    assert_int_equal(start[0], 10);
    assert_int_equal(len[0], 1);
    n = take_discards(rs, &pages, start, len, 16);
    assert_int_equal(pages, 0);
    assert_int_equal(n, 0);

    stream_save_cleanup(reg);
    machine_free(m);
    ram_state_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_advise),
        cmocka_unit_test(test_discard_round_trip),
        cmocka_unit_test(test_discard_hostile),
        cmocka_unit_test(test_discard_set_then_only_newly_dirtied),
        cmocka_unit_test(test_range_check),
        cmocka_unit_test(test_req_pages_parse),
        cmocka_unit_test(test_reader_passes_requests),
        cmocka_unit_test(test_reader_refuses_long_request),
        cmocka_unit_test(test_recv_bitmap_wire),
        cmocka_unit_test(test_recv_bitmap_and_resume_ack),
        cmocka_unit_test(test_recv_bitmap_refused),
        cmocka_unit_test(test_recv_bitmap_in_precopy_refused),
        cmocka_unit_test(test_fault_asks_once_and_placing_wakes),
        cmocka_unit_test(test_started_early_listening_late),
        cmocka_unit_test(test_resend_after_recovery),
        cmocka_unit_test(test_blocktime_overlap),
        cmocka_unit_test(test_blocktime_needs_all),
        cmocka_unit_test(test_blocktime_of_a_fault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
