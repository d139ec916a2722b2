/* A small hash index from keys (64-bit numbers or NUL-terminated
 * strings) to positions in the caller's own array, for lookups by id or
 * name among records read from a file.  The hash is keyed per index with
 * random bytes (SipHash-1-3), so keys chosen by a file's author cannot
 * be made to collide: every lookup costs O(1) however hostile the input.
 *
 * One index holds one kind of key: use either the _u64 or the _str
 * functions on it.  String keys are copied. */
#ifndef HOP_UTIL_LOOKUP_H
#define HOP_UTIL_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lookup_slot;

struct lookup {
    struct lookup_slot *slots;
    size_t cap; /* a power of two, or 0 before first use */
    size_t count;
    uint64_t key[2]; /* the hash's secret key */
};

void lookup_init(struct lookup *t);
void lookup_free(struct lookup *t);

/* True and *value set when key is there. */
bool lookup_get_u64(const struct lookup *t, uint64_t key, size_t *value);
bool lookup_get_str(const struct lookup *t, const char *key, size_t *value);

/* Adds key -> value; returns false (and changes nothing) when the key
 * is already there. */
bool lookup_add_u64(struct lookup *t, uint64_t key, size_t value);
bool lookup_add_str(struct lookup *t, const char *key, size_t value);

#endif
