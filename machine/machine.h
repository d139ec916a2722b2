/* The machine: RAM, an accelerator with its vCPU threads, the PC devices
 * (COM1 serial, i8042 keyboard/mouse, ATA disk, RTC), the firmware, and
 * the section registry through which all of it is saved and loaded.
 *
 * Threads: the control functions (vm_start, vm_stop, machine_save, ...)
 * are meant for one controlling thread (the monitor or the CLI loop);
 * device injection (sendkey, mouse, serial input) may come from any
 * thread; config callbacks may be called from vCPU threads. */
#ifndef HOP_MACHINE_MACHINE_H
#define HOP_MACHINE_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/block.h"
#include "machine/accel.h"
#include "machine/memory.h"
#include "machine/runstate.h"
#include "machine/serial.h"
#include "util/error.h"
#include "vmstate/channel.h"
#include "vmstate/stream.h"

#define MACHINE_TYPE "hop-pc"
#define MACHINE_DEFAULT_RAM (128ull << 20)
#define MACHINE_MAX_RAM (64ull << 30)
#define MACHINE_MAX_SMP 8

enum machine_event {
    MACHINE_EVENT_SHUTDOWN,       /* the guest powered off / triple fault */
    MACHINE_EVENT_INTERNAL_ERROR, /* a vCPU stopped with an error */
};

struct machine_config {
    uint64_t ram_size; /* 0: MACHINE_DEFAULT_RAM */
    /* Where pc.ram lives (-machine memory-backend=ID); NULL: anonymous
     * memory, populated up front when mem_prealloc. */
    const struct mem_backend *ram_backend;
    bool mem_prealloc;
    /* Waits for an incoming migration (-incoming): RAM on shared memory
     * may be a running guest's (x-ignore-shared, cpr-transfer,
     * cpr-exec), so the firmware is not written into it. */
    bool incoming;
    int smp;                      /* 0: 1 */
    const char *accel;            /* "emu" (NULL) or "kvm" */
    const char *guest;            /* built-in firmware, NULL: memtest */
    const char *kernel;           /* a flat 32-bit binary instead */
    const char *name;             /* -name, may be NULL */
    BlockDev *drive;              /* ATA master; not owned; may be NULL */
    struct serial_backend serial; /* guest serial output (none if unset) */
    /* Reports of bad guest behaviour and vCPU errors, one line each;
     * stderr ("hop: ...") when NULL.  May run on a vCPU thread. */
    void (*report)(void *opaque, const char *msg);
    /* The machine stopped on its own.  May run on a vCPU thread. */
    void (*on_event)(void *opaque, enum machine_event ev);
    void *opaque; /* for report and on_event */
};

struct machine;

/* A machine in run state prelaunch with the firmware loaded. */
struct machine *machine_new(const struct machine_config *cfg, Error **errp);
void machine_free(struct machine *m);

/* Run control.  vm_start: to running.  vm_stop: every vCPU out of guest
 * code, VM clock stopped, then run state st (e.g. paused,
 * finish-migrate); returns when done. */
bool vm_start(struct machine *m, Error **errp);
/* An incoming migration loaded the machine: straight from inmigrate to
 * running, as a waiting client expects (never paused in between). */
bool vm_start_after_incoming(struct machine *m, Error **errp);
bool vm_stop(struct machine *m, enum run_state st, Error **errp);
enum run_state machine_runstate(struct machine *m);
/* Change the run state of a stopped machine (e.g. inmigrate). */
bool machine_set_runstate(struct machine *m, enum run_state st, Error **errp);
/* When the guest's RAM is no longer this machine's (another process
 * maps it and runs the guest, or it was freed as it went), the machine
 * never runs, resets or loads again; why (a string constant) says so in
 * the errors. */
void machine_give_away_ram(struct machine *m, const char *why);
/* false (with an error naming what) once the RAM was given away. */
bool machine_owns_ram(struct machine *m, const char *what, Error **errp);
/* Devices and vCPUs to power-on state, firmware reloaded; the run state
 * is kept (a running machine restarts from the entry). */
bool machine_reset(struct machine *m, Error **errp);

/* Whole-machine state through the section stream (machine stopped).
 * RAM is in it once its owner registered the "ram" section (the ram/
 * layer, ram_register): the machine does not know the RAM wire format. */
bool machine_save(struct machine *m, Channel *f, Error **errp);
bool machine_load(struct machine *m, Channel *f, Error **errp);
struct section_registry *machine_registry(struct machine *m);

/* Parts. */
struct machine_memory *machine_memory(struct machine *m);
const struct accel_ops *machine_accel_ops(struct machine *m);
struct accel *machine_accel(struct machine *m);
const char *machine_accel_name(struct machine *m);
/* The accelerator's write guard over the RAM at guest address 0
 * (machine/write-guard.h), or NULL if it has none. */
struct write_guard *machine_write_guard(struct machine *m);
const char *machine_name(struct machine *m);
const char *machine_guest_name(struct machine *m);
int machine_smp(struct machine *m);
uint64_t machine_ram_size(struct machine *m);
struct serial *machine_serial(struct machine *m);
struct i8042 *machine_i8042(struct machine *m);
struct ata *machine_ata(struct machine *m);
struct rtc *machine_rtc(struct machine *m);

/* vCPU registers (machine stopped). */
bool machine_get_cpu_state(struct machine *m, int index, struct x86_state *st,
                           Error **errp);
bool machine_set_cpu_state(struct machine *m, int index,
                           const struct x86_state *st, Error **errp);
/* Pull the accelerator's dirty log into the RAM block bitmaps (may be
 * called while running). */
bool machine_sync_dirty(struct machine *m, Error **errp);
/* Guest memory changed behind the vCPUs' back (machine stopped). */
void machine_invalidate(struct machine *m, uint64_t gpa, uint64_t len);
int64_t machine_vm_clock_ns(struct machine *m);
uint64_t machine_icount(struct machine *m);
/* The last vCPU error message, "" if none. */
const char *machine_last_error(struct machine *m);

/* Device input, as the monitor's sendkey / mouse_move / mouse_button. */
bool machine_sendkey(struct machine *m, const char *keys, Error **errp);
void machine_mouse_move(struct machine *m, int dx, int dy, int dz);
void machine_mouse_button(struct machine *m, unsigned state);
size_t machine_serial_input(struct machine *m, const uint8_t *buf, size_t len);

/* Auto-converge: the vCPUs sleep pct percent of the time (0: none). */
void machine_set_throttle(struct machine *m, int pct);
/* The host thread id of vCPU index (0 before it started). */
int machine_vcpu_thread_id(struct machine *m, int index);
/* The ATA drive, or NULL. */
BlockDev *machine_drive(struct machine *m);
/* Called after every run state change, with the old and new state (on
 * the thread that changed it). */
typedef void (*runstate_notify_fn)(void *opaque, enum run_state from,
                                   enum run_state to);
void machine_set_runstate_notify(struct machine *m, runstate_notify_fn fn,
                                 void *opaque);

/* "128M", "2G", "512" (MiB), "1048576K": bytes; false on a bad size. */
bool machine_parse_size(const char *s, uint64_t *bytes);

#endif
