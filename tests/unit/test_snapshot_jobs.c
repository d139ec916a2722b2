/* Snapshot jobs through the session's API, as QMP's handlers call it:
 * ids as QEMU checks them (hostile ones refused with their name, never
 * stored), the events in QEMU's order, errors kept for query-jobs, the
 * verbs refused by state, and nothing held back once a job concluded.
 * (tests/bats/qmp-jobs.bats checks the refusals while a job runs.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/session.h"
#include "machine/machine.h"

struct seen {
    char statuses[512];
};

static void collect(void *opaque, const char *name, json_t *data, long long sec,
                    long long usec)
{
    (void)sec;
    (void)usec;
    struct seen *s = opaque;
    if (strcmp(name, "JOB_STATUS_CHANGE") == 0) {
        const char *id = json_string_value(json_object_get(data, "id"));
        const char *st = json_string_value(json_object_get(data, "status"));
        size_t n = strlen(s->statuses);
        snprintf(s->statuses + n, sizeof(s->statuses) - n, "%s:%s ", id, st);
    }
}

static void quiet(void *opaque, const char *msg)
{
    (void)opaque;
    (void)msg;
}

static struct vm_session *new_session(void)
{
    static const struct machine_config mc = {
        .ram_size = 2u << 20,
        .guest = "counter",
        .report = quiet,
    };
    Error *err = NULL;
    struct vm_session *s =
        session_new(&(struct session_config){ .machine = &mc }, &err);
    assert_non_null(s);
    return s;
}

/* The job's query-jobs entry once it concluded (bounded wait). */
static json_t *wait_concluded(struct vm_session *s, const char *id)
{
    for (int i = 0; i < 3000; i++) {
        json_t *jobs = session_query_jobs(s);
        size_t k;
        json_t *j;
        json_array_foreach(jobs, k, j)
        {
            const char *st = json_string_value(json_object_get(j, "status"));
            if (strcmp(json_string_value(json_object_get(j, "id")), id) == 0 &&
                strcmp(st, "concluded") == 0) {
                json_incref(j);
                json_decref(jobs);
                return j;
            }
        }
        json_decref(jobs);
        nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
    }
    fail_msg("job %s did not conclude", id);
    return NULL;
}

static void test_hostile_ids_are_refused_by_name(void **state)
{
    (void)state;
    struct vm_session *s = new_session();
    struct {
        const char *id, *msg;
    } cases[] = {
        { NULL, "An explicit job ID is required" },
        { "", "Invalid job ID ''" },
        { "1abc", "Invalid job ID '1abc'" },
        { "a b", "Invalid job ID 'a b'" },
        { "a\nb", "Invalid job ID 'a\nb'" },
        { "a\"}", "Invalid job ID 'a\"}'" },
        { "\xc3\xa9t\xc3\xa9", "Invalid job ID '\xc3\xa9t\xc3\xa9'" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Error *err = NULL;
        assert_false(session_job_start(s, SESSION_JOB_SNAPSHOT_SAVE,
                                       cases[i].id, "t", NULL, &err));
        assert_string_equal(error_get_pretty(err), cases[i].msg);
        error_free(err);
    }
    /* A long id is a name like any other: kept whole, shown whole. */
    char *big = malloc(100001);
    memset(big, 'a', 100000);
    big[100000] = '\0';
    Error *err = NULL;
    assert_true(session_job_start(s, SESSION_JOB_SNAPSHOT_DELETE, big, "t",
                                  NULL, &err));
    json_t *j = wait_concluded(s, big);
    assert_string_equal(json_string_value(json_object_get(j, "id")), big);
    json_decref(j);
    assert_true(session_job_dismiss(s, big, &err));
    free(big);
    json_t *jobs = session_query_jobs(s);
    assert_int_equal(json_array_size(jobs), 0);
    json_decref(jobs);
    session_free(s);
}

static void test_failed_job_reports_and_concludes(void **state)
{
    (void)state;
    struct vm_session *s = new_session();
    struct seen seen = { "" };
    assert_true(session_subscribe(s, collect, &seen));
    Error *err = NULL;
    /* No drive to hold the state: the save fails on the job's thread. */
    assert_true(
        session_job_start(s, SESSION_JOB_SNAPSHOT_SAVE, "j", "t", NULL, &err));
    json_t *j = wait_concluded(s, "j");
    assert_string_equal(json_string_value(json_object_get(j, "type")),
                        "snapshot-save");
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")),
                           "no qcow2 drive to hold the state"));
    assert_int_equal(json_integer_value(json_object_get(j, "total-progress")),
                     1);
    json_decref(j);

    /* Concluded, not dismissed: the id is still taken. */
    assert_false(
        session_job_start(s, SESSION_JOB_SNAPSHOT_LOAD, "j", "t", NULL, &err));
    assert_string_equal(error_get_pretty(err), "Job ID 'j' already in use");
    error_free(err);
    err = NULL;
    assert_false(session_job_cancel(s, "j", &err));
    assert_string_equal(error_get_pretty(err),
                        "Job 'j' in state 'concluded' cannot accept command "
                        "verb 'cancel'");
    error_free(err);
    err = NULL;
    assert_true(session_job_dismiss(s, "j", &err));
    assert_false(session_job_dismiss(s, "j", &err));
    assert_string_equal(error_get_pretty(err), "Job not found");
    error_free(err);
    err = NULL;
    assert_false(session_job_cancel(s, "nosuch", &err));
    assert_string_equal(error_get_pretty(err), "Job not found");
    error_free(err);

    session_flush_events(s);
    assert_string_equal(seen.statuses,
                        "j:created j:running j:aborting "
                        "j:concluded j:null ");
    session_free(s);
}

