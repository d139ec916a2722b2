/* HMP migration commands. */
#include "monitor/hmp-cmds.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "monitor/loop.h"
#include "monitor/qmp-cmds.h"
#include "util/parse.h"

#define SESSION(mon) monitor_session(mon)

static json_t *call(struct monitor *mon, qmp_fn fn, json_t *args)
{
    Error *err = NULL;
    json_t *r = fn(SESSION(mon), args, &err);
    json_decref(args);
    if (err) {
        mon_report_err(mon, err);
        json_decref(r);
        return NULL;
    }
    return r;
}

/* One line, rewritten in place, while `migrate` waits on a terminal. */
static void show_progress(struct monitor *mon, const struct mig_info *mi)
{
    const struct ram_stats *st = &mi->ram;
    double done = st->total ? 100.0 *
            (double)(st->total > st->remaining ? st->total - st->remaining
                                               : 0) /
            (double)st->total
                            : 0;
    mon_printf(
        mon,
        "\r%-9s %5.1f%% sent, %8.1f MB/s, dirty %6" PRIu64
        " pages/s, expected downtime %4" PRIu64 " ms, pass %" PRIu64 "   ",
        mig_status_name(mi->status), done, mi->mbps / 8, st->dirty_pages_rate,
        mi->expected_downtime_ms, st->dirty_sync_count);
    fflush(monitor_out(mon));
}

HMP(hmp_migrate)
{
    struct vm_session *s = SESSION(mon);
    json_t *r = call(
        mon, qmp_migrate,
        json_pack("{s:s,s:b,s:b,s:b}", "uri", mon_arg_str(args, "uri"), "blk",
                  mon_arg_present(args, "b"), "inc", mon_arg_present(args, "i"),
                  "resume", mon_arg_present(args, "r")));
    if (!r) {
        return;
    }
    json_decref(r);
    if (mon_arg_present(args, "d")) {
        return;
    }
    /* Wait here; Ctrl-C cancels the migration, not hop. */
    bool tty = isatty(fileno(monitor_out(mon)));
    mon_loop_take_interrupt();
    struct mig_info mi;
    while (!session_migrate_wait(s, 200)) {
        if (mon_loop_take_interrupt()) {
            session_migrate_cancel(s);
        }
        session_migrate_query(s, &mi);
        if (tty) {
            show_progress(mon, &mi);
        }
        /* Paused: the monitor is needed for migrate -r. */
        if (mi.status == MIG_STATUS_POSTCOPY_PAUSED) {
            break;
        }
    }
    session_migrate_query(s, &mi);
    if (tty) {
        show_progress(mon, &mi);
        mon_printf(mon, "\n");
    }
    if (mi.status == MIG_STATUS_FAILED) {
        Error *err = NULL;
        error_setg(&err, "migration failed: %s", mi.error);
        mon_report_err(mon, err);
    } else if (mi.status == MIG_STATUS_CANCELLED) {
        mon_printf(mon, "migration cancelled\n");
    } else if (mi.status == MIG_STATUS_POSTCOPY_PAUSED) {
        mon_printf(mon, "postcopy paused: %s\n", mi.error);
    }
}

HMP(hmp_migrate_recover)
{
    json_decref(call(mon, qmp_migrate_recover,
                     json_pack("{s:s}", "uri", mon_arg_str(args, "uri"))));
}

HMP(hmp_migrate_pause)
{
    (void)args;
    json_decref(call(mon, qmp_migrate_pause, NULL));
}

HMP(hmp_migrate_incoming)
{
    json_decref(call(mon, qmp_migrate_incoming,
                     json_pack("{s:s}", "uri", mon_arg_str(args, "uri"))));
}

HMP(hmp_migrate_cancel)
{
    json_decref(call(mon, qmp_migrate_cancel, NULL));
}

HMP(hmp_migrate_continue)
{
    json_decref(call(mon, qmp_migrate_continue,
                     json_pack("{s:s}", "state", mon_arg_str(args, "state"))));
}

HMP(hmp_migrate_start_postcopy)
{
    (void)args;
    json_decref(call(mon, qmp_migrate_start_postcopy, NULL));
}

