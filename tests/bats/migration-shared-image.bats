#!/usr/bin/env bats
# Live migration between two hop processes naming the same image, as on
# one host or shared storage: the destination waits with its drive
# inactive (no locks), the source lets go at the switch, the destination
# takes the image when the stream has loaded.  A failed migration gives
# the image back to the source; a source that migrated gets it back with
# cont only once the destination is gone.  Judged by the locks QEMU's
# tools see and by qemu-img check.

load helper
load mig-helper

setup() {
    mig_setup
    "$HOP" img create -f qcow2 "$D/d.qcow2" 16M >/dev/null
    qemu-io -c 'write -P 0x5a 0 64k' "$D/d.qcow2" >/dev/null
}

teardown() {
    hop_stop_all
}

# gone NAME: the machine has exited.
gone() {
    wait_for "! kill -0 $(hop_pid "$1") 2>/dev/null" 30
}

# holds_write_lock: QEMU's tools see a writer on d.qcow2.
holds_write_lock() {
    run qemu-img info "$D/d.qcow2"
    assert_failure
    assert_output --partial 'Failed to get shared "write" lock'
}

image_clean() {
    run qemu-img check "$D/d.qcow2"
    assert_success
    assert_output --partial "No errors were found"
}

# lock_error NAME: the refusal naming the image and the machine holding it.
lock_error() {
    echo "^Error: image '$D/d.qcow2' is in use by another process \(locked for writing( by pid $(hop_pid "$1"))?\)$"
}

@test "same qcow2 image on both ends: it moves, the destination writes it, the source gets it back once the destination is gone" {
    hop_start src -m 32M -drive "file=$D/d.qcow2" \
        -qmp "unix:$D/src.qmp,server,nowait"
    hop_start dst -m 32M -S -drive "file=$D/d.qcow2" \
        -incoming "unix:$D/mig.sock"
    wait_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/mig.sock" "info migrate" "info status"
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
    compare_machines src dst 32M
    # The destination holds the image and writes it.
    holds_write_lock
    run hop_mon dst "savevm x" "info snapshots"
    refute_output --partial "Error"
    assert_output --regexp $'\n--  +x  +'
    run qemu-img check -U "$D/d.qcow2"
    assert_success
    assert_output --partial "No errors were found"
    # The source may not take it back while the destination lives.
    run hop_mon src "cont" "info status" "savevm y"
    assert_line --index 0 --regexp "$(lock_error dst)"
    assert_line --index 1 "VM status: paused (postmigrate)"
    assert_line --index 2 --partial "drive 'ide0-hd0' ($D/d.qcow2) is inactive"
    run timeout 60 "$PY" "$QMP_PY" "$D/src.qmp" cont query-status
    assert_line --index 2 --regexp '^\{"error": \{"class": "GenericError", "desc": "image .* is in use by another process \(locked for writing'
    assert_line --index 3 --partial '"status": "postmigrate"'
    hop_mon dst quit >/dev/null
    gone dst
    # Now it may; what the destination wrote is read afresh.
    run hop_mon src "cont" "info status" "info snapshots"
    refute_output --partial "Error"
    assert_line --index 0 "VM status: running"
    assert_output --regexp $'\n--  +x  +'
    serial_grows src
    holds_write_lock
    run hop_mon src "savevm y" quit
    refute_output --partial "Error"
    gone src
    image_clean
    run qemu-img snapshot -l "$D/d.qcow2"
    assert_output --regexp $'\n1 +x +'
    assert_output --regexp $'\n2 +y +'
}

@test "same image, -incoming defer then migrate_incoming: the destination takes it when the load is through" {
    hop_start src -m 32M -drive "file=$D/d.qcow2"
    hop_start dst -m 32M -S -drive "file=$D/d.qcow2,if=none" -incoming defer
    # Waiting, it holds nothing: the source still does.
    run hop_mon dst "savevm early"
    assert_output --partial "is waiting for an incoming migration"
    run hop_mon dst "delvm early"
    assert_output --partial "drive 'none0' ($D/d.qcow2) is inactive"
    hop_mon dst "migrate_incoming unix:$D/mig.sock" >/dev/null
    wait_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/mig.sock" "info migrate"
    assert_line "Migration status: completed"
    wait_for "hop_mon dst 'info status' | grep -qx 'VM status: paused'" 30
    run hop_mon src "cont"
    assert_output --regexp "$(lock_error dst)"
    run hop_mon dst "savevm x" "cont" "info status"
    refute_output --partial "Error"
    assert_line "VM status: running"
    hop_mon dst quit >/dev/null
    gone dst
    image_clean
}

@test "a destination that cannot take its image fails the incoming migration and exits 1; the source takes its own back" {
    # Another machine holds the destination's image: waiting inactive
    # beside it is fine, taking it over is not.
    hop_start holder -m 16M -S -drive "file=$D/d.qcow2"
    cp "$D/d.qcow2" "$D/s.qcow2"
    qemu-img snapshot -c mark "$D/s.qcow2"
    hop_start src -m 32M -drive "file=$D/s.qcow2"
    hop_start dst -m 32M -S -drive "file=$D/d.qcow2" \
        -incoming "unix:$D/mig.sock"
    wait_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/mig.sock" "info migrate"
    assert_line "Migration status: completed"
    gone dst
    run wait "$(hop_pid dst)"
    assert_failure 1
    run cat "$D/dst.err"
    assert_output --regexp "^hop: incoming migration failed: image '$D/d.qcow2' is in use by another process \(locked for writing( by pid $(hop_pid holder))?\)$"
    # The source's own image is free again: cont takes it back.
    run hop_mon src "cont" "info status" "info snapshots"
    refute_output --partial "Error"
    assert_line --index 0 "VM status: running"
    assert_output --regexp $'\n--  +mark  +'
}

# A migration that fails once the source has stopped for the switch, before
# and after it let go of its drives.
@test "a migration failing at the switch leaves the source running, holding its image; the next one works" {
    local point tag
    for point in migration-switchover migration-inactivated; do
        tag=after-${point#migration-}
        HOP_FAULT=$point:fail hop_start src -m 32M -drive "file=$D/d.qcow2"
        hop_start dst -m 32M -S -drive "file=$D/d.qcow2" \
            -incoming "unix:$D/mig.sock"
        wait_filled src
        run hop_mon src "migrate_set_parameter max-bandwidth 0" \
            "migrate unix:$D/mig.sock" "info migrate" "info status"
        assert_line "Migration status: failed (injected fault at $point)"
        assert_line "VM status: running"
        grep -q "HOP_FAULT: failing at $point" "$D/src.err"
        # The destination's load failed: it exits without touching the image.
        gone dst
        run wait "$(hop_pid dst)"
        assert_failure 1
        serial_grows src
        holds_write_lock
        run hop_mon src "savevm $tag"
        refute_output --partial "Error"
        # The same source moves on the next try.
        hop_start dst2 -m 32M -S -drive "file=$D/d.qcow2" \
            -incoming "unix:$D/mig2.sock"
        run hop_mon src "migrate unix:$D/mig2.sock" "info migrate"
        assert_line "Migration status: completed"
        wait_for "hop_mon dst2 'info status' | grep -qx 'VM status: paused'" 30
        holds_write_lock
        run hop_mon dst2 "info snapshots" "quit"
        assert_output --regexp $'\n--  +'"$tag"' +[0-9]'
        gone dst2
        hop_mon src quit >/dev/null
        gone src
        image_clean
        hop_stop_all
        rm -f "$D"/*.mon "$D"/*.sock "$D"/*.serial
    done
}
