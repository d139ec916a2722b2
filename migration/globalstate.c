#include "migration/globalstate.h"

#include <stdio.h>
#include <string.h>

#include "vmstate/stream.h"

static bool globalstate_pre_load(void *opaque, Error **errp)
{
    struct globalstate *g = opaque;
    g->received = false;
    return true;
}

static bool globalstate_post_load(void *opaque, int version_id, Error **errp)
{
    struct globalstate *g = opaque;
    if (g->size == 0 || g->size > sizeof(g->runstate) ||
        g->runstate[g->size - 1] != '\0') {
        error_setg(errp, "run state is not a terminated string");
        return false;
    }
    g->received = true;
    return true;
}

static const struct vmstate_desc globalstate_vmsd = {
    .name = "globalstate",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_load = globalstate_pre_load,
    .post_load = globalstate_post_load,
    .fields =
        (const struct vmstate_field[]){
            VMSTATE_UINT32(size, struct globalstate),
            VMSTATE_BUFFER(runstate, struct globalstate),
            VMSTATE_END_OF_LIST() },
};

bool globalstate_register(struct globalstate *g, struct section_registry *reg,
                          Error **errp)
{
    globalstate_set(g, "running");
    return section_register_vmsd(reg, "globalstate", 0, &globalstate_vmsd, g,
                                 errp) >= 0;
}

void globalstate_set(struct globalstate *g, const char *runstate)
{
    memset(g->runstate, 0, sizeof(g->runstate));
    snprintf((char *)g->runstate, sizeof(g->runstate), "%s", runstate);
    g->size = (uint32_t)strlen((char *)g->runstate) + 1;
}

const char *globalstate_get(const struct globalstate *g)
{
    return g->received ? (const char *)g->runstate : NULL;
}
