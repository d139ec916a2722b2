/* The sqlite snapshot catalog. */
#include "snapshot/catalog.h"
#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/io.h"

#define CATALOG_SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 10000

struct catalog {
    sqlite3 *db;
    char *path;
    bool readonly;
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS images ("
    "  id INTEGER PRIMARY KEY,"
    "  path TEXT NOT NULL UNIQUE,"
    "  format TEXT NOT NULL,"
    "  virtual_size INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS snapshots ("
    "  id INTEGER PRIMARY KEY,"
    "  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
    "  snapshot_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  vm_state_size INTEGER NOT NULL,"
    "  date_sec INTEGER NOT NULL,"
    "  date_nsec INTEGER NOT NULL,"
    "  vm_clock_ns INTEGER NOT NULL,"
    "  icount INTEGER,"
    "  disk_size INTEGER NOT NULL,"
    "  machine TEXT,"
    "  ram_size INTEGER,"
    "  sections_known INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (image_id, name));"
    "CREATE TABLE IF NOT EXISTS sections ("
    "  snapshot INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,"
    "  idstr TEXT NOT NULL,"
    "  instance INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  PRIMARY KEY (snapshot, idstr, instance));"
    "CREATE INDEX IF NOT EXISTS sections_by_idstr ON sections(idstr, version);"
    "CREATE VIEW IF NOT EXISTS snapshot_sections AS"
    "  SELECT i.path AS image, s.name AS snapshot, s.snapshot_id AS id,"
    "         d.idstr, d.instance, d.version, d.size"
    "  FROM sections d JOIN snapshots s ON d.snapshot = s.id"
    "  JOIN images i ON s.image_id = i.id;";

static bool db_error(struct catalog *c, Error **errp, const char *what)
{
    error_setg(errp, "catalog %s: %s: %s", c->path, what,
               sqlite3_errmsg(c->db));
    return false;
}

static bool exec(struct catalog *c, const char *sql, Error **errp)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        error_setg(errp, "catalog %s: %s", c->path, msg ? msg : "error");
        sqlite3_free(msg);
        return false;
    }
    return true;
}

char *catalog_default_path(void)
{
    const char *env = getenv("HOP_CATALOG");
    if (env) {
        return xstrdup(env);
    }
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg) {
        return xasprintf("%s/hop/catalog.db", xdg);
    }
    return xasprintf("%s/.local/share/hop/catalog.db",
                     home && *home ? home : ".");
}

char *catalog_choose_path(const char *override)
{
    char *p = override ? xstrdup(override) : catalog_default_path();
    if (!*p || strcmp(p, "none") == 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* mkdir -p of path's directory; what it makes only the owner may enter:
 * the catalog lists the user's images. */
static bool make_parent(const char *path, Error **errp)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        free(dir);
        return true;
    }
    *slash = '\0';
    bool ok = mkdir_p(dir, 0700, errp);
    free(dir);
    return ok;
}

/* sqlite would create the database with mode 0644 less the umask; its
 * -wal and -shm files take the database's mode.  A new catalog is made
 * 0600 first, then; an existing one keeps the mode its owner gave it. */
static bool create_private(const char *path, Error **errp)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
        error_setg_errno(errp, errno, "cannot create catalog '%s'", path);
        return false;
    }
    if (fd >= 0) {
        close(fd);
    }
    return true;
}

struct catalog *catalog_open(const char *path, bool readonly, Error **errp)
{
    if (!readonly &&
        (!make_parent(path, errp) || !create_private(path, errp))) {
        return NULL;
    }
    struct catalog *c = xcalloc(1, sizeof(*c));
    c->path = xstrdup(path);
    c->readonly = readonly;
    int flags = readonly ? SQLITE_OPEN_READONLY
                         : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        if (readonly && access(path, F_OK) < 0) {
            error_setg(errp,
                       "no catalog at %s (hop savevm and 'hop catalog "
                       "sync IMAGE...' make one)",
                       path);
        } else {
            db_error(c, errp, "cannot open");
        }
        catalog_close(c);
        return NULL;
    }
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    if (readonly) {
        return c;
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d;",
             CATALOG_SCHEMA_VERSION);
    /* Switching a new database to WAL can fail at once with "locked"
     * while another process does the same (the busy handler does not
     * cover it): try again for a while. */
    for (int attempt = 0;; attempt++) {
        Error *err = NULL;
        bool ok = exec(c, "PRAGMA journal_mode = WAL;", &err) &&
            exec(c, "PRAGMA foreign_keys = ON;", &err) &&
            exec(c, "BEGIN IMMEDIATE;", &err);
        if (ok) {
            if (exec(c, schema_sql, &err) && exec(c, sql, &err) &&
                exec(c, "COMMIT;", &err)) {
                return c;
            }
            exec(c, "ROLLBACK;", NULL);
        }
        int code = sqlite3_errcode(c->db) & 0xff;
        if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || attempt >= 100) {
            error_propagate(errp, err);
            catalog_close(c);
            return NULL;
        }
        error_free(err);
        usleep(50000);
    }
}

