/* Machine assembly, run control and whole-machine save/load. */
#include "machine/machine.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/ata.h"
#include "machine/cpu-vmstate.h"
#include "machine/firmware.h"
#include "machine/ioport.h"
#include "machine/loader.h"
#include "machine/ps2.h"
#include "machine/rtc.h"
#include "machine/vcpu.h"
#include "machine/vmclock.h"
#include "util/parse.h"
#include "util/alloc.h"

struct machine {
    char *name;
    char *guest; /* firmware name or kernel path */
    struct machine_config cfg;
    struct machine_memory *mem;
    const struct accel_ops *ops;
    struct accel *acc;
    struct vcpu_set vcpus;
    struct cpu_vmstate_ctx cpu[VCPU_MAX];
    struct ioport_bus io;
    struct serial serial;
    struct i8042 kbd;
    struct ata ata;
    struct rtc rtc;
    struct vmclock clock;
    struct section_registry *reg;
    uint8_t *image; /* kernel bytes, kept for reset */
    size_t image_size;
    bool image_owned;
    struct loader_result boot;

    pthread_mutex_t lock; /* run state and last_error */
    enum run_state state;
    char last_error[320];
    const char *ram_given_away; /* why, see machine_give_away_ram */
    runstate_notify_fn notify;
    void *notify_opaque;
};

static void report(struct machine *m, const char *msg)
{
    if (m->cfg.report) {
        m->cfg.report(m->cfg.opaque, msg);
    } else {
        fprintf(stderr, "hop: %s\n", msg);
    }
}

static void device_report(void *opaque, const char *msg)
{
    report(opaque, msg);
}

static uint32_t pio_in(void *opaque, uint16_t port, int size)
{
    struct machine *m = opaque;
    return ioport_read(&m->io, port, size);
}

static void pio_out(void *opaque, uint16_t port, int size, uint32_t val)
{
    struct machine *m = opaque;
    ioport_write(&m->io, port, size, val);
}

/* A vCPU stopped the machine (its thread; every vCPU was asked to stop). */
static void vcpu_exited(void *opaque, int index, enum accel_exit why,
                        const char *msg)
{
    struct machine *m = opaque;
    enum run_state st = why == ACCEL_EXIT_SHUTDOWN ? RUN_STATE_SHUTDOWN
                                                   : RUN_STATE_INTERNAL_ERROR;
    char line[320];
    if (why == ACCEL_EXIT_SHUTDOWN) {
        snprintf(line, sizeof(line), "vCPU %d: guest shutdown", index);
    } else {
        snprintf(line, sizeof(line), "vCPU %d: %s", index,
                 msg && *msg ? msg : "internal error");
    }
    pthread_mutex_lock(&m->lock);
    vmclock_stop(&m->clock);
    bool changed = m->state == RUN_STATE_RUNNING;
    if (changed) {
        m->state = st;
    }
    snprintf(m->last_error, sizeof(m->last_error), "%s", line);
    pthread_mutex_unlock(&m->lock);
    if (changed && m->notify) {
        m->notify(m->notify_opaque, RUN_STATE_RUNNING, st);
    }
    if (why != ACCEL_EXIT_SHUTDOWN) {
        report(m, line);
    }
    if (m->cfg.on_event) {
        m->cfg.on_event(m->cfg.opaque,
                        why == ACCEL_EXIT_SHUTDOWN
                            ? MACHINE_EVENT_SHUTDOWN
                            : MACHINE_EVENT_INTERNAL_ERROR);
    }
}

static bool load_image(struct machine *m, Error **errp)
{
    Error *err = NULL;
    if (!loader_load(m->mem, m->image, m->image_size, m->guest, &m->boot,
                     &err)) {
        error_propagate(errp, err);
        return false;
    }
    return true;
}

static bool reset_cpus(struct machine *m, Error **errp)
{
    for (int i = 0; i < m->vcpus.n; i++) {
        struct x86_state st;
        x86_state_reset_flat(&st, m->boot.entry, MULTIBOOT_BOOT_MAGIC,
                             m->boot.mbi);
        if (!m->ops->set_state(m->vcpus.vcpus[i].av, &st, errp)) {
            return false;
        }
        vcpus_set_halted(&m->vcpus, i, false);
    }
    return true;
}

/* The firmware goes into RAM, unless the RAM may hold a running guest
 * that an incoming migration takes over (the stream brings the rest). */
static bool load_image_at_start(struct machine *m, Error **errp)
{
    const struct ram_block *b = memory_main_block(m->mem);
    if (m->cfg.incoming && b->fd >= 0 && b->map.shared) {
        return true;
    }
    return load_image(m, errp);
}

