#!/usr/bin/env bats
# Migration over QMP: migrate, migrate-incoming, migrate_cancel,
# query-migrate, the capability and parameter commands.  QEMU's own
# answers are the oracle for key names and defaults.

load helper
load mig-helper

FW=${HOP_BUILD_DIR:-$HOP_SRC/build}/machine/firmware/memtest.bin

setup() {
    mig_setup
}

teardown() {
    hop_stop_all
    local p
    for p in ${QEMU_PIDS:-}; do
        kill "$p" 2>/dev/null || true
    done
}

hop_qmp_start() {
    local name=$1
    shift
    hop_start "$name" -qmp "unix:$D/$name.qmp,server,nowait" "$@"
    wait_for "[ -S '$D/$name.qmp' ]" 10
}

# qmp NAME REQUEST...: the replies (not the greeting and negotiation).
qmp() {
    local name=$1
    shift
    timeout 60 "$PY" "$QMP_PY" "$D/$name.qmp" "$@" | tail -n +3
}

# keys_subset JSON_A JSON_B: every key of A (recursively into objects)
# is a key of B.
keys_subset() {
    "$PY" - "$1" "$2" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def walk(x, y, path):
    bad = []
    for k, v in x.items():
        if k not in y:
            bad.append(path + k)
        elif isinstance(v, dict) and isinstance(y[k], dict):
            bad += walk(v, y[k], path + k + ".")
    return bad
bad = walk(a, b, "")
if bad:
    print("not in QEMU's answer:", " ".join(bad))
    sys.exit(1)
PY
}

# A QEMU migration of the same firmware: its query-migrate at the end.
qemu_query_migrate() {
    qemu-system-x86_64 -accel tcg -kernel "$FW" -m 32M -display none \
        -serial none -qmp "unix:$D/qs.qmp,server,nowait" \
        </dev/null >"$D/qs.out" 2>&1 &
    QEMU_PIDS="$QEMU_PIDS $!"
    qemu-system-x86_64 -accel tcg -kernel "$FW" -m 32M -display none \
        -serial none -incoming "unix:$D/qm.sock" </dev/null >"$D/qd.out" 2>&1 &
    QEMU_PIDS="$QEMU_PIDS $!"
    wait_for "[ -S '$D/qs.qmp' ] && [ -S '$D/qm.sock' ]" 20
    timeout 60 "$PY" "$QMP_MIGRATE_PY" "$D/qs.qmp" "unix:$D/qm.sock" |
        sed -n 's/^final //p' >"$D/qemu-final.json"
}

@test "QMP migrate and query-migrate: QEMU's keys, completed, memory exact" {
    need_qemu_system
    hop_start dst -m 32M -S -incoming "unix:$D/mig.sock"
    hop_qmp_start src -m 32M
    wait_filled src
    run qmp src query-migrate
    assert_output '{"return": {}}'
    run timeout 60 "$PY" "$QMP_MIGRATE_PY" --param max-bandwidth=0 \
        "$D/src.qmp" "unix:$D/mig.sock"
    assert_success
    assert_line 'reply {"return": {}}'
    local hop_final qemu_final
    hop_final=$(sed -n 's/^final //p' <<<"$output")
    qemu_query_migrate
    qemu_final=$(cat "$D/qemu-final.json")
    [ -n "$qemu_final" ]
    run keys_subset "$hop_final" "$qemu_final"
    assert_success
    run keys_subset "$qemu_final" "$hop_final"
    # QEMU has a few more (postcopy, zero-copy, downtime-bytes...): the
    # ones every tool reads must be there.
    local k
    for k in status total-time downtime setup-time ram.transferred \
             ram.remaining ram.total ram.duplicate ram.normal \
             ram.normal-bytes ram.mbps ram.dirty-sync-count ram.page-size \
             ram.pages-per-second; do
        "$PY" -c 'import json,sys; d=json.loads(sys.argv[1])
for p in sys.argv[2].split("."): d=d[p]' "$hop_final" "$k"
    done
    [[ $hop_final == *'"status": "completed"'* ]]
    [[ $hop_final == *'"total": 33554432'* ]]
    compare_machines src dst 32M
}

@test "QMP capability and parameter names and defaults are QEMU's" {
    need_qemu_system
    hop_qmp_start src -m 16M -S
    qemu-system-x86_64 -accel tcg -kernel "$FW" -m 16M -display none \
        -serial none -S -qmp "unix:$D/q.qmp,server,nowait" \
        </dev/null >"$D/q.out" 2>&1 &
    QEMU_PIDS="$!"
    wait_for "[ -S '$D/q.qmp' ]" 20
    local hp qp hc qc
    hp=$(qmp src query-migrate-parameters | sed 's/^{"return": //; s/}$//')
    qp=$(timeout 30 "$PY" "$QMP_PY" "$D/q.qmp" query-migrate-parameters |
         tail -1 | sed 's/^{"return": //; s/}$//')
    run "$PY" - "$hp" "$qp" <<'PY'
import json, sys
h, q = json.loads(sys.argv[1]), json.loads(sys.argv[2])
# Parameters newer than QEMU 7.2, with the defaults later QEMUs give them
# (mode: 8.2, direct-io: 9.1, cpr-exec-command: 10.2).
later = {"mode": "normal", "cpr-exec-command": [], "direct-io": False}
bad = [k for k in h if (k in later and h[k] != later[k]) or
       (k not in later and (k not in q or h[k] != q[k]))]
print("hop:", h, "differ:", bad)
sys.exit(1 if bad or len(h) < 7 else 0)
PY
    assert_success
    hc=$(qmp src query-migrate-capabilities | sed 's/^{"return": //; s/}$//')
    qc=$(timeout 30 "$PY" "$QMP_PY" "$D/q.qmp" query-migrate-capabilities |
         tail -1 | sed 's/^{"return": //; s/}$//')
    run "$PY" - "$hc" "$qc" <<'PY'
import json, sys
h = {c["capability"]: c["state"] for c in json.loads(sys.argv[1])}
q = {c["capability"]: c["state"] for c in json.loads(sys.argv[2])}
# Capabilities newer than QEMU 7.2 (mapped-ram: 9.0), off by default.
q.setdefault("mapped-ram", False)
sys.exit(0 if len(h) >= 6 and all(k in q and q[k] == v for k, v in h.items()) else 1)
PY
    assert_success
}

