#!/usr/bin/env bash
# Migration that hands guest RAM over instead of copying it: hop's modes
# cpr-transfer and cpr-exec beside QEMU 7.2's x-ignore-shared, hop's
# release-ram, and both tools' normal migration, for guests with filled
# RAM.
#
#   bench/cpr.sh [-s SIZES] [-n RUNS] [-r ROW_REGEX] [-a emu|kvm|auto]
#                [-g running|stopped] [-P] [-N NICE] [-v]
#
# Rows, for every size of -s (comma-separated, default 256M,2G,8G):
#   hop cpr-transfer      -object memory-backend-memfd,share=on at both
#                         ends, migrate_set_parameter mode cpr-transfer
#   hop cpr-exec          the same backend; mode cpr-exec and `migrate
#                         memfd:`: the process execs a new hop in place
#                         (bench/cprrun.py exec; no second process)
#   QEMU x-ignore-shared  -object memory-backend-file,share=on with one
#                         mem-path file (in /dev/shm) that both processes
#                         map; capability x-ignore-shared on both ends
#   QEMU normal           default backend, max-bandwidth 10^12 bytes/s
#   hop normal            default backend, max-bandwidth 0 (unlimited)
#   hop release-ram       hop normal with capability release-ram (the
#                         source frees what it sent; QEMU 7.2 has the
#                         capability for postcopy only)
# over a unix: socket; destinations start with `-incoming defer` (and
# without -S, so they start the guest themselves), and the source gets
# `migrate` 1 s after the destination got migrate-incoming: a destination
# is ready long before in real use, and hop's scans its own RAM first
# (~10 ms per GiB here), which a source that came at once would wait for.
#
# Guests: hop's memtest firmware for both tools (through -kernel for QEMU)
# fills every page from 1 MiB up to the 4 GiB hole with non-zero data;
# the script waits for its "filled" mark (bounded: 120 s + 90 s per GiB).
# memtest is 32-bit code and cannot reach RAM above the hole (both tools
# put 3 GiB below it, the rest at 4 GiB), so for guests over 3 GiB the
# rest of RAM is written from outside, through /proc/PID/mem, with a
# non-zero pattern (bench/cprrun.py fill) before the first migration.
# Filling costs far more than migrating here (first touch of fresh memory
# is seconds per GiB on this kind of host), so every row fills one guest
# and then migrates it RUNS times in a chain, each time to a freshly
# started destination (the last destination is the next source; the old
# source quits before the next destination starts).
# During the migration: in the normal rows the guest is stopped first
# (QMP stop), as bench/migrate.sh's "filled" rows do: memtest rewrites
# every page in a loop and would never converge (release-ram stops the
# guest itself).  In the cpr-transfer and
# x-ignore-shared rows the guest keeps running (RAM is not copied, so what
# it writes does not matter), which is what gives a STOP on the source and
# a RESUME on the destination to measure the pause by; -g stopped stops
# it there too (then there is no outside downtime to measure).
#
# Per run (bench/cprrun.py migrate): total time and downtime as the tool
# reports them (query-migrate), and setup time (hop's cpr hand-over of
# the memory happens in it); outside_ms: from the source's STOP event to
# the destination's RESUME event, from the events' "timestamp" fields
# (gettimeofday in each process, microseconds; not the times this script
# read them); the peak of Pss(source) + Pss(destination), read from
# /proc/PID/smaps_rollup one pair after the other with 2 ms between pairs,
# from just before `migrate` until the destination runs, over guest RAM.
# A read walks the page tables of the process under its mmap lock, and
# shared memory here has 4 KiB pages: a pair takes 4-30 ms at 256 MiB and
# 45-145 ms at 8 GiB (pss_every_ms), takes a CPU, and holds up the process's
# own mmap calls (a thread starting) while it walks.  So in the shared
# rows the time figures come from runs without sampling and Pss from as
# many runs with it, alternating; in the normal rows (anonymous memory on
# huge pages, cheap to walk) every run samples and is timed, and reads
# RSS (/proc/PID/statm: O(1), so the two readings of a pair are
# microseconds apart; for private memory it is what the process holds
# alone) instead of Pss: with 1 GB/s moving from one process to the
# other, a Pss pair read milliseconds apart counts ~100 MB twice.
# -P: no Pss or RSS.  The cpr-exec row is one process whose RAM stays
# where it is: no memory figure; its pause is seen from the guest's vCPU
# threads' run time (bench/cprrun.py exec explains), and the chain
# execs the same process RUNS times.
# Pss counts only pages a process has mapped, and a process that took
# shared RAM over maps it page by page as the guest touches it: so that a
# chain's later runs start, like its first, from a source with all of RAM
# mapped, the Pss runs of the shared rows first read the source's RAM
# through /proc/PID/mem (cprrun --map-src), which maps it.
# -N NICE (a diagnostic, root only for a negative value): every thread of
# both processes runs at that nice value from `migrate` until the
# destination runs, which shows what the tools cost themselves on a host
# whose other load delays every thread hand-over.
# Rows run one after the other (memory for two 8 GiB rows at once is not
# there); their order reverses from one size to the next.  A row needs
# MemAvailable for its processes (normal rows twice the RAM), or is left
# out with a note.  Goals (for hop cpr-transfer): total <= 20 ms,
# downtime <= 2 ms (reported and outside), Pss peak <= 1.1 x RAM.
set -u
cd "$(dirname "$0")/.." || exit 1

