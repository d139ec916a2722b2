#!/usr/bin/env bats
# QMP snapshot-save, snapshot-load and snapshot-delete as jobs, as QEMU
# 6.0+ runs them: they answer {} at once, work on a thread of their own
# while the monitor answers, report through JOB_STATUS_CHANGE and
# query-jobs until job-dismiss.  Driven by QEMU's own python QMP client
# (HOP_QEMU_PYTHON) the way QEMU's iotests drive these jobs, and checked
# with qemu-img.

load helper
load snap-helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    PY=/usr/bin/python3
    JOB=$HOP_SRC/tests/tools/snapshot-job.py
}

teardown() {
    hop_stop_all
}

need_qemu_python() {
    [ -n "${HOP_QEMU_PYTHON:-}" ] ||
        skip "HOP_QEMU_PYTHON is not set (QEMU's python/ folder, for its QMP client)"
    [ -f "$HOP_QEMU_PYTHON/qemu/qmp/__init__.py" ] ||
        skip "no qemu/qmp in HOP_QEMU_PYTHON=$HOP_QEMU_PYTHON"
}

start_qmp() {
    hop_start vm -m 32M -qmp "unix:$D/q.sock,server,nowait" "$@"
    wait_for "[ -S '$D/q.sock' ]" 10
}

# job COMMAND ARGS-JSON: one job through QEMU's client (tests/tools/snapshot-job.py).
job() {
    timeout 120 env PYTHONPATH="$HOP_QEMU_PYTHON" "$PY" "$JOB" "$D/q.sock" "$@"
}

# hop's own test client, for replies that are errors: the replies, one
# a line, without the greeting, the negotiation and the events.
q() {
    timeout 60 "$PY" "$HOP_SRC/tests/tools/qmp.py" "$D/q.sock" "$@" |
        grep -v '^{"event"' | tail -n +3
}

qemu_tags() {
    qemu-img snapshot -U -l "$1" | awk 'NR > 2 { print $2 }'
}

@test "QEMU's QMP client runs snapshot-save, -load and -delete as jobs to the end" {
    need_qemu_python
    "$HOP" img create "$D/d.qcow2" 16M >/dev/null
    start_qmp -drive "file=$D/d.qcow2"
    run job snapshot-save '{"job-id":"save0","tag":"s1","vmstate":"ide0-hd0","devices":["ide0-hd0"]}'
    assert_success
    assert_line "answer: {}"
    assert_line "statuses: created running waiting pending concluded null"
    # All of RAM, as progress; no error.
    assert_line 'job: {"current-progress": 33554432, "id": "save0", "status": "concluded", "total-progress": 33554432, "type": "snapshot-save"}'
    assert_line "after: []"
    assert_line "status: running"
    image_ok "$D/d.qcow2"
    run qemu_tags "$D/d.qcow2"
    assert_output s1

    # The id is free again once dismissed.
    run job snapshot-load '{"job-id":"save0","tag":"s1"}'
    assert_success
    assert_line "statuses: created running waiting pending concluded null"
    assert_line --regexp '^job: \{"current-progress": ([0-9]+), "id": "save0", "status": "concluded", "total-progress": \1, "type": "snapshot-load"\}$'
    assert_line "status: running"

    run job snapshot-delete '{"job-id":"del","tag":"s1","devices":["ide0-hd0"]}'
    assert_success
    assert_line "statuses: created running waiting pending concluded null"
    assert_line 'job: {"current-progress": 1, "id": "del", "status": "concluded", "total-progress": 1, "type": "snapshot-delete"}'
    assert_line "status: running"
    image_ok "$D/d.qcow2"
    run qemu_tags "$D/d.qcow2"
    assert_output ""
}

