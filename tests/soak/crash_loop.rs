//! 100 programs crash-looping, three ways (exiting after a short run, failing at once, killed
//! by a signal), beside programs that must not notice: ten steady ones and the canary.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::util::*;

/// The daemon's RSS bound in this scenario. Measured: 5.2 MiB after 15 s and 5.9 MiB after
/// ten minutes and 79,000 restarts (release), 10.3 MiB after 15 s (debug); the bound leaves
/// room for the allocator's whims, not for growth with the restarts.
const RSS_BOUND_KIB: u64 = 24 * 1024;

const LATE: usize = 40;
const FAST: usize = 40;
const SIG: usize = 20;
const FATAL: usize = 5;
const STEADY: usize = 10;

#[test]
fn a_hundred_programs_crash_looping() {
    let _serial = serial();
    let mut body = String::from(CANARY);
    for i in 0..STEADY {
        body.push_str(&format!(
            "[programs.steady{i}]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n"
        ));
    }
    // Each says something before it goes, so its pipes carry data to the end.
    for i in 0..LATE {
        body.push_str(&format!(
            "[programs.late{i}]\ncommand = [\"/bin/sh\", \"-c\", \"echo late $$$$; sleep 0.2; exit 1\"]\n\
             startsecs = 0.1\nautostart = false\nautorestart = true\nbackoff_max = 1\n\
             stopasgroup = true\n\n"
        ));
    }
    for i in 0..FAST {
        body.push_str(&format!(
            "[programs.fast{i}]\ncommand = \"/bin/false\"\nstartsecs = 0\nautostart = false\n\
             autorestart = true\nrestart_min_interval = 0.5\nbackoff_max = 0.5\n\n"
        ));
    }
    for i in 0..SIG {
        body.push_str(&format!(
            "[programs.sig{i}]\ncommand = [\"/bin/sh\", \"-c\", \"echo sig $$$$ >&2; kill -USR1 $$$$\"]\n\
             startsecs = 0\nautostart = false\nbackoff_max = 1\n\n"
        ));
    }
    // Fail before startsecs every time: FATAL after their retries, and they stay so.
    for i in 0..FATAL {
        body.push_str(&format!(
            "[programs.fatal{i}]\ncommand = [\"/bin/sh\", \"-c\", \"exit 2\"]\nstartsecs = 1\n\
             autostart = false\nstartretries = 2\nbackoff_initial = 0.2\n\n"
        ));
    }
    let d = Daemon::start("soak-crash-loop", &body);
    let daemon = d.pid();
    wait_until("the canary and the steady ones RUNNING", DEADLINE, || {
        states(&d).values().filter(|s| *s == "RUNNING").count() == STEADY + 1
    });
    let steady: Vec<(String, i32)> = (0..STEADY)
        .map(|i| {
            let name = format!("steady{i}");
            let pid = pids(&d)[&name];
            (name, pid)
        })
        .collect();
    let baseline = fewest_fds(daemon);

    let crashers: Vec<String> = (0..LATE)
        .map(|i| format!("late{i}"))
        .chain((0..FAST).map(|i| format!("fast{i}")))
        .chain((0..SIG).map(|i| format!("sig{i}")))
        .collect();
    let fatal: Vec<String> = (0..FATAL).map(|i| format!("fatal{i}")).collect();
    command(&d, "start", &[crashers.clone(), fatal.clone()].concat(), false);
    let (cpu0, t0) = (cpu_time(daemon), Instant::now());

    let total = crash_loop_secs();
    let mut w = Watch::new(&d);
    let period = if long() { Duration::from_secs(2) } else { Duration::from_secs(1) };
    w.paced(total, period, |_| {});
    let took = t0.elapsed();
    let cpu = cpu_time(daemon).saturating_sub(cpu0);

    // Every crasher is still in its loop (none FATAL: it ran), and each went round it at
    // least once every few seconds; the steady ones never noticed.
    let all = processes(&d, &[]);
    let restarts: Vec<u64> = all
        .iter()
        .filter(|p| crashers.iter().any(|c| p["name"] == c.as_str()))
        .map(|p| p["restarts"].as_u64().unwrap_or(0))
        .collect();
    let (fewest, sum) = (restarts.iter().min().copied().unwrap_or(0), restarts.iter().sum::<u64>());
    let floor = took.as_secs() / 4;
    assert!(fewest >= floor, "a crasher restarted only {fewest} times in {took:?}");
    assert_states(&d, 1 + STEADY + LATE + FAST + SIG + FATAL, |name| match name {
        n if n == "canary" || n.starts_with("steady") => Some(&["RUNNING"]),
        n if n.starts_with("fatal") => Some(&["FATAL"]),
        _ => Some(&["STARTING", "RUNNING", "BACKOFF"]),
    });
    for (name, pid) in &steady {
        assert_eq!(pids(&d).get(name), Some(pid), "{name} was restarted");
    }
    // Each went the way it should: exit 1, or SIGUSR1 (128 + 10). A spawn clears the last
    // exit, so each is read between a crash and its next start.
    for (name, code) in [("late0", 1), ("fast0", 1), ("sig0", 138), ("fatal0", 2)] {
        let mut last = serde_json::Value::Null;
        wait_until(&format!("{name} between a crash and its restart"), DEADLINE, || {
            last = processes(&d, &[name]).swap_remove(0);
            !matches!(last["state"].as_str(), Some("STARTING" | "RUNNING"))
        });
        assert_eq!(last["exitstatus"], code, "{last}");
    }

    // Stopped, the crashers leave nothing behind: fds as before they started, no zombie.
    command(&d, "stop", &crashers, true);
    assert_states(&d, 1 + STEADY + LATE + FAST + SIG + FATAL, |name| match name {
        n if n == "canary" || n.starts_with("steady") => Some(&["RUNNING"]),
        n if n.starts_with("fatal") => Some(&["FATAL"]),
        _ => Some(&["STOPPED"]),
    });
    let fds = w.settle(baseline);
    w.look();
    let (rss, peak) = w.assert_rss(RSS_BOUND_KIB);
    report(&format!(
        "crash loop: {} programs for {took:.0?}, {sum} restarts ({:.0}/s, each at least {fewest}); \
         {}; daemon CPU {:.1} %; fds {baseline} -> {fds}; RSS {rss} KiB (peak {peak} KiB, \
         bound {RSS_BOUND_KIB}); {} transient zombies seen",
        crashers.len(),
        sum as f64 / took.as_secs_f64(),
        w.canary_figures(),
        cpu.as_secs_f64() / took.as_secs_f64() * 100.0,
        w.zombies_seen,
    ));
    w.assert_canary();
}
