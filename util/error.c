#include "util/error.h"

#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Error {
    char *msg;
};

void error_vsetg(Error **errp, const char *fmt, va_list ap)
{
    if (!errp || *errp) {
        return;
    }
    Error *err = xcalloc(1, sizeof(*err));
    err->msg = xvasprintf(fmt, ap);
    *errp = err;
}

void error_setg(Error **errp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vsetg(errp, fmt, ap);
    va_end(ap);
}

void error_setg_errno(Error **errp, int errnum, const char *fmt, ...)
{
    if (!errp || *errp) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *head = xvasprintf(fmt, ap);
    va_end(ap);
    error_setg(errp, "%s: %s", head, strerror(errnum));
    free(head);
}

void error_prepend(Error **errp, const char *fmt, ...)
{
    if (!errp || !*errp) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *head = xvasprintf(fmt, ap);
    va_end(ap);
    char *joined = xasprintf("%s%s", head, (*errp)->msg);
    free(head);
    free((*errp)->msg);
    (*errp)->msg = joined;
}

void error_propagate(Error **dst, Error *local)
{
    if (!local) {
        return;
    }
    if (dst && !*dst) {
        *dst = local;
    } else {
        error_free(local);
    }
}

const char *error_get_pretty(const Error *err)
{
    return err ? err->msg : "";
}

Error *error_copy(const Error *err)
{
    Error *copy = NULL;
    if (err) {
        error_setg(&copy, "%s", err->msg);
    }
    return copy;
}

void error_free(Error *err)
{
    if (err) {
        free(err->msg);
        free(err);
    }
}

void error_report_err(Error *err)
{
    if (err) {
        fprintf(stderr, "hop: %s\n", err->msg);
        error_free(err);
    }
}

void error_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hop: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
