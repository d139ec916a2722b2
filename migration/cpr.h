/* cpr-transfer and cpr-exec: guest RAM changes process without being
 * copied.  cpr-transfer:  Before
 * the migration stream, the source opens one more connection to the
 * destination's unix: socket (the cpr channel) and passes the
 * descriptor of every RAM block with SCM_RIGHTS; the destination checks
 * each against its own block of that name and maps the source's pages
 * in place of its own, then answers.  Only after a yes does the source
 * stop the guest and send the device state (RAM blocks are skipped as
 * with x-ignore-shared), so a refusal leaves the guest running.
 *
 * The channel, big-endian like the section stream:
 *   source:  "HCPR"  u32 version (1)  u32 nblocks
 *            nblocks x { u8 len, name[len], u64 size, u64 guest address,
 *                        u64 host page size }
 *            with one descriptor per block, in order, on the first byte
 *   answer:  u32 status (0: mapped, 1: refused)  u32 len  text[len]
 *            (why, when refused) */
#ifndef HOP_MIGRATION_CPR_H
#define HOP_MIGRATION_CPR_H

#include <stdatomic.h>
#include <stdbool.h>

#include "util/error.h"

struct machine_memory;

#define CPR_MAGIC "HCPR"
#define CPR_MAGIC_LEN 4
#define CPR_VERSION 1
/* How long the source waits for the destination's answer. */
#define CPR_ANSWER_TIMEOUT_MS 10000

/* Source: every block is on shared memory another process can map (a
 * memfd, or a file with share=on); the error names the block and the
 * option that would make it so. */
bool cpr_check_memory(const struct machine_memory *mem, const char *mode,
                      Error **errp);
/* Source: passes the blocks on the connected socket fd and waits for the
 * answer (no longer than CPR_ANSWER_TIMEOUT_MS, or until *cancel). */
bool cpr_send_memory(int fd, const struct machine_memory *mem,
                     const atomic_bool *cancel, Error **errp);
/* Destination: reads the blocks from fd, maps them in place of mem's
 * and answers; on a refusal, the answer carries the error. */
bool cpr_recv_memory(int fd, struct machine_memory *mem, Error **errp);

/* cpr-exec, where the descriptors are inherited across exec: the same
 * message, each block's descriptor number (u32) after the block list,
 * written to a file (the state memfd) ahead of the migration stream. */
bool cpr_write_memory(int fd, const struct machine_memory *mem, Error **errp);
/* Reads that from fd's position (which ends up where the stream
 * starts), checks the blocks and maps the inherited descriptors. */
bool cpr_read_memory(int fd, struct machine_memory *mem, Error **errp);

#endif
