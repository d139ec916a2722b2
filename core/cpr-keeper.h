/* cpr-exec's keeper of the old address space.  execve() tears the old
 * address space down before the new program runs, and with guest RAM
 * mapped in 4 KiB pages that is ~15 ms per GiB inside the guest's pause.
 * A small process that shares the address space (CLONE_VM) keeps it
 * alive across the exec; it exits once the exec happened, so the kernel
 * tears the old address space down in it, beside the new hop. */
#ifndef HOP_CORE_CPR_KEEPER_H
#define HOP_CORE_CPR_KEEPER_H

#include <stdbool.h>
#include <sys/types.h>

struct cpr_keeper {
    pid_t pid; /* -1: none */
    int wfd;   /* close-on-exec: the keeper's cue to exit */
    void *stack;
};

/* Starts the keeper just before the exec; false (nothing started) if it
 * cannot be had, and the exec goes on without it. */
bool cpr_keeper_start(struct cpr_keeper *k);
/* The exec failed: the keeper exits and is reaped. */
void cpr_keeper_stop(struct cpr_keeper *k);
/* In the new hop: the old hop's keeper (its pid, as text, from
 * HOP_CPR_KEEPER) is this process's child; a thread reaps it when it
 * exits.  Does nothing for NULL or a bad number. */
void cpr_keeper_reap(const char *pid);

#endif
