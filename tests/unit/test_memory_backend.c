/* Memory backends: -object parsing, guest RAM on each backend (what is
 * written reads back, marks pages dirty, and lands where the backend
 * says), telling never-written pages without touching them, and the
 * prefault helper of the receive path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "machine/memory-backend.h"
#include "machine/memory.h"
#include "ram/ram-prefault.h"

#define MiB (1ull << 20)

/* ---- -object parsing ---- */

static void test_parse_good_specs(void **state)
{
    static const struct {
        const char *spec;
        enum mem_backend_kind kind;
        const char *id;
        uint64_t size;
        bool share, hugetlb, prealloc;
        const char *mem_path;
    } good[] = {
        { "memory-backend-ram,id=m,size=64M", MEM_BACKEND_RAM, "m", 64 * MiB,
          false, false, false, "" },
        /* memfd is shared unless told otherwise, as QEMU's. */
        { "memory-backend-memfd,id=mem0,size=1G", MEM_BACKEND_MEMFD, "mem0",
          1ull << 30, true, false, false, "" },
        { "memory-backend-memfd,id=h,size=2M,share=off,hugetlb=on,"
          "prealloc=yes",
          MEM_BACKEND_MEMFD, "h", 2 * MiB, false, true, true, "" },
        { "memory-backend-file,id=f,size=32M,mem-path=/dev/hugepages,"
          "share=on",
          MEM_BACKEND_FILE, "f", 32 * MiB, true, false, false,
          "/dev/hugepages" },
        /* Keys in any order; a plain number is bytes; true/false. */
        { "memory-backend-ram,size=8388608,prealloc=true,id=x,share=false",
          MEM_BACKEND_RAM, "x", 8 * MiB, false, false, true, "" },
        /* The last of a repeated key wins. */
        { "memory-backend-memfd,id=a,size=4M,share=on,share=no",
          MEM_BACKEND_MEMFD, "a", 4 * MiB, false, false, false, "" },
        { "memory-backend-file,id=f,size=1.5G,mem-path=/tmp/a=b",
          MEM_BACKEND_FILE, "f", 3ull << 29, false, false, false, "/tmp/a=b" },
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct mem_backend be;
        Error *err = NULL;
        if (!mem_backend_parse(&be, good[i].spec, &err)) {
            fail_msg("'%s' refused: %s", good[i].spec, error_get_pretty(err));
        }
        assert_int_equal(be.kind, good[i].kind);
        assert_string_equal(be.id, good[i].id);
        assert_true(be.size == good[i].size);
        assert_int_equal(be.share, good[i].share);
        assert_int_equal(be.hugetlb, good[i].hugetlb);
        assert_int_equal(be.prealloc, good[i].prealloc);
        assert_string_equal(be.mem_path, good[i].mem_path);
        const char *type = mem_backend_type_name(be.kind);
        assert_int_equal(strncmp(good[i].spec, type, strlen(type)), 0);
        assert_int_equal(good[i].spec[strlen(type)], ',');
    }
}

/* spec is refused with a one-line error that says says. */
static void refused(const char *spec, const char *says)
{
    struct mem_backend be;
    Error *err = NULL;
    if (mem_backend_parse(&be, spec, &err)) {
        fail_msg("'%s' was taken", spec);
    }
    assert_non_null(err);
    const char *msg = error_get_pretty(err);
    if (!strstr(msg, says)) {
        fail_msg("'%s': \"%s\" does not say \"%s\"", spec, msg, says);
    }
    assert_null(strchr(msg, '\n'));
    error_free(err);
}