HMP(hmp_migrate_set_capability)
{
    Error *err = NULL;
    if (!session_set_mig_capability(SESSION(mon),
                                    mon_arg_str(args, "capability"),
                                    mon_arg_int(args, "state", 0), &err)) {
        mon_report_err(mon, err);
    }
}

HMP(hmp_migrate_set_parameter)
{
    Error *err = NULL;
    if (!session_set_mig_parameter(SESSION(mon), mon_arg_str(args, "parameter"),
                                   mon_arg_str(args, "value"), &err)) {
        mon_report_err(mon, err);
    }
}

HMP(hmp_migrate_set_speed)
{
    /* A bare number is MiB/s, as QEMU reads it. */
    Error *err = NULL;
    if (!session_set_mig_parameter(SESSION(mon), "max-bandwidth",
                                   mon_arg_str(args, "value"), &err)) {
        mon_report_err(mon, err);
    }
}

HMP(hmp_migrate_set_downtime)
{
    const char *v = mon_arg_str(args, "value");
    char *end;
    double secs = strtod(v, &end);
    Error *err = NULL;
    if (*end || !isfinite(secs) || secs <= 0) {
        error_setg(&err,
                   "migrate_set_downtime: '%s' is not a number of "
                   "seconds",
                   v);
        mon_report_err(mon, err);
        return;
    }
    if (!session_set_mig_parameter_value(SESSION(mon), MIG_PARAM_DOWNTIME_LIMIT,
                                         (uint64_t)llround(secs * 1000),
                                         &err)) {
        mon_report_err(mon, err);
    }
}

HMP(hmp_migrate_set_cache_size)
{
    Error *err = NULL;
    uint64_t size = (uint64_t)mon_arg_int(args, "value", 0);
    if (!session_set_mig_parameter_value(
            SESSION(mon), MIG_PARAM_XBZRLE_CACHE_SIZE, size, &err)) {
        mon_report_err(mon, err);
    }
}

HMP(hmp_info_migrate_cache_size)
{
    struct mig_config c;
    session_get_mig_config(SESSION(mon), &c);
    mon_printf(mon, "xbzrle cache size: %" PRIu64 " kbytes\n",
               c.params[MIG_PARAM_XBZRLE_CACHE_SIZE] >> 10);
}

HMP(hmp_info_migrate_capabilities)
{
    struct mig_config c;
    session_get_mig_config(SESSION(mon), &c);
    for (int i = 0; i < MIG_CAP__MAX; i++) {
        mon_printf(mon, "%s: %s\n", mig_caps[i].name, c.caps[i] ? "on" : "off");
    }
}

HMP(hmp_info_migrate_parameters)
{
    struct mig_config cfg;
    session_get_mig_config(SESSION(mon), &cfg);
    const struct mig_config *c = &cfg;
    for (int i = 0; i < MIG_PARAM__MAX; i++) {
        const struct mig_param_info *p = &mig_params[i];
        if (i == MIG_PARAM_MAX_BANDWIDTH) {
            mon_printf(mon, "%s: %" PRIu64 " bytes/second\n", p->name,
                       c->params[i]);
        } else if (p->kind == MIG_KIND_SIZE) {
            mon_printf(mon, "%s: %" PRIu64 " bytes\n", p->name, c->params[i]);
        } else if (p->kind == MIG_KIND_WORDS) {
            const char *argv[MIG_EXEC_ARGS_MAX + 1];
            int n = mig_exec_command_argv(c, argv, MIG_EXEC_ARGS_MAX);
            mon_printf(mon, "%s:", p->name);
            for (int w = 0; w < n; w++) {
                mon_printf(mon, " %s", argv[w]);
            }
            mon_printf(mon, "%s\n",
                       n ? "" : " (the same binary and arguments)");
        } else if (p->kind == MIG_KIND_ENUM) {
            mon_printf(mon, "%s: %s\n", p->name,
                       mig_param_enum_name(i, c->params[i]));
        } else if (p->kind == MIG_KIND_BOOL) {
            mon_printf(mon, "%s: %s\n", p->name, c->params[i] ? "on" : "off");
        } else if (i == MIG_PARAM_DOWNTIME_LIMIT) {
            mon_printf(mon, "%s: %" PRIu64 " ms\n", p->name, c->params[i]);
        } else {
            mon_printf(mon, "%s: %" PRIu64 "\n", p->name, c->params[i]);
        }
    }
}

