/* XBZRLE: a page sent again travels as the difference from the copy the
 * destination already has (QEMU's wire encoding: pairs of ULEB128
 * unchanged-run and changed-run lengths, the changed bytes after each
 * pair).  The sender keeps those copies in a cache of fixed size. */
#ifndef HOP_RAM_XBZRLE_H
#define HOP_RAM_XBZRLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Encode the change from old to new (n bytes) into dst (at most dlen).
 * Returns the delta length, 0 when nothing changed, -1 when the delta
 * would not fit (send the page whole instead). */
int xbzrle_encode(const uint8_t *old, const uint8_t *new, size_t n,
                  uint8_t *dst, size_t dlen);

/* A direct-mapped cache of page copies, keyed by a page number. */
struct xbzrle_cache;

struct xbzrle_cache *xbzrle_cache_new(uint64_t bytes, size_t page_size);
void xbzrle_cache_free(struct xbzrle_cache *c);
uint64_t xbzrle_cache_size(const struct xbzrle_cache *c);
/* The cached copy of key, or NULL (a miss). */
uint8_t *xbzrle_cache_lookup(struct xbzrle_cache *c, uint64_t key);
/* Store data as key's copy (evicting whatever shared its slot). */
void xbzrle_cache_insert(struct xbzrle_cache *c, uint64_t key,
                         const uint8_t *data);

#endif
