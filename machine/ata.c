/* ATA PIO disk controller. */
#include "machine/ata.h"

#include <stdio.h>
#include <string.h>

#include "util/error.h"

enum {
    REG_DATA = 0,
    REG_ERR_FEAT = 1,
    REG_NSECT = 2,
    REG_LBA_LOW = 3,
    REG_LBA_MID = 4,
    REG_LBA_HIGH = 5,
    REG_SELECT = 6,
    REG_STATUS_CMD = 7,
};

#define SEL_DEV1 0x10
#define SEL_LBA 0x40
#define CTL_SRST 0x04
#define LBA28_MAX 0x0fffffffu

static void report(struct ata *d, const char *fmt, ...) HOP_PRINTF(2, 3);

static void report(struct ata *d, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (d->report) {
        d->report(d->report_opaque, msg);
    } else {
        fprintf(stderr, "hop: %s\n", msg);
    }
}

uint64_t ata_sectors(const struct ata *d)
{
    return d->blk ? blk_size(d->blk) / ATA_SECTOR_SIZE : 0;
}

static const char *drive_name(const struct ata *d)
{
    return d->blk && d->blk->filename ? d->blk->filename : "(none)";
}

static void set_signature(struct ata *d)
{
    d->nsector = 1;
    d->lba_low = 1;
    d->lba_mid = 0;
    d->lba_high = 0;
}

void ata_reset(struct ata *d)
{
    d->feature = 0;
    d->error = 0x01; /* diagnostics passed */
    d->select = 0xa0;
    d->control = 0;
    set_signature(d);
    d->status = d->blk ? ATA_ST_DRDY | ATA_ST_DSC : 0;
    d->xfer_active = false;
    d->xfer_write = false;
    d->xfer_cmd = 0;
    d->xfer_lba = 0;
    d->xfer_remaining = 0;
    d->xfer_pos = 0;
    memset(d->buf, 0, sizeof(d->buf));
}

void ata_init(struct ata *d, BlockDev *blk)
{
    memset(d, 0, sizeof(*d));
    d->blk = blk;
    ata_reset(d);
}

static bool drive_selected(const struct ata *d)
{
    return d->blk && !(d->select & SEL_DEV1);
}

static uint32_t taskfile_lba(const struct ata *d)
{
    return (uint32_t)d->lba_low | (uint32_t)d->lba_mid << 8 |
        (uint32_t)d->lba_high << 16 | (uint32_t)(d->select & 0x0f) << 24;
}

static void set_taskfile_lba(struct ata *d, uint32_t lba)
{
    d->lba_low = (uint8_t)lba;
    d->lba_mid = (uint8_t)(lba >> 8);
    d->lba_high = (uint8_t)(lba >> 16);
    d->select = (uint8_t)((d->select & 0xf0) | ((lba >> 24) & 0x0f));
}

static void finish(struct ata *d)
{
    d->xfer_active = false;
    d->xfer_pos = 0;
    d->xfer_remaining = 0;
    d->status = ATA_ST_DRDY | ATA_ST_DSC;
}

static void abort_cmd(struct ata *d, uint8_t err)
{
    d->xfer_active = false;
    d->xfer_pos = 0;
    d->xfer_remaining = 0;
    d->error = err;
    d->status = ATA_ST_DRDY | ATA_ST_ERR;
}

static void put_string(uint16_t *w, const char *s, int words)
{
    /* ATA strings: space padded, two characters per word, first in the
     * high byte. */
    char tmp[64];
    memset(tmp, ' ', sizeof(tmp));
    memcpy(tmp, s, strlen(s));
    for (int i = 0; i < words; i++) {
        w[i] = (uint16_t)((uint8_t)tmp[2 * i] << 8 | (uint8_t)tmp[2 * i + 1]);
    }
}

