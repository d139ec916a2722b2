/* Outgoing live migration: a state machine run by its own thread, over
 * the section stream.  Setup sends the RAM block list; iterations send
 * dirty pages while the guest runs, measuring bandwidth every 100 ms;
 * when what is left fits in bandwidth x downtime-limit the machine stops,
 * the last pages and every device go, and the destination takes over.
 * Whatever goes wrong, the source keeps its machine and resumes it. */
#ifndef HOP_MIGRATION_MIGRATION_H
#define HOP_MIGRATION_MIGRATION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "migration/block-mig.h"
#include "migration/params.h"
#include "migration/return-path.h"
#include "migration/transport.h"
#include "ram/ram-postcopy.h"
#include "ram/ram.h"
#include "util/error.h"
#include "vmstate/channel.h"

struct globalstate;
struct machine;
struct section_registry;

#define MIG_MAX_DRIVES 8

enum mig_status {
    MIG_STATUS_NONE,
    MIG_STATUS_SETUP,
    MIG_STATUS_ACTIVE,
    MIG_STATUS_PRE_SWITCHOVER,
    MIG_STATUS_DEVICE,
    MIG_STATUS_POSTCOPY_ACTIVE,
    MIG_STATUS_POSTCOPY_PAUSED,  /* the link died after the switch */
    MIG_STATUS_POSTCOPY_RECOVER, /* a new link is being set up */
    MIG_STATUS_CANCELLING,
    MIG_STATUS_CANCELLED,
    MIG_STATUS_COMPLETED,
    MIG_STATUS_FAILED,
    MIG_STATUS__MAX
};

const char *mig_status_name(enum mig_status st);
bool mig_status_is_active(enum mig_status st);
/* postcopy-paused or postcopy-recover: the link died after the switch. */
bool mig_status_is_postcopy_paused(enum mig_status st);

/* What `info migrate` and query-migrate show. */
struct mig_info {
    enum mig_status status;
    uint64_t total_time_ms; /* so far, or in all */
    uint64_t setup_time_ms;
    uint64_t downtime_ms;          /* once completed */
    uint64_t expected_downtime_ms; /* while active */
    double mbps;                   /* throughput, megabits/s */
    uint64_t pages_per_second;
    int throttle_pct;
    int multifd_channels;
    uint64_t multifd_bytes;
    struct ram_stats ram;
    bool has_disk; /* the migration shown copied the drives (-b) */
    struct block_mig_stats disk;
    bool xbzrle; /* the migration shown used it */
    uint64_t xbzrle_cache_size;
    double xbzrle_cache_miss_rate;
    double xbzrle_encoding_rate;
    /* Destination, capability postcopy-blocktime on: the last postcopy's
     * vCPU waits. */
    bool has_blocktime;
    struct postcopy_bt_stats bt;
    char error[512];
};

/* Reports status changes (from the migration thread, or the monitor's
 * at start and cancel) while the events capability is on. */
typedef void (*mig_notify_fn)(void *opaque, enum mig_status st);
/* cpr-exec: replaces this process with a new hop that loads state_fd (a
 * memfd holding the cpr state and the stream; see migration/cpr.h).
 * Returns only when that failed, with *errp. */
typedef bool (*mig_exec_fn)(void *opaque, int state_fd, Error **errp);

struct migration {
    struct machine *m;
    struct section_registry *reg;
    struct ram_state *rs;
    struct fd_table *fds;
    struct globalstate *gs;
    mig_notify_fn notify;
    void *opaque;
    mig_exec_fn exec; /* NULL: no cpr-exec */
    void *exec_opaque;
    /* The machine's drives: inactive from the switch on (the destination
     * takes them over), active again if the migration fails. */
    BlockDev *drives[MIG_MAX_DRIVES];
    size_t ndrives;
    struct block_mig *bm; /* block migration's section; NULL: none */

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;
    /* The settings: changed by the monitor, copied into run when a
     * migration starts; live ones (max-bandwidth, downtime-limit and the
     * throttle steps) are read again while it runs. */
    struct mig_config cfg;
    enum mig_status status;
    bool thread_running;
    pthread_t thread;
    atomic_bool cancel;
    atomic_bool start_postcopy; /* migrate_start_postcopy arrived */
    bool continue_ok;           /* migrate_continue arrived */
    /* The connection: a cancel shuts it down (or stops the exec command)
     * under the lock; the thread takes it out under the lock before
     * closing it, so a cancel never reaches a closed one. */
    struct mig_conn conn;
    char *blocker; /* why migration is forbidden, if so */
    char error[512];
    /* measurements */
    uint64_t start_ns, setup_ns, end_ns, downtime_ns;
    uint64_t expected_downtime_ms;
    double mbps;
    uint64_t pages_per_second;
    int throttle_pct;
    struct ram_stats ram_final; /* as of the last measurement */
    struct block_mig_stats disk_final;
    uint64_t multifd_bytes;

