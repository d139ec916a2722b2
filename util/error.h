/* Error reporting in the errp style: functions that can fail take
 * `Error **errp` as their last argument and return bool (true = success)
 * or a negative value.  The first error set wins; later ones are dropped so
 * the message a user sees names the root cause. */
#ifndef HOP_UTIL_ERROR_H
#define HOP_UTIL_ERROR_H

#include <stdarg.h>
#include <stdbool.h>

typedef struct Error Error;

#define HOP_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Set *errp to a new error unless errp is NULL or already holds one. */
void error_setg(Error **errp, const char *fmt, ...) HOP_PRINTF(2, 3);
void error_vsetg(Error **errp, const char *fmt, va_list ap) HOP_PRINTF(2, 0);
/* As error_setg, with ": strerror(errnum)" appended. */
void error_setg_errno(Error **errp, int errnum, const char *fmt, ...)
    HOP_PRINTF(3, 4);
/* Prefix an existing error's message with more context ("section 'x': "). */
void error_prepend(Error **errp, const char *fmt, ...) HOP_PRINTF(2, 3);
/* Move local into *dst (or free it when dst is NULL or already set). */
void error_propagate(Error **dst, Error *local);
const char *error_get_pretty(const Error *err);
Error *error_copy(const Error *err);
void error_free(Error *err);
/* Print "hop: message" to stderr and free the error. */
void error_report_err(Error *err);
void error_report(const char *fmt, ...) HOP_PRINTF(1, 2);

#endif
