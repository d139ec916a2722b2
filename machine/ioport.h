/* Port I/O dispatch: a small table of port ranges and their device
 * handlers.  Accesses to a port nobody claims read as all ones and are
 * reported once per port, so a guest poking at missing hardware is
 * visible without flooding the log. */
#ifndef HOP_MACHINE_IOPORT_H
#define HOP_MACHINE_IOPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

/* offset is relative to the range's base; size is 1, 2 or 4. */
struct ioport_ops {
    uint32_t (*read)(void *opaque, uint16_t offset, int size);
    void (*write)(void *opaque, uint16_t offset, int size, uint32_t val);
};

#define IOPORT_MAX_RANGES 16

struct ioport_range {
    uint16_t base, len;
    const char *name;
    const struct ioport_ops *ops;
    void *opaque;
};

struct ioport_bus {
    /* Serialises device access between vCPU threads and the monitor. */
    pthread_mutex_t lock;
    struct ioport_range ranges[IOPORT_MAX_RANGES];
    int nranges;
    uint64_t reported[65536 / 64]; /* unassigned ports already reported */
    /* Where reports go (stderr when NULL); called with the lock held. */
    void (*report)(void *opaque, const char *msg);
    void *report_opaque;
};

void ioport_bus_init(struct ioport_bus *bus);
void ioport_bus_destroy(struct ioport_bus *bus);
bool ioport_register(struct ioport_bus *bus, uint16_t base, uint16_t len,
                     const char *name, const struct ioport_ops *ops,
                     void *opaque, Error **errp);
/* Guest accesses; take the bus lock. */
uint32_t ioport_read(struct ioport_bus *bus, uint16_t port, int size);
void ioport_write(struct ioport_bus *bus, uint16_t port, int size,
                  uint32_t val);
/* Name of the device at port, or NULL. */
const char *ioport_owner(const struct ioport_bus *bus, uint16_t port);

#endif
