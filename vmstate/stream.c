/* Section stream writer and loader. */
#include "vmstate/stream.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/be.h"
#include "util/lookup.h"
#include "util/printable.h"
#include "vmstate/stream-format.h"
#include "util/fault.h"

/* The longest vmdesc the loader accepts. */
#define VMDESC_MAX (64u << 20)

struct section_entry {
    char idstr[256];
    int instance_id;
    uint32_t section_id;
    int version_id;
    const struct vmstate_desc *desc;    /* table-described device */
    const struct live_handler_ops *ops; /* or live handler */
    void *opaque;
    /* load-time bookkeeping */
    uint32_t load_id; /* the section id the stream uses */
    bool seen;
    bool load_setup_done;
    struct section_entry *next;
};

/* The configuration section, described by a table like any device. */
#define STREAM_MAX_CAPS 8
typedef char stream_cap_name[256];

struct stream_config {
    uint32_t name_len;
    uint8_t name[256];
    /* Capabilities both ends must agree on (QEMU validates only
     * x-ignore-shared): their names, sent when there is one. */
    uint32_t caps_count;
    stream_cap_name caps[STREAM_MAX_CAPS];
    bool send_uuid; /* validate-uuid: carry the machine's UUID */
    uint8_t uuid[16];
    bool got_uuid; /* loading: the subsection was there */
};

struct section_registry {
    char *machine;
    struct section_entry *head;
    struct section_entry **tail;
    uint32_t next_section_id;
    struct stream_config config;
    bool have_uuid;
    uint8_t uuid[16];
    bool validate_uuid;
    bool ignore_shared; /* x-ignore-shared on at this end */
    bool return_path;   /* a save asks for the return path */
    bool postcopy;      /* a save sends POSTCOPY_ADVISE */
    uint8_t postcopy_advise[16];
    bool mapped_ram; /* saving: announce it; loading: the stream's */
    /* Of the sections stream_save_iterate visits, the one that found the
     * window spent last time: the next call starts there, so a section
     * that always fills it (a drive written as fast as the link goes)
     * cannot keep the ones after it from ever sending. */
    unsigned iterate_from;
};

/* A capability name: u8 length, then the bytes. */
static bool get_capability(Channel *f, void *pv, size_t size,
                           const struct vmstate_field *field, Error **errp)
{
    char *name = pv;
    uint8_t len = chan_get_u8(f);
    if (len >= size) {
        error_setg(errp, "capability name of %u bytes", len);
        return false;
    }
    if (!chan_get_buffer(f, name, len)) {
        return chan_check(f, errp);
    }
    name[len] = '\0';
    return true;
}

static void put_capability(Channel *f, const void *pv, size_t size,
                           const struct vmstate_field *field)
{
    size_t len = strnlen(pv, size < 255 ? size : 255);
    chan_put_u8(f, (uint8_t)len);
    chan_put_buffer(f, pv, len);
}

static const struct vmstate_info vmstate_info_capability = {
    .name = "capability",
    .get = get_capability,
    .put = put_capability,
};

static bool config_caps_needed(void *opaque)
{
    return ((struct stream_config *)opaque)->caps_count > 0;
}

static bool config_caps_pre_load(void *opaque, Error **errp)
{
    ((struct stream_config *)opaque)->caps_count = 0;
    return true;
}

static bool config_caps_post_load(void *opaque, int version_id, Error **errp)
{
    struct stream_config *c = opaque;
    if (c->caps_count > STREAM_MAX_CAPS) {
        error_setg(errp, "%u capabilities (at most %d)", c->caps_count,
                   STREAM_MAX_CAPS);
        return false;
    }
    return true;
}

static const struct vmstate_desc config_caps_desc = {
    .name = "configuration/capabilities",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = config_caps_needed,
    .pre_load = config_caps_pre_load,
    .post_load = config_caps_post_load,
    .fields =
        (const struct vmstate_field[]){
            VMSTATE_UINT32(caps_count, struct stream_config),
            VMSTATE_VARRAY_UINT32(caps, struct stream_config, caps_count, 0,
                                  vmstate_info_capability, stream_cap_name),
            VMSTATE_END_OF_LIST() },
};

static bool config_uuid_needed(void *opaque)
{
    return ((struct stream_config *)opaque)->send_uuid;
}

static bool config_uuid_post_load(void *opaque, int version_id, Error **errp)
{
    ((struct stream_config *)opaque)->got_uuid = true;
    return true;
}

static const struct vmstate_desc config_uuid_desc = {
    .name = "configuration/uuid",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = config_uuid_needed,
    .post_load = config_uuid_post_load,
    .fields =
        (const struct vmstate_field[]){
            VMSTATE_BUFFER(uuid, struct stream_config), VMSTATE_END_OF_LIST() },
};

