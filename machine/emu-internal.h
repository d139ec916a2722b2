/* accel emu internals: the vCPU, decoded instructions, guest memory
 * access and lazy flags.  Only machine/emu*.c include this. */
#ifndef HOP_MACHINE_EMU_INTERNAL_H
#define HOP_MACHINE_EMU_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "machine/emu.h"
#include "machine/write-guard.h"
#include "util/guest-reads.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define EMU_INLINE static inline __attribute__((always_inline))

#define EMU_PAGE_SHIFT 12
#define EMU_PAGE_SIZE (1u << EMU_PAGE_SHIFT)
#define EMU_BLOCK_MAX 32       /* instructions per decoded block */
#define EMU_TBL_BITS 12        /* decoded-block table slots (log2) */
#define EMU_NOREG 8            /* r[8] reads as 0: "no base/index" */
#define EMU_NOSEG X86_NR_SREGS /* segbase[6] is 0 */
#define EMU_NOPAGE UINT32_MAX

#define EFLAGS_ARITH (X86_CF | X86_PF | X86_AF | X86_ZF | X86_SF | X86_OF)

union emu_reg {
    uint32_t d;
    uint16_t w;
    uint8_t b[4];
};

struct emu_cpu;
struct emu_op;
/* Executes one decoded instruction.  Returns 0 to go on with the next op
 * of the block, non-zero when the block ends here: c->eip then holds
 * where to continue (or c->exit says why to leave). */
typedef int (*emu_fn)(struct emu_cpu *c, const struct emu_op *op);

/* One decoded instruction. */
struct emu_op {
    emu_fn fn;
    uint32_t eip;        /* EIP of this instruction */
    uint32_t imm;        /* immediate / branch target */
    int32_t disp;        /* memory operand displacement */
    uint16_t imm2;       /* second immediate (far selector, RET n) */
    uint8_t len;         /* bytes */
    uint8_t sz;          /* operand size: 1, 2 or 4 */
    uint8_t reg;         /* ModRM reg field or register operand */
    uint8_t rm;          /* ModRM r/m register when !mem */
    uint8_t base, index; /* memory operand registers (EMU_NOREG) */
    uint8_t scale, seg;  /* index shift, segment (EMU_NOSEG) */
    uint8_t sub;         /* operation within a family, condition */
    uint8_t rep;         /* 0, 0xf3 (REP/REPE) or 0xf2 (REPNE) */
    uint8_t mem;         /* r/m operand is memory */
    uint8_t lock;        /* LOCK prefix */
};

struct emu_block {
    uint32_t eip, cs_base;
    uint32_t page, page2; /* RAM pages the code came from */
    uint32_t gen, gen2;   /* their generations when decoded */
    uint32_t ninsn;
    struct emu_op ops[EMU_BLOCK_MAX + 1];
};

struct emu_code_map {
    uint64_t npages;
    _Atomic uint8_t *has_code; /* some vCPU decoded code here */
    _Atomic uint32_t *gen;     /* bumped when code here changed */
};

enum emu_run_state { EMU_RUNNING = -1 };

struct emu_cpu {
    union emu_reg r[X86_NR_REGS + 1];
    uint32_t eip;
    /* DF, IF and the other system bits; the arithmetic flags too when
     * lf_op is LF_EAGER. */
    uint32_t eflags;
    uint32_t lf_op, lf_dst, lf_src, lf_res, lf_aux;
    uint32_t segbase[X86_NR_SREGS + 1];

    uint8_t *ram;
    uint64_t ram_size;
    _Atomic unsigned long *dirty;
    struct emu_code_map *code;
    struct write_guard *guard; /* NULL: none */
    bool own_code, own_dirty;
    struct emu_bus bus;

    int exit;      /* EMU_RUNNING or an enum emu_exit */
    int unretired; /* the ending op did not retire */
    bool smc;      /* a store hit a page holding code */
    const atomic_int *stop;
    uint64_t insns;        /* retired in this emu_cpu_run call */
    uint64_t insns_before; /* retired in earlier calls */
    struct x86_state sys;  /* segments, tables, CRs (regs unused) */
    char *err;
    size_t errlen;
    int cpu_index, cpu_count;
    unsigned pauses; /* PAUSEs since the last host yield */
    struct emu_block *tbl[1u << EMU_TBL_BITS];
};

