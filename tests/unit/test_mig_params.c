/* Migration parameters of the newer kinds: mode (one of a list of names)
 * and cpr-exec-command (a command line of words), as the monitor types
 * them and as QMP sets them; and the capability combinations refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "migration/params.h"

static void test_mode_takes_its_names_and_refuses_others(void **state)
{
    (void)state;
    struct mig_config c;
    mig_config_init(&c);
    assert_int_equal(c.params[MIG_PARAM_MODE], MIG_MODE_NORMAL);
    assert_true(mig_set_parameter_str(&c, "mode", "cpr-transfer", NULL));
    assert_int_equal(c.params[MIG_PARAM_MODE], MIG_MODE_CPR_TRANSFER);
    /* Blanks after the word (the rest of a monitor line) are not part of
     * it. */
    assert_true(mig_set_parameter_str(&c, "mode", "cpr-exec  ", NULL));
    assert_int_equal(c.params[MIG_PARAM_MODE], MIG_MODE_CPR_EXEC);
    assert_string_equal(mig_param_enum_name(MIG_PARAM_MODE, MIG_MODE_CPR_EXEC),
                        "cpr-exec");

    Error *err = NULL;
    assert_false(mig_set_parameter_str(&c, "mode", "cpr-reboot", &err));
    assert_string_equal(error_get_pretty(err),
                        "parameter 'mode': 'cpr-reboot' is not one of "
                        "normal, cpr-transfer, cpr-exec");
    error_free(err);
    err = NULL;
    assert_false(mig_set_parameter(&c, MIG_PARAM_MODE, MIG_MODE__MAX, &err));
    assert_non_null(strstr(error_get_pretty(err), "must be one of normal"));
    error_free(err);
    /* Refusals leave the value as it was. */
    assert_int_equal(c.params[MIG_PARAM_MODE], MIG_MODE_CPR_EXEC);
}

static void test_exec_command_is_words(void **state)
{
    (void)state;
    struct mig_config c;
    mig_config_init(&c);
    const char *argv[MIG_EXEC_ARGS_MAX + 1];
    assert_int_equal(mig_exec_command_argv(&c, argv, MIG_EXEC_ARGS_MAX), 0);
    assert_null(argv[0]);

    assert_true(mig_set_parameter_str(&c, "cpr-exec-command",
                                      "/usr/bin/hop  run\t-m 1G ", NULL));
    int n = mig_exec_command_argv(&c, argv, MIG_EXEC_ARGS_MAX);
    assert_int_equal(n, 4);
    assert_string_equal(argv[0], "/usr/bin/hop");
    assert_string_equal(argv[1], "run");
    assert_string_equal(argv[2], "-m");
    assert_string_equal(argv[3], "1G");
    assert_null(argv[4]);

    /* A copy of the configuration carries its words. */
    struct mig_config copy = c;
    mig_config_init(&c);
    n = mig_exec_command_argv(&copy, argv, MIG_EXEC_ARGS_MAX);
    assert_int_equal(n, 4);
    assert_string_equal(argv[3], "1G");

    /* QMP's list, with a word holding a blank. */
    const char *words[] = { "hop", "run", "-name", "a b" };
    assert_true(mig_set_exec_command(&c, words, 4, NULL));
    n = mig_exec_command_argv(&c, argv, MIG_EXEC_ARGS_MAX);
    assert_int_equal(n, 4);
    assert_string_equal(argv[3], "a b");
    /* No words: back to the default. */
    assert_true(mig_set_parameter_str(&c, "cpr-exec-command", "  ", NULL));
    assert_int_equal(mig_exec_command_argv(&c, argv, MIG_EXEC_ARGS_MAX), 0);
}

static void test_exec_command_limits(void **state)
{
    (void)state;
    struct mig_config c;
    mig_config_init(&c);
    Error *err = NULL;
    const char *empty[] = { "hop", "" };
    assert_false(mig_set_exec_command(&c, empty, 2, &err));
    assert_string_equal(error_get_pretty(err),
                        "parameter 'cpr-exec-command': word 2 is empty");
    error_free(err);
    err = NULL;

    static char big[MIG_EXEC_COMMAND_MAX + 16];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_false(mig_set_parameter_str(&c, "cpr-exec-command", big, &err));
    assert_non_null(strstr(error_get_pretty(err), "longer than"));
    error_free(err);
    err = NULL;

    static char many[MIG_EXEC_ARGS_MAX * 2 + 8];
    for (int i = 0; i < MIG_EXEC_ARGS_MAX + 2; i++) {
        many[2 * i] = 'w';
        many[2 * i + 1] = ' ';
    }
    assert_false(mig_set_parameter_str(&c, "cpr-exec-command", many, &err));
    assert_non_null(strstr(error_get_pretty(err), "more than 256 words"));
    error_free(err);
    /* Nothing changed. */
    const char *argv[MIG_EXEC_ARGS_MAX + 1];
    assert_int_equal(mig_exec_command_argv(&c, argv, MIG_EXEC_ARGS_MAX), 0);
}

static void test_quotes_as_in_the_monitor(void **state)
{
    (void)state;
    struct mig_config c;
    mig_config_init(&c);
    /* A quoted value, as HMP's string arguments allow. */
    assert_true(mig_set_parameter_str(&c, "downtime-limit", "\"500\"", NULL));
    assert_int_equal(c.params[MIG_PARAM_DOWNTIME_LIMIT], 500);
    Error *err = NULL;
    assert_false(mig_set_parameter_str(&c, "downtime-limit", "10 junk", &err));
    assert_string_equal(error_get_pretty(err),
                        "parameter 'downtime-limit': expected one value, got "
                        "'10 junk'");
    error_free(err);
    err = NULL;
    assert_int_equal(c.params[MIG_PARAM_DOWNTIME_LIMIT], 500);

    /* Blanks inside quotes stay in the word; "" alone is the default. */
    const char *argv[MIG_EXEC_ARGS_MAX + 1];
    assert_true(mig_set_parameter_str(&c, "cpr-exec-command",
                                      "hop run -name \"my vm\"", NULL));
    assert_int_equal(mig_exec_command_argv(&c, argv, MIG_EXEC_ARGS_MAX), 4);
    assert_string_equal(argv[3], "my vm");
    assert_true(mig_set_parameter_str(&c, "cpr-exec-command", "\"\"", NULL));
    assert_int_equal(mig_exec_command_argv(&c, argv, MIG_EXEC_ARGS_MAX), 0);
    assert_false(
        mig_set_parameter_str(&c, "cpr-exec-command", "hop \"run", &err));
    assert_string_equal(error_get_pretty(err),
                        "parameter 'cpr-exec-command': a quote is not closed");
    error_free(err);
}

static void test_release_ram_excludes_multifd(void **state)
{
    (void)state;
    struct mig_config c;
    mig_config_init(&c);
    assert_true(mig_set_capability(&c, "release-ram", true, NULL));
    Error *err = NULL;
    assert_false(mig_set_capability(&c, "multifd", true, &err));
    assert_string_equal(error_get_pretty(err),
                        "capabilities release-ram and multifd cannot be "
                        "used together");
    error_free(err);
    assert_false(c.caps[MIG_CAP_MULTIFD]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_takes_its_names_and_refuses_others),
        cmocka_unit_test(test_exec_command_is_words),
        cmocka_unit_test(test_exec_command_limits),
        cmocka_unit_test(test_quotes_as_in_the_monitor),
        cmocka_unit_test(test_release_ram_excludes_multifd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
