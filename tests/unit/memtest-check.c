/* Checker for the memtest guest's pages. */
#include "tests/unit/memtest-check.h"

#include <stdio.h>
#include <string.h>

#define PAGE 4096u

static bool page_all_zero(const uint8_t *p)
{
    for (unsigned i = 0; i < PAGE; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w) {
            return false;
        }
    }
    return true;
}

bool memtest_check(const uint8_t *ram, uint64_t ram_len, uint64_t start,
                   uint64_t end, int ncpus, struct memtest_result *res,
                   char *msg, size_t msglen)
{
    memset(res, 0, sizeof(*res));
    res->value = -1;
    if (start % PAGE || end % PAGE || end <= start || end > ram_len ||
        ncpus < 1) {
        snprintf(msg, msglen,
                 "bad range 0x%llx-0x%llx for a %llu-byte image "
                 "with %d vCPUs",
                 (unsigned long long)start, (unsigned long long)end,
                 (unsigned long long)ram_len, ncpus);
        return false;
    }
    uint64_t pages = (end - start) / PAGE;
    uint64_t chunk = pages / (uint64_t)ncpus;
    res->pages = pages;

    /* The two values present decide v. */
    int seen[256] = { 0 };
    int nvalues = 0;
    for (uint64_t p = 0; p < pages; p++) {
        uint8_t b = ram[start + p * PAGE];
        if (!seen[b]++) {
            nvalues++;
        }
    }
    int v = -1;
    for (int b = 0; b < 256 && v < 0; b++) {
        if (!seen[b]) {
            continue;
        }
        if (nvalues == 1) {
            v = b;
        } else if (nvalues == 2 && seen[(b + 1) & 0xff]) {
            v = b;
        }
    }
    if (v < 0) {
        snprintf(msg, msglen,
                 "%d different counter values in the range "
                 "(expected v and v+1)",
                 nvalues);
        return false;
    }
    res->value = v;

    for (int c = 0; c < ncpus; c++) {
        uint64_t first = (uint64_t)c * chunk;
        uint64_t last = c == ncpus - 1 ? pages : first + chunk;
        bool in_prefix = true;
        for (uint64_t p = first; p < last; p++) {
            uint64_t gpa = start + p * PAGE;
            uint8_t b = ram[gpa];
            if (page_all_zero(ram + gpa)) {
                snprintf(msg, msglen, "page at 0x%llx is all zero",
                         (unsigned long long)gpa);
                return false;
            }
            if (b == ((v + 1) & 0xff) && nvalues == 2) {
                if (!in_prefix) {
                    snprintf(msg, msglen,
                             "page at 0x%llx holds %d after "
                             "pages holding %d in chunk %d: not a prefix",
                             (unsigned long long)gpa, b, v, c);
                    return false;
                }
                res->advanced++;
            } else {
                in_prefix = false;
            }
        }
    }
    snprintf(msg, msglen, "ok: %llu pages, value %d, %llu at value %d",
             (unsigned long long)pages, v, (unsigned long long)res->advanced,
             (v + 1) & 0xff);
    return true;
}
