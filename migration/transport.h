/* Migration URIs and the connections behind them:
 *   tcp:HOST:PORT (IPv4, IPv6 as [::1]:PORT)   unix:PATH
 *   exec:COMMAND (outgoing: the stream goes to its stdin; incoming: it is
 *   read from its stdout)   fd:NAME (a descriptor passed with getfd)
 *   file:PATH[,offset=N]
 *   memfd: (outgoing: a new memfd, for mode cpr-exec; incoming: memfd:N,
 *   the inherited descriptor N holding a cpr-exec state) */
#ifndef HOP_MIGRATION_TRANSPORT_H
#define HOP_MIGRATION_TRANSPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

enum mig_uri_kind {
    MIG_URI_TCP,
    MIG_URI_UNIX,
    MIG_URI_EXEC,
    MIG_URI_FD,
    MIG_URI_FILE,
    MIG_URI_MEMFD
};

struct mig_uri {
    enum mig_uri_kind kind;
    char *host, *port; /* tcp */
    char *path;        /* unix, file */
    char *cmd;         /* exec */
    char *fdname;      /* fd; memfd: the number, "" outgoing */
    uint64_t offset;   /* file */
};

bool mig_uri_parse(const char *uri, struct mig_uri *u, Error **errp);
void mig_uri_clear(struct mig_uri *u);
/* Several connections (multifd) need a transport that can make them. */
bool mig_uri_is_socket(const struct mig_uri *u);

/* A named descriptor table for fd: URIs (getfd / closefd). */
struct fd_table;
struct fd_table *fd_table_new(void);
void fd_table_free(struct fd_table *t);
bool fd_table_add(struct fd_table *t, const char *name, int fd, Error **errp);
bool fd_table_close(struct fd_table *t, const char *name, Error **errp);
/* Removes and returns the descriptor, or -1. */
int fd_table_take(struct fd_table *t, const char *name);

struct mig_conn {
    int fd;
    bool is_socket;
    pid_t child; /* exec: the command, reaped on close */
};

/* Outgoing. */
bool mig_connect(const struct mig_uri *u, struct fd_table *fds,
                 struct mig_conn *c, Error **errp);
/* Incoming: for tcp/unix, a listening socket (see mig-accept.h); other
 * kinds connect at once and return no listener (-1).  A unix socket is
 * made with mode 0600; an old socket at its path is replaced, any other
 * file is left alone and refused. */
bool mig_listen(const struct mig_uri *u, struct fd_table *fds, int *lfd,
                struct mig_conn *c, Error **errp);
/* Once postcopy runs, a page the guest waits for queues behind all that
 * sits in the socket's buffers (the 4 MiB given for precopy's throughput
 * hold milliseconds of pages); this shrinks them to
 * MIG_LATENCY_SOCKET_BUF.  Data already queued stays; harmless on what
 * is no socket. */
#define MIG_LATENCY_SOCKET_BUF (128 * 1024)
void mig_socket_favor_latency(int fd);
/* Who is at the other end of a connected socket, for messages. */
void mig_peer_name(int fd, char *buf, size_t len);
/* From another thread: unblock I/O on c (shut a socket down, stop an
 * exec command) without releasing anything; mig_conn_close still
 * follows on the owner's thread. */
void mig_conn_abort(struct mig_conn *c);
/* Closes and, for exec, waits for the command; false if it failed. */
bool mig_conn_close(struct mig_conn *c, Error **errp);
/* Takes *c out under lock (a cancel shuts down what it finds there) and
 * leaves it empty, so that the caller closes it and nobody else does. */
struct mig_conn mig_conn_take(struct mig_conn *c, pthread_mutex_t *lock);

#endif
