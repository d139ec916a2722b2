/* userfaultfd: opening one, shared by background-snapshot (write
 * protection, ram-wp.c) and postcopy (missing pages, ram-postcopy.c). */
#ifndef HOP_RAM_UFFD_H
#define HOP_RAM_UFFD_H

#include "util/error.h"

/* A userfaultfd of this process (O_CLOEXEC | O_NONBLOCK): the system
 * call, or /dev/userfaultfd where the call is reserved to privileged
 * processes.  who names the feature in the error (why it is missing and
 * what would allow it). */
int uffd_open(const char *who, Error **errp);

#endif