/* ---- Lazy flags ----
 * lf_op = kind << 3 | operand size.  Results are kept masked to size. */
enum { LF_EAGER, LF_ADD, LF_ADC, LF_SUB, LF_SBB, LF_LOGIC, LF_INC, LF_DEC };

EMU_INLINE uint32_t sz_mask(int sz)
{
    return sz == 4 ? 0xffffffffu : sz == 2 ? 0xffffu : 0xffu;
}

EMU_INLINE uint32_t sz_sign(int sz)
{
    return 1u << (sz * 8 - 1);
}

EMU_INLINE int32_t sz_sext(uint32_t v, int sz)
{
    return sz == 4 ? (int32_t)v : sz == 2 ? (int16_t)v : (int8_t)v;
}

EMU_INLINE void lf_set(struct emu_cpu *c, int kind, int sz, uint32_t dst,
                       uint32_t src, uint32_t res)
{
    c->lf_op = (uint32_t)(kind << 3 | sz);
    c->lf_dst = dst;
    c->lf_src = src;
    c->lf_res = res;
}

/* The arithmetic flags of the lazy state (any kind but LF_EAGER). */
uint32_t emu_lazy_flags(const struct emu_cpu *c);

/* Full EFLAGS; folds the lazy state into c->eflags. */
EMU_INLINE uint32_t emu_eflags(struct emu_cpu *c)
{
    if (c->lf_op != LF_EAGER) {
        c->eflags = (c->eflags & ~EFLAGS_ARITH) | emu_lazy_flags(c);
        c->lf_op = LF_EAGER;
    }
    return c->eflags;
}

/* Set the arithmetic flags in mask to the bits of val. */
EMU_INLINE void emu_set_flags(struct emu_cpu *c, uint32_t mask, uint32_t val)
{
    uint32_t f = emu_eflags(c);
    c->eflags = (f & ~mask) | (val & mask);
}

EMU_INLINE bool emu_cf(struct emu_cpu *c)
{
    int sz = c->lf_op & 7;
    uint32_t m = sz_mask(sz);
    switch (c->lf_op >> 3) {
    case LF_ADD:
        return c->lf_res < c->lf_dst;
    case LF_ADC:
        return c->lf_aux ? c->lf_res <= c->lf_dst : c->lf_res < c->lf_dst;
    case LF_SUB:
        return c->lf_dst < c->lf_src;
    case LF_SBB:
        return c->lf_aux ? c->lf_dst <= c->lf_src : c->lf_dst < c->lf_src;
    case LF_LOGIC:
        return false;
    case LF_INC:
    case LF_DEC:
        return c->lf_aux;
    default:
        (void)m;
        return c->eflags & X86_CF;
    }
}

EMU_INLINE bool emu_parity_even(uint32_t v)
{
    return !__builtin_parity(v & 0xff);
}

/* Condition cc (the low nibble of Jcc/SETcc/CMOVcc). */
EMU_INLINE bool emu_cond(struct emu_cpu *c, int cc)
{
    bool r;
    uint32_t kind = c->lf_op >> 3;
    if (kind == LF_SUB) {
        int sz = c->lf_op & 7;
        uint32_t d = c->lf_dst, s = c->lf_src, res = c->lf_res;
        switch (cc >> 1) {
        case 0:
            r = (d ^ s) & (d ^ res) & sz_sign(sz);
            break;
        case 1:
            r = d < s;
            break;
        case 2:
            r = res == 0;
            break;
        case 3:
            r = d <= s;
            break;
        case 4:
            r = res & sz_sign(sz);
            break;
        case 5:
            r = emu_parity_even(res);
            break;
        case 6:
            r = sz_sext(d, sz) < sz_sext(s, sz);
            break;
        default:
            r = sz_sext(d, sz) <= sz_sext(s, sz);
            break;
        }
    } else {
        uint32_t f = emu_eflags(c);
        bool sf_ne_of = !!(f & X86_SF) != !!(f & X86_OF);
        switch (cc >> 1) {
        case 0:
            r = f & X86_OF;
            break;
        case 1:
            r = f & X86_CF;
            break;
        case 2:
            r = f & X86_ZF;
            break;
        case 3:
            r = f & (X86_CF | X86_ZF);
            break;
        case 4:
            r = f & X86_SF;
            break;
        case 5:
            r = f & X86_PF;
            break;
        case 6:
            r = sf_ne_of;
            break;
        default:
            r = (f & X86_ZF) || sf_ne_of;
            break;
        }
    }
    return r ^ (cc & 1);
}

