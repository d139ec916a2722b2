#!/usr/bin/python3
"""One background snapshot measured over QMP, for bench/bgsnap.sh (hop or
QEMU).

  bgrun.py QMP SERIAL URI

The guest (memtest) prints '.' on SERIAL after every pass over RAM.  Counts
the passes for two seconds without a save, then turns on the capabilities
background-snapshot and events, starts `migrate` to URI and waits for the
MIGRATION event that says completed (no polling: a monitor command every
few milliseconds slows a 2-CPU host's guest by itself).  Prints one line:
save_ms idle_passes_per_s during_passes_per_s.  Every wait is bounded.
"""
import os
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from migrun import Qmp  # noqa: E402


def passes(serial):
    return os.stat(serial).st_size


def main(argv):
    q = Qmp(argv[1])
    serial, uri = argv[2], argv[3]
    q.cmd("migrate-set-capabilities", capabilities=[
        {"capability": c, "state": True}
        for c in ("background-snapshot", "events")])
    a0, t0 = passes(serial), time.monotonic()
    time.sleep(2)
    a1, t1 = passes(serial), time.monotonic()
    idle = (a1 - a0) / (t1 - t0)
    q.events.clear()
    a0, t0 = passes(serial), time.monotonic()
    q.cmd("migrate", uri=uri)
    q.sock.settimeout(300)
    status = None
    while status not in ("completed", "failed", "cancelled"):
        seen = [m for _, m in q.events if m.get("event") == "MIGRATION"]
        if seen:
            status = seen[-1]["data"]["status"]
            q.events.clear()
            continue
        msg = q.recv()
        if "event" in msg:
            q.events.append((time.monotonic(), msg))
    a1, t1 = passes(serial), time.monotonic()
    if status != "completed":
        sys.exit("the save ended %s" % status)
    print("%d %.1f %.1f" % ((t1 - t0) * 1000, idle, (a1 - a0) / (t1 - t0)))


if __name__ == "__main__":
    main(sys.argv)
