/* Snapshot tables in QEMU's layout. */
#include "snapshot/table.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "util/printable.h"

void snapshot_human_size(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = { "B",   "KiB", "MiB", "GiB",
                                         "TiB", "PiB", "EiB" };
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
    json_object_set_new(
        o, "vm-clock-nsec",
        json_integer((json_int_t)(sn->vm_clock_nsec % 1000000000)));
    json_object_set_new(o, "name", json_string(sn->name));
    json_object_set_new(o, "date-sec", json_integer(sn->date_sec));
    json_object_set_new(o, "date-nsec", json_integer(sn->date_nsec));
    json_object_set_new(
        o, "vm-clock-sec",
        json_integer((json_int_t)(sn->vm_clock_nsec / 1000000000)));
    json_object_set_new(o, "id", json_string(sn->id));
    json_object_set_new(o, "vm-state-size",
                        json_integer((json_int_t)sn->vm_state_size));
    return o;
}

json_t *image_info_json(BlockDev *bs, const char *filename,
                        const struct blk_snapshot *snaps, size_t nsnaps)
{
    struct stat st;
    uint64_t actual =
        stat(filename, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
    struct blk_info info;
    blk_get_info(bs, &info);
    json_t *o = json_object();
    if (nsnaps) {
        json_t *arr = json_array();
        for (size_t i = 0; i < nsnaps; i++) {
            json_array_append_new(arr, snapshot_info_json(&snaps[i]));
        }
        json_object_set_new(o, "snapshots", arr);
    }
    json_object_set_new(o, "virtual-size",
                        json_integer((json_int_t)blk_size(bs)));
    json_object_set_new(o, "filename", json_string(filename));
    if (info.cluster_size) {
        json_object_set_new(o, "cluster-size",
                            json_integer((json_int_t)info.cluster_size));
    }
    json_object_set_new(o, "format", json_string(blk_format(bs)));
    json_object_set_new(o, "actual-size", json_integer((json_int_t)actual));
    if (info.backing_file) {
        json_object_set_new(o, "backing-filename",
                            json_string(info.backing_file));
        json_object_set_new(o, "full-backing-filename",
                            json_string(info.full_backing_file));
        if (info.backing_format[0]) {
            json_object_set_new(o, "backing-filename-format",
                                json_string(info.backing_format));
        }
    }
    if (info.compat) {
        json_t *d = json_pack(
            "{s:s,s:s,s:b,s:i,s:b,s:b}", "compat", info.compat,
            "compression-type", info.compression, "lazy-refcounts",
            info.lazy_refcounts, "refcount-bits", (int)info.refcount_bits,
            "corrupt", info.corrupt, "extended-l2", info.extended_l2);
        json_object_set_new(o, "format-specific",
                            json_pack("{s:s,s:o}", "type", "qcow2", "data", d));
    }
    json_object_set_new(o, "dirty-flag", json_boolean(info.dirty));
    return o;
}
