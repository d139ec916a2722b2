/* The subcommand table and the dispatcher around it. */
#include "cli/cli.h"
#include "cli/vmstate-check.h"

#include <stdarg.h>
#include <string.h>

static const struct cli_option help_opts[] = {
    { "--help", CLI_ARG_NONE }, { NULL }
};
static const struct cli_option run_opts[] = {
    { "-m", CLI_ARG_TEXT }, { "-smp", CLI_ARG_TEXT },
    { "-accel", CLI_ARG_ACCEL }, { "-guest", CLI_ARG_GUEST },
    { "-kernel", CLI_ARG_FILE }, { "-serial", CLI_ARG_SERIAL },
    { "-S", CLI_ARG_NONE }, { "-name", CLI_ARG_TEXT },
    { "-uuid", CLI_ARG_TEXT }, { "-drive", CLI_ARG_DRIVE },
    { "-monitor", CLI_ARG_MONITOR }, { "-qmp", CLI_ARG_QMP },
    { "-incoming", CLI_ARG_INCOMING }, { "-dump-vmstate", CLI_ARG_FILE },
    { "-loadvm", CLI_ARG_TEXT }, { "-catalog", CLI_ARG_FILE },
    { "--help", CLI_ARG_NONE }, { NULL }
};
static const struct cli_option inspect_opts[] = {
    { "--json", CLI_ARG_NONE }, { "--section", CLI_ARG_TEXT },
    { "--fields", CLI_ARG_NONE }, { "--no-ram", CLI_ARG_NONE },
    { "--extract-ram", CLI_ARG_DIR }, { "--overwrite", CLI_ARG_NONE },
    { "--verify", CLI_ARG_NONE },
    { "--against", CLI_ARG_FILE }, { "--snapshot", CLI_ARG_TEXT },
    { "-U", CLI_ARG_NONE }, { "--force-share", CLI_ARG_NONE },
    { "--help", CLI_ARG_NONE }, { NULL }
};
#define SUBOPTS(...) ((const struct cli_option[]){ __VA_ARGS__, { NULL } })
static const struct cli_command snapshot_subcommands[] = {
    { .name = "list", .operands = CLI_ARG_FILE,
      .options = SUBOPTS({ "--json", CLI_ARG_NONE },
                         { "-U", CLI_ARG_NONE },
                         { "--force-share", CLI_ARG_NONE },
                         { "--catalog", CLI_ARG_FILE }) },
    { .name = "show", .operands = CLI_ARG_FILE,
      .options = SUBOPTS({ "--json", CLI_ARG_NONE },
                         { "-U", CLI_ARG_NONE },
                         { "--force-share", CLI_ARG_NONE },
                         { "--catalog", CLI_ARG_FILE }) },
    { .name = "delete", .operands = CLI_ARG_FILE,
      .options = SUBOPTS({ "--catalog", CLI_ARG_FILE }) },
    { .name = "save", .operands = CLI_ARG_TEXT,
      .options = SUBOPTS({ "--monitor", CLI_ARG_MONITOR },
                         { "--catalog", CLI_ARG_FILE }) },
    { .name = "load", .operands = CLI_ARG_TEXT,
      .options = SUBOPTS({ "--monitor", CLI_ARG_MONITOR },
                         { "--catalog", CLI_ARG_FILE }) },
    { .name = NULL }
};
static const struct cli_command catalog_subcommands[] = {
    { .name = "query", .operands = CLI_ARG_TEXT,
      .options = SUBOPTS({ "--json", CLI_ARG_NONE },
                         { "--header", CLI_ARG_NONE },
                         { "--catalog", CLI_ARG_FILE }) },
    { .name = "sync", .operands = CLI_ARG_FILE,
      .options = SUBOPTS({ "--catalog", CLI_ARG_FILE }) },
    { .name = NULL }
};
static const struct cli_option vmstate_check_opts[] = {
    { "--reverse", CLI_ARG_NONE }, { "--json", CLI_ARG_NONE },
    { "--help", CLI_ARG_NONE }, { NULL }
};

const char *const cli_img_formats[] = { "qcow2", "raw", NULL };
const char *const cli_output_formats[] = { "human", "json", NULL };

