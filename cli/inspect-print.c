/* hop inspect's text output, made from the same report as --json. */
#include "cli/inspect.h"

#include <jansson.h>
#include <string.h>

#include "util/printable.h"

static long long geti(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static const char *gets(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Every string of the report that came from the file (names, the
 * machine type) goes to the terminal through this. */
#define NAME(o, key) PRINTABLE(gets((o), (key)))

static void print_table(FILE *out, json_t *report)
{
    fprintf(out, "%12s  %-7s %5s  %-28s %5s %4s %12s\n", "OFFSET", "TYPE", "ID",
            "IDSTR", "INST", "VER", "SIZE");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(report, "records"), i, r)
    {
        const char *type = gets(r, "type");
        char name[64];
        if (json_object_get(r, "idstr")) {
            snprintf(name, sizeof(name), "%s%s", geti(r, "depth") ? "  " : "",
                     NAME(r, "idstr"));
            fprintf(out, "%12lld  %-7s %5lld  %-28s %5lld %4lld %12lld\n",
                    geti(r, "offset"), type, geti(r, "section_id"), name,
                    geti(r, "instance_id"), geti(r, "version_id"),
                    geti(r, "size"));
            continue;
        }
        if (json_object_get(r, "command_name")) {
            snprintf(name, sizeof(name), "%s (%lld bytes)",
                     gets(r, "command_name"), geti(r, "command_length"));
        } else if (strcmp(type, "CONFIG") == 0) {
            snprintf(name, sizeof(name), "%s", NAME(report, "machine"));
        } else {
            name[0] = '\0';
        }
        fprintf(out, "%12lld  %-7s %5s  %-28s %5s %4s %12lld\n",
                geti(r, "offset"), type, "-", name, "-", "-", geti(r, "size"));
    }
}

static bool is_scalar(json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

static void print_scalar(FILE *out, json_t *v)
{
    if (json_is_integer(v)) {
        long long x = (long long)json_integer_value(v);
        if (x >= 10) {
            fprintf(out, "%lld (0x%llx)", x, (unsigned long long)x);
        } else {
            fprintf(out, "%lld", x);
        }
    } else if (json_is_string(v)) {
        fputs(json_string_value(v), out);
    } else if (json_is_true(v)) {
        fputs("true", out);
    } else if (json_is_false(v)) {
        fputs("false", out);
    } else {
        fputs("null", out);
    }
}

/* name is printable already. */
static void print_value(FILE *out, const char *name, json_t *v, int indent)
{
    if (is_scalar(v)) {
        fprintf(out, "%*s%s = ", indent, "", name);
        print_scalar(out, v);
        fputc('\n', out);
        return;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        bool flat = true;
        json_array_foreach(v, i, e)
        {
            flat = flat && is_scalar(e);
        }
        if (flat && json_array_size(v) <= 16) {
            fprintf(out, "%*s%s = [", indent, "", name);
            json_array_foreach(v, i, e)
            {
                fputs(i ? ", " : "", out);
                print_scalar(out, e);
            }
            fputs("]\n", out);
            return;
        }
        json_array_foreach(v, i, e)
        {
            char sub[300];
            snprintf(sub, sizeof(sub), "%s[%zu]", name, i);
            print_value(out, sub, e, indent);
        }
        return;
    }
    fprintf(out, "%*s%s:\n", indent, "", name);
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e)
    {
        print_value(out, PRINTABLE(k), e, indent + 2);
    }
}

static void print_devices(FILE *out, json_t *report)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(report, "devices"), i, d)
    {
        fprintf(out, "\n%s (instance %lld, version %lld, section %lld",
                NAME(d, "idstr"), geti(d, "instance_id"), geti(d, "version_id"),
                geti(d, "section_id"));
        if (json_object_get(d, "vmsd_name")) {
            fprintf(out, ", vmsd %s", NAME(d, "vmsd_name"));
        }
        fprintf(out, ", %lld bytes at offset %lld)", geti(d, "size"),
                geti(d, "offset"));
        json_t *fields = json_object_get(d, "fields");
        if (!json_is_object(fields)) {
            fprintf(out, ": %s\n",
                    strcmp(gets(d, "decoded_by"), "none") == 0
                        ? "no description, size only"
                        : "fields not shown");
            continue;
        }
        fputs(":\n", out);
        const char *k;
        json_t *v;
        json_object_foreach(fields, k, v)
        {
            print_value(out, PRINTABLE(k), v, 2);
        }
    }
}

