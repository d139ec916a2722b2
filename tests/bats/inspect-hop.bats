#!/usr/bin/env bats
# hop inspect on streams hop itself wrote: the RAM it extracts is the
# guest's memory at the switch, as pmemsave sees it.

load helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
}

teardown() {
    hop_stop_all
}

@test "migrate file: of a stopped guest: --extract-ram equals pmemsave" {
    hop_start src -m 32M
    wait_memtest_filled src
    hop_mon src "stop" "pmemsave 0 33554432 \"$D/mem.bin\"" \
        "migrate_set_parameter max-bandwidth 0" "migrate file:$D/s.stream" \
        >/dev/null
    run "$HOP" inspect --verify "$D/s.stream"
    assert_success
    run "$HOP" inspect "$D/s.stream" --extract-ram "$D/ram" --no-ram
    assert_success
    cmp "$D/mem.bin" "$D/ram/pc.ram"
}

@test "a running guest with xbzrle: the extracted RAM is the memory at the switch" {
    hop_start src -m 32M
    wait_memtest_filled src
    # Several passes over a dirtying guest, later ones as XBZRLE deltas.
    run hop_mon src "migrate_set_capability xbzrle on" \
        "migrate_set_capability auto-converge on" \
        "migrate_set_parameter max-bandwidth 64M" \
        "migrate_set_parameter downtime-limit 30" \
        "migrate \"exec:cat > $D/x.stream\"" "info migrate" \
        "pmemsave 0 33554432 \"$D/mem.bin\""
    assert_line "Migration status: completed"
    run "$HOP" inspect --json "$D/x.stream"
    assert_success
    run "$HOP" inspect "$D/x.stream" --extract-ram "$D/ram" --no-ram
    assert_success
    # The source stopped at the switch (postmigrate): its memory now is
    # what the stream ends with.
    cmp "$D/mem.bin" "$D/ram/pc.ram"
}
