/* `hop run`: start a machine from QEMU-like options. */

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "cli/cli.h"
#include "core/cpr-keeper.h"
#include "core/session.h"
#include "machine/accel.h"
#include "machine/firmware.h"
#include "machine/machine.h"
#include "machine/memory-backend.h"
#include "monitor/endpoint.h"
#include "monitor/loop.h"
#include "util/alloc.h"
#include "vmstate/stream.h"
#include "util/clock.h"
#include "util/io.h"

struct run_opts {
    uint64_t ram_size;
    int smp;
    const char *accel;
    const char *guest;
    const char *kernel;
    const char *serial;
    const char *name;
    bool start_paused;
    char drive_file[4096];
    char drive_format[16];
    bool drive_attached; /* if=ide */
    bool drive_readonly; /* readonly=on */
    bool have_drive;
    const char *monitor;      /* -monitor, default stdio */
    const char *qmp;          /* -qmp, default none */
    const char *incoming;     /* -incoming URI|defer */
    const char *dump_vmstate; /* -dump-vmstate FILE */
    const char *loadvm;       /* -loadvm TAG */
    const char *catalog;      /* -catalog PATH */
    bool have_uuid;           /* -uuid */
    uint8_t uuid[16];
    bool have_ram_size;                         /* -m given */
    struct mem_backend objects[RAM_MAX_BLOCKS]; /* -object memory-backend-* */
    int nobjects;
    const char *memory_backend;            /* -machine memory-backend=ID */
    const struct mem_backend *ram_backend; /* the one it names */
    bool mem_prealloc;                     /* -mem-prealloc */
    bool cpr_exec;         /* started by cpr-exec (HOP_CPR_STATE) */
    char cpr_incoming[32]; /* then: memfd:N */
};

static const struct cli_command *run_cmd(void)
{
    return cli_find_command("run");
}

const char *const cli_serial_backends[] = { "stdio", "none", "file:", NULL };

static bool serial_backend_ok(const char *v)
{
    for (const char *const *b = cli_serial_backends; *b; b++) {
        size_t n = strlen(*b);
        if ((*b)[n - 1] == ':' ? strncmp(v, *b, n) == 0 && v[n]
                               : strcmp(v, *b) == 0) {
            return true;
        }
    }
    return false;
}

static const char *const drive_formats[] = { "raw", "qcow2", NULL };
static const char *const drive_ifs[] = { "ide", "none", NULL };
static const char *const drive_on_off[] = { "on", "off", NULL };
const struct cli_drive_key cli_drive_keys[] = { { "file", NULL },
                                                { "format", drive_formats },
                                                { "if", drive_ifs },
                                                { "readonly", drive_on_off },
                                                { NULL, NULL } };

