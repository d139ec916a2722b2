/* The RAM section decoder: a sequence of section bodies (block list,
 * then page records up to EOS), and each XBZRLE delta applied to a page,
 * as inspect and the incoming side read them; with mapped-ram, each block
 * entry's header and the seek past its pages. */
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "ram/ram-decode.h"

struct fuzz_ram {
    uint8_t page[RAM_PAGE_SIZE];
};

static bool on_page(void *ctx, const struct ram_page *p, Error **errp)
{
    struct fuzz_ram *r = ctx;
    if (p->kind == RAM_PAGE_XBZRLE) {
        Error *err = NULL;
        if (!xbzrle_decode(p->data, p->len, r->page, sizeof(r->page), &err)) {
            error_free(err);
        }
    } else if (p->kind == RAM_PAGE_NORMAL && p->len <= sizeof(r->page)) {
        memcpy(r->page, p->data, p->len);
    }
    return true;
}

static const struct ram_decode_ops ops = { .page = on_page };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_ram *r = calloc(1, sizeof(*r));
    struct ram_decoder d;
    ram_decoder_init(&d, &ops, r);
    if (size > 0) {
        d.ignore_shared = data[0] & 1;
        d.mapped_ram = data[0] & 2; /* headers checked against the input */
        data++;
        size--;
    }
    struct ram_mem_source src;
    struct ram_reader rd;
    ram_reader_init_mem(&rd, &src, data, size, 0);
    /* At most a few sections: each must consume input or fail. */
    for (int i = 0; i < 64 && src.pos < src.len; i++) {
        size_t before = src.pos;
        Error *err = NULL;
        if (!ram_decode_section(&d, &rd, &err)) {
            error_free(err);
            break;
        }
        if (src.pos == before) {
            abort(); /* a section that reads nothing would loop */
        }
    }
    ram_decoder_cleanup(&d);
    free(r);
    return 0;
}
