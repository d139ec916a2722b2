/* accel emu: data movement, arithmetic and control-flow instructions.
 * The hot forms (ALU, INC/DEC, MOV, Jcc) are instantiated per operand
 * size and register/memory form so their handlers have no branches on
 * either. */
#include <sched.h>

#include "machine/emu-internal.h"

/* ---- Operand helpers ---- */

EMU_INLINE uint32_t rm_read(struct emu_cpu *c, const struct emu_op *op, int sz,
                            uint32_t *addr)
{
    *addr = 0;
    if (op->mem) {
        *addr = ea(c, op);
        return mem_read(c, *addr, sz);
    }
    return reg_get(c, sz, op->rm);
}

EMU_INLINE int rm_write(struct emu_cpu *c, const struct emu_op *op, int sz,
                        uint32_t addr, uint32_t v)
{
    if (op->mem) {
        mem_write(c, addr, sz, v);
        return store_done(c, op);
    }
    reg_set(c, sz, op->rm, v);
    return 0;
}

/* Host pointer for an atomic access (which may store: the page's write
 * guard is passed), or NULL when the access leaves RAM or a page. */
static uint8_t *ram_ptr(struct emu_cpu *c, uint32_t addr, int sz)
{
    if ((uint64_t)addr + (unsigned)sz > c->ram_size ||
        (addr & (EMU_PAGE_SIZE - 1)) > EMU_PAGE_SIZE - (unsigned)sz)
        return NULL;
    write_guard_check(c->guard, addr >> EMU_PAGE_SHIFT);
    return c->ram + addr;
}

static int end_at(struct emu_cpu *c, uint32_t eip)
{
    c->eip = eip;
    return 1;
}

EMU_INLINE uint32_t next_eip(const struct emu_op *op)
{
    return op->eip + op->len;
}

/* ---- ALU ---- */

EMU_INLINE uint32_t alu(struct emu_cpu *c, int kind, int sz, uint32_t d,
                        uint32_t s)
{
    uint32_t m = sz_mask(sz), r, cin;
    switch (kind) {
    case 0:
        r = (d + s) & m;
        lf_set(c, LF_ADD, sz, d, s, r);
        return r;
    case 1:
        r = d | s;
        lf_set(c, LF_LOGIC, sz, d, s, r);
        return r;
    case 2:
        cin = emu_cf(c);
        r = (d + s + cin) & m;
        lf_set(c, LF_ADC, sz, d, s, r);
        c->lf_aux = cin;
        return r;
    case 3:
        cin = emu_cf(c);
        r = (d - s - cin) & m;
        lf_set(c, LF_SBB, sz, d, s, r);
        c->lf_aux = cin;
        return r;
    case 4:
        r = d & s;
        lf_set(c, LF_LOGIC, sz, d, s, r);
        return r;
    case 6:
        r = d ^ s;
        lf_set(c, LF_LOGIC, sz, d, s, r);
        return r;
    default: /* 5 SUB, 7 CMP */
        r = (d - s) & m;
        lf_set(c, LF_SUB, sz, d, s, r);
        return r;
    }
}

#define ALU_FNS(K, SZ)                                                         \
    static int alu_##K##_rmr_reg_##SZ(struct emu_cpu *c,                       \
                                      const struct emu_op *op)                 \
    {                                                                          \
        uint32_t r =                                                           \
            alu(c, K, SZ, reg_get(c, SZ, op->rm), reg_get(c, SZ, op->reg));    \
        if (K != 7)                                                            \
            reg_set(c, SZ, op->rm, r);                                         \
        return 0;                                                              \
    }                                                                          \
    static int alu_##K##_rmr_mem_##SZ(struct emu_cpu *c,                       \
                                      const struct emu_op *op)                 \
    {                                                                          \
        uint32_t a = ea(c, op);                                                \
        uint32_t r =                                                           \
            alu(c, K, SZ, mem_read(c, a, SZ), reg_get(c, SZ, op->reg));        \
        if (K == 7)                                                            \
            return 0;                                                          \
        mem_write(c, a, SZ, r);                                                \
        return store_done(c, op);                                              \
    }                                                                          \
    static int alu_##K##_rrm_reg_##SZ(struct emu_cpu *c,                       \
                                      const struct emu_op *op)                 \
    {                                                                          \
        uint32_t r =                                                           \
            alu(c, K, SZ, reg_get(c, SZ, op->reg), reg_get(c, SZ, op->rm));    \
        if (K != 7)                                                            \
            reg_set(c, SZ, op->reg, r);                                        \
        return 0;                                                              \
    }                                                                          \
    static int alu_##K##_rrm_mem_##SZ(struct emu_cpu *c,                       \
                                      const struct emu_op *op)                 \
    {                                                                          \
        uint32_t r = alu(c, K, SZ, reg_get(c, SZ, op->reg),                    \
                         mem_read(c, ea(c, op), SZ));                          \
        if (K != 7)                                                            \
            reg_set(c, SZ, op->reg, r);                                        \
        return 0;                                                              \
    }                                                                          \
    static int alu_##K##_rmi_reg_##SZ(struct emu_cpu *c,                       \
                                      const struct emu_op *op)                 \
    {                                                                          \
        uint32_t r = alu(c, K, SZ, reg_get(c, SZ, op->rm), op->imm);           \
        if (K != 7)                                                            \
            reg_set(c, SZ, op->rm, r);                                         \
        return 0;                                                              \
    }                                                                          \
    static int alu_##K##_rmi_mem_##SZ(struct emu_cpu *c,                       \
                                      const struct emu_op *op)                 \
    {                                                                          \
        uint32_t a = ea(c, op);                                                \
        uint32_t r = alu(c, K, SZ, mem_read(c, a, SZ), op->imm);               \
        if (K == 7)                                                            \
            return 0;                                                          \
        mem_write(c, a, SZ, r);                                                \
        return store_done(c, op);                                              \
    }