static const struct vmstate_field config_fields[] = {
    VMSTATE_UINT32(name_len, struct stream_config),
    VMSTATE_VBUFFER_UINT32(name, struct stream_config, name_len),
    VMSTATE_END_OF_LIST()
};

static const struct vmstate_desc config_desc = {
    .name = "configuration",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = config_fields,
    /* In QEMU's order: capabilities, then the UUID. */
    .subsections =
        (const struct vmstate_desc *const[]){ &config_caps_desc,
                                              &config_uuid_desc, NULL },
};

struct section_registry *section_registry_new(const char *machine)
{
    struct section_registry *reg = xcalloc(1, sizeof(*reg));
    reg->machine = xstrdup(machine);
    reg->tail = &reg->head;
    return reg;
}

void section_registry_free(struct section_registry *reg)
{
    if (!reg) {
        return;
    }
    struct section_entry *e = reg->head;
    while (e) {
        struct section_entry *next = e->next;
        free(e);
        e = next;
    }
    free(reg->machine);
    free(reg);
}

const char *section_registry_machine(const struct section_registry *reg)
{
    return reg->machine;
}

void section_registry_set_uuid(struct section_registry *reg,
                               const uint8_t uuid[16])
{
    reg->have_uuid = uuid != NULL;
    if (uuid) {
        memcpy(reg->uuid, uuid, 16);
    }
}

void section_registry_validate_uuid(struct section_registry *reg, bool on)
{
    reg->validate_uuid = on;
}

void section_registry_ignore_shared(struct section_registry *reg, bool on)
{
    reg->ignore_shared = on;
}

void section_registry_return_path(struct section_registry *reg, bool on)
{
    reg->return_path = on;
}

void section_registry_postcopy(struct section_registry *reg,
                               const uint8_t advise[16])
{
    reg->postcopy = advise != NULL;
    if (advise) {
        memcpy(reg->postcopy_advise, advise, 16);
    }
}

void stream_put_command(Channel *f, uint16_t cmd, const uint8_t *data,
                        uint16_t len)
{
    chan_put_u8(f, STREAM_COMMAND);
    chan_put_be16(f, cmd);
    chan_put_be16(f, len);
    chan_put_buffer(f, data, len);
}

void section_registry_mapped_ram(struct section_registry *reg, bool on)
{
    reg->mapped_ram = on;
}

bool section_registry_get_mapped_ram(const struct section_registry *reg)
{
    return reg->mapped_ram;
}

bool section_registry_uuid(const struct section_registry *reg, uint8_t out[16])
{
    if (reg->have_uuid) {
        memcpy(out, reg->uuid, 16);
    }
    return reg->have_uuid;
}

static struct section_entry *find_entry(const struct section_registry *reg,
                                        const char *idstr, int instance_id)
{
    for (struct section_entry *e = reg->head; e; e = e->next) {
        if (e->instance_id == instance_id && strcmp(e->idstr, idstr) == 0) {
            return e;
        }
    }
    return NULL;
}

static int add_entry(struct section_registry *reg, const char *idstr,
                     int instance_id, int version_id,
                     const struct vmstate_desc *desc,
                     const struct live_handler_ops *ops, void *opaque,
                     Error **errp)
{
    if (strlen(idstr) == 0 || strlen(idstr) > 255) {
        error_setg(errp, "section name '%s' must be 1 to 255 bytes", idstr);
        return -1;
    }
    if (instance_id < 0) {
        instance_id = 0;
        while (find_entry(reg, idstr, instance_id)) {
            instance_id++;
        }
    } else if (find_entry(reg, idstr, instance_id)) {
        error_setg(errp, "section '%s' instance %d is already registered",
                   idstr, instance_id);
        return -1;
    }
    struct section_entry *e = xcalloc(1, sizeof(*e));
    strcpy(e->idstr, idstr);
    e->instance_id = instance_id;
    e->section_id = reg->next_section_id++;
    e->version_id = version_id;
    e->desc = desc;
    e->ops = ops;
    e->opaque = opaque;
    *reg->tail = e;
    reg->tail = &e->next;
    return instance_id;
}

int section_register_vmsd(struct section_registry *reg, const char *idstr,
                          int instance_id, const struct vmstate_desc *desc,
                          void *opaque, Error **errp)
{
    return add_entry(reg, idstr, instance_id, desc->version_id, desc, NULL,
                     opaque, errp);
}

int section_register_live(struct section_registry *reg, const char *idstr,
                          int instance_id, int version_id,
                          const struct live_handler_ops *ops, void *opaque,
                          Error **errp)
{
    return add_entry(reg, idstr, instance_id, version_id, NULL, ops, opaque,
                     errp);
}

