/* The "block" section: drives copied while the guest runs. */
#include "migration/block-mig.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "vmstate/stream.h"

/* How much one iteration sends at most, so the migration thread gets
 * back to its measurements and a cancel in good time. */
#define ITERATE_CHUNKS 8

void block_mig_init(struct block_mig *bm)
{
    memset(bm, 0, sizeof(*bm));
    bm->progress = -1;
}

static void drop_wanted(struct block_mig *bm)
{
    for (size_t i = 0; i < bm->ndrives; i++) {
        free(bm->drives[i].want);
        bm->drives[i].want = NULL;
    }
}

void block_mig_destroy(struct block_mig *bm)
{
    free(bm->buf);
    free(bm->cmp);
    bm->buf = bm->cmp = NULL;
    drop_wanted(bm);
}

bool block_mig_add_drive(struct block_mig *bm, const char *name, BlockDev *bs,
                         Error **errp)
{
    if (bm->ndrives == BLOCK_MIG_MAX_DRIVES) {
        error_setg(errp, "block migration: drive '%s': at most %d drives", name,
                   BLOCK_MIG_MAX_DRIVES);
        return false;
    }
    if (strlen(name) > 255) {
        error_setg(errp,
                   "block migration: drive name '%.32s...' is longer "
                   "than 255 bytes",
                   name);
        return false;
    }
    bm->drives[bm->ndrives++] =
        (struct block_mig_drive){ .name = name, .bs = bs };
    return true;
}

bool block_mig_check(const struct block_mig *bm, bool incremental, Error **errp)
{
    if (!bm) {
        error_setg(errp,
                   "block migration (migrate -b, capability block) is "
                   "not available here");
        return false;
    }
    for (size_t i = 0; i < bm->ndrives; i++) {
        const struct block_mig_drive *d = &bm->drives[i];
        if (blk_is_inactive(d->bs)) {
            error_setg(errp,
                       "block migration: drive '%s' ('%s') is "
                       "inactive: another process holds it",
                       d->name, d->bs->filename);
            return false;
        }
        struct blk_info info;
        blk_get_info(d->bs, &info);
        if (incremental && !info.backing_file) {
            error_setg(errp,
                       "incremental block migration: drive '%s' "
                       "('%s') has no backing file: -i copies only what "
                       "lies above a backing file both ends share (use -b "
                       "to copy the whole drive)",
                       d->name, d->bs->filename);
            return false;
        }
    }
    return true;
}

static uint64_t drive_chunks(const struct block_mig_drive *d)
{
    return (d->sectors + BLOCK_MIG_CHUNK_SECTORS - 1) / BLOCK_MIG_CHUNK_SECTORS;
}

/* The sectors of chunk c (the last one may be short). */
static uint64_t chunk_sectors(const struct block_mig_drive *d, uint64_t c)
{
    uint64_t s = c * BLOCK_MIG_CHUNK_SECTORS;
    uint64_t n = d->sectors - s;
    return n < BLOCK_MIG_CHUNK_SECTORS ? n : BLOCK_MIG_CHUNK_SECTORS;
}

static bool wanted(const struct block_mig_drive *d, uint64_t c)
{
    return !d->want || (d->want[c / 64] >> (c % 64) & 1);
}

/* Incremental: which chunks hold anything the drive's own image
 * allocated.  Runs after dirty tracking started: a write after the scan
 * marks its chunk dirty, one before shows as allocated. */
