/* A QMP client of a running hop, for commands that act on it: connect to
 * its QMP socket, or to its monitor socket (which turns to QMP when the
 * client's first line is JSON), negotiate, run commands. */
#ifndef HOP_CLI_QMP_CLIENT_H
#define HOP_CLI_QMP_CLIENT_H

#include "util/error.h"

typedef struct json_t json_t;
struct qmp_conn;

/* endpoint: "unix:PATH" (or a bare PATH; ",server,nowait" and the like
 * are ignored), the -qmp or the -monitor socket. */
struct qmp_conn *qmp_conn_open(const char *endpoint, Error **errp);
/* Runs one command (args may be NULL; taken over).  Returns its "return"
 * value, or NULL with the error's description in errp. */
json_t *qmp_conn_execute(struct qmp_conn *c, const char *cmd, json_t *args,
                         Error **errp);
void qmp_conn_close(struct qmp_conn *c);

#endif
