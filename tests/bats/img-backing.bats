#!/usr/bin/env bats
# qcow2 images over a backing file, judged by QEMU's tools: qemu-io puts
# data in the base and the top, a guest (tests/firmware/diskwin.s) sums
# its whole disk through the chain and rewrites a window of it sector by
# sector; the sum must be the one tests/tools/disk-sum.py computes from
# qemu-img convert's copy, and afterwards qemu-img check, map and compare
# agree with what the guest did.

load helper
load mig-helper

SUM="/usr/bin/python3 $BATS_TEST_DIRNAME/../tools/disk-sum.py"

setup() {
    mig_setup
    WIN="$HOP_BUILD_DIR/tests/firmware/diskwin.bin"
    [ -f "$WIN" ] || fail "missing $WIN (make firmware)"
}

teardown() {
    hop_stop_all
}

# chain: base.qcow2 (data at 0 and 2M), mid.qcow2 over it (data at 512k, a
# zero cluster over base's data at 2M), top.qcow2 over mid (data at 3M).
chain() {
    qemu-img create -f qcow2 "$D/base.qcow2" 4M >/dev/null
    qemu-io -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 2M 64k' \
        "$D/base.qcow2" >/dev/null
    qemu-img create -f qcow2 -b base.qcow2 -F qcow2 "$D/mid.qcow2" >/dev/null
    qemu-io -c 'write -P 0x11 512k 4k' -c 'write -z 2M 64k' \
        "$D/mid.qcow2" >/dev/null
    qemu-img create -f qcow2 -b mid.qcow2 -F qcow2 "$D/top.qcow2" >/dev/null
    qemu-io -c 'write -P 0x77 3M 4k' "$D/top.qcow2" >/dev/null
}

# guest_sum NAME: the checksum the diskwin guest printed.
guest_sum() {
    sed -n 's/^diskwin: sum \([0-9a-f]*\)$/\1/p' "$D/$1.serial"
}

@test "img create -b -F: qemu-img reads the new image's backing file; img info shows it as qemu-img info does" {
    qemu-img create -f qcow2 "$D/base.qcow2" 4M >/dev/null
    mkdir "$D/sub"
    run "$HOP" img create -f qcow2 -b ../base.qcow2 -F qcow2 "$D/sub/top.qcow2"
    assert_success
    assert_output "Formatting '$D/sub/top.qcow2', fmt=qcow2 size=4194304 (4 MiB) backing_file=../base.qcow2 backing_fmt=qcow2"
    run qemu-img check "$D/sub/top.qcow2"
    assert_success
    run qemu-img info "$D/sub/top.qcow2"
    local q=$output
    run "$HOP" img info "$D/sub/top.qcow2"
    assert_success
    assert_line "backing file: ../base.qcow2 (actual path: $D/sub/../base.qcow2)"
    assert_line "backing file format: qcow2"
    diff <(grep '^backing' <<<"$q") <(grep '^backing' <<<"$output")
    # The JSON keys are qemu-img's, with its values.
    qemu-img info --output=json "$D/sub/top.qcow2" >"$D/q.json"
    "$HOP" img info --output=json "$D/sub/top.qcow2" >"$D/h.json"
    run /usr/bin/python3 - "$D/q.json" "$D/h.json" <<'PY'
import json, sys
q, h = (json.load(open(f)) for f in sys.argv[1:])
keys = ["backing-filename", "full-backing-filename", "backing-filename-format"]
for k in keys:
    if q.get(k) != h.get(k) or k not in h:
        sys.exit("%s: qemu-img %r, hop %r" % (k, q.get(k), h.get(k)))
PY
    assert_success
    # Without -F, as qemu-img; a raw image has no backing file.
    run "$HOP" img create -b base.qcow2 "$D/x.qcow2"
    assert_failure 1
    assert_output "hop: create: '$D/x.qcow2': -b needs -F (the backing file's format, as qemu-img asks)"
    run "$HOP" img create -f raw -b base.qcow2 -F qcow2 "$D/x.raw" 4M
    assert_failure 1
    run "$HOP" img create -b nothere.qcow2 -F qcow2 "$D/x.qcow2"
    assert_failure 1
    assert_output "hop: create: '$D/x.qcow2': cannot open backing file: cannot open '$D/nothere.qcow2': No such file or directory"
    [ ! -e "$D/x.qcow2" ]
    # A size of its own, larger than the backing file's.
    run "$HOP" img create -b base.qcow2 -F qcow2 "$D/big.qcow2" 8M
    assert_success
    run qemu-img info --output=json "$D/big.qcow2"
    assert_output --partial '"virtual-size": 8388608'
}