static void invalidate_all(struct machine *m)
{
    for (int i = 0; i < m->mem->nregions; i++) {
        machine_invalidate(m, m->mem->regions[i].gpa, m->mem->regions[i].size);
    }
}

static bool register_devices(struct machine *m, Error **errp)
{
    struct ioport_bus *io = &m->io;
    if (!ioport_register(io, SERIAL_COM1_BASE, 8, "serial", &serial_ioport_ops,
                         &m->serial, errp) ||
        !ioport_register(io, PS2_DATA_PORT, 1, "i8042", &i8042_data_ops,
                         &m->kbd, errp) ||
        !ioport_register(io, PS2_STATUS_PORT, 1, "i8042", &i8042_cmd_ops,
                         &m->kbd, errp) ||
        !ioport_register(io, ATA_PRIMARY_BASE, 8, "ata", &ata_ioport_ops,
                         &m->ata, errp) ||
        !ioport_register(io, ATA_PRIMARY_CTRL, 1, "ata", &ata_ctrl_ops, &m->ata,
                         errp) ||
        !ioport_register(io, RTC_BASE_PORT, 2, "mc146818rtc", &rtc_ioport_ops,
                         &m->rtc, errp)) {
        return false;
    }
    struct section_registry *r = m->reg;
    for (int i = 0; i < m->vcpus.n; i++) {
        if (section_register_vmsd(r, "cpu", i, &vmstate_x86_cpu, &m->cpu[i],
                                  errp) < 0) {
            return false;
        }
    }
    return section_register_vmsd(r, "serial", 0, &vmstate_serial, &m->serial,
                                 errp) >= 0 &&
        section_register_vmsd(r, "pckbd", 0, &vmstate_i8042, &m->kbd, errp) >=
        0 &&
        section_register_vmsd(r, "ps2kbd", 0, &vmstate_ps2_kbd, &m->kbd.kbd,
                              errp) >= 0 &&
        section_register_vmsd(r, "ps2mouse", 0, &vmstate_ps2_mouse,
                              &m->kbd.mouse, errp) >= 0 &&
        section_register_vmsd(r, "ata", 0, &vmstate_ata, &m->ata, errp) >= 0 &&
        section_register_vmsd(r, "mc146818rtc", 0, &vmstate_rtc, &m->rtc,
                              errp) >= 0;
}

static bool choose_image(struct machine *m, const struct machine_config *cfg,
                         Error **errp)
{
    if (cfg->kernel) {
        m->guest = xstrdup(cfg->kernel);
        if (!loader_read_file(cfg->kernel, memory_below_4g(m->mem), &m->image,
                              &m->image_size, errp)) {
            return false;
        }
        m->image_owned = true;
        return true;
    }
    const char *name = cfg->guest ? cfg->guest : "memtest";
    const struct firmware_image *fw = firmware_find(name);
    if (!fw) {
        error_setg(errp, "unknown guest '%s' (built in: %s)", name,
                   firmware_names());
        return false;
    }
    m->guest = xstrdup(name);
    m->image = (uint8_t *)fw->data;
    m->image_size = fw->size;
    return true;
}

struct machine *machine_new(const struct machine_config *cfg, Error **errp)
{
    struct machine *m = xcalloc(1, sizeof(*m));
    m->cfg = *cfg;
    m->cfg.ram_size = cfg->ram_size ? cfg->ram_size : MACHINE_DEFAULT_RAM;
    m->cfg.smp = cfg->smp ? cfg->smp : 1;
    m->name = cfg->name ? xstrdup(cfg->name) : NULL;
    /* Strings the caller owns are not kept. */
    m->cfg.name = m->name;
    m->cfg.accel = NULL;
    m->cfg.guest = NULL;
    m->cfg.kernel = NULL;
    pthread_mutex_init(&m->lock, NULL);
    vmclock_init(&m->clock);
    ioport_bus_init(&m->io);
    m->io.report = device_report;
    m->io.report_opaque = m;
    m->state = RUN_STATE_PRELAUNCH;