const struct cli_command cli_commands[] = {
    {
        .name = "help",
        .synopsis = "[COMMAND]",
        .summary = "show help for hop or one of its commands",
        .help = "Without COMMAND, lists hop's commands.  With COMMAND, shows "
                "that command's usage and options\n(the same as "
                "`hop COMMAND --help`).\n",
        .run = cmd_help,
        .options = help_opts,
        .operands = CLI_ARG_TEXT,
    },
    {
        .name = "version",
        .synopsis = "",
        .summary = "print hop's version and the stream format it writes",
        .help = "Prints the version of hop and the migration stream version "
                "it reads and writes.\n",
        .run = cmd_version,
        .options = help_opts,
    },
    {
        .name = "run",
        .synopsis = "[-m SIZE] [-smp N] [-accel emu|kvm] [-guest NAME | "
                    "-kernel FILE] [-serial stdio|file:PATH|none] [-S] "
                    "[-name NAME] [-uuid UUID] [-drive file=PATH"
                    "[,format=raw|qcow2][,if=ide|none]] [-monitor "
                    "stdio|none|unix:PATH,server[,nowait]] [-qmp "
                    "unix:PATH,server[,nowait]] [-incoming URI|defer] "
                    "[-dump-vmstate FILE] [-loadvm TAG] [-catalog PATH]",
        .summary = "start a virtual machine",
        .help = "Options:\n"
                "  -m SIZE          RAM size (default 128M; K, M, G suffixes; "
                "plain numbers are MiB)\n"
                "  -smp N           number of vCPUs, 1 to 8 (default 1)\n"
                "  -accel emu|kvm   run guest code in hop's x86 emulator "
                "(default) or on KVM\n"
                "  -guest NAME      built-in firmware: memtest (default), "
                "counter, disk, echo\n"
                "  -kernel FILE     a flat 32-bit binary loaded at 1 MiB "
                "(multiboot a.out header honoured)\n"
                "  -serial BACKEND  COM1 output: stdio (default; none when "
                "the monitor has the\n"
                "                   terminal), file:PATH or none\n"
                "  -S               do not start the vCPUs (use 'cont')\n"
                "  -name NAME       a name for the machine\n"
                "  -uuid UUID       the machine's UUID (checked by a "
                "destination with validate-uuid)\n"
                "  -drive file=PATH[,format=raw|qcow2][,if=ide|none]\n"
                "                   a disk image; if=ide (default) attaches "
                "it as the ATA master\n"
                "  -monitor stdio|none|unix:PATH,server[,nowait]\n"
                "                   where the monitor is (default stdio: a "
                "(hop) prompt on a\n"
                "                   terminal, one command per line from a "
                "pipe); without nowait,\n"
                "                   wait for the first client before "
                "starting\n"
                "  -qmp unix:PATH,server[,nowait]\n"
                "                   serve QMP, the JSON protocol, on a unix "
                "socket\n"
                "  -incoming URI|defer\n"
                "                   wait for a migration stream on URI "
                "(tcp:HOST:PORT, unix:PATH,\n"
                "                   exec:COMMAND, file:PATH, fd:NAME); defer: "
                "until migrate_incoming\n"
                "  -dump-vmstate FILE\n"
                "                   write the machine's state schema as JSON "
                "and exit\n"
                "  -loadvm TAG      start from snapshot TAG of the drive "
                "(see savevm)\n"
                "  -catalog PATH    the snapshot catalog savevm writes "
                "(default $HOP_CATALOG,\n"
                "                   else $XDG_DATA_HOME/hop/catalog.db; "
                "'none': no catalog)\n"
                "\nThe monitor's commands (help, info, stop, cont, quit, x, "
                "migrate, ...) are in\nhop-monitor(7); `help` at the prompt "
                "lists them.\n",
        .run = cmd_run,
        .options = run_opts,
    },
    {
        .name = "img",
        .synopsis = "create|info|check|snapshot|convert [OPTIONS] FILE...",
        .summary = "create, inspect, check and snapshot disk images",
        .help =
            "hop img create [-f qcow2|raw] [-o cluster_size=N] FILE SIZE\n"
            "    Create an image of SIZE bytes (suffixes K, M, G, T).  qcow2 "
            "is version 3 with\n    64 KiB clusters unless -o "
            "cluster_size=N (512 to 2M, a power of two).\n"
            "hop img info [-U] [--output=json] FILE\n"
            "    Format, virtual and disk size, cluster size, snapshots.\n"
            "hop img check [-U] [--output=json] FILE\n"
            "    Verify a qcow2 image's refcounts and tables.  Exit status: "
            "0 clean, 1 the check\n    failed, 2 corruptions found, 3 only "
            "leaked clusters found.\n"
            "hop img snapshot -l [-U]|-c TAG|-a TAG|-d TAG FILE\n"
            "    List, create (disk only), apply (revert the disk to) or "
            "delete an internal\n    snapshot; a TAG is a snapshot's name "
            "or ID.\n"
            "hop img convert [-U] [-f FMT] [-O qcow2|raw] [-o OPTIONS] [-l "
            "[snapshot.name=]TAG] [-n]\n                SOURCE TARGET\n"
            "    Copy a disk (or its state at snapshot TAG) into a new image; "
            "-n writes into an\n    existing TARGET instead.\n"
            "Images are locked as QEMU locks them: one that a running "
            "machine (hop's or\nQEMU's) or another writer holds is refused "
            "with \"in use by another process\".\n-U (--force-share) reads "
            "it anyway, as qemu-img -U; what it reads may be\nchanging.\n",
        .run = cmd_img,
        .options = help_opts,
        .subcommands = cli_img_subcommands,
    },
    {
        .name = "snapshot",
        .synopsis = "list|show|delete|save|load [OPTIONS] ...",
        .summary = "list, show, delete, save and load VM snapshots",
        .help =
            "hop snapshot list [-U] [--json] [IMAGE...]\n"
            "    The snapshots of the images given, or of every image in "
            "the catalog.\n"
            "hop snapshot show [-U] [--json] IMAGE TAG\n"
            "    A snapshot's metadata and the device sections its state "
            "holds (idstr,\n    instance, version, size), read from the "
            "image.\n"
            "hop snapshot delete IMAGE TAG\n"
            "    Delete a snapshot from an image no machine is using.\n"
            "hop snapshot save [TAG] --monitor unix:PATH\n"
            "hop snapshot load TAG --monitor unix:PATH\n"
            "    savevm / loadvm in the running hop whose -monitor socket "
            "is PATH.\n"
            "\n  -U, --force-share  list and show: read an image a running "
            "machine (or another\n                     writer) holds, as "
            "qemu-img -U; without it such an image is\n"
            "                     refused with \"in use by another "
            "process\"\n"
            "  --catalog PATH     the catalog (default $HOP_CATALOG, else "
            "$XDG_DATA_HOME/hop/catalog.db)\n"
            "Exit status: 0 done, 1 failed, 2 usage.\n",
        .run = cmd_snapshot,
        .options = help_opts,
        .subcommands = snapshot_subcommands,
    },
    {
        .name = "catalog",
        .synopsis = "query [--json] [--header] SQL | sync [PATH...]",
        .summary = "query or rebuild the snapshot catalog",
        .help =
            "hop catalog query [--json] [--header] SQL\n"
            "    Run one read-only SQL statement on the catalog (tables "
            "images, snapshots,\n    sections; view snapshot_sections; "
            "see hop(1)).  Rows print as a|b|c.\n"
            "hop catalog sync [PATH...]\n"
            "    Rebuild the catalog's entries for these images (default: "
            "every image it\n    knows; images that are gone are "
            "dropped) by reading each snapshot's state.\n"
            "    An image a running writer holds is skipped with a note "
            "(\"PATH: skipped: ...\"):\n    a running hop machine keeps "
            "its own entries up to date.\n"
            "\n  --catalog PATH   the catalog (default $HOP_CATALOG, else "
            "$XDG_DATA_HOME/hop/catalog.db)\n"
            "Exit status: 0 done (skipped images included), 1 an image "
            "failed, 2 usage.\n",
        .run = cmd_catalog,
        .options = help_opts,
        .subcommands = catalog_subcommands,
    },
    {
        .name = "complete",
        .synopsis = "-- WORD...",
        .summary = NULL,   /* hidden: the bash completion's back end */
        .help = "Prints the completions of the last WORD of a partial hop "
                "command line, one per line.\nUsed by completions/hop.bash.\n",
        .run = cmd_complete,
        .options = help_opts,
    },
    {
        .name = "fault-points",
        .synopsis = "",
        .summary = NULL,   /* hidden: for the fault-injection tests */
        .help = "Lists the steps where HOP_FAULT=POINT[@N][:exit|:fail] makes "
                "hop die or fail,\none per line: name, exit or exit+fail, the "
                "operations passing there, the step.\n",
        .run = cmd_fault_points,
        .options = help_opts,
    },
    {
        .name = "inspect",
        .synopsis = "FILE|IMAGE[@TAG] [--snapshot TAG] [-U] [--json] "
                    "[--section IDSTR[:INSTANCE]] [--fields] "
                    "[--no-ram] [--extract-ram DIR [--overwrite]] [--verify] "
                    "[--against SCHEMA.json]",
        .summary = "decode a saved state file (hop's or QEMU's)",
        .help = "Lists the records of a migration stream (offset, type, "
                "section id, idstr, instance,\nversion, size), decodes each "
                "device's fields from the stream's vmdesc, and\nsummarises "
                "RAM per block.  FILE may be '-' or a pipe.  A qcow2 IMAGE "
                "lists its snapshots;\nIMAGE@TAG (or --snapshot TAG) "
                "decodes that snapshot's saved state.\n\n"
                "  --snapshot TAG          the snapshot of a qcow2 image to "
                "decode\n"
                "  -U, --force-share       read an image a running machine "
                "(or another writer)\n"
                "                          holds, as qemu-img -U; without "
                "it, it is refused\n"
                "  --json                  one JSON document (keys in "
                "hop(1))\n"
                "  --section IDSTR[:INST]  only that section\n"
                "  --fields                only the decoded device fields\n"
                "  --no-ram                no RAM summary\n"
                "  --extract-ram DIR       write each RAM block to DIR/NAME "
                "(zero pages as holes)\n"
                "  --overwrite             replace files already in DIR "
                "(else they are refused)\n"
                "  --verify                check the stream is complete and "
                "well formed; one line\n"
                "  --against SCHEMA.json   would it load into a build with "
                "that -dump-vmstate schema?\n"
                "Exit status: 0 ok, 1 malformed stream or would not load, "
                "2 usage.\n",
        .run = cmd_inspect,
        .options = inspect_opts,
        .operands = CLI_ARG_FILE,
    },
    {
        .name = "vmstate-check",
        .synopsis = "OLD.json NEW.json [--reverse] [--json]",
        .summary = "report what breaks migration between two state schemas",
        .help = "Compares two schema dumps in QEMU's -dump-vmstate layout "
                "and reports, one line per\nfinding with its severity and "
                "path, what a build with NEW would fail to load\nfrom a "
                "build with OLD (with --reverse, from NEW to OLD).\n\n"
                "  --reverse   check migration from NEW to OLD\n"
                "  --json      findings as one JSON document\n"
                "Exit status: 0 compatible, 1 not, 2 usage.\n",
        .run = cmd_vmstate_check,
        .options = vmstate_check_opts,
        .operands = CLI_ARG_FILE,
    },
    { .name = NULL }
};

