/* The machine: run states, RAM and dirty tracking, the loader, run
 * control, whole-machine save/load under both accelerators, and bad
 * guest behaviour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "machine/loader.h"
#include "machine/machine.h"
#include "machine/memory.h"
#include "machine/runstate.h"
#include "ram/ram.h"
#include "tests/unit/machine-fixture.h"
#include "tests/unit/memtest-check.h"
#include "vmstate/channel.h"

/* ---- run states ---- */

static void test_runstate_names_and_transitions(void **state)
{
    for (int i = 0; i < RUN_STATE__MAX; i++) {
        const char *n = runstate_name(i);
        assert_non_null(n);
        assert_int_equal(runstate_from_name(n), i);
    }
    assert_string_equal(runstate_name(RUN_STATE_FINISH_MIGRATE),
                        "finish-migrate");
    assert_int_equal(runstate_from_name("bogus"), -1);
    assert_true(
        runstate_transition_allowed(RUN_STATE_RUNNING, RUN_STATE_PAUSED));
    assert_true(
        runstate_transition_allowed(RUN_STATE_PRELAUNCH, RUN_STATE_INMIGRATE));
    assert_true(runstate_transition_allowed(RUN_STATE_FINISH_MIGRATE,
                                            RUN_STATE_POSTMIGRATE));
    assert_false(
        runstate_transition_allowed(RUN_STATE_SAVE_VM, RUN_STATE_INMIGRATE));
    assert_false(
        runstate_transition_allowed(RUN_STATE_INMIGRATE, RUN_STATE_SAVE_VM));
}

/* ---- RAM ---- */

static void test_memory_map_above_3g(void **state)
{
    Error *err = NULL;
    uint64_t size = (3ull << 30) + (16ull << 20);
    struct machine_memory *mem = memory_new(size, NULL, &err);
    assert_non_null(mem);
    assert_int_equal(mem->nregions, 2);
    assert_true(mem->regions[0].gpa == 0);
    assert_true(mem->regions[0].size == 3ull << 30);
    assert_true(mem->regions[1].gpa == 4ull << 30);
    assert_true(mem->regions[1].size == 16ull << 20);
    assert_null(memory_host_ptr(mem, 3ull << 30, 1)); /* the hole */
    struct ram_block *b = memory_main_block(mem);
    assert_string_equal(b->name, "pc.ram");
    /* gpa 4 GiB + 1 page is block offset 3 GiB + 1 page. */
    uint32_t v = 0xfeedf00d;
    assert_true(memory_write(mem, (4ull << 30) + 4096, &v, 4, &err));
    uint64_t page = ((3ull << 30) + 4096) / 4096;
    assert_true(ram_block_test_dirty(b, page));
    assert_memory_equal(b->host + (3ull << 30) + 4096, &v, 4);
    assert_false(memory_write(mem, 3ull << 30, &v, 4, &err));
    assert_non_null(strstr(error_get_pretty(err), "not RAM"));
    error_free(err);
    memory_free(mem);
}

static void test_memory_dirty_bits(void **state)
{
    Error *err = NULL;
    struct machine_memory *mem = memory_new(8u << 20, NULL, &err);
    struct ram_block *b = memory_main_block(mem);
    uint8_t buf[16];
    /* Reading never marks dirty. */
    assert_true(memory_read(mem, 0x5000, buf, sizeof(buf), &err));
    assert_int_equal(ram_block_count_dirty(b), 0);
    /* A write spanning two pages marks both. */
    memset(buf, 0xaa, sizeof(buf));
    assert_true(memory_write(mem, 0x6ff8, buf, 16, &err));
    assert_int_equal(ram_block_count_dirty(b), 2);
    assert_true(ram_block_test_and_clear_dirty(b, 6));
    assert_false(ram_block_test_and_clear_dirty(b, 6));
    assert_true(ram_block_take_dirty_word(b, 0) == 1ul << 7);
    assert_int_equal(ram_block_count_dirty(b), 0);
    ram_block_set_all_dirty(b);
    assert_int_equal(ram_block_count_dirty(b), (8u << 20) / 4096);
    memory_free(mem);
}

