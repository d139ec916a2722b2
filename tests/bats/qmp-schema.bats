#!/usr/bin/env bats
# QMP describing itself: query-commands, query-events and query-qmp-schema
# agree with the tables hop-monitor(7) is generated from; the first
# queries of a management client (query-kvm, query-uuid, query-block,
# checked against qemu-img); and QEMU's own python QMP client and
# qmp-shell, where they are available (HOP_QEMU_PYTHON).

load helper

setup() {
    hop_sandbox
    D=$BATS_TEST_TMPDIR
    PY=/usr/bin/python3
    export PYTHONPATH="$HOP_SRC/tests/tools"
}

teardown() {
    hop_stop_all
}

start_qmp() {
    hop_start vm -m 32M -qmp "unix:$D/qmp.sock,server,nowait" "$@"
    wait_for "[ -S '$D/qmp.sock' ]" 10
}

# q COMMAND [ARGS-JSON]: prints the "return" value of one command as JSON.
q() {
    timeout 60 "$PY" -c '
import json, sys, qmp
c = qmp.Client(sys.argv[1])
args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
print(json.dumps(c.execute(sys.argv[2], args)))
' "$D/qmp.sock" "$@"
}

# The names the manual lists in its section (Commands, Events), one a line.
man_section() {
    "$HOP" help --monitor-man | awk -v sec="$1" '
        /^\.SS / { on = ($2 == sec); next }
        /^\.S[HS] / { on = 0 }
        on && prev == ".TP" && /^\.B / { n = $2; gsub(/\\-/, "-", n); print n }
        { prev = $0 }'
}