/* key=value is one of the table's keys with one of its values. */
static bool drive_value_ok(const char *key, const char *v)
{
    for (const struct cli_drive_key *k = cli_drive_keys; k->key; k++) {
        if (strcmp(k->key, key) != 0) {
            continue;
        }
        if (!k->values) {
            return *v != '\0';
        }
        for (const char *const *w = k->values; *w; w++) {
            if (strcmp(*w, v) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* One key=value of -drive into o; false (after the error) if bad. */
static bool drive_key(struct run_opts *o, char *kv)
{
    char *eq = strchr(kv, '=');
    if (!eq) {
        cli_usage_error(run_cmd(), "-drive: '%s' is not KEY=VALUE", kv);
        return false;
    }
    *eq = '\0';
    const char *v = eq + 1;
    if (!drive_value_ok(kv, v)) {
        cli_usage_error(run_cmd(),
                        "-drive: bad option '%s=%s' (file=PATH, "
                        "format=raw|qcow2, if=ide|none, readonly=on|off)",
                        kv, v);
        return false;
    }
    if (strcmp(kv, "file") == 0) {
        snprintf(o->drive_file, sizeof(o->drive_file), "%s", v);
    } else if (strcmp(kv, "format") == 0) {
        snprintf(o->drive_format, sizeof(o->drive_format), "%s", v);
    } else if (strcmp(kv, "readonly") == 0) {
        o->drive_readonly = strcmp(v, "on") == 0;
    } else {
        o->drive_attached = strcmp(v, "ide") == 0;
    }
    return true;
}

static bool parse_drive(struct run_opts *o, const char *spec)
{
    char *copy = xstrdup(spec);
    char *save = NULL;
    bool ok = true;
    o->drive_attached = true;
    for (char *kv = strtok_r(copy, ",", &save); kv && ok;
         kv = strtok_r(NULL, ",", &save)) {
        ok = drive_key(o, kv);
    }
    if (ok && !o->drive_file[0]) {
        cli_usage_error(run_cmd(), "-drive: file=PATH is required");
        ok = false;
    }
    free(copy);
    return ok;
}

static bool parse_smp(const char *s, int *n)
{
    if (strncmp(s, "cpus=", 5) == 0) {
        s += 5;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > MACHINE_MAX_SMP) {
        return false;
    }
    *n = (int)v;
    return true;
}

/* "f81d4fae-7dec-11d0-a765-00a0c91e6bf6" -> 16 bytes. */
static bool parse_uuid(const char *s, uint8_t out[16])
{
    if (strlen(s) != 36) {
        return false;
    }
    int n = 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return false;
            }
            continue;
        }
        if (!isxdigit((unsigned char)s[i]) ||
            !isxdigit((unsigned char)s[i + 1])) {
            return false;
        }
        char hex[3] = { s[i], s[i + 1], 0 };
        out[n++] = (uint8_t)strtoul(hex, NULL, 16);
        i++;
    }
    return n == 16;
}

/* ---- the options' handlers: each checks and stores one value ---- */

static int opt_ram(const struct cli_command *cmd, const struct cli_option *opt,
                   void *target, const char *v)
{
    struct run_opts *o = target;
    const char *s = strncmp(v, "size=", 5) == 0 ? v + 5 : v;
    if (!machine_parse_size(s, &o->ram_size) || o->ram_size < (2u << 20) ||
        o->ram_size > MACHINE_MAX_RAM) {
        return cli_usage_error(cmd,
                               "-m: bad memory size '%s' (2M to %lluG, "
                               "e.g. 128M or 2G)",
                               v, MACHINE_MAX_RAM >> 30);
    }
    o->ram_size = (o->ram_size + 4095) & ~4095ull;
    o->have_ram_size = true;
    return -1;
}

static int opt_object(const struct cli_command *cmd,
                      const struct cli_option *opt, void *target, const char *v)
{
    struct run_opts *o = target;
    if (o->nobjects == RAM_MAX_BLOCKS) {
        return cli_usage_error(cmd, "-object: at most %d memory backends",
                               RAM_MAX_BLOCKS);
    }
    struct mem_backend *be = &o->objects[o->nobjects];
    Error *err = NULL;
    if (!mem_backend_parse(be, v, &err)) {
        int rc = cli_usage_error(cmd, "%s", error_get_pretty(err));
        error_free(err);
        return rc;
    }
    for (int i = 0; i < o->nobjects; i++) {
        if (strcmp(o->objects[i].id, be->id) == 0) {
            return cli_usage_error(cmd, "-object: duplicate id '%s'", be->id);
        }
    }
    o->nobjects++;
    return -1;
}

static int opt_machine(const struct cli_command *cmd,
                       const struct cli_option *opt, void *target,
                       const char *v)
{
    struct run_opts *o = target;
    static const char key[] = "memory-backend=";
    if (strncmp(v, key, sizeof(key) - 1) != 0 || !v[sizeof(key) - 1] ||
        strchr(v, ',')) {
        return cli_usage_error(cmd,
                               "-machine: '%s' is not memory-backend=ID "
                               "(the only property hop's machine has)",
                               v);
    }
    o->memory_backend = v + sizeof(key) - 1;
    return -1;
}

static int opt_smp(const struct cli_command *cmd, const struct cli_option *opt,
                   void *target, const char *v)
{
    struct run_opts *o = target;
    if (!parse_smp(v, &o->smp)) {
        return cli_usage_error(cmd, "-smp: bad vCPU count '%s' (1 to %d)", v,
                               MACHINE_MAX_SMP);
    }
    return -1;
}

static int opt_accel(const struct cli_command *cmd,
                     const struct cli_option *opt, void *target, const char *v)
{
    struct run_opts *o = target;
    const char *s = strncmp(v, "accel=", 6) == 0 ? v + 6 : v;
    if (!accel_find(s)) {
        return cli_usage_error(cmd,
                               "-accel: unknown accelerator '%s' (emu "
                               "or kvm)",
                               v);
    }
    o->accel = s;
    return -1;
}

static int opt_guest(const struct cli_command *cmd,
                     const struct cli_option *opt, void *target, const char *v)
{
    struct run_opts *o = target;
    if (!firmware_find(v)) {
        return cli_usage_error(cmd,
                               "-guest: unknown guest '%s' (built in: "
                               "%s)",
                               v, firmware_names());
    }
    o->guest = v;
    return -1;
}

static int opt_serial(const struct cli_command *cmd,
                      const struct cli_option *opt, void *target, const char *v)
{
    struct run_opts *o = target;
    if (!serial_backend_ok(v)) {
        return cli_usage_error(cmd,
                               "-serial: bad backend '%s' (stdio, "
                               "file:PATH or none)",
                               v);
    }
    o->serial = v;
    return -1;
}

static int opt_drive(const struct cli_command *cmd,
                     const struct cli_option *opt, void *target, const char *v)
{
    struct run_opts *o = target;
    if (o->have_drive) {
        return cli_usage_error(cmd, "only one -drive is supported");
    }
    if (!parse_drive(o, v)) {
        return EXIT_USAGE;
    }
    o->have_drive = true;
    return -1;
}

static int opt_uuid(const struct cli_command *cmd, const struct cli_option *opt,
                    void *target, const char *v)
{
    struct run_opts *o = target;
    if (!parse_uuid(v, o->uuid)) {
        return cli_usage_error(cmd,
                               "-uuid: '%s' is not a UUID "
                               "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                               v);
    }
    o->have_uuid = true;
    return -1;
}

#define CALL(fn) .store = CLI_STORE_CALL, .handle = (fn)
#define FIELD(member) .field = offsetof(struct run_opts, member)
#define STRING(member) .store = CLI_STORE_STRING, FIELD(member)

/* hop run's options, in the order usage lines, --help and hop(1) show
 * them. */
const struct cli_option cli_run_options[] = {
    { .name = "-m",
      .arg = CLI_ARG_TEXT,
      .metavar = "SIZE",
      CALL(opt_ram),
      .help = "RAM size (default 128M; K, M, G suffixes; plain numbers are "
              "MiB)",
      .man = "RAM size, 2M to 64G (default 128M); suffixes K, M, G, plain "
             "numbers are\nMiB.\n"
             "The first 3 GiB appear at guest physical address 0, the rest "
             "at 4 GiB.\n" },
    { .name = "-object",
      .arg = CLI_ARG_OBJECT,
      .metavar = "TYPE,id=ID,size=SIZE[,...]",
      CALL(opt_object),
      .help = "a memory backend for -machine memory-backend=ID: "
              "memory-backend-ram,\nmemory-backend-memfd[,share=on|off]"
              "[,hugetlb=on] or memory-backend-file,mem-path=PATH"
              "[,share=on];\nall take prealloc=on",
      .man = "A memory backend, used as guest RAM with\n"
             ".BR \"\\-machine memory\\-backend=\"\\fIID\\fR:\n"
             ".B memory\\-backend\\-ram\n(anonymous private memory with "
             "transparent huge pages where the host allows\nthem, also the "
             "default without this option),\n"
             ".B memory\\-backend\\-memfd\n(a memfd, shared unless\n"
             ".BR share=off ;\n.B hugetlb=on\nputs it on huge pages), or\n"
             ".B memory\\-backend\\-file\n(the file\n"
             ".BR mem\\-path= \\fIPATH\\fR,\n"
             "or an unlinked file in it when it is a directory such as a "
             "hugetlbfs mount;\nprivate unless\n.BR share=on ).\n"
             ".BR size=\nis required;\n.B prealloc=on\nmakes every page "
             "resident at start.\n" },
    { .name = "-machine",
      .arg = CLI_ARG_MACHINE,
      .metavar = "memory-backend=ID",
      CALL(opt_machine),
      .help = "guest RAM on the -object with that id (-m may be left out)",
      .man = "Guest RAM on the memory backend\n.IR ID ;\n.B \\-m\nmay be "
             "left out, and must match the backend's size when given.\n" },
    { .name = "-mem-prealloc",
      .arg = CLI_ARG_NONE,
      .store = CLI_STORE_FLAG,
      FIELD(mem_prealloc),
      .help = "make every page of guest RAM resident at start",
      .man = "Make every page of guest RAM resident at start (as\n"
             ".BR prealloc=on ),\nso no first-touch fault happens while "
             "the guest runs or a migration\narrives.\n" },
    { .name = "-smp",
      .arg = CLI_ARG_TEXT,
      .metavar = "N",
      CALL(opt_smp),
      .help = "number of vCPUs, 1 to 8 (default 1)",
      .man = "Number of vCPUs, 1 to 8 (default 1).\n" },
    { .name = "-accel",
      .arg = CLI_ARG_ACCEL,
      .metavar = "emu|kvm",
      CALL(opt_accel),
      .help = "run guest code in hop's x86 emulator (default) or on KVM",
      .man = "Run guest code in hop's own x86 emulator (the default) or on "
             "KVM.\nWith\n.B kvm\na missing or unusable\n.I /dev/kvm\nis an "
             "error that says why.\n" },
    { .name = "-guest",
      .arg = CLI_ARG_GUEST,
      .metavar = "NAME",
      .either_next = true,
      CALL(opt_guest),
      .help = "built-in firmware: memtest (default), counter, disk, echo",
      .man = "Built-in firmware (default\n.BR memtest ):\n.B memtest\n"
             "fills every page above 1 MiB and then increments one byte in "
             "each page\nforever, printing a dot per pass (the vCPUs share "
             "the pages);\n.B counter\nprints an increasing counter;\n"
             ".B disk\nwrites a pattern to every sector of the drive, reads "
             "it back and prints\nOK or the first bad sector;\n.B echo\n"
             "prints the keys it receives.\nThe images carry a multiboot "
             "header, so\n.B qemu\\-system\\-x86_64 \\-kernel\nruns the same "
             "files.\n" },
    { .name = "-kernel",
      .arg = CLI_ARG_FILE,
      .metavar = "FILE",
      STRING(kernel),
      .help = "a flat 32-bit binary loaded at 1 MiB (multiboot a.out header "
              "honoured)",
      .man = "Load a flat 32-bit binary instead: where its multiboot header "
             "(with load\naddresses, flags bit 16) says, or at 1 MiB with its "
             "entry there.\n" },
    { .name = "-serial",
      .arg = CLI_ARG_SERIAL,
      .metavar = "stdio|file:PATH|none",
      CALL(opt_serial),
      .help = "COM1 output: stdio (default; none when the monitor has the\n"
              "terminal), file:PATH or none",
      .man = "Where the guest's serial output goes (default stdio; none when "
             "the monitor\nhas the terminal).\n" },
    { .name = "-S",
      .arg = CLI_ARG_NONE,
      .store = CLI_STORE_FLAG,
      FIELD(start_paused),
      .help = "do not start the vCPUs (use 'cont')",
      .man = "Create the machine but do not start it;\n.B cont\n"
             "starts it.\n" },
    { .name = "-name",
      .arg = CLI_ARG_TEXT,
      .metavar = "NAME",
      STRING(name),
      .help = "a name for the machine",
      .man = "A name for the machine\n.RB ( \"info name\" ).\n" },
    { .name = "-uuid",
      .arg = CLI_ARG_TEXT,
      .metavar = "UUID",
      CALL(opt_uuid),
      .help = "the machine's UUID (checked by a destination with "
              "validate-uuid)",
      .man = "The machine's UUID, sent with its state; a destination with "
             "the\n.B validate\\-uuid\ncapability refuses a stream from "
             "another UUID.\n" },
    { .name = "-drive",
      .arg = CLI_ARG_DRIVE,
      .metavar = "file=PATH[,format=raw|qcow2][,if=ide|none][,readonly=on]",
      CALL(opt_drive),
      .help = "a disk image; if=ide (default) attaches it as the ATA master",
      .man = "A disk image.\nWith\n.B if=ide\n(the default) it is the master "
             "drive of the ATA controller; with\n.B if=none\nit is opened "
             "but not attached (it may serve only to hold the state of\n"
             ".BR savevm ).\nA qcow2 drive takes snapshots: see\n"
             ".BR savevm ,\n.B loadvm\nand\n.B delvm\nin the monitor.\n"
             "The image stays locked while hop runs (see\n"
             ".BR \"img convert\" ),\nexcept while a migration hands it over: "
             "a destination\n.RB ( \\-incoming )\nopens its drives inactive "
             "\\(em no locks, no metadata read \\(em and takes\nthem when the "
             "stream has loaded, before the guest runs (if another "
             "process\nstill holds one, the incoming migration fails and hop "
             "exits 1); a source\nlets go of its drives at the switch, once "
             "the guest is stopped, and takes\nthem back if the migration "
             "fails.\nSo a source and a destination may name the same "
             "image.\nA source that migrated refuses\n.BR savevm ,\n"
             ".B loadvm\nand\n.B delvm\non its inactive drives;\n.B cont\n"
             "takes them back, and fails while the destination holds them.\n"
             "Without\n.B format=\nthe format is probed; a probed raw image "
             "refuses guest writes that would\nmake its first sector look "
             "like another format's header (the guest sees an\nI/O error), "
             "and hop warns once at start: give\n.B format=raw\nto lift "
             "this.\nWith\n.B readonly=on\nthe image is opened read-only "
             "(other readers may share it) and\nthe guest's writes fail.\n" },
    { .name = "-monitor",
      .arg = CLI_ARG_MONITOR,
      .metavar = "stdio|none|unix:PATH,server[,nowait]",
      STRING(monitor),
      .help = "where the monitor is (default stdio: a (hop) prompt on a\n"
              "terminal, one command per line from a pipe); without nowait,\n"
              "wait for the first client before starting",
      .man = "Where the monitor is (default\n.BR stdio ).\n.B unix:\nserves "
             "it on a unix socket created mode 0600, one client at a time\n"
             ".RB ( \"socat \\- UNIX\\-CONNECT:\\fIPATH\\fR\" );\nwithout\n"
             ".B nowait\nhop waits for the first client before it starts the "
             "machine.\n.B none\nruns without a monitor (standard input is "
             "not read).\n" },
    { .name = "-qmp",
      .arg = CLI_ARG_QMP,
      .metavar = "unix:PATH,server[,nowait]",
      STRING(qmp),
      .help = "serve QMP, the JSON protocol, on a unix socket",
      .man = "Serve QMP, QEMU's JSON machine protocol, on a unix socket "
             "(mode 0600;\nseveral clients at once); see\n"
             ".BR hop\\-monitor (7).\n" },
    { .name = "-incoming",
      .arg = CLI_ARG_INCOMING,
      .metavar = "URI|defer",
      STRING(incoming),
      .help = "wait for a migration stream on URI (tcp:HOST:PORT, "
              "unix:PATH,\nexec:COMMAND, file:PATH, fd:NAME); defer: until "
              "migrate_incoming",
      .man =
          "Wait for a migration stream instead of starting the guest:\n"
          ".BI tcp: HOST : PORT\\fR,\n.BI unix: PATH\\fR,\n"
          ".BI exec: COMMAND\n(its output),\n"
          ".BI file: PATH\\fR[\\fB,offset=\\fIN\\fR]\nor\n"
          ".BI fd: NAME\\fR.\nWhen the stream is loaded the guest runs "
          "(stays paused with\n.BR \\-S ).\nOn\n.B tcp:\nand\n"
          ".BR unix: ,\nthe first connection that starts like a migration "
          "stream is loaded\n(multifd channels may come too); one that "
          "sends nothing within 5 seconds,\nor something else, is closed "
          "with a warning naming it.\nA\n.B unix:\nsocket is made with "
          "mode 0600; an old socket at\n.I PATH\nis replaced, any other "
          "file is refused.\n.B defer\nwaits for the monitor's\n"
          ".BR migrate_incoming .\nThe drives are taken over (activated) "
          "when the stream has loaded; see\n.BR \\-drive .\n"
          "A cpr\\-transfer source first passes the guest's RAM over a "
          "connection of its own\n(the destination needs the same "
          "shared memory backend options).\n"
          ".B memfd:\nis what cpr\\-exec gives the new hop it runs "
          "in the old one's place: the machine\nis taken from the "
          "memfd named in\n.BR HOP_CPR_STATE ,\nthe monitor "
          "sockets from\n.BR HOP_CPR_LISTEN ;\nthe process that held the old "
          "one's memory past the exec\n.RB ( HOP_CPR_KEEPER )\nis "
          "reaped.\n" },
    { .name = "-dump-vmstate",
      .arg = CLI_ARG_FILE,
      .metavar = "FILE",
      STRING(dump_vmstate),
      .help = "write the machine's state schema as JSON and exit",
      .man = "Write the machine's state schema (every section, its version "
             "and fields)\nas JSON in the layout of QEMU's\n"
             ".B \\-dump\\-vmstate\nto\n.I FILE\nand exit; see\n"
             ".BR \"hop vmstate\\-check\" .\n" },
    { .name = "-loadvm",
      .arg = CLI_ARG_TEXT,
      .metavar = "TAG",
      STRING(loadvm),
      .help = "start from snapshot TAG of the drive (see savevm)",
      .man = "Start from snapshot\n.I TAG\nof the drive (its disk, RAM, "
             "vCPUs, devices and VM clock), then run\n(or wait, with\n"
             ".BR \\-S ).\nA tag the drive lacks, or a snapshot of another "
             "machine type, is an error.\n" },
    { .name = "-catalog",
      .arg = CLI_ARG_FILE,
      .metavar = "PATH",
      STRING(catalog),
      .help = "the snapshot catalog savevm writes (default $HOP_CATALOG,\n"
              "else $XDG_DATA_HOME/hop/catalog.db; 'none': no catalog)",
      .man = "The snapshot catalog\n.B savevm\nand\n.B delvm\nkeep up to "
             "date (default\n.BR $HOP_CATALOG ,\nelse\n"
             ".BR $XDG_DATA_HOME/hop/catalog.db );\n.B none\nturns it "
             "off.\n" },
    { .name = "--help", .arg = CLI_ARG_NONE },
    { NULL }
};

static int unexpected_operand(const struct cli_command *cmd, void *target,
                              const char *word)
{
    return cli_usage_error(cmd, "unexpected argument '%s'", word);
}

/* The backend -machine memory-backend=ID names, and the RAM size that
 * follows from it. */
static int choose_ram_backend(const struct cli_command *cmd, struct run_opts *o)
{
    if (!o->memory_backend) {
        if (o->nobjects) {
            return cli_usage_error(cmd,
                                   "-object %s: not used (name it with "
                                   "-machine memory-backend=%s)",
                                   o->objects[0].id, o->objects[0].id);
        }
        return -1;
    }
    for (int i = 0; i < o->nobjects; i++) {
        struct mem_backend *be = &o->objects[i];
        if (strcmp(be->id, o->memory_backend) != 0) {
            continue;
        }
        if (!o->have_ram_size) {
            o->ram_size = be->size;
        } else if (o->ram_size != be->size) {
            return cli_usage_error(cmd,
                                   "-m %lluM does not match the size of "
                                   "memory backend '%s' (%llu bytes)",
                                   (unsigned long long)(o->ram_size >> 20),
                                   be->id, (unsigned long long)be->size);
        }
        if (be->size < (2u << 20) || be->size % 4096 ||
            be->size > MACHINE_MAX_RAM) {
            return cli_usage_error(cmd,
                                   "memory backend '%s': size %llu is not "
                                   "2M to %lluG in whole 4 KiB pages",
                                   be->id, (unsigned long long)be->size,
                                   MACHINE_MAX_RAM >> 30);
        }
        if (o->mem_prealloc) {
            be->prealloc = true;
        }
        o->ram_backend = be;
        return -1;
    }
    return cli_usage_error(cmd,
                           "-machine memory-backend=%s: no -object with "
                           "that id",
                           o->memory_backend);
}

/* Options that exclude each other, once all are read. */
static int check_combinations(const struct cli_command *cmd, struct run_opts *o)
{
    if (o->guest && o->kernel) {
        return cli_usage_error(cmd, "-guest and -kernel exclude each other");
    }
    if (o->loadvm && o->incoming) {
        return cli_usage_error(cmd, "-loadvm and -incoming exclude each other");
    }
    return choose_ram_backend(cmd, o);
}

/* Returns -1 when parsing succeeded, else the exit code. */
static int parse(int argc, char **argv, struct run_opts *o)
{
    const struct cli_command *cmd = run_cmd();
    const struct cli_parser p = {
        .cmd = cmd,
        .tables = (const struct cli_option *const[]){ cli_run_options, NULL },
        .target = o,
        .qemu_dashes = true,
        .dash_is_option = true,
        .operand = unexpected_operand,
    };
    int rc = cli_parse_options(&p, argc, argv, 1);
    return rc >= 0 ? rc : check_combinations(cmd, o);
}

/* ---- serial backends ---- */

/* Serial output.  On the terminal it shares stdout with the monitor, so
 * it is written a line at a time (a line is never split by monitor
 * output); a partial line goes out once it has waited 100 ms. */
struct serial_out {
    pthread_mutex_t lock;
    int fd;
    bool lines;
    size_t len;
    uint64_t last_ns;
    char buf[512];
};

static void serial_write(void *opaque, const uint8_t *buf, size_t len)
{
    struct serial_out *o = opaque;
    /* A closed output loses the bytes. */
    if (!o->lines) {
        (void)io_write_full(o->fd, buf, len);
        return;
    }
    pthread_mutex_lock(&o->lock);
    uint64_t now = clock_mono_ns();
    for (size_t i = 0; i < len; i++) {
        o->buf[o->len++] = (char)buf[i];
        if (buf[i] == '\n' || o->len == sizeof(o->buf)) {
            (void)io_write_full(o->fd, o->buf, o->len);
            o->len = 0;
            o->last_ns = now;
        }
    }
    if (o->len && now - o->last_ns > 100000000ull) {
        (void)io_write_full(o->fd, o->buf, o->len);
        o->len = 0;
        o->last_ns = now;
    }
    pthread_mutex_unlock(&o->lock);
}

static void serial_flush(struct serial_out *o)
{
    pthread_mutex_lock(&o->lock);
    (void)io_write_full(o->fd, o->buf, o->len);
    o->len = 0;
    pthread_mutex_unlock(&o->lock);
}

static bool open_serial(const char *spec, bool append, struct serial_out *o,
                        struct serial_backend *be)
{
    o->fd = -1;
    if (strcmp(spec, "none") == 0) {
        return true;
    }
    if (strcmp(spec, "stdio") == 0) {
        o->fd = STDOUT_FILENO;
        o->lines = true;
    } else {
        const char *path = spec + 5;
        /* After cpr-exec the log goes on where the old hop left it. */
        o->fd =
            open(path,
                 O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_CLOEXEC,
                 0644);
        if (o->fd < 0) {
            error_report("-serial %s: %s", spec, strerror(errno));
            return false;
        }
    }
    be->write = serial_write;
    be->opaque = o;
    return true;
}

static bool dump_vmstate(struct machine *m, const char *path)
{
    Error *err = NULL;
    if (!stream_dump_schema(machine_registry(m), path, &err)) {
        error_report_err(err);
        return false;
    }
    return true;
}

/* -monitor and -qmp (their defaults when not given), and the serial
 * default that depends on where the monitor is; -1 or the exit code. */
static int parse_endpoints(struct run_opts *o, struct endpoint *hmp_ep,
                           struct endpoint *qmp_ep)
{
    Error *err = NULL;
    if (!endpoint_parse(o->monitor ? o->monitor : "stdio", true, hmp_ep,
                        &err) ||
        !endpoint_parse(o->qmp ? o->qmp : "none", false, qmp_ep, &err)) {
        int rc = cli_usage_error(run_cmd(), "%s", error_get_pretty(err));
        error_free(err);
        endpoint_clear(hmp_ep);
        return rc;
    }
    /* A terminal monitor keeps the screen: serial output goes elsewhere
     * unless asked for. */
    bool interactive = hmp_ep->kind == ENDPOINT_STDIO && isatty(STDIN_FILENO);
    if (!o->serial) {
        o->serial = interactive ? "none" : "stdio";
    }
    return -1;
}

/* The drive (if any), opened as -drive says. */
static bool open_drive(const struct run_opts *o, BlockDev **blk)
{
    *blk = NULL;
    if (!o->have_drive) {
        return true;
    }
    /* A destination leaves the image to the source until the migration
     * hands it over (incoming activates it). */
    Error *err = NULL;
    unsigned flags = (o->drive_readonly ? 0 : BLK_OPEN_RDWR) |
        (o->incoming ? BLK_OPEN_INACTIVE : 0);
    *blk = blk_open_flags(o->drive_file,
                          o->drive_format[0] ? o->drive_format : NULL, flags,
                          &err);
    if (!*blk) {
        error_prepend(&err, "-drive file=%s: ", o->drive_file);
        error_report_err(err);
        return false;
    }
    if ((*blk)->probed && strcmp(blk_format(*blk), "raw") == 0) {
        error_report("warning: -drive file=%s: no format= given, probed "
                     "as raw; guest writes that would make sector 0 look "
                     "like another format are refused (give format=raw "
                     "to lift this)",
                     o->drive_file);
    }
    return true;
}

/* The session the options describe, with its machine. */
static struct vm_session *make_session(const struct run_opts *o, BlockDev *blk,
                                       struct serial_out *serial,
                                       char **exec_argv)
{
    struct machine_config mc = {
        .ram_size = o->ram_size,
        .smp = o->smp,
        .accel = o->accel,
        .guest = o->guest,
        .kernel = o->kernel,
        .name = o->name,
        .drive = o->drive_attached ? blk : NULL,
        .ram_backend = o->ram_backend,
        .mem_prealloc = o->mem_prealloc,
        .incoming = o->incoming != NULL,
    };
    if (!open_serial(o->serial, o->cpr_exec, serial, &mc.serial)) {
        return NULL;
    }
    struct snapshot_drive drive = { .name = o->drive_attached ? "ide0-hd0"
                                                              : "none0",
                                    .bs = blk };
    struct session_config cfg = {
        .machine = &mc,
        .drives = &drive,
        .ndrives = blk ? 1 : 0,
        .autostart = !o->start_paused,
        .catalog = o->catalog,
        .uuid = o->have_uuid ? o->uuid : NULL,
        .exec_argv = (const char *const *)exec_argv,
    };
    Error *err = NULL;
    struct vm_session *s = session_new(&cfg, &err);
    if (!s) {
        error_report_err(err);
    }
    return s;
}

/* -incoming, or -loadvm and the start (unless -S). */
static bool start(const struct run_opts *o, struct vm_session *s)
{
    Error *err = NULL;
    if (o->incoming) {
        if (!session_incoming(s, o->incoming, &err)) {
            if (strcmp(o->incoming, "defer") != 0) {
                error_prepend(&err, "-incoming %s: ", o->incoming);
            }
            error_report_err(err);
            return false;
        }
        return true;
    }
    if (o->loadvm && !session_loadvm(s, o->loadvm, NULL, NULL, &err)) {
        error_prepend(&err, "-loadvm %s: ", o->loadvm);
        error_report_err(err);
        return false;
    }
    if (!o->start_paused && !session_start(s, &err)) {
        error_report_err(err);
        return false;
    }
    return true;
}

/* What cmd_run holds from setting up to tearing down. */
struct run_ctx {
    struct run_opts o;
    char **exec_argv; /* cpr-exec's default command line */
    struct endpoint hmp_ep, qmp_ep;
    BlockDev *blk;
    struct vm_session *s;
    struct mon_loop *loop;
    struct serial_out serial;
};

/* The options and the endpoints; -1 to go on, or the exit code. */
static int parse_all(int argc, char **argv, struct run_ctx *st)
{
    int rc = parse(argc, argv, &st->o);
    if (rc < 0) {
        rc = parse_endpoints(&st->o, &st->hmp_ep, &st->qmp_ep);
    }
    return rc;
}

/* cpr-exec's default: this binary with these options, less those that
 * do not fit a machine that is already running (-incoming, -loadvm, -S),
 * plus the incoming side.  The path is resolved now: an upgrade
 * replaces the file behind it. */
static char **exec_argv_new(int argc, char **argv)
{
    char **av = xcalloc((size_t)argc + 4, sizeof(*av));
    int n = 0;
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[len > 0 ? len : 0] = 0;
    av[n++] = xstrdup(len > 0 ? exe : "hop");
    av[n++] = xstrdup("run");
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i] + (argv[i][0] == '-' && argv[i][1] == '-');
        if (strcmp(w, "-incoming") == 0 || strcmp(w, "-loadvm") == 0) {
            i++;
            continue;
        }
        if (strcmp(w, "-S") == 0 || strncmp(w, "-incoming=", 10) == 0 ||
            strncmp(w, "-loadvm=", 8) == 0) {
            continue;
        }
        av[n++] = xstrdup(argv[i]);
    }
    av[n++] = xstrdup("-incoming");
    av[n++] = xstrdup("memfd:");
    av[n] = NULL;
    return av;
}

