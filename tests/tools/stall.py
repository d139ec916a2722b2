#!/usr/bin/python3
"""A migration client that connects and then stalls.

  stall.py ADDRESS READY [BYTES]

ADDRESS is unix:PATH or tcp:HOST:PORT.  Connects, sends BYTES (if given;
"\\xNN" escapes allowed), writes its own address ("tcp:HOST:PORT", or
"pid N" for unix) to the file READY, then sends nothing more and waits
until hop hangs up (then exits 0) or five minutes pass (exits 1).
"""
import os
import socket
import sys
import time


def main(argv):
    addr, ready = argv[1], argv[2]
    data = argv[3].encode().decode("unicode_escape").encode("latin-1") \
        if len(argv) > 3 else b""
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(addr[5:])
        me = "pid %d" % os.getpid()
    elif addr.startswith("tcp:"):
        host, port = addr[4:].rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
        h, p = s.getsockname()[:2]
        me = "tcp:%s:%d" % (h, p)
    else:
        print("unknown address %s" % addr, file=sys.stderr)
        return 2
    if data:
        s.sendall(data)
    with open(ready + ".tmp", "w") as f:
        f.write(me + "\n")
    os.rename(ready + ".tmp", ready)
    s.settimeout(300)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if not s.recv(4096):
                return 0
        except socket.timeout:
            break
        except OSError:
            return 0
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
