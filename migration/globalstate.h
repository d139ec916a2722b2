/* The "globalstate" section: the source's run state at the switch, so the
 * destination knows whether to resume the guest (QEMU's layout). */
#ifndef HOP_MIGRATION_GLOBALSTATE_H
#define HOP_MIGRATION_GLOBALSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct section_registry;

struct globalstate {
    uint32_t size; /* bytes of runstate used, with its NUL */
    uint8_t runstate[100];
    bool received;
};

bool globalstate_register(struct globalstate *g, struct section_registry *reg,
                          Error **errp);
void globalstate_set(struct globalstate *g, const char *runstate);
/* The received run state, or NULL if the stream had none. */
const char *globalstate_get(const struct globalstate *g);

#endif
