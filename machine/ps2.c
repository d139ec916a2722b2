/* i8042 controller, PS/2 keyboard and mouse. */
#include "machine/ps2.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ST_OBF 0x01
#define ST_SYS 0x04
#define ST_CMD 0x08
#define ST_UNLOCKED 0x10
#define ST_AUX_OBF 0x20

#define MODE_SYS 0x04
#define MODE_DISABLE_KBD 0x10
#define MODE_DISABLE_AUX 0x20
#define MODE_TRANSLATE 0x40

#define ACK 0xfa

/* ---- queues ---- */

static bool q_push(struct ps2_queue *q, uint8_t v)
{
    if (q->count >= PS2_QUEUE_SIZE) {
        return false;
    }
    q->data[q->count++] = v;
    return true;
}

static uint8_t q_pop(struct ps2_queue *q)
{
    uint8_t v = q->data[0];
    memmove(q->data, q->data + 1, --q->count);
    q->data[q->count] = 0;
    return v;
}

static void q_clear(struct ps2_queue *q)
{
    memset(q, 0, sizeof(*q));
}

/* ---- controller ---- */

/* Fill the output buffer from the first source that has a byte. */
static void update(struct i8042 *c)
{
    if (c->status & ST_OBF) {
        return;
    }
    if (c->ctrl_reply_count) {
        c->obuf = c->ctrl_reply[0];
        memmove(c->ctrl_reply, c->ctrl_reply + 1, --c->ctrl_reply_count);
        c->status |= ST_OBF;
    } else if (c->kbd.q.count && !(c->mode & MODE_DISABLE_KBD)) {
        c->obuf = q_pop(&c->kbd.q);
        c->status |= ST_OBF;
    } else if (c->mouse.q.count && !(c->mode & MODE_DISABLE_AUX)) {
        c->obuf = q_pop(&c->mouse.q);
        c->status |= ST_OBF | ST_AUX_OBF;
    }
}

static void ctrl_reply(struct i8042 *c, uint8_t v)
{
    if (c->ctrl_reply_count < sizeof(c->ctrl_reply)) {
        c->ctrl_reply[c->ctrl_reply_count++] = v;
    }
    update(c);
}

static void kbd_reset(struct ps2_kbd *k)
{
    k->scan_enabled = true;
    k->pending_cmd = 0;
    k->leds = 0;
    k->scancode_set = 2;
    q_clear(&k->q);
}

static void mouse_reset(struct ps2_mouse *m)
{
    m->reporting = false;
    m->pending_cmd = 0;
    m->resolution = 2;
    m->sample_rate = 100;
    m->buttons = 0;
    m->scaling = 1;
    q_clear(&m->q);
}

void i8042_reset(struct i8042 *c)
{
    c->status = ST_UNLOCKED;
    c->mode = MODE_TRANSLATE | MODE_SYS | 0x03;
    c->pending_write = 0;
    c->obuf = 0;
    c->ctrl_reply_count = 0;
    memset(c->ctrl_reply, 0, sizeof(c->ctrl_reply));
    kbd_reset(&c->kbd);
    mouse_reset(&c->mouse);
}

void i8042_init(struct i8042 *c)
{
    memset(c, 0, sizeof(*c));
    i8042_reset(c);
}

static void kbd_command(struct ps2_kbd *k, uint8_t v)
{
    if (k->pending_cmd) {
        uint8_t cmd = k->pending_cmd;
        k->pending_cmd = 0;
        if (cmd == 0xed) {
            k->leds = v & 7;
        } else if (cmd == 0xf0 && v != 0) {
            k->scancode_set = v <= 3 ? v : k->scancode_set;
        } else if (cmd == 0xf0) {
            q_push(&k->q, ACK);
            q_push(&k->q, k->scancode_set);
            return;
        }
        q_push(&k->q, ACK);
        return;
    }
    switch (v) {
    case 0xed:
    case 0xf0:
    case 0xf3:
        k->pending_cmd = v;
        q_push(&k->q, ACK);
        break;
    case 0xee: /* echo */
        q_push(&k->q, 0xee);
        break;
    case 0xf2: /* identify: MF2, translated */
        q_push(&k->q, ACK);
        q_push(&k->q, 0xab);
        q_push(&k->q, 0x41);
        break;
    case 0xf4:
        k->scan_enabled = true;
        q_push(&k->q, ACK);
        break;
    case 0xf5:
        k->scan_enabled = false;
        q_push(&k->q, ACK);
        break;
    case 0xf6:
        k->scan_enabled = true;
        q_push(&k->q, ACK);
        break;
    case 0xff:
        kbd_reset(k);
        q_push(&k->q, ACK);
        q_push(&k->q, 0xaa);
        break;
    default:
        q_push(&k->q, ACK);
        break;
    }
}