#define ALU_KIND(K) ALU_FNS(K, 1) ALU_FNS(K, 2) ALU_FNS(K, 4)
ALU_KIND(0)
ALU_KIND(1)
ALU_KIND(2)
ALU_KIND(3)
ALU_KIND(4)
ALU_KIND(5)
ALU_KIND(6)
ALU_KIND(7)

#define ALU_ROW(K, F)                                                          \
    {                                                                          \
        alu_##K##_##F##_1, alu_##K##_##F##_2, alu_##K##_##F##_4                \
    }
#define ALU_TABLE(K)                                                           \
    {                                                                          \
        ALU_ROW(K, rmr_reg), ALU_ROW(K, rmr_mem), ALU_ROW(K, rrm_reg),         \
            ALU_ROW(K, rrm_mem), ALU_ROW(K, rmi_reg), ALU_ROW(K, rmi_mem)      \
    }

const emu_fn emu_alu_fns[8][ALU_NFORMS][3] = {
    ALU_TABLE(0), ALU_TABLE(1), ALU_TABLE(2), ALU_TABLE(3),
    ALU_TABLE(4), ALU_TABLE(5), ALU_TABLE(6), ALU_TABLE(7),
};

/* ---- INC/DEC ---- */

EMU_INLINE uint32_t incdec(struct emu_cpu *c, int dec, int sz, uint32_t d)
{
    uint32_t cf = emu_cf(c);
    uint32_t r = (dec ? d - 1 : d + 1) & sz_mask(sz);
    lf_set(c, dec ? LF_DEC : LF_INC, sz, d, 1, r);
    c->lf_aux = cf;
    return r;
}

#define INCDEC_FNS(D, SZ)                                                      \
    static int incdec_##D##_reg_##SZ(struct emu_cpu *c,                        \
                                     const struct emu_op *op)                  \
    {                                                                          \
        reg_set(c, SZ, op->rm, incdec(c, D, SZ, reg_get(c, SZ, op->rm)));      \
        return 0;                                                              \
    }                                                                          \
    static int incdec_##D##_mem_##SZ(struct emu_cpu *c,                        \
                                     const struct emu_op *op)                  \
    {                                                                          \
        uint32_t a = ea(c, op);                                                \
        mem_write(c, a, SZ, incdec(c, D, SZ, mem_read(c, a, SZ)));             \
        return store_done(c, op);                                              \
    }
INCDEC_FNS(0, 1)
INCDEC_FNS(0, 2)
INCDEC_FNS(0, 4)
INCDEC_FNS(1, 1)
INCDEC_FNS(1, 2)
INCDEC_FNS(1, 4)

const emu_fn emu_incdec_fns[2][2][3] = {
    { { incdec_0_reg_1, incdec_0_reg_2, incdec_0_reg_4 },
      { incdec_0_mem_1, incdec_0_mem_2, incdec_0_mem_4 } },
    { { incdec_1_reg_1, incdec_1_reg_2, incdec_1_reg_4 },
      { incdec_1_mem_1, incdec_1_mem_2, incdec_1_mem_4 } },
};

/* ---- MOV r/m <-> r ---- */

#define MOV_FNS(SZ)                                                            \
    static int mov_st_reg_##SZ(struct emu_cpu *c, const struct emu_op *op)     \
    {                                                                          \
        reg_set(c, SZ, op->rm, reg_get(c, SZ, op->reg));                       \
        return 0;                                                              \
    }                                                                          \
    static int mov_st_mem_##SZ(struct emu_cpu *c, const struct emu_op *op)     \
    {                                                                          \
        mem_write(c, ea(c, op), SZ, reg_get(c, SZ, op->reg));                  \
        return store_done(c, op);                                              \
    }                                                                          \
    static int mov_ld_reg_##SZ(struct emu_cpu *c, const struct emu_op *op)     \
    {                                                                          \
        reg_set(c, SZ, op->reg, reg_get(c, SZ, op->rm));                       \
        return 0;                                                              \
    }                                                                          \
    static int mov_ld_mem_##SZ(struct emu_cpu *c, const struct emu_op *op)     \
    {                                                                          \
        reg_set(c, SZ, op->reg, mem_read(c, ea(c, op), SZ));                   \
        return 0;                                                              \
    }
