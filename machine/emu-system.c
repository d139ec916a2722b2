/* accel emu: system instructions: port I/O, HLT, CPUID, RDTSC,
 * descriptor tables, control and segment registers. */
#include "machine/emu-internal.h"

static int next(struct emu_cpu *c, const struct emu_op *op)
{
    c->eip = op->eip + op->len;
    return 1;
}

/* After every IN/OUT/HLT: the device may have asked the vCPU to stop. */
static int next_polled(struct emu_cpu *c, const struct emu_op *op)
{
    if (atomic_load_explicit(c->stop, memory_order_relaxed))
        c->exit = EMU_EXIT_STOP;
    return next(c, op);
}

int emu_op_in(struct emu_cpu *c, const struct emu_op *op)
{
    uint16_t port = op->sub ? (uint16_t)op->imm : c->r[R_EDX].w;
    uint32_t v = c->bus.pio_in ? c->bus.pio_in(c->bus.opaque, port, op->sz)
                               : 0xffffffffu;
    reg_set(c, op->sz, R_EAX, v);
    return next_polled(c, op);
}

int emu_op_out(struct emu_cpu *c, const struct emu_op *op)
{
    uint16_t port = op->sub ? (uint16_t)op->imm : c->r[R_EDX].w;
    if (c->bus.pio_out)
        c->bus.pio_out(c->bus.opaque, port, op->sz, reg_get(c, op->sz, R_EAX));
    return next_polled(c, op);
}

int emu_op_hlt(struct emu_cpu *c, const struct emu_op *op)
{
    c->sys.halted = true;
    c->exit = EMU_EXIT_HLT;
    return next(c, op);
}

/* Vendor "hopHOPhopHOP" in EBX, EDX, ECX order. */
#define CPUID_VENDOR_EBX 0x48706f68u         /* "hopH" */
#define CPUID_VENDOR_EDX 0x6f68504fu         /* "OPho" */
#define CPUID_VENDOR_ECX 0x504f4870u         /* "pHOP" */
#define CPUID_1_EAX 0x00000600u              /* family 6, model 0, stepping 0 */
#define CPUID_1_EDX ((1u << 4) | (1u << 15)) /* TSC, CMOV */

int emu_op_cpuid(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t leaf = c->r[R_EAX].d, a = 0, b = 0, cx = 0, d = 0;
    if (leaf == 0) {
        a = 1;
        b = CPUID_VENDOR_EBX;
        d = CPUID_VENDOR_EDX;
        cx = CPUID_VENDOR_ECX;
    } else if (leaf == 1) {
        a = CPUID_1_EAX;
        b = (uint32_t)(c->cpu_index & 0xff) << 24 |
            (uint32_t)(c->cpu_count & 0xff) << 16;
        d = CPUID_1_EDX;
    }
    c->r[R_EAX].d = a;
    c->r[R_EBX].d = b;
    c->r[R_ECX].d = cx;
    c->r[R_EDX].d = d;
    /* CPUID serializes: code another vCPU changed before it is seen
     * afterwards (the SDM's cross-modifying code protocol). */
    emu_flush_blocks(c);
    return next(c, op);
}

int emu_op_rdtsc(struct emu_cpu *c, const struct emu_op *op)
{
    uint64_t base =
        c->bus.rdtsc ? c->bus.rdtsc(c->bus.opaque) : c->insns_before;
    uint64_t tsc = base + c->insns;
    c->r[R_EAX].d = (uint32_t)tsc;
    c->r[R_EDX].d = (uint32_t)(tsc >> 32);
    return 0;
}

static void dtable_load(struct emu_cpu *c, const struct emu_op *op,
                        struct x86_dtable *t)
{
    uint32_t a = ea(c, op);
    t->limit = (uint16_t)mem_read(c, a, 2);
    t->base = mem_read(c, a + 2, 4);
    if (op->sz == 2)
        t->base &= 0x00ffffffu;
}

static int dtable_store(struct emu_cpu *c, const struct emu_op *op,
                        const struct x86_dtable *t)
{
    uint32_t a = ea(c, op);
    mem_write(c, a, 2, t->limit);
    mem_write(c, a + 2, 4, t->base);
    return store_done(c, op);
}

int emu_op_lgdt(struct emu_cpu *c, const struct emu_op *op)
{
    dtable_load(c, op, &c->sys.gdt);
    return next(c, op);
}

int emu_op_lidt(struct emu_cpu *c, const struct emu_op *op)
{
    dtable_load(c, op, &c->sys.idt);
    return next(c, op);
}

