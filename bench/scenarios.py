"""The scenarios of one daemon at a time: start-up and memory, 100 programs (idle, ctl),
restart after kill -9 (with and without webhooks), the crash loop, 10,000 programs, and
dependencies."""

import calendar
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

from dashboard import Followers, free_port, http_tables
from common import (
    MIB,
    Daemon,
    TICK,
    context_switches,
    cpu_ticks,
    loadavg,
    note,
    pids,
    proc_stat,
    read_bytes,
    reap_all,
    wait_quiet,
)


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
                ctl = ctl_latency(d, opts, opts.kahi)
                if opts.other:
                    ctl_other = ctl_latency(d, opts, opts.other)
                    out.measure("ctl status, other build, median", ctl_other[0], "ms",
                                f"{ctl_other[2]} runs of {opts.other}, after the installed one's")
    out.figure("rss_100", statistics.median(rss),
               f"median of {len(rss)}: " + " ".join(f"{r:.2f}" for r in rss))
    out.figure("rss_1000", statistics.median(rss1000),
               f"median of {len(rss1000)}: " + " ".join(f"{r:.2f}" for r in rss1000))
    # What one more program costs the daemon: its process record, pipes' state, names.
    out.measure("daemon memory per program, 1000", per_program(statistics.median(rss), statistics.median(rss1000), 900), "B",
                "RSS at 1000 less RSS at 100, over 900")
    out.figure("idle_100", statistics.median(rates),
               f"median of {len(rates)} windows of {opts.idle_secs:g} s: "
               + " ".join(f"{r:.2f}" for r in rates))
    return ctl


def per_program(base, more, n):
    """Bytes of RSS per program, from the RSS (MiB) with n programs more than base has."""
    return (more - base) * MIB / n


