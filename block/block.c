/* Opening images and dispatching I/O to their format's driver. */
#include "block/block.h"
#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/io.h"

/* Probe order matters: raw accepts anything, so it comes last. */
static const struct block_driver *const drivers[] = { &block_driver_qcow2,
                                                      &block_driver_raw, NULL };

const struct block_driver *blk_find_driver(const char *format)
{
    for (int i = 0; drivers[i]; i++) {
        if (strcmp(drivers[i]->format, format) == 0) {
            return drivers[i];
        }
    }
    return NULL;
}

/* How much of the file probing looks at (QEMU's first sector too). */
#define PROBE_LEN 512

static const struct block_driver *probe_head(const uint8_t *head, size_t n)
{
    for (int i = 0; n > 0 && drivers[i]; i++) {
        if (drivers[i]->probe && drivers[i]->probe(head, n)) {
            return drivers[i];
        }
    }
    return &block_driver_raw;
}

static const struct block_driver *probe(int fd)
{
    uint8_t head[PROBE_LEN];
    ssize_t n = io_pread_full(fd, head, sizeof(head), 0);
    return probe_head(head, n > 0 ? (size_t)n : 0);
}

/* Takes the locks the open flags ask for. */
static bool lock_as_opened(BlockDev *bs, Error **errp)
{
    return blk_lock_image(bs->fd, bs->filename, !bs->readonly,
                          bs->flags & BLK_OPEN_FORCE_SHARE, errp);
}

/* Reads the metadata into new driver state. */
static bool open_driver(BlockDev *bs, Error **errp)
{
    bs->chain_error = false;
    if (!bs->drv->open(bs, bs->fd, bs->readonly, errp)) {
        bs->opaque = NULL;
        if (!bs->backed || !bs->chain_error) {
            error_prepend(errp, "'%s': ", bs->filename);
        }
        return false;
    }
    return true;
}

static void close_driver(BlockDev *bs)
{
    if (bs->drv->close) {
        bs->drv->close(bs);
    }
    bs->opaque = NULL;
}

static void free_bs(BlockDev *bs)
{
    close(bs->fd);
    pthread_mutex_destroy(&bs->lock);
    free(bs->filename);
    free(bs);
}

static bool is_file_or_disk(int fd, const char *path, Error **errp)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "cannot stat '%s'", path);
        return false;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        error_setg(errp, "'%s' is neither a file nor a block device", path);
        return false;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        error_setg_errno(errp, errno, "'%s'", path);
        return false;
    }
    return true;
}

/* A backing file already in the chain above it would make reads go
 * round for ever. */
static bool in_chain(int fd, BlockDev *below, const char *path, Error **errp)
{
    struct stat st, other;
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "cannot stat '%s'", path);
        return true;
    }
    for (BlockDev *b = below; b; b = b->backed) {
        if (fstat(b->fd, &other) == 0 && other.st_dev == st.st_dev &&
            other.st_ino == st.st_ino) {
            error_setg(errp, "it is '%s' again: the backing chain loops",
                       b->filename);
            return true;
        }
    }
    return false;
}

/* Opens path; backed: the image it is the backing file of, or NULL. */
static BlockDev *open_image(const char *path, const char *format,
                            unsigned flags, BlockDev *backed, Error **errp)
{
    const struct block_driver *drv = NULL;
    bool readonly = !(flags & BLK_OPEN_RDWR);
    if (format && !(drv = blk_find_driver(format))) {
        error_setg(errp, "'%s': unknown image format '%s'", path, format);
        return NULL;
    }
    /* A header names the backing file: a FIFO there must not hang the
     * open, so it opens without blocking and must be a file or disk. */
    int fd = open(path,
                  (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC |
                      (backed ? O_NONBLOCK : 0));
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot open '%s'", path);
        return NULL;
    }
    if (backed &&
        (!is_file_or_disk(fd, path, errp) ||
         in_chain(fd, backed, path, errp))) {
        close(fd);
        return NULL;
    }
    BlockDev *bs = xcalloc(1, sizeof(*bs));
    bs->filename = xstrdup(path);
    pthread_mutex_init(&bs->lock, NULL);
    bs->fd = fd;
    bs->readonly = readonly;
    bs->flags = flags;
    bs->inactive = flags & BLK_OPEN_INACTIVE;
    bs->backed = backed;
    bs->depth = backed ? backed->depth + 1 : 0;
    /* Locked before the format is even probed: opening a qcow2 image
     * read-write may already write to it (dirty bit repair). */
    if (!bs->inactive && !lock_as_opened(bs, errp)) {
        free_bs(bs);
        return NULL;
    }
    /* An inactive image is probed all the same: the magic does not
     * change under a writer. */
    bs->probed = !drv;
    bs->drv = drv ? drv : probe(fd);
    if (!bs->inactive && !open_driver(bs, errp)) {
        if (backed && bs->chain_error) {
            backed->chain_error = true;
        }
        free_bs(bs);
        return NULL;
    }
    /* Only opening needs the way up (the image above may move). */
    bs->backed = NULL;
    return bs;
}

