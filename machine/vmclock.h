/* The VM clock: nanoseconds the machine has spent running.  It stands
 * still while the machine is stopped and is carried across saves (by the
 * RTC's saved state), so guest time never jumps over a pause. */
#ifndef HOP_MACHINE_VMCLOCK_H
#define HOP_MACHINE_VMCLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vmclock {
    pthread_mutex_t lock;
    int64_t base_ns;    /* value accumulated up to the last start */
    int64_t started_at; /* CLOCK_MONOTONIC ns at start, if running */
    bool running;
};

void vmclock_init(struct vmclock *c);
void vmclock_destroy(struct vmclock *c);
int64_t vmclock_get_ns(struct vmclock *c);
void vmclock_set_ns(struct vmclock *c, int64_t ns);
void vmclock_start(struct vmclock *c);
void vmclock_stop(struct vmclock *c);
/* CLOCK_MONOTONIC and CLOCK_REALTIME in ns. */

#endif
