//! Ten thousand programs (KAHI_SOAK_PROGRAMS; 2,000 in the short version) started and shut
//! down: the canary is replaced at once while they start, every one of them gets to RUNNING,
//! each holds one pipe in the daemon and no more, and a SIGTERM ends them all and Kahi within
//! 10 s.
//!
//! While they start, the canary is held to the bound the reliability issue sets for a start of
//! 10,000 ([`START_BOUND`]), and to the soak's own 10 ms once they run. A start of 10,000 keeps
//! both CPUs of a 2-core machine busy with the programs' own start-up (each `sleep` spends most
//! of a millisecond in its loader and locale set-up), and a process killed then waits for a CPU
//! to end on: traced, the loop turned every 6 to 8 ms with no exit to see for up to 20 ms after
//! the kill, then replaced the canary within 2 ms of the exit. Once they run, the canary is
//! sampled again with 10,000 programs in the daemon.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::util::*;

/// The short version's count.
const SHORT: usize = 2000;

/// The canary's bound while the programs start (a release build; a debug build's own bound,
/// 250 ms, is the larger).
const START_BOUND: Duration = Duration::from_millis(50);

/// Canary samples once every program runs.
const SETTLED_SAMPLES: usize = 10;

/// The daemon's RSS bound, in KiB, for `n` programs. Measured: about 6 KiB a program over some
/// 5 MiB (release: 16.5 MiB at 2,000, 61 MiB at 10,000, peak 65 MiB; debug: 22 MiB at 2,000);
/// the bound allows 8 KiB a program over 16 MiB: 32 MiB at 2,000, 94 MiB at 10,000.
fn rss_bound_kib(n: usize) -> u64 {
    16 * 1024 + 8 * n as u64
}

fn programs() -> usize {
    std::env::var("KAHI_SOAK_PROGRAMS").ok().and_then(|s| s.parse().ok()).unwrap_or(SHORT)
}

/// The hard limit of open files of this process (the daemon inherits it, and raises its
/// soft limit to it).
fn hard_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or("");
    line.split_whitespace().nth(4).and_then(|n| n.parse().ok()).unwrap_or(u64::MAX)
}

#[test]
fn ten_thousand_programs_started_and_shut_down() {
    let _serial = serial();
    let n = programs();
    // One pipe each (stderr goes with stdout), and the daemon's own few.
    if hard_nofile() < n as u64 + 256 {
        return skip(&format!(
            "{n} programs need {} fds; the hard limit is {}",
            n + 256,
            hard_nofile()
        ));
    }
    let pid_max: usize = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(usize::MAX);
    if pid_max < 2 * n + 1000 {
        return skip(&format!("{n} programs need more pids than pid_max = {pid_max} allows"));
    }
    let mut body = String::from(CANARY);
    for i in 0..n {
        body.push_str(&format!(
            "[programs.p{i}]\ncommand = \"sleep 1000\"\nstartsecs = 0.5\nredirect_stderr = true\n\n"
        ));
    }
    let t0 = Instant::now();
    let mut d = Daemon::start("soak-many", &body);
    let daemon = d.pid();

    // While they start: the canary, over and over, until all are RUNNING.
    let mut w = Watch::new(&d);
    let running = |d: &Daemon| processes(d, &[]).iter().filter(|p| p["state"] == "RUNNING").count();
    // The status of them all, which is the start's competition for the loop, once a second.
    let mut during = 0;
    let mut polled = Duration::ZERO;
    for i in 0.. {
        w.sample();
        if i % 4 == 3 {
            let t = Instant::now();
            let up = running(&d);
            polled = polled.max(t.elapsed());
            if up == n + 1 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "{up} of {} RUNNING after 5 min",
                n + 1
            );
        }
        during += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let started = t0.elapsed();
    assert!(during > 0, "the start was over before the canary could be sampled during it");
    // Settled: one pipe a program, besides the daemon's own (the canary's two included).
    let fds = fewest_fds(daemon);
    assert!(fds <= n + 64, "{fds} fds for {n} programs");
    w.look();
    let (rss, peak) = w.assert_rss(rss_bound_kib(n));
    let cpu = cpu_time(daemon);
    // Settled: the canary with every program running, at the soak's own bound.
    let first_settled = w.canary_samples();
    for _ in 0..SETTLED_SAMPLES {
        std::thread::sleep(Duration::from_millis(100));
        w.sample();
    }
    let samples = w.canary_figures();
    let canary = w.canary_result_with(|i| {
        if i < first_settled { START_BOUND.max(canary_bound()) } else { canary_bound() }
    });

    // SIGTERM: everything stops, and Kahi exits, within 10 s.
    let t = Instant::now();
    d.signal(15);
    let code = d.wait_exit(Duration::from_secs(60));
    let shutdown = t.elapsed();
    report(&format!(
        "{n} programs: all RUNNING {started:.1?} after the daemon started ({during} canary samples \
         during the start, {SETTLED_SAMPLES} after); {samples}; status of all took up to {polled:.0?}; fds {fds}; RSS \
         {rss} KiB (peak {peak} KiB, bound {}); daemon CPU {:.1?} to here; shutdown {shutdown:.1?}",
        rss_bound_kib(n),
        cpu,
    ));
    assert_eq!(code, 0, "exit status");
    assert!(shutdown < Duration::from_secs(10), "shutdown of {n} took {shutdown:?}");
    canary.unwrap_or_else(|e| panic!("{e}"));
    // The harness checks, as the directory goes, that no program outlived the daemon.
}
