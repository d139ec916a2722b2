#!/usr/bin/env bats
# hop vmstate-check: one pair of schema files per rule (fixtures/schemas/
# RULE-old.json, RULE-new.json), QEMU's own dump against itself.

load helper

S=$HOP_SRC/tests/fixtures/schemas

setup() {
    hop_sandbox
}

# check RULE STATUS SEVERITY PATH MESSAGE-PART [--reverse]
check() {
    local rule=$1 want=$2 sev=$3 path=$4 msg=$5; shift 5
    run "$HOP" vmstate-check "$S/$rule-old.json" "$S/$rule-new.json" "$@"
    [ "$status" -eq "$want" ] || fail "$rule: exit $status, expected $want: $output"
    assert_line --regexp "^$sev: $path: .*$msg"
    # exactly the findings of this rule, plus the summary line
    [ "$(grep -c '^\(error\|warning\): ' <<<"$output")" -ge 1 ]
}

@test "a section removed is an error" {
    check section-removed 1 error port92 "section removed"
}

@test "a section added is compatible; the reverse is not" {
    run "$HOP" vmstate-check "$S/section-added-old.json" "$S/section-added-new.json"
    assert_success
    assert_line --partial "compatible (0 errors, 0 warnings)"
    check section-added 1 error new-device "section removed" --reverse
}

@test "a field removed is an error" {
    check field-removed 1 error isa-serial/state/ier "field removed"
}

@test "a field renamed in place is a warning only" {
    check field-renamed 0 warning isa-serial/state/ier "renamed to 'int_enable'"
}

@test "a field whose size changed is an error" {
    check field-size-changed 1 error isa-serial/state/divider "size changed from 2 to 4"
}

@test "a field whose type changed is an error" {
    check field-type-changed 1 error isa-serial/state/lcr "type changed"
}

@test "a version raised without keeping the minimum is an error" {
    check minimum-raised 1 error port92 "minimum_version_id raised to 2, above the version OLD sends \\(1\\)"
}

@test "a field added without a version bump is an error" {
    check field-added-no-bump 1 error port92/extra "added without a version bump"
}

@test "a field added with a version bump is compatible; backwards it is not" {
    run "$HOP" vmstate-check "$S/field-added-with-bump-old.json" "$S/field-added-with-bump-new.json"
    assert_success
    refute_line --regexp '^(error|warning):'
    check field-added-with-bump 1 error port92 "version_id lowered from 2 to 1" --reverse
}

@test "a field added under a test is a warning" {
    check field-added-with-test 0 warning port92/maybe "field_exists"
}

@test "a field that now starts at a later version is an error" {
    check field-version-raised 1 error isa-serial/state/divider "only from version 4"
}

@test "a field_exists test added or removed is a warning" {
    check field-exists-changed 0 warning isa-serial/state "field_exists test added"
}

@test "a subsection removed is an error" {
    check subsection-removed 1 error isa-serial/state/serial/thr_ipending "subsection removed"
}

@test "a subsection renamed is an error that names the likely new name" {
    check subsection-renamed 1 error isa-serial/state/serial/thr_ipending "now 'serial/thr_pending'"
}

@test "a subsection added is compatible" {
    run "$HOP" vmstate-check "$S/subsection-added-old.json" "$S/subsection-added-new.json"
    assert_success
}

@test "a subsection whose minimum passed the old version is an error" {
    check subsection-minimum-raised 1 error isa-serial/state/serial/recv_fifo "minimum_version_id 2"
}

@test "a description renamed is an error" {
    check description-renamed 1 error isa-serial "description name changed from 'serial' to 'uart'"
}

@test "a size change inside a nested struct of a subsection is found" {
    check nested-size-changed 1 error isa-serial/state/serial/recv_fifo/recv_fifo/head "size changed from 4 to 8"
}

@test "a machine type change is an error" {
    check machine-changed 1 error vmschkmachine "machine type changed"
}

@test "QEMU's own -dump-vmstate against itself is compatible, both ways" {
    local dump=$HOP_SRC/tests/fixtures/qemu/dump-vmstate-pc.json.xz
    [ -f "$dump" ] || fail "fixture missing: $dump"
    xz -dc "$dump" > "$BATS_TEST_TMPDIR/d.json"
    run "$HOP" vmstate-check "$BATS_TEST_TMPDIR/d.json" "$BATS_TEST_TMPDIR/d.json"
    assert_success
    assert_line --partial "compatible (0 errors, 0 warnings)"
    run "$HOP" vmstate-check --reverse "$BATS_TEST_TMPDIR/d.json" "$BATS_TEST_TMPDIR/d.json"
    assert_success
}

@test "QEMU's dump from this host's QEMU, if present, is compatible with itself" {
    need_qemu_system
    timeout 30 qemu-system-x86_64 -M pc -dump-vmstate "$BATS_TEST_TMPDIR/live.json"
    run "$HOP" vmstate-check "$BATS_TEST_TMPDIR/live.json" "$BATS_TEST_TMPDIR/live.json"
    assert_success
}

@test "--json gives the findings as one document" {
    run "$HOP" vmstate-check --json "$S/field-removed-old.json" "$S/field-removed-new.json"
    assert_failure 1
    echo "$output" > "$BATS_TEST_TMPDIR/r.json"
    run /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["compatible"], [(f["severity"], f["path"]) for f in d["findings"]])' "$BATS_TEST_TMPDIR/r.json"
    assert_output "False [('error', 'isa-serial/state/ier')]"
}

@test "usage and input errors" {
    run "$HOP" vmstate-check
    assert_failure 2
    run "$HOP" vmstate-check "$S/field-removed-old.json"
    assert_failure 2
    run "$HOP" vmstate-check a b c
    assert_failure 2
    run "$HOP" vmstate-check --frob a b
    assert_failure 2
    run --separate-stderr "$HOP" vmstate-check "$BATS_TEST_TMPDIR/none.json" "$S/field-removed-old.json"
    assert_failure 1
    [[ $stderr == *"none.json"* ]]
    echo '[1, 2]' > "$BATS_TEST_TMPDIR/list.json"
    run --separate-stderr "$HOP" vmstate-check "$BATS_TEST_TMPDIR/list.json" "$S/field-removed-old.json"
    assert_failure 1
    [[ $stderr == *"-dump-vmstate layout"* ]]
}
