/* The snapshot layer in-process: savevm/loadvm of a running machine into
 * a qcow2 image, the choice of drives, the catalog and the completion of
 * snapshot tags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "core/session.h"
#include "machine/machine.h"
#include "monitor/complete.h"
#include "ram/ram.h"
#include "snapshot/catalog.h"
#include "snapshot/channel-vmstate.h"
#include "snapshot/loadvm.h"
#include "snapshot/savevm.h"
#include "snapshot/sections.h"
#include "tests/unit/bytebuf.h"
#include "tests/unit/machine-fixture.h"
#include "vmstate/channel.h"
#include "vmstate/stream-format.h"

static char dir[64];
static char img[128];
static char db[128];

static int setup(void **state)
{
    strcpy(dir, "/tmp/hop-snap-XXXXXX");
    if (!mkdtemp(dir)) {
        return -1;
    }
    snprintf(img, sizeof(img), "%s/d.qcow2", dir);
    snprintf(db, sizeof(db), "%s/catalog.db", dir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static BlockDev *new_image(const char *path, uint64_t size)
{
    Error *err = NULL;
    assert_true(blk_create(path, "qcow2", size, NULL, &err));
    BlockDev *bs = blk_open(path, NULL, false, &err);
    assert_non_null(bs);
    return bs;
}

static void warn_fail(void *ctx, const char *msg)
{
    fail_msg("unexpected warning: %s", msg);
}

/* A counter machine with ram/'s RAM section and one qcow2 drive, the
 * target of the snapshot operations. */
struct rig {
    struct serial_capture cap;
    struct machine *m;
    struct ram_state *rs;
    BlockDev *bs;
    struct snapshot_drive drives[1];
    struct snapshot_target t;
};

static void rig_open(struct rig *r)
{
    capture_init(&r->cap);
    struct machine_config cfg = {
        .ram_size = 8 << 20,
        .guest = "counter",
        .serial = capture_backend(&r->cap),
    };
    Error *err = NULL;
    r->m = machine_new(&cfg, &err);
    assert_non_null(r->m);
    r->rs = fixture_register_ram(r->m);
    r->bs = new_image(img, 1 << 20);
    r->drives[0] = (struct snapshot_drive){ "ide0-hd0", r->bs };
    r->t = (struct snapshot_target){
        .m = r->m,
        .drives = r->drives,
        .ndrives = 1,
        .catalog = db,
        .warn = warn_fail,
    };
}

static void rig_close(struct rig *r)
{
    machine_free(r->m);
    ram_state_free(r->rs);
    blk_close(r->bs);
    capture_free(&r->cap);
}

static uint8_t *ram_copy(struct machine *m)
{
    struct machine_memory *mem = machine_memory(m);
    struct ram_block *b = mem->blocks[0];
    uint8_t *c = malloc(b->size);
    assert_non_null(c);
    memcpy(c, b->host, b->size);
    return c;
}

/* A counter guest: savevm while running, run on, loadvm; memory and
 * registers are those of the save, the VM clock too. */
