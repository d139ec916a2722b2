/* The command line's tables document themselves: every option of every
 * command and subcommand is taken by the parser, shown by `hop COMMAND
 * --help`, offered by `hop complete` and listed in hop(1), and the
 * committed man/hop.1 is the page the tables generate.  Options other
 * people add are covered as they appear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "text-file.h"
#include "cli/cli.h"

static char *capture(void (*print)(FILE *, const void *), const void *arg)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    print(f, arg);
    fclose(f);
    return out;
}

static void print_help(FILE *f, const void *cmd)
{
    cli_print_command_help(f, cmd);
}

static void print_page(FILE *f, const void *unused)
{
    cli_print_man_page(f);
}

/* What `hop complete -- hop WORDS... -` prints: the options offered
 * after the words.  cmd_complete writes to stdout; a temporary file
 * stands in for it. */
static char *complete_options(const char *cmd, const char *sub)
{
    char *argv[] = {
        strdup("complete"),      strdup("--"), strdup("hop"), strdup(cmd),
        strdup(sub ? sub : "-"), strdup("-"),  NULL
    };
    int argc = sub ? 6 : 5;
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDOUT_FILENO) >= 0);
    int rc = cmd_complete(argc, argv);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    for (int i = 0; i < 6; i++) {
        free(argv[i]);
    }
    assert_int_equal(rc, EXIT_OK);
    long len = ftell(tmp);
    assert_true(len >= 0);
    /* A leading newline: every candidate is "\nNAME\n". */
    char *out = calloc(1, (size_t)len + 2);
    assert_non_null(out);
    out[0] = '\n';
    rewind(tmp);
    assert_int_equal(fread(out + 1, 1, (size_t)len, tmp), (size_t)len);
    fclose(tmp);
    return out;
}

/* name occurs in text as a word of its own: not inside a longer option
 * (-l in -loadvm) or a word (-U in -USB). */
static bool has_word(const char *text, const char *name, const char *after)
{
    size_t n = strlen(name);
    for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
        bool start = p == text || strchr(" [|(\n\t", p[-1]);
        if (start && (p[n] == '\0' || strchr(after, p[n]))) {
            return true;
        }
    }
    return false;
}

static bool in_page(const char *page, const char *name)
{
    char esc[128];
    text_roff_escape(name, esc, sizeof(esc));
    size_t n = strlen(esc);
    for (const char *p = strstr(page, esc); p; p = strstr(p + 1, esc)) {
        /* Followed by a blank, a font change, a quote, a comma, '=' or
         * the end of the line: not a prefix of a longer name. */
        if (strchr(" \\\",=\n", p[n])) {
            return true;
        }
    }
    return false;
}

static void check_option(const struct cli_command *cmd,
                         const struct cli_command *sub,
                         const struct cli_option *o, const char *help,
                         const char *completion, const char *page)
{
    const char *where = sub ? sub->name : cmd->name;
    const char *names[2] = { o->name, o->alias };
    for (int k = 0; k < 2 && names[k]; k++) {
        const char *name = names[k];
        if (strcmp(name, "--help") == 0) {
            continue; /* cli_main's, before any command runs */
        }
        char line[128];
        snprintf(line, sizeof(line), "\n%s\n", name);
        if (!strstr(completion, line)) {
            fail_msg("hop %s: option '%s' is not offered by `hop complete`",
                     where, name);
        }
        if (!has_word(help, name, " ]|,=)\n")) {
            fail_msg("hop %s: option '%s' is not in `hop %s --help`", where,
                     name, cmd->name);
        }
        if (!in_page(page, name)) {
            fail_msg("hop %s: option '%s' is not in hop(1)", where, name);
        }
    }
    /* The parser can act on it. */
    if (strcmp(o->name, "--help") != 0) {
        assert_true(o->store != CLI_STORE_NONE);
        assert_true(o->store != CLI_STORE_CALL || o->handle);
    }
}

static void check_table(const struct cli_command *cmd,
                        const struct cli_command *sub, const char *help,
                        const char *page)
{
    const struct cli_option *opts = sub ? sub->options : cmd->options;
    char *completion = complete_options(cmd->name, sub ? sub->name : NULL);
    for (const struct cli_option *o = opts; o && o->name; o++) {
        check_option(cmd, sub, o, help, completion, page);
    }
    free(completion);
}

static void test_every_option_is_documented_and_offered(void **state)
{
    char *page = capture(print_page, NULL);
    size_t noptions = 0;
    for (const struct cli_command *c = cli_commands; c->name; c++) {
        if (!c->summary) {
            continue; /* hidden commands have no page entry */
        }
        char *help = capture(print_help, c);
        check_table(c, NULL, help, page);
        for (const struct cli_option *o = c->options; o && o->name; o++) {
            noptions++;
        }
        for (const struct cli_command *s = c->subcommands; s && s->name; s++) {
            check_table(c, s, help, page);
            for (const struct cli_option *o = s->options; o && o->name; o++) {
                noptions++;
            }
        }
        free(help);
    }
    /* The walk saw the tables (hop run alone has 16 options). */
    assert_true(noptions > 40);
    free(page);
}