void section_unregister(struct section_registry *reg, const char *idstr,
                        int instance_id)
{
    for (struct section_entry **pp = &reg->head; *pp; pp = &(*pp)->next) {
        struct section_entry *e = *pp;
        if (e->instance_id == instance_id && strcmp(e->idstr, idstr) == 0) {
            *pp = e->next;
            if (reg->tail == &e->next) {
                reg->tail = pp;
            }
            free(e);
            return;
        }
    }
}

void section_foreach_vmsd(const struct section_registry *reg,
                          section_visit_fn fn, void *ctx)
{
    for (struct section_entry *e = reg->head; e; e = e->next) {
        if (e->desc) {
            fn(e->idstr, e->instance_id, e->desc, e->opaque, ctx);
        }
    }
}

/* ---- writing ---- */

/* A live handler taking part in this save. */
static bool saves_live(const struct section_entry *e)
{
    return e->ops && (!e->ops->save_active || e->ops->save_active(e->opaque));
}

static void put_section_header(Channel *f, uint8_t type,
                               const struct section_entry *e)
{
    chan_put_u8(f, type);
    chan_put_be32(f, e->section_id);
    if (type == STREAM_SECTION_START || type == STREAM_SECTION_FULL) {
        chan_put_counted_string(f, e->idstr);
        chan_put_be32(f, (uint32_t)e->instance_id);
        chan_put_be32(f, (uint32_t)e->version_id);
    }
}

static void put_section_footer(Channel *f, const struct section_entry *e)
{
    chan_put_u8(f, STREAM_SECTION_FOOTER);
    chan_put_be32(f, e->section_id);
}

static bool section_failed(const struct section_entry *e, Error **errp)
{
    error_prepend(errp, "section '%s' instance %d: ", e->idstr, e->instance_id);
    return false;
}

void stream_save_header(Channel *f)
{
    chan_put_be32(f, STREAM_MAGIC);
    chan_put_be32(f, STREAM_VERSION);
}

bool stream_save_setup(struct section_registry *reg, Channel *f, Error **errp)
{
    stream_save_header(f);
    return stream_save_setup_sections(reg, f, errp);
}

bool stream_save_setup_sections(struct section_registry *reg, Channel *f,
                                Error **errp)
{
    reg->iterate_from = 0;
    chan_put_u8(f, STREAM_CONFIGURATION);
    size_t len = strlen(reg->machine);
    reg->config.name_len = (uint32_t)(len > 255 ? 255 : len);
    memcpy(reg->config.name, reg->machine, reg->config.name_len);
    reg->config.caps_count = 0;
    if (reg->ignore_shared) {
        snprintf(reg->config.caps[reg->config.caps_count++],
                 sizeof(reg->config.caps[0]), "x-ignore-shared");
    }
    if (reg->mapped_ram) {
        snprintf(reg->config.caps[reg->config.caps_count++],
                 sizeof(reg->config.caps[0]), "mapped-ram");
    }
    reg->config.send_uuid = reg->validate_uuid && reg->have_uuid;
    memcpy(reg->config.uuid, reg->uuid, 16);
    if (!vmstate_save(f, &config_desc, &reg->config, NULL, errp)) {
        return false;
    }
    if (reg->return_path) {
        /* Where QEMU asks: after the configuration, then a first PING. */
        uint8_t one[4] = { 0, 0, 0, 1 };
        stream_put_command(f, STREAM_CMD_OPEN_RETURN_PATH, NULL, 0);
        stream_put_command(f, STREAM_CMD_PING, one, sizeof(one));
    }
    if (reg->postcopy) {
        stream_put_command(f, STREAM_CMD_POSTCOPY_ADVISE, reg->postcopy_advise,
                           sizeof(reg->postcopy_advise));
    }

    for (struct section_entry *e = reg->head; e; e = e->next) {
        if (!saves_live(e) || !e->ops->save_setup) {
            continue;
        }
        put_section_header(f, STREAM_SECTION_START, e);
        if (!e->ops->save_setup(f, e->opaque, errp)) {
            return section_failed(e, errp);
        }
        put_section_footer(f, e);
    }
    return chan_check(f, errp);
}

static bool iterates(const struct section_entry *e)
{
    return saves_live(e) && e->ops->save_iterate;
}

/* The n-th section that iterates, in registration order. */
static struct section_entry *nth_iterating(struct section_registry *reg,
                                           unsigned n)
{
    for (struct section_entry *e = reg->head; e; e = e->next) {
        if (iterates(e) && n-- == 0) {
            return e;
        }
    }
    return NULL;
}

