/* QMP describing itself from its tables: query-commands, query-events
 * and query-qmp-schema, whose entries have the shape of QEMU's
 * SchemaInfo (a "meta-type" of builtin, enum, array, object, command or
 * event), so QEMU's clients can read it.  Types are named, not numbered;
 * a command's arguments and an event's data are objects named
 * "q_obj_NAME-arg", and "q_empty" has no members. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/qmp-cmds.h"
#include "util/alloc.h"

#define EMPTY_TYPE "q_empty"

static const struct {
    const char *name, *json_type;
} builtins[] = {
    { "str", "string" },    { "int", "int" },   { "bool", "boolean" },
    { "number", "number" }, { "null", "null" }, { "any", "value" },
};

/* The schema being written: its entries, the names already there, and
 * the first type name no table defines. */
struct schema {
    json_t *list;
    json_t *seen;
    char *missing;
};

static const char *use_type(struct schema *sc, const char *name);

void qmp_arg_type_name(const struct qmp_arg *a, char *buf, size_t len)
{
    static const char *const plain[] = {
        [QMP_STR] = "str", [QMP_INT] = "int",   [QMP_BOOL] = "bool",
        [QMP_OBJ] = "any", [QMP_ARRAY] = "any", [QMP_NUM] = "number",
    };
    const char *t = a->of ? a->of : plain[a->type];
    snprintf(buf, len, a->type == QMP_ARRAY ? "[%s]" : "%s", t);
}

static void add_entry(struct schema *sc, const char *name, const char *meta,
                      json_t *fields)
{
    json_t *e = json_pack("{s:s,s:s}", "name", name, "meta-type", meta);
    json_object_update(e, fields);
    json_decref(fields);
    json_array_append_new(sc->list, e);
}

static json_t *member_json(struct schema *sc, const struct qmp_arg *a)
{
    char type[128];
    qmp_arg_type_name(a, type, sizeof(type));
    json_t *m =
        json_pack("{s:s,s:s}", "name", a->name, "type", use_type(sc, type));
    if (a->optional) {
        /* QEMU's mark of an optional member: a null default. */
        json_object_set_new(m, "default", json_null());
    }
    return m;
}

/* An object type whose members are args (NULL: none). */
static void add_object(struct schema *sc, const char *name,
                       const struct qmp_arg *args)
{
    json_object_set_new(sc->seen, name, json_true());
    json_t *members = json_array();
    for (const struct qmp_arg *a = args; a && a->name; a++) {
        json_array_append_new(members, member_json(sc, a));
    }
    add_entry(sc, name, "object", json_pack("{s:o}", "members", members));
}

static void add_named(struct schema *sc, const struct qmp_schema_type *t)
{
    if (t->kind == QMP_SCHEMA_OBJECT && !t->member) {
        add_object(sc, t->name, t->members);
        return;
    }
    json_object_set_new(sc->seen, t->name, json_true());
    json_t *members = json_array();
    if (t->kind == QMP_SCHEMA_OBJECT) {
        struct qmp_arg a;
        for (size_t i = 0; t->member(i, &a); i++) {
            json_array_append_new(members, member_json(sc, &a));
        }
        add_entry(sc, t->name, "object",
                  json_pack("{s:o}", "members", members));
        return;
    }
    /* Enums carry their values twice: as members, and as the older
     * "values" list that clients before QEMU 6.2 read. */
    json_t *values = json_array();
    for (size_t i = 0;; i++) {
        const char *v = t->value ? t->value(i) : t->values[i];
        if (!v) {
            break;
        }
        json_array_append_new(members, json_pack("{s:s}", "name", v));
        json_array_append_new(values, json_string(v));
    }
    add_entry(sc, t->name, "enum",
              json_pack("{s:o,s:o}", "members", members, "values", values));
}

/* Puts the type called name (and every type it uses) in the schema once;
 * returns name. */
