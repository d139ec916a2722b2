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

setup() {
    mig_setup
}

teardown() {
    hop_stop_all
}

# need_postcopy NAME: skips, with the kernel's reason, where userfaultfd
# cannot serve missing pages here.
need_postcopy() {
    local out
    out=$(hop_mon "$1" "migrate_set_capability postcopy-ram on")
    if [ -n "$out" ]; then
        skip "${out#*Error: }"
    fi
}

# start_pair SMP [DST_ARGS...]: a memtest source with SMP vCPUs that has
# filled its RAM and a destination waiting on unix:$D/mig.sock, both with
# postcopy-ram on; the link is too slow and the downtime limit too short
# for precopy ever to converge.
start_pair() {
    local smp=$1
    shift
    hop_start dst -m 64M -smp "$smp" "$@" -incoming "unix:$D/mig.sock"
    hop_start src -m 64M -smp "$smp"
    need_postcopy src
    run hop_mon dst "migrate_set_capability postcopy-ram on"
    assert_output ""
    wait_filled src
    # After the switch the pages trickle in, so the guest surely faults on
    # some before they arrive.
    run hop_mon src "migrate_set_parameter max-bandwidth 4M" \
        "migrate_set_parameter downtime-limit 1" \
        "migrate_set_parameter max-postcopy-bandwidth 16M"
    assert_output ""
}

# query NAME EXPR: a field of query-migrate, by a python expression on r.
query() {
    $PY "$QMP_PY" "$D/$1.qmp" query-migrate | $PY -c "import json,sys; r=json.load(sys.stdin); print($2)"
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
