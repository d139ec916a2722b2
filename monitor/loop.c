/* poll() over every input of the monitors. */
#include "monitor/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monitor/monitor.h"
#include "monitor/qmp.h"
#include "monitor/session.h"
#include "monitor/term.h"

struct mon_loop {
    struct vm_session *s;
    struct term *term;
    struct endpoint hmp_ep, qmp_ep;
    int hmp_listen, qmp_listen;
    int hmp_client;               /* one at a time, as QEMU serves them */
    FILE *hmp_out;
    struct monitor *hmp_mon;
    char *hmp_buf;
    size_t hmp_len, hmp_cap;
};

/* Signals become bytes on a pipe the loop polls. */
static int sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sigint_seen;

bool mon_loop_take_interrupt(void)
{
    bool seen = sigint_seen;
    sigint_seen = 0;
    return seen;
}

static void on_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    int saved = errno;
    if (sig == SIGINT) {
        sigint_seen = 1;
    }
    (void)!write(sig_pipe[1], &b, 1);
    errno = saved;
}

static void copy_endpoint(struct endpoint *dst, const struct endpoint *src)
{
    *dst = *src;
    dst->path = src->path ? strdup(src->path) : NULL;
}

static void hmp_client_open(struct mon_loop *l, int fd)
{
    l->hmp_client = fd;
    /* Close-on-exec: an exec: migration command must not hold the
     * client's connection open. */
    l->hmp_out = fdopen(fcntl(fd, F_DUPFD_CLOEXEC, 0), "w");
    setvbuf(l->hmp_out, NULL, _IOLBF, 0);
    l->hmp_mon = monitor_new(l->s, l->hmp_out);
    fprintf(l->hmp_out, "hop %s monitor - type 'help' for more information\n"
            "(hop) ", HOP_VERSION);
    fflush(l->hmp_out);
}

static void hmp_client_close(struct mon_loop *l)
{
    if (l->hmp_client < 0) {
        return;
    }
    monitor_free(l->hmp_mon);
    fclose(l->hmp_out);
    close(l->hmp_client);
    l->hmp_client = -1;
    l->hmp_mon = NULL;
    l->hmp_len = 0;
}

