#!/usr/bin/env bats
# hop inspect on truncated, corrupted and foreign files: one error line
# naming the offset, exit 1, never a crash or a hang.

load helper

FIX=$HOP_SRC/tests/fixtures
GOLDEN=$FIX/golden/testset-0.1.0.stream

setup() {
    hop_sandbox
    T=$BATS_TEST_TMPDIR
    # Sanitizer reports must not pass for an ordinary exit 1.
    export ASAN_OPTIONS="${ASAN_OPTIONS:-}:exitcode=86"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:exitcode=86"
    [ -f "$FIX/qemu/paused.stream.xz" ] || fail "fixture qemu/paused.stream.xz is missing"
    xz -dc "$FIX/qemu/paused.stream.xz" > "$T/qemu.stream"
    cp "$GOLDEN" "$T/golden.stream"
}

# check_fails FILE [MODE-ARGS...]: exit 1, exactly one stderr line that
# names an offset (or the empty file), bounded time.
check_fails() {
    local f=$1; shift
    run --separate-stderr timeout 20 "$HOP" inspect "$@" "$f"
    if [ "$status" -ne 1 ]; then
        fail "$f: exit $status (expected 1): $stderr"
    fi
    local n
    n=$(printf '%s\n' "$stderr" | grep -c .)
    [ "$n" -eq 1 ] || fail "$f: $n error lines: $stderr"
    [[ $stderr == "hop inspect: "*offset* ]] || fail "$f: no offset in: $stderr"
}

# check_no_crash FILE: exit 0 or 1, and a failure has one error line.
check_no_crash() {
    run --separate-stderr timeout 20 "$HOP" inspect --verify "$1"
    case $status in
        0) ;;
        1) [ "$(printf '%s\n' "$stderr" | grep -c .)" -eq 1 ] ||
               fail "$1: several error lines: $stderr" ;;
        *) fail "$1: exit $status: $stderr" ;;
    esac
}

# Record offsets of a stream, from the report of the intact file.
offsets() {
    "$HOP" inspect --json "$1" |
        /usr/bin/python3 -c 'import json,sys; [print(r["offset"], r["type"]) for r in json.load(sys.stdin)["records"]]'
}

@test "truncated at every record boundary (and one byte after): exit 1 with the offset" {
    for s in qemu golden; do
        local n=0 vmdesc
        vmdesc=$(offsets "$T/$s.stream" | sed -n 's/ VMDESC$//p')
        [ -n "$vmdesc" ]
        while read -r off type; do
            for cut in "$off" $((off + 1)); do
                head -c "$cut" "$T/$s.stream" > "$T/cut"
                if [ "$cut" -eq "$vmdesc" ]; then
                    # a stream that ends at EOF is complete without vmdesc
                    run "$HOP" inspect --verify "$T/cut"
                    assert_success
                    assert_output --partial "no vmdesc"
                    continue
                fi
                check_fails "$T/cut"
                check_fails "$T/cut" --verify
                n=$((n + 1))
            done
        done < <(offsets "$T/$s.stream")
        [ "$n" -ge 8 ]
    done
}

@test "bit flips in every record header: no crash, one error line" {
    for s in qemu golden; do
        offsets "$T/$s.stream" > "$T/offs"
        /usr/bin/python3 - "$T/$s.stream" "$T/offs" "$T/flip" <<'PY'
import sys
data = bytearray(open(sys.argv[1], 'rb').read())
offs = [int(l.split()[0]) for l in open(sys.argv[2])]
n = 0
for off in [0, 4] + offs:
    # type byte, section id, name length, first name byte, version
    for delta in (0, 1, 4, 5, 6, 12):
        at = off + delta
        if at >= len(data):
            continue
        for bit in (0, 7):
            d = bytearray(data)
            d[at] ^= 1 << bit
            open('%s.%d' % (sys.argv[3], n), 'wb').write(d)
            n += 1
PY
        local failed=0 total=0
        for f in "$T"/flip.*; do
            check_no_crash "$f"
            total=$((total + 1))
            [ "$status" -eq 1 ] && failed=$((failed + 1))
            rm -f "$f"
        done
        [ "$total" -gt 50 ]
        # flipping type bytes alone must already break the stream
        [ "$failed" -gt $((total / 4)) ]
    done
}

