/* The monitor's command table: dispatch, argument parsing, help,
 * completion and the man page all come from these entries. */
#include <stddef.h>

#include "monitor/hmp-cmds.h"
#include "monitor/monitor.h"

#define ARGS(...) ((const struct mon_arg[]){ __VA_ARGS__, { NULL } })

const struct mon_cmd hmp_info_commands[] = {
    { "status", NULL, NULL, "show the current VM status (running|paused)", NULL,
      hmp_info_status },
    { "accel", NULL, NULL, "show the accelerator running guest code", NULL,
      hmp_info_accel },
    { "version", NULL, NULL, "show the version of hop", NULL,
      hmp_info_version },
    { "name", NULL, NULL, "show the current VM name", NULL, hmp_info_name },
    { "cpus", NULL, NULL, "show infos for each CPU", NULL, hmp_info_cpus },
    { "registers", NULL, ARGS({ "cpu", MON_ARG_INT, true }),
      "show the cpu registers",
      "Without an argument, every vCPU's registers; with a number, that "
      "vCPU's only.",
      hmp_info_registers },
    { "ramblock", NULL, NULL, "display system ramblock information", NULL,
      hmp_info_ramblock },
    { "memdev", NULL, NULL, "show memory backends", NULL, hmp_info_memdev },
    { "block", NULL, NULL, "show the block devices", NULL, hmp_info_block },
    { "mice", NULL, NULL, "show which guest mouse is receiving events", NULL,
      hmp_info_mice },
    { "history", NULL, NULL, "show the command line history", NULL,
      hmp_info_history },
    { "migrate", NULL, NULL, "show migration status", NULL, hmp_info_migrate },
    { "migrate_capabilities", NULL, NULL, "show current migration capabilities",
      NULL, hmp_info_migrate_capabilities },
    { "migrate_parameters", NULL, NULL, "show current migration parameters",
      NULL, hmp_info_migrate_parameters },
    { "migrate_cache_size", NULL, NULL,
      "show current migration xbzrle cache size", NULL,
      hmp_info_migrate_cache_size },
    { "dirty_rate", NULL, NULL, "show dirty rate information", NULL,
      hmp_info_dirty_rate },
    { "snapshots", NULL, NULL, "show the currently saved VM snapshots",
      "The snapshots every snapshotted drive holds, as QEMU lists them: "
      "ID (\"--\": it may differ between drives), TAG, VM SIZE, DATE, "
      "VM CLOCK, ICOUNT.",
      hmp_info_snapshots },
    { "qtree", NULL, NULL,
      "show the device tree with each device's vmstate name and version", NULL,
      hmp_info_qtree },
    { NULL }
};

