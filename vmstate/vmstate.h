/* State descriptions: devices declare their state once, as a table of
 * fields, and one interpreter saves it, loads it, describes it as vmdesc
 * JSON and dumps its schema.  The wire encoding is QEMU's VMState
 * encoding, so QEMU's tools read it: fields in declaration order, no
 * tags, big-endian integers, then the needed subsections.
 *
 * A field is present in a section of version V when its own version_id
 * is <= V and its field_exists test (if any) says so.  Loading rejects a
 * section newer than the description, or older than minimum_version_id
 * unless a legacy loader (load_state_old) takes it. */
#ifndef HOP_VMSTATE_VMSTATE_H
#define HOP_VMSTATE_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "vmstate/channel.h"

typedef struct json_t json_t;
struct vmstate_field;

/* How one primitive travels.  name is the vmdesc "type". */
struct vmstate_info {
    const char *name;
    /* Read size bytes' worth of value into pv; false with errp on a bad
     * value (for example an `equal` field that differs). */
    bool (*get)(Channel *f, void *pv, size_t size,
                const struct vmstate_field *field, Error **errp);
    void (*put)(Channel *f, const void *pv, size_t size,
                const struct vmstate_field *field);
};

enum vmstate_flags {
    VMS_SINGLE = 1u << 0,       /* one value at offset */
    VMS_POINTER = 1u << 1,      /* offset holds a pointer to the data */
    VMS_ARRAY = 1u << 2,        /* num elements */
    VMS_STRUCT = 1u << 3,       /* nested description in vmsd */
    VMS_VARRAY_UINT8 = 1u << 4, /* count is a uint8_t at num_offset */
    VMS_VARRAY_UINT16 = 1u << 5,
    VMS_VARRAY_UINT32 = 1u << 6,
    VMS_VARRAY_INT32 = 1u << 7,
    VMS_BUFFER = 1u << 8,            /* size raw bytes */
    VMS_VBUFFER = 1u << 9,           /* uint32_t byte count at size_offset,
                                        at most size */
    VMS_ARRAY_OF_POINTER = 1u << 10, /* array elements are pointers */
};

#define VMS_VARRAY_ANY                                                         \
    (VMS_VARRAY_UINT8 | VMS_VARRAY_UINT16 | VMS_VARRAY_UINT32 |                \
     VMS_VARRAY_INT32)

struct vmstate_field {
    const char *name;
    size_t offset;
    size_t size;        /* element size (bytes) or buffer capacity */
    int num;            /* fixed count, or capacity of a VARRAY */
    size_t num_offset;  /* VARRAY: where the count lives */
    size_t size_offset; /* VBUFFER: where the byte count lives */
    const struct vmstate_info *info;
    unsigned flags;
    const struct vmstate_desc *vmsd;
    int version_id; /* present from this section version on */
    bool (*field_exists)(void *opaque, int version_id);
};

struct vmstate_desc {
    const char *name;
    int version_id;
    int minimum_version_id;
    /* Optional hooks; each returns false with errp set to fail. */
    bool (*pre_save)(void *opaque, Error **errp);
    bool (*pre_load)(void *opaque, Error **errp);
    /* Runs after the fields and every subsection were loaded. */
    bool (*post_load)(void *opaque, int version_id, Error **errp);
    /* Subsections only: send this subsection? */
    bool (*needed)(void *opaque);
    /* Takes versions below minimum_version_id, in its own format. */
    bool (*load_state_old)(Channel *f, void *opaque, int version_id,
                           Error **errp);
    const struct vmstate_field *fields;            /* ends with name NULL */
    const struct vmstate_desc *const *subsections; /* NULL-terminated */
};

/* Primitive encodings. */
extern const struct vmstate_info vmstate_info_bool;
extern const struct vmstate_info vmstate_info_int8;
extern const struct vmstate_info vmstate_info_int16;
extern const struct vmstate_info vmstate_info_int32;
extern const struct vmstate_info vmstate_info_int64;
extern const struct vmstate_info vmstate_info_uint8;
extern const struct vmstate_info vmstate_info_uint16;
extern const struct vmstate_info vmstate_info_uint32;
extern const struct vmstate_info vmstate_info_uint64;
extern const struct vmstate_info vmstate_info_uint8_equal;
extern const struct vmstate_info vmstate_info_uint32_equal;
extern const struct vmstate_info vmstate_info_buffer;
extern const struct vmstate_info vmstate_info_unused_buffer;
extern const struct vmstate_info vmstate_info_nullptr;

