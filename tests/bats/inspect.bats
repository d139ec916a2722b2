#!/usr/bin/env bats
# hop inspect on QEMU-made streams (fixtures/qemu, made by
# fixtures/make-qemu-streams.sh), on hop's golden stream and on streams
# from hop's writer with RAM (tests/tools/gen-ram-stream).

load helper

FIX=$HOP_SRC/tests/fixtures
GEN=${HOP_BUILD_DIR:-$HOP_SRC/build}/tests/tools/gen-ram-stream
GOLDEN=$FIX/golden/testset-0.1.0.stream

setup() {
    hop_sandbox
    T=$BATS_TEST_TMPDIR
}

# unxz NAME: the fixture decompressed into $T (fails when it is missing).
unxz_fixture() {
    [ -f "$FIX/qemu/$1.xz" ] || fail "fixture qemu/$1.xz is missing"
    xz -dc "$FIX/qemu/$1.xz" > "$T/$1"
}

# jq-less JSON queries: py EXPR FILE, with d = the parsed document.
py() {
    /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(($1))" "$2"
}

# The vmdesc devices of a stream, read with the documented trailer
# layout (0x06, be32 length, JSON at the very end): "idstr instance".
vmdesc_devices() {
    /usr/bin/python3 - "$1" <<'PY'
import json, struct, sys
data = open(sys.argv[1], 'rb').read()
for at in range(len(data) - 5, 0, -1):
    if data[at] == 6 and struct.unpack('>I', data[at+1:at+5])[0] == len(data) - at - 5:
        break
for d in json.loads(data[at+5:])['devices']:
    print(d['name'], d['instance_id'])
PY
}

@test "QEMU stream: every section is listed and every device decoded" {
    unxz_fixture paused.stream
    run "$HOP" inspect --json "$T/paused.stream"
    assert_success
    echo "$output" > "$T/r.json"
    vmdesc_devices "$T/paused.stream" > "$T/want"
    [ "$(wc -l < "$T/want")" -ge 25 ]
    py '"\n".join("%s %d" % (x["idstr"], x["instance_id"]) for x in d["devices"])' \
        "$T/r.json" > "$T/got"
    diff -u "$T/want" "$T/got"
    # every device decoded from the vmdesc; RAM had START, PART, END
    run py 'sorted(set(x["decoded_by"] for x in d["devices"]))' "$T/r.json"
    assert_output "['vmdesc']"
    run py '[r["type"] for r in d["records"] if r.get("idstr") == "ram"]' "$T/r.json"
    assert_output "['START', 'PART', 'END']"
    run py 'd["machine"], d["complete"], d["version"]' "$T/r.json"
    assert_output "('pc-i440fx-7.2', True, 3)"
    # the records tile the file
    run py 'sum(r["size"] for r in d["records"] if r["depth"] == 0) + 8 == d["size"]' "$T/r.json"
    assert_output "True"
}

@test "QEMU stream: RAM block sizes are what -m 32M and SeaBIOS give" {
    unxz_fixture paused.stream
    "$HOP" inspect --json "$T/paused.stream" > "$T/r.json"
    run py '{b["name"]: b["length"] for b in d["ram"]["blocks"]}["pc.ram"]' "$T/r.json"
    assert_output $((32 << 20))
    if [ -f /usr/share/seabios/bios-256k.bin ]; then
        run py '{b["name"]: b["length"] for b in d["ram"]["blocks"]}["pc.bios"]' "$T/r.json"
        assert_output "$(stat -c %s /usr/share/seabios/bios-256k.bin)"
    fi
    # every page of every block is sent once in the first pass
    run py 'sum(b["pages"]["normal"] + b["pages"]["zero"] for b in d["ram"]["blocks"]) * 4096 == d["ram"]["total_length"]' "$T/r.json"
    assert_output "True"
}

@test "QEMU stream: the serial port's registers hold the 16550 reset values" {
    unxz_fixture paused.stream
    run "$HOP" inspect "$T/paused.stream" --section serial:0 --fields
    assert_success
    assert_line --partial "serial (instance 0, version 3"
    assert_line "    divider = 12 (0xc)"
    assert_line "    iir = 1"
    assert_line "    lsr = 96 (0x60)"
    assert_line "    msr = 176 (0xb0)"
    refute_line --partial "OFFSET"
}