void catalog_close(struct catalog *c)
{
    if (!c) {
        return;
    }
    sqlite3_close(c->db);
    free(c->path);
    free(c);
}

const char *catalog_path(const struct catalog *c)
{
    return c->path;
}

static sqlite3_stmt *prepare(struct catalog *c, const char *sql, Error **errp)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_error(c, errp, "prepare");
        return NULL;
    }
    return st;
}

/* Steps a statement that returns no rows (or ignores them). */
static bool run(struct catalog *c, sqlite3_stmt *st, Error **errp)
{
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    }
    if (r != SQLITE_DONE) {
        db_error(c, errp, "write");
        sqlite3_reset(st);
        return false;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return true;
}

static int64_t image_id(struct catalog *c, const char *path, const char *format,
                        uint64_t vsize, Error **errp)
{
    sqlite3_stmt *st =
        prepare(c,
                "INSERT INTO images (path, format, virtual_size, updated) "
                "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(path) DO UPDATE SET "
                "format = ?2, virtual_size = ?3, updated = ?4 RETURNING id;",
                errp);
    if (!st) {
        return -1;
    }
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, format, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)vsize);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
    int64_t id = -1;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        r = sqlite3_step(st);
    }
    if (r != SQLITE_DONE || id < 0) {
        db_error(c, errp, "write image");
        id = -1;
    }
    sqlite3_finalize(st);
    return id;
}

/* The row of a snapshot that is still the same one, or -1. */
static int64_t same_snapshot(struct catalog *c, int64_t img,
                             const struct blk_snapshot *sn, bool *known)
{
    sqlite3_stmt *st = prepare(
        c,
        "SELECT id, sections_known FROM snapshots WHERE image_id = ?1 AND "
        "name = ?2 AND date_sec = ?3 AND date_nsec = ?4 AND "
        "vm_state_size = ?5;",
        NULL);
    if (!st) {
        return -1;
    }
    sqlite3_bind_int64(st, 1, img);
    sqlite3_bind_text(st, 2, sn->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, sn->date_sec);
    sqlite3_bind_int64(st, 4, sn->date_nsec);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)sn->vm_state_size);
    int64_t id = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        *known = sqlite3_column_int(st, 1) != 0;
    }
    sqlite3_finalize(st);
    return id;
}

static bool put_sections(struct catalog *c, int64_t snap,
                         const struct state_summary *s, Error **errp)
{
    sqlite3_stmt *st = prepare(
        c,
        "INSERT INTO sections (snapshot, idstr, instance, version, size) "
        "VALUES (?1, ?2, ?3, ?4, ?5);",
        errp);
    if (!st) {
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < s->nsections; i++) {
        const struct state_section *e = &s->sections[i];
        sqlite3_bind_int64(st, 1, snap);
        sqlite3_bind_text(st, 2, e->idstr, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, e->instance);
        sqlite3_bind_int64(st, 4, e->version);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)e->size);
        ok = run(c, st, errp);
    }
    sqlite3_finalize(st);
    return ok;
}

static bool put_snapshot(struct catalog *c, int64_t img,
                         const struct catalog_snapshot *cs, Error **errp)
{
    const struct blk_snapshot *sn = cs->sn;
    bool known = false;
    int64_t same = same_snapshot(c, img, sn, &known);
    if (same >= 0 && (!cs->state || known)) {
        /* Unchanged: only its id may have moved. */
        sqlite3_stmt *st = prepare(c,
                                   "UPDATE snapshots SET snapshot_id = ?1 "
                                   "WHERE id = ?2;",
                                   errp);
        if (!st) {
            return false;
        }
        sqlite3_bind_text(st, 1, sn->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, same);
        bool ok = run(c, st, errp);
        sqlite3_finalize(st);
        return ok;
    }
    sqlite3_stmt *st = prepare(
        c,
        "INSERT INTO snapshots (image_id, snapshot_id, name, vm_state_size, "
        "date_sec, date_nsec, vm_clock_ns, icount, disk_size, machine, "
        "ram_size, sections_known) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
        "?9, ?10, ?11, ?12) RETURNING id;",
        errp);
    if (!st) {
        return false;
    }
    const struct state_summary *s = cs->state;
    sqlite3_bind_int64(st, 1, img);
    sqlite3_bind_text(st, 2, sn->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, sn->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)sn->vm_state_size);
    sqlite3_bind_int64(st, 5, sn->date_sec);
    sqlite3_bind_int64(st, 6, sn->date_nsec);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)sn->vm_clock_nsec);
    if (sn->icount != -1) {
        sqlite3_bind_int64(st, 8, sn->icount);
    }
    sqlite3_bind_int64(st, 9, (sqlite3_int64)sn->disk_size);
    if (s && s->machine[0]) {
        sqlite3_bind_text(st, 10, s->machine, -1, SQLITE_STATIC);
    }
    if (s && s->ram_size) {
        sqlite3_bind_int64(st, 11, (sqlite3_int64)s->ram_size);
    }
    sqlite3_bind_int(st, 12, s != NULL || sn->vm_state_size == 0);
    int64_t id = -1;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE || id < 0) {
        return db_error(c, errp, "write snapshot");
    }
    return !s || put_sections(c, id, s, errp);
}

