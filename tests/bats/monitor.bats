#!/usr/bin/env bats
# The monitor over its unix socket and as a script on standard input:
# how it is reached, how it reads arguments, and each of its commands.

load helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    FW=${HOP_BUILD_DIR:-$(dirname "$HOP")}/machine/firmware
}

teardown() {
    hop_stop_all
}

# The machine's process is gone (bounded wait); fails if it is not.
gone() {
    timeout 20 tail -s 0.05 --pid="$1" -f /dev/null
}

# ---- how the monitor is reached ----

@test "-monitor unix: socket mode 0600, two clients one after another" {
    hop_start vm -m 32M -guest echo
    run stat -c '%a %F' "$D/vm.mon"
    assert_output "600 socket"
    for i in 1 2; do
        run socat -t 10 - "UNIX-CONNECT:$D/vm.mon" <<<'info status'
        assert_success
        assert_line --index 0 --regexp "^hop [0-9.]+ monitor - type 'help' for more information$"
        assert_line --index 1 "(hop) VM status: running"
    done
    run hop_mon vm 'stop' 'info status'
    assert_output "VM status: paused"
    # The next client sees what the previous one did.
    run hop_mon vm 'cont' 'info status'
    assert_output "VM status: running"
}

@test "-monitor unix:PATH,server (no nowait) waits for a client before starting" {
    "$HOP" run -m 32M -guest echo -monitor "unix:$D/vm.mon,server" \
        -serial "file:$D/vm.serial" >"$D/vm.out" 2>"$D/vm.err" &
    HOP_PIDS=$!
    echo $! >"$D/vm.pid"
    wait_for "[ -S '$D/vm.mon' ]" 20
    wait_for "grep -q 'waiting for a monitor client' '$D/vm.err'" 10
    sleep 0.5
    # Not started: the guest has printed nothing.
    [ ! -s "$D/vm.serial" ]
    run hop_mon vm 'info status'
    assert_output "VM status: running"
    wait_for "grep -q 'echo: ready' '$D/vm.serial'" 90
}

@test "-monitor none: no monitor, standard input ignored, QMP still works" {
    printf 'quit\n' | "$HOP" run -m 32M -monitor none -serial none \
        -qmp "unix:$D/qmp.sock,server,nowait" >"$D/out" 2>&1 &
    local pid=$!
    HOP_PIDS=$pid
    wait_for "[ -S '$D/qmp.sock' ]" 20
    sleep 0.3
    kill -0 "$pid"          # 'quit' on stdin was not a command
    [ -z "$(ls "$D"/*.mon 2>/dev/null)" ]
    python3 "$HOP_SRC/tests/tools/qmp.py" "$D/qmp.sock" quit >/dev/null
    gone "$pid"
    wait "$pid"
    [ ! -e "$D/qmp.sock" ]
    assert_equal "$(cat "$D/out")" ""
}

@test "scripted standard input: output only, no prompt or banner" {
    run --separate-stderr "$HOP" run -m 32M -serial none <<<$'info status\nstop\ninfo status\nquit'
    assert_success
    assert_output "$(printf 'VM status: running\nVM status: paused')"
    assert_equal "$stderr" ""
    # The end of the input quits too, and a last line without a newline
    # still runs.
    run "$HOP" run -m 32M -serial none < <(printf 'info name\ninfo status')
    assert_success
    assert_output "VM status: running"
}

# ---- arguments ----

@test "argument errors name the argument; quotes, sizes, 0x and on/off read as QEMU reads them" {
    mkdir -p "$D/with space"
    hop_start vm -m 32M -guest echo -S
    run hop_mon vm 'info migrate extra' 'x /2xw nothex' 'pmemsave 0 4096' \
        'migrate_set_capability xbzrle maybe' 'info nosuch' 'frobnicate' \
        'pmemsave 0 1 "unterminated'
    assert_line "Error: info migrate: unexpected argument 'extra'"
    assert_line "Error: x: 'nothex' is not a number (argument 'addr')"
    assert_line "Error: pmemsave: missing argument 'filename'"
    assert_line "Error: migrate_set_capability: 'maybe' is not on or off (argument 'state')"
    assert_line --partial "Error: info: unknown subcommand 'nosuch'"
    assert_line --partial "Error: unknown command: 'frobnicate'"
    assert_line --partial "unterminated string"
    # A quoted path with a space, a size with a suffix, a 0x address: the
    # firmware is loaded at 1 MiB, so the dump is the image's first KiB.
    run hop_mon vm "pmemsave 0x100000 1K \"$D/with space/dump.bin\"" \
        'migrate_set_capability xbzrle on' 'info migrate_capabilities' \
        'migrate_set_parameter xbzrle-cache-size 2M' 'info migrate_parameters'
    assert_line "xbzrle: on"
    assert_line "xbzrle-cache-size: 2097152 bytes"
    assert_equal "$(stat -c %s "$D/with space/dump.bin")" 1024
    local n
    n=$(stat -c %s "$FW/echo.bin")
    cmp -n "$n" "$D/with space/dump.bin" "$FW/echo.bin"
}