@test "QEMU running guest: --extract-ram equals QEMU's pmemsave" {
    for s in running iterating; do
        unxz_fixture $s.stream
        unxz_fixture $s.pmem
        run "$HOP" inspect "$T/$s.stream" --extract-ram "$T/$s.ram" --no-ram
        assert_success
        local ram=$T/$s.ram/pc.ram
        [ "$(stat -c %s "$ram")" -eq $((32 << 20)) ]
        # guest-physical = pc.ram below the VGA hole and above 1 MiB
        cmp <(head -c $((0xa0000)) "$ram") <(head -c $((0xa0000)) "$T/$s.pmem")
        cmp <(tail -c +$((0x100001)) "$ram") <(tail -c +$((0x100001)) "$T/$s.pmem")
        # zero pages are holes
        [ "$(du -k "$ram" | cut -f1)" -lt $((32 * 1024 / 2)) ]
        if [ -f /usr/share/seabios/bios-256k.bin ]; then
            cmp "$T/$s.ram/pc.bios" /usr/share/seabios/bios-256k.bin
        fi
        [ -f "$T/$s.ram/rom@etc%2Facpi%2Ftables" ]
    done
}

@test "QEMU stream without vmdesc: sections found by their footers, sizes only" {
    unxz_fixture novmdesc.stream
    unxz_fixture paused.stream
    run "$HOP" inspect "$T/novmdesc.stream"
    assert_success
    assert_line --partial "vmdesc: none"
    assert_line --partial "no description, size only"
    "$HOP" inspect --json "$T/novmdesc.stream" > "$T/a.json"
    "$HOP" inspect --json "$T/paused.stream" > "$T/b.json"
    q='[(x["idstr"], x["instance_id"], x["size"]) for x in d["devices"]]'
    assert_equal "$(py "$q" "$T/a.json")" "$(py "$q" "$T/b.json")"
    run "$HOP" inspect --verify "$T/novmdesc.stream"
    assert_success
    assert_output --partial "no vmdesc"
}

@test "hop's golden stream: every device and field, with the test set's values" {
    run "$HOP" inspect --json "$GOLDEN"
    assert_success
    echo "$output" > "$T/r.json"
    run py '[(x["idstr"], x["instance_id"], x["version_id"]) for x in d["devices"]]' "$T/r.json"
    assert_output "[('testdev', 0, 3), ('testdev', 1, 3), ('testled', 0, 1)]"
    # values from tests/unit/testdev.c testdev_fill(seed 0 and 1)
    f='d["devices"][0]["fields"]'
    run py "$f[\"s8\"], $f[\"s64\"], hex($f[\"u16\"]), hex($f[\"u64\"]), $f[\"flag\"]" "$T/r.json"
    assert_output "(-5, -1234567890123456789, '0xbeef', '0x123456789abcdef', True)"
    run py "$f[\"vbuf\"], $f[\"v8\"], $f[\"timer\"][\"td_timer/period\"][\"period\"]" "$T/r.json"
    assert_output "('68656c6c6f', [10, 11, 12], 250)"
    run py "$f[\"slots\"][1], $f[\"points\"][1], hex($f[\"magic\"])" "$T/r.json"
    assert_output "(None, {'x': -300, 'y': -400}, '0x686f7021')"
    run py "$f[\"testdev/fifo\"][\"testdev/fifo/overrun\"][\"overrun\"]" "$T/r.json"
    assert_output "9"
    g='d["devices"][1]["fields"]'
    run py "$g[\"s8\"], \"testdev/fifo\" in $g, \"extra\" in $g" "$T/r.json"
    assert_output "(-6, False, False)"
    run py 'd["devices"][2]["fields"]' "$T/r.json"
    assert_output "{'brightness': 200, 'on': True}"
    run "$HOP" inspect --verify "$GOLDEN"
    assert_success
    assert_output --partial ": ok: stream complete"
}

