#!/usr/bin/env bats
# mapped-ram: a file: migration with every page at a fixed offset of the
# file; zero pages are never written, the destination reads the pages
# back (in parallel with multifd), and the guest's RAM comes back equal.

load helper
load mig-helper

setup() {
    mig_setup
}

teardown() {
    hop_stop_all
}

# mapped_save NAME FILE [monitor commands]: saves machine NAME with
# mapped-ram to FILE; the output of `info migrate` is in $output.
mapped_save() {
    local name=$1 file=$2
    shift 2
    run hop_mon "$name" "migrate_set_capability mapped-ram on" \
        "migrate_set_parameter max-bandwidth 0" \
        "migrate_set_parameter downtime-limit 5000" "$@" \
        "migrate file:$file" "info migrate" "info status"
    assert_success
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
}

# mapped_load NAME FILE MEM [monitor commands]: a new -S machine loads FILE.
mapped_load() {
    local name=$1 file=$2 mem=$3
    shift 3
    hop_start "$name" -m "$mem" -S -incoming defer
    run hop_mon "$name" "$@" "migrate_incoming file:$file"
    refute_output --partial "Error"
}

# header_field FILE FIELD: a field of the first block's mapped-ram entry
# from hop inspect --json.
header_field() {
    "$HOP" inspect --json "$1" |
        $PY -c "import json,sys; print(json.load(sys.stdin)['ram']['blocks'][0]['mapped_ram']['$2'])"
}

# O_DIRECT works in the test directory (not on tmpfs, for one).
direct_io_works() {
    dd if=/dev/zero of="$D/odirect" bs=4096 count=1 oflag=direct 2>/dev/null
}

@test "mapped-ram: a running guest, several dirty passes: RAM equal, file not larger than RAM" {
    hop_start src -m 64M
    wait_filled src
    # The guest dirties its memory meanwhile: pages go more than once.
    mapped_save src "$D/vm.mr"
    local syncs normal
    syncs=$(output_field 'dirty sync count')
    normal=$(output_field 'normal')
    [ "$syncs" -ge 2 ]
    [ "$normal" -gt $((64 * 256)) ]
    # Every page has one place: the file is RAM, a 1 MiB aligned header
    # area and the device state, however often pages were rewritten.
    local size
    size=$(stat -c %s "$D/vm.mr")
    [ "$size" -le $((64 * 1024 * 1024 + 2 * 1024 * 1024)) ]
    mapped_load dst "$D/vm.mr" 64M
    compare_machines src dst 64M
}

@test "mapped-ram while it runs: the pages count as sent; cancel leaves the guest running" {
    hop_start src -m 64M
    wait_filled src
    # A slow link: the save lasts seconds.  The bandwidth the switch-over
    # decision rests on is that of the pages written into the file, not
    # the few bytes of the stream around them.
    hop_mon src "migrate_set_capability mapped-ram on" \
        "migrate_set_parameter max-bandwidth 8M" "migrate -d file:$D/vm.mr" \
        >/dev/null
    wait_for "hop_mon src 'info migrate' | grep -q '^throughput: [1-9][0-9]'" 20
    run hop_mon src "info migrate"
    assert_line "Migration status: active"
    local mbps
    mbps=$(sed -n 's/^throughput: \([0-9]*\).*/\1/p' <<<"$output")
    [ "$mbps" -ge 30 ] && [ "$mbps" -le 120 ]
    hop_mon src "migrate_cancel" >/dev/null
    wait_for "hop_mon src 'info migrate' | grep -q '^Migration status: cancelled'" 20
    hop_mon src "migrate_set_capability mapped-ram off" >/dev/null
    source_survives src 64M
}

@test "mapped-ram with multifd: saved with 4 channels, read by 3 threads; RAM and registers equal" {
    hop_start src -m 128M
    wait_filled src
    mapped_save src "$D/vm.mr" "migrate_set_capability multifd on" \
        "migrate_set_parameter multifd-channels 4"
    mapped_load dst "$D/vm.mr" 128M "migrate_set_capability multifd on" \
        "migrate_set_parameter multifd-channels 3"
    compare_machines src dst 128M
}

