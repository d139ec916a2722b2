#!/usr/bin/env bats
# Hostile qcow2 images: opening and checking them takes time and memory in
# proportion to the file, and a guest write never lands on metadata.  The
# images come from tests/tools/qcow2-craft.py.

load helper

CRAFT="/usr/bin/python3 $BATS_TEST_DIRNAME/../tools/qcow2-craft.py"

setup() {
    hop_sandbox
    cd "$BATS_TEST_TMPDIR"
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

@test "img hostile: a refcount table naming one block a million times opens at once; writing is refused" {
    $CRAFT dup-refblocks d.qcow2
    run timeout 20 "$HOP" img info d.qcow2
    assert_success
    assert_output --partial "2097152"
    run timeout 20 "$HOP" img check d.qcow2
    assert_failure 2
    assert_output --partial "ERROR cluster 5 refcount=1 reference=1048576"
    head -c 1M /dev/zero >z.raw
    run timeout 20 "$HOP" img convert -n z.raw d.qcow2
    assert_failure 1
    assert_output "hop: 'd.qcow2': host cluster 0xa00000 holds both a refcount block (refcount table entry 0) and a refcount block (refcount table entry 1): the image is corrupt; it can only be opened read-only (see 'hop img check')"
}

@test "img hostile: check of an image with ~100k problems keeps a hundred messages and counts them all" {
    $CRAFT many-problems d.qcow2
    [ "$(stat -c %s d.qcow2)" -eq $((1 << 20)) ]
    # a few hundred MB of address space: one string per problem needs more
    # (not under ASan, which reserves terabytes of it up front)
    limit="ulimit -v 400000;"
    ! ldd "$HOP" | grep -q libasan || limit=""
    run bash -c "$limit timeout 60 '$HOP' img check d.qcow2 2>&1"
    assert_failure 2
    [ "${#lines[@]}" -lt 120 ] || fail "${#lines[@]} lines of output"
    # a few lines of each kind, then how many more of it
    assert_output --partial "ERROR: clusters at 0x10000000000 (65536 bytes) lie beyond the end of the image"
    assert_output --partial "... and 98294 more problems like: ERROR: clusters at 0x10000000000"
    assert_output --partial "... and 8170 more problems like: ERROR: active L1: L1 entry 12 names the L2 table at 0x40000"
    n=$(printf '%s\n' "$output" | sed -n 's/^\([0-9]*\) errors were found on the image\.$/\1/p')
    [ -n "$n" ] && [ "$n" -ge 98304 ] || fail "error count '$n'"
    run bash -c "$limit timeout 60 '$HOP' img check --output=json d.qcow2 2>/dev/null"
    assert_failure 2
    /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.argv[1])
assert r["corruptions"] >= 98304, r
assert r["check-errors"] == 0, r
' "$output"
}

@test "img hostile: 65536 snapshots sharing one L1 table are checked in bounded time" {
    $CRAFT shared-l1 d.qcow2
    run timeout 20 "$HOP" img check d.qcow2
    [ "$status" -ne 124 ] || fail "check did not finish in 20 s"
    [ "$status" -ne 0 ] || fail "the shared L1 table was not reported"
    [ "${#lines[@]}" -lt 120 ] || fail "${#lines[@]} lines of output"
}

@test "img hostile: a guest write onto the refcount table is refused, the image marked corrupt, qemu-img finds the table intact" {
    make_data a.raw 1024 1
    "$HOP" img create d.qcow2 1M
    "$HOP" img convert -n a.raw d.qcow2
    $CRAFT point d.qcow2 0 refcount-table
    rt=$($CRAFT offset d.qcow2 refcount-table)
    dd if=d.qcow2 of=rt.before bs=64K skip=$((rt >> 16)) count=1 status=none
    run qemu-img check d.qcow2
    before=$output
    run timeout 20 "$HOP" img convert -n a.raw d.qcow2
    assert_failure 1
    assert_output "hop: 'd.qcow2': write at guest offset 0x0 refused: host cluster $(printf '0x%x' "$rt") holds the refcount table; the image is now marked corrupt"
    dd if=d.qcow2 of=rt.after bs=64K skip=$((rt >> 16)) count=1 status=none
    cmp rt.before rt.after
    run qemu-img check d.qcow2
    [ "$output" = "$before" ] || fail "qemu-img check changed: $output"
    run qemu-img info --output=json d.qcow2
    assert_output --partial '"corrupt": true'
    run timeout 20 "$HOP" img convert -n a.raw d.qcow2
    assert_failure 1
    assert_output --partial "image is marked corrupt"
}

@test "img hostile: guest writes onto the L1 table, a refcount block or an L2 table are refused" {
    make_data a.raw 1024 2
    for what in l1 refcount-block l2; do
        rm -f d.qcow2
        "$HOP" img create d.qcow2 1M
        "$HOP" img convert -n a.raw d.qcow2
        $CRAFT point d.qcow2 65536 "$what"
        cp d.qcow2 before.qcow2
        run timeout 20 "$HOP" img convert -n a.raw d.qcow2
        assert_failure 1
        assert_output --partial "write at guest offset 0x10000 refused"
        case $what in
        l1) assert_output --partial "holds the L1 table" ;;
        refcount-block) assert_output --partial "holds a refcount block" ;;
        l2) assert_output --partial "holds an L2 table" ;;
        esac
        # nothing but the corrupt bit (byte 79) changed
        cmp -l before.qcow2 d.qcow2 | awk '$1 != 80 { exit 1 }' || fail "$what: metadata changed"
    done
}

@test "img hostile: an allocation landing on the L1 table (its refcount zeroed) is refused" {
    # every guest cluster but the last allocated: it alone is allocated
    # next, in the first cluster whose count is zero
    make_data a.raw 960 3
    "$HOP" img create d.qcow2 1M
    "$HOP" img convert -n a.raw d.qcow2
    $CRAFT zero-rc d.qcow2 l1
    l1=$($CRAFT offset d.qcow2 l1)
    dd if=d.qcow2 of=l1.before bs=64K skip=$((l1 >> 16)) count=1 status=none
    make_data b.raw 1024 4
    run timeout 20 "$HOP" img convert -n b.raw d.qcow2
    assert_failure 1
    assert_output --partial "holds the L1 table"
    dd if=d.qcow2 of=l1.after bs=64K skip=$((l1 >> 16)) count=1 status=none
    cmp l1.before l1.after
    run qemu-img compare -q a.raw d.qcow2
    [ "$status" -ne 2 ] || fail "qemu-img cannot read the image: $output"
}
