/* hop inspect FILE: what is inside a saved state. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/inspect.h"
#include "cli/vmstate-check.h"
#include "block/block.h"
#include "snapshot/catalog-index.h"
#include "snapshot/table.h"
#include "util/alloc.h"
#include "util/printable.h"

struct inspect_cmd {
    const char *file;
    const char *snapshot; /* --snapshot TAG, or IMAGE@TAG */
    char *image;          /* FILE with @TAG split off */
    bool json;
    bool fields_only;
    bool verify;
    bool force_share; /* -U: an image a writer holds */
    const char *against;
    char *section;
    struct inspect_opts o;
};

/* --section IDSTR[:INSTANCE] */
static int opt_section(const struct cli_command *self,
                       const struct cli_option *opt, void *target,
                       const char *v)
{
    struct inspect_cmd *a = target;
    free(a->section);
    a->section = xstrdup(v);
    char *colon = strrchr(a->section, ':');
    if (colon) {
        char *end;
        errno = 0;
        long inst = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end || inst < 0 || errno) {
            return cli_usage_error(self,
                                   "bad section '%s' (expected "
                                   "IDSTR[:INSTANCE])",
                                   v);
        }
        *colon = '\0';
        a->o.section_instance = inst;
    }
    if (!a->section[0]) {
        return cli_usage_error(self, "empty section name");
    }
    a->o.section = a->section;
    return -1;
}

#define FIELD(member) .field = offsetof(struct inspect_cmd, member)
#define FLAG(member) .store = CLI_STORE_FLAG, FIELD(member)
#define STRING(member) .store = CLI_STORE_STRING, FIELD(member)

