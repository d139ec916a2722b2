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

# bench_host_facts: one line per fact that moves the figures.
bench_host_facts() {
    local f
    echo "host:   $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
    for f in /sys/kernel/mm/transparent_hugepage/enabled \
             /sys/kernel/mm/transparent_hugepage/shmem_enabled; do
        [ -r "$f" ] && echo "        $(basename "$f"): $(cat "$f")"
    done
    echo "        accelerators: hop $HOP_ACCEL, QEMU $QEMU_ACCEL ($BENCH_ACCEL_WHY)"
    echo "        $(qemu-system-x86_64 --version | head -1)"
}
