#!/usr/bin/env bats
# Guest RAM on each memory backend (-object memory-backend-*, -machine
# memory-backend=ID, -mem-prealloc): live migration from one backend to
# another moves memory exactly, savevm/loadvm bring it back, a shared
# file is guest RAM, never-written pages are neither read on the source
# nor allocated on the destination, and bad options say what is wrong.

load helper
load mig-helper
load snap-helper

setup() {
    mig_setup
}

teardown() {
    hop_stop_all
    # Give back the huge pages the hugetlb test reserved.
    if [ -n "${HUGEPAGES_BEFORE:-}" ]; then
        echo "$HUGEPAGES_BEFORE" >/proc/sys/vm/nr_hugepages
    fi
}

# backend_args KIND SIDE [SIZE]: sets BE to the hop run options that put
# guest RAM (SIZE, default 64M) on backend KIND; SIDE names its files.
backend_args() {
    local kind=$1 side=$2 size=${3:-64M}
    local obj="id=mem,size=$size"
    case $kind in
    default) BE=() ;;
    default-prealloc) BE=(-mem-prealloc) ;;
    memfd-shared) obj="memory-backend-memfd,$obj,share=on" ;;
    memfd-private) obj="memory-backend-memfd,$obj,share=off" ;;
    memfd-prealloc) obj="memory-backend-memfd,$obj,prealloc=on" ;;
    memfd-hugetlb) obj="memory-backend-memfd,$obj,hugetlb=on" ;;
    file-dir)
        mkdir -p "$D/$side-dir"
        obj="memory-backend-file,$obj,mem-path=$D/$side-dir"
        ;;
    file-shared) obj="memory-backend-file,$obj,mem-path=$D/$side.ram-file,share=on" ;;
    *) fail "unknown backend kind $kind" ;;
    esac
    case $kind in
    default*) ;;
    *) BE=(-object "$obj" -machine memory-backend=mem) ;;
    esac
}

# ram_mapping NAME: "PERMS PATH" of the host mapping that holds the
# machine's pc.ram (found by the HVA `info ramblock` shows).
ram_mapping() {
    local hva
    hva=$(ram_hva "$1")
    awk -v a="$hva" 'index($1, a "-") == 1 { $1 = $3 = $4 = $5 = ""; print }' \
        "/proc/$(hop_pid "$1")/maps" | tr -s ' ' | sed 's/^ //; s/ $//'
}

# on_backend NAME KIND SIDE: the machine's RAM is where KIND puts it.
on_backend() {
    local want
    case $2 in
    default*) want='^rw-p$' ;;
    memfd-private) want='^rw-p /memfd:pc\.ram \(deleted\)$' ;;
    memfd-*) want='^rw-s /memfd:pc\.ram \(deleted\)$' ;;
    file-dir) want="^rw-p $D/$3-dir/hop_mem\\.[A-Za-z0-9]{6} \\(deleted\\)\$" ;;
    file-shared) want="^rw-s $D/$3\\.ram-file\$" ;;
    esac
    run ram_mapping "$1"
    assert_output --regexp "$want"
}

# migrate_between SRC_KIND DST_KIND: a running memtest guest on one
# backend moves into a destination on another; memory, registers and
# the memtest invariant are checked (migrate_running), and each side's
# RAM is where its backend puts it.
migrate_between() {
    backend_args "$1" src
    MIG_SRC_ARGS=("${BE[@]}")
    backend_args "$2" dst
    MIG_DST_ARGS=("${BE[@]}")
    migrate_running emu "unix:$D/mig.sock" "unix:$D/mig.sock"
    on_backend src "$1" src
    on_backend dst "$2" dst
}

# ram_rss_kib NAME: resident KiB of the mapping that holds pc.ram (not
# the whole process: a sanitizer's shadow memory would blur that).
ram_rss_kib() {
    local hva
    hva=$(ram_hva "$1")
    awk -v a="$hva" 'index($1, a "-") == 1 { on = 1; next }
        on && /^Rss:/ { print $2; exit }' "/proc/$(hop_pid "$1")/smaps"
}

