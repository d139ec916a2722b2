/* QMP protocol: framing, negotiation, dispatch through the command table,
 * argument checking and error objects. */
#include "monitor/qmp.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/session.h"
#include "monitor/outq.h"
#include "util/alloc.h"

/* Bounds on one incoming message.  QEMU's JSON parser has the same
 * nesting limit; its size limit is larger, but no request needs 1 MiB. */
#define QMP_MAX_REQUEST (1u << 20)
#define QMP_MAX_DEPTH 1024

/* What the start of the input buffer holds. */
enum qmp_scan {
    SCAN_START, /* nothing yet, or white space */
    SCAN_VALUE, /* a JSON object or array */
    SCAN_JUNK,  /* anything else, up to the end of its line */
};

struct qmp_client {
    struct vm_session *s;
    int fd;
    bool negotiated;
    bool eof;  /* the client will send no more */
    bool dead; /* to be dropped */
    struct outq out;
    char *buf; /* received, not yet answered */
    size_t len, cap;
    /* The message at buf[0]: how far it was scanned and what was seen.
     * A message found too long or too deep is answered with an error at
     * once and then skipped (not kept) up to its end. */
    enum qmp_scan scan;
    size_t scanned;
    long depth;
    bool in_str, esc, skip;
};

const struct qmp_arg qmp_any_args[] = { { "*", QMP_OBJ, true }, { NULL } };

static json_t *error_response(const char *cls, const char *desc, json_t *id)
{
    json_t *r = json_pack("{s:{s:s,s:s}}", "error", "class", cls, "desc", desc);
    if (id) {
        json_object_set(r, "id", id);
    }
    return r;
}

static const char *type_name(enum qmp_type t)
{
    switch (t) {
    case QMP_STR:
        return "string";
    case QMP_INT:
        return "integer";
    case QMP_BOOL:
        return "boolean";
    case QMP_OBJ:
        return "object";
    case QMP_ARRAY:
        return "array";
    case QMP_NUM:
        return "number";
    }
    return "?";
}

static bool type_ok(enum qmp_type t, json_t *v)
{
    switch (t) {
    case QMP_STR:
        return json_is_string(v);
    case QMP_INT:
        return json_is_integer(v);
    case QMP_BOOL:
        return json_is_boolean(v);
    case QMP_OBJ:
        return json_is_object(v);
    case QMP_ARRAY:
        return json_is_array(v);
    case QMP_NUM:
        return json_is_number(v);
    }
    return false;
}

/* Every argument known, of the right type; every required one there. */
static bool check_args(const struct qmp_cmd *cmd, json_t *args, Error **errp)
{
    if (cmd->args == qmp_any_args) {
        return true;
    }
    const char *key;
    json_t *v;
    json_object_foreach(args, key, v)
    {
        const struct qmp_arg *a = cmd->args;
        while (a && a->name && strcmp(a->name, key) != 0) {
            a++;
        }
        if (!a || !a->name) {
            error_setg(errp, "Parameter '%s' is unexpected", key);
            return false;
        }
        if (!type_ok(a->type, v)) {
            error_setg(errp, "Invalid parameter type for '%s', expected: %s",
                       key, type_name(a->type));
            return false;
        }
    }
    for (const struct qmp_arg *a = cmd->args; a && a->name; a++) {
        if (!a->optional && !json_object_get(args, a->name)) {
            error_setg(errp, "Parameter '%s' is missing", a->name);
            return false;
        }
    }
    return true;
}

const struct qmp_cmd *qmp_table_of(const struct vm_session *s)
{
    const struct qmp_cmd *t = session_qmp_table(s);
    return t ? t : qmp_commands;
}

json_t *qmp_dispatch(struct vm_session *s, json_t *req, bool negotiated,
                     bool *negotiate_now)
{
    *negotiate_now = false;
    if (!json_is_object(req)) {
        return error_response("GenericError", "QMP input must be a JSON object",
                              NULL);
    }
    json_t *id = json_object_get(req, "id");
    json_t *exec = json_object_get(req, "execute");
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v)
    {
        if (strcmp(key, "execute") && strcmp(key, "arguments") &&
            strcmp(key, "id")) {
            char desc[160];
            snprintf(desc, sizeof(desc), "QMP input member '%s' is unexpected",
                     key);
            return error_response("GenericError", desc, id);
        }
    }
    if (!json_is_string(exec)) {
        return error_response(
            "GenericError",
            exec ? "QMP input member 'execute' must be a string"
                 : "QMP input lacks member 'execute'",
            id);
    }
    json_t *args = json_object_get(req, "arguments");
    if (args && !json_is_object(args)) {
        return error_response("GenericError",
                              "QMP input member 'arguments' must be an object",
                              id);
    }
    const char *name = json_string_value(exec);
    if (strcmp(name, "qmp_capabilities") == 0) {
        if (negotiated) {
            return error_response("CommandNotFound",
                                  "Capabilities negotiation "
                                  "is already complete, command ignored",
                                  id);
        }
        *negotiate_now = true;
        json_t *r = json_pack("{s:{}}", "return");
        if (id) {
            json_object_set(r, "id", id);
        }
        return r;
    }
    if (!negotiated) {
        return error_response("CommandNotFound",
                              "Expecting capabilities "
                              "negotiation with 'qmp_capabilities'",
                              id);
    }
    const struct qmp_cmd *cmd = qmp_table_of(s);
    while (cmd->name && strcmp(cmd->name, name) != 0) {
        cmd++;
    }
    if (!cmd->name) {
        char desc[200];
        snprintf(desc, sizeof(desc), "The command %s has not been found", name);
        return error_response("CommandNotFound", desc, id);
    }
    json_t *empty = json_object();
    Error *err = NULL;
    json_t *ret = NULL;
    if (check_args(cmd, args ? args : empty, &err)) {
        ret = cmd->fn(s, args ? args : empty, &err);
    }
    json_decref(empty);
    json_t *r;
    if (err) {
        r = error_response("GenericError", error_get_pretty(err), id);
        error_free(err);
        json_decref(ret);
    } else {
        r = json_object();
        json_object_set_new(r, "return", ret ? ret : json_object());
        if (id) {
            json_object_set(r, "id", id);
        }
    }
    return r;
}

