/* Snapshot jobs: QMP's snapshot-save, snapshot-load and snapshot-delete
 * run on a thread of their own, so the monitor keeps answering, and
 * report as QEMU's jobs do (query-jobs, JOB_STATUS_CHANGE, job-dismiss).
 * As QEMU creates them: dismissed by hand, finalized on their own. */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/session-priv.h"
#include "util/alloc.h"

static const char *const job_type_names[] = {
    [SESSION_JOB_SNAPSHOT_SAVE] = "snapshot-save",
    [SESSION_JOB_SNAPSHOT_LOAD] = "snapshot-load",
    [SESSION_JOB_SNAPSHOT_DELETE] = "snapshot-delete",
};

struct session_job {
    struct vm_session *s;
    struct session_job *next;
    char *id;
    enum session_job_type type;
    /* Under s->jobs_lock: what query-jobs shows. */
    const char *status; /* JobStatus */
    uint64_t done, total;
    char *error;
    /* The arguments, copied. */
    char *tag, *vmstate;
    char **devices;
    size_t ndevices;
    bool background;
    pthread_t thread;
    bool joinable;
};

/* Under s->jobs_lock, so the events come in the order of the states. */
static void set_status(struct session_job *j, const char *status)
{
    j->status = status;
    session_emit(j->s, "JOB_STATUS_CHANGE",
                 json_pack("{s:s,s:s}", "id", j->id, "status", status));
}

static struct session_job *find(struct vm_session *s, const char *id)
{
    for (struct session_job *j = s->jobs; j; j = j->next) {
        if (strcmp(j->id, id) == 0) {
            return j;
        }
    }
    return NULL;
}

static bool is_active(const struct session_job *j)
{
    return strcmp(j->status, "concluded") != 0;
}

bool session_job_conflict(struct vm_session *s, const char *what, bool run,
                          Error **errp)
{
    pthread_mutex_lock(&s->jobs_lock);
    struct session_job *busy = NULL;
    for (struct session_job *j = s->jobs; j && !busy; j = j->next) {
        /* Deleting leaves the machine alone: it may run, stop, reset. */
        if (is_active(j) && (!run || j->type != SESSION_JOB_SNAPSHOT_DELETE)) {
            busy = j;
        }
    }
    if (busy) {
        error_setg(errp,
                   "%s: %s job '%s' is still running (wait for it to "
                   "conclude: query-jobs)",
                   what, job_type_names[busy->type], busy->id);
    }
    pthread_mutex_unlock(&s->jobs_lock);
    return busy != NULL;
}

static void job_progress(void *ctx, const char *what, uint64_t done,
                         uint64_t total)
{
    (void)what;
    struct session_job *j = ctx;
    pthread_mutex_lock(&j->s->jobs_lock);
    j->done = done;
    j->total = total;
    pthread_mutex_unlock(&j->s->jobs_lock);
}

static void *job_main(void *opaque)
{
    struct session_job *j = opaque;
    struct vm_session *s = j->s;
    struct snapshot_select sel = {
        .devices = (const char *const *)j->devices,
        .ndevices = j->ndevices,
        .vmstate = j->vmstate,
        .background = j->background,
        /* QMP's snapshot-save never replaces a snapshot; savevm does. */
        .keep_existing = true,
    };
    const struct snapshot_select *psel =
        j->devices || j->vmstate || j->background ? &sel : NULL;
    struct session_snapshot_io io = { .progress = job_progress,
                                      .progress_ctx = j };
    Error *err = NULL;
    bool ok = false;
    switch (j->type) {
    case SESSION_JOB_SNAPSHOT_SAVE:
        ok = session_do_savevm(s, j->tag, &sel, &io, &err);
        break;
    case SESSION_JOB_SNAPSHOT_LOAD:
        ok = session_do_loadvm(s, j->tag, psel, &io, &err);
        break;
    case SESSION_JOB_SNAPSHOT_DELETE:
        ok = session_do_delvm(s, j->tag, psel, &io, &err);
        break;
    }
    pthread_mutex_lock(&s->jobs_lock);
    if (j->total == 0) {
        j->total = 1;
    }
    if (ok) {
        j->done = j->total;
        set_status(j, "waiting");
        set_status(j, "pending");
    } else {
        j->error = xstrdup(error_get_pretty(err));
        error_free(err);
        set_status(j, "aborting");
    }
    set_status(j, "concluded");
    pthread_mutex_unlock(&s->jobs_lock);
    return NULL;
}

/* QEMU's rule for ids: a letter, then letters, digits, '-', '.', '_'. */
static bool id_wellformed(const char *id)
{
    if (!isalpha((unsigned char)id[0])) {
        return false;
    }
    for (const char *p = id + 1; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("-._", *p)) {
            return false;
        }
    }
    return true;
}

static void job_free(struct session_job *j)
{
    free(j->id);
    free(j->error);
    free(j->tag);
    free(j->vmstate);
    for (size_t i = 0; i < j->ndevices; i++) {
        free(j->devices[i]);
    }
    free(j->devices);
    free(j);
}

/* A job's thread ends right after it set concluded (under the lock, so
 * seen here only once it let go): join it now, so that jobs a client
 * never dismisses keep no thread. */
static void reap_concluded(struct vm_session *s)
{
    for (struct session_job *j = s->jobs; j; j = j->next) {
        if (j->joinable && !is_active(j)) {
            pthread_join(j->thread, NULL);
            j->joinable = false;
        }
    }
}

