/* Migration capabilities and parameters: one table each, driving
 * validation, `info migrate_capabilities|parameters`, completion and the
 * QMP query results. */
#ifndef HOP_MIGRATION_PARAMS_H
#define HOP_MIGRATION_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

enum mig_cap {
    MIG_CAP_XBZRLE,
    MIG_CAP_AUTO_CONVERGE,
    MIG_CAP_EVENTS,
    MIG_CAP_MULTIFD,
    MIG_CAP_VALIDATE_UUID,
    MIG_CAP_PAUSE_BEFORE_SWITCHOVER,
    MIG_CAP_X_IGNORE_SHARED,
    MIG_CAP_RELEASE_RAM,
    MIG_CAP_RETURN_PATH,
    MIG_CAP_BACKGROUND_SNAPSHOT,
    MIG_CAP_BLOCK,
    MIG_CAP_MAPPED_RAM,
    MIG_CAP_POSTCOPY_RAM,
    MIG_CAP_POSTCOPY_BLOCKTIME,
    MIG_CAP_POSTCOPY_PREEMPT,
    MIG_CAP__MAX
};

enum mig_param {
    MIG_PARAM_MAX_BANDWIDTH,     /* bytes/s */
    MIG_PARAM_DOWNTIME_LIMIT,    /* ms */
    MIG_PARAM_XBZRLE_CACHE_SIZE, /* bytes */
    MIG_PARAM_MULTIFD_CHANNELS,
    MIG_PARAM_CPU_THROTTLE_INITIAL,       /* percent */
    MIG_PARAM_CPU_THROTTLE_INCREMENT,     /* percent */
    MIG_PARAM_THROTTLE_TRIGGER_THRESHOLD, /* percent */
    MIG_PARAM_MODE,                       /* enum mig_mode */
    MIG_PARAM_CPR_EXEC_COMMAND,           /* words, in mig_config */
    MIG_PARAM_BLOCK_INCREMENTAL,          /* bool */
    MIG_PARAM_DIRECT_IO,                  /* bool */
    MIG_PARAM_MAX_POSTCOPY_BANDWIDTH,     /* bytes/s, 0: unlimited */
    MIG_PARAM__MAX
};

/* What a migration moves (QEMU's MigMode): everything, or everything but
 * RAM on shared memory, whose descriptors go to the new process: another
 * one over a unix socket (cpr-transfer), or this one after exec of a new
 * binary (cpr-exec). */
enum mig_mode {
    MIG_MODE_NORMAL,
    MIG_MODE_CPR_TRANSFER,
    MIG_MODE_CPR_EXEC,
    MIG_MODE__MAX
};

/* cpr-exec-command: at most this many bytes of words with their NULs. */
#define MIG_EXEC_COMMAND_MAX 4096
#define MIG_EXEC_ARGS_MAX 256

enum mig_param_kind {
    MIG_KIND_SIZE, /* bytes, K/M/G suffixes */
    MIG_KIND_INT,
    MIG_KIND_ENUM,  /* one of values[], stored as its index */
    MIG_KIND_WORDS, /* a command line (a QMP list of strings) */
    MIG_KIND_BOOL,  /* on/off (QMP true/false), stored as 0/1 */
};

struct mig_cap_info {
    const char *name;
    const char *help;
};

struct mig_param_info {
    const char *name;
    enum mig_param_kind kind;
    uint64_t def, min, max;
    const char *unit; /* for messages: "bytes/s", "ms", "%" */
    const char *help;
    const char *const *values; /* MIG_KIND_ENUM: NULL-terminated names */
    const char *type_name;     /* MIG_KIND_ENUM: its QMP enum type */
};

extern const struct mig_cap_info mig_caps[MIG_CAP__MAX];
extern const struct mig_param_info mig_params[MIG_PARAM__MAX];

struct mig_config {
    bool caps[MIG_CAP__MAX];
    uint64_t params[MIG_PARAM__MAX]; /* for MIG_KIND_WORDS: the count */
    /* cpr-exec-command: params[MIG_PARAM_CPR_EXEC_COMMAND] words, each
     * ended by a NUL; none: the same binary and arguments. */
    char exec_command[MIG_EXEC_COMMAND_MAX];
};

void mig_config_init(struct mig_config *c);
int mig_cap_find(const char *name);
int mig_param_find(const char *name);
/* Checks the combination (e.g. xbzrle with multifd). */
bool mig_config_check(const struct mig_config *c, Error **errp);
bool mig_set_capability(struct mig_config *c, const char *name, bool on,
                        Error **errp);
/* value is text as typed in the monitor ("64M", "300"); sizes without a
 * suffix are bytes, except max-bandwidth where QEMU's HMP reads MiB/s
 * when no suffix is given. */
bool mig_set_parameter_str(struct mig_config *c, const char *name,
                           const char *value, Error **errp);
bool mig_set_parameter(struct mig_config *c, int param, uint64_t value,
                       Error **errp);
/* cpr-exec-command from words (argc 0: back to the default). */
bool mig_set_exec_command(struct mig_config *c, const char *const *argv,
                          int argc, Error **errp);
/* Its words into argv (at most max, then NULL); returns the count. */
int mig_exec_command_argv(const struct mig_config *c, const char **argv,
                          int max);
/* An enum parameter's value by name (-1 if it has none), and back. */
int mig_param_enum_find(int param, const char *name);
const char *mig_param_enum_name(int param, uint64_t value);

#endif
