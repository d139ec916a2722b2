#!/usr/bin/env bats
# cpr-transfer (migrate_set_parameter mode cpr-transfer): the source hands
# its shared guest RAM to the destination as memfd descriptors over a
# unix socket and sends only the device state.  The guest moves whole
# (RAM and registers byte for byte, devices working), refusals come
# before the source stops and leave it running, and once the RAM is
# handed over the source never runs, resets or loads the guest again.

load helper
load mig-helper

MEMFD=(-object memory-backend-memfd,id=mem,size=64M,share=on
    -machine memory-backend=mem)

setup() {
    mig_setup
}

teardown() {
    hop_stop_all
}

# cpr_dst NAME [hop run options...]: a destination on the shared memfd,
# stopped (-S), waiting on unix:$D/NAME.sock.
cpr_dst() {
    local name=$1
    shift
    hop_start "$name" -m 64M "${MEMFD[@]}" -S -incoming "unix:$D/$name.sock" "$@"
}

# cpr_src [hop run options...]: a memtest source on the shared memfd that
# has filled its RAM.
cpr_src() {
    hop_start src -m 64M "${MEMFD[@]}" "$@"
    wait_filled src
}

# cpr_migrate SRC DST [monitor commands...]: cpr-transfer from SRC to
# unix:$D/DST.sock; $output holds `info migrate` and `info status`.
cpr_migrate() {
    local src=$1 dst=$2
    shift 2
    run hop_mon "$src" "migrate_set_parameter mode cpr-transfer" "$@" \
        "migrate unix:$D/$dst.sock" "info migrate" "info status"
}

# gone NAME: the machine has exited.
gone() {
    wait_for "! kill -0 $(hop_pid "$1") 2>/dev/null" 30
}

# ram_kib_sent: "transferred ram" of the `info migrate` in $output, KiB.
ram_kib_sent() {
    sed -n 's/^transferred ram: \([0-9]*\) kbytes$/\1/p' <<<"$output"
}

# ram_inode NAME: the inode of the memory behind the machine's pc.ram (a
# memfd is one inode, whichever process maps it).
ram_inode() {
    local hva
    hva=$(ram_hva "$1")
    awk -v a="$hva" 'index($1, a "-") == 1 { print $5 }' \
        "/proc/$(hop_pid "$1")/maps"
}

# still_running NAME: the machine runs its memtest guest, RAM intact.
still_running() {
    run hop_mon "$1" "info status"
    assert_output "VM status: running"
    serial_grows "$1"
    memory_intact "$1" 64M
    hop_mon "$1" cont
}

@test "cpr-transfer: a memtest guest on a shared memfd moves without its RAM being sent, equal, and runs on" {
    cpr_dst dst
    cpr_src
    cpr_migrate src dst
    assert_success
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
    # 64 MiB of RAM, and under 1 MiB of it on the wire.
    local kb
    kb=$(ram_kib_sent)
    [ -n "$kb" ] && [ "$kb" -lt 1024 ] || fail "sent $kb KiB of RAM"
    compare_machines src dst 64M
    # Both map the very same pages.
    local inode
    inode=$(ram_inode src)
    [ -n "$inode" ] && [ "$inode" != 0 ]
    assert_equal "$(ram_inode dst)" "$inode"
    run hop_mon dst "cont" "info status"
    assert_line "VM status: running"
    serial_grows dst
    # The source can go: the guest keeps its memory.
    hop_mon src quit >/dev/null
    gone src
    serial_grows dst
    memory_intact dst 64M
}

@test "cpr-transfer into -incoming defer: the disk guest finishes its writes in the destination, the image checks clean" {
    # Big enough that the guest is still writing when it moves.
    "$HOP" img create -f qcow2 "$D/d.qcow2" 32M >/dev/null
    hop_start dst -guest disk -m 64M "${MEMFD[@]}" -drive "file=$D/d.qcow2" \
        -incoming defer
    hop_mon dst "migrate_incoming unix:$D/dst.sock" >/dev/null
    hop_start src -guest disk -m 64M "${MEMFD[@]}" -drive "file=$D/d.qcow2"
    # Mid-way through writing its pattern.
    wait_serial src "sectors" 30
    cpr_migrate src dst
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
    run grep -c 'disk: written' "$D/src.serial"
    assert_output 0
    # The destination (not started with -S) runs on: its serial port
    # prints the rest, and the guest reads back all it wrote.
    wait_for "grep -q 'disk: OK' '$D/dst.serial'" 120
    run grep -c 'disk: bad\|disk: I/O' "$D/dst.serial"
    assert_output 0
    hop_mon dst quit >/dev/null
    gone dst
    run qemu-img check "$D/d.qcow2"
    assert_success
    assert_output --partial "No errors were found"
}

