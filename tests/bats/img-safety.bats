#!/usr/bin/env bats
# Images that must come through hostile input and concurrent users
# unharmed: crafted snapshot tables, two writers at once, a running
# machine's (or QEMU's) image, convert onto itself, create over an
# existing file, and a guest writing an image header into a probed raw
# disk.  Judged by qemu-img and by comparing bytes.

load helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    TFW="$HOP_BUILD_DIR/tests/firmware"
    cd "$D"
    QEMU_PID=
}

teardown() {
    hop_stop_all
    if [ -n "$QEMU_PID" ]; then
        kill "$QEMU_PID" 2>/dev/null || true
    fi
}

# set_extra IMAGE TAG OFFSET VALUE: overwrite the 64-bit field at OFFSET
# of snapshot TAG's extra data (0 vm_state_size, 8 disk_size), as a
# hostile file would.
set_extra() {
    /usr/bin/python3 - "$@" <<'EOF'
import struct, sys
path, tag = sys.argv[1], sys.argv[2].encode()
field, value = int(sys.argv[3]), int(sys.argv[4])
with open(path, "r+b") as f:
    h = f.read(72)
    nb, off = struct.unpack(">IQ", h[60:72])
    for _ in range(nb):
        f.seek(off)
        e = f.read(40)
        id_len, name_len = struct.unpack(">HH", e[12:16])
        extra = struct.unpack(">I", e[36:40])[0]
        f.seek(off + 40 + extra + id_len)
        if f.read(name_len) == tag:
            assert extra >= field + 8
            f.seek(off + 40 + field)
            f.write(struct.pack(">Q", value))
            sys.exit(0)
        off += (40 + extra + id_len + name_len + 7) & ~7
sys.exit("no snapshot " + sys.argv[2])
EOF
}

image_clean() {
    run qemu-img check -U "$1"
    assert_success
    assert_output --partial "No errors were found"
}

# ---- crafted snapshot tables ----

@test "snapshot -a of a snapshot with disk_size 2^63: one-line error, image untouched" {
    "$HOP" img create d.qcow2 1M >/dev/null
    "$HOP" img snapshot -c s d.qcow2
    set_extra d.qcow2 s 8 9223372036854775808
    cp d.qcow2 orig.qcow2
    run "$HOP" img snapshot -a s d.qcow2
    assert_failure 1
    assert_output "hop: 'd.qcow2': cannot revert to snapshot '1' ('s'): disk_size 9223372036854775808 is more than its L1 table of 1 entries addresses (536870912 bytes)"
    run "$HOP" img snapshot -a 1 d.qcow2
    assert_failure 1
    assert_output --partial "disk_size 9223372036854775808"
    cmp d.qcow2 orig.qcow2
    image_clean d.qcow2
    # Listed, with a warning naming the field; never converted.
    run "$HOP" img snapshot -l d.qcow2
    assert_success
    assert_line --regexp '^1 +s +'
    assert_line --partial "warning: 'd.qcow2': cannot use snapshot '1' ('s'): disk_size"
    run "$HOP" img convert -l s d.qcow2 out.raw
    assert_failure 1
    assert_output --partial "cannot use snapshot '1' ('s'): disk_size"
    [ ! -e out.raw ]
    cmp d.qcow2 orig.qcow2
    # It can still be deleted, and the image is whole afterwards.
    "$HOP" img snapshot -d s d.qcow2
    image_clean d.qcow2
}

@test "loadvm, -loadvm and QMP snapshot-load of a snapshot with disk_size 2^63 are refused, image untouched" {
    "$HOP" img create d.qcow2 1M >/dev/null
    hop_start vm -m 16M -S -drive "file=$D/d.qcow2"
    run hop_mon vm "savevm s" quit
    refute_output --partial Error
    wait_for "! kill -0 $(hop_pid vm) 2>/dev/null" 20
    set_extra d.qcow2 s 8 9223372036854775808
    cp d.qcow2 orig.qcow2

    hop_start vm2 -m 16M -S -drive "file=$D/d.qcow2" \
        -qmp "unix:$D/q.sock,server,nowait"
    run hop_mon vm2 "loadvm s" "info status"
    assert_line --regexp "^Error: .*'$D/d.qcow2': cannot read snapshot '1' \('s'\): disk_size 9223372036854775808 is more than its L1 table"
    assert_line --regexp "^VM status: paused"
    wait_for "[ -S '$D/q.sock' ]" 10
    # QMP's snapshot-load job, through hop snapshot load.
    run timeout 60 "$HOP" snapshot load s --monitor "unix:$D/q.sock"
    assert_failure 1
    assert_output --partial "disk_size 9223372036854775808"
    run hop_mon vm2 "info status"
    assert_line --regexp "^VM status: paused"
    hop_mon vm2 quit
    wait_for "! kill -0 $(hop_pid vm2) 2>/dev/null" 20
    cmp d.qcow2 orig.qcow2

    run timeout 60 "$HOP" run -m 16M -S -loadvm s -drive "file=$D/d.qcow2" \
        -monitor none -serial none
    assert_failure 1
    assert_output --partial "-loadvm s: "
    assert_output --partial "disk_size 9223372036854775808"
    cmp d.qcow2 orig.qcow2
    image_clean d.qcow2
}