static void mouse_command(struct ps2_mouse *m, uint8_t v)
{
    if (m->pending_cmd) {
        uint8_t cmd = m->pending_cmd;
        m->pending_cmd = 0;
        if (cmd == 0xe8) {
            m->resolution = v & 3;
        } else if (cmd == 0xf3) {
            m->sample_rate = v;
        }
        q_push(&m->q, ACK);
        return;
    }
    switch (v) {
    case 0xe6:
        m->scaling = 1;
        q_push(&m->q, ACK);
        break;
    case 0xe7:
        m->scaling = 2;
        q_push(&m->q, ACK);
        break;
    case 0xe8:
    case 0xf3:
        m->pending_cmd = v;
        q_push(&m->q, ACK);
        break;
    case 0xe9: /* status request */
        q_push(&m->q, ACK);
        q_push(&m->q,
               (uint8_t)((m->reporting ? 0x20 : 0) |
                         (m->scaling == 2 ? 0x10 : 0) | (m->buttons & 7)));
        q_push(&m->q, m->resolution);
        q_push(&m->q, m->sample_rate);
        break;
    case 0xf2: /* device id: standard mouse */
        q_push(&m->q, ACK);
        q_push(&m->q, 0x00);
        break;
    case 0xf4:
        m->reporting = true;
        q_push(&m->q, ACK);
        break;
    case 0xf5:
        m->reporting = false;
        q_push(&m->q, ACK);
        break;
    case 0xf6:
        m->reporting = false;
        m->resolution = 2;
        m->sample_rate = 100;
        m->scaling = 1;
        q_push(&m->q, ACK);
        break;
    case 0xff:
        mouse_reset(m);
        q_push(&m->q, ACK);
        q_push(&m->q, 0xaa);
        q_push(&m->q, 0x00);
        break;
    default:
        q_push(&m->q, ACK);
        break;
    }
}

static uint32_t data_read(void *opaque, uint16_t offset, int size)
{
    struct i8042 *c = opaque;
    update(c);
    uint8_t v = c->obuf;
    c->status &= (uint8_t) ~(ST_OBF | ST_AUX_OBF);
    update(c);
    return v;
}

static void data_write(void *opaque, uint16_t offset, int size, uint32_t val)
{
    struct i8042 *c = opaque;
    uint8_t v = (uint8_t)val;
    uint8_t w = c->pending_write;
    c->pending_write = 0;
    c->status &= (uint8_t)~ST_CMD;
    switch (w) {
    case 0x60:
        c->mode = v;
        c->status = (uint8_t)((c->status & ~ST_SYS) | (v & MODE_SYS));
        break;
    case 0xd1: /* output port: ignored */
        break;
    case 0xd2:
        q_push(&c->kbd.q, v);
        break;
    case 0xd3:
        q_push(&c->mouse.q, v);
        break;
    case 0xd4:
        mouse_command(&c->mouse, v);
        break;
    default:
        kbd_command(&c->kbd, v);
        break;
    }
    update(c);
}

static uint32_t status_read(void *opaque, uint16_t offset, int size)
{
    struct i8042 *c = opaque;
    update(c);
    return c->status;
}