# trace_writes NAME FILE: traces the pwritev calls of machine NAME into
# FILE (strace -f: threads started later too) until trace_stop.
trace_writes() {
    command -v strace >/dev/null || skip "strace is not installed"
    local pid
    pid=$(cat "$BATS_TEST_TMPDIR/$1.pid")
    timeout 120 strace -f -qq -e trace=pwritev -e signal=none -o "$2" \
        -p "$pid" 2>"$2.err" &
    TRACE_PID=$!
    wait_for "! grep -q '^TracerPid:[[:space:]]*0$' /proc/$pid/status" 10 ||
        skip "strace cannot attach here: $(head -1 "$2.err")"
}

trace_stop() {
    kill -INT "$TRACE_PID" 2>/dev/null || true
    wait "$TRACE_PID" || true
}

@test "mapped-ram through the page cache: 128 KiB writes from one thread, with multifd too" {
    hop_start src -m 64M
    wait_filled src
    hop_mon src stop >/dev/null
    trace_writes src "$D/trace"
    mapped_save src "$D/vm.mr" "migrate_set_capability multifd on" \
        "migrate_set_parameter multifd-channels 4"
    trace_stop
    # Writes of 1 MiB made the kernel take 1 MiB folios for the page
    # cache, memory the host may have taken back: a save many times
    # slower.  Writer threads only contended for the file's lock.
    local n big tids
    n=$(grep -c 'pwritev(' "$D/trace")
    big=$(awk -F'= ' '/pwritev\(/ && $NF + 0 > 131072' "$D/trace" | head -3)
    tids=$(awk '/pwritev\(/ { print $1 }' "$D/trace" | sort -u | wc -l)
    # 64 MiB, most of it filled: hundreds of writes, not one per MiB.
    [ "$n" -ge 256 ] || fail "$n pwritev calls for 64 MiB"
    [ -z "$big" ] || fail "writes over 128 KiB: $big"
    [ "$tids" -eq 1 ] || fail "pwritev from $tids threads"
    mapped_load dst "$D/vm.mr" 64M
    compare_machines src dst 64M
}

@test "mapped-ram with multifd and direct-io on both ends" {
    direct_io_works || skip "O_DIRECT is not supported in $D"
    hop_start src -m 64M
    wait_filled src
    hop_mon src stop >/dev/null
    mapped_save src "$D/vm.mr" "migrate_set_capability multifd on" \
        "migrate_set_parameter direct-io on"
    mapped_load dst "$D/vm.mr" 64M "migrate_set_capability multifd on" \
        "migrate_set_parameter direct-io on"
    compare_machines src dst 64M
}

@test "mapped-ram: zero pages are not written (a sparse file), inspect counts them" {
    # A guest that never ran: RAM is the firmware and zeros.
    hop_start src -m 256M -S
    mapped_save src "$D/vm.mr"
    # Apparent size covers RAM; the blocks on disk only what was written.
    [ "$(stat -c %s "$D/vm.mr")" -ge $((256 * 1024 * 1024)) ]
    [ "$(du -k "$D/vm.mr" | cut -f1)" -lt 4096 ]
    run "$HOP" inspect "$D/vm.mr"
    assert_success
    assert_output --partial "mapped-ram: pages at fixed offsets"
    local written
    written=$(header_field "$D/vm.mr" pages_written)
    [ "$written" -gt 0 ]
    [ "$written" -lt 1024 ]
    [ "$(header_field "$D/vm.mr" pages_offset)" = 1048576 ]
    mapped_load dst "$D/vm.mr" 256M
    compare_machines_nocheck src dst 256M
}

# As compare_machines, for a guest that never ran (no memtest pattern).
compare_machines_nocheck() {
    local bytes
    bytes=$(mem_bytes "$3")
    wait_for "hop_mon $2 'info status' | grep -qx 'VM status: paused'" 60
    hop_mon "$1" "pmemsave 0 $bytes \"$D/$1.ram\"" >/dev/null
    hop_mon "$2" "pmemsave 0 $bytes \"$D/$2.ram\"" >/dev/null
    cmp "$D/$1.ram" "$D/$2.ram"
}

@test "mapped-ram: hop inspect --extract-ram equals pmemsave" {
    hop_start src -m 32M
    wait_filled src
    hop_mon src stop "pmemsave 0 33554432 \"$D/mem.bin\"" >/dev/null
    mapped_save src "$D/vm.mr"
    run "$HOP" inspect --verify "$D/vm.mr"
    assert_success
    run "$HOP" inspect --json "$D/vm.mr"
    assert_success
    assert_output --partial '"mapped_ram": true'
    run "$HOP" inspect "$D/vm.mr" --extract-ram "$D/ram" --no-ram
    assert_success
    cmp "$D/mem.bin" "$D/ram/pc.ram"
}

