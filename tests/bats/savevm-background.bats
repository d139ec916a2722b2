#!/usr/bin/env bats
# savevm -b (QMP snapshot-save with x-background, hop snapshot save
# --background): a qcow2 internal snapshot of a guest that runs while its
# RAM is written.  The snapshot is the machine as it was when the save
# began; it is listed only once whole; a failure leaves no snapshot and a
# running guest; the image stays clean for qemu-img.  The memtest guest
# rewrites every page on every pass, so a snapshot that mixed pages of
# different moments fails its check.

load helper
load mig-helper
load snap-helper

setup() {
    mig_setup
    MNT=
}

teardown() {
    hop_stop_all
    if [ -n "$MNT" ]; then
        umount "$MNT" 2>/dev/null || true
    fi
}

qemu_tags() {
    qemu-img snapshot -U -l "$1" | awk 'NR > 2 { print $2 }'
}

# need_uffd NAME: skips, with the kernel's reason, where RAM cannot be
# write-protected (the check savevm -b makes before it pauses the guest).
need_uffd() {
    local out
    out=$(hop_mon "$1" "migrate_set_capability background-snapshot on" \
        "migrate_set_capability background-snapshot off")
    if [[ $out == *Error:* ]]; then
        skip "${out#*Error: }"
    fi
}

# image_clean IMG: qemu-img check finds nothing at all (exit 0: no leaks
# either).
image_clean() {
    run qemu-img check -U "$1"
    [ "$status" -eq 0 ] || fail "qemu-img check exit $status: $output"
}

# make_base: $D/base.qcow2 holds a plain snapshot s0 of a 32M memtest
# guest (made by a process of its own: a fault armed for the test must
# not hit this savevm).
make_base() {
    "$HOP" img create "$D/base.qcow2" 16M >/dev/null
    hop_start base -m 32M -drive "file=$D/base.qcow2"
    wait_filled base
    hop_mon base "savevm s0" quit >/dev/null
    wait_for "! kill -0 $(hop_pid base) 2>/dev/null" 20
}

# vm_with_s0 NAME: a memtest guest on a copy of the base image, running
# and filled.
vm_with_s0() {
    cp "$D/base.qcow2" "$D/$1.qcow2"
    hop_start "$1" -m 32M -drive "file=$D/$1.qcow2"
    wait_filled "$1"
}

@test "savevm -b: loadvm gives back the machine as it was when the save began, while the guest ran on" {
    "$HOP" img create "$D/d.qcow2" 16M >/dev/null
    hop_start vm -m 64M -drive "file=$D/d.qcow2"
    wait_filled vm
    need_uffd vm
    local t0 t1
    t0=$(date +%s)
    run hop_mon vm "savevm -b bg" "info status" "stop"
    t1=$(date +%s)
    assert_success
    refute_output --partial Error
    assert_line "VM status: running"
    # loadvm: RAM and registers of one moment (memtest's invariant, and
    # EDI where the pages done this pass end).
    hop_mon vm "loadvm bg" "pmemsave 0 67108864 \"$D/bg.ram\"" \
        "info registers" >"$D/bg.regs"
    grep -q '^EAX=' "$D/bg.regs"
    ram_matches_registers bg
    # It runs on from the snapshot.
    hop_mon vm cont >/dev/null
    serial_grows vm
    # qemu-img: clean (no leaks either), the snapshot listed with its
    # state, whose size is the stream hop inspect walks to its end, and
    # the date of the start.
    image_clean "$D/d.qcow2"
    run qemu_tags "$D/d.qcow2"
    assert_output bg
    local json size len date
    json=$(qemu-img info -U --output=json "$D/d.qcow2")
    size=$(jq -r '.snapshots[] | select(.name == "bg") | .["vm-state-size"]' <<<"$json")
    date=$(jq -r '.snapshots[] | select(.name == "bg") | .["date-sec"]' <<<"$json")
    cp "$D/d.qcow2" "$D/copy.qcow2"
    len=$("$HOP" inspect --json --no-ram "$D/copy.qcow2@bg" | jq -r .size)
    [ "$size" -gt 0 ] && [ "$size" -eq "$len" ]
    [ "$date" -ge "$t0" ] && [ "$date" -le "$t1" ]
    # The RAM hop inspect decodes from the image is what loadvm loaded.
    mkdir "$D/x"
    "$HOP" inspect "$D/copy.qcow2@bg" --extract-ram "$D/x" >/dev/null
    cmp "$D/bg.ram" "$D/x/pc.ram"
}

@test "savevm -b of a paused guest: it stays paused and loads exactly" {
    "$HOP" img create "$D/d.qcow2" 16M >/dev/null
    hop_start vm -m 32M -drive "file=$D/d.qcow2"
    wait_filled vm
    need_uffd vm
    hop_mon vm stop "pmemsave 0 33554432 \"$D/p.ram\"" "info registers" \
        >"$D/p.regs"
    run hop_mon vm "savevm -b p" "info status"
    refute_output --partial Error
    assert_line "VM status: paused"
    hop_mon vm cont >/dev/null
    serial_grows vm
    load_and_compare vm p 33554432
    image_clean "$D/d.qcow2"
}

