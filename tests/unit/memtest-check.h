/* The memtest guest's invariant, checked on a RAM image: in the range
 * [start, end) the vCPUs' chunks (pages split evenly in order, the last
 * chunk taking the remainder) each hold the counter byte v+1 (mod 256)
 * in a prefix of their pages and v in the rest, with one v for the whole
 * range; and no page is entirely zero. */
#ifndef HOP_TESTS_MEMTEST_CHECK_H
#define HOP_TESTS_MEMTEST_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct memtest_result {
    int value; /* v */
    uint64_t pages;
    uint64_t advanced; /* pages holding v+1 */
};

/* ram[0] is guest physical address 0; ram_len bytes are available.
 * On failure msg says which page broke which rule. */
bool memtest_check(const uint8_t *ram, uint64_t ram_len, uint64_t start,
                   uint64_t end, int ncpus, struct memtest_result *res,
                   char *msg, size_t msglen);

#endif
