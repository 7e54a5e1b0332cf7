#!/usr/bin/env python3
"""Kahi's benchmark: the measurements behind `make bench` (see bench/run.sh).

    kahi_bench.py --kahi BIN --scratch DIR [--quick] [--peers DIR [--peers-only]]

Measures the release binary against its targets:

  1. startup: launch of `kahi daemon` until `status` reports 1000 `sleep` programs
     (startsecs = 0) RUNNING; median of 3 launches;
  2. memory: VmRSS of the daemon (children excluded) with 100 and with 1000 programs,
     3 s after they are all RUNNING; median of 3 launches each;
  3. idle: context switches (voluntary + involuntary, every thread) of the daemon over
     10 s with 100 programs, divided by 10, after a 5 s settle; median of 3;
  4. restart: `kill -9` of a RUNNING program (autorestart = true, startsecs = 0) until its
     replacement has exec'd (busy poll of /proc); median and max of 20 kills 1.2 s apart
     (each instance has run longer than restart_min_interval, so the restart guard lets
     it go at once);
  5. ctl: `kahi ctl -s SOCKET status` with 100 programs, end to end (hyperfine -N,
     3 warm-ups); median and p99;
  6. log: one program (bench/writer.py, startsecs = 0, autorestart = false) writes 1 GiB
     (rounded down to whole lines) of 100-byte numbered lines to its stdout, which Kahi
     copies to stdout_logfile (no rotation); MB/s from the writer's first write until the
     file holds every byte (size polled every 2 ms), checked exactly, first and last line
     compared. The same writer piped through `cat > FILE` is the physical reference; the
     figure is Kahi / cat; median of 3 launches of each, alternating. The writer alone to
     /dev/null is timed too, to show it is not the bottleneck. Files in --scratch.

Crash loop: one program that exits 1 at once (`/bin/sh -c 'echo >> FILE; exit 1'`,
startsecs = 0, autorestart = true, the restart guard's defaults); after a 3 s warm-up, starts
per second (lines in FILE) and the daemon's CPU % (utime + stime from /proc) over 10 s;
median of 3.

Scale: 10,000 `sleep` programs (redirect_stderr = true: one pipe each) and a canary started
first. During the start the canary is killed again and again, and each time its replacement is
timed until `status` names it RUNNING with a new pid; the start is timed until every program is
RUNNING. Then SIGTERM: the shutdown is timed until the daemon exits, while `status` of the
canary is asked every 10 ms and each answer timed. Figures: the start, the canary's worst
restart, the shutdown, the worst status answer.

Dependencies: 200 independent programs, then 200 in a diamond (a root, 198 branches that depend
on it, a sink that depends on every branch): time until all RUNNING, median of 3 each; the
figure is diamond / independent; the diamond's order is checked from the start times.

HTTP: GET /api/v1/processes with 100 programs under wrk (-t2 -c32, kept-alive), median of 3
runs of 10 s, requests/s and p99, the daemon's threads, and one /healthz with 10,000 idle
connections open; then supervisord (when installed) with 100 programs and its
XML-RPC getAllProcessInfo under the same wrk load; the figure is Kahi / supervisord.

With --peers DIR (a benchmark harness with run.sh and adapters/), the same scenarios are
also run through that harness for Kahi and for every other supervisor installed
(supervisord; s6, runit, tini and dumb-init when present) and the harness's references
(ref, ref-direct) where it has them, and the summary shows them side by side; Kahi's log
throughput is compared with supervisord's as a figure of its own.

    kahi_bench.py --kahi BIN --scratch DIR --peers DIR --peers-only [--markdown FILE]

runs only that comparison, over more scenarios (PEER_SCENARIOS: start of 1, 100 and 1000
programs, memory and idle with 1 and 100 or 1000, restart, log, ctl with 1 and 100, crash loop)
with the harness's own numbers of runs (BENCH_RUNS in the environment: that many launches
per figure instead; restart's kills and ctl's queries stay), and writes FILE (docs/benchmarks.md, by
`make bench-peers`): the machine, the date, the definitions, the figures, the ratios (more
than 1: Kahi is better) and where Kahi is not ahead.

Result lines go to stdout; samples and notes to stderr. Every daemon runs in its own
directory under --scratch and its own session; at the end it is stopped with SIGTERM (it
stops its programs), and only then is anything left that this script started killed,
by pid.
"""

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import writer  # bench/writer.py, beside this file

TICK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024

# name: (label, unit, target, comparison); a figure passes when `value OP target`.
TARGETS = {
    "startup_1000": ("startup, 1000 programs RUNNING", "s", 1.0, "<="),
    "rss_100": ("daemon RSS, 100 programs", "MiB", 8.0, "<"),
    "rss_1000": ("daemon RSS, 1000 programs", "MiB", 24.0, "<"),
    "idle_100": ("idle wakeups, 100 programs", "/s", 0.0, "<="),
    "restart_median": ("restart after kill -9, median", "ms", 10.0, "<"),
    "restart_max": ("restart after kill -9, max", "ms", 10.0, "<"),
    "crash_rate": ("crash loop, starts per second", "/s", 1.0, "<="),
    "crash_cpu": ("crash loop, daemon CPU", "%", 1.0, "<"),
    "ctl_median": ("ctl status, 100 programs, median", "ms", 5.0, "<"),
    "ctl_p99": ("ctl status, 100 programs, p99", "ms", 5.0, "<"),
    "log_ratio": ("log throughput, Kahi / cat", "x", 0.8, ">="),
    "log_vs_supervisord": ("log throughput, Kahi / supervisord", "x", 1.0, ">"),
    "deps_200_ratio": ("200 programs, dependency diamond / independent", "x", 1.5, "<="),
    "http_rps": ("HTTP process list, 100 programs, rate", "req/s", 18000.0, ">="),
    "http_p99": ("HTTP process list, 100 programs, p99", "ms", 10.0, "<"),
    "http_vs_supervisord": ("HTTP rate, Kahi / supervisord XML-RPC", "x", 20.0, ">="),
    "scale_start": ("start of 10,000 programs", "s", 30.0, "<"),
    "scale_canary_max": ("canary restart during that start, max", "ms", 50.0, "<"),
    "scale_shutdown": ("shutdown of 10,000 programs", "s", 10.0, "<"),
    "scale_status_max": ("status during that shutdown, max", "ms", 100.0, "<"),
}


def note(*args):
    print(*args, file=sys.stderr, flush=True)


class Output:
    """Result lines: printed, written to the results file, kept for the summary."""

    def __init__(self, path):
        self.values = {}
        self.file = open(path, "w") if path else None

    def line(self, text):
        print(text, flush=True)
        if self.file:
            self.file.write(text + "\n")
            self.file.flush()

    def figure(self, key, value, detail=""):
        label, unit, target, op = TARGETS[key]
        self.values[key] = value
        sign = "=" if key == "idle_100" else op
        line = (f"{label:<36} {fmt(value, unit):>12}   target {sign} {target:g} {unit:<4}"
                f" {'PASS' if passes(key, value) else 'FAIL'}")
        if detail:
            line += f"   ({detail})"
        self.line(line)

    def measure(self, label, value, unit, detail=""):
        """A number without a target, laid out like a figure."""
        self.line(f"{label:<36} {fmt(value, unit):>12}" + (f"   ({detail})" if detail else ""))

    def failed(self):
        return [k for k, v in self.values.items() if not passes(k, v)]


def passes(key, value):
    target, op = TARGETS[key][2], TARGETS[key][3]
    return {"<=": value <= target, "<": value < target,
            ">=": value >= target, ">": value > target}[op]


def fmt(value, unit):
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "MiB":
        return f"{value:.2f} MiB"
    if unit == "MB/s":
        return f"{value:.1f} MB/s"
    if unit == "req/s":
        return f"{value:.0f} req/s"
    return f"{value:.2f} {unit}"


# ---------------------------------------------------------------- /proc


def read_bytes(path, size=8192):
    try:
        with open(path, "rb", buffering=0) as f:
            return f.read(size)
    except OSError:
        return None


def proc_stat(pid):
    """(comm, state, ppid, starttime ticks) of a pid, or None once it is gone."""
    raw = read_bytes(f"/proc/{pid}/stat")
    if not raw:
        return None
    left, right = raw.index(b"("), raw.rindex(b")")
    rest = raw[right + 2:].split()
    return raw[left + 1:right].decode(errors="replace"), rest[0].decode(), int(rest[1]), int(rest[19])


def pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def status_field(pid, name):
    for line in (read_bytes(f"/proc/{pid}/status") or b"").splitlines():
        if line.startswith(name.encode() + b":"):
            return int(line.split()[1])
    return None


def context_switches(pid):
    """Voluntary + involuntary switches summed over every thread of pid."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        for line in (read_bytes(f"/proc/{pid}/task/{tid}/status") or b"").splitlines():
            if line.startswith((b"voluntary_ctxt_switches:", b"nonvoluntary_ctxt_switches:")):
                total += int(line.split()[1])
    return total


def cpu_ticks(pid):
    st = read_bytes(f"/proc/{pid}/stat") or b""
    rest = st[st.rindex(b")") + 2:].split() if st else []
    return int(rest[11]) + int(rest[12]) if rest else 0


def runnable():
    with open("/proc/loadavg") as f:
        return int(f.read().split()[3].split("/")[0])


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_busy(secs=1.0):
    """Share of all CPUs busy (not idle, not waiting for I/O) over `secs`, in percent."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(secs)
    t1, i1 = sample()
    return 100.0 * (1 - (i1 - i0) / max(1, t1 - t0))


BUSY_LAUNCHES = []


def wait_quiet(limit):
    """Waits up to `limit` s for a moment with nothing but us runnable; says if it never came."""
    deadline = time.monotonic() + limit
    calm = 0
    while time.monotonic() < deadline:
        calm = calm + 1 if runnable() <= 1 else 0
        if calm >= 5:
            return True
        time.sleep(0.02)
    note(f"  note: the machine was busy before this launch (load {loadavg()})")
    BUSY_LAUNCHES.append(1)
    return False


def set_subreaper():
    """Orphans of a daemon killed as a last resort come back to this process."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap_all():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ---------------------------------------------------------------- one daemon


class Daemon:
    """One `kahi daemon` with N sleep programs in a private directory; always torn down.
    With `exe` and `tables`, the programs run `exe` instead, and tables(daemon) gives their
    [programs.*] tables (`daemon.exe` is the path to run, `daemon.dir` the directory)."""

    def __init__(self, kahi, scratch, n, exe=None, tables=None):
        self.kahi, self.n = kahi, n
        self.dir = tempfile.mkdtemp(prefix=f"n{n}-", dir=scratch)
        # The programs run `sleep` (or `exe`) through a symlink with a name unique to this
        # launch, so /proc/PID/comm alone tells them apart from every other process.
        exe = exe or shutil.which("sleep") or "/bin/sleep"
        self.comm = ("kb" + os.path.basename(exe)[:7]
                     + "".join(random.choice("0123456789") for _ in range(6)))
        os.mkdir(os.path.join(self.dir, "bin"))
        self.exe = os.path.join(self.dir, "bin", self.comm)
        os.symlink(exe, self.exe)
        self.sock = os.path.join(self.dir, "kahi.sock")
        self.conf = os.path.join(self.dir, "kahi.toml")
        with open(self.conf, "w") as f:
            # Only the log file is measured: no copy of the programs' lines to Kahi's stdout
            # (console = "auto" would make one in the foreground).
            f.write(f'[server]\nsocket = "{self.sock}"\n\n[logging]\nconsole = false\n')
            if tables:
                f.write(tables(self))
            for i in range(0 if tables else n):
                f.write(f'\n[programs.p{i}]\ncommand = "{self.exe} 100000{i}"\n'
                        'autorestart = true\nstartsecs = 0\n')
        self.proc = None
        self.seen = {}  # pid -> starttime of every program seen, for the last-resort kill

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.teardown()

    def start(self):
        log = open(os.path.join(self.dir, "daemon.log"), "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([self.kahi, "daemon", "-c", self.conf], cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        return t0

    @property
    def pid(self):
        return self.proc.pid

    def check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with status {self.proc.returncode}; "
                               f"its log: {self.tail_log()}")

    def tail_log(self):
        raw = read_bytes(os.path.join(self.dir, "daemon.log"), 1 << 20) or b""
        return raw.decode(errors="replace").strip().splitlines()[-3:]

    def status(self, timeout=60):
        """The process list from one status request over the control socket (the same
        newline-delimited JSON `kahi ctl status --json` sends), or None if it refuses."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.sock)
        except OSError:
            s.close()
            return None
        try:
            s.sendall(b'{"cmd":"status"}\n')
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
        finally:
            s.close()
        reply = json.loads(buf)
        if "processes" not in reply:
            raise RuntimeError(f"unexpected status reply: {buf[:200]!r}")
        return reply["processes"]

    def wait_running(self, t0, timeout=120):
        """Polls status until every program is RUNNING; seconds from launch to that reply."""
        while True:
            procs = self.status()
            now = time.perf_counter()
            if procs is not None:
                running = sum(1 for p in procs if p["state"] == "RUNNING")
                if running == self.n:
                    return now - t0
            self.check_alive()
            if now - t0 > timeout:
                raise RuntimeError(f"not every program RUNNING after {timeout} s")
            time.sleep(0.002 if procs is None else 0.005)

    def programs(self):
        """Pids of this launch's programs (comm = the symlink's name), all of them exec'd."""
        want = (self.comm + "\n").encode()
        found = [p for p in pids() if read_bytes(f"/proc/{p}/comm", 64) == want]
        for p in found:
            st = proc_stat(p)
            if st:
                self.seen[p] = st[3]
        return found

    def rss_mib(self):
        return status_field(self.pid, "VmRSS") / 1024

    def threads(self):
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def teardown(self):
        try:
            if self.proc is not None:
                self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def stop(self):
        if self.proc.poll() is None:
            self.programs()
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                note(f"  the daemon (pid {self.pid}) did not stop within 30 s; killing it")
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
            if self.proc.returncode not in (0, 1):
                note(f"  the daemon exited with status {self.proc.returncode}")
        # Only now: anything of this launch still alive is killed, by pid.
        deadline = time.monotonic() + 3
        while True:
            left = [p for p in self.programs()
                    if (proc_stat(p) or ("", "Z"))[1] != "Z"]
            if not left or time.monotonic() > deadline:
                break
            reap_all()
            time.sleep(0.05)
        for p in left:
            st = proc_stat(p)
            if st and st[3] == self.seen.get(p):
                note(f"  killing leftover program pid {p}")
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        reap_all()


# ---------------------------------------------------------------- scenarios


def startup_and_rss1000(out, opts):
    times, rss, detail = [], [], []
    for i in range(opts.startup_runs):
        with Daemon(opts.kahi, opts.scratch, 1000) as d:
            wait_quiet(opts.quiesce)
            boot0 = time.clock_gettime(time.CLOCK_BOOTTIME)
            t0 = d.start()
            secs = d.wait_running(t0)
            progs = d.programs()
            if len(progs) != 1000:
                raise RuntimeError(f"status says 1000 RUNNING but /proc shows {len(progs)} programs")
            last_fork = max(d.seen[p] for p in progs) / TICK - boot0
            times.append(secs)
            time.sleep(3)
            d.check_alive()
            rss.append(d.rss_mib())
            note(f"  startup run {i + 1}: all RUNNING at {secs:.3f} s (last program forked at "
                 f"~{last_fork:.2f} s, 10 ms ticks); RSS after 3 s {rss[-1]:.2f} MiB; "
                 f"threads {d.threads()}; load {loadavg()}")
    out.figure("startup_1000", statistics.median(times),
               f"median of {len(times)}: " + " ".join(f"{t:.3f}" for t in times))
    return rss


