#!/usr/bin/env bats
# hop run: options, built-in firmware under emu (and kvm where it works),
# the stdin command loop, and bad guests.

load helper

setup() {
    export HOME="$BATS_TEST_TMPDIR/home"
    export XDG_CONFIG_HOME="$HOME/.config" XDG_DATA_HOME="$HOME/.local/share"
    export XDG_CACHE_HOME="$HOME/.cache" XDG_STATE_HOME="$HOME/.local/state"
    mkdir -p "$HOME"
    FW="$HOP_BUILD_DIR/machine/firmware"
    TFW="$HOP_BUILD_DIR/tests/firmware"
    D="$BATS_TEST_TMPDIR"
}

# hop_session SECONDS COMMANDS HOP-ARGS...: run hop with COMMANDS (one
# per line, ';'-separated) fed on stdin after SECONDS, bounded by 60 s.
hop_session() {
    local wait=$1 cmds=$2
    shift 2
    { sleep "$wait"; tr ';' '\n' <<<"$cmds"; } |
        timeout 60 "$HOP" run "$@"
}

kvm_or_skip() {
    local out
    if ! out=$(echo quit | timeout 20 "$HOP" run -accel kvm -S -m 4M 2>&1); then
        skip "kvm unusable: $out"
    fi
}

@test "hop run --help lists the options" {
    run "$HOP" run --help
    assert_success
    assert_output --partial "-accel emu|kvm"
    assert_output --partial "-drive file=PATH"
    assert_output --partial "memtest"
}

@test "bad options exit 2 with a one-line reason" {
    local -a cases=(
        "-m 0" "-m lots" "-m 1M" "-smp 0" "-smp 9" "-accel tcg"
        "-guest nope" "-serial bogus" "-drive format=raw"
        "-drive file=x,cache=none" "-frobnicate" "-guest counter -kernel x"
        "-m" "stray"
    )
    for c in "${cases[@]}"; do
        # shellcheck disable=SC2086
        run timeout 10 "$HOP" run $c
        assert_equal "$status" 2
        [[ ${lines[0]} == "hop run: "* ]] || fail "no reason for '$c': $output"
    done
    run timeout 10 "$HOP" run -smp 9
    assert_output --partial "-smp: bad vCPU count '9'"
    run timeout 10 "$HOP" run -guest nope
    assert_output --partial "unknown guest 'nope'"
}

@test "a missing kernel or drive file fails with exit 1" {
    run timeout 10 "$HOP" run -kernel "$D/none.bin" </dev/null
    assert_equal "$status" 1
    assert_output --partial "none.bin"
    run timeout 10 "$HOP" run -drive file="$D/none.img" </dev/null
    assert_equal "$status" 1
    assert_output --partial "none.img"
}

@test "counter under emu prints 1, 2, 3, ... and info accel shows emu" {
    run hop_session 1 "info status;info accel;quit" -guest counter -m 4M \
        -serial "file:$D/serial.txt"
    assert_success
    assert_line "VM status: running"
    assert_line "accelerator: emu"
    run head -50 "$D/serial.txt"
    assert_output "$(seq -f 'counter: %g' 1 50)"
}

@test "memtest under emu fills RAM above 1 MiB and marks its passes" {
    run hop_session 2 "quit" -m 4M -serial "file:$D/serial.txt"
    assert_success
    run cat "$D/serial.txt"
    assert_line --index 0 "memtest: 768 pages from 1 MiB, 1 vCPUs"
    assert_line --index 1 "memtest: filled"
    [[ ${lines[2]} =~ ^\.{10,} ]] || fail "no pass marks: ${lines[2]:0:40}"
}

@test "memtest with 4 vCPUs under emu" {
    run hop_session 2 "stop;info status;cont;info status;quit" -m 64M -smp 4
    assert_success
    assert_line "memtest: 16128 pages from 1 MiB, 4 vCPUs"
    assert_output --partial "VM status: paused"
    assert_output --partial "VM status: running"
}

