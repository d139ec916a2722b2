/* HOP_FAULT parsing and the check at each point (see util/fault.h). */
#include "util/fault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fault_plan {
    char point[64];
    unsigned long pass; /* 1-based */
    bool fail;          /* else exit */
    atomic_ulong hits;
};

static struct fault_plan plan;
static bool armed;
static pthread_once_t plan_once = PTHREAD_ONCE_INIT;

static const struct fault_point *find_point(const char *name)
{
    for (const struct fault_point *p = fault_points; p->name; p++) {
        if (strcmp(p->name, name) == 0) {
            return p;
        }
    }
    return NULL;
}

/* POINT[@N][:exit|:fail]; a bad value is reported once and ignored. */
static void read_plan(void)
{
    const char *env = getenv("HOP_FAULT");
    if (!env || !*env) {
        return;
    }
    size_t n = strcspn(env, "@:");
    if (n == 0 || n >= sizeof(plan.point)) {
        fprintf(stderr, "hop: HOP_FAULT=%s: no point named\n", env);
        return;
    }
    memcpy(plan.point, env, n);
    plan.point[n] = '\0';
    plan.pass = 1;
    const char *p = env + n;
    if (*p == '@') {
        char *end;
        plan.pass = strtoul(p + 1, &end, 10);
        if (end == p + 1 || plan.pass == 0) {
            fprintf(stderr, "hop: HOP_FAULT=%s: @ needs a pass number from 1\n",
                    env);
            return;
        }
        p = end;
    }
    if (strcmp(p, ":fail") == 0) {
        plan.fail = true;
    } else if (*p && strcmp(p, ":exit") != 0) {
        fprintf(stderr, "hop: HOP_FAULT=%s: the action is exit or fail\n", env);
        return;
    }
    const struct fault_point *fp = find_point(plan.point);
    if (!fp) {
        fprintf(stderr,
                "hop: HOP_FAULT=%s: no such point (hop fault-points "
                "lists them)\n",
                env);
        return;
    }
    if (plan.fail && !fp->can_fail) {
        fprintf(stderr, "hop: HOP_FAULT=%s: %s can only exit\n", env,
                plan.point);
        return;
    }
    armed = true;
}

void fault_reload(void)
{
    pthread_once(&plan_once, read_plan);
    armed = false;
    memset(plan.point, 0, sizeof(plan.point));
    plan.fail = false;
    atomic_store(&plan.hits, 0);
    read_plan();
}

/* Is this the armed point, on the pass the plan names? */
static bool this_pass(const char *point)
{
    pthread_once(&plan_once, read_plan);
    if (!armed || strcmp(point, plan.point) != 0) {
        return false;
    }
    return atomic_fetch_add(&plan.hits, 1) + 1 == plan.pass;
}

void fault_exit_point(const char *point)
{
    if (this_pass(point)) {
        fprintf(stderr, "hop: HOP_FAULT: exiting at %s (pass %lu)\n", point,
                plan.pass);
        _exit(99);
    }
}

bool fault_inject(const char *point, Error **errp)
{
    if (!this_pass(point)) {
        return true;
    }
    if (!plan.fail) {
        fprintf(stderr, "hop: HOP_FAULT: exiting at %s (pass %lu)\n", point,
                plan.pass);
        _exit(99);
    }
    fprintf(stderr, "hop: HOP_FAULT: failing at %s (pass %lu)\n", point,
            plan.pass);
    error_setg(errp, "injected fault at %s", point);
    return false;
}
