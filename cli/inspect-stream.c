/* hop inspect's engine: one forward walk over a stream in memory, with the
 * vmdesc trailer found first so device sections decode as they pass. */
#include "cli/inspect.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/inspect-ram.h"
#include "util/alloc.h"
#include "util/printable.h"
#include "vmstate/stream-walk.h"
#include "vmstate/vmdesc-decode.h"

struct inspect_ctx {
    const struct inspect_opts *o;
    json_t *report;
    json_t *records;
    json_t *devices;
    json_t *vmdesc; /* parsed trailer, or NULL */
    struct vmdesc_index vmdesc_ix;
    size_t empty_budget; /* see VMDESC_EMPTY_VALUES_MAX */
    struct inspect_ram ram;
    bool ram_seen;
    /* What the body callback learnt about the section being walked. */
    json_t *pending_fields;
    const char *pending_source;
    const char *pending_vmsd;
    long pending_vmsd_version;
};

json_t *inspect_json_name(const char *s)
{
    json_t *j = json_string(s);
    return j ? j : json_string(PRINTABLE(s));
}

static bool selected(const struct inspect_opts *o, const char *idstr,
                     uint32_t instance)
{
    if (!o->section) {
        return true;
    }
    return strcmp(o->section, idstr) == 0 &&
        (o->section_instance < 0 || (uint32_t)o->section_instance == instance);
}

static bool on_config(void *opaque, const struct stream_walk_config *cfg,
                      Error **errp)
{
    struct inspect_ctx *c = opaque;
    json_t *j = json_object();
    json_object_set_new(j, "offset", json_integer((json_int_t)cfg->offset));
    json_object_set_new(j, "size", json_integer((json_int_t)cfg->size));
    json_object_set_new(j, "machine", inspect_json_name(cfg->machine));
    if (cfg->has_page_bits) {
        json_object_set_new(j, "target_page_bits",
                            json_integer(cfg->page_bits));
    }
    json_t *caps = json_array();
    for (size_t i = 0; i < cfg->ncaps; i++) {
        json_array_append_new(caps, inspect_json_name(cfg->caps[i]));
        if (strcmp(cfg->caps[i], "x-ignore-shared") == 0) {
            c->ram.dec.ignore_shared = true;
        }
        if (strcmp(cfg->caps[i], "mapped-ram") == 0) {
            c->ram.dec.mapped_ram = true;
        }
    }
    json_object_set_new(j, "capabilities", caps);
    if (cfg->has_uuid) {
        char u[37];
        const uint8_t *b = cfg->uuid;
        snprintf(u, sizeof(u),
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                 b[10], b[11], b[12], b[13], b[14], b[15]);
        json_object_set_new(j, "uuid", json_string(u));
    }
    json_object_set_new(c->report, "configuration", j);
    json_object_set_new(c->report, "machine", inspect_json_name(cfg->machine));
    return true;
}

/* A device section: decode it by its vmdesc entry, or by the description
 * hook, or leave it to the walker's footer scan (sizes only). */
static int device_body(struct inspect_ctx *c,
                       const struct stream_walk_record *rec,
                       const uint8_t *body, size_t avail, size_t *used,
                       Error **errp)
{
    json_t *dev = NULL;
    const char *source = NULL;
    if (c->vmdesc) {
        dev = vmdesc_index_find(&c->vmdesc_ix, rec->idstr, rec->instance_id);
        json_incref(dev);
        source = "vmdesc";
    }
    if (!dev && c->o->describe) {
        dev = c->o->describe(c->o->describe_ctx, rec->idstr, rec->instance_id,
                             rec->version_id);
        source = "hop";
    }
    if (!dev) {
        if (c->o->verify && c->vmdesc) {
            error_setg(errp, "section at offset %llu has no vmdesc entry",
                       (unsigned long long)rec->offset);
            return STREAM_BODY_ERROR;
        }
        c->pending_source = "none";
        return STREAM_BODY_UNKNOWN;
    }
    json_t *ver = json_object_get(dev, "version");
    if (c->o->verify && json_is_integer(ver) &&
        json_integer_value(ver) != (json_int_t)rec->version_id) {
        error_setg(errp,
                   "header at offset %llu says version %u, its vmdesc "
                   "entry version %lld",
                   (unsigned long long)rec->offset, rec->version_id,
                   (long long)json_integer_value(ver));
        json_decref(dev);
        return STREAM_BODY_ERROR;
    }
    json_t *fields = NULL;
    bool ok = vmdesc_decode(dev, body, avail, rec->body_offset,
                            &c->empty_budget, &fields, used, errp);
    if (ok) {
        c->pending_fields = fields;
        c->pending_source = source;
        c->pending_vmsd = json_string_value(json_object_get(dev, "vmsd_name"));
        c->pending_vmsd_version =
            json_is_integer(ver) ? (long)json_integer_value(ver) : -1;
        /* Keep dev alive while pending_vmsd points into it. */
        json_object_set_new(c->report, "_pending", dev);
    } else {
        json_decref(dev);
    }
    return ok ? STREAM_BODY_DONE : STREAM_BODY_ERROR;
}