int emu_op_sgdt(struct emu_cpu *c, const struct emu_op *op)
{
    return dtable_store(c, op, &c->sys.gdt);
}

int emu_op_sidt(struct emu_cpu *c, const struct emu_op *op)
{
    return dtable_store(c, op, &c->sys.idt);
}

static uint32_t *cr_ptr(struct emu_cpu *c, int n)
{
    switch (n) {
    case 0:
        return &c->sys.cr0;
    case 2:
        return &c->sys.cr2;
    case 3:
        return &c->sys.cr3;
    case 4:
        return &c->sys.cr4;
    default:
        return NULL;
    }
}

int emu_op_mov_from_cr(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t *cr = cr_ptr(c, op->reg);
    if (!cr)
        return emu_fail(c, op, NULL);
    c->r[op->rm].d = *cr;
    return 0;
}

int emu_op_mov_to_cr(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t *cr = cr_ptr(c, op->reg);
    uint32_t v = c->r[op->rm].d;
    if (!cr)
        return emu_fail(c, op, NULL);
    if (op->reg == 0 && (v & 0x80000000u))
        return emu_fail(c, op, "paging (CR0.PG set) is not supported:");
    if (op->reg == 0 && !(v & 1))
        return emu_fail(c, op, "real mode (CR0.PE clear) is not supported:");
    *cr = v;
    emu_flush_blocks(c);
    return next(c, op);
}

bool emu_load_seg(struct emu_cpu *c, const struct emu_op *op, int s,
                  uint16_t sel)
{
    struct x86_segment seg = { .selector = sel };
    if ((sel & ~3u) == 0) {
        if (s == S_CS || s == S_SS) {
            emu_fail(c, op, "null selector for CS/SS:");
            return false;
        }
        c->sys.seg[s] = seg; /* unusable, base 0 */
        c->segbase[s] = 0;
        return true;
    }
    if (sel & 4) {
        emu_fail(c, op, "LDT selector is not supported:");
        return false;
    }
    uint32_t idx = sel & ~7u;
    if (idx + 7 > c->sys.gdt.limit) {
        emu_fail(c, op, "selector beyond the GDT limit:");
        return false;
    }
    uint32_t at = c->sys.gdt.base + idx;
    uint32_t lo = mem_read(c, at, 4), hi = mem_read(c, at + 4, 4);
    seg.base = (lo >> 16) | (hi & 0xffu) << 16 | (hi & 0xff000000u);
    seg.limit = (lo & 0xffffu) | (hi & 0xf0000u);
    seg.type = (hi >> 8) & 0xf;
    seg.s = (hi >> 12) & 1;
    seg.dpl = (hi >> 13) & 3;
    seg.present = (hi >> 15) & 1;
    seg.avl = (hi >> 20) & 1;
    seg.db = (hi >> 22) & 1;
    seg.g = (hi >> 23) & 1;
    if (seg.g)
        seg.limit = seg.limit << 12 | 0xfff;
    if (!seg.present || !seg.s) {
        emu_fail(c, op, "segment descriptor not present or not code/data:");
        return false;
    }
    if (s == S_CS && (!(seg.type & 8) || !seg.db)) {
        emu_fail(c, op, "CS must be a 32-bit code segment:");
        return false;
    }
    if (!(seg.type & 1)) { /* the CPU sets "accessed" */
        seg.type |= 1;
        mem_write(c, at + 5, 1, (hi >> 8 & 0xff) | 1);
        c->smc = false;
    }
    c->sys.seg[s] = seg;
    c->segbase[s] = seg.base;
    return true;
}

int emu_op_mov_rm_sreg(struct emu_cpu *c, const struct emu_op *op)
{
    uint16_t sel = c->sys.seg[op->reg].selector;
    if (op->mem) {
        mem_write(c, ea(c, op), 2, sel);
        return store_done(c, op);
    }
    reg_set(c, op->sz, op->rm, sel);
    return 0;
}

int emu_op_mov_sreg_rm(struct emu_cpu *c, const struct emu_op *op)
{
    uint16_t sel =
        op->mem ? (uint16_t)mem_read(c, ea(c, op), 2) : c->r[op->rm].w;
    if (!emu_load_seg(c, op, op->reg, sel))
        return 1;
    return next(c, op);
}

int emu_op_jmp_far(struct emu_cpu *c, const struct emu_op *op)
{
    if (!emu_load_seg(c, op, S_CS, op->imm2))
        return 1;
    emu_flush_blocks(c);
    c->eip = op->imm;
    return 1;
}

int emu_op_flush(struct emu_cpu *c, const struct emu_op *op)
{
    return next(c, op);
}
