/* Section headers of a stream, summed per section. */
#include "snapshot/sections.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ram/ram-decode.h"
#include "ram/ram-format.h"
#include "util/lookup.h"
#include "vmstate/stream-walk.h"
#include "util/alloc.h"

struct walk_ctx {
    struct state_summary *out;
    size_t cap;
    struct lookup index; /* "instance:idstr" -> out->sections */
    struct ram_decoder dec;
};

static bool on_config(void *opaque, const struct stream_walk_config *cfg,
                      Error **errp)
{
    struct walk_ctx *c = opaque;
    snprintf(c->out->machine, sizeof(c->out->machine), "%s", cfg->machine);
    return true;
}

static int on_body(void *opaque, const struct stream_walk_record *rec,
                   const uint8_t *body, size_t avail, size_t *used,
                   Error **errp)
{
    struct walk_ctx *c = opaque;
    if (strcmp(rec->idstr, RAM_SECTION_IDSTR) != 0 ||
        rec->type == STREAM_SECTION_FULL ||
        rec->version_id != RAM_SECTION_VERSION) {
        return STREAM_BODY_UNKNOWN; /* the walker finds the footer */
    }
    struct ram_reader rd;
    struct ram_mem_source src;
    ram_reader_init_mem(&rd, &src, body, avail, rec->body_offset);
    if (!ram_decode_section(&c->dec, &rd, errp)) {
        return STREAM_BODY_ERROR;
    }
    *used = src.pos;
    return STREAM_BODY_DONE;
}

static bool on_record(void *opaque, const struct stream_walk_record *rec,
                      Error **errp)
{
    struct walk_ctx *c = opaque;
    if (rec->depth != 0 || !rec->idstr ||
        (rec->type != STREAM_SECTION_START &&
         rec->type != STREAM_SECTION_PART && rec->type != STREAM_SECTION_END &&
         rec->type != STREAM_SECTION_FULL)) {
        return true;
    }
    struct state_summary *s = c->out;
    char key[16 + 256];
    snprintf(key, sizeof(key), "%u:%s", rec->instance_id, rec->idstr);
    size_t i;
    if (lookup_get_str(&c->index, key, &i)) {
        s->sections[i].size += rec->size;
        return true;
    }
    if (s->nsections == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        struct state_section *n = xrealloc(s->sections, c->cap * sizeof(*n));
        s->sections = n;
    }
    lookup_add_str(&c->index, key, s->nsections);
    struct state_section *e = &s->sections[s->nsections++];
    memset(e, 0, sizeof(*e));
    snprintf(e->idstr, sizeof(e->idstr), "%s", rec->idstr);
    e->instance = rec->instance_id;
    e->version = rec->version_id;
    e->size = rec->size;
    return true;
}

static const struct stream_walk_ops walk_ops = {
    .config = on_config,
    .body = on_body,
    .record = on_record,
};

bool state_summary_read(const uint8_t *data, size_t len, uint64_t ram_extra,
                        struct state_summary *out, Error **errp)
{
    memset(out, 0, sizeof(*out));
    struct walk_ctx c = { .out = out };
    lookup_init(&c.index);
    static const struct ram_decode_ops no_ops = { 0 };
    ram_decoder_init(&c.dec, &no_ops, NULL);
    struct stream_walk_result res;
    bool ok = stream_walk(data, len, &walk_ops, &c, &res, errp);
    if (ok && !res.complete) {
        error_setg(errp,
                   "the state ends at offset %llu before its EOF "
                   "record",
                   (unsigned long long)res.end);
        ok = false;
    }
    for (size_t i = 0; i < c.dec.nblocks; i++) {
        out->ram_size += c.dec.blocks[i].length;
    }
    ram_decoder_cleanup(&c.dec);
    lookup_free(&c.index);
    for (size_t i = 0; ok && i < out->nsections; i++) {
        if (strcmp(out->sections[i].idstr, RAM_SECTION_IDSTR) == 0) {
            out->sections[i].size += ram_extra;
        }
    }
    if (!ok) {
        state_summary_free(out);
    }
    return ok;
}

void state_summary_free(struct state_summary *s)
{
    free(s->sections);
    s->sections = NULL;
    s->nsections = 0;
}