static void test_memory_is_shareable_memfd(void **state)
{
    Error *err = NULL;
    /* Guest RAM is anonymous by default; a memfd backend shares it. */
    struct mem_backend be;
    assert_true(
        mem_backend_parse(&be, "memory-backend-memfd,id=m,size=4M", &err));
    struct machine_memory *mem = memory_new(4u << 20, &be, &err);
    assert_non_null(mem);
    struct ram_block *b = memory_main_block(mem);
    assert_true(b->fd >= 0);
    /* Another mapping of the fd (what a second process gets) sees the
     * guest's bytes. */
    uint8_t *other = mmap(NULL, b->size, PROT_READ, MAP_SHARED, b->fd, 0);
    assert_true(other != MAP_FAILED);
    assert_true(memory_write(mem, 0x123456, "shared", 6, &err));
    assert_memory_equal(other + 0x123456, "shared", 6);
    munmap(other, b->size);
    assert_null(memory_new(1u << 20, NULL, &err)); /* too small */
    error_free(err);
    memory_free(mem);
}

/* ---- loader ---- */

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void test_loader_multiboot_aout(void **state)
{
    Error *err = NULL;
    struct machine_memory *mem = memory_new(16u << 20, NULL, &err);
    /* Header at file offset 16 describing a load at 2 MiB with bss. */
    uint8_t img[64];
    memset(img, 0x90, sizeof(img));
    uint8_t *h = img + 16;
    put32(h + 0, MULTIBOOT_HEADER_MAGIC);
    put32(h + 4, 0x00010002);
    put32(h + 8, -(MULTIBOOT_HEADER_MAGIC + 0x00010002));
    put32(h + 12, 0x200010); /* header_addr */
    put32(h + 16, 0x200000); /* load_addr */
    put32(h + 20, 0x200040); /* load_end_addr */
    put32(h + 24, 0x201000); /* bss_end_addr */
    put32(h + 28, 0x200030); /* entry */
    uint8_t *bss = memory_host_ptr(mem, 0x200040, 16);
    memset(bss, 0x77, 16);
    struct loader_result res;
    assert_true(loader_load(mem, img, sizeof(img), "test", &res, &err));
    assert_true(res.multiboot);
    assert_int_equal(res.entry, 0x200030);
    assert_memory_equal(memory_host_ptr(mem, 0x200000, 64), img, 64);
    assert_int_equal(bss[0], 0); /* bss cleared */
    /* mem_lower / mem_upper in KiB. */
    uint32_t mbi[3];
    assert_true(memory_read(mem, res.mbi, mbi, sizeof(mbi), &err));
    assert_true(mbi[0] & 1);
    assert_int_equal(mbi[1], 640);
    assert_int_equal(mbi[2], (16u << 20) / 1024 - 1024);
    memory_free(mem);
}

static void test_loader_flat_and_errors(void **state)
{
    Error *err = NULL;
    struct machine_memory *mem = memory_new(4u << 20, NULL, &err);
    uint8_t flat[3] = { 0xf4, 0xeb, 0xfd };
    struct loader_result res;
    assert_true(loader_load(mem, flat, sizeof(flat), "flat", &res, &err));
    assert_false(res.multiboot);
    assert_int_equal(res.entry, LOADER_KERNEL_BASE);
    assert_memory_equal(memory_host_ptr(mem, 0x100000, 3), flat, 3);
    /* Larger than RAM above 1 MiB. */
    size_t big = 4u << 20;
    uint8_t *huge = calloc(1, big);
    assert_false(loader_load(mem, huge, big, "huge", &res, &err));
    assert_non_null(strstr(error_get_pretty(err), "does not fit"));
    error_free(err);
    err = NULL;
    /* A multiboot header without the a.out kludge (an ELF kernel). */
    put32(huge + 0, MULTIBOOT_HEADER_MAGIC);
    put32(huge + 4, 0);
    put32(huge + 8, -MULTIBOOT_HEADER_MAGIC);
    assert_false(loader_load(mem, huge, 64, "elf", &res, &err));
    assert_non_null(strstr(error_get_pretty(err), "ELF"));
    error_free(err);
    free(huge);
    memory_free(mem);
}

/* ---- whole machines ---- */

struct rig {
    struct serial_capture out;
    char reports[1024];
    pthread_mutex_t lock;
    struct machine *m;
    struct ram_state *rs;
};