static void test_concluded_jobs_hold_nothing(void **state)
{
    (void)state;
    struct vm_session *s = new_session();
    Error *err = NULL;
    /* Nothing runs: no conflict. */
    assert_true(session_stop(s, &err));
    assert_true(session_job_start(s, SESSION_JOB_SNAPSHOT_DELETE, "d", "t",
                                  NULL, &err));
    /* Deleting leaves the machine alone; it may be stopped meanwhile. */
    assert_true(session_stop(s, &err));
    json_t *j = wait_concluded(s, "d");
    assert_non_null(json_object_get(j, "error"));
    json_decref(j);
    /* A concluded job holds nothing back, dismissed or not. */
    assert_true(session_cont(s, &err));
    assert_false(session_savevm(s, "t", NULL, NULL, &err));
    assert_null(strstr(error_get_pretty(err), "still running"));
    error_free(err);
    err = NULL;
    assert_true(session_job_dismiss(s, "d", &err));
    session_free(s);
}

/* The process's address space, in kB: a thread that ended but was never
 * joined keeps its stack mapped. */
static long vm_size_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmSize: %ld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    assert_true(kb > 0);
    return kb;
}

/* A client that never dismisses its jobs keeps their entries, not their
 * threads. */
static void test_undismissed_jobs_keep_no_thread(void **state)
{
    (void)state;
    struct vm_session *s = new_session();
    Error *err = NULL;
    assert_true(session_job_start(s, SESSION_JOB_SNAPSHOT_SAVE, "warm-up", "t",
                                  NULL, &err));
    json_decref(wait_concluded(s, "warm-up"));
    assert_true(session_job_dismiss(s, "warm-up", &err));
    long before = vm_size_kb();
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof(id), "j%d", i);
        assert_true(session_job_start(s, SESSION_JOB_SNAPSHOT_SAVE, id, "t",
                                      NULL, &err));
        json_decref(wait_concluded(s, id));
    }
    /* 40 stacks of 8 MiB if they stayed; one at most. */
    long grew = vm_size_kb() - before;
    assert_true(grew < 64 * 1024);
    json_t *jobs = session_query_jobs(s);
    assert_int_equal(json_array_size(jobs), 40);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(jobs, 0), "id")),
        "j0");
    json_decref(jobs);
    session_free(s);
}

/* An id in use is refused by its name whether its job still runs or has
 * concluded, as QEMU checks the id before anything else (the job that
 * holds it is often still running when the second request comes). */
static void test_id_in_use_is_named_first(void **state)
{
    (void)state;
    struct vm_session *s = new_session();
    for (int i = 0; i < 20; i++) {
        char id[16], want[64];
        snprintf(id, sizeof(id), "d%d", i);
        snprintf(want, sizeof(want), "Job ID '%s' already in use", id);
        Error *err = NULL;
        assert_true(session_job_start(s, SESSION_JOB_SNAPSHOT_DELETE, id, "t",
                                      NULL, &err));
        assert_false(session_job_start(s, SESSION_JOB_SNAPSHOT_SAVE, id, "t",
                                       NULL, &err));
        assert_string_equal(error_get_pretty(err), want);
        error_free(err);
        err = NULL;
        json_decref(wait_concluded(s, id));
        assert_true(session_job_dismiss(s, id, &err));
    }
    session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_ids_are_refused_by_name),
        cmocka_unit_test(test_failed_job_reports_and_concludes),
        cmocka_unit_test(test_concluded_jobs_hold_nothing),
        cmocka_unit_test(test_undismissed_jobs_keep_no_thread),
        cmocka_unit_test(test_id_in_use_is_named_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
