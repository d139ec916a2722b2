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

#include "core/session.h"
#include "monitor/monitor.h"
#include "monitor/outq.h"
#include "monitor/qmp.h"
#include "monitor/term.h"
#include "util/alloc.h"
#include "util/clock.h"

/* QMP clients served at once. */
#define LOOP_MAX_QMP 8

/* How long hop, on its way out, waits for clients to read the last of
 * their output. */
#define DRAIN_NS (2 * 1000000000ull)

/* Longest monitor line a socket client may send, newline excluded. */
#define HMP_MAX_LINE 65536
/* A monitor client's next command waits while OUTQ_PAUSE bytes do, so
 * what waits is about one command's output; the largest, x /1048576cg,
 * is under 70 MiB.  Past this bound, the client is dropped. */
#define HMP_OUT_LIMIT (128u << 20)

/* A client of the monitor socket.  Its output goes through `q`, so a
 * client that does not read cannot block the loop. */
struct hmp_client {
    int fd;    /* -1: none */
    FILE *out; /* writes into q */
    struct outq q;
    struct monitor *mon;
    char *buf; /* received, HMP_MAX_LINE + 1 bytes */
    size_t len;
    bool skip; /* in a line too long: skip to its end */
    bool eof;  /* it will send no more */
    bool ran;  /* it ran a command line */
    bool dead; /* dropped for leaving too much unread */
};

struct mon_loop {
    struct vm_session *s;
    struct term *term;
    struct endpoint hmp_ep, qmp_ep;
    int hmp_listen, qmp_listen;
    struct hmp_client hmp; /* one at a time, as QEMU serves them */
    struct qmp_client *qmp[LOOP_MAX_QMP];
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

/* Requests to quit received; Ctrl-C on an interactive terminal clears
 * the line instead and is not one. */
static volatile sig_atomic_t quit_signals;
static volatile sig_atomic_t ctrl_c_is_interrupt;

static void on_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    int saved = errno;
    if (sig == SIGINT) {
        sigint_seen = 1;
    }
    if ((sig != SIGINT || !ctrl_c_is_interrupt) && ++quit_signals >= 2) {
        /* The first request is still waiting for the loop, which may be
         * stuck (an output nobody reads): a second one does not wait. */
        static const char msg[] =
            "hop: a second signal to quit: exiting without cleaning up\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        _exit(128 + sig);
    }
    (void)!write(sig_pipe[1], &b, 1);
    errno = saved;
}

static void copy_endpoint(struct endpoint *dst, const struct endpoint *src)
{
    *dst = *src;
    dst->path = src->path ? xstrdup(src->path) : NULL;
}

static ssize_t hmp_client_write(void *opaque, const char *data, size_t n)
{
    struct hmp_client *h = opaque;
    if (h->dead) {
        return (ssize_t)n; /* discarded */
    }
    if (outq_pending(&h->q) + n > HMP_OUT_LIMIT) {
        fprintf(stderr,
                "hop: dropping a monitor client that left more "
                "than %u MiB of output unread\n",
                HMP_OUT_LIMIT >> 20);
        h->dead = true;
        return (ssize_t)n;
    }
    outq_write(&h->q, h->fd, data, n);
    return (ssize_t)n;
}

static void hmp_client_open(struct mon_loop *l, int fd)
{
    struct hmp_client *h = &l->hmp;
    *h = (struct hmp_client){ .fd = fd };
    h->out = fopencookie(h, "w",
                         (cookie_io_functions_t){ .write = hmp_client_write });
    h->buf = xmalloc(HMP_MAX_LINE + 1);
    if (!h->out) {
        abort();
    }
    setvbuf(h->out, NULL, _IOLBF, 0);
    h->mon = monitor_new(l->s, h->out);
    fprintf(h->out,
            "hop %s monitor - type 'help' for more information\n"
            "(hop) ",
            HOP_VERSION);
    fflush(h->out);
}

/* Frees the client; its socket is closed unless the caller keeps it. */
static void hmp_client_release(struct mon_loop *l, bool close_fd)
{
    struct hmp_client *h = &l->hmp;
    if (h->fd < 0) {
        return;
    }
    monitor_free(h->mon);
    fclose(h->out);
    if (close_fd) {
        close(h->fd);
    }
    outq_free(&h->q);
    free(h->buf);
    *h = (struct hmp_client){ .fd = -1 };
}

static void hmp_client_close(struct mon_loop *l)
{
    hmp_client_release(l, true);
}

/* Dropped, gone, or done: it sent its last line and has every answer. */
static bool hmp_client_gone(const struct hmp_client *h)
{
    return h->dead || h->q.broken || (h->eof && !outq_pending(&h->q));
}