/* Migration commands, in one place. */
#define MIGRATION_COMMANDS                                                     \
    { "migrate",                                                               \
      NULL,                                                                    \
      ARGS({ "d", MON_ARG_FLAG, true }, { "b", MON_ARG_FLAG, true },           \
           { "i", MON_ARG_FLAG, true }, { "r", MON_ARG_FLAG, true },           \
           { "uri", MON_ARG_URI, false }),                                     \
      "migrate to URI (using -d to not wait for completion, -b to copy the "   \
      "drives, -i to copy only what lies above a shared backing file, -r to "  \
      "resume a paused postcopy migration over a new link)",                   \
      "URI is tcp:HOST:PORT, unix:PATH, exec:COMMAND, fd:NAME (see getfd) "    \
      "or file:PATH[,offset=N].  Without -d the monitor waits and, on a "      \
      "terminal, shows progress; Ctrl-C cancels the migration.  At the "       \
      "switch the drives are flushed and let go, for a destination on the "    \
      "same images; a failed migration takes them back before the guest "      \
      "runs again.  With -b (block migration, QEMU's 'block' capability "      \
      "for this migration) every drive is copied, while the guest runs "       \
      "and writes, to the destination's own images of the same size (its "     \
      "-drive names the same drive ids): what the guest writes meanwhile "     \
      "is sent again, the rest in the downtime.  A destination image "         \
      "smaller than the source's or read-only fails the migration and the "    \
      "guest runs on here; the destination's images hold a usable copy "       \
      "only once the migration completed.  -i (block-incremental) copies "     \
      "only what each drive's own image allocated above its backing file, "    \
      "to a destination image over the same (shared) backing file; a drive "   \
      "without a backing file is refused.  -r (postcopy recovery): after "     \
      "the link died in postcopy (status postcopy-paused), the destination "   \
      "listens anew (migrate_recover URI there) and -r URI connects to it; "   \
      "what did not arrive is sent again and the migration goes on.",          \
      hmp_migrate },                                                           \
        { "migrate_incoming",                                                  \
          NULL,                                                                \
          ARGS({ "uri", MON_ARG_URI, false }),                                 \
          "continue an incoming migration from an -incoming defer",            \
          NULL,                                                                \
          hmp_migrate_incoming },                                              \
        { "migrate_cancel",                                                    \
          NULL,                                                                \
          NULL,                                                                \
          "cancel the current VM migration",                                   \
          NULL,                                                                \
          hmp_migrate_cancel },                                                \
        { "migrate_start_postcopy",                                            \
          NULL,                                                                \
          NULL,                                                                \
          "followup to a migration command to switch the migration to "        \
          "postcopy mode",                                                     \
          "The postcopy-ram capability must be set on both ends before the "   \
          "migration starts.  The guest stops here, then runs at the "         \
          "destination, which asks for the pages it still lacks.  Harmless "   \
          "once the migration completed (it is ignored then).  From the "      \
          "switch on the migration cannot be cancelled; if the link dies "     \
          "both ends pause (postcopy-paused) until migrate_recover and "       \
          "migrate -r give them a new one, and if either end dies the guest "  \
          "is lost.",                                                          \
          hmp_migrate_start_postcopy },                                        \
        { "migrate_recover",                                                   \
          NULL,                                                                \
          ARGS({ "uri", MON_ARG_URI, false }),                                 \
          "continue a paused incoming postcopy migration",                     \
          "On the destination, while postcopy is paused (the link died): "     \
          "listen on URI (tcp:, unix: or fd: of a socket) for the source's "   \
          "migrate -r URI.  The guest keeps running meanwhile; only what "     \
          "touches a page still missing waits.",                               \
          hmp_migrate_recover },                                               \
        { "migrate_pause",                                                     \
          NULL,                                                                \
          NULL,                                                                \
          "pause an ongoing migration (postcopy-only)",                        \
          "Cuts the link of a postcopy-active migration, on either end, as "   \
          "if it died: both ends go to postcopy-paused and wait for "          \
          "migrate_recover and migrate -r.",                                   \
          hmp_migrate_pause },                                                 \
        { "migrate_continue",                                                  \
          NULL,                                                                \
          ARGS({ "state", MON_ARG_STRING, false }),                            \
          "continue migration from the given paused state (pre-switchover)",   \
          NULL,                                                                \
          hmp_migrate_continue },                                              \
        { "migrate_set_capability",                                            \
          NULL,                                                                \
          ARGS({ "capability", MON_ARG_CAPABILITY, false },                    \
               { "state", MON_ARG_BOOL, false }),                              \
          "enable or disable a migration capability",                          \
          NULL,                                                                \
          hmp_migrate_set_capability },                                        \
        { "migrate_set_parameter",                                             \
          NULL,                                                                \
          ARGS({ "parameter", MON_ARG_PARAMETER, false },                      \
               { "value", MON_ARG_REST, false }),                              \
          "set a migration parameter",                                         \
          "Sizes take K, M, G or T suffixes; a bare max-bandwidth is MiB/s; "  \
          "cpr-exec-command takes words split at blanks (\"...\" keeps "       \
          "blanks in a word; \"\" alone: the same binary and arguments).",     \
          hmp_migrate_set_parameter },                                         \
        { "migrate_set_speed",                                                 \
          NULL,                                                                \
          ARGS({ "value", MON_ARG_STRING, false }),                            \
          "set maximum speed (in bytes/s) for migrations; a bare number is "   \
          "MiB/s",                                                             \
          NULL,                                                                \
          hmp_migrate_set_speed },                                             \
        { "migrate_set_downtime",                                              \
          NULL,                                                                \
          ARGS({ "value", MON_ARG_STRING, false }),                            \
          "set maximum tolerated downtime (in seconds) for migrations",        \
          NULL,                                                                \
          hmp_migrate_set_downtime },                                          \
        { "migrate_set_cache_size",                                            \
          NULL,                                                                \
          ARGS({ "value", MON_ARG_SIZE, false }),                              \
          "set cache size (in bytes) for XBZRLE migrations",                   \
          NULL,                                                                \
          hmp_migrate_set_cache_size },                                        \
        { "calc_dirty_rate",                                                   \
          NULL,                                                                \
          ARGS({ "second", MON_ARG_INT, false }),                              \
          "start a round of guest dirty rate measurement",                     \
          NULL,                                                                \
          hmp_calc_dirty_rate },                                               \
        { "getfd",                                                             \
          NULL,                                                                \
          ARGS({ "fdname", MON_ARG_STRING, false }),                           \
          "receive a file descriptor via SCM rights and assign it a name",     \
          "Only over the unix monitor socket: send the descriptor with this "  \
          "command's line.",                                                   \
          hmp_getfd },                                                         \
    {                                                                          \
        "closefd", NULL, ARGS({ "fdname", MON_ARG_STRING, false }),            \
            "close a file descriptor previously passed via SCM rights", NULL,  \
            hmp_closefd                                                        \
    }

