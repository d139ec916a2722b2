/* Channel backend over a block device's vmstate area: the migration
 * stream of savevm goes straight into the image at the vmstate offset,
 * and loadvm, the catalog and inspect read it back from there. */
#include "snapshot/channel-vmstate.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Progress shows after every this many bytes read. */
#define PROGRESS_STEP (16u << 20)
/* The writer starts writeback after every this many bytes. */
#define WRITEBACK_STEP (32u << 20)

struct vmstate_backend {
    BlockDev *bs;
    char *snapshot; /* reader: NULL = active layer */
    uint64_t pos;
    uint64_t limit;                /* reader: bytes in the stream */
    snapshot_progress_fn progress; /* reader: may be NULL */
    void *progress_ctx;
    uint64_t next_report;
    uint64_t next_writeback; /* writer */
};

static ssize_t vmstate_writev(void *opaque, const struct iovec *iov, int iovcnt,
                              Error **errp)
{
    struct vmstate_backend *b = opaque;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        total += iov[i].iov_len;
    }
    if (!blk_vmstate_pwritev(b->bs, b->pos, iov, iovcnt, errp)) {
        return -1;
    }
    b->pos += total;
    if (b->pos >= b->next_writeback) {
        blk_writeback_start(b->bs);
        b->next_writeback = b->pos + WRITEBACK_STEP;
    }
    return (ssize_t)total;
}

static ssize_t vmstate_read(void *opaque, void *buf, size_t len, Error **errp)
{
    struct vmstate_backend *b = opaque;
    if (b->pos >= b->limit) {
        return 0;
    }
    if (len > b->limit - b->pos) {
        len = (size_t)(b->limit - b->pos);
    }
    if (!blk_vmstate_pread(b->bs, b->snapshot, b->pos, buf, len, errp)) {
        return -1;
    }
    b->pos += len;
    if (b->progress && (b->pos >= b->next_report || b->pos == b->limit)) {
        b->progress(b->progress_ctx, "loading", b->pos, b->limit);
        b->next_report = b->pos + PROGRESS_STEP;
    }
    return (ssize_t)len;
}

static bool vmstate_close(void *opaque, Error **errp)
{
    struct vmstate_backend *b = opaque;
    free(b->snapshot);
    free(b);
    return true;
}

static const struct chan_ops vmstate_ops = {
    .writev = vmstate_writev,
    .read = vmstate_read,
    .close = vmstate_close,
};

static Channel *new_channel(BlockDev *bs, const char *snapshot, uint64_t limit,
                            bool writable, snapshot_progress_fn progress,
                            void *ctx)
{
    struct vmstate_backend *b = xcalloc(1, sizeof(*b));
    b->snapshot = snapshot ? xstrdup(snapshot) : NULL;
    b->bs = bs;
    b->limit = limit;
    b->progress = progress;
    b->progress_ctx = ctx;
    char name[512];
    snprintf(name, sizeof(name), "%s: vmstate%s%s", bs->filename,
             snapshot ? " of snapshot " : "", snapshot ? snapshot : "");
    return chan_new(&vmstate_ops, b, writable, name);
}

Channel *chan_new_vmstate_writer(BlockDev *bs, Error **errp)
{
    struct blk_snapshot *l;
    size_t n;
    if (!blk_snapshot_list(bs, &l, &n, errp)) { /* qcow2 only */
        return NULL;
    }
    blk_snapshot_list_free(l, n);
    if (bs->readonly) {
        error_setg(errp, "'%s' is read-only", bs->filename);
        return NULL;
    }
    return new_channel(bs, NULL, 0, true, NULL, NULL);
}

Channel *chan_new_vmstate_reader_progress(BlockDev *bs, const char *snapshot,
                                          snapshot_progress_fn progress,
                                          void *ctx, Error **errp)
{
    uint64_t limit = UINT64_MAX;
    if (snapshot) {
        struct blk_snapshot sn;
        if (!blk_snapshot_find(bs, snapshot, &sn, errp)) {
            return NULL;
        }
        limit = sn.vm_state_size;
        blk_snapshot_clear(&sn);
    } else {
        struct blk_snapshot *l;
        size_t n;
        if (!blk_snapshot_list(bs, &l, &n, errp)) {
            return NULL;
        }
        blk_snapshot_list_free(l, n);
    }
    return new_channel(bs, snapshot, limit, false, progress, ctx);
}

Channel *chan_new_vmstate_reader(BlockDev *bs, const char *snapshot,
                                 Error **errp)
{
    return chan_new_vmstate_reader_progress(bs, snapshot, NULL, NULL, errp);
}