static const char *use_type(struct schema *sc, const char *name)
{
    if (json_object_get(sc->seen, name)) {
        return name;
    }
    size_t len = strlen(name);
    if (len > 2 && name[0] == '[' && name[len - 1] == ']') {
        char elem[128];
        snprintf(elem, sizeof(elem), "%.*s", (int)(len - 2), name + 1);
        json_object_set_new(sc->seen, name, json_true());
        add_entry(sc, name, "array",
                  json_pack("{s:s}", "element-type", use_type(sc, elem)));
        return name;
    }
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (strcmp(builtins[i].name, name) == 0) {
            json_object_set_new(sc->seen, name, json_true());
            add_entry(sc, name, "builtin",
                      json_pack("{s:s}", "json-type", builtins[i].json_type));
            return name;
        }
    }
    if (strcmp(name, EMPTY_TYPE) == 0) {
        add_object(sc, name, NULL);
        return name;
    }
    for (const struct qmp_schema_type *t = qmp_schema_types; t->name; t++) {
        if (strcmp(t->name, name) == 0) {
            add_named(sc, t);
            return name;
        }
    }
    if (!sc->missing) {
        sc->missing = xstrdup(name);
    }
    return name;
}

/* The object type of a command's arguments or an event's data. */
static const char *implicit_object(struct schema *sc, const char *owner,
                                   const struct qmp_arg *args, char *buf,
                                   size_t len)
{
    if (!args) {
        return use_type(sc, EMPTY_TYPE);
    }
    snprintf(buf, len, "q_obj_%s-arg", owner);
    add_object(sc, buf, args);
    return buf;
}

json_t *qmp_schema(const struct qmp_cmd *table, Error **errp)
{
    struct schema sc = { json_array(), json_object(), NULL };
    for (const struct qmp_cmd *c = table; c->name; c++) {
        char buf[160];
        const char *arg_type;
        if (c->args == QMP_ANY_ARGS && !c->arg_type) {
            error_setg(errp,
                       "QMP schema: command '%s' checks its own "
                       "arguments but names no arg_type",
                       c->name);
            json_decref(sc.seen);
            json_decref(sc.list);
            return NULL;
        }
        if (c->args == QMP_ANY_ARGS) {
            arg_type = use_type(&sc, c->arg_type);
        } else {
            arg_type = implicit_object(&sc, c->name, c->args, buf, sizeof(buf));
        }
        const char *ret = use_type(&sc, c->ret ? c->ret : EMPTY_TYPE);
        add_entry(
            &sc, c->name, "command",
            json_pack("{s:s,s:s}", "arg-type", arg_type, "ret-type", ret));
    }
    for (const struct qmp_event *e = qmp_events; e->name; e++) {
        char buf[160];
        const char *arg_type =
            implicit_object(&sc, e->name, e->data, buf, sizeof(buf));
        add_entry(&sc, e->name, "event",
                  json_pack("{s:s}", "arg-type", arg_type));
    }
    json_decref(sc.seen);
    if (sc.missing) {
        error_setg(errp,
                   "QMP schema: type '%s' is not defined in "
                   "qmp_schema_types",
                   sc.missing);
        free(sc.missing);
        json_decref(sc.list);
        return NULL;
    }
    return sc.list;
}

QMP_FN(qmp_query_qmp_schema)
{
    return qmp_schema(qmp_table_of(s), errp);
}

QMP_FN(qmp_query_commands)
{
    json_t *list = json_array();
    for (const struct qmp_cmd *c = qmp_table_of(s); c->name; c++) {
        json_array_append_new(list, json_pack("{s:s}", "name", c->name));
    }
    return list;
}

QMP_FN(qmp_query_events)
{
    json_t *list = json_array();
    for (const struct qmp_event *e = qmp_events; e->name; e++) {
        json_array_append_new(list, json_pack("{s:s}", "name", e->name));
    }
    return list;
}