/* Save desc's state at its current version_id.  When vmdesc is not NULL
 * the fields written are described into it (QEMU's vmdesc layout:
 * vmsd_name, version, fields, subsections). */
bool vmstate_save(Channel *f, const struct vmstate_desc *desc, void *opaque,
                  json_t *vmdesc, Error **errp);
/* Load a section of version_id.  Errors name the description and field. */
bool vmstate_load(Channel *f, const struct vmstate_desc *desc, void *opaque,
                  int version_id, Error **errp);
/* The schema of desc in QEMU's -dump-vmstate layout ("name", "version_id",
 * "minimum_version_id", "Fields", "Subsections"). */
json_t *vmstate_schema_json(const struct vmstate_desc *desc);

/* ---- Table macros ----
 * Type checks: each macro refuses (at compile time) a struct member whose
 * type does not match the declared encoding. */

#define vmstate_member(s, f) (((s *)0)->f)
#define vmstate_offset(s, f, t)                                                \
    (offsetof(s, f) + 0 * sizeof((t *){ &vmstate_member(s, f) }))
#define vmstate_offset_array(s, f, t, n)                                       \
    (offsetof(s, f) + 0 * sizeof((t(*)[n]){ &vmstate_member(s, f) }))
#define vmstate_offset_pointer(s, f, t)                                        \
    (offsetof(s, f) + 0 * sizeof((t **){ &vmstate_member(s, f) }))
#define vmstate_offset_buffer(s, f)                                            \
    (offsetof(s, f) + 0 * sizeof((uint8_t *){ vmstate_member(s, f) }))

#define VMSTATE_SINGLE_TEST(f, s, v, test, info_, t)                           \
    {                                                                          \
        .name = #f, .version_id = (v), .field_exists = (test),                 \
        .size = sizeof(t), .info = &(info_), .flags = VMS_SINGLE,              \
        .offset = vmstate_offset(s, f, t)                                      \
    }

#define VMSTATE_BOOL_V(f, s, v)                                                \
    VMSTATE_SINGLE_TEST(f, s, v, NULL, vmstate_info_bool, bool)
#define VMSTATE_INT8_V(f, s, v)                                                \
    VMSTATE_SINGLE_TEST(f, s, v, NULL, vmstate_info_int8, int8_t)
#define VMSTATE_INT16_V(f, s, v)                                               \
    VMSTATE_SINGLE_TEST(f, s, v, NULL, vmstate_info_int16, int16_t)
#define VMSTATE_INT32_V(f, s, v)                                               \
    VMSTATE_SINGLE_TEST(f, s, v, NULL, vmstate_info_int32, int32_t)
#define VMSTATE_INT64_V(f, s, v)                                               \
    VMSTATE_SINGLE_TEST(f, s, v, NULL, vmstate_info_int64, int64_t)
#define VMSTATE_UINT8_V(f, s, v)                                               \
    VMSTATE_SINGLE_TEST(f, s, v, NULL, vmstate_info_uint8, uint8_t)
#define VMSTATE_UINT16_V(f, s, v)                                              \
    VMSTATE_SINGLE_TEST(f, s, v, NULL, vmstate_info_uint16, uint16_t)
#define VMSTATE_UINT32_V(f, s, v)                                              \
    VMSTATE_SINGLE_TEST(f, s, v, NULL, vmstate_info_uint32, uint32_t)
#define VMSTATE_UINT64_V(f, s, v)                                              \
    VMSTATE_SINGLE_TEST(f, s, v, NULL, vmstate_info_uint64, uint64_t)

#define VMSTATE_BOOL(f, s) VMSTATE_BOOL_V(f, s, 0)
#define VMSTATE_INT8(f, s) VMSTATE_INT8_V(f, s, 0)
#define VMSTATE_INT16(f, s) VMSTATE_INT16_V(f, s, 0)
#define VMSTATE_INT32(f, s) VMSTATE_INT32_V(f, s, 0)
#define VMSTATE_INT64(f, s) VMSTATE_INT64_V(f, s, 0)
#define VMSTATE_UINT8(f, s) VMSTATE_UINT8_V(f, s, 0)
#define VMSTATE_UINT16(f, s) VMSTATE_UINT16_V(f, s, 0)
#define VMSTATE_UINT32(f, s) VMSTATE_UINT32_V(f, s, 0)
#define VMSTATE_UINT64(f, s) VMSTATE_UINT64_V(f, s, 0)