# rss_kib NAME: the machine's resident memory, KiB.
rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$(hop_pid "$1")/status"
}

@test "default -> memfd share=on: a running memtest guest moves, memory equal" {
    migrate_between default memfd-shared
}

@test "memfd share=on -> memfd share=off: a running memtest guest moves, memory equal" {
    migrate_between memfd-shared memfd-private
}

@test "memfd share=off -> file in a directory: a running memtest guest moves, memory equal" {
    migrate_between memfd-private file-dir
}

@test "file in a directory -> file path share=on: a running memtest guest moves, memory equal" {
    migrate_between file-dir file-shared
}

@test "file path share=on -> default with -mem-prealloc: a running memtest guest moves, memory equal" {
    migrate_between file-shared default-prealloc
}

@test "default with -mem-prealloc -> memfd prealloc=on: a running memtest guest moves, memory equal" {
    migrate_between default-prealloc memfd-prealloc
}

@test "memfd prealloc=on -> default: a running memtest guest moves, memory equal" {
    migrate_between memfd-prealloc default
}

@test "multifd with 2 channels: memfd share=on -> file in a directory, memory equal" {
    backend_args memfd-shared src
    MIG_SRC_ARGS=("${BE[@]}")
    backend_args file-dir dst
    MIG_DST_ARGS=("${BE[@]}")
    migrate_running emu "unix:$D/mig.sock" "unix:$D/mig.sock" \
        "migrate_set_capability multifd on" \
        "migrate_set_parameter multifd-channels 2"
    run hop_mon src "info migrate"
    assert_output --regexp "multifd bytes: [1-9][0-9]* kbytes"
    on_backend dst file-dir dst
}

@test "xbzrle: file path share=on -> memfd share=off, memory equal" {
    backend_args file-shared src
    MIG_SRC_ARGS=("${BE[@]}")
    backend_args memfd-private dst
    MIG_DST_ARGS=("${BE[@]}")
    migrate_running emu "unix:$D/mig.sock" "unix:$D/mig.sock" \
        "migrate_set_capability xbzrle on"
}

@test "file: saved from memfd share=off, loaded into a shared file, memory equal" {
    backend_args memfd-private src
    hop_start src -m 64M "${BE[@]}"
    wait_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate file:$D/f.mig" "info migrate" "info status"
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
    backend_args file-shared dst
    hop_start dst -m 64M "${BE[@]}" -S -incoming "file:$D/f.mig"
    compare_machines src dst 64M
    # The shared file holds what was loaded.
    cmp "$D/src.ram" "$D/dst.ram-file"
}

@test "-mem-prealloc and prealloc=on make all of guest RAM resident at start" {
    local kind
    for kind in default-prealloc memfd-prealloc file-shared default; do
        backend_args "$kind" "$kind"
        [ "$kind" = file-shared ] && BE+=(-mem-prealloc)
        hop_start "$kind" -S -m 64M "${BE[@]}"
    done
    for kind in default-prealloc memfd-prealloc file-shared; do
        local rss
        rss=$(rss_kib "$kind")
        echo "$kind: VmRSS $rss kB" >&3
        [ "$rss" -ge $((64 * 1024)) ] || fail "$kind: only $rss kB resident"
    done
    # Without it only what the firmware wrote is.
    [ "$(rss_kib default)" -lt $((64 * 1024)) ]
}

# savevm_loadvm KIND: savevm of a running memtest guest on backend KIND,
# the guest runs on and changes its memory, loadvm brings it back.
savevm_loadvm() {
    local bytes
    bytes=$(mem_bytes 32M)
    backend_args "$1" vm 32M
    "$HOP" img create "$D/d.qcow2" 16M >/dev/null
    hop_start vm "${BE[@]}" -drive "file=$D/d.qcow2"
    on_backend vm "$1" vm
    wait_memtest_filled vm
    save_paused vm s1 "$bytes"
    hop_mon vm cont
    serial_grows vm
    hop_mon vm stop "pmemsave 0 $bytes \"$D/later.ram\""
    ! cmp -s "$D/s1.ram" "$D/later.ram" || fail "memory did not change"
    load_and_compare vm s1 "$bytes"
    run "$MEMTEST_CHECK" "$D/s1.back"
    assert_success
    hop_mon vm cont
    serial_grows vm
    hop_mon vm quit
    image_ok "$D/d.qcow2"
}