@test "a guest reads its disk through a three-image chain as qemu-img does, and its writes land in the top only" {
    chain
    qemu-img convert -O raw "$D/top.qcow2" "$D/before.raw"
    local base_sum mid_sum
    base_sum=$(sha256sum <"$D/base.qcow2")
    mid_sum=$(sha256sum <"$D/mid.qcow2")
    hop_start g -m 16M -kernel "$WIN" -drive "file=$D/top.qcow2"
    wait_serial g "diskwin: pass 2" 120
    run $SUM sum "$D/before.raw"
    assert_output "$(guest_sum g)"
    hop_mon g quit >/dev/null
    wait_for "! kill -0 $(hop_pid g) 2>/dev/null" 30
    # The window's sectors each cover part of a cluster: every first write
    # copied the rest of its cluster from the chain.
    qemu-img convert -O raw "$D/top.qcow2" "$D/after.raw"
    run $SUM window "$D/before.raw" "$D/after.raw"
    assert_success
    run qemu-img check "$D/top.qcow2"
    assert_success
    assert_output --partial "No errors were found"
    [ "$(sha256sum <"$D/base.qcow2")" = "$base_sum" ]
    [ "$(sha256sum <"$D/mid.qcow2")" = "$mid_sum" ]
    # Allocated in the top: the window's clusters (1M..2M+64k) and 3M.
    run qemu-img map --output=json "$D/top.qcow2"
    assert_output --partial '{ "start": 1048576, "length": 1114112, "depth": 0, "present": true, "zero": false, "data": true'
    assert_output --partial '{ "start": 3145728, "length": 65536, "depth": 0, "present": true, "zero": false, "data": true'
    # mid's zero cluster at 2M hid base's 0xcd; the guest wrote sector
    # 4096 (2M) only: the rest of that cluster stays zero.
    run qemu-io -r -c 'read -P 0 2098176 65024' -c 'read -P 0xab 0 512k' \
        -c 'read -P 0x11 512k 4k' -c 'read -P 0x77 3M 4k' "$D/top.qcow2"
    refute_output --partial "verification failed"
}

