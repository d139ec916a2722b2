#!/usr/bin/python3
"""A misbehaving migration peer for fault tests.

  sink.py PATH LIMIT [--accept N]

Listens on the unix socket PATH and accepts one connection.  LIMIT >= 0:
reads that many bytes, then hangs up.  LIMIT < 0: never reads (the sender
stalls once the socket buffers fill) until killed.  With --accept N
(LIMIT < 0 only): accepts N connections, holds them all without reading,
and stops listening (later connections are refused).
"""
import os
import socket
import sys
import time


def main(argv):
    path, limit = argv[1], int(argv[2])
    accept = int(argv[4]) if len(argv) > 4 and argv[3] == "--accept" else 0
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(max(1, accept))
    if accept:
        held = [srv.accept()[0] for _ in range(accept)]
        srv.close()
        while held:
            time.sleep(1)
    conn, _ = srv.accept()
    if limit < 0:
        while True:
            time.sleep(1)
    got = 0
    while got < limit:
        chunk = conn.recv(min(65536, limit - got))
        if not chunk:
            break
        got += len(chunk)
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