static int accept_client(int listen_fd)
{
    int fd;
    do {
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

static int free_qmp_slot(const struct mon_loop *l)
{
    for (int i = 0; i < LOOP_MAX_QMP; i++) {
        if (!l->qmp[i]) {
            return i;
        }
    }
    return -1;
}

static bool add_qmp_client(struct mon_loop *l, int fd)
{
    int i = free_qmp_slot(l);
    if (i < 0) {
        close(fd); /* too many clients */
        return false;
    }
    l->qmp[i] = qmp_client_new(l->s, fd);
    qmp_client_start(l->qmp[i]);
    return true;
}

/* A monitor client whose first line is a JSON object speaks QMP (as
 * `hop snapshot --monitor` does), so one socket serves both: it becomes
 * a QMP client, greeted as one, with what it sent from `from` on.  Only
 * when its greeting has gone out and a QMP client may be added. */
static bool hmp_client_upgrade(struct mon_loop *l, size_t from)
{
    struct hmp_client *h = &l->hmp;
    int i = free_qmp_slot(l);
    if (i < 0 || outq_pending(&h->q)) {
        return false;
    }
    struct qmp_client *c = qmp_client_new(l->s, h->fd);
    qmp_client_start(c);
    if (!qmp_client_take_input(c, h->buf + from, h->len - from, h->eof)) {
        qmp_client_free(c); /* closes the socket */
        hmp_client_release(l, false);
        return true;
    }
    l->qmp[i] = c;
    hmp_client_release(l, false);
    return true;
}

/* The session's events go to every QMP client. */
static void forward_event(void *opaque, const char *name, json_t *data,
                          long long sec, long long usec)
{
    struct mon_loop *l = opaque;
    for (int i = 0; i < LOOP_MAX_QMP; i++) {
        if (l->qmp[i]) {
            qmp_client_send_event(l->qmp[i], name, data, sec, usec);
        }
    }
}

/* cpr-exec: the listening sockets stay for the new hop, and the
 * terminal goes back to how readline found it (the new hop's readline
 * saves it again). */
static int keep_across_exec(void *opaque, bool before, int *fds, int max)
{
    struct mon_loop *l = opaque;
    int n = 0;
    if (!before) {
        term_resume(l->term);
        return 0;
    }
    term_suspend(l->term);
    if (l->hmp_listen >= 0 && n < max) {
        fds[n++] = l->hmp_listen;
    }
    if (l->qmp_listen >= 0 && n < max) {
        fds[n++] = l->qmp_listen;
    }
    return n;
}

struct mon_loop *mon_loop_new(struct vm_session *s, const struct endpoint *hmp,
                              const struct endpoint *qmp, Error **errp)
{
    struct mon_loop *l = xcalloc(1, sizeof(*l));
    l->s = s;
    l->hmp_listen = l->qmp_listen = l->hmp.fd = -1;
    if (!session_subscribe(s, forward_event, l)) {
        error_setg(errp, "the session has no room for another monitor loop");
        free(l);
        return NULL;
    }
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
        int fd = accept_client(l->hmp_listen);
        if (fd >= 0) {
            hmp_client_open(l, fd);
        }
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
        ctrl_c_is_interrupt = term_interactive(l->term);
    }
    session_add_exec_hook(s, keep_across_exec, l);
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

/* Runs the complete lines a socket client sent, as long as it reads
 * what they print. */
static void hmp_client_process(struct mon_loop *l)
{
    struct hmp_client *h = &l->hmp;
    size_t off = 0;
    while (!h->dead && !outq_full(&h->q) && !session_quit_requested(l->s)) {
        char *line = h->buf + off;
        char *nl = memchr(line, '\n', h->len - off);
        if (!nl) {
            break;
        }
        size_t start = off;
        off = (size_t)(nl - h->buf) + 1;
        if (h->skip) {
            h->skip = false;
            continue;
        }
        if (!h->ran && *line == '{' && hmp_client_upgrade(l, start)) {
            return;
        }
        h->ran = true;
        *nl = '\0';
        if (nl > line && nl[-1] == '\r') {
            nl[-1] = '\0';
        }
        term_history_add(line);
        monitor_execute(h->mon, line);
        if (session_quit_requested(l->s)) {
            break;
        }
        fprintf(h->out, "(hop) ");
        fflush(h->out);
    }
    memmove(h->buf, h->buf + off, h->len - off);
    h->len -= off;
    if (memchr(h->buf, '\n', h->len)) {
        return; /* lines wait for the client to read */
    }
    /* A full buffer without a newline holds a line too long. */
    if (h->len == HMP_MAX_LINE + 1 && !h->skip) {
        fprintf(h->out,
                "Error: line longer than %d bytes; ignored up to "
                "its end\n(hop) ",
                HMP_MAX_LINE);
        fflush(h->out);
        h->skip = true;
    }
    if (h->skip) {
        h->len = 0;
    }
}

static short hmp_client_poll_events(const struct hmp_client *h)
{
    short ev = 0;
    if (!h->dead && !h->eof && !outq_full(&h->q)) {
        ev |= POLLIN;
    }
    if (outq_pending(&h->q)) {
        ev |= POLLOUT;
    }
    return ev;
}

static void hmp_client_ready(struct mon_loop *l, short revents)
{
    struct hmp_client *h = &l->hmp;
    if (revents & (POLLOUT | POLLERR | POLLHUP)) {
        outq_flush(&h->q, h->fd);
    }
    if ((revents & (POLLIN | POLLERR | POLLHUP)) && !h->dead && !h->eof &&
        !outq_full(&h->q) && h->len <= HMP_MAX_LINE) {
        ssize_t n = session_recv(l->s, h->fd, h->buf + h->len,
                                 HMP_MAX_LINE + 1 - h->len);
        if (n == 0) {
            h->eof = true;
        } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
            h->dead = true;
        } else if (n > 0) {
            h->len += (size_t)n;
        }
    }
    hmp_client_process(l);
}

/* Events reach clients whenever they come, so any client may have been
 * dropped, not only those that were polled. */
static void drop_gone_clients(struct mon_loop *l)
{
    for (int i = 0; i < LOOP_MAX_QMP; i++) {
        if (l->qmp[i] && qmp_client_gone(l->qmp[i])) {
            qmp_client_free(l->qmp[i]);
            l->qmp[i] = NULL;
        }
    }
    if (l->hmp.fd >= 0 && hmp_client_gone(&l->hmp)) {
        hmp_client_close(l);
    }
}

/* On the way out: the last answers (to quit, say) and events still
 * waiting go to the clients that read them, for a bounded time. */
static void drain_output(struct mon_loop *l)
{
    const uint64_t deadline = clock_mono_ns() + DRAIN_NS;
    for (;;) {
        struct pollfd pfd[1 + LOOP_MAX_QMP];
        int n = 0;
        for (int i = 0; i < LOOP_MAX_QMP; i++) {
            struct qmp_client *c = l->qmp[i];
            bool waiting = c && (qmp_client_poll_events(c) & POLLOUT);
            pfd[n++] = (struct pollfd){ .fd = waiting ? qmp_client_fd(c) : -1,
                                        .events = POLLOUT };
        }
        bool hmp_waiting =
            l->hmp.fd >= 0 && !l->hmp.dead && outq_pending(&l->hmp.q);
        pfd[n++] = (struct pollfd){ .fd = hmp_waiting ? l->hmp.fd : -1,
                                    .events = POLLOUT };
        bool any = hmp_waiting;
        for (int i = 0; i < LOOP_MAX_QMP; i++) {
            any |= pfd[i].fd >= 0;
        }
        uint64_t now = clock_mono_ns();
        if (!any || now >= deadline) {
            return;
        }
        int ms = (int)((deadline - now) / 1000000) + 1;
        int r = poll(pfd, (nfds_t)n, ms);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return;
        }
        for (int i = 0; i < LOOP_MAX_QMP; i++) {
            if (pfd[i].revents) {
                qmp_client_flush(l->qmp[i]);
            }
        }
        if (pfd[LOOP_MAX_QMP].revents) {
            outq_flush(&l->hmp.q, l->hmp.fd);
        }
    }
}

