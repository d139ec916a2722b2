/* Incoming migration: `hop run -incoming URI` (or `-incoming defer` and
 * then migrate_incoming).  A thread accepts the connection and loads the
 * stream into the machine, which waits in run state inmigrate; then the
 * guest runs if the source's did (unless -S). */
#ifndef HOP_MIGRATION_INCOMING_H
#define HOP_MIGRATION_INCOMING_H

#include <pthread.h>
#include <stdbool.h>

#include "migration/transport.h"
#include "util/error.h"

struct machine;
struct section_registry;
struct ram_state;
struct globalstate;

/* Called on the incoming thread when loading ended. */
typedef void (*incoming_done_fn)(void *opaque, bool ok, const char *error);

struct incoming {
    struct machine *m;
    struct section_registry *reg;
    struct ram_state *rs;
    struct globalstate *gs;
    struct fd_table *fds;
    bool autostart;                /* run after loading, if the source ran */
    incoming_done_fn done;
    void *opaque;
    struct mig_uri uri;
    int lfd;
    struct mig_conn conn;
    pthread_t thread;
    bool started;
    bool active;
};

void incoming_init(struct incoming *in, struct machine *m,
                   struct section_registry *reg, struct ram_state *rs,
                   struct globalstate *gs, struct fd_table *fds,
                   bool autostart, incoming_done_fn done, void *opaque);
/* Listens (or opens) uri and starts loading in the background. */
bool incoming_start(struct incoming *in, const char *uri, Error **errp);
/* Waits for the thread and releases everything. */
void incoming_destroy(struct incoming *in);

#endif
