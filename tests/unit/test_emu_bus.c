/* accel emu: what the interpreter does to the machine around it: port
 * I/O, the dirty bitmap, code that changes, the stop flag, errors and
 * accesses outside RAM. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "emu-fixture.h"
#include "machine/write-guard.h"

static void test_port_io(void **state)
{
    struct emu_fix *f = fix_new();
    f->in_value = 0x12345678;
    assert_int_equal(
        fix_run_asm(f,
                    "mov dx, 0x3f8\n mov al, 'A'\n out dx, al\n"
                    "mov al, 'B'\n out 0x80, al\n"
                    "in al, dx\n mov dx, 0x1f0\n in ax, dx\n in eax, 0x71\n"
                    "mov ebx, eax\n mov ax, 0x1234\n out dx, ax\n hlt"),
        EMU_EXIT_HLT);
    assert_int_equal(f->npio, 6);
    struct pio_rec want[] = {
        { 1, 0x3f8, 1, 'A' }, { 1, 0x80, 1, 'B' }, { 0, 0x3f8, 1, 0 },
        { 0, 0x1f0, 2, 0 },   { 0, 0x71, 4, 0 },   { 1, 0x1f0, 2, 0x1234 },
    };
    for (int i = 0; i < 6; i++) {
        assert_int_equal(f->pio[i].out, want[i].out);
        assert_int_equal(f->pio[i].port, want[i].port);
        assert_int_equal(f->pio[i].size, want[i].size);
        if (want[i].out)
            assert_int_equal(f->pio[i].val, want[i].val);
    }
    assert_int_equal(f->st.regs[R_EBX], 0x12345678);
    fix_free(f);
}

static void test_string_port_io(void **state)
{
    struct emu_fix *f = fix_new();
    memcpy(f->ram + DATA_ADDR, "xyz", 3);
    f->in_value = 0xbeef;
    assert_int_equal(
        fix_run_asm(
            f,
            "mov dx, 0xe9\n mov esi, 0x100000\n mov ecx, 3\n rep outsb\n"
            "mov dx, 0x1f0\n mov edi, 0x100100\n mov ecx, 2\n rep insw\n hlt"),
        EMU_EXIT_HLT);
    assert_int_equal(f->npio, 5);
    assert_int_equal(f->pio[0].val, 'x');
    assert_int_equal(f->pio[2].val, 'z');
    assert_int_equal(f->pio[2].port, 0xe9);
    assert_int_equal(f->pio[3].port, 0x1f0);
    assert_int_equal(f->pio[3].size, 2);
    assert_int_equal(*(uint32_t *)(f->ram + DATA_ADDR + 0x100), 0xbeefbeef);
    assert_int_equal(f->st.regs[R_EDI], 0x100104);
    fix_free(f);
}

/* A device that asks the vCPU to stop is obeyed right after the OUT. */
static void test_stop_at_out(void **state)
{
    struct emu_fix *f = fix_new();
    f->stop_after_out = 1;
    fix_load(f, "out 0x80, al\n mov ebx, 1\n hlt");
    assert_int_equal(fix_run(f), EMU_EXIT_STOP);
    assert_int_equal(f->st.eip, CODE_ADDR + 2);
    assert_int_equal(f->st.regs[R_EBX], 0);
    assert_int_equal(f->icount, 1);
    atomic_store(&f->stop, 0);
    assert_int_equal(fix_run(f), EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_EBX], 1);
    assert_true(f->st.halted);
    /* A halted vCPU stays halted: nothing delivers an interrupt. */
    assert_int_equal(fix_run(f), EMU_EXIT_HLT);
    assert_int_equal(f->icount, 3);
    fix_free(f);
}