static void identify(struct ata *d)
{
    uint16_t w[256];
    memset(w, 0, sizeof(w));
    uint64_t n = ata_sectors(d);
    uint32_t lba28 = n > LBA28_MAX ? LBA28_MAX : (uint32_t)n;
    uint32_t cyl = lba28 / (16 * 63);
    w[0] = 0x0040; /* fixed disk */
    w[1] = (uint16_t)(cyl > 16383 ? 16383 : cyl);
    w[3] = 16;
    w[6] = 63;
    put_string(&w[10], "HOP00001", 10);
    put_string(&w[23], "0.1", 4);
    put_string(&w[27], "HOP HARDDISK", 20);
    w[47] = 0x8001;
    w[49] = 0x0200; /* LBA supported */
    w[53] = 0x0001;
    w[60] = (uint16_t)lba28;
    w[61] = (uint16_t)(lba28 >> 16);
    w[80] = 0x007e; /* ATA-1 .. ATA-6 */
    w[82] = 0x4000;
    w[83] = 0x5000; /* FLUSH CACHE supported */
    w[84] = 0x4000;
    w[86] = 0x1000;
    for (int i = 0; i < 256; i++) {
        d->buf[2 * i] = (uint8_t)w[i];
        d->buf[2 * i + 1] = (uint8_t)(w[i] >> 8);
    }
}

static bool read_sector(struct ata *d)
{
    Error *err = NULL;
    if (!blk_pread(d->blk, (uint64_t)d->xfer_lba * ATA_SECTOR_SIZE, d->buf,
                   ATA_SECTOR_SIZE, &err)) {
        report(d, "ata: read of sector %u of '%s' failed: %s", d->xfer_lba,
               drive_name(d), error_get_pretty(err));
        error_free(err);
        abort_cmd(d, ATA_ER_ABRT);
        return false;
    }
    return true;
}

/* Range check for a read or write of count sectors at lba. */
static bool in_range(struct ata *d, uint32_t lba, uint32_t count, bool write)
{
    uint64_t n = ata_sectors(d);
    if ((uint64_t)lba + count <= n) {
        return true;
    }
    report(d,
           "ata: guest %s sectors %u-%u past the end of drive '%s' "
           "(%llu sectors); command aborted",
           write ? "wrote" : "read", lba, lba + count - 1, drive_name(d),
           (unsigned long long)n);
    abort_cmd(d, ATA_ER_IDNF);
    return false;
}

static void start_pio(struct ata *d, uint8_t cmd, bool write)
{
    uint32_t count = d->nsector ? d->nsector : 256;
    uint32_t lba = taskfile_lba(d);
    if (!(d->select & SEL_LBA)) {
        report(d,
               "ata: CHS addressing is not supported; command 0x%02x "
               "aborted",
               cmd);
        abort_cmd(d, ATA_ER_ABRT);
        return;
    }
    if (!in_range(d, lba, count, write)) {
        return;
    }
    d->xfer_active = true;
    d->xfer_write = write;
    d->xfer_cmd = cmd;
    d->xfer_lba = lba;
    d->xfer_remaining = count;
    d->xfer_pos = 0;
    if (!write && !read_sector(d)) {
        return;
    }
    d->error = 0;
    d->status = ATA_ST_DRDY | ATA_ST_DSC | ATA_ST_DRQ;
}

static void command(struct ata *d, uint8_t cmd)
{
    if (!drive_selected(d)) {
        return; /* nobody answers */
    }
    if (d->xfer_active) {
        /* A new command cancels the transfer in progress. */
        d->xfer_active = false;
    }
    switch (cmd) {
    case 0xec: /* IDENTIFY DEVICE */
        identify(d);
        d->xfer_active = true;
        d->xfer_write = false;
        d->xfer_cmd = cmd;
        d->xfer_remaining = 1;
        d->xfer_pos = 0;
        d->error = 0;
        d->status = ATA_ST_DRDY | ATA_ST_DSC | ATA_ST_DRQ;
        break;
    case 0x20:
    case 0x21: /* READ SECTORS */
        start_pio(d, cmd, false);
        break;
    case 0x30:
    case 0x31: /* WRITE SECTORS */
        start_pio(d, cmd, true);
        break;
    case 0xe7: { /* FLUSH CACHE */
        Error *err = NULL;
        if (!blk_flush(d->blk, &err)) {
            report(d, "ata: flush of '%s' failed: %s", drive_name(d),
                   error_get_pretty(err));
            error_free(err);
            abort_cmd(d, ATA_ER_ABRT);
            break;
        }
        d->error = 0;
        finish(d);
        break;
    }
    case 0x91:
    case 0xef:
    case 0x10: /* parameters, features, recal */
        d->error = 0;
        finish(d);
        break;
    default:
        report(d, "ata: unsupported command 0x%02x aborted", cmd);
        abort_cmd(d, ATA_ER_ABRT);
        break;
    }
}