@test "mapped-ram is refused, in one line, where it makes no sense; the guest runs on" {
    hop_start src -m 16M
    run hop_mon src "migrate_set_capability mapped-ram on" \
        "migrate unix:$D/none.sock" \
        "migrate \"exec:cat > $D/x\"" \
        "migrate_set_capability xbzrle on" \
        "migrate_set_capability release-ram on" \
        "migrate_set_parameter mode cpr-transfer" "migrate file:$D/y" \
        "migrate_set_parameter mode normal" \
        "migrate_set_capability mapped-ram off" \
        "migrate_set_parameter direct-io on" "migrate file:$D/z" \
        "info status"
    assert_line "Error: capability mapped-ram needs a file: URI (got 'unix:$D/none.sock')"
    assert_line "Error: capability mapped-ram needs a file: URI (got 'exec:cat > $D/x')"
    assert_line --partial "Error: capabilities mapped-ram and xbzrle cannot be used together"
    assert_line --partial "Error: capabilities mapped-ram and release-ram cannot be used together"
    assert_line "Error: capability mapped-ram cannot be used with mode cpr-transfer"
    assert_line "Error: parameter direct-io needs the mapped-ram capability"
    assert_line "VM status: running"
    [ ! -e "$D/y" ] && [ ! -e "$D/z" ]
    serial_grows src
}

@test "direct-io where O_DIRECT is refused: one line, the guest runs on" {
    [ -d /dev/shm ] && dd if=/dev/zero of=/dev/shm/hop-odirect-$$ bs=4096 \
        count=1 oflag=direct 2>/dev/null && {
        rm -f /dev/shm/hop-odirect-$$
        skip "/dev/shm takes O_DIRECT here"
    }
    rm -f /dev/shm/hop-odirect-$$
    local f=/dev/shm/hop-mr-$$-$RANDOM
    hop_start src -m 16M
    run hop_mon src "migrate_set_capability mapped-ram on" \
        "migrate_set_parameter direct-io on" "migrate file:$f" \
        "info migrate" "info status"
    rm -f "$f"
    assert_output --partial "does not support O_DIRECT"
    assert_line "VM status: running"
    serial_grows src
}

# patch FILE OFFSET PACK VALUE: writes a big-endian value into FILE.
patch() {
    $PY -c "import struct,sys; f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2])); f.write(struct.pack(sys.argv[3], int(sys.argv[4])))" "$@"
}

@test "hostile mapped-ram headers: one-line errors naming the block and field" {
    hop_start src -m 16M -S
    mapped_save src "$D/vm.mr"
    local bm hdr size
    bm=$(header_field "$D/vm.mr" bitmap_offset)
    hdr=$((bm - 28))
    size=$(stat -c %s "$D/vm.mr")
    # field offset (in the header), format, value, expected message
    local cases=(
        "0 >I 2 mapped-ram header version 2"
        "4 >Q 65536 mapped-ram page_size 65536"
        "12 >Q $((size + 4096)) mapped-ram bitmap_offset"
        "12 >Q 8 overlaps the stream"
        "20 >Q 0 mapped-ram pages_offset 0 overlaps the bitmap"
        "20 >Q 1048577 is not page-aligned"
        "20 >Q 1073741824 is past the end of the file"
    )
    local c
    for c in "${cases[@]}"; do
        read -r off fmt val msg <<<"$c"
        cp "$D/vm.mr" "$D/bad.mr"
        patch "$D/bad.mr" $((hdr + off)) "$fmt" "$val"
        run --separate-stderr "$HOP" inspect "$D/bad.mr"
        assert_failure
        [[ "$stderr" == *"RAM block 'pc.ram': "*"$msg"* ]]
        [ "${#stderr_lines[@]}" -eq 1 ]
    done
    # A destination refuses it the same way, in one line, and leaves the
    # file as it was.
    local sum
    sum=$(md5sum <"$D/bad.mr")
    run --separate-stderr timeout 60 "$HOP" run -m 16M -S -monitor none \
        -incoming "file:$D/bad.mr"
    assert_failure
    [[ "$stderr" == *"RAM block 'pc.ram': mapped-ram pages_offset 1073741824 "*"past the end of the file"* ]]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [ "$(md5sum <"$D/bad.mr")" = "$sum" ]
}