int stream_save_iterate(struct section_registry *reg, Channel *f, Error **errp)
{
    unsigned n = 0;
    for (struct section_entry *e = reg->head; e; e = e->next) {
        n += iterates(e);
    }
    int all_done = 1;
    for (unsigned k = 0; k < n; k++) {
        unsigned at = (reg->iterate_from + k) % n;
        struct section_entry *e = nth_iterating(reg, at);
        if (chan_rate_limited(f)) {
            /* Out of budget for this window: come back here later. */
            reg->iterate_from = at;
            return chan_check(f, errp) ? 0 : -1;
        }
        put_section_header(f, STREAM_SECTION_PART, e);
        int r = e->ops->save_iterate(f, e->opaque, errp);
        if (r < 0) {
            section_failed(e, errp);
            return -1;
        }
        put_section_footer(f, e);
        if (r == 0) {
            all_done = 0;
        }
    }
    return chan_check(f, errp) ? all_done : -1;
}

uint64_t stream_save_pending(struct section_registry *reg)
{
    uint64_t total = 0;
    for (struct section_entry *e = reg->head; e; e = e->next) {
        if (saves_live(e) && e->ops->save_pending) {
            total += e->ops->save_pending(e->opaque);
        }
    }
    return total;
}

/* The vmdesc trailer: 0x06, be32 length, JSON.  Tools that find the JSON
 * by scanning back for the last NUL need a NUL in the length field before
 * any '{' byte, so a length containing 0x7b is avoided by padding. */
static void put_vmdesc(Channel *f, json_t *vmdesc)
{
    char *text = json_dumps(vmdesc, JSON_PRESERVE_ORDER);
    if (!text) {
        chan_set_error(f, "cannot format the vmdesc JSON");
        return;
    }
    size_t len = strlen(text);
    uint32_t wire_len = (uint32_t)len;
    for (int i = 0; i < 4 && !(wire_len & 0xff000000u); i++) {
        uint8_t b[4];
        be32_put(b, wire_len);
        if (memchr(b, 0x7b, 4) == NULL) {
            break;
        }
        wire_len++;
    }
    chan_put_u8(f, STREAM_VMDESCRIPTION);
    chan_put_be32(f, wire_len);
    chan_put_buffer(f, text, len);
    for (size_t pad = len; pad < wire_len; pad++) {
        chan_put_u8(f, ' ');
    }
    free(text);
}

bool stream_save_complete_live(struct section_registry *reg, Channel *f,
                               Error **errp)
{
    for (struct section_entry *e = reg->head; e; e = e->next) {
        if (!saves_live(e) || !e->ops->save_complete) {
            continue;
        }
        put_section_header(f, STREAM_SECTION_END, e);
        if (!e->ops->save_complete(f, e->opaque, errp)) {
            return section_failed(e, errp);
        }
        put_section_footer(f, e);
    }
    return true;
}

bool stream_save_complete(struct section_registry *reg, Channel *f,
                          Error **errp)
{
    return stream_save_complete_live(reg, f, errp) &&
        stream_save_devices(reg, f, errp);
}

/* Every device's FULL section; each is described in devices, if not
 * NULL. */
static bool put_devices(struct section_registry *reg, Channel *f,
                        json_t *devices, Error **errp)
{
    for (struct section_entry *e = reg->head; e; e = e->next) {
        if (!e->desc) {
            continue;
        }
        json_t *dev = NULL;
        if (devices) {
            dev = json_object();
            json_object_set_new(dev, "name", json_string(e->idstr));
            json_object_set_new(dev, "instance_id",
                                json_integer(e->instance_id));
            json_array_append_new(devices, dev);
        }
        put_section_header(f, STREAM_SECTION_FULL, e);
        if (!vmstate_save(f, e->desc, e->opaque, dev, errp)) {
            return section_failed(e, errp);
        }
        put_section_footer(f, e);
    }
    return true;
}

bool stream_save_devices(struct section_registry *reg, Channel *f, Error **errp)
{
    json_t *vmdesc = json_object();
    json_t *devices = json_array();
    json_object_set_new(vmdesc, "page_size", json_integer(STREAM_PAGE_SIZE));
    json_object_set_new(vmdesc, "devices", devices);
    bool ok = put_devices(reg, f, devices, errp);
    if (ok) {
        chan_put_u8(f, STREAM_EOF);
        put_vmdesc(f, vmdesc);
        chan_flush(f);
        ok = chan_check(f, errp);
    }
    json_decref(vmdesc);
    return ok;
}

bool stream_save_device_sections(struct section_registry *reg, Channel *f,
                                 Error **errp)
{
    return put_devices(reg, f, NULL, errp) && chan_check(f, errp);
}

bool stream_save_complete_postcopy(struct section_registry *reg, Channel *f,
                                   Error **errp)
{
    if (!stream_save_complete_live(reg, f, errp)) {
        return false;
    }
    chan_put_u8(f, STREAM_EOF);
    chan_flush(f);
    return chan_check(f, errp);
}

