/* `hop run`: start a machine from QEMU-like options. */
#include "cli/run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "cli/cli.h"
#include "machine/firmware.h"

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
    bool drive_attached;        /* if=ide */
    bool have_drive;
};

static const struct cli_command *run_cmd(void)
{
    return cli_find_command("run");
}

static bool parse_drive(struct run_opts *o, const char *spec)
{
    char *copy = strdup(spec);
    char *save = NULL;
    bool ok = true;
    o->drive_attached = true;
    for (char *kv = strtok_r(copy, ",", &save); kv && ok;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            cli_usage_error(run_cmd(), "-drive: '%s' is not KEY=VALUE", kv);
            ok = false;
            break;
        }
        *eq = '\0';
        const char *v = eq + 1;
        if (strcmp(kv, "file") == 0 && *v) {
            snprintf(o->drive_file, sizeof(o->drive_file), "%s", v);
        } else if (strcmp(kv, "format") == 0 &&
                   (strcmp(v, "raw") == 0 || strcmp(v, "qcow2") == 0)) {
            snprintf(o->drive_format, sizeof(o->drive_format), "%s", v);
        } else if (strcmp(kv, "if") == 0 &&
                   (strcmp(v, "ide") == 0 || strcmp(v, "none") == 0)) {
            o->drive_attached = strcmp(v, "ide") == 0;
        } else {
            cli_usage_error(run_cmd(), "-drive: bad option '%s=%s' (file=PATH, "
                            "format=raw|qcow2, if=ide|none)", kv, v);
            ok = false;
        }
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

/* Returns -1 when parsing succeeded, else the exit code. */
static int parse(int argc, char **argv, struct run_opts *o)
{
    const struct cli_command *cmd = run_cmd();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* QEMU accepts --opt for -opt. */
        if (a[0] == '-' && a[1] == '-' && a[2]) {
            a++;
        }
        bool has_arg = strcmp(a, "-m") == 0 || strcmp(a, "-smp") == 0 ||
                       strcmp(a, "-accel") == 0 || strcmp(a, "-guest") == 0 ||
                       strcmp(a, "-kernel") == 0 ||
                       strcmp(a, "-serial") == 0 || strcmp(a, "-name") == 0 ||
                       strcmp(a, "-drive") == 0;
        const char *v = NULL;
        if (has_arg) {
            if (i + 1 >= argc) {
                return cli_usage_error(cmd, "option '%s' needs an argument",
                                       a);
            }
            v = argv[++i];
        }
        if (strcmp(a, "-m") == 0) {
            const char *s = strncmp(v, "size=", 5) == 0 ? v + 5 : v;
            if (!machine_parse_size(s, &o->ram_size) ||
                o->ram_size < (2u << 20) || o->ram_size > MACHINE_MAX_RAM) {
                return cli_usage_error(cmd, "-m: bad memory size '%s' (2M to "
                                       "%lluG, e.g. 128M or 2G)", v,
                                       MACHINE_MAX_RAM >> 30);
            }
            o->ram_size = (o->ram_size + 4095) & ~4095ull;
        } else if (strcmp(a, "-smp") == 0) {
            if (!parse_smp(v, &o->smp)) {
                return cli_usage_error(cmd, "-smp: bad vCPU count '%s' (1 to "
                                       "%d)", v, MACHINE_MAX_SMP);
            }
        } else if (strcmp(a, "-accel") == 0) {
            const char *s = strncmp(v, "accel=", 6) == 0 ? v + 6 : v;
            if (strcmp(s, "emu") != 0 && strcmp(s, "kvm") != 0) {
                return cli_usage_error(cmd, "-accel: unknown accelerator "
                                       "'%s' (emu or kvm)", v);
            }
            o->accel = s;
        } else if (strcmp(a, "-guest") == 0) {
            if (!firmware_find(v)) {
                return cli_usage_error(cmd, "-guest: unknown guest '%s' "
                                       "(built in: %s)", v,
                                       firmware_names());
            }
            o->guest = v;
        } else if (strcmp(a, "-kernel") == 0) {
            o->kernel = v;
        } else if (strcmp(a, "-serial") == 0) {
            if (strcmp(v, "stdio") != 0 && strcmp(v, "none") != 0 &&
                !(strncmp(v, "file:", 5) == 0 && v[5])) {
                return cli_usage_error(cmd, "-serial: bad backend '%s' "
                                       "(stdio, file:PATH or none)", v);
            }
            o->serial = v;
        } else if (strcmp(a, "-name") == 0) {
            o->name = v;
        } else if (strcmp(a, "-drive") == 0) {
            if (o->have_drive) {
                return cli_usage_error(cmd, "only one -drive is supported");
            }
            if (!parse_drive(o, v)) {
                return EXIT_USAGE;
            }
            o->have_drive = true;
        } else if (strcmp(a, "-S") == 0) {
            o->start_paused = true;
        } else if (a[0] == '-') {
            return cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s'", a);
        }
    }
    if (o->guest && o->kernel) {
        return cli_usage_error(cmd, "-guest and -kernel exclude each other");
    }
    return -1;
}

