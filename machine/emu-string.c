/* accel emu: string instructions (MOVS STOS LODS CMPS SCAS INS OUTS)
 * with REP/REPE/REPNE.  A repeated instruction that is interrupted (stop
 * requested, code modified under it) leaves ECX/ESI/EDI where it got to
 * and EIP on itself, so the next run resumes it, as an interrupt would.
 * REP STOS and REP MOVS forwards copy a page at a time. */
#include "machine/emu-internal.h"

#define STR_POLL 4096 /* iterations between polls of *stop */

static int32_t str_step(const struct emu_cpu *c, int sz)
{
    return c->eflags & X86_DF ? -sz : sz;
}

static bool stop_requested(struct emu_cpu *c)
{
    if (atomic_load_explicit(c->stop, memory_order_relaxed)) {
        c->exit = EMU_EXIT_STOP;
        return true;
    }
    return false;
}

/* End of one iteration of a REP loop: true to leave the handler now
 * (*ret holds what to return). */
static bool rep_break(struct emu_cpu *c, const struct emu_op *op, uint32_t *n,
                      int *ret)
{
    bool smc = c->smc;
    bool poll = (++*n % STR_POLL) == 0;
    if (!smc && !(poll && stop_requested(c)))
        return false;
    c->smc = false;
    if (c->r[R_ECX].d) {
        c->eip = op->eip; /* resume the same instruction */
        c->unretired = 1;
    } else {
        c->eip = op->eip + op->len;
    }
    *ret = 1;
    return true;
}

/* Bytes of RAM usable at addr for a forward run of elements without
 * crossing a page: the element count, or 0 to take the slow path. */
static uint32_t run_len(const struct emu_cpu *c, uint32_t addr, int sz,
                        bool dst)
{
    if (addr >= c->ram_size)
        return 0;
    uint64_t room =
        dst ? EMU_PAGE_SIZE - (addr & (EMU_PAGE_SIZE - 1)) : c->ram_size - addr;
    if (addr + room > c->ram_size)
        room = c->ram_size - addr;
    return (uint32_t)(room / (unsigned)sz);
}

static int rep_stos_fast(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    uint32_t v = reg_get(c, sz, R_EAX);
    uint32_t polls = 0;
    while (c->r[R_ECX].d) {
        uint32_t a = c->segbase[S_ES] + c->r[R_EDI].d;
        uint32_t n = run_len(c, a, sz, true);
        if (n > c->r[R_ECX].d)
            n = c->r[R_ECX].d;
        if (n == 0) {
            mem_write(c, a, sz, v);
            n = 1;
        } else {
            uint8_t *p = c->ram + a;
            write_guard_check(c->guard, a >> EMU_PAGE_SHIFT);
            GUEST_ACCESS_BEGIN();
            if (sz == 1) {
                memset(p, (int)v, n);
            } else {
                for (uint32_t i = 0; i < n; i++)
                    memcpy(p + i * (uint32_t)sz, &v, (size_t)sz);
            }
            GUEST_ACCESS_END();
            page_stored(c, a >> EMU_PAGE_SHIFT);
        }
        c->r[R_EDI].d += n * (uint32_t)sz;
        c->r[R_ECX].d -= n;
        int ret;
        polls += STR_POLL / 64 - 1; /* a page counts as 64 */
        if (rep_break(c, op, &polls, &ret))
            return ret;
    }
    return 0;
}

int emu_op_stos(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    if (!op->rep) {
        mem_write(c, c->segbase[S_ES] + c->r[R_EDI].d, sz,
                  reg_get(c, sz, R_EAX));
        c->r[R_EDI].d += (uint32_t)str_step(c, sz);
        return store_done(c, op);
    }
    if (!(c->eflags & X86_DF))
        return rep_stos_fast(c, op);
    uint32_t n = 0;
    int ret;
    while (c->r[R_ECX].d) {
        mem_write(c, c->segbase[S_ES] + c->r[R_EDI].d, sz,
                  reg_get(c, sz, R_EAX));
        c->r[R_EDI].d += (uint32_t)str_step(c, sz);
        c->r[R_ECX].d--;
        if (rep_break(c, op, &n, &ret))
            return ret;
    }
    return 0;
}

static void movs_one(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    uint32_t v = mem_read(c, c->segbase[op->seg] + c->r[R_ESI].d, sz);
    mem_write(c, c->segbase[S_ES] + c->r[R_EDI].d, sz, v);
    int32_t step = str_step(c, sz);
    c->r[R_ESI].d += (uint32_t)step;
    c->r[R_EDI].d += (uint32_t)step;
}

/* Forward REP MOVS a destination page at a time; element by element
 * where source and destination overlap, as the hardware copies. */
