#include "text-file.h"

#include <stdio.h>

char *text_file_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) {
        fclose(f);
        return NULL;
    }
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        fwrite(chunk, 1, n, m);
    }
    fclose(m);
    fclose(f);
    return buf;
}

void text_roff_escape(const char *name, char *buf, size_t size)
{
    size_t k = 0;
    for (; *name && k + 3 < size; name++) {
        if (*name == '-') {
            buf[k++] = '\\';
        }
        buf[k++] = *name;
    }
    buf[k] = '\0';
}
