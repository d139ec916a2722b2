#!/usr/bin/env bats
# Images that must come through hostile input unharmed: crafted snapshot
# tables, and create over an existing file.  Judged by qemu-img and by
# comparing bytes.

load helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    cd "$D"
}

teardown() {
    hop_stop_all
}

# set_disk_size IMAGE TAG VALUE: overwrite the disk_size field (extra data
# bytes 8..15) of snapshot TAG's table entry, as a hostile file would.
set_disk_size() {
    /usr/bin/python3 - "$@" <<'EOF'
import struct, sys
path, tag, value = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
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
            assert extra >= 16
            f.seek(off + 48)
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
    set_disk_size d.qcow2 s 9223372036854775808
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
    set_disk_size d.qcow2 s 9223372036854775808
    cp d.qcow2 orig.qcow2

    hop_start vm2 -m 16M -S -drive "file=$D/d.qcow2" \
        -qmp "unix:$D/q.sock,server,nowait"
    run hop_mon vm2 "loadvm s" "info status"
    assert_line --regexp "^Error: .*'$D/d.qcow2': cannot read snapshot '1' \('s'\): disk_size 9223372036854775808 is more than its L1 table"
    assert_line --regexp "^VM status: paused"
    wait_for "[ -S '$D/q.sock' ]" 10
    run timeout 60 python3 "$HOP_SRC/tests/tools/qmp.py" "$D/q.sock" \
        '{"execute":"snapshot-load","arguments":{"job-id":"k","tag":"s","vmstate":"ide0-hd0","devices":["ide0-hd0"]}}'
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

# ---- create never clobbers ----

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
