/* One command through a hop monitor socket. */
#include "cli/hmp-client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PROMPT "(hop) "

struct buf {
    char *data;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data) {
            abort();
        }
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static bool ends_with_prompt(const struct buf *b)
{
    size_t n = strlen(PROMPT);
    return b->len >= n && memcmp(b->data + b->len - n, PROMPT, n) == 0;
}

/* Reads until the output ends with a prompt. */
static bool read_to_prompt(int fd, struct buf *b, Error **errp)
{
    char tmp[4096];
    while (!ends_with_prompt(b)) {
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            error_setg(errp, "the monitor closed the connection before "
                       "answering");
            return false;
        }
        buf_add(b, tmp, (size_t)r);
    }
    return true;
}

bool hmp_client_run(const char *endpoint, const char *line, char **output,
                    Error **errp)
{
    *output = NULL;
    const char *path = strncmp(endpoint, "unix:", 5) == 0 ? endpoint + 5
                                                         : endpoint;
    char p[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(p, sizeof(p), "%s", path);
    char *comma = strchr(p, ',');     /* unix:PATH,server,nowait */
    if (comma) {
        *comma = '\0';
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(p) >= sizeof(sa.sun_path)) {
        error_setg(errp, "monitor socket path '%s' is too long", p);
        return false;
    }
    strcpy(sa.sun_path, p);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        error_setg_errno(errp, errno, "cannot connect to the monitor at %s",
                         p);
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    struct buf b = { 0 };
    bool ok = read_to_prompt(fd, &b, errp);
    if (ok) {
        b.len = 0;
        size_t n = strlen(line);
        ok = write(fd, line, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
        if (!ok) {
            error_setg_errno(errp, errno, "cannot write to the monitor");
        }
    }
    ok = ok && read_to_prompt(fd, &b, errp);
    close(fd);
    if (!ok) {
        free(b.data);
        return false;
    }
    b.len -= strlen(PROMPT);
    b.data[b.len] = '\0';
    *output = b.data;
    return true;
}
