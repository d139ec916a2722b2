#!/usr/bin/env bats
# hop img, judged by outside readers: qemu-img (check, info, snapshot -l,
# convert -l, compare), QEMU itself (loadvm) and libqcow (pyqcow).

load helper

FIXTURES="$BATS_TEST_DIRNAME/../fixtures/qemu-made"

setup() {
    export HOME="$BATS_TEST_TMPDIR/home" XDG_DATA_HOME="$BATS_TEST_TMPDIR/data"
    export XDG_STATE_HOME="$BATS_TEST_TMPDIR/state" XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/config"
    export HOP_CATALOG="$BATS_TEST_TMPDIR/catalog.db"
    mkdir -p "$HOME"
    cd "$BATS_TEST_TMPDIR"
    pids=()
}

teardown() {
    for p in "${pids[@]}"; do
        kill -9 -- "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null || true
    done
}

# Deterministic data: FILE SIZE_IN_KIB SEED
make_data() {
    /usr/bin/python3 - "$@" <<'EOF'
import random, sys
random.seed(int(sys.argv[3]))
with open(sys.argv[1], "wb") as f:
    f.write(random.randbytes(int(sys.argv[2]) * 1024))
EOF
}

# The disk content libqcow reads, as a raw file: IMAGE OUT
libqcow_read() {
    /usr/bin/python3 - "$@" <<'EOF'
import pyqcow, sys
f = pyqcow.file()
f.open(sys.argv[1])
size = f.get_media_size()
with open(sys.argv[2], "wb") as out:
    off = 0
    while off < size:
        n = min(1 << 20, size - off)
        out.write(f.read_buffer_at_offset(n, off))
        off += n
f.close()
EOF
}

fixture() {
    [ -f "$FIXTURES/$1" ] || fail "fixture $1 missing: run tests/fixtures/make-qemu-fixtures.sh"
    cp "$FIXTURES/$1" "$BATS_TEST_TMPDIR/$1"
}

@test "img: --help describes every subcommand" {
    run "$HOP" img --help
    assert_success
    for sub in create info check snapshot convert; do
        assert_output --partial "hop img $sub"
    done
    run "$HOP" img create --help
    assert_success
    assert_output --partial "cluster_size"
}

@test "img create: qcow2 v3, 64 KiB clusters by default, qemu-img agrees" {
    run "$HOP" img create d.qcow2 64M
    assert_success
    run qemu-img info --output=json d.qcow2
    assert_success
    assert_output --partial '"virtual-size": 67108864'
    assert_output --partial '"cluster-size": 65536'
    assert_output --partial '"compat": "1.1"'
    run qemu-img check d.qcow2
    assert_success
    assert_output --partial "No errors were found"
}

@test "img create: cluster_size option, raw format, size suffixes" {
    run "$HOP" img create -o cluster_size=4K d.qcow2 1G
    assert_success
    run qemu-img info --output=json d.qcow2
    assert_output --partial '"cluster-size": 4096'
    assert_output --partial '"virtual-size": 1073741824'
    qemu-img check -q d.qcow2
    run "$HOP" img create -f raw r.img 1.5M
    assert_success
    [ "$(stat -c %s r.img)" -eq 1572864 ]
    run "$HOP" img create -o cluster_size=2M big.qcow2 3T
    assert_success
    qemu-img check -q big.qcow2
}

@test "img create: bad input gives a one-line error and the right status" {
    run "$HOP" img create d.qcow2 12Q
    assert_failure 2
    assert_line --index 0 --partial "invalid size '12Q'"
    run "$HOP" img create -o cluster_size=3000 d.qcow2 1M
    assert_failure 1
    assert_output "hop: 'd.qcow2': cluster_size '3000' must be a power of two from 512 to 2M"
    [ ! -e d.qcow2 ]
    run "$HOP" img create -o colour=blue d.qcow2 1M
    assert_failure 1
    assert_output --partial "unknown option 'colour'"
    run "$HOP" img create -f vmdk d.img 1M
    assert_failure 2
    run "$HOP" img create d.qcow2
    assert_failure 2
    run "$HOP" img info missing.qcow2
    assert_failure 1
    assert_output --partial "cannot open 'missing.qcow2'"
    run "$HOP" img frobnicate x
    assert_failure 2
}

@test "img info: a malformed header is refused with one line naming the file" {
    "$HOP" img create d.qcow2 1M
    printf '\x00\x00\x00\x20' | dd of=d.qcow2 bs=1 seek=20 conv=notrunc status=none
    run "$HOP" img info d.qcow2
    assert_failure 1
    assert_output "hop: 'd.qcow2': cluster_bits 32 out of range (9..21)"
    "$HOP" img create e.qcow2 1M
    printf '\x00\x00\x00\x00\x00\x00\x00\x10' | dd of=e.qcow2 bs=1 seek=72 conv=notrunc status=none
    run "$HOP" img info e.qcow2
    assert_failure 1
    assert_output "hop: 'e.qcow2': extended L2 entries (subclusters) are not supported"
}

