/* Parsing migration URIs and opening their connections. */
#include "migration/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/parse.h"
#include "util/alloc.h"
#include "util/io.h"

void mig_uri_clear(struct mig_uri *u)
{
    free(u->host);
    free(u->port);
    free(u->path);
    free(u->cmd);
    free(u->fdname);
    memset(u, 0, sizeof(*u));
}

bool mig_uri_parse(const char *uri, struct mig_uri *u, Error **errp)
{
    memset(u, 0, sizeof(*u));
    if (strncmp(uri, "tcp:", 4) == 0) {
        const char *hp = uri + 4, *colon;
        u->kind = MIG_URI_TCP;
        if (*hp == '[') {
            const char *close = strchr(hp, ']');
            if (!close || close[1] != ':') {
                error_setg(errp, "'%s': expected tcp:[IPV6]:PORT", uri);
                return false;
            }
            u->host = xstrndup(hp + 1, (size_t)(close - hp - 1));
            colon = close + 1;
        } else {
            colon = strrchr(hp, ':');
            if (!colon) {
                error_setg(errp, "'%s': expected tcp:HOST:PORT", uri);
                return false;
            }
            u->host = xstrndup(hp, (size_t)(colon - hp));
        }
        u->port = xstrdup(colon + 1);
        if (!*u->port) {
            error_setg(errp, "'%s': the port is missing", uri);
            mig_uri_clear(u);
            return false;
        }
        return true;
    }
    if (strncmp(uri, "unix:", 5) == 0) {
        u->kind = MIG_URI_UNIX;
        u->path = xstrdup(uri + 5);
        if (!*u->path ||
            strlen(u->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            error_setg(errp, "'%s': the socket path is empty or too long", uri);
            mig_uri_clear(u);
            return false;
        }
        return true;
    }
    if (strncmp(uri, "exec:", 5) == 0) {
        u->kind = MIG_URI_EXEC;
        u->cmd = xstrdup(uri + 5);
        if (!*u->cmd) {
            error_setg(errp, "'%s': the command is empty", uri);
            mig_uri_clear(u);
            return false;
        }
        return true;
    }
    if (strncmp(uri, "fd:", 3) == 0) {
        u->kind = MIG_URI_FD;
        u->fdname = xstrdup(uri + 3);
        if (!*u->fdname) {
            error_setg(errp, "'%s': the descriptor name is empty", uri);
            mig_uri_clear(u);
            return false;
        }
        return true;
    }
    if (strncmp(uri, "file:", 5) == 0) {
        u->kind = MIG_URI_FILE;
        const char *p = uri + 5;
        const char *comma = strstr(p, ",offset=");
        u->path = xstrndup(p, comma ? (size_t)(comma - p) : strlen(p));
        if (comma) {
            int64_t off;
            if (!parse_int(comma + 8, &off) || off < 0) {
                error_setg(errp, "'%s': bad offset '%s'", uri, comma + 8);
                mig_uri_clear(u);
                return false;
            }
            u->offset = (uint64_t)off;
        }
        if (!*u->path) {
            error_setg(errp, "'%s': the file name is empty", uri);
            mig_uri_clear(u);
            return false;
        }
        return true;
    }
    if (strncmp(uri, "memfd:", 6) == 0) {
        u->kind = MIG_URI_MEMFD;
        u->fdname = xstrdup(uri + 6);
        return true;
    }
    error_setg(errp,
               "unknown migration protocol: '%s' (expected tcp:, "
               "unix:, exec:, fd:, file: or memfd:)",
               uri);
    return false;
}

bool mig_uri_is_socket(const struct mig_uri *u)
{
    return u->kind == MIG_URI_TCP || u->kind == MIG_URI_UNIX;
}

/* ---- descriptor table ---- */

#define FD_TABLE_MAX 32

struct fd_table {
    char *names[FD_TABLE_MAX];
    int fds[FD_TABLE_MAX];
};

struct fd_table *fd_table_new(void)
{
    return xcalloc(1, sizeof(struct fd_table));
}

void fd_table_free(struct fd_table *t)
{
    if (!t) {
        return;
    }
    for (int i = 0; i < FD_TABLE_MAX; i++) {
        if (t->names[i]) {
            free(t->names[i]);
            close(t->fds[i]);
        }
    }
    free(t);
}

bool fd_table_add(struct fd_table *t, const char *name, int fd, Error **errp)
{
    int slot = -1;
    for (int i = 0; i < FD_TABLE_MAX; i++) {
        if (t->names[i] && strcmp(t->names[i], name) == 0) {
            close(t->fds[i]); /* replaced, as QEMU does */
            t->fds[i] = fd;
            return true;
        }
        if (!t->names[i] && slot < 0) {
            slot = i;
        }
    }
    if (slot < 0) {
        error_setg(errp, "too many named descriptors (at most %d)",
                   FD_TABLE_MAX);
        return false;
    }
    t->names[slot] = xstrdup(name);
    t->fds[slot] = fd;
    return true;
}

int fd_table_take(struct fd_table *t, const char *name)
{
    for (int i = 0; i < FD_TABLE_MAX; i++) {
        if (t->names[i] && strcmp(t->names[i], name) == 0) {
            int fd = t->fds[i];
            free(t->names[i]);
            t->names[i] = NULL;
            return fd;
        }
    }
    return -1;
}

bool fd_table_close(struct fd_table *t, const char *name, Error **errp)
{
    int fd = fd_table_take(t, name);
    if (fd < 0) {
        error_setg(errp, "File descriptor named '%s' not found", name);
        return false;
    }
    close(fd);
    return true;
}

/* ---- connections ---- */

static void tune_socket(int fd, bool tcp)
{
    int one = 1;
    int buf = 4 << 20;
    if (tcp) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

void mig_socket_favor_latency(int fd)
{
    int buf = MIG_LATENCY_SOCKET_BUF;
    if (fd < 0) {
        return;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

static int tcp_socket(const struct mig_uri *u, bool listening, Error **errp)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = listening ? AI_PASSIVE : 0 };
    struct addrinfo *res;
    const char *host = u->host && *u->host ? u->host : NULL;
    int r = getaddrinfo(host, u->port, &hints, &res);
    if (r != 0) {
        error_setg(errp, "cannot resolve '%s:%s': %s", host ? host : "",
                   u->port, gai_strerror(r));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (listening) {
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
                listen(fd, 16) == 0) {
                break;
            }
        } else if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            tune_socket(fd, true);
            break;
        }
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        error_setg_errno(errp, err, "cannot %s tcp:%s:%s",
                         listening ? "listen on" : "connect to",
                         host ? host : "", u->port);
    }
    return fd;
}

