/* hop inspect's engine: decode a saved state held in memory into one JSON
 * report (the document `hop inspect --json` prints), optionally writing
 * each RAM block to a file.  The byte range can be a mapped stream file,
 * a snapshot's vmstate read from an image, or anything a channel yields
 * (inspect_channel). */
#ifndef HOP_CLI_INSPECT_H
#define HOP_CLI_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/error.h"
#include "vmstate/channel.h"

typedef struct json_t json_t;

struct inspect_opts {
    /* Only this section (NULL: all); instance < 0 matches any. */
    const char *section;
    long section_instance;
    bool no_ram;    /* skip the RAM summary */
    bool no_fields; /* sizes only, do not decode devices */
    /* Strict mode for --verify: every FULL section needs its vmdesc
     * entry, and versions must agree. */
    bool verify;
    /* Write each RAM block to extract_dir/<name> (see inspect_ram_file_name).
     * Entries already there are refused unless overwrite is set (then
     * they are replaced, never written through: a symlink is removed, not
     * followed). */
    const char *extract_dir;
    bool overwrite;
    /* Descriptions for devices the stream's vmdesc does not cover (or
     * when it has none): returns a new reference to an entry in vmdesc's
     * "devices" layout, or NULL.  Lets a machine registry decode hop's
     * own vmdesc-less streams. */
    json_t *(*describe)(void *ctx, const char *idstr, uint32_t instance_id,
                        uint32_t version_id);
    void *describe_ctx;
};

/* Decodes data[0..len) into *report (new reference).  On a malformed
 * stream returns false with a one-line error naming the offset; *report
 * then holds what was read before it (or NULL). */
bool inspect_stream(const uint8_t *data, size_t len,
                    const struct inspect_opts *opts, json_t **report,
                    Error **errp);

/* Reads a channel to its end and inspects what it held. */
bool inspect_channel(Channel *f, const struct inspect_opts *opts,
                     json_t **report, Error **errp);

/* Prints a report as text. */
void inspect_print(FILE *out, json_t *report, const struct inspect_opts *opts,
                   bool table, bool fields);

/* Checks a report against a schema dump (-dump-vmstate layout): would the
 * state load into a build with that schema?  Returns the findings, an
 * array of {"severity", "path", "message"} (see cli/vmstate-check.h). */
json_t *inspect_against(json_t *report, json_t *schema);

/* File name for a RAM block: a leading '/' dropped, '/', '%' and control
 * bytes escaped as %XX (%2F, %25, %1B...), a leading '.' as %2E, so no
 * name is "." or ".." or holds a directory.  Only "/x" and "x" map to
 * the same file; the extraction refuses such a pair.  out holds
 * >= 3 * 256 bytes. */
void inspect_ram_file_name(const char *block, char *out, size_t size);

/* A name read from the file as a JSON string: as it is when it is valid
 * UTF-8 (jansson escapes control characters), else with the bytes that
 * are not escaped as \xHH. */
json_t *inspect_json_name(const char *s);

#endif
