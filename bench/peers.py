"""The comparison through the shared harness (Kahi and every peer installed, scenario by
scenario), and its Markdown report."""

import os
import re
import shutil
import subprocess
import time

from common import loadavg, note


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
        "With 100 programs s6 has no such query, and Kahi answers before runit's sv, which reads 100 status files."),
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
