/* An MC146818-style real-time clock with CMOS RAM at ports 0x70/0x71.
 * The time it shows is VM time: the wall-clock time when the machine was
 * created plus the VM clock, so it pauses while the machine is stopped
 * and carries on from the saved instant after a load.  Not thread-safe:
 * callers hold the machine's I/O lock. */
#ifndef HOP_MACHINE_RTC_H
#define HOP_MACHINE_RTC_H

#include <stdint.h>

#include "machine/ioport.h"
#include "machine/vmclock.h"
#include "vmstate/vmstate.h"

#define RTC_BASE_PORT 0x70
#define RTC_CMOS_SIZE 128

struct rtc {
    uint8_t index;
    uint8_t cmos[RTC_CMOS_SIZE];
    int64_t base_epoch_ns; /* guest wall time at VM clock 0 */
    int64_t vm_clock_ns;   /* saved VM clock (pre_save/post_load) */
    struct vmclock *clock;
};

extern const struct vmstate_desc vmstate_rtc;
extern const struct ioport_ops rtc_ioport_ops;

/* The guest's clock starts at the host's current time. */
void rtc_init(struct rtc *r, struct vmclock *clock);
/* Guest wall time now, in ns since the epoch. */
int64_t rtc_guest_time_ns(struct rtc *r);

#endif