# The pattern the disk firmware writes, computed independently.
check_disk_pattern() {
    python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
for lba in range(len(data) // 512):
    want = b"".join(struct.pack("<I", ((lba * 0x01000193) ^ i ^ 0x5a5a0000)
                                & 0xffffffff) for i in range(128))
    if data[lba * 512:(lba + 1) * 512] != want:
        sys.exit("sector %d differs" % lba)
PY
}

@test "disk under emu writes and verifies the whole drive" {
    qemu-img create -f raw "$D/disk.img" 256K >/dev/null
    run hop_session 2 "quit" -guest disk -drive "file=$D/disk.img,format=raw"
    assert_success
    assert_line "disk: 512 sectors"
    assert_line "disk: OK"
    check_disk_pattern "$D/disk.img"
}

@test "disk without a drive says so; if=none does not attach it" {
    run hop_session 1 "quit" -guest disk
    assert_line "disk: no drive"
    qemu-img create -f raw "$D/disk.img" 64K >/dev/null
    run hop_session 1 "quit" -guest disk -drive "file=$D/disk.img,if=none"
    assert_line "disk: no drive"
}

@test "echo under emu starts and waits for keys" {
    run hop_session 1 "quit" -guest echo
    assert_success
    assert_line "echo: ready"
}

@test "-S starts paused; cont runs the guest" {
    { sleep 1; echo "info status"; sleep 0.5; echo cont; sleep 1
      echo "info status"; echo quit; } |
        timeout 60 "$HOP" run -S -guest counter -m 4M \
        -serial "file:$D/serial.txt" >"$D/out.txt" &
    local pid=$!
    sleep 1
    [ ! -s "$D/serial.txt" ] || fail "guest ran before cont"
    wait "$pid"
    run cat "$D/out.txt"
    assert_line --index 0 "VM status: paused (prelaunch)"
    assert_line "VM status: running"
    run grep -c "^counter: " "$D/serial.txt"
    [ "$output" -gt 10 ] || fail "only $output lines after cont"
}

@test "stop freezes the guest, cont resumes it" {
    hop_session 1 "stop" -guest counter -m 4M \
        -serial "file:$D/serial.txt" >/dev/null &
    local pid=$!
    # Bounded: the counter has printed and the stop (sent after 1 s) has
    # had time to land even on a loaded machine.
    sleep 4
    local a b
    a=$(wc -l <"$D/serial.txt")
    sleep 0.5
    b=$(wc -l <"$D/serial.txt")
    kill "$pid" 2>/dev/null || true
    wait "$pid" || true
    [ "$a" -gt 0 ] && [ "$a" -eq "$b" ] || fail "lines moved while stopped: $a -> $b"
}

@test "an unknown opcode stops the machine with a message; hop survives" {
    printf '\x90\x0f\x0b' >"$D/bad.bin"
    run hop_session 1 "info status;quit" -kernel "$D/bad.bin"
    assert_success
    assert_output --partial "hop: vCPU 0: unknown opcode 0f 0b at eip 0x00100001"
    assert_line "VM status: paused (internal-error)"
}

@test "port access to nothing is reported once" {
    # in al,0x99 ; in al,0x99 ; out 0x98,al ; hlt
    printf '\xe4\x99\xe4\x99\xe6\x98\xf4' >"$D/port.bin"
    run hop_session 1 "quit" -kernel "$D/port.bin"
    assert_success
    assert_line "hop: guest read unassigned I/O port 0x0099 (1 byte); returned all ones"
    assert_line "hop: guest wrote 0xff to unassigned I/O port 0x0098 (1 byte); ignored"
    run grep -c "0x0099" <<<"$output"
    assert_output 1
}

@test "a disk write past the end of the drive is reported and refused" {
    qemu-img create -f raw "$D/disk.img" 64K >/dev/null
    run hop_session 1 "info status;quit" -kernel "$TFW/diskpast.bin" \
        -drive "file=$D/disk.img,format=raw"
    assert_success
    assert_output --partial "past the end of drive"
    assert_output --partial "sectors 128-128"
    assert_line "diskpast: status 41"
    assert_line "VM status: running"
    run stat -c %s "$D/disk.img"
    assert_output 65536
}

@test "QEMU runs the very same memtest and counter images" {
    need_qemu_system
    timeout 5 qemu-system-x86_64 -kernel "$FW/memtest.bin" -m 32 \
        -display none -serial "file:$D/q.txt" -no-reboot || true
    run cat "$D/q.txt"
    assert_line --partial --index 0 "memtest: "
    assert_line --index 1 "memtest: filled"
    timeout 3 qemu-system-x86_64 -kernel "$FW/counter.bin" -m 32 \
        -display none -serial "file:$D/c.txt" -no-reboot || true
    run head -3 "$D/c.txt"
    assert_output "counter: 1
counter: 2
counter: 3"
}

@test "memtest-check accepts QEMU's memory after memtest, rejects a broken page" {
    need_qemu_system
    local tool="$HOP_BUILD_DIR/tests/tools/memtest-check"
    { sleep 3; echo stop; echo "pmemsave 0 33554432 \"$D/ram.bin\""; sleep 1
      echo quit; } | timeout 20 qemu-system-x86_64 -kernel "$FW/memtest.bin" \
        -m 32 -display none -serial "file:$D/q.txt" -monitor stdio >/dev/null
    local pages
    pages=$(sed -n 's/^memtest: \([0-9]*\) pages.*/\1/p' "$D/q.txt")
    [ -n "$pages" ] || fail "no memtest banner from QEMU"
    local end=$((0x100000 + pages * 4096))
    run "$tool" --end "$end" "$D/ram.bin"
    assert_success
    assert_output --partial "memtest-check: ok"
    # One page set two ahead of its neighbours breaks the invariant.
    python3 - "$D/ram.bin" <<'PY'
import sys
f = open(sys.argv[1], "r+b")
f.seek(0x100000 + 100 * 4096)
v = f.read(1)[0]
f.seek(0x100000 + 100 * 4096)
f.write(bytes([(v + 2) & 0xff]))
PY
    run "$tool" --end "$end" "$D/ram.bin"
    assert_failure 1
    run "$tool" --smp 0 "$D/ram.bin"
    assert_failure 2
}

@test "counter, memtest, disk and echo under kvm" {
    kvm_or_skip
    run hop_session 2 "info status;info accel;quit" -accel kvm -guest counter -m 4M \
        -serial "file:$D/serial.txt"
    assert_success
    assert_line "accelerator: kvm"
    run head -3 "$D/serial.txt"
    assert_output "$(seq -f 'counter: %g' 1 3)"
    run hop_session 3 "quit" -accel kvm -m 3M -smp 2
    assert_line "memtest: 512 pages from 1 MiB, 2 vCPUs"
    assert_line --partial "memtest: filled"
    qemu-img create -f raw "$D/disk.img" 32K >/dev/null
    run hop_session 3 "quit" -accel kvm -guest disk \
        -drive "file=$D/disk.img,format=raw"
    assert_line "disk: OK"
    check_disk_pattern "$D/disk.img"
    run hop_session 1 "quit" -accel kvm -guest echo -m 4M
    assert_line "echo: ready"
}
