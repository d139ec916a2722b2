/* The subcommand table and the dispatcher around it.  Each command's
 * options live beside it (cli_run_options in cli/cmd-run.c, ...); from
 * this table and those come dispatch, `hop help`, `hop COMMAND --help`,
 * the bash completion (cli/complete.c) and man/hop.1 (cli/man-page.c). */
#include "cli/cli.h"
#include "cli/vmstate-check.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>

static const struct cli_option help_opts[] = { { .name = "--help",
                                                 .arg = CLI_ARG_NONE },
                                               { NULL } };

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
        .man = "Without\n"
               ".IR COMMAND ,\n"
               "list hop's commands; with it, show that command's usage and "
               "options (the\n"
               "same as\n"
               ".BR \"hop \\fICOMMAND\\fP \\-\\-help\" ).\n",
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
        .man = "Print hop's version and the migration stream version it reads "
               "and writes.\n",
        .run = cmd_version,
        .options = help_opts,
    },
    {
        .name = "run",
        .summary = "start a virtual machine",
        .help = "Options:\n",
        .help_tail = "\nThe monitor's commands (help, info, stop, cont, quit, "
                     "x, migrate, ...) are in\nhop-monitor(7); `help` at the "
                     "prompt lists them.\n",
        .man =
            "Start a virtual machine: RAM, one or more vCPUs, a 16550 "
            "serial port at\n"
            "COM1, an i8042 keyboard controller with keyboard and mouse, an "
            "ATA disk\n"
            "controller and an MC146818 real-time clock.\n"
            "Guest code runs in 32-bit flat protected mode, entered the way "
            "a multiboot\n"
            "loader enters a kernel.\n"
            "The monitor controls the running machine: on the terminal it is "
            "a\n"
            ".B (hop)\n"
            "prompt with completion and history; from a pipe it reads one "
            "command per\n"
            "line with no prompt, so\n"
            ".B printf 'info status\\enquit\\en' | hop run\n"
            "is a script.\n"
            "Its commands\n"
            ".RB ( help \", \" info \", \" stop \", \" cont \", \" quit \", "
            "\" x \", \" migrate ,\n"
            "\\&...) are described in\n"
            ".BR hop\\-monitor (7).\n"
            "Options:\n",
        .man_tail =
            ".IP\n"
            "A guest that executes an unknown instruction stops the machine "
            "in state\n"
            ".B internal\\-error\n"
            "with a message naming the opcode and its address; access to an "
            "I/O port\n"
            "no device claims is reported once per port; a disk request "
            "past the end of\n"
            "the drive is refused and reported.\n"
            "hop itself keeps running.\n",
        .run = cmd_run,
        .options = cli_run_options,
    },
    {
        .name = "img",
        .operand_usage = "FILE...",
        .summary = "create, inspect, check and snapshot disk images",
        .help_tail =
            "Images are locked as QEMU locks them: one that a running "
            "machine (hop's or\nQEMU's) or another writer holds is refused "
            "with \"in use by another process\".\n-U (--force-share) reads "
            "it anyway, as qemu-img -U; what it reads may be\nchanging.\n",
        .man_tail =
            ".IP\n"
            "qcow2 images hop writes open in QEMU and its tools: snapshots "
            "made by\n"
            "hop's savevm and by QEMU's are the same kind, and\n"
            ".B qemu-img check\n"
            "finds hop's images clean even after hop was killed at any "
            "moment (at worst\n"
            "it reports leaked clusters).\n"
            "Images with encryption, an external data file, extended L2\n"
            "entries or zstd compression are refused with a message saying "
            "so; version 2\n"
            "images and compressed clusters are read.\n"
            "A qcow2 image may have a backing file (raw or qcow2, itself over "
            "another, up\n"
            "to 64 deep): opened read-only beside it, named relative to the "
            "image's\n"
            "directory as QEMU names it, it supplies every cluster the image "
            "has not\n"
            "written (zeros past its end); writes go to the image, and a "
            "partial write\n"
            "copies the rest of its cluster from the backing file first.\n"
            "A missing backing file, a loop in the chain or a chain too deep "
            "fails the\n"
            "open with one line naming the image and the backing file.\n"
            "A guest write or an allocation that would land on the image's "
            "metadata (its\n"
            "header, L1 and L2 tables, refcount table and blocks, snapshot "
            "table) is\n"
            "refused with a message naming the structure, and the image is "
            "marked\n"
            "corrupt, as QEMU does; images where two such structures share "
            "a cluster\n"
            "open read-only only.\n"
            ".IP\n"
            "Images are locked as QEMU locks them (the same byte-range "
            "locks), for as\n"
            "long as they are open: a running machine, hop's or QEMU's, "
            "holds its drives,\n"
            "and a command that would write an image another process holds, "
            "or read one\n"
            "being written, is refused with\n"
            ".RI \"\"\"image '\" FILE \"' is in use by another process\"\"\"\n"
            "(QEMU's tools refuse hop's images likewise).\n"
            ".B \\-U\n"
            ".RB ( \\-\\-force\\-share )\n"
            "reads such an image anyway, as\n"
            ".BR \"qemu-img -U\" ;\n"
            "what it reads may be changing.\n"
            ".B convert\n"
            "refuses a target that is its source (also through a link), and\n"
            ".B create\n"
            "checks its size and options before it touches an existing file.\n"
            "A snapshot table entry whose fields do not fit the image (its "
            "L1 table, disk\n"
            "size or state size) is listed with a warning and refused "
            "wherever it would be\n"
            "used, with the field named.\n",
        .run = cmd_img,
        .options = help_opts,
        .subcommands = cli_img_subcommands,
    },
    {
        .name = "snapshot",
        .summary = "list, show, delete, save and load VM snapshots",
        .help_tail = "Exit status: 0 done, 1 failed, 2 usage.\n",
        .help_width = 21,
        .run = cmd_snapshot,
        .options = help_opts,
        .subcommands = cli_snapshot_subcommands,
    },
    {
        .name = "catalog",
        .synopsis = "query [--json] [--header] SQL | sync [PATH...]",
        .summary = "query or rebuild the snapshot catalog",
        .help_tail = "Exit status: 0 done (skipped images included), 1 an "
                     "image failed, 2 usage.\n",
        .run = cmd_catalog,
        .options = help_opts,
        .subcommands = cli_catalog_subcommands,
    },
    {
        .name = "complete",
        .synopsis = "-- WORD...",
        .summary = NULL, /* hidden: the bash completion's back end */
        .help = "Prints the completions of the last WORD of a partial hop "
                "command line, one per line.\nUsed by completions/hop.bash.\n",
        .run = cmd_complete,
        .options = help_opts,
    },
    {
        .name = "fault-points",
        .synopsis = "",
        .summary = NULL, /* hidden: for the fault-injection tests */
        .help = "Lists the steps where HOP_FAULT=POINT[@N][:exit|:fail] makes "
                "hop die or fail,\none per line: name, exit or exit+fail, the "
                "operations passing there, the step.\n",
        .run = cmd_fault_points,
        .options = help_opts,
    },
    {
        .name = "inspect",
        .operand_usage = "FILE|IMAGE[@TAG]",
        .operands_first = true,
        .summary = "decode a saved state file (hop's or QEMU's)",
        .help = "Lists the records of a migration stream (offset, type, "
                "section id, idstr, instance,\nversion, size), decodes each "
                "device's fields from the stream's vmdesc, and\nsummarises "
                "RAM per block.  FILE may be '-' or a pipe.  A qcow2 IMAGE "
                "lists its snapshots;\nIMAGE@TAG (or --snapshot TAG) "
                "decodes that snapshot's saved state.\n\n",
        .help_tail = "Exit status: 0 ok, 1 malformed stream or would not "
                     "load, 2 usage.\n",
        .help_width = 26,
        .man =
            "Decode a saved state: a migration stream written by hop or by "
            "QEMU\n"
            ".RB ( \"migrate \"\"exec:cat > FILE\"\"\" ,\n"
            ".BR \"migrate file:FILE\" ).\n"
            ".I FILE\n"
            "is mapped, not read, so large files cost little; it may also be\n"
            ".B \\-\n"
            "or a pipe.\n"
            "Without options, prints a table of the stream's records "
            "(offset, type,\n"
            "section id, idstr, instance, version, size), then every device "
            "section's\n"
            "fields by name, decoded with the stream's own description (the "
            "vmdesc JSON\n"
            "QEMU and hop append after EOF), then RAM per block: length, "
            "pages sent as\n"
            "normal, zero, XBZRLE and compressed pages, and the bytes they "
            "take in the\n"
            "stream.\n"
            "A stream without vmdesc is walked section by section (each "
            "device\n"
            "section ends at its footer) and its devices are shown with "
            "their sizes\n"
            "only.\n"
            "A qcow2\n"
            ".I IMAGE\n"
            "lists its snapshots (with\n"
            ".BR \\-\\-json :\n"
            "{\\fBimage\\fR, \\fBformat\\fR, \\fBvirtual\\-size\\fR, "
            "\\fBsnapshots\\fR});\n"
            ".IB IMAGE @ TAG\n"
            "or\n"
            ".B \\-\\-snapshot\n"
            ".I TAG\n"
            "decodes the state that snapshot holds, exactly as for a stream "
            "file \\(em\n"
            "for snapshots QEMU's savevm made too.\n"
            "An image a running machine (or another writer) holds is "
            "refused with\n"
            ".RI \"\"\"image '\" FILE \"' is in use by another process\"\"\" "
            ".\n",
        .man_tail =
            ".IP\n"
            "A truncated, corrupted or foreign file gives one error line "
            "naming the\n"
            "offset and what was expected there, and exit status 1.\n",
        .run = cmd_inspect,
        .options = cli_inspect_options,
        .operands = CLI_ARG_FILE,
    },
    {
        .name = "vmstate-check",
        .operand_usage = "OLD.json NEW.json",
        .operands_first = true,
        .summary = "report what breaks migration between two state schemas",
        .help = "Compares two schema dumps in QEMU's -dump-vmstate layout "
                "and reports, one line per\nfinding with its severity and "
                "path, what a build with NEW would fail to load\nfrom a "
                "build with OLD (with --reverse, from NEW to OLD).\n\n",
        .help_tail = "Exit status: 0 compatible, 1 not, 2 usage.\n",
        .help_width = 14,
        .man =
            "Compare two state schemas in QEMU's\n"
            ".B \\-dump\\-vmstate\n"
            "layout (hop writes the same layout) and report what a build with\n"
            ".I NEW\n"
            "would fail to load from a build with\n"
            ".I OLD\n"
            "(with\n"
            ".BR \\-\\-reverse ,\n"
            "from\n"
            ".I NEW\n"
            "to\n"
            ".IR OLD ).\n"
            "One line per finding:\n"
            ".IB severity : \" path\" : \" message\" ,\n"
            "the path being device/field/.../subsection/field, then a "
            "summary line.\n"
            "Errors: a section removed; a field removed, replaced, or now "
            "starting at a\n"
            "later version than OLD sends; a field's size changed; a plain "
            "field turned\n"
            "into a nested struct or back; a field added without a version "
            "bump (or to\n"
            "a nested struct, which has no version on the wire); version_id "
            "lowered;\n"
            "minimum_version_id raised above the version OLD sends; a "
            "subsection removed\n"
            "or renamed, or its versions out of reach; a description "
            "renamed; the\n"
            "machine type changed.\n"
            "Warnings: a field renamed in place with the same size (the "
            "wire is\n"
            "unchanged), a field added or changed under a\n"
            ".B field_exists\n"
            "test.\n"
            "Sections and subsections that only NEW has are compatible.\n"
            ".B \\-\\-json\n"
            "prints {\\fBfrom\\fR, \\fBto\\fR, \\fBcompatible\\fR, "
            "\\fBfindings\\fR}.\n"
            "Exit status 0 when compatible (warnings allowed), 1 when not, "
            "2 on usage\n"
            "errors.\n",
        .run = cmd_vmstate_check,
        .options = cli_vmstate_check_options,
        .operands = CLI_ARG_FILE,
    },
    { .name = NULL }
};

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
            "hop moves the running state of a virtual machine: live to "
            "another\n"
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