void stream_save_cleanup(struct section_registry *reg)
{
    for (struct section_entry *e = reg->head; e; e = e->next) {
        if (e->ops && e->ops->save_cleanup) {
            e->ops->save_cleanup(e->opaque);
        }
    }
}

bool stream_save_all(struct section_registry *reg, Channel *f, Error **errp)
{
    bool ok =
        stream_save_setup(reg, f, errp) && stream_save_complete(reg, f, errp);
    stream_save_cleanup(reg);
    return ok;
}

/* ---- loading ---- */

struct loader {
    struct section_registry *reg;
    Channel *f;
    const struct stream_load_opts *opts;
    /* section id -> entry, for PART/END records */
    struct section_entry **by_id;
    size_t by_id_len, by_id_cap;
    struct lookup ids; /* section id -> index in by_id */
    bool in_blob;      /* loading a PACKAGED blob */
    bool done;         /* load_record met the end */
};

static void uuid_format(const uint8_t u[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[u[i] >> 4];
        out[o++] = hex[u[i] & 15];
    }
    out[o] = '\0';
}

bool stream_load_header(Channel *f, struct stream_header *h, Error **errp)
{
    memset(h, 0, sizeof(*h));
    uint32_t magic = chan_get_be32(f);
    uint32_t version = chan_get_be32(f);
    if (!chan_check(f, errp)) {
        return false;
    }
    if (magic != STREAM_MAGIC) {
        error_setg(errp,
                   "not a migration stream: magic 0x%08x at offset 0, "
                   "expected 0x%08x (\"QEVM\")",
                   magic, STREAM_MAGIC);
        return false;
    }
    if (version != STREAM_VERSION) {
        error_setg(errp,
                   "unsupported stream version %u at offset 4 "
                   "(expected %u)",
                   version, STREAM_VERSION);
        return false;
    }
    uint64_t at = chan_tell(f);
    uint8_t type = chan_get_u8(f);
    if (!chan_check(f, errp)) {
        return false;
    }
    if (type != STREAM_CONFIGURATION) {
        error_setg(errp,
                   "expected the configuration section (0x07) at "
                   "offset %llu, found 0x%02x",
                   (unsigned long long)at, type);
        return false;
    }
    struct stream_config cfg = { 0 };
    if (!vmstate_load(f, &config_desc, &cfg, config_desc.version_id, errp)) {
        error_prepend(errp, "configuration section: ");
        return false;
    }
    /* The buffer holds the name and its NUL. */
    if (cfg.name_len >= sizeof(cfg.name)) {
        error_setg(errp,
                   "configuration section at offset %llu: machine name "
                   "of %u bytes (expected at most %zu)",
                   (unsigned long long)at, cfg.name_len, sizeof(cfg.name) - 1);
        return false;
    }
    memcpy(h->machine, cfg.name, cfg.name_len);
    h->machine[cfg.name_len] = '\0';
    h->has_uuid = cfg.got_uuid;
    memcpy(h->uuid, cfg.uuid, sizeof(h->uuid));
    h->ignore_shared = false;
    h->mapped_ram = false;
    for (uint32_t i = 0; i < cfg.caps_count; i++) {
        if (strcmp(cfg.caps[i], "mapped-ram") == 0) {
            h->mapped_ram = true;
            continue;
        }
        if (strcmp(cfg.caps[i], "x-ignore-shared") != 0) {
            error_setg(errp,
                       "configuration section at offset %llu: unknown "
                       "capability '%s' to validate",
                       (unsigned long long)at, PRINTABLE(cfg.caps[i]));
            return false;
        }
        h->ignore_shared = true;
    }
    return true;
}

static bool load_header(struct loader *ld, Error **errp)
{
    struct stream_header h;
    if (!stream_load_header(ld->f, &h, errp)) {
        return false;
    }
    if (strcmp(h.machine, ld->reg->machine) != 0) {
        error_setg(errp,
                   "machine type mismatch: the stream is from '%s', "
                   "this machine is '%s'",
                   PRINTABLE(h.machine), ld->reg->machine);
        return false;
    }
    if (h.ignore_shared != ld->reg->ignore_shared) {
        error_setg(errp,
                   "capability x-ignore-shared is %s in the source but %s "
                   "here (set it alike on both ends)",
                   h.ignore_shared ? "on" : "off",
                   ld->reg->ignore_shared ? "on" : "off");
        return false;
    }
    ld->reg->mapped_ram = h.mapped_ram;
    if (h.has_uuid && ld->reg->have_uuid &&
        memcmp(h.uuid, ld->reg->uuid, 16) != 0) {
        char a[37], b[37];
        uuid_format(h.uuid, a);
        uuid_format(ld->reg->uuid, b);
        error_setg(errp, "UUID received is %s and should be %s", a, b);
        return false;
    }
    return true;
}