MOV_FNS(1)
MOV_FNS(2)
MOV_FNS(4)

const emu_fn emu_mov_fns[2][2][3] = {
    { { mov_st_reg_1, mov_st_reg_2, mov_st_reg_4 },
      { mov_st_mem_1, mov_st_mem_2, mov_st_mem_4 } },
    { { mov_ld_reg_1, mov_ld_reg_2, mov_ld_reg_4 },
      { mov_ld_mem_1, mov_ld_mem_2, mov_ld_mem_4 } },
};

/* ---- Jcc ---- */

#define JCC_FN(CC)                                                             \
    static int jcc_##CC(struct emu_cpu *c, const struct emu_op *op)            \
    {                                                                          \
        c->eip = emu_cond(c, CC) ? op->imm : next_eip(op);                     \
        return 1;                                                              \
    }
JCC_FN(0)
JCC_FN(1)
JCC_FN(2)
JCC_FN(3)
JCC_FN(4)
JCC_FN(5)
JCC_FN(6)
JCC_FN(7)
JCC_FN(8)
JCC_FN(9)
JCC_FN(10)
JCC_FN(11)
JCC_FN(12)
JCC_FN(13)
JCC_FN(14)
JCC_FN(15)

const emu_fn emu_jcc_fns[16] = {
    jcc_0, jcc_1, jcc_2,  jcc_3,  jcc_4,  jcc_5,  jcc_6,  jcc_7,
    jcc_8, jcc_9, jcc_10, jcc_11, jcc_12, jcc_13, jcc_14, jcc_15,
};

int emu_op_jcc(struct emu_cpu *c, const struct emu_op *op)
{
    return emu_jcc_fns[op->sub & 15](c, op);
}

/* ---- Data movement ---- */

int emu_op_mov_rm_i(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a = op->mem ? ea(c, op) : 0;
    return rm_write(c, op, op->sz, a, op->imm);
}

int emu_op_mov_r_i(struct emu_cpu *c, const struct emu_op *op)
{
    reg_set(c, op->sz, op->reg, op->imm);
    return 0;
}

int emu_op_mov_moffs_load(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a = c->segbase[op->seg] + (uint32_t)op->disp;
    reg_set(c, op->sz, R_EAX, mem_read(c, a, op->sz));
    return 0;
}

int emu_op_mov_moffs_store(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a = c->segbase[op->seg] + (uint32_t)op->disp;
    mem_write(c, a, op->sz, reg_get(c, op->sz, R_EAX));
    return store_done(c, op);
}

int emu_op_movzx(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t v = rm_read(c, op, op->sub, &a);
    reg_set(c, op->sz, op->reg, v);
    return 0;
}

int emu_op_movsx(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t v = rm_read(c, op, op->sub, &a);
    reg_set(c, op->sz, op->reg, (uint32_t)sz_sext(v, op->sub));
    return 0;
}

int emu_op_lea(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t off = c->r[op->base].d + (c->r[op->index].d << op->scale) +
        (uint32_t)op->disp;
    reg_set(c, op->sz, op->reg, off);
    return 0;
}

int emu_op_xchg(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    uint32_t v = reg_get(c, sz, op->reg);
    if (!op->mem) {
        reg_set(c, sz, op->reg, reg_get(c, sz, op->rm));
        reg_set(c, sz, op->rm, v);
        return 0;
    }
    /* XCHG with memory is always locked. */
    uint32_t a = ea(c, op), old;
    uint8_t *p = ram_ptr(c, a, sz);
    if (!p) {
        old = mem_read(c, a, sz);
        mem_write(c, a, sz, v);
    } else {
        if (sz == 1)
            old = __atomic_exchange_n(p, (uint8_t)v, __ATOMIC_SEQ_CST);
        else if (sz == 2)
            old = __atomic_exchange_n((uint16_t *)p, (uint16_t)v,
                                      __ATOMIC_SEQ_CST);
        else
            old = __atomic_exchange_n((uint32_t *)p, v, __ATOMIC_SEQ_CST);
        page_stored(c, a >> EMU_PAGE_SHIFT);
    }
    reg_set(c, sz, op->reg, old);
    return store_done(c, op);
}

int emu_op_bswap(struct emu_cpu *c, const struct emu_op *op)
{
    c->r[op->reg].d = __builtin_bswap32(c->r[op->reg].d);
    return 0;
}

int emu_op_cbw(struct emu_cpu *c, const struct emu_op *op)
{
    if (op->sz == 4)
        c->r[R_EAX].d = (uint32_t)(int32_t)(int16_t)c->r[R_EAX].w;
    else
        c->r[R_EAX].w = (uint16_t)(int16_t)(int8_t)c->r[R_EAX].b[0];
    return 0;
}

int emu_op_cwd(struct emu_cpu *c, const struct emu_op *op)
{
    if (op->sz == 4)
        c->r[R_EDX].d = c->r[R_EAX].d & 0x80000000u ? 0xffffffffu : 0;
    else
        c->r[R_EDX].w = c->r[R_EAX].w & 0x8000u ? 0xffff : 0;
    return 0;
}

