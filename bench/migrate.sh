#!/usr/bin/env bash
# Live migration, hop against QEMU, side by side on this machine.
#
#   bench/migrate.sh [-n RUNS] [-r ROW_REGEX] [-a emu|kvm|auto]
#                    [-b ram|memfd|file]
#
# Every row runs hop and QEMU alternately (A B B A A B ...), RUNS times
# each (default 3; an even number gives each tool the first place equally
# often), each run with a freshly started source and destination,
# and prints the median with min and max of: total time and downtime as
# the tool reports them (query-migrate), throughput (transferred bytes /
# total time, MB/s), and the wall time from the migrate command to the
# completed state, plus the ratio hop/QEMU of the medians.
#
# Guests: the same multiboot firmware for both, hop's build/machine/
# firmware/memtest.bin or counter.bin through `-kernel`.  "filled" rows
# wait for memtest's "filled" mark, then stop the guest (QMP stop) before
# migrating: RAM full of non-zero data that does not change, so the rows
# measure moving memory and nothing else.  "zero" rows run counter, which
# touches a few pages.  "block" rows add a qcow2 drive of the row's
# DISK size (a 5th argument, default 256M) filled with data (qemu-io) and
# migrate with blk: true (QEMU 7.2's migrate -b) to an empty image of the
# same size; the guest is stopped as in "filled" rows, and the throughput
# counts the disk's bytes too.  "dirty" rows migrate memtest while it runs (it
# rewrites every page over and over) with auto-converge on.
# Transport: unix sockets; destinations start with -incoming defer so
# capabilities (multifd) can be set on them first.  "file" rows save with
# hop's file: URI (QEMU 7.2 has none: exec:cat > FILE) and load with
# -incoming defer + migrate-incoming file: (QEMU: exec:cat FILE).
# Bandwidth: hop max-bandwidth 0 (unlimited), QEMU 1 TB/s.
# -a picks the accelerators (bench/lib-host.sh): auto (the default) runs
# both under KVM only where it has hardware virtualization, else hop's emu
# beside QEMU's TCG; in filled rows the source is stopped, so this only
# changes how fast the guest fills memory.
# -b puts guest RAM of both tools on the same memory backend (-object
# memory-backend-*,... -machine memory-backend=mem); default: each tool's
# default (anonymous memory with MADV_HUGEPAGE for both).
# Host limit: before every pair of runs, bench/host-limit streams the
# row's RAM size from filled memory through a unix socket into fresh
# memory, both of the row's backend (file rows: writes it to a file, reads
# it back into fresh memory); the row prints its median beside the tools'
# figures.
set -u
cd "$(dirname "$0")/.." || exit 1

RUNS=3
ROWS=.
ACCEL=auto
BACKEND=
while getopts "n:r:a:b:" o; do
    case $o in
    n) RUNS=$OPTARG ;;
    r) ROWS=$OPTARG ;;
    a) ACCEL=$OPTARG ;;
    b) BACKEND=$OPTARG ;;
    *) sed -n '2,5p' "$0"; exit 2 ;;
    esac
done
case $BACKEND in
"" | ram | memfd | file) ;;
*) echo "unknown backend '$BACKEND' (ram, memfd or file)" >&2; exit 2 ;;
esac
make -s -j2 build/hop build/bench/host-limit >/dev/null || exit 1

HOP=${HOP:-$PWD/build/hop}
FW=$PWD/build/machine/firmware
PY=/usr/bin/python3
MIGRUN="$PY $PWD/bench/migrun.py"
QEMU=qemu-system-x86_64
HOST_LIMIT=$PWD/build/bench/host-limit
. bench/lib-host.sh
bench_pick_accel "$ACCEL" || exit 2
ACCEL=$HOP_ACCEL
QACCEL=$QEMU_ACCEL
W=$(mktemp -d /tmp/hop-bench-migrate.XXXXXX)
PIDS=()

cleanup() {
    bench_stop "${PIDS[@]}"
    PIDS=()
}
trap 'cleanup; rm -rf "$W"' EXIT

for f in "$HOP" "$FW/memtest.bin" "$FW/counter.bin"; do
    [ -e "$f" ] || { echo "missing $f (run make first)" >&2; exit 1; }
done
command -v "$QEMU" >/dev/null || { echo "no $QEMU" >&2; exit 1; }

# backend_spec MEM: the -object value for -b, empty without it.
backend_spec() {
    [ -n "$BACKEND" ] || return 0
    local extra=
    [ "$BACKEND" = file ] && extra=",mem-path=$W"
    printf 'memory-backend-%s,id=mem,size=%s%s' "$BACKEND" "$1" "$extra"
}

