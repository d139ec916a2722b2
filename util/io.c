/* Whole reads and writes, mkdir -p. */
#include "util/io.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
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

/* The one write loop: pwritev at *off, or writev at the file position
 * when off is NULL. */
static bool writev_loop(int fd, struct iovec *iov, int cnt, uint64_t *off)
{
    while (cnt > 0) {
        int batch = cnt < IOV_MAX ? cnt : IOV_MAX;
        ssize_t n = off ? pwritev(fd, iov, batch, (off_t)*off)
                        : writev(fd, iov, batch);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = ENOSPC;
            }
            return false;
        }
        if (off) {
            *off += (uint64_t)n;
        }
        iov_advance(&iov, &cnt, (size_t)n);
    }
    return true;
}

bool io_pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off)
{
    return writev_loop(fd, iov, cnt, &off);
}

bool io_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    return len == 0 || writev_loop(fd, &iov, 1, &off);
}

bool io_write_full(int fd, const void *buf, size_t len)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    return len == 0 || writev_loop(fd, &iov, 1, NULL);
}

bool mkdir_p(const char *path, mode_t mode, Error **errp)
{
    char *dir = strdup(path);
    if (!dir) {
        abort();
    }
    /* Each parent in turn, then path itself. */
    for (char *p = dir + (*dir != '\0'); ; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }
        char c = *p;
        *p = '\0';
        if (mkdir(dir, mode) < 0 && errno != EEXIST) {
            error_setg_errno(errp, errno, "cannot create directory '%s'",
                             dir);
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