static void test_dirty_bitmap(void **state)
{
    struct emu_fix *f = fix_new();
    fix_load(f,
             "mov eax, [0x101000]\n mov byte ptr [0x102000], 1\n"
             "mov word ptr [0x103ffe], 0x1234\n"      /* one page */
             "mov dword ptr [0x104ffe], 0x12345678\n" /* straddles */
             "mov edi, 0x106000\n mov ecx, 0x2000\n rep stosb\n"
             "push eax\n hlt");
    fix_clear_dirty(f);
    assert_int_equal(fix_run(f), EMU_EXIT_HLT);
    assert_false(fix_page_dirty(f, 0x101000)); /* loads never mark */
    assert_true(fix_page_dirty(f, 0x102000));
    assert_true(fix_page_dirty(f, 0x103000));
    assert_true(fix_page_dirty(f, 0x104000));
    assert_true(fix_page_dirty(f, 0x105000));
    assert_true(fix_page_dirty(f, 0x106000));
    assert_true(fix_page_dirty(f, 0x107000));
    assert_false(fix_page_dirty(f, 0x108000));
    assert_true(fix_page_dirty(f, STACK_TOP - 4));
    assert_false(fix_page_dirty(f, CODE_ADDR)); /* fetches never mark */
    fix_free(f);
}

/* Copy-before-write: every kind of store passes the write guard before
 * it changes the page (the callback sees the page as it was), once per
 * page until lifted; loads and instruction fetches never do. */
struct guard_seen {
    struct emu_fix *f;
    struct write_guard *g;
    int calls[FIX_RAM_SIZE / 4096];
    bool changed[FIX_RAM_SIZE / 4096]; /* already written at the call */
};

static void guard_saw(void *opaque, uint64_t page)
{
    struct guard_seen *s = opaque;
    const uint8_t *p = s->f->ram + page * 4096;
    s->calls[page]++;
    for (int i = 0; i < 4096; i++) {
        if (p[i] != 0xa5) {
            s->changed[page] = true;
        }
    }
    write_guard_lift(s->g, page, 1);
}

static void test_write_guard_before_every_store(void **state)
{
    struct emu_fix *f = fix_new();
    static struct guard_seen s;
    memset(&s, 0, sizeof(s));
    s.f = f;
    s.g = write_guard_new(FIX_RAM_SIZE / 4096);
    emu_cpu_free(f->cpu);
    f->bus.guard = s.g;
    f->cpu = emu_cpu_new(&f->bus);
    /* 0x101000..0x10ffff: 0xa5 everywhere; the stack too. */
    memset(f->ram + 0x101000, 0xa5, 0xf000);
    memset(f->ram + STACK_TOP - 0x1000, 0xa5, 0x1000);
    fix_load(f,
             "mov eax, [0x101000]\n" /* load only */
             "mov byte ptr [0x102000], 1\n"
             "mov byte ptr [0x102001], 2\n"           /* same page */
             "mov dword ptr [0x103ffe], 0x12345678\n" /* straddles */
             "mov edi, 0x105800\n mov ecx, 0x1000\n rep stosb\n"
             "mov esi, 0x101000\n mov edi, 0x107000\n mov ecx, 16\n"
             "rep movsb\n"
             "mov edx, 5\n xchg [0x108000], edx\n"
             "lock add dword ptr [0x109000], 1\n"
             "mov eax, 0xa5a5a5a5\n mov edx, 7\n"
             "lock cmpxchg [0x10a000], edx\n"
             "std\n mov edi, 0x10b010\n mov ecx, 4\n rep stosb\n cld\n"
             "push eax\n hlt");
    write_guard_arm(s.g, guard_saw, &s);
    assert_int_equal(fix_run(f), EMU_EXIT_HLT);
    static const uint32_t stored[] = { 0x102000, 0x103000,     0x104000,
                                       0x105000, 0x106000,     0x107000,
                                       0x108000, 0x109000,     0x10a000,
                                       0x10b000, STACK_TOP - 4 };
    for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++) {
        uint64_t page = stored[i] / 4096;
        if (s.calls[page] != 1) {
            fail_msg("page 0x%x: %d calls", stored[i], s.calls[page]);
        }
        if (s.changed[page]) {
            fail_msg("page 0x%x was written before the guard ran", stored[i]);
        }
    }
    assert_int_equal(s.calls[0x101000 / 4096], 0);  /* loads */
    assert_int_equal(s.calls[CODE_ADDR / 4096], 0); /* fetches */
    assert_int_equal(s.calls[0x10c000 / 4096], 0);
    /* The stores themselves happened. */
    assert_int_equal(f->ram[0x102001], 2);
    assert_int_equal(f->ram[0x10a000], 7);
    write_guard_disarm(s.g);
    write_guard_free(s.g);
    fix_free(f);
}

