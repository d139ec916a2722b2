#!/usr/bin/python3
"""Cancels a migration at a chosen moment, over QMP.

  cancel-at.py SOCKET URI STATUS

Connects to the QMP socket SOCKET, starts `migrate URI`, polls
query-migrate every 10 ms until the status is STATUS, sends migrate_cancel
at once, then waits for the migration to end and prints its final status.
Every wait is bounded (60 s); exits 1 if STATUS never came or the
migration did not end, or if hop hung up (it died).
"""
import json
import socket
import sys
import time

ACTIVE = ("setup", "active", "pre-switchover", "device", "cancelling")


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(path)
        self.buf = b""
        self.read()                      # greeting
        self.cmd("qmp_capabilities")

    def read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("hop closed the QMP connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            msg = self.read()
            if "event" in msg:
                continue
            if "error" in msg:
                raise RuntimeError("%s: %s" % (name, msg["error"]["desc"]))
            return msg["return"]


def main(argv):
    path, uri, want = argv[1:4]
    q = Qmp(path)
    q.cmd("migrate", {"uri": uri})
    deadline = time.time() + 60
    seen = []
    while True:
        st = q.cmd("query-migrate").get("status", "none")
        if not seen or seen[-1] != st:
            seen.append(st)
        if st == want:
            q.cmd("migrate_cancel")
            break
        if st not in ACTIVE or time.time() > deadline:
            print("never reached %s: saw %s" % (want, " ".join(seen)))
            return 1
        time.sleep(0.01)
    while True:
        st = q.cmd("query-migrate").get("status", "none")
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
