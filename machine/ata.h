/* A PIO-only ATA disk controller: the primary channel (0x1f0-0x1f7 and
 * control at 0x3f6) with one master drive on a BlockDev.  LBA28 READ
 * SECTORS, WRITE SECTORS, FLUSH CACHE and IDENTIFY DEVICE, polled.  A
 * transfer in flight (DRQ set, part of a sector moved) is saved in the
 * "ata/pio" subsection, which is only sent while one is in progress.
 * Not thread-safe: callers hold the machine's I/O lock. */
#ifndef HOP_MACHINE_ATA_H
#define HOP_MACHINE_ATA_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "machine/ioport.h"
#include "vmstate/vmstate.h"

#define ATA_PRIMARY_BASE 0x1f0
#define ATA_PRIMARY_CTRL 0x3f6
#define ATA_SECTOR_SIZE 512

#define ATA_ST_ERR 0x01
#define ATA_ST_DRQ 0x08
#define ATA_ST_DSC 0x10
#define ATA_ST_DRDY 0x40
#define ATA_ST_BSY 0x80
#define ATA_ER_ABRT 0x04
#define ATA_ER_IDNF 0x10

struct ata {
    /* Task file. */
    uint8_t feature, error, nsector, lba_low, lba_mid, lba_high, select;
    uint8_t status, control;
    /* PIO transfer in flight (the subsection). */
    bool xfer_active;
    bool xfer_write;
    uint8_t xfer_cmd;
    uint32_t xfer_lba;       /* sector in buf */
    uint32_t xfer_remaining; /* sectors left, including the one in buf */
    uint32_t xfer_pos;       /* bytes of buf already moved */
    uint8_t buf[ATA_SECTOR_SIZE];

    BlockDev *blk; /* NULL: no drive */
    /* Where bad guest requests and I/O errors are reported (stderr when
     * NULL). */
    void (*report)(void *opaque, const char *msg);
    void *report_opaque;
};

extern const struct vmstate_desc vmstate_ata;
extern const struct ioport_ops ata_ioport_ops;
extern const struct ioport_ops ata_ctrl_ops;

/* blk may be NULL (an empty channel); the controller does not own it. */
void ata_init(struct ata *d, BlockDev *blk);
void ata_reset(struct ata *d);
uint64_t ata_sectors(const struct ata *d);

#endif