static void test_parse_bad_specs(void **state)
{
    static const struct {
        const char *spec;
        const char *says; /* names the key or the value */
    } bad[] = {
        { "", "unknown type ''" },
        { "memory-backend-foo,id=m,size=4M",
          "unknown type 'memory-backend-foo'" },
        { "memory-backend-ram,id=m,size=4M,hugetlb=on",
          "memory-backend-ram: unknown key 'hugetlb'" },
        { "memory-backend-memfd,id=m,size=4M,mem-path=/tmp",
          "memory-backend-memfd: unknown key 'mem-path'" },
        { "memory-backend-ram,id=m,size=4M,bogus=1", "unknown key 'bogus'" },
        { "memory-backend-ram,id=m,size=4M,share", "'share' is not KEY=VALUE" },
        { "memory-backend-ram,size=4M", "id= is required" },
        { "memory-backend-memfd,id=m", "size= is required" },
        { "memory-backend-file,id=m,size=4M", "mem-path= is required" },
        { "memory-backend-ram,id=m,size=lots", "size 'lots' is not a size" },
        { "memory-backend-ram,id=m,size=0", "size '0' is not a size" },
        { "memory-backend-ram,id=m,size=-4M", "size '-4M' is not a size" },
        { "memory-backend-ram,id=m,size=4Q", "size '4Q' is not a size" },
        { "memory-backend-memfd,id=m,size=4M,share=maybe",
          "share='maybe' is not on or off" },
        { "memory-backend-memfd,id=m,size=4M,hugetlb=2",
          "hugetlb='2' is not on or off" },
        { "memory-backend-ram,id=m,size=4M,prealloc=",
          "prealloc='' is not on or off" },
        { "memory-backend-ram,id=,size=4M",
          "id '' must be 1 to 63 characters" },
        { "memory-backend-file,id=m,size=4M,mem-path=", "mem-path is empty" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        refused(bad[i].spec, bad[i].says);
    }
    char spec[128];
    snprintf(spec, sizeof(spec), "memory-backend-ram,size=4M,id=%064d", 7);
    refused(spec, "must be 1 to 63 characters");
}

static void test_default_backend(void **state)
{
    struct mem_backend be;
    mem_backend_default(&be, 64 * MiB);
    assert_int_equal(be.kind, MEM_BACKEND_RAM);
    assert_true(be.size == 64 * MiB);
    assert_false(be.share);
    assert_false(be.prealloc);
    for (int i = 0; mem_backend_types[i]; i++) {
        assert_string_equal(mem_backend_type_name(i), mem_backend_types[i]);
    }
}

/* ---- guest RAM on each backend ---- */

#define RAM_SIZE (8 * MiB)

struct fixture {
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hop-backend-XXXXXX");
    if (!fx || !mkdtemp(fx->dir)) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    DIR *d = opendir(fx->dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] != '.') {
            char p[4096];
            snprintf(p, sizeof(p), "%s/%s", fx->dir, e->d_name);
            unlink(p);
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static struct mem_backend parsed(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static struct mem_backend parsed(const char *fmt, ...)
{
    char spec[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(spec, sizeof(spec), fmt, ap);
    va_end(ap);
    struct mem_backend be;
    Error *err = NULL;
    if (!mem_backend_parse(&be, spec, &err)) {
        fail_msg("'%s': %s", spec, error_get_pretty(err));
    }
    return be;
}

static size_t dir_entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

/* Whether one page may hold data (-1: the backend cannot tell). */
static int may_hold(struct machine_memory *mem, uint64_t page)
{
    uint8_t v = 0xee;
    if (!ram_block_may_hold_data(mem, memory_main_block(mem), page, 1, &v)) {
        return -1;
    }
    assert_true(v == 0 || v == 1);
    return v;
}

/* What every backend does: bytes written at a guest address read back,
 * across a page boundary; writes mark exactly their pages dirty and
 * reads mark nothing.  Returns the memory for backend-specific checks. */
static struct machine_memory *ram_on(const struct mem_backend *be)
{
    Error *err = NULL;
    struct machine_memory *mem = memory_new(RAM_SIZE, be, &err);
    if (!mem) {
        fail_msg("%s: %s", be ? be->id : "default", error_get_pretty(err));
    }
    struct ram_block *b = memory_main_block(mem);
    assert_string_equal(b->name, "pc.ram");
    assert_true(b->size == RAM_SIZE);
    assert_int_equal(b->kind, be ? be->kind : MEM_BACKEND_RAM);
    uint8_t out[64], in[64];
    memset(in, 0x5a, sizeof(in));
    assert_true(memory_read(mem, 0x3000, out, sizeof(out), &err));
    assert_int_equal(ram_block_count_dirty(b), 0);
    for (size_t i = 0; i < sizeof(out); i++) {
        assert_int_equal(out[i], 0); /* fresh memory reads as zeros */
    }
    for (size_t i = 0; i < sizeof(out); i++) {
        out[i] = (uint8_t)(i * 7 + 1);
    }
    /* 0x1fe0..0x201f: the end of page 1 and the start of page 2. */
    assert_true(memory_write(mem, 0x1fe0, out, sizeof(out), &err));
    assert_true(memory_read(mem, 0x1fe0, in, sizeof(in), &err));
    assert_memory_equal(in, out, sizeof(out));
    assert_int_equal(ram_block_count_dirty(b), 2);
    assert_true(ram_block_test_dirty(b, 1));
    assert_true(ram_block_test_dirty(b, 2));
    /* Past the end is no RAM. */
    assert_false(memory_write(mem, RAM_SIZE - 2, "xxxx", 4, &err));
    assert_non_null(strstr(error_get_pretty(err), "not RAM"));
    error_free(err);
    err = NULL;
    /* The last page, far from the first (not in its huge page). */
    assert_true(memory_write(mem, RAM_SIZE - 4, "end!", 4, &err));
    assert_true(ram_block_test_dirty(b, RAM_SIZE / 4096 - 1));
    assert_int_equal(ram_block_count_dirty(b), 3);
    return mem;
}

/* A page in the middle, 2 MiB from anything written: never touched. */
#define UNTOUCHED_PAGE (RAM_SIZE / 2 / 4096)

static void test_ram_default_and_ram_backend(void **state)
{
    struct machine_memory *mem = ram_on(NULL);
    struct ram_block *b = memory_main_block(mem);
    assert_int_equal(b->fd, -1); /* anonymous */
    assert_int_equal(may_hold(mem, 1), 1);
    assert_int_equal(may_hold(mem, UNTOUCHED_PAGE), 0);
    memory_free(mem);

    struct mem_backend be = parsed("memory-backend-ram,id=r,size=%llu",
                                   (unsigned long long)RAM_SIZE);
    mem = ram_on(&be);
    assert_string_equal(memory_main_block(mem)->backend_id, "r");
    assert_int_equal(may_hold(mem, 2), 1);
    assert_int_equal(may_hold(mem, UNTOUCHED_PAGE), 0);
    memory_free(mem);
}

static void test_ram_memfd_shared(void **state)
{
    struct mem_backend be =
        parsed("memory-backend-memfd,id=m,size=%llu,share=on",
               (unsigned long long)RAM_SIZE);
    struct machine_memory *mem = ram_on(&be);
    struct ram_block *b = memory_main_block(mem);
    assert_true(b->fd >= 0);
    assert_int_equal(may_hold(mem, 1), 1);
    assert_int_equal(may_hold(mem, UNTOUCHED_PAGE), 0);
    /* A batch: the written pages and the holes around them (page 3
     * was read, which may allocate it). */
    uint8_t vec[1024];
    assert_true(ram_block_may_hold_data(mem, b, 0, 1024, vec));
    for (int i = 0; i < 1024; i++) {
        if (i != 3) {
            assert_int_equal(vec[i], i == 1 || i == 2);
        }
    }
    /* The fd's pages are the guest's: another mapping sees the bytes. */
    char buf[4];
    assert_int_equal(pread(b->fd, buf, 4, RAM_SIZE - 4), 4);
    assert_memory_equal(buf, "end!", 4);
    memory_free(mem);
}

static void test_ram_memfd_private(void **state)
{
    struct mem_backend be =
        parsed("memory-backend-memfd,id=m,size=%llu,share=off",
               (unsigned long long)RAM_SIZE);
    struct machine_memory *mem = ram_on(&be);
    struct ram_block *b = memory_main_block(mem);
    assert_true(b->fd >= 0);
    assert_int_equal(may_hold(mem, 1), 1);
    assert_int_equal(may_hold(mem, UNTOUCHED_PAGE), 0);
    /* Private: the guest's writes stay out of the fd. */
    char buf[4];
    assert_int_equal(pread(b->fd, buf, 4, RAM_SIZE - 4), 4);
    assert_memory_equal(buf, "\0\0\0\0", 4);
    memory_free(mem);
}

static void test_ram_file_in_a_directory(void **state)
{
    struct fixture *fx = *state;
    struct mem_backend be =
        parsed("memory-backend-file,id=f,size=%llu,mem-path=%s,share=on",
               (unsigned long long)RAM_SIZE, fx->dir);
    struct machine_memory *mem = ram_on(&be);
    /* The file made in the directory is unlinked: nothing is left. */
    assert_int_equal(dir_entries(fx->dir), 0);
    /* (Untouched pages may be in the page cache by readahead: only a
     * written page has a sure answer.) */
    assert_int_equal(may_hold(mem, 2), 1);
    memory_free(mem);
}

static void test_ram_file_path(void **state)
{
    struct fixture *fx = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/guest.ram", fx->dir);
    /* share=on: the file is guest RAM. */
    struct mem_backend be =
        parsed("memory-backend-file,id=f,size=%llu,mem-path=%s,share=on",
               (unsigned long long)RAM_SIZE, path);
    struct machine_memory *mem = ram_on(&be);
    assert_int_equal(may_hold(mem, 1), 1);
    memory_free(mem);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_size == RAM_SIZE);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    uint8_t buf[64];
    assert_int_equal(pread(fd, buf, 4, RAM_SIZE - 4), 4);
    assert_memory_equal(buf, "end!", 4);
    assert_int_equal(pread(fd, buf, 64, 0x1fe0), 64);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(buf[i], (uint8_t)(i * 7 + 1));
    }

    /* share=off on the same file: the guest sees what the file holds,
     * its writes stay private, and holes cannot be told from data. */
    be = parsed("memory-backend-file,id=f,size=%llu,mem-path=%s",
                (unsigned long long)RAM_SIZE, path);
    Error *err = NULL;
    mem = memory_new(RAM_SIZE, &be, &err);
    assert_non_null(mem);
    char s[4];
    assert_true(memory_read(mem, RAM_SIZE - 4, s, 4, &err));
    assert_memory_equal(s, "end!", 4);
    assert_true(memory_write(mem, RAM_SIZE - 4, "priv", 4, &err));
    assert_int_equal(may_hold(mem, UNTOUCHED_PAGE), -1);
    memory_free(mem);
    assert_int_equal(pread(fd, buf, 4, RAM_SIZE - 4), 4);
    assert_memory_equal(buf, "end!", 4);
    close(fd);
}

static void test_prealloc_makes_every_page_resident(void **state)
{
    static const char *const types[] = { "ram", "memfd" };
    for (size_t k = 0; k < 2; k++) {
        struct mem_backend be =
            parsed("memory-backend-%s,id=p,size=%llu,prealloc=on", types[k],
                   (unsigned long long)RAM_SIZE);
        Error *err = NULL;
        struct machine_memory *mem = memory_new(RAM_SIZE, &be, &err);
        assert_non_null(mem);
        struct ram_block *b = memory_main_block(mem);
        uint8_t vec[1024];
        for (uint64_t p = 0; p < b->npages; p += 1024) {
            assert_true(ram_block_may_hold_data(mem, b, p, 1024, vec));
            for (int i = 0; i < 1024; i++) {
                assert_int_equal(vec[i], 1);
            }
        }
        /* Still zeros, and nothing is dirty. */
        uint8_t z[16];
        assert_true(memory_read(mem, RAM_SIZE / 2, z, sizeof(z), &err));
        assert_memory_equal(z, (uint8_t[16]){ 0 }, sizeof(z));
        assert_int_equal(ram_block_count_dirty(b), 0);
        memory_free(mem);
    }
}

static void test_may_hold_data_bounds(void **state)
{
    struct machine_memory *mem = memory_new(RAM_SIZE, NULL, NULL);
    struct ram_block *b = memory_main_block(mem);
    uint8_t vec[1025];
    assert_false(ram_block_may_hold_data(mem, b, b->npages, 1, vec));
    assert_false(ram_block_may_hold_data(mem, b, b->npages - 1, 2, vec));
    assert_false(ram_block_may_hold_data(mem, b, 0, 1025, vec));
    assert_true(ram_block_may_hold_data(mem, b, b->npages - 1, 1, vec));
    memory_free(mem);
}

static void test_backend_size_must_match(void **state)
{
    struct mem_backend be = parsed("memory-backend-memfd,id=small,size=4M");
    Error *err = NULL;
    assert_null(memory_new(RAM_SIZE, &be, &err));
    assert_non_null(strstr(error_get_pretty(err),
                           "memory backend 'small' is 4194304 bytes but the "
                           "machine's RAM is 8388608 bytes"));
    error_free(err);
    err = NULL;
    be = parsed("memory-backend-ram,id=tiny,size=1M");
    assert_null(memory_new(1 * MiB, &be, &err));
    assert_non_null(strstr(error_get_pretty(err), "at least 2 MiB"));
    error_free(err);
}

static void test_file_backend_errors(void **state)
{
    struct fixture *fx = *state;
    /* A directory that does not exist, spelled as a file in it or as
     * the directory itself: the error says it is not there. */
    const char *paths[] = { "/none/ram", "/none/" };
    for (int i = 0; i < 2; i++) {
        char p[256];
        snprintf(p, sizeof(p), "%s%s", fx->dir, paths[i]);
        struct mem_backend be =
            parsed("memory-backend-file,id=f,size=4M,mem-path=%s", p);
        Error *err = NULL;
        assert_null(memory_new(4 * MiB, &be, &err));
        const char *msg = error_get_pretty(err);
        if (!strstr(msg, "memory backend 'f': cannot open") ||
            !strstr(msg, p) || !strstr(msg, "No such file or directory")) {
            fail_msg("mem-path=%s: \"%s\"", p, msg);
        }
        error_free(err);
    }
}

/* ---- the prefault helper ---- */

#define CHUNK (2 * MiB)

/* Pages of chunks [from, to) that are in memory. */
static uint64_t resident_pages(struct machine_memory *mem, uint64_t from,
                               uint64_t to)
{
    struct ram_block *b = memory_main_block(mem);
    uint64_t n = 0;
    uint8_t vec[512];
    for (uint64_t c = from; c < to; c++) {
        assert_true(ram_block_may_hold_data(mem, b, c * 512, 512, vec));
        for (int i = 0; i < 512; i++) {
            n += vec[i];
        }
    }
    return n;
}

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ 0, ms * 1000000 }, NULL);
}