static int on_body(void *opaque, const struct stream_walk_record *rec,
                   const uint8_t *body, size_t avail, size_t *used,
                   Error **errp)
{
    struct inspect_ctx *c = opaque;
    if (strcmp(rec->idstr, "ram") == 0 && rec->type != STREAM_SECTION_FULL) {
        if (rec->version_id != RAM_SECTION_VERSION) {
            error_setg(errp, "RAM section version %u, expected %u",
                       rec->version_id, RAM_SECTION_VERSION);
            return STREAM_BODY_ERROR;
        }
        c->ram_seen = true;
        return inspect_ram_section(&c->ram, body, avail, rec->body_offset, used,
                                   errp)
            ? STREAM_BODY_DONE
            : STREAM_BODY_ERROR;
    }
    if (rec->type == STREAM_SECTION_FULL) {
        return device_body(c, rec, body, avail, used, errp);
    }
    return STREAM_BODY_UNKNOWN; /* other iterative state: sizes only */
}

static void take_pending(struct inspect_ctx *c, json_t *dev)
{
    if (c->pending_vmsd) {
        json_object_set_new(dev, "vmsd_name", json_string(c->pending_vmsd));
    }
    json_object_set_new(
        dev, "decoded_by",
        json_string(c->pending_source ? c->pending_source : "none"));
    if (c->pending_fields && !c->o->no_fields) {
        json_object_set_new(dev, "fields", c->pending_fields);
    } else {
        json_decref(c->pending_fields);
        json_object_set_new(dev, "fields", json_null());
    }
    c->pending_fields = NULL;
    c->pending_source = NULL;
    c->pending_vmsd = NULL;
    json_object_del(c->report, "_pending");
}

static bool on_record(void *opaque, const struct stream_walk_record *rec,
                      Error **errp)
{
    struct inspect_ctx *c = opaque;
    bool is_section =
        rec->type >= STREAM_SECTION_START && rec->type <= STREAM_SECTION_FULL;
    if (is_section && !selected(c->o, rec->idstr, rec->instance_id)) {
        json_t *unused = json_object();
        take_pending(c, unused);
        json_decref(unused);
        return true;
    }
    if (!is_section && c->o->section) {
        return true;
    }
    json_t *r = json_object();
    json_object_set_new(r, "offset", json_integer((json_int_t)rec->offset));
    json_object_set_new(r, "type", json_string(stream_record_name(rec->type)));
    json_object_set_new(r, "size", json_integer((json_int_t)rec->size));
    json_object_set_new(r, "depth", json_integer(rec->depth));
    if (is_section) {
        json_object_set_new(r, "section_id", json_integer(rec->section_id));
        json_object_set_new(r, "idstr", inspect_json_name(rec->idstr));
        json_object_set_new(r, "instance_id", json_integer(rec->instance_id));
        json_object_set_new(r, "version_id", json_integer(rec->version_id));
        json_object_set_new(r, "body_size",
                            json_integer((json_int_t)rec->body_size));
    } else if (rec->type == STREAM_COMMAND) {
        json_object_set_new(r, "command", json_integer(rec->cmd));
        json_object_set_new(r, "command_name",
                            json_string(stream_command_name(rec->cmd)));
        json_object_set_new(r, "command_length", json_integer(rec->cmd_len));
    }
    json_array_append_new(c->records, r);
    if (rec->type == STREAM_SECTION_FULL) {
        json_t *dev = json_object();
        json_object_set_new(dev, "idstr", inspect_json_name(rec->idstr));
        json_object_set_new(dev, "instance_id", json_integer(rec->instance_id));
        json_object_set_new(dev, "section_id", json_integer(rec->section_id));
        json_object_set_new(dev, "version_id", json_integer(rec->version_id));
        json_object_set_new(dev, "offset",
                            json_integer((json_int_t)rec->offset));
        json_object_set_new(dev, "size", json_integer((json_int_t)rec->size));
        take_pending(c, dev);
        json_array_append_new(c->devices, dev);
    }
    return true;
}

