/* Writes the test device set's stream to a file.  Used once per format
 * change to make a new golden file under tests/fixtures/ (never to
 * overwrite an old one), and by hand to feed analyze-migration.py. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "tests/unit/testdev.h"
#include "vmstate/channel.h"
#include "vmstate/stream.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen-golden FILE\n");
        return 2;
    }
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    struct testset set;
    testset_init(&set);
    testset_fill(&set);
    struct section_registry *reg = section_registry_new(TESTSET_MACHINE);
    testset_register(&set, reg);
    Channel *f = chan_new_fd(fd, true, true, argv[1]);
    Error *err = NULL;
    bool ok = stream_save_all(reg, f, &err);
    ok = chan_close(f, ok ? &err : NULL) && ok;
    section_registry_free(reg);
    if (!ok) {
        error_report_err(err);
        return 1;
    }
    return 0;
}
