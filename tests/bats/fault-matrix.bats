#!/usr/bin/env bats
# Every fault-injection point (hop fault-points) under every operation
# that passes it, once dying there (HOP_FAULT=POINT:exit, as kill -9) and,
# where the step can fail, once failing there (POINT:fail, as a failed
# write).  After each: the machine that ran the operation still runs (when
# it failed rather than died), every image passes qemu-img check (leaks
# allowed, as after any crash), no snapshot that existed before is lost or
# changed, and the catalog agrees with the image once synced.

load helper
load mig-helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    export D
    PROBLEMS=()
    HIT=()
}

teardown() {
    hop_stop_all
}

# The points an operation passes, as "NAME ACTIONS" lines.
points_of() {
    "$HOP" fault-points | awk -F'\t' -v op="$1" '
        { n = split($3, ops, " "); for (i = 1; i <= n; i++)
              if (ops[i] == op) print $1, $2 }'
}

actions_of() {
    [ "$1" = exit+fail ] && echo "exit fail" || echo exit
}

problem() {
    PROBLEMS+=("$*")
}

tags() {
    qemu-img snapshot -l "$1" | awk 'NR > 2 { print $2 }' | sort
}

# base: an image with 512-byte clusters (so small operations grow every
# table) holding snapshots s0 and s1, each with its own disk contents and
# a memtest guest's state; the disk of each kept as raw for comparison.
make_base() {
    local img=$D/base.qcow2
    "$HOP" img create -f qcow2 -o cluster_size=512 "$img" 4M >/dev/null
    qemu-io -c 'write -P 0x11 0 256k' "$img" >/dev/null
    hop_start base -m 16M -drive "file=$img"
    hop_mon base "savevm s0" quit >/dev/null
    wait_for "! kill -0 $(hop_pid base) 2>/dev/null" 20
    qemu-io -c 'write -P 0x22 128k 256k' "$img" >/dev/null
    hop_start base2 -m 16M -drive "file=$img"
    hop_mon base2 "savevm s1" quit >/dev/null
    wait_for "! kill -0 $(hop_pid base2) 2>/dev/null" 20
    for t in s0 s1; do
        qemu-img convert -O raw -l "snapshot.name=$t" "$img" "$D/$t.raw"
    done
    printf '%s\n' s0 s1 >"$D/base.tags"
}

# check_image CASE IMG KEEP...: clean, the snapshots KEEP there with their
# disks unchanged, the catalog agreeing after a sync.
check_image() {
    local case=$1 img=$2 t
    shift 2
    local rc=0
    qemu-img check -q "$img" >"$D/check.out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
        problem "$case: qemu-img check exit $rc: $(head -3 "$D/check.out")"
        return
    fi
    for t in "$@"; do
        if ! tags "$img" | grep -qx "$t"; then
            problem "$case: snapshot $t is gone"
            continue
        fi
        qemu-img convert -O raw -l "snapshot.name=$t" "$img" "$D/now.raw"
        cmp -s "$D/$t.raw" "$D/now.raw" || problem "$case: snapshot $t's disk changed"
    done
    if ! "$HOP" catalog sync "$img" >/dev/null 2>"$D/sync.err"; then
        problem "$case: catalog sync failed: $(cat "$D/sync.err")"
        return
    fi
    local key listed
    key=$(realpath "$img")
    listed=$("$HOP" catalog query "SELECT s.name FROM snapshots s JOIN images i ON s.image_id = i.id WHERE i.path = '$key' ORDER BY s.name")
    [ "$listed" = "$(tags "$img")" ] ||
        problem "$case: catalog lists '$listed', the image holds '$(tags "$img" | tr '\n' ' ')'"
}

# hit CASE ERRFILE: did the process pass the point?  (It says so.)
hit() {
    if grep -q "HOP_FAULT: \(exiting\|failing\) at" "$2"; then
        HIT+=("$1")
        return 0
    fi
    return 1
}

