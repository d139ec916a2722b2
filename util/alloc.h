/* Allocation policy: running out of memory is not an error hop recovers
 * from.  Every heap allocation goes through these wrappers, which abort
 * with a one-line message naming the size when the C library says no, so
 * no caller checks a result and none can forget to.
 *
 * What this asks of callers: a size taken from a file, a peer or the
 * user is bounded, with an error naming the field and where it was read,
 * before it reaches an allocation (QCOW2_MAX_L1_BYTES and friends).
 * Guest RAM is mapped, not allocated here.
 *
 * A size of zero gives a valid pointer to free(), never NULL. */
#ifndef HOP_UTIL_ALLOC_H
#define HOP_UTIL_ALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t size);
/* Zeroed; nmemb * size checked for overflow. */
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t size);
/* nmemb * size checked for overflow. */
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
/* At most n bytes of s, NUL-terminated. */
char *xstrndup(const char *s, size_t n);
/* A formatted string, like asprintf. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

#endif
