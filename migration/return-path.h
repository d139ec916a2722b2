/* The return path: messages from the destination back to the source on
 * the migration socket itself (capability return-path, as QEMU).  The
 * source asks for it with the OPEN_RETURN_PATH command right after the
 * configuration, then PINGs once; the destination answers PONG, and once
 * it has loaded the machine and taken it over it says SHUT with 0, or
 * SHUT with 1 when the load failed.  So a source that waits for SHUT
 * knows whether the destination runs the guest, and keeps the guest when
 * it does not.
 *
 * Each message, big-endian: be16 type, be16 length, body. */
#ifndef HOP_MIGRATION_RETURN_PATH_H
#define HOP_MIGRATION_RETURN_PATH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

enum rp_msg {
    RP_MSG_INVALID = 0,
    RP_MSG_SHUT = 1,         /* be32: 0 loaded, else failed */
    RP_MSG_PONG = 2,         /* be32: the PING's value */
    RP_MSG_REQ_PAGES_ID = 3, /* postcopy: be64 start, be32 len, block */
    RP_MSG_REQ_PAGES = 4,    /* postcopy: be64 start, be32 len */
    RP_MSG_RECV_BITMAP = 5,  /* postcopy recovery */
    RP_MSG_RESUME_ACK = 6,   /* postcopy recovery */
    RP_MSG__MAX
};

/* How long a source waits for the destination's SHUT once everything
 * was sent: loading the device state and starting the guest. */
#define RP_SHUT_TIMEOUT_MS 60000

const char *rp_msg_name(unsigned type);
/* A message header as the source reads it: false with a one-line error
 * for an unknown type or a length that type does not have. */
bool rp_check_header(uint16_t type, uint16_t len, Error **errp);

/* Destination: one message with a be32 body.  The caller serializes. */
bool rp_send_u32(int fd, enum rp_msg type, uint32_t value, Error **errp);

/* A page request (postcopy): REQ_PAGES is be64 start, be32 len;
 * REQ_PAGES_ID adds u8 name length and the block's name. */
struct rp_req_pages {
    uint64_t start;
    uint32_t len;
    bool has_name;
    char name[256];
};
#define RP_REQ_PAGES_ID_MAX (12 + 1 + 255)
bool rp_parse_req_pages(uint16_t type, const uint8_t *body, uint16_t len,
                        struct rp_req_pages *out, Error **errp);
/* Destination: a page request; name NULL when the block is the one of the
 * previous request (REQ_PAGES), else REQ_PAGES_ID.  The caller
 * serializes. */
bool rp_send_req_pages(int fd, const char *name, uint64_t start, uint32_t len,
                       Error **errp);

/* Postcopy: a page request arrived (on the reader's thread); false ends
 * the return path with the error. */
typedef bool (*rp_request_fn)(void *opaque, const char *name, uint64_t start,
                              uint32_t len, Error **errp);

/* Postcopy recovery: a RECV_BITMAP message (u8 name length, the name)
 * is followed, outside it, by that block's bitmap of received pages:
 * be64 size in bytes (the bits rounded up to whole 64-bit words), the
 * bitmap as little-endian 64-bit words, be64 RP_RECV_BITMAP_END.
 * RESUME_ACK carries RP_RESUME_ACK_VALUE. */
#define RP_RECV_BITMAP_END 0x0123456789abcdefull
#define RP_RESUME_ACK_VALUE 1
/* The bitmap's size in bytes for npages pages. */
uint64_t rp_recv_bitmap_size(uint64_t npages);
/* Destination: the message and the bitmap of block name (npages bits in
 * host words).  The caller serializes. */
bool rp_send_recv_bitmap(int fd, const char *name, const unsigned long *bits,
                         uint64_t npages, Error **errp);
/* Host words from the wire's little-endian ones (size bytes). */
void rp_recv_bitmap_decode(const uint8_t *wire, uint64_t size,
                           unsigned long *bits);

/* What a postcopy source does with the destination's messages (on the
 * reader's thread); false ends the return path with the error. */
struct rp_postcopy_ops {
    rp_request_fn on_request;
    /* The bitmap size of block name (rp_recv_bitmap_size); false if there
     * is no such block. */
    bool (*bitmap_size)(void *opaque, const char *name, uint64_t *size,
                        Error **errp);
    /* Block name's bitmap came (size bytes, as on the wire). */
    bool (*on_bitmap)(void *opaque, const char *name, const uint8_t *wire,
                      uint64_t size, Error **errp);
    void *opaque;
};

/* Source: a thread that reads the return path until SHUT, end of file,
 * a bad message or rp_reader_stop. */
struct rp_reader {
    int fd;
    /* NULL (precopy): page requests and recovery messages are errors */
    const struct rp_postcopy_ops *ops;
    int wake[2];
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;            /* the thread finished: the fields below hold */
    bool shut;            /* SHUT came */
    uint32_t shut_status; /* its value */
    uint32_t pongs;       /* PONGs seen */
    uint32_t last_pong;   /* the value of the latest */
    uint32_t bitmaps;     /* RECV_BITMAPs taken in */
    uint32_t resume_acks; /* RESUME_ACKs seen */
    char error[512];      /* why the return path broke ("" if it did not) */
};

/* Starts reading fd (which stays the caller's). */
bool rp_reader_start(struct rp_reader *r, int fd, Error **errp);
/* The same, passing page requests and recovery messages (postcopy) to
 * ops (which must outlive the reader). */
bool rp_reader_start_postcopy(struct rp_reader *r, int fd,
                              const struct rp_postcopy_ops *ops, Error **errp);
/* Postcopy recovery: waits up to timeout_ms until bitmaps RECV_BITMAPs
 * and acks RESUME_ACKs came; false with why (the return path ended, or
 * the time ran out). */
bool rp_reader_wait(struct rp_reader *r, uint32_t bitmaps, uint32_t acks,
                    int timeout_ms, Error **errp);
/* Waits up to timeout_ms for a PONG of value (the destination answers
 * PINGs in the stream's order, so it has read everything before that
 * PING); false with why (the return path ended, or the time ran out). */
bool rp_reader_wait_pong(struct rp_reader *r, uint32_t value, int timeout_ms,
                         Error **errp);
/* Whether the reader ended other than by SHUT 0 (the destination failed,
 * closed the return path, or it broke); *why gets the reason. */
bool rp_reader_broken(struct rp_reader *r, char *why, size_t len);
/* Whether the destination said SHUT with a failure (*status: its value). */
bool rp_reader_said_failed(struct rp_reader *r, uint32_t *status);
/* Waits up to timeout_ms for the destination's word: true when it said
 * it loaded the machine; false with why (it failed, it closed the return
 * path without a word, a bad message, no answer in time). */
bool rp_reader_finish(struct rp_reader *r, int timeout_ms, Error **errp);
/* Ends the thread (woken if need be) and frees what it held. */
void rp_reader_stop(struct rp_reader *r);

#endif
