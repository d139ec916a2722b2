#!/usr/bin/env bats
# mode cpr-exec: `migrate memfd:` replaces a running hop with a new one in
# the same process.  Guest RAM stays where it is (on a shared memory
# backend), the device state goes through a memfd, the monitor sockets
# stay open across the exec.  What a user relies on: same PID, the guest
# runs on with its memory intact (or stays paused, byte for byte), the
# disk, the serial log and the monitor paths carry on, a failed exec
# leaves the guest running, and the refusals say why.

load helper
load mig-helper
load snap-helper

setup() {
    mig_setup
    SHARED=(-object memory-backend-memfd,id=mem,size=64M,share=on
        -machine memory-backend=mem)
}

teardown() {
    hop_stop_all
    # Neither an old nor a new hop reported a sanitizer error.
    if grep -E "Sanitizer|runtime error" "$D"/*.err; then
        fail "a sanitizer report (above)"
    fi
}

# start_vm NAME [hop run options...]: a 64M memtest guest (emu) with HMP
# on NAME.mon, QMP on NAME.qmp, serial to NAME.serial.
start_vm() {
    local name=$1
    shift
    hop_start "$name" -accel emu -m 64M -qmp "unix:$D/$name.qmp,server,nowait" "$@"
    wait_for "[ -S '$D/$name.qmp' ]" 10
}

# run_args NAME [hop run options...]: the `hop run` words start_vm used,
# for a cpr-exec-command that starts the same machine.
run_args() {
    local name=$1
    shift
    echo run -monitor "unix:$D/$name.mon,server,nowait" \
        -serial "file:$D/$name.serial" -accel emu -m 64M \
        -qmp "unix:$D/$name.qmp,server,nowait" "$@" -incoming memfd:
}

# execed PID: the process now runs a hop that cpr-exec started (its
# command line ends with -incoming memfd:).
execed() {
    [ "$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | tail -n 2 | paste -sd ' ')" = "-incoming memfd:" ]
}

# wait_status NAME STATUS: `info status` over NAME's monitor says STATUS.
wait_status() {
    wait_for "hop_mon $1 'info status' | grep -qx 'VM status: $2'" 60
}

# cpr_exec NAME [monitor commands]: mode cpr-exec, then `migrate memfd:`
# over the monitor (the connection ends with the exec); the same process
# runs the new hop.
cpr_exec() {
    local name=$1 pid
    shift
    pid=$(hop_pid "$name")
    run hop_mon "$name" "migrate_set_parameter mode cpr-exec" "$@" "migrate memfd:"
    assert_success
    refute_output --partial Error
    wait_for "execed $pid" 30 || fail "no exec: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
}

# inheritable PID: the descriptors the process would pass to a program it
# starts (no close-on-exec), "N TARGET" each.
inheritable() {
    local f n
    for f in "/proc/$1/fd/"*; do
        n=${f##*/}
        if (($(awk '/^flags:/ { print $2 }' "/proc/$1/fdinfo/$n" 2>/dev/null || echo 0) & 02000000)); then
            continue
        fi
        echo "$n $(readlink "$f")"
    done
}

@test "cpr-exec upgrade in place: same PID, the guest runs on, memory intact, serial log and monitors carry on" {
    start_vm vm "${SHARED[@]}"
    wait_filled vm
    serial_grows vm
    local pid
    pid=$(hop_pid vm)
    refute execed "$pid"
    cp "$D/vm.serial" "$D/before.serial"
    cpr_exec vm
    # The same process, now the hop cpr-exec started: this binary.
    kill -0 "$pid"
    [ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$HOP")" ]
    wait_status vm running
    # The serial log was appended to, not started afresh.
    cmp -n "$(stat -c %s "$D/before.serial")" "$D/before.serial" "$D/vm.serial"
    serial_grows vm
    [ "$(stat -c %s "$D/vm.serial")" -gt "$(stat -c %s "$D/before.serial")" ]
    # RAM is still the memfd backend, mapped once.
    run hop_mon vm "info memdev"
    assert_line "memory backend: mem"
    assert_line "  type: memory-backend-memfd"
    assert_line "  share: true"
    [ "$(grep -c '/memfd:pc.ram' "/proc/$pid/maps")" -eq 1 ]
    memory_intact vm 64M
    run hop_mon vm cont "info status"
    assert_line "VM status: running"
    serial_grows vm
    # The state memfd is gone, the QMP socket answers.
    run ls -l "/proc/$pid/fd/"
    refute_output --partial hop-cpr-state
    run timeout 60 "$PY" "$QMP_PY" "$D/vm.qmp" query-status
    assert_line --index 2 --partial '"status": "running"'
}

