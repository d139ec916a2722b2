#!/usr/bin/python3
"""One migration between two running processes, for bench/cpr.sh.

  cprrun.py migrate SRC_QMP DST_QMP URI SRC_PID DST_PID RAM_BYTES [--stop]
            [--cap NAME]... [--param NAME=VALUE]... [--bw BYTES_PER_S]
            [--map-src] [--no-pss] [--nice N] [--settle S]
            [--rss] [--tag NAME=VALUE]...
  cprrun.py exec QMP PID [--stop] [--tag NAME=VALUE]...
  cprrun.py fill PID RAM_BYTES FROM_OFFSET

migrate:

Both machines run already: the source with the guest, the destination
with `-incoming defer` and without -S (so it starts the guest itself when
the source was running).  Capabilities and parameters go to both ends
(a VALUE that is not a number is passed as a string: mode=cpr-transfer),
--bw to the source only (max-bandwidth).  The destination gets
migrate-incoming URI, the source `stop` with --stop (when it runs), and
S seconds after migrate-incoming (--settle, default 1: hop's destination
first scans its own RAM, about 10 ms per GiB, before it accepts) the
source `migrate URI`; query-migrate is polled every 2 ms until the
source is done, then the destination's query-status until it left
inmigrate (and, when the guest ran, until its RESUME event came).

Meanwhile a thread reads Pss from /proc/PID/smaps_rollup of both
processes, one pair after the other, pausing 2 ms between pairs, from
just before `migrate` until the destination runs.

Prints one JSON object:
  total_ms, downtime_ms, setup_ms, transferred  as the source reports them
  wall_ms        `migrate` sent -> source no longer active (local clock)
  dst_ms         `migrate` sent -> destination out of inmigrate
  outside_ms     source STOP event -> destination RESUME event, from the
                 events' own "timestamp" fields (gettimeofday of each
                 process, microseconds); null when the guest was stopped
                 before migrating (then no STOP comes during it)
  outside_recv_ms  the same from the local monotonic times this script
                 read the two events (coarser: includes QMP delivery)
  pss_peak_ratio peak of Pss(source) + Pss(destination) / RAM_BYTES
  pss_before_ratio  the first pair's sum / RAM_BYTES
  pss_samples, pss_interval_ms  how many pairs were read, mean spacing
  (no pss_* with --no-pss) and every --tag as given.
--nice N sets the nice value of every thread of both processes to N from
just before `migrate` until the destination runs, then back to 0.
--map-src first reads the source's guest RAM through /proc/PID/mem (see
fill), which maps every page of it in the source's page tables: shared
memory a process took over is mapped page by page as the guest touches
it, and Pss counts only mapped pages (map_src_s: the seconds it took).

--rss samples resident memory (/proc/PID/statm) instead of Pss: O(1)
per read, so both processes are read within microseconds of each other
(a Pss pair takes milliseconds, and while 1 GB/s moves from one process
to the other that counts pages twice); for private memory, as in the
normal and release-ram rows, RSS is what each process holds alone.

exec: hop's cpr-exec of the machine behind QMP (process PID) in place:
migrate-set-parameters mode cpr-exec, `migrate memfd:` (the connection
ends with the exec), then a new connection to the same socket path until
query-status says the guest left inmigrate.  The pause is seen from the
guest's vCPU threads: /proc/PID/task/TID/schedstat gives each thread's
run time in nanoseconds, read every ~0.2 ms; the guest stopped at the
last reading at which the old vCPU thread's run time still grew, and it
runs again at (time of a reading of the new vCPU thread) - (its run
time then), taken at the first reading with more than 2 ms of it (a
busy guest runs its vCPU all the time; a vCPU thread kept off the CPU
makes this an underestimate, by at most what it was kept off).  Prints
one JSON object: total_ms (`migrate` sent -> query-status answered on a
new connection), outside_ms (the pause, null with --stop: a stopped
guest has none), and the tags.

fill: writes a non-zero pattern (0xa5 bytes, a page's first 8 its offset
+ 1) into guest RAM from FROM_OFFSET to RAM_BYTES through /proc/PID/mem: for
the part of RAM a 32-bit guest cannot reach (above the 4 GiB hole).  RAM
is the one mapping of exactly RAM_BYTES with write access in
/proc/PID/maps (pc.ram; offsets in it are pc.ram offsets); it fails when
there is not exactly one.  Prints the seconds it took.
"""
import json
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migrun import ACTIVE, Qmp  # noqa: E402


