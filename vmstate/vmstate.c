/* The state description interpreter: one walk over a table drives save
 * (with its vmdesc JSON), load and the schema dump. */
#include "vmstate/vmstate.h"

#include <jansson.h>
#include <string.h>

#include "vmstate/stream-format.h"

static bool field_exists(const struct vmstate_field *field, void *opaque,
                         int version_id)
{
    if (field->version_id > version_id) {
        return false;
    }
    return !field->field_exists || field->field_exists(opaque, version_id);
}

/* Element count, checked against the array's capacity. */
static bool field_count(const struct vmstate_field *field, void *opaque,
                        int *count, Error **errp)
{
    const uint8_t *p = (const uint8_t *)opaque + field->num_offset;
    int64_t n;
    if (field->flags & VMS_VARRAY_UINT8) {
        n = *(const uint8_t *)p;
    } else if (field->flags & VMS_VARRAY_UINT16) {
        n = *(const uint16_t *)p;
    } else if (field->flags & VMS_VARRAY_UINT32) {
        n = *(const uint32_t *)p;
    } else if (field->flags & VMS_VARRAY_INT32) {
        n = *(const int32_t *)p;
    } else if (field->flags & VMS_ARRAY) {
        n = field->num;
    } else {
        n = 1;
    }
    if (n < 0 || ((field->flags & VMS_VARRAY_ANY) && n > field->num)) {
        error_setg(errp,
                   "element count %lld does not fit the array "
                   "(capacity %d)",
                   (long long)n, field->num);
        return false;
    }
    *count = (int)n;
    return true;
}

/* Bytes of one element (for buffers, of the whole buffer). */
static bool field_elem_size(const struct vmstate_field *field, void *opaque,
                            size_t *size, Error **errp)
{
    if (!(field->flags & VMS_VBUFFER)) {
        *size = field->size;
        return true;
    }
    uint32_t n =
        *(const uint32_t *)((const uint8_t *)opaque + field->size_offset);
    if (n > field->size) {
        error_setg(errp, "buffer length %u is larger than the buffer (%zu)", n,
                   field->size);
        return false;
    }
    *size = n;
    return true;
}

static void *field_base(const struct vmstate_field *field, void *opaque)
{
    void *base = (uint8_t *)opaque + field->offset;
    if (field->flags & VMS_POINTER) {
        base = *(void **)base;
    }
    return base;
}

static const char *field_type_name(const struct vmstate_field *field)
{
    if (field->flags & VMS_STRUCT) {
        return "struct";
    }
    return field->info ? field->info->name : "unknown";
}

/* Whether every element of an array is described by one vmdesc entry. */
static bool can_describe_once(const struct vmstate_field *field)
{
    if (field->field_exists || (field->flags & VMS_ARRAY_OF_POINTER)) {
        return false;
    }
    if (field->flags & VMS_STRUCT) {
        if (field->vmsd->subsections && field->vmsd->subsections[0]) {
            return false;
        }
        for (const struct vmstate_field *sf = field->vmsd->fields;
             sf && sf->name; sf++) {
            if (!can_describe_once(sf)) {
                return false;
            }
        }
    }
    return true;
}

/* ---- save ---- */

static bool save_subsections(Channel *f, const struct vmstate_desc *desc,
                             void *opaque, json_t *vmdesc, Error **errp);

static bool save_element(Channel *f, const struct vmstate_field *field,
                         void *elem, size_t size, json_t *fdesc, Error **errp)
{
    if (field->flags & VMS_ARRAY_OF_POINTER) {
        elem = *(void **)elem;
        if (!elem) {
            if (fdesc) {
                json_object_set_new(fdesc, "type", json_string("nullptr"));
            }
            vmstate_info_nullptr.put(f, NULL, 1, field);
            return true;
        }
    }
    if (fdesc) {
        json_object_set_new(fdesc, "type", json_string(field_type_name(field)));
    }
    if (field->flags & VMS_STRUCT) {
        json_t *sdesc = fdesc ? json_object() : NULL;
        if (sdesc) {
            json_object_set_new(fdesc, "struct", sdesc);
        }
        return vmstate_save(f, field->vmsd, elem, sdesc, errp);
    }
    field->info->put(f, elem, size, field);
    return true;
}

