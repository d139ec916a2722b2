/* accel emu: the accel_ops face of the built-in interpreter.
 *
 * The region at guest physical 0 is the interpreter's RAM; a region above
 * 4 GiB (a large machine's high RAM) is accepted but a 32-bit guest
 * cannot reach it.  vcpu_kick does nothing: the interpreter polls the
 * stop flag every few thousand instructions and at every HLT, IN and
 * OUT, so setting *stop is enough to make vcpu_run return promptly. */
#include <stdio.h>
#include <stdlib.h>

#include "machine/accel.h"
#include "machine/emu.h"
#include "machine/write-guard.h"
#include "util/alloc.h"

struct accel {
    struct emu_bus bus;
    struct accel_io_ops io;
    /* Time stamp counter: instructions retired by every vCPU in finished
     * vcpu_run calls (each vCPU adds its own running count). */
    _Atomic uint64_t tsc;
    atomic_int nvcpus;
};

struct accel_vcpu {
    struct accel *acc;
    struct emu_cpu *cpu;
    struct x86_state st;
    uint64_t icount;
    int index;
};

static bool emu_available(Error **errp)
{
    return true;
}

static uint32_t emu_pio_in(void *opaque, uint16_t port, int size)
{
    struct accel *acc = opaque;
    return acc->io.pio_in ? acc->io.pio_in(acc->io.opaque, port, size)
                          : 0xffffffffu;
}

static void emu_pio_out(void *opaque, uint16_t port, int size, uint32_t val)
{
    struct accel *acc = opaque;
    if (acc->io.pio_out)
        acc->io.pio_out(acc->io.opaque, port, size, val);
}

static uint64_t emu_tsc(void *opaque)
{
    struct accel *acc = opaque;
    return atomic_load_explicit(&acc->tsc, memory_order_relaxed);
}

static struct accel *emu_create(const struct accel_mem_region *regions,
                                int nregions, const struct accel_io_ops *io,
                                Error **errp)
{
    const struct accel_mem_region *low = NULL;
    for (int i = 0; i < nregions; i++) {
        if (regions[i].gpa == 0)
            low = &regions[i];
        else if (regions[i].gpa < (1ull << 32)) {
            error_setg(errp,
                       "accel emu: RAM region at 0x%llx: only one "
                       "region below 4 GiB (at 0) is supported",
                       (unsigned long long)regions[i].gpa);
            return NULL;
        }
    }
    if (!low) {
        error_setg(errp, "accel emu: no RAM region at guest address 0");
        return NULL;
    }
    struct accel *acc = xcalloc(1, sizeof(*acc));
    acc->io = *io;
    acc->bus = (struct emu_bus){
        .ram = low->host,
        .ram_size = low->size,
        .dirty = low->dirty,
        .pio_in = emu_pio_in,
        .pio_out = emu_pio_out,
        .opaque = acc,
        .rdtsc = emu_tsc,
    };
    /* A 32-bit guest reaches 4 GiB at most. */
    acc->bus.code =
        emu_code_map_new(low->size < (1ull << 32) ? low->size : 1ull << 32);
    acc->bus.guard = write_guard_new(low->size >> WRITE_GUARD_PAGE_SHIFT);
    return acc;
}

static void emu_destroy(struct accel *acc)
{
    if (!acc)
        return;
    emu_code_map_free(acc->bus.code);
    write_guard_free(acc->bus.guard);
    free(acc);
}

static struct accel_vcpu *emu_vcpu_create(struct accel *acc, int index,
                                          Error **errp)
{
    struct accel_vcpu *v = xcalloc(1, sizeof(*v));
    v->cpu = emu_cpu_new(&acc->bus);
    v->acc = acc;
    v->index = index;
    x86_state_reset_flat(&v->st, 0, 0, 0);
    if (index + 1 > atomic_load(&acc->nvcpus))
        atomic_store(&acc->nvcpus, index + 1);
    return v;
}

static void emu_vcpu_destroy(struct accel_vcpu *v)
{
    if (!v)
        return;
    emu_cpu_free(v->cpu);
    free(v);
}

static enum accel_exit emu_vcpu_run(struct accel_vcpu *v,
                                    const atomic_int *stop, char *err,
                                    size_t errlen)
{
    uint64_t before = v->icount;
    emu_cpu_set_topology(v->cpu, v->index, atomic_load(&v->acc->nvcpus));
    enum emu_exit e =
        emu_cpu_run(v->cpu, &v->st, stop, &v->icount, err, errlen);
    atomic_fetch_add_explicit(&v->acc->tsc, v->icount - before,
                              memory_order_relaxed);
    switch (e) {
    case EMU_EXIT_STOP:
        return ACCEL_EXIT_STOP;
    case EMU_EXIT_HLT:
        return ACCEL_EXIT_HLT;
    default:
        return ACCEL_EXIT_ERROR;
    }
}

static void emu_vcpu_kick(struct accel_vcpu *v)
{
    (void)v; /* the stop flag is polled; see above */
}

static bool emu_get_state(struct accel_vcpu *v, struct x86_state *st,
                          Error **errp)
{
    *st = v->st;
    return true;
}

static bool emu_set_state(struct accel_vcpu *v, const struct x86_state *st,
                          Error **errp)
{
    v->st = *st;
    return true;
}

static bool emu_sync_dirty(struct accel *acc, Error **errp)
{
    return true; /* stores set the bitmap directly */
}

static void emu_invalidate(struct accel *acc, uint64_t gpa, uint64_t len)
{
    emu_code_map_invalidate(acc->bus.code, gpa, len);
}

static uint64_t emu_icount(struct accel_vcpu *v)
{
    return v->icount;
}

static struct write_guard *emu_write_guard(struct accel *acc)
{
    return acc->bus.guard;
}

const struct accel_ops accel_emu_ops = {
    .name = "emu",
    .available = emu_available,
    .create = emu_create,
    .destroy = emu_destroy,
    .vcpu_create = emu_vcpu_create,
    .vcpu_destroy = emu_vcpu_destroy,
    .vcpu_run = emu_vcpu_run,
    .vcpu_kick = emu_vcpu_kick,
    .get_state = emu_get_state,
    .set_state = emu_set_state,
    .sync_dirty = emu_sync_dirty,
    .invalidate = emu_invalidate,
    .icount = emu_icount,
    .write_guard = emu_write_guard,
};
