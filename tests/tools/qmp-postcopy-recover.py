#!/usr/bin/python3
"""A postcopy migration paused and recovered over QMP, as a QEMU user
drives one.

  qmp-postcopy-recover.py SRC_SOCKET DST_SOCKET URI NEW_URI

On both ends: capabilities events and postcopy-ram on.  The source
migrates to URI with max-postcopy-bandwidth 1 MiB/s, switches with
migrate-start-postcopy, and once both ends are postcopy-active the
source's migrate-pause cuts the link.  When both ends say postcopy-paused, the
destination's migrate-recover listens on NEW_URI and the source's
migrate (resume: true) connects there; then the bandwidth limit goes and
the migration completes.  Before the pause, migrate-recover and a migrate
with resume are tried and must be refused; their errors are printed.
Prints each end's MIGRATION statuses, in order, on one line.  Every wait
is bounded.
"""
import sys
import time

import qmp


def status(q):
    return q.execute("query-migrate").get("status")


def wait(q, want, secs=60):
    deadline = time.time() + secs
    while True:
        st = status(q)
        if st == want:
            return
        if time.time() > deadline:
            raise SystemExit("waited %d s for %s, status %s" % (secs, want, st))
        time.sleep(0.05)


def error_of(q, name, args=None):
    msg = q.cmd(name, args)
    return msg["error"]["desc"] if "error" in msg else "no error"


def main():
    src = qmp.Client(sys.argv[1], timeout=30)
    dst = qmp.Client(sys.argv[2], timeout=30)
    uri, new_uri = sys.argv[3], sys.argv[4]
    caps = {"capabilities": [{"capability": "events", "state": True},
                             {"capability": "postcopy-ram", "state": True}]}
    src.execute("migrate-set-capabilities", caps)
    dst.execute("migrate-set-capabilities", caps)
    src.execute("migrate-set-parameters", {"max-bandwidth": 4 << 20,
                                           "downtime-limit": 1,
                                           "max-postcopy-bandwidth": 1 << 20})
    src.execute("migrate", {"uri": uri})
    wait(src, "active")
    print("recover early:", error_of(dst, "migrate-recover", {"uri": new_uri}))
    print("resume early:", error_of(src, "migrate",
                                    {"uri": new_uri, "resume": True}))
    src.execute("migrate-start-postcopy")
    wait(src, "postcopy-active")
    # The guest runs at the destination: a pause before that, mid-switch,
    # would lose it (as in QEMU).
    wait(dst, "postcopy-active")
    src.execute("migrate-pause")
    wait(src, "postcopy-paused")
    wait(dst, "postcopy-paused")
    dst.execute("migrate-recover", {"uri": new_uri})
    print("recover twice:", error_of(dst, "migrate-recover", {"uri": new_uri}))
    src.execute("migrate", {"uri": new_uri, "resume": True})
    wait(src, "postcopy-active")
    src.execute("migrate-set-parameters", {"max-postcopy-bandwidth": 0})
    wait(src, "completed", 120)
    wait(dst, "completed")
    for name, q in (("src", src), ("dst", dst)):
        q.execute("query-status")
        print("%s events: %s" % (name, " ".join(
            e["data"]["status"] for e in q.events
            if e["event"] == "MIGRATION")))


if __name__ == "__main__":
    main()
