/* The registry-free stream walker. */
#include "vmstate/stream-walk.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/be.h"
#include "util/lookup.h"
#include "util/printable.h"

struct walk_section {
    uint32_t id;
    char idstr[256];
    uint32_t instance_id;
    uint32_t version_id;
    bool live; /* opened by START */
};

struct walker {
    const uint8_t *data;
    const struct stream_walk_ops *ops;
    void *ctx;
    struct stream_walk_result *res;
    struct walk_section *sections;
    size_t nsections, cap;
    struct lookup ids; /* section id -> index in sections */
};

#define AT(x) ((unsigned long long)(x))

/* True when n bytes are there at pos; otherwise a truncation error. */
static bool need(size_t pos, size_t end, size_t n, const char *what,
                 Error **errp)
{
    if (n <= end - pos) {
        return true;
    }
    error_setg(errp,
               "truncated at offset %llu: expected %s (%zu bytes), "
               "%zu left",
               AT(pos), what, n, end - pos);
    return false;
}

static const char *const record_names[] = {
    [STREAM_EOF] = "EOF",
    [STREAM_SECTION_START] = "START",
    [STREAM_SECTION_PART] = "PART",
    [STREAM_SECTION_END] = "END",
    [STREAM_SECTION_FULL] = "FULL",
    [STREAM_SUBSECTION] = "SUBSECTION",
    [STREAM_VMDESCRIPTION] = "VMDESC",
    [STREAM_CONFIGURATION] = "CONFIG",
    [STREAM_COMMAND] = "COMMAND",
};

const char *stream_record_name(uint8_t type)
{
    if (type == STREAM_SECTION_FOOTER) {
        return "FOOTER";
    }
    if (type < sizeof(record_names) / sizeof(record_names[0]) &&
        record_names[type]) {
        return record_names[type];
    }
    return "unknown";
}