static bool scan_allocated(struct block_mig_drive *d, Error **errp)
{
    uint64_t chunks = drive_chunks(d);
    uint64_t size = d->sectors * BLOCK_MIG_SECTOR;
    d->want = xcalloc(chunks / 64 + 1, sizeof(*d->want));
    d->bulk_total = 0;
    uint64_t last = UINT64_MAX;
    for (uint64_t off = 0; off < size;) {
        bool alloc;
        uint64_t n;
        Error *err = NULL;
        if (!blk_is_allocated(d->bs, off, size - off, &alloc, &n, &err)) {
            error_setg(errp,
                       "drive '%s': cannot tell what is allocated at byte "
                       "%" PRIu64 ": %s",
                       d->name, off, error_get_pretty(err));
            error_free(err);
            return false;
        }
        for (uint64_t c = off / BLOCK_MIG_CHUNK;
             alloc && c <= (off + n - 1) / BLOCK_MIG_CHUNK; c++) {
            if (c != last) {
                d->want[c / 64] |= 1ULL << (c % 64);
                d->bulk_total += chunk_sectors(d, c);
                last = c;
            }
        }
        off += n;
    }
    return true;
}

void block_mig_get_stats(struct block_mig *bm, struct block_mig_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!bm->enabled) {
        return;
    }
    uint64_t total = 0, done = 0, dirty = 0;
    for (size_t i = 0; i < bm->ndrives; i++) {
        total += bm->drives[i].bulk_total;
        done += bm->drives[i].bulk_done;
        dirty += blk_dirty_count(bm->drives[i].bs);
    }
    st->total = total * BLOCK_MIG_SECTOR;
    st->transferred = bm->transferred;
    st->remaining = (total - done) * BLOCK_MIG_SECTOR + dirty * BLOCK_MIG_CHUNK;
}

/* Reads the sectors at sector (as many of a chunk as the drive has) and
 * sends them as one DEVICE_BLOCK record. */
static bool send_chunk(struct block_mig *bm, Channel *f,
                       struct block_mig_drive *d, uint64_t sector, Error **errp)
{
    uint64_t n = d->sectors - sector;
    if (n > BLOCK_MIG_CHUNK_SECTORS) {
        n = BLOCK_MIG_CHUNK_SECTORS;
    }
    size_t len = (size_t)(n * BLOCK_MIG_SECTOR);
    Error *err = NULL;
    if (!blk_pread(d->bs, sector * BLOCK_MIG_SECTOR, bm->buf, len, &err)) {
        error_setg(errp, "drive '%s': read of sector %" PRIu64 " failed: %s",
                   d->name, sector, error_get_pretty(err));
        error_free(err);
        return false;
    }
    memset(bm->buf + len, 0, BLOCK_MIG_CHUNK - len);
    chan_put_be64(f, (sector << 9) | BLOCK_MIG_FLAG_DEVICE_BLOCK);
    chan_put_counted_string(f, d->name);
    chan_put_buffer(f, bm->buf, BLOCK_MIG_CHUNK);
    bm->transferred += len;
    return chan_check(f, errp);
}

static bool send_dirty_chunk(struct block_mig *bm, Channel *f,
                             struct block_mig_drive *d, uint64_t chunk,
                             Error **errp)
{
    return send_chunk(bm, f, d, chunk * BLOCK_MIG_CHUNK_SECTORS, errp);
}

/* The percentage of the bulk pass, when it changed. */
static void send_progress(struct block_mig *bm, Channel *f)
{
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < bm->ndrives; i++) {
        total += bm->drives[i].bulk_total;
        done += bm->drives[i].bulk_done;
    }
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct != bm->progress) {
        bm->progress = pct;
        chan_put_be64(f, ((uint64_t)pct << 9) | BLOCK_MIG_FLAG_PROGRESS);
    }
}