static void cmd_write(void *opaque, uint16_t offset, int size, uint32_t val)
{
    struct i8042 *c = opaque;
    uint8_t v = (uint8_t)val;
    c->status |= ST_CMD;
    switch (v) {
    case 0x20:
        ctrl_reply(c, c->mode);
        break;
    case 0x60:
    case 0xd1:
    case 0xd2:
    case 0xd3:
    case 0xd4:
        c->pending_write = v;
        break;
    case 0xa7:
        c->mode |= MODE_DISABLE_AUX;
        break;
    case 0xa8:
        c->mode &= (uint8_t)~MODE_DISABLE_AUX;
        break;
    case 0xa9:
        ctrl_reply(c, 0x00);
        break; /* aux interface test: ok */
    case 0xaa:
        ctrl_reply(c, 0x55);
        break; /* self test passed */
    case 0xab:
        ctrl_reply(c, 0x00);
        break; /* kbd interface test: ok */
    case 0xad:
        c->mode |= MODE_DISABLE_KBD;
        break;
    case 0xae:
        c->mode &= (uint8_t)~MODE_DISABLE_KBD;
        break;
    case 0xc0:
        ctrl_reply(c, 0x00);
        break; /* input port */
    case 0xd0:
        ctrl_reply(c, 0x03);
        break; /* output port: A20 on */
    default:
        break; /* incl. 0xfe reset pulse */
    }
    update(c);
}

const struct ioport_ops i8042_data_ops = {
    .read = data_read,
    .write = data_write,
};
const struct ioport_ops i8042_cmd_ops = {
    .read = status_read,
    .write = cmd_write,
};

/* ---- keys ---- */

struct key {
    const char *name;
    int code; /* set 1; 0xe0xx extended */
};

static const struct key keys[] = {
    { "esc", 0x01 },
    { "1", 0x02 },
    { "2", 0x03 },
    { "3", 0x04 },
    { "4", 0x05 },
    { "5", 0x06 },
    { "6", 0x07 },
    { "7", 0x08 },
    { "8", 0x09 },
    { "9", 0x0a },
    { "0", 0x0b },
    { "minus", 0x0c },
    { "equal", 0x0d },
    { "backspace", 0x0e },
    { "tab", 0x0f },
    { "q", 0x10 },
    { "w", 0x11 },
    { "e", 0x12 },
    { "r", 0x13 },
    { "t", 0x14 },
    { "y", 0x15 },
    { "u", 0x16 },
    { "i", 0x17 },
    { "o", 0x18 },
    { "p", 0x19 },
    { "bracket_left", 0x1a },
    { "bracket_right", 0x1b },
    { "ret", 0x1c },
    { "ctrl", 0x1d },
    { "a", 0x1e },
    { "s", 0x1f },
    { "d", 0x20 },
    { "f", 0x21 },
    { "g", 0x22 },
    { "h", 0x23 },
    { "j", 0x24 },
    { "k", 0x25 },
    { "l", 0x26 },
    { "semicolon", 0x27 },
    { "apostrophe", 0x28 },
    { "grave_accent", 0x29 },
    { "shift", 0x2a },
    { "backslash", 0x2b },
    { "z", 0x2c },
    { "x", 0x2d },
    { "c", 0x2e },
    { "v", 0x2f },
    { "b", 0x30 },
    { "n", 0x31 },
    { "m", 0x32 },
    { "comma", 0x33 },
    { "dot", 0x34 },
    { "slash", 0x35 },
    { "shift_r", 0x36 },
    { "asterisk", 0x37 },
    { "kp_multiply", 0x37 },
    { "alt", 0x38 },
    { "spc", 0x39 },
    { "caps_lock", 0x3a },
    { "f1", 0x3b },
    { "f2", 0x3c },
    { "f3", 0x3d },
    { "f4", 0x3e },
    { "f5", 0x3f },
    { "f6", 0x40 },
    { "f7", 0x41 },
    { "f8", 0x42 },
    { "f9", 0x43 },
    { "f10", 0x44 },
    { "num_lock", 0x45 },
    { "scroll_lock", 0x46 },
    { "kp_7", 0x47 },
    { "kp_8", 0x48 },
    { "kp_9", 0x49 },
    { "kp_subtract", 0x4a },
    { "kp_4", 0x4b },
    { "kp_5", 0x4c },
    { "kp_6", 0x4d },
    { "kp_add", 0x4e },
    { "kp_1", 0x4f },
    { "kp_2", 0x50 },
    { "kp_3", 0x51 },
    { "kp_0", 0x52 },
    { "kp_decimal", 0x53 },
    { "less", 0x56 },
    { "f11", 0x57 },
    { "f12", 0x58 },
    { "kp_enter", 0xe01c },
    { "ctrl_r", 0xe01d },
    { "kp_divide", 0xe035 },
    { "alt_r", 0xe038 },
    { "home", 0xe047 },
    { "up", 0xe048 },
    { "pgup", 0xe049 },
    { "left", 0xe04b },
    { "right", 0xe04d },
    { "end", 0xe04f },
    { "down", 0xe050 },
    { "pgdn", 0xe051 },
    { "insert", 0xe052 },
    { "delete", 0xe053 },
    { "meta_l", 0xe05b },
    { "meta_r", 0xe05c },
    { "menu", 0xe05d },
};

