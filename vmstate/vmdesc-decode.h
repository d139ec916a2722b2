/* Decoding a device section's payload with no device code at all, driven
 * by the section's entry in the stream's vmdesc JSON (the way QEMU's
 * analyze-migration.py reads streams): every field is `size` bytes of its
 * named type, arrays repeat, structs nest (fields, then their
 * subsections), and subsections carry 0x05, a counted name and a be32
 * version on the wire.
 *
 * The result is a JSON tree keyed by field name:
 *   ints (int8..int64, uint8..uint64, their "equal"/"le" forms, size 1,
 *   2, 4 or 8)   -> JSON integers, signed or unsigned by the type name;
 *                   an unsigned value above INT64_MAX -> "0x" hex string
 *   bool         -> true / false
 *   nullptr      -> null
 *   arrays       -> JSON arrays
 *   structs, subsections (key = subsection name) -> objects
 *   anything else (buffer, timer, float64, unknown types) -> a string of
 *                   lower-case hex digits, two per byte, in wire order.
 * Every read is bounds-checked against the section: a size that runs past
 * it is an error naming the field and offset, never a crash. */
#ifndef HOP_VMSTATE_VMDESC_DECODE_H
#define HOP_VMSTATE_VMDESC_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct json_t json_t;

#include "util/lookup.h"

/* Values that take no bytes of the stream (zero-size elements, empty
 * structs) one stream may decode in all: every other value takes at
 * least one byte, so a stream of n bytes decodes to at most n + this
 * many values, however its description nests arrays. */
#define VMDESC_EMPTY_VALUES_MAX 65536

/* The vmdesc entry of section (idstr, instance_id), or NULL. */
json_t *vmdesc_find_device(json_t *vmdesc, const char *idstr,
                           uint32_t instance_id);

/* The same lookup, hashed, for a stream with many sections.  The index
 * borrows vmdesc: keep it alive while the index is used. */
struct vmdesc_index {
    json_t *devices;
    struct lookup by_key; /* "instance:idstr" -> devices index */
};
void vmdesc_index_init(struct vmdesc_index *ix, json_t *vmdesc);
json_t *vmdesc_index_find(const struct vmdesc_index *ix, const char *idstr,
                          uint32_t instance_id);
void vmdesc_index_free(struct vmdesc_index *ix);

/* Decodes data[0..len) (base = its stream offset) with device, a vmdesc
 * "devices" entry.  On success *out is a new object and *used the number
 * of bytes the description accounts for (the section footer follows).
 * empty_budget counts down the values that take no bytes; share one
 * counter, starting at VMDESC_EMPTY_VALUES_MAX, between the sections of
 * a stream (NULL: a budget of that size for this call alone). */
bool vmdesc_decode(json_t *device, const uint8_t *data, size_t len,
                   uint64_t base, size_t *empty_budget, json_t **out,
                   size_t *used, Error **errp);

#endif
