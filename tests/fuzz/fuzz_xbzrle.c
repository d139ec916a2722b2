/* XBZRLE delta decoding against a page: never writes outside it, and a
 * rejected delta leaves the page as it was. */
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "ram/ram-decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { PAGE = 4096 };
    uint8_t *page = malloc(PAGE);
    uint8_t *copy = malloc(PAGE);
    memset(page, 0x5a, PAGE);
    memcpy(copy, page, PAGE);
    Error *err = NULL;
    if (!xbzrle_decode(data, size, page, PAGE, &err)) {
        if (memcmp(page, copy, PAGE) != 0) {
            abort(); /* documented: a bad delta leaves the page alone */
        }
        error_free(err);
    }
    free(page);
    free(copy);
    return 0;
}
