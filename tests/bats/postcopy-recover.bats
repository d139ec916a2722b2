#!/usr/bin/env bats
# Postcopy recovery: after the switch the guest runs at the destination
# and its missing pages are at the source, so a link that dies must not
# lose it.  Both ends pause (postcopy-paused); migrate_recover URI at the
# destination and migrate -r URI at the source give them a new link, the
# destination says which pages it has (RECV_BITMAP), the source sends the
# rest, and the migration completes with the guest's memory whole —
# through any number of pauses.

load helper
load mig-helper
load postcopy-helper

setup() {
    mig_setup
    # Pages trickle after the switch: a pause finds most still at the
    # source.
    PC_BW=1M
}

teardown() {
    hop_stop_all
    if [ -n "${PROXY:-}" ]; then
        kill "$PROXY" 2>/dev/null || true
    fi
}

# switch URI: migrates to URI and switches to postcopy, until the guest
# runs at the destination (a link cut before that, mid-switch, loses the
# guest, as in QEMU: the destination was not in postcopy yet).
switch() {
    run hop_mon src "migrate -d $1"
    assert_output ""
    wait_mig src active 30
    run hop_mon src "migrate_start_postcopy"
    assert_output ""
    wait_mig src postcopy-active 60
    wait_for "hop_mon dst 'info migrate' | grep -qx 'Migration status: postcopy-active (incoming)'" 60 || {
        hop_mon dst "info migrate" >&2
        false
    }
}

# both_paused: source and destination say postcopy-paused.
both_paused() {
    wait_mig src postcopy-paused 60 || {
        hop_mon src "info migrate" >&2
        false
    }
    wait_for "hop_mon dst 'info migrate' | grep -qx 'Migration status: postcopy-paused (incoming)'" 60 || {
        hop_mon dst "info migrate" >&2
        cat "$D/dst.err" >&2
        false
    }
}

# recover N: a new link on unix:$D/recN.sock, fast this time or not.
recover() {
    run hop_mon dst "migrate_recover unix:$D/rec$1.sock"
    assert_output ""
    run hop_mon src "migrate -d -r unix:$D/rec$1.sock"
    assert_output ""
    wait_mig src postcopy-active 60 || wait_mig src completed 1 || {
        hop_mon src "info migrate" >&2
        cat "$D/src.err" "$D/dst.err" >&2
        false
    }
}

# finished: the migration completes, the guest runs at the destination
# and memtest's pattern is whole there.
finished() {
    run hop_mon src "migrate_set_parameter max-postcopy-bandwidth 0"
    wait_mig src completed 120 || {
        hop_mon src "info migrate" >&2
        cat "$D/src.err" "$D/dst.err" >&2
        false
    }
    wait_mig dst completed 60
    run hop_mon dst "info status"
    assert_output "VM status: running"
    serial_grows dst
    hop_mon dst stop "pmemsave 0 $(mem_bytes 64M) \"$D/dst.ram\""
    run "$MEMTEST_CHECK" --smp "${1:-1}" "$D/dst.ram"
    assert_success
}

@test "postcopy recovery: migrate_pause at the source pauses both ends, migrate_recover and migrate -r resume, twice, and the memory arrives whole" {
    start_pair 2
    switch "unix:$D/mig.sock"
    run hop_mon src "migrate_pause"
    assert_output ""
    both_paused
    run hop_mon src "info migrate"
    assert_line --regexp "^Migration status: postcopy-paused \(.+\)$"
    # The guest runs on at the destination meanwhile.
    run hop_mon dst "info status"
    assert_output "VM status: running"
    recover 1
    wait_mig src postcopy-active 10
    run hop_mon src "migrate_pause"
    assert_output ""
    both_paused
    recover 2
    finished 2
    grep -q "postcopy paused" "$D/src.err"
    grep -q "postcopy paused" "$D/dst.err"
}

@test "postcopy recovery: the link killed through a proxy is recovered and completes" {
    start_pair 1
    socat "UNIX-LISTEN:$D/proxy.sock" "UNIX-CONNECT:$D/mig.sock" &
    PROXY=$!
    wait_for "[ -S '$D/proxy.sock' ]" 10
    switch "unix:$D/proxy.sock"
    kill -9 "$PROXY"
    PROXY=
    both_paused
    recover 1
    finished
}

@test "postcopy recovery: migrate_pause at the destination pauses both ends too" {
    start_pair 1
    switch "unix:$D/mig.sock"
    run hop_mon dst "migrate_pause"
    assert_output ""
    both_paused
    recover 1
    finished
}