static bool save_field(Channel *f, const struct vmstate_field *field,
                       void *opaque, json_t *fields, Error **errp)
{
    int n;
    size_t size;
    if (!field_count(field, opaque, &n, errp) ||
        !field_elem_size(field, opaque, &size, errp)) {
        error_prepend(errp, ": ");
        return false;
    }
    uint8_t *base = field_base(field, opaque);
    if (!base && n > 0) {
        error_setg(errp, ": pointer is NULL");
        return false;
    }
    bool once = can_describe_once(field);
    size_t stride =
        (field->flags & VMS_ARRAY_OF_POINTER) ? sizeof(void *) : field->size;
    for (int i = 0; i < n; i++) {
        json_t *fdesc = NULL;
        if (fields && (i == 0 || !once)) {
            fdesc = json_object();
            json_object_set_new(fdesc, "name", json_string(field->name));
            if (n > 1) {
                json_object_set_new(fdesc, once ? "array_len" : "index",
                                    json_integer(once ? n : i));
            }
        }
        uint64_t start = chan_tell(f);
        bool ok = save_element(f, field, base + (size_t)i * stride, size, fdesc,
                               errp);
        if (fdesc) {
            json_object_set_new(
                fdesc, "size",
                json_integer((json_int_t)(chan_tell(f) - start)));
            json_array_append_new(fields, fdesc);
        }
        if (!ok) {
            if (n > 1) {
                error_prepend(errp, "[%d]: ", i);
            } else {
                error_prepend(errp, ": ");
            }
            return false;
        }
    }
    return true;
}

bool vmstate_save(Channel *f, const struct vmstate_desc *desc, void *opaque,
                  json_t *vmdesc, Error **errp)
{
    if (desc->pre_save && !desc->pre_save(opaque, errp)) {
        error_prepend(errp, "%s: pre_save: ", desc->name);
        return false;
    }
    json_t *fields = NULL;
    if (vmdesc) {
        json_object_set_new(vmdesc, "vmsd_name", json_string(desc->name));
        json_object_set_new(vmdesc, "version", json_integer(desc->version_id));
        fields = json_array();
        json_object_set_new(vmdesc, "fields", fields);
    }
    for (const struct vmstate_field *field = desc->fields; field && field->name;
         field++) {
        if (!field_exists(field, opaque, desc->version_id)) {
            continue;
        }
        if (!save_field(f, field, opaque, fields, errp)) {
            error_prepend(errp, "%s.%s", desc->name, field->name);
            return false;
        }
    }
    if (!save_subsections(f, desc, opaque, vmdesc, errp)) {
        return false;
    }
    return !chan_has_error(f) || chan_check(f, errp);
}

static bool save_subsections(Channel *f, const struct vmstate_desc *desc,
                             void *opaque, json_t *vmdesc, Error **errp)
{
    json_t *subs = NULL;
    for (const struct vmstate_desc *const *sp = desc->subsections; sp && *sp;
         sp++) {
        const struct vmstate_desc *sub = *sp;
        if (sub->needed && !sub->needed(opaque)) {
            continue;
        }
        json_t *sdesc = NULL;
        if (vmdesc) {
            if (!subs) {
                subs = json_array();
                json_object_set_new(vmdesc, "subsections", subs);
            }
            sdesc = json_object();
            json_array_append_new(subs, sdesc);
        }
        chan_put_u8(f, STREAM_SUBSECTION);
        chan_put_counted_string(f, sub->name);
        chan_put_be32(f, (uint32_t)sub->version_id);
        if (!vmstate_save(f, sub, opaque, sdesc, errp)) {
            return false;
        }
    }
    return true;
}

/* ---- load ---- */

static bool load_field(Channel *f, const struct vmstate_field *field,
                       void *opaque, Error **errp)
{
    int n;
    size_t size;
    if (!field_count(field, opaque, &n, errp) ||
        !field_elem_size(field, opaque, &size, errp)) {
        error_prepend(errp,
                      ": at offset %llu: ", (unsigned long long)chan_tell(f));
        return false;
    }
    uint8_t *base = field_base(field, opaque);
    if (!base && n > 0) {
        error_setg(errp, ": pointer is NULL on this machine");
        return false;
    }
    size_t stride =
        (field->flags & VMS_ARRAY_OF_POINTER) ? sizeof(void *) : field->size;
    for (int i = 0; i < n; i++) {
        void *elem = base + (size_t)i * stride;
        bool ok;
        if (field->flags & VMS_ARRAY_OF_POINTER) {
            elem = *(void **)elem;
        }
        if ((field->flags & VMS_ARRAY_OF_POINTER) && !elem) {
            ok = vmstate_info_nullptr.get(f, NULL, 1, field, errp);
        } else if (field->flags & VMS_STRUCT) {
            ok = vmstate_load(f, field->vmsd, elem, field->vmsd->version_id,
                              errp);
        } else {
            uint64_t at = chan_tell(f);
            ok = field->info->get(f, elem, size, field, errp) &&
                !chan_has_error(f);
            if (!ok && chan_has_error(f)) {
                chan_check(f, errp); /* the channel names the offset */
            } else if (!ok) {
                error_prepend(errp, "at offset %llu: ", (unsigned long long)at);
            }
        }
        if (chan_has_error(f)) {
            ok = false;
            chan_check(f, errp); /* keeps an error already set */
        }
        if (!ok) {
            if (n > 1) {
                error_prepend(errp, "[%d]: ", i);
            } else {
                error_prepend(errp, ": ");
            }
            return false;
        }
    }
    return true;
}

