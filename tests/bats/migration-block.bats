#!/usr/bin/env bats
# Block migration (migrate -b, QMP blk, capability block): the drives are
# copied to the destination's own, empty images while the guest runs and
# writes.  Judged by qemu-img compare (the copy), qemu-img check (both
# images sound), the diskloop guest (it writes all the time) and, on a
# failure or cancel, by the source image's checksum and a guest that
# keeps running.

load helper
load mig-helper

setup() {
    mig_setup
    TFW="$HOP_BUILD_DIR/tests/firmware"
    LOOP="$TFW/diskloop.bin"
    [ -f "$LOOP" ] || fail "missing $LOOP (make firmware)"
}

teardown() {
    hop_stop_all
}

# pass NAME: the last pass the diskloop guest finished (0: none yet).
pass() {
    local p
    p=$(sed -n 's/^diskloop: pass \([0-9]*\)$/\1/p' "$D/$1.serial" | tail -1)
    echo "${p:-0}"
}

# image_clean FILE: qemu-img check finds nothing wrong.
image_clean() {
    run qemu-img check -U "$1"
    assert_success
    assert_output --partial "No errors were found"
}

# refused_by_destination PATTERN: the destination's load failed with one
# line matching PATTERN, it exited 1, and the source runs on with its
# migration failed.
refused_by_destination() {
    wait_for "! kill -0 $(hop_pid dst) 2>/dev/null" 60
    run wait "$(hop_pid dst)"
    assert_failure 1
    run cat "$D/dst.err"
    assert_line --regexp "^hop: incoming migration failed: section 'block' instance 0: $1\$"
    wait_mig src failed 60
    run hop_mon src "info status"
    assert_output "VM status: running"
    serial_grows src
}

# qmp_migrate_disk blk|inc: migrates src to dst (unix:$D/mig.sock) over
# src's QMP socket with that flag, waits for completion, prints the last
# query-migrate reply.
qmp_migrate_disk() {
    wait_for "[ -S '$D/src.qmp' ]" 10
    local out
    out=$(timeout 60 "$PY" "$QMP_PY" "$D/src.qmp" \
        '{"execute": "migrate", "arguments": {"uri": "unix:'"$D"'/mig.sock", "'"$1"'": true}}')
    grep -qx '{"return": {}}' <<<"$out" || fail "migrate: $out"
    wait_mig src completed 60
    timeout 60 "$PY" "$QMP_PY" "$D/src.qmp" query-migrate | tail -1
}

@test "migrate -b: the drive is copied while the guest writes it; qemu-img compare finds the images identical" {
    qemu-img create -f qcow2 "$D/src.qcow2" 16M >/dev/null
    qemu-img create -f qcow2 "$D/dst.qcow2" 16M >/dev/null
    hop_start src -m 16M -kernel "$LOOP" -drive "file=$D/src.qcow2"
    hop_start dst -m 16M -S -kernel "$LOOP" -drive "file=$D/dst.qcow2" \
        -incoming "unix:$D/mig.sock"
    wait_for "[ \$(pass src) -ge 1 ]" 120
    # 16 MiB at 32 MiB/s: half a second of copying while the guest writes.
    # The guest rewrites 4 MiB of its disk without pause; on a loaded host
    # a 300 ms downtime limit may never be met (1 run in 3 here ran into
    # hop_mon's 300 s), and this test is about the copy, not convergence.
    run hop_mon src "migrate_set_parameter max-bandwidth 32M" \
        "migrate_set_parameter downtime-limit 5000" \
        "migrate -b unix:$D/mig.sock" "info migrate" "info status"
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
    assert_line "total disk: 16384 kbytes"
    assert_line "remaining disk: 0 kbytes"
    # The guest wrote chunks already sent, and they went again: more than
    # the drive and the last MiB sent first (17408 kbytes).
    local sent
    sent=$(output_field 'transferred disk')
    [ "${sent:-0}" -gt 17408 ] ||
        fail "transferred disk: ${sent:-none} kbytes: nothing was sent again"
    wait_for "hop_mon dst 'info status' | grep -qx 'VM status: paused'" 60
    # The oracle: QEMU's own tools, on both images as the switch left them.
    run qemu-img compare -U "$D/src.qcow2" "$D/dst.qcow2"
    assert_success
    assert_output "Images are identical."
    image_clean "$D/src.qcow2"
    image_clean "$D/dst.qcow2"
    # Not two empty images: the guest's data is there.
    run qemu-img map -U --output=json "$D/dst.qcow2"
    assert_output --partial '"data": true'
    # The destination runs the guest on, writing its own image.
    run hop_mon dst "cont" "info status"
    assert_line "VM status: running"
    serial_grows dst
}

