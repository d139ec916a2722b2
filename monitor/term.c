/* Terminal front end of the monitor. */
#include "monitor/term.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "core/session.h"
#include "monitor/complete.h"
#include "monitor/monitor.h"
#include "util/alloc.h"
#include "util/io.h"

#define HISTORY_MAX 1000
#define PROMPT "(hop) "

struct term {
    struct vm_session *s;
    struct monitor *mon;
    bool interactive;
    char *history_path;
    /* line mode */
    char *buf;
    size_t len, cap;
    bool eof;
};

/* readline's callback has no user pointer: one terminal per process. */
static struct term *the_term;

char *term_history_path(void)
{
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char dir[4096];
    if (state && *state) {
        snprintf(dir, sizeof(dir), "%s/hop", state);
    } else if (home && *home) {
        snprintf(dir, sizeof(dir), "%s/.local/state/hop", home);
    } else {
        return NULL;
    }
    if (!mkdir_p(dir, 0700, NULL)) {
        return NULL;
    }
    return xasprintf("%s/history", dir);
}

int term_history_count(void)
{
    return history_length;
}

const char *term_history_get(int i)
{
    HIST_ENTRY *e = history_get(history_base + i);
    return e ? e->line : NULL;
}

void term_history_add(const char *line)
{
    const char *p = line;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (!*p) {
        return;
    }
    HIST_ENTRY *last =
        history_length ? history_get(history_base + history_length - 1) : NULL;
    if (last && strcmp(last->line, line) == 0) {
        return; /* repeated commands are kept once */
    }
    add_history(line);
    if (the_term && the_term->history_path) {
        append_history(1, the_term->history_path);
    }
}

static void run_line(struct term *t, const char *line)
{
    term_history_add(line);
    monitor_execute(t->mon, line);
    fflush(stdout);
}

static void on_rl_line(char *line)
{
    struct term *t = the_term;
    if (!line) {
        /* Ctrl-D */
        t->eof = true;
        printf("\n");
        rl_callback_handler_remove();
        session_request_quit(t->s);
        return;
    }
    run_line(t, line);
    free(line);
    if (session_quit_requested(t->s)) {
        rl_callback_handler_remove();
    }
}

/* ---- completion glue ---- */

static char **matches;
static size_t nmatches, match_cap;

static void collect(const char *word, void *ctx)
{
    if (nmatches + 1 >= match_cap) {
        match_cap = match_cap ? match_cap * 2 : 32;
        matches = xreallocarray(matches, match_cap, sizeof(*matches));
    }
    matches[nmatches++] = xstrdup(word);
}

static char *next_match(const char *text, int state)
{
    static size_t i;
    if (state == 0) {
        i = 0;
    }
    return i < nmatches ? xstrdup(matches[i++]) : NULL;
}

static char **attempt_completion(const char *text, int start, int end)
{
    for (size_t i = 0; i < nmatches; i++) {
        free(matches[i]);
    }
    nmatches = 0;
    char *upto = xstrndup(rl_line_buffer, (size_t)rl_point);
    bool files = hmp_complete(the_term->s, upto, collect, NULL);
    free(upto);
    rl_attempted_completion_over = !files;
    if (files && nmatches == 0) {
        return NULL; /* readline's own file name completion */
    }
    /* A directory or a "file:" prefix is not a finished word. */
    if (nmatches == 1) {
        size_t len = strlen(matches[0]);
        if (len && strchr("/:=", matches[0][len - 1])) {
            rl_completion_append_character = '\0';
        }
    }
    return rl_completion_matches(text, next_match);
}

/* readline puts the terminal back in cooked mode while a line's command
 * runs; keys typed meanwhile would be echoed by the kernel and a Ctrl-D
 * lost.  The terminal stays prepared until hop leaves (term_free). */
static void keep_terminal_prepared(void)
{
}

struct term *term_new(struct vm_session *s)
{
    struct term *t = xcalloc(1, sizeof(*t));
    t->s = s;
    t->mon = monitor_new(s, stdout);
    t->interactive = isatty(STDIN_FILENO);
    the_term = t;
    using_history();
    stifle_history(HISTORY_MAX);
    if (t->interactive) {
        t->history_path = term_history_path();
        if (t->history_path) {
            /* append_history() only appends to an existing file. */
            int fd = open(t->history_path,
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            if (fd >= 0) {
                close(fd);
            }
            read_history(t->history_path);
        }
        rl_readline_name = "hop";
        rl_catch_signals = 0;
        rl_attempted_completion_function = attempt_completion;
        rl_completer_word_break_characters = " \t";
        rl_deprep_term_function = keep_terminal_prepared;
        printf("hop %s monitor - type 'help' for more information\n",
               HOP_VERSION);
        rl_callback_handler_install(PROMPT, on_rl_line);
    }
    return t;
}

bool term_interactive(const struct term *t)
{
    return t->interactive;
}

static bool read_lines(struct term *t)
{
    if (t->cap - t->len < 4096) {
        t->cap = t->cap ? t->cap * 2 : 8192;
        t->buf = xrealloc(t->buf, t->cap);
    }
    ssize_t n = read(STDIN_FILENO, t->buf + t->len, t->cap - t->len - 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return true;
    }
    if (n <= 0) {
        /* A last line without a newline still counts. */
        if (t->len) {
            t->buf[t->len] = '\0';
            t->len = 0;
            run_line(t, t->buf);
        }
        t->eof = true;
        return false;
    }
    t->len += (size_t)n;
    size_t off = 0;
    char *nl;
    while (!session_quit_requested(t->s) &&
           (nl = memchr(t->buf + off, '\n', t->len - off)) != NULL) {
        *nl = '\0';
        run_line(t, t->buf + off);
        off = (size_t)(nl - t->buf) + 1;
    }
    memmove(t->buf, t->buf + off, t->len - off);
    t->len -= off;
    return true;
}

bool term_readable(struct term *t)
{
    if (t->eof) {
        return false;
    }
    if (!t->interactive) {
        return read_lines(t);
    }
    rl_callback_read_char();
    return !t->eof;
}

void term_interrupt(struct term *t)
{
    if (!t->interactive || t->eof) {
        return;
    }
    /* Ctrl-C: drop what was typed, show a fresh prompt. */
    printf("^C\n");
    rl_replace_line("", 0);
    rl_on_new_line();
    rl_redisplay();
}

void term_print_async(struct term *t, const char *text)
{
    if (!t->interactive || t->eof) {
        fputs(text, stdout);
        fflush(stdout);
        return;
    }
    int point = rl_point;
    char *saved = rl_copy_text(0, rl_end);
    rl_save_prompt();
    rl_replace_line("", 0);
    rl_redisplay();
    fputs(text, stdout);
    rl_restore_prompt();
    rl_replace_line(saved, 0);
    rl_point = point;
    rl_redisplay();
    free(saved);
}

void term_suspend(struct term *t)
{
    if (t && t->interactive) {
        rl_deprep_terminal();
    }
}

void term_resume(struct term *t)
{
    if (t && t->interactive) {
        rl_prep_terminal(1);
        rl_forced_update_display();
    }
}

void term_free(struct term *t)
{
    if (!t) {
        return;
    }
    if (t->interactive) {
        if (!t->eof) {
            rl_callback_handler_remove();
        }
        rl_deprep_terminal();
        if (t->history_path) {
            history_truncate_file(t->history_path, HISTORY_MAX);
        }
    }
    monitor_free(t->mon);
    free(t->history_path);
    free(t->buf);
    if (the_term == t) {
        the_term = NULL;
    }
    free(t);
}