/* Queues a message.  An event for a client that has left more than
 * OUTQ_LIMIT unread drops the client rather than let hop's memory grow;
 * answers are bounded by flow control (see process()). */
static void send_msg(struct qmp_client *c, json_t *msg, bool event)
{
    if (c->dead) {
        return;
    }
    char *text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        return;
    }
    size_t len = strlen(text);
    if (event && outq_pending(&c->out) + len + 2 > OUTQ_LIMIT) {
        fprintf(stderr,
                "hop: dropping a QMP client that left more than "
                "%u MiB of output unread\n",
                OUTQ_LIMIT >> 20);
        c->dead = true;
    } else {
        /* QMP messages end with CRLF. */
        outq_write(&c->out, c->fd, text, len);
        outq_write(&c->out, c->fd, "\r\n", 2);
    }
    free(text);
}

static void send_json(struct qmp_client *c, json_t *msg)
{
    send_msg(c, msg, false);
}

struct qmp_client *qmp_client_new(struct vm_session *s, int fd)
{
    struct qmp_client *c = xcalloc(1, sizeof(*c));
    c->s = s;
    c->fd = fd;
    return c;
}

void qmp_client_start(struct qmp_client *c)
{
    json_t *g = json_pack("{s:{s:{s:{s:i,s:i,s:i},s:s},s:[]}}", "QMP",
                          "version", "qemu", "micro", 0, "minor", 1, "major", 0,
                          "package", "hop " HOP_VERSION, "capabilities");
    send_json(c, g);
    json_decref(g);
}

int qmp_client_fd(const struct qmp_client *c)
{
    return c->fd;
}

void qmp_client_send_event(struct qmp_client *c, const char *name, json_t *data,
                           long long sec, long long usec)
{
    if (!c->negotiated) {
        return;
    }
    json_t *e = json_pack("{s:s,s:O,s:{s:I,s:I}}", "event", name, "data", data,
                          "timestamp", "seconds", (json_int_t)sec,
                          "microseconds", (json_int_t)usec);
    send_msg(c, e, true);
    json_decref(e);
}

static void reply_parse_error(struct qmp_client *c, const char *what)
{
    char desc[300];
    snprintf(desc, sizeof(desc), "JSON parse error, %s", what);
    json_t *r = error_response("GenericError", desc, NULL);
    send_json(c, r);
    json_decref(r);
}

/* Follows the message at the start of buf from c->scanned on, balancing
 * brackets outside strings.  Returns its length once it is complete, 0
 * before; c->depth tells how deep it is. */
static size_t scan_value(struct qmp_client *c)
{
    for (size_t i = c->scanned; i < c->len; i++) {
        char ch = c->buf[i];
        if (c->in_str) {
            if (c->esc) {
                c->esc = false;
            } else if (ch == '\\') {
                c->esc = true;
            } else if (ch == '"') {
                c->in_str = false;
            }
            continue;
        }
        if (ch == '"') {
            c->in_str = true;
        } else if (ch == '{' || ch == '[') {
            c->depth++;
            if (c->depth > QMP_MAX_DEPTH && !c->skip) {
                char what[64];
                snprintf(what, sizeof(what), "nesting deeper than %d levels",
                         QMP_MAX_DEPTH);
                reply_parse_error(c, what);
                c->skip = true;
            }
        } else if (ch == '}' || ch == ']') {
            if (--c->depth <= 0) {
                return i + 1;
            }
        }
    }
    c->scanned = c->len;
    return 0;
}

/* Drops the first n bytes of the input. */
static void consume(struct qmp_client *c, size_t n)
{
    if (!n) {
        return;
    }
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->scanned = c->scanned > n ? c->scanned - n : 0;
}

