/* A client of a running hop's monitor socket: send one command line,
 * collect what it printed up to the next prompt. */
#ifndef HOP_CLI_HMP_CLIENT_H
#define HOP_CLI_HMP_CLIENT_H

#include <stdbool.h>

#include "util/error.h"

/* endpoint: "unix:PATH" (or a bare PATH).  *output (caller frees) holds
 * the command's output; false if the monitor could not be reached or
 * hung up before the answer ended. */
bool hmp_client_run(const char *endpoint, const char *line, char **output,
                    Error **errp);

#endif
