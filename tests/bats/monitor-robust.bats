#!/usr/bin/env bats
# Monitor clients that misbehave: one that never reads its answers, one
# that sends a line or a JSON message without end.  The others must be
# served as before, and hop's memory must stay bounded.

load helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    QMP_PY="$HOP_SRC/tests/tools/qmp.py"
    EXTRA_PIDS=
}

teardown() {
    local p
    for p in $EXTRA_PIDS; do
        kill "$p" 2>/dev/null || true
        timeout 5 tail --pid="$p" -f /dev/null 2>/dev/null ||
            kill -9 "$p" 2>/dev/null || true
    done
    hop_stop_all
}

start_vm() {
    hop_start vm -m 32M -guest echo -qmp "unix:$D/qmp.sock,server,nowait" "$@"
    wait_for "[ -S '$D/qmp.sock' ]" 10
}

# peak_kib PID: the process's peak resident size, in KiB.
peak_kib() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

# mon_send TEXT: one monitor conversation, bounded.
mon_send() {
    printf '%s\n' "$@" | timeout 30 socat -t 30 - "UNIX-CONNECT:$D/vm.mon"
}

@test "a QMP client that never reads its answers does not hold up the other monitors" {
    start_vm
    local pid before
    pid=$(hop_pid vm)
    before=$(peak_kib "$pid")
    python3 -u "$HOP_SRC/tests/tools/qmp-flood.py" "$D/qmp.sock" \
        >"$D/flood.out" 2>&1 &
    EXTRA_PIDS="$EXTRA_PIDS $!"
    wait_for "grep -q flooded '$D/flood.out'" 120 || {
        cat "$D/flood.out" >&2
        false
    }
    # The monitor socket and another QMP client are answered at once.
    run mon_send 'info status'
    assert_success
    assert_line --index 1 "(hop) VM status: running"
    run timeout 30 python3 "$QMP_PY" "$D/qmp.sock" query-status
    assert_success
    assert_line --index 2 --partial '"status": "running"'
    # Answers waiting for the flooding client stay bounded.
    local after=$(peak_kib "$pid")
    echo "$(cat "$D/flood.out") bytes; peak RSS $before KiB before, $after KiB after" >&3
    [ $((after - before)) -lt $((48 * 1024)) ]
    run mon_send 'quit'
    assert_success
    timeout 20 tail -s 0.05 --pid="$pid" -f /dev/null
}

@test "a QMP client that never reads its events does not hold up the monitor" {
    start_vm
    # It negotiates, so it is sent every event, and then sends nothing.
    python3 -u "$HOP_SRC/tests/tools/qmp-flood.py" "$D/qmp.sock" query-status 0 \
        >"$D/flood.out" 2>&1 &
    EXTRA_PIDS="$EXTRA_PIDS $!"
    wait_for "grep -q flooded '$D/flood.out'" 60
    # Each stop and cont sends it an event (STOP, RESUME).
    for i in $(seq 1000); do
        printf 'stop\ncont\n'
    done >"$D/cmds"
    echo 'info status' >>"$D/cmds"
    run timeout 120 socat -t 120 - "UNIX-CONNECT:$D/vm.mon" <"$D/cmds"
    assert_success
    # (stop and cont print nothing: the prompts share one line)
    assert_line --index 1 --regexp "^(\(hop\) ){2001}VM status: running$"
}

@test "a client that reads gets answers of any size, past the bound on unread events" {
    start_vm
    # 524288 lines of x, some 29 MB as one QMP answer.
    # Read until the greeting and the three answers are in (a sanitizer
    # build takes minutes to print it all), not for a fixed time.
    timeout 600 python3 - "$D/qmp.sock" >"$D/qmp.out" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(300)
s.sendall(b'{"execute": "qmp_capabilities"}\n'
          b'{"execute": "human-monitor-command", "arguments": '
          b'{"command-line": "xp /1048576xg 0"}}\n'
          b'{"execute": "query-status", "id": 1}\n')
buf = b""
while buf.count(b"\n") < 4:
    data = s.recv(1 << 20)
    if not data:
        break
    buf += data
sys.stdout.buffer.write(buf)
EOF
    run python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
print(len(lines))
print(json.loads(lines[2])["return"].count("\n"))
print(json.loads(lines[3])["id"])' "$D/qmp.out"
    assert_output "4
524288
1"
    # Over 60 MB on the monitor socket.
    printf 'xp /1048576cg 0\ninfo status\n' |
        timeout 120 socat -t 60 - "UNIX-CONNECT:$D/vm.mon" >"$D/hmp.out"
    run wc -l <"$D/hmp.out"
    assert_output 524290
    run tail -n 2 "$D/hmp.out"
    assert_output "(hop) VM status: running
(hop) "
    run cat "$D/vm.err"
    refute_output --partial dropping
}

