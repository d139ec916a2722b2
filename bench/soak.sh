#!/usr/bin/env bash
# Endurance: many migrations and snapshot cycles, watching for leaks.
# Not a test (it takes long); it prints figures and exits non-zero when a
# check fails or a process's RSS or open descriptors keep growing.
#
#   bench/soak.sh [-m MIGRATIONS] [-s SNAPSHOT_CYCLES] [-g MEM]
#
# migrations (default 200): two processes pass a running memtest guest
#   back and forth (emu): the destination starts with -S -incoming, takes
#   the guest, its RAM passes the memtest check, it resumes; the old
#   source quits and a fresh process waits for the next move.  Beside
#   them, one long-lived source is migrated again and again (cont after
#   each completed migration) to fresh destinations: its RSS and open
#   descriptors are sampled every round.
# snapshot cycles (default 300): one machine with one qcow2 drive runs
#   savevm, loadvm and delvm in a loop; RSS, descriptors and the image
#   size are sampled; qemu-img check runs at the end.
set -u
cd "$(dirname "$0")/.." || exit 1

MIGS=200
CYCLES=300
MEM=32M
while getopts "m:s:g:" o; do
    case $o in
    m) MIGS=$OPTARG ;;
    s) CYCLES=$OPTARG ;;
    g) MEM=$OPTARG ;;
    *) sed -n '5,6p' "$0"; exit 2 ;;
    esac
done