@test "a snapshot whose vm_state_size is larger than the file: no buffer sized by it" {
    "$HOP" img create d.qcow2 1M >/dev/null
    "$HOP" img snapshot -c s d.qcow2
    set_extra d.qcow2 s 0 1099511627776
    cp d.qcow2 orig.qcow2
    for cmd in "snapshot show d.qcow2 s" "inspect d.qcow2@s"; do
        # shellcheck disable=SC2086
        run "$HOP" $cmd
        assert_failure 1
        assert_output --partial "snapshot '1' ('s'): vm_state_size 1099511627776 is more than the image file holds"
        [ "${#lines[@]}" -eq 1 ] || fail "not one line: $output"
    done
    cmp d.qcow2 orig.qcow2
}

# ---- locks ----

@test "two hop img snapshot -c at once: never one lost with exit 0" {
    for i in $(seq 1 12); do
        rm -f c.qcow2
        "$HOP" img create c.qcow2 1M >/dev/null
        "$HOP" img snapshot -c a c.qcow2 2>a.err &
        local p1=$!
        "$HOP" img snapshot -c b c.qcow2 2>b.err &
        local p2=$!
        local r1=0 r2=0
        wait "$p1" || r1=$?
        wait "$p2" || r2=$?
        local tags
        tags=$(qemu-img snapshot -l c.qcow2 | awk 'NR > 2 { print $2 }' | sort | tr '\n' ' ')
        [ "$r1" -ne 0 ] || [[ $tags == *"a "* ]] || fail "round $i: a exited 0 but is missing ($tags)"
        [ "$r2" -ne 0 ] || [[ $tags == *"b "* ]] || fail "round $i: b exited 0 but is missing ($tags)"
        [ "$r1" -eq 0 ] || grep -q "is in use by another process" a.err || fail "round $i: $(cat a.err)"
        [ "$r2" -eq 0 ] || grep -q "is in use by another process" b.err || fail "round $i: $(cat b.err)"
        [ "$r1" -eq 0 ] || [ "$r2" -eq 0 ] || fail "round $i: both refused"
        image_clean c.qcow2
    done
}

@test "a running machine holds its drive: offline writers and plain readers are refused, -U reads" {
    "$HOP" img create d.qcow2 1M >/dev/null
    hop_start vm -m 16M -S -drive "file=$D/d.qcow2"
    cp d.qcow2 before.qcow2
    run "$HOP" img snapshot -c x d.qcow2
    assert_failure 1
    assert_output --regexp "^hop: image 'd.qcow2' is in use by another process \(locked for writing( by pid $(hop_pid vm))?\)$"
    run "$HOP" img snapshot -a x d.qcow2
    assert_failure 1
    run "$HOP" img create d.qcow2 2M
    assert_failure 1
    assert_output --partial "is in use by another process"
    cmp d.qcow2 before.qcow2
    run "$HOP" img info d.qcow2
    assert_failure 1
    assert_output --partial "(locked for writing"
    run "$HOP" img check d.qcow2
    assert_failure 1
    run "$HOP" img info -U d.qcow2
    assert_success
    assert_line "file format: qcow2"
    run "$HOP" img check --force-share d.qcow2
    assert_success
    run "$HOP" img snapshot -U -l d.qcow2
    assert_success
    run "$HOP" img snapshot -U -c x d.qcow2
    assert_failure 2
    # QEMU's tools see hop's lock, as they see QEMU's.
    run qemu-img info d.qcow2
    assert_failure
    assert_output --partial 'Failed to get shared "write" lock'
    run qemu-img info -U d.qcow2
    assert_success
    # A second machine on the same drive is refused.
    run timeout 30 "$HOP" run -m 16M -S -drive "file=$D/d.qcow2" -monitor none -serial none
    assert_failure 1
    assert_output --partial "-drive file=$D/d.qcow2: image '$D/d.qcow2' is in use by another process (locked for writing"
    hop_mon vm quit
    wait_for "! kill -0 $(hop_pid vm) 2>/dev/null" 20
    run qemu-img snapshot -l d.qcow2
    refute_output --partial " x "
    "$HOP" img snapshot -c x d.qcow2
    image_clean d.qcow2
}

