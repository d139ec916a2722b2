/* accel emu: arithmetic flags from the lazy state (the last flag-setting
 * operation's operands and result), computed only when something reads
 * them. */
#include "machine/emu-internal.h"

uint32_t emu_lazy_flags(const struct emu_cpu *c)
{
    int sz = c->lf_op & 7;
    uint32_t sign = sz_sign(sz);
    uint32_t d = c->lf_dst, s = c->lf_src, r = c->lf_res;
    uint32_t f = 0;
    bool cf = false, of = false, af = false;

    switch (c->lf_op >> 3) {
    case LF_ADD:
    case LF_ADC:
        cf = c->lf_op >> 3 == LF_ADC && c->lf_aux ? r <= d : r < d;
        of = (d ^ r) & (s ^ r) & sign;
        af = (d ^ s ^ r) & 0x10;
        break;
    case LF_SUB:
    case LF_SBB:
        cf = c->lf_op >> 3 == LF_SBB && c->lf_aux ? d <= s : d < s;
        of = (d ^ s) & (d ^ r) & sign;
        af = (d ^ s ^ r) & 0x10;
        break;
    case LF_LOGIC:
        break;
    case LF_INC:
        cf = c->lf_aux;
        of = r == sign;
        af = (r & 0xf) == 0;
        break;
    case LF_DEC:
        cf = c->lf_aux;
        of = r == sign - 1;
        af = (r & 0xf) == 0xf;
        break;
    default:
        return c->eflags & EFLAGS_ARITH;
    }
    if (cf)
        f |= X86_CF;
    if (of)
        f |= X86_OF;
    if (af)
        f |= X86_AF;
    if (r == 0)
        f |= X86_ZF;
    if (r & sign)
        f |= X86_SF;
    if (emu_parity_even(r))
        f |= X86_PF;
    return f;
}
