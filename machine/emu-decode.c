/* accel emu: the decoder.  Turns the guest bytes at one address into a
 * block of struct emu_op (operands resolved, handler chosen), ending at
 * the first instruction that changes control flow, a page boundary or
 * EMU_BLOCK_MAX instructions. */
#include "machine/emu-internal.h"

struct dec {
    struct emu_cpu *c;
    uint32_t lin; /* linear address of the instruction */
    int len;
    int seg; /* segment override, or -1 */
    int osz; /* operand size: 2 or 4 */
};

static uint8_t fetch8(struct dec *d)
{
    return (uint8_t)mem_read(d->c, d->lin + (uint32_t)d->len++, 1);
}

static uint16_t fetch16(struct dec *d)
{
    uint16_t v = fetch8(d);
    return (uint16_t)(v | fetch8(d) << 8);
}

static uint32_t fetch32(struct dec *d)
{
    uint32_t v = fetch16(d);
    return v | (uint32_t)fetch16(d) << 16;
}

/* An immediate of operand size sz. */
static uint32_t fetch_imm(struct dec *d, int sz)
{
    return sz == 1 ? fetch8(d) : sz == 2 ? fetch16(d) : fetch32(d);
}

/* Sign-extended imm8, masked to sz. */
static uint32_t fetch_simm8(struct dec *d, int sz)
{
    return (uint32_t)(int32_t)(int8_t)fetch8(d) & sz_mask(sz);
}

static void modrm(struct dec *d, struct emu_op *op)
{
    uint8_t m = fetch8(d);
    int mod = m >> 6, rm = m & 7;
    op->reg = (m >> 3) & 7;
    if (mod == 3) {
        op->mem = 0;
        op->rm = (uint8_t)rm;
        return;
    }
    op->mem = 1;
    op->base = (uint8_t)rm;
    op->index = EMU_NOREG;
    op->scale = 0;
    op->disp = 0;
    if (rm == 4) {
        uint8_t sib = fetch8(d);
        int idx = (sib >> 3) & 7;
        op->scale = sib >> 6;
        op->index = idx == 4 ? EMU_NOREG : (uint8_t)idx;
        op->base = sib & 7;
        if (op->base == 5 && mod == 0) {
            op->base = EMU_NOREG;
            op->disp = (int32_t)fetch32(d);
        }
    } else if (rm == 5 && mod == 0) {
        op->base = EMU_NOREG;
        op->disp = (int32_t)fetch32(d);
    }
    if (mod == 1)
        op->disp = (int8_t)fetch8(d);
    else if (mod == 2)
        op->disp = (int32_t)fetch32(d);
    if (d->seg >= 0)
        op->seg = (uint8_t)d->seg;
    else
        op->seg = op->base == R_ESP || op->base == R_EBP ? S_SS : S_DS;
}

static int szi(int sz)
{
    return sz >> 1;
}

/* The group decoders below each take the opcode byte b (prefixes already
 * in op and d) and return true if the instruction ends the block. */

/* Operand size of an opcode whose low bit picks byte or full size. */
static uint8_t bw_size(uint8_t b, int osz)
{
    return (uint8_t)(b & 1 ? osz : 1);
}

/* The CS offset a relative branch lands on; call after fetching rel, as
 * it counts from the end of the instruction. */
static uint32_t rel_target(const struct dec *d, int32_t rel)
{
    return d->lin - d->c->segbase[S_CS] + (uint32_t)d->len + (uint32_t)rel;
}

/* Prefixes: operand size, LOCK, REP, segment override.  Returns the
 * opcode byte, or -1 if the instruction runs past 15 bytes. */
static int decode_prefixes(struct dec *d, struct emu_op *op)
{
    uint8_t lock = 0, rep = 0;
    d->seg = -1;
    d->osz = 4;
    for (;;) {
        if (d->len >= 15)
            return -1;
        uint8_t b = fetch8(d);
        switch (b) {
        case 0x66:
            d->osz = 2;
            continue;
        case 0xf0:
            lock = 1;
            continue;
        case 0xf2:
        case 0xf3:
            rep = b;
            continue;
        case 0x26:
            d->seg = S_ES;
            continue;
        case 0x2e:
            d->seg = S_CS;
            continue;
        case 0x36:
            d->seg = S_SS;
            continue;
        case 0x3e:
            d->seg = S_DS;
            continue;
        case 0x64:
            d->seg = S_FS;
            continue;
        case 0x65:
            d->seg = S_GS;
            continue;
        default:
            if (d->seg >= 0)
                op->seg = (uint8_t)d->seg;
            op->rep = rep;
            op->lock = lock;
            return b;
        }
    }
}

