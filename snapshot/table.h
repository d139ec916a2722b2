/* Snapshot lists as QEMU prints them: the table of `info snapshots` and
 * `qemu-img snapshot -l` (ID, TAG, VM SIZE, DATE, VM CLOCK, ICOUNT), and
 * the SnapshotInfo JSON of QMP and `qemu-img info --output=json`. */
#ifndef HOP_SNAPSHOT_TABLE_H
#define HOP_SNAPSHOT_TABLE_H

#include <stddef.h>

#include "block/block.h"

typedef struct json_t json_t;

/* The header line, without a newline. */
void snapshot_table_header(char *buf, size_t len);
/* One row, without a newline; id overrides sn->id when non-NULL (QEMU's
 * `info snapshots` shows "--" for snapshots present on all disks). */
void snapshot_table_row(const struct blk_snapshot *sn, const char *id,
                        char *buf, size_t len);
/* "378 KiB": three significant digits, binary units, as qemu-img. */
void snapshot_human_size(uint64_t v, char *buf, size_t len);
/* "2026-11-22 00:59:01" in local time. */
void snapshot_format_date(uint32_t sec, char *buf, size_t len);
/* "00:01:02.345" */
void snapshot_format_clock(uint64_t ns, char *buf, size_t len);
/* {"id", "name", "vm-state-size", "date-sec", "date-nsec",
 *  "vm-clock-sec", "vm-clock-nsec", ["icount"]} */
json_t *snapshot_info_json(const struct blk_snapshot *sn);
/* QEMU's ImageInfo, as `qemu-img info --output=json` prints it: filename
 * (as given), format, virtual-size, actual-size, cluster-size,
 * format-specific and dirty-flag, and the snapshots given (if any). */
json_t *image_info_json(BlockDev *bs, const char *filename,
                        const struct blk_snapshot *snaps, size_t nsnaps);

#endif