static int rep_movs_fast(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    uint32_t polls = 0;
    while (c->r[R_ECX].d) {
        uint32_t s = c->segbase[op->seg] + c->r[R_ESI].d;
        uint32_t d = c->segbase[S_ES] + c->r[R_EDI].d;
        uint32_t n = run_len(c, d, sz, true), ns = run_len(c, s, sz, false);
        if (n > ns)
            n = ns;
        if (n > c->r[R_ECX].d)
            n = c->r[R_ECX].d;
        if (n == 0) {
            movs_one(c, op);
            n = 1;
        } else {
            uint32_t bytes = n * (uint32_t)sz;
            write_guard_check(c->guard, d >> EMU_PAGE_SHIFT);
            GUEST_ACCESS_BEGIN();
            if (d > s && d < s + bytes) {
                for (uint32_t i = 0; i < bytes; i += (uint32_t)sz)
                    memmove(c->ram + d + i, c->ram + s + i, (size_t)sz);
            } else {
                memmove(c->ram + d, c->ram + s, bytes);
            }
            GUEST_ACCESS_END();
            page_stored(c, d >> EMU_PAGE_SHIFT);
            c->r[R_ESI].d += bytes;
            c->r[R_EDI].d += bytes;
        }
        c->r[R_ECX].d -= n;
        int ret;
        polls += STR_POLL / 64 - 1;
        if (rep_break(c, op, &polls, &ret))
            return ret;
    }
    return 0;
}

int emu_op_movs(struct emu_cpu *c, const struct emu_op *op)
{
    if (!op->rep) {
        movs_one(c, op);
        return store_done(c, op);
    }
    if (!(c->eflags & X86_DF))
        return rep_movs_fast(c, op);
    uint32_t n = 0;
    int ret;
    while (c->r[R_ECX].d) {
        movs_one(c, op);
        c->r[R_ECX].d--;
        if (rep_break(c, op, &n, &ret))
            return ret;
    }
    return 0;
}

int emu_op_lods(struct emu_cpu *c, const struct emu_op *op)
{
    int sz = op->sz;
    uint32_t n = 0;
    int ret;
    do {
        if (op->rep && !c->r[R_ECX].d)
            break;
        reg_set(c, sz, R_EAX,
                mem_read(c, c->segbase[op->seg] + c->r[R_ESI].d, sz));
        c->r[R_ESI].d += (uint32_t)str_step(c, sz);
        if (op->rep) {
            c->r[R_ECX].d--;
            if (rep_break(c, op, &n, &ret))
                return ret;
        }
    } while (op->rep);
    return 0;
}

/* CMPS/SCAS: flags of dst - src; REPE stops on ZF=0, REPNE on ZF=1. */
static int compare_loop(struct emu_cpu *c, const struct emu_op *op, bool cmps)
{
    int sz = op->sz;
    uint32_t n = 0;
    int ret;
    do {
        if (op->rep && !c->r[R_ECX].d)
            break;
        uint32_t d, s = mem_read(c, c->segbase[S_ES] + c->r[R_EDI].d, sz);
        int32_t step = str_step(c, sz);
        if (cmps) {
            d = mem_read(c, c->segbase[op->seg] + c->r[R_ESI].d, sz);
            c->r[R_ESI].d += (uint32_t)step;
        } else {
            d = reg_get(c, sz, R_EAX);
        }
        c->r[R_EDI].d += (uint32_t)step;
        lf_set(c, LF_SUB, sz, d, s, (d - s) & sz_mask(sz));
        if (!op->rep)
            break;
        c->r[R_ECX].d--;
        bool zf = d == s;
        if (zf != (op->rep == 0xf3))
            break;
        if (rep_break(c, op, &n, &ret))
            return ret;
    } while (1);
    return 0;
}

int emu_op_cmps(struct emu_cpu *c, const struct emu_op *op)
{
    return compare_loop(c, op, true);
}

int emu_op_scas(struct emu_cpu *c, const struct emu_op *op)
{
    return compare_loop(c, op, false);
}

/* INS/OUTS poll *stop after every transfer, as IN and OUT do. */
static int port_string(struct emu_cpu *c, const struct emu_op *op, bool in)
{
    int sz = op->sz;
    uint16_t port = c->r[R_EDX].w;
    do {
        if (op->rep && !c->r[R_ECX].d)
            break;
        int32_t step = str_step(c, sz);
        if (in) {
            uint32_t v = c->bus.pio_in ? c->bus.pio_in(c->bus.opaque, port, sz)
                                       : 0xffffffffu;
            mem_write(c, c->segbase[S_ES] + c->r[R_EDI].d, sz, v & sz_mask(sz));
            c->r[R_EDI].d += (uint32_t)step;
        } else {
            uint32_t v = mem_read(c, c->segbase[op->seg] + c->r[R_ESI].d, sz);
            if (c->bus.pio_out)
                c->bus.pio_out(c->bus.opaque, port, sz, v);
            c->r[R_ESI].d += (uint32_t)step;
        }
        if (op->rep)
            c->r[R_ECX].d--;
        bool stop = stop_requested(c);
        if (stop || c->smc) {
            c->smc = false;
            if (op->rep && c->r[R_ECX].d) {
                c->eip = op->eip;
                c->unretired = 1;
            } else {
                c->eip = op->eip + op->len;
            }
            return 1;
        }
    } while (op->rep);
    return 0;
}

int emu_op_ins(struct emu_cpu *c, const struct emu_op *op)
{
    return port_string(c, op, true);
}

int emu_op_outs(struct emu_cpu *c, const struct emu_op *op)
{
    return port_string(c, op, false);
}
