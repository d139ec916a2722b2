#!/usr/bin/env bats
# Migration features: XBZRLE, auto-converge, pause-before-switchover,
# events, capabilities and parameters (and their checks), the dirty rate,
# the bandwidth limit, and zero pages that stay unallocated.

load helper
load mig-helper

setup() {
    mig_setup
}

teardown() {
    hop_stop_all
}

@test "xbzrle: pages go as deltas, info migrate shows the cache, memory exact" {
    hop_start dst -m 64M -S -incoming "unix:$D/mig.sock"
    hop_start src -m 64M
    wait_filled src
    # A modest link and a tight downtime make several passes, so pages
    # sent before are sent again, as deltas; auto-converge makes sure it
    # ends however slow this machine (or a sanitizer build) is.
    run hop_mon src "migrate_set_capability xbzrle on" \
        "migrate_set_capability auto-converge on" \
        "migrate_set_cache_size 64M" \
        "migrate_set_parameter max-bandwidth 256M" \
        "migrate_set_parameter downtime-limit 30" \
        "migrate unix:$D/mig.sock" "info migrate"
    assert_line "Migration status: completed"
    assert_line "cache size: 67108864 bytes"
    assert_line --regexp '^xbzrle transferred: [0-9]+ kbytes$'
    assert_line --regexp '^xbzrle pages: [1-9][0-9]* pages$'
    assert_line --regexp '^xbzrle cache miss: [0-9]+ pages$'
    assert_line --regexp '^xbzrle cache miss rate: [0-9.]+$'
    assert_line --regexp '^xbzrle encoding rate: [0-9.]+$'
    assert_line --regexp '^xbzrle overflow: [0-9]+$'
    compare_machines src dst 64M
}

# A 64 MiB memtest guest rewrites all its memory many times a second; a
# 64 MiB/s link with a 10 ms downtime cannot catch up.
converge_setup() {
    hop_start dst -m 64M -S -incoming "unix:$D/mig.sock"
    hop_start src -m 64M
    wait_filled src
}

@test "without auto-converge a fast-dirtying guest does not converge" {
    converge_setup
    hop_mon src "migrate_set_parameter max-bandwidth 64M" \
        "migrate_set_parameter downtime-limit 10" "migrate -d unix:$D/mig.sock"
    sleep 4
    run hop_mon src "info migrate" "info status"
    assert_line "Migration status: active"
    assert_line "VM status: running"
    refute_line --partial "cpu throttle percentage"
    hop_mon src "migrate_cancel"
    wait_mig src cancelled 10
}

@test "auto-converge throttles the vCPUs until the migration completes" {
    converge_setup
    run hop_mon src "migrate_set_capability auto-converge on" \
        "migrate_set_parameter max-bandwidth 64M" \
        "migrate_set_parameter downtime-limit 10" \
        "migrate_set_parameter cpu-throttle-increment 20" \
        "migrate -d unix:$D/mig.sock"
    # The throttle shows while it works.
    wait_for "hop_mon src 'info migrate' | grep -q '^cpu throttle percentage: [1-9]'" 20
    wait_mig src completed 30
    compare_machines src dst 64M
}

@test "pause-before-switchover waits in pre-switchover for migrate_continue" {
    hop_start dst -m 64M -S -incoming "unix:$D/mig.sock"
    hop_start src -m 64M
    wait_filled src
    run hop_mon src "migrate_continue pre-switchover"
    assert_output --partial "not in pre-switchover state"
    hop_mon src "migrate_set_capability pause-before-switchover on" \
        "migrate_set_parameter max-bandwidth 0" "migrate -d unix:$D/mig.sock"
    wait_mig src pre-switchover 20
    run hop_mon src "info status"
    assert_output --partial "paused"
    sleep 0.5
    [ "$(mig_status src)" = pre-switchover ]
    run hop_mon src "migrate_continue active"
    assert_output --partial "expected state 'pre-switchover'"
    hop_mon src "migrate_continue pre-switchover"
    wait_mig src completed 20
    compare_machines src dst 64M
}

@test "events: MIGRATION events over QMP follow the states" {
    hop_start dst -m 32M -S -incoming "unix:$D/mig.sock"
    hop_start src -m 32M -qmp "unix:$D/src.qmp,server,nowait"
    wait_for "[ -S '$D/src.qmp' ]" 10
    run timeout 90 "$PY" "$QMP_MIGRATE_PY" --cap events \
        --param max-bandwidth=0 "$D/src.qmp" "unix:$D/mig.sock"
    assert_success
    local states
    states=$(sed -n 's/^event MIGRATION //p' <<<"$output" | tr '\n' ' ')
    assert_equal "$states" "setup active device completed "
    assert_line "event STOP"
}