/* A store to an instruction the same block is about to run. */
static void test_self_modifying_code(void **state)
{
    struct emu_fix *f = fix_new();
    assert_int_equal(fix_run_asm(f,
                                 "mov byte ptr [patch + 1], 42\n"
                                 "patch: mov al, 0\n hlt"),
                     EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_EAX] & 0xff, 42);
    fix_free(f);

    /* ... and to a block that already ran: the second pass adds 5. */
    f = fix_new();
    assert_int_equal(
        fix_run_asm(f,
                    "mov ecx, 2\n xor ebx, ebx\n"
                    "again: mov bl, 1\n add bh, bl\n"
                    "mov byte ptr [again + 1], 5\n dec ecx\n jnz again\n hlt"),
        EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_EBX] >> 8 & 0xff, 6);
    fix_free(f);

    /* REP MOVS copying code over the code that follows it. */
    f = fix_new();
    assert_int_equal(
        fix_run_asm(f,
                    "mov esi, offset src\n mov edi, offset dst\n mov ecx, 5\n"
                    "rep movsb\n"
                    "dst: mov eax, 1\n hlt\n"
                    "src: mov eax, 2\n"),
        EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_EAX], 2);
    fix_free(f);
}

/* Memory changed by the host, announced with emu_cpu_invalidate. */
static void test_invalidate(void **state)
{
    struct emu_fix *f = fix_new();
    assert_int_equal(fix_run_asm(f, "mov eax, 1\n hlt"), EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_EAX], 1);
    fix_load(f, "mov eax, 2\n hlt"); /* host write + invalidate */
    f->st.eip = CODE_ADDR;
    f->st.halted = false;
    assert_int_equal(fix_run(f), EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_EAX], 2);
    fix_free(f);
}

/* Two vCPUs on one RAM: a store by one to code the other has decoded is
 * seen by the other. */
static void test_cross_vcpu_code_change(void **state)
{
    struct emu_fix *f = fix_new();
    struct emu_code_map *map = emu_code_map_new(FIX_RAM_SIZE);
    f->bus.code = map;
    emu_cpu_free(f->cpu);
    f->cpu = emu_cpu_new(&f->bus);
    struct emu_cpu *other = emu_cpu_new(&f->bus);

    fix_load(f,
             "mov eax, 1\n hlt\n"
             ".org 0x100\n" /* the other vCPU's program */
             "mov byte ptr [0x1001], 7\n hlt\n");
    assert_int_equal(fix_run(f), EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_EAX], 1);

    struct x86_state st2;
    x86_state_reset_flat(&st2, CODE_ADDR + 0x100, 0, 0);
    st2.regs[R_ESP] = STACK_TOP - 0x1000;
    uint64_t ic = 0;
    char err[128];
    assert_int_equal(emu_cpu_run(other, &st2, &f->stop, &ic, err, sizeof(err)),
                     EMU_EXIT_HLT);

    f->st.eip = CODE_ADDR;
    f->st.halted = false;
    assert_int_equal(fix_run(f), EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_EAX], 7);
    emu_cpu_free(other);
    emu_cpu_free(f->cpu);
    f->cpu = NULL;
    emu_code_map_free(map);
    fix_free(f);
}

struct locked_vcpu {
    struct emu_fix *f;
    struct emu_cpu *cpu;
    struct x86_state st;
    pthread_barrier_t *start;
    enum emu_exit exit;
};