# ---- commands ----

@test "help, help CMD, ? and help info" {
    hop_start vm -m 32M -S
    run hop_mon vm 'help'
    assert_line "stop -- stop emulation"
    assert_line "cont|c -- resume emulation"
    assert_line --regexp '^x /fmt addr -- '
    local all=$output
    run hop_mon vm '?'
    assert_equal "$output" "$all"
    run hop_mon vm 'help quit'
    assert_line --index 0 "quit|q -- quit the emulator"
    assert_line --partial "removes the monitor sockets"
    run hop_mon vm 'help info'
    assert_line "info status -- show the current VM status (running|paused)"
    assert_line --regexp '^info registers \[cpu\] -- '
    run hop_mon vm 'help nosuch'
    assert_output "Error: help: unknown command 'nosuch'"
}

@test "stop, cont, c and info status; -S starts paused" {
    hop_start vm -m 32M -S
    run hop_mon vm 'info status' 'c' 'info status' 'stop' 'info status' \
        'cont' 'info status'
    assert_output "$(printf 'VM status: paused (prelaunch)\nVM status: running\nVM status: paused\nVM status: running')"
}

@test "quit and q end hop: exit 0, the socket removed" {
    for cmd in quit q; do
        hop_start vm -m 32M
        local pid
        pid=$(hop_pid vm)
        run hop_mon vm "$cmd"
        assert_output ""
        gone "$pid"
        run wait "$pid"
        assert_success
        [ ! -e "$D/vm.mon" ]
    done
}

@test "system_reset restarts the guest" {
    hop_start vm -m 32M -guest echo
    wait_for "grep -q 'echo: ready' '$D/vm.serial'" 90
    run hop_mon vm 'system_reset' 'info status'
    assert_output "VM status: running"
    wait_for "[ \$(grep -c 'echo: ready' '$D/vm.serial') = 2 ]" 10
}

@test "info version, name, accel, mice" {
    hop_start vm -m 32M -name test-machine -S
    run hop_mon vm 'info version' 'info name' 'info accel' 'info mice'
    local v
    v=$("$HOP" --version | sed 's/^hop \([0-9.]*\) .*/\1/')
    assert_line --index 0 "$v (hop $v)"
    assert_line --index 1 "test-machine"
    assert_line --index 2 "accelerator: emu"
    assert_line --index 3 "* Mouse #0: hop PS/2 Mouse"
}

