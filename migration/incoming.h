/* Incoming migration: `hop run -incoming URI` (or `-incoming defer` and
 * then migrate_incoming).  A thread accepts the connection and loads the
 * stream into the machine, which waits in run state inmigrate; then the
 * guest runs if the source's did (unless -S).  On a listener, the first
 * connection that starts like a migration stream is the one loaded (see
 * accept.h for the others); multifd channels may come before and after
 * it, a cpr channel (cpr.h) before it. */
#ifndef HOP_MIGRATION_INCOMING_H
#define HOP_MIGRATION_INCOMING_H

#include <pthread.h>
#include <stdbool.h>

#include "block/block.h"
#include "migration/accept.h"
#include "migration/transport.h"
#include "util/error.h"
#include "vmstate/stream.h"

struct machine;
struct section_registry;
struct ram_state;
struct globalstate;
struct migration;
struct mig_info;

#define INCOMING_MAX_DRIVES 8

/* Called on the incoming thread when loading ended. */
typedef void (*incoming_done_fn)(void *opaque, bool ok, const char *error);

struct incoming {
    struct machine *m;
    struct section_registry *reg;
    struct ram_state *rs;
    struct globalstate *gs;
    struct fd_table *fds;
    bool autostart;     /* run after loading, if the source ran */
    bool ignore_shared; /* x-ignore-shared set here before the start */
    int mapped_threads; /* mapped-ram: reading threads (multifd), or 0 */
    bool direct_io;     /* mapped-ram: read pages with O_DIRECT */
    bool cpr;           /* RAM came over a cpr channel (incoming thread) */
    int rp_fd;          /* the return path, once the source opened it */
    /* Writers to rp_fd: the incoming thread and, in postcopy, the thread
     * that asks for missing pages. */
    pthread_mutex_t rp_lock;
    /* Whose capabilities this end has (postcopy-ram must be on here
     * too), or NULL: no postcopy. */
    struct migration *mig;
    /* Postcopy (incoming thread): LISTEN came, RUN came (the guest runs
     * here: drives taken over, a failure from now on loses it). */
    bool postcopy, ran;
    /* A PING between LISTEN and RUN (QEMU's source puts one in the
     * PACKAGED blob): its PONG goes once the guest runs, off the switch's
     * path (waking the source's reader there costs this thread its CPU
     * on a small host). */
    bool pong_due;
    uint32_t pong_value;
    /* Told of the postcopy states here (enum mig_status: postcopy-active
     * at LISTEN and after a recovery, postcopy-paused, postcopy-recover),
     * with opaque; may be NULL. */
    void (*on_status)(void *opaque, int status);
    /* The stream being loaded (a recovery replaces it). */
    Channel *f;
    struct stream_load_opts lo;
    /* The machine's drives, opened inactive (BLK_OPEN_INACTIVE): the
     * source writes them until it hands them over; activated once the
     * load is through, before the machine may run. */
    BlockDev *drives[INCOMING_MAX_DRIVES];
    size_t ndrives;
    incoming_done_fn done;
    void *opaque;
    struct mig_uri uri;
    /* The listener, the acceptor and, once loading, the acceptor thread
     * belong to the incoming thread. */
    int lfd;
    struct mig_acceptor acc;
    pthread_t acceptor;
    bool acceptor_on;
    int wake[2]; /* a byte here: stop waiting (quit) */
    pthread_t thread;
    bool started; /* monitor thread only */

    pthread_mutex_t lock; /* guards what follows */
    bool active;          /* the thread has not ended */
    int status;           /* enum mig_status: what query-migrate says here */
    bool quitting;        /* incoming_destroy is waiting for it */
    pthread_cond_t cond;  /* quitting, recover_ready */
    /* migrate_recover while postcopy-paused: from then until a connection
     * came, triggered; its listener (or an fd: URI's connection), ready
     * for the incoming thread to take. */
    bool recover_triggered, recover_ready;
    struct mig_uri recover_uri;
    int recover_lfd;
    struct mig_conn recover_conn;
    /* The main stream: incoming_destroy unblocks it under the lock; the
     * thread takes it out under the lock before closing it. */
    struct mig_conn conn;
};

void incoming_init(struct incoming *in, struct machine *m,
                   struct section_registry *reg, struct ram_state *rs,
                   struct globalstate *gs, struct fd_table *fds, bool autostart,
                   incoming_done_fn done, void *opaque);
/* The drives to activate after the load (at most INCOMING_MAX_DRIVES),
 * before incoming_start. */
void incoming_set_drives(struct incoming *in, BlockDev *const *drives,
                         size_t n);
/* Listens (or opens) uri and starts loading in the background.  A load
 * fails, too, when the drives cannot be activated (another process holds
 * them). */
bool incoming_start(struct incoming *in, const char *uri, Error **errp);
/* What query-migrate and `info migrate` show on this end: the status
 * (none before any incoming migration) and, with postcopy-blocktime, the
 * vCPUs' waits. */
void incoming_query(struct incoming *in, struct mig_info *mi);
/* migrate_recover URI: a postcopy paused here (the link died) listens
 * on uri for the source's migrate -r. */
bool incoming_recover(struct incoming *in, const char *uri, Error **errp);
/* migrate_pause here: the link of a postcopy-active load is cut; both ends
 * pause. */
bool incoming_pause(struct incoming *in, Error **errp);
/* Stops waiting or loading (quit) and waits for the thread; done is
 * not called then.  A postcopy in progress ends, so vCPUs waiting for
 * pages go on (with what the pages hold) and the machine can stop. */
void incoming_quit(struct incoming *in);
/* incoming_quit, and releases everything. */
void incoming_destroy(struct incoming *in);

#endif
