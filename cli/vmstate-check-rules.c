/* The compatibility rules: what a build with schema `to` would fail to load
 * from a build with schema `from`.
 *
 * The wire carries fields with no names or lengths, so the rules follow
 * the bytes: a device section is sent at the sender's version_id and read
 * by the receiver at that same version; nested structs carry no version
 * and are written and read at each side's own version; subsections carry
 * theirs. */
#include "cli/vmstate-check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct cmp {
    json_t *findings;
};

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

static char *join(const char *a, const char *b)
{
    return xasprintf("%s/%s", a, b);
}

/* The fields present on the wire at version v, in order. */
static size_t wire_fields(json_t *desc, long v, json_t **out, size_t max)
{
    size_t n = 0, i;
    json_t *f;
    json_array_foreach(json_object_get(desc, "Fields"), i, f)
    {
        if (num(f, "version_id") <= v && n < max) {
            out[n++] = f;
        }
    }
    return n;
}

static bool named_in(json_t **list, size_t from, size_t n, const char *name)
{
    for (size_t i = from; i < n; i++) {
        if (strcmp(str(list[i], "field"), name) == 0) {
            return true;
        }
    }
    return false;
}

static json_t *field_named(json_t *desc, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(desc, "Fields"), i, f)
    {
        if (strcmp(str(f, "field"), name) == 0) {
            return f;
        }
    }
    return NULL;
}

static void compare_vmsd(struct cmp *c, const char *path, json_t *od,
                         json_t *nd, long over, long nver, bool nested);

static void compare_field(struct cmp *c, const char *path, json_t *of,
                          json_t *nf)
{
    json_t *os = json_object_get(of, "Description");
    json_t *ns = json_object_get(nf, "Description");
    if (!os != !ns) {
        vmcheck_add(c->findings, "error", path, "type changed: %s",
                    os ? "a nested struct became a plain field"
                       : "a plain field became a nested struct");
        return;
    }
    if (num(of, "size") != num(nf, "size")) {
        vmcheck_add(c->findings, "error", path,
                    "size changed from %ld to "
                    "%ld bytes",
                    num(of, "size"), num(nf, "size"));
    }
    bool oe = json_is_true(json_object_get(of, "field_exists"));
    bool ne = json_is_true(json_object_get(nf, "field_exists"));
    if (oe != ne) {
        vmcheck_add(c->findings, "warning", path,
                    "field_exists test %s: "
                    "the field is sent and read under different conditions",
                    ne ? "added" : "removed");
    }
    if (os) {
        compare_vmsd(c, path, os, ns, num(os, "version_id"),
                     num(ns, "version_id"), true);
    }
}

static void field_removed(struct cmp *c, const char *path, json_t *of,
                          json_t *nd, long nver)
{
    json_t *later = field_named(nd, str(of, "field"));
    if (later) {
        vmcheck_add(c->findings, "error", path,
                    "NEW reads this field only "
                    "from version %ld, but it is sent at version %ld",
                    num(later, "version_id"), nver);
    } else {
        vmcheck_add(c->findings, "error", path,
                    "field removed: NEW does not "
                    "read the %ld bytes OLD sends",
                    num(of, "size"));
    }
}

static void field_added(struct cmp *c, const char *path, json_t *nf, long over,
                        bool nested)
{
    if (json_is_true(json_object_get(nf, "field_exists"))) {
        vmcheck_add(c->findings, "warning", path,
                    "field added under a test "
                    "(field_exists): compatible only if the test is false "
                    "for streams from OLD");
    } else if (nested) {
        vmcheck_add(c->findings, "error", path,
                    "field added to a nested "
                    "struct: NEW reads %ld bytes that OLD does not send",
                    num(nf, "size"));
    } else {
        vmcheck_add(c->findings, "error", path,
                    "field added without a "
                    "version bump: NEW reads it at version %ld, which OLD "
                    "sends without it",
                    over);
    }
}

static void compare_fields(struct cmp *c, const char *path, json_t *od,
                           json_t *nd, long over, long nver, bool nested)
{
    size_t omax = json_array_size(json_object_get(od, "Fields")) + 1;
    size_t nmax = json_array_size(json_object_get(nd, "Fields")) + 1;
    json_t **ofs = xcalloc(omax, sizeof(*ofs));
    json_t **nfs = xcalloc(nmax, sizeof(*nfs));
    size_t on = wire_fields(od, over, ofs, omax);
    size_t nn = wire_fields(nd, nver, nfs, nmax);
    size_t i = 0, j = 0;
    while (i < on || j < nn) {
        const char *oname = i < on ? str(ofs[i], "field") : NULL;
        const char *nname = j < nn ? str(nfs[j], "field") : NULL;
        char *fp = join(path, oname ? oname : nname);
        if (oname && nname && strcmp(oname, nname) == 0) {
            compare_field(c, fp, ofs[i++], nfs[j++]);
        } else if (oname && nname && !named_in(nfs, j, nn, oname) &&
                   !named_in(ofs, i, on, nname)) {
            /* Same place, new name. */
            if (num(ofs[i], "size") == num(nfs[j], "size") &&
                !json_object_get(ofs[i], "Description") ==
                    !json_object_get(nfs[j], "Description")) {
                vmcheck_add(c->findings, "warning", fp,
                            "field renamed to "
                            "'%s' (same place and size: the wire is "
                            "unchanged, tools that match names are not)",
                            nname);
            } else {
                vmcheck_add(c->findings, "error", fp,
                            "field replaced by "
                            "'%s' (%ld bytes instead of %ld)",
                            nname, num(nfs[j], "size"), num(ofs[i], "size"));
            }
            compare_field(c, fp, ofs[i++], nfs[j++]);
        } else if (oname && (!nname || !named_in(nfs, j, nn, oname))) {
            field_removed(c, fp, ofs[i++], nd, nver);
        } else {
            free(fp);
            fp = join(path, nname);
            field_added(c, fp, nfs[j++], over, nested);
        }
        free(fp);
    }
    free(ofs);
    free(nfs);
}

