/* accel emu: the vCPU object, the decoded-block cache and the run loop.
 *
 * Guest code is decoded once per address into blocks of compact ops
 * (emu-decode.c) and run by a tight loop of handler calls.  A block is
 * valid while the generation numbers of the RAM pages it came from are
 * unchanged; a store to a page holding decoded code bumps its generation
 * (emu_code_written), which every vCPU sees at its next block entry. */
#include <stdio.h>
#include <stdlib.h>

#include "machine/emu-internal.h"
#include "util/alloc.h"

#define EMU_STOP_POLL_BLOCKS 64 /* blocks between polls of *stop */

struct emu_code_map *emu_code_map_new(uint64_t ram_size)
{
    struct emu_code_map *map = xcalloc(1, sizeof(*map));
    map->npages = (ram_size + EMU_PAGE_SIZE - 1) >> EMU_PAGE_SHIFT;
    map->has_code = xcalloc(map->npages + 1, sizeof(*map->has_code));
    map->gen = xcalloc(map->npages + 1, sizeof(*map->gen));
    return map;
}

void emu_code_map_free(struct emu_code_map *map)
{
    if (!map)
        return;
    free((void *)map->has_code);
    free((void *)map->gen);
    free(map);
}

struct emu_cpu *emu_cpu_new(const struct emu_bus *bus)
{
    struct emu_cpu *c = xcalloc(1, sizeof(*c));
    c->bus = *bus;
    c->ram = bus->ram;
    /* A 32-bit guest reaches 4 GiB at most. */
    c->ram_size = bus->ram_size < (1ull << 32) ? bus->ram_size : 1ull << 32;
    c->dirty = bus->dirty;
    if (!c->dirty) { /* nobody reads it: keep a private one */
        size_t words = (size_t)((c->ram_size >> EMU_PAGE_SHIFT) / 64 + 1);
        c->dirty = xcalloc(words, sizeof(unsigned long));
        c->own_dirty = true;
    }
    c->guard = bus->guard;
    c->code = bus->code;
    if (!c->code) {
        c->code = emu_code_map_new(c->ram_size);
        c->own_code = true;
    }
    c->cpu_count = 1;
    c->lf_op = LF_EAGER;
    return c;
}

void emu_cpu_free(struct emu_cpu *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < (1u << EMU_TBL_BITS); i++)
        free(c->tbl[i]);
    if (c->own_code)
        emu_code_map_free(c->code);
    if (c->own_dirty)
        free((void *)c->dirty);
    free(c);
}

void emu_cpu_set_topology(struct emu_cpu *c, int index, int count)
{
    c->cpu_index = index;
    c->cpu_count = count;
}

void emu_flush_blocks(struct emu_cpu *c)
{
    for (size_t i = 0; i < (1u << EMU_TBL_BITS); i++)
        if (c->tbl[i])
            c->tbl[i]->ninsn = 0; /* never matches: re-decoded */
}

void emu_cpu_invalidate(struct emu_cpu *c, uint64_t gpa, uint64_t len)
{
    emu_code_map_invalidate(c->code, gpa, len);
}

void emu_code_map_invalidate(struct emu_code_map *map, uint64_t gpa,
                             uint64_t len)
{
    if (!len || gpa >= map->npages << EMU_PAGE_SHIFT)
        return;
    uint64_t first = gpa >> EMU_PAGE_SHIFT;
    uint64_t last = (gpa + len - 1) >> EMU_PAGE_SHIFT;
    if (last >= map->npages)
        last = map->npages - 1;
    for (uint64_t p = first; p <= last; p++)
        atomic_fetch_add_explicit(&map->gen[p], 1, memory_order_relaxed);
}

void emu_code_written(struct emu_cpu *c, uint64_t page)
{
    struct emu_code_map *map = c->code;
    atomic_store_explicit(&map->has_code[page], 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&map->gen[page], 1, memory_order_release);
    c->smc = true;
}

