/* Monitor argument parsing: QEMU's HMP reading rules and the errors that
 * name the argument at fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "monitor/hmp-args.h"

#define ARGS(...) ((const struct mon_arg[]){ __VA_ARGS__, { NULL } })

static char *parse_err(const struct mon_arg *spec, const char *line)
{
    struct mon_args a;
    Error *err = NULL;
    if (mon_args_parse("cmd", spec, line, &a, &err)) {
        mon_args_free(&a);
        return NULL;
    }
    char *msg = strdup(error_get_pretty(err));
    error_free(err);
    return msg;
}

static void test_quoted_strings_and_escapes(void **state)
{
    const struct mon_arg *spec =
        ARGS({ "val", MON_ARG_INT, false }, { "size", MON_ARG_SIZE, false },
             { "filename", MON_ARG_FILE, false });
    struct mon_args a;
    assert_true(mon_args_parse("pmemsave", spec,
                               " 0 4096 \"/path/with space/a\\\"b\\\\c\"", &a,
                               NULL));
    assert_int_equal(mon_arg_int(&a, "val", -1), 0);
    assert_int_equal(mon_arg_int(&a, "size", -1), 4096);
    assert_string_equal(mon_arg_str(&a, "filename"),
                        "/path/with space/a\"b\\c");
    mon_args_free(&a);
    char *e = parse_err(spec, "0 4096 \"/unterminated");
    assert_non_null(strstr(e, "unterminated string"));
    free(e);
}

static void test_numbers_and_sizes(void **state)
{
    int64_t i;
    assert_true(mon_parse_int("0x2a", &i) && i == 42);
    assert_true(mon_parse_int("-12", &i) && i == -12);
    assert_true(mon_parse_int("0xffffffffffffffff", &i) && i == -1);
    assert_false(mon_parse_int("12abc", &i));
    assert_false(mon_parse_int("", &i));
    uint64_t s;
    assert_true(mon_parse_size("64K", &s) && s == 65536);
    assert_true(mon_parse_size("1.5G", &s) && s == 1536ull << 20);
    assert_true(mon_parse_size("2T", &s) && s == 2ull << 40);
    assert_true(mon_parse_size("100", &s) && s == 100);
    assert_true(mon_parse_size("32MiB", &s) && s == 32ull << 20);
    assert_false(mon_parse_size("12Q", &s));
    assert_false(mon_parse_size("-1M", &s));
    assert_false(mon_parse_size("99999999T", &s));
}

static void test_errors_name_the_argument(void **state)
{
    char *e = parse_err(NULL, "extra");
    assert_string_equal(e, "cmd: unexpected argument 'extra'");
    free(e);
    const struct mon_arg *spec = ARGS({ "name", MON_ARG_STRING, false },
                                      { "value", MON_ARG_SIZE, false });
    e = parse_err(spec, "x");
    assert_string_equal(e, "cmd: missing argument 'value'");
    free(e);
    e = parse_err(spec, "x 12Q");
    assert_non_null(strstr(e, "'12Q' is not a size (argument 'value'"));
    free(e);
    e = parse_err(ARGS({ "state", MON_ARG_BOOL, false }), "maybe");
    assert_string_equal(e, "cmd: 'maybe' is not on or off (argument 'state')");
    free(e);
    e = parse_err(ARGS({ "addr", MON_ARG_INT, false }), "zz");
    assert_string_equal(e, "cmd: 'zz' is not a number (argument 'addr')");
    free(e);
}

static void test_flags_optional_and_rest(void **state)
{
    const struct mon_arg *spec =
        ARGS({ "d", MON_ARG_FLAG, true }, { "uri", MON_ARG_URI, false });
    struct mon_args a;
    assert_true(mon_args_parse("migrate", spec, "-d unix:/tmp/s", &a, NULL));
    assert_true(mon_arg_present(&a, "d"));
    assert_string_equal(mon_arg_str(&a, "uri"), "unix:/tmp/s");
    mon_args_free(&a);
    assert_true(mon_args_parse("migrate", spec, "tcp:[::1]:4444", &a, NULL));
    assert_false(mon_arg_present(&a, "d"));
    mon_args_free(&a);

    spec = ARGS({ "name", MON_ARG_STRING, true });
    assert_true(mon_args_parse("help", spec, "", &a, NULL));
    assert_null(mon_arg_str(&a, "name"));
    mon_args_free(&a);

    spec = ARGS({ "cmd", MON_ARG_REST, false });
    assert_true(mon_args_parse("c", spec, "  info  status ", &a, NULL));
    assert_string_equal(mon_arg_str(&a, "cmd"), "info  status ");
    mon_args_free(&a);
}

/* QEMU's migrate takes -d, -b and -i in any order. */
static void test_flags_in_any_order(void **state)
{
    const struct mon_arg *spec =
        ARGS({ "d", MON_ARG_FLAG, true }, { "b", MON_ARG_FLAG, true },
             { "i", MON_ARG_FLAG, true }, { "uri", MON_ARG_URI, false });
    struct mon_args a;
    assert_true(
        mon_args_parse("migrate", spec, "-i  -d -b unix:/tmp/s", &a, NULL));
    assert_true(mon_arg_present(&a, "d") && mon_arg_present(&a, "b") &&
                mon_arg_present(&a, "i"));
    assert_string_equal(mon_arg_str(&a, "uri"), "unix:/tmp/s");
    mon_args_free(&a);
    assert_true(mon_args_parse("migrate", spec, "-b -d exec:cat", &a, NULL));
    assert_true(mon_arg_present(&a, "d") && mon_arg_present(&a, "b"));
    assert_false(mon_arg_present(&a, "i"));
    assert_string_equal(mon_arg_str(&a, "uri"), "exec:cat");
    mon_args_free(&a);
}