# vm_cmd TOOL NAME MEM FIRMWARE [incoming]: the command line of a machine.
vm_cmd() {
    local tool=$1 name=$2 mem=$3 fw=$4 inc=${5:-}
    if [ "$tool" = hop ]; then
        local g=memtest
        [ "$fw" = counter ] && g=counter
        printf '%s' "$HOP run -accel $ACCEL -m $mem -guest $g -serial file:$W/$name.ser -monitor none -qmp unix:$W/$name.qmp,server,nowait"
    else
        printf '%s' "$QEMU -accel $QACCEL -kernel $FW/$fw.bin -m $mem -display none -serial file:$W/$name.ser -monitor none -qmp unix:$W/$name.qmp,server,nowait"
    fi
    [ -n "$BACKEND" ] &&
        printf ' -object %s -machine memory-backend=mem' "$(backend_spec "$mem")"
    [ -n "$inc" ] && printf ' -S -incoming defer'
    [ -n "${DRIVE:-}" ] && printf ' -drive file=%s,format=qcow2' "$DRIVE"
    return 0
}

# one_run TOOL KIND MEM [caps/params...]: prints migrun's JSON.  It
# runs in a subshell: whatever happens, the machines it started go.
one_run() {
    run_inner "$@"
    local rc=$?
    cleanup
    return $rc
}

run_inner() {
    local tool=$1 kind=$2 mem=$3
    shift 3
    local fw=memtest mark="memtest: filled" stop=--stop bw
    case $kind in
    zero) fw=counter mark="counter: 2" stop= ;;
    dirty) stop= ;;
    esac
    if [ "$tool" = hop ]; then bw=0; else bw=1000000000000; fi
    local blk=
    if [ "$kind" = block ]; then
        blk=--blk
        qemu-img create -q -f qcow2 "$W/src.qcow2" "$BLOCK_DISK"
        qemu-io -f qcow2 -c "write -P 0x5a 0 $BLOCK_DISK" "$W/src.qcow2" >/dev/null
        qemu-img create -q -f qcow2 "$W/dst.qcow2" "$BLOCK_DISK"
    fi
    DRIVE=${blk:+$W/src.qcow2} bench_vm_start "$tool" src "$mem" "$fw" || return 1
    bench_wait_serial src "$mark" 120 || return 1
    if [ "$kind" = file ]; then
        rm -f "$W/mig.file"
        local out_uri="file:$W/mig.file" in_uri="file:$W/mig.file"
        if [ "$tool" = qemu ]; then
            out_uri="exec:cat > $W/mig.file" in_uri="exec:cat $W/mig.file"
        fi
        local save load
        save=$($MIGRUN save "$W/src.qmp" "$out_uri" $stop --param max-bandwidth=$bw "$@")
        cleanup
        bench_vm_start "$tool" dst "$mem" "$fw" incoming || return 1
        load=$($MIGRUN load "$W/dst.qmp" "$in_uri")
        cleanup
        # The row's figures: saving, then loading (wall time of each).
        $PY -c 'import json,sys; s=json.loads(sys.argv[1]); l=json.loads(sys.argv[2]); s["load_ms"]=l["wall_ms"]; s["roundtrip_ms"]=s["wall_ms"]+l["wall_ms"]; print(json.dumps(s))' "$save" "$load"
        return 0
    fi
    DRIVE=${blk:+$W/dst.qcow2} bench_vm_start "$tool" dst "$mem" "$fw" incoming || return 1
    $MIGRUN incoming "$W/dst.qmp" "unix:$W/mig.sock" "$@" || return 1
    $MIGRUN save "$W/src.qmp" "unix:$W/mig.sock" $stop $blk --param max-bandwidth=$bw "$@"
    cleanup
}

# stats FILE KEY: "median min max" of KEY over the JSON lines of FILE.
stats() {
    $PY - "$1" "$2" <<'PY'
import json, statistics, sys
vals = []
for line in open(sys.argv[1]):
    d = json.loads(line)
    k = sys.argv[2]
    if k == "MBps":
        v = d["transferred"] / d["total_ms"] / 1000 if d.get("total_ms") and d.get("transferred") else None
    else:
        v = d.get(k)
    if v is not None:
        vals.append(float(v))
if vals:
    print("%.0f %.0f %.0f" % (statistics.median(vals), min(vals), max(vals)))
else:
    print("- - -")
PY
}

