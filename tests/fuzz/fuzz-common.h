/* Shared by the libFuzzer targets: each file in tests/fuzz/ is one target
 * (LLVMFuzzerTestOneInput), built by `make fuzz` with clang's fuzzer and
 * ASan+UBSan.  A target must never crash, hang or grow without bound on
 * any input; errors are the expected outcome for most inputs. */
#ifndef HOP_TESTS_FUZZ_COMMON_H
#define HOP_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Writes data to a new file in a private directory; returns its path
 * (static storage, valid until the next call). */
const char *fuzz_write_file(const uint8_t *data, size_t size);

#endif
