# Sourced by the benchmarks: the accelerator pair that makes a fair
# comparison on this host, and the host facts that decide the results.
#
# bench_pick_accel [emu|kvm|auto]: sets HOP_ACCEL and QEMU_ACCEL.  Both run
# under KVM only where /dev/kvm works for both tools *and* the CPU has
# hardware virtualization (vmx/svm): a kvm without it is far slower than
# either emulator and makes QEMU's figures meaningless.  Otherwise hop's
# emulator faces QEMU's TCG.
bench_pick_accel() {
    local want=${1:-auto}
    HOP_ACCEL=emu
    QEMU_ACCEL=tcg
    BENCH_ACCEL_WHY="default: the emulators (hop emu, QEMU tcg)"
    case $want in
    emu) BENCH_ACCEL_WHY="asked for the emulators" ;;
    kvm | auto)
        local why=
        if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
            why="/dev/kvm cannot be opened"
        elif ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
            why="the CPU shows no vmx/svm: KVM here is nested without hardware help"
        elif ! echo quit | timeout 20 "${HOP:-build/hop}" run -accel kvm -S -m 4M \
            >/dev/null 2>&1; then
            why="hop cannot start a kvm machine"
        fi
        if [ -z "$why" ]; then
            HOP_ACCEL=kvm
            QEMU_ACCEL=kvm
            BENCH_ACCEL_WHY="KVM with hardware virtualization for both"
        elif [ "$want" = kvm ]; then
            echo "kvm asked for, but $why" >&2
            return 1
        else
            BENCH_ACCEL_WHY="emulators for both: $why"
        fi
        ;;
    *)
        echo "unknown accelerator '$want' (emu, kvm or auto)" >&2
        return 1
        ;;
    esac
}

# The helper that measures what the host allows (bench/host-limit.c).
HOST_LIMIT=${HOST_LIMIT:-build/bench/host-limit}

# host_limit_ms MODE KEY ARGS...: one figure of host-limit, or "-".
host_limit_ms() {
    local mode=$1 key=$2 out
    shift 2
    out=$("$HOST_LIMIT" "$mode" "$@" 2>/dev/null) || { echo -; return; }
    sed -n "s/.*\"$key\": \([0-9]*\).*/\1/p" <<<"$out"
}

# bench_host_facts: one line per fact that moves the figures.
bench_host_facts() {
    local f
    echo "host:   $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
    for f in /sys/kernel/mm/transparent_hugepage/enabled \
             /sys/kernel/mm/transparent_hugepage/shmem_enabled; do
        [ -r "$f" ] && echo "        $(basename "$f"): $(cat "$f")"
    done
    if [ -x "$HOST_LIMIT" ]; then
        # Fresh memory: on some hosts (nested virtualization, memory the
        # hypervisor reclaimed) its first touch costs seconds per GiB, and
        # it changes from minute to minute as memory is freed and reused.
        echo "        first touch of fresh memory, ms/GiB: anonymous+THP" \
            "$(host_limit_ms touch first_touch_ms_per_gib 1G)," \
            "memfd $(host_limit_ms touch first_touch_ms_per_gib 1G \
                memory-backend-memfd,id=m,size=1G)," \
            "warm copy $(host_limit_ms touch warm_copy_ms 1G)"
    fi
    echo "        accelerators: hop $HOP_ACCEL, QEMU $QEMU_ACCEL ($BENCH_ACCEL_WHY)"
    echo "        $(qemu-system-x86_64 --version | head -1)"
}

# bench_stop PID...: asks each process to quit, waits up to 20 s for it,
# then kills it; for the benchmarks' exit traps.
bench_stop() {
    local p
    for p in "$@"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "$@"; do
        timeout 20 tail --pid="$p" -f /dev/null 2>/dev/null ||
            kill -9 "$p" 2>/dev/null || true
    done
}

# bench_vm_start TOOL NAME [ARGS...]: starts the machine whose command line
# the benchmark's own vm_cmd prints (TOOL NAME ARGS...), with its output in
# $W/NAME.out, appends its pid to PIDS, and waits (up to 30 s) for its QMP
# socket $W/NAME.qmp.  Fails, with the machine's output, if it does not
# come up.
bench_vm_start() {
    local name=$2 n=0 pid
    rm -f "$W/$name.qmp" "$W/$name.ser"
    # shellcheck disable=SC2046
    $(vm_cmd "$@") </dev/null >"$W/$name.out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    until [ -S "$W/$name.qmp" ]; do
        sleep 0.05
        n=$((n + 1))
        if [ $n -gt 600 ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "$1 $name did not start:" >&2
            tail -5 "$W/$name.out" >&2
            return 1
        fi
    done
}

# bench_wait_serial NAME TEXT SECONDS: waits for TEXT in $W/NAME.ser.
bench_wait_serial() {
    local n=0
    until grep -q "$2" "$W/$1.ser" 2>/dev/null; do
        sleep 0.05
        n=$((n + 1))
        if [ $n -gt $(($3 * 20)) ]; then
            echo "no '$2' from $1 within $3 s" >&2
            return 1
        fi
    done
}

# bench_ratio A B: A/B to two decimals, or "-" if either is missing or 0.
bench_ratio() {
    python3 -c 'import sys
a, b = sys.argv[1], sys.argv[2]
print("%.2f" % (float(a) / float(b)) if a not in ("-", "0") and b not in ("-", "0") else "-")' "$1" "$2"
}