/* The destination: its status and, with postcopy-blocktime, the vCPUs'
 * waits for missing pages. */
static void info_migrate_incoming(struct monitor *mon,
                                  const struct mig_info *mi)
{
    mon_printf(mon, "Migration status: %s (incoming)\n",
               mig_status_name(mi->status));
    if (!mi->has_blocktime) {
        return;
    }
    const struct postcopy_bt_stats *bt = &mi->bt;
    mon_printf(mon, "postcopy blocktime: %" PRIu64 " ms\n",
               bt->total_ns / 1000000);
    mon_printf(mon, "postcopy vcpu blocktime:");
    for (int i = 0; i < bt->nvcpus; i++) {
        mon_printf(mon, " %" PRIu64, bt->vcpu_ns[i] / 1000000);
    }
    mon_printf(mon, " ms\n");
    mon_printf(mon, "postcopy latency: %" PRIu64 " us (%" PRIu64 " faults)\n",
               bt->faults ? bt->wait_ns / bt->faults / 1000 : 0, bt->faults);
}

HMP(hmp_info_migrate)
{
    struct vm_session *s = SESSION(mon);
    struct mig_info mi;
    struct mig_config c;
    session_migrate_query(s, &mi);
    session_get_mig_config(s, &c);
    mon_printf(mon, "capabilities: ");
    for (int i = 0; i < MIG_CAP__MAX; i++) {
        mon_printf(mon, "%s: %s ", mig_caps[i].name, c.caps[i] ? "on" : "off");
    }
    mon_printf(mon, "\n");
    if (mi.status == MIG_STATUS_NONE) {
        return;
    }
    if (session_migrate_status(s) == MIG_STATUS_NONE) {
        info_migrate_incoming(mon, &mi);
        return;
    }
    const struct ram_stats *st = &mi.ram;
    mon_printf(mon, "Migration status: %s", mig_status_name(mi.status));
    if ((mi.status == MIG_STATUS_FAILED ||
         mi.status == MIG_STATUS_POSTCOPY_PAUSED) &&
        mi.error[0]) {
        mon_printf(mon, " (%s)", mi.error);
    }
    mon_printf(mon, "\ntotal time: %" PRIu64 " ms\n", mi.total_time_ms);
    if (mi.status == MIG_STATUS_COMPLETED) {
        mon_printf(mon, "downtime: %" PRIu64 " ms\n", mi.downtime_ms);
    } else if (mig_status_is_active(mi.status)) {
        mon_printf(mon, "expected downtime: %" PRIu64 " ms\n",
                   mi.expected_downtime_ms);
    }
    mon_printf(mon, "setup: %" PRIu64 " ms\n", mi.setup_time_ms);
    mon_printf(mon, "transferred ram: %" PRIu64 " kbytes\n",
               st->transferred >> 10);
    mon_printf(mon, "throughput: %0.2f mbps\n", mi.mbps);
    mon_printf(mon, "remaining ram: %" PRIu64 " kbytes\n", st->remaining >> 10);
    mon_printf(mon, "total ram: %" PRIu64 " kbytes\n", st->total >> 10);
    mon_printf(mon, "duplicate: %" PRIu64 " pages\n", st->zero_pages);
    mon_printf(mon, "skipped: 0 pages\n");
    mon_printf(mon, "normal: %" PRIu64 " pages\n", st->normal_pages);
    mon_printf(mon, "normal bytes: %" PRIu64 " kbytes\n", st->normal_pages * 4);
    mon_printf(mon, "dirty sync count: %" PRIu64 "\n", st->dirty_sync_count);
    mon_printf(mon, "page size: 4 kbytes\n");
    mon_printf(mon, "multifd bytes: %" PRIu64 " kbytes\n",
               mi.multifd_bytes >> 10);
    mon_printf(mon, "pages-per-second: %" PRIu64 "\n", mi.pages_per_second);
    if (st->postcopy_requests) {
        mon_printf(mon, "postcopy request count: %" PRIu64 "\n",
                   st->postcopy_requests);
    }
    if (st->postcopy_bytes) {
        mon_printf(mon, "postcopy ram: %" PRIu64 " kbytes\n",
                   st->postcopy_bytes >> 10);
    }
    if (st->preempt_bytes) {
        mon_printf(mon, "postcopy preempt ram: %" PRIu64 " kbytes\n",
                   st->preempt_bytes >> 10);
    }
    if (st->wp_faults) {
        /* background-snapshot: the guest wrote these during the save. */
        mon_printf(mon, "write faults: %" PRIu64 " pages\n", st->wp_faults);
    }
    if (st->dirty_pages_rate) {
        mon_printf(mon, "dirty pages rate: %" PRIu64 " pages\n",
                   st->dirty_pages_rate);
    }
    if (mi.has_disk) {
        mon_printf(mon, "transferred disk: %" PRIu64 " kbytes\n",
                   mi.disk.transferred >> 10);
        mon_printf(mon, "remaining disk: %" PRIu64 " kbytes\n",
                   mi.disk.remaining >> 10);
        mon_printf(mon, "total disk: %" PRIu64 " kbytes\n",
                   mi.disk.total >> 10);
    }
    if (mi.xbzrle) {
        mon_printf(mon, "cache size: %" PRIu64 " bytes\n",
                   mi.xbzrle_cache_size);
        mon_printf(mon, "xbzrle transferred: %" PRIu64 " kbytes\n",
                   st->xbzrle_bytes >> 10);
        mon_printf(mon, "xbzrle pages: %" PRIu64 " pages\n", st->xbzrle_pages);
        mon_printf(mon, "xbzrle cache miss: %" PRIu64 " pages\n",
                   st->xbzrle_cache_miss);
        mon_printf(mon, "xbzrle cache miss rate: %0.2f\n",
                   mi.xbzrle_cache_miss_rate);
        mon_printf(mon, "xbzrle encoding rate: %0.2f\n",
                   mi.xbzrle_encoding_rate);
        mon_printf(mon, "xbzrle overflow: %" PRIu64 "\n", st->xbzrle_overflow);
    }
    if (mi.throttle_pct) {
        mon_printf(mon, "cpu throttle percentage: %d\n", mi.throttle_pct);
    }
}

