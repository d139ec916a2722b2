/* QMP: the JSON protocol QEMU's management tools speak, over a socket.
 * A client gets a greeting, must negotiate with qmp_capabilities, then
 * sends {"execute": NAME, "arguments": {...}, "id": ...} and receives
 * {"return": ...} or {"error": {"class": ..., "desc": ...}}, plus
 * asynchronous {"event": ...} messages. */
#ifndef HOP_MONITOR_QMP_H
#define HOP_MONITOR_QMP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/events.h"
#include "util/error.h"

typedef struct json_t json_t;
struct vm_session;
struct qmp_client;

/* A command's arguments are described as an event's data is (struct
 * qmp_arg, core/events.h). */

/* Returns the "return" value (new reference) or NULL with errp set. */
typedef json_t *(*qmp_fn)(struct vm_session *s, json_t *args, Error **errp);

struct qmp_cmd {
    const char *name;
    qmp_fn fn;
    const struct qmp_arg *args; /* ends with name NULL; NULL = none */
    /* What it returns, as a schema type name: "[T]" is an array of T;
     * NULL is the empty object. */
    const char *ret;
    /* For QMP_ANY_ARGS: the object type describing the arguments. */
    const char *arg_type;
};

/* For commands that check their own arguments. */
extern const struct qmp_arg qmp_any_args[];
#define QMP_ANY_ARGS qmp_any_args

/* The command table (monitor/qmp-table.c), ending with name NULL.
 * qmp_capabilities is there to be described; the protocol runs it. */
extern const struct qmp_cmd qmp_commands[];
/* The commands a session's clients may run. */
const struct qmp_cmd *qmp_table_of(const struct vm_session *s);

/* A named type of the schema: an object with members, or an enum (a
 * string with fixed values).  Members or values may come from another
 * table instead: `member(i, &arg)` / `value(i)` give the i-th one, and
 * false / NULL past the end. */
enum qmp_schema_kind { QMP_SCHEMA_OBJECT, QMP_SCHEMA_ENUM };

struct qmp_schema_type {
    const char *name;
    enum qmp_schema_kind kind;
    const struct qmp_arg *members; /* objects; ends with name NULL */
    bool (*member)(size_t i, struct qmp_arg *out);
    const char *const *values; /* enums; ends with NULL */
    const char *(*value)(size_t i);
};
extern const struct qmp_schema_type qmp_schema_types[];

/* The schema of the commands in table and of qmp_events, as
 * query-qmp-schema returns it (a list of SchemaInfo objects).  Fails
 * naming the first type that no entry defines. */
json_t *qmp_schema(const struct qmp_cmd *table, Error **errp);
/* The schema type name of an argument: "str", "[str]", "RunState"... */
void qmp_arg_type_name(const struct qmp_arg *a, char *buf, size_t len);

/* A client on a connected socket.  Nothing here blocks: answers and
 * events wait in the client's output queue (monitor/outq.h) until the
 * socket takes them, and requests wait while too many answers do. */
struct qmp_client *qmp_client_new(struct vm_session *s, int fd);
/* Sends the greeting. */
void qmp_client_start(struct qmp_client *c);
/* Input another reader took from the socket before it was known to be
 * QMP (a monitor client upgrading), and whether that reader saw the end
 * of it; answers what is complete.  False if it does not fit. */
bool qmp_client_take_input(struct qmp_client *c, const char *data, size_t len,
                           bool eof);
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
void qmp_client_send_event(struct qmp_client *c, const char *name, json_t *data,
                           long long sec, long long usec);

/* Run one request object and return the response object (for tests and
 * in-process callers).  Takes no ownership of req. */
json_t *qmp_dispatch(struct vm_session *s, json_t *req, bool negotiated,
                     bool *negotiate_now);

#endif
