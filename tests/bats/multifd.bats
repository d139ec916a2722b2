#!/usr/bin/env bats
# multifd: RAM over several connections; the destination must end with
# exactly the source's memory even though pages race on the channels.

load helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    CHECK=$HOP_BUILD_DIR/tests/tools/memtest-check
}

teardown() {
    hop_stop_all
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
    kb=$(sed -n 's/^multifd bytes: \([0-9]*\) kbytes$/\1/p' <<<"$output")
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
    ms=$(sed -n 's/^total time: \([0-9]*\) ms$/\1/p' <<<"$output")
    [ "$ms" -ge 3000 ] || fail "64 MiB took only $ms ms at 16 MiB/s"
}
