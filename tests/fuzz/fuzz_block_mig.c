/* The block migration section's records ("block": drive blocks,
 * progress, EOS) as the destination reads them, into a small drive
 * (64 KiB, so that each of the many writes a short input can ask for is
 * short): every body must be written or refused, never crash or overrun. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz-common.h"
#include "migration/block-mig.h"

static BlockDev *drive;
static struct block_mig bm;

static bool open_drive(void)
{
    static const uint8_t none[1];
    static char path[128];
    /* Beside the private directory's input file, which stays free. */
    snprintf(path, sizeof(path), "%s.drive", fuzz_write_file(none, 0));
    Error *err = NULL;
    if (!blk_create(path, "raw", 64u << 10, NULL, &err) ||
        !(drive = blk_open(path, "raw", false, &err))) {
        error_free(err);
        return false;
    }
    block_mig_init(&bm);
    return block_mig_add_drive(&bm, "ide0-hd0", drive, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!drive && !open_drive()) {
        abort();
    }
    Channel *f = chan_new_mem_reader(data, size, "fuzz");
    /* Each body consumes at least one record or fails. */
    for (int i = 0; i < 64 && !chan_at_eof(f); i++) {
        Error *err = NULL;
        if (!block_mig_load_body(&bm, f, &err)) {
            error_free(err);
            break;
        }
    }
    chan_close(f, NULL);
    return 0;
}
