#include "util/parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

bool parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s || *end) {
        errno = 0;
        unsigned long long u = strtoull(s, &end, 0);
        if (errno || end == s || *end || s[0] == '-') {
            return false;
        }
        v = (long long)u;
    }
    *out = v;
    return true;
}

bool parse_size(const char *s, uint64_t default_unit, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-' || isspace((unsigned char)*s)) {
        return false;
    }
    double v = strtod(s, &end);
    if (errno || end == s || v < 0 || !isfinite(v)) {
        return false;
    }
    uint64_t mult = default_unit;
    switch (toupper((unsigned char)*end)) {
    case '\0':
        break;
    case 'B':
        mult = 1;
        end++;
        break;
    case 'K':
        mult = 1ull << 10;
        end++;
        break;
    case 'M':
        mult = 1ull << 20;
        end++;
        break;
    case 'G':
        mult = 1ull << 30;
        end++;
        break;
    case 'T':
        mult = 1ull << 40;
        end++;
        break;
    default:
        return false;
    }
    if (mult > 1 && (*end == 'i' || *end == 'I')) {
        end++;
    }
    if (mult > 1 && (*end == 'b' || *end == 'B')) {
        end++;
    }
    if (*end) {
        return false;
    }
    double bytes = v * (double)mult;
    if (bytes >= 18446744073709551616.0 || bytes != floor(bytes)) {
        return false;
    }
    *out = (uint64_t)bytes;
    return true;
}
