#!/usr/bin/env bats
# tests/run-tests.sh: how skips, passes and failures of both runners count.
# Fake unit-test "binaries" print the TAP that cmocka prints.

load helper

setup() {
    hop_sandbox
    FAKE="$BATS_TEST_TMPDIR/build"
    mkdir -p "$FAKE/tests"
}

# fake_unit NAME TAP-LINES EXIT: a test binary that prints the lines and exits.
fake_unit() {
    local f="$FAKE/tests/test_zz_$1"
    printf '#!/bin/sh\ncat <<"EOF"\n%s\nEOF\nexit %s\n' "$2" "$3" >"$f"
    chmod +x "$f"
}

run_runner() {
    run env HOP_BUILD="$FAKE" HOP_TESTS=test_zz_ "$HOP_SRC/tests/run-tests.sh"
}

@test "a cmocka skip counts as skipped, with the reason it printed" {
    fake_unit a "1..2
ok 1 - test_works
# skip: accel kvm: /dev/kvm does not exist
not ok 2 # SKIP test_needs_kvm" 0
    run_runner
    assert_success
    assert_line "1 passed, 0 failed, 1 skipped"
    assert_line "  test_needs_kvm: accel kvm: /dev/kvm does not exist"
}

@test "a real failure still fails the run, next to a skip" {
    fake_unit a "1..3
ok 1 - test_works
not ok 2 - test_broken
# skip: no userfaultfd
not ok 3 # SKIP test_uffd" 1
    run_runner
    assert_failure
    assert_line "1 passed, 1 failed, 1 skipped"
}

@test "a test binary that dies before reporting is a failure" {
    fake_unit a "1..2
ok 1 - test_works" 134
    run_runner
    assert_failure
    assert_line --partial "not ok - test_zz_a exited with status 134"
}

@test "a skip without a printed reason says so" {
    fake_unit a "1..2
ok 1 - test_works
not ok 2 # SKIP test_quiet" 0
    run_runner
    assert_success
    assert_line "  test_quiet: no reason given"
}

@test "a run where everything skipped fails: nothing was checked" {
    fake_unit a "1..1
# skip: no /dev/kvm
not ok 1 # SKIP test_kvm" 0
    run_runner
    assert_failure
    assert_line "0 passed, 0 failed, 1 skipped"
    assert_output --partial "no test ran"
}