@test "img convert: data hop writes reads back the same through qemu-img and libqcow" {
    make_data data.raw 3000 1
    truncate -s 8M data.raw
    run "$HOP" img convert -O qcow2 -o cluster_size=16K data.raw d.qcow2
    assert_success
    qemu-img check -q d.qcow2
    run qemu-img compare data.raw d.qcow2
    assert_success
    libqcow_read d.qcow2 lib.raw
    cmp data.raw lib.raw
    run "$HOP" img convert d.qcow2 back.raw
    assert_success
    cmp data.raw back.raw
}

@test "img snapshot: names, sizes and dates as qemu-img lists them; contents by convert -l" {
    make_data a.raw 2048 2
    make_data b.raw 2048 3
    "$HOP" img create d.qcow2 2M
    "$HOP" img convert -n a.raw d.qcow2
    before=$(date +%s)
    run "$HOP" img snapshot -c first d.qcow2
    assert_success
    "$HOP" img convert -n b.raw d.qcow2
    run "$HOP" img snapshot -c second d.qcow2
    assert_success
    after=$(date +%s)
    qemu-img check -q d.qcow2
    # qemu-img and hop print the same table
    diff <(qemu-img snapshot -l d.qcow2) <("$HOP" img snapshot -l d.qcow2)
    run qemu-img info --output=json d.qcow2
    assert_output --partial '"name": "first"'
    assert_output --partial '"name": "second"'
    /usr/bin/python3 - "$before" "$after" <<'EOF'
import json, subprocess, sys
info = json.loads(subprocess.check_output(["qemu-img", "info", "--output=json", "d.qcow2"]))
snaps = info["snapshots"]
assert [s["name"] for s in snaps] == ["first", "second"], snaps
assert [s["id"] for s in snaps] == ["1", "2"], snaps
for s in snaps:
    assert int(sys.argv[1]) <= s["date-sec"] <= int(sys.argv[2]), s
    assert s["vm-state-size"] == 0, s
EOF
    qemu-img convert -O raw -l snapshot.name=first d.qcow2 first.raw
    cmp a.raw first.raw
    qemu-img convert -O raw -l snapshot.name=second d.qcow2 second.raw
    cmp b.raw second.raw
    "$HOP" img convert -l first d.qcow2 hop-first.raw
    cmp a.raw hop-first.raw
    libqcow_read d.qcow2 lib.raw
    cmp b.raw lib.raw
}

@test "img snapshot: apply reverts the disk, delete frees it, qemu-img check stays clean" {
    make_data a.raw 1024 4
    make_data b.raw 1024 5
    "$HOP" img create -o cluster_size=512 d.qcow2 1M
    "$HOP" img convert -n a.raw d.qcow2
    "$HOP" img snapshot -c keep d.qcow2
    "$HOP" img convert -n b.raw d.qcow2
    run "$HOP" img snapshot -a keep d.qcow2
    assert_success
    qemu-img check -q d.qcow2
    qemu-img compare -q a.raw d.qcow2
    run "$HOP" img snapshot -d keep d.qcow2
    assert_success
    run qemu-img check d.qcow2
    assert_success
    refute_output --partial "Leaked"
    run "$HOP" img snapshot -d keep d.qcow2
    assert_failure 1
    assert_output "hop: 'd.qcow2': no snapshot 'keep'"
    run "$HOP" img snapshot -a nosuch d.qcow2
    assert_failure 1
    run "$HOP" img snapshot -c x -d y d.qcow2
    assert_failure 2
    "$HOP" img create -f raw r.img 1M
    run "$HOP" img snapshot -c s r.img
    assert_failure 1
    assert_output --partial "does not support snapshots"
}

@test "img: QEMU-made images with savevm state: list, delete the middle one, QEMU still loads the rest" {
    need_qemu_system
    fixture savevm.qcow2
    diff <(qemu-img snapshot -l savevm.qcow2) <("$HOP" img snapshot -l savevm.qcow2)
    diff <(qemu-img info --output=json savevm.qcow2 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"])') \
         <("$HOP" img info --output=json savevm.qcow2 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"])')
    qemu-img convert -O raw -l snapshot.name=vm1 savevm.qcow2 vm1.raw
    qemu-img convert -O raw -l snapshot.name=vm3 savevm.qcow2 vm3.raw
    run "$HOP" img snapshot -d vm2 savevm.qcow2
    assert_success
    run qemu-img check savevm.qcow2
    assert_success
    refute_output --partial "ERROR"
    run qemu-img snapshot -l savevm.qcow2
    assert_output --partial "vm1"
    refute_output --partial "vm2"
    assert_output --partial "vm3"
    qemu-img convert -O raw -l snapshot.name=vm1 savevm.qcow2 vm1.after
    cmp vm1.raw vm1.after
    qemu-img convert -O raw -l snapshot.name=vm3 savevm.qcow2 vm3.after
    cmp vm3.raw vm3.after
    for tag in vm1 vm3; do
        run bash -c "printf 'info status\nquit\n' | timeout 60 qemu-system-x86_64 -M pc -m 32M \
            -display none -nodefaults -S -drive file=savevm.qcow2,format=qcow2,if=ide \
            -loadvm $tag -monitor stdio 2>&1"
        assert_success
        assert_output --partial "VM status"
        refute_output --partial "rror"
    done
}

