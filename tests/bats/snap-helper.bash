# Shared steps of the snapshot tests (load after helper; they use $D).

# qemu-img check must find no corruption (leaks, exit 3, are allowed).
# -U: the image may be held by a running hop (which locks it as QEMU does).
image_ok() {
    run qemu-img check -U "$1"
    if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
        echo "$output" >&2
        return 1
    fi
}

# stop, dump memory and registers, savevm TAG, dump again: NAME.ram/.regs
save_paused() {
    local vm=$1 tag=$2 mem=$3
    hop_mon "$vm" stop "pmemsave 0 $mem \"$D/$tag.ram\"" "info registers" \
        >"$D/$tag.regs"
    run hop_mon "$vm" "savevm $tag"
    assert_success
    refute_output --partial Error
}

# stop, loadvm TAG, dump, compare with what save_paused kept
load_and_compare() {
    local vm=$1 tag=$2 mem=$3
    run hop_mon "$vm" stop "loadvm $tag" "info status"
    refute_output --partial Error
    assert_line "VM status: paused"
    hop_mon "$vm" "pmemsave 0 $mem \"$D/$tag.back\"" "info registers" \
        >"$D/$tag.regs2"
    cmp "$D/$tag.ram" "$D/$tag.back"
    diff "$D/$tag.regs" "$D/$tag.regs2"
}
