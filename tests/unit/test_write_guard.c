/* The write guard (machine/write-guard.h): a store to a guarded page runs
 * the callback first, once until the guard is lifted; lifting covers
 * exactly the pages asked for; disarm returns only once no thread is in
 * the callback, and no callback starts after it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "machine/write-guard.h"

#define NPAGES 200 /* not a multiple of 64 */

struct calls {
    struct write_guard *g;
    int count[NPAGES + 1];
    atomic_int hold; /* the callback waits while set */
    atomic_int inside;
};

static void record(void *opaque, uint64_t page)
{
    struct calls *c = opaque;
    atomic_store(&c->inside, 1);
    while (atomic_load(&c->hold)) {
        struct timespec ts = { 0, 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    c->count[page]++;
    write_guard_lift(c->g, page, 1);
    atomic_store(&c->inside, 0);
}

static void test_first_store_calls_once(void **state)
{
    (void)state;
    struct calls c = { .g = write_guard_new(NPAGES) };
    /* Not armed: nothing is called. */
    write_guard_check(c.g, 3);
    assert_int_equal(c.count[3], 0);
    write_guard_arm(c.g, record, &c);
    for (int round = 0; round < 3; round++) {
        for (int p = 0; p < NPAGES; p++) {
            write_guard_check(c.g, (uint64_t)p);
        }
    }
    for (int p = 0; p < NPAGES; p++) {
        assert_int_equal(c.count[p], 1);
    }
    /* Past the end: no bit, no call (and no read past the bitmap). */
    write_guard_check(c.g, NPAGES);
    write_guard_check(c.g, 1ull << 40);
    assert_int_equal(c.count[NPAGES], 0);
    /* NULL: no guard at all. */
    write_guard_check(NULL, 0);
    write_guard_disarm(c.g);
    write_guard_free(c.g);
}

static void test_lift_exact_ranges(void **state)
{
    (void)state;
    struct calls c = { .g = write_guard_new(NPAGES) };
    write_guard_arm(c.g, record, &c);
    write_guard_lift(c.g, 60, 70);         /* across two words */
    write_guard_lift(c.g, 190, 1000);      /* clipped at the end */
    write_guard_lift(c.g, NPAGES + 5, 10); /* past the end: nothing */
    for (int p = 0; p < NPAGES; p++) {
        bool lifted = (p >= 60 && p < 130) || p >= 190;
        assert_int_equal(write_guard_test(c.g, (uint64_t)p), !lifted);
    }
    /* Arming again guards everything again. */
    write_guard_arm(c.g, record, &c);
    assert_true(write_guard_test(c.g, 61));
    assert_true(write_guard_test(c.g, NPAGES - 1));
    write_guard_disarm(c.g);
    for (int p = 0; p < NPAGES; p++) {
        assert_false(write_guard_test(c.g, (uint64_t)p));
    }
    write_guard_free(c.g);
}

static void *store_page_7(void *opaque)
{
    struct calls *c = opaque;
    write_guard_check(c->g, 7);
    return NULL;
}

static void *disarm(void *opaque)
{
    struct calls *c = opaque;
    write_guard_disarm(c->g);
    return NULL;
}

/* The callback's owner may free what it uses once disarm returns. */
static void test_disarm_waits_for_callback(void **state)
{
    (void)state;
    struct calls c = { .g = write_guard_new(NPAGES) };
    write_guard_arm(c.g, record, &c);
    atomic_store(&c.hold, 1);
    pthread_t writer, stopper;
    assert_int_equal(pthread_create(&writer, NULL, store_page_7, &c), 0);
    struct timespec ts = { 0, 1000 * 1000 };
    for (int i = 0; i < 10000 && !atomic_load(&c.inside); i++) {
        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(&c.inside));
    assert_int_equal(pthread_create(&stopper, NULL, disarm, &c), 0);
    struct timespec wait = { 0, 100 * 1000 * 1000 };
    nanosleep(&wait, NULL);
    /* Still in the callback: disarm has not returned. */
    assert_int_equal(pthread_tryjoin_np(stopper, NULL), EBUSY);
    atomic_store(&c.hold, 0);
    assert_int_equal(pthread_join(stopper, NULL), 0);
    assert_int_equal(pthread_join(writer, NULL), 0);
    assert_int_equal(c.count[7], 1);
    /* Disarmed: stores go through without a call. */
    write_guard_check(c.g, 8);
    assert_int_equal(c.count[8], 0);
    write_guard_free(c.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_store_calls_once),
        cmocka_unit_test(test_lift_exact_ranges),
        cmocka_unit_test(test_disarm_waits_for_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
