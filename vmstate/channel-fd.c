/* Channel backends over a file descriptor: regular files and pipes use
 * writev/read, stream sockets use sendmsg(MSG_NOSIGNAL)/recv so a vanished
 * peer is an error rather than a signal, and shutdown() cancels. */
#include "vmstate/channel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/io.h"
#include "util/guest-reads.h"

struct fd_backend {
    int fd;
    bool own_fd;
    bool is_socket;
};

static ssize_t fd_writev(void *opaque, const struct iovec *iov_in, int iovcnt,
                         Error **errp)
{
    struct fd_backend *b = opaque;
    struct iovec iov[64];
    size_t total = 0;
    if (iovcnt > 64) {
        error_setg(errp, "too many iovecs");
        return -1;
    }
    memcpy(iov, iov_in, sizeof(*iov) * (size_t)iovcnt);
    for (int i = 0; i < iovcnt; i++) {
        total += iov[i].iov_len;
    }
    /* Pages put by reference are read from guest RAM here. */
    GUEST_READS_BEGIN();
    bool ok = io_writev_full(b->fd, iov, iovcnt, b->is_socket);
    GUEST_READS_END();
    if (!ok) {
        error_setg_errno(errp, errno, "writev");
        return -1;
    }
    return (ssize_t)total;
}

static ssize_t fd_read(void *opaque, void *buf, size_t len, Error **errp)
{
    struct fd_backend *b = opaque;
    for (;;) {
        ssize_t n =
            b->is_socket ? recv(b->fd, buf, len, 0) : read(b->fd, buf, len);
        if (n >= 0) {
            return n;
        }
        if (errno != EINTR && errno != EAGAIN) {
            error_setg_errno(errp, errno, "read");
            return -1;
        }
    }
}

static bool fd_close(void *opaque, Error **errp)
{
    struct fd_backend *b = opaque;
    bool ok = true;
    if (b->own_fd && close(b->fd) < 0) {
        error_setg_errno(errp, errno, "close");
        ok = false;
    }
    free(b);
    return ok;
}

static void fd_shutdown(void *opaque)
{
    struct fd_backend *b = opaque;
    if (b->is_socket) {
        shutdown(b->fd, SHUT_RDWR);
    }
}

static int fd_get_fd(void *opaque)
{
    return ((struct fd_backend *)opaque)->fd;
}

static const struct chan_ops fd_ops = {
    .writev = fd_writev,
    .read = fd_read,
    .close = fd_close,
    .shutdown = fd_shutdown,
    .get_fd = fd_get_fd,
};

static Channel *new_fd_channel(int fd, bool writable, bool own_fd,
                               bool is_socket, const char *name)
{
    struct fd_backend *b = xcalloc(1, sizeof(*b));
    b->fd = fd;
    b->own_fd = own_fd;
    b->is_socket = is_socket;
    return chan_new(&fd_ops, b, writable, name);
}

Channel *chan_new_fd(int fd, bool writable, bool own_fd, const char *name)
{
    return new_fd_channel(fd, writable, own_fd, false, name);
}

Channel *chan_new_socket(int fd, bool writable, bool own_fd, const char *name)
{
    return new_fd_channel(fd, writable, own_fd, true, name);
}
