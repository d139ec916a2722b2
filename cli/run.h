/* `hop run`: option parsing (cmd-run.c) and the small stdin command loop
 * that drives the machine until the monitor replaces it (run-loop.c). */
#ifndef HOP_CLI_RUN_H
#define HOP_CLI_RUN_H

#include <stdio.h>

#include "machine/machine.h"

/* Reads commands from in_fd (stop, cont, quit, info status, help) and
 * answers on out until quit, a guest shutdown (event_fd readable with
 * a shutdown event) or a terminating signal.  Returns the exit code. */
int run_loop(struct machine *m, int in_fd, FILE *out, int event_fd);
/* Runs one command line; returns 1 to quit, 0 otherwise. */
int run_loop_command(struct machine *m, const char *line, FILE *out);

/* Event bytes written to the event pipe. */
enum { RUN_EVENT_SHUTDOWN = 'S', RUN_EVENT_ERROR = 'E',
       RUN_EVENT_SIGNAL = 'T' };

#endif