HMP(hmp_calc_dirty_rate)
{
    json_decref(call(mon, qmp_calc_dirty_rate,
                     json_pack("{s:I}", "calc-time",
                               (json_int_t)mon_arg_int(args, "second", 1))));
    mon_printf(mon,
               "Starting dirty rate measurement; 'info dirty_rate' shows "
               "the result\n");
}

HMP(hmp_info_dirty_rate)
{
    struct dirty_rate_info di;
    session_query_dirty_rate(SESSION(mon), &di);
    mon_printf(mon, "Status: %s\n", dirty_rate_status_name(di.status));
    mon_printf(mon, "Start Time: %" PRId64 " (s)\n", di.start_time);
    mon_printf(mon, "Sample Pages: %" PRIu64 " (per GB)\n", (uint64_t)4096);
    mon_printf(mon, "Period: %" PRId64 " (sec)\n", di.calc_time);
    mon_printf(mon, "Mode: page-sampling\n");
    if (di.status == DIRTY_RATE_MEASURED) {
        mon_printf(mon, "Dirty rate: %" PRIu64 " (MB/s)\n", di.rate_mbps);
    } else {
        mon_printf(mon, "Dirty rate: (not ready)\n");
    }
}

HMP(hmp_closefd)
{
    json_decref(
        call(mon, qmp_closefd,
             json_pack("{s:s}", "fdname", mon_arg_str(args, "fdname"))));
}

HMP(hmp_getfd)
{
    json_decref(
        call(mon, qmp_getfd,
             json_pack("{s:s}", "fdname", mon_arg_str(args, "fdname"))));
}
