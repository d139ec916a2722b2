/* MC146818 RTC on the VM clock. */
#include "machine/rtc.h"

#include "util/clock.h"

#include <string.h>
#include <time.h>

enum {
    REG_SEC = 0x00,
    REG_MIN = 0x02,
    REG_HOUR = 0x04,
    REG_WDAY = 0x06,
    REG_MDAY = 0x07,
    REG_MON = 0x08,
    REG_YEAR = 0x09,
    REG_A = 0x0a,
    REG_B = 0x0b,
    REG_C = 0x0c,
    REG_D = 0x0d,
    REG_CENTURY = 0x32,
};

#define B_24H 0x02
#define B_BINARY 0x04
#define A_UIP 0x80
#define NS 1000000000ll

int64_t rtc_guest_time_ns(struct rtc *r)
{
    return r->base_epoch_ns + vmclock_get_ns(r->clock);
}

void rtc_init(struct rtc *r, struct vmclock *clock)
{
    memset(r, 0, sizeof(*r));
    r->clock = clock;
    r->base_epoch_ns = clock_real_ns() - vmclock_get_ns(clock);
    r->cmos[REG_A] = 0x26; /* 32.768 kHz, 1024 Hz rate */
    r->cmos[REG_B] = B_24H;
    r->cmos[REG_D] = 0x80; /* battery good */
    r->cmos[0x15] = 0x80;  /* base memory 640 KiB */
    r->cmos[0x16] = 0x02;
}

