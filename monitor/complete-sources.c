/* Completion words that come from the session's modules. */
#include "monitor/complete.h"

#include <stdio.h>
#include <string.h>

#include "core/session.h"
#include "machine/ps2.h"
#include "migration/params.h"
#include "monitor/qmp-cmds.h"

static void offer(const char *word, const char *partial, complete_fn fn,
                  void *ctx)
{
    if (strncmp(word, partial, strlen(partial)) == 0) {
        fn(word, ctx);
    }
}

void hmp_complete_kind(struct vm_session *s, enum mon_arg_kind kind,
                       const char *partial, complete_fn fn, void *ctx)
{
    switch (kind) {
    case MON_ARG_KEYS: {
        /* Complete the last key of a combination: "ctrl-al" -> "ctrl-alt". */
        const char *dash = strrchr(partial, '-');
        size_t keep = dash ? (size_t)(dash - partial + 1) : 0;
        for (int i = 0; ps2_key_name(i); i++) {
            char word[64];
            snprintf(word, sizeof(word), "%.*s%s", (int)keep, partial,
                     ps2_key_name(i));
            offer(word, partial, fn, ctx);
        }
        break;
    }
    case MON_ARG_CAPABILITY:
        for (int i = 0; i < MIG_CAP__MAX; i++) {
            offer(mig_caps[i].name, partial, fn, ctx);
        }
        break;
    case MON_ARG_PARAMETER:
        for (int i = 0; i < MIG_PARAM__MAX; i++) {
            offer(mig_params[i].name, partial, fn, ctx);
        }
        break;
    case MON_ARG_TAG: {
        struct blk_snapshot *l;
        size_t n;
        if (!session_list_snapshots(s, &l, &n, NULL)) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            offer(l[i].name, partial, fn, ctx);
        }
        blk_snapshot_list_free(l, n);
        break;
    }
    default:
        break;
    }
}
