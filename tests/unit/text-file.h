/* Text helpers for the tests that hold generated documents (man pages,
 * help output) against their tables. */
#ifndef HOP_TESTS_TEXT_FILE_H
#define HOP_TESTS_TEXT_FILE_H

#include <stddef.h>

/* The whole file, NUL-terminated (free() it), or NULL if it can't be
 * opened. */
char *text_file_read(const char *path);

/* A name as roff writes it: each '-' becomes "\-".  Cut to fit buf. */
void text_roff_escape(const char *name, char *buf, size_t size);

#endif
