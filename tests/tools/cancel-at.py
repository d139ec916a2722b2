#!/usr/bin/python3
"""Cancels a migration at a chosen moment, over QMP.

  cancel-at.py SOCKET URI STATUS

Connects to the QMP socket SOCKET, starts `migrate URI`, polls
query-migrate every 10 ms until the status is STATUS, sends migrate_cancel
at once, then waits for the migration to end and prints its final status.
Every wait is bounded (60 s); exits 1 if STATUS never came or the
migration did not end, or if hop hung up (it died).
"""
import sys
import time

import qmp

ACTIVE = ("setup", "active", "pre-switchover", "device", "postcopy-active",
          "cancelling")


def main(argv):
    path, uri, want = argv[1:4]
    q = qmp.Client(path, timeout=60)
    q.execute("migrate", {"uri": uri})
    deadline = time.time() + 60
    seen = []
    while True:
        st = q.execute("query-migrate").get("status", "none")
        if not seen or seen[-1] != st:
            seen.append(st)
        if st == want:
            q.execute("migrate_cancel")
            break
        if st not in ACTIVE or time.time() > deadline:
            print("never reached %s: saw %s" % (want, " ".join(seen)))
            return 1
        time.sleep(0.01)
    while True:
        st = q.execute("query-migrate").get("status", "none")
        if st not in ACTIVE:
            print(st)
            return 0
        if time.time() > deadline:
            print("still %s after the cancel" % st)
            return 1
        time.sleep(0.01)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (EOFError, OSError) as e:
        print("error: %s" % e)
        sys.exit(1)
