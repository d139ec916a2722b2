/* Allocation wrappers: see util/alloc.h for the policy. */
#include "util/alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Plain stdio: formatting a message must not need the heap that just
 * ran out. */
static void out_of_memory(size_t nmemb, size_t size)
{
    if (nmemb == 1) {
        fprintf(stderr, "hop: out of memory allocating %zu bytes\n", size);
    } else {
        fprintf(stderr, "hop: out of memory allocating %zu x %zu bytes\n",
                nmemb, size);
    }
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) {
        out_of_memory(1, size);
    }
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    /* Checked here too, so the message is ours under a sanitizer. */
    if (size && nmemb > SIZE_MAX / size) {
        out_of_memory(nmemb, size);
    }
    void *p = nmemb && size ? calloc(nmemb, size) : calloc(1, 1);
    if (!p) {
        out_of_memory(nmemb, size);
    }
    return p;
}

void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q) {
        out_of_memory(1, size);
    }
    return q;
}

void *xreallocarray(void *p, size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size) {
        out_of_memory(nmemb, size);
    }
    return xrealloc(p, nmemb * size);
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) {
        out_of_memory(1, strlen(fmt));
    }
    return s;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}
