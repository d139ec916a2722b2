/* Decoding device sections from vmdesc JSON: hop's golden stream against
 * the values the test device set was filled with, each type rule, and
 * bounds on hostile descriptions. */
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

#include "tests/unit/testdev.h"
#include "vmstate/stream-walk.h"
#include "vmstate/vmdesc-decode.h"

#define GOLDEN "tests/fixtures/golden/testset-0.1.0.stream"

struct decoded {
    json_t *vmdesc;
    json_t *dev[3]; /* testdev 0, testdev 1, testled 0 */
    int n;
};

static int decode_body(void *ctx, const struct stream_walk_record *rec,
                       const uint8_t *body, size_t avail, size_t *used,
                       Error **errp)
{
    struct decoded *d = ctx;
    json_t *desc = vmdesc_find_device(d->vmdesc, rec->idstr, rec->instance_id);
    assert_non_null(desc);
    json_t *out;
    if (!vmdesc_decode(desc, body, avail, rec->body_offset, NULL, &out, used,
                       errp)) {
        return STREAM_BODY_ERROR;
    }
    assert_true(d->n < 3);
    d->dev[d->n++] = out;
    return STREAM_BODY_DONE;
}

static const struct stream_walk_ops decode_ops = { .body = decode_body };

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *d = malloc(*len);
    assert_int_equal(fread(d, 1, *len, fp), *len);
    fclose(fp);
    return d;
}

static long long geti(json_t *o, const char *path)
{
    /* path: keys separated by '.', array indexes as numbers */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *v = o;
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, ".")) {
        if (json_is_array(v)) {
            v = json_array_get(v, (size_t)atoi(tok));
        } else {
            v = json_object_get(v, tok);
        }
        if (!v) {
            fail_msg("no '%s' in the decoded device", path);
        }
    }
    if (!json_is_integer(v)) {
        fail_msg("'%s' is not an integer", path);
    }
    return (long long)json_integer_value(v);
}

static const char *gets_(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s) {
        fail_msg("'%s' is not a string", key);
    }
    return s;
}

static void check_testdev(json_t *j, int seed)
{
    struct testdev d;
    testdev_init(&d);
    testdev_fill(&d, seed);
    assert_int_equal(geti(j, "s8"), d.s8);
    assert_int_equal(geti(j, "s16"), d.s16);
    assert_int_equal(geti(j, "s32"), d.s32);
    assert_true(geti(j, "s64") == d.s64);
    assert_int_equal(geti(j, "u8"), d.u8);
    assert_int_equal(geti(j, "u16"), d.u16);
    assert_int_equal(geti(j, "u32"), d.u32);
    assert_true((uint64_t)geti(j, "u64") == d.u64);
    assert_true(json_is_true(json_object_get(j, "flag")));
    for (int i = 0; i < 4; i++) {
        char p[32];
        snprintf(p, sizeof(p), "regs.%d", i);
        assert_int_equal(geti(j, p), d.regs[i]);
    }
    assert_int_equal(json_array_size(json_object_get(j, "v8")), d.n8);
    assert_int_equal(geti(j, "v8.2"), d.v8[2]);
    assert_int_equal(geti(j, "v32.3"), d.v32[3]);
    assert_int_equal(geti(j, "vi32.0"), d.vi32[0]);
    char hex[64] = "";
    for (int i = 0; i < 16; i++) {
        snprintf(hex + 2 * i, 3, "%02x", d.blob[i]);
    }
    assert_string_equal(gets_(j, "blob"), hex);
    assert_string_equal(gets_(j, "vbuf"), "68656c6c6f"); /* "hello" */
    assert_true((uint64_t)geti(j, "timer.expire") == d.timer.expire);
    json_t *period =
        json_object_get(json_object_get(j, "timer"), "td_timer/period");
    assert_true((period != NULL) == (d.timer.period != 0));
    if (period) {
        assert_int_equal(geti(period, "period"), d.timer.period);
    }
    assert_int_equal(geti(j, "path.2.y"), d.path[2].y);
    assert_int_equal(geti(j, "points.1.x"), d.points[1].x);
    assert_int_equal(geti(j, "cursor.x"), d.cursor->x);
    json_t *slots = json_object_get(j, "slots");
    assert_true(json_is_null(json_array_get(slots, 1)));
    assert_int_equal(geti(j, "slots.2.y"), d.slots[2]->y);
    assert_true((uint64_t)geti(j, "added_v3") == d.added_v3);
    assert_true((json_object_get(j, "extra") != NULL) == d.has_extra);
    assert_int_equal(geti(j, "magic"), TESTDEV_MAGIC);
    json_t *fifo = json_object_get(j, "testdev/fifo");
    assert_true((fifo != NULL) == (d.fifo_len > 0));
    if (fifo) {
        assert_int_equal(geti(fifo, "fifo.1"), d.fifo[1]);
        assert_int_equal(geti(fifo, "testdev/fifo/overrun.overrun"), d.overrun);
    }
}