BlockDev *blk_open_flags(const char *path, const char *format, unsigned flags,
                         Error **errp)
{
    return open_image(path, format, flags, NULL, errp);
}

BlockDev *blk_open_backing(BlockDev *parent, const char *name, const char *path,
                           const char *format, Error **errp)
{
    BlockDev *b = NULL;
    if (parent->depth + 1 > BLK_MAX_BACKING_DEPTH) {
        error_setg(errp, "the backing chain is deeper than %d images",
                   BLK_MAX_BACKING_DEPTH);
    } else {
        /* Read-only, as QEMU opens backing files; a reader that lets
         * writers in (-U) lets them into the whole chain. */
        b = open_image(path, format, parent->flags & BLK_OPEN_FORCE_SHARE,
                       parent, errp);
    }
    if (!b && !parent->chain_error) {
        error_prepend(errp, "backing file '%s' of '%s': ", name,
                      parent->filename);
        parent->chain_error = true;
    }
    return b;
}

char *blk_backing_path(const char *image, const char *backing)
{
    const char *slash = strrchr(image, '/');
    if (backing[0] == '/' || !slash) {
        return xstrdup(backing);
    }
    return xasprintf("%.*s/%s", (int)(slash - image), image, backing);
}

BlockDev *blk_open(const char *path, const char *format, bool readonly,
                   Error **errp)
{
    return blk_open_flags(path, format, readonly ? 0 : BLK_OPEN_RDWR, errp);
}

void blk_close(BlockDev *bs)
{
    if (!bs) {
        return;
    }
    if (!bs->inactive) {
        close_driver(bs);
    }
    blk_dirty_stop(bs);
    free_bs(bs);
}

/* Every operation on the driver state runs between enter and leave. */
static bool enter(BlockDev *bs, Error **errp)
{
    pthread_mutex_lock(&bs->lock);
    if (bs->inactive) {
        error_setg(errp,
                   "image '%s' is inactive: it belongs to the other "
                   "end of a migration",
                   bs->filename);
        pthread_mutex_unlock(&bs->lock);
        return false;
    }
    return true;
}

static void leave(BlockDev *bs)
{
    pthread_mutex_unlock(&bs->lock);
}

bool blk_inactivate(BlockDev *bs, Error **errp)
{
    pthread_mutex_lock(&bs->lock);
    bool ok = true;
    if (!bs->inactive) {
        ok = !bs->drv->flush || bs->drv->flush(bs, errp);
        if (ok) {
            close_driver(bs);
            blk_unlock_image(bs->fd);
            bs->inactive = true;
        } else {
            error_prepend(errp, "'%s': ", bs->filename);
        }
    }
    pthread_mutex_unlock(&bs->lock);
    return ok;
}

bool blk_activate(BlockDev *bs, Error **errp)
{
    pthread_mutex_lock(&bs->lock);
    bool ok = true;
    if (bs->inactive) {
        ok = lock_as_opened(bs, errp);
        if (ok && !open_driver(bs, errp)) {
            blk_unlock_image(bs->fd);
            ok = false;
        }
        bs->inactive = !ok;
    }
    pthread_mutex_unlock(&bs->lock);
    return ok;
}

bool blk_is_inactive(BlockDev *bs)
{
    pthread_mutex_lock(&bs->lock);
    bool inactive = bs->inactive;
    pthread_mutex_unlock(&bs->lock);
    return inactive;
}

bool blk_inactivate_all(BlockDev *const *list, size_t n, Error **errp)
{
    for (size_t i = 0; i < n; i++) {
        if (!blk_inactivate(list[i], errp)) {
            while (i-- > 0) {
                blk_activate(list[i], NULL);
            }
            return false;
        }
    }
    return true;
}