static void exec_argv_free(char **av)
{
    for (char **w = av; w && *w; w++) {
        free(*w);
    }
    free(av);
}

/* Started by cpr-exec: the machine comes from the state memfd whatever
 * -incoming says, no memory is preallocated (the old hop's is taken
 * over), and the monitors take over their listening sockets. */
static void take_cpr_exec_env(struct run_ctx *st)
{
    const char *state = getenv("HOP_CPR_STATE");
    const char *listen = getenv("HOP_CPR_LISTEN");
    if (state) {
        struct run_opts *o = &st->o;
        snprintf(o->cpr_incoming, sizeof(o->cpr_incoming), "memfd:%s", state);
        o->incoming = o->cpr_incoming;
        o->cpr_exec = true;
        o->mem_prealloc = false;
        for (int i = 0; i < o->nobjects; i++) {
            o->objects[i].prealloc = false;
        }
        endpoint_inherit(&st->hmp_ep, listen);
        endpoint_inherit(&st->qmp_ep, listen);
        cpr_keeper_reap(getenv("HOP_CPR_KEEPER"));
    }
    /* Not for anything this hop starts. */
    unsetenv("HOP_CPR_STATE");
    unsetenv("HOP_CPR_LISTEN");
    unsetenv("HOP_CPR_KEEPER");
}

