/* Taking incoming migration connections off a listening socket.  Each new
 * connection must show what it is by its first bytes — the main stream
 * ("QEVM"), a multifd channel (its 16-byte header), a cpr channel
 * ("HCPR", see cpr.h) or postcopy-preempt's ("HPRE") — within
 * MIG_HEADER_TIMEOUT_MS; one that stays silent or sends anything else is
 * closed with a warning naming the peer.  Connections are watched side by
 * side, so a stalled one never holds up the others, and a byte on the
 * wake descriptor ends any wait at once. */
#ifndef HOP_MIGRATION_ACCEPT_H
#define HOP_MIGRATION_ACCEPT_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/transport.h"
#include "util/error.h"

#define MIG_HEADER_TIMEOUT_MS 5000
/* postcopy-preempt's channel starts with these 4 bytes (hop's own: QEMU's
 * tells its preempt channel by the order of connections), then RAM page
 * records as in the RAM section, up to an EOS record. */
#define POSTCOPY_PREEMPT_MAGIC "HPRE"
/* Connections still to show their header; more wait in the backlog. */
#define MIG_ACCEPT_MAX_PENDING 16

enum mig_conn_kind {
    MIG_CONN_MAIN,
    MIG_CONN_MULTIFD,
    MIG_CONN_CPR,
    MIG_CONN_PREEMPT, /* postcopy-preempt's channel (POSTCOPY_PREEMPT_MAGIC) */
};

struct mig_pending {
    int fd;
    uint64_t deadline_ns;
    uint64_t recheck_ns; /* part of a header came: look again */
    bool hung_up;
    char peer[96];
};

struct mig_acceptor {
    int lfd;     /* listening, non-blocking; not owned */
    int wake_fd; /* readable: stop waiting; not owned */
    int timeout_ms;
    /* Postcopy recovery: the main stream goes on where it broke, with a
     * COMMAND record (RECV_BITMAP) instead of the header. */
    bool resume;
    int npending;
    struct mig_pending pending[MIG_ACCEPT_MAX_PENDING];
};

/* lfd is made non-blocking. */
void mig_acceptor_init(struct mig_acceptor *a, int lfd, int wake_fd);
/* The next connection that showed its header (its bytes are still
 * unread): 1 with *c, *kind and its peer's name in peer; 0 when woken;
 * -1 if the listener failed. */
int mig_acceptor_next(struct mig_acceptor *a, struct mig_conn *c,
                      enum mig_conn_kind *kind, char *peer, size_t peer_len,
                      Error **errp);
/* Closes the connections still waiting. */
void mig_acceptor_clear(struct mig_acceptor *a);

#endif
