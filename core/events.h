/* The events the session emits, as a table: each with the members of its
 * data.  QMP delivers them, and query-events, query-qmp-schema and
 * hop-monitor(7) describe them from this table; session_emit() takes only
 * these names.
 *
 * A member is described as QMP describes data: name, JSON type, optional,
 * and `of`, a type of the QMP schema (monitor/qmp-table.c, or a builtin:
 * "str", "int", "bool", "number", "any") that refines the JSON type: an
 * array's element type, an object's type, or an enum for a string.
 * Without it an array holds "any" values and an object is "any". */
#ifndef HOP_CORE_EVENTS_H
#define HOP_CORE_EVENTS_H

#include <stdbool.h>

enum qmp_type { QMP_STR, QMP_INT, QMP_BOOL, QMP_OBJ, QMP_ARRAY, QMP_NUM };

struct qmp_arg {
    const char *name;
    enum qmp_type type;
    bool optional;
    const char *of;
};

/* Ends with name NULL. */
struct qmp_event {
    const char *name;
    const struct qmp_arg *data; /* NULL = no members */
    const char *help;           /* when it is sent, for the manual */
};
extern const struct qmp_event qmp_events[];
const struct qmp_event *qmp_event_find(const char *name);

#endif
