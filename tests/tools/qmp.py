#!/usr/bin/python3
"""The QMP client of the tests, as a module and as a command.

As a module (the other tools in tests/tools import it):

    q = qmp.Client(PATH)            # connects, reads the greeting,
                                    # negotiates (negotiate=False: not)
    q.cmd("migrate", {"uri": U})    # the whole answer: {"return": ...}
                                    # or {"error": ...}; events that came
                                    # first go to q.events (and on_event)
    q.execute("query-migrate")      # the "return" value, QmpError if none
    q.run_job("snapshot-save", {"job-id": "j", "tag": "t"})
                                    # a job to its end: its query-jobs
                                    # entry once concluded (dismissed)

Every read is bounded by the client's timeout; a closed connection is
EOFError.

As a command:

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


class QmpError(RuntimeError):
    """A command answered with an error."""


class Client:
    def __init__(self, path, timeout=30, negotiate=True, on_event=None):
        self.timeout = timeout
        self.on_event = on_event
        self.events = []
        self.buf = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.greeting = self.recv()
        if negotiate:
            self.negotiate()

    def negotiate(self):
        return self.cmd("qmp_capabilities")

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, req):
        self.send_raw(json.dumps(req).encode() + b"\n")

    def recv_some(self, want, timeout):
        """Up to `want` messages, waiting at most `timeout` seconds."""
        out = []
        deadline = time.time() + timeout
        while len(out) < want:
            while b"\n" in self.buf and len(out) < want:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.strip():
                    out.append(json.loads(line))
            if len(out) >= want:
                break
            left = deadline - time.time()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            self.buf += chunk
        self.sock.settimeout(self.timeout)
        return out

    def recv(self, timeout=None):
        """The next message; EOFError if hop closed or sent nothing in
        time."""
        got = self.recv_some(1, self.timeout if timeout is None else timeout)
        if not got:
            raise EOFError("no QMP message (connection closed or timed out)")
        return got[0]

    def response(self, timeout=None):
        """The next message that is not an event; events go to
        self.events and on_event."""
        while True:
            msg = self.recv(timeout)
            if "event" not in msg:
                return msg
            self.events.append(msg)
            if self.on_event:
                self.on_event(msg)

    def cmd(self, name, args=None):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        self.send(req)
        return self.response()

    def execute(self, name, args=None):
        msg = self.cmd(name, args)
        if "error" in msg:
            raise QmpError("%s: %s" % (name, msg["error"]["desc"]))
        return msg["return"]

    def run_job(self, name, args, timeout=60):
        """Starts a job, waits (bounded) until it concluded, dismisses
        it; returns its query-jobs entry ("error" says why it failed)."""
        self.execute(name, args)
        deadline = time.time() + timeout
        while True:
            job = [j for j in self.execute("query-jobs")
                   if j["id"] == args["job-id"]][0]
            if job["status"] == "concluded":
                self.execute("job-dismiss", {"id": job["id"]})
                return job
            if time.time() > deadline:
                raise QmpError("job %s did not conclude" % job["id"])
            time.sleep(0.05)

    def close(self):
        self.sock.close()


def request_bytes(req, raw):
    if raw and req.startswith("@"):
        with open(req[1:], "rb") as f:
            return f.read()
    if raw:
        return req.encode()
    if req.lstrip().startswith("{"):
        return json.dumps(json.loads(req)).encode()
    return json.dumps({"execute": req}).encode()


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
    q = Client(path, timeout=10, negotiate=False)
    print(json.dumps(q.greeting))
    if negotiate:
        q.send({"execute": "qmp_capabilities"})
        print(json.dumps(q.recv()))
    for req in requests:
        q.send_raw(request_bytes(req, raw) + b"\n")
        # Events may arrive before the answer: print until a non-event.
        while True:
            resp = q.recv_some(1, 30)
            if not resp:
                print("no response", file=sys.stderr)
                return 1
            print(json.dumps(resp[0]))
            if "event" not in resp[0]:
                break
    if events:
        got = q.recv_some(events, 10)
        for e in got:
            print(json.dumps(e))
        if len(got) < events:
            print("only %d of %d events" % (len(got), events), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
