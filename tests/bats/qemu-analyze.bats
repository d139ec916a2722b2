#!/usr/bin/env bats
# QEMU's own stream parser, scripts/analyze-migration.py, reads hop's
# streams: the golden file's values as written, and a live machine's RAM
# exactly as pmemsave sees it.  The script is QEMU's (fetched by make deps
# into a cache, never committed); without it these tests skip.

load helper
load mig-helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    ANALYZE=${HOP_QEMU_SCRIPTS:-}/analyze-migration.py
    [ -n "${HOP_QEMU_SCRIPTS:-}" ] && [ -f "$ANALYZE" ] ||
        skip "QEMU's analyze-migration.py not found (HOP_QEMU_SCRIPTS; tests/tools/fetch-qemu-tools.sh fetches it)"
}

teardown() {
    hop_stop_all
}

@test "analyze-migration.py reads the golden stream: the values gen-golden wrote" {
    run python3 "$ANALYZE" -f "$HOP_SRC/tests/fixtures/golden/testset-0.1.0.stream"
    assert_success
    dev=$(jq -c '."testdev (0)"' <<<"$output")
    [ "$(jq -r .u32 <<<"$dev")" = 0xdeadbeef ]
    [ "$(jq -r .s8 <<<"$dev")" = "0xfb (-5)" ]
    [ "$(jq -r .s64 <<<"$dev")" = "0xeeddef0b82167eeb (-1234567890123456789)" ]
    [ "$(jq -c .regs <<<"$dev")" = '["0x1000","0x2000","0x3000","0x4000"]' ]
    run python3 "$ANALYZE" -d desc -f "$HOP_SRC/tests/fixtures/golden/testset-0.1.0.stream"
    assert_success
    [ "$(jq -r '.devices[0].name' <<<"$output")" = testdev ]
}

@test "a hop migration stream: QEMU's parser extracts the RAM pmemsave shows and every section hop wrote" {
    hop_start src -m 16M
    wait_filled src
    run hop_mon src "stop" "migrate_set_parameter max-bandwidth 0" \
        "migrate \"exec:cat > $D/s.stream\"" "info migrate" \
        "pmemsave 0 16777216 \"$D/pmem.ram\""
    assert_line "Migration status: completed"
    mkdir "$D/x"
    (cd "$D/x" && timeout 120 python3 "$ANALYZE" -x -f "$D/s.stream")
    cmp "$D/x/pc.ram" "$D/pmem.ram"
    # Every device section hop's inspect lists, QEMU's parser read too.
    "$HOP" inspect --json "$D/s.stream" |
        jq -r '.devices[].idstr' | sort >"$D/hop.sections"
    jq -r 'keys[] | sub(" \\([0-9]+\\)$"; "")' "$D/x/state.json" |
        grep -vx ram | sort >"$D/qemu.sections"
    diff "$D/hop.sections" "$D/qemu.sections"
    [ "$(wc -l <"$D/hop.sections")" -ge 5 ]
}