static void print_ram(FILE *out, json_t *ram)
{
    json_t *blocks = json_object_get(ram, "blocks");
    fprintf(out,
            "\nRAM: %zu blocks, %lld bytes (0x%llx), page size %lld, "
            "%lld sections\n",
            json_array_size(blocks), geti(ram, "total_length"),
            (unsigned long long)geti(ram, "total_length"),
            geti(ram, "page_size"), geti(ram, "sections"));
    fprintf(out, "  %-26s %12s %9s %9s %9s %10s %14s\n", "BLOCK", "LENGTH",
            "NORMAL", "ZERO", "XBZRLE", "COMPRESSED", "STREAM BYTES");
    size_t i;
    json_t *b;
    json_array_foreach(blocks, i, b)
    {
        json_t *p = json_object_get(b, "pages");
        fprintf(out, "  %-26s %12llx %9lld %9lld %9lld %10lld %14lld\n",
                NAME(b, "name"), (unsigned long long)geti(b, "length"),
                geti(p, "normal"), geti(p, "zero"), geti(p, "xbzrle"),
                geti(p, "compressed"), geti(b, "stream_bytes"));
    }
    json_t *p = json_object_get(ram, "pages");
    fprintf(out, "  %-26s %12llx %9lld %9lld %9lld %10lld %14lld\n", "total",
            (unsigned long long)geti(ram, "total_length"), geti(p, "normal"),
            geti(p, "zero"), geti(p, "xbzrle"), geti(p, "compressed"),
            geti(ram, "stream_bytes"));
    if (!json_is_true(json_object_get(ram, "mapped_ram"))) {
        return;
    }
    fprintf(out,
            "  mapped-ram: pages at fixed offsets; NORMAL = pages written, "
            "ZERO = pages left out\n");
    fprintf(out, "  %-26s %14s %14s %14s\n", "BLOCK", "BITMAP AT", "PAGES AT",
            "PAGES WRITTEN");
    json_array_foreach(blocks, i, b)
    {
        json_t *m = json_object_get(b, "mapped_ram");
        fprintf(out, "  %-26s %14lld %14lld %14lld\n", NAME(b, "name"),
                geti(m, "bitmap_offset"), geti(m, "pages_offset"),
                geti(m, "pages_written"));
    }
}

void inspect_print(FILE *out, json_t *report, const struct inspect_opts *opts,
                   bool table, bool fields)
{
    json_t *vmdesc = json_object_get(report, "vmdesc");
    if (table) {
        json_t *m = json_object_get(report, "machine");
        fprintf(out,
                "migration stream version %lld, %lld bytes, machine %s, "
                "%s\n",
                geti(report, "version"), geti(report, "size"),
                json_is_string(m) ? PRINTABLE(json_string_value(m))
                                  : "(no configuration)",
                json_is_true(json_object_get(report, "complete"))
                    ? "complete"
                    : "incomplete");
        if (json_is_object(vmdesc)) {
            fprintf(out, "vmdesc: %lld bytes at offset %lld\n",
                    geti(vmdesc, "size"), geti(vmdesc, "offset"));
        } else {
            fprintf(out,
                    "vmdesc: none; device sections are shown with "
                    "their sizes only\n");
        }
        fputc('\n', out);
        print_table(out, report);
    }
    if (fields) {
        print_devices(out, report);
    }
    json_t *ram = json_object_get(report, "ram");
    if (json_is_object(ram) && !opts->no_ram) {
        print_ram(out, ram);
    }
}
