/* Whole reads and writes, mkdir -p. */
#include "util/io.h"

#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/iov.h"

ssize_t io_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* Where write_loop writes. */
enum write_dest {
    AT_OFFSET,     /* pwritev at off */
    AT_POSITION,   /* writev at the file position */
    STREAM,        /* a channel's pipe or file: writev, waiting out
                         * EAGAIN on a descriptor made non-blocking */
    STREAM_SOCKET, /* the same with sendmsg(MSG_NOSIGNAL) */
};

/* The one write loop: interrupted and short writes go on. */
static bool write_loop(int fd, struct iovec *iov, int cnt, enum write_dest dest,
                       uint64_t off)
{
    while (cnt > 0) {
        int batch = cnt < IOV_MAX ? cnt : IOV_MAX;
        ssize_t n;
        if (dest == AT_OFFSET) {
            n = pwritev(fd, iov, batch, (off_t)off);
        } else if (dest == STREAM_SOCKET) {
            struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)batch };
            n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        } else {
            n = writev(fd, iov, batch);
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN && dest >= STREAM) {
            /* Sleep until there is room rather than spin. */
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            (void)poll(&pfd, 1, -1);
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = ENOSPC;
            }
            return false;
        }
        off += (uint64_t)n;
        iov_advance(&iov, &cnt, (size_t)n);
    }
    return true;
}

bool io_pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off)
{
    return write_loop(fd, iov, cnt, AT_OFFSET, off);
}

bool io_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    return len == 0 || write_loop(fd, &iov, 1, AT_OFFSET, off);
}

bool io_write_full(int fd, const void *buf, size_t len)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    return len == 0 || write_loop(fd, &iov, 1, AT_POSITION, 0);
}

bool io_writev_full(int fd, struct iovec *iov, int cnt, bool socket)
{
    return write_loop(fd, iov, cnt, socket ? STREAM_SOCKET : STREAM, 0);
}

bool mkdir_p(const char *path, mode_t mode, Error **errp)
{
    char *dir = xstrdup(path);
    /* Each parent in turn, then path itself. */
    for (char *p = dir + (*dir != '\0');; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }
        char c = *p;
        *p = '\0';
        if (mkdir(dir, mode) < 0 && errno != EEXIST) {
            error_setg_errno(errp, errno, "cannot create directory '%s'", dir);
            free(dir);
            return false;
        }
        *p = c;
        if (!c) {
            break;
        }
    }
    free(dir);
    return true;
}

bool io_adopt_fd(int fd)
{
    int fl = fd < 0 ? -1 : fcntl(fd, F_GETFD);
    return fl >= 0 && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) == 0;
}