@test "absurd lengths: exit 1 with the offset, no crash" {
    /usr/bin/python3 - "$T/qemu.stream" "$T/bad" <<'PY'
import json, struct, sys
data = open(sys.argv[1], 'rb').read()
out = sys.argv[2]
# the vmdesc trailer, per its documented layout
for vat in range(len(data) - 5, 0, -1):
    if data[vat] == 6 and struct.unpack('>I', data[vat+1:vat+5])[0] == len(data) - vat - 5:
        break
desc = json.loads(data[vat+5:])
def save(name, d):
    open(out + '.' + name, 'wb').write(d)
# configuration: machine name length 0xffffffff
save('config', data[:9] + b'\xff\xff\xff\xff' + data[13:])
# vmdesc length 0xffffffff
save('vmdesc', data[:vat+1] + b'\xff\xff\xff\xff' + data[vat+5:])
# RAM START: block list total absurd
start = data.index(b'\x01\x00\x00\x00\x02\x03ram')
body = start + 1 + 4 + 4 + 4 + 4
save('memsize', data[:body] + b'\x7f\xff\xff\xff\xff\xff\xf0\x04' + data[body+8:])
# first page record of the first PART turned into an XBZRLE page
part = data.index(b'\x02\x00\x00\x00\x02', body)
rec = part + 5
save('xbzrle', data[:rec+7] + bytes([0x40]) + data[rec+8:])
# a PACKAGED command claiming 4 GiB, right after the configuration
cfg_end = 9 + 4 + struct.unpack('>I', data[9:13])[0]
save('packaged', data[:cfg_end] + b'\x08\x00\x07\x00\x04\xff\xff\xff\xf0' + data[cfg_end:])
# a section name length of 255
full = data.index(b'\x04\x00\x00\x00\x00\x05timer')
save('idstr', data[:full+5] + b'\xff' + data[full+6:])
# vmdesc: a field with an absurd size and one with an absurd array_len
for name, key, val in (('fieldsize', 'size', 10**12), ('arraylen', 'array_len', 10**12)):
    d = json.loads(data[vat+5:])
    d['devices'][0]['fields'][0][key] = val
    j = json.dumps(d).encode()
    save(name, data[:vat] + b'\x06' + struct.pack('>I', len(j)) + j)
PY
    for f in "$T"/bad.*; do
        check_fails "$f"
    done
}

@test "empty, foreign and unreadable files: one clear error" {
    : > "$T/empty"
    run --separate-stderr "$HOP" inspect "$T/empty"
    assert_failure 1
    [[ $stderr == *"empty: expected the stream header at offset 0"* ]]
    head -c 4096 /dev/urandom > "$T/random"
    check_fails "$T/random"
    qemu-img create -q -f qcow2 "$T/disk.qcow2" 1M
    # A qcow2 image is not a stream: hop inspect lists its snapshots, and
    # a snapshot it lacks is one clear error.
    run --separate-stderr "$HOP" inspect "$T/disk.qcow2"
    assert_success
    assert_output --partial "qcow2 image, 0 snapshots"
    run --separate-stderr "$HOP" inspect "$T/disk.qcow2@nosuch"
    assert_failure 1
    [[ $stderr == *"no snapshot 'nosuch'"* ]]
    run --separate-stderr "$HOP" inspect "$T/nonexistent"
    assert_failure 1
    [[ $stderr == *"cannot open"* ]]
    run --separate-stderr "$HOP" inspect "$T"
    assert_failure 1
    # the old stream version
    printf 'QEVM\0\0\0\2' > "$T/v2"
    run --separate-stderr "$HOP" inspect "$T/v2"
    assert_failure 1
    [[ $stderr == *"unsupported stream version 2 at offset 4"* ]]
}

@test "trailing garbage after the vmdesc is reported with its offset" {
    cp "$GOLDEN" "$T/g"
    printf 'xx' >> "$T/g"
    check_fails "$T/g" --verify
    [[ $stderr == *"2 bytes of unexpected data after the vmdesc"* ]]
}