static const struct stream_walk_ops inspect_walk_ops = {
    .config = on_config,
    .body = on_body,
    .record = on_record,
};

bool inspect_stream(const uint8_t *data, size_t len,
                    const struct inspect_opts *opts, json_t **report,
                    Error **errp)
{
    struct inspect_ctx c = { .o = opts,
                             .empty_budget = VMDESC_EMPTY_VALUES_MAX };
    c.report = json_object();
    c.records = json_array();
    c.devices = json_array();
    *report = c.report;
    json_object_set_new(c.report, "size", json_integer((json_int_t)len));
    json_object_set_new(c.report, "machine", json_null());
    if (!inspect_ram_init(&c.ram, opts, errp)) {
        inspect_ram_cleanup(&c.ram, true);
        return false;
    }

    uint64_t voff;
    const char *jtext;
    size_t jlen;
    if (stream_find_vmdesc(data, len, &voff, &jtext, &jlen)) {
        json_error_t jerr;
        c.vmdesc = json_loadb(jtext, jlen, 0, &jerr);
        if (!json_is_object(c.vmdesc)) {
            json_decref(c.vmdesc);
            c.vmdesc = NULL;
        }
    }
    vmdesc_index_init(&c.vmdesc_ix, c.vmdesc);

    struct stream_walk_result res;
    bool ok = stream_walk(data, len, &inspect_walk_ops, &c, &res, errp);
    json_decref(c.pending_fields);
    json_object_del(c.report, "_pending");
    if (ok && !inspect_ram_finish(&c.ram, errp)) {
        ok = false;
    }

    json_object_set_new(c.report, "version", json_integer(res.version));
    json_object_set_new(c.report, "complete", json_boolean(ok && res.complete));
    if (res.has_vmdesc) {
        json_t *v = json_object();
        json_object_set_new(v, "offset",
                            json_integer((json_int_t)res.vmdesc_offset));
        json_object_set_new(
            v, "size", json_integer((json_int_t)(len - res.vmdesc_offset)));
        json_t *ps = json_object_get(c.vmdesc, "page_size");
        json_object_set(v, "page_size", ps ? ps : json_null());
        json_object_set_new(c.report, "vmdesc", v);
    } else {
        json_object_set_new(c.report, "vmdesc", json_null());
    }
    json_object_set_new(c.report, "records", c.records);
    json_object_set_new(c.report, "devices", c.devices);
    if (c.ram_seen && !opts->no_ram && selected(opts, "ram", 0)) {
        json_object_set_new(c.report, "ram", inspect_ram_report(&c.ram));
    } else {
        json_object_set_new(c.report, "ram", json_null());
    }
    inspect_ram_cleanup(&c.ram, !ok);
    vmdesc_index_free(&c.vmdesc_ix);
    json_decref(c.vmdesc);
    return ok;
}

bool inspect_channel(Channel *f, const struct inspect_opts *opts,
                     json_t **report, Error **errp)
{
    *report = NULL;
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = xmalloc(cap);
    while (!chan_at_eof(f)) {
        if (len == cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t n = cap - len < 65536 ? cap - len : 65536;
        size_t got = chan_peek(f, buf + len, n > 512 ? 512 : n, 0);
        if (got == 0 || !chan_skip(f, got)) {
            break;
        }
        len += got;
    }
    bool ok =
        chan_check(f, errp) && inspect_stream(buf, len, opts, report, errp);
    free(buf);
    return ok;
}