static struct section_entry *lookup_id(struct loader *ld, uint32_t id)
{
    size_t i;
    return lookup_get_u64(&ld->ids, id, &i) ? ld->by_id[i] : NULL;
}

static bool remember_id(struct loader *ld, uint32_t section_id,
                        struct section_entry *e, uint64_t at, Error **errp)
{
    const struct section_entry *old = lookup_id(ld, section_id);
    if (old) {
        error_setg(errp,
                   "section id %u at offset %llu is already used "
                   "by section '%s'",
                   section_id, (unsigned long long)at, old->idstr);
        return false;
    }
    if (ld->by_id_len == ld->by_id_cap) {
        ld->by_id_cap = ld->by_id_cap ? 2 * ld->by_id_cap : 16;
        ld->by_id = xreallocarray(ld->by_id, ld->by_id_cap, sizeof(*ld->by_id));
    }
    /* The stream's ids need not match ours. */
    e->load_id = section_id;
    lookup_add_u64(&ld->ids, section_id, ld->by_id_len);
    ld->by_id[ld->by_id_len++] = e;
    return true;
}

static bool check_footer(struct loader *ld, const struct section_entry *e,
                         Error **errp)
{
    uint64_t at = chan_tell(ld->f);
    uint8_t marker = chan_get_u8(ld->f);
    uint32_t id = chan_get_be32(ld->f);
    if (!chan_check(ld->f, errp)) {
        return false;
    }
    if (marker != STREAM_SECTION_FOOTER || id != e->load_id) {
        if (marker != STREAM_SECTION_FOOTER) {
            error_setg(errp,
                       "section '%s' instance %d: bad footer at offset "
                       "%llu: found 0x%02x, expected 0x7e (the section's "
                       "data is longer or shorter than this build reads)",
                       e->idstr, e->instance_id, (unsigned long long)at,
                       marker);
        } else {
            error_setg(errp,
                       "section '%s' instance %d: footer at offset "
                       "%llu names section id %u, expected %u",
                       e->idstr, e->instance_id, (unsigned long long)at, id,
                       e->load_id);
        }
        return false;
    }
    return true;
}

static bool load_body(struct loader *ld, struct section_entry *e,
                      int version_id, Error **errp)
{
    if (!fault_inject("load-section", errp)) {
        return section_failed(e, errp);
    }
    bool ok;
    if (e->desc) {
        ok = vmstate_load(ld->f, e->desc, e->opaque, version_id, errp);
    } else {
        if (!e->load_setup_done && e->ops->load_setup &&
            !e->ops->load_setup(e->opaque, errp)) {
            return section_failed(e, errp);
        }
        e->load_setup_done = true;
        ok = e->ops->load_state &&
            e->ops->load_state(ld->f, e->opaque, version_id, errp);
        if (!e->ops->load_state) {
            error_setg(errp, "no loader for this section");
        }
    }
    if (!ok || !chan_check(ld->f, errp)) {
        return section_failed(e, errp);
    }
    return check_footer(ld, e, errp);
}

static bool load_section_start(struct loader *ld, uint8_t type, uint64_t at,
                               Error **errp)
{
    Channel *f = ld->f;
    char idstr[256];
    uint32_t section_id = chan_get_be32(f);
    chan_get_counted_string(f, idstr);
    uint32_t instance_id = chan_get_be32(f);
    uint32_t version_id = chan_get_be32(f);
    if (!chan_check(f, errp)) {
        return false;
    }
    struct section_entry *e = find_entry(ld->reg, idstr, (int)instance_id);
    if (!e) {
        error_setg(errp,
                   "unknown section '%s' instance %u at offset %llu "
                   "(this machine has no such device)",
                   PRINTABLE(idstr), instance_id, (unsigned long long)at);
        return false;
    }
    if (e->seen) {
        error_setg(errp, "duplicate section '%s' instance %u at offset %llu",
                   idstr, instance_id, (unsigned long long)at);
        return false;
    }
    if ((type == STREAM_SECTION_FULL) != (e->desc != NULL)) {
        error_setg(errp,
                   "section '%s' at offset %llu: %s record for a %s "
                   "section",
                   idstr, (unsigned long long)at,
                   type == STREAM_SECTION_FULL ? "FULL" : "START",
                   e->desc ? "device" : "live");
        return false;
    }
    if ((int)version_id > e->version_id || (int32_t)version_id < 0) {
        error_setg(errp,
                   "section '%s' at offset %llu: version %u is newer "
                   "than this build supports (%d)",
                   idstr, (unsigned long long)at, version_id, e->version_id);
        return false;
    }
    e->seen = true;
    if (!remember_id(ld, section_id, e, at, errp)) {
        return false;
    }
    return load_body(ld, e, (int)version_id, errp);
}

