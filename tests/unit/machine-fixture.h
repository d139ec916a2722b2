/* Helpers for tests that run whole machines: a thread-safe serial
 * capture, bounded waits, and register comparison. */
#ifndef HOP_TESTS_MACHINE_FIXTURE_H
#define HOP_TESTS_MACHINE_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/machine.h"

struct serial_capture {
    pthread_mutex_t lock;
    char *buf;
    size_t len, cap;
};

void capture_init(struct serial_capture *c);
void capture_free(struct serial_capture *c);
/* A serial backend appending to c. */
struct serial_backend capture_backend(struct serial_capture *c);
/* A NUL-terminated copy of what was captured (caller frees). */
char *capture_text(struct serial_capture *c);
size_t capture_count(struct serial_capture *c, char ch);
bool capture_contains(struct serial_capture *c, const char *s);
/* Wait (at most timeout_ms) until s appears / ch occurs n times. */
bool capture_wait_for(struct serial_capture *c, const char *s, int timeout_ms);
bool capture_wait_count(struct serial_capture *c, char ch, size_t n,
                        int timeout_ms);

/* Why kvm cannot be used here, or NULL if it can (static string). */
const char *kvm_unusable_reason(void);

/* Field-wise equality of two CPU states; on a difference, describes the
 * first one in msg. */
bool x86_state_equal(const struct x86_state *a, const struct x86_state *b,
                     char *msg, size_t msglen);

int64_t fixture_now_ns(void);

struct ram_state;
/* Registers ram/'s "ram" section for m, as hop run does, so that
 * machine_save and machine_load carry RAM; free it after m. */
struct ram_state *fixture_register_ram(struct machine *m);

#endif