static void test_save_load_roundtrip(void **state)
{
    struct rig r;
    rig_open(&r);
    struct machine *m = r.m;
    const struct snapshot_target t = r.t;
    Error *err = NULL;
    assert_true(vm_start(m, &err));
    assert_true(capture_wait_for(&r.cap, "counter: 5\n", 10000));
    struct blk_snapshot sn;
    assert_true(snapshot_save(&t, "s1", NULL, &sn, &err));
    assert_int_equal(machine_runstate(m), RUN_STATE_RUNNING);
    assert_string_equal(sn.name, "s1");
    assert_true(sn.vm_state_size > 0);
    assert_int_equal(sn.icount, -1);
    blk_snapshot_clear(&sn);

    /* What the snapshot holds, seen by stopping and saving again. */
    assert_true(vm_stop(m, RUN_STATE_PAUSED, &err));
    assert_true(snapshot_save(&t, "s2", NULL, NULL, &err));
    assert_int_equal(machine_runstate(m), RUN_STATE_PAUSED);
    uint8_t *ram = ram_copy(m);
    struct x86_state regs;
    assert_true(machine_get_cpu_state(m, 0, &regs, &err));
    int64_t clock = machine_vm_clock_ns(m);
    assert_true(vm_start(m, &err));
    assert_true(capture_wait_for(&r.cap, "counter: 40\n", 10000));

    assert_true(snapshot_load(&t, NULL, "s2", NULL, &err));
    assert_int_equal(machine_runstate(m), RUN_STATE_RUNNING);
    assert_true(vm_stop(m, RUN_STATE_PAUSED, &err));
    /* The machine ran a little after the load: compare from a fresh
     * paused load instead. */
    assert_true(snapshot_load(&t, NULL, "s2", NULL, &err));
    assert_int_equal(machine_runstate(m), RUN_STATE_PAUSED);
    uint8_t *back = ram_copy(m);
    struct x86_state regs2;
    assert_true(machine_get_cpu_state(m, 0, &regs2, &err));
    assert_memory_equal(ram, back, 8 << 20);
    char msg[256];
    assert_true(x86_state_equal(&regs, &regs2, msg, sizeof(msg)));
    assert_int_equal(machine_vm_clock_ns(m), clock);

    /* A missing tag changes nothing. */
    assert_false(snapshot_load(&t, NULL, "nope", NULL, &err));
    assert_non_null(strstr(error_get_pretty(err), "'nope' does not exist"));
    error_free(err);
    err = NULL;
    assert_int_equal(machine_runstate(m), RUN_STATE_PAUSED);

    /* delvm; then the tag is gone, the other stays. */
    assert_true(snapshot_delete(&t, "s1", NULL, &err));
    assert_false(snapshot_delete(&t, "s1", NULL, &err));
    error_free(err);
    err = NULL;
    struct blk_snapshot *l;
    size_t n;
    assert_true(snapshot_list_common(&t, &l, &n, &err));
    assert_int_equal(n, 1);
    assert_string_equal(l[0].name, "s2");
    blk_snapshot_list_free(l, n);

    /* The catalog followed. */
    struct catalog *c = catalog_open(db, true, &err);
    assert_non_null(c);
    catalog_close(c);

    free(ram);
    free(back);
    rig_close(&r);
}

/* A state that starts like a stream but has no configuration record is
 * refused before the disk reverts: the disk keeps what the guest wrote
 * since and the machine keeps its run state. */
static void test_load_refuses_bad_header_before_revert(void **state)
{
    struct rig r;
    rig_open(&r);
    Error *err = NULL;
    uint8_t sector[512];
    memset(sector, 'A', sizeof(sector));
    assert_true(blk_pwrite(r.bs, 0, sector, sizeof(sector), &err));

    Channel *w = chan_new_vmstate_writer(r.bs, &err);
    assert_non_null(w);
    chan_put_be32(w, STREAM_MAGIC);
    chan_put_be32(w, STREAM_VERSION);
    chan_put_u8(w, STREAM_EOF);
    assert_true(chan_flush(w));
    struct blk_snapshot sn = { .name = (char *)"bad",
                               .vm_state_size = chan_tell(w),
                               .icount = -1 };
    assert_true(chan_close(w, &err));
    assert_true(blk_snapshot_create(r.bs, &sn, &err));

    memset(sector, 'B', sizeof(sector));
    assert_true(blk_pwrite(r.bs, 0, sector, sizeof(sector), &err));
    enum run_state before = machine_runstate(r.m);
    assert_false(snapshot_load(&r.t, NULL, "bad", NULL, &err));
    assert_non_null(strstr(error_get_pretty(err),
                           "snapshot 'bad': expected the configuration "
                           "section (0x07) at offset 8, found 0x00"));
    error_free(err);
    err = NULL;
    assert_int_equal(machine_runstate(r.m), before);
    assert_true(blk_pread(r.bs, 0, sector, sizeof(sector), &err));
    assert_int_equal(sector[0], 'B');

    rig_close(&r);
}