@test "img info --backing-chain: every image of the chain, as qemu-img info --backing-chain" {
    chain
    cd "$D"
    diff <("$HOP" img info --backing-chain top.qcow2 | grep -v '^disk size') \
        <(qemu-img info --backing-chain top.qcow2 | grep -v '^disk size')
    run /usr/bin/python3 -c 'import json, subprocess, sys
def chain(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    return [(i["filename"], i.get("backing-filename"),
             i.get("full-backing-filename"), i["virtual-size"])
            for i in json.loads(out)]
h = chain([sys.argv[1], "img", "info", "--backing-chain", "--output=json",
           "top.qcow2"])
q = chain(["qemu-img", "info", "--backing-chain", "--output=json",
           "top.qcow2"])
print(h)
sys.exit(0 if h == q and len(h) == 3 else 1)' "$HOP"
    assert_success
}

@test "img convert flattens the chain; qemu-img compare agrees" {
    chain
    run "$HOP" img convert -O qcow2 "$D/top.qcow2" "$D/flat.qcow2"
    assert_success
    run qemu-img compare "$D/top.qcow2" "$D/flat.qcow2"
    assert_success
    assert_output "Images are identical."
    run qemu-img info "$D/flat.qcow2"
    refute_output --partial "backing file"
}

@test "savevm and loadvm on an image over a backing file: the snapshot holds the disk as it was, qemu-img check stays clean" {
    chain
    qemu-img convert -O raw "$D/top.qcow2" "$D/before.raw"
    hop_start g -m 16M -kernel "$WIN" -drive "file=$D/top.qcow2"
    wait_serial g "diskwin: pass 1" 120
    run hop_mon g stop "savevm s1" cont
    refute_output --partial "Error"
    local n
    n=$(grep -c '^diskwin: pass' "$D/g.serial")
    wait_for "[ \$(grep -c '^diskwin: pass' '$D/g.serial') -gt $((n + 1)) ]" 120
    run hop_mon g stop "loadvm s1" "info snapshots"
    refute_output --partial "Error"
    assert_output --partial "s1"
    qemu-img convert -U -O raw -l snapshot.name=s1 "$D/top.qcow2" "$D/s1.raw"
    run qemu-img compare -U "$D/top.qcow2" "$D/s1.raw"
    assert_success
    hop_mon g quit >/dev/null
    wait_for "! kill -0 $(hop_pid g) 2>/dev/null" 30
    run qemu-img check "$D/top.qcow2"
    assert_success
    run qemu-img snapshot -l "$D/top.qcow2"
    assert_output --partial "s1"
    # The snapshot's disk is the chain's data plus the guest's window.
    run $SUM window "$D/before.raw" "$D/s1.raw"
    assert_success
}

@test "a missing backing file, a loop and a bad name are refused with one line naming the image" {
    chain
    mv "$D/base.qcow2" "$D/gone.qcow2"
    run "$HOP" img info "$D/top.qcow2"
    assert_failure 1
    assert_output "hop: '$D/top.qcow2': backing file 'base.qcow2' of '$D/mid.qcow2': cannot open '$D/base.qcow2': No such file or directory"
    # A running machine cannot start on it either.
    run timeout 30 "$HOP" run -m 16M -S -drive "file=$D/top.qcow2" \
        -monitor none
    assert_failure
    assert_output --partial "backing file 'base.qcow2' of '$D/mid.qcow2'"
    # base -> top: a loop.
    qemu-img rebase -u -f qcow2 -b top.qcow2 -F qcow2 "$D/gone.qcow2"
    mv "$D/gone.qcow2" "$D/base.qcow2"
    run "$HOP" img info "$D/top.qcow2"
    assert_failure 1
    assert_output "hop: '$D/top.qcow2': backing file 'top.qcow2' of '$D/base.qcow2': it is '$D/top.qcow2' again: the backing chain loops"
    # backing_file_size past what QEMU reads.
    qemu-img create -f qcow2 "$D/long.qcow2" 1M >/dev/null
    printf '\0\0\0\0\0\0\2\0\0\0\x08\0' |
        dd of="$D/long.qcow2" bs=1 seek=8 conv=notrunc 2>/dev/null
    run "$HOP" img info "$D/long.qcow2"
    assert_failure 1
    assert_output "hop: '$D/long.qcow2': backing file name of 2048 bytes is too long (backing_file_size; at most 1023)"
}

@test "QMP query-block and info block name the backing file and the chain's depth, as QEMU's" {
    chain
    hop_start g -m 16M -S -drive "file=$D/top.qcow2" \
        -qmp "unix:$D/g.qmp,server,nowait"
    wait_for "[ -S '$D/g.qmp' ]" 10
    run timeout 60 "$PY" "$QMP_PY" "$D/g.qmp" query-block
    assert_success
    local reply=${lines[-1]}
    # And info block, as QEMU's HMP shows it.
    run hop_mon g "info block"
    assert_line "    Backing file:     mid.qcow2 (chain depth: 2)"
    run "$PY" - "$reply" "$D" <<'PY'
import json, sys
d = json.loads(sys.argv[1])["return"][0]["inserted"]
img = d["image"]
ok = (d["backing_file"] == "mid.qcow2" and d["backing_file_depth"] == 2 and
      img["backing-filename"] == "mid.qcow2" and
      img["full-backing-filename"] == sys.argv[2] + "/mid.qcow2" and
      img["backing-filename-format"] == "qcow2")
print(d)
sys.exit(0 if ok else 1)
PY
    assert_success
}