/* ---- Stack ---- */

int emu_op_push_r(struct emu_cpu *c, const struct emu_op *op)
{
    push(c, op->sz, reg_get(c, op->sz, op->reg));
    return store_done(c, op);
}

int emu_op_pop_r(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t v = pop(c, op->sz);
    reg_set(c, op->sz, op->reg, v);
    return 0;
}

int emu_op_push_i(struct emu_cpu *c, const struct emu_op *op)
{
    push(c, op->sz, op->imm);
    return store_done(c, op);
}

int emu_op_push_rm(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t v = rm_read(c, op, op->sz, &a);
    push(c, op->sz, v);
    return store_done(c, op);
}

int emu_op_pop_rm(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t v = pop(c, op->sz);
    /* The address uses ESP after the pop, as the SDM specifies. */
    uint32_t a = op->mem ? ea(c, op) : 0;
    return rm_write(c, op, op->sz, a, v);
}

int emu_op_pushad(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t esp = c->r[R_ESP].d;
    for (int i = 0; i < X86_NR_REGS; i++)
        push(c, 4, i == R_ESP ? esp : c->r[i].d);
    return store_done(c, op);
}

int emu_op_popad(struct emu_cpu *c, const struct emu_op *op)
{
    for (int i = X86_NR_REGS - 1; i >= 0; i--) {
        uint32_t v = pop(c, 4);
        if (i != R_ESP)
            c->r[i].d = v;
    }
    return 0;
}

int emu_op_leave(struct emu_cpu *c, const struct emu_op *op)
{
    c->r[R_ESP].d = c->r[R_EBP].d;
    c->r[R_EBP].d = pop(c, 4);
    return 0;
}

/* ---- Flags ---- */

#define EFLAGS_POPF_MASK 0x00257fd5u /* arith, TF IF DF IOPL NT AC ID */

int emu_op_pushf(struct emu_cpu *c, const struct emu_op *op)
{
    push(c, op->sz, emu_eflags(c) & 0x00fcffffu); /* RF, VM read as 0 */
    return store_done(c, op);
}

int emu_op_popf(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t v = pop(c, op->sz);
    uint32_t mask = EFLAGS_POPF_MASK & sz_mask(op->sz);
    uint32_t f = emu_eflags(c);
    c->eflags = (f & ~mask) | (v & mask) | X86_EFLAGS_FIXED;
    if (c->eflags & X86_TF) {
        c->eflags &= ~X86_TF;
        emu_fail_bytes(c, op->eip, "single-step (EFLAGS.TF) unsupported:");
        c->eip = next_eip(op);
        c->exit = EMU_EXIT_ERROR;
        return 1;
    }
    return end_at(c, next_eip(op));
}

int emu_op_lahf(struct emu_cpu *c, const struct emu_op *op)
{
    c->r[R_EAX].b[1] = (uint8_t)((emu_eflags(c) & 0xd5) | X86_EFLAGS_FIXED);
    return 0;
}

int emu_op_sahf(struct emu_cpu *c, const struct emu_op *op)
{
    emu_set_flags(c, X86_SF | X86_ZF | X86_AF | X86_PF | X86_CF,
                  c->r[R_EAX].b[1]);
    return 0;
}

int emu_op_flagop(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t f = emu_eflags(c);
    switch (op->sub) {
    case 0xf5:
        f ^= X86_CF;
        break;
    case 0xf8:
        f &= ~X86_CF;
        break;
    case 0xf9:
        f |= X86_CF;
        break;
    case 0xfa:
        f &= ~X86_IF;
        break;
    case 0xfb:
        f |= X86_IF;
        break;
    case 0xfc:
        f &= ~X86_DF;
        break;
    default:
        f |= X86_DF;
        break;
    }
    c->eflags = f;
    return 0;
}

int emu_op_cmov(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t v = rm_read(c, op, op->sz, &a);
    if (emu_cond(c, op->sub))
        reg_set(c, op->sz, op->reg, v);
    return 0;
}

int emu_op_setcc(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a = op->mem ? ea(c, op) : 0;
    return rm_write(c, op, 1, a, emu_cond(c, op->sub));
}

/* ---- Arithmetic ---- */

int emu_op_test_rm_r(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t v = rm_read(c, op, op->sz, &a) & reg_get(c, op->sz, op->reg);
    lf_set(c, LF_LOGIC, op->sz, v, 0, v);
    return 0;
}

int emu_op_test_rm_i(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t v = rm_read(c, op, op->sz, &a) & op->imm;
    lf_set(c, LF_LOGIC, op->sz, v, 0, v);
    return 0;
}

int emu_op_not(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t v = rm_read(c, op, op->sz, &a);
    return rm_write(c, op, op->sz, a, ~v & sz_mask(op->sz));
}

int emu_op_neg(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t v = rm_read(c, op, op->sz, &a);
    return rm_write(c, op, op->sz, a, alu(c, 5, op->sz, 0, v));
}

