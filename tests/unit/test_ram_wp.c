/* Write tracking for background snapshots (ram/ram-wp.h): every page is
 * saved once, as it was when tracking started, whether the saver or a
 * writer's fault gets to it first; a writer blocked on a full queue or a
 * protected page is let go when tracking stops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "machine/write-guard.h"
#include "ram/ram-wp.h"

#define PAGES 512 /* 8 bitmap words */

static uint8_t queue[8 * RAM_WP_PAGE_SIZE];

struct mem {
    uint8_t *host;
    struct ram_wp_range r;
};

static bool map_or_skip(struct mem *m, bool shared)
{
    m->host = mmap(NULL, PAGES * RAM_WP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | (shared ? MAP_SHARED : MAP_PRIVATE), -1, 0);
    assert_true(m->host != MAP_FAILED);
    m->r = (struct ram_wp_range){ m->host, PAGES, "test" };
    Error *err = NULL;
    if (!ram_wp_check(&m->r, 1, &err)) {
        print_message("# skip: %s\n", error_get_pretty(err));
        error_free(err);
        munmap(m->host, PAGES * RAM_WP_PAGE_SIZE);
        return false;
    }
    return true;
}

/* Page p holds p's number in every byte-quad, except pages left never
 * written (every fifth) to cover memory the kernel has not populated. */
static void fill(uint8_t *host)
{
    for (uint32_t p = 0; p < PAGES; p++) {
        if (p % 5 == 4) {
            continue;
        }
        uint32_t *w = (uint32_t *)(host + (size_t)p * RAM_WP_PAGE_SIZE);
        for (size_t i = 0; i < RAM_WP_PAGE_SIZE / 4; i++) {
            w[i] = p + 1;
        }
    }
}

static bool page_is_original(const uint8_t *data, uint32_t p)
{
    const uint32_t *w = (const uint32_t *)data;
    uint32_t want = p % 5 == 4 ? 0 : p + 1;
    for (size_t i = 0; i < RAM_WP_PAGE_SIZE / 4; i++) {
        if (w[i] != want) {
            return false;
        }
    }
    return true;
}

struct writer {
    uint8_t *host;
    struct write_guard *guard; /* stores pass it first, as emu's do */
    atomic_int done;
};

/* Writes every page from the last down: against the saver's order, so
 * both paths claim pages. */
static void *write_all(void *opaque)
{
    struct writer *w = opaque;
    for (int round = 0; round < 3; round++) {
        for (int p = PAGES - 1; p >= 0; p--) {
            write_guard_check(w->guard, (uint64_t)p);
            memset(w->host + (size_t)p * RAM_WP_PAGE_SIZE + 8, 0xee, 64);
        }
    }
    atomic_store(&w->done, 1);
    return NULL;
}

static int saved_count[PAGES];

static void save(uint32_t p, const uint8_t *data)
{
    assert_true(p < PAGES);
    saved_count[p]++;
    if (!page_is_original(data, p)) {
        fail_msg("page %u was saved after a write", p);
    }
}

/* Memory of a file no kernel lets userfaultfd write-protect (a plain
 * file on disk), for the guard. */
static void map_file(struct mem *m)
{
    char path[] = "/var/tmp/hop-test-wp-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(ftruncate(fd, PAGES * RAM_WP_PAGE_SIZE), 0);
    m->host = mmap(NULL, PAGES * RAM_WP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
    assert_true(m->host != MAP_FAILED);
    close(fd);
    m->r = (struct ram_wp_range){ m->host, PAGES, "disk.ram" };
}

enum kind { UFFD_PRIVATE, UFFD_SHARED, GUARD_PRIVATE, GUARD_FILE };

static void check_once_each(struct mem *m, enum kind kind)
{
    struct write_guard *guard = NULL;
    if (kind == GUARD_FILE) {
        map_file(m);
    } else if (kind == GUARD_PRIVATE) {
        m->host = mmap(NULL, PAGES * RAM_WP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        assert_true(m->host != MAP_FAILED);
        m->r = (struct ram_wp_range){ m->host, PAGES, "test" };
    } else if (!map_or_skip(m, kind == UFFD_SHARED)) {
        skip();
    }
    if (kind == GUARD_PRIVATE || kind == GUARD_FILE) {
        guard = write_guard_new(PAGES);
    }
    fill(m->host);
    memset(saved_count, 0, sizeof(saved_count));
    Error *err = NULL;
    struct ram_wp *wp = ram_wp_start(&m->r, 1, guard, queue, 8, &err);
    assert_non_null(wp);
    struct writer w = { .host = m->host, .guard = guard };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_all, &w), 0);
    uint8_t *stage = malloc(64 * RAM_WP_PAGE_SIZE);
    for (uint64_t word = 0; word < PAGES / 64;) {
        struct ram_wp_copy c[4];
        int n = ram_wp_take(wp, c, 4);
        for (int i = 0; i < n; i++) {
            assert_int_equal(c[i].range, 0);
            save((uint32_t)c[i].page, c[i].data);
        }
        ram_wp_put(wp, c, n);
        if (n) {
            continue;
        }
        uint64_t mask = ram_wp_claim(wp, 0, word);
        for (int i = 0; i < 64; i++) {
            if (mask >> i & 1) {
                memcpy(stage + (size_t)i * RAM_WP_PAGE_SIZE,
                       m->host + (word * 64 + (uint64_t)i) * RAM_WP_PAGE_SIZE,
                       RAM_WP_PAGE_SIZE);
            }
        }
        assert_true(ram_wp_release(wp, 0, word * 64, 64, &err));
        for (int i = 0; i < 64; i++) {
            if (mask >> i & 1) {
                save((uint32_t)(word * 64 + (uint64_t)i),
                     stage + (size_t)i * RAM_WP_PAGE_SIZE);
            }
        }
        word++;
        /* Nothing is claimed twice. */
        assert_int_equal(ram_wp_claim(wp, 0, word - 1), 0);
    }
    /* Every page claimed: what is queued is all that can come. */
    struct ram_wp_copy c[8];
    int n;
    while ((n = ram_wp_take(wp, c, 8)) > 0) {
        for (int i = 0; i < n; i++) {
            save((uint32_t)c[i].page, c[i].data);
        }
        ram_wp_put(wp, c, n);
    }
    assert_true(ram_wp_idle(wp));
    assert_true(ram_wp_ok(wp, &err));
    pthread_join(t, NULL);
    assert_true(atomic_load(&w.done));
    ram_wp_stop(wp);
    for (int p = 0; p < PAGES; p++) {
        if (saved_count[p] != 1) {
            fail_msg("page %d saved %d times", p, saved_count[p]);
        }
    }
    /* The writes themselves went through. */
    assert_int_equal(m->host[8], 0xee);
    if (guard) {
        /* Stopped: no guard is left. */
        assert_false(write_guard_test(guard, 0));
        write_guard_free(guard);
    }
    free(stage);
    munmap(m->host, PAGES * RAM_WP_PAGE_SIZE);
}