static void rig_report(void *opaque, const char *msg)
{
    struct rig *r = opaque;
    pthread_mutex_lock(&r->lock);
    size_t n = strlen(r->reports);
    snprintf(r->reports + n, sizeof(r->reports) - n, "%s\n", msg);
    pthread_mutex_unlock(&r->lock);
}

static struct rig *rig_new(const char *accel, const char *guest,
                           const char *kernel, uint64_t ram, int smp)
{
    struct rig *r = calloc(1, sizeof(*r));
    capture_init(&r->out);
    pthread_mutex_init(&r->lock, NULL);
    struct machine_config cfg = {
        .ram_size = ram,
        .smp = smp,
        .accel = accel,
        .guest = guest,
        .kernel = kernel,
        .serial = capture_backend(&r->out),
        .report = rig_report,
        .opaque = r,
    };
    Error *err = NULL;
    r->m = machine_new(&cfg, &err);
    if (!r->m) {
        fail_msg("machine_new: %s", error_get_pretty(err));
    }
    assert_int_equal(machine_runstate(r->m), RUN_STATE_PRELAUNCH);
    r->rs = fixture_register_ram(r->m);
    return r;
}

static void rig_free(struct rig *r)
{
    machine_free(r->m);
    ram_state_free(r->rs);
    capture_free(&r->out);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static void start(struct machine *m)
{
    Error *err = NULL;
    if (!vm_start(m, &err)) {
        fail_msg("vm_start: %s", error_get_pretty(err));
    }
}

static void stop(struct machine *m)
{
    Error *err = NULL;
    if (!vm_stop(m, RUN_STATE_PAUSED, &err)) {
        fail_msg("vm_stop: %s", error_get_pretty(err));
    }
}

static uint8_t *save_machine(struct machine *m, size_t *len)
{
    Channel *f = chan_new_mem_writer();
    Error *err = NULL;
    if (!machine_save(m, f, &err)) {
        fail_msg("machine_save: %s", error_get_pretty(err));
    }
    chan_flush(f);
    uint8_t *buf = chan_mem_take(f, len);
    chan_close(f, NULL);
    return buf;
}

static void load_machine(struct machine *m, const uint8_t *buf, size_t len)
{
    Channel *f = chan_new_mem_reader(buf, len, "saved machine");
    Error *err = NULL;
    if (!machine_load(m, f, &err)) {
        fail_msg("machine_load: %s", error_get_pretty(err));
    }
    chan_close(f, NULL);
}

static void assert_same_cpus(struct machine *a, struct machine *b)
{
    for (int i = 0; i < machine_smp(a); i++) {
        struct x86_state sa, sb;
        Error *err = NULL;
        assert_true(machine_get_cpu_state(a, i, &sa, &err));
        assert_true(machine_get_cpu_state(b, i, &sb, &err));
        char msg[160];
        if (!x86_state_equal(&sa, &sb, msg, sizeof(msg))) {
            fail_msg("vCPU %d differs after load: %s", i, msg);
        }
    }
}

/* The counter's output must be "counter: 1\n" ... "counter: N\n" with no
 * gap or repeat; returns N. */
static long check_counter_text(const char *text)
{
    long expect = 1;
    const char *p = text;
    for (;;) {
        const char *nl = strchr(p, '\n');
        if (!nl) {
            break; /* a partial last line */
        }
        long n;
        if (sscanf(p, "counter: %ld", &n) != 1 || n != expect) {
            fail_msg("counter line %ld reads '%.*s'", expect, (int)(nl - p), p);
        }
        expect++;
        p = nl + 1;
    }
    return expect - 1;
}

static void counter_save_load(const char *accel_a, const char *accel_b,
                              int lines)
{
    struct rig *a = rig_new(accel_a, "counter", NULL, 4u << 20, 1);
    start(a->m);
    char want[32];
    snprintf(want, sizeof(want), "counter: %d\n", lines);
    assert_true(capture_wait_for(&a->out, want, 20000));
    stop(a->m);
    size_t len;
    uint8_t *buf = save_machine(a->m, &len);

    struct rig *b = rig_new(accel_b, "counter", NULL, 4u << 20, 1);
    load_machine(b->m, buf, len);
    assert_same_cpus(a->m, b->m);
    char *before = capture_text(&a->out);
    long last = check_counter_text(before);
    start(b->m);
    snprintf(want, sizeof(want), "counter: %ld\n", last + 2);
    assert_true(capture_wait_for(&b->out, want, 20000));
    stop(b->m);
    /* What the first machine printed, then what the second printed, is
     * one unbroken count. */
    char *after = capture_text(&b->out);
    char *all = malloc(strlen(before) + strlen(after) + 1);
    strcpy(all, before);
    strcat(all, after);
    assert_true(check_counter_text(all) >= last + 2);
    print_message("# %s -> %s: stopped after counter %ld, resumed with %ld\n",
                  accel_a, accel_b, last, last + 1);
    free(all);
    free(after);
    free(before);
    free(buf);
    rig_free(b);
    rig_free(a);
}

static void test_counter_save_load_emu(void **state)
{
    counter_save_load("emu", "emu", 20);
}

static void test_counter_save_load_kvm(void **state)
{
    const char *why = kvm_unusable_reason();
    if (why) {
        print_message("# skip: %s\n", why);
        skip();
    }
    counter_save_load("kvm", "kvm", 3);
}

static void test_counter_kvm_to_emu_and_back(void **state)
{
    const char *why = kvm_unusable_reason();
    if (why) {
        print_message("# skip: %s\n", why);
        skip();
    }
    counter_save_load("kvm", "emu", 3);
    counter_save_load("emu", "kvm", 3);
}

static void check_memtest(struct machine *m, struct memtest_result *res)
{
    struct machine_memory *mem = machine_memory(m);
    struct ram_block *b = memory_main_block(mem);
    char msg[256];
    if (!memtest_check(b->host, memory_below_4g(mem), 0x100000,
                       memory_below_4g(mem), machine_smp(m), res, msg,
                       sizeof(msg))) {
        fail_msg("memtest checker: %s", msg);
    }
}

static void memtest_save_load(const char *accel, uint64_t ram, int smp,
                              size_t marks)
{
    struct rig *a = rig_new(accel, "memtest", NULL, ram, smp);
    start(a->m);
    assert_true(capture_wait_for(&a->out, "memtest: filled\n", 30000));
    assert_true(capture_wait_count(&a->out, '.', marks, 30000));
    stop(a->m);
    struct memtest_result ra, rb;
    check_memtest(a->m, &ra);
    size_t len;
    uint8_t *buf = save_machine(a->m, &len);

    struct rig *b = rig_new(accel, "memtest", NULL, ram, smp);
    load_machine(b->m, buf, len);
    assert_same_cpus(a->m, b->m);
    struct ram_block *ba = memory_main_block(machine_memory(a->m));
    struct ram_block *bb = memory_main_block(machine_memory(b->m));
    assert_true(memcmp(ba->host, bb->host, ba->size) == 0);
    check_memtest(b->m, &rb);
    assert_int_equal(ra.value, rb.value);
    start(b->m);
    assert_true(capture_wait_count(&b->out, '.', 3, 30000));
    stop(b->m);
    check_memtest(b->m, &rb);
    /* Three more passes: the counter moved on by at least two. */
    assert_true(((rb.value - ra.value) & 0xff) >= 2);
    print_message("# memtest %s smp %d: value %d at save, %d after resuming\n",
                  accel, smp, ra.value, rb.value);
    free(buf);
    rig_free(b);
    rig_free(a);
}

static void test_memtest_save_load_emu(void **state)
{
    memtest_save_load("emu", 8u << 20, 2, 5);
}

static void test_memtest_save_load_kvm(void **state)
{
    const char *why = kvm_unusable_reason();
    if (why) {
        print_message("# skip: %s\n", why);
        skip();
    }
    memtest_save_load("kvm", 3u << 20, 2, 2);
}

static void test_dirty_tracking_follows_guest_stores(void **state)
{
    const char *accels[] = { "emu", "kvm" };
    for (int i = 0; i < 2; i++) {
        if (i == 1 && kvm_unusable_reason()) {
            print_message("# kvm part skipped: %s\n", kvm_unusable_reason());
            continue;
        }
        struct rig *r = rig_new(accels[i], "memtest", NULL, 3u << 20, 1);
        struct ram_block *b = memory_main_block(machine_memory(r->m));
        Error *err = NULL;
        start(r->m);
        assert_true(capture_wait_count(&r->out, '.', 1, 30000));
        stop(r->m);
        assert_true(machine_sync_dirty(r->m, &err));
        ram_block_clear_all_dirty(b);
        start(r->m);
        size_t marks = capture_count(&r->out, '.');
        assert_true(capture_wait_count(&r->out, '.', marks + 2, 30000));
        stop(r->m);
        assert_true(machine_sync_dirty(r->m, &err));
        /* Every page of the tested range was written; the mark pages
         * of a stopped reader are not. */
        for (uint64_t p = 0x100000 / 4096; p < b->npages; p++) {
            if (!ram_block_test_dirty(b, p)) {
                fail_msg("%s: page 0x%llx written by memtest is not dirty",
                         accels[i], (unsigned long long)p * 4096);
            }
        }
        assert_false(ram_block_test_dirty(b, 0)); /* nobody writes 0 */
        rig_free(r);
    }
}

static void test_stop_start_and_runstates(void **state)
{
    struct rig *r = rig_new("emu", "counter", NULL, 4u << 20, 2);
    Error *err = NULL;
    start(r->m);
    assert_int_equal(machine_runstate(r->m), RUN_STATE_RUNNING);
    assert_true(capture_wait_for(&r->out, "counter: 5\n", 10000));
    stop(r->m);
    /* Stopped means stopped: no more output, VM clock still. */
    size_t n = capture_count(&r->out, '\n');
    int64_t clk = machine_vm_clock_ns(r->m);
    usleep(50000);
    assert_int_equal(capture_count(&r->out, '\n'), n);
    assert_true(machine_vm_clock_ns(r->m) == clk);
    assert_true(vm_stop(r->m, RUN_STATE_FINISH_MIGRATE, &err));
    assert_true(vm_stop(r->m, RUN_STATE_POSTMIGRATE, &err));
    assert_false(vm_stop(r->m, RUN_STATE_SAVE_VM, &err) &&
                 vm_stop(r->m, RUN_STATE_INMIGRATE, &err));
    error_free(err);
    err = NULL;
    start(r->m);
    assert_true(capture_wait_for(&r->out, "counter: 10\n", 10000));
    /* Saving a running machine is refused. */
    Channel *f = chan_new_mem_writer();
    assert_false(machine_save(r->m, f, &err));
    assert_non_null(strstr(error_get_pretty(err), "stopped"));
    error_free(err);
    chan_close(f, NULL);
    rig_free(r); /* destroys a running machine */
}

static const char *write_tmp(const char *name, const void *data, size_t len)
{
    static char path[128];
    snprintf(path, sizeof(path), "/tmp/hop-test-%d-%s", (int)getpid(), name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    return path;
}

static void test_unknown_opcode_is_internal_error(void **state)
{
    const uint8_t ud2[] = { 0x90, 0x0f, 0x0b };
    const char *path = write_tmp("ud2.bin", ud2, sizeof(ud2));
    struct rig *r = rig_new("emu", NULL, path, 4u << 20, 1);
    start(r->m);
    int64_t end = fixture_now_ns() + 5000000000ll;
    while (machine_runstate(r->m) == RUN_STATE_RUNNING &&
           fixture_now_ns() < end) {
        usleep(1000);
    }
    assert_int_equal(machine_runstate(r->m), RUN_STATE_INTERNAL_ERROR);
    assert_non_null(strstr(machine_last_error(r->m), "0f 0b"));
    assert_non_null(strstr(machine_last_error(r->m), "0x00100001"));
    assert_non_null(strstr(r->reports, "vCPU 0"));
    struct x86_state st;
    Error *err = NULL;
    assert_true(machine_get_cpu_state(r->m, 0, &st, &err));
    assert_int_equal(st.eip, 0x100001); /* stopped at the bad opcode */
    unlink(path);
    rig_free(r);
}

static void test_unassigned_port_reported_once(void **state)
{
    /* in al, 0x99; out 0x99, al; in al, 0x99 again; hlt */
    const uint8_t code[] = { 0xe4, 0x99, 0xe6, 0x99, 0xe4, 0x99, 0xf4 };
    const char *path = write_tmp("port.bin", code, sizeof(code));
    struct rig *r = rig_new("emu", NULL, path, 4u << 20, 1);
    start(r->m);
    int64_t end = fixture_now_ns() + 5000000000ll;
    struct x86_state st = { 0 };
    Error *err = NULL;
    do {
        usleep(2000);
        stop(r->m);
        assert_true(machine_get_cpu_state(r->m, 0, &st, &err));
        start(r->m);
    } while (!st.halted && fixture_now_ns() < end);
    assert_true(st.halted);
    assert_int_equal(st.regs[R_EAX] & 0xff, 0xff); /* reads all ones */
    pthread_mutex_lock(&r->lock);
    assert_non_null(strstr(r->reports, "read unassigned I/O port 0x0099"));
    /* The first access is reported, the two after it are not. */
    int count = 0;
    for (char *p = r->reports; (p = strstr(p, "0x0099")); p++) {
        count++;
    }
    pthread_mutex_unlock(&r->lock);
    assert_int_equal(count, 1);
    unlink(path);
    rig_free(r);
}

static void halted_save_load(const char *accel)
{
    /* mov eax, 0x1234; hlt; (never reached) mov eax, 0x5678 */
    const uint8_t code[] = { 0xb8, 0x34, 0x12, 0, 0, 0xf4,
                             0xb8, 0x78, 0x56, 0, 0 };
    const char *path = write_tmp("hlt.bin", code, sizeof(code));
    struct rig *a = rig_new(accel, NULL, path, 4u << 20, 1);
    Error *err = NULL;
    struct x86_state st = { 0 };
    start(a->m);
    int64_t end = fixture_now_ns() + 10000000000ll;
    do {
        usleep(2000);
        stop(a->m);
        assert_true(machine_get_cpu_state(a->m, 0, &st, &err));
        start(a->m);
    } while (!st.halted && fixture_now_ns() < end);
    stop(a->m);
    assert_true(st.halted);
    size_t len;
    uint8_t *buf = save_machine(a->m, &len);
    struct rig *b = rig_new(accel, NULL, path, 4u << 20, 1);
    load_machine(b->m, buf, len);
    assert_same_cpus(a->m, b->m);
    /* Resumed, the vCPU stays in HLT: nothing wakes it. */
    start(b->m);
    usleep(50000);
    stop(b->m);
    assert_true(machine_get_cpu_state(b->m, 0, &st, &err));
    assert_true(st.halted);
    assert_int_equal(st.regs[R_EAX], 0x1234);
    assert_int_equal(st.eip, 0x100006);
    free(buf);
    unlink(path);
    rig_free(b);
    rig_free(a);
}

static void test_halted_vcpu_save_load_emu(void **state)
{
    halted_save_load("emu");
}

static void test_halted_vcpu_save_load_kvm(void **state)
{
    const char *why = kvm_unusable_reason();
    if (why) {
        print_message("# skip: %s\n", why);
        skip();
    }
    halted_save_load("kvm");
}

static void test_reset_restarts_firmware(void **state)
{
    struct rig *r = rig_new("emu", "counter", NULL, 4u << 20, 1);
    Error *err = NULL;
    struct x86_state st0, st;
    assert_true(machine_get_cpu_state(r->m, 0, &st0, &err));
    start(r->m);
    assert_true(capture_wait_for(&r->out, "counter: 5\n", 10000));
    stop(r->m);
    assert_true(machine_reset(r->m, &err));
    /* The stop may have cut a line short: what follows the reset starts
     * at this byte, not at the next newline. */
    char *before = capture_text(&r->out);
    size_t at = strlen(before);
    free(before);
    size_t n = capture_count(&r->out, '\n');
    assert_true(machine_get_cpu_state(r->m, 0, &st, &err));
    char msg[160];
    if (!x86_state_equal(&st0, &st, msg, sizeof(msg))) {
        fail_msg("state after reset differs from power-on: %s", msg);
    }
    start(r->m);
    assert_true(capture_wait_count(&r->out, '\n', n + 1, 10000));
    char *text = capture_text(&r->out);
    /* Output after the reset starts again at 1. */
    const char *tail = text + at;
    bool ok = strncmp(tail, "counter: 1\n", 11) == 0 ||
        strncmp(tail, "counter: 1", strlen(tail)) == 0;
    if (!ok) {
        print_message("# after reset: '%.40s'\n", tail);
    }
    free(text);
    assert_true(ok);
    rig_free(r);
}

static void echo_keys_and_mouse(const char *accel)
{
    struct rig *r = rig_new(accel, "echo", NULL, 4u << 20, 1);
    Error *err = NULL;
    start(r->m);
    assert_true(capture_wait_for(&r->out, "echo: ready\n", 20000));
    assert_true(machine_sendkey(r->m, "shift-h", &err));
    assert_true(machine_sendkey(r->m, "i", &err));
    assert_true(machine_sendkey(r->m, "f1", &err));
    assert_true(machine_sendkey(r->m, "ret", &err));
    assert_true(capture_wait_for(&r->out, "Hi<3b>\n", 20000));
    machine_mouse_move(r->m, 10, -3, 0);
    assert_true(capture_wait_for(&r->out, "[mouse 08 0a 03]", 20000));
    machine_mouse_button(r->m, 1);
    assert_true(capture_wait_for(&r->out, "[mouse 09 00 00]", 20000));
    assert_false(machine_sendkey(r->m, "nokey", &err));
    error_free(err);
    rig_free(r);
}

static void test_echo_keys_and_mouse_emu(void **state)
{
    echo_keys_and_mouse("emu");
}

static void test_echo_keys_and_mouse_kvm(void **state)
{
    const char *why = kvm_unusable_reason();
    if (why) {
        print_message("# skip: %s\n", why);
        skip();
    }
    echo_keys_and_mouse("kvm");
}

static void test_machine_config_errors(void **state)
{
    Error *err = NULL;
    struct machine_config cfg = { .guest = "nope" };
    assert_null(machine_new(&cfg, &err));
    assert_non_null(strstr(error_get_pretty(err), "nope"));
    error_free(err);
    err = NULL;
    struct machine_config cfg2 = { .accel = "tcg" };
    assert_null(machine_new(&cfg2, &err));
    assert_non_null(strstr(error_get_pretty(err), "tcg"));
    error_free(err);
    err = NULL;
    struct machine_config cfg3 = { .kernel = "/nonexistent/kernel" };
    assert_null(machine_new(&cfg3, &err));
    assert_non_null(strstr(error_get_pretty(err), "/nonexistent/kernel"));
    error_free(err);
    uint64_t sz;
    assert_true(machine_parse_size("128M", &sz) && sz == 128ull << 20);
    assert_true(machine_parse_size("2G", &sz) && sz == 2ull << 30);
    assert_true(machine_parse_size("512", &sz) && sz == 512ull << 20);
    assert_true(machine_parse_size("16G", &sz) && sz == 16ull << 30);
    assert_false(machine_parse_size("12Q", &sz));
    assert_false(machine_parse_size("-1G", &sz));
    assert_false(machine_parse_size("", &sz));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runstate_names_and_transitions),
        cmocka_unit_test(test_memory_map_above_3g),
        cmocka_unit_test(test_memory_dirty_bits),
        cmocka_unit_test(test_memory_is_shareable_memfd),
        cmocka_unit_test(test_loader_multiboot_aout),
        cmocka_unit_test(test_loader_flat_and_errors),
        cmocka_unit_test(test_machine_config_errors),
        cmocka_unit_test(test_stop_start_and_runstates),
        cmocka_unit_test(test_reset_restarts_firmware),
        cmocka_unit_test(test_counter_save_load_emu),
        cmocka_unit_test(test_counter_save_load_kvm),
        cmocka_unit_test(test_counter_kvm_to_emu_and_back),
        cmocka_unit_test(test_memtest_save_load_emu),
        cmocka_unit_test(test_memtest_save_load_kvm),
        cmocka_unit_test(test_dirty_tracking_follows_guest_stores),
        cmocka_unit_test(test_halted_vcpu_save_load_emu),
        cmocka_unit_test(test_halted_vcpu_save_load_kvm),
        cmocka_unit_test(test_echo_keys_and_mouse_emu),
        cmocka_unit_test(test_echo_keys_and_mouse_kvm),
        cmocka_unit_test(test_unknown_opcode_is_internal_error),
        cmocka_unit_test(test_unassigned_port_reported_once),
    };
    return cmocka_run_group_tests_name("machine", tests, NULL, NULL);
}