static bool save_setup(Channel *f, void *opaque, Error **errp)
{
    struct block_mig *bm = opaque;
    if (!bm->buf) {
        bm->buf = xmalloc(BLOCK_MIG_CHUNK);
    }
    bm->progress = -1;
    bm->transferred = 0;
    drop_wanted(bm);
    for (size_t i = 0; i < bm->ndrives; i++) {
        struct block_mig_drive *d = &bm->drives[i];
        d->sectors = blk_size(d->bs) / BLOCK_MIG_SECTOR;
        d->next_bulk = 0;
        d->bulk_total = d->sectors;
        d->bulk_done = 0;
        if (!blk_dirty_start(d->bs, BLOCK_MIG_CHUNK, errp) ||
            (bm->incremental && !scan_allocated(d, errp))) {
            return false;
        }
    }
    /* Each drive's last MiB first, ending at its last sector (see
     * block-mig.h): a smaller destination fails now. */
    for (size_t i = 0; i < bm->ndrives; i++) {
        struct block_mig_drive *d = &bm->drives[i];
        uint64_t s = d->sectors > BLOCK_MIG_CHUNK_SECTORS
            ? d->sectors - BLOCK_MIG_CHUNK_SECTORS
            : 0;
        if (d->sectors && !send_chunk(bm, f, d, s, errp)) {
            return false;
        }
    }
    chan_put_be64(f, BLOCK_MIG_FLAG_EOS);
    return chan_check(f, errp);
}

/* Sends up to max chunks: the bulk pass first, then what was written
 * since.  *done: nothing is left for now. */
static bool send_some(struct block_mig *bm, Channel *f, int max, bool *done,
                      Error **errp)
{
    int sent = 0;
    *done = false;
    for (size_t i = 0; i < bm->ndrives; i++) {
        struct block_mig_drive *d = &bm->drives[i];
        while (d->next_bulk < drive_chunks(d)) {
            if (sent == max || (max > 0 && chan_rate_limited(f))) {
                return true;
            }
            uint64_t c = d->next_bulk++;
            if (!wanted(d, c)) {
                continue; /* all in the backing file both ends share */
            }
            /* Cleared before the read: a later write marks it again. */
            blk_dirty_clear(d->bs, c);
            if (!send_dirty_chunk(bm, f, d, c, errp)) {
                return false;
            }
            d->bulk_done += chunk_sectors(d, c);
            sent++;
            send_progress(bm, f);
        }
    }
    for (size_t i = 0; i < bm->ndrives; i++) {
        struct block_mig_drive *d = &bm->drives[i];
        uint64_t c;
        while (blk_dirty_take(d->bs, 0, &c)) {
            if (!send_dirty_chunk(bm, f, d, c, errp)) {
                return false;
            }
            if (++sent == max || (max > 0 && chan_rate_limited(f))) {
                return true;
            }
        }
    }
    *done = true;
    return true;
}

static int save_iterate(Channel *f, void *opaque, Error **errp)
{
    struct block_mig *bm = opaque;
    bool done;
    if (!send_some(bm, f, ITERATE_CHUNKS, &done, errp)) {
        return -1;
    }
    chan_put_be64(f, BLOCK_MIG_FLAG_EOS);
    return done ? 1 : 0;
}

static bool save_complete(Channel *f, void *opaque, Error **errp)
{
    struct block_mig *bm = opaque;
    bool done;
    if (!send_some(bm, f, -1, &done, errp)) {
        return false;
    }
    chan_put_be64(f, (100ull << 9) | BLOCK_MIG_FLAG_PROGRESS);
    chan_put_be64(f, BLOCK_MIG_FLAG_EOS);
    return chan_check(f, errp);
}

static uint64_t save_pending(void *opaque)
{
    struct block_mig_stats st;
    block_mig_get_stats(opaque, &st);
    return st.remaining;
}

static bool save_active(void *opaque)
{
    return ((struct block_mig *)opaque)->enabled;
}

static void save_cleanup(void *opaque)
{
    struct block_mig *bm = opaque;
    for (size_t i = 0; i < bm->ndrives; i++) {
        blk_dirty_stop(bm->drives[i].bs);
    }
    drop_wanted(bm);
}

/* ---- Loading ---- */

static struct block_mig_drive *find_drive(struct block_mig *bm,
                                          const char *name)
{
    for (size_t i = 0; i < bm->ndrives; i++) {
        if (strcmp(bm->drives[i].name, name) == 0) {
            return &bm->drives[i];
        }
    }
    return NULL;
}