@test "a running machine's image: inspect and snapshot list|show read it with -U only; catalog sync skips it" {
    "$HOP" img create d.qcow2 1M >/dev/null
    "$HOP" img create e.qcow2 1M >/dev/null
    hop_start vm -m 16M -S -drive "file=$D/d.qcow2"
    hop_mon vm "savevm s0" >/dev/null
    local lock="image 'd.qcow2' is in use by another process (locked for writing"
    run "$HOP" inspect d.qcow2
    assert_failure 1
    assert_output --partial "hop inspect: d.qcow2: $lock"
    run "$HOP" inspect d.qcow2@s0
    assert_failure 1
    assert_output --partial "$lock"
    run "$HOP" snapshot list d.qcow2
    assert_failure 1
    assert_output --partial "$lock"
    run "$HOP" snapshot show d.qcow2 s0
    assert_failure 1
    assert_output --partial "$lock"
    run "$HOP" inspect -U d.qcow2
    assert_success
    assert_line "d.qcow2: qcow2 image, 1 snapshot (inspect one with IMAGE@TAG)"
    run "$HOP" inspect --force-share --verify d.qcow2@s0
    assert_success
    assert_output --partial "d.qcow2@s0: ok: stream complete"
    run "$HOP" snapshot list -U d.qcow2
    assert_success
    assert_output --regexp $'\n1 +s0 +'
    run "$HOP" snapshot show --force-share --json d.qcow2 s0
    assert_success
    assert_output --partial '"name": "s0"'
    # Only a reader may share the image with its writer.
    run "$HOP" snapshot delete -U d.qcow2 s0
    assert_failure 2
    # A sync of several images skips the one in use, with a note; the
    # machine keeps its own entries (savevm noted s0).
    run "$HOP" catalog sync d.qcow2 e.qcow2
    assert_success
    assert_line "d.qcow2: skipped: in use by a running writer (a hop machine keeps its own catalog entries)"
    assert_line "e.qcow2: 0 snapshots"
    run "$HOP" catalog query "SELECT s.name FROM snapshots s JOIN images i ON s.image_id = i.id WHERE i.path = '$D/d.qcow2'"
    assert_output "s0"
    # Any other failure still fails the sync.
    printf 'QFI\373garbage' >bad.qcow2
    run "$HOP" catalog sync d.qcow2 bad.qcow2
    assert_failure 1
    assert_line --partial "d.qcow2: skipped"
    hop_mon vm quit
    wait_for "! kill -0 $(hop_pid vm) 2>/dev/null" 20
    run "$HOP" catalog sync d.qcow2
    assert_success
    assert_output "d.qcow2: 1 snapshot"
}

@test "an image QEMU holds: hop refuses to write it or run on it" {
    need_qemu_system
    "$HOP" img create q.qcow2 1M >/dev/null
    # (teardown kills it.)
    qemu-system-x86_64 -S -display none -nodefaults -monitor none \
        -drive file=q.qcow2,format=qcow2,if=ide &
    QEMU_PID=$!
    # Its claim on byte 201 ("no one else writes") shows in /proc/locks;
    # polling with a reader could make QEMU itself refuse the image.
    local ino
    ino=$(stat -c %i q.qcow2)
    wait_for "grep -q ':$ino 201 ' /proc/locks" 60 || fail "QEMU holds no lock"
    cp q.qcow2 before.qcow2
    run "$HOP" img snapshot -c x q.qcow2
    assert_failure 1
    assert_output --regexp "^hop: image 'q.qcow2' is in use by another process \(locked for writing( by pid $QEMU_PID)?\)$"
    run "$HOP" img info q.qcow2
    assert_failure 1
    assert_output --partial "is in use by another process"
    run "$HOP" img info -U q.qcow2
    assert_success
    run timeout 30 "$HOP" run -m 16M -S -drive "file=$D/q.qcow2" -monitor none -serial none
    assert_failure 1
    assert_output --partial "is in use by another process"
    cmp q.qcow2 before.qcow2
    kill "$QEMU_PID"
    wait "$QEMU_PID" || true
    QEMU_PID=
    run "$HOP" img snapshot -c x q.qcow2
    assert_success
}

