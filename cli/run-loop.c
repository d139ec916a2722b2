/* The minimal command loop of `hop run`: stop, cont, quit, info status. */
#include "cli/run.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' ||
                 s[n - 1] == '\t')) {
        s[--n] = '\0';
    }
}

int run_loop_command(struct machine *m, const char *line, FILE *out)
{
    char cmd[256];
    const char *p = line + strspn(line, " \t");
    snprintf(cmd, sizeof(cmd), "%s", p);
    trim(cmd);
    Error *err = NULL;
    if (!*cmd) {
        return 0;
    }
    if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "q") == 0) {
        return 1;
    }
    if (strcmp(cmd, "stop") == 0) {
        if (machine_runstate(m) == RUN_STATE_RUNNING &&
            !vm_stop(m, RUN_STATE_PAUSED, &err)) {
            error_report_err(err);
        }
    } else if (strcmp(cmd, "cont") == 0 || strcmp(cmd, "c") == 0) {
        if (!vm_start(m, &err)) {
            error_report_err(err);
        }
    } else if (strcmp(cmd, "info status") == 0) {
        enum run_state st = machine_runstate(m);
        if (st == RUN_STATE_RUNNING || st == RUN_STATE_PAUSED) {
            fprintf(out, "VM status: %s\n", runstate_name(st));
        } else {
            fprintf(out, "VM status: paused (%s)\n", runstate_name(st));
        }
        fprintf(out, "accelerator: %s\n", machine_accel_name(m));
        if (*machine_last_error(m)) {
            fprintf(out, "last error: %s\n", machine_last_error(m));
        }
    } else if (strcmp(cmd, "help") == 0 || strcmp(cmd, "?") == 0) {
        fprintf(out, "stop          pause the machine\n"
                     "cont|c        resume the machine\n"
                     "info status   show the run state and accelerator\n"
                     "quit|q        quit hop\n");
    } else {
        fprintf(out, "unknown command: '%s' (try 'help')\n", cmd);
    }
    fflush(out);
    return 0;
}

int run_loop(struct machine *m, int in_fd, FILE *out, int event_fd)
{
    char buf[1024];
    size_t len = 0;
    bool in_open = in_fd >= 0;
    bool tty = in_open && isatty(in_fd);
    if (tty) {
        fprintf(out, "(hop) ");
        fflush(out);
    }
    for (;;) {
        struct pollfd pfd[2] = {
            { .fd = event_fd, .events = POLLIN },
            { .fd = in_open ? in_fd : -1, .events = POLLIN },
        };
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return EXIT_FAIL;
        }
        if (pfd[0].revents & POLLIN) {
            char ev;
            if (read(event_fd, &ev, 1) == 1) {
                if (ev == RUN_EVENT_SHUTDOWN || ev == RUN_EVENT_SIGNAL) {
                    return EXIT_OK;
                }
                /* Internal errors were reported; the machine waits. */
            }
        }
        if (!(pfd[1].revents & (POLLIN | POLLHUP))) {
            continue;
        }
        ssize_t r = read(in_fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0) {
            /* End of input: keep running until a signal or shutdown. */
            in_open = false;
            continue;
        }
        len += (size_t)r;
        buf[len] = '\0';
        char *nl;
        while ((nl = memchr(buf, '\n', len)) != NULL) {
            *nl = '\0';
            if (run_loop_command(m, buf, out)) {
                return EXIT_OK;
            }
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len);
            buf[len] = '\0';
            if (tty) {
                fprintf(out, "(hop) ");
                fflush(out);
            }
        }
        if (len == sizeof(buf) - 1) {
            fprintf(out, "command line too long; ignored\n");
            len = 0;
        }
    }
}