@test "cpr-transfer: keys sent to the destination reach the guest" {
    hop_start src -guest echo -m 64M "${MEMFD[@]}"
    hop_start dst -guest echo -m 64M "${MEMFD[@]}" -S \
        -incoming "unix:$D/dst.sock"
    wait_serial src "echo: ready" 90
    run hop_mon src 'sendkey shift-s' 'sendkey r' 'sendkey c'
    assert_output ""
    wait_serial src "Src" 10
    cpr_migrate src dst
    assert_line "Migration status: completed"
    run hop_mon dst 'cont' 'sendkey shift-d' 'sendkey s' 'sendkey t'
    assert_output ""
    wait_serial dst "Dst" 10
    # The source, stopped, saw none of them.
    run cat "$D/src.serial"
    refute_output --partial "D"
}

@test "cpr-transfer refused before the source stops: URI, source RAM, destination RAM; the source runs on" {
    cpr_src
    # Checked when migrate is typed.
    run hop_mon src "migrate_set_parameter mode cpr-transfer" \
        "migrate tcp:127.0.0.1:1" "info status"
    assert_line --index 0 "Error: mode cpr-transfer needs a unix: URI: descriptors pass only over a unix socket (got 'tcp:127.0.0.1:1')"
    assert_line --index 1 "VM status: running"
    # Each destination that cannot map the source's RAM says why, on one
    # line, and exits 1; the source's migration fails with that reason.
    local name want
    hop_start size -m 128M -object memory-backend-memfd,id=mem,size=128M,share=on \
        -machine memory-backend=mem -S -incoming "unix:$D/size.sock"
    hop_start default -m 64M -S -incoming "unix:$D/default.sock"
    hop_start ram -m 64M -object memory-backend-ram,id=mem,size=64M \
        -machine memory-backend=mem -S -incoming "unix:$D/ram.sock"
    for name in size default ram; do
        case $name in
        size) want="RAM block 'pc.ram' is 67108864 bytes in the source, 134217728 here (-m and the backend's size must match)" ;;
        *) want="RAM block 'pc.ram' is on memory-backend-ram here; start the destination with the source's shared memory backend (memory-backend-memfd,share=on)" ;;
        esac
        cpr_migrate src "$name"
        assert_line "Migration status: failed (the destination refused the guest's memory: $want)"
        assert_line "VM status: running"
        gone "$name"
        run wait "$(hop_pid "$name")"
        assert_failure 1
        run cat "$D/$name.err"
        assert_output --regexp "^hop: incoming migration failed: cpr-transfer from [^:]+: $(sed 's/[][().*+?^$|\\]/\\&/g' <<<"$want")\$"
        [ "${#lines[@]}" -eq 1 ]
        still_running src
    done
    # After all that, the guest still moves.
    cpr_dst dst
    cpr_migrate src dst
    assert_line "Migration status: completed"
    compare_machines src dst 64M
}

@test "cpr-transfer refused for a source whose RAM is not shared: default backend, memfd share=off" {
    local kind
    for kind in default private; do
        case $kind in
        default) hop_start "$kind" -m 64M ;;
        private) hop_start "$kind" -m 64M -object memory-backend-memfd,id=mem,size=64M,share=off \
            -machine memory-backend=mem ;;
        esac
        wait_filled "$kind"
        run hop_mon "$kind" "migrate_set_parameter mode cpr-transfer" \
            "migrate unix:$D/none.sock" "info status"
        case $kind in
        default) assert_line --index 0 "Error: mode cpr-transfer needs guest RAM on shared memory: RAM block 'pc.ram' is on memory-backend-ram; use -object memory-backend-memfd,id=ID,size=SIZE,share=on -machine memory-backend=ID" ;;
        private) assert_line --index 0 "Error: mode cpr-transfer needs guest RAM on shared memory: RAM block 'pc.ram' is on memory-backend-memfd without share=on; use -object memory-backend-memfd,id=ID,size=SIZE,share=on -machine memory-backend=ID" ;;
        esac
        assert_line --index 1 "VM status: running"
        [ "${#lines[@]}" -eq 2 ]
        still_running "$kind"
    done
}

