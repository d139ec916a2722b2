/* vCPU threads: one per vCPU, each running guest code through the
 * accelerator while the set is started, and parked (out of guest code)
 * while it is stopped.  vcpus_stop() returns only when every vCPU has
 * left guest code. */
#ifndef HOP_MACHINE_VCPU_H
#define HOP_MACHINE_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "machine/accel.h"
#include "util/error.h"

#define VCPU_MAX 8

struct vcpu_set;

struct vcpu {
    struct vcpu_set *set;
    int index;
    struct accel_vcpu *av;
    pthread_t thread;
    bool thread_started;
    atomic_int stop;   /* polled by the accelerator */
    bool in_guest;     /* inside vcpu_run (under set->lock) */
    bool halted;       /* parked in HLT until its state changes */
    uint64_t exits;    /* vcpu_run returns, for statistics */
    int throttle_kick; /* stopped by the throttle, not for good */
    atomic_int tid;    /* the thread's id, for info cpus */
};

/* Why a vCPU stopped on its own; called on the vCPU's thread after every
 * vCPU of the set was asked to stop (the set is no longer started). */
typedef void (*vcpu_exit_fn)(void *opaque, int index, enum accel_exit why,
                             const char *msg);

struct vcpu_set {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool started; /* vCPUs may run guest code */
    bool quit;
    int n;
    struct vcpu vcpus[VCPU_MAX];
    const struct accel_ops *ops;
    vcpu_exit_fn on_exit;
    void *opaque;
    /* Auto-converge: vCPUs sleep this share of the time (0..99). */
    atomic_int throttle_pct;
    pthread_t throttle_thread;
    bool throttle_started;
};

/* Create n accelerator vCPUs and their threads (parked). */
bool vcpus_init(struct vcpu_set *set, const struct accel_ops *ops,
                struct accel *acc, int n, vcpu_exit_fn on_exit, void *opaque,
                Error **errp);
/* Joins the threads and destroys the accelerator vCPUs. */
void vcpus_destroy(struct vcpu_set *set);
void vcpus_start(struct vcpu_set *set);
/* Ask every vCPU to leave guest code and wait until all have. */
void vcpus_stop(struct vcpu_set *set);
/* Set halted from a loaded or reset state (set stopped). */
void vcpus_set_halted(struct vcpu_set *set, int index, bool halted);
/* Make the vCPUs sleep pct percent of the time (0 = full speed), so a
 * guest that dirties memory fast lets a migration converge. */
void vcpus_set_throttle(struct vcpu_set *set, int pct);
/* Instructions executed by all vCPUs (0 if the accelerator does not
 * count). */
uint64_t vcpus_icount(struct vcpu_set *set);

#endif
