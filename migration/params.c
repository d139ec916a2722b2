/* The capability and parameter tables and their checks. */
#include "migration/params.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ram/ram-multifd.h"
#include "util/parse.h"

const struct mig_cap_info mig_caps[MIG_CAP__MAX] = {
    [MIG_CAP_XBZRLE] = { "xbzrle",
                         "send pages sent before as deltas against a page "
                         "cache" },
    [MIG_CAP_AUTO_CONVERGE] = { "auto-converge",
                                "throttle the vCPUs when the guest dirties "
                                "memory faster than the "
                                "link carries it" },
    [MIG_CAP_EVENTS] = { "events", "send MIGRATION events to QMP clients" },
    [MIG_CAP_MULTIFD] = { "multifd",
                          "send RAM pages over several connections in "
                          "parallel" },
    [MIG_CAP_VALIDATE_UUID] = { "validate-uuid",
                                "make the destination check the source's "
                                "machine UUID" },
    [MIG_CAP_PAUSE_BEFORE_SWITCHOVER] = { "pause-before-switchover",
                                          "pause before the final stage until "
                                          "migrate_continue" },
    [MIG_CAP_X_IGNORE_SHARED] = { "x-ignore-shared",
                                  "do not send RAM on shared memory "
                                  "backends: the destination maps the same "
                                  "memory (set on both ends)" },
    [MIG_CAP_RELEASE_RAM] = { "release-ram",
                              "stop the guest first and free each page "
                              "once sent: a migration on one host needs one "
                              "copy of RAM, not two (the source cannot "
                              "resume once pages were freed)" },
    [MIG_CAP_RETURN_PATH] = { "return-path",
                              "the destination tells the source whether it "
                              "loaded the machine; when it did not, the guest "
                              "runs on here (needs a socket)" },
    [MIG_CAP_BACKGROUND_SNAPSHOT] = { "background-snapshot",
                                      "save the state as it is when the "
                                      "migration starts while the guest "
                                      "runs on (a page is saved before the "
                                      "guest's first write to it: emu "
                                      "checks every store, kvm needs "
                                      "userfaultfd)" },
    [MIG_CAP_BLOCK] = { "block",
                        "copy every drive to the destination's own images "
                        "while the guest runs (migrate -b)" },
    [MIG_CAP_MAPPED_RAM] = { "mapped-ram",
                             "file: only: every page at a fixed offset of "
                             "the file, zero pages unwritten (with multifd, "
                             "written and read in parallel)" },
    [MIG_CAP_POSTCOPY_RAM] = { "postcopy-ram",
                               "after migrate_start_postcopy the guest runs "
                               "at the destination before all RAM arrived; "
                               "it asks for missing pages on the return path "
                               "(set on both ends; needs a socket and "
                               "userfaultfd; a failure after the switch "
                               "loses the guest)" },
    [MIG_CAP_POSTCOPY_BLOCKTIME] = { "postcopy-blocktime",
                                     "destination: measure how long the "
                                     "vCPUs wait for missing pages in "
                                     "postcopy (query-migrate's "
                                     "postcopy-blocktime and "
                                     "postcopy-latency; needs userfaultfd "
                                     "with thread ids)" },
    [MIG_CAP_POSTCOPY_PREEMPT] = { "postcopy-preempt",
                                   "with postcopy-ram: the pages the "
                                   "destination asks for go at once on a "
                                   "second connection of their own, not "
                                   "behind the rest (set on both ends; tcp: "
                                   "or unix:)" },
};

/* What QEMU refuses beside background-snapshot, of what hop has (the
 * destination is a snapshot: nothing to converge, switch or validate). */
static const int background_incompatible[] = {
    MIG_CAP_XBZRLE,
    MIG_CAP_AUTO_CONVERGE,
    MIG_CAP_MULTIFD,
    MIG_CAP_VALIDATE_UUID,
    MIG_CAP_PAUSE_BEFORE_SWITCHOVER,
    MIG_CAP_X_IGNORE_SHARED,
    MIG_CAP_RELEASE_RAM,
    MIG_CAP_RETURN_PATH,
    MIG_CAP_BLOCK,
    MIG_CAP_MAPPED_RAM,
    MIG_CAP_POSTCOPY_RAM,
};

/* What hop's postcopy does not combine with: each changes how pages go
 * (other channels, file offsets, freed at the source) or what the stream
 * carries. */
static const int postcopy_incompatible[] = {
    MIG_CAP_MULTIFD, MIG_CAP_RELEASE_RAM,     MIG_CAP_MAPPED_RAM,
    MIG_CAP_BLOCK,   MIG_CAP_X_IGNORE_SHARED,
};

static const char *const mig_bool_names[] = { "off", "on", NULL };
static const char *const mig_mode_names[] = { "normal", "cpr-transfer",
                                              "cpr-exec", NULL };