const struct cli_option cli_inspect_options[] = {
    { .name = "--snapshot",
      .arg = CLI_ARG_TEXT,
      .metavar = "TAG",
      STRING(snapshot),
      .help = "the snapshot of a qcow2 image to decode",
      .man = "Decode that snapshot of a qcow2\n.I IMAGE\n(the same as\n"
             ".IB IMAGE @ TAG\\fR).\n" },
    { .name = "-U",
      .alias = "--force-share",
      .arg = CLI_ARG_NONE,
      FLAG(force_share),
      .help = "read an image a running machine (or another writer)\n"
              "holds, as qemu-img -U; without it, it is refused",
      .man = "Read such an image anyway, as\n"
             ".BR \"qemu-img -U\" ;\n"
             "what it reads may be changing.\n" },
    { .name = "--json",
      .arg = CLI_ARG_NONE,
      FLAG(json),
      .help = "one JSON document (keys in hop(1))",
      .man =
          "One JSON document instead of text.\n"
          "Its keys are stable:\n"
          ".B size\n"
          "(bytes),\n"
          ".B machine\n"
          "(the configuration's machine type, or null),\n"
          ".B configuration\n"
          ".RB ( offset \", \" size \", \" machine \", \" capabilities \", "
          "and \"\n"
          ".BR target_page_bits \", \" uuid\n"
          "when the stream carries them),\n"
          ".BR version \" (3), \" complete\n"
          "(true when the stream reached EOF and is well formed),\n"
          ".B vmdesc\n"
          ".RB ( offset \", \" size \", \" page_size ;\n"
          "or null),\n"
          ".B records\n"
          "(one object per record in stream order: \\fBoffset\\fR, "
          "\\fBtype\\fR \\(em CONFIG,\n"
          "START, PART, END, FULL, COMMAND, EOF, VMDESC \\(em, "
          "\\fBsize\\fR, \\fBdepth\\fR\n"
          "(1 inside a PACKAGED command); sections add \\fBsection_id\\fR, "
          "\\fBidstr\\fR,\n"
          "\\fBinstance_id\\fR, \\fBversion_id\\fR, \\fBbody_size\\fR; "
          "commands add\n"
          "\\fBcommand\\fR, \\fBcommand_name\\fR, \\fBcommand_length\\fR),\n"
          ".B devices\n"
          "(one object per FULL section: \\fBidstr\\fR, \\fBinstance_id\\fR,\n"
          "\\fBsection_id\\fR, \\fBversion_id\\fR, \\fBoffset\\fR, "
          "\\fBsize\\fR,\n"
          "\\fBvmsd_name\\fR when known, \\fBdecoded_by\\fR \\(em "
          "\"vmdesc\", \"hop\" (a description hop supplies) or \"none\" \\(em\n"
          "and \\fBfields\\fR: an object keyed by field name, or null),\n"
          ".B ram\n"
          "(\\fBpage_size\\fR, \\fBsections\\fR, \\fBtotal_length\\fR, "
          "\\fBpages\\fR and\n"
          "\\fBstream_bytes\\fR totals, and \\fBblocks\\fR: \\fBname\\fR, "
          "\\fBlength\\fR,\n"
          "\\fBpages\\fR {\\fBnormal\\fR, \\fBzero\\fR, \\fBxbzrle\\fR, "
          "\\fBcompressed\\fR},\n"
          "\\fBstream_bytes\\fR; or null),\n"
          "and with\n"
          ".B \\-\\-against\n"
          "an\n"
          ".B against\n"
          "object (\\fBschema\\fR, \\fBloads\\fR, \\fBfindings\\fR).\n"
          "Field values: integers as JSON numbers (an unsigned value above "
          "2^63\\-1 as a\n"
          "\"0x...\" string), bools as true/false, a NULL pointer as null, "
          "arrays as\n"
          "arrays, nested structs and subsections (keyed by the "
          "subsection's name) as\n"
          "objects, and everything else (buffers, timers, floats, unknown "
          "types) as a\n"
          "string of hexadecimal digits, two per byte, in stream order.\n" },
    { .name = "--section",
      .arg = CLI_ARG_TEXT,
      .metavar = "IDSTR[:INSTANCE]",
      .store = CLI_STORE_CALL,
      .handle = opt_section,
      .help = "only that section",
      .man = "Only that section (every instance if none is given); exit 1 if "
             "the stream\n"
             "has none.\n" },
    { .name = "--fields",
      .arg = CLI_ARG_NONE,
      FLAG(fields_only),
      .help = "only the decoded device fields",
      .man = "Only the device fields: no record table, no RAM.\n" },
    { .name = "--no-ram",
      .arg = CLI_ARG_NONE,
      FLAG(o.no_ram),
      .help = "no RAM summary",
      .man = "No RAM summary.\n" },
    { .name = "--extract-ram",
      .arg = CLI_ARG_DIR,
      .metavar = "DIR",
      .with_next = true,
      STRING(o.extract_dir),
      .help = "write each RAM block to DIR/NAME (zero pages as holes)",
      .man = "Write each RAM block to a file in\n"
             ".I DIR\n"
             "(created if needed) whose bytes equal the guest's memory at the "
             "end of the\n"
             "stream: pages resent in later passes overwrite earlier ones, "
             "XBZRLE pages\n"
             "are applied to the page's previous contents, zero pages are left "
             "as holes.\n"
             "The file is named after the block: a leading\n"
             ".B /\n"
             "is dropped, and\n"
             ".BR / \", \" %\n"
             "and control characters become\n"
             ".BR %2F \", \" %25\n"
             "and so on, as does a leading\n"
             ".B .\n"
             ".RB ( /rom@etc/acpi/tables\n"
             "is\n"
             ".BR rom@etc%2Facpi%2Ftables ).\n"
             "Two blocks that would share a file (such as\n"
             ".B pc.ram\n"
             "and\n"
             ".BR /pc.ram )\n"
             "are refused.\n"
             "Files already in\n"
             ".I DIR\n"
             "are refused too, unless\n"
             ".B \\-\\-overwrite\n"
             "is given: then each is removed and created anew (a symbolic link "
             "is\n"
             "removed, never followed).\n"
             "A block longer than the stream could fill (every page takes at "
             "least\n"
             "9 bytes of records) is refused, so a forged length cannot make a "
             "huge\n"
             "file.\n"
             "When the stream turns out to be malformed, the files made so far "
             "are\n"
             "removed.\n"
             "Compressed pages (COMPRESS_PAGE) cannot be extracted.\n" },
    { .name = "--overwrite",
      .arg = CLI_ARG_NONE,
      FLAG(o.overwrite),
      .help = "replace files already in DIR (else they are refused)",
      .man = "With\n"
             ".BR \\-\\-extract\\-ram :\n"
             "replace files already in\n"
             ".IR DIR .\n" },
    { .name = "--verify",
      .arg = CLI_ARG_NONE,
      FLAG(verify),
      .help = "check the stream is complete and well formed; one line",
      .man = "Check that the stream is complete and well formed: every footer, "
             "every\n"
             "RAM record, every device section against its vmdesc entry "
             "(version,\n"
             "fields, subsections).\n"
             "Prints one line; the exit status says the result.\n" },
    { .name = "--against",
      .arg = CLI_ARG_FILE,
      .metavar = "SCHEMA.json",
      STRING(against),
      .help = "would it load into a build with that -dump-vmstate schema?",
      .man = "Would this state load into a build with that schema (a\n"
             ".B \\-dump\\-vmstate\n"
             "file, QEMU's or hop's)?\n"
             "Lists why not: machine type differs, a section the schema does "
             "not know,\n"
             "a version newer than its version_id or older than its "
             "minimum_version_id,\n"
             "a subsection it does not know.\n"
             "Exit 1 if it would not load.\n"
             "QEMU's dumps describe qdev devices only, so sections such as\n"
             ".BR timer \", \" cpu \" or \" globalstate\n"
             "are reported unknown against them.\n" },
    { .name = "--help", .arg = CLI_ARG_NONE },
    { NULL }
};