bool catalog_update_image(struct catalog *c, const char *path,
                          const char *format, uint64_t virtual_size,
                          const struct catalog_snapshot *snaps, size_t n,
                          Error **errp)
{
    if (!exec(c, "BEGIN IMMEDIATE;", errp)) {
        return false;
    }
    int64_t img = image_id(c, path, format, virtual_size, errp);
    bool ok = img >= 0;
    /* Drop the rows of snapshots that are gone or changed. */
    sqlite3_stmt *keep = ok ? prepare(c,
                                      "CREATE TEMP TABLE IF NOT EXISTS "
                                      "keep_ids (id INTEGER PRIMARY KEY);",
                                      errp)
                            : NULL;
    ok = keep && run(c, keep, errp) && exec(c, "DELETE FROM keep_ids;", errp);
    sqlite3_finalize(keep);
    for (size_t i = 0; ok && i < n; i++) {
        bool known = false;
        int64_t same = same_snapshot(c, img, snaps[i].sn, &known);
        if (same >= 0 && (!snaps[i].state || known)) {
            char sql[96];
            snprintf(sql, sizeof(sql),
                     "INSERT OR IGNORE INTO keep_ids "
                     "VALUES (%lld);",
                     (long long)same);
            ok = exec(c, sql, errp);
        }
    }
    if (ok) {
        char sql[160];
        snprintf(sql, sizeof(sql),
                 "DELETE FROM snapshots WHERE image_id = "
                 "%lld AND id NOT IN (SELECT id FROM keep_ids);",
                 (long long)img);
        ok = exec(c, sql, errp);
    }
    for (size_t i = 0; ok && i < n; i++) {
        ok = put_snapshot(c, img, &snaps[i], errp);
    }
    if (!ok || !exec(c, "COMMIT;", errp)) {
        exec(c, "ROLLBACK;", NULL);
        return false;
    }
    return true;
}

bool catalog_forget_image(struct catalog *c, const char *path, Error **errp)
{
    sqlite3_stmt *st = prepare(c, "DELETE FROM images WHERE path = ?1;", errp);
    if (!st) {
        return false;
    }
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    bool ok = run(c, st, errp);
    sqlite3_finalize(st);
    return ok;
}

bool catalog_image_paths(struct catalog *c, char ***paths, size_t *n,
                         Error **errp)
{
    *paths = NULL;
    *n = 0;
    sqlite3_stmt *st =
        prepare(c, "SELECT path FROM images ORDER BY path;", errp);
    if (!st) {
        return false;
    }
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        char **np = xrealloc(*paths, (*n + 1) * sizeof(*np));
        *paths = np;
        np[(*n)++] = xstrdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        return db_error(c, errp, "read");
    }
    return true;
}

bool catalog_query(struct catalog *c, const char *sql, catalog_row_fn fn,
                   void *ctx, Error **errp)
{
    const char *tail = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, &tail) != SQLITE_OK) {
        error_setg(errp, "%s", sqlite3_errmsg(c->db));
        return false;
    }
    if (!st) {
        error_setg(errp, "no SQL statement");
        return false;
    }
    while (tail &&
           (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';')) {
        tail++;
    }
    if (tail && *tail) {
        error_setg(errp, "one statement at a time (extra text: '%.40s')", tail);
        sqlite3_finalize(st);
        return false;
    }
    if (!sqlite3_stmt_readonly(st)) {
        error_setg(errp,
                   "the catalog is read-only here: only queries "
                   "(SELECT ...) are allowed; 'hop catalog sync' rebuilds "
                   "it from the images");
        sqlite3_finalize(st);
        return false;
    }
    int ncols = sqlite3_column_count(st);
    const char **names = xcalloc((size_t)ncols + 1, sizeof(*names));
    const char **vals = xcalloc((size_t)ncols + 1, sizeof(*vals));
    for (int i = 0; i < ncols; i++) {
        names[i] = sqlite3_column_name(st, i);
    }
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < ncols; i++) {
            vals[i] = (const char *)sqlite3_column_text(st, i);
        }
        fn(ctx, ncols, names, vals);
    }
    bool ok = r == SQLITE_DONE;
    if (!ok) {
        error_setg(errp, "%s", sqlite3_errmsg(c->db));
    }
    free(names);
    free(vals);
    sqlite3_finalize(st);
    return ok;
}