bool blk_activate_all(BlockDev *const *list, size_t n, Error **errp)
{
    for (size_t i = 0; i < n; i++) {
        if (!blk_activate(list[i], errp)) {
            while (i-- > 0) {
                blk_inactivate(list[i], NULL);
            }
            return false;
        }
    }
    return true;
}

/* Is [off, off + len) within the disk?  (Between enter and leave.) */
static bool in_range(BlockDev *bs, const char *what, uint64_t off, size_t len,
                     Error **errp)
{
    uint64_t size = bs->drv->size(bs);
    if (off > size || len > size - off) {
        error_setg(errp,
                   "'%s': %s of %zu bytes at %llu is past the end "
                   "(%llu bytes)",
                   bs->filename, what, len, (unsigned long long)off,
                   (unsigned long long)size);
        return false;
    }
    return true;
}

bool blk_pread(BlockDev *bs, uint64_t off, void *buf, size_t len, Error **errp)
{
    if (!enter(bs, errp)) {
        return false;
    }
    bool ok = in_range(bs, "read", off, len, errp) &&
        bs->drv->pread(bs, off, buf, len, errp);
    leave(bs);
    return ok;
}

/* A raw image whose format was probed must keep probing as raw, or the
 * next open would read the guest's data as image metadata (QEMU refuses
 * such writes too).  The first sector is checked as the write would
 * leave it. */
static bool keeps_probing_raw(BlockDev *bs, uint64_t off, const void *buf,
                              size_t len, Error **errp)
{
    if (!bs->probed || bs->drv != &block_driver_raw || off >= PROBE_LEN ||
        len == 0) {
        return true;
    }
    uint8_t head[PROBE_LEN] = { 0 };
    uint64_t size = bs->drv->size(bs);
    size_t have = size < PROBE_LEN ? (size_t)size : PROBE_LEN;
    size_t n = len < PROBE_LEN - off ? len : PROBE_LEN - (size_t)off;
    if ((off > 0 || n < have) && !bs->drv->pread(bs, 0, head, have, errp)) {
        return false;
    }
    memcpy(head + off, buf, n);
    const struct block_driver *drv = probe_head(head, have);
    if (drv != &block_driver_raw) {
        error_setg(errp,
                   "'%s': write to sector 0 refused: its format was "
                   "probed as raw, and this data would make it probe as %s "
                   "(give format=raw to allow it)",
                   bs->filename, drv->format);
        return false;
    }
    return true;
}

static bool writable(BlockDev *bs, Error **errp)
{
    if (bs->readonly) {
        error_setg(errp, "'%s' is read-only", bs->filename);
        return false;
    }
    return true;
}

bool blk_pwrite(BlockDev *bs, uint64_t off, const void *buf, size_t len,
                Error **errp)
{
    if (!enter(bs, errp)) {
        return false;
    }
    bool ok = writable(bs, errp) && in_range(bs, "write", off, len, errp) &&
        keeps_probing_raw(bs, off, buf, len, errp) &&
        bs->drv->pwrite(bs, off, buf, len, errp);
    /* Marked after the data is in (and after a failed write, which may
     * have changed part of it): a copy that read the chunk before this
     * write sends it again. */
    blk_dirty_mark_locked(bs, off, len);
    leave(bs);
    return ok;
}

bool blk_is_allocated(BlockDev *bs, uint64_t off, uint64_t len, bool *allocated,
                      uint64_t *pnum, Error **errp)
{
    *allocated = true;
    *pnum = len;
    if (!enter(bs, errp)) {
        return false;
    }
    bool ok = in_range(bs, "allocation query", off, (size_t)len, errp) &&
        (!bs->drv->is_allocated ||
         bs->drv->is_allocated(bs, off, len, allocated, pnum, errp));
    leave(bs);
    return ok;
}

bool blk_flush(BlockDev *bs, Error **errp)
{
    pthread_mutex_lock(&bs->lock);
    bool ok = bs->inactive || !bs->drv->flush || bs->drv->flush(bs, errp);
    pthread_mutex_unlock(&bs->lock);
    return ok;
}