static void answer(struct qmp_client *c, size_t n)
{
    json_error_t jerr;
    json_t *req = json_loadb(c->buf, n, JSON_DECODE_ANY, &jerr);
    if (!req) {
        reply_parse_error(c, jerr.text);
        return;
    }
    bool negotiate = false;
    json_t *r = qmp_dispatch(c->s, req, c->negotiated, &negotiate);
    if (negotiate) {
        c->negotiated = true;
    }
    send_json(c, r);
    json_decref(r);
    json_decref(req);
    session_flush_events(c->s);
}

/* Where the message at buf[0] ends (0: not yet). */
static size_t message_end(struct qmp_client *c)
{
    if (c->scan == SCAN_VALUE) {
        return scan_value(c);
    }
    /* Not JSON text at all: answered once per line. */
    const char *nl = memchr(c->buf + c->scanned, '\n', c->len - c->scanned);
    if (nl) {
        return (size_t)(nl - c->buf) + 1;
    }
    c->scanned = c->len;
    return 0;
}

/* Answers the complete requests in the buffer, as long as the client
 * reads the answers. */
static void process(struct qmp_client *c)
{
    while (!c->dead && !outq_full(&c->out)) {
        if (c->scan == SCAN_START) {
            size_t ws = 0;
            while (ws < c->len && memchr(" \t\r\n", c->buf[ws], 4)) {
                ws++;
            }
            consume(c, ws);
            if (!c->len) {
                return;
            }
            c->scan =
                c->buf[0] == '{' || c->buf[0] == '[' ? SCAN_VALUE : SCAN_JUNK;
            c->scanned = 0;
            c->depth = 0;
            c->in_str = c->esc = c->skip = false;
        }
        size_t n = message_end(c);
        if (!n) {
            if (!c->skip && c->len > QMP_MAX_REQUEST) {
                char what[64];
                snprintf(what, sizeof(what), "message longer than %u bytes",
                         QMP_MAX_REQUEST);
                reply_parse_error(
                    c, c->scan == SCAN_VALUE ? what : "expected a JSON object");
                c->skip = true;
            }
            if (c->skip) {
                consume(c, c->len);
            }
            return; /* wait for the rest */
        }
        if (!c->skip) {
            if (c->scan == SCAN_VALUE) {
                answer(c, n);
            } else {
                reply_parse_error(c, "expected a JSON object");
            }
        }
        consume(c, n);
        c->scan = SCAN_START;
    }
}

/* process() keeps at most QMP_MAX_REQUEST bytes of a message. */
#define QMP_MAX_BUF (QMP_MAX_REQUEST + 8192)

/* Room for at least `room` more bytes, up to QMP_MAX_BUF in all. */
static void grow(struct qmp_client *c, size_t room)
{
    while (c->cap - c->len < room && c->cap < QMP_MAX_BUF) {
        size_t cap = c->cap ? c->cap * 2 : 8192;
        cap = cap < QMP_MAX_BUF ? cap : QMP_MAX_BUF;
        c->buf = xrealloc(c->buf, cap);
        c->cap = cap;
    }
}

static void read_input(struct qmp_client *c)
{
    grow(c, 4096);
    if (c->len == c->cap) {
        return;
    }
    ssize_t n = session_recv(c->s, c->fd, c->buf + c->len, c->cap - c->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return;
    }
    if (n < 0) {
        c->dead = true;
    } else if (n == 0) {
        c->eof = true;
    } else {
        c->len += (size_t)n;
    }
}

bool qmp_client_take_input(struct qmp_client *c, const char *data, size_t len,
                           bool eof)
{
    grow(c, len);
    if (c->cap - c->len < len) {
        return false;
    }
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    c->eof = eof;
    process(c);
    return true;
}

short qmp_client_poll_events(const struct qmp_client *c)
{
    if (c->dead) {
        return 0;
    }
    short ev = 0;
    if (!c->eof && !outq_full(&c->out)) {
        ev |= POLLIN;
    }
    if (outq_pending(&c->out)) {
        ev |= POLLOUT;
    }
    return ev;
}

void qmp_client_ready(struct qmp_client *c, short revents)
{
    if (revents & (POLLOUT | POLLERR | POLLHUP)) {
        qmp_client_flush(c);
    }
    if ((revents & (POLLIN | POLLERR | POLLHUP)) && !c->dead && !c->eof &&
        !outq_full(&c->out)) {
        read_input(c);
    }
    process(c);
}

bool qmp_client_flush(struct qmp_client *c)
{
    if (!outq_flush(&c->out, c->fd)) {
        c->dead = true;
    }
    return outq_pending(&c->out) == 0;
}

bool qmp_client_gone(const struct qmp_client *c)
{
    if (c->dead || c->out.broken) {
        return true;
    }
    /* After the client's last request, once it has every answer: requests
     * still waiting make the output pending, as process() stops only
     * when it is. */
    return c->eof && !outq_pending(&c->out);
}

void qmp_client_free(struct qmp_client *c)
{
    if (!c) {
        return;
    }
    close(c->fd);
    outq_free(&c->out);
    free(c->buf);
    free(c);
}
