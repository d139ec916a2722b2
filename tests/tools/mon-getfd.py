#!/usr/bin/python3
"""Hands a descriptor to a hop (or QEMU) HMP monitor with `getfd NAME`.

  mon-getfd.py NAME MONITOR --connect UNIX_SOCKET [COMMAND...]
  mon-getfd.py NAME MONITOR --pair MONITOR2 [COMMAND...]

--connect: connects to UNIX_SOCKET (e.g. a destination's -incoming
unix: socket) and passes that connection to MONITOR as NAME.
--pair: makes a socketpair and passes one end to MONITOR and the other
to MONITOR2, both as NAME.
The descriptor travels with the "getfd NAME" line (SCM_RIGHTS).  Each
COMMAND is then sent on MONITOR2 (with --pair) and the monitors' output
is printed.
"""
import socket
import sys
import time


def read_until_prompt(sock, timeout=10):
    """Reads until the monitor prompt; returns the text."""
    buf = b""
    deadline = time.time() + timeout
    while not buf.rstrip().endswith(b")"):
        left = deadline - time.time()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace")


def give_fd(monitor, name, fd, commands=()):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(monitor)
    read_until_prompt(sock)
    socket.send_fds(sock, [("getfd %s\n" % name).encode()], [fd])
    out = read_until_prompt(sock)
    for cmd in commands:
        sock.sendall((cmd + "\n").encode())
        out += read_until_prompt(sock)
    sock.close()
    sys.stdout.write(out)
    return "rror" not in out


def main(argv):
    if len(argv) < 5 or argv[3] not in ("--connect", "--pair"):
        sys.stderr.write(__doc__)
        return 2
    name, monitor, mode, other = argv[1], argv[2], argv[3], argv[4]
    commands = argv[5:]
    if mode == "--connect":
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(other)
        ok = give_fd(monitor, name, conn.fileno(), commands)
        conn.close()
    else:
        a, b = socket.socketpair()
        ok = give_fd(monitor, name, a.fileno())
        ok = give_fd(other, name, b.fileno(), commands) and ok
        a.close()
        b.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