@test "QMP migrate with blk: query-migrate has QEMU's disk object; the images end identical" {
    qemu-img create -f qcow2 "$D/src.qcow2" 4M >/dev/null
    qemu-io -f qcow2 -c 'write -P 0x5a 0 64k' -c 'write -P 0xa5 3M 512' \
        "$D/src.qcow2" >/dev/null
    qemu-img create -f raw "$D/dst.img" 4M >/dev/null
    hop_start src -m 16M -drive "file=$D/src.qcow2" \
        -qmp "unix:$D/src.qmp,server,nowait"
    hop_start dst -m 16M -S -drive "file=$D/dst.img,format=raw" \
        -incoming "unix:$D/mig.sock"
    local reply
    reply=$(qmp_migrate_disk blk)
    run "$PY" - "$reply" <<'PY'
import json, sys
r = json.loads(sys.argv[1])["return"]
d = r["disk"]
ok = (r["status"] == "completed" and d["total"] == 4 << 20 and
      d["remaining"] == 0 and d["transferred"] >= 4 << 20 and
      set(d) == set(r["ram"]))
print(d)
sys.exit(0 if ok else 1)
PY
    assert_success
    wait_for "hop_mon dst 'info status' | grep -qx 'VM status: paused'" 60
    run qemu-img compare -U "$D/src.qcow2" "$D/dst.img"
    assert_success
    assert_output "Images are identical."
    # A migration without blk afterwards leaves the disk out again.
    run hop_mon src "info migrate_capabilities"
    assert_line "block: off"
}

@test "migrate_cancel during a block migration: the source image is untouched and the guest runs on" {
    qemu-img create -f qcow2 "$D/src.qcow2" 16M >/dev/null
    qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -P 0x33 15M 1M' \
        "$D/src.qcow2" >/dev/null
    qemu-img create -f qcow2 "$D/dst.qcow2" 16M >/dev/null
    local sum
    sum=$(sha256sum <"$D/src.qcow2")
    hop_start src -m 16M -drive "file=$D/src.qcow2"
    hop_start dst -m 16M -S -drive "file=$D/dst.qcow2" \
        -incoming "unix:$D/mig.sock"
    wait_filled src
    # 1 MiB/s: the copy takes many seconds, time to cancel in the middle.
    hop_mon src "migrate_set_parameter max-bandwidth 1M" \
        "migrate -b -d unix:$D/mig.sock" >/dev/null
    wait_for "[ \"\$(mig_field src 'transferred disk')\" -gt 1024 ] 2>/dev/null" 60
    run hop_mon src "migrate_cancel"
    wait_mig src cancelled 60
    run hop_mon src "info status" "info migrate"
    assert_line "VM status: running"
    assert_line "Migration status: cancelled"
    serial_grows src
    hop_mon src quit >/dev/null
    wait_for "! kill -0 $(hop_pid src) 2>/dev/null" 30
    [ "$(sha256sum <"$D/src.qcow2")" = "$sum" ] ||
        fail "the source image changed"
    image_clean "$D/src.qcow2"
}

