/* HMP handlers: parse nothing (the table did), call the core, print as
 * QEMU's HMP prints. */
#include "monitor/hmp-cmds.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/session.h"
#include "machine/machine.h"
#include "monitor/qmp-cmds.h"
#include "monitor/term.h"
#include "vmstate/stream.h"

#define SESSION(mon) monitor_session(mon)

/* Run a core function; on error print it and return NULL. */
static json_t *call(struct monitor *mon, qmp_fn fn, json_t *args)
{
    Error *err = NULL;
    json_t *r = fn(SESSION(mon), args, &err);
    if (err) {
        mon_report_err(mon, err);
        json_decref(r);
        return NULL;
    }
    return r;
}

static void call_void(struct monitor *mon, qmp_fn fn)
{
    json_decref(call(mon, fn, NULL));
}

HMP(hmp_help)
{
    hmp_print_help(mon, mon_arg_str(args, "name"));
}

HMP(hmp_info_status)
{
    json_t *r = call(mon, qmp_query_status, NULL);
    if (!r) {
        return;
    }
    const char *status = json_string_value(json_object_get(r, "status"));
    if (json_is_true(json_object_get(r, "running"))) {
        mon_printf(mon, "VM status: running\n");
    } else if (strcmp(status, "paused") == 0) {
        mon_printf(mon, "VM status: paused\n");
    } else {
        mon_printf(mon, "VM status: paused (%s)\n", status);
    }
    json_decref(r);
}

HMP(hmp_info_accel)
{
    json_t *r = call(mon, qmp_query_accel, NULL);
    if (r) {
        mon_printf(mon, "accelerator: %s\n",
                   json_string_value(json_object_get(r, "accel")));
        json_decref(r);
    }
}

HMP(hmp_info_version)
{
    json_t *r = call(mon, qmp_query_version, NULL);
    if (r) {
        json_t *q = json_object_get(r, "qemu");
        mon_printf(mon, "%lld.%lld.%lld (%s)\n",
                   json_integer_value(json_object_get(q, "major")),
                   json_integer_value(json_object_get(q, "minor")),
                   json_integer_value(json_object_get(q, "micro")),
                   json_string_value(json_object_get(r, "package")));
        json_decref(r);
    }
}

HMP(hmp_info_name)
{
    json_t *r = call(mon, qmp_query_name, NULL);
    if (r) {
        json_t *name = json_object_get(r, "name");
        if (name) {
            mon_printf(mon, "%s\n", json_string_value(name));
        }
        json_decref(r);
    }
}

HMP(hmp_info_cpus)
{
    json_t *r = call(mon, qmp_query_cpus_fast, NULL);
    size_t i;
    json_t *c;
    json_array_foreach(r, i, c)
    {
        mon_printf(mon, "%c CPU #%lld: thread_id=%lld\n", i == 0 ? '*' : ' ',
                   json_integer_value(json_object_get(c, "cpu-index")),
                   json_integer_value(json_object_get(c, "thread-id")));
    }
    json_decref(r);
}

/* The descriptor flags word as QEMU prints it (the high dword of a
 * segment descriptor, masked to its attribute bits). */
static uint32_t seg_flags(const struct x86_segment *sg)
{
    return (uint32_t)sg->type << 8 | (uint32_t)sg->s << 12 |
        (uint32_t)sg->dpl << 13 | (uint32_t)sg->present << 15 |
        (uint32_t)sg->avl << 20 | (uint32_t)sg->db << 22 |
        (uint32_t)sg->g << 23;
}

