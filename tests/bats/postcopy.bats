#!/usr/bin/env bats
# Capability postcopy-ram: a guest that dirties memory faster than the
# link carries it never converges in precopy; after migrate_start_postcopy
# it runs at the destination, which asks for the pages it lacks on the
# return path.  What a user relies on: the migration completes only then,
# memtest's pattern is whole at the destination, registers and devices
# are those of the switch, the source said how many pages were asked for;
# a cancel before the switch keeps the guest at the source; a destination
# dying after the switch is one clear error at the source; combinations
# that cannot work are refused with one line.

load helper
load mig-helper
load postcopy-helper

setup() {
    mig_setup
}

teardown() {
    hop_stop_all
}

# query NAME EXPR: a field of query-migrate, by a python expression on r.
query() {
    PYTHONPATH="$HOP_SRC/tests/tools" timeout 60 $PY -c "import qmp; r = qmp.Client('$D/$1.qmp', timeout=30).execute('query-migrate'); print($2)"
}

@test "postcopy: a guest that never converges completes only after migrate_start_postcopy, its memory whole at the destination" {
    start_pair 2
    run hop_mon src "migrate -d unix:$D/mig.sock"
    assert_output ""
    wait_mig src active 30
    sleep 2
    # Precopy alone does not get there.
    run mig_status src
    assert_output "active"
    run hop_mon src "migrate_start_postcopy"
    assert_output ""
    wait_mig src completed 120 || {
        hop_mon src "info migrate" >&2
        cat "$D/dst.err" >&2
        false
    }
    run hop_mon src "info migrate" "info status"
    assert_line --regexp "^postcopy request count: [1-9][0-9]*$"
    assert_line --regexp "^postcopy ram: [1-9][0-9]* kbytes$"
    assert_line "VM status: paused (postmigrate)"
    run hop_mon dst "info status"
    assert_output "VM status: running"
    serial_grows dst
    hop_mon dst stop "pmemsave 0 $(mem_bytes 64M) \"$D/dst.ram\""
    run "$MEMTEST_CHECK" --smp 2 "$D/dst.ram"
    assert_success
}

@test "postcopy over QMP: migrate-start-postcopy, MIGRATION events for postcopy-active, ram.postcopy-requests and postcopy-bytes" {
    hop_start dst -m 64M -incoming "unix:$D/mig.sock" \
        -qmp "unix:$D/dst.qmp,server,nowait"
    hop_start src -m 64M -qmp "unix:$D/src.qmp,server,nowait"
    need_postcopy dst
    wait_filled src
    # The destination's events too: postcopy begins, the guest runs, the
    # end.
    run timeout 240 "$PY" "$HOP_SRC/tests/tools/qmp-postcopy.py" "$D/src.qmp" \
        "unix:$D/mig.sock" "$D/dst.qmp"
    assert_success
    assert_line "events: setup active postcopy-active completed"
    assert_line "status: completed"
    assert_line --regexp "^postcopy-requests: [1-9][0-9]*$"
    assert_line --regexp "^postcopy-bytes: [1-9][0-9]*$"
    assert_line "dst events: MIGRATION:postcopy-active RESUME MIGRATION:completed"
    hop_mon dst stop "pmemsave 0 $(mem_bytes 64M) \"$D/dst.ram\""
    run "$MEMTEST_CHECK" "$D/dst.ram"
    assert_success
}

@test "postcopy: registers, devices and RAM at the destination are the source's at the switch" {
    start_pair 1 -S
    run hop_mon src "migrate -d unix:$D/mig.sock"
    assert_output ""
    wait_mig src active 30
    sleep 1
    run hop_mon src "migrate_start_postcopy"
    assert_output ""
    wait_mig src completed 120
    # -S: the destination waits paused; the pages came without faults.
    compare_machines src dst 64M
    # The destination's own view: its incoming migration, complete.
    wait_mig dst completed 60
    run hop_mon dst "info migrate"
    assert_line "Migration status: completed (incoming)"
    refute_line --partial "postcopy blocktime"
}

@test "postcopy: migrate_cancel before the switch keeps the guest running at the source, its memory whole" {
    start_pair 1
    run hop_mon src "migrate -d unix:$D/mig.sock"
    wait_mig src active 30
    sleep 1
    run hop_mon src "migrate_cancel" "info migrate" "info status"
    wait_mig src cancelled 30
    run hop_mon src "info status"
    assert_output "VM status: running"
    serial_grows src
    memory_intact src 64M
}

