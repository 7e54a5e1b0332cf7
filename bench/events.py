"""Events: how fast one event listener is fed, Kahi against supervisord on the same scenario.

A program (ev_writer.py) writes LINES lines of 100 bytes, one write each, with
`stdout_events_enabled`; one listener (ev_listener.py, written from supervisord's documented
protocol) takes PROCESS_LOG_STDOUT and answers OK to each. Timed from the writer's first write
until the listener holds every byte; figures: MB/s of log data delivered through events, and
events per second (each supervisor decides how much output one event carries: supervisord one
event per read of up to 128 KiB; Kahi one per read too, but the reads that wait for a busy
listener are merged into one event, up to 128 KiB, so the listener's round trip per event does
not set the figure). The same writer into a pipe read by this script, with no supervisor, is
the reference: a listener that keeps up cannot get the bytes faster than they are written."""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import Daemon, note, stop_session, wait_quiet

HERE = os.path.dirname(os.path.abspath(__file__))
WRITER = os.path.join(HERE, "ev_writer.py")
LISTENER = os.path.join(HERE, "ev_listener.py")
LINE = 100


def wait_done(d, startfile, donefile, alive, timeout=300):
    """(seconds from the first write to the last byte delivered, events) of one run."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(donefile):
        if not alive():
            raise RuntimeError(f"the daemon exited before the listener had every byte; see {d}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the listener did not get every byte within {timeout} s")
        time.sleep(0.005)
    with open(startfile) as f:
        start = float(f.read())
    with open(donefile) as f:
        done, events = f.read().split()
    return float(done) - start, int(events)


def kahi_run(opts, lines):
    def tables(d):
        py = sys.executable
        return (f'\n[programs.writer]\ncommand = ["{py}", "{WRITER}", "{lines}", "{d.dir}/start"]\n'
                'startsecs = 0\nautorestart = false\nstdout_events_enabled = true\n'
                'stdout_logfile = "NONE"\n'
                f'\n[eventlisteners.counter]\ncommand = ["{py}", "{LISTENER}", "{lines * LINE}", '
                f'"{d.dir}/done"]\nevents = ["PROCESS_LOG_STDOUT"]\nbuffer_size = {lines}\n')
    with Daemon(opts.kahi, opts.scratch, 2, exe=sys.executable, tables=tables) as d:
        wait_quiet(opts.quiesce)
        d.start()
        return wait_done(d.dir, f"{d.dir}/start", f"{d.dir}/done", lambda: d.proc.poll() is None)


def supervisord_run(opts, lines):
    d = tempfile.mkdtemp(prefix="supervisord-events-", dir=opts.scratch)
    py = sys.executable
    with open(os.path.join(d, "supervisord.conf"), "w") as f:
        f.write(f"[supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n"
                f"childlogdir={d}\nnodaemon=true\n\n"
                f"[program:writer]\ncommand={py} {WRITER} {lines} {d}/start\nstartsecs=0\n"
                "autorestart=false\nstdout_events_enabled=true\nstdout_logfile=NONE\n"
                "stderr_logfile=NONE\n\n"
                f"[eventlistener:counter]\ncommand={py} {LISTENER} {lines * LINE} {d}/done\n"
                f"events=PROCESS_LOG_STDOUT\nbuffer_size={lines}\nstderr_logfile=NONE\n")
    log = open(os.path.join(d, "out.log"), "wb")
    wait_quiet(opts.quiesce)
    proc = subprocess.Popen(["supervisord", "-c", "supervisord.conf"], cwd=d,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    log.close()
    try:
        return wait_done(d, f"{d}/start", f"{d}/done", lambda: proc.poll() is None)
    finally:
        stop_session(proc)
        shutil.rmtree(d, ignore_errors=True)


def writer_alone(opts, lines):
    """MB/s of the writer into a pipe read here, a MiB at a time, from its first write until
    every byte is read."""
    d = tempfile.mkdtemp(prefix="ev-writer-", dir=opts.scratch)
    startfile = os.path.join(d, "start")
    proc = subprocess.Popen([sys.executable, WRITER, str(lines), startfile],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            start_new_session=True)
    try:
        want, got = lines * LINE, 0
        while got < want:
            chunk = os.read(proc.stdout.fileno(), 1 << 20)
            if not chunk:
                raise RuntimeError("the writer exited before it wrote every line")
            got += len(chunk)
        end = time.time()
        with open(startfile) as f:
            return want / 1e6 / (end - float(f.read()))
    finally:
        proc.kill()  # it sleeps once it has written, as under a supervisor
        proc.wait()
        proc.stdout.close()
        shutil.rmtree(d, ignore_errors=True)


def listener_throughput(out, opts):
    lines = opts.event_lines
    has_supervisord = shutil.which("supervisord") is not None
    kahi, sup, alone = [], [], []
    for i in range(opts.event_runs):  # alternating, so all see the same machine
        kahi.append(kahi_run(opts, lines))
        if has_supervisord:
            sup.append(supervisord_run(opts, lines))
        alone.append(writer_alone(opts, lines))
        note(f"  events run {i + 1}: Kahi {kahi[-1][0]:.3f} s, {kahi[-1][1]} events"
             + (f"; supervisord {sup[-1][0]:.3f} s, {sup[-1][1]} events" if sup else "")
             + f"; the writer alone {alone[-1]:.1f} MB/s")
    mb = lines * LINE / 1e6

    def figures(label, runs):
        secs = statistics.median(r[0] for r in runs)
        events = statistics.median(r[1] for r in runs)
        out.measure(f"events to a listener, {label}", mb / secs, "MB/s",
                    f"{lines} lines of {LINE} B in {secs:.3f} s, {events:.0f} events of "
                    f"{lines * LINE / events / 1e3:.1f} KB, {events / secs:.0f} events/s; "
                    f"median of {len(runs)}")
        return mb / secs

    k = figures("Kahi", kahi)
    w = statistics.median(alone)
    out.measure("events: the writer alone to a pipe", w, "MB/s",
                f"Kahi's figure is {k / w:.2f} of it; median of {len(alone)}")
    if sup:
        s = figures("supervisord", sup)
        out.figure("events_vs_supervisord", k / s, f"{k:.1f} / {s:.1f} MB/s")
