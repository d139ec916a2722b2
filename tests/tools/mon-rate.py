#!/usr/bin/python3
"""Samples a field of `info migrate` over a monitor socket.

  mon-rate.py MONITOR FIELD SECONDS COUNT

Over one connection, reads FIELD (e.g. "transferred ram", in kbytes) every
SECONDS, COUNT times after the first reading, and prints for each interval
the growth per second (FIELD units per second), one number a line.
"""
import re
import socket
import sys
import time


def query(sock, field):
    sock.sendall(b"info migrate\n")
    buf = b""
    while not buf.rstrip().endswith(b"(hop)"):
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("monitor closed")
        buf += chunk
    t = time.monotonic()
    m = re.search(r"^%s: ([0-9]+)" % re.escape(field), buf.decode(), re.M)
    if not m:
        raise ValueError("no '%s' in: %s" % (field, buf.decode()))
    return t, int(m.group(1))


def main(argv):
    mon, field, secs, count = argv[1], argv[2], float(argv[3]), int(argv[4])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(mon)
    sock.settimeout(10)
    buf = b""
    while not buf.rstrip().endswith(b"(hop)"):
        buf += sock.recv(65536)
    t0, v0 = query(sock, field)
    for _ in range(count):
        time.sleep(secs)
        t1, v1 = query(sock, field)
        print(int((v1 - v0) / (t1 - t0)))
        t0, v0 = t1, v1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
