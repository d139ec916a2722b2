/* The helpers for names read from files: the hash index (ids and names
 * to positions) and the escaping of names for terminals and messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/lookup.h"
#include "util/printable.h"

static void test_lookup_numbers(void **state)
{
    struct lookup t;
    lookup_init(&t);
    size_t v = 99;
    assert_false(lookup_get_u64(&t, 0, &v));
    for (uint64_t i = 0; i < 100000; i++) {
        assert_true(lookup_add_u64(&t, i * 65536, (size_t)i));
    }
    assert_false(lookup_add_u64(&t, 65536, 7)); /* already there */
    for (uint64_t i = 0; i < 100000; i += 997) {
        assert_true(lookup_get_u64(&t, i * 65536, &v));
        assert_int_equal(v, i);
    }
    assert_false(lookup_get_u64(&t, 1, &v));
    assert_true(lookup_get_u64(&t, UINT64_MAX, &v) == false);
    assert_int_equal(t.count, 100000);
    lookup_free(&t);
    lookup_free(&t); /* twice is fine */
}

static void test_lookup_strings(void **state)
{
    struct lookup t;
    lookup_init(&t);
    char key[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof(key), "pc.ram%d", i);
        assert_true(lookup_add_str(&t, key, (size_t)i));
    }
    assert_false(lookup_add_str(&t, "pc.ram7", 1));
    size_t v;
    assert_true(lookup_get_str(&t, "pc.ram49999", &v));
    assert_int_equal(v, 49999);
    assert_false(lookup_get_str(&t, "pc.ram", &v));
    assert_false(lookup_get_str(&t, "", &v));
    assert_true(lookup_add_str(&t, "", 5));
    assert_true(lookup_get_str(&t, "", &v));
    assert_int_equal(v, 5);
    lookup_free(&t);
}

static void expect(const char *in, size_t n, const char *out)
{
    char buf[PRINTABLE_SIZE];
    assert_string_equal(printable_n(in, n, buf, sizeof(buf)), out);
}

static void test_printable(void **state)
{
    expect("pc.ram", 6, "pc.ram");
    expect("\x1b]0;x\x07", 6, "\\x1b]0;x\\x07");
    expect("a\nb\tc\x7f", 6, "a\\x0ab\\x09c\\x7f");
    expect("back\\slash", 10, "back\\\\slash");
    expect("nul\0x", 5, "nul\\x00x");
    /* UTF-8 stays; C1 controls, overlongs, surrogates and strays go. */
    expect("caf\xc3\xa9", 5, "caf\xc3\xa9");
    expect("\xe2\x82\xac\xf0\x9f\x99\x82", 7, "\xe2\x82\xac\xf0\x9f\x99\x82");
    expect("\xc2\x9b"
           "2J",
           4, "\\xc2\\x9b2J");
    expect("\xc0\xaf", 2, "\\xc0\\xaf");
    expect("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");
    expect("\xe2\x82", 2, "\\xe2\\x82");
    expect("\xff", 1, "\\xff");
    assert_string_equal(PRINTABLE(NULL), "");
    assert_string_equal(PRINTABLE("x\x1by"), "x\\x1by");
    /* The longest name a stream holds fits, escaped. */
    char name[256];
    memset(name, 0x1b, 255);
    name[255] = '\0';
    const char *p = PRINTABLE(name);
    assert_int_equal(strlen(p), 4 * 255);
    /* Longer ones are cut at a character boundary and marked. */
    char buf[16];
    assert_string_equal(printable("\x1b\x1b\x1b\x1b", buf, sizeof(buf)),
                        "\\x1b\\x1b\\x1b...");
    assert_string_equal(
        printable("abcdefghijklmnopqrstuvwxyz", buf, sizeof(buf)),
        "abcdefghijkl...");
    assert_string_equal(printable("abcdefghijklmno", buf, sizeof(buf)),
                        "abcdefghijklmno");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_numbers),
        cmocka_unit_test(test_lookup_strings),
        cmocka_unit_test(test_printable),
    };
    return cmocka_run_group_tests_name("util names", tests, NULL, NULL);
}