static void test_golden_devices(void **state)
{
    size_t len;
    uint8_t *g = read_file(GOLDEN, &len);
    uint64_t off;
    const char *json;
    size_t jlen;
    assert_true(stream_find_vmdesc(g, len, &off, &json, &jlen));
    struct decoded d = { 0 };
    d.vmdesc = json_loadb(json, jlen, 0, NULL);
    assert_non_null(d.vmdesc);
    Error *err = NULL;
    if (!stream_walk(g, len, &decode_ops, &d, NULL, &err)) {
        fail_msg("%s", error_get_pretty(err));
    }
    assert_int_equal(d.n, 3);
    check_testdev(d.dev[0], 0);
    check_testdev(d.dev[1], 1);
    assert_int_equal(geti(d.dev[2], "brightness"), 200);
    assert_true(json_is_true(json_object_get(d.dev[2], "on")));
    for (int i = 0; i < 3; i++) {
        json_decref(d.dev[i]);
    }
    json_decref(d.vmdesc);
    free(g);
}

/* Decodes bytes with a description given as JSON text. */
static bool decode(const char *desc_json, const uint8_t *data, size_t len,
                   json_t **out, size_t *used, Error **errp)
{
    json_error_t jerr;
    json_t *desc = json_loads(desc_json, 0, &jerr);
    if (!desc) {
        fail_msg("bad test JSON: %s", jerr.text);
    }
    uint8_t *copy = malloc(len ? len : 1); /* exact size for ASan */
    memcpy(copy, data, len);
    bool ok = vmdesc_decode(desc, copy, len, 1000, NULL, out, used, errp);
    free(copy);
    json_decref(desc);
    return ok;
}