/* A stale socket at path may go (a listener left it); any other file
 * stays where it is. */
static bool replace_socket_file(const char *path, Error **errp)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT) {
            return true;
        }
        error_setg_errno(errp, errno, "unix:%s: cannot check the path", path);
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        error_setg(errp,
                   "unix:%s: the path exists and is not a socket; "
                   "refusing to replace it",
                   path);
        return false;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        error_setg_errno(errp, errno, "unix:%s: cannot remove the old socket",
                         path);
        return false;
    }
    return true;
}

static int unix_socket(const struct mig_uri *u, bool listening, Error **errp)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "socket");
        return -1;
    }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", u->path);
    int r;
    if (listening) {
        if (!replace_socket_file(u->path, errp)) {
            close(fd);
            return -1;
        }
        /* Only the owner may connect, as with the monitor: Linux gives
         * the socket file the mode of the socket itself (less umask). */
        if (fchmod(fd, 0600) < 0) {
            error_setg_errno(errp, errno, "unix:%s: cannot set mode 0600",
                             u->path);
            close(fd);
            return -1;
        }
        r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
        if (r == 0) {
            r = listen(fd, 16);
        }
    } else {
        r = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
        if (r == 0) {
            tune_socket(fd, false);
        }
    }
    if (r < 0) {
        error_setg_errno(errp, errno, "cannot %s unix:%s",
                         listening ? "listen on" : "connect to", u->path);
        close(fd);
        return -1;
    }
    return fd;
}

