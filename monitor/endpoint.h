/* Where a monitor listens: `stdio`, `none`, or `unix:PATH,server[,nowait]`
 * (QEMU's chardev spelling for -monitor and -qmp). */
#ifndef HOP_MONITOR_ENDPOINT_H
#define HOP_MONITOR_ENDPOINT_H

#include <stdbool.h>

#include "util/error.h"

enum endpoint_kind { ENDPOINT_NONE, ENDPOINT_STDIO, ENDPOINT_UNIX };

struct endpoint {
    enum endpoint_kind kind;
    char *path; /* unix */
    bool server;
    bool wait; /* wait for the first client before going on */
    /* A listening socket on path that an earlier hop left open across
     * cpr-exec: taken instead of a new one, so the path never
     * disappears. */
    bool inherited;
    int inherited_fd;
};

/* The spellings, for completion: "stdio", "none", "unix:" (then
 * PATH,server[,nowait]); ends with NULL. */
extern const char *const endpoint_forms[];

/* allow_stdio: -qmp stdio is not offered. */
bool endpoint_parse(const char *spec, bool allow_stdio, struct endpoint *ep,
                    Error **errp);
void endpoint_clear(struct endpoint *ep);
/* A listening unix socket (mode 0600, an old socket file replaced). */
int endpoint_listen(const struct endpoint *ep, Error **errp);
/* cpr-exec's new hop: looks for ep's path among the listening sockets
 * named in list ("3,4": HOP_CPR_LISTEN) and, if found, makes ep take it
 * (and not wait for a client: the guest is running). */
void endpoint_inherit(struct endpoint *ep, const char *list);

#endif
