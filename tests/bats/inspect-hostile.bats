#!/usr/bin/env bats
# hop inspect on streams and images made to hurt it: each ends in one
# clear error line or a correct report, in bounded time and memory; no
# name from the file reaches the terminal unescaped, and --extract-ram
# writes nowhere but new files in its directory.

load helper

FIX=$HOP_SRC/tests/fixtures/hostile
MAKE=$FIX/make-hostile.py
ESC=$'\x1b'

setup() {
    hop_sandbox
    T=$BATS_TEST_TMPDIR
    # Sanitizer reports must not pass for an ordinary exit 1.
    export ASAN_OPTIONS="${ASAN_OPTIONS:-}:exitcode=86"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:exitcode=86"
}

# fails_once FILE [ARGS...]: exit 1 within 20 s with one stderr line
# (in $stderr) holding no escape byte.
fails_once() {
    local f=$1
    shift
    run --separate-stderr timeout 20 "$HOP" inspect "$@" "$f"
    [ "$status" -eq 1 ] || fail "$f: exit $status (expected 1): $stderr"
    [ "$(printf '%s\n' "$stderr" | grep -c .)" -eq 1 ] ||
        fail "$f: not one error line: $stderr"
    [[ $stderr != *"$ESC"* ]] || fail "$f: raw escape byte in: $stderr"
}