static void test_types(void **state)
{
    const char *desc =
        "{\"vmsd_name\": \"t\", \"version\": 1, \"fields\": ["
        "{\"name\": \"a\", \"type\": \"int16\", \"size\": 2},"
        "{\"name\": \"b\", \"type\": \"uint16\", \"size\": 2},"
        "{\"name\": \"c\", \"type\": \"uint64\", \"size\": 8},"
        "{\"name\": \"d\", \"type\": \"bool\", \"size\": 1},"
        "{\"name\": \"e\", \"type\": \"int32 le\", \"size\": 4},"
        "{\"name\": \"f\", \"type\": \"timer\", \"size\": 3},"
        "{\"name\": \"g\", \"type\": \"uint8\", \"size\": 3},"
        "{\"name\": \"h\", \"type\": \"nullptr\", \"size\": 1},"
        "{\"name\": \"i\", \"type\": \"uint8\", \"size\": 1, \"array_len\": 3},"
        "{\"name\": \"j\", \"type\": \"uint8\", \"size\": 1, \"index\": 0},"
        "{\"name\": \"j\", \"type\": \"uint8\", \"size\": 1, \"index\": 1},"
        "{\"name\": \"k\", \"type\": \"mystery\", \"size\": 2}]}";
    const uint8_t
        data
            [] = {
                0xff, 0xfe, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0x01, 0xff, 0xff, 0xff, 0xff, 0xab,
                0xcd, 0xef, 0x01, 0x02, 0x03, '0',  7,    8,    9,
                4,    5,    0xbe, 0xef, 0x7e, /* the footer: not consumed */
            };
    json_t *o;
    size_t used;
    Error *err = NULL;
    assert_true(decode(desc, data, sizeof(data), &o, &used, &err));
    assert_int_equal(used, sizeof(data) - 1);
    assert_int_equal(geti(o, "a"), -2);
    assert_int_equal(geti(o, "b"), 0xfffe);
    assert_string_equal(gets_(o, "c"), "0xffffffffffffffff");
    assert_true(json_is_true(json_object_get(o, "d")));
    assert_int_equal(geti(o, "e"), -1);
    assert_string_equal(gets_(o, "f"), "abcdef");
    assert_string_equal(gets_(o, "g"), "010203");
    assert_true(json_is_null(json_object_get(o, "h")));
    assert_int_equal(geti(o, "i.2"), 9);
    assert_int_equal(geti(o, "j.1"), 5);
    assert_string_equal(gets_(o, "k"), "beef");
    json_decref(o);
}

static void test_structs_and_subsections(void **state)
{
    const char *desc =
        "{\"vmsd_name\": \"dev\", \"fields\": ["
        "{\"name\": \"s\", \"type\": \"struct\", \"size\": 8, \"array_len\": 2,"
        " \"struct\": {\"vmsd_name\": \"pt\", \"fields\": ["
        "   {\"name\": \"x\", \"type\": \"uint16\", \"size\": 2},"
        "   {\"name\": \"y\", \"type\": \"uint16\", \"size\": 2}],"
        "  \"subsections\": [{\"vmsd_name\": \"pt/z\", \"fields\": ["
        "   {\"name\": \"z\", \"type\": \"uint8\", \"size\": 1}]}]}}],"
        "\"subsections\": [{\"vmsd_name\": \"dev/more\", \"fields\": ["
        "   {\"name\": \"m\", \"type\": \"uint32\", \"size\": 4}]}]}";
    /* Each element is 4 bytes of fields and an 11-byte subsection on the
     * wire; the description above claims 8 bytes, so it must fail. */
    const uint8_t elem[] = {
        0, 1, 0, 2, 5, 4, 'p', 't', '/', 'z', 0, 0, 0, 1, 9
    };
    uint8_t data[64];
    size_t n = 0;
    memcpy(data + n, elem, sizeof(elem));
    n += sizeof(elem);
    memcpy(data + n, elem, sizeof(elem));
    n += sizeof(elem);
    const uint8_t more[] = { 5,   8, 'd', 'e', 'v', '/', 'm', 'o', 'r',
                             'e', 0, 0,   0,   1,   0,   0,   1,   0 };
    memcpy(data + n, more, sizeof(more));
    n += sizeof(more);
    json_t *o;
    size_t used;
    Error *err = NULL;
    assert_false(decode(desc, data, n, &o, &used, &err));
    assert_non_null(strstr(error_get_pretty(err), "the vmdesc says 8"));
    error_free(err);
    err = NULL;

    char *good = strdup(desc);
    char *p = strstr(good, "\"size\": 8");
    memcpy(p, "\"size\":15", 9);
    if (!decode(good, data, n, &o, &used, &err)) {
        fail_msg("%s", error_get_pretty(err));
    }
    assert_int_equal(used, n);
    assert_int_equal(geti(o, "s.1.y"), 2);
    json_t *s0 = json_array_get(json_object_get(o, "s"), 0);
    assert_int_equal(geti(json_object_get(s0, "pt/z"), "z"), 9);
    assert_int_equal(geti(json_object_get(o, "dev/more"), "m"), 256);
    json_decref(o);

    /* The wrong subsection name, and a missing subsection. */
    data[n - sizeof(more) + 9] = (uint8_t)'X';
    assert_false(decode(good, data, n, &o, &used, &err));
    assert_non_null(strstr(error_get_pretty(err), "found 'dev/morX'"));
    error_free(err);
    err = NULL;
    assert_false(decode(good, data, n - sizeof(more), &o, &used, &err));
    assert_non_null(
        strstr(error_get_pretty(err), "expected subsection 'dev/more'"));
    error_free(err);
    free(good);
}

