#!/usr/bin/env bash
# bench/run.sh — Kahi's benchmark, run by `make bench` and `make bench-peers` (after `make build`).
#
# Measures the binary `make install` installs, the static one (target/kahi-static, `make
# static`; target/release/kahi where it has not been built; or $KAHI_BIN):
#   1. time from launch until 1000 sleep programs (startsecs = 0) are RUNNING per status
#      (median of 3);
#   2. daemon RSS (VmRSS, children excluded) with 100 and with 1000 programs, 3 s after start;
#   3. idle wakeups per second with 100 programs (context switches of every thread, 10 s);
#   4. restart latency after kill -9 of a RUNNING program (median and max of 20 kills, each
#      after the program has run 1.2 s); then the same with 10 webhooks on PROCESS_STATE
#      posting to a local receiver (30 POSTs a kill), and the ratio of the medians;
#   4a. the same with 20 dashboards following /api/v1/events/stream (bench/dashboard.py), and
#      the idle daemon with its HTTP listener after a visit of the dashboard: wakeups per second
#      (target 0), median of 3;
#   4b. crash loop: a program that exits 1 at once; starts per second and the daemon's CPU %
#      under the restart guard (median of 3 windows of 10 s);
#   5. `kahi ctl status` latency with 100 programs (median and p99, hyperfine -N if installed);
#      then the glibc build's (target/release/kahi, or $KAHI_OTHER_BIN) median;
#   6. log throughput: bench/writer.py writes 1 GiB of 100-byte numbered lines to its stdout,
#      Kahi copies it to stdout_logfile (no rotation); MB/s from the writer's first write
#      until the file holds every byte (checked exactly), against `writer | cat > file` on
#      the same disk (the scratch dir's); the figure is Kahi / cat (median of 5 each, alternating);
#   6b. events: a program's 100,000 lines as PROCESS_LOG_STDOUT events to one listener
#      (bench/ev_listener.py), MB/s and events/s until it holds every byte, Kahi against
#      supervisord on the same scenario (median of 3 each, alternating);
#   7. dependencies: 200 independent programs against 200 in a diamond (root, 198 branches,
#      a sink), time until all RUNNING (median of 3 each), the diamond's order checked from
#      the start times;
#   8. HTTP: GET /api/v1/processes with 100 programs under wrk (2 threads, 32 kept-alive
#      connections, median of 3 runs of 10 s): requests/s and p99; then supervisord's XML-RPC
#      getAllProcessInfo with 100 programs under the same load, and the ratio (needs wrk).
# Each figure is printed with its target and PASS/FAIL, then a summary table; the same lines
# go to target/bench/results.txt.
#
# When the shared harness exists ($BENCH_PEERS, default ../shared/bench beside the repository),
# the same scenarios also run through it for Kahi and every peer installed (supervisord, s6,
# runit, tini, dumb-init) and its references (ref: sh loop, writer | cat; ref-direct), and the
# summary shows them side by side; Kahi's log throughput must beat supervisord's there.
# Logs of those runs: target/bench/peers/.
#
# bench/run.sh --peers-only --markdown FILE (`make bench-peers`, writing docs/benchmarks.md)
# runs only that comparison, over more scenarios (start of 1/100/1000, memory and idle with 1
# and 100/1000, restart, log, ctl with 1 and 100, crash loop) with the harness's own numbers of
# runs, and writes the machine, the date, the figures, the ratios (more than 1: Kahi is better)
# and where Kahi is not ahead. About 30 minutes on 2 cores; result lines in
# target/bench/peers.txt.
#
# Environment:
#   BENCH_QUICK=1   one launch per figure, short windows, 256 MiB of log, no comparison
#                   (a smoke test, ~1 min)
#   BENCH_PEERS     the harness's directory, or 0 to skip the comparison
#   BENCH_RUNS      with --peers-only: launches per figure instead of the harness's defaults
#                   (restart keeps its 10 kills, ctl its 20 queries)
#   BENCH_STRICT=1  exit 1 when a figure misses its target
#   KAHI_BIN        another kahi binary
#   KAHI_OTHER_BIN  another binary for the second ctl figure (default target/release/kahi)
# Arguments are passed to bench/kahi_bench.py.
# Takes about 8-9 minutes with the comparison on 2 cores, under 2 without it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

glibc=$repo/target/release/kahi
kahi=${KAHI_BIN:-$repo/target/kahi-static}
[ -n "${KAHI_BIN:-}" ] || [ -x "$kahi" ] || kahi=$glibc
if [ ! -x "$kahi" ]; then
    echo "bench: $kahi not found; run 'make build static' first" >&2
    exit 1
fi

# 1000 programs hold 2000 pipe ends in the daemon.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

outdir=$repo/target/bench
mkdir -p "$outdir"
scratch=$(mktemp -d /tmp/kahi-bench.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

results=$outdir/results.txt
case " $* " in *" --peers-only "*) results=$outdir/peers.txt ;; esac
args=(--kahi "$kahi" --scratch "$scratch" --results "$results" --log-dir "$outdir")
[ "${BENCH_QUICK:-0}" = 1 ] && args+=(--quick)
# The glibc build's ctl figure too, beside the installed binary's.
other=${KAHI_OTHER_BIN:-$glibc}
[ -x "$other" ] && [ "$other" != "$kahi" ] && args+=(--other "$other")
[ "${BENCH_STRICT:-0}" = 1 ] && args+=(--strict)
harness=${BENCH_PEERS:-../shared/bench}
if [ "$harness" != 0 ] && [ -x "$harness/run.sh" ]; then
    args+=(--peers "$(cd "$harness" && pwd)")
fi

python3 "$repo/bench/kahi_bench.py" "${args[@]}" "$@"