    const char *accel = cfg->accel ? cfg->accel : "emu";
    m->ops = accel_find(accel);
    if (!m->ops) {
        error_setg(errp, "unknown accelerator '%s' (emu or kvm)", accel);
        goto fail;
    }
    if (m->cfg.smp < 1 || m->cfg.smp > MACHINE_MAX_SMP) {
        error_setg(errp, "-smp %d: must be 1 to %d", m->cfg.smp,
                   MACHINE_MAX_SMP);
        goto fail;
    }
    if (m->cfg.ram_size > MACHINE_MAX_RAM) {
        error_setg(errp, "RAM size %llu MiB exceeds the maximum of %llu MiB",
                   (unsigned long long)(m->cfg.ram_size >> 20),
                   (unsigned long long)(MACHINE_MAX_RAM >> 20));
        goto fail;
    }
    if (!m->ops->available(errp)) {
        goto fail;
    }
    struct mem_backend anon;
    const struct mem_backend *backend = cfg->ram_backend;
    if (!backend && cfg->mem_prealloc) {
        mem_backend_default(&anon, m->cfg.ram_size);
        anon.prealloc = true;
        backend = &anon;
    }
    m->mem = memory_new(m->cfg.ram_size, backend, errp);
    if (!m->mem) {
        goto fail;
    }
    if (!choose_image(m, cfg, errp)) {
        goto fail;
    }
    struct accel_io_ops io = { .pio_in = pio_in,
                               .pio_out = pio_out,
                               .opaque = m };
    m->acc = m->ops->create(m->mem->regions, m->mem->nregions, &io, errp);
    if (!m->acc) {
        goto fail;
    }
    if (!vcpus_init(&m->vcpus, m->ops, m->acc, m->cfg.smp, vcpu_exited, m,
                    errp)) {
        goto fail;
    }
    for (int i = 0; i < m->vcpus.n; i++) {
        m->cpu[i].ops = m->ops;
        m->cpu[i].vcpu = m->vcpus.vcpus[i].av;
    }
    serial_init(&m->serial, &cfg->serial);
    i8042_init(&m->kbd);
    ata_init(&m->ata, cfg->drive);
    m->ata.report = device_report;
    m->ata.report_opaque = m;
    rtc_init(&m->rtc, &m->clock);
    m->reg = section_registry_new(MACHINE_TYPE);
    if (!register_devices(m, errp) || !load_image_at_start(m, errp) ||
        !reset_cpus(m, errp)) {
        goto fail;
    }
    return m;
fail:
    machine_free(m);
    return NULL;
}

void machine_free(struct machine *m)
{
    if (!m) {
        return;
    }
    vcpus_destroy(&m->vcpus);
    if (m->acc) {
        m->ops->destroy(m->acc);
    }
    if (m->reg) {
        section_registry_free(m->reg);
    }
    memory_free(m->mem);
    if (m->image_owned) {
        free(m->image);
    }
    ioport_bus_destroy(&m->io);
    vmclock_destroy(&m->clock);
    pthread_mutex_destroy(&m->lock);
    free(m->guest);
    free(m->name);
    free(m);
}

static bool set_state_locked(struct machine *m, enum run_state st, Error **errp)
{
    if (!runstate_transition_allowed(m->state, st)) {
        error_setg(errp, "cannot change run state from %s to %s",
                   runstate_name(m->state), runstate_name(st));
        return false;
    }
    m->state = st;
    return true;
}

void machine_give_away_ram(struct machine *m, const char *why)
{
    pthread_mutex_lock(&m->lock);
    m->ram_given_away = why;
    pthread_mutex_unlock(&m->lock);
}

bool machine_owns_ram(struct machine *m, const char *what, Error **errp)
{
    pthread_mutex_lock(&m->lock);
    const char *why = m->ram_given_away;
    pthread_mutex_unlock(&m->lock);
    if (why) {
        error_setg(errp, "cannot %s: %s", what, why);
    }
    return !why;
}

static bool start(struct machine *m, bool incoming_done, Error **errp)
{
    if (!machine_owns_ram(m, "run the machine", errp)) {
        return false;
    }
    pthread_mutex_lock(&m->lock);
    if (m->state == RUN_STATE_RUNNING) {
        pthread_mutex_unlock(&m->lock);
        return true;
    }
    if (m->state == RUN_STATE_INMIGRATE && !incoming_done) {
        error_setg(errp, "the machine is waiting for an incoming migration");
        pthread_mutex_unlock(&m->lock);
        return false;
    }
    enum run_state from = m->state;
    bool ok = set_state_locked(m, RUN_STATE_RUNNING, errp);
    if (ok) {
        vmclock_start(&m->clock);
    }
    pthread_mutex_unlock(&m->lock);
    if (!ok) {
        return false;
    }
    /* Told before the vCPUs go, as QEMU's RESUME: once they run, this
     * thread may wait for a CPU (on a small host, behind the vCPUs and an
     * incoming postcopy's pages) and the event would come late. */
    if (m->notify) {
        m->notify(m->notify_opaque, from, RUN_STATE_RUNNING);
    }
    pthread_mutex_lock(&m->lock);
    if (m->state == RUN_STATE_RUNNING) { /* else stopped meanwhile */
        vcpus_start(&m->vcpus);
    }
    pthread_mutex_unlock(&m->lock);
    return true;
}