/* Runs cmd with sh -c; our end of the pipe is returned.
 *
 * posix_spawn, not fork: the child must never run with hop's signal
 * handlers (a SIGTERM from a cancel reaching it before its exec would
 * make hop itself quit), and hop's page tables (guest RAM) are not worth
 * copying.  The command gets its own process group, so that a cancel
 * stops all of it and the terminal's Ctrl-C goes to hop (which cancels);
 * default signal dispositions; and no descriptor of hop's but the pipe
 * (everything else is close-on-exec). */
static int spawn(const char *cmd, bool to_child, pid_t *pid, Error **errp)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        error_setg_errno(errp, errno, "pipe");
        return -1;
    }
    int theirs = to_child ? p[0] : p[1], ours = to_child ? p[1] : p[0];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    /* Onto itself too: that clears close-on-exec. */
    posix_spawn_file_actions_adddup2(&fa, theirs, to_child ? 0 : 1);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                 POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    char sh[] = "sh", dash_c[] = "-c";
    char *argv[] = { sh, dash_c, (char *)cmd, NULL };
    pid_t child;
    int r = posix_spawn(&child, "/bin/sh", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(theirs);
    if (r != 0) {
        error_setg_errno(errp, r, "cannot run /bin/sh for '%s'", cmd);
        close(ours);
        return -1;
    }
    *pid = child;
    return ours;
}

/* Drops what a file holds past offset.  Only when there is something:
 * truncating an empty file is not free on every file system (ext4 then
 * writes the new data back synchronously when the file is closed). */
static bool cut_file_at(int fd, uint64_t offset)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return false;
    }
    return (uint64_t)st.st_size <= offset || ftruncate(fd, (off_t)offset) == 0;
}

