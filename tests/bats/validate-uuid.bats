#!/usr/bin/env bats
# validate-uuid: a stream from one machine is refused by a destination
# that is another machine (different -uuid), and taken by the same one.

load helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    U1=6c1b7a4e-2f0d-4d6e-9a8b-1c2d3e4f5a6b
    U2=0f0e0d0c-0b0a-0908-0706-050403020100
}

teardown() {
    hop_stop_all
}

save_stream() {
    hop_start src -m 16M -uuid "$U1"
    run hop_mon src "migrate_set_capability validate-uuid $1" \
        "migrate file:$D/s.stream" "info migrate"
    assert_line "Migration status: completed"
}

@test "with validate-uuid, a destination with another UUID refuses" {
    save_stream on
    run timeout 30 "$HOP" run -m 16M -uuid "$U2" -monitor none -serial none \
        -incoming "file:$D/s.stream"
    assert_failure 1
    assert_output --partial "UUID received is $U1 and should be $U2"
    hop_start dst -m 16M -uuid "$U1" -S -incoming "file:$D/s.stream"
    wait_for "hop_mon dst 'info status' | grep -q 'VM status: paused\$'" 20
}

@test "without validate-uuid the UUID is not sent, so any destination loads" {
    save_stream off
    ! grep -q "configuration/uuid" "$D/s.stream"
    hop_start dst -m 16M -uuid "$U2" -S -incoming "file:$D/s.stream"
    wait_for "hop_mon dst 'info status' | grep -q 'VM status: paused\$'" 20
}

@test "a malformed -uuid is a usage error" {
    run "$HOP" run -uuid not-a-uuid
    assert_failure 2
    assert_output --partial "-uuid: 'not-a-uuid' is not a UUID"
}
