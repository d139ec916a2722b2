/* The monitor on the terminal: readline with the `(hop) ` prompt,
 * history and completion when stdin is a terminal; plain line reading
 * (no prompt, no echo) when it is a pipe or file, so a script can be fed
 * to hop.  Ctrl-C clears the line; Ctrl-D quits. */
#ifndef HOP_MONITOR_TERM_H
#define HOP_MONITOR_TERM_H

#include <stdbool.h>

struct vm_session;
struct term;

struct term *term_new(struct vm_session *s);
bool term_interactive(const struct term *t);
/* Input is waiting on stdin; false at end of input. */
bool term_readable(struct term *t);
/* SIGINT arrived (from the loop's signal pipe). */
void term_interrupt(struct term *t);
/* Print text from another source (events, serial) without mangling the
 * prompt line. */
void term_print_async(struct term *t, const char *text);
/* Hands the terminal back as readline found it, and takes it again
 * (cpr-exec; both do nothing for NULL or a non-interactive monitor). */
void term_suspend(struct term *t);
void term_resume(struct term *t);
void term_free(struct term *t);

/* Where history is kept: $XDG_STATE_HOME/hop/history or
 * ~/.local/state/hop/history (directories created).  Caller frees. */
char *term_history_path(void);
/* The session's command history, oldest first (for `info history`). */
int term_history_count(void);
const char *term_history_get(int i);
void term_history_add(const char *line);

#endif
