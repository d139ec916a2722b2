/* XBZRLE encoder and page cache. */
#include "ram/xbzrle.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

static size_t uleb_put(uint8_t *p, uint32_t v)
{
    if (v < 0x80) {
        p[0] = (uint8_t)v;
        return 1;
    }
    p[0] = (uint8_t)(v | 0x80);
    p[1] = (uint8_t)(v >> 7);
    return 2;
}

int xbzrle_encode(const uint8_t *old, const uint8_t *new, size_t n,
                  uint8_t *dst, size_t dlen)
{
    size_t i = 0, d = 0;
    while (i < n) {
        /* Unchanged run: whole words first, then bytes. */
        size_t z = i;
        while (z + 8 <= n && memcmp(old + z, new + z, 8) == 0) {
            z += 8;
        }
        while (z < n && old[z] == new[z]) {
            z++;
        }
        if (z == n) {
            break; /* trailing unchanged bytes are not sent */
        }
        /* Changed run: up to the next two equal bytes in a row (a single
         * equal byte is cheaper to carry than a new pair of lengths). */
        size_t c = z;
        while (
            c < n &&
            !(old[c] == new[c] && (c + 1 == n || old[c + 1] == new[c + 1]))) {
            c++;
        }
        size_t zrun = z - i, nzrun = c - z;
        if (d + 4 + nzrun > dlen) {
            return -1;
        }
        d += uleb_put(dst + d, (uint32_t)zrun);
        d += uleb_put(dst + d, (uint32_t)nzrun);
        memcpy(dst + d, new + z, nzrun);
        d += nzrun;
        i = c;
    }
    return (int)d;
}

struct cache_slot {
    uint64_t key; /* key + 1; 0 = empty */
};

struct xbzrle_cache {
    size_t page_size;
    uint64_t nslots;
    struct cache_slot *slots;
    uint8_t *pages;
};

struct xbzrle_cache *xbzrle_cache_new(uint64_t bytes, size_t page_size)
{
    uint64_t n = bytes / page_size;
    if (n == 0) {
        n = 1;
    }
    struct xbzrle_cache *c = xcalloc(1, sizeof(*c));
    c->page_size = page_size;
    c->nslots = n;
    /* Not the wrappers: the user picks this size (up to 1 TiB), and a
     * cache the host cannot give fails the command, not the VM. */
    c->slots = calloc(n, sizeof(*c->slots));
    c->pages = malloc(n * page_size);
    if (!c->slots || !c->pages) {
        xbzrle_cache_free(c);
        return NULL;
    }
    return c;
}

void xbzrle_cache_free(struct xbzrle_cache *c)
{
    if (c) {
        free(c->slots);
        free(c->pages);
        free(c);
    }
}

uint64_t xbzrle_cache_size(const struct xbzrle_cache *c)
{
    return c->nslots * c->page_size;
}

uint8_t *xbzrle_cache_lookup(struct xbzrle_cache *c, uint64_t key)
{
    uint64_t i = key % c->nslots;
    return c->slots[i].key == key + 1 ? c->pages + i * c->page_size : NULL;
}

void xbzrle_cache_insert(struct xbzrle_cache *c, uint64_t key,
                         const uint8_t *data)
{
    uint64_t i = key % c->nslots;
    c->slots[i].key = key + 1;
    memcpy(c->pages + i * c->page_size, data, c->page_size);
}