@test "query-commands lists the commands of the table, as the manual does" {
    start_qmp
    run q query-commands
    assert_success
    local got want
    got=$(printf '%s\n' "$output" | "$PY" -c '
import json, sys
for c in json.load(sys.stdin):
    assert set(c) == {"name"}, c
    print(c["name"])' | sort)
    want=$(man_section Commands | sort)
    [ -n "$want" ] || fail "no commands in the manual's Commands section"
    assert_equal "$got" "$want"
    # The ones a client relies on to discover the rest.
    for c in qmp_capabilities query-commands query-qmp-schema query-events \
             query-status query-kvm query-uuid query-block; do
        grep -qx -- "$c" <<<"$got" || fail "query-commands lacks $c"
    done
}

@test "query-events lists the events of the table; the ones sent are among them" {
    start_qmp
    run q query-events
    assert_success
    local got
    got=$(printf '%s\n' "$output" | "$PY" -c '
import json, sys
for e in json.load(sys.stdin):
    print(e["name"])' | sort)
    assert_equal "$got" "$(man_section Events | sort)"
    # stop and cont send STOP and RESUME.
    run timeout 60 "$PY" "$HOP_SRC/tests/tools/qmp.py" "$D/qmp.sock" \
        stop cont --events 1
    assert_success
    local ev
    for ev in $(printf '%s\n' "$output" | "$PY" -c '
import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if "event" in m:
        print(m["event"])'); do
        grep -qx -- "$ev" <<<"$got" || fail "event $ev is not in query-events"
    done
}

@test "query-qmp-schema: SchemaInfo entries, every command and event with its argument object" {
    start_qmp
    run timeout 60 "$PY" -c '
import sys, qmp
c = qmp.Client(sys.argv[1])
schema = c.execute("query-qmp-schema")
commands = [x["name"] for x in c.execute("query-commands")]
events = [x["name"] for x in c.execute("query-events")]
byname = {}
metas = {"builtin", "enum", "array", "object", "alternate", "command", "event"}
jtypes = {"string", "number", "int", "boolean", "null", "object", "array",
          "value"}
for e in schema:
    assert e["name"] not in byname, "twice: %s" % e["name"]
    assert e["meta-type"] in metas, e
    byname[e["name"]] = e
def meta(name):
    assert name in byname, "no schema entry %r" % name
    return byname[name]["meta-type"]
for e in schema:
    m = e["meta-type"]
    if m == "builtin":
        assert e["json-type"] in jtypes, e
    elif m == "enum":
        assert [v["name"] for v in e["members"]] == e["values"], e
    elif m == "array":
        meta(e["element-type"])
    elif m == "object":
        for mem in e["members"]:
            meta(mem["type"])
            assert mem.get("default", None) is None, mem
    elif m == "command":
        assert meta(e["arg-type"]) == "object", e
        meta(e["ret-type"])
    elif m == "event":
        assert meta(e["arg-type"]) == "object", e
for name in commands:
    assert meta(name) == "command", name
for name in events:
    assert meta(name) == "event", name
assert sorted(commands) == sorted(n for n, e in byname.items()
                                  if e["meta-type"] == "command")
# Arguments as the table checks them: migrate needs uri, may have detach.
mig = {m["name"]: m for m in byname[byname["migrate"]["arg-type"]]["members"]}
assert mig["uri"]["type"] == "str" and "default" not in mig["uri"], mig
assert mig["detach"]["type"] == "bool" and "default" in mig["detach"], mig
print("ok", len(schema), len(commands), len(events))
' "$D/qmp.sock"
    assert_success
    assert_output --regexp '^ok [0-9]+ [0-9]+ [0-9]+$'
}

@test "query-kvm with -accel emu: KVM built in (present), not enabled" {
    start_qmp -accel emu
    run q query-kvm
    assert_success
    assert_output '{"enabled": false, "present": true}'
    run q query-accel
    assert_output '{"accel": "emu"}'
}

@test "query-uuid: the -uuid given, or the null UUID" {
    start_qmp -uuid 5c2b0a7e-1f3d-4e2a-9b6c-0d8e7f6a5b4c
    run q query-uuid
    assert_success
    assert_output '{"UUID": "5c2b0a7e-1f3d-4e2a-9b6c-0d8e7f6a5b4c"}'
    hop_stop_all
    rm -f "$D/qmp.sock"
    start_qmp
    run q query-uuid
    assert_output '{"UUID": "00000000-0000-0000-0000-000000000000"}'
}

@test "query-memdev and info memdev: what QEMU 7.2 answers for the same options" {
    need_qemu_system
    local opts
    for opts in "" "-object memory-backend-memfd,id=m,size=64M,prealloc=on -machine memory-backend=m" \
        "-object memory-backend-file,id=f,size=64M,mem-path=$D,share=on -machine memory-backend=f"; do
        hop_stop_all
        rm -f "$D/qmp.sock" "$D/qemu.sock"
        # shellcheck disable=SC2086
        hop_start vm -m 64M -qmp "unix:$D/qmp.sock,server,nowait" $opts
        wait_for "[ -S '$D/qmp.sock' ]" 10
        # shellcheck disable=SC2086
        timeout 60 qemu-system-x86_64 -display none -S -m 64M $opts \
            -qmp "unix:$D/qemu.sock,server,nowait" &
        wait_for "[ -S '$D/qemu.sock' ]" 20
        run timeout 60 "$PY" - "$D/qmp.sock" "$D/qemu.sock" <<'PY'
import json, sys, qmp
hop, qemu = (qmp.Client(p) for p in sys.argv[1:3])
h, q = hop.execute("query-memdev"), qemu.execute("query-memdev")
# QEMU's members, equal; hop adds its own under x-hop-.
assert [{k: v for k, v in m.items() if not k.startswith("x-hop-")}
        for m in h] == q, (h, q)
assert all(m["x-hop-type"].startswith("memory-backend-") for m in h), h
hi = hop.execute("human-monitor-command", {"command-line": "info memdev"})
qi = qemu.execute("human-monitor-command", {"command-line": "info memdev"})
# QEMU's lines, in its order, with hop's two after "host nodes".
keep = [l for l in hi.splitlines() if not l.startswith(("  type:", "  page size:"))]
assert keep == qi.splitlines(), (hi, qi)
qemu.execute("quit")
PY
        assert_success
    done
}

# check_block OUTPUT-OF-query-block DEVICE FORMAT IMAGE: the drive and its
# image agree with qemu-img info.
check_block() {
    printf '%s\n' "$1" >"$D/block.json"
    qemu-img info -U --output=json "$4" >"$D/oracle.json"
    run "$PY" -c '
import json, sys
blocks = json.load(open(sys.argv[1]))
want = json.load(open(sys.argv[2]))
dev, fmt = sys.argv[3:5]
assert [b["device"] for b in blocks] == [dev], blocks
b = blocks[0]
ins = b["inserted"]
img = ins["image"]
assert ins["drv"] == fmt and ins["ro"] is False, ins
assert b["removable"] is False and b["locked"] is False, b
for k in ("filename", "format", "virtual-size", "cluster-size", "dirty-flag"):
    assert img.get(k) == want.get(k), (k, img.get(k), want.get(k))
assert ins["file"] == want["filename"], ins
key = lambda s: (s["id"], s["name"], s["vm-state-size"], s["date-sec"])
assert [key(s) for s in img.get("snapshots", [])] == \
    [key(s) for s in want.get("snapshots", [])], img
if fmt == "qcow2":
    assert img["snapshots"], img
    assert img["format-specific"]["data"]["compat"] == \
        want["format-specific"]["data"]["compat"], img
print("agree")
' "$D/block.json" "$D/oracle.json" "$2" "$3"
    assert_success
    assert_output agree
}

@test "query-block: the drive, its image as qemu-img info sees it" {
    qemu-img create -q -f qcow2 "$D/d.qcow2" 48M
    qemu-img snapshot -c before "$D/d.qcow2"
    start_qmp -drive "file=$D/d.qcow2"
    run q query-block
    assert_success
    check_block "$output" ide0-hd0 qcow2 "$D/d.qcow2"
    # A raw image on a drive left unattached.
    hop_stop_all
    rm -f "$D/qmp.sock"
    qemu-img create -q -f raw "$D/r.img" 1M
    start_qmp -drive "file=$D/r.img,format=raw,if=none"
    run q query-block
    assert_success
    check_block "$output" none0 raw "$D/r.img"
}

# ---- QEMU's own clients ----
# HOP_QEMU_PYTHON is the python/ folder of QEMU's source (DEVELOPERS.md
# says how to fetch it); qmp-shell is scripts/qmp/qmp-shell beside it.
need_qemu_python() {
    [ -n "${HOP_QEMU_PYTHON:-}" ] ||
        skip "HOP_QEMU_PYTHON is not set (QEMU's python/ folder, for its QMP client)"
    [ -f "$HOP_QEMU_PYTHON/qemu/qmp/__init__.py" ] ||
        skip "no qemu/qmp in HOP_QEMU_PYTHON=$HOP_QEMU_PYTHON"
}

@test "QEMU's python QMP client connects and runs hop's commands" {
    need_qemu_python
    qemu-img create -q -f qcow2 "$D/d.qcow2" 16M
    start_qmp -drive "file=$D/d.qcow2"
    run timeout 60 env PYTHONPATH="$HOP_QEMU_PYTHON" "$PY" -c '
import asyncio, sys
from qemu.qmp import QMPClient
from qemu.qmp.legacy import QEMUMonitorProtocol

async def run(path):
    c = QMPClient("hop")
    await c.connect(path)
    st = await c.execute("query-status")
    names = [x["name"] for x in await c.execute("query-commands")]
    schema = await c.execute("query-qmp-schema")
    await c.execute("stop")
    ev = await asyncio.wait_for(c.events.get(), 10)
    await c.execute("cont")
    await c.disconnect()
    return st, names, schema, ev

# The synchronous client of older scripts.
q = QEMUMonitorProtocol(sys.argv[1])
q.connect(negotiate=True)
blk = q.cmd("query-block")["return"]
assert blk[0]["inserted"]["image"]["format"] == "qcow2", blk
q.close()

st, names, schema, ev = asyncio.run(run(sys.argv[1]))
assert st["status"] == "running", st
assert "query-block" in names and "query-qmp-schema" in names, names
assert any(e["name"] == "query-block" and e["meta-type"] == "command"
           for e in schema)
assert ev["event"] == "STOP", ev
print("ok")
' "$D/qmp.sock"
    assert_success
    assert_output ok
}

@test "QEMU's qmp-shell completes hop's commands and runs them" {
    need_qemu_python
    qemu-img create -q -f qcow2 "$D/d.qcow2" 16M
    start_qmp -drive "file=$D/d.qcow2"
    # Completion comes from query-commands.
    run timeout 60 env PYTHONPATH="$HOP_QEMU_PYTHON" "$PY" -c '
import sys
from qemu.qmp.qmp_shell import QMPShell
s = QMPShell(sys.argv[1])
s.connect(negotiate=True)
s._fill_completion()
print(s._completer.complete("query-bl", 0))
print(s._completer.complete("query-st", 0))
s.close()
' "$D/qmp.sock"
    assert_success
    assert_output "$(printf 'query-block\nquery-status')"
    # And the shell itself, reading commands from its input.
    local shell=$HOP_QEMU_PYTHON/../scripts/qmp/qmp-shell
    [ -f "$shell" ] || shell="-m qemu.qmp.qmp_shell"
    run timeout 60 env PYTHONPATH="$HOP_QEMU_PYTHON" "$PY" $shell \
        "$D/qmp.sock" <<<$'query-status\nquery-block\nquery-uuid'
    assert_success
    assert_output --partial '{"return": {"running": true, "singlestep": false, "status": "running"}}'
    assert_output --partial '"device": "ide0-hd0"'
    assert_output --partial '"UUID": "00000000-0000-0000-0000-000000000000"'
}
