/* Which chunks of a drive were written while a block migration copies
 * it: one bit per chunk, under the drive's lock. */
#include "block/block.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct blk_dirty {
    unsigned shift;   /* log2 of the chunk size */
    uint64_t nchunks; /* of the drive when tracking began */
    uint64_t count;   /* bits set */
    uint64_t *bits;
};

bool blk_dirty_start(BlockDev *bs, uint64_t chunk_size, Error **errp)
{
    if (chunk_size == 0 || (chunk_size & (chunk_size - 1))) {
        error_setg(errp, "'%s': dirty chunk size %llu is not a power of two",
                   bs->filename, (unsigned long long)chunk_size);
        return false;
    }
    uint64_t size = blk_size(bs);
    struct blk_dirty *d = xcalloc(1, sizeof(*d));
    d->shift = (unsigned)__builtin_ctzll(chunk_size);
    d->nchunks = (size + chunk_size - 1) >> d->shift;
    d->bits = xcalloc((size_t)(d->nchunks / 64 + 1), sizeof(uint64_t));
    pthread_mutex_lock(&bs->lock);
    struct blk_dirty *old = bs->dirty;
    bs->dirty = d;
    pthread_mutex_unlock(&bs->lock);
    if (old) {
        free(old->bits);
        free(old);
    }
    return true;
}

void blk_dirty_stop(BlockDev *bs)
{
    pthread_mutex_lock(&bs->lock);
    struct blk_dirty *d = bs->dirty;
    bs->dirty = NULL;
    pthread_mutex_unlock(&bs->lock);
    if (d) {
        free(d->bits);
        free(d);
    }
}

void blk_dirty_mark_locked(BlockDev *bs, uint64_t off, size_t len)
{
    struct blk_dirty *d = bs->dirty;
    if (!d || len == 0) {
        return;
    }
    uint64_t first = off >> d->shift;
    uint64_t last = (off + len - 1) >> d->shift;
    for (uint64_t c = first; c <= last && c < d->nchunks; c++) {
        uint64_t bit = 1ull << (c % 64);
        if (!(d->bits[c / 64] & bit)) {
            d->bits[c / 64] |= bit;
            d->count++;
        }
    }
}

bool blk_dirty_take(BlockDev *bs, uint64_t from, uint64_t *chunk)
{
    bool found = false;
    pthread_mutex_lock(&bs->lock);
    struct blk_dirty *d = bs->dirty;
    for (uint64_t c = from; d && d->count && c < d->nchunks;) {
        uint64_t word = d->bits[c / 64] >> (c % 64);
        if (!word) {
            c = (c / 64 + 1) * 64;
            continue;
        }
        c += (uint64_t)__builtin_ctzll(word);
        if (c >= d->nchunks) {
            break;
        }
        d->bits[c / 64] &= ~(1ull << (c % 64));
        d->count--;
        *chunk = c;
        found = true;
        break;
    }
    pthread_mutex_unlock(&bs->lock);
    return found;
}

void blk_dirty_clear(BlockDev *bs, uint64_t chunk)
{
    pthread_mutex_lock(&bs->lock);
    struct blk_dirty *d = bs->dirty;
    if (d && chunk < d->nchunks) {
        uint64_t bit = 1ull << (chunk % 64);
        if (d->bits[chunk / 64] & bit) {
            d->bits[chunk / 64] &= ~bit;
            d->count--;
        }
    }
    pthread_mutex_unlock(&bs->lock);
}

uint64_t blk_dirty_count(BlockDev *bs)
{
    pthread_mutex_lock(&bs->lock);
    uint64_t n = bs->dirty ? bs->dirty->count : 0;
    pthread_mutex_unlock(&bs->lock);
    return n;
}

bool blk_is_readonly(const BlockDev *bs)
{
    return bs->readonly;
}