/* Flags of MUL/IMUL: CF = OF = overflow; SF, ZF, PF from the low half
 * (undefined by the SDM), AF cleared (undefined). */
static void mul_flags(struct emu_cpu *c, int sz, uint32_t lo, bool ovf)
{
    uint32_t f = 0;
    lo &= sz_mask(sz);
    if (ovf)
        f |= X86_CF | X86_OF;
    if (!lo)
        f |= X86_ZF;
    if (lo & sz_sign(sz))
        f |= X86_SF;
    if (emu_parity_even(lo))
        f |= X86_PF;
    emu_set_flags(c, EFLAGS_ARITH, f);
}

/* Store a double-width result into AX, DX:AX or EDX:EAX. */
static void set_wide(struct emu_cpu *c, int sz, uint64_t v)
{
    if (sz == 1) {
        c->r[R_EAX].w = (uint16_t)v;
    } else if (sz == 2) {
        c->r[R_EAX].w = (uint16_t)v;
        c->r[R_EDX].w = (uint16_t)(v >> 16);
    } else {
        c->r[R_EAX].d = (uint32_t)v;
        c->r[R_EDX].d = (uint32_t)(v >> 32);
    }
}

int emu_op_mul1(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    uint32_t a;
    uint64_t v = (uint64_t)rm_read(c, op, sz, &a) * reg_get(c, sz, R_EAX);
    set_wide(c, sz, v);
    mul_flags(c, sz, (uint32_t)v, (v >> (8 * sz)) != 0);
    return 0;
}

int emu_op_imul1(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    uint32_t a;
    int64_t v = (int64_t)sz_sext(rm_read(c, op, sz, &a), sz) *
        sz_sext(reg_get(c, sz, R_EAX), sz);
    set_wide(c, sz, (uint64_t)v);
    mul_flags(c, sz, (uint32_t)v, v != sz_sext((uint32_t)v, sz));
    return 0;
}

static int imul_into(struct emu_cpu *c, const struct emu_op *op, uint32_t x,
                     uint32_t y)
{
    int sz = op->sz;
    int64_t v = (int64_t)sz_sext(x, sz) * sz_sext(y, sz);
    reg_set(c, sz, op->reg, (uint32_t)v);
    mul_flags(c, sz, (uint32_t)v, v != sz_sext((uint32_t)v, sz));
    return 0;
}

int emu_op_imul2(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t v = rm_read(c, op, op->sz, &a);
    return imul_into(c, op, reg_get(c, op->sz, op->reg), v);
}

int emu_op_imul3(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    return imul_into(c, op, rm_read(c, op, op->sz, &a), op->imm);
}

static uint64_t get_wide(struct emu_cpu *c, int sz)
{
    if (sz == 1)
        return c->r[R_EAX].w;
    if (sz == 2)
        return (uint32_t)c->r[R_EDX].w << 16 | c->r[R_EAX].w;
    return (uint64_t)c->r[R_EDX].d << 32 | c->r[R_EAX].d;
}

static void set_divres(struct emu_cpu *c, int sz, uint32_t q, uint32_t r)
{
    if (sz == 1) {
        c->r[R_EAX].b[0] = (uint8_t)q;
        c->r[R_EAX].b[1] = (uint8_t)r;
    } else {
        reg_set(c, sz, R_EAX, q);
        reg_set(c, sz, R_EDX, r);
    }
}

/* DIV/IDIV leave the flags unchanged (the SDM calls them undefined). */
int emu_op_div(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    uint32_t a;
    uint64_t d = rm_read(c, op, sz, &a);
    uint64_t n = get_wide(c, sz);
    if (!d || n / d > sz_mask(sz))
        return emu_fail(c, op, "divide error:");
    set_divres(c, sz, (uint32_t)(n / d), (uint32_t)(n % d));
    return 0;
}

int emu_op_idiv(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    uint32_t a;
    int64_t d = sz_sext(rm_read(c, op, sz, &a), sz);
    uint64_t w = get_wide(c, sz);
    int64_t n = sz == 4 ? (int64_t)w : sz == 2 ? (int32_t)w : (int16_t)w;
    if (!d || (d == -1 && n == INT64_MIN))
        return emu_fail(c, op, "divide error:");
    int64_t q = n / d, r = n % d;
    int64_t lim = (int64_t)sz_sign(sz);
    if (q >= lim || q < -lim)
        return emu_fail(c, op, "divide error:");
    set_divres(c, sz, (uint32_t)q & sz_mask(sz), (uint32_t)r & sz_mask(sz));
    return 0;
}

/* ---- Shifts and rotates ---- */

