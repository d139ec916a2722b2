/* Reading schema dumps and finding entries in them. */
#include "cli/vmstate-check.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

static const char *desc_name(json_t *entry)
{
    json_t *d = json_object_get(entry, "Description");
    return json_string_value(json_object_get(d ? d : entry, "name"));
}

json_t *vmcheck_load_schema(const char *path, Error **errp)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j && jerr.line < 0) {
        error_setg(errp, "%s", jerr.text);
        return NULL;
    }
    if (!j) {
        error_setg(errp, "%s: line %d: not JSON: %s", path, jerr.line,
                   jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        error_setg(errp,
                   "%s: expected a JSON object of device descriptions "
                   "(QEMU's -dump-vmstate layout)",
                   path);
        json_decref(j);
        return NULL;
    }
    const char *key;
    json_t *e;
    json_object_foreach(j, key, e)
    {
        if (strcmp(key, "vmschkmachine") == 0) {
            continue;
        }
        if (!json_is_object(e) ||
            !json_is_object(json_object_get(e, "Description")) ||
            !json_is_integer(json_object_get(e, "version_id"))) {
            error_setg(errp,
                       "%s: entry '%s' lacks a Description or a "
                       "version_id (expected QEMU's -dump-vmstate layout)",
                       path, key);
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

json_t *vmcheck_find_entry(json_t *schema, const char *idstr,
                           const char *vmsd_name)
{
    json_t *e = json_object_get(schema, idstr);
    if (e && strcmp(idstr, "vmschkmachine") != 0) {
        return e;
    }
    const char *slash = strrchr(idstr, '/');
    const char *tail = slash ? slash + 1 : idstr;
    const char *names[2] = { vmsd_name, tail };
    for (int n = 0; n < 2; n++) {
        if (!names[n]) {
            continue;
        }
        const char *key;
        json_object_foreach(schema, key, e)
        {
            const char *dn = desc_name(e);
            if (strcmp(key, "vmschkmachine") != 0 && dn &&
                strcmp(dn, names[n]) == 0) {
                return e;
            }
        }
    }
    return NULL;
}

static long get_long(json_t *o, const char *key, long dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long)json_integer_value(v) : dflt;
}

long vmcheck_version(json_t *entry)
{
    return get_long(
        entry, "version_id",
        get_long(json_object_get(entry, "Description"), "version_id", 0));
}

long vmcheck_min_version(json_t *entry)
{
    return get_long(entry, "minimum_version_id",
                    get_long(json_object_get(entry, "Description"),
                             "minimum_version_id", 0));
}

void vmcheck_add(json_t *findings, const char *severity, const char *path,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    json_t *f = json_object();
    json_object_set_new(f, "severity", json_string(severity));
    json_object_set_new(f, "path", json_string(path));
    json_object_set_new(f, "message", json_string(msg));
    json_array_append_new(findings, f);
    free(msg);
}

size_t vmcheck_count_errors(json_t *findings)
{
    size_t n = 0, i;
    json_t *f;
    json_array_foreach(findings, i, f)
    {
        n += strcmp(json_string_value(json_object_get(f, "severity")),
                    "error") == 0;
    }
    return n;
}