# machine_op OP COMMAND KEEP...: each point of OP, each action, in a
# running machine on a copy of the base image.
machine_op() {
    local op=$1 cmd=$2
    shift 2
    local point acts act name img
    while read -r point acts; do
        for act in $(actions_of "$acts"); do
            name=$op-$point-$act
            img=$D/$name.qcow2
            cp "$D/base.qcow2" "$img"
            HOP_FAULT=$point:$act hop_start "$name" -m 16M -drive "file=$img"
            hop_mon "$name" "$cmd" >"$D/$name.reply" 2>&1 || true
            if ! hit "$name" "$D/$name.err"; then
                # Not a point this command passes: nothing to check.
                hop_stop_all
                continue
            fi
            if [ "$act" = exit ]; then
                wait_for "! kill -0 $(hop_pid "$name") 2>/dev/null" 20 ||
                    problem "$name: did not exit"
            else
                local st
                st=$(hop_mon "$name" "info status")
                case $st in
                "VM status: running" | "VM status: paused") ;;
                *) problem "$name: the machine is not there after the failure: $st" ;;
                esac
                grep -q '^Error: ' "$D/$name.reply" ||
                    problem "$name: the failure was not reported: $(cat "$D/$name.reply")"
                # It survives: the next operation of the kind works.
                local again
                again=$(hop_mon "$name" "loadvm s0" "info status")
                grep -q '^Error' <<<"$again" &&
                    problem "$name: loadvm s0 after the failure: $again"
                hop_mon "$name" quit >/dev/null
                wait_for "! kill -0 $(hop_pid "$name") 2>/dev/null" 20
            fi
            hop_stop_all
            check_image "$name" "$img" "$@"
            # A failed operation leaves nothing half done behind.
            if [ "$act" = fail ] && [ -n "${FAILED_LEAVES_NO:-}" ] &&
                tags "$img" | grep -qx "$FAILED_LEAVES_NO"; then
                problem "$name: the failed operation left snapshot $FAILED_LEAVES_NO"
            fi
        done
    done < <(points_of "$op")
}

# tool_op OP KEEP... -- COMMAND...: each point of OP under an offline
# command working on $IMG (a copy of the base image).
tool_op() {
    local op=$1
    shift
    local keep=()
    while [ "$1" != -- ]; do keep+=("$1"); shift; done
    shift
    local point acts act name
    while read -r point acts; do
        for act in $(actions_of "$acts"); do
            name=$op-$point-$act
            export IMG=$D/$name.qcow2
            cp "$D/base.qcow2" "$IMG"
            local rc=0
            HOP_FAULT=$point:$act "$@" >"$D/$name.out" 2>"$D/$name.err" || rc=$?
            hit "$name" "$D/$name.err" || continue
            if [ "$act" = exit ] && [ "$rc" -ne 99 ]; then
                problem "$name: exit status $rc, not 99"
            fi
            if [ "$act" = fail ] && [ "$rc" -ne 1 ]; then
                problem "$name: exit status $rc after a failure, not 1"
            fi
            check_image "$name" "$IMG" "${keep[@]}"
        done
    done < <(points_of "$op")
}