static const struct vmstate_desc *find_subsection(
    const struct vmstate_desc *desc, const char *name)
{
    for (const struct vmstate_desc *const *sp = desc->subsections; sp && *sp;
         sp++) {
        if (strcmp((*sp)->name, name) == 0) {
            return *sp;
        }
    }
    return NULL;
}

static bool load_subsections(Channel *f, const struct vmstate_desc *desc,
                             void *opaque, Error **errp)
{
    size_t plen = strlen(desc->name);
    for (;;) {
        uint8_t hdr[2];
        char name[256];
        if (chan_peek(f, hdr, 2, 0) < 2 || hdr[0] != STREAM_SUBSECTION) {
            return true;
        }
        size_t len = hdr[1];
        if (chan_peek(f, name, len, 2) < len) {
            return true;
        }
        name[len] = '\0';
        /* A subsection of an enclosing level: not ours to take. */
        if (len < plen + 1 || strncmp(name, desc->name, plen) != 0) {
            return true;
        }
        const struct vmstate_desc *sub = find_subsection(desc, name);
        uint64_t at = chan_tell(f);
        if (!sub) {
            error_setg(errp, "%s: unknown subsection '%s' at offset %llu",
                       desc->name, name, (unsigned long long)at);
            return false;
        }
        chan_skip(f, 2 + len);
        int version = (int)chan_get_be32(f);
        if (!chan_check(f, errp)) {
            return false;
        }
        if (!vmstate_load(f, sub, opaque, version, errp)) {
            return false;
        }
    }
}

bool vmstate_load(Channel *f, const struct vmstate_desc *desc, void *opaque,
                  int version_id, Error **errp)
{
    if (version_id > desc->version_id) {
        error_setg(errp,
                   "%s: version %d is newer than this build supports "
                   "(%d)",
                   desc->name, version_id, desc->version_id);
        return false;
    }
    if (version_id < desc->minimum_version_id) {
        if (desc->load_state_old) {
            if (!desc->load_state_old(f, opaque, version_id, errp)) {
                error_prepend(errp, "%s: legacy version %d: ", desc->name,
                              version_id);
                return false;
            }
            return chan_check(f, errp);
        }
        error_setg(errp,
                   "%s: version %d is older than the oldest this build "
                   "loads (%d)",
                   desc->name, version_id, desc->minimum_version_id);
        return false;
    }
    if (desc->pre_load && !desc->pre_load(opaque, errp)) {
        error_prepend(errp, "%s: pre_load: ", desc->name);
        return false;
    }
    for (const struct vmstate_field *field = desc->fields; field && field->name;
         field++) {
        if (!field_exists(field, opaque, version_id)) {
            continue;
        }
        if (!load_field(f, field, opaque, errp)) {
            error_prepend(errp, "%s.%s", desc->name, field->name);
            return false;
        }
    }
    if (!load_subsections(f, desc, opaque, errp)) {
        return false;
    }
    if (desc->post_load && !desc->post_load(opaque, version_id, errp)) {
        error_prepend(errp, "%s: post_load: ", desc->name);
        return false;
    }
    return chan_check(f, errp);
}

/* ---- schema ---- */

json_t *vmstate_schema_json(const struct vmstate_desc *desc)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(desc->name));
    json_object_set_new(o, "version_id", json_integer(desc->version_id));
    json_object_set_new(o, "minimum_version_id",
                        json_integer(desc->minimum_version_id));
    if (desc->fields && desc->fields->name) {
        json_t *fields = json_array();
        for (const struct vmstate_field *field = desc->fields; field->name;
             field++) {
            json_t *fo = json_object();
            json_object_set_new(fo, "field", json_string(field->name));
            json_object_set_new(fo, "version_id",
                                json_integer(field->version_id));
            json_object_set_new(fo, "field_exists",
                                json_boolean(field->field_exists != NULL));
            json_object_set_new(fo, "size",
                                json_integer((json_int_t)field->size));
            if (field->vmsd) {
                json_object_set_new(fo, "Description",
                                    vmstate_schema_json(field->vmsd));
            }
            json_array_append_new(fields, fo);
        }
        json_object_set_new(o, "Fields", fields);
    }
    if (desc->subsections && desc->subsections[0]) {
        json_t *subs = json_array();
        for (const struct vmstate_desc *const *sp = desc->subsections; *sp;
             sp++) {
            json_array_append_new(subs, vmstate_schema_json(*sp));
        }
        json_object_set_new(o, "Subsections", subs);
    }
    return o;
}
