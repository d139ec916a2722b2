#!/usr/bin/env bash
# Saving a stopped guest to a file and loading it back: hop's plain
# file:, hop with mapped-ram (alone, with multifd, with multifd and
# direct-io) and QEMU 7.2's plain migration to a file (it has no
# mapped-ram, nor file:, so exec:cat > FILE and exec:cat FILE).
#
#   bench/mapped-ram.sh [-n RUNS] [-m "1G 4G"] [-c CHANNELS] [-r ROW_REGEX]
#
# Every run starts a fresh memtest guest, waits for "memtest: filled",
# stops it (QMP stop) and saves it; a fresh -S -incoming defer machine
# with the same capabilities loads the file.  save_ms and load_ms are
# wall times over QMP (bench/migrun.py); the file is deleted after each
# run and the page cache is not dropped (no root needed).  Host limits,
# measured before each size by bench/host-limit: the same bytes written
# to a new file (disk write, through the page cache, a second time: the
# first, into memory unused for a while, is in brackets) and read back into
# fresh memory (disk read), and a memcpy of that size into warm memory
# (memory).
set -u
cd "$(dirname "$0")/.." || exit 1

RUNS=3
SIZES="1G 4G"
CHANNELS=4
ROWS=.
while getopts "n:m:c:r:" o; do
    case $o in
    n) RUNS=$OPTARG ;;
    m) SIZES=$OPTARG ;;
    c) CHANNELS=$OPTARG ;;
    r) ROWS=$OPTARG ;;
    *) sed -n '2,8p' "$0"; exit 2 ;;
    esac
done
make -s -j2 build/hop build/bench/host-limit >/dev/null || exit 1

HOP=${HOP:-$PWD/build/hop}
FW=$PWD/build/machine/firmware
PY=/usr/bin/python3
MIGRUN="$PY $PWD/bench/migrun.py"
QEMU=qemu-system-x86_64
HOST_LIMIT=$PWD/build/bench/host-limit
. bench/lib-host.sh
bench_pick_accel auto || exit 2
# The file lives where the user runs from unless told (tmpfs has no
# O_DIRECT; /tmp may be one).
W=$(mktemp -d "${BENCH_DIR:-$PWD}/hop-bench-mapped.XXXXXX")
PIDS=()

cleanup() {
    bench_stop "${PIDS[@]}"
    PIDS=()
}
trap 'cleanup; rm -rf "$W"' EXIT

vm_cmd() {
    local tool=$1 name=$2 mem=$3 inc=${4:-}
    if [ "$tool" = hop ]; then
        printf '%s' "$HOP run -accel $HOP_ACCEL -m $mem -guest memtest -serial file:$W/$name.ser -monitor none -qmp unix:$W/$name.qmp,server,nowait"
    else
        printf '%s' "$QEMU -accel $QEMU_ACCEL -kernel $FW/memtest.bin -m $mem -display none -serial file:$W/$name.ser -monitor none -qmp unix:$W/$name.qmp,server,nowait"
    fi
    [ -n "$inc" ] && printf ' -S -incoming defer'
    return 0
}

# one_run TOOL MEM [caps/params...]: {"save_ms", "load_ms", "file_mb"}.
one_run() {
    local tool=$1 mem=$2 out in save load bw=0
    shift 2
    rm -f "$W/vm.file"
    out="file:$W/vm.file" in="file:$W/vm.file"
    if [ "$tool" = qemu ]; then
        out="exec:cat > $W/vm.file" in="exec:cat $W/vm.file" bw=1000000000000
    fi
    bench_vm_start "$tool" src "$mem" && bench_wait_serial src "memtest: filled" 300 &&
        save=$($MIGRUN save "$W/src.qmp" "$out" --stop --param max-bandwidth=$bw "$@") ||
        { cleanup; return 1; }
    cleanup
    bench_vm_start "$tool" dst "$mem" incoming &&
        load=$($MIGRUN load "$W/dst.qmp" "$in" "$@") || { cleanup; return 1; }
    cleanup
    local mb=$(( $(du -k "$W/vm.file" | cut -f1) / 1024 ))
    rm -f "$W/vm.file"
    $PY -c 'import json,sys; s=json.loads(sys.argv[1]); l=json.loads(sys.argv[2]); print(json.dumps({"save_ms": s["wall_ms"], "load_ms": l["wall_ms"], "status": s["status"], "file_mb": int(sys.argv[3])}))' "$save" "$load" "$mb"
}