/* FILE, once. */
static int file_operand(const struct cli_command *self, void *target,
                        const char *word)
{
    struct inspect_cmd *a = target;
    if (a->file) {
        return cli_usage_error(self, "unexpected argument '%s'", word);
    }
    a->file = word;
    return -1;
}

static int parse_args(const struct cli_command *self, int argc, char **argv,
                      struct inspect_cmd *a)
{
    a->o.section_instance = -1;
    const struct cli_parser p = {
        .cmd = self,
        .tables =
            (const struct cli_option *const[]){ cli_inspect_options, NULL },
        .target = a,
        .end_of_options = true,
        .operand = file_operand,
    };
    int rc = cli_parse_options(&p, argc, argv, 1);
    if (rc >= 0) {
        return rc;
    }
    if (!a->file) {
        return cli_usage_error(self, "missing FILE");
    }
    if (a->o.overwrite && !a->o.extract_dir) {
        return cli_usage_error(self, "--overwrite goes with --extract-ram");
    }
    if (a->verify && (a->json || a->fields_only)) {
        return cli_usage_error(self,
                               "--verify prints one line; it does not "
                               "combine with --json or --fields");
    }
    return EXIT_OK;
}

/* IMAGE@TAG: the file as named if it exists, else split at the last '@'
 * when what precedes it exists. */
static void split_image_tag(struct inspect_cmd *a)
{
    const char *at = strrchr(a->file, '@');
    if (a->snapshot || !at || at == a->file || !at[1] ||
        access(a->file, F_OK) == 0) {
        a->image = xstrdup(a->file);
        return;
    }
    a->image = xstrndup(a->file, (size_t)(at - a->file));
    if (access(a->image, F_OK) == 0) {
        a->snapshot = at + 1;
    } else {
        free(a->image);
        a->image = xstrdup(a->file);
    }
}

static bool is_qcow2(const char *file)
{
    unsigned char head[4];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    bool yes = read(fd, head, 4) == 4 && memcmp(head, "QFI\xfb", 4) == 0;
    close(fd);
    return yes;
}

/* How to open an image: read-only, sharing it with a writer for -U. */
static unsigned read_flags(bool force_share)
{
    return force_share ? BLK_OPEN_FORCE_SHARE : 0;
}

