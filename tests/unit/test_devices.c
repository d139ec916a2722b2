/* Device models: guest-visible behaviour and VMState round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "block/block.h"
#include "machine/ata.h"
#include "machine/ps2.h"
#include "machine/rtc.h"
#include "machine/serial.h"
#include "machine/vmclock.h"
#include "vmstate/channel.h"
#include "vmstate/vmstate.h"

/* ---- helpers ---- */

static uint8_t *save_desc(const struct vmstate_desc *d, void *opaque,
                          size_t *len, json_t **vmdesc)
{
    Channel *f = chan_new_mem_writer();
    Error *err = NULL;
    json_t *desc = vmdesc ? json_object() : NULL;
    assert_true(vmstate_save(f, d, opaque, desc, &err));
    assert_true(chan_flush(f));
    uint8_t *buf = chan_mem_take(f, len);
    assert_true(chan_close(f, NULL));
    if (vmdesc) {
        *vmdesc = desc;
    }
    return buf;
}

static bool load_desc(const struct vmstate_desc *d, void *opaque,
                      const uint8_t *buf, size_t len, int version,
                      char **errmsg)
{
    Channel *f = chan_new_mem_reader(buf, len, "test");
    Error *err = NULL;
    bool ok = vmstate_load(f, d, opaque, version, &err);
    if (!ok && errmsg) {
        *errmsg = strdup(error_get_pretty(err));
    }
    error_free(err);
    chan_close(f, NULL);
    return ok;
}