@test "every file in fixtures/hostile: no crash, no hang, at most one error line" {
    local n=0 f
    for f in "$FIX"/*.stream; do
        for mode in --verify --json ""; do
            run --separate-stderr timeout 20 "$HOP" inspect $mode "$f"
            case $status in
                0) ;;
                1) [ "$(printf '%s\n' "$stderr" | grep -c .)" -eq 1 ] ||
                       fail "$f $mode: several error lines: $stderr" ;;
                *) fail "$f $mode: exit $status: $stderr" ;;
            esac
        done
        n=$((n + 1))
    done
    [ "$n" -ge 6 ]
}

@test "a file ending in 06 00 00 00 00 on a page boundary: a clean error" {
    [ "$(stat -c %s "$FIX/vmdesc-tail-4096.stream")" -eq 4096 ]
    fails_once "$FIX/vmdesc-tail-4096.stream"
    [[ $stderr == *"vmdesc at offset 4091"* ]]
}

@test "nested arrays of empty structs: one error naming the section and the field" {
    fails_once "$FIX/vmdesc-zero-nest.stream"
    [[ $stderr == *"section 'dev' (id 0)"* ]] || fail "$stderr"
    [[ $stderr == *"field 'z2'"* ]] || fail "$stderr"
    [[ $stderr == *"take no bytes"* ]] || fail "$stderr"
}

@test "names with escape sequences are escaped in the text output and in errors" {
    run --separate-stderr timeout 20 "$HOP" inspect "$FIX/escape-names.stream"
    assert_success
    [[ $output != *"$ESC"* ]] || fail "raw escape byte in the output"
    [[ $output != *$'\x07'* ]] || fail "raw BEL in the output"
    assert_output --partial 'machine pc\x1b]0;owned\x07\x1b[2J, complete'
    assert_line --regexp '^ +126  FULL +1  d\\x1b\]0;owned\\x07\\x1b\[2J +0 +1 +35$'
    assert_line '  f\x1b[31m = 5'
    assert_line --regexp '^  pc\.ram\\x1b\]0;owned\\x07\\x1b\[2J +1000 '
    # JSON keeps the names as they are: jansson escapes the control bytes.
    run --separate-stderr "$HOP" inspect --json "$FIX/escape-names.stream"
    assert_success
    [[ $output != *"$ESC"* ]]
    echo "$output" > "$T/r.json"
    run /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(repr(d["devices"][0]["idstr"]), repr(d["ram"]["blocks"][0]["name"]))' "$T/r.json"
    assert_output "'d\\x1b]0;owned\\x07\\x1b[2J' 'pc.ram\\x1b]0;owned\\x07\\x1b[2J'"
    fails_once "$FIX/escape-in-error.stream"
    [[ $stderr == *"section '\\x1b[2Jx' (id 1)"* ]] || fail "$stderr"
}

@test "a section name that is not UTF-8 stays in --json, escaped" {
    run --separate-stderr timeout 20 "$HOP" inspect --json "$FIX/name-not-utf8.stream"
    assert_success
    echo "$output" > "$T/r.json"
    run /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["records"][0]["idstr"], d["devices"][0]["idstr"])' "$T/r.json"
    assert_output 'bad\xff\xfename bad\xff\xfename'
}

@test "a snapshot name with escape sequences is escaped in the image's listing" {
    "$HOP" img create -f qcow2 "$T/d.qcow2" 1M >/dev/null
    "$HOP" img snapshot -c "a${ESC}[2Jb" "$T/d.qcow2"
    run --separate-stderr timeout 20 "$HOP" inspect "$T/d.qcow2"
    assert_success
    [[ $output != *"$ESC"* ]] || fail "raw escape byte in: $output"
    assert_output --partial 'a\x1b[2Jb'
}

@test "--extract-ram never writes through a planted symlink" {
    "$MAKE" ram-one-block "$T/s.stream"
    mkdir "$T/ram"
    echo "precious" > "$T/victim"
    ln -s "$T/victim" "$T/ram/pc.ram"
    fails_once "$T/s.stream" --extract-ram "$T/ram"
    [[ $stderr == *"'$T/ram/pc.ram' already exists"* ]] || fail "$stderr"
    [ "$(cat "$T/victim")" = "precious" ]
    [ -L "$T/ram/pc.ram" ]
    # Asked to overwrite: the link goes, its target stays.
    run --separate-stderr timeout 20 "$HOP" inspect "$T/s.stream" \
        --extract-ram "$T/ram" --overwrite
    assert_success
    [ "$(cat "$T/victim")" = "precious" ]
    [ ! -L "$T/ram/pc.ram" ]
    [ "$(stat -c %s "$T/ram/pc.ram")" -eq 8192 ]
    /usr/bin/python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); assert d == b"\x33"*4096 + bytes(4096)' "$T/ram/pc.ram"
    # --overwrite alone is a usage error.
    run "$HOP" inspect "$T/s.stream" --overwrite
    assert_failure 2
}

@test "--extract-ram refuses a block longer than the stream could fill" {
    [ "$(stat -c %s "$FIX/ram-tib-block.stream")" -lt 100 ]
    mkdir "$T/ram"
    fails_once "$FIX/ram-tib-block.stream" --extract-ram "$T/ram"
    [[ $stderr == *"RAM block 'pc.ram' of 0x10000000000 bytes"* ]] || fail "$stderr"
    [ -z "$(ls -A "$T/ram")" ]
    # Without extraction the length is only reported.
    run timeout 20 "$HOP" inspect "$FIX/ram-tib-block.stream"
    assert_success
    assert_line --regexp '^  pc\.ram +10000000000 '
}

@test "--extract-ram refuses two blocks that map to one file, and leaves nothing behind" {
    fails_once "$FIX/ram-name-collision.stream" --extract-ram "$T/ram"
    [[ $stderr == *"RAM blocks 'pc.ram' and '/pc.ram' would both be written to '$T/ram/pc.ram'"* ]] ||
        fail "$stderr"
    [ -z "$(ls -A "$T/ram")" ]
}

@test "50000 device sections and 50000 repeats of a field name decode in bounded time" {
    "$MAKE" many-sections "$T/sections.stream" 50000
    run --separate-stderr timeout 120 "$HOP" inspect --verify "$T/sections.stream"
    assert_success
    assert_output --partial "50000 device sections (50000 checked field by field)"
    "$MAKE" many-fields "$T/fields.stream" 50000
    run --separate-stderr timeout 120 "$HOP" inspect --json "$T/fields.stream"
    assert_success
    echo "$output" > "$T/r.json"
    run /usr/bin/python3 -c 'import json,sys; f=json.load(open(sys.argv[1]))["devices"][0]["fields"]; print(len(f), f["x"], f["x[50000]"])' "$T/r.json"
    assert_output "50000 1 1"
}

@test "a field name of 400 bytes repeated: every value kept under a key of its own, no endless loop" {
    "$MAKE" long-repeated-name "$T/s.stream"
    run --separate-stderr timeout 20 "$HOP" inspect --json "$T/s.stream"
    assert_success
    echo "$output" > "$T/r.json"
    run /usr/bin/python3 -c 'import json,sys; f=json.load(open(sys.argv[1]))["devices"][0]["fields"]; print(sorted(f.values()), sorted(len(k) for k in f))' "$T/r.json"
    assert_output "[1, 2, 3] [400, 403, 403]"
}

# snapshot_state_size IMAGE BYTES: rewrites the first snapshot's
# vm_state_size (the 32-bit field and the 64-bit one of the extra data).
snapshot_state_size() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import struct, sys
path, size = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    h = f.read(72)
    off = struct.unpack(">Q", h[64:72])[0]
    f.seek(off)
    e = f.read(40)
    extra = struct.unpack(">I", e[36:40])[0]
    assert extra >= 8
    f.seek(off + 32)
    f.write(struct.pack(">I", min(size, 0xffffffff)))
    f.seek(off + 40)
    f.write(struct.pack(">Q", size))
PY
}

@test "a snapshot whose header claims a TiB of state: refused, not read into memory" {
    "$HOP" img create -f qcow2 "$T/d.qcow2" 1M >/dev/null
    "$HOP" img snapshot -c s "$T/d.qcow2"
    snapshot_state_size "$T/d.qcow2" $((1 << 40))
    run --separate-stderr timeout 20 "$HOP" inspect "$T/d.qcow2@s"
    assert_failure 1
    [[ $stderr == *"vm_state_size 1099511627776 is more than the image file holds"* ]] ||
        fail "$stderr"
    run --separate-stderr timeout 20 "$HOP" catalog sync "$T/d.qcow2"
    assert_success
    [[ $stderr == *"('s')"*"1099511627776"* ]] ||
        fail "$stderr"
}