static void test_plan(void **state)
{
    char raw[160], ro[160];
    snprintf(raw, sizeof(raw), "%s/r.img", dir);
    snprintf(ro, sizeof(ro), "%s/ro.qcow2", dir);
    Error *err = NULL;
    assert_true(blk_create(raw, "raw", 1 << 20, NULL, &err));
    BlockDev *a = new_image(img, 1 << 20);
    blk_close(new_image(ro, 1 << 20));
    BlockDev *r = blk_open(raw, "raw", false, &err);
    BlockDev *q = blk_open(ro, NULL, true, &err);
    assert_non_null(r);
    assert_non_null(q);
    struct snapshot_plan plan;

    /* Nothing to hold the state. */
    assert_false(snapshot_plan_make(NULL, 0, NULL, 0, NULL, &plan, &err));
    assert_non_null(strstr(error_get_pretty(err),
                           "add -drive file=X.qcow2 (if=none is enough"));
    error_free(err);
    err = NULL;

    /* A read-only drive takes no part; a writable raw one is an error. */
    struct snapshot_drive d1[] = { { "ro", q }, { "none0", a } };
    assert_true(snapshot_plan_make(d1, 2, NULL, 0, NULL, &plan, &err));
    assert_int_equal(plan.n, 1);
    assert_ptr_equal(plan.drives[plan.state].bs, a);
    struct snapshot_drive d2[] = { { "ide0-hd0", r }, { "none0", a } };
    assert_false(snapshot_plan_make(d2, 2, NULL, 0, NULL, &plan, &err));
    assert_non_null(strstr(error_get_pretty(err), "does not support"));
    error_free(err);
    err = NULL;
    /* ... unless the devices list leaves it out. */
    const char *only[] = { "none0" };
    assert_true(snapshot_plan_make(d2, 2, only, 1, "none0", &plan, &err));
    assert_int_equal(plan.n, 1);
    blk_close(a);
    blk_close(r);
    blk_close(q);
}

static struct state_section sec(const char *idstr, uint32_t inst, uint32_t ver,
                                uint64_t size)
{
    struct state_section s = { .instance = inst, .version = ver, .size = size };
    snprintf(s.idstr, sizeof(s.idstr), "%s", idstr);
    return s;
}

static void count_row(void *ctx, int ncols, const char *const *names,
                      const char *const *v)
{
    char *out = ctx;
    for (int i = 0; i < ncols; i++) {
        strcat(out, v[i] ? v[i] : "NULL");
        strcat(out, i + 1 < ncols ? "|" : ";");
    }
}