@test "postcopy recovery over QMP: migrate-pause, migrate-recover, migrate with resume; MIGRATION events for every state on both ends" {
    hop_start dst -m 64M -incoming "unix:$D/mig.sock" \
        -qmp "unix:$D/dst.qmp,server,nowait"
    hop_start src -m 64M -qmp "unix:$D/src.qmp,server,nowait"
    need_postcopy dst
    wait_filled src
    run timeout 300 "$PY" "$HOP_SRC/tests/tools/qmp-postcopy-recover.py" \
        "$D/src.qmp" "$D/dst.qmp" "unix:$D/mig.sock" "unix:$D/rec.sock"
    assert_success
    assert_line "recover early: Migrate recover can only be run when postcopy is paused."
    assert_line "resume early: Cannot resume if there is no paused migration"
    assert_line "recover twice: Migrate recovery is triggered already"
    assert_line "src events: setup active postcopy-active postcopy-paused postcopy-recover postcopy-active completed"
    assert_line "dst events: postcopy-active postcopy-paused postcopy-recover postcopy-active completed"
    hop_mon dst stop "pmemsave 0 $(mem_bytes 64M) \"$D/dst.ram\""
    run "$MEMTEST_CHECK" "$D/dst.ram"
    assert_success
}

@test "postcopy recovery: refused with one line where it cannot work" {
    hop_start src -m 64M
    need_postcopy src
    run hop_mon src "migrate -r unix:$D/none.sock" "migrate_pause" \
        "migrate_recover unix:$D/none.sock" "migrate -r exec:cat" \
        "migrate_recover file:$D/x"
    assert_line "Error: Cannot resume if there is no paused migration"
    assert_line "Error: migrate-pause is currently only supported during postcopy-active state"
    assert_line "Error: Migrate recover can only be run when postcopy is paused."
    assert_line "Error: postcopy recovery needs a socket (tcp:, unix: or fd: of a socket): the destination answers on it (got 'exec:cat')"
    assert_line "Error: postcopy recovery needs a socket (tcp:, unix: or fd: of a socket): the source's pages and this end's answers share it (got 'file:$D/x')"
    # Precopy cannot be paused.
    hop_start dst -m 64M -incoming "unix:$D/mig.sock"
    run hop_mon src "migrate_set_parameter max-bandwidth 1M" \
        "migrate -d unix:$D/mig.sock" "migrate_pause"
    assert_output "Error: migrate-pause is currently only supported during postcopy-active state"
    run hop_mon src "migrate_cancel"
}

@test "postcopy recovery: a destination quit while paused ends cleanly; the source stays paused, waiting" {
    start_pair 1
    switch "unix:$D/mig.sock"
    run hop_mon src "migrate_pause"
    both_paused
    run hop_mon dst "quit"
    timeout 20 tail -s 0.1 --pid="$(hop_pid dst)" -f /dev/null
    run mig_status src
    assert_output "postcopy-paused"
}

@test "postcopy-preempt: requested pages go on a second connection; the migration completes with the memory whole, also through a pause" {
    start_pair 2
    run hop_mon src "migrate_set_capability postcopy-preempt on"
    assert_output ""
    run hop_mon dst "migrate_set_capability postcopy-preempt on"
    assert_output ""
    switch "unix:$D/mig.sock"
    # The guest at the destination asks for pages; they come on the
    # preempt channel.
    wait_for "hop_mon src 'info migrate' | grep -q '^postcopy preempt ram: [1-9]'" 60 || {
        hop_mon src "info migrate" >&2
        false
    }
    run hop_mon src "migrate_pause"
    both_paused
    recover 1
    finished 2
    run hop_mon src "info migrate"
    assert_line --regexp "^postcopy preempt ram: [1-9][0-9]* kbytes$"
}

@test "postcopy-preempt: refused without postcopy-ram, and over a URI that has no second connection" {
    hop_start src -m 64M
    run hop_mon src "migrate_set_capability postcopy-preempt on"
    assert_output "Error: Postcopy preempt requires postcopy-ram"
    need_postcopy src
    run hop_mon src "migrate_set_capability postcopy-preempt on" \
        "migrate -d fd:nosuch"
    assert_output "Error: capability postcopy-preempt needs a tcp: or unix: URI: it opens a second connection (got 'fd:nosuch')"
}