static void drive_names(const struct block_mig *bm, char *out, size_t len)
{
    size_t at = 0;
    out[0] = 0;
    for (size_t i = 0; i < bm->ndrives && at < len; i++) {
        at += (size_t)snprintf(out + at, len - at, "%s'%s'", i ? ", " : "",
                               bm->drives[i].name);
    }
    if (!bm->ndrives) {
        snprintf(out, len, "none");
    }
}

/* Checks a DEVICE_BLOCK record against the drive; how many sectors to
 * write in *n. */
static bool check_block(const struct block_mig_drive *d, BlockDev *bs,
                        uint64_t sector, uint64_t *n, Error **errp)
{
    if (blk_is_readonly(bs)) {
        error_setg(errp,
                   "drive '%s' ('%s') is read-only: block migration "
                   "needs to write it",
                   d->name, bs->filename);
        return false;
    }
    uint64_t total = blk_size(bs) / BLOCK_MIG_SECTOR;
    if (sector >= total) {
        error_setg(errp,
                   "drive '%s': sector %" PRIu64 " is past the end "
                   "of '%s' (%" PRIu64 " sectors): the destination image "
                   "is smaller than the source's",
                   d->name, sector, bs->filename, total);
        return false;
    }
    *n = total - sector;
    if (*n > BLOCK_MIG_CHUNK_SECTORS) {
        *n = BLOCK_MIG_CHUNK_SECTORS;
    }
    return true;
}

/* A chunk running past the end of the drive carries only the source's
 * zero padding there, unless the source's drive is larger. */
static bool check_overhang(const struct block_mig_drive *d, const uint8_t *buf,
                           uint64_t sector, uint64_t n, Error **errp)
{
    for (size_t i = (size_t)(n * BLOCK_MIG_SECTOR); i < BLOCK_MIG_CHUNK; i++) {
        if (buf[i]) {
            error_setg(errp,
                       "drive '%s': the chunk at sector %" PRIu64
                       " holds data for sector %" PRIu64 ", past the end of "
                       "'%s' (%" PRIu64 " sectors): the destination image is "
                       "smaller than the source's",
                       d->name, sector, sector + i / BLOCK_MIG_SECTOR,
                       d->bs->filename, sector + n);
            return false;
        }
    }
    return true;
}

/* Writes buf at off, but for the clusters the image has not allocated
 * that already read as buf would put them (backing data, zeros): they
 * stay unallocated, so an incremental copy allocates at the destination
 * about what it allocated at the source. */
static bool write_changed(struct block_mig *bm, BlockDev *bs, uint64_t off,
                          const uint8_t *buf, uint64_t len, Error **errp)
{
    struct blk_info info;
    blk_get_info(bs, &info);
    uint64_t granule = info.cluster_size ? info.cluster_size : BLOCK_MIG_CHUNK;
    for (uint64_t done = 0; done < len;) {
        bool alloc;
        uint64_t n;
        if (!blk_is_allocated(bs, off + done, len - done, &alloc, &n, errp)) {
            return false;
        }
        for (uint64_t at = done; at < done + n;) {
            /* One cluster (or what is left of the run) at a time. */
            uint64_t piece = granule - (off + at) % granule;
            if (piece > done + n - at) {
                piece = done + n - at;
            }
            bool same = false;
            if (!alloc) {
                if (!bm->cmp) {
                    bm->cmp = xmalloc(BLOCK_MIG_CHUNK);
                }
                if (!blk_pread(bs, off + at, bm->cmp, (size_t)piece, errp)) {
                    return false;
                }
                same = memcmp(bm->cmp, buf + at, (size_t)piece) == 0;
            }
            if (!same &&
                !blk_pwrite(bs, off + at, buf + at, (size_t)piece, errp)) {
                return false;
            }
            at += piece;
        }
        done += n;
    }
    return true;
}