def pss_bytes(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid, "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes(pid):
    try:
        with open("/proc/%d/statm" % pid, "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


class PssSampler(threading.Thread):
    def __init__(self, pids, read=pss_bytes):
        super().__init__(daemon=True)
        self.pids = pids
        self.read = read
        self.samples = []  # (monotonic, sum of Pss)
        self.done = threading.Event()

    def sample(self):
        self.samples.append((time.monotonic(),
                             sum(self.read(p) for p in self.pids)))

    def run(self):
        while not self.done.is_set():
            self.sample()
            time.sleep(0.002)
        self.sample()

    def finish(self):
        self.done.set()
        self.join()


def value(v):
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def configure(q, caps, params):
    if caps:
        q.cmd("migrate-set-capabilities",
              capabilities=[{"capability": c, "state": True} for c in caps])
    if params:
        q.cmd("migrate-set-parameters", **params)


def event_after(q, name, wall0):
    """The first event NAME stamped at or after wall0: (stamp, received)."""
    for recv, msg in q.events:
        ts = msg.get("timestamp", {})
        stamp = ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6
        if msg["event"] == name and stamp >= wall0:
            return stamp, recv
    return None


def ram_mapping(pid, size):
    """Start address of the one writable mapping of exactly size bytes."""
    found = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if hi - lo == size and fields[1].startswith("rw"):
                found.append(lo)
    if len(found) != 1:
        raise RuntimeError("/proc/%d/maps: %d writable mappings of %d bytes, "
                           "expected one (guest RAM)" % (pid, len(found), size))
    return found[0]


def fill(pid, ram, start):
    page = 4096
    chunk = 4 << 20
    t0 = time.monotonic()
    base = ram_mapping(pid, ram)
    buf = bytearray(b"\xa5" * chunk)
    with open("/proc/%d/mem" % pid, "r+b", buffering=0) as mem:
        off = start
        while off < ram:
            n = min(chunk, ram - off)
            for p in range(0, n, page):
                struct.pack_into("<Q", buf, p, off + p + 1)
            mem.seek(base + off)
            view = memoryview(buf)[:n]
            while view:
                view = view[mem.write(view):]
            off += n
    print("%.1f" % (time.monotonic() - t0))
    return 0


def map_in(pid, ram):
    """Reads the guest RAM of pid through /proc/PID/mem: the kernel maps
    every page it reads into pid's page tables, as the guest's own first
    read would.  Returns the seconds it took."""
    t0 = time.monotonic()
    base = ram_mapping(pid, ram)
    buf = bytearray(4 << 20)
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        mem.seek(base)
        off = 0
        while off < ram:
            n = mem.readinto(memoryview(buf)[:min(len(buf), ram - off)])
            if not n:
                raise RuntimeError("/proc/%d/mem: short read at RAM offset %d"
                                   % (pid, off))
            off += n
    return time.monotonic() - t0


def renice(pids, value):
    """Sets the nice value of every thread of pids (threads they start
    later inherit it from the thread that starts them)."""
    for pid in pids:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                os.setpriority(os.PRIO_PROCESS, int(tid), value)
            except OSError:
                pass

def vcpu_threads(pid):
    """{tid: path of its schedstat} of the threads named vcpu*."""
    found = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return found
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().startswith("vcpu"):
                    found[int(tid)] = "/proc/%d/task/%s/schedstat" % (pid, tid)
        except OSError:
            pass
    return found


def run_ns(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return None


class VcpuWatch(threading.Thread):
    """Watches the vCPU threads' run time across the exec (see exec)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.old = vcpu_threads(pid)
        self.last_run = None   # time of the last reading an old vCPU ran
        self.resumed = None    # estimated time the new vCPU began to run
        self.done = threading.Event()

    def run(self):
        last = {t: run_ns(p) for t, p in self.old.items()}
        while not self.done.is_set() and self.resumed is None:
            now = time.time()
            alive = False
            for t, p in self.old.items():
                ns = run_ns(p)
                if ns is None:
                    continue
                alive = True
                if ns != last[t]:
                    self.last_run = now
                    last[t] = ns
            if not alive:
                for t, p in vcpu_threads(self.pid).items():
                    if t in self.old:
                        continue
                    ns = run_ns(p)
                    if ns is not None and ns > 2000000:
                        self.resumed = now - ns / 1e9
            time.sleep(0.0002)

    def finish(self):
        self.done.set()
        self.join()


def cpr_exec(argv):
    path, pid = argv[2], int(argv[3])
    stop, tags = False, {}
    rest = argv[4:]
    while rest:
        opt = rest.pop(0)
        if opt == "--stop":
            stop = True
        elif opt == "--tag":
            k, v = rest.pop(0).split("=", 1)
            tags[k] = value(v)
        else:
            sys.stderr.write(__doc__)
            return 2
    q = Qmp(path)
    if stop and q.cmd("query-status")["status"] == "running":
        q.cmd("stop")
    q.cmd("migrate-set-parameters", mode="cpr-exec")
    watch = VcpuWatch(pid)
    if not stop:
        watch.start()
        time.sleep(0.02)
    t0 = time.monotonic()
    try:
        q.cmd("migrate", uri="memfd:")
        while True:  # the connection ends with the exec
            q.cmd("query-status")
            time.sleep(0.002)
    except (EOFError, OSError):
        pass
    deadline = time.monotonic() + 120
    status = None
    while status in (None, "inmigrate") and time.monotonic() < deadline:
        try:
            status = Qmp(path).cmd("query-status")["status"]
        except (EOFError, OSError):
            time.sleep(0.002)
    total = (time.monotonic() - t0) * 1000
    if not stop:
        deadline = time.monotonic() + 10
        while watch.resumed is None and time.monotonic() < deadline:
            time.sleep(0.01)
        watch.finish()
    outside = None
    if watch.resumed is not None and watch.last_run is not None:
        outside = round((watch.resumed - watch.last_run) * 1000, 3)
    out = {"status": "completed" if status in ("running", "paused") else status,
           "dst_status": status, "total_ms": round(total, 1),
           "outside_ms": outside,
           "same_pid": os.path.exists("/proc/%d" % pid)}
    out.update(tags)
    print(json.dumps(out))
    ok = status == ("paused" if stop else "running") and (stop or outside)
    return 0 if ok else 1


def main(argv):
    if len(argv) >= 4 and argv[1] == "exec":
        return cpr_exec(argv)
    if len(argv) >= 5 and argv[1] == "fill":
        return fill(int(argv[2]), int(argv[3]), int(argv[4]))
    if len(argv) < 8 or argv[1] != "migrate":
        sys.stderr.write(__doc__)
        return 2
    src_path, dst_path, uri = argv[2], argv[3], argv[4]
    pids = procs = [int(argv[5]), int(argv[6])]
    ram = int(argv[7])
    nice = None
    settle = 1.0
    caps, params, stop, bw, tags = [], {}, False, None, {}
    map_src = False
    reader = pss_bytes
    rest = argv[8:]
    while rest:
        opt = rest.pop(0)
        if opt == "--stop":
            stop = True
        elif opt == "--cap":
            caps.append(rest.pop(0))
        elif opt == "--param":
            k, v = rest.pop(0).split("=", 1)
            params[k] = value(v)
        elif opt == "--settle":
            settle = float(rest.pop(0))
        elif opt == "--nice":
            nice = int(rest.pop(0))
        elif opt == "--map-src":
            map_src = True
        elif opt == "--no-pss":
            pids = []
        elif opt == "--rss":
            reader = rss_bytes
        elif opt == "--tag":
            k, v = rest.pop(0).split("=", 1)
            tags[k] = value(v)
        elif opt == "--bw":
            bw = int(rest.pop(0))
        else:
            sys.stderr.write(__doc__)
            return 2
    dst = Qmp(dst_path)
    src = Qmp(src_path)
    configure(dst, caps, params)
    dst.cmd("migrate-incoming", uri=uri)
    t_incoming = time.monotonic()
    configure(src, caps, params)
    if bw is not None:
        src.cmd("migrate-set-parameters", **{"max-bandwidth": bw})
    if stop and src.cmd("query-status")["status"] == "running":
        src.cmd("stop")

    if map_src:
        tags["map_src_s"] = round(map_in(procs[0], ram), 1)
    sampler = PssSampler(pids, reader)
    if pids:
        sampler.start()
        time.sleep(0.02)
    # A destination is ready long before the source starts, normally.
    time.sleep(max(0.0, settle - (time.monotonic() - t_incoming)))
    if nice is not None:
        renice(procs, nice)
    wall0 = time.time()
    t0 = time.monotonic()
    src.cmd("migrate", uri=uri)
    while True:
        info = src.cmd("query-migrate")
        if info.get("status") not in ACTIVE:
            break
        time.sleep(0.002)
    wall = (time.monotonic() - t0) * 1000
    deadline = time.monotonic() + 600
    status = "inmigrate"
    while time.monotonic() < deadline:
        status = dst.cmd("query-status")["status"]
        if status != "inmigrate":
            break
        time.sleep(0.002)
    dst_ms = (time.monotonic() - t0) * 1000
    # The RESUME event may trail the state a little: wait for it, bounded.
    resumed = None
    if not stop and status == "running":
        deadline = time.monotonic() + 10
        while resumed is None and time.monotonic() < deadline:
            resumed = event_after(dst, "RESUME", wall0)
            if resumed is None:
                time.sleep(0.002)
                dst.cmd("query-status")
    if nice is not None:
        renice(procs, 0)
    if pids:
        sampler.finish()
    stopped = event_after(src, "STOP", wall0)
    outside = outside_recv = None
    if stopped and resumed:
        outside = round((resumed[0] - stopped[0]) * 1000, 3)
        outside_recv = round((resumed[1] - stopped[1]) * 1000, 3)
    s = sampler.samples
    ram_info = info.get("ram", {})
    out = {
        "status": info.get("status"),
        "error": info.get("error-desc"),
        "dst_status": status,
        "total_ms": info.get("total-time"),
        "downtime_ms": info.get("downtime"),
        "setup_ms": info.get("setup-time"),
        "transferred": ram_info.get("transferred"),
        "wall_ms": round(wall, 1),
        "dst_ms": round(dst_ms, 1),
        "outside_ms": outside,
        "outside_recv_ms": outside_recv,
    }
    if pids:
        out.update({
            "pss_peak_ratio": round(max(v for _, v in s) / ram, 4),
            "pss_before_ratio": round(s[0][1] / ram, 4),
            "pss_samples": len(s),
            "pss_interval_ms": round((s[-1][0] - s[0][0]) * 1000 /
                                     max(1, len(s) - 1), 2),
        })
    out["mem_kind"] = "rss" if reader is rss_bytes else "pss"
    out.update(tags)
    print(json.dumps(out))
    ok = info.get("status") == "completed" and status != "inmigrate"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
