/* cpr-exec: the migration thread has written the state memfd (RAM's
 * descriptors, then the stream) with the guest stopped and the drives
 * handed over; here this process runs the new hop in its place.  What
 * the new hop needs survives the exec: the state memfd (HOP_CPR_STATE),
 * every RAM block's descriptor (named in the state) and the monitors'
 * listening sockets (HOP_CPR_LISTEN), so their paths never disappear.
 * Everything else is close-on-exec.  If the exec fails, all of it is
 * put back and the migration fails: the guest runs on here. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cpr-keeper.h"
#include "core/session-priv.h"
#include "util/alloc.h"

extern char **environ;

#define KEEP_MAX (SESSION_EXEC_KEEP_MAX + RAM_MAX_BLOCKS + 1)
#define ENV_MAX 1024

bool session_add_exec_hook(struct vm_session *s, session_exec_hook_fn fn,
                           void *opaque)
{
    for (int i = 0; i < SESSION_MAX_EXEC_HOOKS; i++) {
        if (!s->exec_hooks[i].fn) {
            s->exec_hooks[i].fn = fn;
            s->exec_hooks[i].opaque = opaque;
            return true;
        }
    }
    return false;
}

void session_remove_exec_hook(struct vm_session *s, session_exec_hook_fn fn,
                              void *opaque)
{
    for (int i = 0; i < SESSION_MAX_EXEC_HOOKS; i++) {
        if (s->exec_hooks[i].fn == fn && s->exec_hooks[i].opaque == opaque) {
            s->exec_hooks[i].fn = NULL;
        }
    }
}

static void call_hooks_after_failure(struct vm_session *s)
{
    for (int i = 0; i < SESSION_MAX_EXEC_HOOKS; i++) {
        if (s->exec_hooks[i].fn) {
            s->exec_hooks[i].fn(s->exec_hooks[i].opaque, false, NULL, 0);
        }
    }
}

static void set_cloexec(const int *fds, int n, bool on)
{
    for (int i = 0; i < n; i++) {
        int fl = fcntl(fds[i], F_GETFD);
        if (fl >= 0) {
            fcntl(fds[i], F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC);
        }
    }
}

/* The environment for the new hop: this one without old HOP_CPR_*
 * entries, plus the two it reads; the number of entries, with room for
 * one more (HOP_CPR_KEEPER), or -1. */
static int build_env(const char **envp, char *state, size_t state_len,
                     char *listen, int state_fd, const int *lfds, int nl,
                     Error **errp)
{
    int n = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "HOP_CPR_", 8) == 0) {
            continue;
        }
        if (n == ENV_MAX - 4) {
            error_setg(errp, "cpr-exec: more than %d environment entries",
                       ENV_MAX - 4);
            return -1;
        }
        envp[n++] = *e;
    }
    snprintf(state, state_len, "HOP_CPR_STATE=%d", state_fd);
    envp[n++] = state;
    if (nl) {
        int at = snprintf(listen, 128, "HOP_CPR_LISTEN=");
        for (int i = 0; i < nl; i++) {
            at += snprintf(listen + at, (size_t)(128 - at), "%s%d",
                           i ? "," : "", lfds[i]);
        }
        envp[n++] = listen;
    }
    envp[n] = NULL;
    return n;
}

bool session_exec(void *opaque, int state_fd, Error **errp)
{
    struct vm_session *s = opaque;
    struct mig_config c;
    migration_get_config(&s->mig, &c);
    const char *words[MIG_EXEC_ARGS_MAX + 1];
    const char *const *argv = s->exec_argv;
    if (mig_exec_command_argv(&c, words, MIG_EXEC_ARGS_MAX) > 0) {
        argv = words;
    }
    if (!argv || !argv[0]) {
        error_setg(errp,
                   "cpr-exec: no command to run (set "
                   "cpr-exec-command)");
        return false;
    }

    int keep[KEEP_MAX], nkeep = 0;
    int lfds[SESSION_EXEC_KEEP_MAX], nl = 0;
    keep[nkeep++] = state_fd;
    struct machine_memory *mem = machine_memory(s->machine);
    for (int i = 0; i < mem->nblocks; i++) {
        keep[nkeep++] = mem->blocks[i]->fd;
    }
    for (int i = 0; i < SESSION_MAX_EXEC_HOOKS; i++) {
        if (s->exec_hooks[i].fn) {
            nl += s->exec_hooks[i].fn(s->exec_hooks[i].opaque, true, lfds + nl,
                                      SESSION_EXEC_KEEP_MAX - nl);
        }
    }
    for (int i = 0; i < nl; i++) {
        keep[nkeep++] = lfds[i];
    }

    const char **envp = xcalloc(ENV_MAX, sizeof(*envp));
    char state[64], listen[128], keeper_env[64];
    int nenv =
        build_env(envp, state, sizeof(state), listen, state_fd, lfds, nl, errp);
    if (nenv < 0) {
        free(envp);
        call_hooks_after_failure(s);
        return false;
    }
    set_cloexec(keep, nkeep, false);
    struct cpr_keeper keeper;
    if (cpr_keeper_start(&keeper)) {
        snprintf(keeper_env, sizeof(keeper_env), "HOP_CPR_KEEPER=%d",
                 (int)keeper.pid);
        envp[nenv] = keeper_env;
    }
    /* A thread's blocked signals survive exec: the new hop starts with
     * none blocked, as from a shell. */
    sigset_t none, old;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, &old);
    fflush(NULL);
    execvpe(argv[0], (char *const *)argv, (char *const *)envp);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    cpr_keeper_stop(&keeper);
    free(envp);
    set_cloexec(keep, nkeep, true);
    call_hooks_after_failure(s);
    error_setg_errno(errp, err, "cpr-exec: cannot run '%s'", argv[0]);
    return false;
}
