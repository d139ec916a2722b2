/* The state description engine: every construct round-trips, older
 * versions load, and bad input is rejected naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/testdev.h"
#include "vmstate/channel.h"
#include "vmstate/vmstate.h"

struct blob {
    uint8_t *data;
    size_t len;
};

static struct blob save(const struct vmstate_desc *desc, void *dev,
                        json_t *vmdesc)
{
    Channel *w = chan_new_mem_writer();
    Error *err = NULL;
    bool ok = vmstate_save(w, desc, dev, vmdesc, &err);
    if (!ok) {
        fail_msg("save failed: %s", error_get_pretty(err));
    }
    struct blob b;
    b.data = chan_mem_take(w, &b.len);
    assert_true(chan_close(w, NULL));
    return b;
}

/* Loads b at version; returns NULL on success or the error text. */
static char *load(const struct blob *b, const struct vmstate_desc *desc,
                  void *dev, int version)
{
    Channel *r = chan_new_mem_reader(b->data, b->len, "test");
    Error *err = NULL;
    bool ok = vmstate_load(r, desc, dev, version, &err);
    chan_close(r, NULL);
    char *msg = ok ? NULL : strdup(error_get_pretty(err));
    error_free(err);
    return msg;
}

static bool contains(const struct blob *b, const char *s)
{
    return memmem(b->data, b->len, s, strlen(s)) != NULL;
}

static void test_round_trip_every_construct(void **state)
{
    for (int seed = 0; seed < 2; seed++) {
        struct testdev src, dst;
        testdev_init(&src);
        testdev_fill(&src, seed);
        testdev_init(&dst);
        struct blob b = save(&testdev_vmsd, &src, NULL);
        assert_int_equal(src.pre_save_calls, 1);
        char *err = load(&b, &testdev_vmsd, &dst, 3);
        assert_null(err);
        assert_null(testdev_diff(&src, &dst));
        assert_int_equal(dst.pre_load_calls, 1);
        assert_int_equal(dst.post_load_calls, 1);
        assert_int_equal(dst.loaded_version, 3);
        /* post_load ran after the subsections were loaded. */
        assert_int_equal(dst.post_load_saw_fifo, seed == 0);
        /* The NULL slot stayed NULL. */
        assert_null(dst.slots[1]);
        free(b.data);
    }
}

static void test_subsection_only_when_needed(void **state)
{
    struct testdev d0, d1;
    testdev_init(&d0);
    testdev_fill(&d0, 0);
    testdev_init(&d1);
    testdev_fill(&d1, 1);
    struct blob b0 = save(&testdev_vmsd, &d0, NULL);
    struct blob b1 = save(&testdev_vmsd, &d1, NULL);
    assert_true(contains(&b0, "testdev/fifo"));
    assert_true(contains(&b0, "testdev/fifo/overrun"));
    assert_true(contains(&b0, "td_timer/period"));
    assert_false(contains(&b1, "testdev/fifo"));
    assert_false(contains(&b1, "td_timer/period"));
    /* Field test: `extra` (4 bytes) only on d0; subsections
     * fifo, overrun and period, each 0x05, name length, name, version. */
    size_t subs = (2 + 12 + 4 + 1 + 3) + (2 + 20 + 4 + 4) + (2 + 15 + 4 + 4);
    assert_int_equal(b0.len, b1.len + 4 + subs);
    free(b0.data);
    free(b1.data);
}

static void test_nested_subsection_in_struct(void **state)
{
    /* The struct's own subsection sits right after the struct's fields,
     * before the next field of the enclosing device. */
    struct testdev d;
    testdev_init(&d);
    testdev_fill(&d, 0);
    struct blob b = save(&testdev_vmsd, &d, NULL);
    uint8_t *p = memmem(b.data, b.len, "td_timer/period", 15);
    assert_non_null(p);
    assert_int_equal(p[-2], 0x05);
    assert_int_equal(p[-1], 15);
    /* version, period 250, then path[0].x = 0 */
    static const uint8_t after[] = { 0, 0, 0, 1, 0, 0, 0, 250, 0, 0, 0, 0 };
    assert_memory_equal(p + 15, after, sizeof(after));
    free(b.data);
}

