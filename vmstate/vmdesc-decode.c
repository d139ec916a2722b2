/* Generic device decoding from vmdesc JSON. */
#include "vmstate/vmdesc-decode.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/printable.h"
#include "vmstate/stream-format.h"

/* Deeper nesting than this is not a description any writer makes. */
#define DECODE_MAX_DEPTH 32

struct cursor {
    const uint8_t *data;
    size_t len;
    size_t pos;
    uint64_t base;
    int depth;
    size_t *empty_budget; /* values left that may take no bytes */
};

#define AT(c) ((unsigned long long)((c)->base + (c)->pos))

enum int_kind { NOT_INT, INT_SIGNED, INT_UNSIGNED };

static const struct {
    const char *name;
    enum int_kind kind;
} int_types[] = {
    { "int8", INT_SIGNED },           { "int16", INT_SIGNED },
    { "int32", INT_SIGNED },          { "int64", INT_SIGNED },
    { "int32 equal", INT_SIGNED },    { "int64 equal", INT_SIGNED },
    { "int32 le", INT_SIGNED },       { "uint8", INT_UNSIGNED },
    { "uint16", INT_UNSIGNED },       { "uint32", INT_UNSIGNED },
    { "uint64", INT_UNSIGNED },       { "uint8 equal", INT_UNSIGNED },
    { "uint16 equal", INT_UNSIGNED }, { "uint32 equal", INT_UNSIGNED },
    { "uint64 equal", INT_UNSIGNED },
};

static enum int_kind int_kind_of(const char *type)
{
    for (size_t i = 0; i < sizeof(int_types) / sizeof(int_types[0]); i++) {
        if (strcmp(type, int_types[i].name) == 0) {
            return int_types[i].kind;
        }
    }
    return NOT_INT;
}

static char *device_key(const char *idstr, uint32_t instance_id)
{
    return xasprintf("%u:%s", instance_id, idstr);
}

void vmdesc_index_init(struct vmdesc_index *ix, json_t *vmdesc)
{
    ix->devices = json_object_get(vmdesc, "devices");
    lookup_init(&ix->by_key);
    size_t i;
    json_t *dev;
    json_array_foreach(ix->devices, i, dev)
    {
        json_t *name = json_object_get(dev, "name");
        json_t *inst = json_object_get(dev, "instance_id");
        if (!json_is_string(name) || !json_is_integer(inst) ||
            json_integer_value(inst) < 0 ||
            json_integer_value(inst) > UINT32_MAX) {
            continue;
        }
        char *key = device_key(json_string_value(name),
                               (uint32_t)json_integer_value(inst));
        lookup_add_str(&ix->by_key, key, i); /* the first one wins */
        free(key);
    }
}

json_t *vmdesc_index_find(const struct vmdesc_index *ix, const char *idstr,
                          uint32_t instance_id)
{
    char *key = device_key(idstr, instance_id);
    size_t i;
    bool found = lookup_get_str(&ix->by_key, key, &i);
    free(key);
    return found ? json_array_get(ix->devices, i) : NULL;
}

void vmdesc_index_free(struct vmdesc_index *ix)
{
    lookup_free(&ix->by_key);
    ix->devices = NULL;
}

json_t *vmdesc_find_device(json_t *vmdesc, const char *idstr,
                           uint32_t instance_id)
{
    json_t *devices = json_object_get(vmdesc, "devices");
    size_t i;
    json_t *dev;
    json_array_foreach(devices, i, dev)
    {
        json_t *name = json_object_get(dev, "name");
        json_t *inst = json_object_get(dev, "instance_id");
        if (json_is_string(name) &&
            strcmp(json_string_value(name), idstr) == 0 &&
            json_is_integer(inst) &&
            json_integer_value(inst) == (json_int_t)instance_id) {
            return dev;
        }
    }
    return NULL;
}

static json_t *hex_string(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *s = xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[2 * n] = '\0';
    json_t *j = json_string(s);
    free(s);
    return j;
}

static json_t *int_value(const uint8_t *p, size_t n, enum int_kind kind)
{
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++) {
        u = (u << 8) | p[i];
    }
    if (kind == INT_SIGNED) {
        unsigned shift = 64 - 8 * (unsigned)n;
        int64_t s = (int64_t)(u << shift) >> shift;
        return json_integer(s);
    }
    if (u > (uint64_t)INT64_MAX) {
        char buf[32];
        snprintf(buf, sizeof(buf), "0x%016" PRIx64, u);
        return json_string(buf);
    }
    return json_integer((json_int_t)u);
}

static bool decode_vmsd(struct cursor *c, json_t *desc, json_t *out,
                        Error **errp);

static const char *desc_name(json_t *desc)
{
    const char *n = json_string_value(json_object_get(desc, "vmsd_name"));
    if (!n) {
        n = json_string_value(json_object_get(desc, "name"));
    }
    return n ? n : "?";
}

