/* Names read from files (section, field, RAM block and snapshot names)
 * on their way to a terminal or a one-line message: every byte that is
 * not printable text is shown as \xHH, so a file cannot send escape
 * sequences to the user's terminal, break a message over several lines
 * or hide what it holds.  Valid UTF-8 stays as it is, except the C1
 * controls (U+0080..U+009F); a backslash is doubled so the escaped form
 * is unambiguous. */
#ifndef HOP_UTIL_PRINTABLE_H
#define HOP_UTIL_PRINTABLE_H

#include <stddef.h>

/* Room for any name of up to 255 bytes, escaped. */
#define PRINTABLE_SIZE 1024

/* s escaped into buf (size bytes, at least 8); a name too long for buf
 * is cut at a character boundary and ends in "...".  NULL reads as "".
 * Returns buf. */
const char *printable(const char *s, char *buf, size_t size);
/* The same for n bytes that may hold NULs. */
const char *printable_n(const void *s, size_t n, char *buf, size_t size);

/* printable() into a buffer that lives until the end of the enclosing
 * block: for format arguments, error_setg(errp, "'%s'", PRINTABLE(x)). */
#define PRINTABLE(s) printable((s), (char[PRINTABLE_SIZE]){ 0 }, PRINTABLE_SIZE)

#endif
