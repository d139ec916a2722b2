# Common set-up for hop's bats tests: a private HOME and XDG directories so
# no test touches a user's history, catalog or state.
bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

HOP=${HOP:-$BATS_TEST_DIRNAME/../../build/hop}
HOP_SRC=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

hop_sandbox() {
    export HOME="$BATS_TEST_TMPDIR/home"
    export XDG_STATE_HOME="$HOME/.local/state"
    export XDG_DATA_HOME="$HOME/.local/share"
    export XDG_CONFIG_HOME="$HOME/.config"
    export XDG_CACHE_HOME="$HOME/.cache"
    export HOP_CATALOG="$BATS_TEST_TMPDIR/catalog.db"
    mkdir -p "$HOME"
}

# ---- running machines ----
# hop_start NAME [hop run options...]: starts `hop run` in the background
# with its monitor on $BATS_TEST_TMPDIR/NAME.mon and serial output in
# NAME.serial, and waits (bounded) for the monitor socket.
hop_start() {
    local name=$1
    shift
    local d=$BATS_TEST_TMPDIR
    "$HOP" run -monitor "unix:$d/$name.mon,server,nowait" \
        -serial "file:$d/$name.serial" "$@" >"$d/$name.out" 2>"$d/$name.err" &
    echo $! >"$d/$name.pid"
    HOP_PIDS="${HOP_PIDS:-} $!"
    wait_for "[ -S '$d/$name.mon' ]" 20 || {
        cat "$d/$name.err" >&2
        return 1
    }
}

# wait_for CONDITION SECONDS: polls a shell condition every 0.1 s.
wait_for() {
    local cond=$1 secs=${2:-10}
    local n=$((secs * 10))
    while [ "$n" -gt 0 ]; do
        if eval "$cond"; then
            return 0
        fi
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# hop_mon NAME COMMAND...: runs monitor commands over the socket, prints
# their output without the banner and prompts.
hop_mon() {
    local name=$1
    shift
    printf '%s\n' "$@" |
        timeout 300 socat -t 300 - "UNIX-CONNECT:$BATS_TEST_TMPDIR/$name.mon" |
        sed -e '1d' -e 's/^\((hop) \)*//' | sed -e '/^$/d'
}

# hop_pid NAME: the process of a machine started with hop_start.
hop_pid() {
    cat "$BATS_TEST_TMPDIR/$1.pid"
}

# Stops every machine this test started (teardown).
hop_stop_all() {
    local p
    for p in ${HOP_PIDS:-}; do
        kill "$p" 2>/dev/null || true
    done
    for p in ${HOP_PIDS:-}; do
        timeout 10 tail -s 0.05 --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true
    done
    HOP_PIDS=
}

# need_qemu_system: skips a test that uses QEMU itself as an oracle where
# qemu-system-x86_64 is not installed (make deps installs it).
need_qemu_system() {
    command -v qemu-system-x86_64 >/dev/null ||
        skip "qemu-system-x86_64 is not installed"
}

kvm_works() {
    [ -r /dev/kvm ] && [ -w /dev/kvm ]
}

# wait_memtest_filled NAME: the memtest guest's invariant holds only once
# it has filled RAM (slow under the sanitizers).
wait_memtest_filled() {
    wait_for "grep -q 'memtest: filled' '$BATS_TEST_TMPDIR/$1.serial'" 120
}