bool mig_connect(const struct mig_uri *u, struct fd_table *fds,
                 struct mig_conn *c, Error **errp)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    switch (u->kind) {
    case MIG_URI_TCP:
        c->fd = tcp_socket(u, false, errp);
        c->is_socket = true;
        break;
    case MIG_URI_UNIX:
        c->fd = unix_socket(u, false, errp);
        c->is_socket = true;
        break;
    case MIG_URI_EXEC:
        c->fd = spawn(u->cmd, true, &c->child, errp);
        break;
    case MIG_URI_FD:
        c->fd = fd_table_take(fds, u->fdname);
        if (c->fd < 0) {
            error_setg(errp,
                       "File descriptor named '%s' not found (pass it "
                       "with getfd first)",
                       u->fdname);
        } else {
            int type;
            socklen_t len = sizeof(type);
            c->is_socket =
                getsockopt(c->fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
        }
        break;
    case MIG_URI_MEMFD:
        c->fd = memfd_create("hop-cpr-state", MFD_CLOEXEC);
        if (c->fd < 0) {
            error_setg_errno(errp, errno, "memfd_create");
        }
        break;
    case MIG_URI_FILE:
        c->fd = open(u->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (c->fd < 0) {
            error_setg_errno(errp, errno, "cannot open '%s'", u->path);
        } else if (!cut_file_at(c->fd, u->offset) ||
                   lseek(c->fd, (off_t)u->offset, SEEK_SET) < 0) {
            error_setg_errno(errp, errno, "cannot seek '%s' to %llu", u->path,
                             (unsigned long long)u->offset);
            close(c->fd);
            c->fd = -1;
        }
        break;
    }
    return c->fd >= 0;
}

/* A number naming a descriptor hop inherited, or -1. */
static int inherited_fd(const char *num)
{
    int64_t n;
    if (!parse_int(num, &n) || n < 0 || n > INT_MAX || !io_adopt_fd((int)n)) {
        return -1;
    }
    return (int)n;
}

bool mig_listen(const struct mig_uri *u, struct fd_table *fds, int *lfd,
                struct mig_conn *c, Error **errp)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    *lfd = -1;
    switch (u->kind) {
    case MIG_URI_TCP:
        *lfd = tcp_socket(u, true, errp);
        return *lfd >= 0;
    case MIG_URI_UNIX:
        *lfd = unix_socket(u, true, errp);
        return *lfd >= 0;
    case MIG_URI_EXEC:
        c->fd = spawn(u->cmd, false, &c->child, errp);
        break;
    case MIG_URI_FD:
        c->fd = fd_table_take(fds, u->fdname);
        if (c->fd < 0) {
            c->fd = inherited_fd(u->fdname);
            if (c->fd < 0) {
                error_setg(errp, "File descriptor named '%s' not found",
                           u->fdname);
            }
        }
        break;
    case MIG_URI_MEMFD:
        c->fd = inherited_fd(u->fdname);
        if (c->fd < 0) {
            error_setg(errp,
                       "memfd:%s: not a descriptor this process inherited "
                       "(memfd:N is what cpr-exec passes to the new hop)",
                       u->fdname);
        } else {
            lseek(c->fd, 0, SEEK_SET);
        }
        break;
    case MIG_URI_FILE:
        c->fd = open(u->path, O_RDONLY | O_CLOEXEC);
        if (c->fd < 0) {
            error_setg_errno(errp, errno, "cannot open '%s'", u->path);
        } else if (lseek(c->fd, (off_t)u->offset, SEEK_SET) < 0) {
            error_setg_errno(errp, errno, "cannot seek '%s'", u->path);
            close(c->fd);
            c->fd = -1;
        }
        break;
    }
    return c->fd >= 0;
}

void mig_peer_name(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN];
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            snprintf(buf, len, "tcp:%s:%u", host, ntohs(a->sin_port));
            return;
        }
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            snprintf(buf, len, "tcp:[%s]:%u", host, ntohs(a->sin6_port));
            return;
        }
    }
    /* A unix client has no address; its process is what names it. */
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 &&
        cred.pid > 0) {
        snprintf(buf, len, "unix client pid %d", (int)cred.pid);
        return;
    }
    snprintf(buf, len, "peer on descriptor %d", fd);
}

void mig_conn_abort(struct mig_conn *c)
{
    if (c->fd >= 0 && c->is_socket) {
        shutdown(c->fd, SHUT_RDWR);
    }
    /* The command and whatever it started; it is not reaped yet, so
     * the number is still its own. */
    if (c->child > 0 && kill(-c->child, SIGTERM) < 0) {
        kill(c->child, SIGTERM);
    }
}

struct mig_conn mig_conn_take(struct mig_conn *c, pthread_mutex_t *lock)
{
    pthread_mutex_lock(lock);
    struct mig_conn taken = *c;
    c->fd = -1;
    c->child = 0;
    pthread_mutex_unlock(lock);
    return taken;
}

bool mig_conn_close(struct mig_conn *c, Error **errp)
{
    bool ok = true;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->child > 0) {
        int status = 0;
        pid_t r;
        do {
            r = waitpid(c->child, &status, 0);
        } while (r < 0 && errno == EINTR);
        if (r < 0) {
            error_setg_errno(errp, errno,
                             "cannot wait for the migration "
                             "command (pid %d)",
                             (int)c->child);
            ok = false;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            error_setg(errp, "the migration command exited with status %d",
                       WIFEXITED(status) ? WEXITSTATUS(status)
                                         : 128 + WTERMSIG(status));
            ok = false;
        }
        c->child = 0;
    }
    return ok;
}
