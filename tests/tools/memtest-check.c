/* memtest-check: check a RAM dump (pmemsave of guest physical 0..N, or a
 * hop RAM image) against the memtest guest's invariant.
 *   memtest-check [--smp N] [--start ADDR] [--end ADDR] FILE
 * Defaults: --smp 1, --start 0x100000, --end the file size (at most
 * 3 GiB).  Exit 0 when the invariant holds, 1 when not, 2 on bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/memtest-check.h"

static int usage(const char *msg)
{
    fprintf(stderr,
            "memtest-check: %s\nUsage: memtest-check [--smp N] "
            "[--start ADDR] [--end ADDR] FILE\n",
            msg);
    return 2;
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || end == s || *end) {
        return false;
    }
    *v = x;
    return true;
}

int main(int argc, char **argv)
{
    uint64_t start = 0x100000, end = 0, smp = 1;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        uint64_t *dst = NULL;
        if (strcmp(argv[i], "--smp") == 0) {
            dst = &smp;
        } else if (strcmp(argv[i], "--start") == 0) {
            dst = &start;
        } else if (strcmp(argv[i], "--end") == 0) {
            dst = &end;
        } else if (argv[i][0] == '-') {
            return usage("unknown option");
        } else if (path) {
            return usage("more than one FILE");
        } else {
            path = argv[i];
            continue;
        }
        if (i + 1 >= argc || !parse_u64(argv[++i], dst)) {
            return usage("bad or missing number");
        }
    }
    if (!path) {
        return usage("no FILE");
    }
    if (smp < 1 || smp > 255) {
        return usage("--smp must be 1 to 255");
    }
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "memtest-check: %s: %s\n", path, strerror(errno));
        return 1;
    }
    uint64_t len = (uint64_t)st.st_size;
    if (!end) {
        end = len < (3ull << 30) ? len : (3ull << 30);
        end &= ~4095ull;
    }
    void *ram =
        len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (ram == MAP_FAILED) {
        fprintf(stderr, "memtest-check: %s: cannot map %llu bytes\n", path,
                (unsigned long long)len);
        return 1;
    }
    struct memtest_result res;
    char msg[256];
    bool ok =
        memtest_check(ram, len, start, end, (int)smp, &res, msg, sizeof(msg));
    printf("memtest-check: %s\n", msg);
    munmap(ram, len);
    return ok ? 0 : 1;
}