@test "a snapshot job that fails concludes with its error in query-jobs; the guest runs on and the image stays clean" {
    need_qemu_python
    # A drive that cannot take a snapshot.
    truncate -s 1M "$D/r.img"
    start_qmp -drive "file=$D/r.img,format=raw"
    run job snapshot-save '{"job-id":"j","tag":"s1"}'
    assert_success
    assert_line "answer: {}"
    assert_line "statuses: created running aborting concluded null"
    assert_line --regexp '^job: \{"current-progress": 0, "error": ".*does not support snapshots.*", "id": "j", "status": "concluded", "total-progress": 1, "type": "snapshot-save"\}$'
    assert_line "status: running"
    hop_stop_all

    "$HOP" img create "$D/d.qcow2" 16M >/dev/null
    start_qmp -drive "file=$D/d.qcow2"
    run job snapshot-load '{"job-id":"j","tag":"nope","devices":["ide0-hd0"]}'
    assert_line "statuses: created running aborting concluded null"
    assert_line --partial "\"error\": \"Snapshot 'nope' does not exist in drive 'ide0-hd0'"
    assert_line "status: running"
    run job snapshot-delete '{"job-id":"j","tag":"nope","devices":["ide0-hd0"]}'
    assert_line --partial "\"error\": \"Snapshot 'nope' not found\""
    assert_line "status: running"
    image_ok "$D/d.qcow2"
    run qemu_tags "$D/d.qcow2"
    assert_output ""
}

@test "snapshot-save refuses a tag that exists, as QEMU does; HMP savevm replaces it" {
    need_qemu_python
    "$HOP" img create "$D/d.qcow2" 16M >/dev/null
    start_qmp -drive "file=$D/d.qcow2"
    run job snapshot-save '{"job-id":"a","tag":"s1"}'
    assert_line "statuses: created running waiting pending concluded null"
    local date1
    date1=$(qemu-img snapshot -U -l "$D/d.qcow2" | awk '$2 == "s1" { print $5, $6 }')
    sleep 1.1
    run job snapshot-save '{"job-id":"b","tag":"s1"}'
    assert_line "statuses: created running aborting concluded null"
    assert_line --partial "\"error\": \"Snapshot 's1' already exists in one or more devices\""
    assert_line "status: running"
    # Untouched: one s1, the first one.
    image_ok "$D/d.qcow2"
    run qemu_tags "$D/d.qcow2"
    assert_output s1
    assert_equal "$(qemu-img snapshot -U -l "$D/d.qcow2" | awk '$2 == "s1" { print $5, $6 }')" "$date1"
    # The background form refuses it too.
    run job snapshot-save '{"job-id":"c","tag":"s1","x-background":true}'
    assert_line --partial "already exists in one or more devices"
    # HMP's savevm replaces it, as QEMU's does.
    run hop_mon vm "savevm s1"
    refute_output --partial Error
    run qemu_tags "$D/d.qcow2"
    assert_output s1
    refute [ "$(qemu-img snapshot -U -l "$D/d.qcow2" | awk '$2 == "s1" { print $5, $6 }')" = "$date1" ]
    image_ok "$D/d.qcow2"
}

@test "a snapshot-save job that fails after writing the state leaves the image clean and the guest running" {
    need_qemu_python
    "$HOP" img create "$D/d.qcow2" 16M >/dev/null
    HOP_FAULT=savevm-state-written:fail start_qmp -drive "file=$D/d.qcow2"
    run job snapshot-save '{"job-id":"j","tag":"s1"}'
    assert_success
    assert_line "statuses: created running aborting concluded null"
    assert_line --partial '"error": "injected fault at savevm-state-written"'
    assert_line "status: running"
    image_ok "$D/d.qcow2"
    run qemu_tags "$D/d.qcow2"
    assert_output ""
}

@test "job ids as QEMU checks them; job-dismiss and job-cancel answer QEMU's errors" {
    "$HOP" img create "$D/d.qcow2" 16M >/dev/null
    start_qmp -drive "file=$D/d.qcow2"
    run q '{"execute":"snapshot-save","arguments":{"tag":"s"}}' \
        '{"execute":"snapshot-save","arguments":{"job-id":"1x","tag":"s"}}' \
        '{"execute":"snapshot-delete","arguments":{"job-id":"d","tag":"nope"}}' \
        '{"execute":"snapshot-save","arguments":{"job-id":"d","tag":"s"}}' \
        '{"execute":"job-dismiss","arguments":{"id":"nosuch"}}' \
        '{"execute":"job-cancel","arguments":{"id":"nosuch"}}'
    assert_success
    assert_line --index 0 --partial "Parameter 'job-id' is missing"
    assert_line --index 1 --partial "Invalid job ID '1x'"
    assert_line --index 2 '{"return": {}}'
    # Not dismissed yet, concluded or not.
    assert_line --index 3 --partial "Job ID 'd' already in use"
    assert_line --index 4 --partial '"desc": "Job not found"'
    assert_line --index 5 --partial '"desc": "Job not found"'
    wait_for "q query-jobs | grep -q concluded" 30
    run q '{"execute":"job-cancel","arguments":{"id":"d"}}' \
        '{"execute":"job-dismiss","arguments":{"id":"d"}}' \
        '{"execute":"job-dismiss","arguments":{"id":"d"}}' query-jobs
    assert_line --index 0 --partial "Job 'd' in state 'concluded' cannot accept command verb 'cancel'"
    assert_line --index 1 '{"return": {}}'
    assert_line --index 2 --partial '"desc": "Job not found"'
    assert_line --index 3 '{"return": []}'
}