@test "QMP migrate-set-capabilities: all or nothing; query shows the result" {
    hop_qmp_start src -m 16M -S
    run qmp src \
        '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"events","state":true},{"capability":"nonsense","state":true}]}}' \
        query-migrate-capabilities \
        '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"events","state":true},{"capability":"auto-converge","state":true}]}}' \
        query-migrate-capabilities \
        '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"xbzrle","state":true},{"capability":"multifd","state":true}]}}'
    assert_line --index 0 --partial '"error"'
    assert_line --index 0 --partial "nonsense"
    assert_line --index 1 --partial '{"capability": "events", "state": false}'
    assert_line --index 2 '{"return": {}}'
    assert_line --index 3 --partial '{"capability": "events", "state": true}'
    assert_line --index 3 --partial '{"capability": "auto-converge", "state": true}'
    assert_line --index 4 --partial "xbzrle and multifd cannot be used together"
}

@test "QMP migrate-set-parameters: checked, all or nothing" {
    hop_qmp_start src -m 16M -S
    run qmp src \
        '{"execute":"migrate-set-parameters","arguments":{"downtime-limit":50,"cpu-throttle-initial":0}}' \
        '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":"fast"}}' \
        '{"execute":"migrate-set-parameters","arguments":{"bogus":1}}' \
        '{"execute":"migrate-set-parameters","arguments":{"downtime-limit":50,"max-bandwidth":1000000}}' \
        query-migrate-parameters
    assert_line --index 0 --partial "'cpu-throttle-initial' must be between 1 and 99"
    assert_line --index 1 --partial "expected: integer"
    assert_line --index 2 --partial "'bogus'"
    assert_line --index 3 '{"return": {}}'
    assert_line --index 4 --partial '"downtime-limit": 50'
    assert_line --index 4 --partial '"max-bandwidth": 1000000'
    assert_line --index 4 --partial '"cpu-throttle-initial": 20'
}

@test "QMP migrate-incoming after -incoming defer, migrate_cancel, errors" {
    hop_qmp_start dst -m 32M -S -incoming defer
    hop_qmp_start src -m 32M
    wait_filled src
    run qmp dst '{"execute":"migrate-incoming","arguments":{"uri":"unix:'"$D"'/mig.sock"}}' \
        '{"execute":"migrate-incoming","arguments":{"uri":"unix:'"$D"'/mig2.sock"}}'
    assert_line --index 0 '{"return": {}}'
    assert_line --index 1 --partial '"error"'
    # A slow migration, cancelled over QMP.
    run qmp src '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":1000000}}' \
        '{"execute":"migrate","arguments":{"uri":"unix:'"$D"'/mig.sock"}}'
    assert_line --index 1 '{"return": {}}'
    wait_mig src active 10
    run qmp src '{"execute":"migrate","arguments":{"uri":"unix:'"$D"'/mig.sock"}}' \
        '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"xbzrle","state":true}]}}' \
        query-migrate migrate_cancel
    assert_line --index 0 --partial "There's a migration process in progress"
    assert_line --index 1 --partial "while a migration is in progress"
    assert_line --index 2 --partial '"status": "active"'
    assert_line --index 2 --partial '"expected-downtime"'
    assert_line --index 3 '{"return": {}}'
    wait_mig src cancelled 10
    run qmp src query-migrate query-status
    assert_line --index 0 --partial '"status": "cancelled"'
    assert_line --index 1 --partial '"status": "running"'
    run qmp src '{"execute":"migrate","arguments":{"uri":"bogus:x"}}' \
        '{"execute":"migrate-incoming","arguments":{"uri":"unix:'"$D"'/x.sock"}}'
    assert_line --index 0 --partial "unknown migration protocol"
    assert_line --index 1 --partial "'-incoming' was not specified"
}

@test "QMP query-migrate after a failure carries error-desc" {
    hop_qmp_start src -m 16M
    run qmp src '{"execute":"migrate","arguments":{"uri":"unix:'"$D"'/none.sock"}}' \
        query-migrate
    assert_line --index 0 --partial "cannot connect to unix:$D/none.sock"
    assert_line --index 1 --partial '"status": "failed"'
    assert_line --index 1 --partial '"error-desc": "cannot connect to unix:'
}
