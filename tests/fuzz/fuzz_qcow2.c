/* qcow2 as `hop img` and loadvm meet it: open (header, extensions, the
 * backing file's name and format, L1, refcounts, snapshot table), check,
 * list snapshots, read the disk, what it allocates and a snapshot's
 * vmstate, apply a snapshot, write and delete.  The image is a
 * scratch file written from the input. */
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "fuzz-common.h"

static void drop(Error *err)
{
    error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file(data, size);
    Error *err = NULL;

    BlockDev *bs = blk_open(path, "qcow2", true, &err);
    if (!bs) {
        drop(err);
        return 0;
    }
    struct blk_check_result res = { 0 };
    if (!blk_check(bs, &res, &err)) {
        drop(err);
        err = NULL;
    }
    blk_check_result_free(&res);

    struct blk_snapshot *list = NULL;
    size_t n = 0;
    uint8_t buf[4096];
    if (blk_snapshot_list(bs, &list, &n, &err)) {
        for (size_t i = 0; i < n && i < 4; i++) {
            if (!blk_snapshot_pread(bs, list[i].id, 0, buf, sizeof(buf),
                                    &err) ||
                !blk_vmstate_pread(bs, list[i].id, 0, buf, 64, &err)) {
                drop(err);
                err = NULL;
            }
        }
    } else {
        drop(err);
        err = NULL;
    }
    uint64_t sz = blk_size(bs);
    if (sz &&
        !blk_pread(bs, sz / 2, buf, sizeof(buf) < sz ? sizeof(buf) : sz,
                   &err)) {
        drop(err);
        err = NULL;
    }
    bool alloc;
    uint64_t run;
    for (uint64_t off = 0, k = 0; off < sz && k < 64; off += run, k++) {
        if (!blk_is_allocated(bs, off, sz - off, &alloc, &run, &err)) {
            drop(err);
            err = NULL;
            break;
        }
    }
    blk_close(bs);

    /* Writable: apply the first snapshot, write, delete it. */
    bs = blk_open(path, "qcow2", false, &err);
    if (!bs) {
        drop(err);
        blk_snapshot_list_free(list, n);
        return 0;
    }
    if (n > 0 && !blk_snapshot_apply(bs, list[0].id, &err)) {
        drop(err);
        err = NULL;
    }
    memset(buf, 0xa5, sizeof(buf));
    sz = blk_size(bs);
    if (sz >= sizeof(buf) && !blk_pwrite(bs, 0, buf, sizeof(buf), &err)) {
        drop(err);
        err = NULL;
    }
    if (n > 1 && !blk_snapshot_delete(bs, list[1].id, &err)) {
        drop(err);
        err = NULL;
    }
    if (!blk_flush(bs, &err)) {
        drop(err);
        err = NULL;
    }
    blk_close(bs);
    blk_snapshot_list_free(list, n);
    return 0;
}