const struct mig_param_info mig_params[MIG_PARAM__MAX] = {
    [MIG_PARAM_MAX_BANDWIDTH] = { "max-bandwidth", MIG_KIND_SIZE, 128ull << 20,
                                  0, 1ull << 50, "bytes/s",
                                  "bandwidth limit (0 = unlimited)" },
    [MIG_PARAM_DOWNTIME_LIMIT] = { "downtime-limit", MIG_KIND_INT, 300, 1,
                                   2000000, "ms",
                                   "the longest pause allowed at the switch" },
    [MIG_PARAM_XBZRLE_CACHE_SIZE] = { "xbzrle-cache-size", MIG_KIND_SIZE,
                                      64ull << 20, 4096, 1ull << 40, "bytes",
                                      "XBZRLE page cache size" },
    [MIG_PARAM_MULTIFD_CHANNELS] = { "multifd-channels", MIG_KIND_INT, 2, 1,
                                     MULTIFD_MAX_CHANNELS, "",
                                     "parallel connections with multifd" },
    [MIG_PARAM_CPU_THROTTLE_INITIAL] = { "cpu-throttle-initial", MIG_KIND_INT,
                                         20, 1, 99, "%",
                                         "first auto-converge throttle" },
    [MIG_PARAM_CPU_THROTTLE_INCREMENT] = { "cpu-throttle-increment",
                                           MIG_KIND_INT, 10, 1, 99, "%",
                                           "auto-converge throttle step" },
    [MIG_PARAM_THROTTLE_TRIGGER_THRESHOLD] = { "throttle-trigger-threshold",
                                               MIG_KIND_INT, 50, 1, 100, "%",
                                               "dirtied/sent ratio that "
                                               "triggers throttling" },
    [MIG_PARAM_MODE] = { "mode", MIG_KIND_ENUM, MIG_MODE_NORMAL,
                         MIG_MODE_NORMAL, MIG_MODE__MAX - 1, "",
                         "normal: copy everything; cpr-transfer: hand "
                         "shared guest RAM to a process on this host over "
                         "a unix: socket and send the rest; cpr-exec: "
                         "replace this process with a new hop binary",
                         mig_mode_names, "MigMode" },
    [MIG_PARAM_CPR_EXEC_COMMAND] = { "cpr-exec-command", MIG_KIND_WORDS, 0, 0,
                                     MIG_EXEC_ARGS_MAX, "",
                                     "the command line cpr-exec runs in "
                                     "this process (default: the same "
                                     "binary and arguments)" },
    [MIG_PARAM_BLOCK_INCREMENTAL] = { "block-incremental", MIG_KIND_BOOL, 0, 0,
                                      1, "",
                                      "with block: copy only what lies above "
                                      "a backing file both ends share "
                                      "(migrate -i)",
                                      mig_bool_names, "bool" },
    [MIG_PARAM_DIRECT_IO] = { "direct-io", MIG_KIND_BOOL, 0, 0, 1, "",
                              "mapped-ram: write and read pages with "
                              "O_DIRECT, past the page cache",
                              mig_bool_names, "bool" },
    [MIG_PARAM_MAX_POSTCOPY_BANDWIDTH] = { "max-postcopy-bandwidth",
                                           MIG_KIND_SIZE, 0, 0, 1ull << 50,
                                           "bytes/s",
                                           "bandwidth limit after the "
                                           "postcopy switch (0 = "
                                           "unlimited)" },
};

void mig_config_init(struct mig_config *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < MIG_PARAM__MAX; i++) {
        c->params[i] = mig_params[i].def;
    }
}

