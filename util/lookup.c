/* Hash index with a per-index secret key. */
#include "util/lookup.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct lookup_slot {
    bool used;
    uint64_t hash;
    uint64_t num;
    char *str;
    size_t value;
};

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

struct sip {
    uint64_t v0, v1, v2, v3;
};

static void sip_round(struct sip *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = rotl(s->v2, 32);
}

static uint64_t le64(const uint8_t *p, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        x |= (uint64_t)p[i] << (8 * i);
    }
    return x;
}

/* SipHash-1-3 of data[0..len) under key. */
static uint64_t siphash13(const uint64_t key[2], const void *data, size_t len)
{
    const uint8_t *p = data;
    struct sip s = {
        .v0 = key[0] ^ 0x736f6d6570736575ull,
        .v1 = key[1] ^ 0x646f72616e646f6dull,
        .v2 = key[0] ^ 0x6c7967656e657261ull,
        .v3 = key[1] ^ 0x7465646279746573ull,
    };
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = le64(p + i, 8);
        s.v3 ^= m;
        sip_round(&s);
        s.v0 ^= m;
    }
    uint64_t last = le64(p + whole, len - whole) | (uint64_t)(len & 0xff) << 56;
    s.v3 ^= last;
    sip_round(&s);
    s.v0 ^= last;
    s.v2 ^= 0xff;
    sip_round(&s);
    sip_round(&s);
    sip_round(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

void lookup_init(struct lookup *t)
{
    memset(t, 0, sizeof(*t));
    if (getrandom(t->key, sizeof(t->key), GRND_NONBLOCK) !=
        (ssize_t)sizeof(t->key)) {
        /* No entropy yet (early boot): still unpredictable enough that
         * a file written in advance cannot aim at it. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t->key[0] ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^
            (uint64_t)(uintptr_t)t;
        t->key[1] ^= (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
    }
}

void lookup_free(struct lookup *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        free(t->slots[i].str);
    }
    free(t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
}

static uint64_t hash_u64(const struct lookup *t, uint64_t key)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(key >> (8 * i));
    }
    return siphash13(t->key, b, sizeof(b));
}

static uint64_t hash_str(const struct lookup *t, const char *key)
{
    return siphash13(t->key, key, strlen(key));
}

/* The slot holding the key, or the empty slot where it would go. */
static struct lookup_slot *probe(const struct lookup *t, uint64_t hash,
                                 uint64_t num, const char *str)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        struct lookup_slot *s = &t->slots[i];
        if (!s->used) {
            return s;
        }
        if (s->hash == hash &&
            (str ? s->str && strcmp(s->str, str) == 0 : s->num == num)) {
            return s;
        }
    }
}

static void grow(struct lookup *t)
{
    size_t ncap = t->cap ? 2 * t->cap : 16;
    struct lookup_slot *old = t->slots;
    size_t ocap = t->cap;
    t->slots = xcalloc(ncap, sizeof(*t->slots));
    t->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].used) {
            *probe(t, old[i].hash, old[i].num, old[i].str) = old[i];
        }
    }
    free(old);
}

static bool get(const struct lookup *t, uint64_t hash, uint64_t num,
                const char *str, size_t *value)
{
    if (!t->cap) {
        return false;
    }
    const struct lookup_slot *s = probe(t, hash, num, str);
    if (!s->used) {
        return false;
    }
    if (value) {
        *value = s->value;
    }
    return true;
}

static bool add(struct lookup *t, uint64_t hash, uint64_t num, const char *str,
                size_t value)
{
    /* Keep the load at most one half: probes stay short. */
    if (2 * (t->count + 1) > t->cap) {
        grow(t);
    }
    struct lookup_slot *s = probe(t, hash, num, str);
    if (s->used) {
        return false;
    }
    *s = (struct lookup_slot){
        .used = true, .hash = hash, .num = num, .value = value
    };
    if (str) {
        s->str = xstrdup(str);
    }
    t->count++;
    return true;
}

bool lookup_get_u64(const struct lookup *t, uint64_t key, size_t *value)
{
    return get(t, hash_u64(t, key), key, NULL, value);
}

bool lookup_get_str(const struct lookup *t, const char *key, size_t *value)
{
    return get(t, hash_str(t, key), 0, key, value);
}

bool lookup_add_u64(struct lookup *t, uint64_t key, size_t value)
{
    return add(t, hash_u64(t, key), key, NULL, value);
}

bool lookup_add_str(struct lookup *t, const char *key, size_t value)
{
    return add(t, hash_str(t, key), 0, key, value);
}
