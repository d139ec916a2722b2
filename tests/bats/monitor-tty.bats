#!/usr/bin/env bats
# The monitor on a real terminal (a tmux pane): the (hop) prompt, Tab
# completion, history, Ctrl-C and Ctrl-D, as a person at the keyboard
# meets them.

load helper

setup() {
    hop_sandbox
    command -v tmux >/dev/null || skip "tmux is not installed"
    TMUX_SOCK="$BATS_TEST_TMPDIR/tmux.sock"
    # The pane stays after hop exits so its last screen and status can be
    # read; no user configuration.
    printf 'set -g remain-on-exit on\nset -g history-limit 5000\n' \
        >"$BATS_TEST_TMPDIR/tmux.conf"
}

teardown() {
    tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
}

# tty_start SHELL-COMMAND: runs it in a 200x50 terminal; its exit status
# goes to tty.status (tmux's own pane status is not always filled in).
tty_start() {
    rm -f "$BATS_TEST_TMPDIR/tty.status"
    tmux -S "$TMUX_SOCK" -f "$BATS_TEST_TMPDIR/tmux.conf" \
        new-session -d -s hoptty -x 200 -y 50 \
        "$1; echo \$? >'$BATS_TEST_TMPDIR/tty.status'"
}

# tty_restart SHELL-COMMAND: the same, in the pane of the previous one.
tty_restart() {
    rm -f "$BATS_TEST_TMPDIR/tty.status"
    tmux -S "$TMUX_SOCK" respawn-pane -k -t hoptty: \
        "$1; echo \$? >'$BATS_TEST_TMPDIR/tty.status'"
}

tty_keys() {
    tmux -S "$TMUX_SOCK" send-keys -t hoptty: "$@"
}

tty_screen() {
    tmux -S "$TMUX_SOCK" capture-pane -p -t hoptty:
}

# What is left of the cursor on its line (the line being edited).
tty_line() {
    local pos
    pos=$(tmux -S "$TMUX_SOCK" display -p -t hoptty: '#{cursor_x} #{cursor_y}')
    [ "${pos% *}" -gt 0 ] || return 0
    tmux -S "$TMUX_SOCK" capture-pane -p -N -t hoptty: |
        sed -n "$((${pos#* } + 1))p" | cut -c "1-${pos% *}"
}

# tty_wait REGEX [SECONDS]: until the screen matches (bounded).
tty_wait() {
    local re=$1 n=$((${2:-10} * 20))
    while [ "$n" -gt 0 ]; do
        tty_screen | grep -qE -- "$re" && return 0
        sleep 0.05
        n=$((n - 1))
    done
    echo "screen never matched /$re/:" >&2
    tty_screen >&2
    return 1
}

# tty_wait_line REGEX: until the cursor's line matches.
tty_wait_line() {
    local re=$1 n=200
    while [ "$n" -gt 0 ]; do
        tty_line | grep -qE -- "$re" && return 0
        sleep 0.05
        n=$((n - 1))
    done
    echo "cursor line never matched /$re/: '$(tty_line)'" >&2
    tty_screen >&2
    return 1
}

# tty_exited: hop has exited (bounded wait); prints its exit status.
tty_exited() {
    wait_for "[ -s '$BATS_TEST_TMPDIR/tty.status' ]" 20 || return 1
    cat "$BATS_TEST_TMPDIR/tty.status"
}

# Starts hop with its monitor on the terminal and a QMP socket beside it.
start_hop() {
    tty_start "'$HOP' run -m 32M -guest echo \
        -qmp unix:$BATS_TEST_TMPDIR/qmp.sock,server,nowait $*"
    tty_wait_line '^\(hop\) $'
}

@test "the terminal shows a banner and the (hop) prompt" {
    start_hop
    run tty_screen
    assert_line --index 0 --regexp "^hop [0-9.]+ monitor - type 'help' for more information$"
    assert_line --index 1 "(hop)"
    run tty_line
    assert_output "(hop) "
}

@test "Tab completes command names and info subcommands" {
    start_hop
    tty_keys 'system_res' Tab
    tty_wait_line '^\(hop\) system_reset $'
    tty_keys C-u 'info sta' Tab
    tty_wait_line '^\(hop\) info status $'
    # Several candidates: a second Tab lists them.
    tty_keys C-u 'info mi' Tab Tab
    tty_wait '^\(hop\) info mi$'
    run tty_screen
    assert_output --regexp 'mice +migrate +migrate_cache_size +migrate_capabilities +migrate_parameters'
    tty_keys C-u 'info ' Tab Tab
    tty_wait 'qtree'
    run tty_screen
    for sub in status version name cpus registers ramblock block mice history qtree accel; do
        assert_output --regexp "(^|[[:space:]])$sub([[:space:]]|$)"
    done
}

