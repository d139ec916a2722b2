/* The session's API as its clients see it: created from a config, events
 * reach subscribers only (and in order), quit is one request, and the
 * limits of the config and of getfd are errors that say what. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/session.h"

struct seen {
    char names[256];
    char reason[64];
};

static void collect(void *opaque, const char *name, json_t *data, long long sec,
                    long long usec)
{
    struct seen *s = opaque;
    strcat(s->names, name);
    strcat(s->names, " ");
    const char *r = json_string_value(json_object_get(data, "reason"));
    snprintf(s->reason, sizeof(s->reason), "%s", r ? r : "");
    assert_true(sec > 0 && usec >= 0 && usec < 1000000);
}

static void test_quit_is_one_event_to_each_subscriber(void **state)
{
    struct vm_session *s = session_new(&(struct session_config){ 0 }, NULL);
    assert_non_null(s);
    struct seen a = { "" }, b = { "" };
    assert_true(session_subscribe(s, collect, &a));
    assert_true(session_subscribe(s, collect, &b));
    assert_false(session_quit_requested(s));
    session_quit(s);
    assert_true(session_quit_requested(s));
    assert_string_equal(a.names, ""); /* delivered on flush only */
    session_flush_events(s);
    assert_string_equal(a.names, "SHUTDOWN ");
    assert_string_equal(a.reason, "host-qmp-quit");
    assert_string_equal(b.names, "SHUTDOWN ");
    session_unsubscribe(s, collect, &b);
    session_quit(s);
    session_flush_events(s);
    assert_string_equal(a.names, "SHUTDOWN SHUTDOWN ");
    assert_string_equal(b.names, "SHUTDOWN ");
    session_clear_quit(s);
    assert_false(session_quit_requested(s));
    session_free(s);
}

static void test_subscribers_are_bounded(void **state)
{
    struct vm_session *s = session_new(&(struct session_config){ 0 }, NULL);
    struct seen a[SESSION_MAX_SUBSCRIBERS + 1];
    for (int i = 0; i < SESSION_MAX_SUBSCRIBERS; i++) {
        assert_true(session_subscribe(s, collect, &a[i]));
    }
    assert_false(session_subscribe(s, collect, &a[SESSION_MAX_SUBSCRIBERS]));
    session_free(s);
}

static void test_config_errors_name_what(void **state)
{
    struct snapshot_drive d[SNAPSHOT_MAX_DRIVES + 1] = { { 0 } };
    Error *err = NULL;
    assert_null(session_new(
        &(struct session_config){ .drives = d,
                                  .ndrives = SNAPSHOT_MAX_DRIVES + 1 },
        &err));
    assert_string_equal(error_get_pretty(err),
                        "9 drives: at most 8 are supported");
    error_free(err);
}

static void test_getfd_without_a_descriptor(void **state)
{
    struct vm_session *s = session_new(&(struct session_config){ 0 }, NULL);
    Error *err = NULL;
    assert_false(session_getfd(s, "x", &err));
    assert_string_equal(error_get_pretty(err),
                        "No file descriptor supplied via SCM_RIGHTS");
    error_free(err);
    session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quit_is_one_event_to_each_subscriber),
        cmocka_unit_test(test_subscribers_are_bounded),
        cmocka_unit_test(test_config_errors_name_what),
        cmocka_unit_test(test_getfd_without_a_descriptor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