@test "img: QEMU-made disk snapshots, version 2 and compressed images read as qemu-img reads them" {
    for f in disk-snapshots.qcow2 v2-small-clusters.qcow2 compressed.qcow2; do
        fixture "$f"
        qemu-img convert -O raw "$f" want.raw
        "$HOP" img convert "$f" got.raw
        cmp want.raw got.raw
        for tag in $(qemu-img snapshot -l "$f" | awk 'NR > 2 { print $2 }'); do
            qemu-img convert -O raw -l "snapshot.name=$tag" "$f" want.raw
            "$HOP" img convert -l "$tag" "$f" got.raw
            cmp want.raw got.raw
        done
        run "$HOP" img check "$f"
        assert_success
    done
    run qemu-img info --output=json compressed.qcow2
    run "$HOP" img check --output=json compressed.qcow2
    assert_success
    assert_output --partial '"compressed-clusters": '
    refute_output --partial '"compressed-clusters": 0'
    # writing over compressed and snapshot-shared clusters
    make_data new.raw 2048 6
    "$HOP" img convert -n new.raw compressed.qcow2
    qemu-img check -q compressed.qcow2
    qemu-img compare -q new.raw compressed.qcow2
    "$HOP" img snapshot -d second disk-snapshots.qcow2
    "$HOP" img snapshot -d first disk-snapshots.qcow2
    run qemu-img check disk-snapshots.qcow2
    assert_success
    refute_output --partial "Leaked"
}

@test "img check: exit 3 for leaks and 2 for corruption, as qemu-img check" {
    make_data a.raw 1024 7
    "$HOP" img create d.qcow2 1M
    # stopped after the refcounts but before the tables that use them
    run env HOP_FAULT=qcow2-flush-l2 "$HOP" img convert -n a.raw d.qcow2
    assert_failure 99
    run qemu-img check d.qcow2
    assert_failure 3
    run "$HOP" img check d.qcow2
    assert_failure 3
    assert_output --partial "leaked clusters were found"
    run "$HOP" img check --output=json d.qcow2
    assert_failure 3
    assert_output --partial '"leaks": '
    # a refcount of a used cluster (the L1 table at 0x30000) set to 0
    cp d.qcow2 c.qcow2
    rb=$(qemu-img info --output=json c.qcow2 >/dev/null; /usr/bin/python3 -c '
import struct
h = open("c.qcow2", "rb").read(112)
rt = struct.unpack(">Q", h[48:56])[0]
f = open("c.qcow2", "rb"); f.seek(rt)
print(struct.unpack(">Q", f.read(8))[0])')
    l1=$(/usr/bin/python3 -c '
import struct
h = open("c.qcow2", "rb").read(112)
print(struct.unpack(">Q", h[40:48])[0] >> 16)')
    printf '\x00\x00' | dd of=c.qcow2 bs=1 seek=$((rb + 2 * l1)) conv=notrunc status=none
    run qemu-img check c.qcow2
    assert_failure 2
    run "$HOP" img check c.qcow2
    assert_failure 2
    assert_output --partial "ERROR cluster $l1 refcount=0 reference=1"
}

@test "img: kill -9 during writes and snapshots leaves no corruption" {
    make_data a.raw 4096 8
    make_data b.raw 4096 9
    for delay in 0.1 0.25 0.4 0.6 0.8; do
        rm -f d.qcow2
        "$HOP" img create -o cluster_size=4K d.qcow2 4M
        # a process group of its own, so the kill reaches exactly the loop
        # and the hop it is running
        setsid bash -c 'i=0; while :; do
            "$HOP" img convert -n a.raw d.qcow2 || exit 1
            "$HOP" img snapshot -c "s$i" d.qcow2 || exit 1
            "$HOP" img convert -n b.raw d.qcow2 || exit 1
            [ $i -gt 0 ] && { "$HOP" img snapshot -d "s$((i - 1))" d.qcow2 || exit 1; }
            i=$((i + 1))
        done' &
        pid=$!
        pids+=("$pid")
        sleep "$delay"
        kill -9 -- "-$pid" 2>/dev/null || fail "the writer loop ended early"
        wait "$pid" 2>/dev/null || true
        run qemu-img check d.qcow2
        [ "$status" -eq 0 ] || [ "$status" -eq 3 ] || fail "qemu-img check exit $status after kill at ${delay}s: $output"
        run "$HOP" img snapshot -l d.qcow2
        assert_success
    done
}