@test "Tab completes capabilities, on/off and key names" {
    start_hop
    tty_keys 'migrate_set_capability xb' Tab
    tty_wait_line '^\(hop\) migrate_set_capability xbzrle $'
    tty_keys 'o' Tab Tab
    tty_wait '^off +on$'
    tty_keys 'n' Tab
    tty_wait_line '^\(hop\) migrate_set_capability xbzrle on $'
    # alt and alt_r both fit: Tab goes as far as they agree.
    tty_keys C-u 'sendkey ctrl-al' Tab
    tty_wait_line '^\(hop\) sendkey ctrl-alt$'
    tty_keys C-u 'sendkey ctrl-alt-de' Tab
    tty_wait_line '^\(hop\) sendkey ctrl-alt-delete $'
}

@test "Tab completes file names after file:" {
    mkdir -p "$BATS_TEST_TMPDIR/dir"
    touch "$BATS_TEST_TMPDIR/dir/state-image.bin"
    start_hop
    tty_keys "migrate file:$BATS_TEST_TMPDIR/di" Tab
    tty_wait_line "migrate file:$BATS_TEST_TMPDIR/dir/\$"
    tty_keys 'st' Tab
    tty_wait_line "migrate file:$BATS_TEST_TMPDIR/dir/state-image.bin \$"
    # pmemsave's file argument completes plain paths.
    tty_keys C-u "pmemsave 0 4096 $BATS_TEST_TMPDIR/dir/sta" Tab
    tty_wait_line "pmemsave 0 4096 $BATS_TEST_TMPDIR/dir/state-image.bin \$"
}

@test "info status, stop, info status, cont, quit" {
    start_hop
    tty_keys 'info status' Enter
    tty_wait '^VM status: running$'
    tty_keys 'stop' Enter 'info status' Enter
    tty_wait '^VM status: paused$'
    tty_keys 'c' Enter 'info status' Enter
    wait_for '[ "$(tty_screen | grep -c "^VM status: running$")" = 2 ]' 10
    run tty_screen
    # running, then paused, then running again
    assert_equal "$(grep -E '^VM status' <<<"$output" | tr '\n' '|')" \
        "VM status: running|VM status: paused|VM status: running|"
    tty_keys 'quit' Enter
    run tty_exited
    assert_success
    assert_output 0
    [ ! -e "$BATS_TEST_TMPDIR/qmp.sock" ]
}

@test "Ctrl-C clears the line and never stops the machine" {
    start_hop
    tty_keys 'info registers bogus-text'
    tty_wait_line 'bogus-text$'
    tty_keys C-c
    tty_wait_line '^\(hop\) $'
    tty_keys C-c C-c
    sleep 0.3
    tty_keys 'info status' Enter
    tty_wait '^VM status: running$'
    run tty_screen
    refute_output --partial 'bogus-text: '
    refute_output --partial 'Error'
    [ -S "$BATS_TEST_TMPDIR/qmp.sock" ]
}

@test "Ctrl-D quits cleanly: exit status 0, sockets removed" {
    start_hop "-monitor stdio"
    tty_keys 'stop' Enter
    tty_keys C-d
    run tty_exited
    assert_success
    assert_output 0
    [ ! -e "$BATS_TEST_TMPDIR/qmp.sock" ]
}

@test "history: Up recalls, kept in \$XDG_STATE_HOME/hop/history, info history" {
    start_hop
    tty_keys 'info version' Enter 'info name' Enter
    tty_wait '^\(hop\) info name'
    tty_keys Up Up
    tty_wait_line '^\(hop\) info version$'
    tty_keys C-u 'quit' Enter
    tty_exited
    run cat "$XDG_STATE_HOME/hop/history"
    assert_success
    assert_output "$(printf 'info version\ninfo name\nquit')"
    run stat -c %a "$XDG_STATE_HOME/hop/history"
    assert_output 600

    # A new run (in the same pane) starts with the old history.
    tty_restart "'$HOP' run -m 32M -guest echo"
    tty_wait_line '^\(hop\) $'
    tty_keys Up
    tty_wait_line '^\(hop\) quit$'
    tty_keys C-u 'info history' Enter
    tty_wait "^3: 'info history'$"
    run tty_screen
    assert_line "0: 'info version'"
    assert_line "1: 'info name'"
    assert_line "2: 'quit'"
}

@test "history goes to ~/.local/state/hop/history without XDG_STATE_HOME" {
    export XDG_STATE_HOME="$BATS_TEST_TMPDIR/elsewhere"
    tty_start "unset XDG_STATE_HOME; '$HOP' run -m 32M -guest echo"
    tty_wait_line '^\(hop\) $'
    tty_keys 'info accel' Enter 'quit' Enter
    run tty_exited
    assert_output 0
    run cat "$HOME/.local/state/hop/history"
    assert_output "$(printf 'info accel\nquit')"
    [ ! -e "$XDG_STATE_HOME/hop/history" ]
}