def percentile(xs, p):
    """Nearest-rank percentile."""
    xs = sorted(xs)
    k = max(1, -(-len(xs) * p // 100))
    return xs[int(k) - 1]


def ctl_latency(d, opts, kahi):
    argv = [kahi, "ctl", "-s", d.sock, "status"]
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


# A webhook receiver: answers every POST 204, prints its port, and at SIGTERM the POSTs it
# got. A process of its own: its threads in this one would take the GIL from the busy poll
# that times the restarts.
RECEIVER = """
import signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
count, lock = 0, threading.Lock()
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            count += 1
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
# Ten webhooks connect at once: the default listen backlog of 5 would drop SYNs, each then
# retried a second later.
ThreadingHTTPServer.request_queue_size = 128
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
def done(*_):
    print(count, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Receiver:
    """The RECEIVER process."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", RECEIVER], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def close(self):
        """Ends it; returns the POSTs it got."""
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return int(out.strip() or 0)


def restart(out, opts, webhooks=0, dashboards=0):
    """Kills of one program, each timed until its replacement has exec'd; with `webhooks`,
    that many webhooks on PROCESS_STATE post to a Receiver meanwhile; with `dashboards`, that
    many clients follow the HTTP event stream as the dashboard's page does."""
    samples = []
    receiver = Receiver() if webhooks else None
    tables, port, followers, read = None, None, None, None
    if dashboards:
        port = free_port()

        def tables(d):
            return http_tables(port) + (f'\n[programs.p0]\ncommand = "{d.exe} 1000000"\n'
                                        'autorestart = true\nstartsecs = 0\n')
    if receiver:
        def tables(d):
            t = f'\n[programs.p0]\ncommand = "{d.exe} 1000000"\nautorestart = true\nstartsecs = 0\n'
            for i in range(webhooks):
                t += (f'\n[webhooks.w{i}]\nurl = "http://127.0.0.1:{receiver.port}/w{i}"\n'
                      'events = ["PROCESS_STATE"]\n')
            return t
    posts = None
    try:
        with Daemon(opts.kahi, opts.scratch, 1, tables=tables) as d:
            wait_quiet(opts.quiesce)
            d.wait_running(d.start())
            if dashboards:
                followers = Followers(port, dashboards)
            time.sleep(1)
            want = (d.comm + "\n").encode()
            for k in range(opts.kills):
                (old,) = d.programs()
                known = set(pids())
                # The clock starts before the kill: the dying program or the daemon may take
                # this CPU as soon as the signal is sent, and a clock read after that would
                # leave out the time they ran.
                t0 = time.perf_counter()
                os.kill(old, signal.SIGKILL)
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
            if followers:
                # Before the daemon goes, which ends their streams.
                read, followers = followers.close(), None
    finally:
        if receiver:
            posts = receiver.close()
        if followers:
            followers.close()
    key, detail = "restart", ""
    if receiver:
        key, detail = "restart_webhooks", f"; {posts} POSTs received"
    if dashboards:
        key, detail = "restart_dashboards", f"; {dashboards} event streams read {read} events"
    out.figure(f"{key}_median", statistics.median(samples), f"{len(samples)} kills{detail}")
    out.figure(f"{key}_max", max(samples), f"{len(samples)} kills, {opts.kill_gap:g} s apart")


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
        log = DaemonLog(d)
        t0 = d.start()
        restarts, started, last_full = [], None, 0.0
        while started is None:
            state, pid = canary(d)
            if state == "RUNNING" and pid:
                restarts.append(replace(d, pid, canary, log))
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
        kahi_part, kernel_part, seen = (sorted(r[i] for r in restarts) for i in range(3))
        note(f"  scale: {n} programs RUNNING after {started:.2f} s; {len(restarts)} canary restarts: "
             f"end to spawned median {statistics.median(kahi_part):.1f} ms, max {kahi_part[-1]:.1f}; "
             f"kill to end median {statistics.median(kernel_part):.1f}, max {kernel_part[-1]:.1f}; "
             f"kill until status showed it median {statistics.median(seen):.1f}, max {seen[-1]:.1f}")
        time.sleep(1)
        d.programs()
        rss = d.rss_mib()
        answers = []
        t1 = time.perf_counter()
        os.kill(d.pid, signal.SIGTERM)
        while d.proc.poll() is None:
            with realtime():
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
    out.measure(f"daemon RSS, {n} programs", rss, "MiB", "once every program is RUNNING")
    if "rss_100" in out.values:
        out.measure(f"daemon memory per program, {n}", per_program(out.values["rss_100"], rss, n - 99),
                    "B", f"RSS at {n + 1} less RSS at 100")
    out.figure("scale_canary_max", kahi_part[-1],
               f"{len(restarts)} kills during the start, from the killed one's end")
    out.measure("  kill to that end, max", kernel_part[-1], "ms", "the kernel's part")
    out.measure("  kill until status showed it, max", seen[-1], "ms", "as a client saw it")
    out.figure("scale_shutdown", stopped, f"exit status {d.proc.returncode}")
    out.figure("scale_status_max", max(answers), f"{len(answers)} answers, every 10 ms")


def replace(d, pid, canary, log):
    """kill -9 of the canary `pid` and its replacement: ms from the killed process's end to
    the daemon's log line that says the replacement was spawned (RUNNING at once, startsecs =
    0), from the kill to that end, and from the kill until `status` showed the replacement.
    The end is when a pidfd of the process turns readable, which the kernel does as it sends
    the daemon its SIGCHLD; this waits for it as a real-time thread, so that the time it is
    read is not this client's own wait for a CPU. The kernel's part is beside, not hidden: no
    supervisor can replace a process before the kernel has ended it, and while 10,000
    programs start on a small machine the killed one waits for a CPU to end on too."""
    fd = os.pidfd_open(pid)
    try:
        k0, killed = time.perf_counter(), time.time()
        os.kill(pid, signal.SIGKILL)
        with realtime():
            if not select.select([fd], [], [], 10)[0]:
                raise RuntimeError(f"the canary (pid {pid}) had not ended 10 s after kill -9")
            ended = time.time()
    finally:
        os.close(fd)
    while True:
        state, new = canary(d)
        if state == "RUNNING" and new and new != pid:
            break
        if time.perf_counter() - k0 > 10:
            raise RuntimeError("the canary was not replaced within 10 s")
        time.sleep(0.002)
    seen = (time.perf_counter() - k0) * 1000
    spawned = log.find(f"spawned: 'canary' with pid {new}")
    # The log's millisecond is truncated: the spawn was before its end.
    return max(0.0, spawned + 0.001 - ended) * 1000, (ended - killed) * 1000, seen


class DaemonLog:
    """The daemon's own log (daemon.log), read on from where the last search ended."""

    def __init__(self, d):
        self.path, self.offset = os.path.join(d.dir, "daemon.log"), 0

    def find(self, text):
        """The time (seconds since the epoch) of the first line from here on that ends with
        `text`, by the UTC timestamp the daemon writes at the start of each line."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        whole = chunk.rfind(b"\n") + 1
        self.offset += whole
        for line in chunk[:whole].decode(errors="replace").splitlines():
            if line.endswith(text):
                stamp, ms = time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S"), int(line[20:23])
                return calendar.timegm(stamp) + ms / 1000
        raise RuntimeError(f"no {text!r} in the daemon's log")


@contextlib.contextmanager
def realtime():
    """This thread as SCHED_FIFO for the block, where the system allows it: a probe that only
    waits and reads a clock then wakes when its event comes, not when a CPU is free of the
    processes the scenario keeps busy."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except OSError:
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def last_fork(parent, comm, n, boot0, timeout=120):
    """Waits until `parent` has `n` children that have exec'd `comm`; seconds from `boot0`
    (CLOCK_BOOTTIME) to the start of the last of them, by their start times in /proc (10 ms
    ticks), so how often this looks does not count. It reads the parent's list of children,
    not all of /proc, so that looking costs the machine little while the start runs."""
    want, t0 = (comm + "\n").encode(), time.monotonic()
    while True:
        try:
            with open(f"/proc/{parent}/task/{parent}/children", "rb") as f:
                raw = f.read()  # to the end: the kernel gives it a page at a time
        except OSError:
            raw = b""
        kids = [int(p) for p in raw.split()]
        if len(kids) >= n:
            stats = [proc_stat(p) for p in kids if read_bytes(f"/proc/{p}/comm", 64) == want]
            starts = [st[3] for st in stats if st]
            if len(starts) >= n:
                return max(starts) / TICK - boot0
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{len(kids)} of {n} processes '{comm}' after {timeout} s")
        time.sleep(0.2)


def scale_vs_shell(out, opts):
    """A start of 10,000 programs against the floor: dash backgrounding the same 10,000
    `sleep`s in a loop. Each is timed to the start of its last child, from the kernel's start
    times; nothing asks Kahi anything meanwhile. Both are bound by the programs' own start-up
    on every CPU, and one pair varied from 0.98 to 1.12: the figure is the median ratio of
    opts.scale_pairs pairs, Kahi and the loop alternating."""
    ratios = []
    for _ in range(opts.scale_pairs):
        kahi, shell = scale_pair(opts)
        ratios.append((kahi / shell, kahi, shell))
    ratios.sort()
    ratio, kahi, shell = ratios[len(ratios) // 2]
    out.figure("scale_vs_shell", ratio, f"median of {len(ratios)}: " + ", ".join(
        f"{k:.2f} s / {s:.2f} s" for _, k, s in ratios))


def scale_pair(opts):
    """One start of opts.scale_n programs under Kahi, then under a dash loop: the seconds to
    the last child's start of each."""
    n = opts.scale_n

    def tables(d):
        return "".join(f'\n[programs.p{i}]\ncommand = "{d.exe} 100000{i}"\n'
                       'startsecs = 0\nredirect_stderr = true\n' for i in range(n))

    with Daemon(opts.kahi, opts.scratch, n, tables=tables) as d:
        wait_quiet(opts.quiesce)
        boot0 = time.clock_gettime(time.CLOCK_BOOTTIME)
        d.start()
        kahi = last_fork(d.pid, d.comm, n, boot0)
        d.check_alive()
    # The same programs, through a symlink of the same kind, started by dash.
    with Daemon(opts.kahi, opts.scratch, n) as ref:
        wait_quiet(opts.quiesce)
        loop = f"i=0; while [ $i -lt {n} ]; do {ref.exe} 100000$i & i=$((i+1)); done; wait"
        boot0 = time.clock_gettime(time.CLOCK_BOOTTIME)
        sh = subprocess.Popen(["/bin/sh", "-c", loop], start_new_session=True,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            shell = last_fork(sh.pid, ref.comm, n, boot0)
        finally:
            # The loop's session: the shell and every sleep it started.
            os.killpg(sh.pid, signal.SIGKILL)
            sh.wait()
            reap_all()
    note(f"  scale vs shell: last of {n} started at {kahi:.2f} s under Kahi, {shell:.2f} s "
         f"from a dash loop; load {loadavg()}")
    return kahi, shell


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