static bool load_block(struct block_mig *bm, Channel *f, uint64_t sector,
                       unsigned flags, Error **errp)
{
    char name[256];
    if (!chan_get_counted_string(f, name)) {
        return chan_check(f, errp);
    }
    struct block_mig_drive *d = find_drive(bm, name);
    if (!d) {
        char names[512];
        drive_names(bm, names, sizeof(names));
        error_setg(errp,
                   "unknown drive '%s' at sector %" PRIu64 " (this "
                   "machine has %s)",
                   name, sector, names);
        return false;
    }
    uint64_t n;
    if (!check_block(d, d->bs, sector, &n, errp)) {
        return false;
    }
    if (flags & BLOCK_MIG_FLAG_ZERO_BLOCK) {
        memset(bm->buf, 0, BLOCK_MIG_CHUNK);
    } else if (!chan_get_buffer(f, bm->buf, BLOCK_MIG_CHUNK)) {
        if (!chan_check(f, errp)) {
            error_prepend(errp, "drive '%s' sector %" PRIu64 ": ", name,
                          sector);
        }
        return false;
    }
    if (!check_overhang(d, bm->buf, sector, n, errp)) {
        return false;
    }
    Error *err = NULL;
    if (!write_changed(bm, d->bs, sector * BLOCK_MIG_SECTOR, bm->buf,
                       n * BLOCK_MIG_SECTOR, &err)) {
        error_setg(errp, "drive '%s': write of sector %" PRIu64 " failed: %s",
                   name, sector, error_get_pretty(err));
        error_free(err);
        return false;
    }
    return true;
}

bool block_mig_load_body(struct block_mig *bm, Channel *f, Error **errp)
{
    if (!bm->buf) {
        bm->buf = xmalloc(BLOCK_MIG_CHUNK);
    }
    for (;;) {
        uint64_t at = chan_tell(f);
        uint64_t v = chan_get_be64(f);
        if (!chan_check(f, errp)) {
            return false;
        }
        unsigned flags = (unsigned)(v & (BLOCK_MIG_SECTOR - 1));
        uint64_t sector = v >> 9;
        if (flags & BLOCK_MIG_FLAG_DEVICE_BLOCK) {
            if (flags &
                ~(unsigned)(BLOCK_MIG_FLAG_DEVICE_BLOCK |
                            BLOCK_MIG_FLAG_ZERO_BLOCK)) {
                error_setg(errp,
                           "record at offset %" PRIu64 ": bad flags "
                           "0x%x for a drive block",
                           at, flags);
                return false;
            }
            if (!load_block(bm, f, sector, flags, errp)) {
                return false;
            }
        } else if (flags == BLOCK_MIG_FLAG_EOS) {
            return true;
        } else if (flags != BLOCK_MIG_FLAG_PROGRESS) {
            error_setg(errp,
                       "record at offset %" PRIu64 ": unknown flags "
                       "0x%x",
                       at, flags);
            return false;
        }
    }
}

/* The destination's drives were opened inactive, for a source on the
 * same images; with block migration they are this machine's own, and
 * written from the first block on. */
static bool load_setup(void *opaque, Error **errp)
{
    struct block_mig *bm = opaque;
    for (size_t i = 0; i < bm->ndrives; i++) {
        if (!blk_activate(bm->drives[i].bs, errp)) {
            error_prepend(errp,
                          "block migration: drive '%s': ", bm->drives[i].name);
            return false;
        }
    }
    return true;
}

static bool load_state(Channel *f, void *opaque, int version_id, Error **errp)
{
    (void)version_id;
    return block_mig_load_body(opaque, f, errp);
}

static const struct live_handler_ops block_mig_ops = {
    .save_setup = save_setup,
    .save_active = save_active,
    .save_iterate = save_iterate,
    .save_complete = save_complete,
    .save_pending = save_pending,
    .save_cleanup = save_cleanup,
    .load_setup = load_setup,
    .load_state = load_state,
};

bool block_mig_register(struct block_mig *bm, struct section_registry *reg,
                        Error **errp)
{
    return section_register_live(reg, BLOCK_MIG_IDSTR, 0, BLOCK_MIG_VERSION,
                                 &block_mig_ops, bm, errp) >= 0;
}