static void test_load_version_2(void **state)
{
    struct testdev src, dst;
    testdev_init(&src);
    testdev_fill(&src, 0);
    struct blob b = save(&testdev_vmsd_v2, &src, NULL);
    testdev_init(&dst);
    dst.added_v3 = 77; /* absent in v2: must stay as it was */
    char *err = load(&b, &testdev_vmsd, &dst, 2);
    assert_null(err);
    assert_int_equal(dst.added_v3, 77);
    assert_int_equal(dst.added_v2, src.added_v2);
    assert_int_equal(dst.loaded_version, 2);
    dst.added_v3 = src.added_v3;
    assert_null(testdev_diff(&src, &dst));
    free(b.data);
}

static void test_load_version_1_through_legacy_loader(void **state)
{
    static const uint8_t v1[] = { 0xca, 0xfe, 0xba, 0xbe, 0x12, 0x34 };
    struct blob b = { (uint8_t *)v1, sizeof(v1) };
    struct testdev dst;
    testdev_init(&dst);
    char *err = load(&b, &testdev_vmsd, &dst, 1);
    assert_null(err);
    assert_true(dst.legacy_loaded);
    assert_int_equal(dst.u32, 0xcafebabe);
    assert_int_equal(dst.u16, 0x1234);
    assert_int_equal(dst.pre_load_calls, 0);
}

static void test_reject_newer_version(void **state)
{
    struct testdev d;
    testdev_init(&d);
    testdev_fill(&d, 1);
    struct blob b = save(&testdev_vmsd, &d, NULL);
    char *err = load(&b, &testdev_vmsd, &d, 4);
    assert_non_null(err);
    assert_non_null(strstr(err, "testdev"));
    assert_non_null(strstr(err, "version 4 is newer"));
    free(err);
    free(b.data);
}

static void test_reject_too_old_without_legacy_loader(void **state)
{
    struct testdev d;
    testdev_init(&d);
    struct blob b = { (uint8_t *)"\0\0\0\0\0\0", 6 };
    char *err = load(&b, &testdev_vmsd_v2, &d, 1);
    assert_non_null(err);
    assert_non_null(strstr(err, "testdev: version 1 is older"));
    free(err);
}

static void test_reject_unknown_subsection(void **state)
{
    struct testled led = { 3, true };
    struct blob b = save(&testled_vmsd, &led, NULL);
    /* Append a subsection this build does not know. */
    static const uint8_t sub[] = { 0x05, 13,  't', 'e', 's', 't', 'l',
                                   'e',  'd', '/', 'b', 'o', 'g', 'u',
                                   's',  0,   0,   0,   1 };
    b.data = realloc(b.data, b.len + sizeof(sub));
    memcpy(b.data + b.len, sub, sizeof(sub));
    b.len += sizeof(sub);
    struct testled dst = { 0 };
    char *err = load(&b, &testled_vmsd, &dst, 1);
    assert_non_null(err);
    assert_non_null(strstr(err, "unknown subsection 'testled/bogus'"));
    assert_non_null(strstr(err, "offset 2"));
    free(err);
    free(b.data);
}

static void test_foreign_subsection_left_for_the_caller(void **state)
{
    /* A subsection whose name does not start with ours belongs to an
     * enclosing level: loading stops before it and leaves it unread. */
    struct testled led = { 3, true };
    struct blob b = save(&testled_vmsd, &led, NULL);
    static const uint8_t sub[] = { 0x05, 5, 'o', 't', 'h', 'e', 'r' };
    b.data = realloc(b.data, b.len + sizeof(sub));
    memcpy(b.data + b.len, sub, sizeof(sub));
    b.len += sizeof(sub);
    Channel *r = chan_new_mem_reader(b.data, b.len, "test");
    struct testled dst = { 0 };
    assert_true(vmstate_load(r, &testled_vmsd, &dst, 1, NULL));
    assert_int_equal(chan_tell(r), 2);
    assert_int_equal(dst.brightness, 3);
    chan_close(r, NULL);
    free(b.data);
}

/* Offset of field bytes: find the n8 count by its neighbours. */
static void test_reject_count_larger_than_array(void **state)
{
    struct testdev d;
    testdev_init(&d);
    testdev_fill(&d, 1);
    struct blob b = save(&testdev_vmsd, &d, NULL);
    /* n8 (3) follows regs[3] = 0x4001; v8 = 0b 0c 0d follows n8. */
    static const uint8_t pat[] = { 0x40, 0x01, 0x03, 0x0b, 0x0c, 0x0d };
    uint8_t *p = memmem(b.data, b.len, pat, sizeof(pat));
    assert_non_null(p);
    p[2] = 9; /* the array holds 8 */
    struct testdev dst;
    testdev_init(&dst);
    char *err = load(&b, &testdev_vmsd, &dst, 3);
    assert_non_null(err);
    assert_non_null(strstr(err, "testdev.v8"));
    assert_non_null(strstr(err, "count 9"));
    assert_non_null(strstr(err, "capacity 8"));
    free(err);
    free(b.data);
}