const char *ps2_key_name(int i)
{
    return i >= 0 && (size_t)i < sizeof(keys) / sizeof(keys[0]) ? keys[i].name
                                                                : NULL;
}

int ps2_keycode(const char *name)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].name, name) == 0) {
            return keys[i].code;
        }
    }
    if (strncasecmp(name, "0x", 2) == 0 && name[2]) {
        char *end;
        long v = strtol(name, &end, 16);
        if (!*end && v > 0 && v <= 0xe07f &&
            ((v & 0xff80) == 0 || (v & 0xff80) == 0xe000)) {
            return (int)v;
        }
    }
    return -1;
}

static bool push_code(struct i8042 *c, int code, bool down)
{
    if (!c->kbd.scan_enabled) {
        return true; /* keyboard ignores keys */
    }
    if (c->kbd.q.count + 2 > PS2_QUEUE_SIZE) {
        return false;
    }
    if (code > 0xff) {
        q_push(&c->kbd.q, 0xe0);
    }
    q_push(&c->kbd.q, (uint8_t)((code & 0x7f) | (down ? 0 : 0x80)));
    update(c);
    return true;
}

bool ps2_key_event(struct i8042 *c, const char *name, bool down, Error **errp)
{
    int code = ps2_keycode(name);
    if (code < 0) {
        error_setg(errp, "unknown key '%s'", name);
        return false;
    }
    if (!push_code(c, code, down)) {
        error_setg(errp, "keyboard buffer full; key '%s' dropped", name);
        return false;
    }
    return true;
}

#define MAX_COMBO 8

