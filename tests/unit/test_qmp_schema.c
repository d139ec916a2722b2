/* query-qmp-schema comes from the QMP tables: every command and event
 * is there with its meta-type, every type an entry names is defined
 * once, and a table naming a type nobody defines is refused with its
 * name.  Entries other people add are covered as they appear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "monitor/qmp.h"

static json_t *schema;
static json_t *by_name; /* name -> entry */

static int setup(void **state)
{
    (void)state;
    Error *err = NULL;
    schema = qmp_schema(qmp_commands, &err);
    if (!schema) {
        fail_msg("%s", error_get_pretty(err));
    }
    by_name = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(schema, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        assert_non_null(name);
        if (json_object_get(by_name, name)) {
            fail_msg("schema entry '%s' appears twice", name);
        }
        json_object_set(by_name, name, e);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(by_name);
    json_decref(schema);
    return 0;
}

static const char *meta_of(const char *name)
{
    json_t *e = json_object_get(by_name, name);
    if (!e) {
        fail_msg("no schema entry '%s'", name);
    }
    return json_string_value(json_object_get(e, "meta-type"));
}

static const char *field(json_t *e, const char *key)
{
    const char *v = json_string_value(json_object_get(e, key));
    if (!v) {
        fail_msg("schema entry '%s' lacks '%s'",
                 json_string_value(json_object_get(e, "name")), key);
    }
    return v;
}

static void test_every_command_is_described(void **state)
{
    (void)state;
    for (const struct qmp_cmd *c = qmp_commands; c->name; c++) {
        assert_string_equal(meta_of(c->name), "command");
        json_t *e = json_object_get(by_name, c->name);
        assert_string_equal(meta_of(field(e, "arg-type")), "object");
        meta_of(field(e, "ret-type"));
    }
}

static void test_every_event_is_described(void **state)
{
    (void)state;
    for (const struct qmp_event *ev = qmp_events; ev->name; ev++) {
        assert_string_equal(meta_of(ev->name), "event");
        json_t *e = json_object_get(by_name, ev->name);
        assert_string_equal(meta_of(field(e, "arg-type")), "object");
        assert_non_null(ev->help);
    }
}

/* Members, array elements: every type named is an entry. */
static void test_every_type_named_is_defined(void **state)
{
    (void)state;
    size_t i;
    json_t *e;
    json_array_foreach(schema, i, e)
    {
        const char *meta = field(e, "meta-type");
        if (strcmp(meta, "array") == 0) {
            meta_of(field(e, "element-type"));
        } else if (strcmp(meta, "object") == 0) {
            size_t j;
            json_t *m;
            json_array_foreach(json_object_get(e, "members"), j, m)
            {
                meta_of(field(m, "type"));
                json_t *def = json_object_get(m, "default");
                assert_true(!def || json_is_null(def));
            }
        } else if (strcmp(meta, "enum") == 0) {
            assert_true(json_array_size(json_object_get(e, "members")) > 0);
            assert_int_equal(json_array_size(json_object_get(e, "members")),
                             json_array_size(json_object_get(e, "values")));
        } else if (strcmp(meta, "builtin") == 0) {
            field(e, "json-type");
        } else if (strcmp(meta, "command") && strcmp(meta, "event")) {
            fail_msg("schema entry '%s' has meta-type '%s'",
                     json_string_value(json_object_get(e, "name")), meta);
        }
    }
}

/* An optional argument carries a null default; a required one none. */
static void test_arguments_follow_the_table(void **state)
{
    (void)state;
    json_t *c = json_object_get(by_name, "migrate");
    json_t *arg = json_object_get(by_name, field(c, "arg-type"));
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(arg, "members"), i, m)
    {
        const char *name = field(m, "name");
        if (strcmp(name, "uri") == 0) {
            assert_string_equal(field(m, "type"), "str");
            assert_null(json_object_get(m, "default"));
        } else if (strcmp(name, "detach") == 0) {
            assert_string_equal(field(m, "type"), "bool");
            assert_true(json_is_null(json_object_get(m, "default")));
        }
    }
    assert_int_equal(json_array_size(json_object_get(arg, "members")), 5);
}

static json_t *dummy(struct vm_session *s, json_t *args, Error **errp)
{
    (void)s;
    (void)args;
    (void)errp;
    return NULL;
}

static void test_an_undefined_type_is_refused(void **state)
{
    (void)state;
    static const struct qmp_arg args[] = {
        { "x", QMP_ARRAY, true, "NoSuchType" }, { NULL }
    };
    const struct qmp_cmd table[] = { { "bad", dummy, args, NULL }, { NULL } };
    Error *err = NULL;
    assert_null(qmp_schema(table, &err));
    assert_non_null(strstr(error_get_pretty(err), "'NoSuchType'"));
    error_free(err);
    err = NULL;

    const struct qmp_cmd any[] = { { "any", dummy, QMP_ANY_ARGS }, { NULL } };
    assert_null(qmp_schema(any, &err));
    assert_non_null(strstr(error_get_pretty(err), "'any'"));
    error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_is_described),
        cmocka_unit_test(test_every_event_is_described),
        cmocka_unit_test(test_every_type_named_is_defined),
        cmocka_unit_test(test_arguments_follow_the_table),
        cmocka_unit_test(test_an_undefined_type_is_refused),
    };
    return cmocka_run_group_tests_name("qmp schema", tests, setup, teardown);
}