@test "savevm then loadvm with RAM on memfd: memory comes back as it was" {
    savevm_loadvm memfd-shared
}

@test "savevm then loadvm with RAM on a shared file: memory comes back as it was" {
    savevm_loadvm file-shared
}

@test "file backend with share=on: the file is guest RAM, byte for byte" {
    local bytes
    bytes=$(mem_bytes 32M)
    backend_args file-shared vm 32M
    hop_start vm "${BE[@]}"
    wait_memtest_filled vm
    serial_grows vm
    hop_mon vm stop "pmemsave 0 $bytes \"$D/all.ram\"" \
        "pmemsave 0x1234000 4096 \"$D/page.ram\""
    [ "$(stat -c %s "$D/vm.ram-file")" -eq "$bytes" ]
    # Guest physical address N is file offset N (below 3 GiB).
    cmp "$D/page.ram" <(dd if="$D/vm.ram-file" bs=4096 skip=$((0x1234)) \
        count=1 status=none)
    cmp "$D/all.ram" "$D/vm.ram-file"
    run "$MEMTEST_CHECK" "$D/vm.ram-file"
    assert_success
    # It outlives the machine.
    hop_mon vm quit
    wait_for "! kill -0 $(hop_pid vm) 2>/dev/null" 10
    cmp "$D/all.ram" "$D/vm.ram-file"
}

# zero_guest_moves SRC_KIND DST_KIND: a counter guest with 256M of RAM
# (a few pages written) migrates; nearly every page goes as a zero page,
# reading them allocates nothing on the source, and the destination
# allocates hardly anything for them either.
zero_guest_moves() {
    backend_args "$1" src 256M
    hop_start src -guest counter "${BE[@]}" -m 256M
    backend_args "$2" dst 256M
    hop_start dst -guest counter "${BE[@]}" -m 256M -S \
        -incoming "unix:$D/mig.sock"
    on_backend src "$1" src
    on_backend dst "$2" dst
    wait_serial src "counter: 2" 20
    local src0 dst0
    src0=$(ram_rss_kib src)
    dst0=$(ram_rss_kib dst)
    run hop_mon src "migrate_set_parameter max-bandwidth 0" \
        "migrate unix:$D/mig.sock" "info migrate"
    assert_line "Migration status: completed"
    local dup
    dup=$(output_field 'duplicate')
    echo "zero pages: $dup of 65536" >&3
    [ "$dup" -ge $((65536 * 98 / 100)) ]
    wait_for "hop_mon dst 'info status' | grep -qx 'VM status: paused'" 60
    local src1 dst1
    src1=$(ram_rss_kib src)
    dst1=$(ram_rss_kib dst)
    echo "guest RAM resident: source $src0 -> $src1 kB, destination $dst0 -> $dst1 kB" >&3
    # Reading the zero pages would have made all 256 MiB resident.
    [ $((src1 - src0)) -lt $((8 * 1024)) ]
    [ $((dst1 - dst0)) -lt $((32 * 1024)) ]
    # The same machine, and it counts on.
    hop_mon src "info registers" >"$D/src.regs"
    hop_mon dst "info registers" "cont" >"$D/dst.regs"
    diff "$D/src.regs" "$D/dst.regs"
    wait_serial dst "counter:" 10
}

@test "a mostly-zero 256M guest on memfd share=on: zero pages are not read on the source, nor allocated on the destination" {
    zero_guest_moves memfd-shared default
}

@test "a mostly-zero 256M guest on the default backend: zero pages are not read on the source, nor allocated on the destination" {
    zero_guest_moves default memfd-shared
}

