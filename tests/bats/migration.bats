#!/usr/bin/env bats
# Live migration between two hop processes over every transport, with the
# memtest guest running while it moves: the destination's memory and
# registers are exactly the stopped source's, and the guest runs on.

load helper
load mig-helper

setup() {
    mig_setup
}

teardown() {
    hop_stop_all
}

@test "unix: a running memtest guest moves, memory and registers equal (emu)" {
    migrate_running emu "unix:$D/mig.sock" "unix:$D/mig.sock"
}

@test "unix: a running memtest guest moves, memory and registers equal (kvm)" {
    need_accel kvm
    migrate_running kvm "unix:$D/mig.sock" "unix:$D/mig.sock"
}

@test "tcp on IPv4 and IPv6 loopback (emu)" {
    local port=$((20000 + RANDOM % 20000))
    migrate_running emu "tcp:127.0.0.1:$port" "tcp:127.0.0.1:$port"
    hop_stop_all
    port=$((port + 1))
    migrate_running emu "tcp:[::1]:$port" "tcp:[::1]:$port"
}

@test "tcp on IPv4 and IPv6 loopback (kvm)" {
    need_accel kvm
    local port=$((20000 + RANDOM % 20000))
    migrate_running kvm "tcp:127.0.0.1:$port" "tcp:127.0.0.1:$port"
    hop_stop_all
    port=$((port + 1))
    migrate_running kvm "tcp:[::1]:$port" "tcp:[::1]:$port"
}

@test "exec: the source streams into a command, the destination reads one" {
    # Source side: the command carries the stream to the destination.
    migrate_running emu "unix:$D/mig.sock" \
        "\"exec:socat -u - UNIX-CONNECT:$D/mig.sock\""
    # Destination side: the stream comes from a command's output.
    hop_stop_all
    hop_start src -m 64M
    wait_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate \"exec:cat > $D/s.stream\"" "info migrate"
    assert_line "Migration status: completed"
    hop_start dst -m 64M -S -incoming "exec:cat $D/s.stream"
    compare_machines src dst 64M
}

@test "exec: a failing command fails the migration with its exit status" {
    hop_start src -m 32M
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate \"exec:exit 3\"" "info migrate" "info status"
    assert_output --partial "Migration status: failed"
    assert_line "VM status: running"
}

@test "exec: the command inherits only its pipe and stdio, no descriptor of hop's" {
    # Monitor and QMP connections, listening sockets, a disk image, the
    # serial file, guest memory: none may reach the command.
    "$HOP" img create "$D/d.qcow2" 8M >/dev/null
    # What the test runner itself hands down is not hop's to close.
    local inherited
    inherited=$(ls /proc/$BASHPID/fd | tr '\n' ' ')
    hop_start src -m 16M -S -qmp "unix:$D/src.qmp,server,nowait" \
        -drive "file=$D/d.qcow2"
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate \"exec:ls -l /proc/self/fd > $D/fds; cat > /dev/null\"" \
        "info migrate"
    assert_line "Migration status: completed"
    cat "$D/fds"
    # "N -> TARGET" for each; ls's own look at /proc/self/fd may be there.
    run sed -n 's/.* \([0-9][0-9]*\) -> \(.*\)$/\1 \2/p' "$D/fds"
    assert_line --regexp '^0 pipe:'
    assert_line --regexp "^1 $D/fds\$"
    run awk -v inh=" $inherited" '$1 > 2 && $2 !~ "^/proc/[0-9]+/fd$" &&
                                   index(inh, " " $1 " ") == 0' <<<"$output"
    assert_output ""
}

@test "fd: getfd over the monitor socket, to the destination's socket (emu)" {
    hop_start dst -m 64M -S -incoming "unix:$D/mig.sock"
    hop_start src -m 64M
    wait_filled src
    run "$PY" "$GETFD_PY" mig "$D/src.mon" --connect "$D/mig.sock"
    assert_success
    run hop_mon src "migrate_set_parameter max-bandwidth 0" "migrate fd:mig" \
        "info migrate"
    assert_line "Migration status: completed"
    compare_machines src dst 64M
    # The name was used up by the migration.
    run hop_mon src "migrate fd:mig"
    assert_output --partial "'mig' not found"
}

@test "fd: on both sides, a socketpair; -incoming defer then migrate_incoming (kvm)" {
    need_accel kvm
    hop_start dst -accel kvm -m 16M -S -incoming defer
    hop_start src -accel kvm -m 16M
    wait_filled src
    run "$PY" "$GETFD_PY" mig "$D/src.mon" --pair "$D/dst.mon" \
        "migrate_incoming fd:mig"
    assert_success
    run hop_mon src "migrate_set_parameter max-bandwidth 0" "migrate fd:mig" \
        "info migrate"
    assert_line "Migration status: completed"
    compare_machines src dst 16M
}