/* 0x00-0x3f, low three bits 0-5: ADD OR ADC SBB AND SUB XOR CMP. */
static bool decode_alu(struct dec *d, struct emu_op *op, uint8_t b)
{
    int kind = b >> 3, form = b & 7;
    op->sub = (uint8_t)kind;
    op->sz = bw_size(b, d->osz);
    switch (form) {
    case 0:
    case 1:
        modrm(d, op);
        op->fn = emu_alu_fns[kind][op->mem][szi(op->sz)];
        if (op->lock && op->mem && kind != 7)
            op->fn = emu_op_locked_rmw;
        break;
    case 2:
    case 3:
        modrm(d, op);
        op->fn = emu_alu_fns[kind][ALU_R_RM_REG + op->mem][szi(op->sz)];
        break;
    default:
        op->rm = R_EAX;
        op->imm = fetch_imm(d, op->sz);
        op->fn = emu_alu_fns[kind][ALU_RM_I_REG][szi(op->sz)];
        break;
    }
    return false;
}

/* 0x40-0x7f: INC/DEC, PUSH/POP, PUSHAD/POPAD, PUSH imm, IMUL imm, INS,
 * OUTS, Jcc rel8. */
static bool decode_40_7f(struct dec *d, struct emu_op *op, uint8_t b)
{
    int osz = d->osz;
    switch (b) {
    case 0x40 ... 0x4f:
        op->sz = (uint8_t)osz;
        op->rm = b & 7;
        op->sub = (b >> 3) & 1;
        op->fn = emu_incdec_fns[op->sub][0][szi(osz)];
        break;
    case 0x50 ... 0x57:
        op->sz = (uint8_t)osz;
        op->reg = b & 7;
        op->fn = emu_op_push_r;
        break;
    case 0x58 ... 0x5f:
        op->sz = (uint8_t)osz;
        op->reg = b & 7;
        op->fn = emu_op_pop_r;
        break;
    case 0x60:
        if (osz == 4)
            op->fn = emu_op_pushad;
        break;
    case 0x61:
        if (osz == 4)
            op->fn = emu_op_popad;
        break;
    case 0x68:
        op->sz = (uint8_t)osz;
        op->imm = fetch_imm(d, osz);
        op->fn = emu_op_push_i;
        break;
    case 0x6a:
        op->sz = (uint8_t)osz;
        op->imm = fetch_simm8(d, osz);
        op->fn = emu_op_push_i;
        break;
    case 0x69:
    case 0x6b:
        op->sz = (uint8_t)osz;
        modrm(d, op);
        op->imm = b == 0x69 ? fetch_imm(d, osz) : fetch_simm8(d, osz);
        op->fn = emu_op_imul3;
        break;
    case 0x6c:
    case 0x6d:
        op->sz = bw_size(b, osz);
        op->fn = emu_op_ins;
        break;
    case 0x6e:
    case 0x6f:
        op->sz = bw_size(b, osz);
        op->fn = emu_op_outs;
        break;
    case 0x70 ... 0x7f: {
        int32_t rel = (int8_t)fetch8(d);
        op->sub = b & 15;
        op->imm = rel_target(d, rel);
        op->fn = emu_jcc_fns[op->sub];
        break;
    }
    default:
        break;
    }
    return false;
}

/* 0x80-0xbf: group 1, TEST, XCHG, MOV (register, segment, moffs,
 * immediate), LEA, POP r/m, NOP/PAUSE, CBW/CWD, flags, string ops. */
