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
     it go at once); then the same with 10 webhooks on PROCESS_STATE posting to a receiver
     in this script (each kill: 3 events, 30 POSTs), to show what webhooks cost a restart;
     Then with 20 dashboards (bench/dashboard.py: 20 clients following
     /api/v1/events/stream, as the dashboard's page does), and the idle daemon with its
     HTTP listener after a visit of the dashboard (its page, assets and data): context
     switches over the idle window, target 0;
  5. ctl: `kahi ctl -s SOCKET status` with 100 programs, end to end (hyperfine -N,
     3 warm-ups); median and p99;
  6. log: one program (bench/writer.py, startsecs = 0, autorestart = false) writes 1 GiB
     (rounded down to whole lines) of 100-byte numbered lines to its stdout, which Kahi
     copies to stdout_logfile (no rotation); MB/s from the writer's first write until the
     file holds every byte (size polled every 2 ms), checked exactly, first and last line
     compared. The same writer piped through `cat > FILE` is the physical reference; the
     figure is Kahi / cat; median of 3 launches of each, alternating. The writer alone to
     /dev/null is timed too, to show it is not the bottleneck. Files in --scratch.

Events: one program writes 100,000 lines of 100 bytes (one write each) with
stdout_events_enabled, and one event listener (bench/ev_listener.py, written from supervisord's
documented protocol) takes PROCESS_LOG_STDOUT; MB/s and events/s from the first write until the
listener holds every byte, for Kahi and for supervisord (when installed), alternating, median
of 3 each; the figure is Kahi / supervisord.

Crash loop: one program that exits 1 at once (`/bin/sh -c 'echo >> FILE; exit 1'`,
startsecs = 0, autorestart = true, the restart guard's defaults); after a 3 s warm-up, starts
per second (lines in FILE) and the daemon's CPU % (utime + stime from /proc) over 10 s;
median of 3.

Scale: 10,000 `sleep` programs (redirect_stderr = true: one pipe each) and a canary started
first. During the start the canary is killed again and again, and each restart is timed from
the killed process's end (a pidfd of it turns readable) to the daemon's log line that says its
replacement was spawned, as the soak times it; the kill to that end (the kernel's part) and
the kill until `status` names the replacement RUNNING are printed beside. The start is timed
until every program is RUNNING. Then SIGTERM: the shutdown is timed until the daemon exits,
while `status` of the canary is asked every 10 ms and each answer timed. The probes that only
wait and read a clock run SCHED_FIFO, so their figures are the daemon's and not their own wait
for a CPU. Figures: the start, the canary's worst restart, the shutdown, the worst status
answer.

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

The scenarios live beside this file, one module per kind: common.py (result lines, /proc, one
daemon), scenarios.py, logs.py, events.py, http_load.py, peers.py (the comparison and its report).

Result lines go to stdout; samples and notes to stderr. Every daemon runs in its own
directory under --scratch and its own session; at the end it is stopped with SIGTERM (it
stops its programs), and only then is anything left that this script started killed,
by pid.
"""

import argparse
import os
import resource
import signal
import subprocess
import sys
import time

from common import (
    BUSY_LAUNCHES,
    MIB,
    Output,
    TARGETS,
    cpu_busy,
    fmt,
    loadavg,
    passes,
    set_subreaper,
)
from scenarios import (
    crash_loop,
    dependencies,
    hundred,
    restart,
    scale,
    scale_vs_shell,
    startup_and_rss1000,
)
from logs import log_throughput
from events import listener_throughput
from peers import kahi_commit, machine, markdown, run_peers, versus_supervisord
from http_load import http_load
from dashboard import dashboard_idle


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
        sign = "=" if key in ("idle_100", "dashboard_idle") else op
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
    ap.add_argument("--other", help="another build (the glibc one): `kahi ctl status` is timed with it too")
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
        opts.scale_n, opts.scale_pairs = 2000, 1
        opts.event_lines, opts.event_runs = 20000, 1
        opts.peers = None
    else:
        opts.startup_runs, opts.hundred_runs, opts.idle_settle, opts.idle_secs = 3, 3, 5, 10
        opts.kills, opts.kill_gap, opts.ctl_runs, opts.quiesce = 20, 1.2, 200, 5
        opts.crash_runs, opts.crash_warmup, opts.crash_secs = 3, 3, 10
        opts.log_bytes, opts.log_runs = 1024 * MIB, 5
        opts.http_runs, opts.http_secs = 3, 10
        opts.deps_runs = 3
        opts.scale_n, opts.scale_pairs = 10000, 3
        opts.event_lines, opts.event_runs = 100000, 3

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
    restart(out, opts, webhooks=10)
    restart(out, opts, dashboards=20)
    dashboard_idle(out, opts)
    if "restart_median" in out.values:
        ratio = out.values["restart_webhooks_median"] / out.values["restart_median"]
        out.measure("restart, 10 webhooks / none, median", ratio, "x")
    crash_loop(out, opts)
    out.figure("ctl_median", ctl[0], f"{ctl[2]} runs")
    out.figure("ctl_p99", ctl[1], f"{ctl[2]} runs")
    log_throughput(out, opts)
    listener_throughput(out, opts)
    dependencies(out, opts)
    http_load(out, opts)
    scale(out, opts)
    scale_vs_shell(out, opts)
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
