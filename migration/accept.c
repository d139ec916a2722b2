/* The incoming listener: connections wait side by side for their header. */
#include "migration/accept.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/cpr.h"
#include "ram/ram-multifd.h"
#include "util/clock.h"
#include "vmstate/stream-format.h"

/* How soon to look again at a connection that sent part of a header
 * (poll would report it readable without pause). */
#define RECHECK_NS (20 * 1000 * 1000ull)

void mig_acceptor_init(struct mig_acceptor *a, int lfd, int wake_fd)
{
    memset(a, 0, sizeof(*a));
    a->lfd = lfd;
    a->wake_fd = wake_fd;
    a->timeout_ms = MIG_HEADER_TIMEOUT_MS;
    int fl = fcntl(lfd, F_GETFL);
    if (fl >= 0) {
        fcntl(lfd, F_SETFL, fl | O_NONBLOCK);
    }
}

static void drop(struct mig_acceptor *a, int i)
{
    close(a->pending[i].fd);
    a->pending[i] = a->pending[--a->npending];
}

static void drop_warn(struct mig_acceptor *a, int i, const char *why)
{
    error_report("incoming migration: %s %s; connection closed",
                 a->pending[i].peer, why);
    drop(a, i);
}

enum verdict {
    V_WAIT,
    V_PARTIAL,
    V_MAIN,
    V_MULTIFD,
    V_CPR,
    V_PREEMPT,
    V_EOF,
    V_BAD
};

/* Peeks at what has come so far. */
static enum verdict classify(int fd, bool resume, int *err)
{
    uint8_t head[MULTIFD_HEADER_LEN];
    ssize_t n;
    do {
        n = recv(fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        *err = errno;
        return errno == EAGAIN || errno == EWOULDBLOCK ? V_WAIT : V_BAD;
    }
    *err = 0;
    if (n == 0) {
        return V_EOF;
    }
    size_t got = (size_t)n;
    if (resume && head[0] == STREAM_COMMAND) {
        return V_MAIN;
    }
    size_t m = got < 4 ? got : 4;
    if (memcmp(head, "QEVM", m) == 0) {
        return got >= 4 ? V_MAIN : V_PARTIAL;
    }
    if (memcmp(head, CPR_MAGIC, m) == 0) {
        return got >= CPR_MAGIC_LEN ? V_CPR : V_PARTIAL;
    }
    if (memcmp(head, POSTCOPY_PREEMPT_MAGIC, m) == 0) {
        return got >= 4 ? V_PREEMPT : V_PARTIAL;
    }
    m = got < MULTIFD_MAGIC_LEN ? got : MULTIFD_MAGIC_LEN;
    if (memcmp(head, multifd_channel_magic, m) == 0) {
        return got >= MULTIFD_HEADER_LEN ? V_MULTIFD : V_PARTIAL;
    }
    return V_BAD;
}

/* Looks at pending connection i: true if it was taken (*found) or
 * dropped, so that slot i now holds another one. */
static bool examine(struct mig_acceptor *a, int i, uint64_t now,
                    struct mig_conn *c, enum mig_conn_kind *kind, char *peer,
                    size_t peer_len, bool *found)
{
    struct mig_pending *p = &a->pending[i];
    int err;
    enum verdict v = classify(p->fd, a->resume, &err);
    switch (v) {
    case V_MAIN:
    case V_MULTIFD:
    case V_CPR:
    case V_PREEMPT:
        *kind = v == V_MAIN  ? MIG_CONN_MAIN
            : v == V_CPR     ? MIG_CONN_CPR
            : v == V_PREEMPT ? MIG_CONN_PREEMPT
                             : MIG_CONN_MULTIFD;
        memset(c, 0, sizeof(*c));
        c->fd = p->fd;
        c->is_socket = true;
        snprintf(peer, peer_len, "%s", p->peer);
        a->pending[i] = a->pending[--a->npending];
        *found = true;
        return true;
    case V_PARTIAL:
        if (p->hung_up) {
            drop_warn(a, i, "hung up in the middle of its header");
            return true;
        }
        p->recheck_ns = now + RECHECK_NS;
        return false;
    case V_WAIT:
        p->recheck_ns = 0;
        return false;
    case V_EOF:
        drop_warn(a, i,
                  "closed the connection before sending a migration "
                  "header");
        return true;
    case V_BAD:
    default:
        if (err) {
            char why[128];
            snprintf(why, sizeof(why), "failed before sending a header: %s",
                     strerror(err));
            drop_warn(a, i, why);
        } else {
            drop_warn(a, i,
                      "sent neither a migration stream nor a multifd "
                      "or cpr channel header");
        }
        return true;
    }
}

static bool take_new(struct mig_acceptor *a, uint64_t now, Error **errp)
{
    while (a->npending < MIG_ACCEPT_MAX_PENDING) {
        int fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED || errno == EPROTO) {
                return true; /* none left, or one gone already */
            }
            error_setg_errno(errp, errno, "incoming migration: accept");
            return false;
        }
        int buf = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
        struct mig_pending *p = &a->pending[a->npending++];
        p->fd = fd;
        p->deadline_ns = now + (uint64_t)a->timeout_ms * 1000000ull;
        p->recheck_ns = 0;
        p->hung_up = false;
        mig_peer_name(fd, p->peer, sizeof(p->peer));
    }
    return true;
}

