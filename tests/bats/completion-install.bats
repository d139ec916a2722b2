#!/usr/bin/env bats
# make install: the binary, both man pages and the bash completion land
# under DESTDIR/PREFIX, and what is installed works.

load helper

setup() {
    hop_sandbox
    command -v make >/dev/null || skip "make is not installed"
}

@test "make install DESTDIR=... PREFIX=/usr, then make uninstall" {
    local dest=$BATS_TEST_TMPDIR/root build
    build=$(basename "$(dirname "$HOP")")
    run make -s -C "$HOP_SRC" BUILD="$build" install DESTDIR="$dest" PREFIX=/usr
    assert_success
    [ -x "$dest/usr/bin/hop" ]
    cmp "$dest/usr/bin/hop" "$HOP"
    cmp "$dest/usr/share/man/man1/hop.1" "$HOP_SRC/man/hop.1"
    cmp "$dest/usr/share/man/man7/hop-monitor.7" "$HOP_SRC/man/hop-monitor.7"
    cmp "$dest/usr/share/bash-completion/completions/hop" \
        "$HOP_SRC/completions/hop.bash"
    run stat -c %a "$dest/usr/share/man/man7/hop-monitor.7" \
        "$dest/usr/bin/hop"
    assert_output "$(printf '644\n755')"
    # The installed pages render and the installed completion runs the
    # installed binary.
    run man -l "$dest/usr/share/man/man7/hop-monitor.7"
    assert_success
    assert_output --partial "info status"
    PATH="$dest/usr/bin:$PATH"
    source "$dest/usr/share/bash-completion/completions/hop"
    COMP_WORDS=(hop run -accel '')
    COMP_CWORD=3
    _hop
    assert_equal "${COMPREPLY[*]}" "emu kvm"

    run make -s -C "$HOP_SRC" BUILD="$build" uninstall DESTDIR="$dest" PREFIX=/usr
    assert_success
    run find "$dest" -type f
    assert_output ""
}
