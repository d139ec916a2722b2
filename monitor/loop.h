/* The monitor loop: the main thread of `hop run` waits here on the
 * terminal, the monitor and QMP sockets and the session's event pipe,
 * until someone asks to quit. */
#ifndef HOP_MONITOR_LOOP_H
#define HOP_MONITOR_LOOP_H

#include <stdbool.h>

#include "monitor/endpoint.h"
#include "util/error.h"

struct vm_session;
struct mon_loop;

/* Opens the endpoints; with `wait` (no nowait) blocks until the first
 * client of each socket connects, as QEMU does. */
struct mon_loop *mon_loop_new(struct vm_session *s, const struct endpoint *hmp,
                              const struct endpoint *qmp, Error **errp);
/* Runs until the session's quit flag is set (quit, Ctrl-D, SIGTERM). */
void mon_loop_run(struct mon_loop *l);
/* Closes clients and removes the socket files. */
void mon_loop_free(struct mon_loop *l);
/* Shows text on the terminal monitor (if any) without breaking its
 * prompt; otherwise on stdout. */
void mon_loop_print(struct mon_loop *l, const char *text);

/* True (once) if Ctrl-C arrived since the last call: for commands that
 * wait, like migrate without -d. */
bool mon_loop_take_interrupt(void);

#endif
