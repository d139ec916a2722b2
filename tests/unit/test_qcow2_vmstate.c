/* The vmstate channel: machine state streamed into a qcow2 image's vmstate
 * area and back, and QEMU as the judge -- state that QEMU's savevm wrote
 * is copied by hop into an image of its own, and QEMU's loadvm must take
 * it from there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/block.h"
#include "snapshot/channel-vmstate.h"

#define FIXTURE "tests/fixtures/qemu-made/savevm.qcow2"

static char dir[64];
static char img[128];

static int setup(void **state)
{
    strcpy(dir, "/tmp/hop-qvm-XXXXXX");
    if (!mkdtemp(dir)) {
        return -1;
    }
    snprintf(img, sizeof(img), "%s/v.qcow2", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(img);
    return rmdir(dir);
}

static void test_channel_round_trip(void **state)
{
    Error *err = NULL;
    assert_true(blk_create(img, "qcow2", 8 << 20, NULL, &err));
    BlockDev *bs = blk_open(img, NULL, false, &err);
    assert_non_null(bs);
    Channel *w = chan_new_vmstate_writer(bs, &err);
    assert_non_null(w);
    size_t big = 3 << 20;
    uint8_t *page = malloc(big);
    for (size_t i = 0; i < big; i++) {
        page[i] = (uint8_t)(i * 13 + (i >> 16));
    }
    chan_put_be32(w, 0x5145564d);
    chan_put_buffer_ref(w, page, big);
    chan_put_counted_string(w, "end");
    assert_true(chan_flush(w));
    uint64_t size = chan_tell(w);
    assert_true(chan_close(w, &err));
    assert_int_equal(size, 4 + big + 4);
    struct blk_snapshot sn = { .name = (char *)"state",
                               .vm_state_size = size,
                               .vm_clock_nsec = 5000000000ULL,
                               .icount = -1 };
    assert_true(blk_snapshot_create(bs, &sn, &err));

    Channel *r = chan_new_vmstate_reader(bs, "state", &err);
    assert_non_null(r);
    uint8_t *back = malloc(big);
    assert_int_equal(chan_get_be32(r), 0x5145564d);
    assert_true(chan_get_buffer(r, back, big));
    assert_memory_equal(back, page, big);
    char s[256];
    assert_true(chan_get_counted_string(r, s));
    assert_string_equal(s, "end");
    assert_true(chan_at_eof(r));
    assert_true(chan_close(r, &err));
    blk_close(bs);
    free(page);
    free(back);
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "qemu-img snapshot -l '%s' | grep -q "
             "'^1 *state *3 MiB .* 00:00:05.000 *$'",
             img);
    assert_int_equal(system(cmd), 0);
}

static void test_raw_refuses(void **state)
{
    Error *err = NULL;
    assert_true(blk_create(img, "raw", 1 << 20, NULL, &err));
    BlockDev *bs = blk_open(img, NULL, false, &err);
    assert_non_null(bs);
    assert_null(chan_new_vmstate_writer(bs, &err));
    assert_non_null(strstr(error_get_pretty(err), "snapshots"));
    error_free(err);
    blk_close(bs);
}

/* Start QEMU on the image with -loadvm TAG; 0 when it loaded cleanly. */
static int qemu_loadvm(const char *tag)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "printf 'info status\\nquit\\n' | timeout 60 qemu-system-x86_64 "
             "-M pc -m 32M -display none -nodefaults -S "
             "-drive file='%s',format=qcow2,if=ide -loadvm %s "
             "-monitor stdio >'%s/qemu.out' 2>&1 && "
             "grep -q 'VM status' '%s/qemu.out' && "
             "! grep -qi error '%s/qemu.out'",
             img, tag, dir, dir, dir);
    int st = system(cmd);
    snprintf(cmd, sizeof(cmd), "%s/qemu.out", dir);
    unlink(cmd);
    return st;
}

static void test_qemu_loads_state_hop_stored(void **state)
{
    Error *err = NULL;
    if (system("command -v qemu-system-x86_64 >/dev/null") != 0) {
        print_message("# skip: qemu-system-x86_64 is not installed\n");
        skip();
    }
    if (access(FIXTURE, R_OK) != 0) {
        fail_msg("fixture %s is missing (tests/fixtures/make-qemu-fixtures.sh)",
                 FIXTURE);
    }
    BlockDev *src = blk_open(FIXTURE, NULL, true, &err);
    assert_non_null(src);
    struct blk_snapshot sn;
    assert_true(blk_snapshot_find(src, "vm1", &sn, &err));
    assert_true(sn.vm_state_size > 1000);
    uint8_t *state_buf = malloc(sn.vm_state_size);
    Channel *r = chan_new_vmstate_reader(src, "vm1", &err);
    assert_non_null(r);
    assert_true(chan_get_buffer(r, state_buf, sn.vm_state_size));
    assert_true(chan_at_eof(r));
    assert_true(chan_close(r, &err));
    assert_memory_equal(state_buf, "QEVM\0\0\0\3", 8);

    assert_true(blk_create(img, "qcow2", blk_size(src), NULL, &err));
    BlockDev *dst = blk_open(img, NULL, false, &err);
    assert_non_null(dst);
    Channel *w = chan_new_vmstate_writer(dst, &err);
    assert_non_null(w);
    chan_put_buffer(w, state_buf, sn.vm_state_size);
    assert_true(chan_close(w, &err));
    struct blk_snapshot mine = sn;
    mine.name = (char *)"copied";
    assert_true(blk_snapshot_create(dst, &mine, &err));
    /* The same state cut in half: QEMU must refuse it (the judge can say
     * no). */
    w = chan_new_vmstate_writer(dst, &err);
    assert_non_null(w);
    chan_put_buffer(w, state_buf, sn.vm_state_size / 2);
    assert_true(chan_close(w, &err));
    mine.name = (char *)"broken";
    mine.vm_state_size = sn.vm_state_size / 2;
    assert_true(blk_snapshot_create(dst, &mine, &err));
    blk_close(dst);
    blk_close(src);
    blk_snapshot_clear(&sn);
    free(state_buf);

    assert_int_equal(qemu_loadvm("copied"), 0);
    assert_int_not_equal(qemu_loadvm("broken"), 0);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s'", img);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_round_trip),
        cmocka_unit_test(test_raw_refuses),
        cmocka_unit_test(test_qemu_loads_state_hop_stored),
    };
    return cmocka_run_group_tests_name("qcow2 vmstate channel", tests, setup,
                                       teardown);
}
