/* calc_dirty_rate: how fast the guest dirties memory, measured by
 * sampling pages (a hash of each at the start and the end of the
 * period), so it needs no dirty log and never disturbs a migration. */
#ifndef HOP_MIGRATION_DIRTY_RATE_H
#define HOP_MIGRATION_DIRTY_RATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct machine;

enum dirty_rate_status {
    DIRTY_RATE_UNSTARTED,
    DIRTY_RATE_MEASURING,
    DIRTY_RATE_MEASURED
};

struct dirty_rate_info {
    enum dirty_rate_status status;
    int64_t start_time; /* seconds since the epoch */
    int64_t calc_time;  /* seconds */
    uint64_t rate_mbps; /* MiB dirtied per second */
    uint64_t sampled, changed;
};

struct dirty_rate {
    pthread_mutex_t lock;
    pthread_t thread;
    bool thread_started;
    struct machine *m;
    struct dirty_rate_info info;
};

void dirty_rate_init(struct dirty_rate *d);
void dirty_rate_destroy(struct dirty_rate *d);
/* Starts measuring for seconds (1..60) in the background. */
bool dirty_rate_start(struct dirty_rate *d, struct machine *m, int seconds,
                      Error **errp);
void dirty_rate_query(struct dirty_rate *d, struct dirty_rate_info *out);
const char *dirty_rate_status_name(enum dirty_rate_status st);

#endif