/* A made-up option of a made-up command reaches --help and the usage
 * line: the printers read the table, not a copy of it. */
static void test_help_comes_from_the_table(void **state)
{
    const struct cli_option opts[] = { { .name = "-frob",
                                         .arg = CLI_ARG_TEXT,
                                         .metavar = "LEVEL",
                                         .store = CLI_STORE_STRING,
                                         .help = "how much to frob" },
                                       { .name = "-q",
                                         .alias = "--quiet",
                                         .arg = CLI_ARG_NONE,
                                         .store = CLI_STORE_FLAG,
                                         .help = "say less" },
                                       { NULL } };
    const struct cli_command cmd = { .name = "frob",
                                     .options = opts,
                                     .operand_usage = "FILE" };
    char *help = capture(print_help, &cmd);
    assert_non_null(strstr(help, "Usage: hop frob [-frob LEVEL] [-q] FILE\n"));
    assert_non_null(strstr(help, "  -frob LEVEL      how much to frob\n"));
    assert_non_null(strstr(help, "  -q, --quiet      say less\n"));
    free(help);
}

struct parsed {
    const char *level;
    bool quiet;
    const char *file;
};

static int take_file(const struct cli_command *cmd, void *target,
                     const char *word)
{
    ((struct parsed *)target)->file = word;
    return -1;
}

/* The parser stores what the entries say, under either name. */
static void test_parser_follows_the_table(void **state)
{
    const struct cli_option opts[] = {
        { .name = "-frob",
          .arg = CLI_ARG_TEXT,
          .store = CLI_STORE_STRING,
          .field = offsetof(struct parsed, level) },
        { .name = "-q",
          .alias = "--quiet",
          .arg = CLI_ARG_NONE,
          .store = CLI_STORE_FLAG,
          .field = offsetof(struct parsed, quiet) },
        { NULL }
    };
    const struct cli_command cmd = { .name = "frob", .options = opts };
    struct parsed out = { NULL, false, NULL };
    const struct cli_parser p = {
        .cmd = &cmd,
        .tables = (const struct cli_option *const[]){ opts, NULL },
        .target = &out,
        .qemu_dashes = true,
        .operand = take_file,
    };
    char *argv[] = { (char[]){ "frob" },    (char[]){ "--frob" },
                     (char[]){ "3" },       (char[]){ "x.img" },
                     (char[]){ "--quiet" }, NULL };
    assert_int_equal(cli_parse_options(&p, 5, argv, 1), -1);
    assert_string_equal(out.level, "3");
    assert_true(out.quiet);
    assert_string_equal(out.file, "x.img");
}

/* The first control character in text other than a newline (a roff
 * escape written as "\fI" in C is a form feed), or NULL. */
static const char *control_char(const char *text)
{
    for (const char *p = text; *p; p++) {
        if ((unsigned char)*p < 0x20 && *p != '\n') {
            return p;
        }
    }
    return NULL;
}

static void no_control_chars(const char *what, const char *text)
{
    const char *bad = control_char(text);
    if (bad) {
        const char *line = bad;
        while (line > text && line[-1] != '\n') {
            line--;
        }
        const char *end = strchr(bad, '\n');
        fail_msg("%s: byte 0x%02x at offset %td, in the line \"%.*s\"", what,
                 (unsigned char)*bad, bad - text,
                 (int)((end ? end : bad + strlen(bad)) - line), line);
    }
}

/* What the tables print is text: the man page and every --help. */
static void test_texts_have_no_control_characters(void **state)
{
    char *page = capture(print_page, NULL);
    no_control_chars("hop(1)", page);
    free(page);
    for (const struct cli_command *c = cli_commands; c->name; c++) {
        char *help = capture(print_help, c);
        no_control_chars(c->name, help);
        free(help);
    }
}

/* man/hop.1 is what the tables generate: run `make man` after changing
 * a table. */
static void test_committed_page_is_up_to_date(void **state)
{
    const char *dir = getenv("HOP_BUILD_DIR");
    char path[4096];
    char *committed = text_file_read("man/hop.1");
    if (!committed && dir) {
        snprintf(path, sizeof(path), "%s/../man/hop.1", dir);
        committed = text_file_read(path);
    }
    if (!committed) {
        fail_msg("man/hop.1 not found (run from the source tree)");
    }
    char *page = capture(print_page, NULL);
    if (strcmp(page, committed) != 0) {
        fail_msg("man/hop.1 differs from what the command tables generate; "
                 "run `make man`");
    }
    free(page);
    free(committed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_option_is_documented_and_offered),
        cmocka_unit_test(test_help_comes_from_the_table),
        cmocka_unit_test(test_parser_follows_the_table),
        cmocka_unit_test(test_committed_page_is_up_to_date),
        cmocka_unit_test(test_texts_have_no_control_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