RUNS=2
SIZES=256M,2G,8G
ROWS=.
ACCEL=auto
GUEST=running
NOPSS=
NICE=
VERBOSE=
while getopts "n:s:r:a:g:PN:v" o; do
    case $o in
    n) RUNS=$OPTARG ;;
    s) SIZES=$OPTARG ;;
    r) ROWS=$OPTARG ;;
    a) ACCEL=$OPTARG ;;
    g) GUEST=$OPTARG ;;
    P) NOPSS=--no-pss ;;
    N) NICE=$OPTARG ;;
    v) VERBOSE=1 ;;
    *) sed -n '6,7p' "$0"; exit 2 ;;
    esac
done
case $GUEST in
running | stopped) ;;
*) echo "unknown guest mode '$GUEST' (running or stopped)" >&2; exit 2 ;;
esac
make -s -j2 build/hop build/bench/host-limit >/dev/null || exit 1

HOP=${HOP:-$PWD/build/hop}
FW=$PWD/build/machine/firmware
PY=/usr/bin/python3
CPRRUN="$PY $PWD/bench/cprrun.py"
QEMU=qemu-system-x86_64
HOST_LIMIT=$PWD/build/bench/host-limit
. bench/lib-host.sh
bench_pick_accel "$ACCEL" || exit 2
ACCEL=$HOP_ACCEL
QACCEL=$QEMU_ACCEL
W=$(mktemp -d /tmp/hop-bench-cpr.XXXXXX)
SHM=$(mktemp -d /dev/shm/hop-bench-cpr.XXXXXX)
declare -A PID

vm_kill() {
    local n=$1
    [ -n "${PID[$n]:-}" ] || return 0
    kill "${PID[$n]}" 2>/dev/null
    wait "${PID[$n]}" 2>/dev/null
    unset "PID[$n]"
}

cleanup() {
    local n
    for n in "${!PID[@]}"; do
        vm_kill "$n"
    done
    rm -f "$SHM/ram"
}
trap 'cleanup; rm -rf "$W" "$SHM"' EXIT

for f in "$HOP" "$FW/memtest.bin"; do
    [ -e "$f" ] || { echo "missing $f (run make first)" >&2; exit 1; }
done
command -v "$QEMU" >/dev/null || { echo "no $QEMU" >&2; exit 1; }

# The rows: tool, memory backend, what cprrun gets, label.
ROW_IDS=(hop-cpr hop-exec qemu-xis qemu-normal hop-normal hop-release)
declare -A TOOL=([hop-cpr]=hop [hop-exec]=hop [qemu-xis]=qemu [qemu-normal]=qemu
    [hop-normal]=hop [hop-release]=hop)
declare -A BACKEND=([hop-cpr]=memfd [hop-exec]=memfd [qemu-xis]=file
    [qemu-normal]="" [hop-normal]="" [hop-release]="")
declare -A MIGARGS=(
    [hop-cpr]="--param mode=cpr-transfer --bw 0"
    [hop-exec]=""
    [qemu-xis]="--cap x-ignore-shared --bw 1000000000000"
    [qemu-normal]="--stop --bw 1000000000000 --rss"
    [hop-normal]="--stop --bw 0 --rss"
    [hop-release]="--stop --bw 0 --rss --cap release-ram")