@test "cpr-exec: nothing the new hop starts inherits guest RAM, the state or the monitor sockets" {
    start_vm vm "${SHARED[@]}"
    wait_filled vm
    cpr_exec vm
    wait_status vm running
    local pid
    pid=$(hop_pid vm)
    run inheritable "$pid"
    refute_output --partial memfd:
    refute_output --partial socket:
    # A program it runs (here an exec: migration) sees none of them either.
    run hop_mon vm stop "migrate \"exec:ls -l /proc/self/fd >$D/child.fds; cat >/dev/null\"" \
        "info migrate" cont "info status"
    assert_line "Migration status: completed"
    assert_line "VM status: running"
    run cat "$D/child.fds"
    assert_output --partial "$D/child.fds"
    refute_output --partial memfd:
    refute_output --partial socket:
    # Nor its environment.
    run hop_mon vm stop "migrate \"exec:env >$D/child.env; cat >/dev/null\"" \
        "info migrate" cont
    assert_line "Migration status: completed"
    grep -q '^HOME=' "$D/child.env"
    run grep HOP_CPR "$D/child.env"
    assert_failure
}

# children PID: the processes whose parent PID is.
children() {
    cat /proc/"$1"/task/*/children 2>/dev/null
}

@test "cpr-exec leaves no process behind: what held the old hop's memory past the exec is gone and reaped, three times over" {
    start_vm vm "${SHARED[@]}"
    wait_filled vm
    local pid i
    pid=$(hop_pid vm)
    for i in 1 2 3; do
        cpr_exec vm
        wait_status vm running
        # Reaped by the new hop, not left as a zombie for whoever
        # started hop.
        wait_for "[ -z \"\$(children $pid)\" ]" 10 ||
            fail "after cpr-exec $i: children $(children "$pid"): $(for c in $(children "$pid"); do tr '\0' ' ' <"/proc/$c/stat"; done)"
    done
    memory_intact vm 64M
}

@test "cpr-exec on a shared file backend: the new hop writes nothing into the file, which stays guest RAM" {
    start_vm vm -object "memory-backend-file,id=mem,size=64M,mem-path=$D/ram.file,share=on" \
        -machine memory-backend=mem
    wait_filled vm
    hop_mon vm stop
    cp "$D/ram.file" "$D/before.ram"
    cpr_exec vm
    wait_status vm paused
    # Not a byte changed while the new hop started on the same file.
    cmp "$D/before.ram" "$D/ram.file"
    grep -q " rw-s .* $D/ram.file\$" "/proc/$(hop_pid vm)/maps"
    run hop_mon vm cont "info status"
    assert_line "VM status: running"
    serial_grows vm
    memory_intact vm 64M
    cmp "$D/vm-intact.ram" "$D/ram.file"
}

@test "a hop waiting with -incoming on a shared file leaves the running guest's memory alone (x-ignore-shared)" {
    local obj="memory-backend-file,id=mem,size=64M,mem-path=$D/ram.file,share=on"
    start_vm src -object "$obj" -machine memory-backend=mem
    wait_filled src
    hop_mon src stop
    cp "$D/ram.file" "$D/before.ram"
    start_vm dst -object "$obj" -machine memory-backend=mem -S -incoming defer
    run hop_mon dst "info status"
    assert_output "VM status: paused (inmigrate)"
    cmp "$D/before.ram" "$D/ram.file"
    run hop_mon dst "migrate_set_capability x-ignore-shared on" \
        "migrate_incoming unix:$D/mig.sock"
    refute_output --partial Error
    run hop_mon src "migrate_set_capability x-ignore-shared on" \
        "migrate unix:$D/mig.sock" "info migrate"
    assert_line "Migration status: completed"
    compare_machines src dst 64M
    cmp "$D/before.ram" "$D/ram.file"
}

@test "cpr-exec-command runs a newer binary (a wrapper, then a copy of hop) in the same process" {
    mkdir "$D/bin"
    cp "$HOP" "$D/bin/hop-new"
    cat >"$D/bin/wrapper" <<EOF
#!/bin/sh
echo "\$\$ \$*" >>"$D/wrapper.log"
exec "$D/bin/hop-new" "\$@"
EOF
    chmod +x "$D/bin/wrapper"
    start_vm vm "${SHARED[@]}"
    wait_filled vm
    local pid
    pid=$(hop_pid vm)
    cpr_exec vm "migrate_set_parameter cpr-exec-command $D/bin/wrapper $(run_args vm "${SHARED[@]}")"
    wait_for "[ \"\$(readlink /proc/$pid/exe)\" = '$D/bin/hop-new' ]" 30
    # The wrapper ran, in this process, with the words given.
    run cat "$D/wrapper.log"
    assert_output "$pid $(run_args vm "${SHARED[@]}")"
    wait_status vm running
    serial_grows vm
    memory_intact vm 64M
}

@test "cpr-exec by default runs the file now at the path hop started from (an upgrade replaces it)" {
    mkdir "$D/bin"
    cp "$HOP" "$D/bin/hop"
    cp "$HOP" "$D/bin/hop-new"
    local HOP=$D/bin/hop
    start_vm vm "${SHARED[@]}"
    wait_filled vm
    # The upgrade: a new file renamed over the old one.
    cat >"$D/bin/hop.tmp" <<EOF
#!/bin/sh
echo "\$\$ \$*" >>"$D/wrapper.log"
exec "$D/bin/hop-new" "\$@"
EOF
    chmod +x "$D/bin/hop.tmp"
    mv "$D/bin/hop.tmp" "$D/bin/hop"
    local pid
    pid=$(hop_pid vm)
    cpr_exec vm
    wait_for "[ \"\$(readlink /proc/$pid/exe)\" = '$D/bin/hop-new' ]" 30
    run cat "$D/wrapper.log"
    assert_output --regexp "^$pid run .* -incoming memfd:\$"
    wait_status vm running
    serial_grows vm
}

@test "cpr-exec of a stopped guest: the new hop stays paused, RAM and registers byte for byte, then cont" {
    start_vm vm "${SHARED[@]}"
    wait_filled vm
    hop_mon vm stop "pmemsave 0 $(mem_bytes 64M) \"$D/before.ram\"" "info registers" \
        >"$D/before.regs"
    grep -q '^EAX=' "$D/before.regs"
    cpr_exec vm
    wait_status vm paused
    local size
    size=$(stat -c %s "$D/vm.serial")
    run timeout 60 "$PY" "$QMP_PY" "$D/vm.qmp" query-status
    assert_line --index 2 --partial '"running": false'
    assert_line --index 2 --partial '"status": "paused"'
    hop_mon vm "pmemsave 0 $(mem_bytes 64M) \"$D/after.ram\"" "info registers" \
        >"$D/after.regs"
    # The guest did not run: not one byte changed, nor a register.
    cmp "$D/before.ram" "$D/after.ram"
    diff "$D/before.regs" "$D/after.regs"
    [ "$(stat -c %s "$D/vm.serial")" -eq "$size" ]
    run "$MEMTEST_CHECK" "$D/after.ram"
    assert_success
    run hop_mon vm cont "info status"
    assert_line "VM status: running"
    serial_grows vm
}

@test "cpr-exec of a guest that never ran (-S): it stays paused and starts with cont" {
    start_vm vm "${SHARED[@]}" -S
    cpr_exec vm
    wait_for "hop_mon vm 'info status' | grep -q '^VM status: paused'" 60
    run tr '\0' ' ' <"/proc/$(hop_pid vm)/cmdline"
    refute_output --regexp ' -S '
    [ ! -s "$D/vm.serial" ]
    run hop_mon vm cont "info status"
    assert_line "VM status: running"
    wait_filled vm
}

@test "cpr-exec with a qcow2 drive: the new hop holds and writes it, qemu-img check is clean" {
    "$HOP" img create -f qcow2 "$D/d.qcow2" 16M >/dev/null
    qemu-io -c 'write -P 0x5a 0 64k' "$D/d.qcow2" >/dev/null
    start_vm vm "${SHARED[@]}" -drive "file=$D/d.qcow2"
    wait_filled vm
    run hop_mon vm "savevm before"
    refute_output --partial Error
    cpr_exec vm
    wait_status vm running
    run hop_mon vm "info block"
    assert_line "ide0-hd0: $D/d.qcow2 (qcow2)"
    refute_output --partial inactive
    # Active: it takes a snapshot, and holds the image's write lock.
    run hop_mon vm "savevm after" "info snapshots" "info status"
    refute_output --partial Error
    assert_output --regexp $'\n--  +before  +'
    assert_output --regexp $'\n--  +after  +'
    assert_line "VM status: running"
    run qemu-img info "$D/d.qcow2"
    assert_failure
    assert_output --partial 'Failed to get shared "write" lock'
    image_ok "$D/d.qcow2"
    run qemu-io -U -r -c 'read -P 0x5a 0 64k' "$D/d.qcow2"
    assert_success
    refute_output --partial "fail"
    # loadvm of the snapshot taken before the exec works too.
    run hop_mon vm stop "loadvm before" cont "info status"
    refute_output --partial Error
    assert_line "VM status: running"
    serial_grows vm
    hop_mon vm quit >/dev/null
    wait_for "! kill -0 $(hop_pid vm) 2>/dev/null" 30
    run qemu-img check "$D/d.qcow2"
    assert_success
    assert_output --partial "No errors were found"
    run qemu-img snapshot -l "$D/d.qcow2"
    assert_output --partial before
    assert_output --partial after
}

@test "cpr-exec that cannot run its command: the migration fails, the guest runs on, a later cpr-exec works" {
    start_vm vm "${SHARED[@]}"
    wait_filled vm
    local pid
    pid=$(hop_pid vm)
    inheritable "$pid" >"$D/inheritable.before"
    run hop_mon vm "migrate_set_parameter mode cpr-exec" \
        "migrate_set_parameter cpr-exec-command /nonexistent/hop run" \
        "migrate memfd:" "info status" "info migrate"
    assert_line "Error: migration failed: cpr-exec: cannot run '/nonexistent/hop': No such file or directory"
    assert_line "VM status: running"
    assert_line "Migration status: failed (cpr-exec: cannot run '/nonexistent/hop': No such file or directory)"
    refute execed "$pid"
    serial_grows vm
    # What was to be kept across the exec is private again.
    inheritable "$pid" >"$D/inheritable.after"
    diff "$D/inheritable.before" "$D/inheritable.after"
    memory_intact vm 64M
    run hop_mon vm cont "info status"
    assert_line "VM status: running"
    # Both monitors still answer on their paths.
    run timeout 60 "$PY" "$QMP_PY" "$D/vm.qmp" query-status \
        '{"execute": "migrate-set-parameters", "arguments": {"cpr-exec-command": []}}' \
        query-migrate-parameters
    assert_line --index 2 --partial '"status": "running"'
    assert_line --index 3 '{"return": {}}'
    assert_line --index 4 --partial '"cpr-exec-command": []'
    # Back on the default command, it works.
    cpr_exec vm
    wait_status vm running
    serial_grows vm
    memory_intact vm 64M
}

# refused_not_shared KIND WHAT BACKEND-OPTIONS...: a memtest guest on a
# backend cpr-exec cannot use; `migrate memfd:` says so, over HMP and QMP,
# and the guest runs on, its memory intact.
refused_not_shared() {
    local kind=$1 want=$2
    shift 2
    start_vm "$kind" "$@"
    wait_filled "$kind"
    run hop_mon "$kind" "migrate_set_parameter mode cpr-exec" "migrate memfd:" \
        "info status"
    assert_line --index 0 "Error: mode cpr-exec needs guest RAM on shared memory: RAM block 'pc.ram' is on $want; use -object memory-backend-memfd,id=ID,size=SIZE,share=on -machine memory-backend=ID"
    assert_line --index 1 "VM status: running"
    run timeout 60 "$PY" "$QMP_PY" "$D/$kind.qmp" \
        '{"execute": "migrate", "arguments": {"uri": "memfd:"}}'
    assert_line --index 2 --partial '"desc": "mode cpr-exec needs guest RAM on shared memory: RAM block '"'pc.ram'"' is on '"$want"
    refute execed "$(hop_pid "$kind")"
    serial_grows "$kind"
    memory_intact "$kind" 64M
    hop_stop_all
}

@test "cpr-exec refused with RAM not on shared memory: the error names share=on, the guest runs on" {
    refused_not_shared default memory-backend-ram
    refused_not_shared memfd-private "memory-backend-memfd without share=on" \
        -object memory-backend-memfd,id=mem,size=64M,share=off -machine memory-backend=mem
    refused_not_shared file-private "memory-backend-file without share=on" \
        -object "memory-backend-file,id=mem,size=64M,mem-path=$D/ram.file" \
        -machine memory-backend=mem
}

@test "cpr-exec refused: memfd: in mode normal, another URI in mode cpr-exec; the guest runs on" {
    start_vm vm "${SHARED[@]}"
    wait_filled vm
    run hop_mon vm "migrate memfd:" "migrate_set_parameter mode cpr-exec" \
        "migrate unix:$D/mig.sock" "migrate exec:cat" "info status"
    assert_line --index 0 "Error: 'memfd:': memfd: is for mode cpr-exec (migrate_set_parameter mode cpr-exec)"
    assert_line --index 1 "Error: mode cpr-exec writes its state to a memfd: use 'migrate memfd:' (got 'unix:$D/mig.sock')"
    assert_line --index 2 "Error: mode cpr-exec writes its state to a memfd: use 'migrate memfd:' (got 'exec:cat')"
    assert_line --index 3 "VM status: running"
    refute execed "$(hop_pid vm)"
    serial_grows vm
    memory_intact vm 64M
}

@test "cpr-exec over QMP: the parameters as a list; the socket paths never disappear; a client connected before sees its connection end and connects again" {
    start_vm vm "${SHARED[@]}"
    wait_filled vm
    local -a cmd
    read -r -a cmd <<<"$HOP $(run_args vm "${SHARED[@]}")"
    local json
    json=$("$PY" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "${cmd[@]}")
    run timeout 60 "$PY" "$QMP_PY" "$D/vm.qmp" \
        "{\"execute\": \"migrate-set-parameters\", \"arguments\": {\"mode\": \"cpr-exec\", \"cpr-exec-command\": $json}}" \
        query-migrate-parameters
    assert_line --index 2 '{"return": {}}'
    "$PY" - "${lines[3]}" "$json" <<'PY'
import json, sys
got, want = json.loads(sys.argv[1])["return"], json.loads(sys.argv[2])
assert got["mode"] == "cpr-exec", got
assert got["cpr-exec-command"] == want, (got["cpr-exec-command"], want)
PY
    run hop_mon vm "info migrate_parameters"
    assert_line "mode: cpr-exec"
    assert_line "cpr-exec-command: ${cmd[*]}"
    # A client connected now (the watcher), and both paths polled as
    # fast as the shell goes until the new hop answers.
    local inode_mon inode_qmp
    inode_mon=$(stat -c %i "$D/vm.mon")
    inode_qmp=$(stat -c %i "$D/vm.qmp")
    PYTHONPATH=$HOP_SRC/tests/tools timeout 120 "$PY" - "$D/vm.qmp" "$D/watch" 3>&- <<'PY' &
import sys, time, qmp
path, out = sys.argv[1], sys.argv[2]
c = qmp.Client(path)
open(out + ".ready", "w").close()
events = []
try:
    while True:
        events.append(c.recv(timeout=60).get("event", "(reply)"))
except EOFError:
    pass
# Closed, not just quiet.
c.sock.settimeout(5)
closed = c.sock.recv(1) == b""
with open(out, "w") as f:
    f.write("%s after %s\n" % ("closed" if closed else "open", " ".join(events)))
    for _ in range(300):
        try:
            c = qmp.Client(path)
            break
        except OSError:
            time.sleep(0.1)
    for _ in range(600):
        st = c.execute("query-status")["status"]
        if st == "running":
            break
        time.sleep(0.1)
    f.write("again: %s\n" % st)
PY
    local watcher=$!
    wait_for "[ -e '$D/watch.ready' ]" 30
    (
        n=0
        end=$((SECONDS + 120))
        while [ ! -e "$D/stop-poll" ] && [ "$SECONDS" -lt "$end" ]; do
            [ -S "$D/vm.mon" ] && [ -S "$D/vm.qmp" ] || echo "gone at poll $n" >>"$D/missing"
            n=$((n + 1))
        done
        echo "$n" >"$D/polls"
    ) 3>&- &
    local poller=$!
    sleep 0.2
    local pid
    pid=$(hop_pid vm)
    run hop_mon vm "migrate memfd:"
    refute_output --partial Error
    wait_for "execed $pid" 30
    wait_status vm running
    touch "$D/stop-poll"
    wait "$poller"
    wait "$watcher"
    [ ! -e "$D/missing" ] || fail "$(cat "$D/missing")"
    echo "polled $(cat "$D/polls") times" >&3
    [ "$(cat "$D/polls")" -gt 0 ]
    # The same socket files, never replaced.
    [ "$(stat -c %i "$D/vm.mon")" = "$inode_mon" ]
    [ "$(stat -c %i "$D/vm.qmp")" = "$inode_qmp" ]
    run cat "$D/watch"
    assert_line --index 0 --regexp '^closed after'
    assert_line --index 1 "again: running"
    serial_grows vm
}

@test "cpr-exec started by QMP migrate with uri memfd:" {
    start_vm vm "${SHARED[@]}"
    wait_filled vm
    local pid
    pid=$(hop_pid vm)
    run env PYTHONPATH="$HOP_SRC/tests/tools" timeout 120 "$PY" - "$D/vm.qmp" <<'PY'
import sys, time, qmp
path = sys.argv[1]
c = qmp.Client(path)
c.execute("migrate-set-parameters", {"mode": "cpr-exec"})
c.send({"execute": "migrate", "arguments": {"uri": "memfd:"}})
got = []
try:
    while True:
        got.append(c.recv(timeout=60))
except EOFError:
    pass
c.sock.settimeout(5)
print("closed:", c.sock.recv(1) == b"")
replies = [m for m in got if "event" not in m]
print("replies:", replies)
for _ in range(300):
    try:
        c = qmp.Client(path)
        break
    except OSError:
        time.sleep(0.1)
for _ in range(600):
    st = c.execute("query-status")["status"]
    if st == "running":
        break
    time.sleep(0.1)
print("status:", st)
print("mode:", c.execute("query-migrate-parameters")["mode"])
PY
    assert_success
    assert_line "closed: True"
    assert_line "replies: [{'return': {}}]"
    assert_line "status: running"
    # The new hop starts with the default parameters.
    assert_line "mode: normal"
    execed "$pid"
    serial_grows vm
    memory_intact vm 64M
}