# Each point of OP must have been passed by OP at least once.
all_points_hit() {
    local op=$1 point acts missing=()
    while read -r point acts; do
        printf '%s\n' "${HIT[@]}" | grep -q "^$op-$point-" || missing+=("$point")
    done < <(points_of "$op")
    [ ${#missing[@]} -eq 0 ] ||
        problem "$op never passed: ${missing[*]} (wrong ops in util/fault-points.c?)"
}

report() {
    echo "passed points: ${#HIT[@]}"
    if [ ${#PROBLEMS[@]} -ne 0 ]; then
        printf '%s\n' "${PROBLEMS[@]}"
        return 1
    fi
}

@test "fault matrix: savevm" {
    make_base
    FAILED_LEAVES_NO=new machine_op savevm "savevm new" s0 s1
    all_points_hit savevm
    report
}

@test "fault matrix: savevm -b (the guest runs while its RAM is written)" {
    make_base
    hop_start probe -m 16M
    local out
    out=$(hop_mon probe "migrate_set_capability background-snapshot on")
    [[ $out != *Error:* ]] || skip "${out#*Error: }"
    hop_stop_all
    FAILED_LEAVES_NO=new machine_op savevm-bg "savevm -b new" s0 s1
    all_points_hit savevm-bg
    report
}

@test "fault matrix: loadvm" {
    make_base
    machine_op loadvm "loadvm s1" s0 s1
    all_points_hit loadvm
    report
}

@test "fault matrix: delvm" {
    make_base
    machine_op delvm "delvm s1" s0
    all_points_hit delvm
    report
}

@test "fault matrix: hop img snapshot -c and -d" {
    make_base
    tool_op img-snapshot s0 s1 -- bash -c '"$HOP" img snapshot -c new "$IMG" &&
        "$HOP" img snapshot -d new "$IMG"'
    all_points_hit img-snapshot
    report
}

@test "fault matrix: hop img convert -n into a qcow2 image" {
    make_base
    head -c 3M /dev/urandom >"$D/data.raw"
    tool_op convert s0 s1 -- bash -c '"$HOP" img convert -n "$D/data.raw" "$IMG"'
    all_points_hit convert
    report
}

# mig_check_source NAME: after a failed migration the source runs, its
# memory passes the memtest check, and it moves to a fresh destination.
mig_source_survives() {
    local case=$1 src=$2 st
    st=$(hop_mon "$src" "info status")
    [ "$st" = "VM status: running" ] || { problem "$case: source is '$st'"; return; }
    hop_mon "$src" stop "pmemsave 0 33554432 \"$D/$src.ram\"" cont >/dev/null
    "$MEMTEST_CHECK" "$D/$src.ram" >/dev/null ||
        problem "$case: the source's memory fails the memtest check"
    hop_start "$src-again" -m 32M -S -incoming "unix:$D/$src-again.sock"
    st=$(hop_mon "$src" "migrate unix:$D/$src-again.sock" "info migrate")
    grep -q '^Migration status: completed' <<<"$st" ||
        problem "$case: a second migration: $(grep -i status <<<"$st")"
}

# The destination of a migration that did not complete must not run: it
# exits (its load failed) or still waits.
mig_dest_not_running() {
    local case=$1 dst=$2
    wait_for "! kill -0 $(hop_pid "$dst") 2>/dev/null" 20 ||
        problem "$case: the destination is still there after a failed load"
}

@test "fault matrix: live migration, source and destination" {
    local point acts act name src dst out
    for side in migrate incoming; do
        while read -r point acts; do
            for act in $(actions_of "$acts"); do
                name=$side-$point-$act
                src=$name-src dst=$name-dst
                if [ "$side" = migrate ]; then
                    HOP_FAULT=$point:$act hop_start "$src" -m 32M
                    hop_start "$dst" -m 32M -S -incoming "unix:$D/$dst.sock"
                    err=$D/$src.err
                else
                    hop_start "$src" -m 32M
                    HOP_FAULT=$point:$act hop_start "$dst" -m 32M -S \
                        -incoming "unix:$D/$dst.sock"
                    err=$D/$dst.err
                fi
                wait_filled "$src"
                out=$(hop_mon "$src" "migrate_set_parameter max-bandwidth 0" \
                    "migrate unix:$D/$dst.sock" "info migrate" 2>&1) || true
                if ! hit "$name" "$err"; then
                    problem "$name: the point was not passed"
                    hop_stop_all
                    continue
                fi
                if [ "$side" = migrate ] && [ "$act" = exit ]; then
                    wait_for "! kill -0 $(hop_pid "$src") 2>/dev/null" 20 ||
                        problem "$name: the source did not exit"
                    if [ "$point" = migration-complete ]; then
                        # Everything was sent: the destination has the guest.
                        wait_for "hop_mon $dst 'info status' | grep -qx 'VM status: paused'" 30 ||
                            problem "$name: the destination did not take the guest"
                        hop_mon "$dst" "pmemsave 0 33554432 \"$D/$dst.ram\"" >/dev/null
                        "$MEMTEST_CHECK" "$D/$dst.ram" >/dev/null ||
                            problem "$name: the destination's memory fails the check"
                    else
                        mig_dest_not_running "$name" "$dst"
                    fi
                else
                    grep -q '^Migration status: failed' <<<"$out" ||
                        problem "$name: $(grep -i 'status' <<<"$out" | head -2)"
                    mig_source_survives "$name" "$src"
                    mig_dest_not_running "$name" "$dst"
                fi
                hop_stop_all
            done
        done < <(points_of "$side")
    done
    report
}