static bool decode_80_bf(struct dec *d, struct emu_op *op, uint8_t b)
{
    int osz = d->osz;
    switch (b) {
    case 0x80:
    case 0x81:
    case 0x82:
    case 0x83:
        op->sz = bw_size(b, osz);
        modrm(d, op);
        op->sub = op->reg;
        op->imm = b == 0x83 ? fetch_simm8(d, op->sz) : fetch_imm(d, op->sz);
        op->fn = emu_alu_fns[op->sub][ALU_RM_I_REG + op->mem][szi(op->sz)];
        if (op->lock && op->mem && op->sub != 7) {
            op->fn = emu_op_locked_rmw;
            op->sub |= 0x80; /* source is imm */
        }
        break;
    case 0x84:
    case 0x85:
        op->sz = bw_size(b, osz);
        modrm(d, op);
        op->fn = emu_op_test_rm_r;
        break;
    case 0x86:
    case 0x87:
        op->sz = bw_size(b, osz);
        modrm(d, op);
        op->fn = emu_op_xchg;
        break;
    case 0x88:
    case 0x89:
        op->sz = bw_size(b, osz);
        modrm(d, op);
        op->fn = emu_mov_fns[0][op->mem][szi(op->sz)];
        break;
    case 0x8a:
    case 0x8b:
        op->sz = bw_size(b, osz);
        modrm(d, op);
        op->fn = emu_mov_fns[1][op->mem][szi(op->sz)];
        break;
    case 0x8c:
        op->sz = (uint8_t)(osz);
        modrm(d, op);
        if (op->reg < X86_NR_SREGS)
            op->fn = emu_op_mov_rm_sreg;
        break;
    case 0x8d:
        op->sz = (uint8_t)osz;
        modrm(d, op);
        if (op->mem)
            op->fn = emu_op_lea;
        break;
    case 0x8e:
        op->sz = 2;
        modrm(d, op);
        if (op->reg < X86_NR_SREGS && op->reg != S_CS) {
            op->fn = emu_op_mov_sreg_rm;
            return true;
        }
        break;
    case 0x8f:
        op->sz = (uint8_t)osz;
        modrm(d, op);
        if (op->reg == 0)
            op->fn = emu_op_pop_rm;
        break;
    case 0x90:
        op->fn = op->rep == 0xf3 ? emu_op_pause : emu_op_nop;
        break;
    case 0x91 ... 0x97:
        op->sz = (uint8_t)osz;
        op->mem = 0;
        op->rm = b & 7;
        op->reg = R_EAX;
        op->fn = emu_op_xchg;
        break;
    case 0x98:
        op->sz = (uint8_t)osz;
        op->fn = emu_op_cbw;
        break;
    case 0x99:
        op->sz = (uint8_t)osz;
        op->fn = emu_op_cwd;
        break;
    case 0x9c:
        op->sz = (uint8_t)osz;
        op->fn = emu_op_pushf;
        break;
    case 0x9d:
        op->sz = (uint8_t)osz;
        op->fn = emu_op_popf;
        return true;
    case 0x9e:
        op->fn = emu_op_sahf;
        break;
    case 0x9f:
        op->fn = emu_op_lahf;
        break;
    case 0xa0 ... 0xa3:
        op->sz = bw_size(b, osz);
        op->mem = 1;
        op->disp = (int32_t)fetch32(d);
        op->fn = b & 2 ? emu_op_mov_moffs_store : emu_op_mov_moffs_load;
        break;
    case 0xa4:
    case 0xa5:
    case 0xa6:
    case 0xa7:
    case 0xaa:
    case 0xab:
    case 0xac:
    case 0xad:
    case 0xae:
    case 0xaf: {
        static const emu_fn str[] = {
            [0x4] = emu_op_movs, [0x6] = emu_op_cmps, [0xa] = emu_op_stos,
            [0xc] = emu_op_lods, [0xe] = emu_op_scas,
        };
        op->sz = bw_size(b, osz);
        op->fn = str[(b & 0xe)];
        break;
    }
    case 0xa8:
    case 0xa9:
        op->sz = bw_size(b, osz);
        op->mem = 0;
        op->rm = R_EAX;
        op->imm = fetch_imm(d, op->sz);
        op->fn = emu_op_test_rm_i;
        break;
    case 0xb0 ... 0xb7:
        op->sz = 1;
        op->reg = b & 7;
        op->imm = fetch8(d);
        op->fn = emu_op_mov_r_i;
        break;
    case 0xb8 ... 0xbf:
        op->sz = (uint8_t)osz;
        op->reg = b & 7;
        op->imm = fetch_imm(d, osz);
        op->fn = emu_op_mov_r_i;
        break;
    default:
        break;
    }
    return false;
}

/* Control transfers and port I/O among 0xc0-0xff: RET, LOOP/JECXZ, IN,
 * OUT, CALL, JMP, HLT.  All of them end the block. */
