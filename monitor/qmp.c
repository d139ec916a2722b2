/* QMP protocol: framing, negotiation, dispatch through the command table,
 * argument checking and error objects. */
#include "monitor/qmp.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monitor/session.h"

#define QMP_MAX_REQUEST (1 << 20)

struct qmp_client {
    struct vm_session *s;
    int fd;
    bool negotiated;
    char *buf;
    size_t len, cap;
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
    case QMP_STR: return "string";
    case QMP_INT: return "integer";
    case QMP_BOOL: return "boolean";
    case QMP_OBJ: return "object";
    case QMP_ARRAY: return "array";
    case QMP_NUM: return "number";
    }
    return "?";
}

static bool type_ok(enum qmp_type t, json_t *v)
{
    switch (t) {
    case QMP_STR: return json_is_string(v);
    case QMP_INT: return json_is_integer(v);
    case QMP_BOOL: return json_is_boolean(v);
    case QMP_OBJ: return json_is_object(v);
    case QMP_ARRAY: return json_is_array(v);
    case QMP_NUM: return json_is_number(v);
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
    json_object_foreach(args, key, v) {
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

json_t *qmp_dispatch(struct vm_session *s, json_t *req, bool negotiated,
                     bool *negotiate_now)
{
    *negotiate_now = false;
    if (!json_is_object(req)) {
        return error_response("GenericError",
                              "QMP input must be a JSON object", NULL);
    }
    json_t *id = json_object_get(req, "id");
    json_t *exec = json_object_get(req, "execute");
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v) {
        if (strcmp(key, "execute") && strcmp(key, "arguments") &&
            strcmp(key, "id")) {
            char desc[160];
            snprintf(desc, sizeof(desc), "QMP input member '%s' is unexpected",
                     key);
            return error_response("GenericError", desc, id);
        }
    }
    if (!json_is_string(exec)) {
        return error_response("GenericError", exec ?
                              "QMP input member 'execute' must be a string" :
                              "QMP input lacks member 'execute'", id);
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
            return error_response("CommandNotFound", "Capabilities negotiation "
                                  "is already complete, command ignored", id);
        }
        *negotiate_now = true;
        json_t *r = json_pack("{s:{}}", "return");
        if (id) {
            json_object_set(r, "id", id);
        }
        return r;
    }
    if (!negotiated) {
        return error_response("CommandNotFound", "Expecting capabilities "
                              "negotiation with 'qmp_capabilities'", id);
    }
    const struct qmp_cmd *cmd = qmp_commands;
    while (cmd->name && strcmp(cmd->name, name) != 0) {
        cmd++;
    }
    if (!cmd->name) {
        char desc[200];
        snprintf(desc, sizeof(desc), "The command %s has not been found",
                 name);
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

static void send_json(struct qmp_client *c, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        return;
    }
    size_t len = strlen(text);
    text[len] = '\0';
    /* QMP messages end with CRLF. */
    char *line = malloc(len + 3);
    if (!line) {
        abort();
    }
    memcpy(line, text, len);
    memcpy(line + len, "\r\n", 3);
    size_t off = 0;
    while (off < len + 2) {
        ssize_t n = send(c->fd, line + off, len + 2 - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;     /* the reader will notice the client is gone */
        }
        off += (size_t)n;
    }
    free(line);
    free(text);
}

struct qmp_client *qmp_client_new(struct vm_session *s, int fd)
{
    struct qmp_client *c = calloc(1, sizeof(*c));
    if (!c) {
        abort();
    }
    c->s = s;
    c->fd = fd;
    return c;
}

void qmp_client_start(struct qmp_client *c)
{
    json_t *g = json_pack("{s:{s:{s:{s:i,s:i,s:i},s:s},s:[]}}", "QMP",
                          "version", "qemu", "micro", 0, "minor", 1, "major",
                          0, "package", "hop " HOP_VERSION, "capabilities");
    send_json(c, g);
    json_decref(g);
}

int qmp_client_fd(const struct qmp_client *c)
{
    return c->fd;
}

void qmp_client_send_event(struct qmp_client *c, const char *name,
                           json_t *data, long long sec, long long usec)
{
    if (!c->negotiated) {
        return;
    }
    json_t *e = json_pack("{s:s,s:O,s:{s:I,s:I}}", "event", name, "data",
                          data, "timestamp", "seconds", (json_int_t)sec,
                          "microseconds", (json_int_t)usec);
    send_json(c, e);
    json_decref(e);
}

/* Length of the first complete JSON object or array in buf, found by
 * balancing brackets outside strings; 0 if it is not complete yet. */
static size_t scan_value(const char *buf, size_t len)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (in_str) {
            if (esc) {
                esc = false;
            } else if (ch == '\\') {
                esc = true;
            } else if (ch == '"') {
                in_str = false;
            }
            continue;
        }
        if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (--depth <= 0) {
                return i + 1;
            }
        }
    }
    return 0;
}

static void reply_parse_error(struct qmp_client *c, const char *what)
{
    char desc[300];
    snprintf(desc, sizeof(desc), "JSON parse error, %s", what);
    json_t *r = error_response("GenericError", desc, NULL);
    send_json(c, r);
    json_decref(r);
}

/* Answers every complete request in the buffer. */
static void process(struct qmp_client *c)
{
    size_t off = 0;
    while (off < c->len) {
        while (off < c->len && strchr(" \t\r\n", c->buf[off])) {
            off++;
        }
        if (off == c->len) {
            break;
        }
        const char *p = c->buf + off;
        size_t avail = c->len - off;
        size_t n;
        if (*p != '{' && *p != '[') {
            /* Not JSON text at all: answer once per line of junk. */
            const char *nl = memchr(p, '\n', avail);
            if (!nl) {
                break;
            }
            reply_parse_error(c, "expected a JSON object");
            off += (size_t)(nl - p) + 1;
            continue;
        }
        if (!(n = scan_value(p, avail))) {
            break;    /* wait for the rest */
        }
        json_error_t jerr;
        json_t *req = json_loadb(p, n, JSON_DECODE_ANY, &jerr);
        off += n;
        if (!req) {
            reply_parse_error(c, jerr.text);
            continue;
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
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

bool qmp_client_readable(struct qmp_client *c)
{
    if (c->cap - c->len < 4096) {
        size_t cap = c->cap ? c->cap * 2 : 8192;
        if (cap > QMP_MAX_REQUEST * 2) {
            return false;    /* a request that never ends */
        }
        char *b = realloc(c->buf, cap);
        if (!b) {
            abort();
        }
        c->buf = b;
        c->cap = cap;
    }
    ssize_t n = session_recv(c->s, c->fd, c->buf + c->len,
                             c->cap - c->len - 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return true;
    }
    if (n <= 0) {
        return false;
    }
    c->len += (size_t)n;
    process(c);
    return true;
}

void qmp_client_free(struct qmp_client *c)
{
    if (!c) {
        return;
    }
    close(c->fd);
    free(c->buf);
    free(c);
}
