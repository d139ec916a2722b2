#!/usr/bin/env bats
# The hop command line: help, version, usage errors, completion.

load helper

setup() {
    hop_sandbox
}

@test "hop --help lists the commands and exits 0" {
    run "$HOP" --help
    assert_success
    assert_line --partial "Usage: hop"
    assert_line --regexp '^  help +show help'
    assert_line --regexp '^  version +'
    refute_line --partial "complete"   # hidden command
}

@test "hop without a command prints usage to stderr and exits 2" {
    run --separate-stderr "$HOP"
    assert_failure 2
    assert_equal "$output" ""
    [[ $stderr == *"Usage: hop"* ]]
}

@test "an unknown command or option is a usage error (exit 2, stderr)" {
    run --separate-stderr "$HOP" frobnicate
    assert_failure 2
    assert_equal "$output" ""
    [[ $stderr == *"unknown command 'frobnicate'"* ]]
    run --separate-stderr "$HOP" --frobnicate
    assert_failure 2
    [[ $stderr == *"unknown option '--frobnicate'"* ]]
}

@test "hop --version and hop version agree" {
    run "$HOP" --version
    assert_success
    assert_output --regexp '^hop [0-9]+\.[0-9]+\.[0-9]+ \(migration stream version 3\)$'
    local v=$output
    run "$HOP" version
    assert_output "$v"
    run "$HOP" version extra
    assert_failure 2
}

@test "hop COMMAND --help and hop help COMMAND show the command's usage" {
    run "$HOP" version --help
    assert_success
    assert_line --index 0 "Usage: hop version "
    local a=$output
    run "$HOP" help version
    assert_success
    assert_equal "$output" "$a"
    run "$HOP" help nosuch
    assert_failure 2
    assert_output --partial "unknown command 'nosuch'"
}

@test "every listed command has --help and a man page entry" {
    run "$HOP" --help
    local cmds
    cmds=$(sed -n 's/^  \([a-z-][a-z-]*\) .*/\1/p' <<<"$output")
    [ -n "$cmds" ]
    for c in $cmds; do
        run "$HOP" "$c" --help
        assert_success
        assert_line --index 0 --partial "Usage: hop $c"
        grep -q "^\.BR* $c\b\|^\.SS \"*hop $c\|^\.B $c" "$HOP_SRC/man/hop.1" ||
            fail "command '$c' is missing from man/hop.1"
    done
}

@test "bash completion offers commands and falls back to files" {
    source "$HOP_SRC/completions/hop.bash"
    # The completion calls the binary by the name on the command line.
    hop() { "$HOP" "$@"; }
    export -f hop 2>/dev/null || true
    PATH="$(dirname "$HOP"):$PATH"
    COMP_WORDS=(hop ve)
    COMP_CWORD=1
    _hop
    assert_equal "${COMPREPLY[*]}" "version"
    COMP_WORDS=(hop help ve)
    COMP_CWORD=2
    _hop
    assert_equal "${COMPREPLY[*]}" "version"
    cd "$BATS_TEST_TMPDIR"
    touch some-image.qcow2
    COMP_WORDS=(hop inspect some-)
    COMP_CWORD=2
    _hop
    assert_equal "${COMPREPLY[*]}" "some-image.qcow2"
}
