#!/usr/bin/env bats
# background-snapshot: `migrate` saves the machine as it was when the save
# started while the guest runs on.  RAM is write-protected: under emu by
# its write guard (every guest store checks it), else with userfaultfd
# (HOP_WRITE_TRACKING=userfaultfd picks that under emu too); a page the
# guest writes is copied first.  The memtest guest rewrites every page on
# every pass, so a save that mixed pages of different moments fails its
# check.

load helper
load mig-helper

setup() {
    mig_setup
}

teardown() {
    hop_stop_all
}

# need_uffd NAME: skips, with the kernel's reason, where the capability
# cannot be had (no userfaultfd, or no write-protection).
need_uffd() {
    local out
    out=$(hop_mon "$1" "migrate_set_capability background-snapshot on")
    if [[ $out == *Error:* ]]; then
        skip "${out#*Error: }"
    fi
}

# loaded_ram NAME MEM FILE: a machine loaded from FILE (stays paused);
# its RAM goes to $D/NAME.ram.
loaded_ram() {
    hop_start "$1" -m "$2" -S -incoming "file:$3"
    wait_for "hop_mon $1 'info status' | grep -qx 'VM status: paused'" 60
    hop_mon "$1" "pmemsave 0 $(mem_bytes "$2") \"$D/$1.ram\"" "info registers" \
        >"$D/$1.regs"
    grep -q '^EAX=' "$D/$1.regs"
}

# start_state_saved: the save of the running guest src (64M) holds one
# moment, the start's, and the guest ran on.
start_state_saved() {
    wait_filled src
    need_uffd src
    run hop_mon src "migrate file:$D/snap" "info migrate" "info status"
    assert_success
    assert_line "Migration status: completed"
    # The guest was never stopped for RAM: it runs on, wrote pages during
    # the save (each copied before its write), and keeps printing.
    assert_line "VM status: running"
    local faults
    faults=$(output_field 'write faults')
    [ "${faults:-0}" -gt 0 ] || fail "no page was written during the save: $output"
    # The same figure for scripts, in query-migrate.
    run timeout 60 python3 "$HOP_SRC/tests/tools/qmp.py" "$D/src.qmp" query-migrate
    assert_success
    assert_output --partial "\"x-write-faults\": $faults"
    serial_grows src
    # Loaded: one moment (memtest's invariant), the one of the registers,
    # which were saved when the save began.
    loaded_ram dst 64M "$D/snap"
    ram_matches_registers dst
    # The loaded machine runs.
    hop_mon dst "cont" >/dev/null
    serial_grows dst
}

@test "background-snapshot: the file holds the machine as it was at the start while the guest ran on" {
    hop_start src -m 64M -qmp "unix:$D/src.qmp,server,nowait"
    start_state_saved
}

@test "background-snapshot with userfaultfd write-protection (as under kvm)" {
    HOP_WRITE_TRACKING=userfaultfd hop_start src -m 64M \
        -qmp "unix:$D/src.qmp,server,nowait"
    start_state_saved
}

@test "background-snapshot under emu of RAM on a plain file (no userfaultfd needed)" {
    hop_start src -m 32M \
        -object "memory-backend-file,id=mem,size=32M,mem-path=$D/ram.file,share=on" \
        -machine memory-backend=mem
    wait_filled src
    run hop_mon src "migrate_set_capability background-snapshot on" \
        "migrate file:$D/snap" "info migrate" "info status"
    assert_line "Migration status: completed"
    assert_line "VM status: running"
    serial_grows src
    loaded_ram dst 32M "$D/snap"
    run "$MEMTEST_CHECK" "$D/dst.ram"
    assert_success
}

@test "background-snapshot of a paused guest: RAM and registers load exactly; it stays paused" {
    hop_start src -m 32M
    wait_filled src
    need_uffd src
    hop_mon src "stop" "pmemsave 0 33554432 \"$D/src.ram\"" "info registers" \
        >"$D/src.regs"
    run hop_mon src "migrate \"exec:cat > $D/snap\"" "info migrate" "info status"
    assert_line "Migration status: completed"
    assert_line "VM status: paused"
    loaded_ram dst 32M "$D/snap"
    cmp "$D/src.ram" "$D/dst.ram"
    diff "$D/src.regs" "$D/dst.regs"
}

@test "background-snapshot: QEMU's analyze-migration.py reads the file and extracts the RAM hop loads" {
    local analyze=${HOP_QEMU_SCRIPTS:-}/analyze-migration.py
    [ -n "${HOP_QEMU_SCRIPTS:-}" ] && [ -f "$analyze" ] ||
        skip "QEMU's analyze-migration.py not found (HOP_QEMU_SCRIPTS; tests/tools/fetch-qemu-tools.sh fetches it)"
    hop_start src -m 16M
    wait_filled src
    need_uffd src
    run hop_mon src "migrate file:$D/snap" "info migrate"
    assert_line "Migration status: completed"
    loaded_ram dst 16M "$D/snap"
    mkdir "$D/x"
    (cd "$D/x" && timeout 120 python3 "$analyze" -x -f "$D/snap" >/dev/null)
    cmp "$D/x/pc.ram" "$D/dst.ram"
    [ "$(jq -r '."cpu (0)" | type' "$D/x/state.json")" = object ]
}

