#!/usr/bin/env bats
# The incoming side against clients that are not a migration source: a
# stalled or stray connection never holds up a real migration nor `quit`,
# and the listening socket never clobbers a file.

load helper
load mig-helper

STALL_PY=$HOP_SRC/tests/tools/stall.py

setup() {
    mig_setup
    STALL_PIDS=
}

teardown() {
    hop_stop_all
    local p
    for p in $STALL_PIDS; do
        kill "$p" 2>/dev/null || true
    done
}

# stall NAME ADDRESS [BYTES]: a client that connects, sends BYTES and
# then nothing; $D/NAME.who names it as hop should ("pid N" or tcp:...).
stall() {
    "$PY" "$STALL_PY" "$2" "$D/$1.who" "${3:-}" </dev/null >/dev/null 2>&1 &
    STALL_PIDS="$STALL_PIDS $!"
    wait_for "[ -s '$D/$1.who' ]" 10
}

# exits_within NAME SECS: the machine's process ends within SECS.
exits_within() {
    local pid
    pid=$(hop_pid "$1")
    wait_for "! kill -0 $pid 2>/dev/null" "$2"
}

# cpu_ticks PID: user + system time so far, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

@test "a silent client does not hold up the migration" {
    hop_start dst -m 64M -S -incoming "unix:$D/mig.sock"
    stall quiet "unix:$D/mig.sock"
    local quiet=$!
    hop_start src -m 64M
    wait_filled src
    # A real source, while the silent client is still connected.
    hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate -d unix:$D/mig.sock"
    wait_mig src completed 60
    compare_machines src dst 64M
    # It was let go: at its deadline, or when the listener closed.
    wait_for "! kill -0 $quiet 2>/dev/null" 20
    run cat "$D/dst.err"
    refute_output --partial "incoming migration failed"
}

@test "a silent tcp client is closed at the header deadline, naming it" {
    local port=$((20000 + RANDOM % 20000))
    hop_start dst -m 16M -S -incoming "tcp:127.0.0.1:$port"
    stall quiet "tcp:127.0.0.1:$port"
    local quiet=$!
    wait_for "grep -q 'sent no migration header' '$D/dst.err'" 20
    run cat "$D/dst.err"
    assert_output "hop: incoming migration: $(cat "$D/quiet.who") sent no migration header within 5000 ms; connection closed"
    wait_for "! kill -0 $quiet 2>/dev/null" 10
    # Still waiting for a source.
    run hop_mon dst "info status"
    assert_output --partial "inmigrate"
}

@test "quit returns at once while a client stalls before its header" {
    local port=$((20000 + RANDOM % 20000))
    hop_start dst -m 16M -S -incoming "tcp:127.0.0.1:$port"
    stall quiet "tcp:127.0.0.1:$port"
    sleep 0.5
    hop_mon dst "quit" >/dev/null
    exits_within dst 3
    run wait "$(hop_pid dst)"
    assert_success
    # Leaving is not a failed migration.
    run cat "$D/dst.err"
    refute_output --partial "failed"
}

@test "quit returns at once while waiting for a source, or while one stalls mid-stream" {
    hop_start dst -m 16M -S -incoming "unix:$D/mig.sock"
    hop_mon dst "quit" >/dev/null
    exits_within dst 3
    run cat "$D/dst.err"
    refute_output --partial "failed"
    # A source that sent the stream's magic and then nothing more.
    hop_start dst2 -m 16M -S -incoming "unix:$D/mig2.sock"
    stall half "unix:$D/mig2.sock" 'QEVM\x00\x00\x00\x03'
    sleep 0.5
    hop_mon dst2 "quit" >/dev/null
    exits_within dst2 3
}

@test "quit returns at once while an exec: source command stalls" {
    # A duration no other process here is likely to sleep for.
    local secs=120.$RANDOM$RANDOM
    hop_start dst -m 16M -S -incoming "exec:sleep $secs"
    sleep 0.5
    hop_mon dst "quit" >/dev/null
    exits_within dst 3
    # The command went with it.
    run pgrep -f "sleep $secs"
    assert_failure
}

@test "part of a header, then silence: closed at the deadline, no busy wait" {
    hop_start dst -m 16M -S -incoming "unix:$D/mig.sock"
    local pid before after
    pid=$(hop_pid dst)
    before=$(cpu_ticks "$pid")
    stall partial "unix:$D/mig.sock" 'HOPM'
    wait_for "grep -q 'sent no migration header' '$D/dst.err'" 20
    after=$(cpu_ticks "$pid")
    echo "cpu ticks over the wait: $((after - before))" >&3
    # Five seconds of waiting cost well under one second of CPU.
    [ $((after - before)) -lt 100 ]
    run cat "$D/dst.err"
    assert_output --partial "unix client $(cat "$D/partial.who") sent no migration header"
    run hop_mon dst "info status"
    assert_output --partial "inmigrate"
}

@test "a client sending something else is closed naming it; a migration still works" {
    hop_start dst -m 32M -S -incoming "unix:$D/mig.sock"
    stall junk "unix:$D/mig.sock" 'GET / HTTP/1.0\r\n\r\n'
    wait_for "grep -q 'sent neither' '$D/dst.err'" 10
    run cat "$D/dst.err"
    assert_output --partial "unix client $(cat "$D/junk.who") sent neither a migration stream nor a multifd or cpr channel header; connection closed"
    hop_start src -m 32M
    wait_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/mig.sock" "info migrate"
    assert_line "Migration status: completed"
    compare_machines src dst 32M
}

@test "-incoming unix: replaces an old socket, never another file; mode 0600" {
    # A regular file, a directory and a symlink at the path stay.
    echo keep >"$D/file"
    mkdir "$D/dir"
    ln -s "$D/file" "$D/link"
    local p
    for p in file dir link; do
        run timeout 20 "$HOP" run -m 16M -S -monitor none \
            -incoming "unix:$D/$p" </dev/null
        assert_failure
        assert_output --partial "unix:$D/$p: the path exists and is not a socket; refusing to replace it"
    done
    [ "$(cat "$D/file")" = keep ]
    [ -d "$D/dir" ]
    [ -L "$D/link" ]
    # A socket file left by an earlier listener is replaced.
    "$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
        "$D/old.sock"
    [ -S "$D/old.sock" ]
    umask 000
    hop_start dst -m 16M -S -incoming "unix:$D/old.sock"
    umask 022
    # Once the monitor answers, the listener is up.
    run hop_mon dst "info status"
    assert_output --partial "inmigrate"
    run stat -c %a "$D/old.sock"
    assert_output 600
}
