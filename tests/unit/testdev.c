/* The test device set: every construct of vmstate/vmstate.h in use. */
#include "tests/unit/testdev.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define TD struct testdev

const struct vmstate_desc td_point_vmsd = {
    .name = "td_point",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const struct vmstate_field[]){ VMSTATE_INT32(x, struct td_point),
                                              VMSTATE_INT32(y, struct td_point),
                                              VMSTATE_END_OF_LIST() },
};

static bool timer_period_needed(void *opaque)
{
    return ((struct td_timer *)opaque)->period != 0;
}

static const struct vmstate_desc td_timer_period_vmsd = {
    .name = "td_timer/period",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = timer_period_needed,
    .fields =
        (const struct vmstate_field[]){ VMSTATE_UINT32(period, struct td_timer),
                                        VMSTATE_END_OF_LIST() },
};

static const struct vmstate_desc td_timer_vmsd = {
    .name = "td_timer",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields =
        (const struct vmstate_field[]){ VMSTATE_UINT64(expire, struct td_timer),
                                        VMSTATE_BOOL(armed, struct td_timer),
                                        VMSTATE_END_OF_LIST() },
    .subsections =
        (const struct vmstate_desc *const[]){ &td_timer_period_vmsd, NULL },
};

static bool extra_exists(void *opaque, int version_id)
{
    return ((TD *)opaque)->has_extra;
}

static bool fifo_needed(void *opaque)
{
    return ((TD *)opaque)->fifo_len > 0;
}

static bool overrun_needed(void *opaque)
{
    return ((TD *)opaque)->overrun != 0;
}

static const struct vmstate_desc testdev_overrun_vmsd = {
    .name = "testdev/fifo/overrun",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = overrun_needed,
    .fields = (const struct vmstate_field[]){ VMSTATE_UINT32(overrun, TD),
                                              VMSTATE_END_OF_LIST() },
};

static const struct vmstate_desc testdev_fifo_vmsd = {
    .name = "testdev/fifo",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = fifo_needed,
    .fields = (const struct vmstate_field[]){ VMSTATE_UINT8(fifo_len, TD),
                                              VMSTATE_VARRAY_UINT8(
                                                  fifo, TD, fifo_len, 0,
                                                  vmstate_info_uint8, uint8_t),
                                              VMSTATE_END_OF_LIST() },
    .subsections =
        (const struct vmstate_desc *const[]){ &testdev_overrun_vmsd, NULL },
};

static uint32_t checksum(const TD *d)
{
    return (uint32_t)d->s32 * 31u + d->u32 * 17u + d->n32 + d->vlen;
}

static bool testdev_pre_save(void *opaque, Error **errp)
{
    TD *d = opaque;
    d->pre_save_calls++;
    d->checksum = checksum(d);
    return true;
}

static bool testdev_pre_load(void *opaque, Error **errp)
{
    TD *d = opaque;
    d->pre_load_calls++;
    d->fifo_len = 0; /* absent subsection means an empty FIFO */
    d->overrun = 0;
    return true;
}

static bool testdev_post_load(void *opaque, int version_id, Error **errp)
{
    TD *d = opaque;
    d->post_load_calls++;
    d->loaded_version = version_id;
    d->post_load_saw_fifo = d->fifo_len > 0;
    if (d->checksum != checksum(d)) {
        error_setg(errp, "checksum 0x%08x does not match the state (0x%08x)",
                   d->checksum, checksum(d));
        return false;
    }
    return true;
}

/* Version 1 was two fields in an ad-hoc layout: be32 u32, be16 u16. */
static bool testdev_load_v1(Channel *f, void *opaque, int version_id,
                            Error **errp)
{
    TD *d = opaque;
    if (version_id != 1) {
        error_setg(errp, "no loader for version %d", version_id);
        return false;
    }
    d->u32 = chan_get_be32(f);
    d->u16 = chan_get_be16(f);
    d->legacy_loaded = true;
    return chan_check(f, errp);
}