@test "max-bandwidth holds for the drive's copy: 16 MiB at 4 MiB/s take seconds, not one 1 MiB chunk per 100 ms window" {
    qemu-img create -f qcow2 "$D/src.qcow2" 16M >/dev/null
    qemu-io -c 'write -P 0x5a 0 16M' "$D/src.qcow2" >/dev/null
    qemu-img create -f qcow2 "$D/dst.qcow2" 16M >/dev/null
    # Paused: nothing is written again, the copy is 17 MiB (the last MiB
    # goes first, for the size check).
    hop_start src -m 16M -S -drive "file=$D/src.qcow2"
    hop_start dst -m 16M -S -drive "file=$D/dst.qcow2" \
        -incoming "unix:$D/mig.sock"
    run hop_mon src "migrate_set_parameter max-bandwidth 4M" \
        "migrate -b unix:$D/mig.sock" "info migrate"
    assert_line "Migration status: completed"
    assert_line "transferred disk: 17408 kbytes"
    # At 4 MiB/s all but what the 300 ms downtime limit lets go at the
    # end (1.2 MiB) takes 3.9 s; a chunk per window would be 10 MiB/s.
    local ms
    ms=$(output_field 'total time')
    [ "${ms:-0}" -ge 3500 ] ||
        fail "17 MiB at max-bandwidth 4M took ${ms:-?} ms"
    run qemu-img compare -U "$D/src.qcow2" "$D/dst.qcow2"
    assert_output "Images are identical."
}

@test "a destination image smaller than the source's is refused at once, naming drive and sector" {
    qemu-img create -f qcow2 "$D/src.qcow2" 16M >/dev/null
    qemu-io -f qcow2 -c 'write -P 0x33 16352k 32k' "$D/src.qcow2" >/dev/null
    # Half a MiB short: only the last chunk would not fit.
    qemu-img create -f qcow2 "$D/dst.qcow2" 15872K >/dev/null
    local sum
    sum=$(sha256sum <"$D/src.qcow2")
    hop_start src -m 16M -drive "file=$D/src.qcow2"
    hop_start dst -m 16M -S -drive "file=$D/dst.qcow2" \
        -incoming "unix:$D/mig.sock"
    wait_filled src
    hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate -b -d unix:$D/mig.sock" >/dev/null
    refused_by_destination "drive 'ide0-hd0': the chunk at sector 30720 holds data for sector 32704, past the end of '$D/dst.qcow2' \(31744 sectors\): the destination image is smaller than the source's"
    hop_mon src quit >/dev/null
    wait_for "! kill -0 $(hop_pid src) 2>/dev/null" 30
    [ "$(sha256sum <"$D/src.qcow2")" = "$sum" ]
}

@test "a destination image a whole MiB short fails on the first block" {
    qemu-img create -f qcow2 "$D/src.qcow2" 4M >/dev/null
    qemu-img create -f qcow2 "$D/dst.qcow2" 2M >/dev/null
    hop_start src -m 16M -drive "file=$D/src.qcow2"
    hop_start dst -m 16M -S -drive "file=$D/dst.qcow2" \
        -incoming "unix:$D/mig.sock"
    hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate -b -d unix:$D/mig.sock" >/dev/null
    refused_by_destination "drive 'ide0-hd0': sector 6144 is past the end of '$D/dst.qcow2' \(4096 sectors\): the destination image is smaller than the source's"
}

@test "a read-only destination drive is refused" {
    qemu-img create -f qcow2 "$D/src.qcow2" 4M >/dev/null
    qemu-io -f qcow2 -c 'write -P 0x5a 0 4M' "$D/src.qcow2" >/dev/null
    qemu-img create -f qcow2 "$D/dst.qcow2" 4M >/dev/null
    hop_start src -m 16M -drive "file=$D/src.qcow2"
    hop_start dst -m 16M -S -drive "file=$D/dst.qcow2,readonly=on" \
        -incoming "unix:$D/mig.sock"
    hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate -b -d unix:$D/mig.sock" >/dev/null
    refused_by_destination "drive 'ide0-hd0' \('$D/dst.qcow2'\) is read-only: block migration needs to write it"
    # Nothing was written to it.
    run qemu-img map -U --output=json "$D/dst.qcow2"
    refute_output --partial '"data": true'
}

@test "a destination without the source's drive names it" {
    qemu-img create -f qcow2 "$D/src.qcow2" 4M >/dev/null
    hop_start src -m 16M -drive "file=$D/src.qcow2"
    hop_start dst -m 16M -S -incoming "unix:$D/mig.sock"
    hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate -b -d unix:$D/mig.sock" >/dev/null
    refused_by_destination "unknown drive 'ide0-hd0' at sector 6144 \(this machine has none\)"
}

