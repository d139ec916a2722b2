/* TEMP stub until branch accel lands */
#ifndef HOP_MACHINE_CPU_VMSTATE_H
#define HOP_MACHINE_CPU_VMSTATE_H
#include "machine/accel.h"
#include "vmstate/vmstate.h"
struct cpu_vmstate_ctx {
    const struct accel_ops *ops;
    struct accel_vcpu *vcpu;
    struct x86_state state;
};
extern const struct vmstate_desc vmstate_x86_cpu;
#endif