/* The sector in buf is complete: write it out or read the next one. */
static void sector_done(struct ata *d)
{
    if (d->xfer_write) {
        Error *err = NULL;
        if (!blk_pwrite(d->blk, (uint64_t)d->xfer_lba * ATA_SECTOR_SIZE, d->buf,
                        ATA_SECTOR_SIZE, &err)) {
            report(d, "ata: write of sector %u of '%s' failed: %s", d->xfer_lba,
                   drive_name(d), error_get_pretty(err));
            error_free(err);
            abort_cmd(d, ATA_ER_ABRT);
            return;
        }
    }
    d->xfer_pos = 0;
    if (--d->xfer_remaining == 0) {
        if (d->xfer_cmd != 0xec) {
            set_taskfile_lba(d, d->xfer_lba);
        }
        finish(d);
        return;
    }
    d->xfer_lba++;
    if (!d->xfer_write) {
        read_sector(d);
    }
}

static uint32_t data_in(struct ata *d, int size)
{
    if (!d->xfer_active || d->xfer_write) {
        return 0xffffffffu;
    }
    uint32_t v = 0;
    for (int i = 0; i < size && d->xfer_pos < ATA_SECTOR_SIZE; i++) {
        v |= (uint32_t)d->buf[d->xfer_pos++] << (8 * i);
    }
    if (d->xfer_pos == ATA_SECTOR_SIZE) {
        sector_done(d);
    }
    return v;
}

static void data_out(struct ata *d, int size, uint32_t val)
{
    if (!d->xfer_active || !d->xfer_write) {
        return;
    }
    for (int i = 0; i < size && d->xfer_pos < ATA_SECTOR_SIZE; i++) {
        d->buf[d->xfer_pos++] = (uint8_t)(val >> (8 * i));
    }
    if (d->xfer_pos == ATA_SECTOR_SIZE) {
        sector_done(d);
    }
}

static uint32_t ata_read(void *opaque, uint16_t offset, int size)
{
    struct ata *d = opaque;
    if (offset == REG_DATA) {
        return drive_selected(d) ? data_in(d, size) : 0xffffffffu;
    }
    if (!drive_selected(d)) {
        return 0; /* no device: reads as zero */
    }
    switch (offset) {
    case REG_ERR_FEAT:
        return d->error;
    case REG_NSECT:
        return d->nsector;
    case REG_LBA_LOW:
        return d->lba_low;
    case REG_LBA_MID:
        return d->lba_mid;
    case REG_LBA_HIGH:
        return d->lba_high;
    case REG_SELECT:
        return d->select;
    case REG_STATUS_CMD:
        return d->status;
    }
    return 0xff;
}

static void ata_write(void *opaque, uint16_t offset, int size, uint32_t val)
{
    struct ata *d = opaque;
    uint8_t v = (uint8_t)val;
    switch (offset) {
    case REG_DATA:
        if (drive_selected(d)) {
            data_out(d, size, val);
        }
        break;
    case REG_ERR_FEAT:
        d->feature = v;
        break;
    case REG_NSECT:
        d->nsector = v;
        break;
    case REG_LBA_LOW:
        d->lba_low = v;
        break;
    case REG_LBA_MID:
        d->lba_mid = v;
        break;
    case REG_LBA_HIGH:
        d->lba_high = v;
        break;
    case REG_SELECT:
        d->select = v | 0xa0;
        break;
    case REG_STATUS_CMD:
        command(d, v);
        break;
    }
}

static uint32_t ctrl_read(void *opaque, uint16_t offset, int size)
{
    struct ata *d = opaque;
    return drive_selected(d) ? d->status : 0; /* alternate status */
}

