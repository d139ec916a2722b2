/* The i8042 keyboard controller with a PS/2 keyboard and mouse behind it.
 * Ports 0x60 (data) and 0x64 (status/command); polled, no IRQs.  Keys
 * are delivered in scancode set 1, as the controller's translation
 * gives them.  The host side injects keys and mouse events through
 * ps2_sendkey / ps2_mouse_move / ps2_mouse_button (what the monitor's
 * sendkey, mouse_move and mouse_button call).  Not thread-safe: callers
 * hold the machine's I/O lock. */
#ifndef HOP_MACHINE_PS2_H
#define HOP_MACHINE_PS2_H

#include <stdbool.h>
#include <stdint.h>

#include "machine/ioport.h"
#include "util/error.h"
#include "vmstate/vmstate.h"

#define PS2_DATA_PORT 0x60
#define PS2_STATUS_PORT 0x64
#define PS2_QUEUE_SIZE 64

struct ps2_queue {
    uint8_t count;
    uint8_t data[PS2_QUEUE_SIZE]; /* oldest first */
};

struct ps2_kbd {
    bool scan_enabled;
    uint8_t pending_cmd; /* command waiting for its parameter */
    uint8_t leds;
    uint8_t scancode_set;
    struct ps2_queue q;
};

struct ps2_mouse {
    bool reporting;
    uint8_t pending_cmd;
    uint8_t resolution;
    uint8_t sample_rate;
    uint8_t buttons; /* bit 0 left, 1 right, 2 middle */
    uint8_t scaling; /* 1 or 2 (since version 2) */
    struct ps2_queue q;
};

struct i8042 {
    uint8_t status;
    uint8_t mode;             /* the controller command byte */
    uint8_t pending_write;    /* 0x60/0xd1/0xd2/0xd3/0xd4 or 0 */
    uint8_t obuf;             /* byte in the output buffer */
    uint8_t ctrl_reply_count; /* controller replies not yet read */
    uint8_t ctrl_reply[4];
    struct ps2_kbd kbd;
    struct ps2_mouse mouse;
};

extern const struct vmstate_desc vmstate_i8042;
extern const struct vmstate_desc vmstate_ps2_kbd;
extern const struct vmstate_desc vmstate_ps2_mouse;
extern const struct ioport_ops i8042_data_ops;
extern const struct ioport_ops i8042_cmd_ops;

void i8042_init(struct i8042 *c);
void i8042_reset(struct i8042 *c);

/* keys: QEMU sendkey syntax, names joined by '-' ("a", "shift-a",
 * "ctrl-alt-delete", "ret", "0x1e"): press in order, release in reverse. */
bool ps2_sendkey(struct i8042 *c, const char *keys, Error **errp);
/* One key press (down) or release, by name. */
bool ps2_key_event(struct i8042 *c, const char *name, bool down, Error **errp);
/* Relative motion: dx right, dy down (as the monitor's mouse_move). */
void ps2_mouse_move(struct i8042 *c, int dx, int dy, int dz);
/* Button state bits: 1 left, 2 right, 4 middle. */
void ps2_mouse_button(struct i8042 *c, unsigned state);
/* Set 1 make code of a key name (0xe0xx for extended keys), -1 if
 * unknown. */
int ps2_keycode(const char *name);
/* The i-th key name sendkey knows (for completion); NULL past the end. */
const char *ps2_key_name(int i);

#endif