@test "getfd without a descriptor is refused" {
    hop_start src -m 16M -S
    run hop_mon src "getfd x"
    assert_output --partial "No file descriptor supplied via SCM_RIGHTS"
}

@test "-incoming defer waits for migrate_incoming, then loads (emu)" {
    hop_start dst -m 64M -S -incoming defer
    hop_start src -m 64M
    wait_filled src
    run hop_mon dst "info status"
    assert_output --partial "inmigrate"
    run hop_mon src "migrate unix:$D/mig.sock"
    assert_output --partial "cannot connect"
    hop_mon dst "migrate_incoming unix:$D/mig.sock"
    run hop_mon dst "migrate_incoming unix:$D/again.sock"
    assert_output --partial "Error"
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/mig.sock" "info migrate"
    assert_line "Migration status: completed"
    compare_machines src dst 64M
}

@test "migrate_incoming without -incoming is refused" {
    hop_start src -m 16M
    run hop_mon src "migrate_incoming unix:$D/x.sock"
    assert_output --partial "'-incoming' was not specified"
}

@test "file: from a running guest, then -incoming file: (emu and kvm)" {
    local accel
    for accel in emu kvm; do
        [ "$accel" = kvm ] && ! kvm_works && continue
        hop_stop_all
        local mem
        mem=$(mig_mem $accel)
        hop_start src -accel $accel -m "$mem"
        wait_filled src
        run hop_mon src "migrate_set_parameter max-bandwidth 0" \
            "migrate file:$D/$accel.mig" "info migrate" "info status"
        assert_line "Migration status: completed"
        assert_line "VM status: paused (postmigrate)"
        hop_start dst -accel $accel -m "$mem" -S -incoming "file:$D/$accel.mig"
        compare_machines src dst "$mem"
    done
}

@test "file: with an offset keeps the bytes before it" {
    hop_start src -m 32M
    wait_filled src
    printf 'header!!' >"$D/f.bin"
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate file:$D/f.bin,offset=4096" "info migrate"
    assert_line "Migration status: completed"
    [ "$(head -c 8 "$D/f.bin")" = 'header!!' ]
    hop_start dst -m 32M -S -incoming "file:$D/f.bin,offset=4096"
    compare_machines src dst 32M
}

@test "file: over a longer file: the file ends where the stream does" {
    hop_start src -m 32M
    wait_filled src
    # An older, longer stream in the way (64 MiB of 0xff).
    head -c $((64 << 20)) /dev/zero | tr '\0' '\377' >"$D/f.bin"
    # Stopped, the stream is about the size of RAM (32 MiB + a little).
    run hop_mon src "stop" "migrate_set_parameter max-bandwidth 0" \
        "migrate file:$D/f.bin" "info migrate"
    assert_line "Migration status: completed"
    local size
    size=$(stat -c %s "$D/f.bin")
    [ "$size" -lt $((40 << 20)) ] || fail "file is $size bytes: the old tail stayed"
    run "$HOP" inspect "$D/f.bin"
    assert_success
    hop_start dst -m 32M -S -incoming "file:$D/f.bin"
    compare_machines src dst 32M
}

@test "the destination runs on after the switch: serial marks keep coming (emu, kvm)" {
    local accel
    for accel in emu kvm; do
        [ "$accel" = kvm ] && ! kvm_works && continue
        hop_stop_all
        local mem
        mem=$(mig_mem $accel)
        hop_start dst -accel $accel -m "$mem" -incoming "unix:$D/$accel.sock"
        hop_start src -accel $accel -m "$mem"
        wait_filled src
        run hop_mon src "migrate_set_parameter max-bandwidth 0" \
            "migrate unix:$D/$accel.sock" "info migrate"
        assert_line "Migration status: completed"
        wait_for "hop_mon dst 'info status' | grep -q 'VM status: running'" 20
        serial_grows dst
        # The source stays put.
        local a
        a=$(wc -c <"$D/src.serial")
        sleep 0.5
        [ "$(wc -c <"$D/src.serial")" -eq "$a" ]
    done
}

@test "a destination with a different -m fails, naming the RAM block" {
    hop_start src -m 32M
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate file:$D/m32.mig"
    run timeout 30 "$HOP" run -m 64M -monitor none -serial none \
        -incoming "file:$D/m32.mig"
    assert_failure 1
    assert_output --partial "RAM block 'pc.ram' is 33554432 bytes in the stream but 67108864 bytes here"
}
