/* Postcopy's peer-supplied messages: POSTCOPY_ADVISE and
 * POSTCOPY_RAM_DISCARD bodies (from the source), REQ_PAGES and
 * REQ_PAGES_ID bodies (from the destination), and their ranges checked
 * against real RAM blocks.  The first byte picks the parser.  Whatever
 * parses re-encodes to the same meaning. */
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "machine/memory.h"
#include "migration/return-path.h"
#include "ram/ram-postcopy.h"

static struct machine_memory *memory(void)
{
    static struct machine_memory *mem;
    if (!mem) {
        mem = memory_new(2u << 20, NULL, NULL);
        if (!mem || !memory_add_block(mem, "pc.bios", 64 << 10, NULL, NULL)) {
            abort();
        }
    }
    return mem;
}

static void check_range(const char *name, uint64_t start, uint64_t len)
{
    int block = -1;
    Error *err = NULL;
    if (postcopy_range_check(memory(), name, start, len, "fuzz", &block,
                             &err)) {
        const struct ram_block *b = memory()->blocks[block];
        if (start % 4096 || len % 4096 || !len || start + len > b->size ||
            start + len < start) {
            abort(); /* a range it should have refused */
        }
    }
    error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 70000) {
        return 0;
    }
    uint8_t which = data[0];
    data++;
    size--;
    Error *err = NULL;
    if (which % 3 == 0) {
        uint64_t s, t;
        if (!postcopy_advise_parse(data, size, &s, &t, &err)) {
            error_free(err);
        }
    } else if (which % 3 == 1) {
        struct postcopy_discard d, back;
        if (!postcopy_discard_parse(data, size, &d, &err)) {
            error_free(err);
            return 0;
        }
        uint8_t buf[POSTCOPY_DISCARD_MAX_LEN];
        size_t len = postcopy_discard_encode(&d, buf);
        if (len != size || memcmp(buf, data, len) != 0 ||
            !postcopy_discard_parse(buf, len, &back, NULL) || back.n != d.n) {
            abort();
        }
        for (unsigned i = 0; i < d.n; i++) {
            check_range(d.name, d.start[i], d.len[i]);
        }
    } else {
        struct rp_req_pages q;
        uint16_t type = which & 4 ? RP_MSG_REQ_PAGES_ID : RP_MSG_REQ_PAGES;
        if (size > 0xffff ||
            !rp_parse_req_pages(type, data, (uint16_t)size, &q, &err)) {
            error_free(err);
            return 0;
        }
        check_range(q.has_name ? q.name : "pc.ram", q.start, q.len);
    }
    return 0;
}