static void test_catalog(void **state)
{
    Error *err = NULL;
    struct catalog *c = catalog_open(db, false, &err);
    assert_non_null(c);
    struct state_section s1[] = { sec("ram", 0, 4, 1000),
                                  sec("serial", 0, 1, 36) };
    struct state_section s2[] = { sec("ram", 0, 4, 2000),
                                  sec("serial", 0, 2, 36) };
    struct state_summary sum1 = {
        .machine = "hop-pc", .ram_size = 4096, .sections = s1, .nsections = 2
    };
    struct state_summary sum2 = {
        .machine = "hop-pc", .ram_size = 4096, .sections = s2, .nsections = 2
    };
    char id1[] = "1", id2[] = "2", na[] = "a", nb[] = "b";
    struct blk_snapshot a = { .id = id1,
                              .name = na,
                              .vm_state_size = 1100,
                              .date_sec = 10,
                              .icount = -1 };
    struct blk_snapshot b = { .id = id2,
                              .name = nb,
                              .vm_state_size = 2100,
                              .date_sec = 20,
                              .icount = -1 };
    struct catalog_snapshot both[] = { { &a, &sum1 }, { &b, &sum2 } };
    assert_true(
        catalog_update_image(c, "/x.qcow2", "qcow2", 1 << 20, both, 2, &err));
    char out[1024] = "";
    assert_true(catalog_query(c,
                              "SELECT s.name FROM snapshots s JOIN "
                              "sections d ON d.snapshot = s.id WHERE "
                              "d.idstr = 'serial' AND d.version < 2",
                              count_row, out, &err));
    assert_string_equal(out, "a;");

    /* The same snapshot, sections not read: they are kept.  A changed
     * one (new date) loses them; a missing one goes. */
    struct blk_snapshot b2 = b;
    b2.date_sec = 30;
    struct catalog_snapshot again[] = { { &b2, NULL } };
    struct catalog_snapshot keep[] = { { &a, NULL } };
    assert_true(
        catalog_update_image(c, "/x.qcow2", "qcow2", 1 << 20, keep, 1, &err));
    out[0] = '\0';
    assert_true(catalog_query(c,
                              "SELECT name, sections_known, (SELECT "
                              "count(*) FROM sections WHERE snapshot = "
                              "snapshots.id) FROM snapshots ORDER BY name",
                              count_row, out, &err));
    assert_string_equal(out, "a|1|2;");
    assert_true(
        catalog_update_image(c, "/x.qcow2", "qcow2", 1 << 20, again, 1, &err));
    out[0] = '\0';
    assert_true(catalog_query(c,
                              "SELECT name, sections_known FROM "
                              "snapshots",
                              count_row, out, &err));
    assert_string_equal(out, "b|0;");

    /* Writes through query are refused, and so are two statements. */
    assert_false(catalog_query(c, "DELETE FROM images", count_row, out, &err));
    error_free(err);
    err = NULL;
    assert_false(catalog_query(c, "SELECT 1; SELECT 2", count_row, out, &err));
    error_free(err);
    err = NULL;
    assert_true(catalog_forget_image(c, "/x.qcow2", &err));
    out[0] = '\0';
    assert_true(catalog_query(c, "SELECT count(*) FROM snapshots", count_row,
                              out, &err));
    assert_string_equal(out, "0;");
    catalog_close(c);

    /* A read-only open of a missing catalog says how to make one. */
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/none.db", dir);
    assert_null(catalog_open(missing, true, &err));
    assert_non_null(strstr(error_get_pretty(err), "no catalog at"));
    error_free(err);
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fail_msg("%s: %s", path, strerror(errno));
    }
    return st.st_mode & 07777;
}

/* The catalog lists the user's images: a new one, its -wal and -shm
 * files and the directories made for it are the owner's alone, whatever
 * the umask. */
static void test_catalog_private(void **state)
{
    char sub[160], path[200], side[220];
    snprintf(sub, sizeof(sub), "%s/new/hop", dir);
    snprintf(path, sizeof(path), "%s/catalog.db", sub);
    mode_t old = umask(022);
    Error *err = NULL;
    struct catalog *c = catalog_open(path, false, &err);
    umask(old);
    assert_non_null(c);
    assert_int_equal(mode_of(path), 0600);
    snprintf(side, sizeof(side), "%s-wal", path);
    assert_int_equal(mode_of(side), 0600);
    snprintf(side, sizeof(side), "%s-shm", path);
    assert_int_equal(mode_of(side), 0600);
    assert_int_equal(mode_of(sub), 0700);
    snprintf(side, sizeof(side), "%s/new", dir);
    assert_int_equal(mode_of(side), 0700);
    catalog_close(c);
}

