/* Fault injection at named steps, for the tests that prove hop comes
 * through failures: the environment variable HOP_FAULT names a step and
 * what happens there.
 *
 *   HOP_FAULT=POINT[@N][:exit|:fail]
 *
 * exit (the default) ends the process on the spot with status 99, as
 * kill -9 would; fail makes the step report an error ("injected fault at
 * POINT"), as a failing write, a full disk or a dead peer would.  @N acts
 * on the Nth pass through the point (default: the first).  Every point is
 * listed in fault_points[] (util/fault-points.c) with the operations that
 * pass through it, so a test can walk them all (`hop fault-points`). */
#ifndef HOP_UTIL_FAULT_H
#define HOP_UTIL_FAULT_H

#include <stdbool.h>

#include "util/error.h"

struct fault_point {
    const char *name;
    /* Can the step fail (fault_inject)?  Steps past a commit point (the
     * header switch, the durable flush) can only be died at
     * (fault_exit_point): an error there would tell a caller that work
     * which was done failed. */
    bool can_fail;
    const char *ops;  /* operations passing here: "savevm img-snapshot" */
    const char *what; /* the step, in a few words */
};

/* Every point, ending with name NULL. */
extern const struct fault_point fault_points[];

/* A step that can fail.  Returns false with errp set when HOP_FAULT arms
 * this point with fail and this is the pass it names; never returns when
 * it arms it with exit; true otherwise. */
bool fault_inject(const char *point, Error **errp);
/* Reads HOP_FAULT again (it is read once, at the first point passed):
 * for a test that sets it in a forked child. */
void fault_reload(void);
/* A step that can only be died at: never returns when HOP_FAULT arms it
 * (with exit) and this is the pass it names. */
void fault_exit_point(const char *point);

#endif