static void test_each_page_once_as_it_was(void **state)
{
    (void)state;
    struct mem m;
    check_once_each(&m, UFFD_PRIVATE);
}

static void test_each_page_once_shmem(void **state)
{
    (void)state;
    struct mem m;
    check_once_each(&m, UFFD_SHARED);
}

static void test_each_page_once_guarded(void **state)
{
    (void)state;
    struct mem m;
    check_once_each(&m, GUARD_PRIVATE);
}

/* The guard needs nothing of the kernel: file memory works too. */
static void test_each_page_once_guarded_file(void **state)
{
    (void)state;
    struct mem m;
    check_once_each(&m, GUARD_FILE);
}

/* A writer blocked on a full queue, and one blocked on a page nobody
 * saves, both go on when tracking stops. */
static void check_stop_lets_writers_go(bool guarded)
{
    struct mem m;
    struct write_guard *guard = NULL;
    if (guarded) {
        map_file(&m);
        guard = write_guard_new(PAGES);
    } else if (!map_or_skip(&m, false)) {
        skip();
    }
    fill(m.host);
    Error *err = NULL;
    struct ram_wp *wp = ram_wp_start(&m.r, 1, guard, queue, 1, &err);
    assert_non_null(wp);
    struct writer w = { .host = m.host, .guard = guard };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_all, &w), 0);
    /* The queue holds one copy: the writer cannot get far. */
    struct timespec ts = { 0, 100 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    assert_int_equal(atomic_load(&w.done), 0);
    assert_int_equal(ram_wp_faults(wp), 1);
    ram_wp_stop(wp);
    for (int i = 0; i < 100 && !atomic_load(&w.done); i++) {
        nanosleep(&ts, NULL);
    }
    assert_int_equal(atomic_load(&w.done), 1);
    pthread_join(t, NULL);
    write_guard_free(guard);
    munmap(m.host, PAGES * RAM_WP_PAGE_SIZE);
}

static void test_stop_lets_writers_go(void **state)
{
    (void)state;
    check_stop_lets_writers_go(false);
}

static void test_stop_lets_guarded_writers_go(void **state)
{
    (void)state;
    check_stop_lets_writers_go(true);
}

/* Memory the kernel cannot protect is refused with its name. */
static void test_refuses_plain_file_memory(void **state)
{
    (void)state;
    struct mem probe;
    if (!map_or_skip(&probe, false)) {
        skip();
    }
    munmap(probe.host, PAGES * RAM_WP_PAGE_SIZE);
    struct mem m;
    map_file(&m);
    uint8_t *host = m.host;
    struct ram_wp_range r = m.r;
    Error *err = NULL;
    if (ram_wp_check(&r, 1, &err)) {
        print_message("# skip: /var/tmp is on a filesystem the kernel can "
                      "write-protect\n");
        munmap(host, PAGES * RAM_WP_PAGE_SIZE);
        skip();
    }
    assert_non_null(strstr(error_get_pretty(err), "RAM block disk.ram"));
    error_free(err);
    err = NULL;
    assert_null(ram_wp_start(&r, 1, NULL, queue, 4, &err));
    assert_non_null(strstr(error_get_pretty(err), "RAM block disk.ram"));
    error_free(err);
    munmap(host, PAGES * RAM_WP_PAGE_SIZE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_page_once_as_it_was),
        cmocka_unit_test(test_each_page_once_shmem),
        cmocka_unit_test(test_each_page_once_guarded),
        cmocka_unit_test(test_each_page_once_guarded_file),
        cmocka_unit_test(test_stop_lets_writers_go),
        cmocka_unit_test(test_stop_lets_guarded_writers_go),
        cmocka_unit_test(test_refuses_plain_file_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