int mig_acceptor_next(struct mig_acceptor *a, struct mig_conn *c,
                      enum mig_conn_kind *kind, char *peer, size_t peer_len,
                      Error **errp)
{
    for (;;) {
        uint64_t now = clock_mono_ns();
        bool found = false;
        for (int i = 0; i < a->npending;) {
            if (examine(a, i, now, c, kind, peer, peer_len, &found)) {
                if (found) {
                    return 1;
                }
                continue; /* slot i now holds another one */
            }
            if (now >= a->pending[i].deadline_ns) {
                char why[96];
                snprintf(why, sizeof(why),
                         "sent no migration header within "
                         "%d ms",
                         a->timeout_ms);
                drop_warn(a, i, why);
                continue;
            }
            i++;
        }

        struct pollfd pfd[2 + MIG_ACCEPT_MAX_PENDING];
        int n = 0;
        pfd[n++] = (struct pollfd){ .fd = a->wake_fd, .events = POLLIN };
        int lfd_at = -1;
        if (a->npending < MIG_ACCEPT_MAX_PENDING) {
            lfd_at = n;
            pfd[n++] = (struct pollfd){ .fd = a->lfd, .events = POLLIN };
        }
        uint64_t next = UINT64_MAX;
        int first = n;
        for (int i = 0; i < a->npending; i++) {
            struct mig_pending *p = &a->pending[i];
            /* With part of a header in, POLLIN would fire at once: only
             * a hang-up wakes us before the recheck. */
            pfd[n++] = (struct pollfd){ .fd = p->fd,
                                        .events = p->recheck_ns ? 0 : POLLIN };
            uint64_t t = p->recheck_ns && p->recheck_ns < p->deadline_ns
                ? p->recheck_ns
                : p->deadline_ns;
            if (t < next) {
                next = t;
            }
        }
        int timeout = -1;
        if (next != UINT64_MAX) {
            timeout = next <= now ? 0 : (int)((next - now + 999999) / 1000000);
        }
        int r = poll(pfd, (nfds_t)n, timeout);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            error_setg_errno(errp, errno, "incoming migration: poll");
            return -1;
        }
        if (pfd[0].revents) {
            return 0;
        }
        for (int i = 0; i < a->npending; i++) {
            if (pfd[first + i].revents & (POLLHUP | POLLERR)) {
                a->pending[i].hung_up = true;
            }
        }
        if (lfd_at >= 0 && pfd[lfd_at].revents) {
            if (pfd[lfd_at].revents & (POLLERR | POLLNVAL)) {
                error_setg(errp,
                           "incoming migration: the listening socket "
                           "failed");
                return -1;
            }
            if (!take_new(a, clock_mono_ns(), errp)) {
                return -1;
            }
        }
    }
}

void mig_acceptor_clear(struct mig_acceptor *a)
{
    while (a->npending > 0) {
        drop(a, a->npending - 1);
    }
}
