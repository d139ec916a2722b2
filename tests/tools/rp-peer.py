#!/usr/bin/python3
"""A migration destination that answers on the return path by script.

  rp-peer.py PATH (REPLY_HEX | --close-when-idle | --silent)

Listens on the unix socket PATH, accepts one connection and reads
everything the source sends.  REPLY_HEX: those bytes go back at once (a
hostile or unexpected return path message), then it reads on until the
source hangs up.  --close-when-idle: once nothing came for 2 s (the source
sent everything and waits for the destination's word) it hangs up without
one.  --silent: it never answers and reads until the source hangs up.
"""
import os
import select
import socket
import sys


def main(argv):
    path, mode = argv[1], argv[2]
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    conn, _ = srv.accept()
    if mode not in ("--close-when-idle", "--silent"):
        conn.sendall(bytes.fromhex(mode))
    while True:
        ready, _, _ = select.select([conn], [], [], 2.0)
        if not ready:
            if mode == "--close-when-idle":
                break
            continue
        try:
            if not conn.recv(1 << 20):
                break
        except ConnectionResetError:
            # The source refused what was said and hung up unread.
            break
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