@test "postcopy: the destination killed after the switch pauses the source with one clear line; cancel is refused meanwhile; quit ends it" {
    start_pair 1
    # The pages come slowly after the switch: there is time to kill.
    run hop_mon src "migrate_set_parameter max-postcopy-bandwidth 1M" \
        "migrate -d unix:$D/mig.sock"
    wait_mig src active 30
    run hop_mon src "migrate_start_postcopy"
    assert_output ""
    wait_mig src postcopy-active 30
    run hop_mon src "migrate_cancel"
    assert_output "Error: postcopy migration in progress, cannot cancel: the guest runs at the destination and needs the pages still here"
    run mig_status src
    assert_output "postcopy-active"
    # After the switch: the guest runs there.
    wait_for "hop_mon dst 'info migrate' | grep -qx 'Migration status: postcopy-active (incoming)'" 60
    kill -9 "$(hop_pid dst)"
    # A dead link and a dead destination look alike from here: the
    # source keeps the pages and waits for migrate -r.
    wait_mig src postcopy-paused 60
    run hop_mon src "info migrate" "info status" "migrate_cancel"
    assert_line --regexp "^Migration status: postcopy-paused \(return path: .+\)$"
    assert_line "VM status: paused (finish-migrate)"
    assert_line "Error: postcopy migration postcopy-paused, cannot cancel: the guest runs at the destination and needs the pages still here (migrate -r URI resumes it)"
    grep -q "postcopy paused: return path: " "$D/src.err"
    # Nothing listens there: the recovery fails and the source stays
    # paused, saying why.
    run hop_mon src "migrate -r unix:$D/gone.sock"
    assert_output --regexp "^postcopy paused: recovery over 'unix:$D/gone.sock' failed: .+$"
    run mig_status src
    assert_output "postcopy-paused"
    run hop_mon src "quit"
    timeout 20 tail -s 0.1 --pid="$(hop_pid src)" -f /dev/null
}

@test "postcopy: refused with one line where it cannot work" {
    hop_start src -m 64M
    need_postcopy src
    run hop_mon src "migrate \"exec:cat >/dev/null\""
    assert_output "Error: capability postcopy-ram needs a socket (tcp:, unix: or fd: of a socket): the destination asks for pages on the return path, and nothing comes back from 'exec:cat >/dev/null'"
    run hop_mon src "migrate file:$D/x"
    assert_output --partial "Error: capability postcopy-ram needs a socket"
    for cap in multifd release-ram mapped-ram x-ignore-shared background-snapshot; do
        run hop_mon src "migrate_set_capability $cap on"
        assert_output --regexp "^Error: capabilities (postcopy-ram and $cap|$cap and postcopy-ram) cannot be used together"
    done
    run hop_mon src "migrate_set_parameter mode cpr-transfer" \
        "migrate unix:$D/x.sock" "migrate_set_parameter mode normal"
    assert_output "Error: capability postcopy-ram cannot be used with mode cpr-transfer (the cpr modes send no RAM)"
    run hop_mon src "migrate_start_postcopy"
    assert_output "Error: Postcopy must be started after migration has been started"
    run hop_mon src "migrate_set_capability postcopy-ram off" "migrate_start_postcopy"
    assert_output "Error: Enable postcopy with migrate_set_capability before the start of migration"
}

@test "postcopy: a destination without the capability refuses the stream at ADVISE; the guest runs on at the source" {
    hop_start dst -m 64M -incoming "unix:$D/mig.sock"
    hop_start src -m 64M
    need_postcopy src
    wait_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/mig.sock" "info migrate" "info status"
    assert_line --regexp "^Migration status: failed \(the destination failed to load the stream \(it said SHUT 1 on the return path; its log says why\): "
    assert_line "VM status: running"
    wait_for "! kill -0 $(hop_pid dst) 2>/dev/null" 30
    grep -q "POSTCOPY_ADVISE: capability postcopy-ram is off on this destination" "$D/dst.err"
}

@test "postcopy-ram on, migrate_start_postcopy never sent: precopy converges and completes as usual; the command is harmless after it" {
    hop_start dst -m 64M -S -incoming "unix:$D/mig.sock"
    hop_start src -m 64M
    need_postcopy src
    run hop_mon dst "migrate_set_capability postcopy-ram on"
    wait_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate_set_parameter downtime-limit 5000" "migrate unix:$D/mig.sock" \
        "info migrate" "migrate_start_postcopy"
    assert_line "Migration status: completed"
    refute_line --partial "Error"
    refute_line --partial "postcopy ram"
    compare_machines src dst 64M
}

