/* The snapshot catalog: an sqlite index of every image, its snapshots and
 * the device sections each snapshot holds, so that people can find and
 * script them ("which snapshots hold serial state older than version 2"
 * is one query).  The images stay the truth: `hop catalog sync` rebuilds
 * the index from them.  Several hop processes may share one catalog (WAL
 * journal, busy timeout).
 *
 * Tables (see catalog.c for the exact schema):
 *   images(id, path, format, virtual_size, updated)
 *   snapshots(id, image_id, snapshot_id, name, vm_state_size, date_sec,
 *             date_nsec, vm_clock_ns, icount, disk_size, machine, ram_size,
 *             sections_known)
 *   sections(snapshot, idstr, instance, version, size)
 *   snapshot_sections: a view joining the three. */
#ifndef HOP_SNAPSHOT_CATALOG_H
#define HOP_SNAPSHOT_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/block.h"
#include "snapshot/sections.h"
#include "util/error.h"

struct catalog;

/* The catalog to use: env HOP_CATALOG, else $XDG_DATA_HOME/hop/catalog.db,
 * else ~/.local/share/hop/catalog.db.  Caller frees.  "" and "none" mean
 * no catalog. */
char *catalog_default_path(void);
/* override (e.g. -catalog PATH) if set, else the default; NULL when the
 * catalog is turned off.  Caller frees. */
char *catalog_choose_path(const char *override);

/* Opens (creating it and its directory when writable) the catalog. */
struct catalog *catalog_open(const char *path, bool readonly, Error **errp);
void catalog_close(struct catalog *c);
const char *catalog_path(const struct catalog *c);

struct catalog_snapshot {
    const struct blk_snapshot *sn;
    /* What the state holds; NULL when not read (the entry keeps the
     * sections it had if the snapshot is the same one). */
    const struct state_summary *state;
};

/* Rewrites the image's entry in one transaction: its snapshots become
 * exactly snaps.  A snapshot is "the same one" when its name, date and
 * state size agree. */
bool catalog_update_image(struct catalog *c, const char *path,
                          const char *format, uint64_t virtual_size,
                          const struct catalog_snapshot *snaps, size_t n,
                          Error **errp);
bool catalog_forget_image(struct catalog *c, const char *path, Error **errp);
/* The image paths the catalog knows (caller frees each and the array). */
bool catalog_image_paths(struct catalog *c, char ***paths, size_t *n,
                         Error **errp);

/* Runs one read-only SQL statement; fn sees each row (values as text,
 * NULL for SQL NULL).  Statements that would write are refused. */
typedef void (*catalog_row_fn)(void *ctx, int ncols, const char *const *names,
                               const char *const *values);
bool catalog_query(struct catalog *c, const char *sql, catalog_row_fn fn,
                   void *ctx, Error **errp);

#endif
