#!/usr/bin/env bats
# savevm interrupted: hop dies at named steps (HOP_FAULT ends the
# process on the spot, as kill -9 would), or the disk fills up.  The image
# must stay free of corruption, earlier snapshots must load exactly, and
# the catalog must agree with the image after a sync.

load helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    MNT=
}

teardown() {
    hop_stop_all
    if [ -n "$MNT" ]; then
        umount "$MNT" 2>/dev/null || true
    fi
}

image_ok() {
    run qemu-img check -U "$1"
    if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
        echo "$output" >&2
        return 1
    fi
}

qemu_tags() {
    qemu-img snapshot -U -l "$1" | awk 'NR > 2 { print $2 }'
}

# An image holding snapshot s0 of a memtest guest that ran a while, and
# the guest's memory and registers at the save.
make_base() {
    "$HOP" img create "$D/base.qcow2" 4M >/dev/null
    hop_start base -m 16M -drive "file=$D/base.qcow2"
    sleep 0.3
    hop_mon base stop "pmemsave 0 16777216 \"$D/s0.ram\"" "info registers" \
        >"$D/s0.regs"
    hop_mon base "savevm s0" quit
    wait_for "! kill -0 $(hop_pid base) 2>/dev/null" 10
}

# crash_at POINT TAG: savevm TAG in a copy of the base image, dying at
# POINT; then checks the image, that s0 loads exactly, and the catalog.
crash_at() {
    local point=$1 tag=$2 img=$D/$1.qcow2
    cp "$D/base.qcow2" "$img"
    "$HOP" catalog sync "$img" >/dev/null
    HOP_FAULT=$point hop_start "c-$point" -m 16M -drive "file=$img"
    sleep 0.2
    hop_mon "c-$point" "savevm $tag" >/dev/null || true
    wait_for "! kill -0 $(hop_pid "c-$point") 2>/dev/null" 20
    grep -q "HOP_FAULT: exiting at ${point%@*} " "$D/c-$point.err"
    image_ok "$img"
    # s0 (unless it was the tag being replaced, and gone) loads exactly.
    if qemu_tags "$img" | grep -qx s0; then
        hop_start "l-$point" -m 16M -S -loadvm s0 -drive "file=$img"
        hop_mon "l-$point" "pmemsave 0 16777216 \"$D/$point.ram\"" \
            "info registers" >"$D/$point.regs"
        cmp "$D/s0.ram" "$D/$point.ram"
        diff "$D/s0.regs" "$D/$point.regs"
        hop_mon "l-$point" quit
        wait_for "! kill -0 $(hop_pid "l-$point") 2>/dev/null" 10
    fi
    # The catalog lists what the image holds once synced.
    "$HOP" catalog sync "$img" >/dev/null
    local key
    key=$(realpath "$img")
    run "$HOP" catalog query "SELECT s.name FROM snapshots s JOIN images i ON s.image_id = i.id WHERE i.path = '$key' ORDER BY CAST(s.snapshot_id AS INTEGER)"
    assert_output "$(qemu_tags "$img")"
    run sqlite3 "$HOP_CATALOG" "PRAGMA integrity_check"
    assert_output ok
}

@test "crash during savevm at each step: image clean, s0 loads exactly, catalog agrees" {
    make_base
    for point in savevm-stopped savevm-state qcow2-before-data@3 \
                 qcow2-flush-l2 savevm-state-written savevm-snapshot \
                 snapshot-tables snapshot-header savevm-durable \
                 savevm-catalog; do
        crash_at "$point" s1
    done
    # After the disk snapshots were durable, s1 is there too.
    run qemu_tags "$D/savevm-durable.qcow2"
    assert_output "$(printf 's0\ns1')"
    run qemu_tags "$D/savevm-stopped.qcow2"
    assert_output s0
}

@test "crash while replacing a tag: the image stays clean" {
    make_base
    crash_at savevm-state-written s0
    run qemu_tags "$D/savevm-state-written.qcow2"
    assert_output s0
    crash_at savevm-old-deleted s0
    run qemu_tags "$D/savevm-old-deleted.qcow2"
    assert_output ""
}

@test "a full disk during savevm: a clear error, the machine runs on" {
    MNT=$D/mnt
    mkdir "$MNT"
    if ! mount -t tmpfs -o size=8m tmpfs "$MNT" 2>"$D/mount.err"; then
        MNT=
        skip "cannot mount a small tmpfs: $(cat "$D/mount.err")"
    fi
    "$HOP" img create "$MNT/d.qcow2" 1M >/dev/null
    hop_start vm -m 32M -S -drive "file=$MNT/d.qcow2"
    hop_mon vm "pmemsave 0 33554432 \"$D/early.ram\"" "savevm early" cont
    sleep 1
    run hop_mon vm "savevm big" "info status"
    assert_output --regexp "Error: cannot write the state into .*d.qcow2: .*No space left on device"
    assert_line "VM status: running"
    image_ok "$MNT/d.qcow2"
    run qemu_tags "$MNT/d.qcow2"
    assert_output early
    hop_mon vm quit
    wait_for "! kill -0 $(hop_pid vm) 2>/dev/null" 10
    image_ok "$MNT/d.qcow2"
    # The earlier snapshot still loads exactly (from a copy on a disk with
    # room: reverting writes metadata).
    cp "$MNT/d.qcow2" "$D/copy.qcow2"
    hop_start back -m 32M -S -loadvm early -drive "file=$D/copy.qcow2"
    hop_mon back "pmemsave 0 33554432 \"$D/back.ram\""
    cmp "$D/early.ram" "$D/back.ram"
}
