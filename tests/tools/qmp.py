#!/usr/bin/python3
"""A small QMP client for tests.

  qmp.py SOCKET [--raw] [--no-negotiate] [--events N] REQUEST...

Connects to SOCKET, prints the greeting, negotiates capabilities (unless
--no-negotiate), sends each REQUEST (a JSON text, or a bare command name)
and prints every response on its own line.  With --events N it then waits
(bounded) for N asynchronous events and prints them.  --raw sends the
requests' bytes as given, without checking they are JSON; with --raw, a
REQUEST @FILE sends the bytes of FILE.
"""
import json
import socket
import sys
import time


def read_messages(sock, buf, want, timeout):
    """Returns (messages, buf): up to `want` complete JSON lines."""
    out = []
    deadline = time.time() + timeout
    while len(out) < want:
        while b"\n" in buf and len(out) < want:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                out.append(json.loads(line))
        if len(out) >= want:
            break
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
    return out, buf


def main(argv):
    args = argv[1:]
    raw = "--raw" in args
    negotiate = "--no-negotiate" not in args
    events = 0
    if "--events" in args:
        i = args.index("--events")
        events = int(args[i + 1])
        del args[i:i + 2]
    args = [a for a in args if a not in ("--raw", "--no-negotiate")]
    path, requests = args[0], args[1:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    buf = b""
    greeting, buf = read_messages(sock, buf, 1, 10)
    print(json.dumps(greeting[0]))
    if negotiate:
        sock.sendall(b'{"execute": "qmp_capabilities"}\n')
        resp, buf = read_messages(sock, buf, 1, 10)
        print(json.dumps(resp[0]))
    for req in requests:
        if raw and req.startswith("@"):
            with open(req[1:], "rb") as f:
                data = f.read()
        elif raw:
            data = req.encode()
        elif req.lstrip().startswith("{"):
            data = json.dumps(json.loads(req)).encode()
        else:
            data = json.dumps({"execute": req}).encode()
        sock.sendall(data + b"\n")
        # Events may arrive before the answer: print until a non-event.
        while True:
            resp, buf = read_messages(sock, buf, 1, 30)
            if not resp:
                print("no response", file=sys.stderr)
                return 1
            print(json.dumps(resp[0]))
            if "event" not in resp[0]:
                break
    if events:
        got, buf = read_messages(sock, buf, events, 10)
        for e in got:
            print(json.dumps(e))
        if len(got) < events:
            print("only %d of %d events" % (len(got), events), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