@test "while a snapshot job runs the monitor answers, and conflicting commands say which job holds them" {
    "$HOP" img create "$D/d.qcow2" 16M >/dev/null
    start_qmp -drive "file=$D/d.qcow2"
    run hop_mon vm "savevm t1"
    refute_output --partial Error
    # The job ends by noting the snapshot in the catalog: holding the
    # catalog's lock keeps it running (up to the catalog's 10 s wait)
    # while the checks run.
    run timeout 60 "$PY" - "$D/q.sock" "$HOP_CATALOG" "$HOP_SRC/tests/tools" <<'PY'
import json, sqlite3, sys, time
sys.path.insert(0, sys.argv[3])
import qmp
db = sqlite3.connect(sys.argv[2], timeout=5, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
c = qmp.Client(sys.argv[1])
print(json.dumps(c.cmd("snapshot-save", {"job-id": "j", "tag": "t2"})))
for cmd, args in [("query-jobs", None),
                  ("snapshot-save", {"job-id": "k", "tag": "t3"}),
                  ("snapshot-delete", {"job-id": "k", "tag": "t1"}),
                  ("migrate", {"uri": "exec:cat >/dev/null"}),
                  ("stop", None), ("cont", None), ("system_reset", None),
                  ("human-monitor-command", {"command-line": "delvm t1"}),
                  ("job-dismiss", {"id": "j"}),
                  ("job-cancel", {"id": "j"})]:
    r = c.cmd(cmd, args)
    print(cmd, r["error"]["desc"] if "error" in r else json.dumps(r["return"]))
db.execute("COMMIT")
db.close()
for _ in range(600):
    jobs = c.execute("query-jobs")
    if jobs[0]["status"] == "concluded":
        break
    time.sleep(0.1)
print("concluded", "error" in jobs[0])
print("dismiss", json.dumps(c.cmd("job-dismiss", {"id": "j"})))
print("status", c.execute("query-status")["status"])
PY
    assert_success
    local busy="snapshot-save job 'j' is still running (wait for it to conclude: query-jobs)"
    assert_line --index 0 '{"return": {}}'
    assert_line --index 1 --regexp '^query-jobs \[\{"id": "j", "type": "snapshot-save", "status": "running", "current-progress": [0-9]+, "total-progress": [0-9]+\}\]$'
    assert_line --index 2 "snapshot-save snapshot-save: $busy"
    assert_line --index 3 "snapshot-delete snapshot-delete: $busy"
    assert_line --index 4 "migrate migrate: $busy"
    assert_line --index 5 "stop stop: $busy"
    assert_line --index 6 "cont cont: $busy"
    assert_line --index 7 "system_reset system_reset: $busy"
    assert_line --index 8 "human-monitor-command \"Error: delvm: $busy\\n\""
    assert_line --index 9 "job-dismiss Job 'j' in state 'running' cannot accept command verb 'dismiss'"
    assert_line --index 10 "job-cancel Job 'j': a snapshot-save job cannot be cancelled; it runs to the end"
    assert_line --index 11 "concluded False"
    assert_line --index 12 'dismiss {"return": {}}'
    assert_line --index 13 "status running"
    image_ok "$D/d.qcow2"
    run qemu_tags "$D/d.qcow2"
    assert_output "$(printf 't1\nt2')"
}
