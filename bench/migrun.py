#!/usr/bin/python3
"""One migration measured over QMP, for bench/migrate.sh (hop or QEMU).

  migrun.py save SRC_QMP URI [--stop] [--blk] [--cap NAME]...
                              [--param NAME=INT]...
  migrun.py incoming DST_QMP URI [--cap NAME]... [--param NAME=INT]...
  migrun.py load DST_QMP URI [--cap NAME]... [--param NAME=INT]...

save: optionally stops the guest, sets capabilities and parameters,
starts `migrate` and polls query-migrate every 2 ms until it completes.
Prints one JSON object: the tool's own figures (total-time, downtime,
mbps, transferred, throttle) and wall_ms from the migrate command to the
completed state.  --blk: migrate with "blk": true (block migration);
"transferred" then counts the disk's bytes too.
incoming: on a destination started with -incoming defer, sets the same
capabilities and parameters and starts migrate-incoming; returns at once.
load: like incoming, then polls query-status until the machine has left
inmigrate; prints wall_ms.
"""
import json
import socket
import sys
import time

ACTIVE = ("setup", "active", "pre-switchover", "device", "postcopy-active",
          "cancelling")


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.time() + 30
        while True:
            try:
                self.sock.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(600)
        self.buf = b""
        # Events read while waiting for replies, with the local monotonic
        # time they arrived: (time, message).
        self.events = []
        self.recv()
        self.cmd("qmp_capabilities")

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            msg = self.recv()
            if "event" in msg:
                self.events.append((time.monotonic(), msg))
                continue
            if "error" in msg:
                raise RuntimeError("%s: %s" % (name, msg["error"]["desc"]))
            return msg["return"]


def configure(q, caps, params):
    if caps:
        q.cmd("migrate-set-capabilities",
              capabilities=[{"capability": c, "state": True} for c in caps])
    if params:
        q.cmd("migrate-set-parameters", **params)


def main(argv):
    mode, path, uri = argv[1], argv[2], argv[3]
    caps, params, stop, blk = [], {}, False, False
    rest = argv[4:]
    while rest:
        opt = rest.pop(0)
        if opt == "--stop":
            stop = True
        elif opt == "--blk":
            blk = True
        elif opt == "--cap":
            caps.append(rest.pop(0))
        elif opt == "--param":
            k, v = rest.pop(0).split("=", 1)
            params[k] = {"true": True, "false": False}.get(v) \
                if v in ("true", "false") else int(v)
        else:
            sys.stderr.write(__doc__)
            return 2
    q = Qmp(path)
    if mode == "incoming" or mode == "load":
        configure(q, caps, params)
        t0 = time.monotonic()
        q.cmd("migrate-incoming", uri=uri)
        if mode == "incoming":
            return 0
        while q.cmd("query-status")["status"] == "inmigrate":
            time.sleep(0.002)
        wall = (time.monotonic() - t0) * 1000
        print(json.dumps({"wall_ms": round(wall, 1),
                          "status": q.cmd("query-status")["status"]}))
        return 0
    if stop:
        q.cmd("stop")
    configure(q, caps, params)
    t0 = time.monotonic()
    if blk:
        q.cmd("migrate", uri=uri, blk=True)
    else:
        q.cmd("migrate", uri=uri)
    throttle = 0
    while True:
        info = q.cmd("query-migrate")
        throttle = max(throttle, info.get("cpu-throttle-percentage", 0))
        if info.get("status") not in ACTIVE:
            break
        time.sleep(0.002)
    wall = (time.monotonic() - t0) * 1000
    ram = info.get("ram", {})
    print(json.dumps({
        "status": info.get("status"),
        "error": info.get("error-desc"),
        "total_ms": info.get("total-time"),
        "downtime_ms": info.get("downtime"),
        "setup_ms": info.get("setup-time"),
        "mbps": ram.get("mbps"),
        "transferred": (ram.get("transferred") or 0) +
        (info.get("disk", {}).get("transferred") or 0),
        "multifd_bytes": ram.get("multifd-bytes"),
        "throttle": throttle,
        "wall_ms": round(wall, 1),
    }))
    return 0 if info.get("status") == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