bool vm_start(struct machine *m, Error **errp)
{
    return start(m, false, errp);
}

bool vm_start_after_incoming(struct machine *m, Error **errp)
{
    return start(m, true, errp);
}

bool vm_stop(struct machine *m, enum run_state st, Error **errp)
{
    if (st == RUN_STATE_RUNNING) {
        error_setg(errp, "vm_stop: 'running' is not a stopped state");
        return false;
    }
    pthread_mutex_lock(&m->lock);
    if (!runstate_transition_allowed(m->state, st)) {
        error_setg(errp, "cannot stop: run state %s does not lead to %s",
                   runstate_name(m->state), runstate_name(st));
        pthread_mutex_unlock(&m->lock);
        return false;
    }
    /* A vCPU that fails now waits for this lock before it reports. */
    vcpus_stop(&m->vcpus);
    vmclock_stop(&m->clock);
    enum run_state from = m->state;
    m->state = st;
    pthread_mutex_unlock(&m->lock);
    if (m->notify && from != st) {
        m->notify(m->notify_opaque, from, st);
    }
    return true;
}

void machine_set_runstate_notify(struct machine *m, runstate_notify_fn fn,
                                 void *opaque)
{
    m->notify = fn;
    m->notify_opaque = opaque;
}

void machine_set_throttle(struct machine *m, int pct)
{
    vcpus_set_throttle(&m->vcpus, pct);
}

int machine_vcpu_thread_id(struct machine *m, int index)
{
    if (index < 0 || index >= m->vcpus.n) {
        return 0;
    }
    return atomic_load(&m->vcpus.vcpus[index].tid);
}

BlockDev *machine_drive(struct machine *m)
{
    return m->cfg.drive;
}

enum run_state machine_runstate(struct machine *m)
{
    pthread_mutex_lock(&m->lock);
    enum run_state st = m->state;
    pthread_mutex_unlock(&m->lock);
    return st;
}

bool machine_set_runstate(struct machine *m, enum run_state st, Error **errp)
{
    if (st == RUN_STATE_RUNNING) {
        return vm_start(m, errp);
    }
    return vm_stop(m, st, errp);
}

static bool require_stopped(struct machine *m, const char *what, Error **errp)
{
    if (machine_runstate(m) == RUN_STATE_RUNNING) {
        error_setg(errp, "%s: the machine must be stopped first", what);
        return false;
    }
    return true;
}

bool machine_reset(struct machine *m, Error **errp)
{
    if (!machine_owns_ram(m, "reset the machine", errp)) {
        return false;
    }
    bool running = machine_runstate(m) == RUN_STATE_RUNNING;
    if (running) {
        vcpus_stop(&m->vcpus);
    }
    pthread_mutex_lock(&m->io.lock);
    serial_reset(&m->serial);
    i8042_reset(&m->kbd);
    ata_reset(&m->ata);
    pthread_mutex_unlock(&m->io.lock);
    bool ok = load_image(m, errp) && reset_cpus(m, errp);
    invalidate_all(m);
    if (running) {
        vcpus_start(&m->vcpus);
    }
    return ok;
}

bool machine_save(struct machine *m, Channel *f, Error **errp)
{
    if (!require_stopped(m, "save", errp)) {
        return false;
    }
    pthread_mutex_lock(&m->io.lock);
    bool ok = stream_save_all(m->reg, f, errp);
    pthread_mutex_unlock(&m->io.lock);
    return ok;
}

bool machine_load(struct machine *m, Channel *f, Error **errp)
{
    if (!require_stopped(m, "load", errp) ||
        !machine_owns_ram(m, "load a machine state", errp)) {
        return false;
    }
    pthread_mutex_lock(&m->io.lock);
    bool ok = stream_load(m->reg, f, NULL, errp);
    pthread_mutex_unlock(&m->io.lock);
    /* RAM changed under the emulator's decoded instructions. */
    invalidate_all(m);
    if (ok) {
        for (int i = 0; i < m->vcpus.n; i++) {
            vcpus_set_halted(&m->vcpus, i, m->cpu[i].state.halted);
        }
    }
    return ok;
}