bool session_job_start(struct vm_session *s, enum session_job_type type,
                       const char *id, const char *tag,
                       const struct snapshot_select *sel, Error **errp)
{
    if (!id) {
        error_setg(errp, "An explicit job ID is required");
        return false;
    }
    if (!id_wellformed(id)) {
        error_setg(errp, "Invalid job ID '%s'", id);
        return false;
    }
    const char *what = job_type_names[type];
    if (!s->machine) {
        error_setg(errp, "%s: there is no machine", what);
        return false;
    }
    /* The id first, as QEMU's job creation checks it before the work. */
    pthread_mutex_lock(&s->jobs_lock);
    bool taken = find(s, id) != NULL;
    pthread_mutex_unlock(&s->jobs_lock);
    if (taken) {
        error_setg(errp, "Job ID '%s' already in use", id);
        return false;
    }
    if (session_job_conflict(s, what, false, errp)) {
        return false;
    }
    if (mig_status_is_active(migration_status(&s->mig))) {
        error_setg(errp, "%s: there's a migration process in progress", what);
        return false;
    }
    struct session_job *j = xcalloc(1, sizeof(*j));
    j->s = s;
    j->type = type;
    j->id = xstrdup(id);
    j->tag = tag ? xstrdup(tag) : NULL;
    if (sel) {
        j->vmstate = sel->vmstate ? xstrdup(sel->vmstate) : NULL;
        j->background = sel->background;
        j->ndevices = sel->ndevices;
        /* NULL stays NULL: every writable drive. */
        j->devices = sel->devices
            ? xcalloc(sel->ndevices + 1, sizeof(*j->devices))
            : NULL;
        for (size_t i = 0; j->devices && i < sel->ndevices; i++) {
            j->devices[i] = xstrdup(sel->devices[i]);
        }
    }
    pthread_mutex_lock(&s->jobs_lock);
    reap_concluded(s);
    if (find(s, id)) {
        pthread_mutex_unlock(&s->jobs_lock);
        error_setg(errp, "Job ID '%s' already in use", id);
        job_free(j);
        return false;
    }
    set_status(j, "created");
    j->total = 1;
    set_status(j, "running");
    int e = pthread_create(&j->thread, NULL, job_main, j);
    if (e != 0) {
        /* As a job that failed: the client reads why in query-jobs. */
        j->error = xasprintf("cannot start a thread: %s", strerror(e));
        set_status(j, "aborting");
        set_status(j, "concluded");
    }
    j->joinable = e == 0;
    j->next = s->jobs;
    s->jobs = j;
    pthread_mutex_unlock(&s->jobs_lock);
    return true;
}

json_t *session_query_jobs(struct vm_session *s)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&s->jobs_lock);
    for (struct session_job *j = s->jobs; j; j = j->next) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I}", "id", j->id, "type",
                              job_type_names[j->type], "status", j->status,
                              "current-progress", (json_int_t)j->done,
                              "total-progress", (json_int_t)j->total);
        if (j->error) {
            json_object_set_new(o, "error", json_string(j->error));
        }
        /* Oldest first, as QEMU lists them. */
        json_array_insert_new(arr, 0, o);
    }
    pthread_mutex_unlock(&s->jobs_lock);
    return arr;
}

/* Unlinks the job once it concluded (dismiss's verb check). */
static struct session_job *take_concluded(struct vm_session *s, const char *id,
                                          const char *verb, Error **errp)
{
    struct session_job **pp = &s->jobs;
    while (*pp && strcmp((*pp)->id, id) != 0) {
        pp = &(*pp)->next;
    }
    struct session_job *j = *pp;
    if (!j) {
        error_setg(errp, "Job not found");
        return NULL;
    }
    if (is_active(j)) {
        error_setg(errp,
                   "Job '%s' in state '%s' cannot accept command verb '%s'", id,
                   j->status, verb);
        return NULL;
    }
    *pp = j->next;
    return j;
}

bool session_job_dismiss(struct vm_session *s, const char *id, Error **errp)
{
    pthread_mutex_lock(&s->jobs_lock);
    struct session_job *j = take_concluded(s, id, "dismiss", errp);
    if (j) {
        set_status(j, "null");
    }
    pthread_mutex_unlock(&s->jobs_lock);
    if (!j) {
        return false;
    }
    if (j->joinable) {
        pthread_join(j->thread, NULL);
    }
    job_free(j);
    return true;
}

bool session_job_cancel(struct vm_session *s, const char *id, Error **errp)
{
    pthread_mutex_lock(&s->jobs_lock);
    struct session_job *j = find(s, id);
    if (!j) {
        error_setg(errp, "Job not found");
    } else if (!is_active(j)) {
        error_setg(errp,
                   "Job '%s' in state '%s' cannot accept command verb "
                   "'cancel'",
                   id, j->status);
    } else {
        /* QEMU's snapshot jobs do not stop either: a cancel there still
         * takes the snapshot and then calls the job failed. */
        error_setg(errp,
                   "Job '%s': a %s job cannot be cancelled; it runs to "
                   "the end",
                   id, job_type_names[j->type]);
    }
    pthread_mutex_unlock(&s->jobs_lock);
    return false;
}

void session_jobs_wait(struct vm_session *s)
{
    for (;;) {
        pthread_mutex_lock(&s->jobs_lock);
        struct session_job *j = s->jobs;
        while (j && !j->joinable) {
            j = j->next;
        }
        if (j) {
            j->joinable = false;
        }
        pthread_mutex_unlock(&s->jobs_lock);
        if (!j) {
            return;
        }
        pthread_join(j->thread, NULL);
    }
}

void session_jobs_free(struct vm_session *s)
{
    session_jobs_wait(s);
    while (s->jobs) {
        struct session_job *next = s->jobs->next;
        job_free(s->jobs);
        s->jobs = next;
    }
}
