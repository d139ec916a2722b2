/* accel emu: an interpreter of the 32-bit x86 subset hop's firmware uses.
 * One struct emu_cpu per vCPU thread; every vCPU shares the bus. */
#ifndef HOP_MACHINE_EMU_H
#define HOP_MACHINE_EMU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/x86.h"

/* What the interpreter sees of the machine. */
struct emu_bus {
    uint8_t *ram; /* guest physical 0 .. ram_size-1 */
    uint64_t ram_size;
    /* One bit per 4 KiB page of ram, set (atomically) on every guest
     * store to the page.  Reads never set it. */
    _Atomic unsigned long *dirty;
    /* Port I/O; size is 1, 2 or 4.  Called from the vCPU thread. */
    uint32_t (*pio_in)(void *opaque, uint16_t port, int size);
    void (*pio_out)(void *opaque, uint16_t port, int size, uint32_t val);
    void *opaque;
    /* Optional.  Which pages hold decoded code, shared by every vCPU on
     * this RAM so that a store from any of them invalidates the others'
     * decoded copies.  NULL: the vCPU keeps a private one. */
    struct emu_code_map *code;
    /* Optional time stamp counter base for RDTSC (the vCPU adds the
     * instructions it retired in the current emu_cpu_run call).  NULL:
     * RDTSC counts this vCPU's retired instructions. */
    uint64_t (*rdtsc)(void *opaque);
    /* Optional.  Checked before every store to RAM (see
     * machine/write-guard.h); shared by every vCPU on this RAM. */
    struct write_guard *guard;
};

struct emu_code_map;
struct emu_code_map *emu_code_map_new(uint64_t ram_size);
void emu_code_map_free(struct emu_code_map *map);
/* Every vCPU sharing map forgets decoded code in [gpa, gpa+len). */
void emu_code_map_invalidate(struct emu_code_map *map, uint64_t gpa,
                             uint64_t len);

enum emu_exit {
    EMU_EXIT_STOP,  /* *stop became non-zero: leave guest code */
    EMU_EXIT_HLT,   /* HLT executed (state->halted is set) */
    EMU_EXIT_ERROR, /* unknown opcode, fault with no handler, ...;
                            the message is in the error buffer */
};

struct emu_cpu;

struct emu_cpu *emu_cpu_new(const struct emu_bus *bus);
void emu_cpu_free(struct emu_cpu *cpu);
/* What CPUID leaf 1 reports: this vCPU's index and the vCPU count
 * (default 0 and 1). */
void emu_cpu_set_topology(struct emu_cpu *cpu, int index, int count);

/* Run from state until an exit.  state is read at entry and written back
 * at exit, so the caller may inspect or change it between calls.  stop
 * is polled at least every few thousand instructions.  On
 * EMU_EXIT_ERROR, err (errlen bytes) holds one line naming the opcode
 * bytes and EIP.  *icount is increased by the instructions executed. */
enum emu_exit emu_cpu_run(struct emu_cpu *cpu, struct x86_state *state,
                          const atomic_int *stop, uint64_t *icount, char *err,
                          size_t errlen);

/* Forget decoded instructions covering [gpa, gpa+len): used when
 * something other than a guest store changes guest memory (loading a
 * snapshot, an incoming migration, a DMA-like device write). */
void emu_cpu_invalidate(struct emu_cpu *cpu, uint64_t gpa, uint64_t len);

#endif
