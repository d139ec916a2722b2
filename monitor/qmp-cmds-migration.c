/* Migration operations of the monitor, in QMP's shape. */
#include "monitor/qmp-cmds.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "migration/dirty-rate.h"

QMP_FN(qmp_migrate)
{
    const char *uri = json_string_value(json_object_get(args, "uri"));
    bool blk = json_is_true(json_object_get(args, "blk"));
    bool inc = json_is_true(json_object_get(args, "inc"));
    if (json_is_true(json_object_get(args, "resume"))) {
        if (!session_migrate_resume(s, uri, errp)) {
            return NULL;
        }
    } else if (!session_migrate(s, uri, blk, inc, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_migrate_recover)
{
    const char *uri = json_string_value(json_object_get(args, "uri"));
    if (!session_migrate_recover(s, uri, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_migrate_pause)
{
    (void)args;
    if (!session_migrate_pause(s, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_migrate_incoming)
{
    const char *uri = json_string_value(json_object_get(args, "uri"));
    if (!session_migrate_incoming(s, uri, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_migrate_cancel)
{
    if (session_migrate_cancel_refused(s, errp)) {
        return NULL;
    }
    session_migrate_cancel(s);
    return json_object();
}

QMP_FN(qmp_migrate_start_postcopy)
{
    (void)args;
    if (!session_migrate_start_postcopy(s, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_migrate_continue)
{
    const char *state = json_string_value(json_object_get(args, "state"));
    if (strcmp(state, "pre-switchover") != 0) {
        error_setg(errp,
                   "migrate_continue: expected state 'pre-switchover', "
                   "got '%s'",
                   state);
        return NULL;
    }
    if (!session_migrate_continue(s, errp)) {
        return NULL;
    }
    return json_object();
}

/* Nanoseconds to whole milliseconds, as QEMU's uint32 figures. */
static json_t *bt_ms(uint64_t ns)
{
    uint64_t ms = ns / 1000000;
    return json_integer((json_int_t)(ms > UINT32_MAX ? UINT32_MAX : ms));
}

/* The destination's MigrationInfo, as QEMU fills it: the status and,
 * with postcopy-blocktime, the vCPUs' waits (ms) and the mean wait of a
 * fault (postcopy-latency, ns, QEMU 10.1's name and unit). */
static json_t *query_migrate_incoming(const struct mig_info *mi)
{
    json_t *r = json_object();
    json_object_set_new(r, "status", json_string(mig_status_name(mi->status)));
    if (!mi->has_blocktime) {
        return r;
    }
    const struct postcopy_bt_stats *bt = &mi->bt;
    json_t *vb = json_array(), *vl = json_array();
    for (int i = 0; i < bt->nvcpus; i++) {
        json_array_append_new(vb, bt_ms(bt->vcpu_ns[i]));
        json_array_append_new(
            vl,
            json_integer((json_int_t)(bt->vcpu_faults[i]
                                          ? bt->vcpu_ns[i] / bt->vcpu_faults[i]
                                          : 0)));
    }
    json_object_set_new(r, "postcopy-blocktime", bt_ms(bt->total_ns));
    json_object_set_new(r, "postcopy-vcpu-blocktime", vb);
    json_object_set_new(
        r, "postcopy-latency",
        json_integer((json_int_t)(bt->faults ? bt->wait_ns / bt->faults : 0)));
    json_object_set_new(r, "postcopy-vcpu-latency", vl);
    return r;
}

QMP_FN(qmp_query_migrate)
{
    struct mig_info mi;
    session_migrate_query(s, &mi);
    if (mi.status != MIG_STATUS_NONE &&
        session_migrate_status(s) == MIG_STATUS_NONE) {
        return query_migrate_incoming(&mi);
    }
    json_t *r = json_object();
    if (mi.status == MIG_STATUS_NONE) {
        return r;
    }
    json_object_set_new(r, "status", json_string(mig_status_name(mi.status)));
    json_object_set_new(r, "total-time",
                        json_integer((json_int_t)mi.total_time_ms));
    if (mi.status == MIG_STATUS_COMPLETED) {
        json_object_set_new(r, "downtime",
                            json_integer((json_int_t)mi.downtime_ms));
    } else if (mig_status_is_active(mi.status)) {
        json_object_set_new(r, "expected-downtime",
                            json_integer((json_int_t)mi.expected_downtime_ms));
    }
    json_object_set_new(r, "setup-time",
                        json_integer((json_int_t)mi.setup_time_ms));
    const struct ram_stats *st = &mi.ram;
    json_t *ram = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I}", "transferred",
        (json_int_t)st->transferred, "remaining", (json_int_t)st->remaining,
        "total", (json_int_t)st->total, "duplicate", (json_int_t)st->zero_pages,
        "skipped", (json_int_t)0, "normal", (json_int_t)st->normal_pages,
        "normal-bytes", (json_int_t)(st->normal_pages * 4096),
        "dirty-pages-rate", (json_int_t)st->dirty_pages_rate, "mbps", mi.mbps,
        "dirty-sync-count", (json_int_t)st->dirty_sync_count, "page-size",
        (json_int_t)4096, "multifd-bytes", (json_int_t)mi.multifd_bytes,
        "pages-per-second", (json_int_t)mi.pages_per_second);
    json_object_set_new(ram, "postcopy-requests",
                        json_integer((json_int_t)st->postcopy_requests));
    json_object_set_new(ram, "postcopy-bytes",
                        json_integer((json_int_t)st->postcopy_bytes));
    if (st->wp_faults) {
        /* background-snapshot: pages the guest wrote during the save,
         * copied first (hop's own figure: QEMU has none). */
        json_object_set_new(ram, "x-write-faults",
                            json_integer((json_int_t)st->wp_faults));
    }
    json_object_set_new(r, "ram", ram);
    if (mi.has_disk) {
        /* MigrationStats as QEMU fills it for the disk: three figures,
         * the others 0 (the same fields as ram's). */
        json_object_set_new(
            r, "disk",
            json_pack(
                "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,"
                "s:I}",
                "transferred", (json_int_t)mi.disk.transferred, "remaining",
                (json_int_t)mi.disk.remaining, "total",
                (json_int_t)mi.disk.total, "duplicate", (json_int_t)0,
                "skipped", (json_int_t)0, "normal", (json_int_t)0,
                "normal-bytes", (json_int_t)0, "dirty-pages-rate",
                (json_int_t)0, "mbps", 0.0, "dirty-sync-count", (json_int_t)0,
                "page-size", (json_int_t)0, "multifd-bytes", (json_int_t)0,
                "pages-per-second", (json_int_t)0, "postcopy-requests",
                (json_int_t)0, "postcopy-bytes", (json_int_t)0));
    }
    if (mi.xbzrle) {
        json_object_set_new(
            r, "xbzrle-cache",
            json_pack("{s:I,s:I,s:I,s:I,s:f,s:f,s:I}", "cache-size",
                      (json_int_t)mi.xbzrle_cache_size, "bytes",
                      (json_int_t)st->xbzrle_bytes, "pages",
                      (json_int_t)st->xbzrle_pages, "cache-miss",
                      (json_int_t)st->xbzrle_cache_miss, "cache-miss-rate",
                      mi.xbzrle_cache_miss_rate, "encoding-rate",
                      mi.xbzrle_encoding_rate, "overflow",
                      (json_int_t)st->xbzrle_overflow));
    }
    if (mi.throttle_pct) {
        json_object_set_new(r, "cpu-throttle-percentage",
                            json_integer(mi.throttle_pct));
    }
    if (mi.error[0]) {
        json_object_set_new(r, "error-desc", json_string(mi.error));
    }
    return r;
}

QMP_FN(qmp_migrate_set_capabilities)
{
    json_t *caps = json_object_get(args, "capabilities");
    size_t i;
    json_t *c;
    /* All or nothing: check every entry before changing any. */
    struct mig_config next;
    session_get_mig_config(s, &next);
    json_array_foreach(caps, i, c)
    {
        json_t *name = json_object_get(c, "capability");
        json_t *state = json_object_get(c, "state");
        if (!json_is_string(name) || !json_is_boolean(state)) {
            error_setg(errp,
                       "capabilities[%zu] needs 'capability' (string) "
                       "and 'state' (boolean)",
                       i);
            return NULL;
        }
        if (!mig_set_capability(&next, json_string_value(name),
                                json_is_true(state), errp)) {
            return NULL;
        }
    }
    if (mig_status_is_active(session_migrate_status(s))) {
        error_setg(errp,
                   "cannot change capabilities while a migration is in "
                   "progress");
        return NULL;
    }
    if (!session_set_mig_config(s, &next, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_query_migrate_capabilities)
{
    struct mig_config c;
    session_get_mig_config(s, &c);
    json_t *list = json_array();
    for (int i = 0; i < MIG_CAP__MAX; i++) {
        json_array_append_new(list,
                              json_pack("{s:s,s:b}", "capability",
                                        mig_caps[i].name, "state", c.caps[i]));
    }
    return list;
}

QMP_FN(qmp_migrate_set_parameters)
{
    struct mig_config next;
    session_get_mig_config(s, &next);
    const char *key;
    json_t *v;
    json_object_foreach(args, key, v)
    {
        int p = mig_param_find(key);
        if (p < 0) {
            error_setg(errp, "Parameter '%s' is unexpected", key);
            return NULL;
        }
        if (mig_params[p].kind == MIG_KIND_WORDS) {
            const char *argv[MIG_EXEC_ARGS_MAX + 1];
            size_t n = json_array_size(v), i;
            for (i = 0; i < n && i < MIG_EXEC_ARGS_MAX; i++) {
                argv[i] = json_string_value(json_array_get(v, i));
                if (!argv[i]) {
                    error_setg(errp,
                               "Invalid parameter type for '%s', expected: "
                               "array of strings",
                               key);
                    return NULL;
                }
            }
            if (!mig_set_exec_command(&next, argv, (int)n, errp)) {
                return NULL;
            }
            continue;
        }
        if (mig_params[p].kind == MIG_KIND_BOOL) {
            if (!json_is_boolean(v)) {
                error_setg(errp,
                           "Invalid parameter type for '%s', expected: "
                           "boolean",
                           key);
                return NULL;
            }
            if (!mig_set_parameter(&next, p, json_is_true(v), errp)) {
                return NULL;
            }
            continue;
        }
        if (mig_params[p].kind == MIG_KIND_ENUM) {
            const char *name = json_string_value(v);
            int e = name ? mig_param_enum_find(p, name) : -1;
            if (e < 0) {
                error_setg(errp, "Parameter '%s' does not accept value '%s'",
                           key, name ? name : "(not a string)");
                return NULL;
            }
            if (!mig_set_parameter(&next, p, (uint64_t)e, errp)) {
                return NULL;
            }
            continue;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            error_setg(errp,
                       "Invalid parameter type for '%s', expected: "
                       "integer",
                       key);
            return NULL;
        }
        if (!mig_set_parameter(&next, p, (uint64_t)json_integer_value(v),
                               errp)) {
            return NULL;
        }
    }
    if (!session_set_mig_config(s, &next, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_query_migrate_parameters)
{
    struct mig_config c;
    session_get_mig_config(s, &c);
    json_t *r = json_object();
    for (int i = 0; i < MIG_PARAM__MAX; i++) {
        json_t *v;
        if (mig_params[i].kind == MIG_KIND_WORDS) {
            const char *argv[MIG_EXEC_ARGS_MAX + 1];
            int n = mig_exec_command_argv(&c, argv, MIG_EXEC_ARGS_MAX);
            v = json_array();
            for (int w = 0; w < n; w++) {
                json_array_append_new(v, json_string(argv[w]));
            }
        } else if (mig_params[i].kind == MIG_KIND_ENUM) {
            v = json_string(mig_param_enum_name(i, c.params[i]));
        } else if (mig_params[i].kind == MIG_KIND_BOOL) {
            v = json_boolean(c.params[i] != 0);
        } else {
            v = json_integer((json_int_t)c.params[i]);
        }
        json_object_set_new(r, mig_params[i].name, v);
    }
    return r;
}

QMP_FN(qmp_calc_dirty_rate)
{
    json_int_t secs = json_integer_value(json_object_get(args, "calc-time"));
    if (!session_calc_dirty_rate(s, (int)secs, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_query_dirty_rate)
{
    struct dirty_rate_info di;
    session_query_dirty_rate(s, &di);
    json_t *r =
        json_pack("{s:s,s:I,s:I}", "status", dirty_rate_status_name(di.status),
                  "start-time", (json_int_t)di.start_time, "calc-time",
                  (json_int_t)di.calc_time);
    if (di.status == DIRTY_RATE_MEASURED) {
        json_object_set_new(r, "dirty-rate",
                            json_integer((json_int_t)di.rate_mbps));
    }
    return r;
}

QMP_FN(qmp_closefd)
{
    const char *name = json_string_value(json_object_get(args, "fdname"));
    if (!session_closefd(s, name, errp)) {
        return NULL;
    }
    return json_object();
}

QMP_FN(qmp_getfd)
{
    const char *name = json_string_value(json_object_get(args, "fdname"));
    return session_getfd(s, name, errp) ? json_object() : NULL;
}