# median FILE KEY
median() {
    $PY - "$1" "$2" <<'PY'
import json, statistics, sys
v = [float(json.loads(l)[sys.argv[2]]) for l in open(sys.argv[1]) if l.strip()]
print("%.0f (%.0f-%.0f)" % (statistics.median(v), min(v), max(v)) if v else "-")
PY
}

# row NAME TOOL MEM [caps/params...]
row() {
    local name=$1 tool=$2 mem=$3
    shift 3
    [[ "$mem $name" =~ $ROWS ]] || return 0
    : >"$W/row.jsonl"
    local i r
    for i in $(seq "$RUNS"); do
        if r=$(one_run "$tool" "$mem" "$@"); then
            echo "$r" >>"$W/row.jsonl"
        else
            echo "  ($name, $mem, run $i failed: $r)" >&2
        fi
    done
    printf '   %-34s %-20s %-20s %s\n' "$name" "$(median "$W/row.jsonl" save_ms)" \
        "$(median "$W/row.jsonl" load_ms)" "$(median "$W/row.jsonl" file_mb)"
    echo "      $tool: $(vm_cmd "$tool" src "$mem")${*:+  migrate settings: $*}" >>"$W/commands"
}

echo "# save and restore of a stopped guest to a file, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
bench_host_facts | sed 's/^/# /'
echo "# file system of $W: $(df -T "$W" | awk 'NR == 2 {print $2}')"
echo "# hop $(git rev-parse --short HEAD 2>/dev/null), $RUNS runs per row, median (min-max); ms"
direct=ok
dd if=/dev/zero of="$W/odirect" bs=4096 count=1 oflag=direct 2>/dev/null || direct=
rm -f "$W/odirect"
: >"$W/commands"
for mem in $SIZES; do
    out=$("$HOST_LIMIT" save "$mem" "$W/limit.file" 2>/dev/null)
    save=$(sed -n 's/.*"write_ms": \([0-9]*\).*/\1/p' <<<"$out")
    cold=$(sed -n 's/.*"cold_write_ms": \([0-9]*\).*/\1/p' <<<"$out")
    load=$(host_limit_ms load load_ms "$mem" "$W/limit.file")
    rm -f "$W/limit.file"
    copy=$(host_limit_ms touch warm_copy_ms "$mem")
    echo
    echo "## $mem: host limits: disk write ${save:--} ms (${cold:--} ms into memory unused for a while), disk read into fresh memory $load ms, memory copy $copy ms"
    printf '   %-34s %-20s %-20s %s\n' "" "save_ms" "load_ms" "file MiB on disk"
    row "QEMU 7.2 plain (exec:cat)" qemu "$mem"
    row "hop plain file:" hop "$mem"
    row "hop mapped-ram" hop "$mem" --cap mapped-ram
    row "hop mapped-ram + multifd $CHANNELS" hop "$mem" --cap mapped-ram \
        --cap multifd --param multifd-channels="$CHANNELS"
    if [ -n "$direct" ]; then
        row "hop mapped-ram + multifd + direct-io" hop "$mem" --cap mapped-ram \
            --cap multifd --param multifd-channels="$CHANNELS" --param direct-io=true
    else
        echo "   (no direct-io row: $W takes no O_DIRECT)"
    fi
done
echo
echo "# command lines (destinations: the same with -S -incoming defer):"
sort -u "$W/commands"
