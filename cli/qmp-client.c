/* QMP from the command line to a running hop. */
#include "cli/qmp-client.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/alloc.h"

/* The monitor's prompt ends its greeting. */
#define HMP_PROMPT "(hop) "
/* More than any greeting or answer of these commands holds. */
#define MAX_INPUT (1u << 20)

struct qmp_conn {
    int fd;
    char *where; /* the socket path, for messages */
    char *buf;
    size_t len, cap;
};

/* Reads more of the socket into c->buf; false (errp) at its end. */
static bool read_more(struct qmp_conn *c, Error **errp)
{
    if (c->len + 4096 + 1 > c->cap) {
        if (c->cap >= MAX_INPUT) {
            error_setg(errp, "%s: more than %u bytes without an answer",
                       c->where, MAX_INPUT);
            return false;
        }
        size_t cap = c->cap ? c->cap * 2 : 8192;
        c->buf = xrealloc(c->buf, cap);
        c->cap = cap;
    }
    ssize_t r;
    do {
        r = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
        error_setg(errp,
                   "%s: the machine closed the connection before "
                   "answering",
                   c->where);
        return false;
    }
    c->len += (size_t)r;
    c->buf[c->len] = '\0';
    return true;
}

static void consume(struct qmp_conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    if (c->buf) {
        c->buf[c->len] = '\0';
    }
}

/* The next message: one JSON object a line.  Events are skipped. */
static json_t *read_message(struct qmp_conn *c, Error **errp)
{
    for (;;) {
        char *nl = c->buf ? memchr(c->buf, '\n', c->len) : NULL;
        if (!nl) {
            if (!read_more(c, errp)) {
                return NULL;
            }
            continue;
        }
        size_t n = (size_t)(nl - c->buf) + 1;
        json_error_t jerr;
        json_t *m = json_loadb(c->buf, n, 0, &jerr);
        consume(c, n);
        if (!json_is_object(m)) {
            json_decref(m);
            error_setg(errp, "%s: not a QMP message: %s", c->where, jerr.text);
            return NULL;
        }
        if (!json_object_get(m, "event")) {
            return m;
        }
        json_decref(m);
    }
}

static bool send_line(struct qmp_conn *c, const char *text, Error **errp)
{
    size_t len = strlen(text);
    while (len) {
        ssize_t w = write(c->fd, text, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            error_setg_errno(errp, errno, "%s: cannot write", c->where);
            return false;
        }
        text += w;
        len -= (size_t)w;
    }
    return true;
}

/* The QMP greeting, directly (a -qmp socket) or after the monitor's
 * (a -monitor socket, asked to speak QMP). */
static bool greeting(struct qmp_conn *c, Error **errp)
{
    while (c->len == 0 || c->buf[0] != '{') {
        size_t n = strlen(HMP_PROMPT);
        if (c->len >= n && memcmp(c->buf + c->len - n, HMP_PROMPT, n) == 0) {
            consume(c, c->len);
            if (!send_line(c, "{\"execute\": \"qmp_capabilities\"}\n", errp)) {
                return false;
            }
            json_t *g = read_message(c, errp);
            bool ok = g && json_object_get(g, "QMP");
            json_decref(g);
            if (g && !ok) {
                error_setg(errp, "%s: the monitor did not turn to QMP",
                           c->where);
            }
            /* Then the answer to the line that asked. */
            json_t *r = ok ? qmp_conn_execute(c, NULL, NULL, errp) : NULL;
            json_decref(r);
            return r != NULL;
        }
        if (!read_more(c, errp)) {
            return false;
        }
    }
    json_t *g = read_message(c, errp);
    if (!g) {
        return false;
    }
    bool ok = json_object_get(g, "QMP") != NULL;
    json_decref(g);
    if (!ok) {
        error_setg(errp, "%s: no QMP greeting", c->where);
        return false;
    }
    json_t *r = qmp_conn_execute(c, "qmp_capabilities", NULL, errp);
    json_decref(r);
    return r != NULL;
}

static int connect_unix(const char *endpoint, char **where, Error **errp)
{
    const char *path =
        strncmp(endpoint, "unix:", 5) == 0 ? endpoint + 5 : endpoint;
    *where = xstrndup(path, strcspn(path, ",")); /* unix:PATH,server,... */
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(*where) >= sizeof(sa.sun_path)) {
        error_setg(errp, "monitor socket path '%s' is too long", path);
        return -1;
    }
    strcpy(sa.sun_path, *where);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        error_setg_errno(errp, errno, "cannot connect to the monitor at %s",
                         *where);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

struct qmp_conn *qmp_conn_open(const char *endpoint, Error **errp)
{
    struct qmp_conn *c = xcalloc(1, sizeof(*c));
    c->fd = connect_unix(endpoint, &c->where, errp);
    if (c->fd < 0 || !greeting(c, errp)) {
        qmp_conn_close(c);
        return NULL;
    }
    return c;
}

json_t *qmp_conn_execute(struct qmp_conn *c, const char *cmd, json_t *args,
                         Error **errp)
{
    if (cmd) {
        json_t *req = json_pack("{s:s}", "execute", cmd);
        if (args) {
            json_object_set_new(req, "arguments", args);
        }
        char *text = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        bool ok = text && send_line(c, text, errp) && send_line(c, "\n", errp);
        free(text);
        if (!ok) {
            return NULL;
        }
    }
    json_t *m = read_message(c, errp);
    if (!m) {
        return NULL;
    }
    json_t *ret = json_object_get(m, "return");
    if (ret) {
        json_incref(ret);
        json_decref(m);
        return ret;
    }
    const char *desc =
        json_string_value(json_object_get(json_object_get(m, "error"), "desc"));
    error_setg(errp, "%s",
               desc ? desc
                    : "the machine answered neither "
                      "return nor error");
    json_decref(m);
    return NULL;
}

void qmp_conn_close(struct qmp_conn *c)
{
    if (!c) {
        return;
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    free(c->where);
    free(c->buf);
    free(c);
}
