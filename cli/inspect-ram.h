/* hop inspect's RAM part: per-block page counts and, with --extract-ram,
 * one file per block holding the guest's memory at the end of the
 * stream (zero pages as holes, XBZRLE pages applied to the page's
 * previous contents). */
#ifndef HOP_CLI_INSPECT_RAM_H
#define HOP_CLI_INSPECT_RAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ram/ram-decode.h"
#include "util/error.h"
#include "util/lookup.h"

typedef struct json_t json_t;

struct inspect_ram_block {
    uint64_t pages[RAM_PAGE_KINDS];
    uint64_t stream_bytes; /* bytes of this block's page records */
    int fd;                /* extraction target, or -1 */
    char *file;            /* its name in the directory */
    uint8_t *written;      /* pages holding data in the file */
    bool mapped;           /* mapped-ram: pages at fixed file offsets */
};

struct inspect_ram {
    struct ram_decoder dec;
    struct inspect_ram_block *blocks;
    size_t nblocks, cap;
    const char *dir;     /* extraction directory or NULL */
    int dirfd;           /* the directory, open, or -1 */
    bool overwrite;      /* replace entries already there */
    struct lookup files; /* file name -> block index */
    uint64_t pages;      /* of the blocks to extract, in all */
    size_t avail;        /* stream bytes from the current body on */
    const uint8_t *body; /* the current body, at stream offset base */
    uint64_t base;
    uint64_t sections; /* START/PART/END bodies read */
    uint8_t page[RAM_PAGE_SIZE];
};

struct inspect_opts;

bool inspect_ram_init(struct inspect_ram *r, const struct inspect_opts *o,
                      Error **errp);
/* One START/PART/END body at body[0..avail) (stream offset base). */
bool inspect_ram_section(struct inspect_ram *r, const uint8_t *body,
                         size_t avail, uint64_t base, size_t *used,
                         Error **errp);
/* The "ram" object of the report (new reference). */
json_t *inspect_ram_report(const struct inspect_ram *r);
/* Closes the extracted files; false if any write-back failed. */
bool inspect_ram_finish(struct inspect_ram *r, Error **errp);
/* Frees everything; with discard, removes the files this run created
 * (the stream failed: no partial extraction is left behind). */
void inspect_ram_cleanup(struct inspect_ram *r, bool discard);

#endif
