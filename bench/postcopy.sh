#!/usr/bin/env bash
# Postcopy live migration, hop against QEMU, side by side on this machine.
#
#   bench/postcopy.sh [-n RUNS] [-m MEM] [-c SMP] [-t SECS] [-w BYTES/S]
#                     [-a emu|kvm|auto] [-P]
#
# The guest: memtest (hop's build/machine/firmware/memtest.bin through
# `-kernel` for QEMU, -guest memtest for hop), MEM of RAM (default 1G;
# e.g. -m 256M for a short run), SMP vCPUs (default 1: memtest starts
# further vCPUs the way hop's machine wakes them, and under QEMU only the
# first one runs, and then it waits for the others for ever), which rewrites
# every page over and over.  Once it filled its RAM, it migrates over a
# unix socket with max-bandwidth BYTES/S (default 32M) and downtime-limit
# 1 ms, so precopy never converges; after SECS seconds (default 3)
# migrate-start-postcopy.  The destination starts with -incoming defer
# and gets postcopy-ram and postcopy-blocktime (QEMU measures blocktime
# only with it); postcopy itself runs without a bandwidth limit
# (max-postcopy-bandwidth 0 for both).
# Every row runs hop and QEMU alternately (A B B A ...), RUNS times each
# (default 3), with freshly started machines, and prints median (min-max)
# of: total time and downtime as the source's query-migrate has them; the
# switch as seen from outside (the source's STOP event to the
# destination's RESUME event, from the events' timestamps); blocktime
# (the time during which all vCPUs were blocked on missing pages, and the
# sum over vCPUs of each one's blocked time, both in ms as the
# destination's query-migrate has them); the mean request latency
# (postcopy-latency, µs: hop; QEMU 7.2 reports none); the pages asked for;
# memtest's passes per second at the source in the second before migrate
# (idle_pps) and at the destination while postcopy runs (postcopy_pps):
# how far the guest gets while its pages come, which blocktime does not say.
# postcopy_ms (the destination's postcopy-active to completed, from its
# MIGRATION events), and over that span the destination's vCPU thread's
# time asleep (vcpu_asleep_ms: neither running nor runnable, from /proc
# schedstat; every wait for a page, including those over before the fault
# thread read the fault, which blocktime misses) and running
# (vcpu_run_ms): the same outside measure for both tools.  QEMU gets
# -name NAME,debug-threads=on so that its vCPU thread has a name to find.
# -P: both tools with postcopy-preempt as well (QEMU 7.1+ has it), in a
# table of its own after the plain one.
# -a as in bench/migrate.sh (bench/lib-host.sh): without hardware
# virtualization, hop's emu beside QEMU's TCG.
# BENCH_TOOLS="hop" (or "qemu") runs one tool's rows only.
set -u
cd "$(dirname "$0")/.." || exit 1

RUNS=3
MEM=1G
SMP=1
AFTER=3
PREEMPT=
BW=32M
ACCEL=auto
while getopts "n:m:c:t:w:a:P" o; do
    case $o in
    n) RUNS=$OPTARG ;;
    m) MEM=$OPTARG ;;
    c) SMP=$OPTARG ;;
    t) AFTER=$OPTARG ;;
    w) BW=$OPTARG ;;
    a) ACCEL=$OPTARG ;;
    P) PREEMPT=1 ;;
    *) sed -n '2,5p' "$0"; exit 2 ;;
    esac
done
BW_BYTES=$(numfmt --from=iec "$BW") || { echo "bad bandwidth '$BW'" >&2; exit 2; }
make -s -j2 build/hop build/bench/host-limit >/dev/null || exit 1

HOP=${HOP:-$PWD/build/hop}
FW=$PWD/build/machine/firmware
PY=/usr/bin/python3
PCRUN="$PY $PWD/bench/pcrun.py"
QEMU=qemu-system-x86_64
HOST_LIMIT=$PWD/build/bench/host-limit
. bench/lib-host.sh
bench_pick_accel "$ACCEL" || exit 2
W=$(mktemp -d /tmp/hop-bench-postcopy.XXXXXX)
PIDS=()

cleanup() {
    bench_stop "${PIDS[@]}"
    PIDS=()
}
trap 'cleanup; rm -rf "$W"' EXIT

for f in "$HOP" "$FW/memtest.bin"; do
    [ -e "$f" ] || { echo "missing $f (run make first)" >&2; exit 1; }
done
TOOLS=${BENCH_TOOLS:-hop qemu}
case " $TOOLS " in
*" qemu "*) command -v "$QEMU" >/dev/null || { echo "no $QEMU" >&2; exit 1; } ;;
esac

