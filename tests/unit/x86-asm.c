/* Test support: assemble 32-bit x86 code with GNU as and ld, so tests
 * state guest programs in assembly rather than hand-encoded bytes. */
#include "x86-asm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) < 0) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (buf && fread(buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[sb.st_size] = '\0';
        *len = (size_t)sb.st_size;
    }
    return buf;
}

uint8_t *x86_asm32(const char *src, uint32_t addr, size_t *len)
{
    char dir[] = "/tmp/hop-asm-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("x86_asm32: mkdtemp");
        return NULL;
    }
    char path[256], cmd[1024];
    snprintf(path, sizeof(path), "%s/t.s", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror("x86_asm32: fopen");
        return NULL;
    }
    fprintf(f, ".intel_syntax noprefix\n.code32\n.text\n%s\n", src);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "as --32 -o %s/t.o %s/t.s 2>%s/err && "
             "ld -m elf_i386 -Ttext=0x%x -e 0x%x --oformat binary "
             "-o %s/t.bin %s/t.o 2>>%s/err",
             dir, dir, dir, addr, addr, dir, dir, dir);
    int rc = system(cmd);
    uint8_t *out = NULL;
    size_t n = 0;
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/t.bin", dir);
        out = (uint8_t *)read_all(path, &n);
    } else {
        snprintf(path, sizeof(path), "%s/err", dir);
        char *err = read_all(path, &n);
        fprintf(stderr, "x86_asm32: assembling failed:\n%s\n%s\n",
                err ? err : "", src);
        free(err);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "x86_asm32: could not remove %s\n", dir);
    if (out)
        *len = n;
    return out;
}
