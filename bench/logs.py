"""Log throughput: bench/writer.py's lines through Kahi to a file, against `writer | cat > file`."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import writer  # bench/writer.py, beside this file

from common import Daemon, loadavg, note, wait_quiet


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


# What the console adds to each line, text and JSON (the timestamp's width is fixed).
CONSOLE_TEXT = ("writer | ", "")
CONSOLE_JSON = ('{"ts":"2026-01-01T00:00:00.000Z","program":"writer","process":"writer",'
                '"stream":"stdout","line":"', '"}')


def kahi_log_run(opts, total, console=None):
    """One launch of Kahi whose only program is the writer; seconds from its first write
    until stdout_logfile holds every byte. With `console` ("text" or "json"), the lines go to
    Kahi's stdout (a file) in that format instead, and the time is until it holds them all."""
    def tables(d):
        out = "" if console else f'stdout_logfile = "{d.dir}/out.log"\n'
        return (f'\n[programs.writer]\ncommand = "{d.exe} {WRITER} {total} {d.dir}/writer.start"\n'
                f'startsecs = 0\nautorestart = false\n{out}stdout_logfile_maxbytes = 0\n')
    logging = f'console = true\nformat = "{console}"\n' if console else "console = false\n"
    with Daemon(opts.kahi, opts.scratch, 1, exe=sys.executable, tables=tables,
                logging=logging) as d:
        settle(opts)
        log = os.path.join(d.dir, "out.log")
        d.start(stdout=log if console else None)
        expect = total
        if console:
            head, tail = CONSOLE_TEXT if console == "text" else CONSOLE_JSON
            expect = total // writer.LINE * (len(head) + writer.LINE + len(tail))
        secs = wait_log(log, os.path.join(d.dir, "writer.start"), expect,
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
        if console:
            check_console(log, expect, total // writer.LINE, console)
        else:
            check_log(log, total)
        return secs


def check_console(path, size, lines, fmt):
    """The console file holds `size` bytes, and its first and last lines carry the writer's."""
    if os.stat(path).st_size != size:
        raise RuntimeError(f"{path}: {os.stat(path).st_size} bytes, expected {size}")
    with open(path, "rb") as f:
        first = f.readline()
        f.seek(size - size // lines)
        last = f.readline()
    for got, i in ((first, 0), (last, lines - 1)):
        want = writer.line(i).rstrip(b"\n")
        if want not in got or (fmt == "json" and json.loads(got)["line"] != want.decode()):
            raise RuntimeError(f"{path}: line {i} is {got[:60]!r}...")


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
    # The console path: each line prefixed (text) or wrapped in an object (JSON) on Kahi's
    # stdout, a file here as under a container runtime's log driver. MB/s of the program's bytes.
    for fmt in ("text", "json"):
        runs = [total / 1e6 / kahi_log_run(opts, total, console=fmt) for _ in range(opts.log_runs)]
        out.measure(f"console throughput, {fmt}", statistics.median(runs), "MB/s",
                    many + " ".join(f"{r:.1f}" for r in runs))
