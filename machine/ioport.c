/* Port I/O dispatch and the unassigned-port handler. */
#include "machine/ioport.h"

#include <stdio.h>
#include <string.h>

void ioport_bus_init(struct ioport_bus *bus)
{
    memset(bus, 0, sizeof(*bus));
    pthread_mutex_init(&bus->lock, NULL);
}

void ioport_bus_destroy(struct ioport_bus *bus)
{
    pthread_mutex_destroy(&bus->lock);
}

bool ioport_register(struct ioport_bus *bus, uint16_t base, uint16_t len,
                     const char *name, const struct ioport_ops *ops,
                     void *opaque, Error **errp)
{
    if (bus->nranges == IOPORT_MAX_RANGES) {
        error_setg(errp, "I/O ports of '%s': too many port ranges", name);
        return false;
    }
    for (int i = 0; i < bus->nranges; i++) {
        const struct ioport_range *r = &bus->ranges[i];
        if (base < r->base + r->len && r->base < base + len) {
            error_setg(errp, "I/O ports 0x%x-0x%x of '%s' overlap '%s'", base,
                       base + len - 1, name, r->name);
            return false;
        }
    }
    bus->ranges[bus->nranges++] = (struct ioport_range){
        .base = base,
        .len = len,
        .name = name,
        .ops = ops,
        .opaque = opaque,
    };
    return true;
}

static const struct ioport_range *find(const struct ioport_bus *bus,
                                       uint16_t port)
{
    for (int i = 0; i < bus->nranges; i++) {
        const struct ioport_range *r = &bus->ranges[i];
        if (port >= r->base && port - r->base < r->len) {
            return r;
        }
    }
    return NULL;
}

const char *ioport_owner(const struct ioport_bus *bus, uint16_t port)
{
    const struct ioport_range *r = find(bus, port);
    return r ? r->name : NULL;
}

static void report_unassigned(struct ioport_bus *bus, uint16_t port, int size,
                              bool write, uint32_t val)
{
    uint64_t bit = 1ull << (port % 64);
    if (bus->reported[port / 64] & bit) {
        return;
    }
    bus->reported[port / 64] |= bit;
    char msg[128];
    if (write) {
        snprintf(msg, sizeof(msg),
                 "guest wrote 0x%x to unassigned I/O port "
                 "0x%04x (%d byte%s); ignored",
                 val, port, size, size > 1 ? "s" : "");
    } else {
        snprintf(msg, sizeof(msg),
                 "guest read unassigned I/O port 0x%04x "
                 "(%d byte%s); returned all ones",
                 port, size, size > 1 ? "s" : "");
    }
    if (bus->report) {
        bus->report(bus->report_opaque, msg);
    } else {
        fprintf(stderr, "hop: %s\n", msg);
    }
}

static uint32_t ones(int size)
{
    return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

uint32_t ioport_read(struct ioport_bus *bus, uint16_t port, int size)
{
    pthread_mutex_lock(&bus->lock);
    const struct ioport_range *r = find(bus, port);
    uint32_t val;
    if (r && r->ops->read) {
        val = r->ops->read(r->opaque, port - r->base, size) & ones(size);
    } else {
        report_unassigned(bus, port, size, false, 0);
        val = ones(size);
    }
    pthread_mutex_unlock(&bus->lock);
    return val;
}

void ioport_write(struct ioport_bus *bus, uint16_t port, int size, uint32_t val)
{
    pthread_mutex_lock(&bus->lock);
    const struct ioport_range *r = find(bus, port);
    if (r && r->ops->write) {
        r->ops->write(r->opaque, port - r->base, size, val & ones(size));
    } else {
        report_unassigned(bus, port, size, true, val & ones(size));
    }
    pthread_mutex_unlock(&bus->lock);
}