@test "after cpr-transfer the source refuses cont, system_reset, loadvm and migrate; the destination keeps the image" {
    "$HOP" img create -f qcow2 "$D/d.qcow2" 16M >/dev/null
    cpr_src -drive "file=$D/d.qcow2" -qmp "unix:$D/src.qmp,server,nowait"
    run hop_mon src "savevm s1"
    assert_output ""
    cpr_dst dst -drive "file=$D/d.qcow2"
    cpr_migrate src dst
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
    # The destination has loaded and taken the image.
    wait_for "hop_mon dst 'info status' | grep -qx 'VM status: paused'" 60
    local why="the guest's RAM was handed to another process (cpr-transfer), which runs the guest now"
    run hop_mon src "cont" "system_reset" "loadvm s1" "migrate unix:$D/again.sock" \
        "info status"
    assert_line --index 0 "Error: cannot run the machine: $why"
    assert_line --index 1 "Error: cannot reset the machine: $why"
    assert_line --index 2 "Error: cannot load a machine state: $why"
    assert_line --index 3 "Error: cannot migrate: $why"
    assert_line --index 4 "VM status: paused (postmigrate)"
    [ "${#lines[@]}" -eq 5 ]
    run timeout 60 "$PY" "$QMP_PY" "$D/src.qmp" cont query-status
    assert_line --index 2 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"cannot run the machine: $why\"}}"
    assert_line --index 3 --partial '"status": "postmigrate"'
    # The destination writes the image and runs the guest.
    run hop_mon dst "savevm d1" "cont" "info status"
    assert_output "VM status: running"
    serial_grows dst
    memory_intact dst 64M
    hop_mon dst quit >/dev/null
    gone dst
    # With the destination gone, still no: and the source did not take
    # the image back (qemu-img sees no lock).
    run hop_mon src "cont" "info status"
    assert_line --index 0 "Error: cannot run the machine: $why"
    assert_line --index 1 "VM status: paused (postmigrate)"
    run qemu-img check "$D/d.qcow2"
    assert_success
    assert_output --partial "No errors were found"
    run qemu-img snapshot -l "$D/d.qcow2"
    assert_output --regexp $'\n1 +s1 +'
    assert_output --regexp $'\n2 +d1 +'
}

@test "cpr-transfer cancelled after the hand-over, in pre-switchover: the source resumes intact, and the next cpr-transfer moves it" {
    cpr_dst dst
    cpr_src
    run hop_mon src "migrate_set_parameter mode cpr-transfer" \
        "migrate_set_capability pause-before-switchover on" \
        "migrate -d unix:$D/dst.sock"
    refute_output --partial "Error"
    wait_mig src pre-switchover 20
    hop_mon src "migrate_cancel"
    wait_mig src cancelled 20
    # The destination, which maps the same pages, never ran the guest:
    # its load was cut and it exits.
    gone dst
    run wait "$(hop_pid dst)"
    assert_failure 1
    run cat "$D/dst.err"
    assert_output --regexp "^hop: incoming migration failed: "
    still_running src
    # A fresh destination takes it over.
    cpr_dst dst2
    run hop_mon src "migrate_set_capability pause-before-switchover off" \
        "migrate unix:$D/dst2.sock" "info migrate" "info status"
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
    compare_machines src dst2 64M
    run hop_mon dst2 "cont" "info status"
    assert_line "VM status: running"
    serial_grows dst2
}

@test "QMP: migrate-set-parameters mode cpr-transfer, query-migrate-parameters shows it; a bad mode is named; HMP lists the modes" {
    hop_start vm -m 16M -S -qmp "unix:$D/vm.qmp,server,nowait"
    wait_for "[ -S '$D/vm.qmp' ]" 10
    run timeout 60 "$PY" "$QMP_PY" "$D/vm.qmp" query-migrate-parameters \
        '{"execute": "migrate-set-parameters", "arguments": {"mode": "cpr-transfer"}}' \
        query-migrate-parameters \
        '{"execute": "migrate-set-parameters", "arguments": {"mode": "bogus"}}' \
        '{"execute": "migrate-set-parameters", "arguments": {"mode": 1}}' \
        query-migrate-parameters
    assert_success
    assert_line --index 2 --partial '"mode": "normal"'
    assert_line --index 3 '{"return": {}}'
    assert_line --index 4 --partial '"mode": "cpr-transfer"'
    assert_line --index 5 --partial "\"desc\": \"Parameter 'mode' does not accept value 'bogus'\""
    assert_line --index 6 --partial "\"desc\": \"Parameter 'mode' does not accept value '(not a string)'\""
    assert_line --index 7 --partial '"mode": "cpr-transfer"'
    run hop_mon vm "info migrate_parameters"
    assert_line "mode: cpr-transfer"
    run hop_mon vm "migrate_set_parameter mode bogus"
    assert_output "Error: parameter 'mode': 'bogus' is not one of normal, cpr-transfer, cpr-exec"
    run hop_mon vm "migrate_set_parameter mode normal" "info migrate_parameters"
    assert_line "mode: normal"
}
