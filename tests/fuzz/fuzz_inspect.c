/* hop inspect's engine on a stream held in memory: the record walker,
 * the vmdesc-driven device decoder and the RAM section decoder together,
 * as `hop inspect FILE` runs them. */
#include <jansson.h>

#include "cli/inspect.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inspect_opts opts = { .section_instance = -1 };
    json_t *report = NULL;
    Error *err = NULL;
    inspect_stream(data, size, &opts, &report, &err);
    error_free(err);
    json_decref(report);

    /* --verify takes other paths through the same records. */
    opts.verify = true;
    report = NULL;
    err = NULL;
    inspect_stream(data, size, &opts, &report, &err);
    error_free(err);
    json_decref(report);
    return 0;
}