def hundred(out, opts, rss1000):
    """Launches with 100 programs: RSS after 3 s; idle wakeups after 5 s; ctl latency last."""
    rss, rates, cpu = [], [], []
    ctl = None
    for i in range(opts.hundred_runs):
        with Daemon(opts.kahi, opts.scratch, 100) as d:
            wait_quiet(opts.quiesce)
            d.wait_running(d.start())
            d.programs()
            time.sleep(3)
            d.check_alive()
            rss.append(d.rss_mib())
            time.sleep(opts.idle_settle - 3)
            c0, u0, t0 = context_switches(d.pid), cpu_ticks(d.pid), time.monotonic()
            time.sleep(opts.idle_secs)
            c1, u1, t1 = context_switches(d.pid), cpu_ticks(d.pid), time.monotonic()
            d.check_alive()
            rates.append((c1 - c0) / (t1 - t0))
            cpu.append((u1 - u0) / TICK / (t1 - t0) * 100)
            note(f"  100-program run {i + 1}: RSS {rss[-1]:.2f} MiB; {c1 - c0} context switches "
                 f"in {t1 - t0:.1f} s ({cpu[-1]:.2f} % CPU); threads {d.threads()}; load {loadavg()}")
            if i == opts.hundred_runs - 1:
                ctl = ctl_latency(d, opts)
    out.figure("rss_100", statistics.median(rss),
               f"median of {len(rss)}: " + " ".join(f"{r:.2f}" for r in rss))
    out.figure("rss_1000", statistics.median(rss1000),
               f"median of {len(rss1000)}: " + " ".join(f"{r:.2f}" for r in rss1000))
    out.figure("idle_100", statistics.median(rates),
               f"median of {len(rates)} windows of {opts.idle_secs:g} s: "
               + " ".join(f"{r:.2f}" for r in rates))
    return ctl