@test "savevm -b replaces a tag as savevm does, names an untagged snapshot as savevm does, and shows in help" {
    make_base
    vm_with_s0 vm
    need_uffd vm
    run hop_mon vm "savevm -b s0" "savevm -b" "info snapshots"
    refute_output --partial Error
    run qemu_tags "$D/vm.qcow2"
    assert_line --index 0 s0
    assert_line --index 1 --regexp '^vm-[0-9]{14}$'
    [ "${#lines[@]}" -eq 2 ]
    image_clean "$D/vm.qcow2"
    run hop_mon vm "stop" "loadvm s0" "pmemsave 0 33554432 \"$D/s0.ram\""
    refute_output --partial Error
    run "$MEMTEST_CHECK" "$D/s0.ram"
    assert_success
    run hop_mon vm "help savevm"
    assert_output --partial "savevm [-b] [tag]"
}

# fails_cleanly POINT: savevm -b with HOP_FAULT=POINT:fail reports it,
# lists nothing new, the guest runs on, the image is clean, and the next
# savevm -b works.
fails_cleanly() {
    local name=f-${1//[@:]/-}
    HOP_FAULT=$1:fail vm_with_s0 "$name"
    run hop_mon "$name" "savevm -b new" "info status"
    assert_line --partial "Error: "
    assert_output --partial "injected fault at ${1%@*}"
    assert_line "VM status: running"
    serial_grows "$name"
    memory_intact "$name" 32M
    run qemu_tags "$D/$name.qcow2"
    assert_output s0
    image_clean "$D/$name.qcow2"
    hop_mon "$name" cont >/dev/null
    run hop_mon "$name" "savevm -b again"
    refute_output --partial Error
    image_clean "$D/$name.qcow2"
}

@test "savevm -b that fails at any step: nothing listed, the guest runs on, qemu-img check clean" {
    "$HOP" img create "$D/probe.qcow2" 1M >/dev/null
    hop_start probe -m 16M -drive "file=$D/probe.qcow2"
    need_uffd probe
    make_base
    local point
    for point in savevm-stopped savevm-disks-kept savevm-state@1 \
        savevm-state-written savevm-snapshot; do
        fails_cleanly "$point"
    done
}

@test "savevm -b killed half way: nothing listed; the next open frees what it kept" {
    "$HOP" img create "$D/probe.qcow2" 1M >/dev/null
    hop_start probe -m 16M -drive "file=$D/probe.qcow2"
    need_uffd probe
    make_base
    HOP_FAULT=savevm-state@1 vm_with_s0 k
    hop_mon k "savevm -b new" >/dev/null || true
    wait_for "! kill -0 $(hop_pid k) 2>/dev/null" 20
    grep -q "HOP_FAULT: exiting at savevm-state " "$D/k.err"
    run qemu_tags "$D/k.qcow2"
    assert_output s0
    # Leaks at worst (harmless, qemu-img says), never corruption.
    image_ok "$D/k.qcow2"
    # A writer's open recounts (the image was marked dirty meanwhile).
    hop_start k2 -m 32M -S -drive "file=$D/k.qcow2"
    hop_mon k2 quit >/dev/null
    wait_for "! kill -0 $(hop_pid k2) 2>/dev/null" 20
    image_clean "$D/k.qcow2"
    run qemu_tags "$D/k.qcow2"
    assert_output s0
}

@test "a full disk during savevm -b: a clear error, the guest runs on, the image clean" {
    MNT=$D/mnt
    mkdir "$MNT"
    if ! mount -t tmpfs -o size=8m tmpfs "$MNT" 2>"$D/mount.err"; then
        MNT=
        skip "cannot mount a small tmpfs: $(cat "$D/mount.err")"
    fi
    "$HOP" img create "$MNT/d.qcow2" 1M >/dev/null
    hop_start vm -m 32M -S -drive "file=$MNT/d.qcow2"
    need_uffd vm
    hop_mon vm "savevm early" cont >/dev/null
    wait_filled vm
    run hop_mon vm "savevm -b big" "info status"
    assert_output --regexp "Error: cannot write the state into .*d.qcow2: .*No space left on device"
    assert_line "VM status: running"
    serial_grows vm
    run qemu_tags "$MNT/d.qcow2"
    assert_output early
    image_clean "$MNT/d.qcow2"
}

@test "QMP snapshot-save with x-background: the guest runs and prints during the job; hop snapshot save --background" {
    "$HOP" img create "$D/d.qcow2" 16M >/dev/null
    hop_start vm -m 128M -drive "file=$D/d.qcow2" -qmp "unix:$D/q.sock,server,nowait"
    wait_for "[ -S '$D/q.sock' ]" 10
    wait_filled vm
    need_uffd vm
    # While the job runs: the machine's status, and the serial output.
    # (A plain snapshot-save shows save-vm all along, and prints nothing.)
    run timeout 120 python3 - "$D/q.sock" "$HOP_SRC/tests/tools" "$D/vm.serial" <<'PY'
import os, sys, time
sys.path.insert(0, sys.argv[2])
import qmp
c = qmp.Client(sys.argv[1])
c.execute("snapshot-save", {"job-id": "j", "tag": "q1", "x-background": True})
seen = []
deadline = time.time() + 100
while time.time() < deadline:
    job = [j for j in c.execute("query-jobs") if j["id"] == "j"][0]
    if job["status"] == "concluded":
        break
    st = c.execute("query-status")["status"]
    seen.append((st, os.path.getsize(sys.argv[3])))
    time.sleep(0.02)
c.execute("job-dismiss", {"id": "j"})
print("save", job.get("error", "ok"), job["status"])
running = [size for st, size in seen if st == "running"]
print("running while saving", len(running) > 0)
print("printed while saving", len(running) > 1 and running[-1] > running[0])
# Only snapshot-save has the option.
try:
    c.execute("snapshot-load", {"job-id": "k", "tag": "q1",
                                "x-background": True})
    print("load accepted x-background")
except qmp.QmpError:
    print("load refused")
PY
    assert_success
    assert_line "save ok concluded"
    assert_line "running while saving True"
    assert_line "printed while saving True"
    assert_line "load refused"
    run hop_mon vm "stop" "loadvm q1" "pmemsave 0 134217728 \"$D/q1.ram\"" \
        "info registers"
    refute_output --partial Error
    printf '%s\n' "$output" >"$D/q1.regs"
    ram_matches_registers q1
    hop_mon vm cont >/dev/null
    run timeout 120 "$HOP" snapshot save c1 --background --monitor "unix:$D/vm.mon"
    assert_success
    assert_output ''
    run "$HOP" snapshot load c1 --background --monitor "unix:$D/vm.mon"
    assert_failure 2
    assert_output --partial "--background goes with save"
    run qemu_tags "$D/d.qcow2"
    assert_output "$(printf 'q1\nc1')"
    image_clean "$D/d.qcow2"
}

@test "savevm -b is refused where it cannot work, saying why, and the guest runs on" {
    # No qcow2 drive: what plain savevm says.
    hop_start bare -m 16M
    need_uffd bare
    run hop_mon bare "savevm -b x" "info status"
    assert_line --partial "Error: "
    local plain
    plain=$(hop_mon bare "savevm x" | grep Error)
    assert_line "$plain"
    assert_line "VM status: running"
    # A read-only drive alone takes no snapshot, as with plain savevm.
    "$HOP" img create "$D/ro.qcow2" 1M >/dev/null
    hop_start ro -m 16M -drive "file=$D/ro.qcow2,readonly=on"
    run hop_mon ro "savevm -b x" "info status"
    plain=$(hop_mon ro "savevm x" | grep Error)
    assert_line "$plain"
    assert_line "VM status: running"
    run qemu_tags "$D/ro.qcow2"
    assert_output ""
    # RAM in a file the kernel cannot write-protect, with userfaultfd (as
    # under kvm; emu's own write guard needs nothing of the kernel):
    # refused before the guest pauses, naming the block.
    [ "$(stat -f -c %T "$D")" != tmpfs ] ||
        skip "$D is on tmpfs, whose files can be write-protected"
    "$HOP" img create "$D/f.qcow2" 16M >/dev/null
    HOP_WRITE_TRACKING=userfaultfd hop_start file -m 32M -drive "file=$D/f.qcow2" \
        -object "memory-backend-file,id=mem,size=32M,mem-path=$D/ram.file,share=on" \
        -machine memory-backend=mem
    run hop_mon file "savevm -b x" "info status"
    assert_line --partial "Error: cannot save snapshot 'x' while the guest runs: background-snapshot: RAM block pc.ram: the kernel cannot write-protect this memory"
    assert_line "VM status: running"
    run qemu_tags "$D/f.qcow2"
    assert_output ""
    image_clean "$D/f.qcow2"
}

@test "savevm -b gives guest RAM back in the huge pages it had (write tracking split them)" {
    "$HOP" img create "$D/d.qcow2" 16M >/dev/null
    hop_start vm -m 64M -drive "file=$D/d.qcow2"
    wait_filled vm
    need_uffd vm
    local before after
    before=$(huge_kb vm)
    [ "${before:-0}" -ge 32768 ] ||
        skip "guest RAM is not in transparent huge pages here (AnonHugePages: ${before:-?} kB; /sys/kernel/mm/transparent_hugepage/enabled: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null))"
    run hop_mon vm "savevm -b bg" "info status"
    refute_output --partial Error
    assert_line "VM status: running"
    # Split into small pages, the kernel joins them again only a few MiB
    # every few seconds, and every page the guest touches costs a TLB
    # miss meanwhile (a hundred times slower here, on a virtual host).
    after=$(huge_kb vm)
    [ "$after" -ge $((before * 9 / 10)) ] ||
        fail "AnonHugePages ${before} kB before the save, ${after} kB after"
    serial_grows vm
}