/* Each command's name and payload length (-1: variable, -2: 0 or 16). */
static const struct {
    const char *name;
    int len;
} commands[] = {
    [STREAM_CMD_INVALID] = { "INVALID", -1 },
    [STREAM_CMD_OPEN_RETURN_PATH] = { "OPEN_RETURN_PATH", 0 },
    [STREAM_CMD_PING] = { "PING", 4 },
    [STREAM_CMD_POSTCOPY_ADVISE] = { "POSTCOPY_ADVISE", -2 },
    [STREAM_CMD_POSTCOPY_LISTEN] = { "POSTCOPY_LISTEN", 0 },
    [STREAM_CMD_POSTCOPY_RUN] = { "POSTCOPY_RUN", 0 },
    [STREAM_CMD_POSTCOPY_RAM_DISCARD] = { "POSTCOPY_RAM_DISCARD", -1 },
    [STREAM_CMD_PACKAGED] = { "PACKAGED", 4 },
    [STREAM_CMD_ENABLE_COLO] = { "ENABLE_COLO", 0 },
    [STREAM_CMD_POSTCOPY_RESUME] = { "POSTCOPY_RESUME", 0 },
    [STREAM_CMD_RECV_BITMAP] = { "RECV_BITMAP", -1 },
    [STREAM_CMD_SWITCHOVER_START] = { "SWITCHOVER_START", 0 },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

const char *stream_command_name(uint16_t cmd)
{
    return cmd < NCOMMANDS ? commands[cmd].name : "unknown";
}

static bool report(struct walker *w, const struct stream_walk_record *rec,
                   Error **errp)
{
    w->res->records++;
    return !w->ops || !w->ops->record || w->ops->record(w->ctx, rec, errp);
}

/* ---- configuration ---- */

static bool read_counted(const uint8_t *d, size_t *pos, size_t end,
                         char out[256], const char *what, Error **errp)
{
    if (!need(*pos, end, 1, what, errp)) {
        return false;
    }
    size_t n = d[*pos];
    if (!need(*pos + 1, end, n, what, errp)) {
        return false;
    }
    memcpy(out, d + *pos + 1, n);
    out[n] = '\0';
    *pos += 1 + n;
    return true;
}

static bool config_subsection(struct walker *w, size_t *pos, size_t end,
                              struct stream_walk_config *cfg, Error **errp)
{
    const uint8_t *d = w->data;
    size_t at = *pos;
    char name[256];
    *pos += 1;
    if (!read_counted(d, pos, end, name, "a configuration subsection name",
                      errp) ||
        !need(*pos, end, 4, "a subsection version", errp)) {
        return false;
    }
    *pos += 4;
    if (strcmp(name, "configuration/target-page-bits") == 0) {
        if (!need(*pos, end, 4, "the target page bits", errp)) {
            return false;
        }
        cfg->has_page_bits = true;
        cfg->page_bits = be32_get(d + *pos);
        *pos += 4;
    } else if (strcmp(name, "configuration/capabilities") == 0) {
        if (!need(*pos, end, 4, "the capability count", errp)) {
            return false;
        }
        uint32_t n = be32_get(d + *pos);
        *pos += 4;
        if (n > sizeof(cfg->caps) / sizeof(cfg->caps[0])) {
            error_setg(errp,
                       "configuration at offset %llu lists %u "
                       "capabilities (at most %zu make sense)",
                       AT(at), n, sizeof(cfg->caps) / sizeof(cfg->caps[0]));
            return false;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (!read_counted(d, pos, end, cfg->caps[i], "a capability name",
                              errp)) {
                return false;
            }
        }
        cfg->ncaps = n;
    } else if (strcmp(name, "configuration/uuid") == 0) {
        if (!need(*pos, end, 16, "the VM's UUID", errp)) {
            return false;
        }
        cfg->has_uuid = true;
        memcpy(cfg->uuid, d + *pos, 16);
        *pos += 16;
    } else {
        error_setg(errp,
                   "unknown configuration subsection '%s' at offset "
                   "%llu (its length cannot be known)",
                   PRINTABLE(name), AT(at));
        return false;
    }
    return true;
}

static bool walk_config(struct walker *w, size_t *pos, size_t end, Error **errp)
{
    const uint8_t *d = w->data;
    struct stream_walk_config *cfg = xcalloc(1, sizeof(*cfg));
    bool ok = false;
    cfg->offset = *pos;
    size_t p = *pos + 1;
    if (!need(p, end, 4, "the machine name length", errp)) {
        goto out;
    }
    uint32_t n = be32_get(d + p);
    if (n > 255) {
        error_setg(errp,
                   "configuration at offset %llu: machine name of %u "
                   "bytes (expected at most 255)",
                   AT(*pos), n);
        goto out;
    }
    p += 4;
    if (!need(p, end, n, "the machine name", errp)) {
        goto out;
    }
    memcpy(cfg->machine, d + p, n);
    p += n;
    while (p < end && d[p] == STREAM_SUBSECTION) {
        if (!config_subsection(w, &p, end, cfg, errp)) {
            goto out;
        }
    }
    cfg->size = p - cfg->offset;
    w->res->has_config = true;
    ok = !w->ops || !w->ops->config || w->ops->config(w->ctx, cfg, errp);
    if (ok) {
        struct stream_walk_record rec = { .offset = cfg->offset,
                                          .size = cfg->size,
                                          .type = STREAM_CONFIGURATION,
                                          .idstr = "configuration" };
        ok = report(w, &rec, errp);
    }
    *pos = p;
out:
    free(cfg);
    return ok;
}

/* ---- sections ---- */

static struct walk_section *find_section(struct walker *w, uint32_t id)
{
    size_t i;
    return lookup_get_u64(&w->ids, id, &i) ? &w->sections[i] : NULL;
}

static const struct walk_section *add_section(struct walker *w,
                                              const struct walk_section *s)
{
    if (w->nsections == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->sections = xreallocarray(w->sections, w->cap, sizeof(*w->sections));
    }
    w->sections[w->nsections] = *s;
    lookup_add_u64(&w->ids, s->id, w->nsections);
    return &w->sections[w->nsections++];
}

static bool plausible_next(const uint8_t *d, size_t pos, size_t end)
{
    if (pos >= end) {
        return true;
    }
    switch (d[pos]) {
    case STREAM_EOF:
    case STREAM_SECTION_START:
    case STREAM_SECTION_PART:
    case STREAM_SECTION_END:
    case STREAM_SECTION_FULL:
    case STREAM_COMMAND:
        return true;
    }
    return false;
}

/* The first footer for id that a record could follow. */
static bool scan_footer(const uint8_t *d, size_t pos, size_t end, uint32_t id,
                        size_t *found)
{
    while (pos < end) {
        const uint8_t *p = memchr(d + pos, STREAM_SECTION_FOOTER, end - pos);
        if (!p) {
            return false;
        }
        size_t at = (size_t)(p - d);
        if (end - at >= 5 && be32_get(p + 1) == id &&
            plausible_next(d, at + 5, end)) {
            *found = at;
            return true;
        }
        pos = at + 1;
    }
    return false;
}

static bool section_body_and_footer(struct walker *w,
                                    struct stream_walk_record *rec, size_t *pos,
                                    size_t end, Error **errp)
{
    const uint8_t *d = w->data;
    size_t used = 0;
    int r = STREAM_BODY_UNKNOWN;
    if (w->ops && w->ops->body) {
        r = w->ops->body(w->ctx, rec, d + *pos, end - *pos, &used, errp);
    }
    if (r == STREAM_BODY_ERROR) {
        error_prepend(errp, "section '%s' (id %u): ", PRINTABLE(rec->idstr),
                      rec->section_id);
        return false;
    }
    size_t fpos;
    if (r == STREAM_BODY_DONE) {
        if (used > end - *pos) {
            error_setg(errp,
                       "section '%s' (id %u): body claims %zu bytes "
                       "past offset %llu",
                       PRINTABLE(rec->idstr), rec->section_id, used, AT(*pos));
            return false;
        }
        fpos = *pos + used;
    } else if (!scan_footer(d, *pos, end, rec->section_id, &fpos)) {
        error_setg(errp,
                   "section '%s' (id %u) at offset %llu: no footer "
                   "(0x7e, id %u) before offset %llu (truncated?)",
                   PRINTABLE(rec->idstr), rec->section_id, AT(rec->offset),
                   rec->section_id, AT(end));
        return false;
    } else {
        rec->body_scanned = true;
    }
    rec->body_size = fpos - *pos;
    if (!need(fpos, end, 5, "the section footer", errp)) {
        error_prepend(errp, "section '%s' (id %u): ", PRINTABLE(rec->idstr),
                      rec->section_id);
        return false;
    }
    if (d[fpos] != STREAM_SECTION_FOOTER) {
        error_setg(errp,
                   "section '%s' (id %u): expected the footer (0x7e) "
                   "at offset %llu, found 0x%02x (the body is longer or "
                   "shorter than its description)",
                   PRINTABLE(rec->idstr), rec->section_id, AT(fpos), d[fpos]);
        return false;
    }
    if (be32_get(d + fpos + 1) != rec->section_id) {
        error_setg(errp,
                   "section '%s': footer at offset %llu names section "
                   "id %u, expected %u",
                   PRINTABLE(rec->idstr), AT(fpos), be32_get(d + fpos + 1),
                   rec->section_id);
        return false;
    }
    *pos = fpos + 5;
    rec->size = *pos - rec->offset;
    return report(w, rec, errp);
}

static bool walk_section_start(struct walker *w, size_t *pos, size_t end,
                               int depth, Error **errp)
{
    const uint8_t *d = w->data;
    struct stream_walk_record rec = { .offset = *pos,
                                      .type = d[*pos],
                                      .depth = depth };
    size_t p = *pos + 1;
    struct walk_section s = { .live = rec.type == STREAM_SECTION_START };
    if (!need(p, end, 4, "a section id", errp)) {
        return false;
    }
    s.id = be32_get(d + p);
    p += 4;
    if (!read_counted(d, &p, end, s.idstr, "a section name", errp) ||
        !need(p, end, 8, "the instance and version ids", errp)) {
        return false;
    }
    /* Empty names and names with NUL bytes come from no writer. */
    if (!s.idstr[0] || strlen(s.idstr) != d[*pos + 5]) {
        error_setg(errp,
                   "%s record at offset %llu: section name is empty "
                   "or holds a NUL byte",
                   stream_record_name(rec.type), AT(*pos));
        return false;
    }
    s.instance_id = be32_get(d + p);
    s.version_id = be32_get(d + p + 4);
    p += 8;
    const struct walk_section *old = find_section(w, s.id);
    if (old) {
        error_setg(errp,
                   "%s record at offset %llu reuses section id %u "
                   "(already '%s')",
                   stream_record_name(rec.type), AT(*pos), s.id,
                   PRINTABLE(old->idstr));
        return false;
    }
    const struct walk_section *sp = add_section(w, &s);
    rec.section_id = sp->id;
    rec.idstr = sp->idstr;
    rec.instance_id = sp->instance_id;
    rec.version_id = sp->version_id;
    rec.body_offset = p;
    *pos = p;
    return section_body_and_footer(w, &rec, pos, end, errp);
}

static bool walk_section_part(struct walker *w, size_t *pos, size_t end,
                              int depth, Error **errp)
{
    const uint8_t *d = w->data;
    struct stream_walk_record rec = { .offset = *pos,
                                      .type = d[*pos],
                                      .depth = depth };
    if (!need(*pos + 1, end, 4, "a section id", errp)) {
        return false;
    }
    rec.section_id = be32_get(d + *pos + 1);
    const struct walk_section *s = find_section(w, rec.section_id);
    if (!s || !s->live) {
        error_setg(errp,
                   "%s record at offset %llu for section id %u, which "
                   "no START record opened",
                   stream_record_name(rec.type), AT(*pos), rec.section_id);
        return false;
    }
    rec.idstr = s->idstr;
    rec.instance_id = s->instance_id;
    rec.version_id = s->version_id;
    *pos += 5;
    rec.body_offset = *pos;
    return section_body_and_footer(w, &rec, pos, end, errp);
}

/* ---- commands ---- */

static bool walk_records(struct walker *w, size_t *pos, size_t end, int depth,
                         Error **errp);

static bool walk_command(struct walker *w, size_t *pos, size_t end, int depth,
                         Error **errp)
{
    const uint8_t *d = w->data;
    struct stream_walk_record rec = { .offset = *pos,
                                      .type = STREAM_COMMAND,
                                      .depth = depth };
    if (!need(*pos + 1, end, 4, "a command header", errp)) {
        return false;
    }
    rec.cmd = be16_get(d + *pos + 1);
    rec.cmd_len = be16_get(d + *pos + 3);
    size_t p = *pos + 5;
    if (rec.cmd == STREAM_CMD_INVALID || rec.cmd >= NCOMMANDS) {
        error_setg(errp,
                   "command %u at offset %llu: expected a command "
                   "between 1 and %zu",
                   rec.cmd, AT(*pos), NCOMMANDS - 1);
        return false;
    }
    int want = commands[rec.cmd].len;
    if ((want >= 0 && rec.cmd_len != want) ||
        (want == -2 && rec.cmd_len != 0 && rec.cmd_len != 16)) {
        error_setg(errp, "command %s at offset %llu: length %u, expected %s",
                   commands[rec.cmd].name, AT(*pos), rec.cmd_len,
                   want == -2      ? "0 or 16"
                       : want == 4 ? "4"
                                   : "0");
        return false;
    }
    if (!need(p, end, rec.cmd_len, "the command's data", errp)) {
        return false;
    }
    rec.cmd_data = d + p;
    p += rec.cmd_len;
    rec.size = p - rec.offset;
    if (rec.cmd != STREAM_CMD_PACKAGED) {
        *pos = p;
        return report(w, &rec, errp);
    }
    if (depth > 0) {
        error_setg(errp,
                   "PACKAGED command at offset %llu inside a PACKAGED "
                   "blob",
                   AT(*pos));
        return false;
    }
    uint32_t blob = be32_get(rec.cmd_data);
    if (!need(p, end, blob, "the PACKAGED blob", errp)) {
        return false;
    }
    rec.size += blob;
    if (!report(w, &rec, errp)) {
        return false;
    }
    size_t bpos = p;
    if (!walk_records(w, &bpos, p + blob, depth + 1, errp)) {
        return false;
    }
    *pos = p + blob;
    return true;
}

/* ---- EOF and vmdesc ---- */

static bool walk_vmdesc(struct walker *w, size_t pos, size_t end, Error **errp)
{
    const uint8_t *d = w->data;
    if (d[pos] != STREAM_VMDESCRIPTION) {
        error_setg(errp,
                   "expected the vmdesc trailer (0x06) or the end of "
                   "the stream at offset %llu after EOF, found 0x%02x",
                   AT(pos), d[pos]);
        return false;
    }
    if (!need(pos + 1, end, 4, "the vmdesc length", errp)) {
        return false;
    }
    uint32_t len = be32_get(d + pos + 1);
    if (len > STREAM_WALK_VMDESC_MAX) {
        error_setg(errp,
                   "vmdesc at offset %llu claims %u bytes (at most %u "
                   "expected)",
                   AT(pos), len, STREAM_WALK_VMDESC_MAX);
        return false;
    }
    if (!need(pos + 5, end, len, "the vmdesc JSON", errp)) {
        return false;
    }
    json_error_t jerr;
    json_t *j = json_loadb((const char *)d + pos + 5, len, 0, &jerr);
    bool ok = j && json_is_object(j);
    json_decref(j);
    if (!ok) {
        error_setg(errp, "vmdesc at offset %llu: expected a JSON object: %s",
                   AT(pos), j ? "not an object" : jerr.text);
        return false;
    }
    size_t after = pos + 5 + len;
    if (after != end) {
        error_setg(errp,
                   "%zu bytes of unexpected data after the vmdesc "
                   "trailer, at offset %llu",
                   end - after, AT(after));
        return false;
    }
    w->res->has_vmdesc = true;
    w->res->vmdesc_offset = pos;
    struct stream_walk_record rec = { .offset = pos,
                                      .size = end - pos,
                                      .type = STREAM_VMDESCRIPTION,
                                      .json = (const char *)d + pos + 5,
                                      .json_len = len };
    return report(w, &rec, errp);
}

static bool walk_eof(struct walker *w, size_t *pos, size_t end, int depth,
                     Error **errp)
{
    struct stream_walk_record rec = {
        .offset = *pos, .size = 1, .type = STREAM_EOF, .depth = depth
    };
    if (!report(w, &rec, errp)) {
        return false;
    }
    *pos += 1;
    if (depth > 0) {
        if (*pos != end) {
            error_setg(errp,
                       "EOF at offset %llu inside a PACKAGED blob that "
                       "ends at %llu",
                       AT(*pos - 1), AT(end));
            return false;
        }
        return true;
    }
    w->res->complete = true;
    if (*pos == end) {
        return true;
    }
    if (!walk_vmdesc(w, *pos, end, errp)) {
        return false;
    }
    *pos = end;
    return true;
}

static bool walk_records(struct walker *w, size_t *pos, size_t end, int depth,
                         Error **errp)
{
    for (;;) {
        w->res->end = *pos;
        if (*pos >= end) {
            if (depth > 0) {
                return true;
            }
            error_setg(errp,
                       "stream ends at offset %llu without EOF: "
                       "expected a section, a command or EOF (truncated?)",
                       AT(*pos));
            return false;
        }
        uint8_t type = w->data[*pos];
        bool ok;
        switch (type) {
        case STREAM_EOF:
            ok = walk_eof(w, pos, end, depth, errp);
            w->res->end = *pos;
            return ok;
        case STREAM_SECTION_START:
        case STREAM_SECTION_FULL:
            ok = walk_section_start(w, pos, end, depth, errp);
            break;
        case STREAM_SECTION_PART:
        case STREAM_SECTION_END:
            ok = walk_section_part(w, pos, end, depth, errp);
            break;
        case STREAM_COMMAND:
            ok = walk_command(w, pos, end, depth, errp);
            break;
        default:
            error_setg(errp,
                       "unexpected %s record (0x%02x) at offset %llu: "
                       "expected a section, a command or EOF",
                       stream_record_name(type), type, AT(*pos));
            ok = false;
        }
        if (!ok) {
            return false;
        }
    }
}

bool stream_walk(const uint8_t *data, size_t len,
                 const struct stream_walk_ops *ops, void *ctx,
                 struct stream_walk_result *res, Error **errp)
{
    struct stream_walk_result local;
    if (!res) {
        res = &local;
    }
    memset(res, 0, sizeof(*res));
    struct walker w = { .data = data, .ops = ops, .ctx = ctx, .res = res };
    lookup_init(&w.ids);
    if (!need(0, len, 8, "the stream header", errp)) {
        return false;
    }
    uint32_t magic = be32_get(data);
    res->version = be32_get(data + 4);
    if (magic != STREAM_MAGIC) {
        error_setg(errp,
                   "not a migration stream: magic 0x%08x at offset 0, "
                   "expected 0x%08x (\"QEVM\")",
                   magic, STREAM_MAGIC);
        return false;
    }
    if (res->version != STREAM_VERSION) {
        error_setg(errp,
                   "unsupported stream version %u at offset 4 "
                   "(expected %u)",
                   res->version, STREAM_VERSION);
        return false;
    }
    size_t pos = 8;
    bool ok = true;
    if (pos < len && data[pos] == STREAM_CONFIGURATION) {
        ok = walk_config(&w, &pos, len, errp);
    }
    ok = ok && walk_records(&w, &pos, len, 0, errp);
    free(w.sections);
    lookup_free(&w.ids);
    return ok;
}

bool stream_find_vmdesc(const uint8_t *data, size_t len, uint64_t *offset,
                        const char **json, size_t *json_len)
{
    /* Header, EOF, 0x06, the length and at least "{}". */
    if (len < 8 + 1 + 5 + 2) {
        return false;
    }
    size_t lowest =
        len - 5 > STREAM_WALK_VMDESC_MAX ? len - 5 - STREAM_WALK_VMDESC_MAX : 8;
    size_t hi = len - 7; /* the trailer starts at or before this */
    while (hi >= lowest) {
        const uint8_t *p =
            memrchr(data + lowest, STREAM_VMDESCRIPTION, hi - lowest + 1);
        if (!p) {
            return false;
        }
        size_t at = (size_t)(p - data);
        if (be32_get(p + 1) == len - at - 5 && p[5] == '{' &&
            data[at - 1] == STREAM_EOF) {
            *offset = at;
            *json = (const char *)p + 5;
            *json_len = len - at - 5;
            return true;
        }
        if (at == lowest) {
            break;
        }
        hi = at - 1;
    }
    return false;
}
