/* Parsing monitor endpoints and opening unix sockets for them. */
#include "monitor/endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/io.h"

const char *const endpoint_forms[] = { "stdio", "none", "unix:", NULL };

bool endpoint_parse(const char *spec, bool allow_stdio, struct endpoint *ep,
                    Error **errp)
{
    memset(ep, 0, sizeof(*ep));
    if (strcmp(spec, "none") == 0) {
        return true;
    }
    if (strcmp(spec, "stdio") == 0) {
        if (!allow_stdio) {
            error_setg(errp,
                       "'stdio' is not supported here; use "
                       "unix:PATH,server,nowait");
            return false;
        }
        ep->kind = ENDPOINT_STDIO;
        return true;
    }
    if (strncmp(spec, "unix:", 5) != 0) {
        error_setg(errp,
                   "'%s': expected stdio, none or "
                   "unix:PATH,server[,nowait]",
                   spec);
        return false;
    }
    char *copy = xstrdup(spec + 5);
    char *save = NULL;
    char *path = strtok_r(copy, ",", &save);
    if (!path || !*path) {
        error_setg(errp, "'%s': the socket path is empty", spec);
        free(copy);
        return false;
    }
    ep->kind = ENDPOINT_UNIX;
    ep->path = xstrdup(path);
    ep->wait = true;
    for (char *opt; (opt = strtok_r(NULL, ",", &save));) {
        if (strcmp(opt, "server") == 0 || strcmp(opt, "server=on") == 0) {
            ep->server = true;
        } else if (strcmp(opt, "nowait") == 0 || strcmp(opt, "wait=off") == 0) {
            ep->wait = false;
        } else if (strcmp(opt, "wait=on") == 0) {
            ep->wait = true;
        } else {
            error_setg(errp,
                       "'%s': unknown option '%s' (expected server, "
                       "nowait)",
                       spec, opt);
            free(copy);
            endpoint_clear(ep);
            return false;
        }
    }
    free(copy);
    if (!ep->server) {
        error_setg(errp,
                   "'%s': only server sockets are supported (add "
                   ",server)",
                   spec);
        endpoint_clear(ep);
        return false;
    }
    if (strlen(ep->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        error_setg(errp, "'%s': socket path is too long", spec);
        endpoint_clear(ep);
        return false;
    }
    return true;
}

void endpoint_clear(struct endpoint *ep)
{
    free(ep->path);
    memset(ep, 0, sizeof(*ep));
}

void endpoint_inherit(struct endpoint *ep, const char *list)
{
    if (ep->kind != ENDPOINT_UNIX || !list) {
        return;
    }
    const char *p = list;
    while (*p) {
        char *end;
        long fd = strtol(p, &end, 10);
        if (end == p || fd < 0 || fd > INT_MAX) {
            return;
        }
        struct sockaddr_un addr;
        socklen_t len = sizeof(addr);
        if (getsockname((int)fd, (struct sockaddr *)&addr, &len) == 0 &&
            addr.sun_family == AF_UNIX &&
            len > offsetof(struct sockaddr_un, sun_path) &&
            strncmp(addr.sun_path, ep->path, sizeof(addr.sun_path)) == 0) {
            ep->inherited = true;
            ep->inherited_fd = (int)fd;
            ep->wait = false;
            return;
        }
        p = *end == ',' ? end + 1 : end;
    }
}

int endpoint_listen(const struct endpoint *ep, Error **errp)
{
    if (ep->inherited) {
        /* Ours alone again: nothing we start inherits it. */
        io_adopt_fd(ep->inherited_fd);
        return ep->inherited_fd;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "socket");
        return -1;
    }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strcpy(addr.sun_path, ep->path);
    struct stat st;
    if (lstat(ep->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(ep->path);
    }
    /* Only the owner may talk to the monitor: mode 0600. */
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old);
    if (r < 0 || listen(fd, 4) < 0) {
        error_setg_errno(errp, errno, "cannot listen on '%s'", ep->path);
        close(fd);
        return -1;
    }
    return fd;
}