# limit_run KIND MEM: one host-limit measurement as a JSON line.
limit_run() {
    local kind=$1 mem=$2 spec
    spec=$(backend_spec "$mem")
    if [ "$kind" = file ]; then
        local save load
        save=$(host_limit_ms save write_ms "$mem" "$W/limit.file" ${spec:+"$spec"})
        load=$(host_limit_ms load load_ms "$mem" "$W/limit.file" ${spec:+"$spec"})
        rm -f "$W/limit.file"
        if [ "$save" = - ] || [ "$load" = - ]; then
            echo '{}'
        else
            echo "{\"wall_ms\": $save, \"load_ms\": $load, \"roundtrip_ms\": $((save + load))}"
        fi
    else
        local ms
        ms=$(host_limit_ms stream stream_ms "$mem" ${spec:+"$spec"})
        [ "$ms" = - ] && ms=null
        echo "{\"total_ms\": $ms, \"wall_ms\": $ms}"
    fi
}

# row NAME KIND MEM [caps/params...]
row() {
    local name=$1 kind=$2 mem=$3
    shift 3
    [[ $name =~ $ROWS ]] || return 0
    local fw=memtest
    [ "$kind" = zero ] && fw=counter
    : >"$W/hop.jsonl"
    : >"$W/qemu.jsonl"
    : >"$W/limit.jsonl"
    local i t
    for i in $(seq "$RUNS"); do
        # Memory a process just freed is cheap to touch again on some
        # hosts: who runs first after the limit's probe alternates.
        case $kind in zero | dirty) ;; *) limit_run "$kind" "$mem" >>"$W/limit.jsonl" ;; esac
        local order="hop qemu"
        [ $((i % 2)) -eq 0 ] && order="qemu hop"
        for t in $order; do
            local r
            if ! r=$(one_run "$t" "$kind" "$mem" "$@"); then
                echo "  ($t run $i of '$name' failed: $r)" >&2
                cleanup
                continue
            fi
            echo "$r" >>"$W/$t.jsonl"
        done
    done
    echo
    echo "## $name"
    local drive=
    [ "$kind" = block ] && drive=$W/src.qcow2
    echo "   hop:  $(DRIVE=$drive vm_cmd hop src "$mem" "$fw")  +  destination: same with -S -incoming defer"
    echo "   qemu: $(DRIVE=$drive vm_cmd qemu src "$mem" "$fw")  +  destination: same with -S -incoming defer"
    echo "   migrate settings: $kind${*:+ $*}  (hop runs: $(wc -l <"$W/hop.jsonl"), QEMU runs: $(wc -l <"$W/qemu.jsonl"))"
    local keys="total_ms downtime_ms MBps wall_ms"
    [ "$kind" = dirty ] && keys="$keys throttle"
    [ "$kind" = file ] && keys="wall_ms load_ms roundtrip_ms MBps"
    printf '   %-14s %-22s %-22s %-9s %-20s %s\n' "" "hop median (min-max)" \
        "QEMU median (min-max)" "hop/QEMU" "host limit (min-max)" "hop/limit"
    local k
    for k in $keys; do
        local h q l lim= hl=
        read -r -a h < <(stats "$W/hop.jsonl" "$k")
        read -r -a q < <(stats "$W/qemu.jsonl" "$k")
        read -r -a l < <(stats "$W/limit.jsonl" "$k")
        if [ "${l[0]}" != - ]; then
            lim="${l[0]} (${l[1]}-${l[2]})"
            hl=$(bench_ratio "${h[0]}" "${l[0]}")
        fi
        printf '   %-14s %-22s %-22s %-9s %-20s %s\n' "$k" "${h[0]} (${h[1]}-${h[2]})" \
            "${q[0]} (${q[1]}-${q[2]})" "$(bench_ratio "${h[0]}" "${q[0]}")" "$lim" "$hl"
    done
}

echo "# hop vs QEMU live migration, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
bench_host_facts | sed 's/^/# /'
echo "# hop $(git rev-parse --short HEAD 2>/dev/null), $RUNS runs each, alternating; memory backend: ${BACKEND:-default}"
echo "# total/downtime/wall in ms, MBps = transferred bytes / total time in MB/s"
echo "# reproduce one row: bench/migrate.sh -n $RUNS -a $ACCEL${BACKEND:+ -b $BACKEND} -r 'ROW NAME'"

row "filled 1G, default downtime (300 ms)" filled 1G
row "filled 1G, downtime 30 ms" filled 1G --param downtime-limit=30
row "filled 4G, default downtime (300 ms)" filled 4G
row "filled 4G, downtime 30 ms" filled 4G --param downtime-limit=30
row "zero-filled 1G" zero 1G
row "dirtying 1G, auto-converge" dirty 1G --cap auto-converge
row "file 1G: save to a file, load it back" file 1G
BLOCK_DISK=256M
row "block migration (migrate -b), 256M disk, filled 256M" block 256M
row "multifd 2 channels, filled 1G" filled 1G --cap multifd --param multifd-channels=2
row "multifd 4 channels, filled 1G" filled 1G --cap multifd --param multifd-channels=4
