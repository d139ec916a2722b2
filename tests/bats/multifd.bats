#!/usr/bin/env bats
# multifd: RAM over several connections; the destination must end with
# exactly the source's memory even though pages race on the channels.

load helper
load mig-helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    CHECK=$HOP_BUILD_DIR/tests/tools/memtest-check
}

teardown() {
    hop_stop_all
    [ -z "${SINK_PID:-}" ] || kill "$SINK_PID" 2>/dev/null || true
}

multifd_migrate() {
    local channels=$1 uri=$2
    hop_start dst -m 128M -S -incoming "$uri"
    hop_start src -m 128M
    wait_memtest_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate_set_capability multifd on" \
        "migrate_set_parameter multifd-channels $channels" \
        "migrate $uri" "info migrate"
    assert_success
    assert_line "Migration status: completed"
    # Most of RAM went over the extra channels.
    local kb
    kb=$(output_field 'multifd bytes')
    [ "$kb" -gt 100000 ]
    wait_for "hop_mon dst 'info status' | grep -q 'VM status: paused\$'" 20
    hop_mon src "pmemsave 0 134217728 \"$D/a.ram\"" "info registers" >"$D/a.regs"
    hop_mon dst "pmemsave 0 134217728 \"$D/b.ram\"" "info registers" >"$D/b.regs"
    cmp "$D/a.ram" "$D/b.ram"
    diff "$D/a.regs" "$D/b.regs"
    run "$CHECK" "$D/b.ram"
    assert_success
}

@test "multifd with 2 channels over unix: memory and registers equal" {
    multifd_migrate 2 "unix:$D/m.sock"
}

@test "multifd with 4 channels over tcp" {
    multifd_migrate 4 "tcp:127.0.0.1:$((20000 + RANDOM % 20000))"
}

@test "multifd needs a socket transport, and excludes xbzrle" {
    hop_start src -m 16M
    run hop_mon src "migrate_set_capability multifd on" \
        "migrate \"exec:cat > $D/x\"" \
        "migrate_set_capability xbzrle on" "info status"
    assert_output --partial "Error: multifd needs a tcp: or unix: URI"
    assert_output --partial "Error: capabilities xbzrle and multifd cannot be used together"
    assert_line "VM status: running"
}

@test "max-bandwidth also limits what multifd channels carry" {
    hop_start dst -m 64M -S -incoming "unix:$D/m.sock"
    hop_start src -m 64M
    wait_memtest_filled src
    # 64 MiB at 16 MiB/s: about four seconds, however fast the channels.
    run hop_mon src "stop" "migrate_set_capability multifd on" \
        "migrate_set_parameter max-bandwidth 16M" \
        "migrate unix:$D/m.sock" "info migrate"
    assert_line "Migration status: completed"
    local ms
    ms=$(output_field 'total time')
    [ "$ms" -ge 3000 ] || fail "64 MiB took only $ms ms at 16 MiB/s"
}

@test "multifd: every channel count the parameter takes works, and no more is taken" {
    hop_start dst -m 32M -S -incoming "unix:$D/m.sock"
    hop_start src -m 32M -S
    run hop_mon src "migrate_set_parameter multifd-channels 256" \
        "migrate_set_parameter multifd-channels 255" \
        "migrate_set_parameter max-bandwidth 0" \
        "migrate_set_capability multifd on" \
        "migrate unix:$D/m.sock" "info migrate"
    assert_line "Error: parameter 'multifd-channels' must be between 1 and 255 (got 256)"
    assert_line "Migration status: completed"
    wait_for "hop_mon dst 'info status' | grep -q 'VM status: paused\$'" 30
}

# fd_count PID: descriptors the process has open.
fd_count() {
    ls "/proc/$1/fd" | wc -l
}

@test "multifd: a start that fails or is cancelled leaves no descriptor open" {
    # A guest with data to send, slowly: still active when cancelled.
    hop_start src -m 32M
    wait_memtest_filled src
    local pid base
    pid=$(hop_pid src)
    base=$(fd_count "$pid")
    hop_mon src "migrate_set_capability multifd on" \
        "migrate_set_parameter multifd-channels 100" \
        "migrate_set_parameter max-bandwidth 4M" >/dev/null
    # A peer that takes the main connection and some channels, then
    # refuses the rest: the start fails part way.
    "$PY" "$HOP_SRC/tests/tools/sink.py" "$D/a.sock" -1 --accept 50 \
        </dev/null >/dev/null 2>&1 &
    SINK_PID=$!
    wait_for "[ -S '$D/a.sock' ]" 10
    run hop_mon src "migrate unix:$D/a.sock" "info migrate"
    # Connections past the accepted ones may still land in the listen
    # backlog, then break when the peer goes: either way a channel fails.
    assert_line --regexp "^Migration status: failed \(multifd channel [0-9]+: (cannot connect to unix:$D/a.sock|multifd channel write: Broken pipe)"
    kill "$SINK_PID"
    wait_for "[ \$(fd_count $pid) -eq $base ]" 10 ||
        fail "$(fd_count "$pid") descriptors open, $base before"
    # A peer that takes all of them and reads nothing: the migration
    # stalls until cancelled.
    "$PY" "$HOP_SRC/tests/tools/sink.py" "$D/b.sock" -1 --accept 101 \
        </dev/null >/dev/null 2>&1 &
    SINK_PID=$!
    wait_for "[ -S '$D/b.sock' ]" 10
    hop_mon src "migrate -d unix:$D/b.sock" >/dev/null
    # Connecting a hundred channels takes a while on a slow build.
    wait_for "hop_mon src 'info migrate' | grep -qx 'Migration status: active'" 60 ||
        fail "the migration did not become active"
    hop_mon src "migrate_cancel" >/dev/null
    wait_for "hop_mon src 'info migrate' | grep -Eq '^Migration status: (cancelled|failed)'" 20
    kill "$SINK_PID"
    wait_for "[ \$(fd_count $pid) -eq $base ]" 10 ||
        fail "$(fd_count "$pid") descriptors open, $base before"
}

@test "multifd: channels arriving as a load ends never reach a freed receiver" {
    # A small stream to load, and a client that keeps connecting channels
    # all through the load and as it ends.
    hop_start src -m 32M -S
    hop_mon src "migrate_set_parameter max-bandwidth 0" "migrate file:$D/s.mig"
    [ -s "$D/s.mig" ]
    local round flood
    for round in 1 2 3 4 5; do
        hop_start "dst$round" -m 32M -S -incoming "unix:$D/m$round.sock"
        "$PY" "$HOP_SRC/tests/tools/mfd-flood.py" "$D/m$round.sock" 30 \
            "$D/flood$round.ready" >"$D/flood$round" 2>&1 &
        flood=$!
        wait_for "[ -e '$D/flood$round.ready' ]" 10
        socat -u "OPEN:$D/s.mig" "UNIX-CONNECT:$D/m$round.sock"
        wait_for "hop_mon dst$round 'info status' | grep -q 'VM status: paused\$'" 30
        # The listener closed with the load: the flood stops by itself.
        run timeout 40 tail --pid="$flood" -f /dev/null
        assert_success
        echo "round $round: $(cat "$D/flood$round") channels tried" >&3
        kill -0 "$(hop_pid "dst$round")"
        run grep -E "Sanitizer|runtime error" "$D/dst$round.err"
        assert_failure
    done
}