#define VMSTATE_BOOL_TEST(f, s, t)                                             \
    VMSTATE_SINGLE_TEST(f, s, 0, t, vmstate_info_bool, bool)
#define VMSTATE_UINT8_TEST(f, s, t)                                            \
    VMSTATE_SINGLE_TEST(f, s, 0, t, vmstate_info_uint8, uint8_t)
#define VMSTATE_UINT16_TEST(f, s, t)                                           \
    VMSTATE_SINGLE_TEST(f, s, 0, t, vmstate_info_uint16, uint16_t)
#define VMSTATE_UINT32_TEST(f, s, t)                                           \
    VMSTATE_SINGLE_TEST(f, s, 0, t, vmstate_info_uint32, uint32_t)
#define VMSTATE_UINT64_TEST(f, s, t)                                           \
    VMSTATE_SINGLE_TEST(f, s, 0, t, vmstate_info_uint64, uint64_t)
#define VMSTATE_INT32_TEST(f, s, t)                                            \
    VMSTATE_SINGLE_TEST(f, s, 0, t, vmstate_info_int32, int32_t)

/* Loading fails unless the incoming value equals ours. */
#define VMSTATE_UINT8_EQUAL(f, s)                                              \
    VMSTATE_SINGLE_TEST(f, s, 0, NULL, vmstate_info_uint8_equal, uint8_t)
#define VMSTATE_UINT32_EQUAL(f, s)                                             \
    VMSTATE_SINGLE_TEST(f, s, 0, NULL, vmstate_info_uint32_equal, uint32_t)

#define VMSTATE_ARRAY_V(f, s, n, v, info_, t)                                  \
    {                                                                          \
        .name = #f, .version_id = (v), .num = (n), .info = &(info_),           \
        .size = sizeof(t), .flags = VMS_ARRAY,                                 \
        .offset = vmstate_offset_array(s, f, t, n)                             \
    }

#define VMSTATE_BOOL_ARRAY(f, s, n)                                            \
    VMSTATE_ARRAY_V(f, s, n, 0, vmstate_info_bool, bool)
#define VMSTATE_UINT8_ARRAY(f, s, n)                                           \
    VMSTATE_ARRAY_V(f, s, n, 0, vmstate_info_uint8, uint8_t)
#define VMSTATE_UINT16_ARRAY(f, s, n)                                          \
    VMSTATE_ARRAY_V(f, s, n, 0, vmstate_info_uint16, uint16_t)
#define VMSTATE_UINT32_ARRAY(f, s, n)                                          \
    VMSTATE_ARRAY_V(f, s, n, 0, vmstate_info_uint32, uint32_t)
#define VMSTATE_UINT64_ARRAY(f, s, n)                                          \
    VMSTATE_ARRAY_V(f, s, n, 0, vmstate_info_uint64, uint64_t)
#define VMSTATE_INT32_ARRAY(f, s, n)                                           \
    VMSTATE_ARRAY_V(f, s, n, 0, vmstate_info_int32, int32_t)
#define VMSTATE_UINT32_ARRAY_V(f, s, n, v)                                     \
    VMSTATE_ARRAY_V(f, s, n, v, vmstate_info_uint32, uint32_t)

/* A variable array: count elements of a fixed-capacity array f, where the
 * count is the member cnt (sent earlier in the same struct). */
#define VMSTATE_VARRAY_V(f, s, cnt, cnt_t, vflag, v, info_, t)                 \
    {                                                                          \
        .name = #f, .version_id = (v), .info = &(info_), .size = sizeof(t),    \
        .num = (int)(sizeof(vmstate_member(s, f)) / sizeof(t)),                \
        .num_offset = vmstate_offset(s, cnt, cnt_t), .flags = (vflag),         \
        .offset = vmstate_offset_array(                                        \
            s, f, t, sizeof(vmstate_member(s, f)) / sizeof(t))                 \
    }

#define VMSTATE_VARRAY_UINT8(f, s, cnt, v, info_, t)                           \
    VMSTATE_VARRAY_V(f, s, cnt, uint8_t, VMS_VARRAY_UINT8, v, info_, t)
#define VMSTATE_VARRAY_UINT16(f, s, cnt, v, info_, t)                          \
    VMSTATE_VARRAY_V(f, s, cnt, uint16_t, VMS_VARRAY_UINT16, v, info_, t)
