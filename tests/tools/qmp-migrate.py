#!/usr/bin/python3
"""Migrates over QMP and reports what happened, for tests.

  qmp-migrate.py SOCKET [--cap NAME]... [--param NAME=INT]... [--timeout S] URI

Negotiates, sets the capabilities and parameters given, runs migrate,
then polls query-migrate (every 50 ms, bounded by --timeout, default 60 s)
until the migration leaves the active states.  Prints one line per event
("event NAME" or "event MIGRATION STATUS"), each reply to migrate and the
final query-migrate as JSON ("reply ..." / "final ...").  Exit status 0
when the migration completed, 1 otherwise.
"""
import json
import sys
import time

import qmp

ACTIVE = ("setup", "active", "pre-switchover", "device", "postcopy-active",
          "cancelling")


seen_states = []


def print_event(msg):
    ev = msg["event"]
    if ev == "MIGRATION":
        seen_states.append(msg["data"]["status"])
        ev += " " + msg["data"]["status"]
    print("event", ev, flush=True)


def connect(path):
    return qmp.Client(path, timeout=30, on_event=print_event)


def main(argv):
    args = argv[1:]
    caps, params, timeout = [], {}, 60.0
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--cap":
            caps.append({"capability": args.pop(0), "state": True})
        elif opt == "--param":
            k, v = args.pop(0).split("=", 1)
            params[k] = int(v)
        elif opt == "--timeout":
            timeout = float(args.pop(0))
        else:
            sys.stderr.write(__doc__)
            return 2
    path, uri = args
    q = connect(path)
    if caps:
        print("reply", json.dumps(q.cmd("migrate-set-capabilities",
                                        {"capabilities": caps})))
    if params:
        print("reply", json.dumps(q.cmd("migrate-set-parameters", params)))
    print("reply", json.dumps(q.cmd("migrate", {"uri": uri})), flush=True)
    deadline = time.time() + timeout
    while True:
        info = q.cmd("query-migrate")["return"]
        if info.get("status") not in ACTIVE or time.time() > deadline:
            break
        time.sleep(0.05)
    # The event of the last state change may trail the reply that showed
    # it (the state changes first, as in QEMU): with events on, wait for
    # it (bounded) so that the list of events printed is whole.
    end = time.time() + 10
    want_event = any(c["capability"] == "events" for c in caps)
    while True:
        q.cmd("query-status")
        if (not want_event or info.get("status") in seen_states or
                time.time() > end):
            break
        time.sleep(0.05)
    print("final", json.dumps(info))
    return 0 if info.get("status") == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
