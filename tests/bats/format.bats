#!/usr/bin/env bats
# Every C file follows .clang-format, so a change's diff shows what it
# changes and not how an editor laid it out.

load helper

@test "the tree follows .clang-format (make format fixes it)" {
    command -v clang-format >/dev/null ||
        skip "clang-format is not installed (make deps installs it)"
    git -C "$BATS_TEST_DIRNAME/../.." rev-parse --git-dir >/dev/null 2>&1 ||
        skip "not a git checkout: no list of the tree's files"
    cd "$BATS_TEST_DIRNAME/../.."
    run make --no-print-directory format-check
    assert_success
}
