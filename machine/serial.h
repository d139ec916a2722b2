/* A 16550A-style UART: 16-byte receive FIFO, transmit sent at once to a
 * backend (stdout, a file, a test buffer), polled (no interrupt line).
 * Lives at COM1 (0x3f8, 8 ports).  Not thread-safe: callers hold the
 * machine's I/O lock. */
#ifndef HOP_MACHINE_SERIAL_H
#define HOP_MACHINE_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "machine/ioport.h"
#include "vmstate/vmstate.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_FIFO_SIZE 16

struct serial_backend {
    /* Bytes the guest transmitted. */
    void (*write)(void *opaque, const uint8_t *buf, size_t len);
    void *opaque;
};

struct serial {
    uint16_t divider;
    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
    bool thr_ipending; /* THR-empty interrupt condition */
    uint8_t rx_count;  /* bytes in rx_fifo, oldest first */
    uint8_t rx_fifo[SERIAL_FIFO_SIZE];
    struct serial_backend backend;
};

extern const struct vmstate_desc vmstate_serial;
extern const struct ioport_ops serial_ioport_ops;

void serial_init(struct serial *s, const struct serial_backend *backend);
void serial_reset(struct serial *s);
uint32_t serial_ioport_read(void *opaque, uint16_t offset, int size);
void serial_ioport_write(void *opaque, uint16_t offset, int size, uint32_t val);
/* Host to guest: queue bytes in the receive FIFO; returns how many fit. */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);

#endif