@test "a destination on a file that already holds data: the source's zero pages are zeros there" {
    local bytes share
    bytes=$(mem_bytes 32M)
    hop_start src -guest counter -m 32M
    wait_serial src "counter: 2" 20
    for share in on off; do
        head -c "$bytes" /dev/zero | tr '\0' '\377' >"$D/old-$share.ram"
        hop_start "dst-$share" -guest counter -S -incoming "unix:$D/$share.sock" \
            -object "memory-backend-file,id=m,size=32M,mem-path=$D/old-$share.ram,share=$share" \
            -machine memory-backend=m
    done
    hop_mon src stop "pmemsave 0 $bytes \"$D/src.ram\""
    for share in on off; do
        run hop_mon src "migrate_set_parameter max-bandwidth 0" \
            "migrate unix:$D/$share.sock" "info migrate"
        assert_line "Migration status: completed"
        wait_for "hop_mon dst-$share 'info status' | grep -qx 'VM status: paused'" 60
        hop_mon "dst-$share" "pmemsave 0 $bytes \"$D/dst-$share.ram\""
        cmp "$D/src.ram" "$D/dst-$share.ram"
    done
    # With share=on the file took the guest's memory.
    cmp "$D/src.ram" "$D/old-on.ram"
}

# bad_options STATUS MESSAGE HOP-RUN-ARGS...: hop run stops with STATUS
# and first says MESSAGE, on one line, without crashing.
bad_options() {
    local want_status=$1 msg=$2
    shift 2
    run timeout 10 "$HOP" run -monitor none -serial none "$@" </dev/null
    [ "$status" -eq "$want_status" ] ||
        fail "$*: exit $status, not $want_status: $output"
    [[ ${lines[0]} == "hop run: $msg" || ${lines[0]} == "hop: $msg" ]] ||
        fail "$*: says '${lines[0]}', not '$msg'"
    refute_output --partial Sanitizer
    refute_output --partial runtime
    if [ "$want_status" -eq 1 ]; then
        [ "${#lines[@]}" -eq 1 ] || fail "$*: more than one line: $output"
    fi
}

@test "bad backend options: one line naming the problem, exit 2 (usage) or 1" {
    local m=(-machine memory-backend=m)
    bad_options 2 "-object: unknown type 'memory-backend-foo' (memory-backend-ram, memory-backend-memfd or memory-backend-file)" \
        -object memory-backend-foo,id=m,size=32M "${m[@]}"
    bad_options 2 "-object memory-backend-ram: unknown key 'hugetlb'" \
        -object memory-backend-ram,id=m,size=32M,hugetlb=on "${m[@]}"
    bad_options 2 "-object memory-backend-file: unknown key 'bogus'" \
        -object "memory-backend-file,id=m,size=32M,mem-path=$D,bogus=1" "${m[@]}"
    bad_options 2 "-object memory-backend-memfd: id= is required" \
        -object memory-backend-memfd,size=32M "${m[@]}"
    bad_options 2 "-object memory-backend-memfd: size= is required" \
        -object memory-backend-memfd,id=m "${m[@]}"
    bad_options 2 "-object memory-backend-file: mem-path= is required" \
        -object memory-backend-file,id=m,size=32M "${m[@]}"
    bad_options 2 "-object memory-backend-ram: size 'lots' is not a size (1G, 512M)" \
        -object memory-backend-ram,id=m,size=lots "${m[@]}"
    bad_options 2 "memory backend 'm': size 1048576 is not 2M to 64G in whole 4 KiB pages" \
        -object memory-backend-ram,id=m,size=1M "${m[@]}"
    bad_options 2 "-object memory-backend-memfd: share='maybe' is not on or off" \
        -object memory-backend-memfd,id=m,size=32M,share=maybe "${m[@]}"
    bad_options 2 "-m 64M does not match the size of memory backend 'm' (33554432 bytes)" \
        -m 64M -object memory-backend-memfd,id=m,size=32M "${m[@]}"
    bad_options 2 "-machine memory-backend=m: no -object with that id" "${m[@]}"
    bad_options 2 "-machine memory-backend=m: no -object with that id" \
        -object memory-backend-memfd,id=n,size=32M "${m[@]}"
    bad_options 2 "-machine: 'accel=kvm' is not memory-backend=ID (the only property hop's machine has)" \
        -machine accel=kvm
    bad_options 2 "-object n: not used (name it with -machine memory-backend=n)" \
        -object memory-backend-memfd,id=n,size=32M
    bad_options 2 "-object: duplicate id 'm'" \
        -object memory-backend-memfd,id=m,size=32M \
        -object memory-backend-ram,id=m,size=32M "${m[@]}"
    bad_options 1 "memory backend 'm': cannot open '$D/none/ram': No such file or directory" \
        -object "memory-backend-file,id=m,size=32M,mem-path=$D/none/ram" "${m[@]}"
    bad_options 1 "memory backend 'm': cannot open '$D/none/': No such file or directory" \
        -object "memory-backend-file,id=m,size=32M,mem-path=$D/none/" "${m[@]}"
}