static void test_x_format(void **state)
{
    const struct mon_arg *spec =
        ARGS({ "fmt", MON_ARG_FORMAT, true }, { "addr", MON_ARG_INT, false });
    struct mon_args a;
    assert_true(mon_args_parse("x", spec, "/10xb 0x100000", &a, NULL));
    const struct mon_format *f = mon_arg_fmt(&a, "fmt");
    assert_int_equal(f->count, 10);
    assert_int_equal(f->format, 'x');
    assert_int_equal(f->size, 1);
    assert_int_equal(mon_arg_int(&a, "addr", 0), 0x100000);
    mon_args_free(&a);
    assert_true(mon_args_parse("x", spec, "4096", &a, NULL));
    f = mon_arg_fmt(&a, "fmt");
    assert_int_equal(f->count, 1);
    assert_int_equal(f->size, 4);
    assert_int_equal(mon_arg_int(&a, "addr", 0), 4096);
    mon_args_free(&a);
    assert_true(mon_args_parse("x", spec, "/2dg 0", &a, NULL));
    f = mon_arg_fmt(&a, "fmt");
    assert_int_equal(f->format, 'd');
    assert_int_equal(f->size, 8);
    mon_args_free(&a);
    char *e = parse_err(spec, "/3z 0");
    assert_non_null(strstr(e, "bad format '/3z'"));
    free(e);
}

static void test_on_off_and_escapes(void **state)
{
    const struct mon_arg *spec =
        ARGS({ "capability", MON_ARG_CAPABILITY, false },
             { "state", MON_ARG_BOOL, false });
    struct mon_args a;
    assert_true(mon_args_parse("c", spec, "xbzrle on", &a, NULL));
    assert_int_equal(mon_arg_int(&a, "state", -1), 1);
    mon_args_free(&a);
    assert_true(mon_args_parse("c", spec, "xbzrle off", &a, NULL));
    assert_int_equal(mon_arg_int(&a, "state", -1), 0);
    mon_args_free(&a);
    /* QEMU's HMP spells booleans on and off only. */
    char *e = parse_err(spec, "xbzrle true");
    assert_non_null(strstr(e, "'true' is not on or off"));
    free(e);

    spec = ARGS({ "s", MON_ARG_STRING, false }, { "t", MON_ARG_STRING, false });
    assert_true(mon_args_parse("c", spec, "\"a\\tb\\nc\" \"\"", &a, NULL));
    assert_string_equal(mon_arg_str(&a, "s"), "a\tb\nc");
    assert_string_equal(mon_arg_str(&a, "t"), "");
    mon_args_free(&a);
}