const struct mon_cmd hmp_commands[] = {
    { "help", "?", ARGS({ "name", MON_ARG_COMMAND, true }), "show the help",
      "With a command name, show that command's usage and "
      "details; `help info` lists the info subcommands.",
      hmp_help },
    { "info", NULL, NULL, "show various information about the system state",
      NULL, NULL, hmp_info_commands },
    { "stop", NULL, NULL, "stop emulation", NULL, hmp_stop },
    { "cont", "c", NULL, "resume emulation",
      "After a completed migration the drives belong to the destination: "
      "cont takes them back first, and fails, the machine staying stopped, "
      "while another process holds them.",
      hmp_cont },
    { "system_reset", NULL, NULL, "reset the system", NULL, hmp_system_reset },
    { "quit", "q", NULL, "quit the emulator",
      "Stops the vCPUs, flushes the drives and removes the monitor "
      "sockets, then exits.",
      hmp_quit },
    { "x", NULL,
      ARGS({ "fmt", MON_ARG_FORMAT, true }, { "addr", MON_ARG_INT, false }),
      "virtual memory dump starting at 'addr'",
      "fmt is /[count][format][size]: format x (hex), d (decimal), u "
      "(unsigned), o (octal), c (char); size b (8 bits), h (16), w (32), "
      "g (64).  hop guests run without paging, so virtual and physical "
      "addresses agree.",
      hmp_x },
    { "xp", NULL,
      ARGS({ "fmt", MON_ARG_FORMAT, true }, { "addr", MON_ARG_INT, false }),
      "physical memory dump starting at 'addr'", "fmt as for x.", hmp_xp },
    { "memsave", NULL,
      ARGS({ "val", MON_ARG_INT, false }, { "size", MON_ARG_SIZE, false },
           { "filename", MON_ARG_FILE, false }),
      "save to disk virtual memory dump starting at 'val' of size 'size'", NULL,
      hmp_memsave },
    { "pmemsave", NULL,
      ARGS({ "val", MON_ARG_INT, false }, { "size", MON_ARG_SIZE, false },
           { "filename", MON_ARG_FILE, false }),
      "save to disk physical memory dump starting at 'val' of size 'size'",
      NULL, hmp_pmemsave },
    { "sendkey", NULL,
      ARGS({ "keys", MON_ARG_KEYS, false }, { "hold_time", MON_ARG_INT, true }),
      "send keys to the VM (e.g. 'sendkey ctrl-alt-f1', default hold time "
      "100 ms)",
      NULL, hmp_sendkey },
    { "mouse_move", NULL,
      ARGS({ "dx", MON_ARG_INT, false }, { "dy", MON_ARG_INT, false },
           { "dz", MON_ARG_INT, true }),
      "send mouse move events", NULL, hmp_mouse_move },
    { "mouse_button", NULL, ARGS({ "state", MON_ARG_INT, false }),
      "change mouse button state (1=L, 2=M, 4=R)", NULL, hmp_mouse_button },
    MIGRATION_COMMANDS,
    { "savevm", NULL,
      ARGS({ "b", MON_ARG_FLAG, true }, { "tag", MON_ARG_TAG, true }),
      "save a VM snapshot. If no tag is provided, a new snapshot is "
      "created (-b: while the guest runs)",
      "The machine stops, its whole state goes into the first writable "
      "qcow2 drive (-drive file=X.qcow2; if=none is enough) and the disk "
      "of every writable drive is snapshotted under the same tag; then it "
      "runs on if it was running.  A tag that exists is replaced.  Without "
      "a tag the snapshot is called vm-YYYYMMDDhhmmss.  The snapshot goes "
      "into the catalog (-catalog).  With -b (background) the guest pauses "
      "only while the disks are kept as they are (copy on write) and the "
      "devices' state is taken, and runs on while RAM is written as it was "
      "then (as migrate's background-snapshot: each page is saved before "
      "the guest's first write to it); the snapshot, dated from that "
      "moment, is listed only once it is whole, and a failure leaves none "
      "behind.  Under kvm -b needs userfaultfd "
      "(vm.unprivileged_userfaultfd=1, CAP_SYS_PTRACE or access to "
      "/dev/userfaultfd) and RAM it can write-protect (anonymous, memfd or "
      "shmem; not a file on disk); under emu the interpreter tracks the "
      "guest's writes itself.",
      hmp_savevm },
    { "loadvm", NULL, ARGS({ "tag", MON_ARG_TAG, false }),
      "restore a VM snapshot from its tag",
      "Reverts every drive's disk to the snapshot and loads RAM, vCPUs, "
      "devices and the VM clock as they were at the savevm; the machine "
      "runs on if it was running.  A tag that does not exist is an error "
      "that changes nothing.",
      hmp_loadvm },
    { "delvm", NULL, ARGS({ "tag", MON_ARG_TAG, false }),
      "delete a VM snapshot from its tag",
      "Deletes the snapshot from every drive that has it.", hmp_delvm },
    { NULL }
};
