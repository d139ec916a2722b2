/* What the outgoing migration's two files share: migration.c (the thread,
 * precopy, completion) and postcopy-source.c (the postcopy switch, the run
 * after it, pauses and recoveries).  Nothing outside migration/ uses it. */
#ifndef HOP_MIGRATION_PRIV_H
#define HOP_MIGRATION_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/migration.h"
#include "util/error.h"

/* How often bandwidth and convergence are measured. */
#define MIG_MEASURE_NS (100 * 1000 * 1000ull)

/* ---- migration.c ---- */

/* The new status, with its MIGRATION event; a cancel stays cancelling. */
void mig_set_status(struct migration *mig, enum mig_status st);
/* A setting that may change while the migration runs. */
uint64_t mig_live_param(struct migration *mig, enum mig_param p);
/* Stops the guest for the switchover (*stopped: it was running; *t0:
 * when), remembering its run state for the destination.  With
 * pause-before-switchover, waits in pre-switchover for migrate_continue
 * (false on a cancel instead), then moves to status then (and *t0 to
 * the end of the pause). */
bool mig_stop_guest(struct migration *mig, bool *stopped, uint64_t *t0,
                    enum mig_status then, Error **errp);
/* The main connection to mig->uri, as mig->conn and mig->f. */
bool mig_connect_main(struct migration *mig, Error **errp);
/* The return path's reader on mig->f's connection. */
bool mig_start_return_path(struct migration *mig, Error **errp);

/* ---- postcopy-source.c ---- */

/* Before the guest stops: the discards so far, and the destination's
 * PONG once it dropped them. */
bool postcopy_discard_early(struct migration *mig, Channel *f, Error **errp);
/* The switch: *stopped (the guest was running), *inactivated (the drives
 * went), *switched (the PACKAGED blob went: the guest is the
 * destination's from then on). */
bool postcopy_switch(struct migration *mig, Channel *f, bool *stopped,
                     bool *inactivated, bool *switched, Error **errp);
/* Every page left, through any number of pauses; *fp changes with each
 * recovery. */
bool postcopy_go(struct migration *mig, Channel **fp, Error **errp);
/* postcopy-preempt's second connection, and its end. */
bool postcopy_connect_preempt(struct migration *mig, Error **errp);
void postcopy_drop_preempt(struct migration *mig);

#endif