/* ---- Registers ---- */

EMU_INLINE uint32_t reg_get(const struct emu_cpu *c, int sz, int n)
{
    if (sz == 1)
        return c->r[n & 3].b[n >> 2];
    if (sz == 2)
        return c->r[n].w;
    return c->r[n].d;
}

EMU_INLINE void reg_set(struct emu_cpu *c, int sz, int n, uint32_t v)
{
    if (sz == 1)
        c->r[n & 3].b[n >> 2] = (uint8_t)v;
    else if (sz == 2)
        c->r[n].w = (uint16_t)v;
    else
        c->r[n].d = v;
}

/* ---- Guest memory ----
 * Out-of-RAM reads give 0xff bytes, writes there are dropped.  Stores
 * mark the page dirty after the data is written, and end the block when
 * the page holds decoded code (c->smc). */

uint32_t emu_read_slow(struct emu_cpu *c, uint32_t addr, int sz);
void emu_write_slow(struct emu_cpu *c, uint32_t addr, int sz, uint32_t v);
/* A store hit a page some vCPU decoded code from. */
void emu_code_written(struct emu_cpu *c, uint64_t page);

EMU_INLINE uint32_t ea(const struct emu_cpu *c, const struct emu_op *op)
{
    return c->segbase[op->seg] + c->r[op->base].d +
        (c->r[op->index].d << op->scale) + (uint32_t)op->disp;
}

EMU_INLINE uint32_t mem_read(struct emu_cpu *c, uint32_t addr, int sz)
{
    if (likely((uint64_t)addr + (unsigned)sz <= c->ram_size)) {
        const uint8_t *p = c->ram + addr;
        uint32_t v;
        GUEST_ACCESS_BEGIN();
        if (sz == 1) {
            v = *p;
        } else if (sz == 2) {
            uint16_t w;
            memcpy(&w, p, 2);
            v = w;
        } else {
            memcpy(&v, p, 4);
        }
        GUEST_ACCESS_END();
        return v;
    }
    return emu_read_slow(c, addr, sz);
}

EMU_INLINE void mark_dirty(struct emu_cpu *c, uint64_t page)
{
    const unsigned bits = 8 * sizeof(unsigned long);
    _Atomic unsigned long *w = &c->dirty[page / bits];
    unsigned long bit = 1ul << (page % bits);
    if (!(atomic_load_explicit(w, memory_order_relaxed) & bit))
        atomic_fetch_or_explicit(w, bit, memory_order_relaxed);
}

/* Bookkeeping for a store of len bytes at addr (within one page of RAM),
 * after the bytes are written. */
EMU_INLINE void page_stored(struct emu_cpu *c, uint64_t page)
{
    if (unlikely(atomic_load_explicit(&c->code->has_code[page],
                                      memory_order_relaxed)))
        emu_code_written(c, page);
    mark_dirty(c, page);
}

EMU_INLINE void mem_write(struct emu_cpu *c, uint32_t addr, int sz, uint32_t v)
{
    if (likely((uint64_t)addr + (unsigned)sz <= c->ram_size &&
               (addr & (EMU_PAGE_SIZE - 1)) <= EMU_PAGE_SIZE - (unsigned)sz)) {
        uint8_t *p = c->ram + addr;
        write_guard_check(c->guard, addr >> EMU_PAGE_SHIFT);
        GUEST_ACCESS_BEGIN();
        if (sz == 1) {
            *p = (uint8_t)v;
        } else if (sz == 2) {
            uint16_t w = (uint16_t)v;
            memcpy(p, &w, 2);
        } else {
            memcpy(p, &v, 4);
        }
        GUEST_ACCESS_END();
        page_stored(c, addr >> EMU_PAGE_SHIFT);
        return;
    }
    emu_write_slow(c, addr, sz, v);
}