bool ps2_sendkey(struct i8042 *c, const char *spec, Error **errp)
{
    int codes[MAX_COMBO];
    int n = 0;
    const char *p = spec;
    if (!*spec) {
        error_setg(errp, "no key given");
        return false;
    }
    while (*p) {
        const char *dash = strchr(p, '-');
        size_t len = dash ? (size_t)(dash - p) : strlen(p);
        char name[32];
        if (len == 0 || len >= sizeof(name) || n == MAX_COMBO) {
            error_setg(errp, "bad key combination '%s'", spec);
            return false;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        codes[n] = ps2_keycode(name);
        if (codes[n] < 0) {
            error_setg(errp, "unknown key '%s'", name);
            return false;
        }
        n++;
        p += len + (dash ? 1 : 0);
        if (dash && !*p) {
            error_setg(errp, "bad key combination '%s'", spec);
            return false;
        }
    }
    if (c->kbd.q.count + 4 * n > PS2_QUEUE_SIZE) {
        error_setg(errp, "keyboard buffer full; '%s' dropped", spec);
        return false;
    }
    for (int i = 0; i < n; i++) {
        push_code(c, codes[i], true);
    }
    for (int i = n - 1; i >= 0; i--) {
        push_code(c, codes[i], false);
    }
    return true;
}

/* ---- mouse ---- */

static void mouse_packet(struct i8042 *c, int dx, int dy)
{
    struct ps2_mouse *m = &c->mouse;
    if (!m->reporting || m->q.count + 3 > PS2_QUEUE_SIZE) {
        return;
    }
    uint8_t b0 = (uint8_t)(0x08 | (m->buttons & 7) | (dx < 0 ? 0x10 : 0) |
                           (dy < 0 ? 0x20 : 0));
    q_push(&m->q, b0);
    q_push(&m->q, (uint8_t)dx);
    q_push(&m->q, (uint8_t)dy);
    update(c);
}

static int clamp(int v)
{
    return v > 255 ? 255 : v < -256 ? -256 : v;
}

void ps2_mouse_move(struct i8042 *c, int dx, int dy, int dz)
{
    (void)dz; /* no wheel on a plain mouse */
    dy = -dy; /* PS/2 counts y upwards */
    do {
        int px = clamp(dx), py = clamp(dy);
        mouse_packet(c, px, py);
        dx -= px;
        dy -= py;
    } while (dx || dy);
}

void ps2_mouse_button(struct i8042 *c, unsigned state)
{
    c->mouse.buttons = state & 7;
    mouse_packet(c, 0, 0);
}

/* ---- saved state ---- */

static bool i8042_post_load(void *opaque, int version_id, Error **errp)
{
    struct i8042 *c = opaque;
    if (c->ctrl_reply_count > sizeof(c->ctrl_reply)) {
        error_setg(errp, "pckbd: %u controller replies exceed %zu",
                   c->ctrl_reply_count, sizeof(c->ctrl_reply));
        return false;
    }
    return true;
}

static const struct vmstate_field i8042_fields[] = {
    VMSTATE_UINT8(status, struct i8042),
    VMSTATE_UINT8(mode, struct i8042),
    VMSTATE_UINT8(pending_write, struct i8042),
    VMSTATE_UINT8(obuf, struct i8042),
    VMSTATE_UINT8(ctrl_reply_count, struct i8042),
    VMSTATE_VARRAY_UINT8(ctrl_reply, struct i8042, ctrl_reply_count, 0,
                         vmstate_info_uint8, uint8_t),
    VMSTATE_END_OF_LIST()
};

const struct vmstate_desc vmstate_i8042 = {
    .name = "pckbd",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = i8042_post_load,
    .fields = i8042_fields,
};

static const struct vmstate_field kbd_fields[] = {
    VMSTATE_BOOL(scan_enabled, struct ps2_kbd),
    VMSTATE_UINT8(pending_cmd, struct ps2_kbd),
    VMSTATE_UINT8(leds, struct ps2_kbd),
    VMSTATE_UINT8(scancode_set, struct ps2_kbd),
    VMSTATE_UINT8(q.count, struct ps2_kbd),
    VMSTATE_VARRAY_UINT8(q.data, struct ps2_kbd, q.count, 0, vmstate_info_uint8,
                         uint8_t),
    VMSTATE_END_OF_LIST()
};

const struct vmstate_desc vmstate_ps2_kbd = {
    .name = "ps2kbd",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = kbd_fields,
};

static bool mouse_post_load(void *opaque, int version_id, Error **errp)
{
    struct ps2_mouse *m = opaque;
    if (version_id < 2) {
        m->scaling = 1; /* not saved before version 2 */
    }
    if (m->scaling != 1 && m->scaling != 2) {
        error_setg(errp, "ps2mouse: scaling %u is not 1 or 2", m->scaling);
        return false;
    }
    return true;
}

static const struct vmstate_field mouse_fields[] = {
    VMSTATE_BOOL(reporting, struct ps2_mouse),
    VMSTATE_UINT8(pending_cmd, struct ps2_mouse),
    VMSTATE_UINT8(resolution, struct ps2_mouse),
    VMSTATE_UINT8(sample_rate, struct ps2_mouse),
    VMSTATE_UINT8(buttons, struct ps2_mouse),
    VMSTATE_UINT8(q.count, struct ps2_mouse),
    VMSTATE_VARRAY_UINT8(q.data, struct ps2_mouse, q.count, 0,
                         vmstate_info_uint8, uint8_t),
    VMSTATE_UINT8_V(scaling, struct ps2_mouse, 2),
    VMSTATE_END_OF_LIST()
};

const struct vmstate_desc vmstate_ps2_mouse = {
    .name = "ps2mouse",
    .version_id = 2,
    .minimum_version_id = 1,
    .post_load = mouse_post_load,
    .fields = mouse_fields,
};
