/* The architectural state of one 32-bit x86 vCPU, shared by both
 * accelerators and by the saved CPU state.  Registers follow the x86
 * encoding order so decoders can index them directly. */
#ifndef HOP_MACHINE_X86_H
#define HOP_MACHINE_X86_H

#include <stdbool.h>
#include <stdint.h>

enum x86_reg {
    R_EAX,
    R_ECX,
    R_EDX,
    R_EBX,
    R_ESP,
    R_EBP,
    R_ESI,
    R_EDI,
    X86_NR_REGS
};
enum x86_sreg { S_ES, S_CS, S_SS, S_DS, S_FS, S_GS, X86_NR_SREGS };

/* EFLAGS bits. */
#define X86_CF (1u << 0)
#define X86_PF (1u << 2)
#define X86_AF (1u << 4)
#define X86_ZF (1u << 6)
#define X86_SF (1u << 7)
#define X86_TF (1u << 8)
#define X86_IF (1u << 9)
#define X86_DF (1u << 10)
#define X86_OF (1u << 11)
#define X86_EFLAGS_FIXED 0x2u /* bit 1 always reads as 1 */

struct x86_segment {
    uint16_t selector;
    uint32_t base;
    uint32_t limit; /* byte granular limit, as KVM reports it */
    uint8_t type;   /* descriptor type nibble */
    uint8_t s, dpl, present, avl, db, g;
};

struct x86_dtable {
    uint32_t base;
    uint16_t limit;
};

struct x86_state {
    uint32_t regs[X86_NR_REGS];
    uint32_t eip;
    uint32_t eflags;
    struct x86_segment seg[X86_NR_SREGS];
    struct x86_dtable gdt, idt;
    uint32_t cr0, cr2, cr3, cr4;
    bool halted; /* stopped in HLT, waiting for an event */
};

/* Flat 32-bit protected mode as a multiboot loader leaves it: CS a 4 GiB
 * code segment, data segments 4 GiB writable, EIP at entry, EAX the
 * multiboot magic and EBX the info pointer. */
void x86_state_reset_flat(struct x86_state *st, uint32_t entry, uint32_t eax,
                          uint32_t ebx);

#endif
