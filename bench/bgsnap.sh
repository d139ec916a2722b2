#!/usr/bin/env bash
# Guest speed during a background snapshot, hop beside QEMU (not a test: it
# prints figures).
#   bench/bgsnap.sh [RUNS] [MEM] [emu|kvm|auto]     (BENCH_TOOLS="hop" for one tool)
# Both run the memtest firmware, which prints '.' on its serial port after
# every pass over RAM (a pass adds one to a byte of every page, so each
# pass writes every page: the worst case for write tracking).  Once it has
# filled RAM, each run (bench/bgrun.py, over QMP) measures the pass rate
# for two seconds without any save, then saves with the
# background-snapshot capability to a file (QEMU 7.2: exec:cat, it has no
# file: URI) and measures the pass rate from the migrate command to the
# MIGRATION event that says completed, on a guest of its own.  It prints
# per tool the medians: save time, passes per second idle and during the
# save, and the ratio of the two in each run (the goal: hop keeps at
# least half).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
mem=${2:-1G}
. bench/lib-host.sh
make -s -j2 build/hop >/dev/null
fw=build/machine/firmware/memtest.bin
dir=$(mktemp -d "${TMPDIR:-/tmp}/hop-bgsnap-bench.XXXXXX")
pids=()
cleanup() {
    bench_stop "${pids[@]}"
    [ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

bench_pick_accel "${3:-auto}" || exit 2
bench_host_facts

start() { # TOOL
    rm -f "$dir/$1.qmp" "$dir/$1.ser"
    if [ "$1" = hop ]; then
        build/hop run -accel "$HOP_ACCEL" -m "$mem" \
            -qmp "unix:$dir/hop.qmp,server,nowait" -monitor none \
            -serial "file:$dir/hop.ser" >"$dir/hop.out" 2>&1 &
    else
        qemu-system-x86_64 -accel "$QEMU_ACCEL" -m "$mem" -kernel "$fw" \
            -display none -nodefaults -serial "file:$dir/qemu.ser" \
            -qmp "unix:$dir/qemu.qmp,server,nowait" >"$dir/qemu.out" 2>&1 &
    fi
    pids+=($!)
    local n=0
    until grep -q 'memtest: filled' "$dir/$1.ser" 2>/dev/null; do
        sleep 0.1
        n=$((n + 1))
        [ $n -lt 1200 ] || { echo "$1: memtest did not fill RAM" >&2; exit 1; }
    done
}

# One run: prints "save_ms idle_pps during_pps".
measure() { # TOOL RUN
    local t=$1 f=$dir/$1.$2.snap uri
    if [ "$t" = hop ]; then uri=file:$f; else uri="exec:cat > $f"; fi
    timeout 600 python3 bench/bgrun.py "$dir/$t.qmp" "$dir/$t.ser" "$uri"
    rm -f "$f"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-6s %-6s %10s %14s %16s %8s\n' tool mem save_ms idle_passes/s during_passes/s ratio
for t in ${BENCH_TOOLS:-hop qemu}; do
    : >"$dir/$t.rows"
    for r in $(seq "$runs"); do
        # A fresh guest each run: after a save QEMU 7.2's guest stays
        # slow (its RAM is left in small pages), which would skew the
        # next run's idle rate.
        start "$t"
        measure "$t" "$r" >>"$dir/$t.rows"
        bench_stop "${pids[@]}"
        pids=()
    done
    save=$(awk '{ print $1 }' "$dir/$t.rows" | median)
    idle=$(awk '{ print $2 }' "$dir/$t.rows" | median)
    during=$(awk '{ print $3 }' "$dir/$t.rows" | median)
    ratio=$(awk '{ printf "%.2f\n", $2 ? $3 / $2 : 0 }' "$dir/$t.rows" | median)
    printf '%-6s %-6s %10s %14s %16s %8s\n' "$t" "$mem" "$save" "$idle" "$during" "$ratio"
done