/* What follows "hop NAME " in a usage line: the subcommands' names, the
 * hand-written synopsis, or the options and operands. */
void cli_print_command_synopsis(FILE *out, const struct cli_command *cmd,
                                enum cli_style style)
{
    if (cmd->synopsis) {
        cli_print_synopsis_text(out, cmd->synopsis, style);
        return;
    }
    if (cmd->subcommands) {
        for (const struct cli_command *s = cmd->subcommands; s->name; s++) {
            fprintf(out, "%s%s", s == cmd->subcommands ? "" : "|", s->name);
        }
        cli_print_synopsis_text(out, " [OPTIONS] ", style);
        cli_print_synopsis_text(
            out, cmd->operand_usage ? cmd->operand_usage : "...", style);
        return;
    }
    if (cmd->operand_usage && cmd->operands_first) {
        cli_print_synopsis_text(out, cmd->operand_usage, style);
        fputc(' ', out);
    }
    cli_print_synopsis(out, cmd->options, style);
    if (cmd->operand_usage && !cmd->operands_first) {
        fputc(' ', out);
        cli_print_synopsis_text(out, cmd->operand_usage, style);
    }
}

/* Has this option been met in an earlier subcommand of the same command
 * (or earlier in its own table)? */
static bool seen_before(const struct cli_command *cmd,
                        const struct cli_option *opt)
{
    const struct cli_command *s = cmd->subcommands;
    for (; s && s->name; s++) {
        for (const struct cli_option *o = s->options; o && o->name; o++) {
            if (o == opt) {
                return false;
            }
            if (strcmp(o->name, opt->name) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* The options of every subcommand, each once, in --help's layout. */
static void print_subcommand_options(FILE *out, const struct cli_command *cmd,
                                     int width)
{
    for (const struct cli_command *s = cmd->subcommands; s->name; s++) {
        for (const struct cli_option *o = s->options; o && o->name; o++) {
            if (o->help && !seen_before(cmd, o)) {
                cli_print_option_help(
                    out, (const struct cli_option[]){ *o, { NULL } }, width);
            }
        }
    }
}

bool cli_command_has_option_help(const struct cli_command *cmd)
{
    for (const struct cli_option *o = cmd->options; o && o->name; o++) {
        if (o->help) {
            return true;
        }
    }
    for (const struct cli_command *s = cmd->subcommands; s && s->name; s++) {
        for (const struct cli_option *o = s->options; o && o->name; o++) {
            if (o->help) {
                return true;
            }
        }
    }
    return false;
}

void cli_print_command_help(FILE *out, const struct cli_command *cmd)
{
    int width = cmd->help_width ? cmd->help_width : 19;
    fprintf(out, "Usage: hop %s ", cmd->name);
    cli_print_command_synopsis(out, cmd, CLI_TEXT);
    fputc('\n', out);
    if (cmd->summary) {
        fprintf(out, "\n%c%s.\n", toupper((unsigned char)cmd->summary[0]),
                cmd->summary + 1);
    }
    if (cmd->help || cmd->subcommands) {
        fputc('\n', out);
    }
    if (cmd->help) {
        fputs(cmd->help, out);
    }
    for (const struct cli_command *s = cmd->subcommands; s && s->name; s++) {
        fprintf(out, "hop %s %s ", cmd->name, s->name);
        cli_print_command_synopsis(out, s, CLI_TEXT);
        fprintf(out, "\n%s", s->help ? s->help : "");
    }
    if (cmd->subcommands && cli_command_has_option_help(cmd)) {
        fputc('\n', out);
        print_subcommand_options(out, cmd, width);
    }
    cli_print_option_help(out, cmd->options, width);
    if (cmd->help_tail) {
        fputs(cmd->help_tail, out);
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
    fprintf(stderr, "\nUsage: hop %s ", cmd->name);
    cli_print_command_synopsis(stderr, cmd, CLI_TEXT);
    fprintf(stderr, "\nTry 'hop %s --help'.\n", cmd->name);
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
