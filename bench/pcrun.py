#!/usr/bin/python3
"""One postcopy migration measured over QMP, for bench/postcopy.sh (hop or
QEMU).

  pcrun.py SRC_QMP DST_QMP URI BANDWIDTH AFTER_S [preempt]
            [--serial SRC_SERIAL DST_SERIAL] [--dst-pid PID]

The destination (started with -incoming defer) gets postcopy-ram and
postcopy-blocktime, then migrate-incoming URI; the source gets
postcopy-ram, max-bandwidth BANDWIDTH (bytes/s) and downtime-limit 1 ms,
so that precopy of a dirtying guest never converges (with "preempt",
both ends get postcopy-preempt too), starts `migrate`,
and after AFTER_S seconds (still active) migrate-start-postcopy.  From
then on it polls nothing (a poll costs a 2-CPU host's guests time): both
ends have the events capability, and their MIGRATION events say when
postcopy begins and ends.  Prints one JSON object:
total_ms and downtime_ms as the source's query-migrate has them;
switch_ms from the source's STOP event to the destination's RESUME event
(the QMP events' timestamps: the switch as seen from outside);
blocktime_ms, vcpu_blocktime_ms and latency_us as the destination's
query-migrate has them (latency: postcopy-latency, ns in QEMU 10.1 and
hop, absent from QEMU 7.2: null); postcopy_requests; wall_ms from migrate
to the destination's completed state.  With --serial (memtest's serial
files: a '.' per pass), also idle_pps (the source's passes per second in
the second before migrate) and postcopy_pps (the destination's, from the
first sight of postcopy-active to its completed state): how fast the
guest goes on while its pages arrive, which blocktime alone does not
tell.  postcopy_ms: from the destination's postcopy-active event to its
completed one.  With --dst-pid (the destination's process), over that
span, from its first vCPU thread's /proc schedstat: vcpu_run_ms, the
time it ran, and vcpu_asleep_ms, the time it neither ran nor waited for
a CPU: blocked on missing pages, whether or not the fault thread saw the
fault before its page came (blocktime counts only those it saw), the same
measure for both tools.  Every wait is bounded.
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from migrun import Qmp  # noqa: E402

DONE = ("completed", "failed", "cancelled")


def event_time(q, name):
    for _, m in q.events:
        if m.get("event") == name:
            ts = m["timestamp"]
            return ts["seconds"] + ts["microseconds"] / 1e6
    return None


def size(path):
    return os.stat(path).st_size if path else 0


def wait_status(q, wanted, deadline):
    """The status of the next MIGRATION event in wanted (events read
    before included; q.events keeps them all), or None at the deadline."""
    while True:
        for k in range(getattr(q, "cursor", 0), len(q.events)):
            m = q.events[k][1]
            if m.get("event") == "MIGRATION" and \
                    m["data"]["status"] in wanted:
                q.cursor = k + 1
                return m["data"]["status"]
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        q.sock.settimeout(left)
        try:
            msg = q.recv()
        except socket.timeout:
            return None
        if "event" in msg:
            q.events.append((time.monotonic(), msg))


def vcpu_times(pid):
    """(run ns, runnable-but-waiting ns) of the first vCPU thread of pid:
    hop's "vcpu0", QEMU's "CPU 0/TCG" or "CPU 0/KVM" (debug-threads=on);
    None if there is none."""
    if not pid:
        return None
    for tid in sorted(os.listdir("/proc/%d/task" % pid), key=int):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            if comm not in ("vcpu0", "CPU 0/TCG", "CPU 0/KVM"):
                continue
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                run, wait = f.read().split()[:2]
            return int(run), int(wait)
        except OSError:
            continue
    return None


def main(argv):
    serial = [None, None]
    if "--serial" in argv:
        i = argv.index("--serial")
        serial = argv[i + 1:i + 3]
        argv = argv[:i] + argv[i + 3:]
    dst_pid = None
    if "--dst-pid" in argv:
        i = argv.index("--dst-pid")
        dst_pid = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    src_path, dst_path, uri = argv[1], argv[2], argv[3]
    bw, after = int(argv[4]), float(argv[5])
    extra = ["postcopy-preempt"] if argv[6:7] == ["preempt"] else []
    dst = Qmp(dst_path)
    src = Qmp(src_path)
    dst.cmd("migrate-set-capabilities", capabilities=[
        {"capability": c, "state": True}
        for c in ["postcopy-ram", "postcopy-blocktime", "events"] + extra])
    dst.cmd("migrate-incoming", uri=uri)
    src.cmd("migrate-set-capabilities", capabilities=[
        {"capability": c, "state": True}
        for c in ["postcopy-ram", "events"] + extra])
    src.cmd("migrate-set-parameters", **{"max-bandwidth": bw,
                                         "downtime-limit": 1})
    a0, i0 = size(serial[0]), time.monotonic()
    time.sleep(1)
    idle_pps = (size(serial[0]) - a0) / (time.monotonic() - i0)
    t0 = time.monotonic()
    src.cmd("migrate", uri=uri)
    time.sleep(after)
    st = src.cmd("query-migrate")["status"]
    if st != "active":
        print(json.dumps({"error": "before the switch the status is %s" % st}))
        return 1
    src.cmd("migrate-start-postcopy")
    # From here on nothing polls: the destination's MIGRATION events say
    # when postcopy began and ended there.
    deadline = time.monotonic() + 600
    wait_status(dst, ("postcopy-active",) + DONE, deadline)
    p0 = (size(serial[1]), time.monotonic())
    v0 = vcpu_times(dst_pid)
    dst_end = wait_status(dst, DONE, deadline)
    v1 = vcpu_times(dst_pid)
    p1 = (size(serial[1]), time.monotonic())
    wait_status(src, DONE, deadline)
    info = src.cmd("query-migrate")
    dinfo = dst.cmd("query-migrate")
    postcopy_pps = None
    if serial[1] and p1[1] > p0[1]:
        postcopy_pps = (p1[0] - p0[0]) / (p1[1] - p0[1])
    asleep = run = None
    if v0 and v1 and dst_end == "completed":
        run = (v1[0] - v0[0]) / 1e6
        asleep = ((p1[1] - p0[1]) * 1e9 - (v1[0] - v0[0]) -
                  (v1[1] - v0[1])) / 1e6
    wall = (time.monotonic() - t0) * 1000
    # The events came while polling; a last short wait for stragglers.
    dst.cmd("query-status")
    stop, resume = event_time(src, "STOP"), event_time(dst, "RESUME")
    lat = dinfo.get("postcopy-latency")
    print(json.dumps({
        "status": info.get("status"),
        "dst_status": dinfo.get("status"),
        "error": info.get("error-desc"),
        "total_ms": info.get("total-time"),
        "downtime_ms": info.get("downtime"),
        "switch_ms": round((resume - stop) * 1000, 2)
        if stop is not None and resume is not None else None,
        "blocktime_ms": dinfo.get("postcopy-blocktime"),
        "vcpu_blocktime_ms": dinfo.get("postcopy-vcpu-blocktime"),
        "latency_us": round(lat / 1000, 1) if lat is not None else None,
        "postcopy_requests": info.get("ram", {}).get("postcopy-requests"),
        "wall_ms": round(wall, 1),
        "idle_pps": round(idle_pps, 1) if serial[0] else None,
        "postcopy_pps": round(postcopy_pps, 1)
        if postcopy_pps is not None else None,
        "postcopy_ms": round((p1[1] - p0[1]) * 1000, 1),
        "vcpu_asleep_ms": round(asleep, 1) if asleep is not None else None,
        "vcpu_run_ms": round(run, 1) if run is not None else None,
    }))
    return 0 if info.get("status") == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
