/* 16550A UART model. */
#include "machine/serial.h"

#include <string.h>

enum {
    REG_RBR_THR = 0,
    REG_IER = 1,
    REG_IIR_FCR = 2,
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};

#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define IER_RDI 0x01
#define IER_THRI 0x02

static unsigned rx_capacity(const struct serial *s)
{
    return (s->fcr & FCR_ENABLE) ? SERIAL_FIFO_SIZE : 1;
}

static void update_lsr(struct serial *s)
{
    if (s->rx_count) {
        s->lsr |= LSR_DR;
    } else {
        s->lsr &= (uint8_t)~LSR_DR;
    }
}

void serial_reset(struct serial *s)
{
    s->divider = 12; /* 9600 baud */
    s->ier = 0;
    s->lcr = 0x03; /* 8N1 */
    s->mcr = 0;
    s->lsr = LSR_THRE | LSR_TEMT;
    s->msr = 0xb0; /* DCD, DSR, CTS */
    s->scr = 0;
    s->fcr = 0;
    s->thr_ipending = true;
    s->rx_count = 0;
    memset(s->rx_fifo, 0, sizeof(s->rx_fifo));
}

void serial_init(struct serial *s, const struct serial_backend *backend)
{
    memset(s, 0, sizeof(*s));
    if (backend) {
        s->backend = *backend;
    }
    serial_reset(s);
}

static size_t rx_push(struct serial *s, const uint8_t *buf, size_t len)
{
    size_t n = 0;
    while (n < len) {
        if (s->rx_count >= rx_capacity(s)) {
            s->lsr |= LSR_OE;
            break;
        }
        s->rx_fifo[s->rx_count++] = buf[n++];
    }
    update_lsr(s);
    return n;
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
    return rx_push(s, buf, len);
}

static uint8_t rx_pop(struct serial *s)
{
    if (!s->rx_count) {
        return 0;
    }
    uint8_t v = s->rx_fifo[0];
    memmove(s->rx_fifo, s->rx_fifo + 1, --s->rx_count);
    s->rx_fifo[s->rx_count] = 0;
    update_lsr(s);
    return v;
}

static uint8_t iir(const struct serial *s)
{
    uint8_t fifo = (s->fcr & FCR_ENABLE) ? 0xc0 : 0;
    if ((s->ier & IER_RDI) && s->rx_count) {
        return fifo | 0x04;
    }
    if ((s->ier & IER_THRI) && s->thr_ipending) {
        return fifo | 0x02;
    }
    return fifo | 0x01;
}

uint32_t serial_ioport_read(void *opaque, uint16_t offset, int size)
{
    struct serial *s = opaque;
    bool dlab = s->lcr & LCR_DLAB;
    switch (offset) {
    case REG_RBR_THR:
        return dlab ? (s->divider & 0xff) : rx_pop(s);
    case REG_IER:
        return dlab ? (s->divider >> 8) : s->ier;
    case REG_IIR_FCR: {
        uint8_t v = iir(s);
        if ((v & 0x0f) == 0x02) {
            s->thr_ipending = false; /* reading IIR acknowledges THRE */
        }
        return v;
    }
    case REG_LCR:
        return s->lcr;
    case REG_MCR:
        return s->mcr;
    case REG_LSR: {
        uint8_t v = s->lsr;
        s->lsr &= (uint8_t)~LSR_OE; /* cleared on read */
        return v;
    }
    case REG_MSR:
        if (s->mcr & MCR_LOOP) {
            /* Loopback wires the modem outputs back to the inputs. */
            return ((s->mcr & 0x0c) << 4) | ((s->mcr & 0x01) << 5) |
                ((s->mcr & 0x02) << 3);
        }
        return s->msr;
    case REG_SCR:
        return s->scr;
    }
    return 0xff;
}

void serial_ioport_write(void *opaque, uint16_t offset, int size, uint32_t val)
{
    struct serial *s = opaque;
    uint8_t v = (uint8_t)val;
    bool dlab = s->lcr & LCR_DLAB;
    switch (offset) {
    case REG_RBR_THR:
        if (dlab) {
            s->divider = (uint16_t)((s->divider & 0xff00) | v);
        } else if (s->mcr & MCR_LOOP) {
            rx_push(s, &v, 1);
        } else {
            if (s->backend.write) {
                s->backend.write(s->backend.opaque, &v, 1);
            }
            s->thr_ipending = true;
        }
        break;
    case REG_IER:
        if (dlab) {
            s->divider = (uint16_t)((s->divider & 0x00ff) | (v << 8));
        } else {
            s->ier = v & 0x0f;
        }
        break;
    case REG_IIR_FCR:
        if ((v ^ s->fcr) & FCR_ENABLE) {
            s->rx_count = 0; /* changing mode empties the FIFOs */
        }
        if (v & FCR_CLEAR_RX) {
            s->rx_count = 0;
        }
        s->fcr = v & 0xc9;
        update_lsr(s);
        break;
    case REG_LCR:
        s->lcr = v;
        break;
    case REG_MCR:
        s->mcr = v & 0x1f;
        break;
    case REG_LSR:
    case REG_MSR:
        break; /* read-only */
    case REG_SCR:
        s->scr = v;
        break;
    }
}

const struct ioport_ops serial_ioport_ops = {
    .read = serial_ioport_read,
    .write = serial_ioport_write,
};

static bool serial_post_load(void *opaque, int version_id, Error **errp)
{
    struct serial *s = opaque;
    if (s->rx_count > SERIAL_FIFO_SIZE) {
        error_setg(errp, "serial: receive FIFO count %u exceeds %u",
                   s->rx_count, SERIAL_FIFO_SIZE);
        return false;
    }
    if (version_id < 2) {
        s->scr = 0; /* not saved before version 2 */
    }
    update_lsr(s);
    return true;
}

static const struct vmstate_field serial_fields[] = {
    VMSTATE_UINT16(divider, struct serial),
    VMSTATE_UINT8(ier, struct serial),
    VMSTATE_UINT8(lcr, struct serial),
    VMSTATE_UINT8(mcr, struct serial),
    VMSTATE_UINT8(lsr, struct serial),
    VMSTATE_UINT8(msr, struct serial),
    VMSTATE_UINT8(fcr, struct serial),
    VMSTATE_BOOL(thr_ipending, struct serial),
    VMSTATE_UINT8(rx_count, struct serial),
    VMSTATE_VARRAY_UINT8(rx_fifo, struct serial, rx_count, 0,
                         vmstate_info_uint8, uint8_t),
    VMSTATE_UINT8_V(scr, struct serial, 2),
    VMSTATE_END_OF_LIST()
};

const struct vmstate_desc vmstate_serial = {
    .name = "serial",
    .version_id = 2,
    .minimum_version_id = 1,
    .post_load = serial_post_load,
    .fields = serial_fields,
};