void mon_loop_run(struct mon_loop *l)
{
    struct vm_session *s = l->s;
    while (!session_quit_requested(s)) {
        struct pollfd pfd[8 + LOOP_MAX_QMP];
        int n = 0;
        int i_sig = n;
        pfd[n++] = (struct pollfd){ .fd = sig_pipe[0], .events = POLLIN };
        int i_wake = n;
        pfd[n++] =
            (struct pollfd){ .fd = session_event_fd(s), .events = POLLIN };
        int i_term = -1, i_hl = -1, i_hc = -1, i_ql = -1, i_q0 = n;
        for (int i = 0; i < LOOP_MAX_QMP; i++) {
            struct qmp_client *c = l->qmp[i];
            pfd[n++] =
                (struct pollfd){ .fd = c ? qmp_client_fd(c) : -1,
                                 .events = c ? qmp_client_poll_events(c) : 0 };
        }
        if (l->term) {
            i_term = n;
            pfd[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
        }
        if (l->hmp_listen >= 0 && l->hmp.fd < 0) {
            i_hl = n;
            pfd[n++] = (struct pollfd){ .fd = l->hmp_listen, .events = POLLIN };
        }
        if (l->hmp.fd >= 0) {
            i_hc = n;
            pfd[n++] =
                (struct pollfd){ .fd = l->hmp.fd,
                                 .events = hmp_client_poll_events(&l->hmp) };
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
        for (int i = 0; i < LOOP_MAX_QMP; i++) {
            if (l->qmp[i] && pfd[i_q0 + i].revents) {
                qmp_client_ready(l->qmp[i], pfd[i_q0 + i].revents);
            }
        }
        if (i_term >= 0 && pfd[i_term].revents && !term_readable(l->term)) {
            /* End of input on stdin: Ctrl-D or the end of a script. */
            session_request_quit(s);
        }
        if (i_hc >= 0 && pfd[i_hc].revents) {
            hmp_client_ready(l, pfd[i_hc].revents);
        }
        drop_gone_clients(l);
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
    drain_output(l);
}

void mon_loop_free(struct mon_loop *l)
{
    if (!l) {
        return;
    }
    session_unsubscribe(l->s, forward_event, l);
    session_remove_exec_hook(l->s, keep_across_exec, l);
    term_free(l->term);
    hmp_client_close(l);
    for (int i = 0; i < LOOP_MAX_QMP; i++) {
        qmp_client_free(l->qmp[i]);
        l->qmp[i] = NULL;
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
