/* The section stream: framing, live handlers, the golden file, and the
 * loader's rejections (with the section and offset named). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/bytebuf.h"
#include "tests/unit/testdev.h"
#include "util/be.h"
#include "vmstate/channel.h"
#include "vmstate/stream-format.h"
#include "vmstate/stream.h"

#define GOLDEN "tests/fixtures/golden/testset-0.1.0.stream"

struct blob {
    uint8_t *data;
    size_t len;
};

static struct blob save_set(struct testset *set)
{
    struct section_registry *reg = section_registry_new(TESTSET_MACHINE);
    testset_register(set, reg);
    Channel *w = chan_new_mem_writer();
    Error *err = NULL;
    if (!stream_save_all(reg, w, &err)) {
        fail_msg("save: %s", error_get_pretty(err));
    }
    struct blob b;
    b.data = chan_mem_take(w, &b.len);
    chan_close(w, NULL);
    section_registry_free(reg);
    return b;
}

/* Loads b into a fresh test set; NULL on success, else the error. */
static char *load_set(const uint8_t *data, size_t len, struct testset *out)
{
    struct section_registry *reg = section_registry_new(TESTSET_MACHINE);
    testset_init(out);
    testset_register(out, reg);
    Channel *r = chan_new_mem_reader(data, len, "stream");
    Error *err = NULL;
    bool ok = stream_load(reg, r, NULL, &err);
    chan_close(r, NULL);
    section_registry_free(reg);
    char *msg = ok ? NULL : strdup(error_get_pretty(err));
    error_free(err);
    return msg;
}

static void expect_rejected(const uint8_t *data, size_t len, const char *what)
{
    struct testset set;
    char *err = load_set(data, len, &set);
    if (!err) {
        fail_msg("stream was accepted, expected an error containing '%s'",
                 what);
    }
    if (!strstr(err, what)) {
        fail_msg("error '%s' does not contain '%s'", err, what);
    }
    free(err);
}

static void test_round_trip(void **state)
{
    struct testset src, dst;
    testset_init(&src);
    testset_fill(&src);
    struct blob b = save_set(&src);
    char *err = load_set(b.data, b.len, &dst);
    assert_null(err);
    assert_null(testdev_diff(&src.dev[0], &dst.dev[0]));
    assert_null(testdev_diff(&src.dev[1], &dst.dev[1]));
    assert_int_equal(dst.led.brightness, 200);
    assert_true(dst.led.on);
    free(b.data);
}

static void test_framing(void **state)
{
    struct testset src;
    testset_init(&src);
    testset_fill(&src);
    struct blob b = save_set(&src);
    const uint8_t *p = b.data;
    /* magic, version 3, configuration with the machine name */
    static const uint8_t head[] = { 'Q', 'E', 'V', 'M', 0, 0, 0, 3, 0x07, 0, 0,
                                    0, 10, 'h', 'o', 'p', '-', 't', 'e', 's',
                                    't', '-', '1',
                                    /* FULL, section id 0, "testdev" */
                                    0x04, 0, 0, 0, 0, 7, 't', 'e', 's', 't',
                                    'd', 'e', 'v', 0, 0, 0, 0, /* instance */
                                    0, 0, 0, 3 /* version */ };
    assert_memory_equal(p, head, sizeof(head));
    /* The vmdesc trailer closes the stream: 00 EOF, 06, be32 length. */
    uint8_t *led = memmem(b.data, b.len, "\x07testled", 8);
    assert_non_null(led);
    uint8_t *eof = led - 5 + (5 + 8 + 8 + 2 + 5); /* after testled's section */
    assert_int_equal(eof[0], 0x00);
    assert_int_equal(eof[1], 0x06);
    uint32_t len = be32_get(eof + 2);
    assert_int_equal(eof + 6 + len, b.data + b.len);
    json_t *j = json_loadb((char *)eof + 6, len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "page_size")), 4096);
    json_t *devs = json_object_get(j, "devices");
    assert_int_equal(json_array_size(devs), 3);
    json_t *d1 = json_array_get(devs, 1);
    assert_string_equal(json_string_value(json_object_get(d1, "name")),
                        "testdev");
    assert_int_equal(json_integer_value(json_object_get(d1, "instance_id")), 1);
    assert_string_equal(json_string_value(json_object_get(d1, "vmsd_name")),
                        "testdev");
    json_decref(j);
    free(b.data);
}

/* ---- live handlers ---- */