uint32_t emu_read_slow(struct emu_cpu *c, uint32_t addr, int sz)
{
    uint32_t v = 0;
    GUEST_ACCESS_BEGIN();
    for (int i = 0; i < sz; i++) {
        uint32_t a = addr + (uint32_t)i; /* wraps at 4 GiB */
        uint32_t b = a < c->ram_size ? c->ram[a] : 0xff;
        v |= b << (8 * i);
    }
    GUEST_ACCESS_END();
    return v;
}

void emu_write_slow(struct emu_cpu *c, uint32_t addr, int sz, uint32_t v)
{
    for (int i = 0; i < sz; i++) {
        uint32_t a = addr + (uint32_t)i;
        if (a >= c->ram_size)
            continue; /* dropped, like a PC */
        write_guard_check(c->guard, a >> EMU_PAGE_SHIFT);
        GUEST_ACCESS_BEGIN();
        c->ram[a] = (uint8_t)(v >> (8 * i));
        GUEST_ACCESS_END();
        page_stored(c, a >> EMU_PAGE_SHIFT);
    }
}

/* One-byte opcodes followed by a ModRM byte. */
static bool has_modrm(uint8_t b)
{
    if (b < 0x40)
        return (b & 7) < 4;
    return b == 0x62 || b == 0x63 || b == 0x69 || b == 0x6b ||
        (b >= 0x80 && b <= 0x8f) || b == 0xc0 || b == 0xc1 ||
        (b >= 0xc4 && b <= 0xc7) || (b >= 0xd0 && b <= 0xd3) ||
        (b >= 0xd8 && b <= 0xdf) || b == 0xf6 || b == 0xf7 || b == 0xfe ||
        b == 0xff;
}

void emu_fail_bytes(struct emu_cpu *c, uint32_t eip, const char *what)
{
    char bytes[3 * 4 + 1] = "";
    uint32_t lin = c->segbase[S_CS] + eip;
    int n = 0;
    /* Up to three opcode bytes after prefixes. */
    uint32_t p = lin;
    for (int i = 0; i < 15; i++, p++) {
        uint8_t b = (uint8_t)emu_read_slow(c, p, 1);
        if (b == 0x66 || b == 0xf0 || b == 0xf2 || b == 0xf3 || b == 0x26 ||
            b == 0x2e || b == 0x36 || b == 0x3e || b == 0x64 || b == 0x65)
            continue;
        break;
    }
    int want = 1;
    uint8_t b0 = (uint8_t)emu_read_slow(c, p, 1);
    uint8_t b1 = (uint8_t)emu_read_slow(c, p + 1, 1);
    if (b0 == 0x0f) /* + ModRM of groups */
        want = b1 == 0x00 || b1 == 0x01 || b1 == 0xba || b1 == 0xc7 ? 3 : 2;
    else if (has_modrm(b0))
        want = 2;
    for (int i = 0; i < want; i++)
        n += snprintf(bytes + n, sizeof(bytes) - (size_t)n, "%s%02x",
                      i ? " " : "", emu_read_slow(c, p + (uint32_t)i, 1));
    if (c->err && c->errlen)
        snprintf(c->err, c->errlen, "%s %s at eip 0x%08x",
                 what ? what : "unknown opcode", bytes, eip);
}

int emu_fail(struct emu_cpu *c, const struct emu_op *op, const char *what)
{
    emu_fail_bytes(c, op->eip, what);
    c->eip = op->eip;
    c->exit = EMU_EXIT_ERROR;
    c->unretired = 1;
    return 1;
}

/* ---- State in and out ---- */

static void load_state(struct emu_cpu *c, const struct x86_state *st)
{
    for (int i = 0; i < X86_NR_REGS; i++)
        c->r[i].d = st->regs[i];
    c->r[EMU_NOREG].d = 0;
    c->eip = st->eip;
    c->eflags = (st->eflags & ~0x8028u) | X86_EFLAGS_FIXED;
    c->lf_op = LF_EAGER;
    c->sys = *st;
    for (int s = 0; s < X86_NR_SREGS; s++)
        c->segbase[s] = st->seg[s].base;
    c->segbase[EMU_NOSEG] = 0;
}

