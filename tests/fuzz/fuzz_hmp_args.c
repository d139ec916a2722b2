/* HMP argument parsing against every command's spec in the monitor's
 * table: the first input byte picks the command, the rest is the line
 * typed after its name. */
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "monitor/monitor.h"

static size_t count_commands(const struct mon_cmd *t)
{
    size_t n = 0;
    while (t[n].name) {
        n++;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t nmain = count_commands(hmp_commands);
    size_t ninfo = count_commands(hmp_info_commands);
    size_t pick = data[0] % (nmain + ninfo);
    const struct mon_cmd *c =
        pick < nmain ? &hmp_commands[pick] : &hmp_info_commands[pick - nmain];
    char *line = malloc(size);
    memcpy(line, data + 1, size - 1);
    line[size - 1] = '\0';

    struct mon_args args;
    Error *err = NULL;
    if (c->args && mon_args_parse(c->name, c->args, line, &args, &err)) {
        for (int i = 0; i < args.n; i++) {
            (void)mon_arg_present(&args, args.v[i].spec->name);
        }
        mon_args_free(&args);
    }
    error_free(err);

    /* The word splitter on its own, as completion uses it. */
    const char *p = line;
    for (int i = 0; i < 1000; i++) {
        err = NULL;
        char *w = mon_next_word(&p, &err);
        error_free(err);
        if (!w) {
            break;
        }
        free(w);
    }
    free(line);
    return 0;
}
