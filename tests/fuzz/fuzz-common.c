/* Support for the fuzz targets: a scratch file per input. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz-common.h"

const char *fuzz_write_file(const uint8_t *data, size_t size)
{
    static char dir[64];
    static char path[96];
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/hop-fuzz.XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            abort();
        }
        snprintf(path, sizeof(path), "%s/input", dir);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            perror(path);
            abort();
        }
        done += (size_t)n;
    }
    close(fd);
    return path;
}
