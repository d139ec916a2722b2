/* Whole reads and writes of a file descriptor, and directory creation.
 * The read and write helpers keep pread(2)'s contract (errno, no Error):
 * each caller names the file and offset in its own message. */
#ifndef HOP_UTIL_IO_H
#define HOP_UTIL_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util/error.h"

/* Reads len bytes at off, going on after interrupted and short reads.
 * Returns the bytes read, fewer than len only where the file ends, or -1
 * with errno set. */
ssize_t io_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* Writes all of buf at off, going on after interrupted and short
 * writes; false with errno set (ENOSPC where the file takes no more). */
bool io_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* The same for a vector; iov is consumed (its elements are advanced). */
bool io_pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off);
/* Writes all of buf at the file position (a terminal, a pipe). */
bool io_write_full(int fd, const void *buf, size_t len);
/* Writes a whole vector to a stream: a pipe or file, or with socket a
 * stream socket through sendmsg(MSG_NOSIGNAL), so that a vanished peer
 * is EPIPE rather than a signal.  Would-block (a descriptor someone made
 * non-blocking) is waited out; iov is consumed. */
bool io_writev_full(int fd, struct iovec *iov, int cnt, bool socket);

/* Takes over a descriptor this process inherited (cpr-exec, fd: URIs):
 * false if fd is not open; otherwise it becomes close-on-exec, so that
 * nothing this process starts inherits it in turn. */
bool io_adopt_fd(int fd);

/* mkdir -p: path and every missing parent, made with mode.  The error
 * names the directory that could not be made. */
bool mkdir_p(const char *path, mode_t mode, Error **errp);

#endif