@test "events: none without the events capability" {
    hop_start dst -m 16M -S -incoming "unix:$D/mig.sock"
    hop_start src -m 16M -qmp "unix:$D/src.qmp,server,nowait"
    wait_for "[ -S '$D/src.qmp' ]" 10
    run timeout 90 "$PY" "$QMP_MIGRATE_PY" --param max-bandwidth=0 \
        "$D/src.qmp" "unix:$D/mig.sock"
    assert_success
    assert_output --partial '"status": "completed"'
    refute_output --partial 'event MIGRATION'
}

@test "capabilities cannot change during a migration; parameters can" {
    hop_start dst -m 64M -S -incoming "unix:$D/mig.sock"
    hop_start src -m 64M
    wait_filled src
    hop_mon src "migrate_set_parameter max-bandwidth 4M" \
        "migrate -d unix:$D/mig.sock"
    wait_mig src active 10
    run hop_mon src "migrate_set_capability xbzrle on" \
        "migrate_set_capability auto-converge on" \
        "info migrate_capabilities" "migrate unix:$D/mig.sock"
    assert_line "Error: cannot change capabilities while a migration is in progress"
    assert_line "xbzrle: off"
    assert_line "auto-converge: off"
    assert_output --partial "There's a migration process in progress"
    # A parameter may change: the new limit lets it finish.
    hop_mon src "migrate_set_parameter max-bandwidth 0"
    wait_mig src completed 30
    compare_machines src dst 64M
}

@test "bad capability and parameter values are refused with the valid range" {
    hop_start src -m 16M -S
    run hop_mon src "migrate_set_parameter downtime-limit 0" \
        "migrate_set_parameter cpu-throttle-initial 100" \
        "migrate_set_parameter multifd-channels 256" \
        "migrate_set_parameter xbzrle-cache-size 1" \
        "migrate_set_parameter throttle-trigger-threshold x" \
        "migrate_set_parameter no-such-thing 1" \
        "migrate_set_capability no-such-cap on" \
        "migrate_set_capability multifd on" \
        "migrate_set_capability xbzrle on" \
        "migrate_set_downtime -1" \
        "migrate nowhere:at-all" \
        "info migrate_parameters" "info migrate_capabilities"
    assert_line "Error: parameter 'downtime-limit' must be between 1 and 2000000 ms (got 0)"
    assert_line "Error: parameter 'cpu-throttle-initial' must be between 1 and 99 % (got 100)"
    assert_line "Error: parameter 'multifd-channels' must be between 1 and 255 (got 256)"
    assert_line --partial "Error: parameter 'xbzrle-cache-size' must be between 4096 and"
    assert_line --partial "Error: parameter 'throttle-trigger-threshold': 'x' is not a number"
    assert_line --partial "Error: unknown parameter 'no-such-thing'"
    assert_line --partial "Error: unknown capability 'no-such-cap'"
    assert_line "Error: capabilities xbzrle and multifd cannot be used together"
    assert_line --partial "Error: migrate_set_downtime: '-1'"
    assert_line --partial "Error: unknown migration protocol: 'nowhere:at-all'"
    # Nothing refused took effect.
    assert_line "downtime-limit: 300 ms"
    assert_line "cpu-throttle-initial: 20"
    assert_line "multifd-channels: 2"
    assert_line "multifd: on"
    assert_line "xbzrle: off"
}

@test "info migrate_capabilities and migrate_parameters show defaults and changes" {
    hop_start src -m 16M -S
    run hop_mon src "info migrate_capabilities" "info migrate_parameters" \
        "info migrate"
    local c
    for c in xbzrle auto-converge events multifd validate-uuid \
             pause-before-switchover; do
        assert_line "$c: off"
    done
    assert_line "max-bandwidth: 134217728 bytes/second"
    assert_line "downtime-limit: 300 ms"
    assert_line "xbzrle-cache-size: 67108864 bytes"
    assert_line "multifd-channels: 2"
    assert_line "cpu-throttle-initial: 20"
    assert_line "cpu-throttle-increment: 10"
    assert_line "throttle-trigger-threshold: 50"
    refute_line --partial "Migration status"
    run hop_mon src "migrate_set_capability events on" \
        "migrate_set_parameter max-bandwidth 1G" \
        "migrate_set_parameter cpu-throttle-increment 5" \
        "info migrate_capabilities" "info migrate_parameters"
    assert_line "events: on"
    assert_line "max-bandwidth: 1073741824 bytes/second"
    assert_line "cpu-throttle-increment: 5"
}