@test "migrate -i and QMP inc: a drive without a backing file is refused before anything moves, naming it" {
    qemu-img create -f qcow2 "$D/src.qcow2" 4M >/dev/null
    hop_start src -m 16M -drive "file=$D/src.qcow2" \
        -qmp "unix:$D/src.qmp,server,nowait"
    hop_start dst -m 16M -S -incoming "unix:$D/mig.sock"
    local msg="incremental block migration: drive 'ide0-hd0' ('$D/src.qcow2') has no backing file: -i copies only what lies above a backing file both ends share (use -b to copy the whole drive)"
    run hop_mon src "migrate -i unix:$D/mig.sock" "info status" "info migrate"
    assert_line "Error: $msg"
    assert_line "VM status: running"
    refute_line --partial "Migration status"
    wait_for "[ -S '$D/src.qmp' ]" 10
    run timeout 60 "$PY" "$QMP_PY" "$D/src.qmp" \
        '{"execute": "migrate", "arguments": {"uri": "unix:'"$D"'/mig.sock", "inc": true}}'
    assert_line "{\"error\": {\"class\": \"GenericError\", \"desc\": \"$msg\"}}"
    # The parameter, set for good, refuses the same way.
    run hop_mon src "migrate_set_capability block on" \
        "migrate_set_parameter block-incremental on" \
        "info migrate_parameters" "migrate unix:$D/mig.sock"
    assert_line "block-incremental: on"
    assert_line "Error: $msg"
    kill -0 "$(hop_pid dst)"
}

# over_base NAME...: qcow2 images of 16 MiB over the shared base.qcow2,
# whose every byte is 0xab.
over_base() {
    [ -f "$D/base.qcow2" ] || {
        qemu-img create -f qcow2 "$D/base.qcow2" 16M >/dev/null
        qemu-io -c 'write -P 0xab 0 16M' "$D/base.qcow2" >/dev/null
    }
    local n
    for n in "$@"; do
        qemu-img create -f qcow2 -b base.qcow2 -F qcow2 "$D/$n" >/dev/null
    done
}

# top_extents FILE: the extents allocated in FILE itself (not its backing
# file), as qemu-img map reports them.
top_extents() {
    qemu-img map -U --output=json "$1" |
        /usr/bin/python3 -c 'import json, sys
for e in json.load(sys.stdin):
    if e["depth"] == 0 and e["data"]:
        print(e["start"], e["length"])'
}

@test "migrate -i: only what the source's top image allocated is copied, while the guest writes it; the destination's top over the same base ends identical" {
    over_base src.qcow2 dst.qcow2
    qemu-io -c 'write -P 0x33 5M 1M' "$D/src.qcow2" >/dev/null
    local base_sum
    base_sum=$(sha256sum <"$D/base.qcow2")
    local WIN="$HOP_BUILD_DIR/tests/firmware/diskwin.bin"
    # diskwin rewrites sectors 2049..4096 without pause: chunks 1 and 2.
    hop_start src -m 16M -kernel "$WIN" -drive "file=$D/src.qcow2"
    hop_start dst -m 16M -S -kernel "$WIN" -drive "file=$D/dst.qcow2" \
        -incoming "unix:$D/mig.sock"
    wait_serial src "diskwin: pass 1" 120
    hop_mon src "migrate_set_parameter max-bandwidth 2M" \
        "migrate -i -d unix:$D/mig.sock" >/dev/null
    # Chunks 1, 2 and 5 of 16: the rest lies in the base.
    wait_for "[ \"\$(mig_field src 'total disk')\" = 3072 ] 2>/dev/null" 60 ||
        fail "total disk: $(mig_field src 'total disk') kbytes, not 3072"
    # The three chunks and the last MiB sent first (the size check) make
    # 4096 kbytes: past that, chunks the guest wrote went again.  Then the
    # guest stops, so that the copy converges however loaded the host.
    # (A slow guest may not have written again the moment a chunk went:
    # then nothing is dirty, the copy converges on its own, and the stop
    # finds the source paused after the migration already.)
    wait_for "[ \"\$(mig_field src 'transferred disk')\" -gt 4096 ] 2>/dev/null" 120 ||
        fail "transferred disk: $(mig_field src 'transferred disk') kbytes ($(hop_mon src 'info migrate' | grep '^Migration status')): nothing was sent again"
    hop_mon src stop >/dev/null
    wait_mig src completed 120
    run hop_mon src "info migrate" "info status"
    assert_line "VM status: paused (postmigrate)"
    assert_line "total disk: 3072 kbytes"
    assert_line "remaining disk: 0 kbytes"
    wait_for "hop_mon dst 'info status' | grep -qx 'VM status: paused'" 60
    run qemu-img compare -U "$D/src.qcow2" "$D/dst.qcow2"
    assert_success
    assert_output "Images are identical."
    image_clean "$D/src.qcow2"
    image_clean "$D/dst.qcow2"
    # The destination's image allocated what the source's did, not the
    # 1 MiB chunks around it nor the whole disk.
    [ "$(top_extents "$D/dst.qcow2")" = "$(top_extents "$D/src.qcow2")" ] ||
        fail "allocated: source $(top_extents "$D/src.qcow2" | tr '\n' ' '), destination $(top_extents "$D/dst.qcow2" | tr '\n' ' ')"
    [ "$(sha256sum <"$D/base.qcow2")" = "$base_sum" ]
    run hop_mon dst "cont" "info status"
    assert_line "VM status: running"
    serial_grows dst
}