#define TESTDEV_FIELDS                                                         \
    VMSTATE_INT8(s8, TD), VMSTATE_INT16(s16, TD), VMSTATE_INT32(s32, TD),      \
        VMSTATE_INT64(s64, TD), VMSTATE_UINT8(u8, TD),                         \
        VMSTATE_UINT16(u16, TD), VMSTATE_UINT32(u32, TD),                      \
        VMSTATE_UINT64(u64, TD), VMSTATE_BOOL(flag, TD),                       \
        VMSTATE_UINT16_ARRAY(regs, TD, 4), VMSTATE_UINT8(n8, TD),              \
        VMSTATE_VARRAY_UINT8(v8, TD, n8, 0, vmstate_info_uint8, uint8_t),      \
        VMSTATE_UINT16(n16, TD),                                               \
        VMSTATE_VARRAY_UINT16(v16, TD, n16, 0, vmstate_info_uint16, uint16_t), \
        VMSTATE_UINT32(n32, TD),                                               \
        VMSTATE_VARRAY_UINT32(v32, TD, n32, 0, vmstate_info_uint32, uint32_t), \
        VMSTATE_INT32(ni32, TD),                                               \
        VMSTATE_VARRAY_INT32(vi32, TD, ni32, 0, vmstate_info_int32, int32_t),  \
        VMSTATE_BUFFER(blob, TD), VMSTATE_UINT32(vlen, TD),                    \
        VMSTATE_VBUFFER_UINT32(vbuf, TD, vlen),                                \
        VMSTATE_STRUCT(timer, TD, 0, td_timer_vmsd, struct td_timer),          \
        VMSTATE_STRUCT_ARRAY(path, TD, 3, 0, td_point_vmsd, struct td_point),  \
        VMSTATE_UINT32(npoints, TD),                                           \
        VMSTATE_STRUCT_VARRAY_UINT32(points, TD, npoints, 0, td_point_vmsd,    \
                                     struct td_point),                         \
        VMSTATE_STRUCT_POINTER(cursor, TD, td_point_vmsd, struct td_point),    \
        VMSTATE_ARRAY_OF_POINTER_TO_STRUCT(slots, TD, 3, 0, td_point_vmsd,     \
                                           struct td_point),                   \
        VMSTATE_UINT32_V(added_v2, TD, 2), VMSTATE_UINT64_V(added_v3, TD, 3),  \
        VMSTATE_BOOL(has_extra, TD),                                           \
        VMSTATE_UINT32_TEST(extra, TD, extra_exists), VMSTATE_UNUSED(4),       \
        VMSTATE_UINT32_EQUAL(magic, TD), VMSTATE_UINT32(checksum, TD),         \
        VMSTATE_END_OF_LIST()

static const struct vmstate_field testdev_fields[] = { TESTDEV_FIELDS };

static const struct vmstate_desc *const testdev_subsections[] = {
    &testdev_fifo_vmsd, NULL
};

const struct vmstate_desc testdev_vmsd = {
    .name = "testdev",
    .version_id = 3,
    .minimum_version_id = 2,
    .pre_save = testdev_pre_save,
    .pre_load = testdev_pre_load,
    .post_load = testdev_post_load,
    .load_state_old = testdev_load_v1,
    .fields = testdev_fields,
    .subsections = testdev_subsections,
};

/* The same table as an older build at version 2 would save it. */
const struct vmstate_desc testdev_vmsd_v2 = {
    .name = "testdev",
    .version_id = 2,
    .minimum_version_id = 2,
    .pre_save = testdev_pre_save,
    .pre_load = testdev_pre_load,
    .post_load = testdev_post_load,
    .fields = testdev_fields,
    .subsections = testdev_subsections,
};

const struct vmstate_desc testled_vmsd = {
    .name = "testled",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields =
        (const struct vmstate_field[]){
            VMSTATE_UINT8(brightness, struct testled),
            VMSTATE_BOOL(on, struct testled), VMSTATE_END_OF_LIST() },
};

void testdev_init(TD *d)
{
    memset(d, 0, sizeof(*d));
    d->cursor = &d->cursor_store;
    d->slots[0] = &d->slot_store[0];
    d->slots[1] = NULL;
    d->slots[2] = &d->slot_store[2];
    d->magic = TESTDEV_MAGIC;
}