@test "migrate_set_speed, migrate_set_downtime, migrate_set_cache_size, info migrate_cache_size" {
    hop_start src -m 16M -S
    run hop_mon src "migrate_set_speed 10" "migrate_set_downtime 0.05" \
        "migrate_set_cache_size 32M" "info migrate_parameters" \
        "info migrate_cache_size"
    assert_line "max-bandwidth: 10485760 bytes/second"
    assert_line "downtime-limit: 50 ms"
    assert_line "xbzrle-cache-size: 33554432 bytes"
    assert_line "xbzrle cache size: 32768 kbytes"
    run hop_mon src "migrate_set_speed 2K" "info migrate_parameters"
    assert_line "max-bandwidth: 2048 bytes/second"
}

@test "calc_dirty_rate: a memtest guest dirties fast, a paused one not at all" {
    hop_start src -m 64M
    wait_filled src
    run hop_mon src "info dirty_rate"
    assert_line "Status: unstarted"
    hop_mon src "calc_dirty_rate 1"
    run hop_mon src "info dirty_rate"
    assert_line "Status: measuring"
    wait_for "hop_mon src 'info dirty_rate' | grep -q 'Status: measured'" 10
    local rate
    rate=$(hop_mon src "info dirty_rate" | sed -n 's/^Dirty rate: \([0-9]*\).*/\1/p')
    # memtest rewrites every page many times a second: all 63 MiB.
    [ "$rate" -ge 32 ]
    hop_mon src "stop" "calc_dirty_rate 1"
    wait_for "hop_mon src 'info dirty_rate' | grep -q 'Status: measured'" 10
    run hop_mon src "info dirty_rate"
    assert_line "Dirty rate: 0 (MB/s)"
    assert_line "Period: 1 (sec)"
    run hop_mon src "calc_dirty_rate 0"
    assert_output --partial "between 1 and 60"
}

@test "max-bandwidth is never exceeded by more than 10% in any second" {
    hop_start dst -m 256M -S -incoming "unix:$D/mig.sock"
    hop_start src -m 256M
    wait_filled src
    # A stopped source: its vCPU leaves the CPU to the measurement.
    hop_mon src "stop" "migrate_set_parameter max-bandwidth 16M" \
        "migrate -d unix:$D/mig.sock"
    wait_mig src active 10
    sleep 0.3
    # kbytes per second, against 16 MiB/s = 16384 kbytes/s.
    run "$PY" "$HOP_SRC/tests/tools/mon-rate.py" "$D/src.mon" \
        "transferred ram" 1 3
    assert_success
    echo "kbytes/s each second: $(echo $output)" >&3
    local r
    for r in $output; do
        [ "$r" -le $((16384 * 110 / 100)) ]
    done
    # Not starved either: the median second moves at least half the limit
    # (a loaded host, or the sanitizers, can slow the sender below it).
    r=$(printf '%s\n' $output | sort -n | sed -n 2p)
    [ "$r" -ge $((16384 * 50 / 100)) ]
    hop_mon src "migrate_cancel"
    wait_mig src cancelled 10
}

@test "zero pages are never written on the destination, nor allocated on the source" {
    hop_start dst -m 1G -S -guest counter -incoming "unix:$D/mig.sock"
    hop_start src -m 1G -guest counter
    wait_serial src "counter: 2" 20
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/mig.sock" "info migrate"
    assert_line "Migration status: completed"
    # Almost every page is zero and went as a flag.
    local dup
    dup=$(output_field 'duplicate')
    [ "$dup" -gt 260000 ]
    wait_for "hop_mon dst 'info status' | grep -qx 'VM status: paused'" 60
    local rss
    rss=$(awk '/^Rss:/ {print $2}' "/proc/$(hop_pid dst)/smaps_rollup")
    echo "destination Rss: $rss kB" >&3
    [ "$rss" -lt $((64 * 1024)) ]
    # Nor did sending them allocate the source's unused memory.
    rss=$(awk '/^Rss:/ {print $2}' "/proc/$(hop_pid src)/smaps_rollup")
    echo "source Rss: $rss kB" >&3
    [ "$rss" -lt $((64 * 1024)) ]
    # And the machine is the same.
    hop_mon src "info registers" >"$D/src.regs"
    hop_mon dst "info registers" >"$D/dst.regs"
    diff "$D/src.regs" "$D/dst.regs"
    hop_mon dst "cont"
    wait_for "[ \$(grep -c counter: '$D/dst.serial') -gt 0 ]" 10
}