/* The drive and the session; false (reported) if either cannot be had. */
static bool set_up(struct run_ctx *st)
{
    return open_drive(&st->o, &st->blk) &&
        (st->s = make_session(&st->o, st->blk, &st->serial, st->exec_argv)) !=
        NULL;
}

/* The monitors, the start, and their loop until the machine quits; the
 * exit code. */
static int run_loop(struct run_ctx *st)
{
    Error *err = NULL;
    st->loop = mon_loop_new(st->s, &st->hmp_ep, &st->qmp_ep, &err);
    if (!st->loop) {
        error_report_err(err);
        return EXIT_FAIL;
    }
    if (!start(&st->o, st->s)) {
        return EXIT_FAIL;
    }
    mon_loop_run(st->loop);
    return session_exit_status(st->s);
}

/* Leave cleanly: migration threads first, then vCPUs, then drives.
 * Returns rc, or EXIT_FAIL if the drive cannot be flushed. */
static int tear_down(struct run_ctx *st, int rc)
{
    if (st->s) {
        session_shutdown(st->s);
    }
    mon_loop_free(st->loop);
    session_free(st->s);
    if (st->blk) {
        Error *err = NULL;
        if (!blk_flush(st->blk, &err)) {
            error_report_err(err);
            rc = EXIT_FAIL;
        }
        blk_close(st->blk);
    }
    if (st->serial.fd >= 0) {
        serial_flush(&st->serial);
        if (st->serial.fd != STDOUT_FILENO) {
            close(st->serial.fd);
        }
    }
    pthread_mutex_destroy(&st->serial.lock);
    endpoint_clear(&st->hmp_ep);
    endpoint_clear(&st->qmp_ep);
    exec_argv_free(st->exec_argv);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    struct run_ctx st = { .serial = { .fd = -1 } };
    int rc = parse_all(argc, argv, &st);
    if (rc >= 0) {
        return rc;
    }
    take_cpr_exec_env(&st);
    st.exec_argv = exec_argv_new(argc, argv);
    pthread_mutex_init(&st.serial.lock, NULL);
    if (!set_up(&st)) {
        rc = EXIT_FAIL;
    } else if (st.o.dump_vmstate) {
        rc = dump_vmstate(session_machine(st.s), st.o.dump_vmstate) ? EXIT_OK
                                                                    : EXIT_FAIL;
    } else {
        rc = run_loop(&st);
    }
    return tear_down(&st, rc);
}