declare -A LABEL=(
    [hop-cpr]="hop cpr-transfer"
    [hop-exec]="hop cpr-exec"
    [qemu-xis]="QEMU x-ignore-shared"
    [qemu-normal]="QEMU normal"
    [hop-normal]="hop normal"
    [hop-release]="hop release-ram")
if [ "$GUEST" = stopped ]; then
    MIGARGS[hop-cpr]+=" --stop"
    MIGARGS[hop-exec]+=" --stop"
    MIGARGS[qemu-xis]+=" --stop"
fi

# vm_cmd ROW NAME MEM [incoming]: the command line of a machine.
vm_cmd() {
    local row=$1 name=$2 mem=$3 inc=${4:-}
    if [ "${TOOL[$row]}" = hop ]; then
        printf '%s' "$HOP run -accel $ACCEL -m $mem -guest memtest -serial file:$W/$name.ser -monitor none -qmp unix:$W/$name.qmp,server,nowait"
    else
        printf '%s' "$QEMU -accel $QACCEL -kernel $FW/memtest.bin -m $mem -display none -serial file:$W/$name.ser -monitor none -qmp unix:$W/$name.qmp,server,nowait"
    fi
    case ${BACKEND[$row]} in
    memfd) printf ' -object memory-backend-memfd,id=mem,size=%s,share=on -machine memory-backend=mem' "$mem" ;;
    file) printf ' -object memory-backend-file,id=mem,size=%s,share=on,mem-path=%s -machine memory-backend=mem' "$mem" "$SHM/ram" ;;
    esac
    [ -n "$inc" ] && printf ' -incoming defer'
    return 0
}

vm_start() {
    local name=$2
    rm -f "$W/$name.qmp" "$W/$name.ser"
    # shellcheck disable=SC2046,SC2091
    $(vm_cmd "$@") </dev/null >"$W/$name.out" 2>&1 &
    PID[$name]=$!
    local n=0
    until [ -S "$W/$name.qmp" ]; do
        sleep 0.05
        n=$((n + 1))
        if [ $n -gt 600 ] || ! kill -0 "${PID[$name]}" 2>/dev/null; then
            echo "$1 $name did not start: $(tail -3 "$W/$name.out")" >&2
            return 1
        fi
    done
}

mem_available() { awk '/^MemAvailable:/ { printf "%.0f\n", $2 * 1024 }' /proc/meminfo; }

# chain ROW MEM BYTES: fill one guest, migrate it in a chain; appends
# cprrun's JSON lines to $W/ROW.jsonl.  Runs tagged timed=1 give the
# time figures; runs with Pss sampling give pss_*.  In the shared rows
# sampling would slow the run it measures (see above), so RUNS runs
# without it alternate with RUNS runs with it; in the normal rows (memory
# on huge pages, cheap to walk) every run samples and is timed.
chain() {
    local row=$1 mem=$2 bytes=$3
    local t0 fill_s pages filled_to out_s=0 src=m0 dst i kinds=() args
    t0=$(date +%s%N)
    vm_start "$row" m0 "$mem" || return 1
    bench_wait_serial m0 "memtest: filled" $((120 + 90 * bytes / (1 << 30))) || return 1
    pages=$(sed -n 's/^memtest: \([0-9]*\) pages.*/\1/p' "$W/m0.ser")
    filled_to=$(((1 << 20) + pages * 4096))
    # (QEMU keeps the top 128 KiB below the hole from memtest: left so.)
    if [ $((bytes - filled_to)) -gt $((1 << 20)) ]; then
        out_s=$($CPRRUN fill "${PID[m0]}" "$bytes" "$filled_to") || return 1
    fi
    fill_s=$(((($(date +%s%N) - t0) / 1000000 + 50) / 100))
    fill_s="${fill_s%?}.${fill_s: -1}"
    if [ "$row" = hop-exec ]; then
        for i in $(seq "$RUNS"); do
            # shellcheck disable=SC2086
            if ! $CPRRUN exec "$W/m0.qmp" "${PID[m0]}" ${MIGARGS[$row]} \
                --tag timed=1 --tag fill_s="$fill_s" --tag outside_fill_s="$out_s" \
                >>"$W/$row.jsonl"; then
                echo "  ($row run $i at $mem failed: $(tail -1 "$W/$row.jsonl"))" >&2
                return 1
            fi
            sleep 1
        done
        vm_kill m0
        return 0
    fi
    for i in $(seq "$RUNS"); do
        if [ -n "$NOPSS" ]; then
            kinds+=(time)
        elif [ -z "${BACKEND[$row]}" ]; then
            kinds+=(both)
        else
            kinds+=(time pss)
        fi
    done
    i=0
    for kind in "${kinds[@]}"; do
        i=$((i + 1))
        dst=m$i
        case $kind in
        time) args="--no-pss --tag timed=1" ;;
        both) args="--tag timed=1" ;;
        pss) args="--map-src --tag timed=0" ;;
        esac
        vm_start "$row" "$dst" "$mem" incoming || return 1
        # shellcheck disable=SC2086
        if ! $CPRRUN migrate "$W/$src.qmp" "$W/$dst.qmp" "unix:$W/$dst.mig" \
            "${PID[$src]}" "${PID[$dst]}" "$bytes" ${MIGARGS[$row]} $args \
            ${NICE:+--nice $NICE} --tag fill_s="$fill_s" --tag outside_fill_s="$out_s" \
            >>"$W/$row.jsonl"; then
            echo "  ($row run $i at $mem failed: $(tail -1 "$W/$row.jsonl"))" >&2
            return 1
        fi
        vm_kill "$src"
        src=$dst
    done
    vm_kill "$src"
    rm -f "$SHM/ram"
}

