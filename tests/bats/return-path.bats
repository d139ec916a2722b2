#!/usr/bin/env bats
# Capability return-path: the destination tells the source, on the
# migration socket itself, whether it loaded the machine.  What a user
# relies on: a destination that fails at the very end (after the source
# sent everything) no longer loses the guest, which runs on at the
# source; a working migration completes as before; a return path that
# says something wrong, or nothing, fails the migration with a clear
# line and the guest runs on; a URI with no way back is refused up front.

load helper
load mig-helper

RP_PEER=$HOP_SRC/tests/tools/rp-peer.py

setup() {
    mig_setup
}

teardown() {
    hop_stop_all
}

# fails_at_the_end CAP: a 2-vCPU source into a 1-vCPU destination, which
# refuses the second CPU's state, the last thing the source sends.
fails_at_the_end() {
    hop_start dst -m 64M -smp 1 -S -incoming "unix:$D/mig.sock"
    hop_start src -m 64M -smp 2
    wait_filled src
    run hop_mon src "migrate_set_capability return-path $1" \
        "migrate_set_parameter max-bandwidth 0" \
        "migrate_set_parameter downtime-limit 5000" \
        "migrate unix:$D/mig.sock" "info migrate" "info status"
}

@test "return-path: a memtest guest moves, RAM and registers equal, the destination said it loaded" {
    migrate_running emu "unix:$D/mig.sock" "unix:$D/mig.sock" \
        "migrate_set_capability return-path on"
    run hop_mon src "info migrate_capabilities"
    assert_output --partial "return-path: on"
}

@test "return-path: a destination that fails at the end leaves the guest running at the source" {
    fails_at_the_end on
    assert_line "Migration status: failed (the destination could not load the machine (it said so on the return path: SHUT 1); the guest stays here)"
    assert_line "VM status: running"
    wait_for "! kill -0 $(hop_pid dst) 2>/dev/null" 30
    grep -q "unknown section 'cpu' instance 1" "$D/dst.err"
    serial_grows src
    # The guest is whole: its memory passes memtest's check, and it moves
    # to a destination that fits, byte for byte.
    hop_start fit -m 64M -smp 2 -S -incoming "unix:$D/fit.sock"
    run hop_mon src "migrate_set_parameter max-bandwidth 0" stop \
        "migrate unix:$D/fit.sock" "info migrate"
    assert_line "Migration status: completed"
    wait_for "hop_mon fit 'info status' | grep -qx 'VM status: paused'" 60
    hop_mon src "pmemsave 0 $(mem_bytes 64M) \"$D/src.ram\""
    hop_mon fit "pmemsave 0 $(mem_bytes 64M) \"$D/fit.ram\""
    cmp "$D/src.ram" "$D/fit.ram"
    run "$MEMTEST_CHECK" --smp 2 "$D/fit.ram"
    assert_success
}

@test "without return-path the same failure is reported as completed and the guest is lost (why the capability exists)" {
    fails_at_the_end off
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
}

@test "return-path with multifd: completes; the channels drain before the source waits for the word" {
    migrate_running emu "unix:$D/mig.sock" "unix:$D/mig.sock" \
        "migrate_set_capability return-path on" \
        "migrate_set_capability multifd on"
}

# hostile_word REPLY WANT: a destination that says REPLY (hex) on the
# return path fails the migration with WANT; the guest runs on.
hostile_word() {
    local peer
    hop_start src -m 64M
    wait_filled src
    timeout 120 "$PY" "$RP_PEER" "$D/peer.sock" "$1" &
    peer=$!
    wait_for "[ -S '$D/peer.sock' ]" 10
    run hop_mon src "migrate_set_capability return-path on" \
        "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/peer.sock" "info migrate" "info status"
    assert_line "Migration status: failed ($2)"
    assert_line "VM status: running"
    source_survives src 64M
    wait "$peer"
}

@test "return-path: an unknown message type fails the migration by name; the guest runs on" {
    hostile_word 00090000 "return path: message type 9 is not one (1-6)"
}

@test "return-path: a page request in precopy fails the migration by name; the guest runs on" {
    hostile_word 0004000c000000000000100000001000 \
        "return path: REQ_PAGES from the destination, which this migration (precopy) never asks for"
}

@test "return-path: a destination that hangs up without a word fails the migration; the guest runs on" {
    hop_start src -m 64M
    wait_filled src
    timeout 120 "$PY" "$RP_PEER" "$D/peer.sock" --close-when-idle &
    wait_for "[ -S '$D/peer.sock' ]" 10
    run hop_mon src "migrate_set_capability return-path on" \
        "migrate_set_parameter max-bandwidth 0" "stop" \
        "migrate unix:$D/peer.sock" "info migrate" "cont" "info status"
    assert_line "Migration status: failed (return path: the destination closed it without a word)"
    assert_line "VM status: running"
    source_survives src 64M
}

@test "return-path: cancel while the source waits for a silent destination; the guest runs on" {
    hop_start src -m 64M
    wait_filled src
    timeout 120 "$PY" "$RP_PEER" "$D/peer.sock" --silent &
    wait_for "[ -S '$D/peer.sock' ]" 10
    run hop_mon src "migrate_set_capability return-path on" \
        "migrate_set_parameter max-bandwidth 0" "stop" \
        "migrate -d unix:$D/peer.sock"
    assert_success
    refute_output --partial Error
    # Everything goes, then the source waits (in status device).
    wait_for "[ \"\$(mig_status src)\" = device ]" 60 || fail "status $(mig_status src)"
    sleep 1
    [ "$(mig_status src)" = device ]
    hop_mon src "migrate_cancel"
    wait_mig src cancelled 30 || fail "status $(mig_status src) after migrate_cancel"
    run hop_mon src "cont" "info status"
    assert_line "VM status: running"
    source_survives src 64M
}

@test "return-path refused for exec:, file: and memfd: URIs before anything stops" {
    hop_start src -m 64M
    wait_filled src
    local uri
    for uri in "exec:cat >/dev/null" "file:$D/state" "memfd:"; do
        run hop_mon src "migrate_set_capability return-path on" "migrate \"$uri\"" "info status"
        assert_line "Error: capability return-path needs a socket (tcp:, unix: or fd: of a socket): nothing comes back from '$uri'"
        assert_line "VM status: running"
    done
    [ ! -e "$D/state" ]
}

@test "QMP: return-path in query-migrate-capabilities, set by migrate-set-capabilities" {
    hop_start src -m 64M -qmp "unix:$D/src.qmp,server,nowait"
    wait_for "[ -S '$D/src.qmp' ]" 10
    run timeout 60 "$PY" "$QMP_PY" "$D/src.qmp" \
        '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"return-path","state":true}]}}' \
        query-migrate-capabilities
    assert_success
    assert_output --partial '{"capability": "return-path", "state": true}'
}