@test "QMP migrate with inc: query-migrate's disk total is what the top image allocated" {
    over_base src.qcow2 dst.qcow2
    qemu-io -c 'write -P 0x5a 64k 4k' -c 'write -P 0xa5 9M 512' \
        "$D/src.qcow2" >/dev/null
    hop_start src -m 16M -drive "file=$D/src.qcow2" \
        -qmp "unix:$D/src.qmp,server,nowait"
    hop_start dst -m 16M -S -drive "file=$D/dst.qcow2" \
        -incoming "unix:$D/mig.sock"
    local reply
    reply=$(qmp_migrate_disk inc)
    run "$PY" - "$reply" <<'PY'
import json, sys
r = json.loads(sys.argv[1])["return"]
d = r["disk"]
print(d)
sys.exit(0 if d["total"] == 2 << 20 and d["remaining"] == 0 else 1)
PY
    assert_success
    wait_for "hop_mon dst 'info status' | grep -qx 'VM status: paused'" 60
    run qemu-img compare -U "$D/src.qcow2" "$D/dst.qcow2"
    assert_output "Images are identical."
    [ "$(top_extents "$D/dst.qcow2")" = "$(top_extents "$D/src.qcow2")" ]
}

@test "migrate_cancel during migrate -i: the source's image and the base are untouched, the guest runs on" {
    over_base src.qcow2 dst.qcow2
    qemu-io -c 'write -P 0x5a 0 4M' "$D/src.qcow2" >/dev/null
    local sum base_sum
    sum=$(sha256sum <"$D/src.qcow2")
    base_sum=$(sha256sum <"$D/base.qcow2")
    hop_start src -m 16M -drive "file=$D/src.qcow2"
    hop_start dst -m 16M -S -drive "file=$D/dst.qcow2" \
        -incoming "unix:$D/mig.sock"
    wait_filled src
    hop_mon src "migrate_set_parameter max-bandwidth 1M" \
        "migrate -i -d unix:$D/mig.sock" >/dev/null
    wait_for "[ \"\$(mig_field src 'transferred disk')\" -gt 1024 ] 2>/dev/null" 60
    run hop_mon src "info migrate"
    assert_line "total disk: 4096 kbytes"
    run hop_mon src "migrate_cancel"
    wait_mig src cancelled 60
    run hop_mon src "info status"
    assert_line "VM status: running"
    serial_grows src
    hop_mon src quit >/dev/null
    wait_for "! kill -0 $(hop_pid src) 2>/dev/null" 30
    [ "$(sha256sum <"$D/src.qcow2")" = "$sum" ] ||
        fail "the source image changed"
    [ "$(sha256sum <"$D/base.qcow2")" = "$base_sum" ] ||
        fail "the base image changed"
    image_clean "$D/src.qcow2"
}

@test "help migrate shows -b and -i" {
    hop_start src -m 16M -S
    run hop_mon src "help migrate"
    assert_output --partial "migrate [-d] [-b] [-i] [-r] uri"
    assert_output --partial "-b to copy the drives"
}