static void print_registers(struct monitor *mon, int cpu,
                            const struct x86_state *st)
{
    static const char *const sname[] = { "ES", "CS", "SS", "DS", "FS", "GS" };
    uint32_t f = st->eflags;
    mon_printf(mon, "CPU#%d\n", cpu);
    mon_printf(mon, "EAX=%08x EBX=%08x ECX=%08x EDX=%08x\n", st->regs[R_EAX],
               st->regs[R_EBX], st->regs[R_ECX], st->regs[R_EDX]);
    mon_printf(mon, "ESI=%08x EDI=%08x EBP=%08x ESP=%08x\n", st->regs[R_ESI],
               st->regs[R_EDI], st->regs[R_EBP], st->regs[R_ESP]);
    mon_printf(mon, "EIP=%08x EFL=%08x [%c%c%c%c%c%c%c] CPL=%d HLT=%d\n",
               st->eip, f, f & X86_DF ? 'D' : '-', f & X86_OF ? 'O' : '-',
               f & X86_SF ? 'S' : '-', f & X86_ZF ? 'Z' : '-',
               f & X86_AF ? 'A' : '-', f & X86_PF ? 'P' : '-',
               f & X86_CF ? 'C' : '-', st->seg[S_CS].dpl, st->halted);
    for (int i = 0; i < X86_NR_SREGS; i++) {
        const struct x86_segment *sg = &st->seg[i];
        mon_printf(mon, "%-3s=%04x %08x %08x %08x\n", sname[i], sg->selector,
                   sg->base, sg->limit, seg_flags(sg));
    }
    mon_printf(mon, "GDT=     %08x %08x\n", st->gdt.base, st->gdt.limit);
    mon_printf(mon, "IDT=     %08x %08x\n", st->idt.base, st->idt.limit);
    mon_printf(mon, "CR0=%08x CR2=%08x CR3=%08x CR4=%08x\n", st->cr0, st->cr2,
               st->cr3, st->cr4);
}

HMP(hmp_info_registers)
{
    struct machine *m = session_machine(SESSION(mon));
    int n = machine_smp(m);
    int64_t only = mon_arg_int(args, "cpu", -1);
    if (only >= n) {
        Error *err = NULL;
        error_setg(&err,
                   "info registers: no CPU %" PRId64 " (this machine "
                   "has %d)",
                   only, n);
        mon_report_err(mon, err);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (only >= 0 && i != only) {
            continue;
        }
        struct x86_state st;
        Error *err = NULL;
        if (!machine_get_cpu_state(m, i, &st, &err)) {
            mon_report_err(mon, err);
            return;
        }
        print_registers(mon, i, &st);
    }
}

static void print_size(char *buf, size_t len, uint64_t v)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;
    while (v >= 1024 && v % 1024 == 0 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%" PRIu64 " %s", v, unit[u]);
}

HMP(hmp_info_ramblock)
{
    struct machine_memory *mem = machine_memory(session_machine(SESSION(mon)));
    mon_printf(mon, "%24s %8s  %18s %18s %18s %18s %3s\n", "Block Name",
               "PSize", "Offset", "Used", "Total", "HVA", "RO");
    uint64_t offset = 0;
    for (int i = 0; i < mem->nblocks; i++) {
        struct ram_block *b = mem->blocks[i];
        char psize[32];
        /* The backend's pages: 2 MiB on hugetlb, as QEMU shows. */
        print_size(psize, sizeof(psize), b->map.page_size);
        mon_printf(mon,
                   "%24s %8s  0x%016" PRIx64 " 0x%016" PRIx64 " 0x%016" PRIx64
                   " 0x%016" PRIxPTR " %3s\n",
                   b->name, psize, offset, b->size, b->size, (uintptr_t)b->host,
                   "rw");
        offset += b->size;
    }
}

/* QEMU's layout, then hop's type and page size. */
HMP(hmp_info_memdev)
{
    json_t *r = call(mon, qmp_query_memdev, NULL);
    size_t i;
    json_t *m;
    json_array_foreach(r, i, m)
    {
        bool prealloc = json_is_true(json_object_get(m, "prealloc"));
        bool share = json_is_true(json_object_get(m, "share"));
        mon_printf(mon,
                   "memory backend: %s\n  size:  %" JSON_INTEGER_FORMAT "\n"
                   "  merge: true\n  dump: true\n  prealloc: %s\n"
                   "  share: %s\n  reserve: true\n  policy: default\n"
                   "  host nodes: \n  type: %s\n"
                   "  page size: %" JSON_INTEGER_FORMAT "\n\n",
                   json_string_value(json_object_get(m, "id")),
                   json_integer_value(json_object_get(m, "size")),
                   prealloc ? "true" : "false", share ? "true" : "false",
                   json_string_value(json_object_get(m, "x-hop-type")),
                   json_integer_value(json_object_get(m, "x-hop-page-size")));
    }
    json_decref(r);
}

