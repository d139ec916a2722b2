/* QMP input as a client sends it: bytes on the socket go through the
 * framing (message boundaries, size and nesting limits), negotiation,
 * the argument checks of the command table and the commands themselves,
 * on a session with a small stopped machine.  Commands that reach outside
 * the process (migrate, migrate-incoming with their exec: and file: URIs,
 * human-monitor-command with pmemsave and the like) are left out of the
 * table the fuzzer sees. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/session.h"
#include "fuzz-common.h"
#include "machine/machine.h"
#include "monitor/qmp.h"

static struct vm_session *session;
static struct qmp_cmd *safe_table;

static bool reaches_outside(const char *name)
{
    static const char *const outside[] = {
        "migrate",
        "migrate-incoming",
        "human-monitor-command",
        /* Jobs: a thread each that outlives the input. */
        "snapshot-save",
        "snapshot-load",
        "snapshot-delete",
        NULL,
    };
    for (int i = 0; outside[i]; i++) {
        if (strcmp(name, outside[i]) == 0) {
            return true;
        }
    }
    return false;
}

static void quiet(void *opaque, const char *msg)
{
    (void)opaque;
    (void)msg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    size_t n = 0;
    while (qmp_commands[n].name) {
        n++;
    }
    safe_table = calloc(n + 1, sizeof(*safe_table));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!reaches_outside(qmp_commands[i].name)) {
            safe_table[k++] = qmp_commands[i];
        }
    }
    struct machine_config mc = {
        .ram_size = 2u << 20,
        .guest = "counter",
        .report = quiet,
    };
    Error *err = NULL;
    session = session_new(
        &(struct session_config){ .machine = &mc, .qmp_table = safe_table },
        &err);
    if (!session) {
        fprintf(stderr, "fuzz_qmp: %s\n", error_get_pretty(err));
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) <
        0) {
        abort();
    }
    struct qmp_client *c = qmp_client_new(session, sv[0]);
    qmp_client_start(c);
    /* The client's side: everything at once, then end of input. */
    size_t off = 0;
    char sink[65536];
    for (int round = 0; round < 100000 && !qmp_client_gone(c); round++) {
        if (off < size) {
            ssize_t w = write(sv[1], data + off, size - off);
            if (w > 0) {
                off += (size_t)w;
            }
            if (off == size) {
                shutdown(sv[1], SHUT_WR);
            }
        } else if (size == 0 && round == 0) {
            shutdown(sv[1], SHUT_WR);
        }
        while (read(sv[1], sink, sizeof(sink)) > 0) {
        }
        struct pollfd p = { .fd = sv[0], .events = qmp_client_poll_events(c) };
        if (poll(&p, 1, 0) < 0) {
            abort();
        }
        qmp_client_ready(c, p.revents);
        session_flush_events(session);
    }
    qmp_client_free(c);
    close(sv[1]);
    /* A stopped machine for the next input, whatever this one did. */
    session_stop(session, NULL);
    session_clear_quit(session);
    return 0;
}