static json_t *subsection_named(json_t *desc, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(desc, "Subsections"), i, s)
    {
        if (strcmp(str(s, "name"), name) == 0) {
            return s;
        }
    }
    return NULL;
}

static void compare_subsections(struct cmp *c, const char *path, json_t *od,
                                json_t *nd)
{
    size_t i;
    json_t *os;
    json_array_foreach(json_object_get(od, "Subsections"), i, os)
    {
        const char *name = str(os, "name");
        char *sp = join(path, name);
        json_t *ns = subsection_named(nd, name);
        if (!ns) {
            /* Name a likely new name: a subsection only NEW has. */
            const char *cand = NULL;
            size_t k;
            json_t *x;
            json_array_foreach(json_object_get(nd, "Subsections"), k, x)
            {
                if (!subsection_named(od, str(x, "name"))) {
                    cand = str(x, "name");
                    break;
                }
            }
            vmcheck_add(c->findings, "error", sp,
                        "subsection removed or "
                        "renamed%s%s%s: NEW fails to load a stream that "
                        "carries it",
                        cand ? " (now '" : "", cand ? cand : "",
                        cand ? "'?)" : "");
            free(sp);
            continue;
        }
        long v = num(os, "version_id");
        if (num(ns, "version_id") < v) {
            vmcheck_add(c->findings, "error", sp,
                        "version_id lowered from "
                        "%ld to %ld",
                        v, num(ns, "version_id"));
        } else if (num(ns, "minimum_version_id") > v) {
            vmcheck_add(c->findings, "error", sp,
                        "minimum_version_id %ld is "
                        "above the version OLD sends (%ld)",
                        num(ns, "minimum_version_id"), v);
        }
        compare_vmsd(c, sp, os, ns, v, v, false);
        free(sp);
    }
}

static void compare_vmsd(struct cmp *c, const char *path, json_t *od,
                         json_t *nd, long over, long nver, bool nested)
{
    if (strcmp(str(od, "name"), str(nd, "name")) != 0) {
        vmcheck_add(c->findings, "error", path,
                    "description name changed "
                    "from '%s' to '%s' (subsection names and vmdesc follow "
                    "it)",
                    str(od, "name"), str(nd, "name"));
    }
    compare_fields(c, path, od, nd, over, nver, nested);
    compare_subsections(c, path, od, nd);
}

static void compare_device(struct cmp *c, const char *key, json_t *o, json_t *n)
{
    long ov = vmcheck_version(o);
    long nv = vmcheck_version(n);
    long nmin = vmcheck_min_version(n);
    if (nv < ov) {
        vmcheck_add(c->findings, "error", key,
                    "version_id lowered from %ld "
                    "to %ld: NEW refuses the version OLD sends",
                    ov, nv);
    }
    if (nmin > ov) {
        vmcheck_add(c->findings, "error", key,
                    "minimum_version_id raised to "
                    "%ld, above the version OLD sends (%ld)",
                    nmin, ov);
    }
    compare_vmsd(c, key, json_object_get(o, "Description"),
                 json_object_get(n, "Description"), ov, ov, false);
}

json_t *vmcheck_compare(json_t *from, json_t *to)
{
    struct cmp c = { .findings = json_array() };
    const char *om = str(json_object_get(from, "vmschkmachine"), "Name");
    const char *nm = str(json_object_get(to, "vmschkmachine"), "Name");
    if (strcmp(om, nm) != 0) {
        vmcheck_add(c.findings, "error", "vmschkmachine",
                    "machine type "
                    "changed from '%s' to '%s': the loader refuses a stream "
                    "from another machine type",
                    om, nm);
    }
    const char *key;
    json_t *o;
    json_object_foreach(from, key, o)
    {
        if (strcmp(key, "vmschkmachine") == 0) {
            continue;
        }
        json_t *n = json_object_get(to, key);
        if (!n) {
            vmcheck_add(c.findings, "error", key,
                        "section removed: NEW has "
                        "no '%s' to load it into",
                        key);
            continue;
        }
        compare_device(&c, key, o, n);
    }
    return c.findings;
}
