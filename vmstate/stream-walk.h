/* A registry-free walk over a section stream held in memory (a mapped
 * file, a snapshot's vmstate read into a buffer): header, configuration
 * with its subsections, START/PART/END/FULL sections with footers,
 * COMMAND records (PACKAGED ones walked recursively), EOF and the vmdesc
 * trailer.  Every record is reported to callbacks with its offset and
 * size; every error is one line naming the offset and what was expected.
 *
 * The stream does not say how long a section's body is: a body callback
 * consumes it (the RAM decoder, or a vmdesc-driven device decoder), and
 * when none can, the walker finds the section's footer by scanning. */
#ifndef HOP_VMSTATE_STREAM_WALK_H
#define HOP_VMSTATE_STREAM_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "vmstate/stream-format.h"

/* The longest vmdesc JSON looked for at the end of a stream. */
#define STREAM_WALK_VMDESC_MAX (64u << 20)

struct stream_walk_config {
    uint64_t offset; /* of the 0x07 byte */
    uint64_t size;
    char machine[256];
    bool has_page_bits;
    uint32_t page_bits;
    size_t ncaps; /* capability names, from the subsection */
    char caps[16][256];
    bool has_uuid;
    uint8_t uuid[16];
};

struct stream_walk_record {
    uint64_t offset; /* of the type byte */
    uint64_t size;   /* header + body + footer (+ package) */
    uint8_t type;    /* enum stream_record */
    int depth;       /* 0 top level, 1 inside a PACKAGED blob */
    /* Sections.  PART/END take idstr, instance and version from the START
     * record that opened their section id. */
    uint32_t section_id;
    const char *idstr;
    uint32_t instance_id;
    uint32_t version_id;
    uint64_t body_offset;
    uint64_t body_size;
    bool body_scanned; /* no callback knew the body: footer found
                                 * by scanning */
    /* Commands. */
    uint16_t cmd;
    uint16_t cmd_len;
    const uint8_t *cmd_data;
    /* vmdesc: the JSON text (not NUL-terminated). */
    const char *json;
    size_t json_len;
};

enum stream_body_result {
    STREAM_BODY_ERROR = -1,
    STREAM_BODY_UNKNOWN = 0, /* let the walker scan for the footer */
    STREAM_BODY_DONE = 1,    /* *used set to the body's length */
};

struct stream_walk_ops {
    /* The configuration record (absent in streams sent without it). */
    bool (*config)(void *ctx, const struct stream_walk_config *cfg,
                   Error **errp);
    /* A section body starts at body, with avail bytes to the end of the
     * enclosing data.  May be NULL. */
    int (*body)(void *ctx, const struct stream_walk_record *rec,
                const uint8_t *body, size_t avail, size_t *used, Error **errp);
    /* Every record: sections once their footer was read, commands before
     * a PACKAGED blob's contents, EOF, the vmdesc trailer. */
    bool (*record)(void *ctx, const struct stream_walk_record *rec,
                   Error **errp);
};

struct stream_walk_result {
    uint32_t version;
    bool has_config;
    bool complete; /* reached EOF (top level) */
    bool has_vmdesc;
    uint64_t vmdesc_offset; /* of the 0x06 byte */
    uint64_t end;           /* bytes walked */
    size_t records;
};

/* Walks data[0..len).  Fails on the first malformed record. */
bool stream_walk(const uint8_t *data, size_t len,
                 const struct stream_walk_ops *ops, void *ctx,
                 struct stream_walk_result *res, Error **errp);

/* Finds the vmdesc trailer from the end of the data, as a reader that
 * wants device descriptions before the forward walk does: the last
 * 0x06 + be32 length + JSON object that ends exactly at len.  Sets the
 * trailer's offset and the JSON's location; false if there is none. */
bool stream_find_vmdesc(const uint8_t *data, size_t len, uint64_t *offset,
                        const char **json, size_t *json_len);

/* Names for messages and tables. */
const char *stream_record_name(uint8_t type);
const char *stream_command_name(uint16_t cmd);

#endif
