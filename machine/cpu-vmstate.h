/* The saved CPU state: one VMState description for both accelerators, so
 * a machine saved under kvm loads under emu and the other way round.
 *
 * The opaque is a struct cpu_vmstate_ctx per vCPU.  pre_save reads the
 * registers from the accelerator into ctx->state; post_load writes the
 * loaded state back (only while the vCPU is out of vcpu_run). */
#ifndef HOP_MACHINE_CPU_VMSTATE_H
#define HOP_MACHINE_CPU_VMSTATE_H

#include "machine/accel.h"
#include "machine/x86.h"
#include "vmstate/vmstate.h"

struct cpu_vmstate_ctx {
    const struct accel_ops *ops; /* NULL: state only, no accelerator */
    struct accel_vcpu *vcpu;
    struct x86_state state;
};

/* Section "cpu" (instance = vCPU index), version 1:
 *   state: regs[8], eip, eflags, seg[6] {selector, base, limit, type, s,
 *          dpl, present, avl, db, g}, gdt {base, limit}, idt, cr0, cr2,
 *          cr3, cr4; subsection "x86_state/halted" {halted}, sent only
 *          when the vCPU is halted. */
extern const struct vmstate_desc vmstate_x86_cpu;

#endif