/* A qcow2 image without a snapshot named: its snapshot list. */
static int list_image(const char *file, bool json, bool force_share)
{
    Error *err = NULL;
    BlockDev *bs = blk_open_flags(file, "qcow2", read_flags(force_share), &err);
    struct blk_snapshot *l = NULL;
    size_t n = 0;
    if (!bs || !blk_snapshot_list(bs, &l, &n, &err)) {
        fprintf(stderr, "hop inspect: %s: %s\n", file, error_get_pretty(err));
        error_free(err);
        if (bs) {
            blk_close(bs);
        }
        return EXIT_FAIL;
    }
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(arr, snapshot_info_json(&l[i]));
        }
        json_t *o = json_pack("{s:s,s:s,s:I,s:o}", "image", file, "format",
                              "qcow2", "virtual-size", (json_int_t)blk_size(bs),
                              "snapshots", arr);
        json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        char line[1400];
        printf("%s: qcow2 image, %zu snapshot%s%s\n", file, n,
               n == 1 ? "" : "s", n ? " (inspect one with IMAGE@TAG)" : "");
        if (n) {
            snapshot_table_header(line, sizeof(line));
            printf("%s\n", line);
        }
        for (size_t i = 0; i < n; i++) {
            snapshot_table_row(&l[i], NULL, line, sizeof(line));
            printf("%s\n", line);
        }
    }
    blk_snapshot_list_free(l, n);
    blk_close(bs);
    return EXIT_OK;
}

/* A snapshot's state, read from the image's vmstate area. */
static bool inspect_snapshot(const char *file, const char *tag,
                             bool force_share, const struct inspect_opts *o,
                             json_t **report, Error **errp)
{
    *report = NULL;
    BlockDev *bs = blk_open_flags(file, NULL, read_flags(force_share), errp);
    if (!bs) {
        return false;
    }
    struct blk_snapshot sn;
    if (!blk_snapshot_find(bs, tag, &sn, errp)) {
        blk_close(bs);
        return false;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    bool ok = true;
    if (sn.vm_state_size == 0) {
        error_setg(errp,
                   "snapshot '%s' is disk-only: it holds no machine "
                   "state",
                   PRINTABLE(tag));
        ok = false;
    }
    ok = ok && snapshot_read_state(bs, &sn, &data, &len, errp) &&
        inspect_stream(data, len, o, report, errp);
    free(data);
    blk_snapshot_clear(&sn);
    blk_close(bs);
    return ok;
}

/* Maps a regular file, or reads anything else (a pipe) through a channel. */
static bool run_inspect(const char *file, const struct inspect_opts *o,
                        json_t **report, Error **errp)
{
    *report = NULL;
    int fd = strcmp(file, "-") == 0 ? fcntl(0, F_DUPFD_CLOEXEC, 0)
                                    : open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot open '%s'", file);
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "cannot stat '%s'", file);
        close(fd);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        Channel *f = chan_new_fd(fd, false, true, file);
        bool ok = inspect_channel(f, o, report, errp);
        chan_close(f, NULL);
        return ok;
    }
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        close(fd);
        error_setg(errp,
                   "'%s' is empty: expected the stream header at "
                   "offset 0",
                   file);
        return false;
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        error_setg_errno(errp, errno, "cannot map '%s'", file);
        return false;
    }
    madvise(map, len, MADV_SEQUENTIAL | MADV_WILLNEED);
    bool ok = inspect_stream(map, len, o, report, errp);
    munmap(map, len);
    return ok;
}

static void print_findings(FILE *out, json_t *findings)
{
    size_t i;
    json_t *f;
    json_array_foreach(findings, i, f)
    {
        /* Paths and messages hold names from the stream. */
        fprintf(out, "%s: %s: %s\n",
                json_string_value(json_object_get(f, "severity")),
                PRINTABLE(json_string_value(json_object_get(f, "path"))),
                PRINTABLE(json_string_value(json_object_get(f, "message"))));
    }
}

