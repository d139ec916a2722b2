/* A test device set that uses every construct of the state description
 * engine, shared by the unit tests and the golden-stream generator. */
#ifndef HOP_TESTS_TESTDEV_H
#define HOP_TESTS_TESTDEV_H

#include <stdbool.h>
#include <stdint.h>

#include "vmstate/stream.h"
#include "vmstate/vmstate.h"

struct td_point {
    int32_t x, y;
};

/* A nested struct with a subsection of its own. */
struct td_timer {
    uint64_t expire;
    bool armed;
    uint32_t period; /* in subsection td_timer/period, if non-zero */
};

struct testdev {
    int8_t s8;
    int16_t s16;
    int32_t s32;
    int64_t s64;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    bool flag;
    uint16_t regs[4]; /* fixed array */
    uint8_t n8;
    uint8_t v8[8]; /* count in n8 */
    uint16_t n16;
    uint16_t v16[6]; /* count in n16 */
    uint32_t n32;
    uint32_t v32[5]; /* count in n32 */
    int32_t ni32;
    int32_t vi32[4];  /* count in ni32 */
    uint8_t blob[16]; /* byte buffer */
    uint32_t vlen;
    uint8_t vbuf[32];        /* vlen bytes */
    struct td_timer timer;   /* nested struct */
    struct td_point path[3]; /* array of structs */
    uint32_t npoints;
    struct td_point points[4]; /* variable array of structs */
    struct td_point *cursor;   /* pointer to struct */
    struct td_point *slots[3]; /* array of pointers, may be NULL */
    uint32_t added_v2;         /* present from version 2 */
    uint64_t added_v3;         /* present from version 3 */
    bool has_extra;
    uint32_t extra;   /* present when has_extra (test) */
    uint32_t magic;   /* must equal on load */
    uint8_t fifo_len; /* subsection testdev/fifo if > 0 */
    uint8_t fifo[16];
    uint32_t overrun;  /* testdev/fifo/overrun if != 0 */
    uint32_t checksum; /* computed by pre_save */

    /* Not saved: what the hooks saw. */
    struct td_point cursor_store;
    struct td_point slot_store[3];
    int pre_save_calls, pre_load_calls, post_load_calls;
    int loaded_version;
    bool post_load_saw_fifo; /* subsections come before post_load */
    bool legacy_loaded;
};

#define TESTDEV_MAGIC 0x686f7021u /* "hop!" */

extern const struct vmstate_desc testdev_vmsd;    /* version 3, min 2 */
extern const struct vmstate_desc testdev_vmsd_v2; /* as a version-2 build */
extern const struct vmstate_desc td_point_vmsd;

/* Zeroed device with its pointers wired up (slot 1 stays NULL). */
void testdev_init(struct testdev *d);
/* Fill every field with the fixed values the golden stream holds.  seed
 * varies them between instances. */
void testdev_fill(struct testdev *d, int seed);
/* Compare saved fields of a and b; returns the first differing field's
 * name, or NULL if they are equal. */
const char *testdev_diff(const struct testdev *a, const struct testdev *b);

/* A second, simpler device type. */
struct testled {
    uint8_t brightness;
    bool on;
};
extern const struct vmstate_desc testled_vmsd;

/* The golden set: testdev instances 0 and 1, testled instance 0. */
struct testset {
    struct testdev dev[2];
    struct testled led;
};
#define TESTSET_MACHINE "hop-test-1"
void testset_init(struct testset *s);
void testset_fill(struct testset *s);
/* Registers the set's devices in reg. */
void testset_register(struct testset *s, struct section_registry *reg);

#endif