static void save_state(struct emu_cpu *c, struct x86_state *st)
{
    bool halted = c->sys.halted;
    *st = c->sys;
    for (int i = 0; i < X86_NR_REGS; i++)
        st->regs[i] = c->r[i].d;
    st->eip = c->eip;
    st->eflags = emu_eflags(c);
    st->halted = halted;
}

/* Modes this interpreter cannot run. */
static bool check_mode(struct emu_cpu *c)
{
    const char *why = NULL;
    if (!(c->sys.cr0 & 1))
        why = "real mode (CR0.PE clear) is not supported";
    else if (c->sys.cr0 & 0x80000000u)
        why = "paging (CR0.PG set) is not supported";
    else if (!c->sys.seg[S_CS].db)
        why = "16-bit code segment is not supported";
    else if (c->eflags & X86_TF)
        why = "single-step (EFLAGS.TF) is not supported";
    if (!why)
        return true;
    if (c->err && c->errlen)
        snprintf(c->err, c->errlen, "%s at eip 0x%08x", why, c->eip);
    c->exit = EMU_EXIT_ERROR;
    return false;
}

static struct emu_block *lookup(struct emu_cpu *c)
{
    uint32_t cs_base = c->segbase[S_CS];
    uint32_t lin = cs_base + c->eip;
    uint32_t h = (lin ^ (lin >> EMU_TBL_BITS)) & ((1u << EMU_TBL_BITS) - 1);
    struct emu_block *b = c->tbl[h];
    if (likely(b && b->eip == c->eip && b->cs_base == cs_base && b->ninsn)) {
        const _Atomic uint32_t *gen = c->code->gen;
        if (likely(b->page == EMU_NOPAGE ||
                   (atomic_load_explicit(&gen[b->page], memory_order_acquire) ==
                        b->gen &&
                    (b->page2 == b->page ||
                     atomic_load_explicit(&gen[b->page2],
                                          memory_order_acquire) == b->gen2))))
            return b;
    }
    if (!b) {
        b = xmalloc(sizeof(*b));
        c->tbl[h] = b;
    }
    emu_decode_block(c, b);
    return b;
}

enum emu_exit emu_cpu_run(struct emu_cpu *c, struct x86_state *state,
                          const atomic_int *stop, uint64_t *icount, char *err,
                          size_t errlen)
{
    c->err = err;
    c->errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    c->stop = stop;
    c->insns = 0;
    c->exit = EMU_RUNNING;
    c->unretired = 0;
    c->smc = false;
    load_state(c, state);

    if (atomic_load_explicit(stop, memory_order_relaxed)) {
        c->exit = EMU_EXIT_STOP;
    } else if (c->sys.halted) {
        c->exit = EMU_EXIT_HLT; /* no interrupts ever wake it */
    } else if (check_mode(c)) {
        unsigned poll = 0;
        for (;;) {
            struct emu_block *b = lookup(c);
            const struct emu_op *op = b->ops;
            while (!op->fn(c, op))
                op++;
            c->insns += (uint64_t)(op - b->ops) + 1 - (uint64_t)c->unretired;
            c->unretired = 0;
            c->smc = false;
            if (unlikely(c->exit != EMU_RUNNING))
                break;
            if (unlikely(++poll >= EMU_STOP_POLL_BLOCKS)) {
                poll = 0;
                if (atomic_load_explicit(stop, memory_order_relaxed)) {
                    c->exit = EMU_EXIT_STOP;
                    break;
                }
            }
        }
    }
    save_state(c, state);
    *icount += c->insns;
    c->insns_before += c->insns;
    return (enum emu_exit)c->exit;
}