static int verify_line(const char *file, json_t *report)
{
    json_t *ram = json_object_get(report, "ram");
    json_t *devices = json_object_get(report, "devices");
    size_t decoded = 0, i;
    json_t *d;
    json_array_foreach(devices, i, d)
    {
        decoded += strcmp(json_string_value(json_object_get(d, "decoded_by")),
                          "none") != 0;
    }
    printf("%s: ok: stream complete, %zu records, %zu device sections "
           "(%zu checked field by field%s), %zu RAM blocks\n",
           file, json_array_size(json_object_get(report, "records")),
           json_array_size(devices), decoded,
           json_is_object(json_object_get(report, "vmdesc")) ? ""
                                                             : ", no vmdesc",
           json_array_size(json_object_get(ram, "blocks")));
    return EXIT_OK;
}

int cmd_inspect(int argc, char **argv)
{
    const struct cli_command *self = cli_find_command("inspect");
    struct inspect_cmd a = { 0 };
    int rc = parse_args(self, argc, argv, &a);
    if (rc != EXIT_OK) {
        free(a.section);
        return rc;
    }
    a.o.verify = a.verify;
    Error *err = NULL;
    json_t *schema = NULL;
    if (a.against && !(schema = vmcheck_load_schema(a.against, &err))) {
        fprintf(stderr, "hop inspect: %s\n", error_get_pretty(err));
        error_free(err);
        free(a.section);
        return EXIT_FAIL;
    }
    split_image_tag(&a);
    if (!a.snapshot && is_qcow2(a.image)) {
        if (a.verify || a.against || a.o.section || a.o.extract_dir) {
            fprintf(stderr,
                    "hop inspect: %s is a qcow2 image: name a "
                    "snapshot (IMAGE@TAG or --snapshot TAG)\n",
                    a.image);
            rc = EXIT_USAGE;
        } else {
            rc = list_image(a.image, a.json, a.force_share);
        }
        free(a.image);
        free(a.section);
        json_decref(schema);
        return rc;
    }
    json_t *report = NULL;
    bool ok = a.snapshot ? inspect_snapshot(a.image, a.snapshot, a.force_share,
                                            &a.o, &report, &err)
                         : run_inspect(a.file, &a.o, &report, &err);
    if (!ok) {
        if (!a.json && !a.verify && report &&
            json_array_size(json_object_get(report, "records")) > 0) {
            inspect_print(stdout, report, &a.o, true, false);
            fflush(stdout);
        }
        fprintf(stderr, "hop inspect: %s: %s\n", a.file, error_get_pretty(err));
        error_free(err);
        rc = EXIT_FAIL;
    } else if (a.o.section &&
               json_array_size(json_object_get(report, "records")) == 0) {
        fprintf(stderr, "hop inspect: %s: no section '%s' in the stream\n",
                a.file, a.o.section);
        rc = EXIT_FAIL;
    } else if (a.verify) {
        rc = verify_line(a.file, report);
    } else {
        json_t *findings = schema ? inspect_against(report, schema) : NULL;
        size_t nerr = vmcheck_count_errors(findings);
        if (a.json) {
            if (findings) {
                json_t *ag = json_object();
                json_object_set_new(ag, "schema", json_string(a.against));
                json_object_set_new(ag, "loads", json_boolean(nerr == 0));
                json_object_set(ag, "findings", findings);
                json_object_set_new(report, "against", ag);
            }
            json_dumpf(report, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            fputc('\n', stdout);
        } else {
            inspect_print(stdout, report, &a.o, !a.fields_only, true);
            if (findings) {
                printf("\nAgainst %s:\n", a.against);
                print_findings(stdout, findings);
                printf("%s\n", nerr ? "would not load" : "would load");
            }
        }
        json_decref(findings);
        rc = nerr ? EXIT_FAIL : EXIT_OK;
    }
    json_decref(report);
    json_decref(schema);
    free(a.section);
    free(a.image);
    return rc;
}