/* Does the vmdesc JSON of a save list a subsection named name? */
static bool vmdesc_has_subsection(json_t *desc, const char *name)
{
    json_t *subs = json_object_get(desc, "subsections");
    size_t i;
    json_t *s;
    json_array_foreach(subs, i, s)
    {
        const char *n = json_string_value(json_object_get(s, "vmsd_name"));
        if (n && strcmp(n, name) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- serial ---- */

struct sink {
    char buf[256];
    size_t len;
};

static void sink_write(void *opaque, const uint8_t *buf, size_t len)
{
    struct sink *s = opaque;
    for (size_t i = 0; i < len && s->len < sizeof(s->buf) - 1; i++) {
        s->buf[s->len++] = (char)buf[i];
    }
}

static void test_serial_transmit_and_receive(void **state)
{
    struct sink out = { 0 };
    struct serial_backend be = { sink_write, &out };
    struct serial s;
    serial_init(&s, &be);
    assert_true(serial_ioport_read(&s, 5, 1) & 0x20); /* THR empty */
    serial_ioport_write(&s, 0, 1, 'h');
    serial_ioport_write(&s, 0, 1, 'i');
    assert_string_equal(out.buf, "hi");
    assert_false(serial_ioport_read(&s, 5, 1) & 0x01); /* no data */
    serial_ioport_write(&s, 2, 1, 0x07);               /* FIFO on */
    assert_int_equal(serial_receive(&s, (const uint8_t *)"abc", 3), 3);
    assert_true(serial_ioport_read(&s, 5, 1) & 0x01);
    assert_int_equal(serial_ioport_read(&s, 0, 1), 'a');
    assert_int_equal(serial_ioport_read(&s, 0, 1), 'b');
    assert_int_equal(serial_ioport_read(&s, 0, 1), 'c');
    assert_false(serial_ioport_read(&s, 5, 1) & 0x01);
}

static void test_serial_fifo_limit_and_divisor(void **state)
{
    struct serial s;
    serial_init(&s, NULL);
    uint8_t many[20];
    memset(many, 'x', sizeof(many));
    /* Without the FIFO the receiver holds one byte. */
    assert_int_equal(serial_receive(&s, many, 2), 1);
    assert_true(serial_ioport_read(&s, 5, 1) & 0x02); /* overrun */
    serial_ioport_write(&s, 2, 1, 0x07);
    assert_int_equal(serial_receive(&s, many, 20), SERIAL_FIFO_SIZE);
    serial_ioport_write(&s, 3, 1, 0x83); /* DLAB */
    serial_ioport_write(&s, 0, 1, 0x01);
    serial_ioport_write(&s, 1, 1, 0x02);
    assert_int_equal(s.divider, 0x0201);
    assert_int_equal(serial_ioport_read(&s, 0, 1), 0x01);
}

static void test_serial_vmstate_round_trip(void **state)
{
    struct serial a, b;
    serial_init(&a, NULL);
    serial_ioport_write(&a, 2, 1, 0x07);
    serial_ioport_write(&a, 7, 1, 0x5c); /* scratch */
    serial_ioport_write(&a, 1, 1, 0x03);
    serial_receive(&a, (const uint8_t *)"queued", 6);
    serial_ioport_read(&a, 0, 1); /* 'q' */
    size_t len;
    uint8_t *buf = save_desc(&vmstate_serial, &a, &len, NULL);
    serial_init(&b, NULL);
    assert_true(load_desc(&vmstate_serial, &b, buf, len, 2, NULL));
    assert_int_equal(b.rx_count, 5);
    assert_memory_equal(b.rx_fifo, "ueued", 5);
    assert_int_equal(b.scr, 0x5c);
    assert_int_equal(b.ier, 0x03);
    assert_int_equal(serial_ioport_read(&b, 0, 1), 'u');
    free(buf);
}

static void test_serial_vmstate_version1_has_no_scratch(void **state)
{
    /* Version 1 ends before scr: build its bytes from a v2 save. */
    struct serial a, b;
    serial_init(&a, NULL);
    serial_ioport_write(&a, 7, 1, 0x77);
    serial_receive(&a, (const uint8_t *)"z", 1);
    size_t len;
    uint8_t *buf = save_desc(&vmstate_serial, &a, &len, NULL);
    serial_init(&b, NULL);
    b.scr = 0x99;
    assert_true(load_desc(&vmstate_serial, &b, buf, len - 1, 1, NULL));
    assert_int_equal(b.scr, 0);
    assert_int_equal(b.rx_count, 1);
    assert_int_equal(b.rx_fifo[0], 'z');
    free(buf);
}

static void test_serial_vmstate_rejects_oversized_fifo(void **state)
{
    struct serial a, b;
    serial_init(&a, NULL);
    size_t len;
    uint8_t *buf = save_desc(&vmstate_serial, &a, &len, NULL);
    /* rx_count is the 9th byte: divider(2) + 6 regs + bool. */
    buf[9] = 40;
    serial_init(&b, NULL);
    char *msg = NULL;
    assert_false(load_desc(&vmstate_serial, &b, buf, len, 2, &msg));
    assert_non_null(strstr(msg, "rx_fifo"));
    free(msg);
    free(buf);
}

/* ---- PS/2 ---- */

static int read_kbd(struct i8042 *c, uint8_t *out, int max)
{
    int n = 0;
    while (n < max && (i8042_cmd_ops.read(c, 0, 1) & 0x01)) {
        out[n++] = (uint8_t)i8042_data_ops.read(c, 0, 1);
    }
    return n;
}

static void test_ps2_sendkey_scancodes(void **state)
{
    struct i8042 c;
    i8042_init(&c);
    Error *err = NULL;
    uint8_t b[16];
    assert_true(ps2_sendkey(&c, "a", &err));
    assert_int_equal(read_kbd(&c, b, 16), 2);
    assert_int_equal(b[0], 0x1e);
    assert_int_equal(b[1], 0x9e);
    assert_true(ps2_sendkey(&c, "shift-a", &err));
    assert_int_equal(read_kbd(&c, b, 16), 4);
    uint8_t want[] = { 0x2a, 0x1e, 0x9e, 0xaa };
    assert_memory_equal(b, want, 4);
    assert_true(ps2_sendkey(&c, "ctrl-alt-delete", &err));
    uint8_t want2[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
    assert_int_equal(read_kbd(&c, b, 16), 8);
    assert_memory_equal(b, want2, 8);
    assert_true(ps2_sendkey(&c, "ret", &err));
    assert_int_equal(read_kbd(&c, b, 16), 2);
    assert_int_equal(b[0], 0x1c);
}

static void test_ps2_sendkey_errors(void **state)
{
    struct i8042 c;
    i8042_init(&c);
    Error *err = NULL;
    assert_false(ps2_sendkey(&c, "nosuchkey", &err));
    assert_non_null(strstr(error_get_pretty(err), "nosuchkey"));
    error_free(err);
    err = NULL;
    assert_false(ps2_sendkey(&c, "shift-", &err));
    error_free(err);
    err = NULL;
    assert_false(ps2_sendkey(&c, "", &err));
    error_free(err);
    uint8_t b[4];
    assert_int_equal(read_kbd(&c, b, 4), 0); /* nothing half-queued */
}

static void test_ps2_controller_commands(void **state)
{
    struct i8042 c;
    i8042_init(&c);
    uint8_t b[4];
    i8042_cmd_ops.write(&c, 0, 1, 0xaa); /* self test */
    assert_int_equal(read_kbd(&c, b, 4), 1);
    assert_int_equal(b[0], 0x55);
    i8042_cmd_ops.write(&c, 0, 1, 0x20); /* read command byte */
    assert_int_equal(read_kbd(&c, b, 4), 1);
    assert_true(b[0] & 0x40);             /* translation on */
    i8042_data_ops.write(&c, 0, 1, 0xff); /* keyboard reset */
    assert_int_equal(read_kbd(&c, b, 4), 2);
    assert_int_equal(b[0], 0xfa);
    assert_int_equal(b[1], 0xaa);
}

static void test_ps2_mouse_packets(void **state)
{
    struct i8042 c;
    i8042_init(&c);
    uint8_t b[8];
    /* Reporting is off until the guest enables it. */
    ps2_mouse_move(&c, 5, 5, 0);
    assert_int_equal(read_kbd(&c, b, 8), 0);
    i8042_cmd_ops.write(&c, 0, 1, 0xd4);
    i8042_data_ops.write(&c, 0, 1, 0xf4);
    assert_int_equal(read_kbd(&c, b, 8), 1);
    assert_int_equal(b[0], 0xfa);
    ps2_mouse_move(&c, 10, -3, 0);                    /* right, up */
    assert_true(i8042_cmd_ops.read(&c, 0, 1) & 0x20); /* from aux */
    assert_int_equal(read_kbd(&c, b, 8), 3);
    assert_int_equal(b[0], 0x08); /* no sign bits */
    assert_int_equal(b[1], 10);
    assert_int_equal(b[2], 3); /* PS/2 y counts up */
    ps2_mouse_button(&c, 1);
    assert_int_equal(read_kbd(&c, b, 8), 3);
    assert_int_equal(b[0], 0x09);
}

static void test_ps2_vmstate_round_trip(void **state)
{
    struct i8042 a, b;
    i8042_init(&a);
    Error *err = NULL;
    i8042_cmd_ops.write(&a, 0, 1, 0xd4);
    i8042_data_ops.write(&a, 0, 1, 0xf4); /* mouse on, ACK queued */
    i8042_data_ops.write(&a, 0, 1, 0xf5); /* keyboard off: ACK */
    i8042_data_ops.write(&a, 0, 1, 0xf4); /* keyboard on: ACK */
    assert_true(ps2_sendkey(&a, "x", &err));
    i8042_cmd_ops.write(&a, 0, 1, 0xd4);
    i8042_data_ops.write(&a, 0, 1, 0xe7); /* scaling 2:1 */
    size_t lc, lk, lm;
    uint8_t *bc = save_desc(&vmstate_i8042, &a, &lc, NULL);
    uint8_t *bk = save_desc(&vmstate_ps2_kbd, &a.kbd, &lk, NULL);
    uint8_t *bm = save_desc(&vmstate_ps2_mouse, &a.mouse, &lm, NULL);
    i8042_init(&b);
    assert_true(load_desc(&vmstate_i8042, &b, bc, lc, 1, NULL));
    assert_true(load_desc(&vmstate_ps2_kbd, &b.kbd, bk, lk, 1, NULL));
    assert_true(load_desc(&vmstate_ps2_mouse, &b.mouse, bm, lm, 2, NULL));
    assert_int_equal(b.mouse.scaling, 2);
    assert_true(b.mouse.reporting);
    uint8_t ra[32], rb[32];
    int na = read_kbd(&a, ra, 32), nb = read_kbd(&b, rb, 32);
    assert_int_equal(na, nb);
    assert_memory_equal(ra, rb, (size_t)na);
    /* Version 1 of the mouse has no scaling: it reads back as 1. */
    i8042_init(&b);
    b.mouse.scaling = 2;
    assert_true(load_desc(&vmstate_ps2_mouse, &b.mouse, bm, lm - 1, 1, NULL));
    assert_int_equal(b.mouse.scaling, 1);
    free(bc);
    free(bk);
    free(bm);
}

/* ---- ATA ---- */

struct ata_fixture {
    char path[64];
    BlockDev *blk;
    struct ata d;
    char reports[512];
};

static void collect_report(void *opaque, const char *msg)
{
    struct ata_fixture *fx = opaque;
    size_t n = strlen(fx->reports);
    snprintf(fx->reports + n, sizeof(fx->reports) - n, "%s\n", msg);
}

static int ata_setup(void **state)
{
    struct ata_fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->path, sizeof(fx->path), "/tmp/hop-ata-XXXXXX");
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 16 * 512), 0); /* 16 sectors */
    close(fd);
    Error *err = NULL;
    fx->blk = blk_open(fx->path, "raw", false, &err);
    assert_non_null(fx->blk);
    ata_init(&fx->d, fx->blk);
    fx->d.report = collect_report;
    fx->d.report_opaque = fx;
    *state = fx;
    return 0;
}

static int ata_teardown(void **state)
{
    struct ata_fixture *fx = *state;
    blk_close(fx->blk);
    unlink(fx->path);
    free(fx);
    return 0;
}

static void ata_cmd(struct ata *d, uint8_t cmd, uint32_t lba, uint8_t count)
{
    ata_ioport_ops.write(d, 2, 1, count);
    ata_ioport_ops.write(d, 3, 1, lba & 0xff);
    ata_ioport_ops.write(d, 4, 1, (lba >> 8) & 0xff);
    ata_ioport_ops.write(d, 5, 1, (lba >> 16) & 0xff);
    ata_ioport_ops.write(d, 6, 1, 0xe0 | ((lba >> 24) & 0x0f));
    ata_ioport_ops.write(d, 7, 1, cmd);
}

static uint8_t ata_status(struct ata *d)
{
    return (uint8_t)ata_ioport_ops.read(d, 7, 1);
}

static void test_ata_identify(void **state)
{
    struct ata_fixture *fx = *state;
    ata_cmd(&fx->d, 0xec, 0, 0);
    assert_true(ata_status(&fx->d) & ATA_ST_DRQ);
    uint16_t w[256];
    for (int i = 0; i < 256; i++) {
        w[i] = (uint16_t)ata_ioport_ops.read(&fx->d, 0, 2);
    }
    assert_false(ata_status(&fx->d) & ATA_ST_DRQ);
    assert_int_equal(w[60] | (uint32_t)w[61] << 16, 16);
    assert_true(w[49] & 0x0200);
}

static void write_sector(struct ata *d, uint32_t lba, const uint8_t *data)
{
    ata_cmd(d, 0x30, lba, 1);
    assert_true(ata_status(d) & ATA_ST_DRQ);
    for (int i = 0; i < 512; i += 2) {
        ata_ioport_ops.write(d, 0, 2, data[i] | data[i + 1] << 8);
    }
    assert_int_equal(ata_status(d) & (ATA_ST_DRQ | ATA_ST_ERR), 0);
}

static void test_ata_write_read_sectors(void **state)
{
    struct ata_fixture *fx = *state;
    uint8_t data[512], back[512];
    for (int i = 0; i < 512; i++) {
        data[i] = (uint8_t)(i * 7 + 3);
    }
    write_sector(&fx->d, 5, data);
    /* Independent check: the bytes are in the image file. */
    FILE *f = fopen(fx->path, "rb");
    assert_int_equal(fseek(f, 5 * 512, SEEK_SET), 0);
    assert_int_equal(fread(back, 1, 512, f), 512);
    fclose(f);
    assert_memory_equal(back, data, 512);
    ata_cmd(&fx->d, 0x20, 5, 1);
    for (int i = 0; i < 512; i += 4) {
        uint32_t v = ata_ioport_ops.read(&fx->d, 0, 4);
        memcpy(back + i, &v, 4);
    }
    assert_memory_equal(back, data, 512);
    assert_int_equal(fx->reports[0], '\0');
}

static void test_ata_write_past_end_reported(void **state)
{
    struct ata_fixture *fx = *state;
    ata_cmd(&fx->d, 0x30, 15, 2); /* sectors 15-16 of 16 */
    uint8_t st = ata_status(&fx->d);
    assert_true(st & ATA_ST_ERR);
    assert_false(st & ATA_ST_DRQ);
    assert_int_equal(ata_ioport_ops.read(&fx->d, 1, 1), ATA_ER_IDNF);
    assert_non_null(strstr(fx->reports, "past the end"));
    assert_non_null(strstr(fx->reports, "15-16"));
    assert_int_equal(blk_size(fx->blk), 16 * 512);
}

static void test_ata_pio_subsection_only_in_flight(void **state)
{
    struct ata_fixture *fx = *state;
    json_t *desc;
    size_t len;
    uint8_t *buf = save_desc(&vmstate_ata, &fx->d, &len, &desc);
    assert_false(vmdesc_has_subsection(desc, "ata/pio"));
    json_decref(desc);
    free(buf);

    /* Half a sector written when the state is saved... */
    uint8_t data[512];
    for (int i = 0; i < 512; i++) {
        data[i] = (uint8_t)(255 - i);
    }
    ata_cmd(&fx->d, 0x30, 3, 1);
    for (int i = 0; i < 200; i += 2) {
        ata_ioport_ops.write(&fx->d, 0, 2, data[i] | data[i + 1] << 8);
    }
    buf = save_desc(&vmstate_ata, &fx->d, &len, &desc);
    assert_true(vmdesc_has_subsection(desc, "ata/pio"));
    json_decref(desc);

    /* ...is finished by the controller that loads it. */
    struct ata b;
    ata_init(&b, fx->blk);
    assert_true(load_desc(&vmstate_ata, &b, buf, len, 1, NULL));
    assert_true(b.xfer_active);
    assert_true(ata_status(&b) & ATA_ST_DRQ);
    for (int i = 200; i < 512; i += 2) {
        ata_ioport_ops.write(&b, 0, 2, data[i] | data[i + 1] << 8);
    }
    assert_false(ata_status(&b) & ATA_ST_DRQ);
    uint8_t back[512];
    Error *err = NULL;
    assert_true(blk_pread(fx->blk, 3 * 512, back, 512, &err));
    assert_memory_equal(back, data, 512);
    free(buf);

    /* A state without the subsection cancels a transfer in progress. */
    struct ata idle;
    ata_init(&idle, fx->blk);
    buf = save_desc(&vmstate_ata, &idle, &len, NULL);
    ata_cmd(&b, 0x30, 1, 1);
    assert_true(b.xfer_active);
    assert_true(load_desc(&vmstate_ata, &b, buf, len, 1, NULL));
    assert_false(b.xfer_active);
    free(buf);
}

/* Live migration with one image on both ends: the destination loads the
 * state while its drive is still inactive (the source holds the image,
 * so its size is not known yet).  A write in flight is taken up and
 * finished once the drive is handed over. */
static void test_ata_pio_in_flight_loads_into_inactive_drive(void **state)
{
    struct ata_fixture *fx = *state;
    uint8_t data[512];
    for (int i = 0; i < 512; i++) {
        data[i] = (uint8_t)(i * 3 + 1);
    }
    ata_cmd(&fx->d, 0x30, 14, 2); /* sectors 14-15 of 16 */
    for (int i = 0; i < 100; i += 2) {
        ata_ioport_ops.write(&fx->d, 0, 2, data[i] | data[i + 1] << 8);
    }
    size_t len;
    uint8_t *buf = save_desc(&vmstate_ata, &fx->d, &len, NULL);

    Error *err = NULL;
    BlockDev *dst = blk_open_flags(fx->path, "raw",
                                   BLK_OPEN_RDWR | BLK_OPEN_INACTIVE, &err);
    assert_non_null(dst);
    struct ata b;
    ata_init(&b, dst);
    char *why = NULL;
    if (!load_desc(&vmstate_ata, &b, buf, len, 1, &why)) {
        fail_msg("load into an inactive drive: %s", why);
    }
    assert_true(b.xfer_active);
    /* The hand-over, then the rest of the transfer. */
    assert_true(blk_inactivate(fx->blk, &err));
    assert_true(blk_activate(dst, &err));
    for (int i = 100; i < 512; i += 2) {
        ata_ioport_ops.write(&b, 0, 2, data[i] | data[i + 1] << 8);
    }
    for (int i = 0; i < 512; i += 2) {
        ata_ioport_ops.write(&b, 0, 2, data[i] | data[i + 1] << 8);
    }
    assert_int_equal(ata_status(&b) & (ATA_ST_DRQ | ATA_ST_ERR), 0);
    uint8_t back[512];
    for (uint64_t lba = 14; lba < 16; lba++) {
        assert_true(blk_pread(dst, lba * 512, back, 512, &err));
        assert_memory_equal(back, data, 512);
    }
    blk_close(dst);
    free(buf);
}

/* ---- RTC ---- */

static uint8_t cmos(struct rtc *r, uint8_t idx)
{
    rtc_ioport_ops.write(r, 0, 1, idx);
    return (uint8_t)rtc_ioport_ops.read(r, 1, 1);
}

static int bcd(uint8_t v)
{
    return (v >> 4) * 10 + (v & 15);
}

static void test_rtc_time_follows_vm_clock(void **state)
{
    struct vmclock clk;
    vmclock_init(&clk);
    struct rtc r;
    rtc_init(&r, &clk);
    /* Stopped clock: the guest time does not move. */
    int64_t t0 = rtc_guest_time_ns(&r);
    usleep(20000);
    assert_true(rtc_guest_time_ns(&r) == t0);
    /* The registers show the guest time in BCD, as gmtime does. */
    time_t t = (time_t)(t0 / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    assert_int_equal(bcd(cmos(&r, 0x00)), tm.tm_sec);
    assert_int_equal(bcd(cmos(&r, 0x02)), tm.tm_min);
    assert_int_equal(bcd(cmos(&r, 0x04)), tm.tm_hour);
    assert_int_equal(bcd(cmos(&r, 0x07)), tm.tm_mday);
    assert_int_equal(bcd(cmos(&r, 0x08)), tm.tm_mon + 1);
    assert_int_equal(bcd(cmos(&r, 0x09)), tm.tm_year % 100);
    vmclock_start(&clk);
    usleep(20000);
    vmclock_stop(&clk);
    int64_t dt = rtc_guest_time_ns(&r) - t0;
    assert_true(dt >= 20000000 && dt < 2000000000);
    vmclock_destroy(&clk);
}

static void test_rtc_vmstate_carries_vm_time(void **state)
{
    struct vmclock ca, cb;
    vmclock_init(&ca);
    vmclock_init(&cb);
    struct rtc a, b;
    rtc_init(&a, &ca);
    vmclock_set_ns(&ca, 5000000000ll);
    rtc_ioport_ops.write(&a, 0, 1, 0x40);
    rtc_ioport_ops.write(&a, 1, 1, 0xab); /* CMOS RAM byte */
    int64_t ta = rtc_guest_time_ns(&a);
    size_t len;
    uint8_t *buf = save_desc(&vmstate_rtc, &a, &len, NULL);
    rtc_init(&b, &cb);
    b.base_epoch_ns += 1000000000000ll; /* another host */
    usleep(10000);
    assert_true(load_desc(&vmstate_rtc, &b, buf, len, 1, NULL));
    assert_true(vmclock_get_ns(&cb) == 5000000000ll);
    assert_true(rtc_guest_time_ns(&b) == ta);
    assert_int_equal(cmos(&b, 0x40), 0xab);
    free(buf);
    vmclock_destroy(&ca);
    vmclock_destroy(&cb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial_transmit_and_receive),
        cmocka_unit_test(test_serial_fifo_limit_and_divisor),
        cmocka_unit_test(test_serial_vmstate_round_trip),
        cmocka_unit_test(test_serial_vmstate_version1_has_no_scratch),
        cmocka_unit_test(test_serial_vmstate_rejects_oversized_fifo),
        cmocka_unit_test(test_ps2_sendkey_scancodes),
        cmocka_unit_test(test_ps2_sendkey_errors),
        cmocka_unit_test(test_ps2_controller_commands),
        cmocka_unit_test(test_ps2_mouse_packets),
        cmocka_unit_test(test_ps2_vmstate_round_trip),
        cmocka_unit_test_setup_teardown(test_ata_identify, ata_setup,
                                        ata_teardown),
        cmocka_unit_test_setup_teardown(test_ata_write_read_sectors, ata_setup,
                                        ata_teardown),
        cmocka_unit_test_setup_teardown(test_ata_write_past_end_reported,
                                        ata_setup, ata_teardown),
        cmocka_unit_test_setup_teardown(test_ata_pio_subsection_only_in_flight,
                                        ata_setup, ata_teardown),
        cmocka_unit_test_setup_teardown(
            test_ata_pio_in_flight_loads_into_inactive_drive, ata_setup,
            ata_teardown),
        cmocka_unit_test(test_rtc_time_follows_vm_clock),
        cmocka_unit_test(test_rtc_vmstate_carries_vm_time),
    };
    return cmocka_run_group_tests_name("devices", tests, NULL, NULL);
}