struct counter_live {
    int chunks_total; /* chunks to send while running */
    int sent;
    int received;
    int started, ended;
    bool saw_setup, saw_complete;
    int load_calls;
};

static bool cl_setup(Channel *f, void *opaque, Error **errp)
{
    struct counter_live *c = opaque;
    c->sent = 0;
    chan_put_be32(f, 0xabcd0000u);
    c->saw_setup = true;
    return true;
}

static int cl_iterate(Channel *f, void *opaque, Error **errp)
{
    struct counter_live *c = opaque;
    if (c->sent < c->chunks_total) {
        chan_put_be32(f, (uint32_t)c->sent++);
    } else {
        chan_put_be32(f, 0xffffffffu); /* nothing this round */
    }
    return c->sent >= c->chunks_total;
}

static bool cl_complete(Channel *f, void *opaque, Error **errp)
{
    struct counter_live *c = opaque;
    chan_put_be32(f, 0xe0d0e0d0u);
    c->saw_complete = true;
    return true;
}

static uint64_t cl_pending(void *opaque)
{
    struct counter_live *c = opaque;
    return (uint64_t)(c->chunks_total - c->sent) * 4;
}

static bool cl_load(Channel *f, void *opaque, int version_id, Error **errp)
{
    struct counter_live *c = opaque;
    uint32_t v = chan_get_be32(f);
    c->load_calls++;
    if (v == 0xabcd0000u) {
        c->started++;
    } else if (v == 0xe0d0e0d0u) {
        c->ended++;
    } else if (v != 0xffffffffu) {
        if (v != (uint32_t)c->received) {
            error_setg(errp, "chunk %u out of order (expected %d)", v,
                       c->received);
            return false;
        }
        c->received++;
    }
    return true;
}

static const struct live_handler_ops cl_ops = {
    .save_setup = cl_setup,
    .save_iterate = cl_iterate,
    .save_complete = cl_complete,
    .save_pending = cl_pending,
    .load_state = cl_load,
};

static void test_live_handler_iterations(void **state)
{
    struct testset src;
    testset_init(&src);
    testset_fill(&src);
    struct counter_live cl = { .chunks_total = 5 };
    struct section_registry *reg = section_registry_new(TESTSET_MACHINE);
    assert_int_equal(
        section_register_live(reg, "counter", 0, 1, &cl_ops, &cl, NULL), 0);
    testset_register(&src, reg);
    Channel *w = chan_new_mem_writer();
    assert_true(stream_save_setup(reg, w, NULL));
    assert_int_equal(stream_save_pending(reg), 20);
    int rounds = 0, r;
    while ((r = stream_save_iterate(reg, w, NULL)) == 0) {
        rounds++;
    }
    assert_int_equal(r, 1);
    assert_int_equal(rounds, 4); /* the fifth round reports done */
    assert_int_equal(stream_save_pending(reg), 0);
    assert_true(stream_save_complete(reg, w, NULL));
    stream_save_cleanup(reg);
    section_registry_free(reg);
    struct blob b;
    b.data = chan_mem_take(w, &b.len);
    chan_close(w, NULL);
    /* START, five PARTs, END; each with its footer. */
    static const uint8_t start[] = { 0x01, 0,    0,   0,   0,   7,    'c',  'o',
                                     'u',  'n',  't', 'e', 'r', 0,    0,    0,
                                     0,    0,    0,   0,   1,   0xab, 0xcd, 0,
                                     0,    0x7e, 0,   0,   0,   0 };
    uint8_t *p = memmem(b.data, b.len, start, sizeof(start));
    assert_non_null(p);
    static const uint8_t part3[] = { 0x02, 0, 0,    0, 0, 0, 0,
                                     0,    3, 0x7e, 0, 0, 0, 0 };
    assert_non_null(memmem(b.data, b.len, part3, sizeof(part3)));
    static const uint8_t end[] = { 0x03, 0,    0,    0, 0, 0xe0, 0xd0,
                                   0xe0, 0xd0, 0x7e, 0, 0, 0,    0 };
    uint8_t *e = memmem(b.data, b.len, end, sizeof(end));
    assert_non_null(e);
    /* Devices come after the live handler's END. */
    assert_non_null(memmem(e, b.len - (size_t)(e - b.data),
                           "\x04\0\0\0\x01\x07testdev", 12));

    struct testset dst;
    testset_init(&dst);
    struct counter_live in = { 0 };
    reg = section_registry_new(TESTSET_MACHINE);
    section_register_live(reg, "counter", 0, 1, &cl_ops, &in, NULL);
    testset_register(&dst, reg);
    Channel *rd = chan_new_mem_reader(b.data, b.len, "s");
    Error *err = NULL;
    bool ok = stream_load(reg, rd, NULL, &err);
    if (!ok) {
        fail_msg("%s", error_get_pretty(err));
    }
    assert_int_equal(in.started, 1);
    assert_int_equal(in.received, 5);
    assert_int_equal(in.ended, 1);
    assert_int_equal(in.load_calls, 7);
    assert_null(testdev_diff(&src.dev[1], &dst.dev[1]));
    chan_close(rd, NULL);
    section_registry_free(reg);
    free(b.data);
}