# table MEM BYTES: the figures of one size from $W/*.jsonl.
table() {
    $PY - "$W" "$1" "$2" "${ROW_IDS[@]}" <<'PY'
import json, os, statistics, sys
w, mem, nbytes, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
label = {"hop-cpr": "hop cpr-transfer", "hop-exec": "hop cpr-exec",
         "qemu-xis": "QEMU x-ignore-shared", "qemu-normal": "QEMU normal",
         "hop-normal": "hop normal", "hop-release": "hop release-ram"}
runs = {}
for r in rows:
    p = os.path.join(w, r + ".jsonl")
    runs[r] = [json.loads(l) for l in open(p)] if os.path.exists(p) else []

PSS_KEYS = ("pss_peak_ratio", "pss_interval_ms")

def vals(r, k, timed=1):
    """k over the runs timed (1) or sampled only (0); Pss over all."""
    return [float(d[k]) for d in runs[r] if d.get(k) is not None and
            (k in PSS_KEYS or d.get("timed", 1) == timed)]

def med(r, k):
    v = vals(r, k)
    return statistics.median(v) if v else None

def fmt(x, nd):
    return "-" if x is None else "%.*f" % (nd, x)

def cell(r, k, nd, timed=1):
    v = vals(r, k, timed)
    if not v:
        return "-"
    m = statistics.median(v)
    # The median of an even number of whole numbers may end in .5.
    mnd = 1 if nd == 0 and m != round(m) and all(x == round(x) for x in v) else nd
    return "%s (%s-%s)" % (fmt(m, mnd), fmt(min(v), nd), fmt(max(v), nd))

COLS = [("total_ms", "total_ms", 0), ("downtime_ms", "downtime_ms", 0),
        ("outside_ms", "outside_ms", 2), ("mem_peak/RAM", "pss_peak_ratio", 2)]
DETAIL = [("setup_ms", "setup_ms", 0, 1), ("dst_ms", "dst_ms", 0, 1),
          ("MB sent", "mb", 0, 1), ("fill_s", "fill_s", 1, 1),
          ("pss_every_ms", "pss_interval_ms", 0, 1),
          ("Pss-run total_ms", "total_ms", 0, 0),
          ("Pss-run outside_ms", "outside_ms", 2, 0)]
for r in rows:
    for d in runs[r]:
        if d.get("transferred") is not None:
            d["mb"] = d["transferred"] / 1e6
print()
print("## %s guest" % mem)
print(("   %-30s %6s " % ("", "runs") +
       " ".join("%-21s" % c[0] for c in COLS)).rstrip())
for r in rows:
    print(("   %-30s %6s " % (label[r], "%d+%d" % (
               len([d for d in runs[r] if d.get("timed", 1) == 1]),
               len([d for d in runs[r] if d.get("pss_samples")]))) +
           " ".join("%-21s" % cell(r, k, nd) for _, k, nd in COLS)).rstrip())

def ratio(a, b, k):
    x, y = med(a, k), med(b, k)
    return "%.3f" % (x / y) if x is not None and y else "-"

for a, b, name in (("hop-cpr", "qemu-xis", "hop cpr / QEMU x-ignore-shared"),
                   ("hop-exec", "qemu-xis", "hop exec / QEMU x-ignore-shared"),
                   ("hop-cpr", "qemu-normal", "hop cpr / QEMU normal"),
                   ("hop-normal", "qemu-normal", "hop normal / QEMU normal"),
                   ("hop-release", "qemu-normal", "hop release / QEMU normal")):
    print(("   %-37s " % ("ratio " + name) +
           " ".join("%-21s" % ratio(a, b, k) for _, k, _ in COLS)).rstrip())

goals = []
for what, k, limit, nd in (("total", "total_ms", 20, 0),
                           ("downtime", "downtime_ms", 2, 0),
                           ("outside", "outside_ms", 2, 2),
                           ("Pss", "pss_peak_ratio", 1.1, 2)):
    v = vals("hop-cpr", k)
    if not v:
        goals.append("%s <= %g: -" % (what, limit))
        continue
    m = statistics.median(v)
    mnd = 1 if nd == 0 and m != round(m) else nd
    goals.append("%s <= %g: %s (median %s, max %s)" % (
        what, limit, "met" if m <= limit else "MISSED", fmt(m, mnd),
        fmt(max(v), nd)))
print("   goals for hop cpr-transfer: " + "; ".join(goals[:2]) + ";")
print("                               " + "; ".join(goals[2:]))
print(("   %-37s " % "detail" +
       " ".join("%-19s" % c[0] for c in DETAIL)).rstrip())
for r in rows:
    print(("   %-37s " % label[r] +
           " ".join("%-19s" % cell(r, k, nd, t) for _, k, nd, t in DETAIL)).rstrip())
PY
}