static void expect_bad(const char *desc, size_t len, const char *words)
{
    uint8_t data[64] = { 0 };
    json_t *o;
    size_t used;
    Error *err = NULL;
    assert_true(len <= sizeof(data));
    assert_false(decode(desc, data, len, &o, &used, &err));
    if (!strstr(error_get_pretty(err), words)) {
        fail_msg("'%s' does not mention '%s'", error_get_pretty(err), words);
    }
    error_free(err);
}

static void test_hostile_descriptions(void **state)
{
    expect_bad("{\"fields\": [{\"name\": \"a\", \"type\": \"buffer\", "
               "\"size\": 1000000000}]}",
               16, "needs 1000000000 bytes");
    expect_bad("{\"fields\": [{\"name\": \"a\", \"type\": \"uint8\", "
               "\"size\": 1, \"array_len\": 4000000000}]}",
               16, "do not fit");
    expect_bad("{\"fields\": [{\"name\": \"a\", \"type\": \"uint8\", "
               "\"size\": 0, \"array_len\": 4000000000}]}",
               16, "do not fit");
    expect_bad("{\"fields\": [{\"name\": \"a\", \"type\": \"uint8\"}]}", 16,
               "lacks a name, a size");
    expect_bad("{\"fields\": [{\"name\": \"a\", \"type\": \"uint8\", "
               "\"size\": -1}]}",
               16, "lacks a name, a size");
    expect_bad("{\"fields\": 5}", 16, "malformed");
    expect_bad("{\"fields\": [{\"name\": \"a\", \"type\": \"struct\", "
               "\"size\": 1}]}",
               16, "no struct description");
    expect_bad("{\"fields\": [{\"name\": \"a\", \"type\": \"nullptr\", "
               "\"size\": 1}]}",
               16, "null pointer marker");
    /* Nesting bomb. */
    char bomb[8192] = "";
    size_t o = 0;
    for (int i = 0; i < 40; i++) {
        o += (size_t)snprintf(bomb + o, sizeof(bomb) - o,
                              "{\"fields\": [{\"name\": \"n\", \"type\": "
                              "\"struct\", \"size\": 0, \"struct\": ");
    }
    o += (size_t)snprintf(bomb + o, sizeof(bomb) - o, "{}");
    for (int i = 0; i < 40; i++) {
        o += (size_t)snprintf(bomb + o, sizeof(bomb) - o, "}]}");
    }
    expect_bad(bomb, 16, "nest deeper");
}