@test "memfd hugetlb=on with no huge pages reserved: the error says so" {
    grep -q '^Hugepagesize:' /proc/meminfo ||
        skip "the kernel has no hugetlb support"
    local n
    n=$(($(cat /proc/sys/vm/nr_hugepages) + $(cat /proc/sys/vm/nr_overcommit_hugepages)))
    [ "$n" -eq 0 ] ||
        skip "this host has huge pages reserved (vm.nr_hugepages or nr_overcommit_hugepages is not 0)"
    run timeout 10 "$HOP" run -monitor none -serial none \
        -object memory-backend-memfd,id=m,size=32M,hugetlb=on \
        -machine memory-backend=m </dev/null
    assert_equal "$status" 1
    assert_output --regexp "^hop: memory backend 'm': .*huge pages"
    [ "${#lines[@]}" -eq 1 ]
}

@test "hugetlb: a 64M guest on memfd hugetlb=on migrates, and back onto huge pages" {
    [ "$(id -u)" -eq 0 ] || skip "reserving huge pages needs root"
    HUGEPAGES_BEFORE=$(cat /proc/sys/vm/nr_hugepages)
    local want=$((HUGEPAGES_BEFORE + 32))
    echo "$want" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
    if [ "$(cat /proc/sys/vm/nr_hugepages)" -ne "$want" ] ||
        [ "$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo)" != 2048 ]; then
        skip "32 more 2 MiB huge pages cannot be reserved here (vm.nr_hugepages)"
    fi
    migrate_between memfd-hugetlb default
    run hop_mon src "info ramblock"
    assert_output --regexp 'pc\.ram +2 MiB '
    # The huge pages go back with the source; the guest runs on and
    # moves onto them again.
    hop_mon src quit
    wait_for "! kill -0 $(hop_pid src) 2>/dev/null" 10
    backend_args memfd-hugetlb back
    hop_start back "${BE[@]}" -S -incoming "unix:$D/back.sock"
    hop_mon dst cont
    serial_grows dst
    run hop_mon dst "migrate_set_parameter max-bandwidth 0" \
        "migrate_set_parameter downtime-limit 5000" \
        "migrate unix:$D/back.sock" "info migrate"
    assert_line "Migration status: completed"
    compare_machines dst back 64M
    on_backend back memfd-hugetlb back
}

@test "hop(1) shows the backend options as they are typed" {
    command -v groff >/dev/null || skip "groff is not installed"
    # Wide lines: each paragraph on one line.
    run groff -man -Tascii -rLL=2000n -P-cbou "$HOP_SRC/man/hop.1"
    assert_success
    assert_output --partial "used as guest RAM with -machine memory-backend=ID: memory-backend-ram"
    assert_output --partial "(the file mem-path=PATH, or an unlinked file in it"
    assert_output --partial "Guest RAM on the memory backend ID; -m may be left out"
}

