/* The vmdesc-driven device decoder: the input is a JSON device
 * description, a NUL byte, then the section payload it describes. */
#include <jansson.h>
#include <string.h>

#include "fuzz-common.h"
#include "vmstate/vmdesc-decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul) {
        return 0;
    }
    size_t jlen = (size_t)(nul - data);
    json_t *dev =
        json_loadb((const char *)data, jlen, JSON_REJECT_DUPLICATES, NULL);
    if (!dev) {
        return 0;
    }
    json_t *out = NULL;
    size_t used = 0;
    Error *err = NULL;
    vmdesc_decode(dev, nul + 1, size - jlen - 1, jlen + 1, NULL, &out, &used,
                  &err);
    error_free(err);
    json_decref(out);
    json_decref(dev);
    return 0;
}
