/* Migration compatibility of state schemas: two dumps in QEMU's
 * -dump-vmstate layout (hop writes the same with stream_dump_schema)
 * compared rule by rule, and the lookups hop inspect --against shares.
 *
 * A finding is a JSON object {"severity": "error"|"warning", "path":
 * "device/field/subsection/...", "message": "..."}; errors break
 * migration, warnings may. */
#ifndef HOP_CLI_VMSTATE_CHECK_H
#define HOP_CLI_VMSTATE_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

typedef struct json_t json_t;

/* Reads a schema dump; errors name the file and what is wrong. */
json_t *vmcheck_load_schema(const char *path, Error **errp);

/* The entry a section (idstr, and its vmsd name when known) loads into:
 * the entry keyed idstr, else one whose description is named vmsd_name
 * or the part of idstr after its last '/'.  NULL if none. */
json_t *vmcheck_find_entry(json_t *schema, const char *idstr,
                           const char *vmsd_name);

/* Version window of an entry (or of a description). */
long vmcheck_version(json_t *entry);
long vmcheck_min_version(json_t *entry);

void vmcheck_add(json_t *findings, const char *severity, const char *path,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
size_t vmcheck_count_errors(json_t *findings);

/* What breaks when a build with schema `from` sends to one with `to`. */
json_t *vmcheck_compare(json_t *from, json_t *to);

int cmd_vmstate_check(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

#endif
