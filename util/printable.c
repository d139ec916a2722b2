/* Escaping names from files for terminals and messages. */
#include "util/printable.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid, printable UTF-8 character at p (n bytes left), or
 * 0 when p[0] must be escaped. */
static size_t printable_char(const uint8_t *p, size_t n)
{
    uint8_t b = p[0];
    if (b < 0x80) {
        return b >= 0x20 && b < 0x7f && b != '\\';
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
        if (b == 0xc2) {
            lo = 0xa0; /* U+0080..U+009F: C1 controls */
        }
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0) {
            lo = 0xa0; /* overlong */
        } else if (b == 0xed) {
            hi = 0x9f; /* surrogates */
        }
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0) {
            lo = 0x90; /* overlong */
        } else if (b == 0xf4) {
            hi = 0x8f; /* past U+10FFFF */
        }
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    return len;
}

/* The escaped form of the character at p: its length in piece, and the
 * bytes of p it stands for in *used. */
static size_t escape_one(const uint8_t *p, size_t n, char piece[8],
                         size_t *used)
{
    *used = printable_char(p, n);
    if (*used) {
        memcpy(piece, p, *used);
        return *used;
    }
    *used = 1;
    if (p[0] == '\\') {
        memcpy(piece, "\\\\", 2);
        return 2;
    }
    snprintf(piece, 8, "\\x%02x", p[0]);
    return 4;
}

const char *printable_n(const void *s, size_t n, char *buf, size_t size)
{
    const uint8_t *p = s;
    char piece[8];
    size_t used, total = 0;
    for (size_t i = 0; i < n; i += used) {
        total += escape_one(p + i, n - i, piece, &used);
    }
    /* Cut short: keep room for "..." and the NUL. */
    size_t room = total < size ? total : size - 4;
    size_t o = 0;
    for (size_t i = 0; i < n; i += used) {
        size_t plen = escape_one(p + i, n - i, piece, &used);
        if (o + plen > room) {
            break;
        }
        memcpy(buf + o, piece, plen);
        o += plen;
    }
    if (total >= size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

const char *printable(const char *s, char *buf, size_t size)
{
    return printable_n(s ? s : "", s ? strlen(s) : 0, buf, size);
}
