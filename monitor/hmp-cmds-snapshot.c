/* HMP snapshot commands: savevm, loadvm, delvm, info snapshots. */
#include "monitor/hmp-cmds.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/session.h"
#include "monitor/qmp-cmds.h"
#include "snapshot/table.h"

#define SESSION(mon) monitor_session(mon)

/* Progress shows on a terminal for machines at least this large. */
#define PROGRESS_MIN (64ull << 20)

static void show_progress(void *ctx, const char *what, uint64_t done,
                          uint64_t total)
{
    struct monitor *mon = ctx;
    if (total < PROGRESS_MIN) {
        return;
    }
    mon_printf(mon, "\r%s: %3d%% (%" PRIu64 " of %" PRIu64 " MiB)%s", what,
               (int)(total ? done * 100 / total : 100), done >> 20, total >> 20,
               done >= total ? "\n" : "");
    fflush(monitor_out(mon));
}

static void show_warning(void *ctx, const char *msg)
{
    mon_printf(ctx, "Warning: %s\n", msg);
}

static void io_for(struct monitor *mon, struct session_snapshot_io *io)
{
    *io = (struct session_snapshot_io){ .warn = show_warning, .warn_ctx = mon };
    if (isatty(fileno(monitor_out(mon)))) {
        io->progress = show_progress;
        io->progress_ctx = mon;
    }
}

HMP(hmp_savevm)
{
    struct session_snapshot_io io;
    io_for(mon, &io);
    Error *err = NULL;
    struct snapshot_select sel = { .background = mon_arg_present(args, "b") };
    if (!session_savevm(SESSION(mon), mon_arg_str(args, "tag"),
                        sel.background ? &sel : NULL, &io, &err)) {
        mon_report_err(mon, err);
    }
}

HMP(hmp_loadvm)
{
    struct session_snapshot_io io;
    io_for(mon, &io);
    Error *err = NULL;
    if (!session_loadvm(SESSION(mon), mon_arg_str(args, "tag"), NULL, &io,
                        &err)) {
        mon_report_err(mon, err);
    }
}

HMP(hmp_delvm)
{
    struct session_snapshot_io io;
    io_for(mon, &io);
    Error *err = NULL;
    if (!session_delvm(SESSION(mon), mon_arg_str(args, "tag"), NULL, &io,
                       &err)) {
        mon_report_err(mon, err);
    }
}

HMP(hmp_info_snapshots)
{
    struct blk_snapshot *l;
    size_t n;
    Error *err = NULL;
    if (!session_list_snapshots(SESSION(mon), &l, &n, &err)) {
        mon_report_err(mon, err);
        return;
    }
    if (n == 0) {
        mon_printf(mon, "There is no snapshot available.\n");
        free(l);
        return;
    }
    /* As QEMU: IDs may differ between drives, so none is shown. */
    char line[1400];
    snapshot_table_header(line, sizeof(line));
    mon_printf(mon, "List of snapshots present on all disks:\n%s\n", line);
    for (size_t i = 0; i < n; i++) {
        snapshot_table_row(&l[i], "--", line, sizeof(line));
        mon_printf(mon, "%s\n", line);
    }
    blk_snapshot_list_free(l, n);
}
