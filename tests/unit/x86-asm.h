/* Test support: assemble 32-bit x86 code with GNU as and ld. */
#ifndef HOP_TESTS_X86_ASM_H
#define HOP_TESTS_X86_ASM_H

#include <stddef.h>
#include <stdint.h>

/* Assemble src (Intel syntax, no prefixes, 32-bit) linked to run at addr.
 * Returns malloc'd flat bytes and sets *len, or NULL after printing the
 * assembler's complaint to stderr. */
uint8_t *x86_asm32(const char *src, uint32_t addr, size_t *len);

#endif