echo "# hop cpr-transfer vs QEMU x-ignore-shared and normal migration, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
bench_host_facts | sed 's/^/# /'
echo "# hop $(git rev-parse --short HEAD 2>/dev/null), $RUNS runs per row (one filled guest migrated in a chain)," \
    "guest ${GUEST} during cpr-transfer/x-ignore-shared, stopped during normal; Pss sampling $([ -n "$NOPSS" ] && echo off || echo on)"
echo "# outside_ms: source STOP -> destination RESUME event timestamps (cpr-exec: the gap in the vCPU threads' run time)"
echo "# mem_peak/RAM: peak of Pss(src)+Pss(dst) (shared rows) or RSS(src)+RSS(dst) (private rows) / guest RAM"
echo "# reproduce: bench/cpr.sh -s $SIZES -n $RUNS -a $ACCEL -g $GUEST${NOPSS:+ -P}${NICE:+ -N $NICE}"

for row in "${ROW_IDS[@]}"; do
    other="+ destination: the same with -incoming defer"
    [ "$row" = hop-exec ] && other="(execs a new hop in place)"
    printf '# %-20s %s %s\n' "${LABEL[$row]}:" \
        "$(vm_cmd "$row" src MEM | sed "s|$W|WORKDIR|g; s|$SHM|/dev/shm/DIR|g")" "$other"
done

START=$SECONDS
IFS=, read -r -a SIZE_LIST <<<"$SIZES"
k=0
for mem in "${SIZE_LIST[@]}"; do
    bytes=$(numfmt --from=iec "$mem") || exit 2
    order=("${ROW_IDS[@]}")
    if [ $((k % 2)) -eq 1 ]; then
        order=(hop-release hop-normal qemu-normal qemu-xis hop-exec hop-cpr)
    fi
    k=$((k + 1))
    rm -f "$W"/*.jsonl
    for row in "${order[@]}"; do
        [[ ${LABEL[$row]} =~ $ROWS ]] || continue
        need=$((bytes + (1 << 30)))
        case $row in *normal | hop-release) need=$((2 * bytes + (1 << 30))) ;; esac
        avail=$(mem_available)
        if [ "$avail" -lt "$need" ]; then
            echo "  (${LABEL[$row]} at $mem left out: needs $((need >> 20)) MiB, MemAvailable $((avail >> 20)) MiB)" >&2
            continue
        fi
        if ! chain "$row" "$mem" "$bytes"; then
            echo "  (${LABEL[$row]} at $mem: chain broken off)" >&2
        fi
        cleanup
    done
    table "$mem" "$bytes"
    if [ -n "$VERBOSE" ]; then
        for row in "${ROW_IDS[@]}"; do
            [ -e "$W/$row.jsonl" ] && sed "s/^/   $row: /" "$W/$row.jsonl"
        done
    fi
done
echo
echo "# took $(((SECONDS - START) / 60)) min $(((SECONDS - START) % 60)) s, load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
