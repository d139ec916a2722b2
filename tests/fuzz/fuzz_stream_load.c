/* The stream loader as an incoming migration runs it: a small stopped
 * machine (emu, 2 MiB) with the ram and globalstate sections registered
 * takes whatever stream arrives.  The machine is made once; each input
 * loads over what the previous one left. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz-common.h"
#include "machine/machine.h"
#include "migration/globalstate.h"
#include "ram/ram.h"
#include "vmstate/stream.h"

static struct machine *m;
static struct ram_state *rs;
static struct globalstate gs;

static void quiet(void *opaque, const char *msg)
{
    (void)opaque;
    (void)msg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    Error *err = NULL;
    struct machine_config cfg = {
        .ram_size = 2u << 20,
        .guest = "counter",
        .report = quiet,
    };
    m = machine_new(&cfg, &err);
    if (!m) {
        fprintf(stderr, "fuzz_stream_load: %s\n", error_get_pretty(err));
        abort();
    }
    rs = ram_state_new(m);
    if (!ram_register(rs, machine_registry(m), &err) ||
        !globalstate_register(&gs, machine_registry(m), &err)) {
        fprintf(stderr, "fuzz_stream_load: %s\n", error_get_pretty(err));
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Channel *f = chan_new_mem_reader(data, size, "fuzz");
    Error *err = NULL;
    /* Alternate between a fresh destination and a loadvm over RAM. */
    ram_state_set_fresh(rs, size & 1);
    if (!stream_load(machine_registry(m), f, NULL, &err)) {
        error_free(err);
    }
    chan_close(f, NULL);
    return 0;
}
