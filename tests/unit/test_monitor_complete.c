/* Monitor completion from the command table: each argument kind offers
 * the words of its own table (commands, info subcommands, migration
 * capabilities and parameters, on/off, key names, URIs and paths). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/ps2.h"
#include "migration/params.h"
#include "monitor/complete.h"
#include "monitor/monitor.h"

struct got {
    char text[8192];
    int n;
};

static void collect(const char *word, void *ctx)
{
    struct got *g = ctx;
    size_t len = strlen(g->text);
    snprintf(g->text + len, sizeof(g->text) - len, "%s%s", g->n ? " " : "",
             word);
    g->n++;
}

/* The candidates for line, space separated, in the order offered. */
static const char *complete(const char *line)
{
    static struct got g;
    memset(&g, 0, sizeof(g));
    hmp_complete(NULL, line, collect, &g);
    return g.text;
}

static bool offers(const char *line, const char *word)
{
    char padded[8300], w[200];
    snprintf(padded, sizeof(padded), " %s ", complete(line));
    snprintf(w, sizeof(w), " %s ", word);
    return strstr(padded, w) != NULL;
}

static void test_command_names_and_info_subcommands(void **state)
{
    for (const struct mon_cmd *c = hmp_commands; c->name; c++) {
        assert_true(offers("", c->name));
        char line[64];
        snprintf(line, sizeof(line), "%.3s", c->name);
        assert_true(offers(line, c->name));
    }
    for (const struct mon_cmd *c = hmp_info_commands; c->name; c++) {
        char line[64];
        snprintf(line, sizeof(line), "info %s", c->name);
        assert_true(offers("info ", c->name));
        assert_true(offers(line, c->name));
    }
    assert_string_equal(complete("system_res"), "system_reset");
    assert_string_equal(complete("info sta"), "status");
    /* help takes a command name. */
    assert_string_equal(complete("help system_r"), "system_reset");
    assert_string_equal(complete("nosuch "), "");
}

static void test_capabilities_parameters_and_on_off(void **state)
{
    for (int i = 0; i < MIG_CAP__MAX; i++) {
        assert_true(offers("migrate_set_capability ", mig_caps[i].name));
    }
    for (int i = 0; i < MIG_PARAM__MAX; i++) {
        assert_true(offers("migrate_set_parameter ", mig_params[i].name));
    }
    assert_string_equal(complete("migrate_set_capability x"),
                        "xbzrle x-ignore-shared");
    assert_string_equal(complete("migrate_set_capability xb"), "xbzrle");
    assert_string_equal(complete("migrate_set_capability xbzrle "), "on off");
    assert_string_equal(complete("migrate_set_capability xbzrle o"), "on off");
    assert_string_equal(complete("migrate_set_capability xbzrle of"), "off");
    /* Nothing after the last argument. */
    assert_string_equal(complete("migrate_set_capability xbzrle on "), "");
}

static void test_key_names(void **state)
{
    int n = 0;
    for (int i = 0; ps2_key_name(i); i++, n++) {
        char line[64];
        snprintf(line, sizeof(line), "sendkey ctrl-%s", ps2_key_name(i));
        char want[64];
        snprintf(want, sizeof(want), "ctrl-%s", ps2_key_name(i));
        assert_true(offers(line, want));
    }
    assert_true(n > 50);
    assert_true(offers("sendkey ctrl-al", "ctrl-alt"));
    assert_true(offers("sendkey ctrl-alt-de", "ctrl-alt-delete"));
    assert_false(offers("sendkey ctrl-al", "ctrl-ctrl"));
}

static void test_uris_and_paths(void **state)
{
    char dir[] = "/tmp/hop-complete-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], line[300], want[300];
    snprintf(path, sizeof(path), "%s/state-file", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/subdir", dir);
    assert_int_equal(mkdir(path, 0700), 0);

    assert_string_equal(complete("migrate "),
                        "tcp: unix: exec: fd: file: memfd:");
    /* memfd: takes nothing after it: no file names. */
    assert_string_equal(complete("migrate memfd:"), "");
    assert_string_equal(complete("migrate -d fi"), "file:");
    /* Switches in any order, then the URI. */
    assert_string_equal(complete("migrate -b -d fi"), "file:");
    assert_string_equal(complete("migrate -i -b -d fi"), "file:");
    snprintf(line, sizeof(line), "migrate file:%s/st", dir);
    snprintf(want, sizeof(want), "file:%s/state-file", dir);
    assert_string_equal(complete(line), want);
    snprintf(line, sizeof(line), "migrate -d unix:%s/su", dir);
    snprintf(want, sizeof(want), "unix:%s/subdir/", dir);
    assert_string_equal(complete(line), want);
    /* tcp: has no paths. */
    assert_string_equal(complete("migrate tcp:/"), "");
    /* A file argument, quoted or not. */
    snprintf(line, sizeof(line), "pmemsave 0 4096 %s/st", dir);
    snprintf(want, sizeof(want), "%s/state-file", dir);
    assert_string_equal(complete(line), want);
    snprintf(line, sizeof(line), "pmemsave 0 4096 \"%s/st", dir);
    assert_string_equal(complete(line), want);
    /* Numbers are not completed. */
    assert_string_equal(complete("pmemsave 0"), "");
    assert_string_equal(complete("migrate -"), "-d -b -i -r");

    snprintf(path, sizeof(path), "%s/state-file", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/subdir", dir);
    rmdir(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_names_and_info_subcommands),
        cmocka_unit_test(test_capabilities_parameters_and_on_off),
        cmocka_unit_test(test_key_names),
        cmocka_unit_test(test_uris_and_paths),
    };
    return cmocka_run_group_tests_name("monitor_complete", tests, NULL, NULL);
}
