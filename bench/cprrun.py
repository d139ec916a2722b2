#!/usr/bin/python3
"""One migration between two running processes, for bench/cpr.sh.

  cprrun.py migrate SRC_QMP DST_QMP URI SRC_PID DST_PID RAM_BYTES [--stop]
            [--cap NAME]... [--param NAME=VALUE]... [--bw BYTES_PER_S]
            [--map-src] [--no-pss] [--nice N] [--settle S]
            [--tag NAME=VALUE]...
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


class PssSampler(threading.Thread):
    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = pids
        self.samples = []  # (monotonic, sum of Pss)
        self.done = threading.Event()

    def sample(self):
        self.samples.append((time.monotonic(),
                             sum(pss_bytes(p) for p in self.pids)))

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


def main(argv):
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
    sampler = PssSampler(pids)
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
    out.update(tags)
    print(json.dumps(out))
    ok = info.get("status") == "completed" and status != "inmigrate"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
