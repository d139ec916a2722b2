/* A big machine under emu: -smp 4 -m 2G memtest runs, stops and resumes
 * cleanly.  Prints the vm_stop latency and memtest's page rate; the
 * latency assertion is deliberately generous (timing on a shared host is
 * noisy), the figures are in the output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/machine.h"
#include "tests/unit/machine-fixture.h"
#include "tests/unit/memtest-check.h"

#define CYCLES 10
#define LATENCY_BOUND_NS 500000000ll

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void check(struct machine *m, struct memtest_result *res)
{
    struct machine_memory *mem = machine_memory(m);
    char msg[256];
    if (!memtest_check(memory_main_block(mem)->host, memory_below_4g(mem),
                       0x100000, memory_below_4g(mem), machine_smp(m), res, msg,
                       sizeof(msg))) {
        fail_msg("memtest checker: %s", msg);
    }
}

static void test_memtest_smp4_2g_stop_resume(void **state)
{
    struct serial_capture out;
    capture_init(&out);
    struct machine_config cfg = {
        .ram_size = 2ull << 30,
        .smp = 4,
        .accel = "emu",
        .guest = "memtest",
        .serial = capture_backend(&out),
    };
    Error *err = NULL;
    struct machine *m = machine_new(&cfg, &err);
    if (!m) {
        fail_msg("machine_new: %s", error_get_pretty(err));
    }
    int64_t t0 = fixture_now_ns();
    assert_true(vm_start(m, &err));
    assert_true(capture_wait_for(&out, "memtest: filled\n", 120000));
    int64_t t_filled = fixture_now_ns();

    /* Page rate over about one second of passes. */
    size_t marks0 = capture_count(&out, '.');
    int64_t r0 = fixture_now_ns();
    usleep(1000000);
    size_t marks1 = capture_count(&out, '.');
    int64_t r1 = fixture_now_ns();
    uint64_t pages = ((2ull << 30) - (1u << 20)) / 4096;
    double rate =
        (double)(marks1 - marks0) * (double)pages / ((double)(r1 - r0) / 1e9);

    int64_t lat[CYCLES];
    struct memtest_result res, prev = { .value = -1 };
    for (int i = 0; i < CYCLES; i++) {
        usleep(50000);
        int64_t s = fixture_now_ns();
        assert_true(vm_stop(m, RUN_STATE_PAUSED, &err));
        lat[i] = fixture_now_ns() - s;
        if (i % 3 == 0) {
            check(m, &res); /* consistent at every stop */
            if (prev.value >= 0) {
                assert_true(res.value != prev.value ||
                            res.advanced != prev.advanced);
            }
            prev = res;
        }
        /* Stopped: nothing moves. */
        size_t marks = capture_count(&out, '.');
        usleep(20000);
        assert_int_equal(capture_count(&out, '.'), marks);
        assert_true(vm_start(m, &err));
    }
    assert_true(vm_stop(m, RUN_STATE_PAUSED, &err));
    check(m, &res);
    qsort(lat, CYCLES, sizeof(lat[0]), cmp_i64);
    print_message("# smp 4, 2 GiB, emu: fill %.1f s; %.0f pages/s "
                  "(%zu passes of %llu pages in %.2f s)\n",
                  (double)(t_filled - t0) / 1e9, rate, marks1 - marks0,
                  (unsigned long long)pages, (double)(r1 - r0) / 1e9);
    print_message("# vm_stop latency over %d stops: min %.3f ms, median "
                  "%.3f ms, max %.3f ms\n",
                  CYCLES, (double)lat[0] / 1e6, (double)lat[CYCLES / 2] / 1e6,
                  (double)lat[CYCLES - 1] / 1e6);
    assert_true(lat[CYCLES - 1] < LATENCY_BOUND_NS);
    machine_free(m);
    capture_free(&out);
}

/* The same on a small KVM machine (KVM here may be slow: keep it tiny). */
static void test_memtest_kvm_small_stop_resume(void **state)
{
    const char *why = kvm_unusable_reason();
    if (why) {
        print_message("# skip: %s\n", why);
        skip();
    }
    struct serial_capture out;
    capture_init(&out);
    struct machine_config cfg = {
        .ram_size = 3u << 20,
        .smp = 2,
        .accel = "kvm",
        .guest = "memtest",
        .serial = capture_backend(&out),
    };
    Error *err = NULL;
    struct machine *m = machine_new(&cfg, &err);
    if (!m) {
        fail_msg("machine_new: %s", error_get_pretty(err));
    }
    assert_true(vm_start(m, &err));
    assert_true(capture_wait_for(&out, "memtest: filled\n", 60000));
    int64_t lat[5];
    struct memtest_result res;
    for (int i = 0; i < 5; i++) {
        size_t marks = capture_count(&out, '.');
        assert_true(capture_wait_count(&out, '.', marks + 1, 30000));
        int64_t s = fixture_now_ns();
        assert_true(vm_stop(m, RUN_STATE_PAUSED, &err));
        lat[i] = fixture_now_ns() - s;
        check(m, &res);
        assert_true(vm_start(m, &err));
    }
    assert_true(vm_stop(m, RUN_STATE_PAUSED, &err));
    qsort(lat, 5, sizeof(lat[0]), cmp_i64);
    print_message("# kvm smp 2, 3 MiB: vm_stop latency min %.3f ms, median "
                  "%.3f ms, max %.3f ms\n",
                  (double)lat[0] / 1e6, (double)lat[2] / 1e6,
                  (double)lat[4] / 1e6);
    assert_true(lat[4] < LATENCY_BOUND_NS);
    machine_free(m);
    capture_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memtest_smp4_2g_stop_resume),
        cmocka_unit_test(test_memtest_kvm_small_stop_resume),
    };
    return cmocka_run_group_tests_name("machine-smp", tests, NULL, NULL);
}