static bool decode_transfer(struct dec *d, struct emu_op *op, uint8_t b)
{
    int osz = d->osz;
    switch (b) {
    case 0xc2:
        op->imm2 = fetch16(d);
        op->fn = emu_op_ret;
        return true;
    case 0xc3:
        op->fn = emu_op_ret;
        return true;
    case 0xe0:
    case 0xe1:
    case 0xe2:
    case 0xe3: {
        int32_t rel = (int8_t)fetch8(d);
        op->sub = b & 3;
        op->imm = rel_target(d, rel);
        op->fn = b == 0xe3 ? emu_op_jecxz : emu_op_loop;
        return true;
    }
    case 0xe4:
    case 0xe5:
    case 0xe6:
    case 0xe7:
        op->sz = bw_size(b, osz);
        op->imm = fetch8(d);
        op->sub = 1; /* port in imm */
        op->fn = b & 2 ? emu_op_out : emu_op_in;
        return true;
    case 0xec:
    case 0xed:
    case 0xee:
    case 0xef:
        op->sz = bw_size(b, osz);
        op->fn = b & 2 ? emu_op_out : emu_op_in;
        return true;
    case 0xe8:
    case 0xe9:
    case 0xeb: {
        int32_t rel = b == 0xeb ? (int8_t)fetch8(d)
            : osz == 2          ? (int16_t)fetch16(d)
                                : (int32_t)fetch32(d);
        op->imm = rel_target(d, rel);
        if (osz == 2)
            op->imm &= 0xffff;
        op->sz = (uint8_t)osz;
        op->fn = b == 0xe8 ? emu_op_call : emu_op_jmp;
        return true;
    }
    case 0xea:
        if (osz != 4)
            return false;
        op->imm = fetch32(d);
        op->imm2 = fetch16(d);
        op->fn = emu_op_jmp_far;
        return true;
    case 0xf4:
        op->fn = emu_op_hlt;
        return true;
    default:
        return false;
    }
}

/* 0xf6/0xf7: TEST NOT NEG MUL IMUL DIV IDIV on r/m. */
static bool decode_grp3(struct dec *d, struct emu_op *op, uint8_t b)
{
    static const emu_fn grp3[8] = {
        emu_op_test_rm_i, emu_op_unknown, emu_op_not, emu_op_neg,
        emu_op_mul1,      emu_op_imul1,   emu_op_div, emu_op_idiv,
    };
    op->sz = bw_size(b, d->osz);
    modrm(d, op);
    if (op->reg == 0)
        op->imm = fetch_imm(d, op->sz);
    op->fn = grp3[op->reg];
    if (op->lock && op->mem && (op->reg == 2 || op->reg == 3)) {
        op->sub = (uint8_t)(8 + op->reg); /* 10 NOT, 11 NEG */
        op->fn = emu_op_locked_rmw;
    }
    return false;
}

/* 0xfe/0xff: INC DEC on r/m; 0xff also CALL, JMP and PUSH r/m. */
static bool decode_grp45(struct dec *d, struct emu_op *op, uint8_t b)
{
    op->sz = bw_size(b, d->osz);
    modrm(d, op);
    if (op->reg < 2) {
        op->sub = op->reg;
        op->fn = emu_incdec_fns[op->sub][op->mem][szi(op->sz)];
        if (op->lock && op->mem) {
            op->sub = (uint8_t)(8 + op->reg); /* 8 INC, 9 DEC */
            op->fn = emu_op_locked_rmw;
        }
        return false;
    }
    if (b == 0xfe)
        return false;
    if (op->reg == 2) {
        op->fn = emu_op_call_rm;
        return true;
    } else if (op->reg == 4) {
        op->fn = emu_op_jmp_rm;
        return true;
    } else if (op->reg == 6) {
        op->fn = emu_op_push_rm;
    }
    return false;
}

/* 0xc0-0xff: shifts, MOV r/m imm, LEAVE, flag ops, groups 3 to 5, and
 * the control transfers. */
