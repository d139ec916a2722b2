#!/usr/bin/python3
"""A postcopy migration driven over QMP, as a QEMU user drives one.

  qmp-postcopy.py SOCKET URI [DST_SOCKET]

With the capabilities events and postcopy-ram on and
max-postcopy-bandwidth 16 MiB/s, starts `migrate` to URI, lets precopy
run two seconds, checks it is still active (it never converges), sends migrate-start-postcopy and polls query-migrate until the
migration ends.  Prints the MIGRATION statuses seen, in order, on one
line, then the final query-migrate's ram.postcopy-requests and
ram.postcopy-bytes.  With DST_SOCKET, a client of the destination's QMP
connected before the migration starts prints the destination's events
(MIGRATION with its status, others by name) once the migration ended.
Every wait is bounded.
"""
import sys
import time

import qmp


def main():
    path, uri = sys.argv[1], sys.argv[2]
    dst = qmp.Client(sys.argv[3], timeout=30) if len(sys.argv) > 3 else None
    q = qmp.Client(path, timeout=30)
    q.execute("migrate-set-capabilities", {"capabilities": [
        {"capability": "events", "state": True},
        {"capability": "postcopy-ram", "state": True}]})
    # Pages come slowly after the switch: the guest asks for some.
    q.execute("migrate-set-parameters", {"max-postcopy-bandwidth": 16 << 20})
    q.execute("migrate", {"uri": uri})
    time.sleep(2)
    st = q.execute("query-migrate")["status"]
    if st != "active":
        sys.exit("before migrate-start-postcopy the status is %s" % st)
    q.execute("migrate-start-postcopy")
    deadline = time.time() + 120
    while time.time() < deadline:
        r = q.execute("query-migrate")
        if r["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.2)
    else:
        sys.exit("no end within 120 s: %s" % r)
    q.events += [m for m in q.recv_some(100, 0.5) if "event" in m]
    seen = [e["data"]["status"] for e in q.events
            if e.get("event") == "MIGRATION"]
    print("events:", " ".join(seen))
    print("status:", r["status"])
    print("postcopy-requests:", r["ram"]["postcopy-requests"])
    print("postcopy-bytes:", r["ram"]["postcopy-bytes"])
    if dst:
        # The destination's end comes a moment after the source's.
        names = []
        deadline = time.time() + 30
        while time.time() < deadline and "MIGRATION:completed" not in names:
            for e in dst.recv_some(10, 1):
                if "event" in e:
                    ev = e["event"]
                    if ev == "MIGRATION":
                        ev += ":" + e["data"]["status"]
                    names.append(ev)
        print("dst events:", " ".join(names))


if __name__ == "__main__":
    main()