HMP(hmp_info_block)
{
    const BlockDev *bs = machine_drive(session_machine(SESSION(mon)));
    if (!bs) {
        return;
    }
    mon_printf(mon,
               "ide0-hd0: %s (%s%s)\n    Attached to:      ide0-hd0\n"
               "    Cache mode:       writeback\n",
               bs->filename, blk_format(bs), bs->readonly ? ", read-only" : "");
    struct blk_info info;
    blk_get_info((BlockDev *)bs, &info);
    if (info.backing_file) {
        mon_printf(mon, "    Backing file:     %s (chain depth: %u)\n",
                   info.backing_file, info.backing_depth);
    }
}

HMP(hmp_info_mice)
{
    mon_printf(mon, "* Mouse #0: hop PS/2 Mouse\n");
}

HMP(hmp_info_history)
{
    int n = term_history_count();
    for (int i = 0; i < n; i++) {
        const char *line = term_history_get(i);
        if (line) {
            mon_printf(mon, "%d: '%s'\n", i, line);
        }
    }
}

static void print_qtree_entry(const char *idstr, int instance,
                              const struct vmstate_desc *desc, void *opaque,
                              void *ctx)
{
    struct monitor *mon = ctx;
    mon_printf(mon,
               "  dev: %s, instance %d\n    vmstate \"%s\" version %d "
               "(loads %d..%d)\n",
               idstr, instance, desc->name, desc->version_id,
               desc->minimum_version_id, desc->version_id);
    for (const struct vmstate_desc *const *sp = desc->subsections; sp && *sp;
         sp++) {
        mon_printf(mon, "      subsection \"%s\" version %d\n", (*sp)->name,
                   (*sp)->version_id);
    }
}

HMP(hmp_info_qtree)
{
    struct machine *m = session_machine(SESSION(mon));
    mon_printf(mon, "bus: main-system-bus (%s)\n",
               section_registry_machine(machine_registry(m)));
    section_foreach_vmsd(machine_registry(m), print_qtree_entry, mon);
}

HMP(hmp_stop)
{
    call_void(mon, qmp_stop);
}

HMP(hmp_cont)
{
    call_void(mon, qmp_cont);
}

HMP(hmp_system_reset)
{
    call_void(mon, qmp_system_reset);
}

HMP(hmp_quit)
{
    call_void(mon, qmp_quit);
}

/* One byte as QEMU's 'c' format shows it. */
static void print_char(struct monitor *mon, uint8_t c)
{
    switch (c) {
    case '\'':
        mon_printf(mon, " '\\''");
        break;
    case '\\':
        mon_printf(mon, " '\\\'");
        break;
    case '\n':
        mon_printf(mon, " '\\n'");
        break;
    case '\r':
        mon_printf(mon, " '\\r'");
        break;
    default:
        if (c >= 32 && c <= 126) {
            mon_printf(mon, " '%c'", c);
        } else {
            mon_printf(mon, " '\\x%02x'", c);
        }
        break;
    }
}

/* Prints memory the way QEMU's x/xp do: an address, then 8 bytes' worth
 * of values per line for byte units and 16 bytes' worth otherwise.  Hex
 * is zero-padded; decimal and octal are right-aligned in the width of
 * the largest value; like QEMU, 'd' is signed only for 64-bit units and
 * 'c' shows every byte of count units as a character. */
