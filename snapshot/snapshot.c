/* Helpers shared by savevm, loadvm and delvm. */
#include "snapshot/snapshot.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void snapshot_warn(const struct snapshot_target *t, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (t->warn) {
        t->warn(t->warn_ctx, msg);
    } else {
        error_report("warning: %s", msg);
    }
}

static bool has_name(BlockDev *bs, const char *name)
{
    struct blk_snapshot sn;
    if (!blk_snapshot_find(bs, name, &sn, NULL)) {
        return false;
    }
    blk_snapshot_clear(&sn);
    return true;
}

bool snapshot_list_common(const struct snapshot_target *t,
                          struct blk_snapshot **list, size_t *n, Error **errp)
{
    struct snapshot_plan plan;
    if (!snapshot_plan_make(t->drives, t->ndrives, NULL, 0, NULL, &plan,
                            errp)) {
        return false;
    }
    BlockDev *state = plan.drives[plan.state].bs;
    if (!blk_snapshot_list(state, list, n, errp)) {
        return false;
    }
    size_t keep = 0;
    for (size_t i = 0; i < *n; i++) {
        bool everywhere = true;
        for (size_t d = 0; everywhere && d < plan.n; d++) {
            everywhere =
                d == plan.state || has_name(plan.drives[d].bs, (*list)[i].name);
        }
        if (everywhere) {
            (*list)[keep++] = (*list)[i];
        } else {
            blk_snapshot_clear(&(*list)[i]);
        }
    }
    *n = keep;
    return true;
}
