/* QMP: the JSON protocol QEMU's management tools speak, over a socket.
 * A client gets a greeting, must negotiate with qmp_capabilities, then
 * sends {"execute": NAME, "arguments": {...}, "id": ...} and receives
 * {"return": ...} or {"error": {"class": ..., "desc": ...}}, plus
 * asynchronous {"event": ...} messages. */
#ifndef HOP_MONITOR_QMP_H
#define HOP_MONITOR_QMP_H

#include <stdbool.h>

#include "util/error.h"

typedef struct json_t json_t;
struct vm_session;
struct qmp_client;

/* A QMP command argument: name, JSON type, optional. */
enum qmp_type { QMP_STR, QMP_INT, QMP_BOOL, QMP_OBJ, QMP_ARRAY, QMP_NUM };

struct qmp_arg {
    const char *name;
    enum qmp_type type;
    bool optional;
};

/* Returns the "return" value (new reference) or NULL with errp set. */
typedef json_t *(*qmp_fn)(struct vm_session *s, json_t *args, Error **errp);

struct qmp_cmd {
    const char *name;
    qmp_fn fn;
    const struct qmp_arg *args;    /* ends with name NULL; NULL = none */
};

/* For commands that check their own arguments. */
extern const struct qmp_arg qmp_any_args[];
#define QMP_ANY_ARGS qmp_any_args

/* The command table (monitor/qmp-table.c), ending with name NULL. */
extern const struct qmp_cmd qmp_commands[];

/* A client on a connected socket.  Nothing here blocks: answers and
 * events wait in the client's output queue (monitor/outq.h) until the
 * socket takes them, and requests wait while too many answers do. */
struct qmp_client *qmp_client_new(struct vm_session *s, int fd);
/* Sends the greeting. */
void qmp_client_start(struct qmp_client *c);
/* What to poll the client's descriptor for (POLLIN, POLLOUT). */
short qmp_client_poll_events(const struct qmp_client *c);
/* After poll: sends what waits, reads what arrived, answers complete
 * requests. */
void qmp_client_ready(struct qmp_client *c, short revents);
/* Sends what the socket takes now; true if nothing is left waiting. */
bool qmp_client_flush(struct qmp_client *c);
/* True once the client is to be freed: it went away, was dropped for
 * leaving too much unread, or sent its last request and has every
 * answer. */
bool qmp_client_gone(const struct qmp_client *c);
void qmp_client_free(struct qmp_client *c);
int qmp_client_fd(const struct qmp_client *c);
void qmp_client_send_event(struct qmp_client *c, const char *name,
                           json_t *data, long long sec, long long usec);

/* Run one request object and return the response object (for tests and
 * in-process callers).  Takes no ownership of req. */
json_t *qmp_dispatch(struct vm_session *s, json_t *req, bool negotiated,
                     bool *negotiate_now);

#endif
