/* The saved CPU state: a vCPU's registers go through the section stream
 * (memory channel) and come back in another vCPU; the halted flag travels
 * only for a halted vCPU. */
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "machine/accel.h"
#include "machine/cpu-vmstate.h"
#include "vmstate/stream.h"

#define RAM_SIZE (1u << 20)

struct cpu_fix {
    uint8_t *ram;
    _Atomic unsigned long *dirty;
    struct accel *acc;
    struct cpu_vmstate_ctx ctx;
};

static void cpu_fix_init(struct cpu_fix *f)
{
    Error *err = NULL;
    f->ram = calloc(1, RAM_SIZE);
    f->dirty = calloc(RAM_SIZE / 4096 / 64 + 1, sizeof(unsigned long));
    struct accel_mem_region r = {
        .gpa = 0,
        .size = RAM_SIZE,
        .host = f->ram,
        .dirty = f->dirty,
    };
    struct accel_io_ops io = { 0 };
    f->acc = accel_emu_ops.create(&r, 1, &io, &err);
    assert_non_null(f->acc);
    f->ctx.ops = &accel_emu_ops;
    f->ctx.vcpu = accel_emu_ops.vcpu_create(f->acc, 0, &err);
    assert_non_null(f->ctx.vcpu);
}

static void cpu_fix_destroy(struct cpu_fix *f)
{
    accel_emu_ops.vcpu_destroy(f->ctx.vcpu);
    accel_emu_ops.destroy(f->acc);
    free(f->ram);
    free((void *)f->dirty);
}

/* Every field set to a value of its own. */
static void distinct_state(struct x86_state *st)
{
    memset(st, 0, sizeof(*st));
    for (int i = 0; i < X86_NR_REGS; i++)
        st->regs[i] = 0x11111111u * (uint32_t)(i + 1);
    st->eip = 0x00101234;
    st->eflags = 0x00000a97;
    for (int s = 0; s < X86_NR_SREGS; s++) {
        st->seg[s] = (struct x86_segment){
            .selector = (uint16_t)(0x08 * (s + 1)),
            .base = 0x1000u * (uint32_t)s,
            .limit = 0xfffff000u | (uint32_t)s,
            .type = (uint8_t)(s == S_CS ? 0xb : 0x3),
            .s = 1,
            .dpl = 0,
            .present = 1,
            .avl = (uint8_t)(s & 1),
            .db = 1,
            .g = 1,
        };
    }
    st->gdt = (struct x86_dtable){ .base = 0x9000, .limit = 0x27 };
    st->idt = (struct x86_dtable){ .base = 0xa000, .limit = 0x7ff };
    st->cr0 = 0x11;
    st->cr2 = 0xdeadb000;
    st->cr3 = 0x00123000;
    st->cr4 = 0x00000010;
}

/* Save ctx's vCPU into a stream; returns the bytes (caller frees). */
static uint8_t *save_cpu(struct cpu_vmstate_ctx *ctx, size_t *len)
{
    Error *err = NULL;
    struct section_registry *reg = section_registry_new("pc");
    assert_true(
        section_register_vmsd(reg, "cpu", 0, &vmstate_x86_cpu, ctx, &err) == 0);
    Channel *ch = chan_new_mem_writer();
    assert_true(stream_save_all(reg, ch, &err));
    assert_true(chan_flush(ch));
    uint8_t *data = chan_mem_take(ch, len);
    assert_true(chan_close(ch, &err));
    section_registry_free(reg);
    return data;
}

static void load_cpu(struct cpu_vmstate_ctx *ctx, const uint8_t *data,
                     size_t len)
{
    Error *err = NULL;
    struct section_registry *reg = section_registry_new("pc");
    assert_true(
        section_register_vmsd(reg, "cpu", 0, &vmstate_x86_cpu, ctx, &err) == 0);
    Channel *ch = chan_new_mem_reader(data, len, "cpu stream");
    bool ok = stream_load(reg, ch, NULL, &err);
    if (!ok)
        fprintf(stderr, "load: %s\n", error_get_pretty(err));
    assert_true(ok);
    assert_true(chan_close(ch, &err));
    section_registry_free(reg);
}

static void assert_state_equal(const struct x86_state *a,
                               const struct x86_state *b)
{
    assert_memory_equal(a->regs, b->regs, sizeof(a->regs));
    assert_int_equal(a->eip, b->eip);
    assert_int_equal(a->eflags, b->eflags);
    for (int s = 0; s < X86_NR_SREGS; s++) {
        assert_int_equal(a->seg[s].selector, b->seg[s].selector);
        assert_int_equal(a->seg[s].base, b->seg[s].base);
        assert_int_equal(a->seg[s].limit, b->seg[s].limit);
        assert_int_equal(a->seg[s].type, b->seg[s].type);
        assert_int_equal(a->seg[s].s, b->seg[s].s);
        assert_int_equal(a->seg[s].dpl, b->seg[s].dpl);
        assert_int_equal(a->seg[s].present, b->seg[s].present);
        assert_int_equal(a->seg[s].avl, b->seg[s].avl);
        assert_int_equal(a->seg[s].db, b->seg[s].db);
        assert_int_equal(a->seg[s].g, b->seg[s].g);
    }
    assert_int_equal(a->gdt.base, b->gdt.base);
    assert_int_equal(a->gdt.limit, b->gdt.limit);
    assert_int_equal(a->idt.base, b->idt.base);
    assert_int_equal(a->idt.limit, b->idt.limit);
    assert_int_equal(a->cr0, b->cr0);
    assert_int_equal(a->cr2, b->cr2);
    assert_int_equal(a->cr3, b->cr3);
    assert_int_equal(a->cr4, b->cr4);
    assert_int_equal(a->halted, b->halted);
}