static void test_reject_short_read(void **state)
{
    struct testdev d;
    testdev_init(&d);
    testdev_fill(&d, 1);
    struct blob b = save(&testdev_vmsd, &d, NULL);
    struct testdev dst;
    for (size_t cut = 0; cut < b.len; cut++) {
        struct blob t = { b.data, cut };
        testdev_init(&dst);
        char *err = load(&t, &testdev_vmsd, &dst, 3);
        assert_non_null(err);
        if (!strstr(err, "unexpected end of stream"))
            fail_msg("cut %zu: %s", cut, err);
        assert_non_null(strstr(err, "testdev."));
        free(err);
    }
    free(b.data);
}

static void test_reject_unequal_and_bad_bool(void **state)
{
    struct testdev d, dst;
    testdev_init(&d);
    testdev_fill(&d, 1);
    struct blob b = save(&testdev_vmsd, &d, NULL);
    uint8_t *p = memmem(b.data, b.len, "hop!", 4);
    assert_non_null(p);
    p[3] = '?';
    testdev_init(&dst);
    char *err = load(&b, &testdev_vmsd, &dst, 3);
    assert_non_null(err);
    assert_non_null(strstr(err, "testdev.magic"));
    assert_non_null(strstr(err, "differs"));
    free(err);
    free(b.data);

    struct testled led = { 1, true };
    b = save(&testled_vmsd, &led, NULL);
    b.data[1] = 2;
    struct testled l2;
    err = load(&b, &testled_vmsd, &l2, 1);
    assert_non_null(err);
    assert_non_null(strstr(err, "testled.on"));
    assert_non_null(strstr(err, "neither 0 nor 1"));
    free(err);
    free(b.data);
}

static void test_reject_post_load_failure(void **state)
{
    struct testdev d, dst;
    testdev_init(&d);
    testdev_fill(&d, 1);
    struct blob b = save(&testdev_vmsd, &d, NULL);
    /* Change s32 behind the checksum's back: first bytes are s8, s16. */
    b.data[3 + 3] ^= 1;
    testdev_init(&dst);
    char *err = load(&b, &testdev_vmsd, &dst, 3);
    assert_non_null(err);
    assert_non_null(strstr(err, "testdev: post_load: checksum"));
    free(err);
    free(b.data);
}

static void test_reject_null_pointer_mismatch(void **state)
{
    struct testdev d, dst;
    testdev_init(&d);
    testdev_fill(&d, 1);
    struct blob b = save(&testdev_vmsd, &d, NULL);
    testdev_init(&dst);
    dst.slots[0] = NULL; /* the source had an element there */
    char *err = load(&b, &testdev_vmsd, &dst, 3);
    assert_non_null(err);
    assert_non_null(strstr(err, "testdev.slots[0]"));
    assert_non_null(strstr(err, "null-pointer marker"));
    free(err);
    free(b.data);
}

static json_t *field(json_t *fields, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0) {
            return f;
        }
    }
    return NULL;
}

static json_int_t geti(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_non_null(v);
    return json_integer_value(v);
}

