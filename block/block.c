/* Opening images and dispatching I/O to their format's driver. */
#include "block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Probe order matters: raw accepts anything, so it comes last. */
static const struct block_driver *const drivers[] = {
    &block_driver_raw,
    NULL
};

const struct block_driver *blk_find_driver(const char *format)
{
    for (int i = 0; drivers[i]; i++) {
        if (strcmp(drivers[i]->format, format) == 0) {
            return drivers[i];
        }
    }
    return NULL;
}

static const struct block_driver *probe(int fd)
{
    uint8_t head[512];
    ssize_t n = pread(fd, head, sizeof(head), 0);
    for (int i = 0; drivers[i]; i++) {
        if (n > 0 && drivers[i]->probe && drivers[i]->probe(head, (size_t)n)) {
            return drivers[i];
        }
    }
    return &block_driver_raw;
}

BlockDev *blk_open(const char *path, const char *format, bool readonly,
                   Error **errp)
{
    const struct block_driver *drv = NULL;
    if (format && !(drv = blk_find_driver(format))) {
        error_setg(errp, "'%s': unknown image format '%s'", path, format);
        return NULL;
    }
    int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot open '%s'", path);
        return NULL;
    }
    if (!drv) {
        drv = probe(fd);
    }
    BlockDev *bs = calloc(1, sizeof(*bs));
    if (!bs || !(bs->filename = strdup(path))) {
        abort();
    }
    bs->drv = drv;
    bs->fd = fd;
    bs->readonly = readonly;
    if (!drv->open(bs, fd, readonly, errp)) {
        error_prepend(errp, "'%s': ", path);
        close(fd);
        free(bs->filename);
        free(bs);
        return NULL;
    }
    return bs;
}

void blk_close(BlockDev *bs)
{
    if (!bs) {
        return;
    }
    if (bs->drv->close) {
        bs->drv->close(bs);
    }
    close(bs->fd);
    free(bs->filename);
    free(bs);
}

bool blk_pread(BlockDev *bs, uint64_t off, void *buf, size_t len,
               Error **errp)
{
    if (off > blk_size(bs) || len > blk_size(bs) - off) {
        error_setg(errp, "'%s': read of %zu bytes at %llu is past the end "
                   "(%llu bytes)", bs->filename, len, (unsigned long long)off,
                   (unsigned long long)blk_size(bs));
        return false;
    }
    return bs->drv->pread(bs, off, buf, len, errp);
}

bool blk_pwrite(BlockDev *bs, uint64_t off, const void *buf, size_t len,
                Error **errp)
{
    if (bs->readonly) {
        error_setg(errp, "'%s' is read-only", bs->filename);
        return false;
    }
    if (off > blk_size(bs) || len > blk_size(bs) - off) {
        error_setg(errp, "'%s': write of %zu bytes at %llu is past the end "
                   "(%llu bytes)", bs->filename, len, (unsigned long long)off,
                   (unsigned long long)blk_size(bs));
        return false;
    }
    return bs->drv->pwrite(bs, off, buf, len, errp);
}

bool blk_flush(BlockDev *bs, Error **errp)
{
    return bs->drv->flush ? bs->drv->flush(bs, errp) : true;
}

uint64_t blk_size(BlockDev *bs)
{
    return bs->drv->size(bs);
}

const char *blk_format(const BlockDev *bs)
{
    return bs->drv->format;
}