@test "an HMP line without end is cut at 64 KiB; the client gets an error and is still served" {
    start_vm
    local pid before
    pid=$(hop_pid vm)
    before=$(peak_kib "$pid")
    { head -c 100M /dev/zero | tr '\0' a; printf '\ninfo status\n'; } |
        timeout 120 socat -t 60 - "UNIX-CONNECT:$D/vm.mon" >"$D/long.out"
    # The start of each line is enough (and keeps a failure's log short).
    run cut -c 1-100 "$D/long.out"
    assert_line --index 1 "(hop) Error: line longer than 65536 bytes; ignored up to its end"
    assert_line --index 2 "(hop) VM status: running"
    local after=$(peak_kib "$pid")
    echo "peak RSS $before KiB before, $after KiB after" >&3
    [ $((after - before)) -lt $((48 * 1024)) ]
    run mon_send 'info status'
    assert_line --index 1 "(hop) VM status: running"
}

@test "QMP messages too large or nested too deep get an error; the connection survives" {
    start_vm
    python3 -c 'import sys; sys.stdout.write("{\"execute\": \"" + "a" * (3 << 20) + "\"}")' >"$D/long"
    python3 -c 'import sys; sys.stdout.write("[" * (1 << 20) + "]" * (1 << 20))' >"$D/deep"
    python3 -c 'import sys; sys.stdout.write("[" * 1025 + "]" * 1025)' >"$D/deep-small"
    python3 -c 'import sys; sys.stdout.write("[" * 1024 + "]" * 1024)' >"$D/deep-ok"
    python3 -c 'import sys; sys.stdout.write("x" * (3 << 20))' >"$D/junk"
    run timeout 60 python3 "$QMP_PY" "$D/qmp.sock" --raw "@$D/long" "@$D/deep" \
        "@$D/deep-small" "@$D/deep-ok" "@$D/junk" \
        '{"execute": "query-status", "id": 7}'
    assert_success
    assert_line --index 2 '{"error": {"class": "GenericError", "desc": "JSON parse error, message longer than 1048576 bytes"}}'
    assert_line --index 3 '{"error": {"class": "GenericError", "desc": "JSON parse error, nesting deeper than 1024 levels"}}'
    assert_line --index 4 '{"error": {"class": "GenericError", "desc": "JSON parse error, nesting deeper than 1024 levels"}}'
    assert_line --index 5 '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}'
    assert_line --index 6 '{"error": {"class": "GenericError", "desc": "JSON parse error, expected a JSON object"}}'
    assert_line --index 7 '{"return": {"running": true, "singlestep": false, "status": "running"}, "id": 7}'
    assert_equal "${#lines[@]}" 8
}

@test "with its output stuck, a first SIGTERM is held and a second ends hop at once" {
    # stdout is a pipe that is never read: the monitor's answers fill it
    # and its next write blocks, as on a terminal stopped with Ctrl-S or
    # a pager that went away.  `kill` twice must still end the process.
    mkfifo "$D/in" "$D/out"
    exec 5<>"$D/in" 6<>"$D/out"
    "$HOP" run -m 32M -guest echo -serial none -monitor stdio \
        <"$D/in" >"$D/out" 2>"$D/err" &
    local pid=$!
    EXTRA_PIDS=$pid
    local i
    for i in $(seq 400); do
        echo help >&5
    done
    sleep 1
    kill -TERM "$pid"
    sleep 0.5
    kill -TERM "$pid"
    local st=0
    timeout 10 tail --pid="$pid" -f /dev/null || st=$?
    exec 5>&- 6<&-
    assert_equal "$st" 0
    wait "$pid" || st=$?
    assert_equal "$st" 143
    run cat "$D/err"
    assert_output --partial "second signal"
}
