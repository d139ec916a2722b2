/* A bare interpreter for tests: RAM, dirty bitmap, a port I/O log, and
 * helpers to assemble a program at CODE_ADDR and run it to HLT. */
#ifndef HOP_TESTS_EMU_FIXTURE_H
#define HOP_TESTS_EMU_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/emu.h"
#include "x86-asm.h"

#define FIX_RAM_SIZE (4u << 20)
#define CODE_ADDR 0x1000u
#define DATA_ADDR 0x100000u /* 1 MiB: a page of test data */
#define STACK_TOP 0x80000u

struct pio_rec {
    int out; /* 1 OUT, 0 IN */
    uint16_t port;
    int size;
    uint32_t val;
};

struct emu_fix {
    uint8_t *ram;
    _Atomic unsigned long *dirty;
    struct emu_bus bus;
    struct emu_cpu *cpu;
    struct x86_state st;
    atomic_int stop;
    char err[256];
    uint64_t icount;
    struct pio_rec pio[64];
    int npio;
    uint32_t in_value;  /* what IN returns */
    int stop_after_out; /* set stop on the Nth OUT (1-based) */
};

static inline uint32_t fix_pio_in(void *opaque, uint16_t port, int size)
{
    struct emu_fix *f = opaque;
    if (f->npio < 64)
        f->pio[f->npio++] = (struct pio_rec){ 0, port, size, f->in_value };
    return f->in_value;
}

static inline void fix_pio_out(void *opaque, uint16_t port, int size,
                               uint32_t val)
{
    struct emu_fix *f = opaque;
    if (f->npio < 64)
        f->pio[f->npio++] = (struct pio_rec){ 1, port, size, val };
    int outs = 0;
    for (int i = 0; i < f->npio; i++)
        outs += f->pio[i].out;
    if (f->stop_after_out && outs == f->stop_after_out)
        atomic_store(&f->stop, 1);
}

static inline struct emu_fix *fix_new(void)
{
    struct emu_fix *f = calloc(1, sizeof(*f));
    f->ram = calloc(1, FIX_RAM_SIZE);
    f->dirty = calloc(FIX_RAM_SIZE / 4096 / 64 + 1, sizeof(unsigned long));
    f->bus = (struct emu_bus){
        .ram = f->ram,
        .ram_size = FIX_RAM_SIZE,
        .dirty = f->dirty,
        .pio_in = fix_pio_in,
        .pio_out = fix_pio_out,
        .opaque = f,
    };
    f->cpu = emu_cpu_new(&f->bus);
    x86_state_reset_flat(&f->st, CODE_ADDR, 0, 0);
    f->st.regs[R_ESP] = STACK_TOP;
    return f;
}

static inline void fix_free(struct emu_fix *f)
{
    emu_cpu_free(f->cpu);
    free(f->ram);
    free((void *)f->dirty);
    free(f);
}

/* Assemble src at CODE_ADDR into RAM (and tell the emulator). */
static inline void fix_load(struct emu_fix *f, const char *src)
{
    size_t len = 0;
    uint8_t *code = x86_asm32(src, CODE_ADDR, &len);
    if (!code) {
        fprintf(stderr, "fix_load: cannot assemble\n");
        abort();
    }
    memcpy(f->ram + CODE_ADDR, code, len);
    emu_cpu_invalidate(f->cpu, CODE_ADDR, len);
    free(code);
}

static inline enum emu_exit fix_run(struct emu_fix *f)
{
    return emu_cpu_run(f->cpu, &f->st, &f->stop, &f->icount, f->err,
                       sizeof(f->err));
}

/* Load and run to HLT; a test fails on any other exit. */
static inline enum emu_exit fix_run_asm(struct emu_fix *f, const char *src)
{
    fix_load(f, src);
    enum emu_exit e = fix_run(f);
    if (e != EMU_EXIT_HLT)
        fprintf(stderr, "exit %d: %s (eip 0x%x)\n", e, f->err, f->st.eip);
    return e;
}

static inline bool fix_page_dirty(const struct emu_fix *f, uint32_t addr)
{
    uint64_t p = addr / 4096;
    return (atomic_load(&f->dirty[p / 64]) >> (p % 64)) & 1;
}

static inline void fix_clear_dirty(struct emu_fix *f)
{
    for (size_t i = 0; i < FIX_RAM_SIZE / 4096 / 64 + 1; i++)
        atomic_store(&f->dirty[i], 0);
}

#endif