/* Ends a handler that stored to memory: leave the block if the store
 * changed code, so the next instruction is decoded afresh. */
EMU_INLINE int store_done(struct emu_cpu *c, const struct emu_op *op)
{
    if (unlikely(c->smc)) {
        c->smc = false;
        c->eip = op->eip + op->len;
        return 1;
    }
    return 0;
}

/* Stack (32-bit SS). */
EMU_INLINE void push(struct emu_cpu *c, int sz, uint32_t v)
{
    c->r[R_ESP].d -= (uint32_t)sz;
    mem_write(c, c->segbase[S_SS] + c->r[R_ESP].d, sz, v);
}

EMU_INLINE uint32_t pop(struct emu_cpu *c, int sz)
{
    uint32_t v = mem_read(c, c->segbase[S_SS] + c->r[R_ESP].d, sz);
    c->r[R_ESP].d += (uint32_t)sz;
    return v;
}

/* ---- Exits ---- */

/* Stop with EMU_EXIT_ERROR at op (not retired); message names the
 * opcode bytes and EIP when what is NULL, else "what at eip ...". */
int emu_fail(struct emu_cpu *c, const struct emu_op *op, const char *what);
/* Format the standard "unknown opcode xx xx at eip 0x..." line. */
void emu_fail_bytes(struct emu_cpu *c, uint32_t eip, const char *what);

/* Decode the block at c->eip into b. */
void emu_decode_block(struct emu_cpu *c, struct emu_block *b);

/* Handler tables (emu-ops.c, emu-string.c, emu-system.c) used by the
 * decoder.  [kind][form][size index], size index = sz >> 1. */
enum {
    ALU_RM_R_REG,
    ALU_RM_R_MEM,
    ALU_R_RM_REG,
    ALU_R_RM_MEM,
    ALU_RM_I_REG,
    ALU_RM_I_MEM,
    ALU_NFORMS
};
extern const emu_fn emu_alu_fns[8][ALU_NFORMS][3];
extern const emu_fn emu_incdec_fns[2][2][3]; /* [dec][mem][size] */
extern const emu_fn emu_mov_fns[2][2][3];    /* [load][mem][size] */
extern const emu_fn emu_jcc_fns[16];

/* Generic handlers selected by the decoder. */
/* clang-format off */
#define EMU_HANDLERS(X) \
    X(mov_rm_i) X(mov_r_i) X(mov_moffs_load) \
    X(mov_moffs_store) X(movzx) X(movsx) X(lea) X(xchg) X(bswap) \
    X(cbw) X(cwd) X(push_r) X(pop_r) X(push_i) X(push_rm) X(pop_rm) \
    X(pushad) X(popad) X(pushf) X(popf) X(lahf) X(sahf) X(cmov) X(setcc) \
    X(test_rm_r) X(test_rm_i) X(not) X(neg) X(mul1) X(imul1) \
    X(div) X(idiv) X(imul2) X(imul3) X(shift) X(shld) X(shrd) \
    X(bt_r) X(bt_i) X(bsf) X(bsr) X(xadd) X(cmpxchg) X(locked_rmw) \
    X(jmp) X(jcc) X(jmp_rm) X(call) X(call_rm) X(ret) X(loop) X(jecxz) \
    X(jmp_far) X(leave) X(nop) X(pause) X(flagop) X(hlt) X(next) \
    X(movs) X(stos) X(lods) X(cmps) X(scas) X(ins) X(outs) \
    X(in) X(out) X(cpuid) X(rdtsc) X(lgdt) X(lidt) X(sgdt) X(sidt) \
    X(mov_from_cr) X(mov_to_cr) X(mov_rm_sreg) X(mov_sreg_rm) X(flush) \
    X(unknown)
/* clang-format on */

#define EMU_DECLARE(name)                                                      \
    int emu_op_##name(struct emu_cpu *c, const struct emu_op *op);
EMU_HANDLERS(EMU_DECLARE)
#undef EMU_DECLARE

/* Load segment register s from the GDT; false after emu_fail. */
bool emu_load_seg(struct emu_cpu *c, const struct emu_op *op, int s,
                  uint16_t sel);
/* Forget every block this vCPU decoded. */
void emu_flush_blocks(struct emu_cpu *c);

#endif