static void test_vmdesc_describes_what_was_written(void **state)
{
    struct testdev d;
    testdev_init(&d);
    testdev_fill(&d, 0);
    json_t *desc = json_object();
    struct blob b = save(&testdev_vmsd, &d, desc);
    assert_string_equal(json_string_value(json_object_get(desc, "vmsd_name")),
                        "testdev");
    assert_int_equal(geti(desc, "version"), 3);
    json_t *fields = json_object_get(desc, "fields");
    assert_true(json_is_array(fields));

    json_t *regs = field(fields, "regs");
    assert_int_equal(geti(regs, "array_len"), 4);
    assert_int_equal(geti(regs, "size"), 2);
    assert_string_equal(json_string_value(json_object_get(regs, "type")),
                        "uint16");
    json_t *blob = field(fields, "blob");
    assert_string_equal(json_string_value(json_object_get(blob, "type")),
                        "buffer");
    assert_int_equal(geti(blob, "size"), 16);
    assert_int_equal(geti(field(fields, "vbuf"), "size"), 5);
    assert_int_equal(geti(field(fields, "v8"), "array_len"), 3);

    /* A struct with subsections is described per element... */
    json_t *timer = field(fields, "timer");
    json_t *ts = json_object_get(timer, "struct");
    assert_string_equal(json_string_value(json_object_get(ts, "vmsd_name")),
                        "td_timer");
    assert_int_equal(json_array_size(json_object_get(ts, "subsections")), 1);
    /* ...and arrays of pointers element by element, NULL as nullptr. */
    size_t nslots = 0;
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "name")), "slots") ==
            0) {
            assert_int_equal(geti(f, "index"), (json_int_t)nslots);
            const char *type = json_string_value(json_object_get(f, "type"));
            assert_string_equal(type, nslots == 1 ? "nullptr" : "struct");
            nslots++;
        }
    }
    assert_int_equal(nslots, 3);
    /* Fields absent on the wire are absent here: extra is present (test
     * true), the unused bytes too. */
    assert_non_null(field(fields, "extra"));
    json_t *subs = json_object_get(desc, "subsections");
    assert_int_equal(json_array_size(subs), 1);
    json_t *fifo = json_array_get(subs, 0);
    assert_string_equal(json_string_value(json_object_get(fifo, "vmsd_name")),
                        "testdev/fifo");
    assert_int_equal(json_array_size(json_object_get(fifo, "subsections")), 1);

    /* Sizes add up to the bytes on the wire, less subsection headers. */
    json_int_t total = 0;
    json_array_foreach(fields, i, f)
    {
        json_int_t n =
            json_object_get(f, "array_len") ? geti(f, "array_len") : 1;
        total += n * geti(f, "size");
    }
    size_t fifo_bytes = (2 + 12 + 4 + 1 + 3) + (2 + 20 + 4 + 4);
    assert_int_equal((size_t)total, b.len - fifo_bytes);
    json_decref(desc);
    free(b.data);
}

static void test_schema_dump_layout(void **state)
{
    json_t *s = vmstate_schema_json(&testdev_vmsd);
    assert_string_equal(json_string_value(json_object_get(s, "name")),
                        "testdev");
    assert_int_equal(geti(s, "version_id"), 3);
    assert_int_equal(geti(s, "minimum_version_id"), 2);
    json_t *fields = json_object_get(s, "Fields");
    size_t i;
    json_t *f;
    bool saw_extra = false, saw_v3 = false, saw_timer = false;
    json_array_foreach(fields, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "field"));
        if (strcmp(name, "extra") == 0) {
            saw_extra = json_is_true(json_object_get(f, "field_exists"));
        }
        if (strcmp(name, "added_v3") == 0) {
            saw_v3 = geti(f, "version_id") == 3;
        }
        if (strcmp(name, "timer") == 0) {
            json_t *d = json_object_get(f, "Description");
            saw_timer = d && json_object_get(d, "Subsections");
        }
    }
    assert_true(saw_extra && saw_v3 && saw_timer);
    json_t *subs = json_object_get(s, "Subsections");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(subs, 0), "name")),
        "testdev/fifo");
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_construct),
        cmocka_unit_test(test_subsection_only_when_needed),
        cmocka_unit_test(test_nested_subsection_in_struct),
        cmocka_unit_test(test_load_version_2),
        cmocka_unit_test(test_load_version_1_through_legacy_loader),
        cmocka_unit_test(test_reject_newer_version),
        cmocka_unit_test(test_reject_too_old_without_legacy_loader),
        cmocka_unit_test(test_reject_unknown_subsection),
        cmocka_unit_test(test_foreign_subsection_left_for_the_caller),
        cmocka_unit_test(test_reject_count_larger_than_array),
        cmocka_unit_test(test_reject_short_read),
        cmocka_unit_test(test_reject_unequal_and_bad_bool),
        cmocka_unit_test(test_reject_post_load_failure),
        cmocka_unit_test(test_reject_null_pointer_mismatch),
        cmocka_unit_test(test_vmdesc_describes_what_was_written),
        cmocka_unit_test(test_schema_dump_layout),
    };
    return cmocka_run_group_tests_name("vmstate", tests, NULL, NULL);
}