static void memory_dump(struct monitor *mon, const struct mon_format *fmt,
                        uint64_t addr)
{
    struct machine_memory *mem = machine_memory(session_machine(SESSION(mon)));
    int size = fmt->size;
    int unit = fmt->format == 'c' ? 1 : size;
    uint64_t line_size = size == 1 ? 8 : 16;
    int bits = size * 8;
    int dec_width = (bits * 10 + 32) / 33, oct_width = (bits + 2) / 3;
    uint64_t total = (uint64_t)fmt->count * (uint64_t)size;
    uint8_t buf[16];
    for (uint64_t done = 0; done < total;) {
        uint64_t line_bytes = line_size;
        if (line_bytes > total - done) {
            line_bytes = total - done;
        }
        mon_printf(mon, "%016" PRIx64 ":", addr + done);
        Error *err = NULL;
        if (!memory_read(mem, addr + done, buf, (size_t)line_bytes, &err)) {
            mon_printf(mon, "\n");
            mon_report_err(mon, err);
            return;
        }
        for (uint64_t i = 0; i < line_bytes; i += (uint64_t)unit) {
            uint64_t v = 0;
            memcpy(&v, buf + i, (size_t)unit); /* little-endian guest */
            switch (fmt->format) {
            case 'd':
                mon_printf(mon, " %*" PRId64, dec_width, (int64_t)v);
                break;
            case 'u':
                mon_printf(mon, " %*" PRIu64, dec_width, v);
                break;
            case 'o':
                mon_printf(mon, " %#*" PRIo64, oct_width, v);
                break;
            case 'c':
                print_char(mon, (uint8_t)v);
                break;
            default:
                mon_printf(mon, " 0x%0*" PRIx64, size * 2, v);
                break;
            }
        }
        mon_printf(mon, "\n");
        done += line_bytes;
    }
}

HMP(hmp_x)
{
    memory_dump(mon, mon_arg_fmt(args, "fmt"),
                (uint64_t)mon_arg_int(args, "addr", 0));
}

HMP(hmp_xp)
{
    memory_dump(mon, mon_arg_fmt(args, "fmt"),
                (uint64_t)mon_arg_int(args, "addr", 0));
}

/* Writes size bytes of guest memory from addr to a new file. */
static void memsave(struct monitor *mon, const struct mon_args *args)
{
    struct machine_memory *mem = machine_memory(session_machine(SESSION(mon)));
    uint64_t addr = (uint64_t)mon_arg_int(args, "val", 0);
    uint64_t size = (uint64_t)mon_arg_int(args, "size", 0);
    const char *path = mon_arg_str(args, "filename");
    Error *err = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        error_setg_errno(&err, errno, "could not open '%s'", path);
        mon_report_err(mon, err);
        return;
    }
    static uint8_t chunk[1 << 20];
    for (uint64_t done = 0; done < size;) {
        size_t n =
            size - done < sizeof(chunk) ? (size_t)(size - done) : sizeof(chunk);
        if (!memory_read(mem, addr + done, chunk, n, &err)) {
            break;
        }
        if (write(fd, chunk, n) != (ssize_t)n) {
            error_setg_errno(&err, errno, "could not write '%s'", path);
            break;
        }
        done += n;
    }
    if (close(fd) < 0 && !err) {
        error_setg_errno(&err, errno, "could not write '%s'", path);
    }
    if (err) {
        unlink(path);
        mon_report_err(mon, err);
    }
}

HMP(hmp_memsave)
{
    memsave(mon, args);
}

HMP(hmp_pmemsave)
{
    memsave(mon, args);
}

HMP(hmp_sendkey)
{
    Error *err = NULL;
    if (!machine_sendkey(session_machine(SESSION(mon)),
                         mon_arg_str(args, "keys"), &err)) {
        mon_report_err(mon, err);
    }
}

HMP(hmp_mouse_move)
{
    machine_mouse_move(
        session_machine(SESSION(mon)), (int)mon_arg_int(args, "dx", 0),
        (int)mon_arg_int(args, "dy", 0), (int)mon_arg_int(args, "dz", 0));
}

HMP(hmp_mouse_button)
{
    machine_mouse_button(session_machine(SESSION(mon)),
                         (unsigned)mon_arg_int(args, "state", 0));
}