static void *run_locked(void *arg)
{
    struct locked_vcpu *v = arg;
    uint64_t ic = 0;
    char err[128];
    pthread_barrier_wait(v->start);
    v->exit = emu_cpu_run(v->cpu, &v->st, &v->f->stop, &ic, err, sizeof(err));
    return NULL;
}

/* Two vCPUs on two threads hammer one counter with LOCK INC and LOCK
 * XADD: no increment is lost. */
static void test_lock_across_vcpus(void **state)
{
    struct emu_fix *f = fix_new();
    struct emu_code_map *map = emu_code_map_new(FIX_RAM_SIZE);
    f->bus.code = map;
    fix_load(f,
             "mov ecx, 1000000\n"
             "1: lock inc dword ptr [0x100000]\n"
             "mov edx, 2\n lock xadd [0x100004], edx\n loop 1b\n hlt");
    struct locked_vcpu v[2];
    pthread_t th[2];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    for (int i = 0; i < 2; i++) {
        v[i] = (struct locked_vcpu){ .f = f,
                                     .cpu = emu_cpu_new(&f->bus),
                                     .start = &start };
        x86_state_reset_flat(&v[i].st, CODE_ADDR, 0, 0);
        v[i].st.regs[R_ESP] = STACK_TOP - 0x1000u * (uint32_t)i;
    }
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, run_locked, &v[i]);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(v[i].exit, EMU_EXIT_HLT);
        emu_cpu_free(v[i].cpu);
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(*(uint32_t *)(f->ram + DATA_ADDR), 2000000);
    assert_int_equal(*(uint32_t *)(f->ram + DATA_ADDR + 4), 4000000);
    emu_code_map_free(map);
    fix_free(f);
}

static void *set_stop_later(void *arg)
{
    struct emu_fix *f = arg;
    usleep(20000);
    atomic_store(&f->stop, 1);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_stop_flag(void **state)
{
    struct emu_fix *f = fix_new();
    fix_load(f, "1: inc eax\n jmp 1b\n");
    /* Already set: nothing runs. */
    atomic_store(&f->stop, 1);
    assert_int_equal(fix_run(f), EMU_EXIT_STOP);
    assert_int_equal(f->icount, 0);
    assert_int_equal(f->st.eip, CODE_ADDR);

    atomic_store(&f->stop, 0);
    pthread_t th;
    double t0 = now();
    pthread_create(&th, NULL, set_stop_later, f);
    assert_int_equal(fix_run(f), EMU_EXIT_STOP);
    double waited = now() - t0;
    pthread_join(th, NULL);
    assert_true(waited < 1.0);
    assert_true(f->icount > 1000);
    /* Each loop is INC + JMP; the state is between instructions. */
    uint32_t incs = f->st.regs[R_EAX];
    assert_true(f->icount == 2ull * incs || f->icount == 2ull * incs - 1);
    fix_free(f);
}

/* A long REP STOS is interruptible and resumes where it stopped. */
static void test_stop_in_rep(void **state)
{
    struct emu_fix *f = fix_new();
    /* 0x40000000 dwords: far past the end of RAM, so it cannot finish. */
    fix_load(f,
             "mov edi, 0x200000\n mov ecx, 0x40000000\n mov eax, -1\n"
             "rep stosd\n hlt");
    pthread_t th;
    pthread_create(&th, NULL, set_stop_later, f);
    assert_int_equal(fix_run(f), EMU_EXIT_STOP);
    pthread_join(th, NULL);
    assert_int_equal(f->st.eip, CODE_ADDR + 15); /* on the REP STOSD */
    uint32_t done = 0x40000000 - f->st.regs[R_ECX];
    assert_true(done > 0 && done < 0x40000000);
    assert_int_equal(f->st.regs[R_EDI], 0x200000 + 4 * done);
    assert_int_equal(f->icount, 3); /* REP not retired yet */
    /* Resumed with a smaller count, it completes. */
    f->st.regs[R_ECX] = 4;
    atomic_store(&f->stop, 0);
    assert_int_equal(fix_run(f), EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_ECX], 0);
    fix_free(f);
}