/* A live section with always more to send: it writes until the rate
 * limit's window is spent. */
static int hog_iterate(Channel *f, void *opaque, Error **errp)
{
    int *calls = opaque;
    (*calls)++;
    while (!chan_rate_limited(f)) {
        chan_put_be32(f, 0x686f6721u);
    }
    return 0;
}

static const struct live_handler_ops hog_ops = {
    .save_iterate = hog_iterate,
};

/* A drive the guest writes as fast as the link goes fills every window
 * of block migration; RAM, registered after it, must still get windows
 * of its own (or its first pass never ends and nothing converges). */
static void test_a_section_that_fills_every_window_starves_none(void **state)
{
    int hog_calls = 0;
    struct counter_live cl = { .chunks_total = 1000 };
    struct section_registry *reg = section_registry_new(TESTSET_MACHINE);
    assert_int_equal(
        section_register_live(reg, "hog", 0, 1, &hog_ops, &hog_calls, NULL), 0);
    assert_int_equal(
        section_register_live(reg, "counter", 0, 1, &cl_ops, &cl, NULL), 0);
    Channel *w = chan_new_mem_writer();
    assert_true(stream_save_setup(reg, w, NULL));
    chan_set_rate_limit(w, 4096);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(stream_save_iterate(reg, w, NULL), 0);
        chan_rate_limit_wait(w);
    }
    /* The first window went to the hog alone; each later one began
     * where the last ran out, with the counter (a host that stalls the
     * test past a window's end can give the counter one more). */
    assert_int_equal(hog_calls, 4);
    assert_true(cl.sent >= 3);
    stream_save_cleanup(reg);
    section_registry_free(reg);
    chan_close(w, NULL);
}

static void test_registration_rules(void **state)
{
    struct testset s;
    testset_init(&s);
    struct section_registry *reg = section_registry_new("m");
    Error *err = NULL;
    assert_int_equal(
        section_register_vmsd(reg, "dev", -1, &testled_vmsd, &s.led, NULL), 0);
    assert_int_equal(
        section_register_vmsd(reg, "dev", -1, &testled_vmsd, &s.led, NULL), 1);
    assert_int_equal(
        section_register_vmsd(reg, "dev", 1, &testled_vmsd, &s.led, &err), -1);
    assert_non_null(strstr(error_get_pretty(err), "already registered"));
    error_free(err);
    section_unregister(reg, "dev", 0);
    assert_int_equal(
        section_register_vmsd(reg, "dev", -1, &testled_vmsd, &s.led, NULL), 0);
    section_registry_free(reg);
}

/* ---- the golden file ---- */

static struct blob read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fail_msg("cannot open %s (run from the source tree)", path);
    }
    struct blob b = { malloc(1 << 20), 0 };
    b.len = fread(b.data, 1, 1 << 20, fp);
    fclose(fp);
    assert_true(b.len > 0);
    return b;
}

static void test_golden_loads_every_value(void **state)
{
    struct blob g = read_file(GOLDEN);
    struct testset got, want;
    char *err = load_set(g.data, g.len, &got);
    if (err) {
        fail_msg("golden stream rejected: %s", err);
    }
    testset_init(&want);
    testset_fill(&want);
    /* The checksum is computed at save time. */
    want.dev[0].checksum = got.dev[0].checksum;
    want.dev[1].checksum = got.dev[1].checksum;
    assert_null(testdev_diff(&want.dev[0], &got.dev[0]));
    assert_null(testdev_diff(&want.dev[1], &got.dev[1]));
    /* Spot checks, spelled out so a broken testdev_fill cannot hide. */
    assert_int_equal(got.dev[0].s8, -5);
    assert_true(got.dev[0].s64 == -1234567890123456789ll);
    assert_true(got.dev[1].u64 == 0x0123456789abce53ull);
    assert_memory_equal(got.dev[0].vbuf, "hello", 5);
    assert_int_equal(got.dev[0].fifo_len, 3);
    assert_int_equal(got.dev[0].overrun, 9);
    assert_int_equal(got.dev[0].timer.period, 250);
    assert_int_equal(got.dev[1].timer.period, 0);
    assert_int_equal(got.dev[0].cursor->x, 640);
    assert_null(got.dev[0].slots[1]);
    assert_int_equal(got.dev[0].slots[2]->y, 6);
    assert_int_equal(got.led.brightness, 200);
    free(g.data);
}