    /* Set by migration_start before the thread starts; then only read.
     * f is the thread's alone. */
    struct mig_config run;
    struct mig_uri uri;
    Channel *f;
    struct rp_reader rp;           /* capability return-path (the thread's) */
    struct rp_postcopy_ops rp_ops; /* postcopy: what the reader calls */
    char *resume_uri; /* migrate -r while postcopy-paused (under lock) */
    /* postcopy-preempt's connection (a cancel shuts it down, as conn)
     * and its channel, which the return path's thread writes */
    struct mig_conn pconn;
    Channel *pf;
};

void migration_init(struct migration *mig, struct machine *m,
                    struct section_registry *reg, struct ram_state *rs,
                    struct globalstate *gs, struct fd_table *fds,
                    mig_notify_fn notify, void *opaque);
void migration_destroy(struct migration *mig);
/* The drives to hand over (at most MIG_MAX_DRIVES), before any migration
 * starts. */
void migration_set_drives(struct migration *mig, BlockDev *const *drives,
                          size_t n);

/* The block section that `migrate -b` turns on (before any migration
 * starts). */
void migration_set_block(struct migration *mig, struct block_mig *bm);

/* Who carries out cpr-exec (before any migration starts). */
void migration_set_exec(struct migration *mig, mig_exec_fn fn, void *opaque);

/* Starts a migration to uri in the background.  blk and inc are migrate's
 * -b and -i: the block capability (and block-incremental) for this
 * migration only. */
bool migration_start(struct migration *mig, const char *uri, bool blk, bool inc,
                     Error **errp);
/* Asks a running migration to stop; the source keeps running.  Once in
 * postcopy-active the guest runs at the destination: nothing is done
 * then (migration_cancel_refused says why). */
void migration_cancel(struct migration *mig);
bool migration_cancel_refused(struct migration *mig, Error **errp);
/* migrate_start_postcopy: switch to postcopy at the next chance (the
 * capability postcopy-ram must be on; harmless once complete). */
bool migration_start_postcopy(struct migration *mig, Error **errp);
/* migrate -r URI: a postcopy-paused migration goes on over a new link
 * (the destination listens there after migrate_recover). */
bool migration_resume(struct migration *mig, const char *uri, Error **errp);
/* migrate_pause: a postcopy-active migration's link is cut, as if it
 * died; both ends pause. */
bool migration_pause(struct migration *mig, Error **errp);
/* Leaves pre-switchover (pause-before-switchover). */
bool migration_continue(struct migration *mig, Error **errp);
void migration_query(struct migration *mig, struct mig_info *info);
enum mig_status migration_status(struct migration *mig);
/* Waits up to ms for the status to leave the active states. */
bool migration_wait(struct migration *mig, int ms);

/* The settings, changed only through these.  Capabilities cannot change
 * while a migration is in progress; parameters can. */
void migration_get_config(struct migration *mig, struct mig_config *c);
/* All of next or nothing (QMP's set-capabilities / set-parameters). */
bool migration_set_config(struct migration *mig, const struct mig_config *next,
                          Error **errp);
bool migration_set_capability(struct migration *mig, const char *name, bool on,
                              Error **errp);
bool migration_set_parameter(struct migration *mig, const char *name,
                             const char *value, Error **errp);
bool migration_set_parameter_value(struct migration *mig, int param,
                                   uint64_t value, Error **errp);
/* A device that cannot be migrated names why; NULL lifts it. */
void migration_set_blocker(struct migration *mig, const char *reason);

#endif