# Both ends on the same shared file, x-ignore-shared as given (on|off)
# on each: SHARED_SRC_CAP, SHARED_DST_CAP.
start_on_shared_file() {
    local obj="memory-backend-file,id=mem,size=64M,mem-path=$D/shared.ram,share=on"
    hop_start dst -m 64M -object "$obj" -machine memory-backend=mem \
        -S -incoming defer
    hop_start src -m 64M -object "$obj" -machine memory-backend=mem
    wait_filled src
    run hop_mon dst "migrate_set_capability x-ignore-shared $2" \
        "migrate_incoming unix:$D/mig.sock"
    assert_success
    refute_output --partial "Error"
    run hop_mon src "migrate_set_capability x-ignore-shared $1" \
        "migrate_set_parameter max-bandwidth 0" \
        "migrate_set_parameter downtime-limit 5000" \
        "migrate unix:$D/mig.sock" "info migrate" "info status"
}

@test "x-ignore-shared: both ends on one shared file, RAM is not sent, the guest moves" {
    start_on_shared_file on on
    assert_success
    assert_line "Migration status: completed"
    assert_line "VM status: paused (postmigrate)"
    # 64 MiB of RAM, and under 1 MiB of it on the wire.
    local kb
    kb=$(output_field 'transferred ram')
    [ -n "$kb" ] && [ "$kb" -lt 1024 ] || fail "sent $kb KiB of RAM"
    compare_machines src dst 64M
    # It runs on from there.
    run hop_mon dst "cont" "info status"
    assert_line "VM status: running"
}

@test "x-ignore-shared on one end only: the destination refuses, naming it; the source runs on" {
    local src dst
    for src in on off; do
        dst=on
        [ "$src" = on ] && dst=off
        hop_stop_all
        rm -f "$D"/*.sock "$D"/*.mon "$D/dst.err"
        start_on_shared_file "$src" "$dst"
        wait_for "grep -q 'x-ignore-shared' '$D/dst.err'" 30
        run cat "$D/dst.err"
        assert_output --partial "incoming migration failed: capability x-ignore-shared is $src in the source but $dst here"
        [ "$(grep -c . "$D/dst.err")" -eq 1 ]
        # Nothing of the source's memory was lost: it is the same file.
        run hop_mon src "cont" "info status"
        assert_line "VM status: running"
    done
}

@test "x-ignore-shared: the configuration asks for it in the bytes QEMU 7.2 writes; hop inspect reads QEMU's stream" {
    need_qemu_system
    local obj="memory-backend-file,id=mem,size=64M,share=on"
    timeout 60 qemu-system-x86_64 -display none -S -m 64M \
        -object "$obj,mem-path=$D/q.ram" -machine memory-backend=mem \
        -qmp "unix:$D/q.qmp,server,nowait" &
    wait_for "[ -S '$D/q.qmp' ]" 20
    PYTHONPATH="$HOP_SRC/tests/tools" timeout 60 /usr/bin/python3 - "$D/q.qmp" "$D/q.stream" <<'PY'
import sys, time, qmp
c = qmp.Client(sys.argv[1])
c.execute("migrate-set-capabilities",
          {"capabilities": [{"capability": "x-ignore-shared", "state": True}]})
c.execute("migrate", {"uri": "exec:cat > " + sys.argv[2]})
for _ in range(600):
    if c.execute("query-migrate").get("status") in ("completed", "failed"):
        break
    time.sleep(0.1)
assert c.execute("query-migrate")["status"] == "completed"
c.execute("quit")
PY
    hop_start src -m 64M -object "$obj,mem-path=$D/h.ram" -machine memory-backend=mem
    run hop_mon src "stop" "migrate_set_capability x-ignore-shared on" \
        "migrate file:$D/h.stream" "info migrate"
    assert_line "Migration status: completed"
    run /usr/bin/python3 - "$D/q.stream" "$D/h.stream" <<'PY'
import sys
def caps(path):
    b = open(path, "rb").read()
    i = b.index(b"configuration/capabilities") - 2
    return b[i:b.index(b"x-ignore-shared", i) + len("x-ignore-shared")]
q, h = (caps(p) for p in sys.argv[1:3])
assert q == h, (q.hex(), h.hex())
PY
    assert_success
    # hop reads QEMU's stream: its RAM block list carries guest addresses.
    run "$HOP" inspect "$D/q.stream"
    assert_success
    assert_output --partial "machine pc-i440fx-7.2, complete"
}