# vm_cmd TOOL NAME [incoming]: the command line of a machine.
vm_cmd() {
    local tool=$1 name=$2 inc=${3:-}
    if [ "$tool" = hop ]; then
        printf '%s' "$HOP run -accel $HOP_ACCEL -m $MEM -smp $SMP -guest memtest -serial file:$W/$name.ser -monitor none -qmp unix:$W/$name.qmp,server,nowait"
    else
        printf '%s' "$QEMU -accel $QEMU_ACCEL -name $name,debug-threads=on -kernel $FW/memtest.bin -m $MEM -smp $SMP -display none -serial file:$W/$name.ser -monitor none -qmp unix:$W/$name.qmp,server,nowait"
    fi
    [ -n "$inc" ] && printf ' -incoming defer'
    return 0
}

# one_run TOOL [preempt]: prints pcrun's JSON; the machines go whatever
# happens.
one_run() {
    bench_vm_start "$1" dst incoming && bench_vm_start "$1" src &&
        bench_wait_serial src "memtest: filled" 300 &&
        timeout 900 $PCRUN "$W/src.qmp" "$W/dst.qmp" "unix:$W/mig.sock" \
            "$BW_BYTES" "$AFTER" ${2:-} --serial "$W/src.ser" "$W/dst.ser" \
            --dst-pid "${PIDS[0]}"
    local rc=$?
    cleanup
    return $rc
}

# stats FILE KEY: "median min max" of KEY over the JSON lines of FILE
# (vcpu_sum: the sum of vcpu_blocktime_ms).
stats() {
    $PY - "$1" "$2" <<'PY'
import json, statistics, sys
vals = []
for line in open(sys.argv[1]):
    d = json.loads(line)
    k = sys.argv[2]
    v = sum(d["vcpu_blocktime_ms"]) if k == "vcpu_sum" and d.get("vcpu_blocktime_ms") else d.get(k)
    if v is not None and k != "vcpu_sum" or k == "vcpu_sum" and d.get("vcpu_blocktime_ms"):
        vals.append(float(v))
fmt = "%.2f" if sys.argv[2] == "switch_ms" else "%.0f"
print(" ".join(fmt % x for x in (statistics.median(vals), min(vals), max(vals))) if vals else "- - -")
PY
}

echo "# hop vs QEMU postcopy migration, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
bench_host_facts | sed 's/^/# /'
echo "# hop $(git rev-parse --short HEAD 2>/dev/null), $RUNS runs each, alternating"
echo "# reproduce: ${BENCH_TOOLS:+BENCH_TOOLS=\"$BENCH_TOOLS\" }bench/postcopy.sh -n $RUNS -m $MEM -c $SMP -t $AFTER -w $BW -a $ACCEL${PREEMPT:+ -P}"

: >"$W/hop.jsonl"
: >"$W/qemu.jsonl"
: >"$W/hop-p.jsonl"
: >"$W/qemu-p.jsonl"
for i in $(seq "$RUNS"); do
    order="hop qemu"
    [ $((i % 2)) -eq 0 ] && order="qemu hop"
    for t in $order; do
        case " $TOOLS " in *" $t "*) ;; *) continue ;; esac
        for p in "" ${PREEMPT:+preempt}; do
            if ! r=$(one_run "$t" $p); then
                echo "  ($t ${p:-plain} run $i failed: $r)" >&2
                continue
            fi
            echo "$r" >>"$W/$t${p:+-p}.jsonl"
        done
    done
done

# table SUFFIX TITLE: the rows of hop's and QEMU's runs.
table() {
    echo
    echo "## memtest $MEM, $SMP vCPUs: precopy at $BW/s, downtime-limit 1 ms, migrate-start-postcopy after $AFTER s$2"
    echo "   hop:  $(vm_cmd hop src)  +  destination: same with -incoming defer"
    echo "   qemu: $(vm_cmd qemu src)  +  destination: same with -incoming defer"
    echo "   (hop runs: $(wc -l <"$W/hop$1.jsonl"), QEMU runs: $(wc -l <"$W/qemu$1.jsonl"))"
    printf '   %-22s %-24s %-24s %s\n' "" "hop median (min-max)" "QEMU median (min-max)" "hop/QEMU"
    for k in total_ms downtime_ms switch_ms blocktime_ms vcpu_sum latency_us postcopy_requests wall_ms idle_pps postcopy_pps postcopy_ms vcpu_asleep_ms vcpu_run_ms; do
        read -r -a h < <(stats "$W/hop$1.jsonl" "$k")
        read -r -a q < <(stats "$W/qemu$1.jsonl" "$k")
        label=$k
        [ "$k" = vcpu_sum ] && label="vcpu_blocktime_ms(sum)"
        printf '   %-22s %-24s %-24s %s\n' "$label" "${h[0]} (${h[1]}-${h[2]})" \
            "${q[0]} (${q[1]}-${q[2]})" "$(bench_ratio "${h[0]}" "${q[0]}")"
    done
}
table "" ""
[ -n "$PREEMPT" ] && table -p ", postcopy-preempt on both ends"
exit 0