static void test_prefault_only_ahead_of_data(void **state)
{
    Error *err = NULL;
    struct machine_memory *mem = memory_new(64 * MiB, NULL, &err);
    assert_non_null(mem);
    struct ram_prefault *pf = ram_prefault_new(mem);
    if (!pf) {
        memory_free(mem);
        print_message("# skip: the kernel lacks MADV_POPULATE_WRITE\n");
        skip();
    }
    assert_true(ram_prefault_bytes(pf) == 0);
    assert_int_equal(resident_pages(mem, 0, 32), 0);
    /* Page data arrives in chunks 0..3, a few pages each. */
    for (uint64_t c = 0; c < 4; c++) {
        for (uint64_t p = 0; p < 8; p++) {
            ram_prefault_note(pf, 0, c * CHUNK + p * 4096);
        }
    }
    /* A run of 4 data chunks: the 4 chunks past it are made ready. */
    for (int i = 0; i < 1000 && resident_pages(mem, 4, 8) < 4 * 512; i++) {
        sleep_ms(10);
    }
    assert_int_equal(resident_pages(mem, 4, 8), 4 * 512);
    assert_true(ram_prefault_bytes(pf) >= 4 * CHUNK);
    assert_true(ram_prefault_bytes(pf) <= 8 * CHUNK);
    /* The last 32 MiB is far beyond: untouched. */
    sleep_ms(50);
    assert_int_equal(resident_pages(mem, 16, 32), 0);
    /* Prefaulting never writes: what it made ready reads as zeros. */
    uint8_t z[64];
    assert_true(memory_read(mem, 5 * CHUNK + 123, z, sizeof(z), &err));
    assert_memory_equal(z, (uint8_t[64]){ 0 }, sizeof(z));
    assert_int_equal(ram_block_count_dirty(memory_main_block(mem)), 0);
    ram_prefault_free(pf);
    memory_free(mem);
}

