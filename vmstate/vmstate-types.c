/* The primitive encodings of the state description engine: integers of
 * every width (big-endian), bool, `equal` validators, raw buffers, unused
 * bytes and the null-pointer marker. */
#include "vmstate/vmstate.h"

#include <inttypes.h>
#include <string.h>

#define INT_INFO(tname, ctype, utype, bits)                                    \
    static bool get_##tname(Channel *f, void *pv, size_t size,                 \
                            const struct vmstate_field *field, Error **errp)   \
    {                                                                          \
        *(ctype *)pv = (ctype)(utype)chan_get_be##bits(f);                     \
        return !chan_has_error(f);                                             \
    }                                                                          \
    static void put_##tname(Channel *f, const void *pv, size_t size,           \
                            const struct vmstate_field *field)                 \
    {                                                                          \
        chan_put_be##bits(f, (utype) * (const ctype *)pv);                     \
    }                                                                          \
    const struct vmstate_info vmstate_info_##tname = {                         \
        .name = #tname,                                                        \
        .get = get_##tname,                                                    \
        .put = put_##tname,                                                    \
    };

/* One byte wide values use the u8 accessors. */
#define chan_get_be8 chan_get_u8
#define chan_put_be8 chan_put_u8

INT_INFO(int8, int8_t, uint8_t, 8)
INT_INFO(int16, int16_t, uint16_t, 16)
INT_INFO(int32, int32_t, uint32_t, 32)
INT_INFO(int64, int64_t, uint64_t, 64)
INT_INFO(uint8, uint8_t, uint8_t, 8)
INT_INFO(uint16, uint16_t, uint16_t, 16)
INT_INFO(uint32, uint32_t, uint32_t, 32)
INT_INFO(uint64, uint64_t, uint64_t, 64)

static bool get_bool(Channel *f, void *pv, size_t size,
                     const struct vmstate_field *field, Error **errp)
{
    uint8_t v = chan_get_u8(f);
    if (chan_has_error(f)) {
        return false;
    }
    if (v > 1) {
        error_setg(errp, "bool value %u is neither 0 nor 1", v);
        return false;
    }
    *(bool *)pv = v;
    return true;
}

static void put_bool(Channel *f, const void *pv, size_t size,
                     const struct vmstate_field *field)
{
    chan_put_u8(f, *(const bool *)pv ? 1 : 0);
}

const struct vmstate_info vmstate_info_bool = {
    .name = "bool",
    .get = get_bool,
    .put = put_bool,
};

static bool get_uint8_equal(Channel *f, void *pv, size_t size,
                            const struct vmstate_field *field, Error **errp)
{
    uint8_t v = chan_get_u8(f);
    if (chan_has_error(f)) {
        return false;
    }
    if (v != *(uint8_t *)pv) {
        error_setg(errp, "value %u differs from this machine's %u", v,
                   *(uint8_t *)pv);
        return false;
    }
    return true;
}

const struct vmstate_info vmstate_info_uint8_equal = {
    .name = "uint8 equal",
    .get = get_uint8_equal,
    .put = put_uint8,
};

static bool get_uint32_equal(Channel *f, void *pv, size_t size,
                             const struct vmstate_field *field, Error **errp)
{
    uint32_t v = chan_get_be32(f);
    if (chan_has_error(f)) {
        return false;
    }
    if (v != *(uint32_t *)pv) {
        error_setg(errp,
                   "value %" PRIu32 " differs from this machine's %" PRIu32, v,
                   *(uint32_t *)pv);
        return false;
    }
    return true;
}

const struct vmstate_info vmstate_info_uint32_equal = {
    .name = "uint32 equal",
    .get = get_uint32_equal,
    .put = put_uint32,
};

static bool get_buffer(Channel *f, void *pv, size_t size,
                       const struct vmstate_field *field, Error **errp)
{
    return chan_get_buffer(f, pv, size);
}

static void put_buffer(Channel *f, const void *pv, size_t size,
                       const struct vmstate_field *field)
{
    chan_put_buffer(f, pv, size);
}

const struct vmstate_info vmstate_info_buffer = {
    .name = "buffer",
    .get = get_buffer,
    .put = put_buffer,
};

static bool get_unused(Channel *f, void *pv, size_t size,
                       const struct vmstate_field *field, Error **errp)
{
    return chan_skip(f, size);
}

static void put_unused(Channel *f, const void *pv, size_t size,
                       const struct vmstate_field *field)
{
    static const uint8_t zeros[256];
    while (size > 0) {
        size_t n = size < sizeof(zeros) ? size : sizeof(zeros);
        chan_put_buffer(f, zeros, n);
        size -= n;
    }
}

const struct vmstate_info vmstate_info_unused_buffer = {
    .name = "unused_buffer",
    .get = get_unused,
    .put = put_unused,
};

/* A NULL element of an array of pointers: one byte '0'. */
#define VMS_NULLPTR_MARKER 0x30

static bool get_nullptr(Channel *f, void *pv, size_t size,
                        const struct vmstate_field *field, Error **errp)
{
    uint8_t v = chan_get_u8(f);
    if (chan_has_error(f)) {
        return false;
    }
    if (v != VMS_NULLPTR_MARKER) {
        error_setg(errp,
                   "expected null-pointer marker 0x30, got 0x%02x "
                   "(the source had an element here)",
                   v);
        return false;
    }
    return true;
}

static void put_nullptr(Channel *f, const void *pv, size_t size,
                        const struct vmstate_field *field)
{
    chan_put_u8(f, VMS_NULLPTR_MARKER);
}

const struct vmstate_info vmstate_info_nullptr = {
    .name = "nullptr",
    .get = get_nullptr,
    .put = put_nullptr,
};
