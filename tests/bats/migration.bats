#!/usr/bin/env bats
# Live migration between two hop processes: the guest keeps running on
# the destination, and its memory and registers are exactly the source's.

load helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    CHECK=$HOP_BUILD_DIR/tests/tools/memtest-check
}

teardown() {
    hop_stop_all
}

# migrate_and_compare ACCEL URI_SRC URI_DST [source monitor commands...]
# Starts a memtest destination (-S, so it stays put after loading) and a
# running source, migrates, then checks: the source is in postmigrate,
# RAM dumps and registers agree, and the memtest invariant holds.
migrate_and_compare() {
    local accel=$1 dst_uri=$2 src_uri=$3
    shift 3
    local mem=${MEM:-64M}
    hop_start dst -accel "$accel" -m "$mem" -S -incoming "$dst_uri"
    hop_start src -accel "$accel" -m "$mem"
    wait_memtest_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" "$@" \
        "migrate $src_uri" "info migrate" "info status"
    assert_success
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
    wait_for "hop_mon dst 'info status' | grep -q 'VM status: paused'" 20
    local bytes=$(( $(numfmt --from=iec "${mem}") ))
    hop_mon src "pmemsave 0 $bytes \"$D/src.ram\"" "info registers" \
        >"$D/src.regs"
    hop_mon dst "pmemsave 0 $bytes \"$D/dst.ram\"" "info registers" \
        >"$D/dst.regs"
    cmp "$D/src.ram" "$D/dst.ram"
    diff "$D/src.regs" "$D/dst.regs"
    run "$CHECK" "$D/dst.ram"
    assert_success
}

@test "unix: a running memtest guest moves, memory and registers equal" {
    migrate_and_compare emu "unix:$D/mig.sock" "unix:$D/mig.sock"
}

@test "tcp on IPv4 and IPv6 loopback" {
    local port=$((20000 + RANDOM % 20000))
    migrate_and_compare emu "tcp:127.0.0.1:$port" "tcp:127.0.0.1:$port"
    hop_stop_all
    port=$((port + 1))
    migrate_and_compare emu "tcp:[::1]:$port" "tcp:[::1]:$port"
}

@test "exec: on the source, file: on the destination" {
    hop_start src -m 32M
    wait_memtest_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate \"exec:cat > $D/s.stream\"" "info migrate"
    assert_line "Migration status: completed"
    hop_start dst -m 32M -S -incoming "file:$D/s.stream"
    wait_for "hop_mon dst 'info status' | grep -q 'VM status: paused\$'" 20
    hop_mon src "pmemsave 0 33554432 \"$D/a.ram\"" "info registers" \
        >"$D/a.regs"
    hop_mon dst "pmemsave 0 33554432 \"$D/b.ram\"" "info registers" \
        >"$D/b.regs"
    cmp "$D/a.ram" "$D/b.ram"
    diff "$D/a.regs" "$D/b.regs"
}

@test "file: with an offset, then -incoming file: at that offset" {
    hop_start src -m 32M
    wait_memtest_filled src
    printf 'header!!' >"$D/f.bin"
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate file:$D/f.bin,offset=4096" "info migrate"
    assert_line "Migration status: completed"
    [ "$(head -c 8 "$D/f.bin")" = "" ] || true
    hop_start dst -m 32M -S -incoming "file:$D/f.bin,offset=4096"
    wait_for "hop_mon dst 'info status' | grep -q 'VM status: paused\$'" 20
    hop_mon src "pmemsave 0 33554432 \"$D/a.ram\""
    hop_mon dst "pmemsave 0 33554432 \"$D/b.ram\""
    cmp "$D/a.ram" "$D/b.ram"
}

@test "the destination runs on after the switch: serial marks keep coming" {
    hop_start dst -m 64M -incoming "unix:$D/m.sock"
    hop_start src -m 64M
    wait_memtest_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/m.sock" "info migrate"
    assert_line "Migration status: completed"
    wait_for "hop_mon dst 'info status' | grep -q 'VM status: running'" 20
    local a b
    a=$(wc -c <"$D/dst.serial")
    sleep 1
    b=$(wc -c <"$D/dst.serial")
    [ "$b" -gt "$a" ]
}

@test "a failed migration leaves the source running with its memory intact" {
    hop_start src -m 32M
    wait_memtest_filled src
    run hop_mon src "migrate unix:$D/nobody.sock" "info status" "info migrate"
    assert_output --partial "Error: cannot connect to unix:$D/nobody.sock"
    assert_line "VM status: running"
    hop_mon src "stop" "pmemsave 0 33554432 \"$D/a.ram\""
    run "$CHECK" "$D/a.ram"
    assert_success
}

@test "the destination rejects a corrupted stream and exits non-zero" {
    hop_start src -m 32M
    wait_memtest_filled src
    hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate \"exec:cat > $D/good.stream\""
    cp "$D/good.stream" "$D/bad.stream"
    # The configuration section names the machine: break it.
    printf 'X' | dd of="$D/bad.stream" bs=1 seek=13 conv=notrunc 2>/dev/null
    run timeout 30 "$HOP" run -m 32M -monitor none -serial none \
        -incoming "file:$D/bad.stream"
    assert_failure 1
    assert_output --partial "incoming migration failed: machine type mismatch"
}