static void test_prefault_lagging_and_bad_notes(void **state)
{
    struct machine_memory *mem = memory_new(64 * MiB, NULL, NULL);
    struct ram_prefault *pf = ram_prefault_new(mem);
    if (!pf) {
        memory_free(mem);
        print_message("# skip: the kernel lacks MADV_POPULATE_WRITE\n");
        skip();
    }
    /* Notes for blocks that do not exist, or past the end, are ignored. */
    ram_prefault_note(pf, -1, 0);
    ram_prefault_note(pf, 1, 0);
    ram_prefault_note(pf, RAM_MAX_BLOCKS, 0);
    ram_prefault_note(pf, 0, 64 * MiB - 4096); /* the last chunk: no more */
    ram_prefault_note(pf, 0, UINT64_MAX);
    sleep_ms(100);
    assert_int_equal(resident_pages(mem, 0, 31), 0);
    /* Freed while it may be busy: it stops and joins. */
    for (uint64_t c = 0; c < 20; c++) {
        ram_prefault_note(pf, 0, c * CHUNK);
    }
    ram_prefault_free(pf);
    memory_free(mem);
}

static void test_prefault_null_is_harmless(void **state)
{
    ram_prefault_note(NULL, 0, 0);
    assert_true(ram_prefault_bytes(NULL) == 0);
    ram_prefault_free(NULL);
    /* A new helper that is never fed faults nothing and joins. */
    struct machine_memory *mem = memory_new(8 * MiB, NULL, NULL);
    struct ram_prefault *pf = ram_prefault_new(mem);
    ram_prefault_free(pf);
    assert_int_equal(resident_pages(mem, 0, 4), 0);
    memory_free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good_specs),
        cmocka_unit_test(test_parse_bad_specs),
        cmocka_unit_test(test_default_backend),
        cmocka_unit_test(test_ram_default_and_ram_backend),
        cmocka_unit_test(test_ram_memfd_shared),
        cmocka_unit_test(test_ram_memfd_private),
        cmocka_unit_test_setup_teardown(test_ram_file_in_a_directory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ram_file_path, setup, teardown),
        cmocka_unit_test(test_prealloc_makes_every_page_resident),
        cmocka_unit_test(test_may_hold_data_bounds),
        cmocka_unit_test(test_backend_size_must_match),
        cmocka_unit_test_setup_teardown(test_file_backend_errors, setup,
                                        teardown),
        cmocka_unit_test(test_prefault_only_ahead_of_data),
        cmocka_unit_test(test_prefault_lagging_and_bad_notes),
        cmocka_unit_test(test_prefault_null_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