void blk_writeback_start(BlockDev *bs)
{
    /* Only starts the writes (no wait, no barrier): the flush that makes
     * the data durable still follows, and has less left to do. */
    if (!bs->readonly) {
        (void)sync_file_range(bs->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
}

uint64_t blk_size(BlockDev *bs)
{
    pthread_mutex_lock(&bs->lock);
    uint64_t size = bs->inactive ? 0 : bs->drv->size(bs);
    pthread_mutex_unlock(&bs->lock);
    return size;
}

const char *blk_format(const BlockDev *bs)
{
    return bs->drv->format;
}

bool blk_create(const char *path, const char *format, uint64_t size,
                const char *options, Error **errp)
{
    const struct block_driver *drv = blk_find_driver(format);
    if (!drv) {
        error_setg(errp, "'%s': unknown image format '%s'", path, format);
        return false;
    }
    if (!drv->create) {
        error_setg(errp, "'%s': format '%s' cannot be created", path, format);
        return false;
    }
    if (drv->create_check && !drv->create_check(size, options, errp)) {
        error_prepend(errp, "'%s': ", path);
        return false;
    }
    /* No O_TRUNC: an existing file is emptied only once it is locked. */
    bool created = true;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
        created = false;
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create '%s'", path);
        return false;
    }
    if (!blk_lock_image(fd, path, true, false, errp)) {
        close(fd);
        if (created) {
            unlink(path);
        }
        return false;
    }
    bool ok = drv->create(fd, size, options, errp);
    if (ok && fsync(fd) < 0) {
        error_setg_errno(errp, errno, "sync");
        ok = false;
    }
    if (close(fd) < 0 && ok) {
        error_setg_errno(errp, errno, "close");
        ok = false;
    }
    if (!ok) {
        error_prepend(errp, "'%s': ", path);
        if (created) {
            unlink(path);
        }
    }
    return ok;
}

bool blk_same_file(BlockDev *bs, const char *path)
{
    struct stat a, b;
    return fstat(bs->fd, &a) == 0 && stat(path, &b) == 0 &&
        a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void blk_get_info(BlockDev *bs, struct blk_info *info)
{
    memset(info, 0, sizeof(*info));
    if (bs->drv->info && enter(bs, NULL)) {
        bs->drv->info(bs, info);
        leave(bs);
    }
}

bool blk_check(BlockDev *bs, struct blk_check_result *res, Error **errp)
{
    memset(res, 0, sizeof(*res));
    if (!bs->drv->check) {
        error_setg(errp, "'%s': format '%s' has no metadata to check",
                   bs->filename, blk_format(bs));
        return false;
    }
    if (!enter(bs, errp)) {
        return false;
    }
    bool ok = bs->drv->check(bs, res, errp);
    leave(bs);
    return ok;
}

void blk_check_result_free(struct blk_check_result *res)
{
    for (size_t i = 0; i < res->nmessages; i++) {
        free(res->messages[i]);
    }
    free(res->messages);
    res->messages = NULL;
    res->nmessages = 0;
}

/* Snapshot and vmstate calls need a format that has them. */
static bool has_snapshots(BlockDev *bs, Error **errp)
{
    if (!bs->drv->snapshot_list) {
        error_setg(errp,
                   "'%s': format '%s' does not support snapshots "
                   "(use qcow2)",
                   bs->filename, blk_format(bs));
        return false;
    }
    return true;
}

/* Enters for a snapshot or vmstate call (a format that has them; one
 * that writes, write, needs a writable image). */
static bool enter_snapshots(BlockDev *bs, bool write, Error **errp)
{
    if (!has_snapshots(bs, errp) || (write && !writable(bs, errp))) {
        return false;
    }
    return enter(bs, errp);
}

bool blk_snapshot_list(BlockDev *bs, struct blk_snapshot **list, size_t *count,
                       Error **errp)
{
    *list = NULL;
    *count = 0;
    if (!enter_snapshots(bs, false, errp)) {
        return false;
    }
    bool ok = bs->drv->snapshot_list(bs, list, count, errp);
    leave(bs);
    return ok;
}

void blk_snapshot_clear(struct blk_snapshot *sn)
{
    free(sn->id);
    free(sn->name);
    sn->id = sn->name = NULL;
}

void blk_snapshot_list_free(struct blk_snapshot *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        blk_snapshot_clear(&list[i]);
    }
    free(list);
}

bool blk_snapshot_find(BlockDev *bs, const char *name_or_id,
                       struct blk_snapshot *out, Error **errp)
{
    struct blk_snapshot *list;
    size_t n;
    if (!blk_snapshot_list(bs, &list, &n, errp)) {
        return false;
    }
    size_t found = n;
    for (size_t i = 0; i < n && found == n; i++) {
        if (strcmp(list[i].name, name_or_id) == 0) {
            found = i;
        }
    }
    for (size_t i = 0; i < n && found == n; i++) {
        if (strcmp(list[i].id, name_or_id) == 0) {
            found = i;
        }
    }
    if (found == n) {
        error_setg(errp, "'%s': no snapshot '%s'", bs->filename, name_or_id);
        blk_snapshot_list_free(list, n);
        return false;
    }
    *out = list[found];
    list[found].id = list[found].name = NULL;
    blk_snapshot_list_free(list, n);
    return true;
}

bool blk_snapshot_create(BlockDev *bs, const struct blk_snapshot *sn,
                         Error **errp)
{
    if (!enter_snapshots(bs, true, errp)) {
        return false;
    }
    bool ok = bs->drv->snapshot_create(bs, sn, errp);
    leave(bs);
    return ok;
}

/* Formats without two-step snapshots refuse the first step. */
bool blk_snapshot_begin(BlockDev *bs, Error **errp)
{
    if (!enter_snapshots(bs, true, errp)) {
        return false;
    }
    bool ok;
    if (bs->drv->snapshot_begin) {
        ok = bs->drv->snapshot_begin(bs, errp);
    } else {
        error_setg(errp, "'%s': format '%s' cannot snapshot a running machine",
                   bs->filename, blk_format(bs));
        ok = false;
    }
    leave(bs);
    return ok;
}

bool blk_snapshot_commit(BlockDev *bs, const struct blk_snapshot *sn,
                         Error **errp)
{
    if (!enter_snapshots(bs, true, errp)) {
        return false;
    }
    bool ok = bs->drv->snapshot_commit(bs, sn, errp);
    leave(bs);
    return ok;
}

bool blk_snapshot_abort(BlockDev *bs, Error **errp)
{
    if (!bs->drv->snapshot_abort) {
        return true;
    }
    if (!enter(bs, errp)) {
        return false;
    }
    bool ok = bs->drv->snapshot_abort(bs, errp);
    leave(bs);
    return ok;
}

bool blk_snapshot_apply(BlockDev *bs, const char *name_or_id, Error **errp)
{
    if (!enter_snapshots(bs, true, errp)) {
        return false;
    }
    bool ok = bs->drv->snapshot_apply(bs, name_or_id, errp);
    leave(bs);
    return ok;
}

bool blk_snapshot_delete(BlockDev *bs, const char *name_or_id, Error **errp)
{
    if (!enter_snapshots(bs, true, errp)) {
        return false;
    }
    bool ok = bs->drv->snapshot_delete(bs, name_or_id, errp);
    leave(bs);
    return ok;
}

bool blk_snapshot_check(BlockDev *bs, const char *name_or_id, Error **errp)
{
    if (!enter_snapshots(bs, false, errp)) {
        return false;
    }
    bool ok = bs->drv->snapshot_check(bs, name_or_id, errp);
    leave(bs);
    return ok;
}

/* A read of a snapshot's disk, or of a vmstate area. */
static bool snapshot_read(BlockDev *bs, const char *name_or_id, bool vmstate,
                          uint64_t off, void *buf, size_t len, Error **errp)
{
    if (!enter_snapshots(bs, false, errp)) {
        return false;
    }
    bool ok =
        bs->drv->snapshot_pread(bs, name_or_id, vmstate, off, buf, len, errp);
    leave(bs);
    return ok;
}

bool blk_snapshot_pread(BlockDev *bs, const char *name_or_id, uint64_t off,
                        void *buf, size_t len, Error **errp)
{
    return snapshot_read(bs, name_or_id, false, off, buf, len, errp);
}

bool blk_vmstate_pwritev(BlockDev *bs, uint64_t pos, const struct iovec *iov,
                         int iovcnt, Error **errp)
{
    if (!enter_snapshots(bs, true, errp)) {
        return false;
    }
    bool ok = bs->drv->vmstate_pwritev(bs, pos, iov, iovcnt, errp);
    leave(bs);
    return ok;
}

bool blk_vmstate_pwrite(BlockDev *bs, uint64_t pos, const void *buf, size_t len,
                        Error **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    return blk_vmstate_pwritev(bs, pos, &iov, 1, errp);
}

bool blk_vmstate_pread(BlockDev *bs, const char *snapshot, uint64_t pos,
                       void *buf, size_t len, Error **errp)
{
    return snapshot_read(bs, snapshot, true, pos, buf, len, errp);
}