@test "postcopy with pause-before-switchover: the switch waits in pre-switchover for migrate_continue" {
    start_pair 1
    run hop_mon src "migrate_set_capability pause-before-switchover on" \
        "migrate -d unix:$D/mig.sock"
    assert_output ""
    wait_mig src active 30
    run hop_mon src "migrate_start_postcopy"
    assert_output ""
    wait_mig src pre-switchover 30
    run hop_mon src "info status"
    assert_output "VM status: paused (finish-migrate)"
    sleep 1
    run mig_status src
    assert_output "pre-switchover"
    run hop_mon src "migrate_continue pre-switchover"
    assert_output ""
    wait_mig src completed 120
    hop_mon dst stop "pmemsave 0 $(mem_bytes 64M) \"$D/dst.ram\""
    run "$MEMTEST_CHECK" "$D/dst.ram"
    assert_success
}

@test "postcopy-blocktime: the destination reports its vCPUs' waits for missing pages (one entry per vCPU) and postcopy-latency" {
    start_pair 2 -qmp "unix:$D/dst.qmp,server,nowait"
    run hop_mon dst "migrate_set_capability postcopy-blocktime on" "info migrate"
    assert_line "Migration status: setup (incoming)"
    assert_line "postcopy blocktime: 0 ms"
    run hop_mon src "migrate -d unix:$D/mig.sock"
    assert_output ""
    wait_mig src active 30
    run mig_status dst
    assert_output "active"
    sleep 2
    run hop_mon src "migrate_start_postcopy"
    assert_output ""
    wait_mig src completed 120
    wait_mig dst completed 60 || {
        hop_mon dst "info migrate" >&2
        false
    }
    # memtest's vCPUs meet at a barrier after every pass: while one waits
    # for a page the other spins there, so the time all were blocked (the
    # total) may be 0 here; it is never more than any one's.
    run query dst 'r["status"], len(r["postcopy-vcpu-blocktime"]), max(r["postcopy-vcpu-blocktime"]) > 0, r["postcopy-blocktime"] <= min(r["postcopy-vcpu-blocktime"]), r["postcopy-latency"] > 0, len(r["postcopy-vcpu-latency"])'
    assert_output "completed 2 True True True 2"
    run hop_mon dst "info migrate"
    assert_line "Migration status: completed (incoming)"
    assert_line --regexp "^postcopy blocktime: [0-9]+ ms$"
    assert_line --regexp "^postcopy vcpu blocktime: [0-9]+ [0-9]+ ms$"
    assert_line --regexp "^postcopy latency: [1-9][0-9]* us \([1-9][0-9]* faults\)$"
    # The source shows its outgoing migration, without them.
    run hop_mon src "info migrate"
    assert_line "Migration status: completed"
    refute_line --regexp "^postcopy (vcpu )?blocktime"
}

@test "postcopy-blocktime with one vCPU: the total is its blocktime, more than 0" {
    start_pair 1 -qmp "unix:$D/dst.qmp,server,nowait"
    run hop_mon dst "migrate_set_capability postcopy-blocktime on"
    assert_output ""
    run hop_mon src "migrate -d unix:$D/mig.sock"
    wait_mig src active 30
    sleep 1
    run hop_mon src "migrate_start_postcopy"
    assert_output ""
    wait_mig dst completed 120
    run query dst 'r["postcopy-blocktime"] > 0, [r["postcopy-blocktime"]] == r["postcopy-vcpu-blocktime"], r["postcopy-latency"] > 0, r["postcopy-vcpu-latency"] == [r["postcopy-latency"]]'
    assert_output "True True True True"
}

@test "postcopy-blocktime off: the destination's query-migrate has its status only" {
    start_pair 1 -qmp "unix:$D/dst.qmp,server,nowait"
    run query dst 'sorted(r)'
    assert_output "['status']"
    run hop_mon src "migrate -d unix:$D/mig.sock"
    wait_mig src active 30
    run hop_mon src "migrate_start_postcopy"
    wait_mig dst completed 120
    run query dst 'r'
    assert_output "{'status': 'completed'}"
}

@test "postcopy-blocktime: refused with one line where userfaultfd is not available" {
    if [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 0 ]; then
        skip "unprivileged processes may use userfaultfd here"
    fi
    command -v setpriv >/dev/null || skip "no setpriv"
    # An unprivileged hop: no userfaultfd, so no thread ids of faults.
    run timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$HOP" run -m 16M -monitor stdio -serial none \
        < <(printf '%s\n' "migrate_set_capability postcopy-blocktime on" \
            "info migrate" quit)
    [ -r "$HOP" ] && [ "$status" -ne 126 ] || skip "user nobody cannot run $HOP"
    assert_line --regexp "^Error: postcopy-blocktime: userfaultfd is not available to this process \(.*\)$"
    assert_line --partial "postcopy-blocktime: off"
}