static void test_writer_still_writes_golden_bytes(void **state)
{
    /* If this fails the format changed: add a new golden file beside the
     * old one (and keep loading the old one) rather than replacing it. */
    struct blob g = read_file(GOLDEN);
    struct testset set;
    testset_init(&set);
    testset_fill(&set);
    struct blob b = save_set(&set);
    assert_int_equal(b.len, g.len);
    assert_memory_equal(b.data, g.data, g.len);
    free(b.data);
    free(g.data);
}

/* ---- rejections ---- */

static struct blob golden_copy(void)
{
    return read_file(GOLDEN);
}

static void test_reject_bad_header(void **state)
{
    struct blob g = golden_copy();
    g.data[0] = 'X';
    expect_rejected(g.data, g.len, "magic");
    g.data[0] = 'Q';
    g.data[7] = 2;
    expect_rejected(g.data, g.len, "unsupported stream version 2");
    g.data[7] = 3;
    g.data[8] = 0x04;
    expect_rejected(g.data, g.len, "expected the configuration section");
    g.data[8] = 0x07;
    g.data[13] = 'X'; /* machine name */
    expect_rejected(g.data, g.len, "machine type mismatch");
    free(g.data);
}

static void test_reject_machine_name_of_256_bytes(void **state)
{
    /* The name buffer holds 255 bytes and the NUL after them. */
    struct buf b = { 0 };
    put_be32(&b, STREAM_MAGIC);
    put_be32(&b, STREAM_VERSION);
    put_u8(&b, STREAM_CONFIGURATION);
    put_be32(&b, 256);
    for (int i = 0; i < 256; i++) {
        put_u8(&b, 'm');
    }
    put_u8(&b, STREAM_EOF);
    expect_rejected(b.d, b.len, "machine name of 256 bytes");
    free(b.d);
}

static void test_reject_unknown_section(void **state)
{
    struct blob g = golden_copy();
    /* A registry without testled. */
    struct section_registry *reg = section_registry_new(TESTSET_MACHINE);
    struct testset set;
    testset_init(&set);
    section_register_vmsd(reg, "testdev", 0, &testdev_vmsd, &set.dev[0], NULL);
    section_register_vmsd(reg, "testdev", 1, &testdev_vmsd, &set.dev[1], NULL);
    Channel *r = chan_new_mem_reader(g.data, g.len, "s");
    Error *err = NULL;
    assert_false(stream_load(reg, r, NULL, &err));
    assert_non_null(strstr(error_get_pretty(err),
                           "unknown section 'testled' "
                           "instance 0 at offset"));
    error_free(err);
    chan_close(r, NULL);
    section_registry_free(reg);
    free(g.data);
}

/* Finds the FULL record of testled: 04, id, 07 "testled". */
static uint8_t *find_led(struct blob *g)
{
    uint8_t *p = memmem(g->data, g->len, "\x07testled", 8);
    assert_non_null(p);
    return p - 5;
}

static void test_reject_duplicate_section(void **state)
{
    struct blob g = golden_copy();
    uint8_t *led = find_led(&g);
    /* testled's section: header 5+8+8, 2 bytes of state, 5 of footer */
    size_t sec = 5 + 8 + 8 + 2 + 5;
    assert_int_equal(led[sec], 0x00); /* EOF follows */
    size_t at = (size_t)(led - g.data);
    uint8_t *d = malloc(g.len + sec);
    memcpy(d, g.data, at + sec);
    memcpy(d + at + sec, led, sec);
    memcpy(d + at + 2 * sec, g.data + at + sec, g.len - at - sec);
    expect_rejected(d, g.len + sec, "duplicate section 'testled' instance 0");
    free(d);
    free(g.data);
}