static int accept_client(int listen_fd)
{
    int fd;
    do {
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

static bool add_qmp_client(struct mon_loop *l, int fd)
{
    for (int i = 0; i < SESSION_MAX_QMP; i++) {
        if (!l->s->qmp[i]) {
            l->s->qmp[i] = qmp_client_new(l->s, fd);
            qmp_client_start(l->s->qmp[i]);
            return true;
        }
    }
    close(fd);   /* too many clients */
    return false;
}

struct mon_loop *mon_loop_new(struct vm_session *s, const struct endpoint *hmp,
                              const struct endpoint *qmp, Error **errp)
{
    struct mon_loop *l = calloc(1, sizeof(*l));
    if (!l) {
        abort();
    }
    l->s = s;
    l->hmp_listen = l->qmp_listen = l->hmp_client = -1;
    copy_endpoint(&l->hmp_ep, hmp);
    copy_endpoint(&l->qmp_ep, qmp);
    if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        error_setg_errno(errp, errno, "pipe");
        mon_loop_free(l);
        return NULL;
    }
    if (hmp->kind == ENDPOINT_UNIX &&
        (l->hmp_listen = endpoint_listen(hmp, errp)) < 0) {
        mon_loop_free(l);
        return NULL;
    }
    if (qmp->kind == ENDPOINT_UNIX &&
        (l->qmp_listen = endpoint_listen(qmp, errp)) < 0) {
        mon_loop_free(l);
        return NULL;
    }
    if (hmp->kind == ENDPOINT_UNIX && hmp->wait) {
        fprintf(stderr, "hop: waiting for a monitor client on %s\n", hmp->path);
        hmp_client_open(l, accept_client(l->hmp_listen));
    }
    if (qmp->kind == ENDPOINT_UNIX && qmp->wait) {
        fprintf(stderr, "hop: waiting for a QMP client on %s\n", qmp->path);
        add_qmp_client(l, accept_client(l->qmp_listen));
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (hmp->kind == ENDPOINT_STDIO) {
        l->term = term_new(s);
    }
    return l;
}

void mon_loop_print(struct mon_loop *l, const char *text)
{
    if (l->term) {
        term_print_async(l->term, text);
    } else {
        fputs(text, stdout);
        fflush(stdout);
    }
}

/* Runs every complete line a socket client sent. */
static bool hmp_client_readable(struct mon_loop *l)
{
    if (l->hmp_cap - l->hmp_len < 4096) {
        l->hmp_cap = l->hmp_cap ? l->hmp_cap * 2 : 8192;
        l->hmp_buf = realloc(l->hmp_buf, l->hmp_cap);
        if (!l->hmp_buf) {
            abort();
        }
    }
    ssize_t n = session_recv(l->s, l->hmp_client, l->hmp_buf + l->hmp_len,
                             l->hmp_cap - l->hmp_len - 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return true;
    }
    if (n <= 0) {
        return false;
    }
    l->hmp_len += (size_t)n;
    size_t off = 0;
    char *nl;
    while ((nl = memchr(l->hmp_buf + off, '\n', l->hmp_len - off)) != NULL) {
        *nl = '\0';
        if (nl > l->hmp_buf + off && nl[-1] == '\r') {
            nl[-1] = '\0';
        }
        term_history_add(l->hmp_buf + off);
        monitor_execute(l->hmp_mon, l->hmp_buf + off);
        off = (size_t)(nl - l->hmp_buf) + 1;
        if (l->s->quit) {
            break;
        }
        fprintf(l->hmp_out, "(hop) ");
        fflush(l->hmp_out);
    }
    memmove(l->hmp_buf, l->hmp_buf + off, l->hmp_len - off);
    l->hmp_len -= off;
    return true;
}

void mon_loop_run(struct mon_loop *l)
{
    struct vm_session *s = l->s;
    while (!s->quit) {
        struct pollfd pfd[8 + SESSION_MAX_QMP];
        int n = 0;
        int i_sig = n;
        pfd[n++] = (struct pollfd){ .fd = sig_pipe[0], .events = POLLIN };
        int i_wake = n;
        pfd[n++] = (struct pollfd){ .fd = s->wake[0], .events = POLLIN };
        int i_term = -1, i_hl = -1, i_hc = -1, i_ql = -1, i_q0 = n;
        for (int i = 0; i < SESSION_MAX_QMP; i++) {
            pfd[n++] = (struct pollfd){ .fd = s->qmp[i] ?
                                        qmp_client_fd(s->qmp[i]) : -1,
                                        .events = POLLIN };
        }
        if (l->term) {
            i_term = n;
            pfd[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
        }
        if (l->hmp_listen >= 0 && l->hmp_client < 0) {
            i_hl = n;
            pfd[n++] = (struct pollfd){ .fd = l->hmp_listen, .events = POLLIN };
        }
        if (l->hmp_client >= 0) {
            i_hc = n;
            pfd[n++] = (struct pollfd){ .fd = l->hmp_client, .events = POLLIN };
        }
        if (l->qmp_listen >= 0) {
            i_ql = n;
            pfd[n++] = (struct pollfd){ .fd = l->qmp_listen, .events = POLLIN };
        }
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pfd[i_sig].revents) {
            unsigned char sig;
            while (read(sig_pipe[0], &sig, 1) == 1) {
                if (sig == SIGINT && l->term && term_interactive(l->term)) {
                    term_interrupt(l->term);
                } else {
                    session_request_quit(s);
                }
            }
        }
        if (pfd[i_wake].revents) {
            session_flush_events(s);
        }
        for (int i = 0; i < SESSION_MAX_QMP; i++) {
            if (s->qmp[i] && pfd[i_q0 + i].revents &&
                !qmp_client_readable(s->qmp[i])) {
                qmp_client_free(s->qmp[i]);
                s->qmp[i] = NULL;
            }
        }
        if (i_term >= 0 && pfd[i_term].revents && !term_readable(l->term)) {
            /* End of input on stdin: Ctrl-D or the end of a script. */
            session_request_quit(s);
        }
        if (i_hc >= 0 && pfd[i_hc].revents && !hmp_client_readable(l)) {
            hmp_client_close(l);
        }
        if (i_hl >= 0 && pfd[i_hl].revents) {
            int fd = accept_client(l->hmp_listen);
            if (fd >= 0) {
                hmp_client_open(l, fd);
            }
        }
        if (i_ql >= 0 && pfd[i_ql].revents) {
            int fd = accept_client(l->qmp_listen);
            if (fd >= 0) {
                add_qmp_client(l, fd);
            }
        }
    }
    session_flush_events(s);
}

void mon_loop_free(struct mon_loop *l)
{
    if (!l) {
        return;
    }
    term_free(l->term);
    hmp_client_close(l);
    free(l->hmp_buf);
    for (int i = 0; i < SESSION_MAX_QMP; i++) {
        qmp_client_free(l->s->qmp[i]);
        l->s->qmp[i] = NULL;
    }
    if (l->hmp_listen >= 0) {
        close(l->hmp_listen);
        unlink(l->hmp_ep.path);
    }
    if (l->qmp_listen >= 0) {
        close(l->qmp_listen);
        unlink(l->qmp_ep.path);
    }
    endpoint_clear(&l->hmp_ep);
    endpoint_clear(&l->qmp_ep);
    free(l);
}
