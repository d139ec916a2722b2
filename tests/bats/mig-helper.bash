# Shared steps of the migration tests (load after helper).

MEMTEST_CHECK=${HOP_BUILD_DIR:-$HOP_SRC/build}/tests/tools/memtest-check
PY=/usr/bin/python3
QMP_PY=$HOP_SRC/tests/tools/qmp.py
GETFD_PY=$HOP_SRC/tests/tools/mon-getfd.py
QMP_MIGRATE_PY=$HOP_SRC/tests/tools/qmp-migrate.py

mig_setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
}

# need_accel ACCEL: skips a kvm test, with the reason, where KVM won't open.
need_accel() {
    if [ "$1" = kvm ] && ! kvm_works; then
        skip "/dev/kvm cannot be opened for reading and writing here"
    fi
}

# Small guests: the emulator fills 64 MiB in well under a second; KVM
# moves 16 MiB in a blink.
mig_mem() {
    if [ "$1" = kvm ]; then echo 16M; else echo 64M; fi
}

mem_bytes() {
    numfmt --from=iec "$1"
}

# wait_serial NAME TEXT SECS: waits until the machine's serial log holds TEXT.
wait_serial() {
    wait_for "grep -q '$2' '$D/$1.serial' 2>/dev/null" "${3:-20}"
}

# wait_filled NAME: the memtest guest filled its RAM and is dirtying it.
wait_filled() {
    wait_memtest_filled "$1"
}

# mig_status NAME: the "Migration status" word of `info migrate`.
mig_status() {
    hop_mon "$1" "info migrate" | sed -n 's/^Migration status: \([a-z-]*\).*/\1/p'
}

# wait_mig NAME STATUS SECS
wait_mig() {
    wait_for "[ \"\$(mig_status $1)\" = '$2' ]" "${3:-30}"
}

# output_field FIELD: the number after "FIELD:" at the start of a line of
# $output (what bats' run captured).
output_field() {
    sed -n "s/^$1: \([0-9.]*\).*/\1/p" <<<"$output"
}

# mig_field NAME FIELD: the number after "FIELD:" in `info migrate`.
mig_field() {
    local output
    output=$(hop_mon "$1" "info migrate")
    output_field "$2"
}

# ram_hva NAME: where pc.ram starts in the machine's address space, hex
# without 0x or leading zeros, as /proc/PID/maps and smaps write it.
ram_hva() {
    local hva
    hva=$(hop_mon "$1" "info ramblock" | awk '$1 == "pc.ram" { print $(NF - 1) }')
    hva=$(sed 's/^0x0*//' <<<"$hva")
    [ -n "$hva" ] || fail "no pc.ram in info ramblock of $1"
    echo "$hva"
}

# compare_machines SRC DST MEM: the stopped source and the destination
# (loaded with -S) hold the same RAM and registers, and the memtest
# invariant holds on the destination's RAM.
compare_machines() {
    local src=$1 dst=$2 bytes
    bytes=$(mem_bytes "$3")
    wait_for "hop_mon $dst 'info status' | grep -qx 'VM status: paused'" 60
    hop_mon "$src" "pmemsave 0 $bytes \"$D/$src.ram\"" "info registers" \
        >"$D/$src.regs"
    hop_mon "$dst" "pmemsave 0 $bytes \"$D/$dst.ram\"" "info registers" \
        >"$D/$dst.regs"
    [ -s "$D/$dst.ram" ]
    cmp "$D/$src.ram" "$D/$dst.ram"
    diff "$D/$src.regs" "$D/$dst.regs"
    grep -q '^EAX=' "$D/$dst.regs"
    run "$MEMTEST_CHECK" "$D/$dst.ram"
    assert_success
}

# memory_intact NAME MEM: stops the machine and checks its RAM with the
# memtest checker.
memory_intact() {
    local bytes
    bytes=$(mem_bytes "$2")
    hop_mon "$1" "stop" "pmemsave 0 $bytes \"$D/$1-intact.ram\""
    run "$MEMTEST_CHECK" "$D/$1-intact.ram"
    assert_success
}

# serial_grows NAME: the guest prints more within two seconds.
serial_grows() {
    local a
    a=$(wc -c <"$D/$1.serial")
    wait_for "[ \$(wc -c <'$D/$1.serial') -gt $a ]" 3
}

# migrate_running ACCEL DST_URI SRC_URI [monitor commands before migrate]:
# a running memtest source moves into a -S destination; both are checked.
# The arrays MIG_SRC_ARGS and MIG_DST_ARGS, when set, add hop run options
# to either side (a memory backend, say).
migrate_running() {
    local accel=$1 dst_uri=$2 src_uri=$3
    shift 3
    local mem
    mem=$(mig_mem "$accel")
    hop_start dst -accel "$accel" -m "$mem" "${MIG_DST_ARGS[@]}" -S \
        -incoming "$dst_uri"
    hop_start src -accel "$accel" -m "$mem" "${MIG_SRC_ARGS[@]}"
    wait_filled src
    # memtest rewrites all of its memory in every pass: on a slow host (or
    # under a sanitizer) a 300 ms downtime never converges, and these tests
    # are about the transport, not about convergence.  Callers may set
    # their own limit after this one.
    run hop_mon src "info status" "migrate_set_parameter max-bandwidth 0" \
        "migrate_set_parameter downtime-limit 5000" \
        "$@" "migrate $src_uri" "info migrate" "info status"
    assert_success
    assert_line --index 0 "VM status: running"
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
    compare_machines src dst "$mem"
}

# source_survives NAME MEM: after a failed or cancelled migration the
# machine runs, its memory passes the memtest check, and a new migration
# to a fresh destination works and moves exactly that memory.
source_survives() {
    local src=$1 mem=$2 bytes
    bytes=$(mem_bytes "$mem")
    run hop_mon "$src" "info status"
    assert_output "VM status: running"
    serial_grows "$src"
    hop_mon "$src" "stop" "pmemsave 0 $bytes \"$D/$src-after.ram\"" "cont"
    run "$MEMTEST_CHECK" "$D/$src-after.ram"
    assert_success
    hop_start again -m "$mem" -S -incoming "unix:$D/again.sock"
    run hop_mon "$src" "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/again.sock" "info migrate"
    assert_line "Migration status: completed"
    compare_machines "$src" again "$mem"
}

# ram_matches_registers NAME: memtest's vCPU walks its pages in order with
# EDI, adding one to each page's counter: in a state of one moment, the
# pages already done this pass end where EDI points (or one page further,
# stopped between the add and the step).  RAM saved later than the
# registers would not match.
ram_matches_registers() {
    run "$MEMTEST_CHECK" "$D/$1.ram"
    assert_success
    local done edi end
    done=$(sed -n 's/.*, \([0-9]*\) at value .*/\1/p' <<<"$output")
    edi=$((0x$(sed -n 's/.*EDI=\([0-9a-f]*\).*/\1/p' "$D/$1.regs")))
    end=$((0x100000 + done * 4096))
    [ "$edi" -eq "$end" ] || [ "$edi" -eq $((end - 4096)) ] ||
        { [ "$done" -eq 0 ] && [ "$edi" -ge $((0x100000)) ]; } ||
        fail "EDI=$edi but $done pages done this pass (up to $end): $output"
}

# huge_kb NAME: the machine's anonymous memory in transparent huge pages.
huge_kb() {
    awk '/^AnonHugePages:/ { print $2 }' "/proc/$(hop_pid "$1")/smaps_rollup"
}