static bool load_section_part(struct loader *ld, uint8_t type, uint64_t at,
                              Error **errp)
{
    uint32_t section_id = chan_get_be32(ld->f);
    if (!chan_check(ld->f, errp)) {
        return false;
    }
    struct section_entry *e = lookup_id(ld, section_id);
    if (!e || e->desc) {
        error_setg(errp,
                   "%s record at offset %llu for section id %u, which "
                   "no START record opened",
                   type == STREAM_SECTION_PART ? "PART" : "END",
                   (unsigned long long)at, section_id);
        return false;
    }
    return load_body(ld, e, e->version_id, errp);
}

static bool load_records(struct loader *ld, bool blob, Error **errp);
static bool load_record(struct loader *ld, bool blob, Error **errp);

/* PACKAGED (postcopy): its blob is a run of records of its own, loaded
 * here before the stream goes on. */
static bool load_packaged(struct loader *ld, uint64_t at, const uint8_t *data,
                          uint16_t len, Error **errp)
{
    if (len != 4) {
        error_setg(errp,
                   "PACKAGED command at offset %llu with %u bytes (it "
                   "has 4)",
                   (unsigned long long)at, len);
        return false;
    }
    uint32_t n = be32_get(data);
    if (ld->in_blob) {
        error_setg(errp,
                   "PACKAGED command at offset %llu inside a PACKAGED "
                   "blob",
                   (unsigned long long)at);
        return false;
    }
    if (n > STREAM_PACKAGED_MAX) {
        error_setg(errp,
                   "PACKAGED command at offset %llu: blob of %u bytes "
                   "(limit %u)",
                   (unsigned long long)at, n, STREAM_PACKAGED_MAX);
        return false;
    }
    uint8_t *buf = xmalloc(n ? n : 1);
    if (!chan_get_buffer(ld->f, buf, n)) {
        free(buf);
        chan_check(ld->f, errp);
        error_prepend(errp, "PACKAGED blob of %u bytes at offset %llu: ", n,
                      (unsigned long long)at);
        return false;
    }
    Channel *outer = ld->f;
    Channel *f = chan_new_mem_reader(buf, n, "PACKAGED blob");
    ld->f = f;
    ld->in_blob = true;
    bool ok = load_records(ld, true, errp);
    ld->in_blob = false;
    ld->f = outer;
    chan_close(f, NULL);
    free(buf);
    if (!ok) {
        error_prepend(errp, "in the PACKAGED blob at offset %llu: ",
                      (unsigned long long)(at + 9));
    }
    return ok;
}

static bool load_command(struct loader *ld, uint64_t at, Error **errp)
{
    uint16_t cmd = chan_get_be16(ld->f);
    uint16_t len = chan_get_be16(ld->f);
    uint8_t data[65536];
    if (!chan_get_buffer(ld->f, data, len) || !chan_check(ld->f, errp)) {
        return chan_check(ld->f, errp);
    }
    if (!ld->opts || !ld->opts->command) {
        error_setg(errp, "command %u at offset %llu is not accepted here", cmd,
                   (unsigned long long)at);
        return false;
    }
    if (cmd == STREAM_CMD_PACKAGED) {
        return load_packaged(ld, at, data, len, errp);
    }
    return ld->opts->command(ld->opts->command_ctx, cmd, data, len, errp);
}

static bool load_vmdesc(struct loader *ld, Error **errp)
{
    Channel *f = ld->f;
    bool optional = ld->opts && ld->opts->vmdesc_optional;
    uint8_t type;
    uint64_t at = chan_tell(f);
    if (ld->opts && ld->opts->no_vmdesc) {
        return true;
    }
    if (chan_peek(f, &type, 1, 0) < 1) {
        if (!chan_check(f, errp)) {
            return false;
        }
        if (optional) {
            return true;
        }
        error_setg(errp,
                   "stream ends at offset %llu without its vmdesc "
                   "trailer (truncated?)",
                   (unsigned long long)at);
        return false;
    }
    if (type != STREAM_VMDESCRIPTION) {
        error_setg(errp,
                   "expected the vmdesc trailer (0x06) at offset %llu, "
                   "found 0x%02x",
                   (unsigned long long)at, type);
        return false;
    }
    chan_skip(f, 1);
    uint32_t len = chan_get_be32(f);
    if (!chan_check(f, errp)) {
        return false;
    }
    if (len > VMDESC_MAX) {
        error_setg(errp, "vmdesc at offset %llu claims %u bytes (limit %u)",
                   (unsigned long long)at, len, VMDESC_MAX);
        return false;
    }
    char *text = xmalloc((size_t)len + 1);
    if (!chan_get_buffer(f, text, len)) {
        free(text);
        return chan_check(f, errp);
    }
    text[len] = '\0';
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (!j || !json_is_object(j)) {
        error_setg(errp, "vmdesc at offset %llu is not a JSON object: %s",
                   (unsigned long long)at, j ? "wrong type" : jerr.text);
        json_decref(j);
        free(text);
        return false;
    }
    json_decref(j);
    if (ld->opts && ld->opts->vmdesc_out) {
        *ld->opts->vmdesc_out = text;
    } else {
        free(text);
    }
    return true;
}

