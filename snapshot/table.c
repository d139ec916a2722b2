/* Snapshot tables in QEMU's layout. */
#include "snapshot/table.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "util/printable.h"

void snapshot_human_size(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
                                         "PiB", "EiB" };
    int i = 0;
    double d = (double)v;
    while (i < 6 && d >= 1000.0) {
        d /= 1024.0;
        i++;
    }
    snprintf(buf, len, "%0.3g %s", d, units[i]);
}

void snapshot_format_date(uint32_t sec, char *buf, size_t len)
{
    time_t t = (time_t)sec;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void snapshot_format_clock(uint64_t ns, char *buf, size_t len)
{
    uint64_t ms = ns / 1000000;
    snprintf(buf, len, "%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 ".%03" PRIu64,
             ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}

void snapshot_table_header(char *buf, size_t len)
{
    snprintf(buf, len, "%-10s%-17s%8s%20s%13s%11s", "ID", "TAG", "VM SIZE",
             "DATE", "VM CLOCK", "ICOUNT");
}

void snapshot_table_row(const struct blk_snapshot *sn, const char *id,
                        char *buf, size_t len)
{
    char size[32], date[32], clock[40], icount[32] = "";
    snapshot_human_size(sn->vm_state_size, size, sizeof(size));
    snapshot_format_date(sn->date_sec, date, sizeof(date));
    snapshot_format_clock(sn->vm_clock_nsec, clock, sizeof(clock));
    if (sn->icount != -1) {
        snprintf(icount, sizeof(icount), "%" PRId64, sn->icount);
    }
    /* Names come from the image: no escape sequences to the terminal. */
    snprintf(buf, len, "%-9s %-16s %8s%20s%13s%11s",
             PRINTABLE(id ? id : sn->id), PRINTABLE(sn->name), size, date,
             clock, icount);
}

json_t *snapshot_info_json(const struct blk_snapshot *sn)
{
    json_t *o = json_object();
    if (sn->icount != -1) {
        json_object_set_new(o, "icount", json_integer(sn->icount));
    }
    json_object_set_new(o, "vm-clock-nsec",
                        json_integer((json_int_t)(sn->vm_clock_nsec %
                                                  1000000000)));
    json_object_set_new(o, "name", json_string(sn->name));
    json_object_set_new(o, "date-sec", json_integer(sn->date_sec));
    json_object_set_new(o, "date-nsec", json_integer(sn->date_nsec));
    json_object_set_new(o, "vm-clock-sec",
                        json_integer((json_int_t)(sn->vm_clock_nsec /
                                                  1000000000)));
    json_object_set_new(o, "id", json_string(sn->id));
    json_object_set_new(o, "vm-state-size",
                        json_integer((json_int_t)sn->vm_state_size));
    return o;
}
