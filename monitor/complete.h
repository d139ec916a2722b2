/* Completion for monitor command lines, from the command table: command
 * names, `info` subcommands, and each argument's kind (capability and
 * parameter names, on|off, snapshot tags, paths after file:/exec:/unix:,
 * key names). */
#ifndef HOP_MONITOR_COMPLETE_H
#define HOP_MONITOR_COMPLETE_H

#include <stdbool.h>

struct vm_session;

typedef void (*complete_fn)(const char *candidate, void *ctx);

/* Offers every candidate for the last (partial) word of line.  Returns
 * true when the word is a file name the caller should complete itself
 * (candidates offered, if any, are prefixes like "file:"). */
bool hmp_complete(struct vm_session *s, const char *line, complete_fn fn,
                  void *ctx);

/* File names that start with partial (directories end with '/'); each is
 * offered with keep in front ("file:" + path).  Hidden files only when
 * partial's last part starts with a dot. */
void complete_paths(const char *keep, const char *partial, complete_fn fn,
                    void *ctx);
/* Migration URIs: the schemes, then paths after file:, unix:, exec:. */
void complete_uri(const char *partial, complete_fn fn, void *ctx);

/* Candidates for kinds whose words come from the session's modules
 * (capabilities, parameters, snapshot tags, key names); in
 * monitor/complete-sources.c. */
#include "monitor/hmp-args.h"
void hmp_complete_kind(struct vm_session *s, enum mon_arg_kind kind,
                       const char *partial, complete_fn fn, void *ctx);

#endif
