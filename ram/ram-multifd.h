/* multifd: RAM pages over several connections in parallel, each with its
 * own thread on both sides.  The main stream keeps its order and carries
 * MULTIFD_FLUSH records; every flush is a sync point: the destination
 * applies no page sent after it on any channel until every channel has
 * delivered everything sent before it, so an old copy of a page never
 * lands after a newer one.
 *
 * hop's multifd wire format (hop to hop only):
 *   channel header: "HOPMFD01", be32 channel index, be32 channel count
 *   packet: be32 0x4d464450 ("MFDP"), be32 type (0 pages, 1 sync),
 *           be64 sync number;
 *     pages: u8 length + block name, be32 n, n x be64 (offset | 1 if the
 *            page is zero), then the n' non-zero pages' bytes. */
#ifndef HOP_RAM_RAM_MULTIFD_H
#define HOP_RAM_RAM_MULTIFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define MULTIFD_MAGIC_LEN 8
/* The channel header: magic, be32 index, be32 count. */
#define MULTIFD_HEADER_LEN (MULTIFD_MAGIC_LEN + 8)
/* At most this many channels (QEMU's multifd-channels limit too). */
#define MULTIFD_MAX_CHANNELS 255
extern const char multifd_channel_magic[MULTIFD_MAGIC_LEN];

struct machine_memory;
struct multifd_send;
struct multifd_recv;

/* ---- sending ---- */

/* A new connection says at once what it is: channel index of count
 * (the destination gives a silent connection only a few seconds). */
bool multifd_send_header(int fd, int index, int count, Error **errp);
/* Takes over fds (connected sockets whose headers went), closing them
 * all if it fails. */
struct multifd_send *multifd_send_new(struct machine_memory *mem,
                                      const int *fds, int n, Error **errp);
/* Queue one page of block (index in mem) at offset. */
bool multifd_send_page(struct multifd_send *ms, int block, uint64_t offset,
                       bool zero, Error **errp);
/* Ends an epoch: everything queued so far, then a sync on every channel.
 * The caller writes a MULTIFD_FLUSH record on the main stream after. */
bool multifd_send_sync(struct multifd_send *ms, Error **errp);
/* Waits until every channel has written all it was given. */
bool multifd_send_drain(struct multifd_send *ms, Error **errp);
uint64_t multifd_send_bytes(struct multifd_send *ms);
/* Unblocks the channel threads (cancel). */
void multifd_send_shutdown(struct multifd_send *ms);
void multifd_send_free(struct multifd_send *ms);

/* ---- receiving ---- */

/* received: per block, one bit per page written (zero pages elsewhere
 * need no write); may be NULL (then zero pages are always written). */
struct multifd_recv *multifd_recv_new(struct machine_memory *mem,
                                      unsigned long **received);
/* A new connection whose first bytes are the channel magic: reads its
 * header and starts its thread (takes over fd). */
bool multifd_recv_add(struct multifd_recv *mr, int fd, Error **errp);
/* The main stream reached its next MULTIFD_FLUSH: wait for every channel
 * to pass the matching sync. */
bool multifd_recv_flush(struct multifd_recv *mr, Error **errp);
/* From another thread: stop waiting for channels and syncs, unblock the
 * channel threads (the loading side then fails with "stopped"). */
void multifd_recv_cancel(struct multifd_recv *mr);
/* Unblocks and joins the threads; the error a channel hit, if any. */
bool multifd_recv_finish(struct multifd_recv *mr, Error **errp);
void multifd_recv_free(struct multifd_recv *mr);

#endif