int emu_op_shift(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz, bits = 8 * sz;
    uint32_t m = sz_mask(sz), sign = sz_sign(sz), a;
    unsigned cnt = (op->imm2 ? op->imm2 - 1u : c->r[R_ECX].b[0]) & 31;
    uint32_t v = rm_read(c, op, sz, &a);
    if (!cnt)
        return 0; /* flags unchanged */
    uint32_t f = emu_eflags(c), r = v, n;
    bool cf = f & X86_CF, of;
    uint64_t x, wide_mask = (1ull << (bits + 1)) - 1;

    switch (op->sub) {
    case 0: /* ROL */
        n = cnt % (unsigned)bits;
        if (n)
            r = ((v << n) | (v >> (bits - n))) & m;
        cf = r & 1;
        of = !!(r & sign) ^ cf;
        c->eflags =
            (f & ~(X86_CF | X86_OF)) | (cf ? X86_CF : 0) | (of ? X86_OF : 0);
        return rm_write(c, op, sz, a, r);
    case 1: /* ROR */
        n = cnt % (unsigned)bits;
        if (n)
            r = ((v >> n) | (v << (bits - n))) & m;
        cf = r & sign;
        of = !!(r & sign) ^ !!(r & (sign >> 1));
        c->eflags =
            (f & ~(X86_CF | X86_OF)) | (cf ? X86_CF : 0) | (of ? X86_OF : 0);
        return rm_write(c, op, sz, a, r);
    case 2: /* RCL */
    case 3: /* RCR */
        n = sz == 4 ? cnt : cnt % (unsigned)(bits + 1);
        if (!n)
            return 0;
        x = (uint64_t)cf << bits | v;
        if (op->sub == 2) {
            x = ((x << n) | (x >> (bits + 1 - n))) & wide_mask;
            r = (uint32_t)x & m;
            cf = (x >> bits) & 1;
            of = !!(r & sign) ^ cf;
        } else {
            of = !!(v & sign) ^ cf;
            x = ((x >> n) | (x << (bits + 1 - n))) & wide_mask;
            r = (uint32_t)x & m;
            cf = (x >> bits) & 1;
        }
        c->eflags =
            (f & ~(X86_CF | X86_OF)) | (cf ? X86_CF : 0) | (of ? X86_OF : 0);
        return rm_write(c, op, sz, a, r);
    case 4: /* SHL */
        x = (uint64_t)v << cnt;
        r = (uint32_t)x & m;
        cf = (x >> bits) & 1;
        of = !!(r & sign) ^ cf;
        break;
    case 5: /* SHR */
        r = cnt < (unsigned)bits ? v >> cnt : 0;
        cf = (v >> (cnt - 1)) & 1;
        of = v & sign;
        break;
    default: { /* SAR */
        int32_t sv = sz_sext(v, sz);
        unsigned s1 = cnt - 1 < (unsigned)bits ? cnt - 1 : (unsigned)bits - 1;
        cf = (sv >> s1) & 1;
        r = (uint32_t)(sv >>
                       (cnt < (unsigned)bits ? cnt : (unsigned)bits - 1)) &
            m;
        of = false;
        break;
    }
    }
    uint32_t nf = (cf ? X86_CF : 0) | (of ? X86_OF : 0) | (r ? 0 : X86_ZF) |
        (r & sign ? X86_SF : 0) | (emu_parity_even(r) ? X86_PF : 0);
    c->eflags = (f & ~EFLAGS_ARITH) | nf; /* AF cleared (undefined) */
    return rm_write(c, op, sz, a, r);
}

static int shift_double(struct emu_cpu *c, const struct emu_op *op, bool left)
{
    int sz = op->sz, bits = 8 * sz;
    uint32_t a, sign = sz_sign(sz);
    unsigned cnt = (op->imm2 ? op->imm2 - 1u : c->r[R_ECX].b[0]) & 31;
    uint32_t d = rm_read(c, op, sz, &a);
    uint32_t s = reg_get(c, sz, op->reg);
    if (!cnt)
        return 0;
    uint32_t r;
    bool cf;
    if (left) {
        uint64_t x = ((uint64_t)d << bits | s) << cnt;
        r = (uint32_t)(x >> bits) & sz_mask(sz);
        /* Last bit out of the top; a 16-bit count above 16 (undefined)
         * takes it from the source. */
        cf = cnt <= (unsigned)bits ? (d >> (bits - (int)cnt)) & 1
                                   : (s >> (2 * bits - (int)cnt)) & 1;
    } else {
        uint64_t x = (uint64_t)s << bits | d;
        r = (uint32_t)(x >> cnt) & sz_mask(sz);
        cf = (x >> (cnt - 1)) & 1;
    }
    bool of = (d ^ r) & sign;
    uint32_t f = emu_eflags(c);
    c->eflags = (f & ~EFLAGS_ARITH) | (cf ? X86_CF : 0) | (of ? X86_OF : 0) |
        (r ? 0 : X86_ZF) | (r & sign ? X86_SF : 0) |
        (emu_parity_even(r) ? X86_PF : 0);
    return rm_write(c, op, sz, a, r);
}

int emu_op_shld(struct emu_cpu *c, const struct emu_op *op)
{
    return shift_double(c, op, true);
}

int emu_op_shrd(struct emu_cpu *c, const struct emu_op *op)
{
    return shift_double(c, op, false);
}

/* ---- Bit operations ---- */