@test "info cpus: one line per vCPU with its thread id" {
    hop_start vm -m 32M -smp 3
    run hop_mon vm 'info cpus'
    assert_equal "${#lines[@]}" 3
    local i tid
    for i in 0 1 2; do
        assert_line --index "$i" --regexp "^[* ] CPU #$i: thread_id=[0-9]+$"
        tid=${lines[$i]##*=}
        # The thread belongs to hop.
        [ -d "/proc/$(hop_pid vm)/task/$tid" ]
    done
    assert_line --index 0 --regexp '^\* '
}

@test "info registers, one CPU or all" {
    hop_start vm -m 32M -smp 2 -guest echo
    wait_for "grep -q 'echo: ready' '$D/vm.serial'" 90
    run hop_mon vm 'stop' 'info registers'
    assert_line "CPU#0"
    assert_line "CPU#1"
    assert_line --regexp '^EIP=00100[0-9a-f]{3} EFL=[0-9a-f]{8} \[[-DOSZAPC]{7}\] CPL=0 HLT=[01]$'
    assert_line --regexp '^CS =0008 00000000 ffffffff 00c09b00$'
    run hop_mon vm 'info registers 1'
    assert_line --index 0 "CPU#1"
    refute_line "CPU#0"
    run hop_mon vm 'info registers 5'
    assert_output --partial "Error: info registers: no CPU 5"
}

@test "info ramblock, info block, info qtree" {
    qemu-img create -f qcow2 "$D/disk.qcow2" 1M >/dev/null
    hop_start vm -m 48M -S -drive "file=$D/disk.qcow2,format=qcow2"
    run hop_mon vm 'info ramblock'
    assert_line --index 0 --regexp '^ +Block Name +PSize +Offset +Used +Total +HVA +RO$'
    assert_line --index 1 --regexp '^ +pc.ram +4 KiB +0x0{16} 0x0000000003000000 0x0000000003000000 0x[0-9a-f]{16} +rw$'
    run hop_mon vm 'info block'
    assert_line --index 0 "ide0-hd0: $D/disk.qcow2 (qcow2)"
    run hop_mon vm 'info qtree'
    assert_line --index 0 --regexp '^bus: main-system-bus'
    assert_line --regexp '^  dev: serial, instance 0$'
    assert_line --regexp '^    vmstate "ata" version [0-9]+ \(loads [0-9]+\.\.[0-9]+\)$'
}

@test "info history lists the commands sent" {
    hop_start vm -m 32M -S
    hop_mon vm 'info status' 'info name' >/dev/null
    run hop_mon vm 'info history'
    assert_output "$(printf "0: 'info status'\n1: 'info name'\n2: 'info history'")"
}

# QEMU is the oracle for the layout: the same firmware image runs in both
# and both show its first bytes.
@test "x and xp print what QEMU's x and xp print" {
    need_qemu_system
    local cmds=('xp /4xw 0x100000' 'xp /3xg 0x100000' 'xp /20xb 0x100000'
                'xp /5xh 0x100000' 'xp /4dh 0x100000' 'xp /3dg 0x100000'
                'xp /3ow 0x100000' 'xp /2ug 0x100000' 'xp /20cb 0x100000'
                'xp /3cw 0x100000' 'x /2xw 0x100004' 'xp /1xw 0x100000')
    timeout 30 qemu-system-x86_64 -M pc -m 16M -display none -nodefaults \
        -kernel "$FW/echo.bin" -monitor "unix:$D/qemu.mon,server,nowait" &
    local qpid=$!
    HOP_PIDS=$qpid
    wait_for "[ -S '$D/qemu.mon' ]" 20
    sleep 1    # the multiboot loader has copied the image
    printf '%s\n' stop "${cmds[@]}" quit |
        timeout 20 socat -t 10 - "UNIX-CONNECT:$D/qemu.mon" | tr -d '\r' |
        grep -a '^[0-9a-f]\{16\}:' >"$D/qemu.txt"
    gone "$qpid"
    hop_start vm -m 32M -guest echo -S
    hop_mon vm "${cmds[@]}" | grep '^[0-9a-f]\{16\}:' >"$D/hop.txt"
    [ -s "$D/qemu.txt" ]
    diff "$D/qemu.txt" "$D/hop.txt"
}

@test "memsave and pmemsave write the same bytes as the image" {
    hop_start vm -m 32M -guest echo -S
    run hop_mon vm "memsave 0x100000 512 $D/v.bin" \
        "pmemsave 1048576 0x200 $D/p.bin" "pmemsave 0x100000 64 /nonexistent/dir/f"
    assert_output --partial "Error: could not open '/nonexistent/dir/f'"
    cmp "$D/v.bin" "$D/p.bin"
    cmp "$D/p.bin" <(head -c 512 "$FW/echo.bin")
}

@test "sendkey, mouse_move and mouse_button reach the guest (echo firmware)" {
    hop_start vm -m 32M -guest echo
    wait_for "grep -q 'echo: ready' '$D/vm.serial'" 90
    run hop_mon vm 'sendkey shift-h' 'sendkey i' 'sendkey f1' 'sendkey ret 50'
    assert_output ""
    wait_for "grep -q 'Hi<3b>' '$D/vm.serial'" 10
    run hop_mon vm 'mouse_move 10 -3' 'mouse_button 1'
    assert_output ""
    wait_for "grep -qF '[mouse 08 0a 03]' '$D/vm.serial'" 10
    wait_for "grep -qF '[mouse 09 00 00]' '$D/vm.serial'" 10
    run hop_mon vm 'sendkey nokey'
    assert_output --partial "Error:"
    assert_output --partial "nokey"
}