static void test_catalog_path(void **state)
{
    setenv("HOP_CATALOG", "/a/b.db", 1);
    char *p = catalog_choose_path(NULL);
    assert_string_equal(p, "/a/b.db");
    free(p);
    p = catalog_choose_path("/c.db");
    assert_string_equal(p, "/c.db");
    free(p);
    assert_null(catalog_choose_path("none"));
    setenv("HOP_CATALOG", "", 1);
    assert_null(catalog_choose_path(NULL));
    unsetenv("HOP_CATALOG");
    setenv("XDG_DATA_HOME", "/x", 1);
    p = catalog_choose_path(NULL);
    assert_string_equal(p, "/x/hop/catalog.db");
    free(p);
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", "/h", 1);
    p = catalog_choose_path(NULL);
    assert_string_equal(p, "/h/.local/share/hop/catalog.db");
    free(p);
}

struct words {
    char buf[512];
};

static void collect(const char *w, void *ctx)
{
    struct words *ws = ctx;
    strcat(ws->buf, w);
    strcat(ws->buf, " ");
}

static void test_complete_tags(void **state)
{
    BlockDev *bs = new_image(img, 1 << 20);
    Error *err = NULL;
    char alpha[] = "alpha", beta[] = "beta";
    struct blk_snapshot sn = { .name = alpha, .icount = -1 };
    assert_true(blk_snapshot_create(bs, &sn, &err));
    sn.name = beta;
    assert_true(blk_snapshot_create(bs, &sn, &err));
    struct snapshot_drive drive = { "ide0-hd0", bs };
    struct vm_session *s = session_new(
        &(struct session_config){ .drives = &drive, .ndrives = 1 }, &err);
    assert_non_null(s);
    struct words ws = { "" };
    hmp_complete(s, "loadvm al", collect, &ws);
    assert_string_equal(ws.buf, "alpha ");
    ws.buf[0] = '\0';
    hmp_complete(s, "delvm ", collect, &ws);
    assert_string_equal(ws.buf, "alpha beta ");
    /* savevm's switch, and the tags after it (to replace one). */
    ws.buf[0] = '\0';
    hmp_complete(s, "savevm -", collect, &ws);
    assert_string_equal(ws.buf, "-b ");
    ws.buf[0] = '\0';
    hmp_complete(s, "savevm -b be", collect, &ws);
    assert_string_equal(ws.buf, "beta ");
    session_free(s);
    blk_close(bs);
}

/* A state of 100000 device sections, each sent twice (their sizes are
 * summed): the catalog's summary finds a section's entry by name and
 * instance, not by a scan per record. */
static void test_summary_of_many_sections(void **state)
{
    enum { N = 100000 };
    alarm(120); /* seconds; it takes about one */
    struct buf b = { 0 };
    put_be32(&b, STREAM_MAGIC);
    put_be32(&b, STREAM_VERSION);
    char name[32];
    for (uint32_t i = 0; i < 2 * N; i++) {
        snprintf(name, sizeof(name), "d%u", i % N);
        put_u8(&b, STREAM_SECTION_FULL);
        put_be32(&b, i);
        put_str(&b, name);
        put_be32(&b, 0);
        put_be32(&b, 1);
        put_u8(&b, 0x42); /* a body of one byte */
        put_u8(&b, STREAM_SECTION_FOOTER);
        put_be32(&b, i);
    }
    put_u8(&b, STREAM_EOF);
    struct state_summary sum;
    Error *err = NULL;
    if (!state_summary_read(b.d, b.len, 0, &sum, &err)) {
        fail_msg("%s", error_get_pretty(err));
    }
    assert_int_equal(sum.nsections, N);
    assert_string_equal(sum.sections[777].idstr, "d777");
    /* type, id, name, instance, version, body, footer; twice */
    assert_int_equal(sum.sections[777].size,
                     2 * (1 + 4 + 1 + 4 + 4 + 4 + 1 + 5));
    state_summary_free(&sum);
    free(b.d);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_save_load_roundtrip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_load_refuses_bad_header_before_revert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog_private, setup, teardown),
        cmocka_unit_test(test_catalog_path),
        cmocka_unit_test(test_summary_of_many_sections),
        cmocka_unit_test_setup_teardown(test_complete_tags, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