static void test_unknown_opcode(void **state)
{
    struct emu_fix *f = fix_new();
    assert_int_equal(fix_run_asm(f, "nop\n ud2\n hlt"), EMU_EXIT_ERROR);
    assert_string_equal(f->err, "unknown opcode 0f 0b at eip 0x00001001");
    assert_int_equal(f->st.eip, CODE_ADDR + 1);
    assert_int_equal(f->icount, 1);
    fix_free(f);
    /* Outside the subset: FPU, INT, address-size prefix. */
    const char *bad[][2] = {
        { "fninit", "unknown opcode db e3 at eip 0x00001000" },
        { "int 0x10", "unknown opcode cd at eip 0x00001000" },
        { ".byte 0x67, 0x8b, 0x00", "unknown opcode 67 at eip 0x00001000" },
        { ".byte 0xf0, 0x90", "unknown opcode 90 at eip 0x00001000" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = fix_new();
        assert_int_equal(fix_run_asm(f, bad[i][0]), EMU_EXIT_ERROR);
        assert_string_equal(f->err, bad[i][1]);
        fix_free(f);
    }
}

static void test_unsupported_modes(void **state)
{
    struct emu_fix *f = fix_new();
    assert_int_equal(fix_run_asm(f,
                                 "mov eax, cr0\n or eax, 0x80000000\n"
                                 "mov cr0, eax\n hlt"),
                     EMU_EXIT_ERROR);
    assert_non_null(strstr(f->err, "paging"));
    assert_int_equal(f->st.eip, CODE_ADDR + 8);
    fix_free(f);
}

static void test_outside_ram(void **state)
{
    struct emu_fix *f = fix_new();
    assert_int_equal(
        fix_run_asm(f,
                    "mov eax, [0xf0000000]\n"
                    "mov dword ptr [0xf0000000], 5\n mov ebx, [0xf0000000]\n"
                    "mov ecx, [0x3ffffe]\n" /* half in RAM */
                    "mov dword ptr [0x3ffffe], 0x11223344\n"
                    "mov esi, 0xfffffff0\n mov edi, 0x100000\n mov ecx, 32\n"
                    "rep movsb\n hlt"),
        EMU_EXIT_HLT);
    assert_int_equal(f->st.regs[R_EAX], 0xffffffff);
    assert_int_equal(f->st.regs[R_EBX], 0xffffffff);
    assert_int_equal(f->ram[FIX_RAM_SIZE - 2], 0x44);
    assert_int_equal(f->ram[FIX_RAM_SIZE - 1], 0x33);
    /* 16 bytes of nothing (0xff) then the wrap to address 0. */
    for (int i = 0; i < 16; i++)
        assert_int_equal(f->ram[DATA_ADDR + i], 0xff);
    assert_memory_equal(f->ram + DATA_ADDR + 16, f->ram, 16);
    fix_free(f);

    /* Running code outside RAM stops with an error, not a crash. */
    f = fix_new();
    assert_int_equal(fix_run_asm(f, "mov eax, 0xf0000000\n jmp eax"),
                     EMU_EXIT_ERROR);
    assert_string_equal(f->err, "unknown opcode ff ff at eip 0xf0000000");
    fix_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_port_io),
        cmocka_unit_test(test_string_port_io),
        cmocka_unit_test(test_stop_at_out),
        cmocka_unit_test(test_dirty_bitmap),
        cmocka_unit_test(test_write_guard_before_every_store),
        cmocka_unit_test(test_self_modifying_code),
        cmocka_unit_test(test_invalidate),
        cmocka_unit_test(test_cross_vcpu_code_change),
        cmocka_unit_test(test_lock_across_vcpus),
        cmocka_unit_test(test_stop_flag),
        cmocka_unit_test(test_stop_in_rep),
        cmocka_unit_test(test_unknown_opcode),
        cmocka_unit_test(test_unsupported_modes),
        cmocka_unit_test(test_outside_ram),
    };
    return cmocka_run_group_tests_name("emu bus", tests, NULL, NULL);
}
