#!/usr/bin/python3
"""One postcopy migration measured over QMP, for bench/postcopy.sh (hop or
QEMU).

  pcrun.py SRC_QMP DST_QMP URI BANDWIDTH AFTER_S [preempt]
            [--serial SRC_SERIAL DST_SERIAL]

The destination (started with -incoming defer) gets postcopy-ram and
postcopy-blocktime, then migrate-incoming URI; the source gets
postcopy-ram, max-bandwidth BANDWIDTH (bytes/s) and downtime-limit 1 ms,
so that precopy of a dirtying guest never converges (with "preempt",
both ends get postcopy-preempt too), starts `migrate`,
and after AFTER_S seconds (still active) migrate-start-postcopy.  Polls
the source's query-migrate every 2 ms until it completes and the
destination's until it completes too.  Prints one JSON object:
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
tell.  Every wait is bounded.
"""
import json
import os
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


def main(argv):
    serial = [None, None]
    if "--serial" in argv:
        i = argv.index("--serial")
        serial = argv[i + 1:i + 3]
        argv = argv[:i] + argv[i + 3:]
    src_path, dst_path, uri = argv[1], argv[2], argv[3]
    bw, after = int(argv[4]), float(argv[5])
    extra = ["postcopy-preempt"] if argv[6:7] == ["preempt"] else []
    dst = Qmp(dst_path)
    src = Qmp(src_path)
    dst.cmd("migrate-set-capabilities", capabilities=[
        {"capability": c, "state": True}
        for c in ["postcopy-ram", "postcopy-blocktime"] + extra])
    dst.cmd("migrate-incoming", uri=uri)
    src.cmd("migrate-set-capabilities", capabilities=[
        {"capability": c, "state": True}
        for c in ["postcopy-ram"] + extra])
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
    deadline = time.monotonic() + 600
    p0 = None
    while time.monotonic() < deadline:
        info = src.cmd("query-migrate")
        if p0 is None and info.get("status") == "postcopy-active":
            p0 = (size(serial[1]), time.monotonic())
        if info.get("status") in DONE:
            break
        time.sleep(0.002)
    while time.monotonic() < deadline:
        dinfo = dst.cmd("query-migrate")
        if dinfo.get("status") in DONE:
            break
        time.sleep(0.002)
    postcopy_pps = None
    if serial[1] and p0 and time.monotonic() > p0[1]:
        postcopy_pps = (size(serial[1]) - p0[0]) / (time.monotonic() - p0[1])
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
    }))
    return 0 if info.get("status") == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
