/* hop inspect --against SCHEMA: would this saved state load into a build
 * with that schema? */
#include "cli/inspect.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/vmstate-check.h"

static json_t *subsection_named(json_t *desc, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(desc, "Subsections"), i, s)
    {
        const char *n = json_string_value(json_object_get(s, "name"));
        if (n && strcmp(n, name) == 0) {
            return s;
        }
    }
    return NULL;
}

/* Subsections the stream carries (keys of decoded fields that name a
 * subsection of desc: "<vmsd>/<suffix>") must be known and loadable. */
static void check_subsections(json_t *findings, const char *path,
                              json_t *fields, json_t *desc)
{
    const char *dname = json_string_value(json_object_get(desc, "name"));
    const char *key;
    json_t *v;
    json_object_foreach(fields, key, v)
    {
        size_t dl = dname ? strlen(dname) : 0;
        if (!json_is_object(v) || !dname || strncmp(key, dname, dl) != 0 ||
            key[dl] != '/') {
            continue;
        }
        char sp[600];
        snprintf(sp, sizeof(sp), "%s/%s", path, key);
        json_t *s = subsection_named(desc, key);
        if (!s) {
            vmcheck_add(findings, "error", sp,
                        "the stream carries this "
                        "subsection, the schema does not know it");
            continue;
        }
        check_subsections(findings, sp, v, s);
    }
}

json_t *inspect_against(json_t *report, json_t *schema)
{
    json_t *findings = json_array();
    json_t *m = json_object_get(report, "machine");
    const char *sm = json_string_value(
        json_object_get(json_object_get(schema, "vmschkmachine"), "Name"));
    if (json_is_string(m) && sm && strcmp(json_string_value(m), sm) != 0) {
        vmcheck_add(findings, "error", "configuration",
                    "the stream is from "
                    "machine type '%s', the schema's is '%s'",
                    json_string_value(m), sm);
    }
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(report, "devices"), i, d)
    {
        const char *idstr = json_string_value(json_object_get(d, "idstr"));
        long inst = (long)json_integer_value(json_object_get(d, "instance_id"));
        long ver = (long)json_integer_value(json_object_get(d, "version_id"));
        const char *vmsd = json_string_value(json_object_get(d, "vmsd_name"));
        char path[300];
        snprintf(path, sizeof(path), "%s:%ld", idstr, inst);
        json_t *e = vmcheck_find_entry(schema, idstr, vmsd);
        if (!e) {
            vmcheck_add(findings, "error", path,
                        "section unknown to the "
                        "schema: no device to load it into");
            continue;
        }
        long max = vmcheck_version(e), min = vmcheck_min_version(e);
        if (ver > max) {
            vmcheck_add(findings, "error", path,
                        "version %ld is newer than "
                        "the schema's version_id %ld",
                        ver, max);
        } else if (ver < min) {
            vmcheck_add(findings, "error", path,
                        "version %ld is older than "
                        "the schema's minimum_version_id %ld",
                        ver, min);
        }
        json_t *fields = json_object_get(d, "fields");
        if (json_is_object(fields)) {
            check_subsections(findings, path, fields,
                              json_object_get(e, "Description"));
        }
    }
    return findings;
}