static uint8_t to_bcd(const struct rtc *r, int v)
{
    if (r->cmos[REG_B] & B_BINARY) {
        return (uint8_t)v;
    }
    return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static int from_bcd(const struct rtc *r, uint8_t v)
{
    if (r->cmos[REG_B] & B_BINARY) {
        return v;
    }
    return (v >> 4) * 10 + (v & 0x0f);
}

static void guest_tm(struct rtc *r, struct tm *tm, int64_t *ns_in_sec)
{
    int64_t ns = rtc_guest_time_ns(r);
    time_t t = (time_t)(ns / NS);
    gmtime_r(&t, tm);
    if (ns_in_sec) {
        *ns_in_sec = ns % NS;
    }
}

static uint8_t hour_reg(const struct rtc *r, int hour)
{
    if (r->cmos[REG_B] & B_24H) {
        return to_bcd(r, hour);
    }
    int h12 = hour % 12 ? hour % 12 : 12;
    return (uint8_t)(to_bcd(r, h12) | (hour >= 12 ? 0x80 : 0));
}

static uint8_t cmos_read(struct rtc *r, uint8_t idx)
{
    struct tm tm;
    int64_t frac;
    switch (idx) {
    case REG_SEC:
    case REG_MIN:
    case REG_HOUR:
    case REG_WDAY:
    case REG_MDAY:
    case REG_MON:
    case REG_YEAR:
    case REG_CENTURY:
        guest_tm(r, &tm, NULL);
        break;
    default:
        break;
    }
    switch (idx) {
    case REG_SEC:
        return to_bcd(r, tm.tm_sec);
    case REG_MIN:
        return to_bcd(r, tm.tm_min);
    case REG_HOUR:
        return hour_reg(r, tm.tm_hour);
    case REG_WDAY:
        return to_bcd(r, tm.tm_wday + 1);
    case REG_MDAY:
        return to_bcd(r, tm.tm_mday);
    case REG_MON:
        return to_bcd(r, tm.tm_mon + 1);
    case REG_YEAR:
        return to_bcd(r, tm.tm_year % 100);
    case REG_CENTURY:
        return to_bcd(r, (tm.tm_year + 1900) / 100);
    case REG_A:
        /* Update in progress during the last 244 us of each second. */
        guest_tm(r, &tm, &frac);
        return (uint8_t)((r->cmos[REG_A] & 0x7f) |
                         (frac >= NS - 244000 ? A_UIP : 0));
    case REG_C: {
        uint8_t v = r->cmos[REG_C];
        r->cmos[REG_C] = 0; /* flags clear on read */
        return v;
    }
    default:
        return r->cmos[idx];
    }
}

/* The guest sets a time field: move the base so that field reads v. */
static void set_time_field(struct rtc *r, uint8_t idx, uint8_t v)
{
    struct tm tm;
    int64_t frac;
    guest_tm(r, &tm, &frac);
    int n = from_bcd(r, v & (idx == REG_HOUR ? 0x7f : 0xff));
    switch (idx) {
    case REG_SEC:
        tm.tm_sec = n;
        break;
    case REG_MIN:
        tm.tm_min = n;
        break;
    case REG_HOUR:
        if (!(r->cmos[REG_B] & B_24H)) {
            n = n % 12 + ((v & 0x80) ? 12 : 0);
        }
        tm.tm_hour = n;
        break;
    case REG_MDAY:
        tm.tm_mday = n;
        break;
    case REG_MON:
        tm.tm_mon = n - 1;
        break;
    case REG_YEAR:
        tm.tm_year = (tm.tm_year / 100) * 100 + n;
        break;
    case REG_CENTURY:
        tm.tm_year = n * 100 + tm.tm_year % 100 - 1900;
        break;
    default:
        return;
    }
    time_t t = timegm(&tm);
    if (t == (time_t)-1) {
        return;
    }
    r->base_epoch_ns = (int64_t)t * NS + frac - vmclock_get_ns(r->clock);
}

static uint32_t rtc_read(void *opaque, uint16_t offset, int size)
{
    struct rtc *r = opaque;
    if (offset == 0) {
        return 0xff; /* the index port is write-only */
    }
    return cmos_read(r, r->index);
}

static void rtc_write(void *opaque, uint16_t offset, int size, uint32_t val)
{
    struct rtc *r = opaque;
    uint8_t v = (uint8_t)val;
    if (offset == 0) {
        r->index = v & 0x7f; /* bit 7 is the NMI mask */
        return;
    }
    switch (r->index) {
    case REG_SEC:
    case REG_MIN:
    case REG_HOUR:
    case REG_MDAY:
    case REG_MON:
    case REG_YEAR:
    case REG_CENTURY:
        set_time_field(r, r->index, v);
        break;
    case REG_WDAY:
        break; /* derived from the date */
    case REG_A:
        r->cmos[REG_A] = v & 0x7f;
        break;
    case REG_C:
    case REG_D:
        break; /* read-only */
    default:
        r->cmos[r->index] = v;
        break;
    }
}

const struct ioport_ops rtc_ioport_ops = { .read = rtc_read,
                                           .write = rtc_write };

static bool rtc_pre_save(void *opaque, Error **errp)
{
    struct rtc *r = opaque;
    r->vm_clock_ns = vmclock_get_ns(r->clock);
    return true;
}

static bool rtc_post_load(void *opaque, int version_id, Error **errp)
{
    struct rtc *r = opaque;
    if (r->vm_clock_ns < 0) {
        error_setg(errp, "mc146818rtc: negative VM clock %lld",
                   (long long)r->vm_clock_ns);
        return false;
    }
    r->index &= 0x7f;
    vmclock_set_ns(r->clock, r->vm_clock_ns);
    return true;
}

static const struct vmstate_field rtc_fields[] = {
    VMSTATE_UINT8(index, struct rtc), VMSTATE_BUFFER(cmos, struct rtc),
    VMSTATE_INT64(base_epoch_ns, struct rtc),
    VMSTATE_INT64(vm_clock_ns, struct rtc), VMSTATE_END_OF_LIST()
};

const struct vmstate_desc vmstate_rtc = {
    .name = "mc146818rtc",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = rtc_pre_save,
    .post_load = rtc_post_load,
    .fields = rtc_fields,
};