/* ---- serial backends and events ---- */

static int event_pipe[2] = { -1, -1 };

static void post_event(char ev)
{
    if (event_pipe[1] >= 0) {
        ssize_t r = write(event_pipe[1], &ev, 1);
        (void)r;
    }
}

static void on_event(void *opaque, enum machine_event ev)
{
    post_event(ev == MACHINE_EVENT_SHUTDOWN ? RUN_EVENT_SHUTDOWN
                                            : RUN_EVENT_ERROR);
}

static void on_signal(int sig)
{
    (void)sig;
    post_event(RUN_EVENT_SIGNAL);
}

static void serial_to_fd(void *opaque, const uint8_t *buf, size_t len)
{
    int fd = (int)(intptr_t)opaque;
    while (len) {
        ssize_t r = write(fd, buf, len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return;                  /* a closed output loses the bytes */
        }
        buf += r;
        len -= (size_t)r;
    }
}

static int open_serial(const char *spec, struct serial_backend *be)
{
    if (!spec || strcmp(spec, "stdio") == 0) {
        be->write = serial_to_fd;
        be->opaque = (void *)(intptr_t)STDOUT_FILENO;
        return -2;
    }
    if (strcmp(spec, "none") == 0) {
        return -2;
    }
    const char *path = spec + 5;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        error_report("-serial %s: %s", spec, strerror(errno));
        return -1;
    }
    be->write = serial_to_fd;
    be->opaque = (void *)(intptr_t)fd;
    return fd;
}

int cmd_run(int argc, char **argv)
{
    struct run_opts o = { 0 };
    int rc = parse(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    Error *err = NULL;
    BlockDev *blk = NULL;
    struct machine *m = NULL;
    int serial_fd = -2;
    rc = EXIT_FAIL;

    if (o.have_drive) {
        blk = blk_open(o.drive_file, o.drive_format[0] ? o.drive_format : NULL,
                       false, &err);
        if (!blk) {
            error_prepend(&err, "-drive file=%s: ", o.drive_file);
            error_report_err(err);
            return EXIT_FAIL;
        }
    }
    struct machine_config cfg = {
        .ram_size = o.ram_size,
        .smp = o.smp,
        .accel = o.accel,
        .guest = o.guest,
        .kernel = o.kernel,
        .name = o.name,
        .drive = o.drive_attached ? blk : NULL,
        .on_event = on_event,
    };
    serial_fd = open_serial(o.serial, &cfg.serial);
    if (serial_fd == -1) {
        goto out;
    }
    if (pipe2(event_pipe, O_CLOEXEC) < 0) {
        error_report("cannot create a pipe: %s", strerror(errno));
        goto out;
    }
    m = machine_new(&cfg, &err);
    if (!m) {
        error_report_err(err);
        goto out;
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* A closed output (hop run | head) loses serial bytes, not hop. */
    signal(SIGPIPE, SIG_IGN);
    if (!o.start_paused && !vm_start(m, &err)) {
        error_report_err(err);
        goto out;
    }
    rc = run_loop(m, STDIN_FILENO, stdout, event_pipe[0]);
    if (machine_runstate(m) == RUN_STATE_RUNNING) {
        vm_stop(m, RUN_STATE_SHUTDOWN, NULL);
    }
out:
    machine_free(m);
    if (blk) {
        blk_close(blk);
    }
    if (serial_fd >= 0) {
        close(serial_fd);
    }
    for (int i = 0; i < 2; i++) {
        if (event_pipe[i] >= 0) {
            close(event_pipe[i]);
            event_pipe[i] = -1;
        }
    }
    return rc;
}