#define VMSTATE_VARRAY_UINT32(f, s, cnt, v, info_, t)                          \
    VMSTATE_VARRAY_V(f, s, cnt, uint32_t, VMS_VARRAY_UINT32, v, info_, t)
#define VMSTATE_VARRAY_INT32(f, s, cnt, v, info_, t)                           \
    VMSTATE_VARRAY_V(f, s, cnt, int32_t, VMS_VARRAY_INT32, v, info_, t)

/* Raw bytes: the whole member (an array of uint8_t). */
#define VMSTATE_BUFFER_V(f, s, v)                                              \
    {                                                                          \
        .name = #f, .version_id = (v), .info = &vmstate_info_buffer,           \
        .size = sizeof(vmstate_member(s, f)), .flags = VMS_BUFFER,             \
        .offset = vmstate_offset_buffer(s, f)                                  \
    }
#define VMSTATE_BUFFER(f, s) VMSTATE_BUFFER_V(f, s, 0)

/* Raw bytes whose length is the uint32_t member len (at most sizeof f). */
#define VMSTATE_VBUFFER_UINT32(f, s, len)                                      \
    {                                                                          \
        .name = #f, .info = &vmstate_info_buffer,                              \
        .size = sizeof(vmstate_member(s, f)), .flags = VMS_VBUFFER,            \
        .size_offset = vmstate_offset(s, len, uint32_t),                       \
        .offset = vmstate_offset_buffer(s, f)                                  \
    }

/* n bytes of a field that no longer exists: zeros out, ignored in. */
#define VMSTATE_UNUSED_V(n, v)                                                 \
    {                                                                          \
        .name = "unused", .version_id = (v), .size = (n),                      \
        .info = &vmstate_info_unused_buffer, .flags = VMS_BUFFER               \
    }
#define VMSTATE_UNUSED(n) VMSTATE_UNUSED_V(n, 0)

#define VMSTATE_STRUCT_TEST(f, s, v, test, desc, t)                            \
    {                                                                          \
        .name = #f, .version_id = (v), .field_exists = (test),                 \
        .vmsd = &(desc), .size = sizeof(t), .flags = VMS_STRUCT,               \
        .offset = vmstate_offset(s, f, t)                                      \
    }
#define VMSTATE_STRUCT(f, s, v, desc, t)                                       \
    VMSTATE_STRUCT_TEST(f, s, v, NULL, desc, t)

#define VMSTATE_STRUCT_POINTER(f, s, desc, t)                                  \
    {                                                                          \
        .name = #f, .vmsd = &(desc), .size = sizeof(t),                        \
        .flags = VMS_STRUCT | VMS_POINTER,                                     \
        .offset = vmstate_offset_pointer(s, f, t)                              \
    }

#define VMSTATE_STRUCT_ARRAY(f, s, n, v, desc, t)                              \
    {                                                                          \
        .name = #f, .version_id = (v), .num = (n), .vmsd = &(desc),            \
        .size = sizeof(t), .flags = VMS_STRUCT | VMS_ARRAY,                    \
        .offset = vmstate_offset_array(s, f, t, n)                             \
    }

#define VMSTATE_STRUCT_VARRAY_UINT32(f, s, cnt, v, desc, t)                    \
    {                                                                          \
        .name = #f, .version_id = (v), .vmsd = &(desc), .size = sizeof(t),     \
        .num = (int)(sizeof(vmstate_member(s, f)) / sizeof(t)),                \
        .num_offset = vmstate_offset(s, cnt, uint32_t),                        \
        .flags = VMS_STRUCT | VMS_VARRAY_UINT32,                               \
        .offset = vmstate_offset_array(                                        \
            s, f, t, sizeof(vmstate_member(s, f)) / sizeof(t))                 \
    }

/* An array of n pointers to structs; a NULL element travels as the
 * one-byte nullptr marker. */
#define VMSTATE_ARRAY_OF_POINTER_TO_STRUCT(f, s, n, v, desc, t)                \
    {                                                                          \
        .name = #f, .version_id = (v), .num = (n), .vmsd = &(desc),            \
        .size = sizeof(t *),                                                   \
        .flags = VMS_ARRAY | VMS_STRUCT | VMS_ARRAY_OF_POINTER,                \
        .offset = vmstate_offset_array(s, f, t *, n)                           \
    }

#define VMSTATE_END_OF_LIST()                                                  \
    {                                                                          \
        .name = NULL                                                           \
    }

#endif