static bool decode_c0_ff(struct dec *d, struct emu_op *op, uint8_t b)
{
    switch (b) {
    case 0xc0:
    case 0xc1:
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        op->sz = bw_size(b, d->osz);
        modrm(d, op);
        if (op->reg == 6)
            break; /* undocumented SAL */
        op->sub = op->reg;
        /* imm2: count source, 0 = CL, else 1 + immediate */
        if (b <= 0xc1)
            op->imm2 = (uint16_t)(1 + fetch8(d));
        else if (b <= 0xd1)
            op->imm2 = 2;
        op->fn = emu_op_shift;
        break;
    case 0xc6:
    case 0xc7:
        op->sz = bw_size(b, d->osz);
        modrm(d, op);
        if (op->reg != 0)
            break;
        op->imm = fetch_imm(d, op->sz);
        op->fn = emu_op_mov_rm_i;
        break;
    case 0xc9:
        op->fn = emu_op_leave;
        break;
    case 0xf5:
    case 0xf8:
    case 0xf9:
    case 0xfa:
    case 0xfb:
    case 0xfc:
    case 0xfd:
        op->sub = b;
        op->fn = emu_op_flagop;
        break;
    case 0xf6:
    case 0xf7:
        return decode_grp3(d, op, b);
    case 0xfe:
    case 0xff:
        return decode_grp45(d, op, b);
    default:
        return decode_transfer(d, op, b);
    }
    return false;
}

/* 0x0f: the two-byte opcodes. */
static bool decode_0f(struct dec *d, struct emu_op *op)
{
    int osz = d->osz;
    uint8_t b = fetch8(d);
    switch (b) {
    case 0x01:
        modrm(d, op);
        if (!op->mem)
            break;
        if (op->reg == 0)
            op->fn = emu_op_sgdt;
        else if (op->reg == 1)
            op->fn = emu_op_sidt;
        else if (op->reg == 2) {
            op->fn = emu_op_lgdt;
            return true;
        } else if (op->reg == 3) {
            op->fn = emu_op_lidt;
            return true;
        }
        break;
    case 0x08:
    case 0x09:
        op->fn = emu_op_flush;
        return true;
    case 0x1f:
        modrm(d, op);
        op->fn = emu_op_nop;
        break;
    case 0x20:
    case 0x22: {
        uint8_t m = fetch8(d); /* mod reads as 11b */
        op->reg = (m >> 3) & 7;
        op->rm = m & 7;
        op->mem = 0;
        op->fn = b == 0x20 ? emu_op_mov_from_cr : emu_op_mov_to_cr;
        return b == 0x22;
    }
    case 0x31:
        op->fn = emu_op_rdtsc;
        break;
    case 0x40 ... 0x4f:
        op->sz = (uint8_t)osz;
        modrm(d, op);
        op->sub = b & 15;
        op->fn = emu_op_cmov;
        break;
    case 0x80 ... 0x8f: {
        int32_t rel = osz == 2 ? (int16_t)fetch16(d) : (int32_t)fetch32(d);
        op->sub = b & 15;
        op->imm = rel_target(d, rel);
        if (osz == 2)
            op->imm &= 0xffff;
        op->fn = emu_jcc_fns[op->sub];
        return true;
    }
    case 0x90 ... 0x9f:
        op->sz = 1;
        modrm(d, op);
        op->sub = b & 15;
        op->fn = emu_op_setcc;
        break;
    case 0xa2:
        op->fn = emu_op_cpuid;
        return true;
    case 0xa3:
    case 0xab:
    case 0xb3:
    case 0xbb:
        op->sz = (uint8_t)osz;
        modrm(d, op);
        op->sub = (b >> 3) & 3; /* 0 BT 1 BTS 2 BTR 3 BTC */
        op->fn = emu_op_bt_r;
        break;
    case 0xba:
        op->sz = (uint8_t)osz;
        modrm(d, op);
        if (op->reg < 4)
            break;
        op->sub = op->reg & 3;
        op->imm = fetch8(d);
        op->fn = emu_op_bt_i;
        break;
    case 0xa4:
    case 0xa5:
    case 0xac:
    case 0xad:
        op->sz = (uint8_t)osz;
        modrm(d, op);
        op->imm2 = (b & 1) ? 0 : (uint16_t)(1 + fetch8(d));
        op->fn = b < 0xa8 ? emu_op_shld : emu_op_shrd;
        break;
    case 0xaf:
        op->sz = (uint8_t)osz;
        modrm(d, op);
        op->fn = emu_op_imul2;
        break;
    case 0xb0:
    case 0xb1:
        op->sz = bw_size(b, osz);
        modrm(d, op);
        op->fn = emu_op_cmpxchg;
        break;
    case 0xc0:
    case 0xc1:
        op->sz = bw_size(b, osz);
        modrm(d, op);
        op->fn = emu_op_xadd;
        break;
    case 0xb6:
    case 0xb7:
    case 0xbe:
    case 0xbf:
        op->sz = (uint8_t)osz;
        modrm(d, op);
        op->sub = (b & 1) ? 2 : 1; /* source size */
        op->fn = b < 0xb8 ? emu_op_movzx : emu_op_movsx;
        break;
    case 0xbc:
    case 0xbd:
        op->sz = (uint8_t)osz;
        modrm(d, op);
        op->fn = b == 0xbc ? emu_op_bsf : emu_op_bsr;
        break;
    case 0xc8 ... 0xcf:
        if (osz != 4)
            break;
        op->sz = 4;
        op->reg = b & 7;
        op->fn = emu_op_bswap;
        break;
    default:
        break;
    }
    return false;
}

