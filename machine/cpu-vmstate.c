/* The saved CPU state as VMState tables (see cpu-vmstate.h). */
#include "machine/cpu-vmstate.h"

static const struct vmstate_desc vmstate_x86_segment = {
    .name = "x86_segment",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields =
        (const struct vmstate_field[]){
            VMSTATE_UINT16(selector, struct x86_segment),
            VMSTATE_UINT32(base, struct x86_segment),
            VMSTATE_UINT32(limit, struct x86_segment),
            VMSTATE_UINT8(type, struct x86_segment),
            VMSTATE_UINT8(s, struct x86_segment),
            VMSTATE_UINT8(dpl, struct x86_segment),
            VMSTATE_UINT8(present, struct x86_segment),
            VMSTATE_UINT8(avl, struct x86_segment),
            VMSTATE_UINT8(db, struct x86_segment),
            VMSTATE_UINT8(g, struct x86_segment), VMSTATE_END_OF_LIST() },
};

static const struct vmstate_desc vmstate_x86_dtable = {
    .name = "x86_dtable",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields =
        (const struct vmstate_field[]){
            VMSTATE_UINT32(base, struct x86_dtable),
            VMSTATE_UINT16(limit, struct x86_dtable), VMSTATE_END_OF_LIST() },
};

/* A running vCPU (the usual case) sends no halted flag at all; a loader
 * that finds no subsection leaves the vCPU running (see cpu_pre_load). */
static bool halted_needed(void *opaque)
{
    const struct x86_state *st = opaque;
    return st->halted;
}

static const struct vmstate_desc vmstate_x86_halted = {
    .name = "x86_state/halted",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = halted_needed,
    .fields =
        (const struct vmstate_field[]){ VMSTATE_BOOL(halted, struct x86_state),
                                        VMSTATE_END_OF_LIST() },
};

static const struct vmstate_desc vmstate_x86_state = {
    .name = "x86_state",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields =
        (const struct vmstate_field[]){
            VMSTATE_UINT32_ARRAY(regs, struct x86_state, X86_NR_REGS),
            VMSTATE_UINT32(eip, struct x86_state),
            VMSTATE_UINT32(eflags, struct x86_state),
            VMSTATE_STRUCT_ARRAY(seg, struct x86_state, X86_NR_SREGS, 1,
                                 vmstate_x86_segment, struct x86_segment),
            VMSTATE_STRUCT(gdt, struct x86_state, 1, vmstate_x86_dtable,
                           struct x86_dtable),
            VMSTATE_STRUCT(idt, struct x86_state, 1, vmstate_x86_dtable,
                           struct x86_dtable),
            VMSTATE_UINT32(cr0, struct x86_state),
            VMSTATE_UINT32(cr2, struct x86_state),
            VMSTATE_UINT32(cr3, struct x86_state),
            VMSTATE_UINT32(cr4, struct x86_state), VMSTATE_END_OF_LIST() },
    .subsections =
        (const struct vmstate_desc *const[]){ &vmstate_x86_halted, NULL },
};

static bool cpu_pre_save(void *opaque, Error **errp)
{
    struct cpu_vmstate_ctx *ctx = opaque;
    if (!ctx->ops)
        return true;
    return ctx->ops->get_state(ctx->vcpu, &ctx->state, errp);
}

static bool cpu_pre_load(void *opaque, Error **errp)
{
    struct cpu_vmstate_ctx *ctx = opaque;
    ctx->state.halted = false; /* unless the subsection says so */
    return true;
}

static bool cpu_post_load(void *opaque, int version_id, Error **errp)
{
    struct cpu_vmstate_ctx *ctx = opaque;
    if (!ctx->ops)
        return true;
    return ctx->ops->set_state(ctx->vcpu, &ctx->state, errp);
}

const struct vmstate_desc vmstate_x86_cpu = {
    .name = "cpu",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = cpu_pre_save,
    .pre_load = cpu_pre_load,
    .post_load = cpu_post_load,
    .fields =
        (const struct vmstate_field[]){
            VMSTATE_STRUCT(state, struct cpu_vmstate_ctx, 1, vmstate_x86_state,
                           struct x86_state),
            VMSTATE_END_OF_LIST() },
};