static void test_empty_values_are_bounded(void **state)
{
    /* 1000 empty structs, each holding 1000 more: a million values from
     * no bytes at all. */
    const char *nest =
        "{\"fields\": [{\"name\": \"outer\", \"type\": "
        "\"struct\", \"size\": 0, \"array_len\": 1000, \"struct\": "
        "{\"fields\": [{\"name\": \"inner\", \"type\": \"struct\", "
        "\"size\": 0, \"array_len\": 1000, \"struct\": {\"fields\": []}}]}}]}";
    expect_bad(nest, 16, "'inner'");
    expect_bad(nest, 16, "take no bytes");
    /* One budget shared by the sections of a stream. */
    const char *five = "{\"fields\": [{\"name\": \"e\", \"type\": \"uint8\", "
                       "\"size\": 0, \"array_len\": 5}]}";
    json_t *desc = json_loads(five, 0, NULL);
    assert_non_null(desc);
    size_t budget = 8, used;
    uint8_t byte = 0;
    json_t *out;
    Error *err = NULL;
    assert_true(vmdesc_decode(desc, &byte, 1, 0, &budget, &out, &used, &err));
    assert_int_equal(budget, 3);
    json_decref(out);
    assert_false(vmdesc_decode(desc, &byte, 1, 0, &budget, &out, &used, &err));
    assert_non_null(strstr(error_get_pretty(err), "'e'"));
    error_free(err);
    json_decref(desc);
    /* Values that take bytes are not charged. */
    const char *bytes = "{\"fields\": [{\"name\": \"b\", \"type\": \"uint8\", "
                        "\"size\": 1, \"array_len\": 64}]}";
    desc = json_loads(bytes, 0, NULL);
    uint8_t data[64] = { 0 };
    budget = 0;
    assert_true(vmdesc_decode(desc, data, 64, 0, &budget, &out, &used, NULL));
    assert_int_equal(used, 64);
    json_decref(out);
    json_decref(desc);
}

static void test_repeated_names_keep_every_value(void **state)
{
    char name[401];
    memset(name, 'n', 400);
    name[400] = '\0';
    char *desc;
    /* A literal "x[2]" first: the repeats of x step over it. */
    assert_true(
        asprintf(&desc,
                 "{\"fields\": ["
                 "{\"name\": \"x[2]\", \"type\": \"uint8\", \"size\": 1},"
                 "{\"name\": \"x\", \"type\": \"uint8\", \"size\": 1},"
                 "{\"name\": \"x\", \"type\": \"uint8\", \"size\": 1},"
                 "{\"name\": \"x\", \"type\": \"uint8\", \"size\": 1},"
                 "{\"name\": \"%s\", \"type\": \"uint8\", \"size\": 1},"
                 "{\"name\": \"%s\", \"type\": \"uint8\", \"size\": 1},"
                 "{\"name\": \"%s\", \"type\": \"uint8\", \"size\": 1}]}",
                 name, name, name) > 0);
    const uint8_t data[7] = { 1, 2, 3, 4, 5, 6, 7 };
    json_t *o;
    size_t used;
    assert_true(decode(desc, data, 7, &o, &used, NULL));
    assert_int_equal(json_object_size(o), 7);
    assert_int_equal(json_integer_value(json_object_get(o, "x[2]")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "x")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "x[3]")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "x[4]")), 4);
    /* A long name is not cut short: its repeats get keys of their own
     * (a key cut to a fixed size made the third one loop forever). */
    assert_int_equal(json_integer_value(json_object_get(o, name)), 5);
    char *key;
    assert_true(asprintf(&key, "%s[2]", name) > 0);
    assert_int_equal(json_integer_value(json_object_get(o, key)), 6);
    free(key);
    assert_true(asprintf(&key, "%s[3]", name) > 0);
    assert_int_equal(json_integer_value(json_object_get(o, key)), 7);
    free(key);
    json_decref(o);
    free(desc);
}

static void test_truncated_payload(void **state)
{
    const char *desc = "{\"fields\": ["
                       "{\"name\": \"a\", \"type\": \"uint32\", \"size\": 4},"
                       "{\"name\": \"b\", \"type\": \"uint64\", \"size\": 8, "
                       "\"array_len\": 2}]}";
    for (size_t cut = 0; cut < 20; cut++) {
        expect_bad(desc, cut, "offset");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_devices),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_structs_and_subsections),
        cmocka_unit_test(test_hostile_descriptions),
        cmocka_unit_test(test_truncated_payload),
        cmocka_unit_test(test_empty_values_are_bounded),
        cmocka_unit_test(test_repeated_names_keep_every_value),
    };
    /* A decoder that loops forever fails here instead of hanging. */
    alarm(300);
    return cmocka_run_group_tests_name("vmdesc decode", tests, NULL, NULL);
}
