/* The monitor's command tables document themselves: every entry (every
 * command and every `info` subcommand) has help text, is listed by `help`
 * and has its entry in hop-monitor(7), and the committed page is the one
 * the tables generate.  Entries other people add are covered as they
 * appear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text-file.h"
#include "monitor/monitor.h"
#include "monitor/qmp.h"

/* Runs a monitor command line without a machine (help needs none) and
 * returns what it printed. */
static char *run_help(const char *line)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    struct monitor *mon = monitor_new(NULL, f);
    assert_true(monitor_execute(mon, line));
    monitor_free(mon);
    fclose(f);
    return out;
}

static char *generated_page(void)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    hmp_print_man_page(f);
    fclose(f);
    return out;
}

/* A line of text that starts with prefix. */
static bool has_line_starting(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;
         p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, prefix, n) == 0) {
            return true;
        }
    }
    return false;
}

static void check_entry(const struct mon_cmd *c, const char *prefix,
                        const char *help_out, const char *page)
{
    /* One line of help, no trailing period (the page adds one). */
    assert_non_null(c->help);
    assert_true(strlen(c->help) > 3);
    assert_null(strchr(c->help, '\n'));
    assert_true(c->help[strlen(c->help) - 1] != '.');
    assert_true(c->handler || c->sub);
    if (c->long_help) {
        assert_true(strlen(c->long_help) > 3);
    }

    /* `help` (or `help info`) lists it with its usage and help. */
    char usage[256], want[512];
    hmp_format_usage(c, prefix, usage, sizeof(usage));
    snprintf(want, sizeof(want), "%s -- %s\n", usage, c->help);
    if (!strstr(help_out, want)) {
        fail_msg("'%s%s' is not in the help output as '%s'", prefix, c->name,
                 want);
    }

    /* The page has an entry for it: ".B name ...". */
    char name[128], esc[256];
    snprintf(name, sizeof(name), "%s%s", prefix, c->name);
    text_roff_escape(name, esc, sizeof(esc));
    snprintf(want, sizeof(want), ".B %s", esc);
    if (!has_line_starting(page, want)) {
        fail_msg("'%s' has no entry in hop-monitor(7)", name);
    }
}

static void test_every_command_has_help_and_a_page_entry(void **state)
{
    char *help = run_help("help");
    char *page = generated_page();
    int n = 0;
    for (const struct mon_cmd *c = hmp_commands; c->name; c++, n++) {
        check_entry(c, "", help, page);
        assert_ptr_equal(hmp_find(hmp_commands, c->name), c);
        for (const char *a = c->aliases; a && *a;) {
            char alias[32];
            size_t len = strcspn(a, ",");
            snprintf(alias, sizeof(alias), "%.*s", (int)len, a);
            assert_ptr_equal(hmp_find(hmp_commands, alias), c);
            a += len + (a[len] == ',');
        }
        if (c->sub) {
            char line[80], prefix[80];
            snprintf(line, sizeof(line), "help %s", c->name);
            snprintf(prefix, sizeof(prefix), "%s ", c->name);
            char *sub_help = run_help(line);
            for (const struct mon_cmd *s = c->sub; s->name; s++, n++) {
                check_entry(s, prefix, sub_help, page);
                assert_ptr_equal(hmp_find(c->sub, s->name), s);
            }
            free(sub_help);
        }
    }
    /* The list of commands is there (others add more). */
    assert_true(n >= 30);
    free(help);
    free(page);
}

static void test_help_command_shows_the_long_help(void **state)
{
    for (const struct mon_cmd *c = hmp_commands; c->name; c++) {
        if (c->sub || !c->long_help) {
            continue;
        }
        char line[80];
        snprintf(line, sizeof(line), "help %s", c->name);
        char *out = run_help(line);
        assert_non_null(strstr(out, c->help));
        assert_non_null(strstr(out, c->long_help));
        free(out);
    }
}

static void test_every_qmp_command_is_on_the_page(void **state)
{
    char *page = generated_page();
    for (const struct qmp_cmd *c = qmp_commands; c->name; c++) {
        char esc[128], want[160];
        text_roff_escape(c->name, esc, sizeof(esc));
        snprintf(want, sizeof(want), ".B %s", esc);
        if (!has_line_starting(page, want)) {
            fail_msg("QMP command '%s' is not in hop-monitor(7)", c->name);
        }
    }
    free(page);
}

/* man/hop-monitor.7 is what the tables generate: run `make man` after
 * changing a table. */
static void test_committed_page_is_up_to_date(void **state)
{
    const char *dir = getenv("HOP_BUILD_DIR");
    char path[4096];
    char *committed = text_file_read("man/hop-monitor.7");
    if (!committed && dir) {
        snprintf(path, sizeof(path), "%s/../man/hop-monitor.7", dir);
        committed = text_file_read(path);
    }
    if (!committed) {
        fail_msg("man/hop-monitor.7 not found (run from the source tree)");
    }
    char *page = generated_page();
    if (strcmp(page, committed) != 0) {
        fail_msg("man/hop-monitor.7 differs from what the command tables "
                 "generate; run `make man`");
    }
    free(page);
    free(committed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_has_help_and_a_page_entry),
        cmocka_unit_test(test_help_command_shows_the_long_help),
        cmocka_unit_test(test_every_qmp_command_is_on_the_page),
        cmocka_unit_test(test_committed_page_is_up_to_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