void testdev_fill(TD *d, int seed)
{
    int k = seed * 100;
    d->s8 = (int8_t)(-5 - seed);
    d->s16 = (int16_t)(-1234 - k);
    d->s32 = -123456789 + k;
    d->s64 = -1234567890123456789ll + k;
    d->u8 = (uint8_t)(0xa5 + seed);
    d->u16 = (uint16_t)(0xbeef + seed);
    d->u32 = 0xdeadbeefu + (uint32_t)k;
    d->u64 = 0x0123456789abcdefull + (uint64_t)k;
    d->flag = true;
    for (int i = 0; i < 4; i++) {
        d->regs[i] = (uint16_t)(0x1000 * (i + 1) + seed);
    }
    d->n8 = 3;
    for (int i = 0; i < 3; i++) {
        d->v8[i] = (uint8_t)(10 + i + seed);
    }
    d->n16 = 2;
    d->v16[0] = (uint16_t)(0x2222 + seed);
    d->v16[1] = 0x3333;
    d->n32 = 4;
    for (int i = 0; i < 4; i++) {
        d->v32[i] = 0x40000000u + (uint32_t)(i * 7 + seed);
    }
    d->ni32 = 2;
    d->vi32[0] = -7 - seed;
    d->vi32[1] = 77;
    for (int i = 0; i < 16; i++) {
        d->blob[i] = (uint8_t)(0xf0 ^ (i + seed));
    }
    d->vlen = 5;
    memcpy(d->vbuf, "hello", 5);
    d->timer.expire = 1000000000ull + (uint64_t)k;
    d->timer.armed = true;
    d->timer.period = seed == 0 ? 250 : 0; /* subsection on dev 0 only */
    for (int i = 0; i < 3; i++) {
        d->path[i].x = i * 10 + seed;
        d->path[i].y = -(i * 10) - seed;
    }
    d->npoints = 2;
    d->points[0] = (struct td_point){ 100 + seed, 200 };
    d->points[1] = (struct td_point){ -300, -400 - seed };
    d->cursor->x = 640 + seed;
    d->cursor->y = 480;
    d->slots[0]->x = 1;
    d->slots[0]->y = 2;
    d->slots[2]->x = 5;
    d->slots[2]->y = 6 + seed;
    d->added_v2 = 0x2222u + (uint32_t)seed;
    d->added_v3 = 0x3333333333ull + (uint64_t)seed;
    d->has_extra = seed == 0;
    d->extra = seed == 0 ? 0xe0e0e0e0u : 0;
    d->fifo_len = seed == 0 ? 3 : 0;
    for (int i = 0; i < d->fifo_len; i++) {
        d->fifo[i] = (uint8_t)('a' + i);
    }
    d->overrun = seed == 0 ? 9 : 0;
}

#define CMP(field)                                                             \
    do {                                                                       \
        if (memcmp(&a->field, &b->field, sizeof(a->field)) != 0) {             \
            return #field;                                                     \
        }                                                                      \
    } while (0)

const char *testdev_diff(const TD *a, const TD *b)
{
    CMP(s8);
    CMP(s16);
    CMP(s32);
    CMP(s64);
    CMP(u8);
    CMP(u16);
    CMP(u32);
    CMP(u64);
    CMP(flag);
    CMP(regs);
    CMP(n8);
    if (memcmp(a->v8, b->v8, a->n8) != 0) {
        return "v8";
    }
    CMP(n16);
    if (memcmp(a->v16, b->v16, a->n16 * sizeof(a->v16[0])) != 0) {
        return "v16";
    }
    CMP(n32);
    if (memcmp(a->v32, b->v32, a->n32 * sizeof(a->v32[0])) != 0) {
        return "v32";
    }
    CMP(ni32);
    if (memcmp(a->vi32, b->vi32, (size_t)a->ni32 * sizeof(a->vi32[0])) != 0) {
        return "vi32";
    }
    CMP(blob);
    CMP(vlen);
    if (memcmp(a->vbuf, b->vbuf, a->vlen) != 0) {
        return "vbuf";
    }
    CMP(timer.expire);
    CMP(timer.armed);
    CMP(timer.period);
    CMP(path);
    CMP(npoints);
    if (memcmp(a->points, b->points, a->npoints * sizeof(a->points[0])) != 0) {
        return "points";
    }
    if (memcmp(a->cursor, b->cursor, sizeof(*a->cursor)) != 0) {
        return "cursor";
    }
    for (int i = 0; i < 3; i++) {
        if (!a->slots[i] != !b->slots[i] ||
            (a->slots[i] &&
             memcmp(a->slots[i], b->slots[i], sizeof(*a->slots[i])) != 0)) {
            return "slots";
        }
    }
    CMP(added_v2);
    CMP(added_v3);
    CMP(has_extra);
    CMP(extra);
    CMP(magic);
    CMP(fifo_len);
    if (memcmp(a->fifo, b->fifo, a->fifo_len) != 0) {
        return "fifo";
    }
    CMP(overrun);
    CMP(checksum);
    return NULL;
}

void testset_init(struct testset *s)
{
    testdev_init(&s->dev[0]);
    testdev_init(&s->dev[1]);
    memset(&s->led, 0, sizeof(s->led));
}

void testset_fill(struct testset *s)
{
    testdev_fill(&s->dev[0], 0);
    testdev_fill(&s->dev[1], 1);
    s->led.brightness = 200;
    s->led.on = true;
}

void testset_register(struct testset *s, struct section_registry *reg)
{
    Error *err = NULL;
    section_register_vmsd(reg, "testdev", 0, &testdev_vmsd, &s->dev[0], &err);
    section_register_vmsd(reg, "testdev", 1, &testdev_vmsd, &s->dev[1], &err);
    section_register_vmsd(reg, "testled", 0, &testled_vmsd, &s->led, &err);
    if (err) {
        error_report_err(err);
        abort();
    }
}
