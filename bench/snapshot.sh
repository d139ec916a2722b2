#!/usr/bin/env bash
# savevm and loadvm of a 1 GiB guest with filled RAM, hop and QEMU side by
# side in one run (not a test: it prints figures).
#   bench/snapshot.sh [RUNS] [MEM] [emu|kvm|auto]
# Both run the same memtest firmware (build/machine/firmware/memtest.bin;
# QEMU loads it with -kernel) with -m MEM (default 1G) and a qcow2 drive
# made by qemu-img with the same options.  The accelerators are chosen for
# a fair comparison (bench/lib-host.sh): KVM for both only where it has
# hardware virtualization, else hop's emulator beside QEMU's TCG.  Once the guest has written every page
# (memtest prints "filled"),
# the script alternates hop and QEMU: savevm, then loadvm of that snapshot,
# RUNS times each (default 3), timing each command from the moment it is
# sent on the monitor socket to the next prompt.  It prints the median
# time, the median image growth per savevm, and the ratio hop/QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
mem=${2:-1G}
. bench/lib-host.sh
make -s -j2 build/hop build/bench/host-limit >/dev/null
fw=build/machine/firmware/memtest.bin
dir=$(mktemp -d "${TMPDIR:-/tmp}/hop-snapshot-bench.XXXXXX")
pids=()
cleanup() {
    bench_stop "${pids[@]}"
    [ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
export HOP_CATALOG=$dir/catalog.db

bench_pick_accel "${3:-auto}" || exit 2

qemu-img create -q -f qcow2 "$dir/hop.qcow2" 1G
qemu-img create -q -f qcow2 "$dir/qemu.qcow2" 1G

build/hop run -accel "$HOP_ACCEL" -m "$mem" -drive "file=$dir/hop.qcow2" \
    -monitor "unix:$dir/hop.mon,server,nowait" -serial "file:$dir/hop.ser" \
    >"$dir/hop.out" 2>&1 &
pids+=($!)
qemu-system-x86_64 -accel "$QEMU_ACCEL" -m "$mem" -kernel "$fw" -display none \
    -nodefaults -serial "file:$dir/qemu.ser" \
    -drive "file=$dir/qemu.qcow2,format=qcow2,if=ide" \
    -monitor "unix:$dir/qemu.mon,server,nowait" >"$dir/qemu.out" 2>&1 &
pids+=($!)

# mon SOCKET PROMPT COMMAND: runs one command, prints "SECONDS<TAB>OUTPUT".
mon() {
    python3 - "$@" <<'EOF'
import socket, sys, time
path, prompt, cmd = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
s = socket.socket(socket.AF_UNIX)
s.connect(path)
def until_prompt():
    buf = b""
    while not buf.endswith(prompt):
        d = s.recv(65536)
        if not d:
            raise SystemExit("monitor closed")
        buf += d
    return buf
until_prompt()
t0 = time.monotonic()
s.sendall(cmd.encode() + b"\n")
out = until_prompt()
t1 = time.monotonic()
text = out[:-len(prompt)].decode(errors="replace").replace("\r", "")
print("%.3f\t%s" % (t1 - t0, " ".join(text.split())))
EOF
}

wait_socket() {
    for _ in $(seq 200); do
        [ -S "$1" ] && return 0
        sleep 0.1
    done
    echo "no monitor socket $1" >&2
    exit 1
}
wait_socket "$dir/hop.mon"
wait_socket "$dir/qemu.mon"

# memtest says "filled" once every page above 1 MiB holds data.
for who in hop qemu; do
    for _ in $(seq 6000); do
        grep -q filled "$dir/$who.ser" && break
        sleep 0.2
    done
    if ! grep -q filled "$dir/$who.ser"; then
        echo "$who: memtest did not fill memory in 1200 s" >&2
        echo "serial: $(head -c 300 "$dir/$who.ser")" >&2
        exit 1
    fi
done

bench_host_facts
echo "guest:  memtest, -m $mem; qcow2 1 GiB made by qemu-img"
# The floor on this disk: the same bytes written to a file here and
# flushed (savevm), and read back into memory (loadvm).
limit_save=$(host_limit_ms save save_ms "$mem" "$dir/limit.file")
limit_load=$(host_limit_ms load load_ms "$mem" "$dir/limit.file")
rm -f "$dir/limit.file"

declare -A times
size() { stat -c %s "$1"; }
one() {   # one WHO OP TAG
    local who=$1 op=$2 tag=$3 prompt r t out before after
    prompt="(hop) "
    [ "$who" = qemu ] && prompt="(qemu) "
    before=$(size "$dir/$who.qcow2")
    sync "$dir/hop.qcow2" "$dir/qemu.qcow2"   # settle the previous savevm
    r=$(mon "$dir/$who.mon" "$prompt" "$op $tag")
    after=$(size "$dir/$who.qcow2")
    t=${r%%$'\t'*}
    out=${r#*$'\t'}
    if [[ $out == *rror* ]]; then
        echo "$who $op failed: $out" >&2
        exit 1
    fi
    times[$who-$op]="${times[$who-$op]:-} $t"
    if [ "$op" = savevm ]; then
        times[$who-growth]="${times[$who-growth]:-} $(( after - before ))"
    fi
}
for i in $(seq "$runs"); do
    one hop savevm "b$i"
    one qemu savevm "b$i"
    one hop loadvm "b$i"
    one qemu loadvm "b$i"
done

median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '\n%-8s %14s %14s %10s %14s %10s\n' "" "hop" "QEMU" "hop/QEMU" "host limit" "hop/limit"
for op in savevm loadvm; do
    h=$(median "${times[hop-$op]}")
    q=$(median "${times[qemu-$op]}")
    l=$limit_save
    [ "$op" = loadvm ] && l=$limit_load
    l=$(echo "${l/-/0} / 1000" | bc -l)
    printf '%-8s %12.3f s %12.3f s %10.2f %12.3f s %10.2f\n' "$op" "$h" "$q" \
        "$(echo "$h / $q" | bc -l)" "$l" "$(echo "if ($l > 0) $h / $l else 0" | bc -l)"
done
h=$(median "${times[hop-growth]}")
q=$(median "${times[qemu-growth]}")
printf '%-8s %10d MiB %10d MiB %10.2f   (image growth per savevm)\n' growth \
    $(( h >> 20 )) $(( q >> 20 )) "$(echo "$h / $q" | bc -l)"
echo
echo "all runs (s): hop savevm${times[hop-savevm]}; QEMU savevm${times[qemu-savevm]}"
echo "              hop loadvm${times[hop-loadvm]}; QEMU loadvm${times[qemu-loadvm]}"
qemu-img check -U -q "$dir/hop.qcow2" && echo "qemu-img check: hop's image is clean"