int mig_cap_find(const char *name)
{
    for (int i = 0; i < MIG_CAP__MAX; i++) {
        if (strcmp(mig_caps[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

int mig_param_find(const char *name)
{
    for (int i = 0; i < MIG_PARAM__MAX; i++) {
        if (strcmp(mig_params[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

bool mig_set_exec_command(struct mig_config *c, const char *const *argv,
                          int argc, Error **errp)
{
    size_t at = 0;
    char buf[MIG_EXEC_COMMAND_MAX];
    if (argc > MIG_EXEC_ARGS_MAX) {
        error_setg(errp, "parameter 'cpr-exec-command': more than %d words",
                   MIG_EXEC_ARGS_MAX);
        return false;
    }
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;
        if (n == 1 || at + n > sizeof(buf)) {
            error_setg(errp,
                       n == 1 ? "parameter 'cpr-exec-command': word %d is "
                                "empty"
                              : "parameter 'cpr-exec-command': longer than "
                                "%d bytes",
                       n == 1 ? i + 1 : MIG_EXEC_COMMAND_MAX);
            return false;
        }
        memcpy(buf + at, argv[i], n);
        at += n;
    }
    memset(c->exec_command, 0, sizeof(c->exec_command));
    memcpy(c->exec_command, buf, at);
    c->params[MIG_PARAM_CPR_EXEC_COMMAND] = (uint64_t)argc;
    return true;
}

int mig_exec_command_argv(const struct mig_config *c, const char **argv,
                          int max)
{
    int n = (int)c->params[MIG_PARAM_CPR_EXEC_COMMAND];
    const char *w = c->exec_command;
    int i = 0;
    for (; i < n && i < max; i++) {
        argv[i] = w;
        w += strlen(w) + 1;
    }
    argv[i] = NULL;
    return i;
}

int mig_param_enum_find(int p, const char *name)
{
    const char *const *v = mig_params[p].values;
    for (int i = 0; v && v[i]; i++) {
        if (strcmp(v[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

const char *mig_param_enum_name(int p, uint64_t value)
{
    const char *const *v = mig_params[p].values;
    for (uint64_t i = 0; v && v[i]; i++) {
        if (i == value) {
            return v[i];
        }
    }
    return "?";
}

/* "normal, cpr-transfer" for messages. */
static void enum_list(int p, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (const char *const *v = mig_params[p].values; *v && at < len; v++) {
        at += (size_t)snprintf(buf + at, len - at, "%s%s",
                               v == mig_params[p].values ? "" : ", ", *v);
    }
}

bool mig_config_check(const struct mig_config *c, Error **errp)
{
    for (size_t i = 0; c->caps[MIG_CAP_BACKGROUND_SNAPSHOT] &&
         i < sizeof(background_incompatible) / sizeof(int);
         i++) {
        int o = background_incompatible[i];
        if (c->caps[o]) {
            error_setg(errp,
                       "capabilities background-snapshot and %s cannot be "
                       "used together",
                       mig_caps[o].name);
            return false;
        }
    }
    if (c->caps[MIG_CAP_BACKGROUND_SNAPSHOT] &&
        c->params[MIG_PARAM_MODE] != MIG_MODE_NORMAL) {
        error_setg(
            errp,
            "capability background-snapshot cannot be used with "
            "mode %s (it needs mode normal)",
            mig_param_enum_name(MIG_PARAM_MODE, c->params[MIG_PARAM_MODE]));
        return false;
    }
    for (size_t i = 0; c->caps[MIG_CAP_POSTCOPY_RAM] &&
         i < sizeof(postcopy_incompatible) / sizeof(int);
         i++) {
        int o = postcopy_incompatible[i];
        if (c->caps[o]) {
            error_setg(errp,
                       "capabilities postcopy-ram and %s cannot be used "
                       "together in hop",
                       mig_caps[o].name);
            return false;
        }
    }
    if (c->caps[MIG_CAP_POSTCOPY_PREEMPT] && !c->caps[MIG_CAP_POSTCOPY_RAM]) {
        error_setg(errp, "Postcopy preempt requires postcopy-ram");
        return false;
    }
    if (c->caps[MIG_CAP_POSTCOPY_RAM] &&
        c->params[MIG_PARAM_MODE] != MIG_MODE_NORMAL) {
        error_setg(
            errp,
            "capability postcopy-ram cannot be used with mode %s (the cpr "
            "modes send no RAM)",
            mig_param_enum_name(MIG_PARAM_MODE, c->params[MIG_PARAM_MODE]));
        return false;
    }
    if (c->caps[MIG_CAP_RELEASE_RAM] && c->caps[MIG_CAP_MULTIFD]) {
        error_setg(errp,
                   "capabilities release-ram and multifd cannot be used "
                   "together");
        return false;
    }
    if (c->caps[MIG_CAP_BLOCK] &&
        c->params[MIG_PARAM_MODE] != MIG_MODE_NORMAL) {
        error_setg(errp,
                   "capability block (migrate -b) needs mode normal: the "
                   "cpr modes keep the drives on this host");
        return false;
    }
    if (c->caps[MIG_CAP_MAPPED_RAM] && c->caps[MIG_CAP_XBZRLE]) {
        error_setg(errp,
                   "capabilities mapped-ram and xbzrle cannot be used "
                   "together (pages have one place in the file)");
        return false;
    }
    if (c->caps[MIG_CAP_MAPPED_RAM] && c->caps[MIG_CAP_RELEASE_RAM]) {
        error_setg(errp,
                   "capabilities mapped-ram and release-ram cannot be used "
                   "together (a file keeps no copy the guest could lose)");
        return false;
    }
    if (c->caps[MIG_CAP_XBZRLE] && c->caps[MIG_CAP_MULTIFD]) {
        error_setg(errp,
                   "capabilities xbzrle and multifd cannot be used "
                   "together");
        return false;
    }
    return true;
}

bool mig_set_capability(struct mig_config *c, const char *name, bool on,
                        Error **errp)
{
    int i = mig_cap_find(name);
    if (i < 0) {
        error_setg(errp,
                   "unknown capability '%s' (see info "
                   "migrate_capabilities)",
                   name);
        return false;
    }
    struct mig_config next = *c;
    next.caps[i] = on;
    if (!mig_config_check(&next, errp)) {
        return false;
    }
    *c = next;
    return true;
}

bool mig_set_parameter(struct mig_config *c, int p, uint64_t value,
                       Error **errp)
{
    const struct mig_param_info *pi = &mig_params[p];
    if (pi->kind == MIG_KIND_ENUM && value > pi->max) {
        char names[256];
        enum_list(p, names, sizeof(names));
        error_setg(errp, "parameter '%s' must be one of %s", pi->name, names);
        return false;
    }
    if (value < pi->min || value > pi->max) {
        error_setg(errp,
                   "parameter '%s' must be between %" PRIu64 " and %" PRIu64
                   "%s%s (got %" PRIu64 ")",
                   pi->name, pi->min, pi->max, *pi->unit ? " " : "", pi->unit,
                   value);
        return false;
    }
    c->params[p] = value;
    return true;
}

static bool split_words(const char *value, char *buf, const char **argv,
                        int *argc, Error **errp)
{
    size_t at = 0;
    *argc = 0;
    const char *p = value;
    for (;;) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (!*p) {
            break;
        }
        size_t start = at;
        bool quoted = false;
        while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
            if (*p == '"') {
                quoted = !quoted;
                p++;
                continue;
            }
            if (at + 1 >= MIG_EXEC_COMMAND_MAX) {
                error_setg(errp, "longer than %d bytes",
                           MIG_EXEC_COMMAND_MAX - 1);
                return false;
            }
            buf[at++] = *p++;
        }
        if (quoted) {
            error_setg(errp, "a quote is not closed");
            return false;
        }
        if (at == start) {
            continue; /* "" */
        }
        if (*argc == MIG_EXEC_ARGS_MAX) {
            error_setg(errp, "more than %d words", MIG_EXEC_ARGS_MAX);
            return false;
        }
        buf[at++] = 0;
        argv[(*argc)++] = buf + start;
    }
    argv[*argc] = NULL;
    return true;
}

bool mig_set_parameter_str(struct mig_config *c, const char *name,
                           const char *value, Error **errp)
{
    int p = mig_param_find(name);
    if (p < 0) {
        error_setg(errp,
                   "unknown parameter '%s' (see info "
                   "migrate_parameters)",
                   name);
        return false;
    }
    uint64_t v;
    /* The rest of a monitor line: words split at blanks, "..." keeping
     * blanks in a word ("" alone is no word). */
    char buf[MIG_EXEC_COMMAND_MAX];
    const char *argv[MIG_EXEC_ARGS_MAX + 1];
    int argc;
    if (!split_words(value, buf, argv, &argc, errp)) {
        error_prepend(errp, "parameter '%s': ", name);
        return false;
    }
    if (mig_params[p].kind == MIG_KIND_WORDS) {
        return mig_set_exec_command(c, argv, argc, errp);
    }
    if (argc != 1) {
        error_setg(errp, "parameter '%s': expected one value, got '%s'", name,
                   value);
        return false;
    }
    value = argv[0];
    if (mig_params[p].kind == MIG_KIND_BOOL) {
        if (strcmp(value, "on") == 0 || strcmp(value, "true") == 0) {
            v = 1;
        } else if (strcmp(value, "off") == 0 || strcmp(value, "false") == 0) {
            v = 0;
        } else {
            error_setg(errp, "parameter '%s': '%s' is not on or off", name,
                       value);
            return false;
        }
    } else if (mig_params[p].kind == MIG_KIND_ENUM) {
        int e = mig_param_enum_find(p, value);
        if (e < 0) {
            char names[256];
            enum_list(p, names, sizeof(names));
            error_setg(errp, "parameter '%s': '%s' is not one of %s", name,
                       value, names);
            return false;
        }
        v = (uint64_t)e;
    } else if (mig_params[p].kind == MIG_KIND_SIZE) {
        if (!parse_size(value, 1, &v)) {
            error_setg(errp, "parameter '%s': '%s' is not a size", name, value);
            return false;
        }
        /* As QEMU's HMP: a bare max-bandwidth number means MiB/s. */
        size_t n = strlen(value);
        if (p == MIG_PARAM_MAX_BANDWIDTH && n && value[n - 1] >= '0' &&
            value[n - 1] <= '9') {
            v <<= 20;
        }
    } else {
        int64_t i;
        if (!parse_int(value, &i) || i < 0) {
            error_setg(errp, "parameter '%s': '%s' is not a number", name,
                       value);
            return false;
        }
        v = (uint64_t)i;
    }
    return mig_set_parameter(c, p, v, errp);
}
