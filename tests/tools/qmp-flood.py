#!/usr/bin/python3
"""A QMP client that sends and never reads, for tests.

  qmp-flood.py SOCKET [REQUEST [MAX-BYTES]]

Connects to SOCKET, reads the greeting, negotiates capabilities, then
sends REQUEST (a command name, default query-status) over and over
without reading a single answer, until MAX-BYTES (default 64 MiB) are
sent or hop has stopped taking them for 2 seconds.  It then prints
"flooded BYTES" and keeps the connection open, still not reading, until
it is killed.
"""
import json
import select
import sys
import time

import qmp


def main(argv):
    path = argv[1]
    name = argv[2] if len(argv) > 2 else "query-status"
    limit = int(argv[3]) if len(argv) > 3 else 64 << 20
    sock = qmp.Client(path, timeout=10).sock
    request = (json.dumps({"execute": name}) + "\n").encode()
    chunk = request * (65536 // len(request))
    sock.setblocking(False)
    sent = 0
    while sent < limit:
        _, writable, _ = select.select([], [sock], [], 2)
        if not writable:
            break
        try:
            sent += sock.send(chunk)
        except BlockingIOError:
            pass
    print("flooded %d" % sent, flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