/* sub: 0 BT, 1 BTS, 2 BTR, 3 BTC.  Sets CF; other flags unchanged. */
static int bit_op(struct emu_cpu *c, const struct emu_op *op, uint32_t a,
                  int bit)
{
    int sz = op->sz;
    uint32_t mask = 1u << bit, v, nv;
    uint8_t *p = op->mem && op->lock ? ram_ptr(c, a, sz) : NULL;
    if (p) {
        uint32_t old;
        if (sz == 2) {
            uint16_t o = __atomic_load_n((uint16_t *)p, __ATOMIC_RELAXED);
            uint16_t n;
            do {
                n = (uint16_t)(op->sub == 1       ? o | mask
                                   : op->sub == 2 ? o & ~mask
                                                  : o ^ mask);
            } while (!__atomic_compare_exchange_n((uint16_t *)p, &o, n, false,
                                                  __ATOMIC_SEQ_CST,
                                                  __ATOMIC_RELAXED));
            old = o;
        } else {
            uint32_t o = __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
            uint32_t n;
            do {
                n = op->sub == 1   ? o | mask
                    : op->sub == 2 ? o & ~mask
                                   : o ^ mask;
            } while (!__atomic_compare_exchange_n((uint32_t *)p, &o, n, false,
                                                  __ATOMIC_SEQ_CST,
                                                  __ATOMIC_RELAXED));
            old = o;
        }
        page_stored(c, a >> EMU_PAGE_SHIFT);
        emu_set_flags(c, X86_CF, old & mask ? X86_CF : 0);
        return store_done(c, op);
    }
    v = op->mem ? mem_read(c, a, sz) : reg_get(c, sz, op->rm);
    emu_set_flags(c, X86_CF, v & mask ? X86_CF : 0);
    if (op->sub == 0)
        return 0;
    nv = op->sub == 1 ? v | mask : op->sub == 2 ? v & ~mask : v ^ mask;
    return rm_write(c, op, sz, a, nv);
}

int emu_op_bt_r(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz, bits = 8 * sz;
    int32_t off = sz_sext(reg_get(c, sz, op->reg), sz);
    uint32_t a = 0;
    if (op->mem) /* a register offset reaches the whole bit string */
        a = ea(c, op) + (uint32_t)((off >> (sz == 4 ? 5 : 4)) * sz);
    return bit_op(c, op, a, off & (bits - 1));
}

int emu_op_bt_i(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a = op->mem ? ea(c, op) : 0;
    return bit_op(c, op, a, (int)(op->imm & (8u * op->sz - 1)));
}

/* BSF/BSR: ZF = source is zero, destination then unchanged; CF, OF, SF,
 * AF, PF are left as they were (undefined). */
int emu_op_bsf(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t v = rm_read(c, op, op->sz, &a);
    emu_set_flags(c, X86_ZF, v ? 0 : X86_ZF);
    if (v)
        reg_set(c, op->sz, op->reg, (uint32_t)__builtin_ctz(v));
    return 0;
}

int emu_op_bsr(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t v = rm_read(c, op, op->sz, &a);
    emu_set_flags(c, X86_ZF, v ? 0 : X86_ZF);
    if (v)
        reg_set(c, op->sz, op->reg, 31u - (uint32_t)__builtin_clz(v));
    return 0;
}

/* ---- Atomic read-modify-write ---- */

/* One step of a locked operation (see emu-decode.c for sub). */
static uint32_t rmw_apply(struct emu_cpu *c, const struct emu_op *op,
                          uint32_t d)
{
    int sz = op->sz;
    int sub = op->sub & 0x7f;
    switch (sub) {
    case 8:
        return incdec(c, 0, sz, d);
    case 9:
        return incdec(c, 1, sz, d);
    case 10:
        return ~d & sz_mask(sz);
    case 11:
        return alu(c, 5, sz, 0, d);
    default:
        return alu(c, sub, sz, d,
                   op->sub & 0x80 ? op->imm : reg_get(c, sz, op->reg));
    }
}

#define CAS_LOOP(T)                                                            \
    do {                                                                       \
        T o = __atomic_load_n((T *)p, __ATOMIC_RELAXED), n;                    \
        do {                                                                   \
            c->eflags = saved;                                                 \
            c->lf_op = LF_EAGER;                                               \
            n = (T)rmw_apply(c, op, o);                                        \
        } while (!__atomic_compare_exchange_n(                                 \
            (T *)p, &o, n, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));        \
    } while (0)

int emu_op_locked_rmw(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a = ea(c, op);
    uint8_t *p = ram_ptr(c, a, op->sz);
    if (!p) {
        uint32_t r = rmw_apply(c, op, mem_read(c, a, op->sz));
        mem_write(c, a, op->sz, r);
        return store_done(c, op);
    }
    uint32_t saved = emu_eflags(c);
    if (op->sz == 1)
        CAS_LOOP(uint8_t);
    else if (op->sz == 2)
        CAS_LOOP(uint16_t);
    else
        CAS_LOOP(uint32_t);
    page_stored(c, a >> EMU_PAGE_SHIFT);
    return store_done(c, op);
}

