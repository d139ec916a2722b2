/* QMP commands on the session's machine, over the core. */
#include "monitor/qmp-cmds.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/machine.h"
#include "monitor/monitor.h"
#include "snapshot/table.h"
#include "vmstate/stream.h"

QMP_FN(qmp_query_status)
{
    enum run_state st = machine_runstate(session_machine(s));
    return json_pack("{s:b,s:b,s:s}", "running", runstate_is_running(st),
                     "singlestep", 0, "status", runstate_name(st));
}

QMP_FN(qmp_query_version)
{
    int major = 0, minor = 0, micro = 0;
    sscanf(HOP_VERSION, "%d.%d.%d", &major, &minor, &micro);
    return json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu", "major", major, "minor",
                     minor, "micro", micro, "package", "hop " HOP_VERSION);
}

QMP_FN(qmp_query_name)
{
    const char *name = machine_name(session_machine(s));
    json_t *r = json_object();
    if (name && *name) {
        json_object_set_new(r, "name", json_string(name));
    }
    return r;
}

QMP_FN(qmp_query_accel)
{
    return json_pack("{s:s}", "accel", machine_accel_name(session_machine(s)));
}

/* As QEMU's: present says KVM is built in (it always is), enabled that
 * it runs this machine. */
QMP_FN(qmp_query_kvm)
{
    bool kvm = strcmp(machine_accel_name(session_machine(s)), "kvm") == 0;
    return json_pack("{s:b,s:b}", "enabled", kvm, "present", 1);
}

/* All zeros when the machine has none, as QEMU answers. */
QMP_FN(qmp_query_uuid)
{
    uint8_t u[16] = { 0 };
    section_registry_uuid(machine_registry(session_machine(s)), u);
    char text[37];
    snprintf(text, sizeof(text),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
             u[11], u[12], u[13], u[14], u[15]);
    return json_pack("{s:s}", "UUID", text);
}

/* Guest RAM's memory backends as QEMU's Memdev list, with hop's type
 * and page size beside QEMU's members. */
QMP_FN(qmp_query_memdev)
{
    struct machine_memory *mem = machine_memory(session_machine(s));
    json_t *list = json_array();
    for (int i = 0; i < mem->nblocks; i++) {
        const struct ram_block *b = mem->blocks[i];
        json_array_append_new(
            list,
            json_pack("{s:s,s:I,s:b,s:b,s:b,s:b,s:b,s:[],s:s,s:s,s:I}", "id",
                      b->backend_id, "size", (json_int_t)b->size, "merge", 1,
                      "dump", 1, "prealloc", b->map.prealloc, "share",
                      b->map.shared, "reserve", 1, "host-nodes", "policy",
                      "default", "x-hop-type", mem_backend_type_name(b->kind),
                      "x-hop-page-size", (json_int_t)b->map.page_size));
    }
    return list;
}

/* One drive as QEMU's BlockInfo: the parts hop has.  A drive handed over
 * to a migration's destination (inactive) has no metadata open: its
 * image shows no size or snapshots until it is taken back. */
static json_t *block_info(const struct snapshot_drive *d)
{
    BlockDev *bs = d->bs;
    struct blk_snapshot *snaps = NULL;
    size_t n = 0;
    if (!blk_is_inactive(bs) && strcmp(blk_format(bs), "qcow2") == 0 &&
        !blk_snapshot_list(bs, &snaps, &n, NULL)) {
        n = 0;
    }
    json_t *image = image_info_json(bs, bs->filename, snaps, n);
    blk_snapshot_list_free(snaps, n);
    struct blk_info info;
    blk_get_info(bs, &info);
    json_t *inserted =
        json_pack("{s:s,s:b,s:s,s:b,s:i,s:b,s:{s:b,s:b,s:b},s:o}", "file",
                  bs->filename, "ro", bs->readonly, "drv", blk_format(bs),
                  "encrypted", 0, "backing_file_depth", (int)info.backing_depth,
                  "active", !blk_is_inactive(bs), "cache", "writeback", 1,
                  "direct", 0, "no-flush", 0, "image", image);
    if (info.backing_file) {
        json_object_set_new(inserted, "backing_file",
                            json_string(info.backing_file));
    }
    return json_pack("{s:s,s:s,s:b,s:b,s:o}", "device", d->name, "type",
                     "unknown", "removable", 0, "locked", 0, "inserted",
                     inserted);
}

QMP_FN(qmp_query_block)
{
    size_t n;
    const struct snapshot_drive *drives = session_drives(s, &n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(list, block_info(&drives[i]));
    }
    return list;
}

QMP_FN(qmp_stop)
{
    return session_stop(s, errp) ? json_object() : NULL;
}

QMP_FN(qmp_cont)
{
    return session_cont(s, errp) ? json_object() : NULL;
}

QMP_FN(qmp_system_reset)
{
    return session_reset(s, errp) ? json_object() : NULL;
}

QMP_FN(qmp_quit)
{
    session_quit(s);
    return json_object();
}

QMP_FN(qmp_query_cpus_fast)
{
    json_t *list = json_array();
    for (int i = 0; i < machine_smp(session_machine(s)); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/machine/cpu[%d]", i);
        json_array_append_new(
            list,
            json_pack("{s:i,s:s,s:I,s:{s:i,s:i,s:i,s:i},s:s}", "cpu-index", i,
                      "qom-path", path, "thread-id",
                      (json_int_t)machine_vcpu_thread_id(session_machine(s), i),
                      "props", "core-id", 0, "thread-id", 0, "node-id", 0,
                      "socket-id", i, "target", "x86_64"));
    }
    return list;
}

QMP_FN(qmp_human_monitor_command)
{
    const char *line = json_string_value(json_object_get(args, "command-line"));
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    struct monitor *mon = monitor_new(s, f);
    monitor_execute(mon, line);
    monitor_free(mon);
    fclose(f);
    json_t *r = json_string(out ? out : "");
    free(out);
    return r;
}