/* One element of a field. */
static bool decode_element(struct cursor *c, json_t *field, const char *name,
                           const char *type, size_t size, json_t **val,
                           Error **errp)
{
    if (size > c->len - c->pos) {
        error_setg(errp,
                   "field '%s' at offset %llu: needs %zu bytes, the "
                   "section has %zu left",
                   PRINTABLE(name), AT(c), size, c->len - c->pos);
        return false;
    }
    /* Values that take bytes are bounded by the stream's length; these
     * only by what they may cost. */
    if (size == 0) {
        if (*c->empty_budget == 0) {
            error_setg(errp,
                       "field '%s' at offset %llu: more than %u "
                       "values that take no bytes (elements of size 0 "
                       "repeated or nested)",
                       PRINTABLE(name), AT(c), VMDESC_EMPTY_VALUES_MAX);
            return false;
        }
        (*c->empty_budget)--;
    }
    json_t *nested = NULL;
    if (strcmp(type, "struct") == 0) {
        nested = json_object_get(field, "struct");
        if (!json_is_object(nested)) {
            error_setg(errp,
                       "vmdesc: struct field '%s' has no struct "
                       "description",
                       PRINTABLE(name));
            return false;
        }
    } else if (json_object_get(field, "fields")) {
        nested = field; /* a tmp-like field describes itself inline */
    }
    if (nested) {
        size_t start = c->pos;
        json_t *obj = json_object();
        if (!decode_vmsd(c, nested, obj, errp)) {
            json_decref(obj);
            error_prepend(errp, "%s.", PRINTABLE(name));
            return false;
        }
        if (c->pos - start != size) {
            error_setg(errp,
                       "field '%s' at offset %llu: decoded %zu bytes, "
                       "the vmdesc says %zu",
                       PRINTABLE(name), (unsigned long long)(c->base + start),
                       c->pos - start, size);
            json_decref(obj);
            return false;
        }
        *val = obj;
        return true;
    }
    const uint8_t *p = c->data + c->pos;
    enum int_kind kind = int_kind_of(type);
    if (kind != NOT_INT && (size == 1 || size == 2 || size == 4 || size == 8)) {
        *val = int_value(p, size, kind);
    } else if (strcmp(type, "bool") == 0 && size == 1) {
        *val = json_boolean(p[0] != 0);
    } else if (strcmp(type, "nullptr") == 0 && size == 1) {
        if (p[0] != '0') {
            error_setg(errp,
                       "field '%s' at offset %llu: null pointer marker "
                       "0x%02x, expected 0x30",
                       PRINTABLE(name), AT(c), p[0]);
            return false;
        }
        *val = json_null();
    } else {
        *val = hex_string(p, size);
    }
    c->pos += size;
    return true;
}

/* out's keys so far; *repeats (made on first use) holds, for each name
 * the description repeated, the next suffix to try. */
static void add_value(json_t *out, json_t **repeats, const char *name,
                      json_t *val, bool indexed)
{
    json_t *old = json_object_get(out, name);
    if (indexed) {
        if (!json_is_array(old)) {
            old = json_array();
            json_object_set_new(out, name, old);
        }
        json_array_append_new(old, val);
        return;
    }
    if (!old) {
        json_object_set_new(out, name, val);
        return;
    }
    /* A description that repeats a name: keep every value, as "name[2]",
     * "name[3]"...  The counter makes n repeats cost O(n), not O(n^2). */
    if (!*repeats) {
        *repeats = json_object();
    }
    json_t *next = json_object_get(*repeats, name);
    json_int_t k = json_is_integer(next) ? json_integer_value(next) : 2;
    for (;; k++) {
        char *key = xasprintf("%s[%lld]", name, (long long)k);
        if (!json_object_get(out, key)) {
            json_object_set_new(out, key, val);
            free(key);
            break;
        }
        free(key);
    }
    json_object_set_new(*repeats, name, json_integer(k + 1));
}

