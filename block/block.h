/* Block devices: one interface over the image formats in block/ (raw,
 * qcow2).  Offsets and lengths are in bytes; I/O need not be aligned. */
#ifndef HOP_BLOCK_BLOCK_H
#define HOP_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct BlockDev BlockDev;

struct block_driver {
    const char *format;                 /* "raw", "qcow2" */
    /* Does this header look like ours?  (For probing.) */
    bool (*probe)(const uint8_t *head, size_t len);
    bool (*open)(BlockDev *bs, int fd, bool readonly, Error **errp);
    void (*close)(BlockDev *bs);
    bool (*pread)(BlockDev *bs, uint64_t off, void *buf, size_t len,
                  Error **errp);
    bool (*pwrite)(BlockDev *bs, uint64_t off, const void *buf, size_t len,
                   Error **errp);
    bool (*flush)(BlockDev *bs, Error **errp);
    uint64_t (*size)(BlockDev *bs);
};

struct BlockDev {
    const struct block_driver *drv;
    char *filename;
    int fd;
    bool readonly;
    void *opaque;        /* driver state */
};

/* Open path as format ("raw", "qcow2"), or probe when format is NULL. */
BlockDev *blk_open(const char *path, const char *format, bool readonly,
                   Error **errp);
void blk_close(BlockDev *bs);
bool blk_pread(BlockDev *bs, uint64_t off, void *buf, size_t len,
               Error **errp);
bool blk_pwrite(BlockDev *bs, uint64_t off, const void *buf, size_t len,
                Error **errp);
bool blk_flush(BlockDev *bs, Error **errp);
uint64_t blk_size(BlockDev *bs);
const char *blk_format(const BlockDev *bs);
const struct block_driver *blk_find_driver(const char *format);

extern const struct block_driver block_driver_raw;

#endif