def percentile(xs, p):
    """Nearest-rank percentile."""
    xs = sorted(xs)
    k = max(1, -(-len(xs) * p // 100))
    return xs[int(k) - 1]


def ctl_latency(d, opts):
    argv = [opts.kahi, "ctl", "-s", d.sock, "status"]
    probe = subprocess.run(argv, capture_output=True, text=True)
    lines = probe.stdout.splitlines()
    if probe.returncode != 0 or len(lines) != 100:
        raise RuntimeError(f"kahi ctl status: rc={probe.returncode}, {len(lines)} lines: {probe.stderr.strip()}")
    if shutil.which("hyperfine"):
        export = os.path.join(d.dir, "hyperfine.json")
        hf = subprocess.run(["hyperfine", "-N", "--warmup", "3", "--runs", str(opts.ctl_runs),
                             "--style", "none", "--export-json", export, " ".join(argv)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if hf.returncode != 0:
            raise RuntimeError(f"hyperfine failed: {hf.stderr.strip()}")
        if "outliers" in hf.stderr:
            note("  ctl: hyperfine saw statistical outliers (something else ran meanwhile)")
        with open(export) as f:
            times = json.load(f)["results"][0]["times"]
        how = "hyperfine -N"
    else:
        times = []
        for i in range(3 + opts.ctl_runs):
            t = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, os.environ,
                                 file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
            os.waitpid(pid, 0)
            if i >= 3:
                times.append(time.perf_counter() - t)
        how = "posix_spawn + waitpid"
    ms = [t * 1000 for t in times]
    note(f"  ctl: {len(ms)} runs ({how}): min {min(ms):.2f} median {statistics.median(ms):.2f} "
         f"p99 {percentile(ms, 99):.2f} max {max(ms):.2f} ms; load {loadavg()}")
    return statistics.median(ms), percentile(ms, 99), len(ms)


def restart(out, opts):
    samples = []
    with Daemon(opts.kahi, opts.scratch, 1) as d:
        wait_quiet(opts.quiesce)
        d.wait_running(d.start())
        time.sleep(1)
        want = (d.comm + "\n").encode()
        for k in range(opts.kills):
            (old,) = d.programs()
            known = set(pids())
            os.kill(old, signal.SIGKILL)
            t0 = time.perf_counter()
            new = None
            # Busy poll. A new pid whose comm is not (yet) ours is read again on the next
            # scan: between fork and exec the replacement still carries the daemon's name.
            while new is None:
                for entry in os.listdir("/proc"):
                    if entry.isdigit() and int(entry) not in known \
                            and read_bytes(f"/proc/{entry}/comm", 64) == want:
                        new = int(entry)
                        break
                else:
                    if time.perf_counter() - t0 > 10:
                        raise RuntimeError("no replacement within 10 s")
            dt = time.perf_counter() - t0
            st = proc_stat(new)
            if st and st[2] != d.pid:
                raise RuntimeError(f"pid {new} is named {d.comm} but its parent is {st[2]}")
            samples.append(dt * 1000)
            note(f"  kill {k + 1}: {samples[-1]:.2f} ms (pid {old} -> {new})")
            time.sleep(opts.kill_gap)
        d.check_alive()
        note(f"  restart: load {loadavg()}")
    out.figure("restart_median", statistics.median(samples), f"{len(samples)} kills")
    out.figure("restart_max", max(samples), f"{len(samples)} kills, {opts.kill_gap:g} s apart")


def cpu_seconds(pid):
    """utime + stime of a process (every thread), in seconds; 0 once it is gone."""
    raw = read_bytes(f"/proc/{pid}/stat")
    if not raw:
        return 0.0
    rest = raw[raw.rindex(b")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def crash_loop(out, opts):
    rates, cpus = [], []
    for i in range(opts.crash_runs):
        starts = os.path.join(opts.scratch, f"crash-starts-{i}")

        def table(d, starts=starts):
            return (f'\n[programs.crash]\ncommand = ["{d.exe}", "-c", "echo >> {starts}; exit 1"]\n'
                    'autorestart = true\nstartsecs = 0\n')

        def count(starts=starts):
            return (read_bytes(starts, 1 << 20) or b"").count(b"\n")

        with Daemon(opts.kahi, opts.scratch, 1, exe="/bin/sh", tables=table) as d:
            wait_quiet(opts.quiesce)
            d.start()
            time.sleep(opts.crash_warmup)
            d.check_alive()
            s0, c0, t0 = count(), cpu_seconds(d.pid), time.monotonic()
            time.sleep(opts.crash_secs)
            s1, c1, t1 = count(), cpu_seconds(d.pid), time.monotonic()
            d.check_alive()
            rates.append((s1 - s0) / (t1 - t0))
            cpus.append((c1 - c0) / (t1 - t0) * 100)
            note(f"  crash loop {i + 1}: {s1 - s0} starts in {t1 - t0:.1f} s after {s0} in the "
                 f"warm-up; daemon CPU {cpus[-1]:.2f} %")
        try:
            os.unlink(starts)
        except FileNotFoundError:
            pass
    how = f"median of {len(rates)}, {opts.crash_secs:g} s after {opts.crash_warmup:g} s"
    out.figure("crash_rate", statistics.median(rates), how)
    out.figure("crash_cpu", statistics.median(cpus), how)


def request(sock, line, timeout=30):
    """One request line over a control socket: the reply, decoded, or None if refused."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(sock)
        except OSError:
            return None
        s.sendall(line)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                return None
            buf += chunk
    return json.loads(buf)


def scale(out, opts):
    n = opts.scale_n
    canary_q = b'{"cmd":"status","names":["canary"]}\n'

    def tables(d):
        return ('\n[programs.canary]\ncommand = "{0} 99"\nstartsecs = 0\npriority = 1\n'
                'restart_min_interval = 0\n'.format(d.exe)
                + "".join(f'\n[programs.p{i}]\ncommand = "{d.exe} 100000{i}"\n'
                          'startsecs = 0\nredirect_stderr = true\n' for i in range(n)))

    def canary(d):
        reply = request(d.sock, canary_q)
        p = reply and reply.get("processes")
        return (p[0]["state"], p[0].get("pid")) if p else (None, None)

    with Daemon(opts.kahi, opts.scratch, n + 1, tables=tables) as d:
        wait_quiet(opts.quiesce)
        t0 = d.start()
        restarts, started, last_full = [], None, 0.0
        while started is None:
            state, pid = canary(d)
            if state == "RUNNING" and pid:
                os.kill(pid, signal.SIGKILL)
                k0 = time.perf_counter()
                while True:
                    state2, pid2 = canary(d)
                    if state2 == "RUNNING" and pid2 and pid2 != pid:
                        break
                    if time.perf_counter() - k0 > 10:
                        raise RuntimeError("the canary was not replaced within 10 s")
                restarts.append((time.perf_counter() - k0) * 1000)
            d.check_alive()
            now = time.perf_counter()
            if now - last_full > 0.5:
                last_full = now
                procs = d.status()
                if procs and sum(p["state"] == "RUNNING" for p in procs) == n + 1:
                    started = time.perf_counter() - t0
            if now - t0 > 120:
                raise RuntimeError("not every program RUNNING after 120 s")
            time.sleep(0.05)
        note(f"  scale: {n} programs RUNNING after {started:.2f} s; {len(restarts)} canary restarts, "
             f"median {statistics.median(restarts):.2f} ms, max {max(restarts):.2f} ms")
        time.sleep(1)
        d.programs()
        answers = []
        t1 = time.perf_counter()
        os.kill(d.pid, signal.SIGTERM)
        while d.proc.poll() is None:
            a0 = time.perf_counter()
            if request(d.sock, canary_q) is not None:
                answers.append((time.perf_counter() - a0) * 1000)
            time.sleep(0.01)
            if time.perf_counter() - t1 > 60:
                raise RuntimeError("the shutdown did not end within 60 s")
        stopped = time.perf_counter() - t1
        note(f"  scale: shutdown {stopped:.2f} s, exit status {d.proc.returncode}; {len(answers)} status "
             f"answers, median {statistics.median(answers):.1f} ms, max {max(answers):.1f} ms")
    out.figure("scale_start", started, f"{n} programs and the canary")
    out.figure("scale_canary_max", max(restarts), f"{len(restarts)} kills during the start")
    out.figure("scale_shutdown", stopped, f"exit status {d.proc.returncode}")
    out.figure("scale_status_max", max(answers), f"{len(answers)} answers, every 10 ms")


WRITER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "writer.py")


def filesystem(path):
    """'TYPE (DEVICE on MOUNTPOINT)' of the mount holding path, per /proc/mounts."""
    path, best = os.path.realpath(path), None
    with open("/proc/mounts") as f:
        for entry in f:
            dev, mnt, kind = entry.split()[:3]
            mnt = mnt.replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) \
                    and (best is None or len(mnt) >= len(best[1])):
                best = (dev, mnt, kind)  # the longest match; the last one if mounted over
    return f"{best[2]} ({best[0]} on {best[1]})" if best else "unknown"


def wait_log(path, startfile, total, ended, timeout=600):
    """Polls the size of `path` every 2 ms until it holds `total` bytes; seconds from the
    time in `startfile` (the writer's first write) until then. ended() says the copier has
    gone, so no more bytes can come."""
    t0 = time.monotonic()
    while True:
        gone = ended()  # before the stat: if it had gone, the stat sees all it wrote
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            size = 0
        now = time.monotonic()
        if size >= total:
            break
        if gone:
            raise RuntimeError(f"the copier ended with {size} of {total} bytes in {path}")
        if now - t0 > timeout:
            raise RuntimeError(f"only {size} of {total} bytes in {path} after {timeout} s")
        time.sleep(0.002)
    with open(startfile) as f:
        return now - float(f.read())


def check_log(path, total):
    """The file holds exactly `total` bytes, and its first and last lines are the writer's."""
    size = os.stat(path).st_size
    if size != total:
        raise RuntimeError(f"{path} holds {size} bytes, the writer wrote {total}")
    lines = total // writer.LINE
    with open(path, "rb") as f:
        first = f.read(writer.LINE)
        f.seek(total - writer.LINE)
        last = f.read(writer.LINE)
    for got, want in ((first, writer.line(0)), (last, writer.line(lines - 1))):
        if got != want:
            raise RuntimeError(f"{path}: expected {want[:20]!r}..., found {got[:20]!r}...")


def settle(opts):
    """Before a log run: nothing dirty left to write back from the last one, nothing running."""
    os.sync()
    wait_quiet(opts.quiesce)


def kahi_log_run(opts, total):
    """One launch of Kahi whose only program is the writer; seconds from its first write
    until stdout_logfile holds every byte."""
    def tables(d):
        return (f'\n[programs.writer]\ncommand = "{d.exe} {WRITER} {total} {d.dir}/writer.start"\n'
                f'startsecs = 0\nautorestart = false\nstdout_logfile = "{d.dir}/out.log"\n'
                'stdout_logfile_maxbytes = 0\n')
    with Daemon(opts.kahi, opts.scratch, 1, exe=sys.executable, tables=tables) as d:
        settle(opts)
        d.start()
        log = os.path.join(d.dir, "out.log")
        secs = wait_log(log, os.path.join(d.dir, "writer.start"), total,
                        lambda: d.proc.poll() is not None)
        deadline = time.monotonic() + 30
        while True:  # the writer has exited (status 0) before the file is checked
            d.check_alive()
            (p,) = d.status()
            if p["state"] not in ("STARTING", "RUNNING"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the writer is still {p['state']} 30 s after its last byte")
            time.sleep(0.01)
        if p["state"] != "EXITED" or p.get("exitstatus") != 0:
            raise RuntimeError(f"the writer ended {p['state']}, exit status {p.get('exitstatus')}")
        check_log(log, total)
        return secs


def cat_log_run(opts, total):
    """One `writer | cat > FILE`, timed the same way."""
    tmp = tempfile.mkdtemp(prefix="cat-", dir=opts.scratch)
    procs = []
    try:
        log, startfile = os.path.join(tmp, "out.log"), os.path.join(tmp, "writer.start")
        settle(opts)
        with open(log, "wb") as f:
            procs.append(subprocess.Popen([sys.executable, WRITER, str(total), startfile],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          start_new_session=True))
            procs.append(subprocess.Popen(["cat"], stdin=procs[0].stdout, stdout=f,
                                          start_new_session=True))
        procs[0].stdout.close()
        secs = wait_log(log, startfile, total, lambda: procs[1].poll() is not None)
        for p in procs:
            if p.wait(timeout=30) != 0:
                raise RuntimeError(f"{p.args[0]} exited with status {p.returncode}")
        check_log(log, total)
        return secs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def writer_alone(opts, total):
    """MB/s of the writer with stdout on /dev/null, from its first write to its exit."""
    tmp = tempfile.mkdtemp(prefix="devnull-", dir=opts.scratch)
    try:
        startfile = os.path.join(tmp, "writer.start")
        r = subprocess.run([sys.executable, WRITER, str(total), startfile],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        end = time.monotonic()
        if r.returncode != 0:
            raise RuntimeError(f"the writer exited with status {r.returncode}")
        with open(startfile) as f:
            return total / 1e6 / (end - float(f.read()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def log_throughput(out, opts):
    total = opts.log_bytes // writer.LINE * writer.LINE
    alone = [writer_alone(opts, total) for _ in range(3)]
    out.line(f"log writer: {total} bytes of {writer.LINE}-byte lines; files on "
             f"{filesystem(opts.scratch)}; the writer alone to /dev/null "
             f"{statistics.median(alone):.0f} MB/s (median of 3: "
             + " ".join(f"{r:.0f}" for r in alone) + ")")
    kahi, cat = [], []
    for i in range(opts.log_runs):  # alternating, so both see the same machine
        kahi.append(total / 1e6 / kahi_log_run(opts, total))
        cat.append(total / 1e6 / cat_log_run(opts, total))
        note(f"  log run {i + 1}: Kahi {kahi[-1]:.1f} MB/s, cat {cat[-1]:.1f} MB/s; load {loadavg()}")
    k, c = statistics.median(kahi), statistics.median(cat)
    many = f"median of {len(kahi)}: " if len(kahi) > 1 else "1 run: "
    out.measure("log throughput, Kahi", k, "MB/s", many + " ".join(f"{r:.1f}" for r in kahi))
    out.measure("log throughput, writer | cat > file", c, "MB/s", many + " ".join(f"{r:.1f}" for r in cat))
    out.figure("log_ratio", k / c, f"{k:.1f} / {c:.1f} MB/s")


# ---------------------------------------------------------------- peers


# The harness's scenarios, in the order they run: (scenario, N, runs in `make bench` as (Kahi,
# the others), or None where only `make bench-peers` runs it). For restart the runs are kills,
# for ctl queries. `make bench-peers` takes the harness's own numbers of runs (its README);
# BENCH_RUNS overrides them for the scenarios that launch once per run. A 1000-program launch of supervisord takes about half a minute,
# hence one run there in `make bench`.
PEER_SCENARIOS = [
    ("startup", 1, None),
    ("startup", 100, None),
    ("startup", 1000, (3, 1)),
    ("memory", 1, None),
    ("memory", 100, (3, 3)),
    ("memory", 1000, (3, 1)),
    ("idle", 1, None),
    ("idle", 100, (2, 2)),
    ("restart", 1, (10, 10)),
    ("log", 1, (3, 3)),
    ("ctl", 1, None),
    ("ctl", 100, (20, 20)),
    ("crashloop", 1, (3, 3)),
]
# What each scenario measures, in a line (from the harness's README).
PEER_DEFINITIONS = {
    "startup": "launch of the supervisor until all N `sleep` children have exec'd (polled in /proc)",
    "memory": "RSS and PSS summed over the supervisor's own processes, children excluded, 3 s after "
              "all N children exist",
    "idle": "context switches (every thread of every own process) per second over 10 s with N "
            "children, after a 5 s settle; CPU % of those processes alongside",
    "restart": "`kill -9` of the one child until its replacement has exec'd (busy poll of /proc); "
               "median and max of the kills, 1.5 s apart",
    "log": "the child writes 1 GiB of 100-byte lines in 65,500-byte writes; MB/s from its first "
           "write until the captured file(s) hold every byte",
    "ctl": "one status query over all N programs with the supervisor's own client, end to end "
           "(hyperfine -N, 3 warm-ups)",
    "crashloop": "a child that exits 1 at once; over 10 s after a 3 s warm-up, starts per second "
                 "and CPU % of the supervisor's own processes",
}
LOWER, HIGHER = "lower", "higher"
# The figures each scenario's result line gives: (key, what, unit, which is better). "per start"
# is derived: the crash loop's CPU divided by its starts. The crash loop's starts per second are
# a restart policy, not a speed (Kahi's restart guard holds them to 1/s or less): no ratio.
PEER_METRICS = {
    "startup": [("time", "time", "s", LOWER)],
    "memory": [("rss", "RSS", "MiB", LOWER), ("pss", "PSS", "MiB", LOWER)],
    "idle": [("wakeups", "wake-ups", "/s", LOWER), ("cpu", "CPU", "%", LOWER)],
    "restart": [("latency", "median", "ms", LOWER), ("max", "max", "ms", LOWER)],
    "log": [("throughput", "throughput", "MB/s", HIGHER)],
    "ctl": [("latency", "median", "ms", LOWER)],
    "crashloop": [("restarts", "starts", "/s", None), ("cpu", "CPU", "%", LOWER),
                  ("per_start", "CPU per start", "ms", LOWER)],
}
# The harness figures that stand beside this script's figures in the summary.
PEER_FIGURES = {
    ("startup", 1000, "time"): "startup_1000",
    ("memory", 100, "rss"): "rss_100",
    ("memory", 1000, "rss"): "rss_1000",
    ("idle", 100, "wakeups"): "idle_100",
    ("restart", 1, "latency"): "restart_median",
    ("restart", 1, "max"): "restart_max",
    ("ctl", 100, "latency"): "ctl_median",
    ("crashloop", 1, "restarts"): "crash_rate",
    ("crashloop", 1, "cpu"): "crash_cpu",
}
# Why Kahi is behind a peer on a figure, where it is, as found from the data and written by hand:
# {(scenario, N, key): text}. The report prints a placeholder where there is none.
_ONE_PROGRAM_MEMORY = (
    "with one program, Kahi's memory is nearly all its own code: the pages of the kahi binary "
    "it has touched (config parser, control socket, HTTP server, log machinery: one binary) are "
    "private to it, while tini and dumb-init are small C programs, and s6 and runit small C "
    "programs whose shared libc pages PSS divides among their processes. Each program adds "
    "little to Kahi's heap, while s6 and runit add a supervise process per program: from 100 "
    "programs on, Kahi takes the least memory of all.")
PEER_REASONS = {
    ("startup", 1, "time"): (
        "before its first spawn Kahi loads a binary of a few MB, reads and checks its TOML "
        "configuration and opens its control socket and poll loop; dumb-init and tini fork and "
        "exec their argv at once. About a millisecond, once per start; from 100 programs on "
        "Kahi starts them first."),
    ("memory", 1, "rss"): _ONE_PROGRAM_MEMORY,
    ("memory", 1, "pss"): _ONE_PROGRAM_MEMORY,
    ("ctl", 1, "latency"): (
        "`kahi ctl` is the daemon's binary, and most of its millisecond is loading it (`kahi "
        "version`, which opens no socket, takes nearly as long); s6-svstat and runit's sv are "
        "small C programs that read the service's status file without asking the supervisor. "
        "With 100 programs s6 has no such query, and Kahi is level with runit's sv."),
}
# The harness's physical references (sh loop, pipe to cat, plain file), run wherever it has them.
PEER_REFERENCES = ["ref", "ref-direct"]


def installed_peers():
    """The supervisors and inits installed here, by the harness's adapter names."""
    found = {"supervisord": ("supervisord", "supervisorctl"), "s6": ("s6-svscan",),
             "runit": ("runsvdir",), "tini": ("tini",), "dumb-init": ("dumb-init",)}
    return [a for a, exes in found.items() if all(shutil.which(e) for e in exes)]


class PeerRuns:
    """What the harness said: per label (an adapter, or a variant of one), per (scenario, N),
    the result line, n/a with the reason, or an error; the numbers keyed (scenario, N, key)."""

    def __init__(self, labels, references):
        self.labels, self.references = labels, references
        self.values = {a: {} for a in labels}
        self.status = {a: {} for a in labels}  # (scenario, N) -> "ok", "n/a" or "error"
        self.reasons = {}  # (label, scenario, N) -> why a run was n/a
        self.runs = {}  # (label, scenario, N) -> runs=K of its line
        self.versions = {}  # label -> the version line its first run logged
        self.busy = 0  # launches the harness found the machine busy for
        self.launches = 0

    @property
    def peers(self):
        return [a for a in self.labels if a != "kahi" and a not in self.references]

    def get(self, label, scenario, n, key):
        return self.values.get(label, {}).get((scenario, n, key))

    def figures(self, label):
        """This script's figures, from the harness's numbers of one label."""
        v = self.values.get(label, {})
        figs = {fig: v[k] for k, fig in PEER_FIGURES.items() if k in v}
        ref = self.get("ref", "log", 1, "throughput")
        if ref and ("log", 1, "throughput") in v:
            figs["log_ratio"] = v[("log", 1, "throughput")] / ref
        return figs


def run_peers(out, opts):
    """Runs the harness for Kahi, each installed peer and the references, scenario by scenario
    (so all see the same machine at nearly the same time); with --peers-only every scenario
    of PEER_SCENARIOS, else those of `make bench`. Returns a PeerRuns."""
    peers = installed_peers()
    if not peers:
        note("peers: none of supervisord, s6, runit, tini or dumb-init is installed; no comparison")
        return None
    references = [r for r in PEER_REFERENCES
                  if os.path.exists(os.path.join(opts.peers, "adapters", r + ".sh"))]
    # (label, adapter, extra environment): s6 restarts 1 s after a death unless the service
    # notified readiness, so the harness's restart runs it both ways.
    variants = {"restart": [("s6-no-notify", "s6", {"S6_NOTIFY": "0"})] if "s6" in peers else []}
    labels = ["kahi"] + peers + [v[0] for vs in variants.values() for v in vs] + references
    labels.sort(key=lambda a: ["kahi", "supervisord", "s6", "s6-no-notify", "runit", "tini",
                               "dumb-init", "ref", "ref-direct"].index(a))
    res = PeerRuns(labels, references)
    logdir = os.path.join(opts.log_dir, "peers")
    os.makedirs(logdir, exist_ok=True)
    env = dict(os.environ, KAHI_BIN=opts.kahi)
    env.setdefault("BENCH_QUIESCE", "5")
    print(f"comparison through {opts.peers}/run.sh (its own definitions; see its README):", flush=True)
    for scenario, n, quick_runs in PEER_SCENARIOS:
        if quick_runs is None and not opts.peers_only:
            continue
        keys = [m[0] for m in PEER_METRICS[scenario]]
        runners = [(a, a, {}) for a in ["kahi"] + peers + references] + variants.get(scenario, [])
        for label, a, extra in runners:
            run_env = dict(env, BENCH_LABEL=label, **extra)
            if not opts.peers_only:
                run_env["BENCH_RUNS"] = str(quick_runs[0] if a == "kahi" else quick_runs[1])
            elif scenario in ("restart", "ctl"):
                # BENCH_RUNS counts launches here; these take one, and their runs are kills
                # and queries
                run_env.pop("BENCH_RUNS", None)
            log = os.path.join(logdir, f"{label}-{scenario}-{n}.log")
            t = time.monotonic()
            with open(log, "w") as err:
                r = subprocess.run([os.path.join(opts.peers, "run.sh"), a, scenario, str(n)],
                                   env=run_env, stdout=subprocess.PIPE, stderr=err, text=True)
            line = r.stdout.strip()
            if r.returncode == 3:
                res.status[label][scenario, n] = "n/a"
                reason = re.search(r'reason="(.*)"', line)
                res.reasons[label, scenario, n] = reason.group(1) if reason else line
                if label in references:
                    continue  # a reference only where the harness has one
            elif r.returncode == 0 and line:
                res.status[label][scenario, n] = "ok"
                fields = dict(m.groups() for m in re.finditer(r"(\w+)=([0-9.]+)", line))
                for k in keys:
                    if k in fields:
                        res.values[label][scenario, n, k] = float(fields[k])
                if scenario == "crashloop" and fields.get("restarts") and float(fields["restarts"]) > 0:
                    # CPU % over starts per second: ms of CPU per start
                    res.values[label][scenario, n, "per_start"] = \
                        float(fields["cpu"]) * 10 / float(fields["restarts"])
                res.runs[label, scenario, n] = int(fields.get("runs", 0))
                res.launches += 1 if scenario in ("restart", "ctl") else res.runs[label, scenario, n]
            else:
                res.status[label][scenario, n] = "error"
                line = f"{label} {scenario} {n} error (rc={r.returncode}; see {log})"
            out.line(f"  {line}")
            with open(log) as f:
                text = f.read()
            first = text.split("\n", 1)[0]
            if ": " in first and label not in res.versions and r.returncode != 3:
                res.versions[label] = first.split(": ", 1)[1]
            res.busy += text.count("did not go idle before the run")
            note(f"  ({label} {scenario} {n}: {time.monotonic() - t:.0f} s, load {loadavg()})")
    return res


def versus_supervisord(out, peer_runs):
    """Kahi's log throughput against supervisord's, both through the harness, same session."""
    k = peer_runs.get("kahi", "log", 1, "throughput")
    s = peer_runs.get("supervisord", "log", 1, "throughput")
    if k and s:
        out.figure("log_vs_supervisord", k / s,
                   f"harness log scenario: Kahi {k:.1f} MB/s, supervisord {s:.1f} MB/s")


def kahi_ratio(kahi, peer, better):
    """The peer against Kahi so that more than 1 means Kahi is better; None if there is none
    to give, and float("inf") when Kahi's figure is 0 and the peer's is not."""
    if kahi is None or peer is None:
        return None
    if better == LOWER:
        return (peer / kahi if kahi else (1.0 if peer == 0 else float("inf")))
    return (kahi / peer if peer else float("inf"))


def fmt_ratio(r):
    if r == float("inf"):
        return "∞ (Kahi 0)"
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


def fmt_peer(value, unit):
    if unit == "s":
        return f"{value:.4f}" if value < 0.1 else f"{value:.3f}"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


# ---------------------------------------------------------------- the peer report


def machine():
    """CPU model, cores, kernel, memory, in a line."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = " ".join(line.split(":", 1)[1].split())
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    u = os.uname()
    return f"{model}, {os.cpu_count()} cores, Linux {u.release} ({u.machine}), {mem:.1f} GiB of memory"


def kahi_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run(["git", "-C", here, "describe", "--always", "--dirty", "--abbrev=12"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def markdown(path, res, meta):
    """docs/benchmarks.md: the machine, the date, the definitions, the raw figures, the ratios
    (more than 1: Kahi is better), and where Kahi is not ahead."""
    cell_ok = lambda a, s, n: res.status.get(a, {}).get((s, n))  # noqa: E731
    rows = [(s, n, m) for s, n, _ in PEER_SCENARIOS for m in PEER_METRICS[s]
            if any(cell_ok(a, s, n) for a in res.labels)]
    shown = [a for a in res.labels if any(cell_ok(a, s, n) == "ok" for s, n, _ in rows)]
    peers = [a for a in res.peers if a in shown]
    w = []
    w.append("# Kahi beside other supervisors\n")
    w.append("Written by `make bench-peers` (`bench/kahi_bench.py --peers-only`), which runs the "
             "shared benchmark harness (`run.sh ADAPTER SCENARIO N`) for Kahi and each supervisor "
             "installed, scenario by scenario, on one machine in one run. Compare figures "
             "only within this page: on a small VM the same benchmark drifts by 10–30 % from "
             "one day to another.\n")
    w.append(f"- Date: {meta['date']}")
    w.append(f"- Machine: {meta['machine']}")
    w.append(f"- Kahi: {meta['version']}, commit {meta['commit']}")
    for a in shown:
        if a != "kahi" and a in res.versions and res.versions[a] not in w[-1]:
            w.append(f"- {a}: {res.versions[a]}")
    w.append(f"- Load: {meta['load']}")
    if meta.get("runs_note"):
        w.append(f"- Runs: {meta['runs_note']}")
    w.append("")
    w.append("## Scenarios\n")
    for s in dict.fromkeys(s for s, _, _ in rows):
        ns = "/".join(str(n) for s2, n, _ in PEER_SCENARIOS if s2 == s)
        w.append(f"- **{s}** (N = {ns}): {PEER_DEFINITIONS[s]}.")
    w.append("")
    w.append("Children are `sleep` (a crashing `sh -c` for crashloop, the harness's writer for log); "
             "every supervisor restarts them at once where it can (autorestart, startsecs = 0 or "
             "its equivalent). s6's restart runs with a readiness notification (its fastest legal "
             "restart); `s6-no-notify` is s6 without one. `ref` is the physical reference (a `sh` "
             "loop, or `writer | cat > file`), `ref-direct` the writer straight to the file.\n")

    def raw(a, s, n, m):
        st = cell_ok(a, s, n)
        if st == "ok":
            v = res.get(a, s, n, m[0])
            return "–" if v is None else fmt_peer(v, m[2])
        return st or "–"

    w.append("## Figures\n")
    w.append("| scenario | N | figure | unit | better | " + " | ".join(shown) + " | runs |")
    w.append("|---|---:|---|---|---|" + "---:|" * len(shown) + "---|")
    for s, n, m in rows:
        runs = sorted({res.runs[a, s, n] for a in shown if (a, s, n) in res.runs})
        w.append(f"| {s} | {n} | {m[1]} | {m[2]} | {m[3] or '–'} | "
                 + " | ".join(raw(a, s, n, m) for a in shown)
                 + f" | {'/'.join(str(r) for r in runs)} |")
    w.append("")
    w.append("n/a: the harness does not run that supervisor there (reasons below). "
             "runs: launches per figure (kills for restart, queries for ctl).\n")

    w.append("## Ratios\n")
    w.append("Each peer against Kahi, stated so that **more than 1 means Kahi is better**: "
             "peer / Kahi where lower is better, Kahi / peer where higher is better.\n")
    w.append("| scenario | N | figure | " + " | ".join(peers) + " |")
    w.append("|---|---:|---|" + "---:|" * len(peers))
    behind, level = {}, {}
    for s, n, m in rows:
        if m[3] is None:
            continue
        cells = []
        for a in peers:
            r = kahi_ratio(res.get("kahi", s, n, m[0]), res.get(a, s, n, m[0]), m[3])
            if r is None:
                cells.append("n/a" if cell_ok(a, s, n) == "n/a" else "–")
                continue
            cells.append(fmt_ratio(r))
            if r < 1:
                behind.setdefault((s, n, m), []).append((a, r))
            elif r == 1:
                level.setdefault((s, n, m), []).append(a)
        w.append(f"| {s} | {n} | {m[1]} | " + " | ".join(cells) + " |")
    w.append("")
    w.append("The crash loop's starts per second are not compared: they are a restart policy "
             "(Kahi's restart guard holds a program that keeps crashing to 1 start a second or "
             "fewer), not a speed; what a crash loop costs is its CPU.\n")

    w.append("## Where Kahi is not ahead, and why\n")
    if not behind and not level:
        w.append("Kahi is ahead of every peer on every figure where the peer does the same job.\n")
    for (s, n, m), who in behind.items():
        k = res.get("kahi", s, n, m[0])
        them = ", ".join(f"{a} {fmt_peer(res.get(a, s, n, m[0]), m[2])} ({fmt_ratio(r)})" for a, r in who)
        why = PEER_REASONS.get((s, n, m[0]))
        why = f"Why: {why}" if why else "*Reason: not derived from the data; to be written by hand.*"
        w.append(f"- **{s} {n}, {m[1]}**: Kahi {fmt_peer(k, m[2])} {m[2]}; {them}. {why}")
    for (s, n, m), who in level.items():
        w.append(f"- **{s} {n}, {m[1]}**: level with {', '.join(who)} "
                 f"({fmt_peer(res.get('kahi', s, n, m[0]), m[2])} {m[2]} each).")
    if behind or level:
        w.append("")
    gone = {}
    for (a, s, n), why in res.reasons.items():
        if a not in res.references:
            gone.setdefault((a, why), []).append(f"{s} {n}")
    if gone:
        w.append("Where a peer does not do the same job (the harness's reasons):\n")
        for (a, why), where in gone.items():
            w.append(f"- {a}, {', '.join(where)}: {why}.")
        w.append("")
    errors = [f"{a} {s} {n}" for a in res.labels for (s, n), st in res.status[a].items() if st == "error"]
    if errors:
        w.append("Runs that failed (their logs are in target/bench/peers/): " + ", ".join(errors) + ".\n")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(w))


# ---------------------------------------------------------------- dependencies


def dependencies(out, opts):
    """200 independent programs against 200 in a diamond (a root, 198 branches that depend
    on it, a sink that depends on every branch): time until all are RUNNING, median of the
    runs each; and, from the processes' start times, that the diamond started in dependency
    order with its branches together."""
    def independent(d):
        return "".join(f'\n[programs.p{i}]\ncommand = "{d.exe} 100000{i}"\nstartsecs = 0\n'
                       for i in range(200))

    def diamond(d):
        t = f'\n[programs.root]\ncommand = "{d.exe} 1000000"\nstartsecs = 0\n'
        for i in range(198):
            t += (f'\n[programs.b{i}]\ncommand = "{d.exe} 100000{i}"\nstartsecs = 0\n'
                  'depends_on = ["root"]\n')
        branches = ", ".join(f'"b{i}"' for i in range(198))
        t += f'\n[programs.sink]\ncommand = "{d.exe} 1000001"\nstartsecs = 0\ndepends_on = [{branches}]\n'
        return t

    times = {"independent": [], "diamond": []}
    spread = []
    for _ in range(opts.deps_runs):
        for kind, tables in (("independent", independent), ("diamond", diamond)):
            with Daemon(opts.kahi, opts.scratch, 200, tables=tables) as d:
                wait_quiet(opts.quiesce)
                times[kind].append(d.wait_running(d.start()))
                if kind == "diamond":
                    procs = {p["name"]: p["start_time"] for p in d.status()}
                    branches = [procs[f"b{i}"] for i in range(198)]
                    if not (procs["root"] <= min(branches) and max(branches) <= procs["sink"]):
                        raise RuntimeError("the diamond did not start in dependency order")
                    spread.append((max(branches) - min(branches)) * 1000)
    ind, dia = statistics.median(times["independent"]), statistics.median(times["diamond"])
    out.measure("200 independent programs RUNNING", ind, "s",
                "median of " + " ".join(f"{t:.3f}" for t in times["independent"]))
    out.measure("200 programs in a diamond RUNNING", dia, "s",
                "median of " + " ".join(f"{t:.3f}" for t in times["diamond"]))
    out.measure("diamond: first to last branch spawned", statistics.median(spread), "ms",
                "released in one loop turn; root before every branch, every branch before the sink: checked")
    out.figure("deps_200_ratio", dia / ind, f"{dia:.3f} s / {ind:.3f} s")


# ---------------------------------------------------------------- HTTP under load


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url, secs, script=None):
    """One wrk run, 2 threads and 32 kept-alive connections: (requests/s, p99 in ms)."""
    argv = ["wrk", "-t2", "-c32", f"-d{secs}s", "--latency"]
    if script:
        argv += ["-s", script]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=secs + 60).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\b", out, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not rate or not p99 or errors:
        raise RuntimeError(f"wrk said: {out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return float(rate.group(1)), float(p99.group(1)) * scale


def idle_connections(port, n, threads):
    """Opens up to `n` connections that send nothing (as many as the descriptor limit
    allows), then times one /healthz: (connections opened, ms, daemon threads)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = []
    try:
        for _ in range(min(n, hard - 100)):
            conns.append(socket.create_connection(("127.0.0.1", port)))
        t = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = s.recv(12)
        took = (time.monotonic() - t) * 1000
        if not answer.startswith(b"HTTP/1.1 200"):
            note(f"  /healthz with {len(conns)} idle connections: {answer!r}")
            return None
        return len(conns), took, threads()
    except OSError as e:
        note(f"  idle connections: {e}")
        return None
    finally:
        for c in conns:
            c.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def http_load(out, opts):
    """GET /api/v1/processes with 100 programs under wrk (2 threads, 32 connections), median
    of the runs; then supervisord's XML-RPC getAllProcessInfo the same way, when installed."""
    if not shutil.which("wrk"):
        note("wrk is not installed: no HTTP figures")
        return
    port = free_port()
    http = f'\n[server.http]\nlisten = "127.0.0.1:{port}"\n'

    def tables(d):
        return http + "".join(f'\n[programs.p{i}]\ncommand = "{d.exe} 100000{i}"\n'
                              'autorestart = true\nstartsecs = 0\n' for i in range(100))

    runs = []
    with Daemon(opts.kahi, opts.scratch, 100, tables=tables) as d:
        wait_quiet(opts.quiesce)
        d.wait_running(d.start())
        url = f"http://127.0.0.1:{port}/api/v1/processes"
        wrk(url, 1)  # warm up
        for _ in range(opts.http_runs):
            runs.append(wrk(url, opts.http_secs))
            note(f"  Kahi HTTP: {runs[-1][0]:.0f} req/s, p99 {runs[-1][1]:.2f} ms")
        threads = d.threads()
        idle = idle_connections(port, 10000, d.threads)
        d.check_alive()
    rate = statistics.median(r[0] for r in runs)
    p99 = statistics.median(r[1] for r in runs)
    detail = f"median of {len(runs)} wrk runs of {opts.http_secs} s: " + " ".join(f"{r[0]:.0f}" for r in runs)
    out.figure("http_rps", rate, detail)
    out.figure("http_p99", p99, "median of the runs' p99: " + " ".join(f"{r[1]:.2f}" for r in runs))
    out.measure("HTTP daemon threads after the wrk runs", threads, "threads", "the loop, the front, two password checkers")
    if idle:
        out.measure(f"/healthz with {idle[0]} idle connections open", idle[1], "ms",
                    f"threads {idle[2]}; past max_connections (512) new ones take the idle ones' places")
    if shutil.which("supervisord"):
        sup = supervisord_rpc(opts)
        if sup:
            out.measure("supervisord XML-RPC getAllProcessInfo", sup[0], "req/s", f"p99 {sup[1]:.2f} ms")
            out.figure("http_vs_supervisord", rate / sup[0],
                       f"Kahi {rate:.0f} req/s, supervisord {sup[0]:.0f} req/s")


def supervisord_rpc(opts):
    """supervisord with 100 sleep programs: (req/s, p99 ms) of getAllProcessInfo under wrk."""
    d = tempfile.mkdtemp(prefix="supervisord-", dir=opts.scratch)
    port = free_port()
    sleep = shutil.which("sleep") or "/bin/sleep"
    conf = os.path.join(d, "supervisord.conf")
    with open(conf, "w") as f:
        f.write(f"[supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n"
                f"childlogdir={d}\nnodaemon=true\n\n[inet_http_server]\nport=127.0.0.1:{port}\n\n"
                "[rpcinterface:supervisor]\n"
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n")
        for i in range(100):
            f.write(f"\n[program:p{i}]\ncommand={sleep} 200000{i}\nstartsecs=0\n"
                    "stdout_logfile=NONE\nstderr_logfile=NONE\n")
    script = os.path.join(d, "rpc.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/xml"\n'
                'wrk.body = "<?xml version=\'1.0\'?><methodCall><methodName>'
                'supervisor.getAllProcessInfo</methodName><params></params></methodCall>"\n')
    log = open(os.path.join(d, "out.log"), "wb")
    proc = subprocess.Popen(["supervisord", "-c", conf], cwd=d, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    log.close()
    try:
        url = f"http://127.0.0.1:{port}/RPC2"
        deadline = time.monotonic() + 60
        while True:
            try:
                body = ("<?xml version='1.0'?><methodCall><methodName>supervisor.getAllProcessInfo"
                        "</methodName><params></params></methodCall>").encode()
                with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                    c.sendall(b"POST /RPC2 HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: "
                              + str(len(body)).encode() + b"\r\n\r\n" + body)
                    reply = b""
                    while chunk := c.recv(65536):
                        reply += chunk
                if reply.count(b"RUNNING") >= 100:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                note("supervisord did not come up; no comparison")
                return None
            time.sleep(0.2)
        wrk(url, 1, script)
        runs = [wrk(url, opts.http_secs, script) for _ in range(opts.http_runs)]
        for r in runs:
            note(f"  supervisord XML-RPC: {r[0]:.0f} req/s, p99 {r[1]:.2f} ms")
        return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- summary


def summary(out, peer_runs):
    figs, peers = {}, []
    if peer_runs:
        figs = {a: peer_runs.figures(a) for a in ["kahi"] + peer_runs.peers}
        peers = [p for p in peer_runs.peers if figs[p]]
    head = ["figure", "Kahi", "target", ""]
    if figs:
        head += ["harness: Kahi"] + sum(([p, f"{p}/Kahi"] for p in peers), [])
    rows = [head]
    for key, (label, unit, target, op) in TARGETS.items():
        v = out.values.get(key)
        if v is None:
            continue
        sign = "=" if key == "idle_100" else op
        row = [label, fmt(v, unit), f"{sign} {target:g} {unit}", "PASS" if passes(key, v) else "FAIL"]
        if figs:
            k = figs["kahi"].get(key)
            row.append(fmt(k, unit))
            for p in peers:
                pv = figs[p].get(key)
                row.append(fmt(pv, unit))
                if pv is None or k is None:
                    row.append("-")
                elif k == 0:
                    row.append("Kahi 0" if pv > 0 else "both 0")
                else:
                    row.append(f"{pv / k:.1f}x")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    out.line("")
    out.line("summary")
    for j, r in enumerate(rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        out.line("  " + "  ".join(cells).rstrip())
        if j == 0:
            out.line("  " + "  ".join("-" * w for w in widths))
    fails = [TARGETS[k][0] for k in out.failed()]
    out.line(f"  {len(out.values) - len(fails)} of {len(out.values)} figures meet their target"
             + (f"; missed: {', '.join(fails)}" if fails else ""))
    if figs:
        out.line("  (harness figures: startup = until every child has exec'd, per /proc; restart = "
                 "median and max of 10 kills 1.5 s apart; crash loop = starts/s and CPU % over 10 s; ctl = median of 20; log = its writer "
                 "(65,500-byte writes), median of 3, over its ref (writer | cat); ratios = peer / Kahi, "
                 "same harness, same session; every figure and ratio: make bench-peers)")


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kahi", required=True, help="the kahi binary")
    ap.add_argument("--scratch", required=True, help="a private directory for the daemons' files")
    ap.add_argument("--results", help="also write the result lines to this file")
    ap.add_argument("--log-dir", default=None, help="where the peer runs' logs go (default: beside --results)")
    ap.add_argument("--peers", help="a benchmark harness directory (run.sh, adapters/) for the comparison")
    ap.add_argument("--quick", action="store_true", help="fewer runs, shorter windows, no comparison")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a figure misses its target")
    ap.add_argument("--peers-only", action="store_true",
                    help="only the comparison through --peers, over every scenario of PEER_SCENARIOS")
    ap.add_argument("--markdown", help="with --peers-only: write the comparison to this file")
    opts = ap.parse_args()
    if opts.peers_only and (opts.quick or not opts.peers):
        ap.error("--peers-only needs --peers DIR (the benchmark harness), and no --quick")
    if opts.markdown and not opts.peers_only:
        ap.error("--markdown goes with --peers-only")
    opts.kahi = os.path.abspath(opts.kahi)
    opts.log_dir = opts.log_dir or os.path.dirname(os.path.abspath(opts.results or "results.txt"))
    if opts.quick:
        opts.startup_runs, opts.hundred_runs, opts.idle_settle, opts.idle_secs = 1, 1, 5, 3
        opts.kills, opts.kill_gap, opts.ctl_runs, opts.quiesce = 5, 1.2, 30, 2
        opts.crash_runs, opts.crash_warmup, opts.crash_secs = 1, 2, 5
        opts.log_bytes, opts.log_runs = 256 * MIB, 1
        opts.http_runs, opts.http_secs = 1, 3
        opts.deps_runs = 1
        opts.scale_n = 2000
        opts.peers = None
    else:
        opts.startup_runs, opts.hundred_runs, opts.idle_settle, opts.idle_secs = 3, 3, 5, 10
        opts.kills, opts.kill_gap, opts.ctl_runs, opts.quiesce = 20, 1.2, 200, 5
        opts.crash_runs, opts.crash_warmup, opts.crash_secs = 3, 3, 10
        opts.log_bytes, opts.log_runs = 1024 * MIB, 5
        opts.http_runs, opts.http_secs = 3, 10
        opts.deps_runs = 3
        opts.scale_n = 10000

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        want = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    if soft != resource.RLIM_INFINITY and soft < 2100:
        raise SystemExit(f"the fd limit is {soft}; 1000 programs need more than 2000 (2 pipes each)")

    set_subreaper()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = Output(opts.results)
    started = time.monotonic()
    version = subprocess.run([opts.kahi, "version"], capture_output=True, text=True).stdout.strip()
    load_before = f"load average {loadavg()}, CPUs {cpu_busy(2):.0f} % busy over 2 s"
    out.line(f"{version} ({opts.kahi}); {os.cpu_count()} CPUs; {load_before} before the start"
             f"{'; quick run' if opts.quick else ''}")
    if opts.peers_only:
        date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        peer_runs = run_peers(out, opts)
        load_after = f"load average {loadavg()}, CPUs {cpu_busy(2):.0f} % busy over 2 s"
        took = time.monotonic() - started
        out.line(f"  {load_after} after the end; {peer_runs.busy if peer_runs else 0} launches found "
                 f"the machine busy; took {took:.0f} s")
        if peer_runs and opts.markdown:
            cap = os.environ.get("BENCH_RUNS")
            markdown(opts.markdown, peer_runs, {
                "date": date, "machine": machine(), "version": version, "commit": kahi_commit(),
                "load": f"{load_before} before the start; {load_after} after the end; "
                        f"{peer_runs.busy} of {peer_runs.launches} launches (of every supervisor) "
                        f"began before the machine was idle; the whole comparison took "
                        f"{took / 60:.0f} min",
                "runs_note": f"BENCH_RUNS={cap}: {cap} launches per figure instead of the harness's "
                             "defaults; restart and ctl keep theirs (10 kills, 20 queries)" if cap else "",
            })
            out.line(f"  written to {opts.markdown}")
        return 0 if peer_runs else 1
    rss1000 = startup_and_rss1000(out, opts)
    ctl = hundred(out, opts, rss1000)
    restart(out, opts)
    crash_loop(out, opts)
    out.figure("ctl_median", ctl[0], f"{ctl[2]} runs")
    out.figure("ctl_p99", ctl[1], f"{ctl[2]} runs")
    log_throughput(out, opts)
    dependencies(out, opts)
    http_load(out, opts)
    scale(out, opts)
    peer_runs = None
    if opts.peers:
        peer_runs = run_peers(out, opts)
        if peer_runs:
            versus_supervisord(out, peer_runs)
    summary(out, peer_runs)
    out.line(f"  load average at the end {loadavg()}; CPUs {cpu_busy(2):.0f} % busy over 2 s after the end; "
             f"{len(BUSY_LAUNCHES)} of Kahi's own launches found the machine busy; "
             f"took {time.monotonic() - started:.0f} s")
    return 1 if opts.strict and out.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