static void test_char_format_counts_bytes_unless_sized(void **state)
{
    const struct mon_arg *spec =
        ARGS({ "fmt", MON_ARG_FORMAT, true }, { "addr", MON_ARG_INT, false });
    struct mon_args a;
    assert_true(mon_args_parse("x", spec, "/5c 0", &a, NULL));
    assert_int_equal(mon_arg_fmt(&a, "fmt")->size, 1);
    assert_int_equal(mon_arg_fmt(&a, "fmt")->count, 5);
    mon_args_free(&a);
    assert_true(mon_args_parse("x", spec, "/3cw 0", &a, NULL));
    assert_int_equal(mon_arg_fmt(&a, "fmt")->size, 4);
    assert_int_equal(mon_arg_fmt(&a, "fmt")->format, 'c');
    mon_args_free(&a);
    /* Size and format in either order, as QEMU allows. */
    assert_true(mon_args_parse("x", spec, "/2hx 0x10", &a, NULL));
    assert_int_equal(mon_arg_fmt(&a, "fmt")->size, 2);
    assert_int_equal(mon_arg_fmt(&a, "fmt")->format, 'x');
    assert_int_equal(mon_arg_int(&a, "addr", 0), 16);
    mon_args_free(&a);
    char *e = parse_err(spec, "/0x 0");
    assert_non_null(strstr(e, "bad format"));
    free(e);
}

static void test_sizes_as_arguments(void **state)
{
    const struct mon_arg *spec =
        ARGS({ "val", MON_ARG_INT, false }, { "size", MON_ARG_SIZE, false },
             { "filename", MON_ARG_FILE, false });
    struct mon_args a;
    assert_true(mon_args_parse("pmemsave", spec, "0x100000 4K f", &a, NULL));
    assert_int_equal(mon_arg_int(&a, "val", 0), 0x100000);
    assert_int_equal(mon_arg_int(&a, "size", 0), 4096);
    mon_args_free(&a);
    assert_true(mon_args_parse("pmemsave", spec, "-0x10 0x200 f", &a, NULL));
    assert_int_equal(mon_arg_int(&a, "val", 0), -16);
    assert_int_equal(mon_arg_int(&a, "size", 0), 512);
    mon_args_free(&a);
    assert_true(mon_args_parse("pmemsave", spec, "0 2M f", &a, NULL));
    assert_int_equal(mon_arg_int(&a, "size", 0), 2 << 20);
    mon_args_free(&a);
}

static void test_usage_from_spec(void **state)
{
    char buf[128];
    mon_args_usage(
        ARGS({ "d", MON_ARG_FLAG, true }, { "uri", MON_ARG_URI, false }), buf,
        sizeof(buf));
    assert_string_equal(buf, "[-d] uri");
    mon_args_usage(ARGS({ "fmt", MON_ARG_FORMAT, true },
                        { "addr", MON_ARG_INT, false },
                        { "n", MON_ARG_INT, true }),
                   buf, sizeof(buf));
    assert_string_equal(buf, "/fmt addr [n]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoted_strings_and_escapes),
        cmocka_unit_test(test_numbers_and_sizes),
        cmocka_unit_test(test_errors_name_the_argument),
        cmocka_unit_test(test_flags_optional_and_rest),
        cmocka_unit_test(test_x_format),
        cmocka_unit_test(test_usage_from_spec),
        cmocka_unit_test(test_on_off_and_escapes),
        cmocka_unit_test(test_flags_in_any_order),
        cmocka_unit_test(test_char_format_counts_bytes_unless_sized),
        cmocka_unit_test(test_sizes_as_arguments),
    };
    return cmocka_run_group_tests_name("hmp_args", tests, NULL, NULL);
}
