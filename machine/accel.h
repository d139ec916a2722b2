/* Accelerators: what runs guest code.  `emu` (machine/emu*.c, the built-in
 * interpreter) and `kvm` (machine/kvm.c) implement the same operations, so
 * the vCPU loop, devices and saved state do not care which one runs. */
#ifndef HOP_MACHINE_ACCEL_H
#define HOP_MACHINE_ACCEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/x86.h"
#include "util/error.h"

/* A range of guest physical memory backed by host memory. */
struct accel_mem_region {
    uint64_t gpa;
    uint64_t size; /* multiple of 4 KiB */
    uint8_t *host;
    /* One bit per 4 KiB page of this region; the accelerator sets bits for
     * pages the guest wrote (emu at once, kvm on sync_dirty). */
    _Atomic unsigned long *dirty;
};

/* Port I/O from the guest; called on the vCPU's thread. */
struct accel_io_ops {
    uint32_t (*pio_in)(void *opaque, uint16_t port, int size);
    void (*pio_out)(void *opaque, uint16_t port, int size, uint32_t val);
    void *opaque;
};

enum accel_exit {
    ACCEL_EXIT_STOP,     /* *stop was set (or a kick arrived) */
    ACCEL_EXIT_HLT,      /* the vCPU halted */
    ACCEL_EXIT_SHUTDOWN, /* triple fault or reset request */
    ACCEL_EXIT_ERROR,    /* err holds one line: what and where (EIP) */
};

struct accel;
struct accel_vcpu;

struct accel_ops {
    const char *name;
    /* Can this accelerator run here?  If not, errp says why. */
    bool (*available)(Error **errp);
    struct accel *(*create)(const struct accel_mem_region *regions,
                            int nregions, const struct accel_io_ops *io,
                            Error **errp);
    void (*destroy)(struct accel *acc);
    struct accel_vcpu *(*vcpu_create)(struct accel *acc, int index,
                                      Error **errp);
    void (*vcpu_destroy)(struct accel_vcpu *vcpu);
    /* Run guest code on the calling thread until *stop is non-zero or the
     * vCPU exits. */
    enum accel_exit (*vcpu_run)(struct accel_vcpu *vcpu, const atomic_int *stop,
                                char *err, size_t errlen);
    /* From another thread, after setting *stop: make vcpu_run return. */
    void (*vcpu_kick)(struct accel_vcpu *vcpu);
    /* Registers; only while the vCPU is not in vcpu_run. */
    bool (*get_state)(struct accel_vcpu *vcpu, struct x86_state *st,
                      Error **errp);
    bool (*set_state)(struct accel_vcpu *vcpu, const struct x86_state *st,
                      Error **errp);
    /* Move the dirty pages the accelerator tracked into the regions'
     * bitmaps (a no-op for emu, which sets them directly). */
    bool (*sync_dirty)(struct accel *acc, Error **errp);
    /* Guest memory changed behind the vCPUs' back (load, DMA). */
    void (*invalidate)(struct accel *acc, uint64_t gpa, uint64_t len);
    /* Instructions executed by this vCPU so far, or 0 if not counted. */
    uint64_t (*icount)(struct accel_vcpu *vcpu);
    /* Optional: the guard every guest store to the RAM region at guest
     * address 0 passes (machine/write-guard.h); NULL where stores are not
     * seen one by one (kvm). */
    struct write_guard *(*write_guard)(struct accel *acc);
};

extern const struct accel_ops accel_emu_ops;
extern const struct accel_ops accel_kvm_ops;

/* "emu" or "kvm"; NULL if unknown. */
const struct accel_ops *accel_find(const char *name);
/* The i-th accelerator's name, or NULL past the end (for completion). */
const char *accel_name(int i);

#endif
