/* A buffered byte channel: the one pipe every saved or migrated byte goes
 * through, in the role of QEMU's QEMUFile.
 *
 * A channel is either for writing or for reading.  Values are big-endian.
 * The first error latches: later puts are dropped and later gets return
 * zeros, so callers may check once at a convenient point with
 * chan_check() or chan_has_error().  Backends plug in through struct
 * chan_ops; fd, socket and memory backends live in channel-fd.c and
 * channel-mem.c. */
#ifndef HOP_VMSTATE_CHANNEL_H
#define HOP_VMSTATE_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util/error.h"

typedef struct Channel Channel;

struct chan_ops {
    /* Write all of iov or fail; returns bytes written or -1 with errp set. */
    ssize_t (*writev)(void *opaque, const struct iovec *iov, int iovcnt,
                      Error **errp);
    /* Read up to len bytes; 0 means end of stream, -1 error with errp set. */
    ssize_t (*read)(void *opaque, void *buf, size_t len, Error **errp);
    /* Optional: release the backend; errors are reported through errp. */
    bool (*close)(void *opaque, Error **errp);
    /* Optional: stop pending I/O from another thread (cancel). */
    void (*shutdown)(void *opaque);
    /* Optional: the backing descriptor, or -1. */
    int (*get_fd)(void *opaque);
};

/* Open a channel over a backend.  name appears in error messages. */
Channel *chan_new(const struct chan_ops *ops, void *opaque, bool writable,
                  const char *name);

/* Backends. fd: file or pipe (read/write/writev).  socket: stream socket
 * (no SIGPIPE, shutdown() cancels).  The channel owns fd if own_fd. */
Channel *chan_new_fd(int fd, bool writable, bool own_fd, const char *name);
Channel *chan_new_socket(int fd, bool writable, bool own_fd, const char *name);
/* Memory: a growable buffer for writing, taken back with chan_mem_take();
 * or a read-only view of len bytes at data (not copied, not freed). */
Channel *chan_new_mem_writer(void);
Channel *chan_new_mem_reader(const void *data, size_t len, const char *name);
/* Steal the bytes of a memory writer (after chan_flush); caller frees. */
uint8_t *chan_mem_take(Channel *f, size_t *len);

/* Flushes, closes the backend and frees.  Returns false if anything failed
 * (including a latched error); the message goes to errp. */
bool chan_close(Channel *f, Error **errp);

/* Writing. */
void chan_put_u8(Channel *f, uint8_t v);
void chan_put_be16(Channel *f, uint16_t v);
void chan_put_be32(Channel *f, uint32_t v);
void chan_put_be64(Channel *f, uint64_t v);
void chan_put_buffer(Channel *f, const void *buf, size_t len);
/* Queue buf by reference: it must stay unchanged until the next flush.
 * Large pages go to the kernel without being copied. */
void chan_put_buffer_ref(Channel *f, const void *buf, size_t len);
/* u8 length + bytes; strings longer than 255 latch an error. */
void chan_put_counted_string(Channel *f, const char *s);
bool chan_flush(Channel *f);

/* Reading.  A short read latches an error naming the offset. */
uint8_t chan_get_u8(Channel *f);
uint16_t chan_get_be16(Channel *f);
uint32_t chan_get_be32(Channel *f);
uint64_t chan_get_be64(Channel *f);
/* Reads exactly len bytes into buf; false (and latched error) if short. */
bool chan_get_buffer(Channel *f, void *buf, size_t len);
/* The next len bytes (at most 64 KiB) where they lie in the channel's
 * buffer, valid until the next call on f: one copy fewer than
 * chan_get_buffer.  NULL (with the channel's error set) when the stream
 * ends first or fails. */
const uint8_t *chan_get_in_place(Channel *f, size_t len);
/* Reads a counted string into buf (NUL-terminated, buf >= 256 bytes). */
bool chan_get_counted_string(Channel *f, char buf[256]);
/* Look at bytes ahead without consuming them; returns how many of len are
 * available (fewer only at end of stream or on error).  len <= 512. */
size_t chan_peek(Channel *f, void *buf, size_t len, size_t offset);
/* Skip len bytes. */
bool chan_skip(Channel *f, size_t len);
/* True when no byte is left (reads one block ahead if needed). */
bool chan_at_eof(Channel *f);

/* Errors: the first one latches and is kept with its cause. */
void chan_set_error(Channel *f, const char *fmt, ...) HOP_PRINTF(2, 3);
void chan_set_error_obj(Channel *f, Error *err);
bool chan_has_error(const Channel *f);
const char *chan_error_msg(const Channel *f);
/* Copies the latched error into errp; returns false if there was one. */
bool chan_check(const Channel *f, Error **errp);

/* Bytes written to / read from the channel so far (its current offset). */
uint64_t chan_tell(const Channel *f);
const char *chan_name(const Channel *f);
/* The backend's opaque pointer (for backend-specific helpers). */
void *chan_get_opaque(const Channel *f);
int chan_get_fd(Channel *f);
/* A file backend's position (a seekable descriptor), counting what is
 * buffered; false with errp set where the backend cannot seek. */
bool chan_file_offset(Channel *f, uint64_t *offset, Error **errp);
/* Moves a file backend to offset (a writer flushes first, a reader drops
 * what it buffered); chan_tell keeps counting bytes put or taken. */
bool chan_seek(Channel *f, uint64_t offset, Error **errp);
/* Cancel: unblock a reader/writer in another thread, latch an error. */
void chan_shutdown(Channel *f);

/* Rate limiting, in bytes per 100 ms window (0 = unlimited).  The writer
 * asks chan_rate_limited() between chunks and calls chan_rate_limit_wait()
 * to sleep until the next window when it is over budget.  A chunk that
 * overshoots the budget is paid for by the windows after it, so the rate
 * holds over time whatever the chunk size. */
#define CHAN_RATE_WINDOW_MS 100
void chan_set_rate_limit(Channel *f, uint64_t bytes_per_window);
uint64_t chan_get_rate_limit(const Channel *f);
bool chan_rate_limited(Channel *f);
/* Count bytes sent elsewhere (multifd channels) against this channel's
 * rate limit. */
void chan_rate_charge(Channel *f, uint64_t bytes);
void chan_rate_limit_wait(Channel *f);

/* Counters for statistics. */
struct chan_stats {
    uint64_t bytes;         /* bytes passed to/from the backend */
    uint64_t backend_calls; /* writev/read calls into the backend */
    uint64_t copied_bytes;  /* bytes copied into the channel's buffer */
};
void chan_get_stats(const Channel *f, struct chan_stats *st);

#endif
