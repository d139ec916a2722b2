/* The raw format: the file is the disk. */
#include "block/block.h"
#include "util/alloc.h"

#include <errno.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/io.h"

struct raw_state {
    uint64_t size;
};

static bool raw_open(BlockDev *bs, int fd, bool readonly, Error **errp)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "stat");
        return false;
    }
    struct raw_state *s = xcalloc(1, sizeof(*s));
    s->size = (uint64_t)st.st_size;
    bs->opaque = s;
    return true;
}

static void raw_close(BlockDev *bs)
{
    free(bs->opaque);
}

static bool raw_pread(BlockDev *bs, uint64_t off, void *buf, size_t len,
                      Error **errp)
{
    ssize_t n = io_pread_full(bs->fd, buf, len, off);
    if (n < 0) {
        error_setg_errno(errp, errno, "read at %llu", (unsigned long long)off);
        return false;
    }
    /* A file shorter than it was reads as zeros. */
    memset((uint8_t *)buf + n, 0, len - (size_t)n);
    return true;
}

static bool raw_pwrite(BlockDev *bs, uint64_t off, const void *buf, size_t len,
                       Error **errp)
{
    if (!io_pwrite_full(bs->fd, buf, len, off)) {
        error_setg_errno(errp, errno, "write at %llu", (unsigned long long)off);
        return false;
    }
    return true;
}

static bool raw_flush(BlockDev *bs, Error **errp)
{
    if (fdatasync(bs->fd) < 0) {
        error_setg_errno(errp, errno, "flush");
        return false;
    }
    return true;
}

static uint64_t raw_size(BlockDev *bs)
{
    return ((struct raw_state *)bs->opaque)->size;
}

static bool raw_create_check(uint64_t size, const char *options, Error **errp)
{
    if (options && *options) {
        error_setg(errp, "raw images take no options (got '%s')", options);
        return false;
    }
    if (size > INT64_MAX) {
        error_setg(errp, "size %llu is too large for a file",
                   (unsigned long long)size);
        return false;
    }
    return true;
}

static bool raw_create(int fd, uint64_t size, const char *options, Error **errp)
{
    /* Grow to the size first: if the file system refuses it, a file that
     * was there is left as it was.  Then empty it. */
    struct stat st;
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "stat");
        return false;
    }
    if (((uint64_t)st.st_size < size && ftruncate(fd, (off_t)size) < 0) ||
        ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0) {
        error_setg_errno(errp, errno, "cannot set size to %llu",
                         (unsigned long long)size);
        return false;
    }
    return true;
}

const struct block_driver block_driver_raw = {
    .format = "raw",
    .create_check = raw_create_check,
    .create = raw_create,
    .open = raw_open,
    .close = raw_close,
    .pread = raw_pread,
    .pwrite = raw_pwrite,
    .flush = raw_flush,
    .size = raw_size,
};