@test "background-snapshot with a memfd backend (shmem)" {
    hop_start src -m 32M -object memory-backend-memfd,id=mem,size=32M,share=on \
        -machine memory-backend=mem
    wait_filled src
    need_uffd src
    run hop_mon src "migrate file:$D/snap" "info migrate" "info status"
    assert_line "Migration status: completed"
    assert_line "VM status: running"
    loaded_ram dst 32M "$D/snap"
    run "$MEMTEST_CHECK" "$D/dst.ram"
    assert_success
}

@test "background-snapshot gives guest RAM back in the huge pages it had" {
    hop_start src -m 64M
    wait_filled src
    need_uffd src
    local before after
    before=$(huge_kb src)
    [ "${before:-0}" -ge 32768 ] ||
        skip "guest RAM is not in transparent huge pages here (AnonHugePages: ${before:-?} kB)"
    run hop_mon src "migrate file:$D/snap" "info migrate"
    assert_line "Migration status: completed"
    # Write tracking split them; left so, the guest crawls for minutes.
    after=$(huge_kb src)
    [ "$after" -ge $((before * 9 / 10)) ] ||
        fail "AnonHugePages ${before} kB before the save, ${after} kB after"
}

@test "background-snapshot cancelled: protection is lifted, the guest runs on, no file is left" {
    hop_start src -m 64M
    wait_filled src
    need_uffd src
    # The target takes nothing for a while: the save stalls, and the
    # guest with it once its copies fill the queue.
    run hop_mon src "migrate -d \"exec:sleep 60; cat > $D/snap\""
    assert_success
    wait_mig src active 30
    run hop_mon src "migrate_cancel"
    assert_success
    wait_mig src cancelled 30
    run hop_mon src "info status"
    assert_output "VM status: running"
    # Writes go through again: memtest keeps passing, again and again.
    serial_grows src
    serial_grows src
    memory_intact src 64M
    [ ! -e "$D/snap" ]
}

@test "background-snapshot to a target that fails: the guest runs on, the partial file does not load" {
    hop_start src -m 64M
    wait_filled src
    need_uffd src
    run hop_mon src "migrate \"exec:head -c 1000000 > $D/part\"" "info migrate"
    assert_line --partial "Migration status: failed"
    run hop_mon src "info status"
    assert_output "VM status: running"
    serial_grows src
    serial_grows src
    # The device state comes last: a cut file has none and is refused.
    run timeout 60 "$HOP" run -m 64M -monitor none -serial "file:$D/bad.serial" \
        -incoming "file:$D/part" </dev/null
    [ "$status" -eq 1 ]
    assert_output --partial "incoming migration failed"
    assert_output --partial "unexpected end of stream"
}

@test "background-snapshot is refused beside incompatible capabilities and modes, naming them" {
    hop_start src -m 16M
    need_uffd src
    local cap
    for cap in xbzrle auto-converge multifd validate-uuid \
        pause-before-switchover x-ignore-shared release-ram; do
        run hop_mon src "migrate_set_capability $cap on"
        assert_output "Error: capabilities background-snapshot and $cap cannot be used together"
    done
    run hop_mon src "migrate_set_parameter mode cpr-transfer" \
        "migrate unix:$D/x.sock" "info status"
    assert_line "Error: capability background-snapshot cannot be used with mode cpr-transfer (it needs mode normal)"
    assert_line "VM status: running"
    # And the other way round.
    hop_start two -m 16M
    run hop_mon two "migrate_set_capability xbzrle on" \
        "migrate_set_capability background-snapshot on"
    assert_output "Error: capabilities background-snapshot and xbzrle cannot be used together"
}

@test "background-snapshot is refused on memory the kernel cannot write-protect, naming the block" {
    hop_start probe -m 16M
    need_uffd probe
    [ "$(stat -f -c %T "$D")" != tmpfs ] ||
        skip "$D is on tmpfs, whose files can be write-protected"
    HOP_WRITE_TRACKING=userfaultfd hop_start src -m 32M \
        -object "memory-backend-file,id=mem,size=32M,mem-path=$D/ram.file,share=on" \
        -machine memory-backend=mem
    run hop_mon src "migrate_set_capability background-snapshot on" \
        "info migrate_capabilities"
    assert_line --partial "Error: background-snapshot: RAM block pc.ram: the kernel cannot write-protect this memory"
    assert_line "background-snapshot: off"
}