# ---- convert and create never clobber ----

@test "convert onto its own source is refused, also through links; the source is unchanged" {
    head -c 65536 /dev/urandom >x.raw
    "$HOP" img convert -f raw -O qcow2 x.raw x.qcow2
    cp x.qcow2 x0.qcow2
    ln -s x.qcow2 sym.qcow2
    ln x.qcow2 hard.qcow2
    for t in x.qcow2 sym.qcow2 hard.qcow2 ./x.qcow2; do
        for opts in "-O qcow2" "" "-n"; do
            # shellcheck disable=SC2086
            run "$HOP" img convert $opts x.qcow2 "$t"
            assert_failure 1
            assert_output "hop: convert: 'x.qcow2' and '$t' are the same file; refusing to overwrite the source"
        done
    done
    cmp x.qcow2 x0.qcow2
    image_clean x.qcow2
}

@test "create with a bad option or size leaves an existing file as it was" {
    printf 'precious' >keep.img
    cp keep.img keep.orig
    "$HOP" img create q.qcow2 1M >/dev/null
    cp q.qcow2 q.orig
    local -a cases=(
        "-o cluster_size=3000 keep.img 1M"
        "-o colour=blue keep.img 1M"
        "-f raw -o cluster_size=4K keep.img 1M"
        "keep.img 100000T"
        "-o cluster_size=512 keep.img 1T"
        "-o cluster_size=3000 q.qcow2 1M"
        "q.qcow2 100000T"
    )
    for c in "${cases[@]}"; do
        # shellcheck disable=SC2086
        run "$HOP" img create $c
        assert_failure 1
        [ "${#lines[@]}" -eq 1 ] || fail "not one line for '$c': $output"
    done
    cmp keep.img keep.orig
    cmp q.qcow2 q.orig
    # A file the failed command would have made is not left behind.
    run "$HOP" img create -o cluster_size=3000 new.qcow2 1M
    assert_failure 1
    [ ! -e new.qcow2 ]
}

# ---- probed raw drives ----

# magic_guest DRIVE-OPTIONS NAME: runs the diskmagic test kernel (it writes
# the qcow2 magic into sector 0) until it reports the ATA status it got;
# the status is then in $magic_status.
magic_guest() {
    [ -f "$TFW/diskmagic.bin" ] || fail "missing $TFW/diskmagic.bin (make firmware)"
    hop_start "$2" -m 4M -kernel "$TFW/diskmagic.bin" -drive "$1"
    wait_for "grep -q 'diskmagic: status' '$D/$2.serial'" 60 ||
        fail "no status from the guest"
    hop_mon "$2" quit >/dev/null
    wait_for "! kill -0 $(hop_pid "$2") 2>/dev/null" 20
    magic_status=$(sed -n 's/^diskmagic: status //p' "$D/$2.serial")
}

@test "a guest cannot turn a probed raw disk into qcow2; with format=raw it may" {
    qemu-img create -f raw r.img 64K >/dev/null
    magic_guest "file=$D/r.img" probed
    [ "$magic_status" = 41 ] || fail "status $magic_status, not 41 (refused)"
    run cat "$D/probed.err"
    assert_line "hop: warning: -drive file=$D/r.img: no format= given, probed as raw; guest writes that would make sector 0 look like another format are refused (give format=raw to lift this)"
    assert_output --partial "write to sector 0 refused"
    cmp r.img <(head -c 65536 /dev/zero)
    run "$HOP" img info r.img
    assert_line "file format: raw"

    magic_guest "file=$D/r.img,format=raw" explicit
    [ "$magic_status" = 50 ] || fail "status $magic_status, not 50 (written)"
    run grep -c warning "$D/explicit.err"
    assert_output 0
    [ "$(head -c 4 r.img | od -An -tx1 | tr -d ' ')" = 514649fb ]
}