int emu_op_xadd(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    uint32_t s = reg_get(c, sz, op->reg), d;
    if (!op->mem) {
        d = reg_get(c, sz, op->rm);
        uint32_t r = alu(c, 0, sz, d, s);
        reg_set(c, sz, op->reg, d);
        reg_set(c, sz, op->rm, r);
        return 0;
    }
    uint32_t a = ea(c, op);
    uint8_t *p = op->lock ? ram_ptr(c, a, sz) : NULL;
    if (p) {
        if (sz == 1)
            d = __atomic_fetch_add(p, (uint8_t)s, __ATOMIC_SEQ_CST);
        else if (sz == 2)
            d = __atomic_fetch_add((uint16_t *)p, (uint16_t)s,
                                   __ATOMIC_SEQ_CST);
        else
            d = __atomic_fetch_add((uint32_t *)p, s, __ATOMIC_SEQ_CST);
        page_stored(c, a >> EMU_PAGE_SHIFT);
        alu(c, 0, sz, d, s);
    } else {
        d = mem_read(c, a, sz);
        mem_write(c, a, sz, alu(c, 0, sz, d, s));
    }
    reg_set(c, sz, op->reg, d);
    return store_done(c, op);
}

int emu_op_cmpxchg(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    uint32_t acc = reg_get(c, sz, R_EAX), s = reg_get(c, sz, op->reg), d;
    if (!op->mem) {
        d = reg_get(c, sz, op->rm);
        alu(c, 7, sz, acc, d);
        if (acc == d)
            reg_set(c, sz, op->rm, s);
        else
            reg_set(c, sz, R_EAX, d);
        return 0;
    }
    uint32_t a = ea(c, op);
    uint8_t *p = op->lock ? ram_ptr(c, a, sz) : NULL;
    if (p) {
        bool ok;
        if (sz == 1) {
            uint8_t e = (uint8_t)acc;
            ok = __atomic_compare_exchange_n(
                p, &e, (uint8_t)s, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
            d = e;
        } else if (sz == 2) {
            uint16_t e = (uint16_t)acc;
            ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)s,
                                             false, __ATOMIC_SEQ_CST,
                                             __ATOMIC_SEQ_CST);
            d = e;
        } else {
            uint32_t e = acc;
            ok =
                __atomic_compare_exchange_n((uint32_t *)p, &e, s, false,
                                            __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
            d = e;
        }
        if (ok)
            page_stored(c, a >> EMU_PAGE_SHIFT);
    } else {
        d = mem_read(c, a, sz);
        /* The processor writes the destination back either way. */
        mem_write(c, a, sz, acc == d ? s : d);
    }
    alu(c, 7, sz, acc, d);
    if (acc != d)
        reg_set(c, sz, R_EAX, d);
    return store_done(c, op);
}

/* ---- Control flow ---- */

int emu_op_jmp(struct emu_cpu *c, const struct emu_op *op)
{
    return end_at(c, op->imm);
}

int emu_op_jmp_rm(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    return end_at(c, rm_read(c, op, op->sz, &a));
}

int emu_op_call(struct emu_cpu *c, const struct emu_op *op)
{
    push(c, op->sz, next_eip(op));
    return end_at(c, op->imm);
}

int emu_op_call_rm(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t a;
    uint32_t target = rm_read(c, op, op->sz, &a);
    push(c, op->sz, next_eip(op));
    return end_at(c, target);
}

int emu_op_ret(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t target = pop(c, 4);
    c->r[R_ESP].d += op->imm2;
    return end_at(c, target);
}

int emu_op_loop(struct emu_cpu *c, const struct emu_op *op)
{
    uint32_t ecx = --c->r[R_ECX].d;
    bool take = ecx != 0;
    if (take && op->sub != 2) { /* LOOPNE 0, LOOPE 1 */
        bool zf = emu_eflags(c) & X86_ZF;
        take = op->sub == 1 ? zf : !zf;
    }
    return end_at(c, take ? op->imm : next_eip(op));
}

int emu_op_jecxz(struct emu_cpu *c, const struct emu_op *op)
{
    return end_at(c, c->r[R_ECX].d == 0 ? op->imm : next_eip(op));
}

int emu_op_nop(struct emu_cpu *c, const struct emu_op *op)
{
    return 0;
}

/* PAUSE marks a spin-wait: every so often give the host CPU to another
 * thread (another vCPU may be the one the guest waits for). */
#define EMU_PAUSES_PER_YIELD 64

int emu_op_pause(struct emu_cpu *c, const struct emu_op *op)
{
    if (++c->pauses >= EMU_PAUSES_PER_YIELD) {
        c->pauses = 0;
        sched_yield();
    }
    return 0;
}

int emu_op_next(struct emu_cpu *c, const struct emu_op *op)
{
    c->unretired = 1; /* not an instruction */
    return end_at(c, op->eip);
}

int emu_op_unknown(struct emu_cpu *c, const struct emu_op *op)
{
    return emu_fail(c, op, NULL);
}