static bool contains(const uint8_t *data, size_t len, const char *s)
{
    return memmem(data, len, s, strlen(s)) != NULL;
}

static void test_round_trip(void **state)
{
    Error *err = NULL;
    struct cpu_fix src, dst;
    cpu_fix_init(&src);
    cpu_fix_init(&dst);
    struct x86_state st, got;
    distinct_state(&st);
    assert_true(accel_emu_ops.set_state(src.ctx.vcpu, &st, &err));

    size_t len;
    uint8_t *data = save_cpu(&src.ctx, &len);
    assert_false(contains(data, len, "x86_state/halted"));
    load_cpu(&dst.ctx, data, len);
    assert_true(accel_emu_ops.get_state(dst.ctx.vcpu, &got, &err));
    assert_state_equal(&st, &got);
    free(data);
    cpu_fix_destroy(&src);
    cpu_fix_destroy(&dst);
}

static void test_halted_flag(void **state)
{
    Error *err = NULL;
    struct cpu_fix src, dst;
    cpu_fix_init(&src);
    cpu_fix_init(&dst);
    struct x86_state st, got;
    distinct_state(&st);
    st.halted = true;
    assert_true(accel_emu_ops.set_state(src.ctx.vcpu, &st, &err));

    size_t len;
    uint8_t *data = save_cpu(&src.ctx, &len);
    assert_true(contains(data, len, "x86_state/halted"));
    load_cpu(&dst.ctx, data, len);
    assert_true(accel_emu_ops.get_state(dst.ctx.vcpu, &got, &err));
    assert_true(got.halted);
    assert_state_equal(&st, &got);
    free(data);

    /* A running vCPU's state loaded over a halted one un-halts it. */
    st.halted = false;
    assert_true(accel_emu_ops.set_state(src.ctx.vcpu, &st, &err));
    data = save_cpu(&src.ctx, &len);
    load_cpu(&dst.ctx, data, len);
    assert_true(accel_emu_ops.get_state(dst.ctx.vcpu, &got, &err));
    assert_false(got.halted);
    free(data);
    cpu_fix_destroy(&src);
    cpu_fix_destroy(&dst);
}

/* A guest that ran and halted: the loaded vCPU is halted at the same
 * place, and a vCPU set running again from there carries on. */
static void test_running_guest(void **state)
{
    Error *err = NULL;
    struct cpu_fix src, dst;
    cpu_fix_init(&src);
    cpu_fix_init(&dst);
    /* mov eax, 0x1234 ; hlt ; inc eax ; hlt */
    static const uint8_t code[] = { 0xb8, 0x34, 0x12, 0, 0, 0xf4, 0x40, 0xf4 };
    memcpy(src.ram + 0x1000, code, sizeof(code));
    memcpy(dst.ram + 0x1000, code, sizeof(code));
    struct x86_state st;
    x86_state_reset_flat(&st, 0x1000, 0, 0);
    assert_true(accel_emu_ops.set_state(src.ctx.vcpu, &st, &err));
    atomic_int stop = 0;
    char msg[128];
    assert_int_equal(
        accel_emu_ops.vcpu_run(src.ctx.vcpu, &stop, msg, sizeof(msg)),
        ACCEL_EXIT_HLT);
    size_t len;
    uint8_t *data = save_cpu(&src.ctx, &len);
    load_cpu(&dst.ctx, data, len);
    free(data);

    struct x86_state got;
    assert_true(accel_emu_ops.get_state(dst.ctx.vcpu, &got, &err));
    assert_true(got.halted);
    assert_int_equal(got.eip, 0x1006);
    assert_int_equal(got.regs[R_EAX], 0x1234);
    got.halted = false; /* as a wake-up would */
    assert_true(accel_emu_ops.set_state(dst.ctx.vcpu, &got, &err));
    assert_int_equal(
        accel_emu_ops.vcpu_run(dst.ctx.vcpu, &stop, msg, sizeof(msg)),
        ACCEL_EXIT_HLT);
    assert_true(accel_emu_ops.get_state(dst.ctx.vcpu, &got, &err));
    assert_int_equal(got.regs[R_EAX], 0x1235);
    cpu_fix_destroy(&src);
    cpu_fix_destroy(&dst);
}

/* A section from a newer format is refused with an error naming it. */
static void test_newer_version_refused(void **state)
{
    struct cpu_vmstate_ctx ctx = { 0 };
    distinct_state(&ctx.state);
    Channel *ch = chan_new_mem_writer();
    Error *err = NULL;
    assert_true(vmstate_save(ch, &vmstate_x86_cpu, &ctx, NULL, &err));
    size_t len;
    chan_flush(ch);
    uint8_t *data = chan_mem_take(ch, &len);
    chan_close(ch, NULL);
    struct cpu_vmstate_ctx back = { 0 };
    Channel *rd = chan_new_mem_reader(data, len, "cpu");
    assert_false(vmstate_load(rd, &vmstate_x86_cpu, &back, 2, &err));
    chan_close(rd, NULL);
    rd = chan_new_mem_reader(data, len, "cpu");
    assert_true(vmstate_load(rd, &vmstate_x86_cpu, &back, 1, &err));
    assert_state_equal(&ctx.state, &back.state);
    chan_close(rd, NULL);
    error_free(err);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_halted_flag),
        cmocka_unit_test(test_running_guest),
        cmocka_unit_test(test_newer_version_refused),
    };
    return cmocka_run_group_tests_name("cpu vmstate", tests, NULL, NULL);
}