@test "hop stream with RAM: page counts and --extract-ram follow the generator's recipe" {
    [ -x "$GEN" ] || fail "gen-ram-stream not built (make tools)"
    "$GEN" "$T/g.stream" 8 --second-pass --expect "$T/expect"
    run "$HOP" inspect --json "$T/g.stream" --extract-ram "$T/ram"
    assert_success
    echo "$output" > "$T/r.json"
    # 2048 pages: pass one sends 1536 data + 512 zero pages; pass two
    # resends every 16th+1 as XBZRLE, every 16th+2 as zero, and fills
    # every 16th+4 (a zero page) with data.
    run py '[d["ram"]["blocks"][0]["pages"][k] for k in ("normal", "zero", "xbzrle", "compressed")]' "$T/r.json"
    assert_output "[1664, 640, 128, 0]"
    for f in "$T/expect"/*; do
        cmp "$f" "$T/ram/$(basename "$f")"
    done
    [ -f "$T/ram/rom@etc%2Fx" ]
    # extracting again over the same files: refused, or with --overwrite
    # the same bytes
    run --separate-stderr "$HOP" inspect "$T/g.stream" --extract-ram "$T/ram"
    assert_failure 1
    [[ $stderr == *"already exists (--overwrite replaces it)"* ]]
    cmp "$T/expect/pc.ram" "$T/ram/pc.ram"
    "$HOP" inspect "$T/g.stream" --extract-ram "$T/ram" --overwrite >/dev/null
    cmp "$T/expect/pc.ram" "$T/ram/pc.ram"
}

@test "--json has its documented top-level keys" {
    run "$HOP" inspect --json "$GOLDEN"
    assert_success
    echo "$output" > "$T/r.json"
    run py 'list(d)' "$T/r.json"
    assert_output "['size', 'machine', 'configuration', 'version', 'complete', 'vmdesc', 'records', 'devices', 'ram']"
    run py 'sorted(d["records"][1])' "$T/r.json"
    assert_output "['body_size', 'depth', 'idstr', 'instance_id', 'offset', 'section_id', 'size', 'type', 'version_id']"
    run py 'sorted(d["devices"][0])' "$T/r.json"
    assert_output "['decoded_by', 'fields', 'idstr', 'instance_id', 'offset', 'section_id', 'size', 'version_id', 'vmsd_name']"
}

@test "--section, --fields and --no-ram choose what is shown" {
    run "$HOP" inspect "$GOLDEN" --section testdev:1
    assert_success
    assert_line --regexp '^ +[0-9]+  FULL +1  testdev +1 +3 +[0-9]+$'
    refute_line --regexp 'FULL +0  testdev'
    refute_line --partial "testled"
    run "$HOP" inspect "$GOLDEN" --section testdev
    assert_line --regexp 'FULL +0  testdev'
    assert_line --regexp 'FULL +1  testdev'
    run --separate-stderr "$HOP" inspect "$GOLDEN" --section nosuch
    assert_failure 1
    [[ $stderr == *"no section 'nosuch'"* ]]
    [ -x "$GEN" ] || fail "gen-ram-stream not built"
    "$GEN" "$T/g.stream" 1
    run "$HOP" inspect "$T/g.stream"
    assert_line --regexp '^RAM: 2 blocks'
    run "$HOP" inspect "$T/g.stream" --no-ram
    refute_line --regexp '^RAM:'
    run "$HOP" inspect "$T/g.stream" --fields
    refute_line --partial "OFFSET"
    assert_line --partial "testled (instance 0"
    run "$HOP" inspect "$T/g.stream" --section ram
    assert_line --regexp '^RAM: 2 blocks'
    refute_line --partial "testdev"
}

@test "a stream read from a pipe gives the same report" {
    run "$HOP" inspect --json "$GOLDEN"
    local want=$output
    run bash -c "cat '$GOLDEN' | '$HOP' inspect --json -"
    assert_success
    # only the size-independent parts: the pipe has the same bytes
    assert_equal "$output" "$want"
}

@test "--against: would the golden stream load into a build with that schema" {
    S=$FIX/schemas
    run "$HOP" inspect "$GOLDEN" --against "$S/testset-v3.json" --no-ram
    assert_success
    assert_line "would load"
    run "$HOP" inspect "$GOLDEN" --against "$S/testset-older-build.json"
    assert_failure 1
    assert_line "error: testdev:0: version 3 is newer than the schema's version_id 2"
    assert_line "would not load"
    run "$HOP" inspect "$GOLDEN" --against "$S/testset-newer-build.json"
    assert_failure 1
    assert_line "error: testdev:1: version 3 is older than the schema's minimum_version_id 4"
    run "$HOP" inspect "$GOLDEN" --against "$S/testset-no-led-no-overrun.json"
    assert_failure 1
    assert_line --partial "error: testled:0: section unknown to the schema"
    assert_line --partial "testdev/fifo/overrun: the stream carries this subsection"
    run "$HOP" inspect "$GOLDEN" --against "$S/testset-other-machine.json"
    assert_failure 1
    assert_line --partial "machine type 'hop-test-1', the schema's is 'hop-test-2'"
    run "$HOP" inspect --json "$GOLDEN" --against "$S/testset-older-build.json"
    assert_failure 1
    echo "$output" > "$T/r.json"
    run py 'd["against"]["loads"], len(d["against"]["findings"])' "$T/r.json"
    assert_output "(False, 2)"
}

@test "usage errors exit 2" {
    run "$HOP" inspect
    assert_failure 2
    run "$HOP" inspect "$GOLDEN" --frob
    assert_failure 2
    run "$HOP" inspect "$GOLDEN" "$GOLDEN"
    assert_failure 2
    run "$HOP" inspect "$GOLDEN" --section
    assert_failure 2
    run "$HOP" inspect "$GOLDEN" --section dev:x
    assert_failure 2
    run "$HOP" inspect "$GOLDEN" --verify --json
    assert_failure 2
    run "$HOP" inspect --help
    assert_success
    assert_line --index 0 --partial "Usage: hop inspect FILE"
}
