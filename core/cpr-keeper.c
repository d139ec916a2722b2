#include "core/cpr-keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEPER_STACK (64 * 1024)

/* Runs in the shared address space on its own stack, with its own copy
 * of the descriptor table: it drops every descriptor but the pipe's read
 * end (so it holds no socket or memfd open), yields the CPU to everyone
 * else and waits for the end of file that the exec (or a failure) gives.
 * It starts with every signal blocked: no handler of the old hop runs
 * in it.
 * Raw system calls only: it shares the calling thread's TLS (errno, the
 * sanitizers' per-thread state), which must not be touched. */
__attribute__((no_sanitize("address", "undefined"))) static int keeper_main(
    void *arg)
{
    long rfd = (long)(intptr_t)arg;
    if (rfd > 0) {
        syscall(SYS_close_range, 0U, (unsigned)rfd - 1, 0U);
    }
    syscall(SYS_close_range, (unsigned)rfd + 1, ~0U, 0U);
    syscall(SYS_setpriority, PRIO_PROCESS, 0, 19);
    char b;
    while (syscall(SYS_read, rfd, &b, 1L) > 0) {
    }
    return 0;
}

bool cpr_keeper_start(struct cpr_keeper *k)
{
    k->pid = -1;
    k->wfd = -1;
    k->stack = NULL;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        return false;
    }
    void *stack = mmap(NULL, KEEPER_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        close(p[0]);
        close(p[1]);
        return false;
    }
    /* No exit signal: nobody is told; the new hop reaps it by pid. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(keeper_main, (char *)stack + KEEPER_STACK, CLONE_VM,
                      (void *)(intptr_t)p[0]);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p[0]);
    if (pid < 0) {
        close(p[1]);
        munmap(stack, KEEPER_STACK);
        return false;
    }
    k->pid = pid;
    k->wfd = p[1];
    k->stack = stack;
    return true;
}

void cpr_keeper_stop(struct cpr_keeper *k)
{
    if (k->pid < 0) {
        return;
    }
    close(k->wfd);
    while (waitpid(k->pid, NULL, __WALL) < 0 && errno == EINTR) {
    }
    munmap(k->stack, KEEPER_STACK);
    k->pid = -1;
}

static void *reap_thread(void *arg)
{
    pid_t pid = (pid_t)(intptr_t)arg;
    while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR) {
    }
    return NULL;
}

void cpr_keeper_reap(const char *text)
{
    if (!text) {
        return;
    }
    char *end;
    errno = 0;
    long pid = strtol(text, &end, 10);
    if (errno || *end || end == text || pid <= 0) {
        return;
    }
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    (void)!pthread_create(&t, &a, reap_thread, (void *)(intptr_t)pid);
    pthread_attr_destroy(&a);
}