. bench/lib-host.sh
HOP=${HOP:-$PWD/build/hop}
CHECK=$PWD/build/tests/tools/memtest-check
for f in "$HOP" "$CHECK"; do
    [ -x "$f" ] || { echo "missing $f (make && make tools)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/hop-soak.XXXXXX)
export HOP_CATALOG=$W/catalog.db
BYTES=$(numfmt --from=iec "$MEM")
PIDS=()
cleanup() {
    bench_stop "${PIDS[@]}"
    [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

fail() {
    echo "soak: $*" >&2
    exit 1
}

# start NAME ARGS...: a machine with its monitor on $W/NAME.mon.
start() {
    local name=$1
    shift
    rm -f "$W/$name.mon" "$W/$name.serial"
    "$HOP" run -m "$MEM" -monitor "unix:$W/$name.mon,server,nowait" \
        -serial "file:$W/$name.serial" "$@" >"$W/$name.out" 2>&1 &
    PIDS+=($!)
    eval "PID_$name=$!"
    local i
    for i in $(seq 200); do
        [ -S "$W/$name.mon" ] && return 0
        sleep 0.05
    done
    fail "$name did not start: $(cat "$W/$name.out")"
}

# mon NAME COMMAND...: the monitor's answers, without prompts.
mon() {
    local name=$1
    shift
    printf '%s\n' "$@" | timeout 120 socat -t 120 - "UNIX-CONNECT:$W/$name.mon" |
        sed -e '1d' -e 's/^\((hop) \)*//' -e '/^$/d'
}

pid_of() { eval "echo \$PID_$1"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
nfds() { ls "/proc/$1/fd" | wc -l; }

quit() {
    local p
    p=$(pid_of "$1")
    mon "$1" quit >/dev/null 2>&1
    timeout 20 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null
}

wait_filled() {
    local i
    for i in $(seq 1200); do
        grep -q 'memtest: filled' "$W/$1.serial" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "$1: memtest did not fill RAM"
}

# migrate SRC DST: SRC (running) moves into DST (-S -incoming); DST's RAM
# passes the memtest check, then DST runs.
migrate() {
    local src=$1 dst=$2 out
    # memtest rewrites all its memory every pass; a generous downtime lets
    # each move end on a loaded host (this is about leaks, not convergence).
    out=$(mon "$src" "migrate_set_parameter max-bandwidth 0" \
        "migrate_set_parameter downtime-limit 2000" \
        "migrate unix:$W/$dst.sock" "info migrate")
    grep -q '^Migration status: completed' <<<"$out" ||
        fail "$src -> $dst: $(grep -i 'status\|error' <<<"$out" | head -3)"
    local i
    for i in $(seq 600); do
        mon "$dst" "info status" | grep -qx 'VM status: paused' && break
        sleep 0.1
    done
    rm -f "$W/$dst.ram"
    mon "$dst" "pmemsave 0 $BYTES \"$W/$dst.ram\"" >/dev/null
    "$CHECK" "$W/$dst.ram" >/dev/null || fail "$src -> $dst: memtest check failed"
    rm -f "$W/$dst.ram"
    mon "$dst" cont >/dev/null
}

stats() {   # stats FIRST... LAST...: min, max, first and last of a series
    printf '%s\n' "$@" | awk 'NR == 1 { f = $1; mn = $1; mx = $1 }
        { if ($1 < mn) mn = $1; if ($1 > mx) mx = $1; l = $1 }
        END { printf "first %s, last %s, min %s, max %s", f, l, mn, mx }'
}

# grows SERIES...: the last quarter's minimum above the first quarter's
# maximum by more than 10% (or, for small counts, at all).
grows() {
    printf '%s\n' "$@" | awk '{ v[NR] = $1 } END {
        q = int(NR / 4); if (q < 1) exit 1
        a = 0; for (i = 1; i <= q; i++) if (v[i] > a) a = v[i]
        b = -1; for (i = NR - q + 1; i <= NR; i++) if (b < 0 || v[i] < b) b = v[i]
        exit !(b > a * 1.1 && b > a + 2) }'
}

echo "# soak: hop $(git rev-parse --short HEAD 2>/dev/null), $(nproc) CPUs, -m $MEM, emu"
status=0

# ---- migrations back and forth ----
t0=$(date +%s)
start a
wait_filled a
start b -S -incoming "unix:$W/b.sock"
cur=a next=b
for i in $(seq "$MIGS"); do
    migrate "$cur" "$next"
    quit "$cur"
    start "$cur" -S -incoming "unix:$W/$cur.sock"
    tmp=$cur cur=$next next=$tmp
done
echo "migrations back and forth: $MIGS, every destination passed the memtest check ($(( $(date +%s) - t0 )) s)"
quit a
quit b

# ---- one long-lived source, migrated again and again ----
t0=$(date +%s)
start src
wait_filled src
rss=() fds=()
for i in $(seq "$MIGS"); do
    start dst -S -incoming "unix:$W/dst.sock"
    migrate src dst
    quit dst
    mon src cont >/dev/null
    rss+=("$(rss_kb "$(pid_of src)")")
    fds+=("$(nfds "$(pid_of src)")")
done
echo "long-lived source, $MIGS migrations ($(( $(date +%s) - t0 )) s):"
echo "  RSS KiB: $(stats "${rss[@]}")"
echo "  open fds: $(stats "${fds[@]}")"
if grows "${rss[@]}" || grows "${fds[@]}"; then
    echo "  GROWS" && status=1
fi
quit src

# ---- savevm / loadvm / delvm on one image ----
t0=$(date +%s)
qemu-img create -q -f qcow2 "$W/disk.qcow2" 64M
start snap -drive "file=$W/disk.qcow2,format=qcow2"
wait_filled snap
rss=() fds=() size=()
for i in $(seq "$CYCLES"); do
    out=$(mon snap "savevm s$i" "loadvm s$i" "delvm s$i")
    if grep -qi 'error' <<<"$out"; then
        fail "cycle $i: $out"
    fi
    rss+=("$(rss_kb "$(pid_of snap)")")
    fds+=("$(nfds "$(pid_of snap)")")
    size+=("$(stat -c %s "$W/disk.qcow2")")
done
mon snap stop "pmemsave 0 $BYTES \"$W/snap.ram\"" >/dev/null
"$CHECK" "$W/snap.ram" >/dev/null || fail "after $CYCLES cycles: memtest check failed"
echo "savevm/loadvm/delvm cycles: $CYCLES ($(( $(date +%s) - t0 )) s), memtest check passes after them"
echo "  RSS KiB: $(stats "${rss[@]}")"
echo "  open fds: $(stats "${fds[@]}")"
echo "  image bytes: $(stats "${size[@]}")"
if grows "${rss[@]}" || grows "${fds[@]}" || grows "${size[@]}"; then
    echo "  GROWS" && status=1
fi
quit snap
if qemu-img check -q "$W/disk.qcow2"; then
    echo "  qemu-img check: clean"
else
    echo "  qemu-img check: PROBLEMS" && status=1
fi
exit $status
