/* Images into the catalog. */
#include "snapshot/catalog-index.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snapshot/channel-vmstate.h"
#include "util/alloc.h"
#include "util/printable.h"

/* Reads of the state go in pieces of this size. */
#define READ_CHUNK (1u << 20)

char *catalog_image_key(const char *filename)
{
    char *abs = realpath(filename, NULL);
    if (!abs) {
        abs = xstrdup(filename);
    }
    return abs;
}

/* The state lives in the image's own clusters: it cannot be longer than
 * the file.  A header that says so is forged, and reading it would only
 * yield zeros (unallocated clusters) into memory. */
static bool state_fits_file(BlockDev *bs, const struct blk_snapshot *sn,
                            Error **errp)
{
    struct stat st;
    if (fstat(bs->fd, &st) < 0) {
        error_setg_errno(errp, errno, "cannot stat '%s'", bs->filename);
        return false;
    }
    if (sn->vm_state_size > (uint64_t)st.st_size) {
        error_setg(errp,
                   "snapshot '%s': its header gives %llu bytes of "
                   "machine state, more than the whole image file (%llu "
                   "bytes)",
                   PRINTABLE(sn->name), (unsigned long long)sn->vm_state_size,
                   (unsigned long long)st.st_size);
        return false;
    }
    return true;
}

bool snapshot_read_state(BlockDev *bs, const struct blk_snapshot *sn,
                         uint8_t **data, size_t *len, Error **errp)
{
    *data = NULL;
    *len = 0;
    /* The image vouches for the entry (its L1 table, its sizes) and the
     * file for the state's size before anything is read. */
    if (!blk_snapshot_check(bs, sn->name, errp) ||
        !state_fits_file(bs, sn, errp)) {
        return false;
    }
    Channel *f = chan_new_vmstate_reader(bs, sn->name, errp);
    if (!f) {
        return false;
    }
    /* The buffer grows with what was read, not with what the header
     * announced. */
    uint64_t want = sn->vm_state_size;
    size_t n = 0, cap = 0;
    uint8_t *buf = NULL;
    bool ok = true;
    while (n < want) {
        size_t chunk = want - n < READ_CHUNK ? (size_t)(want - n) : READ_CHUNK;
        if (n + chunk > cap) {
            cap = cap ? 2 * cap : READ_CHUNK;
            if (cap > want) {
                cap = (size_t)want;
            }
            uint8_t *nb = xrealloc(buf, cap);
            buf = nb;
        }
        if (!chan_get_buffer(f, buf + n, chunk)) {
            chan_check(f, errp);
            error_prepend(errp, "snapshot '%s': ", PRINTABLE(sn->name));
            ok = false;
            break;
        }
        n += chunk;
    }
    chan_close(f, NULL);
    if (!ok) {
        free(buf);
        return false;
    }
    *data = buf ? buf : xmalloc(1);
    *len = n;
    return true;
}

bool snapshot_summarise(BlockDev *bs, const struct blk_snapshot *sn,
                        struct state_summary *out, Error **errp)
{
    uint8_t *data;
    size_t len;
    if (!snapshot_read_state(bs, sn, &data, &len, errp)) {
        return false;
    }
    bool ok = state_summary_read(data, len, 0, out, errp);
    free(data);
    if (!ok) {
        error_prepend(errp, "snapshot '%s': ", PRINTABLE(sn->name));
    }
    return ok;
}

static bool update(struct catalog *c, BlockDev *bs, struct blk_snapshot *l,
                   size_t n, struct state_summary *sums, bool *have,
                   Error **errp)
{
    struct catalog_snapshot *cs = xcalloc(n ? n : 1, sizeof(*cs));
    for (size_t i = 0; i < n; i++) {
        cs[i].sn = &l[i];
        cs[i].state = have[i] ? &sums[i] : NULL;
    }
    char *key = catalog_image_key(bs->filename);
    bool ok =
        catalog_update_image(c, key, blk_format(bs), blk_size(bs), cs, n, errp);
    free(key);
    free(cs);
    return ok;
}

bool catalog_sync_image(struct catalog *c, BlockDev *bs, Error **errp)
{
    struct blk_snapshot *l;
    size_t n;
    if (!blk_snapshot_list(bs, &l, &n, errp)) {
        return false;
    }
    struct state_summary *sums = xcalloc(n ? n : 1, sizeof(*sums));
    bool *have = xcalloc(n ? n : 1, sizeof(*have));
    for (size_t i = 0; i < n; i++) {
        if (l[i].vm_state_size == 0) {
            have[i] = true; /* disk only: no sections */
            continue;
        }
        Error *err = NULL;
        have[i] = snapshot_summarise(bs, &l[i], &sums[i], &err);
        if (!have[i]) {
            error_report("warning: %s: %s (listed without its sections)",
                         bs->filename, error_get_pretty(err));
            error_free(err);
        }
    }
    bool ok = update(c, bs, l, n, sums, have, errp);
    for (size_t i = 0; i < n; i++) {
        state_summary_free(&sums[i]);
    }
    free(sums);
    free(have);
    blk_snapshot_list_free(l, n);
    return ok;
}

bool catalog_note_image(struct catalog *c, BlockDev *bs, const char *fresh_name,
                        const struct state_summary *fresh, Error **errp)
{
    struct blk_snapshot *l;
    size_t n;
    if (!blk_snapshot_list(bs, &l, &n, errp)) {
        return false;
    }
    struct state_summary *sums = xcalloc(n ? n : 1, sizeof(*sums));
    bool *have = xcalloc(n ? n : 1, sizeof(*have));
    for (size_t i = 0; i < n; i++) {
        if (fresh && fresh_name && strcmp(l[i].name, fresh_name) == 0) {
            sums[i] = *fresh; /* borrowed: not freed here */
            have[i] = true;
        } else if (l[i].vm_state_size == 0) {
            have[i] = fresh_name && strcmp(l[i].name, fresh_name) == 0;
        }
    }
    bool ok = update(c, bs, l, n, sums, have, errp);
    free(sums);
    free(have);
    blk_snapshot_list_free(l, n);
    return ok;
}

bool catalog_note_image_at(const char *path, BlockDev *bs,
                           const char *fresh_name,
                           const struct state_summary *fresh, Error **errp)
{
    if (!path) {
        return true;
    }
    struct catalog *c = catalog_open(path, false, errp);
    if (!c) {
        return false;
    }
    bool ok = catalog_note_image(c, bs, fresh_name, fresh, errp);
    catalog_close(c);
    return ok;
}
