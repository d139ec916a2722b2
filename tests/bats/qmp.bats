#!/usr/bin/env bats
# QMP over -qmp unix:PATH,server,nowait: the greeting, capabilities
# negotiation, each command, events, and errors that leave the connection
# usable.

load helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    QMP_PY="$HOP_SRC/tests/tools/qmp.py"
}

teardown() {
    hop_stop_all
}

# start_qmp [hop run options]: a machine with a monitor and a QMP socket.
start_qmp() {
    hop_start vm -m 32M -qmp "unix:$D/qmp.sock,server,nowait" "$@"
    wait_for "[ -S '$D/qmp.sock' ]" 10
}

qmp() {
    timeout 60 python3 "$QMP_PY" "$D/qmp.sock" "$@"
}

# qmp_run ARGS...: like `run qmp ARGS...`, and flattens every response
# once into FLAT as "LINE:path.to.key=value" (strings without quotes, JSON
# escapes kept; {} and [] for empty containers).
qmp_run() {
    run qmp "$@"
    flatten
}

# qmp_run_file FILE: the same for a file of responses.
qmp_run_file() {
    run cat "$1"
    flatten
}

flatten() {
    FLAT=$(printf '%s\n' "${lines[@]}" | python3 -c '
import json, sys
def walk(i, path, v):
    key = ".".join(path)
    if isinstance(v, dict) and v:
        for k, x in v.items():
            walk(i, path + [k], x)
    elif isinstance(v, list) and v:
        for k, x in enumerate(v):
            walk(i, path + [str(k)], x)
    elif isinstance(v, str):
        print("%d:%s=%s" % (i, key, json.dumps(v)[1:-1]))
    else:
        print("%d:%s=%s" % (i, key, json.dumps(v)))
for i, line in enumerate(sys.stdin):
    try:
        walk(i, [], json.loads(line))
    except ValueError:
        print("%d:=%s" % (i, line.rstrip("\n")))
')
}

# jv LINE PATH: a value of the last qmp_run ("return.status").
jv() {
    local l
    while IFS= read -r l; do
        if [[ $l == "$1:$2="* ]]; then
            printf '%s\n' "${l#*=}"
            return 0
        fi
    done <<<"$FLAT"
    echo "no $2 in response $1" >&2
    return 1
}

# assert_qmp_error LINE CLASS DESC-SUBSTRING
assert_qmp_error() {
    assert_equal "$(jv "$1" error.class)" "$2"
    [[ "$(jv "$1" error.desc)" == *"$3"* ]] ||
        fail "desc '$(jv "$1" error.desc)' does not contain '$3'"
}

@test "greeting, then capabilities negotiation" {
    start_qmp
    qmp_run qmp_capabilities
    assert_success
    assert_equal "${#lines[@]}" 3
    local v
    v=$("$HOP" --version | sed 's/^hop \([0-9]*\)\.\([0-9]*\)\.\([0-9]*\) .*/\1 \2 \3/')
    assert_equal "$(jv 0 QMP.capabilities)" "[]"
    assert_equal "$(jv 0 QMP.version.qemu.major) $(jv 0 QMP.version.qemu.minor) $(jv 0 QMP.version.qemu.micro)" "$v"
    assert_equal "$(jv 1 return)" "{}"
    # A second negotiation is refused.
    assert_qmp_error 2 CommandNotFound "already complete"
}

@test "commands are refused before qmp_capabilities" {
    start_qmp
    qmp_run --no-negotiate query-status \
        '{"execute": "qmp_capabilities", "id": 1}' query-status
    assert_success
    assert_qmp_error 1 CommandNotFound "qmp_capabilities"
    assert_equal "$(jv 2 return)" "{}"
    assert_equal "$(jv 2 id)" "1"
    assert_equal "$(jv 3 return.status)" "running"
}

@test "query-status, stop with a STOP event, cont with a RESUME event" {
    start_qmp
    qmp_run query-status stop query-status cont query-status
    assert_success
    assert_equal "$(jv 2 return.running) $(jv 2 return.singlestep) $(jv 2 return.status)" \
        "true false running"
    assert_equal "$(jv 3 return)" "{}"
    assert_equal "$(jv 4 event)" "STOP"
    jv 4 timestamp.seconds >/dev/null
    jv 4 timestamp.microseconds >/dev/null
    assert_equal "$(jv 5 return.status)" "paused"
    assert_equal "$(jv 5 return.running)" "false"
    assert_equal "$(jv 6 return)" "{}"
    assert_equal "$(jv 7 event)" "RESUME"
    assert_equal "$(jv 8 return.status)" "running"
    # The human monitor agrees.
    run hop_mon vm 'info status'
    assert_output "VM status: running"
}

@test "query-version and query-name" {
    start_qmp -name qmp-machine
    qmp_run query-version query-name
    local v
    v=$("$HOP" --version | sed 's/^hop \([0-9.]*\) .*/\1/')
    assert_equal "$(jv 2 return.package)" "hop $v"
    assert_equal "$(jv 2 return.qemu.major).$(jv 2 return.qemu.minor).$(jv 2 return.qemu.micro)" "$v"
    assert_equal "$(jv 3 return.name)" "qmp-machine"
    hop_stop_all
    start_qmp
    qmp_run query-name
    assert_equal "$(jv 2 return)" '{}'
}

@test "query-cpus-fast lists each vCPU and its thread" {
    start_qmp -smp 2
    qmp_run query-cpus-fast
    assert_success
        assert_equal "$(jv 2 return.0.cpu-index) $(jv 2 return.1.cpu-index)" "0 1"
    assert_equal "$(jv 2 return.1.qom-path)" "/machine/cpu[1]"
    [ -d "/proc/$(hop_pid vm)/task/$(jv 2 return.0.thread-id)" ]
    [ -d "/proc/$(hop_pid vm)/task/$(jv 2 return.1.thread-id)" ]
    # The same threads as info cpus shows.
    run hop_mon vm 'info cpus'
    assert_line --index 1 "  CPU #1: thread_id=$(jv 2 return.1.thread-id)"
}

@test "human-monitor-command runs an HMP command line" {
    start_qmp -S
    qmp_run '{"execute": "human-monitor-command", "arguments": {"command-line": "info status"}}' \
        '{"execute": "human-monitor-command", "arguments": {"command-line": "info migrate extra", "cpu-index": 0}}' \
        '{"execute": "human-monitor-command", "arguments": {"command-line": "cont"}}' \
        query-status
    assert_success
    assert_equal "$(jv 2 return)" 'VM status: paused (prelaunch)\n'
    assert_equal "$(jv 3 return)" \
        "Error: info migrate: unexpected argument 'extra'\\n"
    assert_equal "$(jv 4 return)" ""
    assert_equal "$(jv 5 event)" "RESUME"
    assert_equal "$(jv 6 return.status)" "running"
}

@test "system_reset sends RESET and the guest starts over" {
    start_qmp -guest echo
    wait_for "grep -q 'echo: ready' '$D/vm.serial'" 30
    qmp_run system_reset --events 1
    assert_success
    assert_equal "$(jv 2 return)" "{}"
    assert_equal "$(jv 3 event)" "RESET"
    wait_for "[ \$(grep -c 'echo: ready' '$D/vm.serial') = 2 ]" 10
}

@test "quit: a SHUTDOWN event, exit status 0, sockets removed" {
    start_qmp
    local pid
    pid=$(hop_pid vm)
    qmp_run quit --events 1
    assert_success
    assert_equal "$(jv 2 return)" "{}"
    assert_equal "$(jv 3 event)" "SHUTDOWN"
    assert_equal "$(jv 3 data.guest)" "false"
    timeout 20 tail -s 0.05 --pid="$pid" -f /dev/null
    run wait "$pid"
    assert_success
    [ ! -e "$D/qmp.sock" ]
    [ ! -e "$D/vm.mon" ]
}

@test "malformed JSON, unknown commands and wrong arguments get errors; the connection survives" {
    start_qmp
    qmp_run --raw 'this is not json' '{"execute": }' '[1, 2]' \
        '{"execute": "nosuch", "id": "a"}' \
        '{"execute": 42}' \
        '{"arguments": {}}' \
        '{"execute": "query-status", "bogus": 1}' \
        '{"execute": "query-status", "arguments": []}' \
        '{"execute": "human-monitor-command", "arguments": {"command-line": 42}}' \
        '{"execute": "human-monitor-command", "arguments": {}}' \
        '{"execute": "stop", "arguments": {"x": 1}}' \
        '{"execute": "query-status", "id": 7}'
    assert_success
    assert_qmp_error 2 GenericError "JSON parse error"
    assert_qmp_error 3 GenericError "JSON parse error"
    assert_qmp_error 4 GenericError "QMP input must be a JSON object"
    assert_qmp_error 5 CommandNotFound "The command nosuch has not been found"
    assert_equal "$(jv 5 id)" "a"
    assert_qmp_error 6 GenericError "'execute' must be a string"
    assert_qmp_error 7 GenericError "lacks member 'execute'"
    assert_qmp_error 8 GenericError "'bogus' is unexpected"
    assert_qmp_error 9 GenericError "'arguments' must be an object"
    assert_qmp_error 10 GenericError "Invalid parameter type for 'command-line', expected: string"
    assert_qmp_error 11 GenericError "Parameter 'command-line' is missing"
    assert_qmp_error 12 GenericError "Parameter 'x' is unexpected"
    # Still served, and the machine still runs.
    assert_equal "$(jv 13 return.status)" "running"
    assert_equal "$(jv 13 id)" "7"
    assert_equal "${#lines[@]}" 14
}

@test "two QMP clients at once both receive events" {
    start_qmp
    python3 -u "$QMP_PY" "$D/qmp.sock" --events 2 >"$D/a.out" 2>&1 &
    local a=$!
    # A has negotiated (greeting and return printed).
    wait_for "[ \$(wc -l <'$D/a.out') -ge 2 ]" 10
    qmp_run stop cont --events 1
    assert_success
    assert_equal "$(jv 3 event)" "STOP"
    assert_equal "$(jv 5 event)" "RESUME"
    timeout 20 tail -s 0.05 --pid="$a" -f /dev/null
    wait "$a"
    qmp_run_file "$D/a.out"
    assert_equal "${#lines[@]}" 4
    assert_equal "$(jv 2 event)" "STOP"
    assert_equal "$(jv 3 event)" "RESUME"
}