struct section_registry *machine_registry(struct machine *m)
{
    return m->reg;
}

struct machine_memory *machine_memory(struct machine *m)
{
    return m->mem;
}

const struct accel_ops *machine_accel_ops(struct machine *m)
{
    return m->ops;
}

struct accel *machine_accel(struct machine *m)
{
    return m->acc;
}

struct write_guard *machine_write_guard(struct machine *m)
{
    return m->ops->write_guard ? m->ops->write_guard(m->acc) : NULL;
}

const char *machine_accel_name(struct machine *m)
{
    return m->ops->name;
}

const char *machine_name(struct machine *m)
{
    return m->name;
}

const char *machine_guest_name(struct machine *m)
{
    return m->guest;
}

int machine_smp(struct machine *m)
{
    return m->vcpus.n;
}

uint64_t machine_ram_size(struct machine *m)
{
    return m->mem->ram_size;
}

struct serial *machine_serial(struct machine *m)
{
    return &m->serial;
}

struct i8042 *machine_i8042(struct machine *m)
{
    return &m->kbd;
}

struct ata *machine_ata(struct machine *m)
{
    return &m->ata;
}

struct rtc *machine_rtc(struct machine *m)
{
    return &m->rtc;
}

static bool check_index(struct machine *m, int index, Error **errp)
{
    if (index < 0 || index >= m->vcpus.n) {
        error_setg(errp, "no vCPU %d (the machine has %d)", index, m->vcpus.n);
        return false;
    }
    return true;
}

bool machine_get_cpu_state(struct machine *m, int index, struct x86_state *st,
                           Error **errp)
{
    if (!check_index(m, index, errp)) {
        return false;
    }
    /* A running machine is paused for the read only: its run state and
     * clock are untouched (QEMU's `info registers` works while running). */
    pthread_mutex_lock(&m->lock);
    bool running = m->state == RUN_STATE_RUNNING;
    if (running) {
        vcpus_stop(&m->vcpus);
    }
    bool ok = m->ops->get_state(m->vcpus.vcpus[index].av, st, errp);
    if (running) {
        vcpus_start(&m->vcpus);
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}

bool machine_set_cpu_state(struct machine *m, int index,
                           const struct x86_state *st, Error **errp)
{
    if (!check_index(m, index, errp) ||
        !require_stopped(m, "writing registers", errp)) {
        return false;
    }
    if (!m->ops->set_state(m->vcpus.vcpus[index].av, st, errp)) {
        return false;
    }
    vcpus_set_halted(&m->vcpus, index, st->halted);
    return true;
}

bool machine_sync_dirty(struct machine *m, Error **errp)
{
    return memory_sync_dirty(m->mem, m->ops, m->acc, errp);
}

void machine_invalidate(struct machine *m, uint64_t gpa, uint64_t len)
{
    if (m->ops->invalidate) {
        m->ops->invalidate(m->acc, gpa, len);
    }
}

int64_t machine_vm_clock_ns(struct machine *m)
{
    return vmclock_get_ns(&m->clock);
}

uint64_t machine_icount(struct machine *m)
{
    return vcpus_icount(&m->vcpus);
}

const char *machine_last_error(struct machine *m)
{
    return m->last_error;
}

bool machine_sendkey(struct machine *m, const char *keys, Error **errp)
{
    pthread_mutex_lock(&m->io.lock);
    bool ok = ps2_sendkey(&m->kbd, keys, errp);
    pthread_mutex_unlock(&m->io.lock);
    return ok;
}

void machine_mouse_move(struct machine *m, int dx, int dy, int dz)
{
    pthread_mutex_lock(&m->io.lock);
    ps2_mouse_move(&m->kbd, dx, dy, dz);
    pthread_mutex_unlock(&m->io.lock);
}

void machine_mouse_button(struct machine *m, unsigned state)
{
    pthread_mutex_lock(&m->io.lock);
    ps2_mouse_button(&m->kbd, state);
    pthread_mutex_unlock(&m->io.lock);
}

size_t machine_serial_input(struct machine *m, const uint8_t *buf, size_t len)
{
    pthread_mutex_lock(&m->io.lock);
    size_t n = serial_receive(&m->serial, buf, len);
    pthread_mutex_unlock(&m->io.lock);
    return n;
}

bool machine_parse_size(const char *s, uint64_t *bytes)
{
    /* As QEMU's -m: a plain number is MiB. */
    return parse_size(s, 1ull << 20, bytes) && *bytes > 0 &&
        *bytes <= 1ull << 50;
}
