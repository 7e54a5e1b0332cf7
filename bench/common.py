"""What every scenario shares: the result lines and their targets, /proc, and one `kahi daemon`
with N programs in a private directory, always torn down."""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


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
    "restart_webhooks_median": ("restart with 10 webhooks, median", "ms", 10.0, "<"),
    "restart_webhooks_max": ("restart with 10 webhooks, max", "ms", 10.0, "<"),
    "restart_dashboards_median": ("restart with 20 dashboards, median", "ms", 10.0, "<"),
    "restart_dashboards_max": ("restart with 20 dashboards, max", "ms", 10.0, "<"),
    "dashboard_idle": ("idle wakeups, HTTP, after a dashboard", "/s", 0.0, "<="),
    "crash_rate": ("crash loop, starts per second", "/s", 1.0, "<="),
    "crash_cpu": ("crash loop, daemon CPU", "%", 1.0, "<"),
    "ctl_median": ("ctl status, 100 programs, median", "ms", 1.0, "<="),
    "ctl_p99": ("ctl status, 100 programs, p99", "ms", 5.0, "<"),
    "log_ratio": ("log throughput, Kahi / cat", "x", 0.8, ">="),
    "log_vs_supervisord": ("log throughput, Kahi / supervisord", "x", 1.0, ">"),
    "events_vs_supervisord": ("events to a listener, Kahi / supervisord", "x", 1.0, ">"),
    "deps_200_ratio": ("200 programs, dependency diamond / independent", "x", 1.5, "<="),
    "http_rps": ("HTTP process list, 100 programs, rate", "req/s", 18000.0, ">="),
    "http_p99": ("HTTP process list, 100 programs, p99", "ms", 10.0, "<"),
    "http_vs_supervisord": ("HTTP rate, Kahi / supervisord XML-RPC", "x", 20.0, ">="),
    "scale_start": ("start of 10,000 programs", "s", 30.0, "<"),
    "scale_vs_shell": ("start of 10,000, Kahi / shell loop", "x", 1.1, "<="),
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
        sign = "=" if key in ("idle_100", "dashboard_idle") else op
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
    if unit in ("req/s", "B"):
        return f"{value:.0f} {unit}"
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


def stop_session(proc):
    """Stops a supervisor started in its own session (start_new_session=True): SIGTERM to its
    process group, SIGKILL if it has not exited within 60 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


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

    def __init__(self, kahi, scratch, n, exe=None, tables=None, logging="console = false\n"):
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
            # By default only the log file is measured: no copy of the programs' lines to
            # Kahi's stdout (console = "auto" would make one in the foreground).
            f.write(f'[server]\nsocket = "{self.sock}"\n\n[logging]\n{logging}')
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

    def start(self, stdout=None):
        """Starts the daemon, its stdout and stderr to daemon.log, or its stdout to the file
        `stdout` (the console) and stderr to daemon.log."""
        log = open(os.path.join(self.dir, "daemon.log"), "wb")
        out = open(stdout, "wb") if stdout else log
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([self.kahi, "daemon", "-c", self.conf], cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=log,
                                     start_new_session=True)
        log.close()
        out.close()
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