static void ctrl_write(void *opaque, uint16_t offset, int size, uint32_t val)
{
    struct ata *d = opaque;
    uint8_t v = (uint8_t)val;
    if ((v & CTL_SRST) && !(d->control & CTL_SRST)) {
        d->xfer_active = false;
        d->status = d->blk ? ATA_ST_BSY : 0;
    } else if (!(v & CTL_SRST) && (d->control & CTL_SRST)) {
        uint8_t keep = v;
        ata_reset(d);
        d->control = keep;
        return;
    }
    d->control = v;
}

const struct ioport_ops ata_ioport_ops = { .read = ata_read,
                                           .write = ata_write };
const struct ioport_ops ata_ctrl_ops = { .read = ctrl_read,
                                         .write = ctrl_write };

/* ---- saved state ---- */

static bool ata_pre_load(void *opaque, Error **errp)
{
    struct ata *d = opaque;
    /* Stays false unless the pio subsection arrives. */
    d->xfer_active = false;
    d->xfer_pos = 0;
    d->xfer_remaining = 0;
    return true;
}

static bool ata_post_load(void *opaque, int version_id, Error **errp)
{
    struct ata *d = opaque;
    if (d->xfer_active &&
        (d->xfer_pos >= ATA_SECTOR_SIZE || d->xfer_remaining == 0)) {
        error_setg(errp,
                   "ata: PIO transfer position %u, %u sectors left: "
                   "inconsistent",
                   d->xfer_pos, d->xfer_remaining);
        return false;
    }
    if (d->xfer_active && !d->blk) {
        error_setg(errp,
                   "ata: a PIO transfer is in flight but no drive is "
                   "attached");
        return false;
    }
    /* An inactive drive (the source of a migration still holds the
     * image) has no size yet; each sector is range-checked by blk_pread
     * and blk_pwrite once it is handed over. */
    if (d->xfer_active && d->xfer_cmd != 0xec && !blk_is_inactive(d->blk) &&
        (uint64_t)d->xfer_lba + d->xfer_remaining > ata_sectors(d)) {
        error_setg(errp,
                   "ata: PIO transfer at sector %u is past the end of "
                   "drive '%s'",
                   d->xfer_lba, drive_name(d));
        return false;
    }
    return true;
}

static bool pio_needed(void *opaque)
{
    const struct ata *d = opaque;
    return d->xfer_active;
}

static const struct vmstate_field ata_pio_fields[] = {
    VMSTATE_BOOL(xfer_active, struct ata),
    VMSTATE_BOOL(xfer_write, struct ata),
    VMSTATE_UINT8(xfer_cmd, struct ata),
    VMSTATE_UINT32(xfer_lba, struct ata),
    VMSTATE_UINT32(xfer_remaining, struct ata),
    VMSTATE_UINT32(xfer_pos, struct ata),
    VMSTATE_BUFFER(buf, struct ata),
    VMSTATE_END_OF_LIST()
};

static const struct vmstate_desc vmstate_ata_pio = {
    .name = "ata/pio",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = pio_needed,
    .fields = ata_pio_fields,
};

static const struct vmstate_desc *const ata_subsections[] = { &vmstate_ata_pio,
                                                              NULL };

static const struct vmstate_field ata_fields[] = {
    VMSTATE_UINT8(feature, struct ata), VMSTATE_UINT8(error, struct ata),
    VMSTATE_UINT8(nsector, struct ata), VMSTATE_UINT8(lba_low, struct ata),
    VMSTATE_UINT8(lba_mid, struct ata), VMSTATE_UINT8(lba_high, struct ata),
    VMSTATE_UINT8(select, struct ata),  VMSTATE_UINT8(status, struct ata),
    VMSTATE_UINT8(control, struct ata), VMSTATE_END_OF_LIST()
};

const struct vmstate_desc vmstate_ata = {
    .name = "ata",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_load = ata_pre_load,
    .post_load = ata_post_load,
    .fields = ata_fields,
    .subsections = ata_subsections,
};