/* Is a LOCK prefix allowed on what op decoded to?  Only read-modify-write
 * forms with a memory destination take it (else #UD). */
static bool lock_allowed(const struct emu_op *op)
{
    if (!op->mem)
        return false;
    return op->fn == emu_op_locked_rmw || op->fn == emu_op_xchg ||
        op->fn == emu_op_xadd || op->fn == emu_op_cmpxchg ||
        ((op->fn == emu_op_bt_r || op->fn == emu_op_bt_i) && op->sub);
}

/* Decode one instruction into op; returns true if it ends the block. */
static bool decode_one(struct dec *d, struct emu_op *op)
{
    memset(op, 0, sizeof(*op));
    op->fn = emu_op_unknown;
    op->base = op->index = EMU_NOREG;
    op->seg = S_DS;

    int b = decode_prefixes(d, op);
    if (b < 0)
        return true;
    bool ends;
    if (b < 0x40 && (b & 7) < 6)
        ends = decode_alu(d, op, (uint8_t)b);
    else if (b == 0x0f)
        ends = decode_0f(d, op);
    else if (b < 0x40)
        ends = false; /* not decoded: #UD */
    else if (b < 0x80)
        ends = decode_40_7f(d, op, (uint8_t)b);
    else if (b < 0xc0)
        ends = decode_80_bf(d, op, (uint8_t)b);
    else
        ends = decode_c0_ff(d, op, (uint8_t)b);

    /* A block-ending instruction never takes LOCK. */
    if (op->lock && (ends || !lock_allowed(op)))
        op->fn = emu_op_unknown;
    op->len = (uint8_t)d->len;
    return ends || op->fn == emu_op_unknown;
}

void emu_decode_block(struct emu_cpu *c, struct emu_block *b)
{
    struct emu_code_map *map = c->code;
    uint32_t cs_base = c->segbase[S_CS];
    uint32_t lin = cs_base + c->eip;
    uint32_t eip = c->eip;

    b->eip = eip;
    b->cs_base = cs_base;
    b->page = b->page2 = EMU_NOPAGE;
    /* Mark the pages as holding code before reading them, so a store
     * racing with this decode bumps the generation we are about to
     * record (or one after it). */
    if ((uint64_t)lin < c->ram_size) {
        b->page = lin >> EMU_PAGE_SHIFT;
        b->page2 = b->page;
        atomic_store(&map->has_code[b->page], 1);
        b->gen = atomic_load(&map->gen[b->page]);
        uint64_t next = (uint64_t)b->page + 1;
        if ((lin & (EMU_PAGE_SIZE - 1)) > EMU_PAGE_SIZE - 16 &&
            next < map->npages) {
            b->page2 = (uint32_t)next;
            atomic_store(&map->has_code[next], 1);
            b->gen2 = atomic_load(&map->gen[next]);
        }
    }

    uint32_t n = 0;
    uint32_t page_end = (lin & ~(EMU_PAGE_SIZE - 1)) + EMU_PAGE_SIZE;
    for (;;) {
        struct dec d = { .c = c, .lin = lin, .len = 0 };
        struct emu_op *op = &b->ops[n];
        bool end = decode_one(&d, op);
        op->eip = eip;
        n++;
        eip += op->len;
        lin += op->len;
        if (end)
            break;
        /* Stay on one page: only a block that starts in a page's last
         * 16 bytes may straddle into the next, which page2 covers. */
        if (n == EMU_BLOCK_MAX ||
            lin - (page_end - EMU_PAGE_SIZE) > EMU_PAGE_SIZE - 16) {
            struct emu_op *next = &b->ops[n];
            memset(next, 0, sizeof(*next));
            next->fn = emu_op_next;
            next->eip = eip;
            break;
        }
    }
    b->ninsn = n;
}
