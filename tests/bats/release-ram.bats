#!/usr/bin/env bats
# release-ram: a migration on one host with private guest RAM stops the
# guest first and frees each page on the source once it went, so the two
# processes together hold about one copy of RAM.  The destination gets
# the memory exactly; a source that freed pages never runs again.

load helper
load mig-helper

setup() {
    mig_setup
}

teardown() {
    hop_stop_all
}

# rss_kib NAME: resident memory of a machine's process.
rss_kib() {
    local r
    read -r _ r _ <"/proc/$(hop_pid "$1")/statm"
    echo $((r * 4))
}

# saved_state NAME MEM: RAM and registers of the stopped machine.
saved_state() {
    hop_mon "$1" "pmemsave 0 $(mem_bytes "$2") \"$D/$1.ram\"" \
        "info registers" >"$D/$1.regs"
}

@test "release-ram: the destination gets RAM and registers exactly, the source frees what it sent" {
    hop_start dst -m 128M -S -incoming "unix:$D/mig.sock"
    hop_start src -m 128M
    wait_filled src
    hop_mon src "stop" >/dev/null
    saved_state src 128M
    local before
    before=$(rss_kib src)
    [ "$before" -gt $((120 * 1024)) ] || fail "source holds only $before KiB"
    run hop_mon src "migrate_set_capability release-ram on" \
        "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/mig.sock" "info migrate" "info status"
    assert_success
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
    # The source let its copy go: its resident memory fell by at least
    # nine tenths of guest RAM (what the process holds besides, a
    # sanitizer's shadow memory say, stays).
    local after
    after=$(rss_kib src)
    [ $((before - after)) -ge $((128 * 1024 * 9 / 10)) ] ||
        fail "source still holds $after KiB of $before KiB"
    wait_for "hop_mon dst 'info status' | grep -qx 'VM status: paused'" 30
    saved_state dst 128M
    cmp "$D/src.ram" "$D/dst.ram"
    diff "$D/src.regs" "$D/dst.regs"
    run "$MEMTEST_CHECK" "$D/dst.ram"
    assert_success
    # The guest goes on at the destination.
    hop_mon dst "cont" >/dev/null
    serial_grows dst
}

@test "release-ram: a running guest stops for the whole copy and runs at the destination" {
    hop_start dst -m 64M -incoming "unix:$D/mig.sock"
    hop_start src -m 64M
    wait_filled src
    run hop_mon src "migrate_set_capability release-ram on" \
        "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/mig.sock" "info migrate"
    assert_line "Migration status: completed"
    # One stop, no iterations while the guest runs: the whole migration is
    # downtime.
    local total down
    total=$(output_field 'total time')
    down=$(output_field 'downtime')
    [ -n "$total" ] && [ -n "$down" ] && [ $((total - down)) -le 50 ] ||
        fail "total $total ms, downtime $down ms"
    wait_for "hop_mon dst 'info status' | grep -qx 'VM status: running'" 30
    serial_grows dst
    memory_intact dst 64M
}

@test "release-ram: a failure after pages were freed leaves the source stopped, saying why" {
    HOP_FAULT=migration-released@3:fail hop_start src -m 64M
    hop_start dst -m 64M -S -incoming "unix:$D/mig.sock"
    wait_filled src
    run hop_mon src "migrate_set_capability release-ram on" \
        "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/mig.sock" "info migrate" "info status" "cont" \
        "info status"
    assert_line --partial "Migration status: failed (the guest cannot resume here (release-ram freed"
    assert_line --partial "injected fault at migration-released"
    assert_line "Error: cannot run the machine: release-ram freed guest RAM that went to the destination"
    refute_line "VM status: running"
    assert_line "VM status: paused"
    # Nor can it start over from a snapshot or migrate again.
    run hop_mon src "system_reset" "migrate unix:$D/other.sock"
    assert_line "Error: cannot reset the machine: release-ram freed guest RAM that went to the destination"
    assert_line "Error: cannot migrate: release-ram freed guest RAM that went to the destination"
}

@test "release-ram: a failure before anything was freed resumes the guest" {
    # The destination is not there: nothing is sent, nothing freed.
    hop_start src -m 64M
    wait_filled src
    run hop_mon src "migrate_set_capability release-ram on" \
        "migrate unix:$D/nobody.sock" "info status"
    assert_line "VM status: running"
    # (Without release-ram now: the check compares with the source's RAM.)
    hop_mon src "migrate_set_capability release-ram off" >/dev/null
    source_survives src 64M
}

@test "release-ram: refused with multifd, and listed with its help" {
    hop_start src -m 32M -S
    run hop_mon src "migrate_set_capability multifd on" \
        "migrate_set_capability release-ram on" "info migrate_capabilities"
    assert_line "Error: capabilities release-ram and multifd cannot be used together"
    assert_line "release-ram: off"
    run hop_mon src "help migrate_set_capability"
    assert_success
}