static bool decode_field(struct cursor *c, json_t *field, json_t *out,
                         json_t **repeats, Error **errp)
{
    const char *name = json_string_value(json_object_get(field, "name"));
    const char *type = json_string_value(json_object_get(field, "type"));
    json_t *jsize = json_object_get(field, "size");
    json_t *jlen = json_object_get(field, "array_len");
    if (!name || !json_is_integer(jsize) || json_integer_value(jsize) < 0 ||
        (jlen && !json_is_integer(jlen))) {
        error_setg(errp,
                   "vmdesc: field '%s' lacks a name, a size or a "
                   "valid array_len",
                   name ? PRINTABLE(name) : "?");
        return false;
    }
    if (!type) {
        type = "unknown";
    }
    size_t size = (size_t)json_integer_value(jsize);
    if (!jlen) {
        json_t *val;
        if (!decode_element(c, field, name, type, size, &val, errp)) {
            return false;
        }
        add_value(out, repeats, name, val,
                  json_object_get(field, "index") != NULL);
        return true;
    }
    json_int_t n = json_integer_value(jlen);
    size_t left = c->len - c->pos;
    if (n < 0 || (size > 0 && (uint64_t)n > left / size)) {
        error_setg(errp,
                   "field '%s' at offset %llu: %lld elements of %zu "
                   "bytes do not fit in the %zu bytes left",
                   PRINTABLE(name), AT(c), (long long)n, size, left);
        return false;
    }
    if (size == 0 && (uint64_t)n > *c->empty_budget) {
        error_setg(errp,
                   "field '%s' at offset %llu: %lld elements of 0 "
                   "bytes do not fit in the limit of %u values that take no "
                   "bytes",
                   PRINTABLE(name), AT(c), (long long)n,
                   VMDESC_EMPTY_VALUES_MAX);
        return false;
    }
    json_t *arr = json_array();
    for (json_int_t i = 0; i < n; i++) {
        json_t *val;
        if (!decode_element(c, field, name, type, size, &val, errp)) {
            json_decref(arr);
            error_prepend(errp, "[%lld] ", (long long)i);
            return false;
        }
        json_array_append_new(arr, val);
    }
    add_value(out, repeats, name, arr, false);
    return true;
}

static bool decode_subsection(struct cursor *c, json_t *sub, json_t *out,
                              Error **errp)
{
    const char *want = desc_name(sub);
    if (c->len - c->pos < 2 || c->data[c->pos] != STREAM_SUBSECTION) {
        error_setg(errp,
                   "expected subsection '%s' (0x05) at offset %llu, "
                   "found %s",
                   PRINTABLE(want), AT(c),
                   c->pos < c->len ? "another byte" : "the end of the section");
        return false;
    }
    size_t n = c->data[c->pos + 1];
    if (c->len - c->pos - 2 < n + 4) {
        error_setg(errp,
                   "subsection '%s' at offset %llu: header runs past "
                   "the section",
                   PRINTABLE(want), AT(c));
        return false;
    }
    const char *name = (const char *)c->data + c->pos + 2;
    if (strlen(want) != n || memcmp(name, want, n) != 0) {
        error_setg(
            errp,
            "expected subsection '%s' at offset %llu, found "
            "'%s'",
            PRINTABLE(want), AT(c),
            printable_n(name, n, (char[PRINTABLE_SIZE]){ 0 }, PRINTABLE_SIZE));
        return false;
    }
    c->pos += 2 + n + 4;
    json_t *obj = json_object();
    if (!decode_vmsd(c, sub, obj, errp)) {
        json_decref(obj);
        return false;
    }
    json_object_set_new(out, want, obj);
    return true;
}

static bool decode_vmsd(struct cursor *c, json_t *desc, json_t *out,
                        Error **errp)
{
    if (++c->depth > DECODE_MAX_DEPTH) {
        error_setg(errp, "vmdesc: descriptions nest deeper than %d levels",
                   DECODE_MAX_DEPTH);
        return false;
    }
    json_t *fields = json_object_get(desc, "fields");
    json_t *subs = json_object_get(desc, "subsections");
    if ((fields && !json_is_array(fields)) || (subs && !json_is_array(subs))) {
        error_setg(errp, "vmdesc: '%s' has malformed fields or subsections",
                   PRINTABLE(desc_name(desc)));
        return false;
    }
    size_t i;
    json_t *x;
    json_t *repeats = NULL;
    json_array_foreach(fields, i, x)
    {
        if (!json_is_object(x) || !decode_field(c, x, out, &repeats, errp)) {
            if (!json_is_object(x)) {
                error_setg(errp, "vmdesc: field %zu of '%s' is not an object",
                           i, PRINTABLE(desc_name(desc)));
            }
            json_decref(repeats);
            return false;
        }
    }
    json_decref(repeats);
    json_array_foreach(subs, i, x)
    {
        if (!json_is_object(x) || !decode_subsection(c, x, out, errp)) {
            if (!json_is_object(x)) {
                error_setg(errp,
                           "vmdesc: subsection %zu of '%s' is not an "
                           "object",
                           i, PRINTABLE(desc_name(desc)));
            }
            return false;
        }
    }
    c->depth--;
    return true;
}

bool vmdesc_decode(json_t *device, const uint8_t *data, size_t len,
                   uint64_t base, size_t *empty_budget, json_t **out,
                   size_t *used, Error **errp)
{
    size_t own_budget = VMDESC_EMPTY_VALUES_MAX;
    struct cursor c = { .data = data,
                        .len = len,
                        .base = base,
                        .empty_budget =
                            empty_budget ? empty_budget : &own_budget };
    json_t *obj = json_object();
    if (!decode_vmsd(&c, device, obj, errp)) {
        json_decref(obj);
        return false;
    }
    *out = obj;
    *used = c.pos;
    return true;
}