static void test_reject_bad_footer(void **state)
{
    struct blob g = golden_copy();
    uint8_t *led = find_led(&g);
    uint8_t *footer = led + 5 + 8 + 8 + 2;
    assert_int_equal(footer[0], 0x7e);
    footer[4] ^= 0x01;
    expect_rejected(g.data, g.len, "footer at offset");
    footer[4] ^= 0x01;
    footer[0] = 0x7f;
    char off[64];
    snprintf(off, sizeof(off), "bad footer at offset %zu",
             (size_t)(footer - g.data));
    expect_rejected(g.data, g.len, off);
    free(g.data);
}

static void test_reject_unknown_record_and_orphan_part(void **state)
{
    struct blob g = golden_copy();
    uint8_t *led = find_led(&g);
    led[0] = 0x09;
    expect_rejected(g.data, g.len, "unknown record type 0x09");
    led[0] = 0x02;
    expect_rejected(g.data, g.len, "which no START record opened");
    led[0] = 0x01;
    expect_rejected(g.data, g.len, "START record for a device section");
    free(g.data);
}

static void test_reject_truncated_anywhere(void **state)
{
    struct blob g = golden_copy();
    for (size_t cut = 0; cut < g.len; cut++) {
        struct testset set;
        char *err = load_set(g.data, cut, &set);
        if (!err) {
            fail_msg("stream truncated to %zu of %zu bytes was accepted", cut,
                     g.len);
        }
        free(err);
    }
    free(g.data);
}

/* Flipped bits either load or are rejected; never a crash or a hang (the
 * sanitizer build watches for out-of-bounds access). */
static void test_bit_flips_never_crash(void **state)
{
    struct blob g = golden_copy();
    uint8_t *d = malloc(g.len);
    unsigned seed = 12345;
    size_t rejected = 0, loaded = 0;
    for (size_t pos = 0; pos < g.len; pos++) {
        for (int round = 0; round < 3; round++) {
            memcpy(d, g.data, g.len);
            seed = seed * 1103515245u + 12345u;
            d[pos] ^= (uint8_t)(1u << ((seed >> 16) % 8));
            if (round == 2) { /* and a second random byte elsewhere */
                seed = seed * 1103515245u + 12345u;
                d[(seed >> 8) % g.len] ^= (uint8_t)(seed >> 24 | 1);
            }
            struct testset set;
            char *err = load_set(d, g.len, &set);
            if (err) {
                assert_true(strlen(err) > 0);
                rejected++;
            } else {
                loaded++;
            }
            free(err);
        }
    }
    /* Flips in headers and framing must be caught. */
    assert_true(rejected > g.len / 4);
    print_message("# bit flips: %zu rejected, %zu loaded\n", rejected, loaded);
    free(d);
    free(g.data);
}

static void test_schema_dump(void **state)
{
    struct testset set;
    testset_init(&set);
    struct section_registry *reg = section_registry_new(TESTSET_MACHINE);
    testset_register(&set, reg);
    char path[] = "/tmp/hop-schema-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    assert_true(stream_dump_schema(reg, path, NULL));
    json_t *j = json_load_file(path, 0, NULL);
    unlink(path);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(j, "vmschkmachine"), "Name")),
                        TESTSET_MACHINE);
    json_t *td = json_object_get(j, "testdev");
    assert_int_equal(json_integer_value(json_object_get(td, "version_id")), 3);
    assert_int_equal(
        json_integer_value(json_object_get(td, "minimum_version_id")), 2);
    assert_non_null(
        json_object_get(json_object_get(td, "Description"), "Fields"));
    assert_non_null(json_object_get(j, "testled"));
    json_decref(j);
    Error *err = NULL;
    assert_false(stream_dump_schema(reg, "/nonexistent/dir/x.json", &err));
    assert_non_null(strstr(error_get_pretty(err), "/nonexistent/dir/x.json"));
    error_free(err);
    section_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_live_handler_iterations),
        cmocka_unit_test(test_a_section_that_fills_every_window_starves_none),
        cmocka_unit_test(test_registration_rules),
        cmocka_unit_test(test_golden_loads_every_value),
        cmocka_unit_test(test_writer_still_writes_golden_bytes),
        cmocka_unit_test(test_reject_bad_header),
        cmocka_unit_test(test_reject_machine_name_of_256_bytes),
        cmocka_unit_test(test_reject_unknown_section),
        cmocka_unit_test(test_reject_duplicate_section),
        cmocka_unit_test(test_reject_bad_footer),
        cmocka_unit_test(test_reject_unknown_record_and_orphan_part),
        cmocka_unit_test(test_reject_truncated_anywhere),
        cmocka_unit_test(test_bit_flips_never_crash),
        cmocka_unit_test(test_schema_dump),
    };
    return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}