/* Records up to EOF (and the vmdesc after it), or, in a PACKAGED blob,
 * up to the blob's end. */
static bool load_records(struct loader *ld, bool blob, Error **errp)
{
    Channel *f = ld->f;
    for (;;) {
        Error *err = NULL;
        if (!load_record(ld, blob, &err)) {
            ld->done = false;
            /* A postcopy link that died: a new one may take over. */
            Channel *nf =
                !blob && ld->opts && ld->opts->recover && chan_has_error(f)
                ? ld->opts->recover(ld->opts->command_ctx, f,
                                    error_get_pretty(err))
                : NULL;
            if (!nf) {
                error_propagate(errp, err);
                return false;
            }
            error_free(err);
            ld->f = f = nf;
            continue;
        }
        if (ld->done) {
            ld->done = false;
            return true;
        }
    }
}

/* One record; at the end (EOF and vmdesc, or the blob's end) sets
 * ld->done. */
static bool load_record(struct loader *ld, bool blob, Error **errp)
{
    Channel *f = ld->f;
    if (blob && chan_at_eof(f)) {
        ld->done = true;
        return chan_check(f, errp);
    }
    uint64_t at = chan_tell(f);
    uint8_t type = chan_get_u8(f);
    if (!chan_check(f, errp)) {
        return false;
    }
    bool step;
    switch (type) {
    case STREAM_EOF:
        if (blob) {
            error_setg(errp, "EOF record at offset %llu",
                       (unsigned long long)at);
            return false;
        }
        ld->done = true;
        return load_vmdesc(ld, errp);
    case STREAM_SECTION_START:
    case STREAM_SECTION_FULL:
        step = load_section_start(ld, type, at, errp);
        break;
    case STREAM_SECTION_PART:
    case STREAM_SECTION_END:
        step = load_section_part(ld, type, at, errp);
        break;
    case STREAM_COMMAND:
        step = load_command(ld, at, errp);
        break;
    default:
        error_setg(errp, "unknown record type 0x%02x at offset %llu", type,
                   (unsigned long long)at);
        step = false;
    }
    return step;
}

bool stream_load(struct section_registry *reg, Channel *f,
                 const struct stream_load_opts *opts, Error **errp)
{
    struct loader ld = { .reg = reg, .f = f, .opts = opts };
    lookup_init(&ld.ids);
    bool ok = false;
    for (struct section_entry *e = reg->head; e; e = e->next) {
        e->seen = false;
        e->load_setup_done = false;
    }
    if (!load_header(&ld, errp)) {
        goto out;
    }
    ok = load_records(&ld, false, errp);
out:
    for (struct section_entry *e = reg->head; e; e = e->next) {
        if (e->load_setup_done && e->ops->load_cleanup) {
            e->ops->load_cleanup(e->opaque);
        }
    }
    free(ld.by_id);
    lookup_free(&ld.ids);
    return ok;
}

/* ---- schema dump ---- */

json_t *stream_schema_json(const struct section_registry *reg)
{
    json_t *root = json_object();
    json_t *machine = json_object();
    json_object_set_new(machine, "Name", json_string(reg->machine));
    json_object_set_new(root, "vmschkmachine", machine);
    for (struct section_entry *e = reg->head; e; e = e->next) {
        if (!e->desc || json_object_get(root, e->idstr)) {
            continue;
        }
        json_t *dev = json_object();
        json_object_set_new(dev, "Name", json_string(e->idstr));
        json_object_set_new(dev, "version_id",
                            json_integer(e->desc->version_id));
        json_object_set_new(dev, "minimum_version_id",
                            json_integer(e->desc->minimum_version_id));
        json_object_set_new(dev, "Description", vmstate_schema_json(e->desc));
        json_object_set_new(root, e->idstr, dev);
    }
    return root;
}

bool stream_dump_schema(const struct section_registry *reg, const char *path,
                        Error **errp)
{
    json_t *root = stream_schema_json(reg);
    int r = json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (r < 0) {
        error_setg_errno(errp, errno, "cannot write schema to '%s'", path);
        return false;
    }
    return true;
}