const struct cli_option *cli_find_option(const struct cli_option *opts,
                                         const char *name)
{
    for (int pass = 0; pass < 2; pass++) {
        for (const struct cli_option *o = opts; o && o->name; o++) {
            if (strcmp(o->name, name) == 0) {
                return o;
            }
        }
        /* QEMU accepts --opt for -opt. */
        if (name[0] != '-' || name[1] != '-' || !name[2]) {
            break;
        }
        name++;
    }
    return NULL;
}

const struct cli_command *cli_find_command(const char *name)
{
    for (const struct cli_command *c = cli_commands; c->name; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

void cli_print_usage(FILE *out)
{
    fprintf(out,
            "Usage: hop [--help] [--version] COMMAND [ARGS...]\n"
            "\n"
            "hop moves the running state of a virtual machine: live to another\n"
            "process, into a qcow2 image and back, and onto the screen.\n"
            "\n"
            "Commands:\n");
    for (const struct cli_command *c = cli_commands; c->name; c++) {
        if (c->summary) {
            fprintf(out, "  %-10s %s\n", c->name, c->summary);
        }
    }
    fprintf(out, "\nRun 'hop COMMAND --help' for a command's options.\n");
}

void cli_print_command_help(FILE *out, const struct cli_command *cmd)
{
    fprintf(out, "Usage: hop %s %s\n", cmd->name, cmd->synopsis);
    if (cmd->summary) {
        fprintf(out, "\n%c%s.\n", cmd->summary[0] - 32 * (cmd->summary[0] >= 'a' &&
                cmd->summary[0] <= 'z'), cmd->summary + 1);
    }
    if (cmd->help) {
        fprintf(out, "\n%s", cmd->help);
    }
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            return 0;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            return 1;
        }
    }
    return 0;
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hop %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nUsage: hop %s %s\nTry 'hop %s --help'.\n", cmd->name,
            cmd->synopsis, cmd->name);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        cli_print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        cli_print_usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        return cmd_version(1, argv + 1);
    }
    const struct cli_command *cmd = cli_find_command(name);
    if (!cmd) {
        fprintf(stderr, "hop: unknown %s '%s'\n\n",
                name[0] == '-' ? "option" : "command", name);
        cli_print_usage(stderr);
        return EXIT_USAGE;
    }
    if (cmd->run != cmd_complete && cli_wants_help(argc - 1, argv + 1)) {
        cli_print_command_help(stdout, cmd);
        return EXIT_OK;
    }
    return cmd->run(argc - 1, argv + 1);
}
