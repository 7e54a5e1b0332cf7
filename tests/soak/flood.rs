//! `yes` on ten programs with Kahi's console (its stdout, in container mode) blocked: nobody
//! reads it. Kahi stops reading the floods instead of buffering them, keeps restarting a crash
//! loop beside them, and once the console is read again every line on it is whole.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::util::*;

/// The daemon's RSS bound: measured 6.6 MiB (release; 7.1 MiB after 100 s) and 11.8 MiB
/// (debug) with the console blocked; buffering the floods would pass it within a second.
const RSS_BOUND_KIB: u64 = 24 * 1024;

const YES: usize = 10;
const CRASH: usize = 5;

/// Bytes of `name`'s stdout read so far (its ring buffer's end).
fn read_so_far(d: &Daemon, name: &str) -> u64 {
    let r = d.request(&format!(r#"{{"cmd":"tail","name":"{name}","bytes":1}}"#));
    r["offset"].as_u64().unwrap_or(0) + r["data"].as_str().map_or(0, |s| s.len() as u64)
}

#[test]
fn yes_floods_on_ten_programs_with_a_blocked_console() {
    let _serial = serial();
    let mut body = String::from("[logging]\nconsole = true\n\n");
    body.push_str(CANARY);
    for i in 0..YES {
        body.push_str(&format!(
            "[programs.yes{i}]\ncommand = \"yes soak-flood-{i}\"\nstartsecs = 0\nautostart = false\n\n"
        ));
    }
    for i in 0..CRASH {
        body.push_str(&format!(
            "[programs.crash{i}]\ncommand = [\"/bin/sh\", \"-c\", \"echo crash-says-goodbye; exit 1\"]\n\
             startsecs = 0\nautostart = false\nautorestart = true\nrestart_min_interval = 0.2\n\
             backoff_max = 0.2\n\n"
        ));
    }
    let dir = Dir::new("soak-flood");
    let socket = dir.join("kahi.sock");
    let config =
        dir.write("kahi.toml", &format!("[server]\nsocket = \"{}\"\n\n{body}", socket.display()));
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let mut cmd = dir.command(KAHI);
    cmd.args(["daemon", "-v", "-c"]).arg(&config);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
    let mut d = Daemon::spawn(dir, config, socket, cmd);
    // Held, not read, until the end: the console is blocked once its pipe is full.
    let console = d.child.as_mut().unwrap().stdout.take().unwrap();
    let d = d;
    let daemon = d.pid();
    wait_until("the canary RUNNING", DEADLINE, || states(&d)["canary"] == "RUNNING");
    let baseline = fewest_fds(daemon);

    let yes: Vec<String> = (0..YES).map(|i| format!("yes{i}")).collect();
    let crash: Vec<String> = (0..CRASH).map(|i| format!("crash{i}")).collect();
    command(&d, "start", &[yes.clone(), crash.clone()].concat(), false);
    let flooded = |d: &Daemon| yes.iter().map(|n| read_so_far(d, n)).sum::<u64>();
    let restarts = |d: &Daemon| -> u64 {
        processes(d, &[]).iter().filter_map(|p| p["restarts"].as_u64()).sum()
    };

    let mut w = Watch::new(&d);
    let total = scenario_secs();
    let mut at_half = None;
    let t0 = Instant::now();
    w.paced(total, Duration::from_secs(1), |_| {
        if at_half.is_none() && t0.elapsed() >= total / 2 {
            at_half = Some((flooded(&d), restarts(&d)));
        }
    });
    let (flood_half, restarts_half) = at_half.unwrap_or_default();
    let (flood_end, restarts_end) = (flooded(&d), restarts(&d));
    // Back-pressure, not buffering: in the second half Kahi read (almost) nothing more of the
    // floods, yet the crash loop went on, its output read as ever.
    assert!(flood_end > 0, "the floods never reached Kahi");
    assert!(
        flood_end - flood_half < 1 << 20,
        "Kahi read {} bytes of floods while its console was blocked",
        flood_end - flood_half
    );
    assert!(restarts_end > restarts_half + CRASH as u64, "the crash loop stalled");
    let tail = d.ctl(&["tail", "crash0"]);
    assert!(tail.stdout.contains("crash-says-goodbye"), "{tail:?}");
    assert_states(&d, 1 + YES + CRASH, |name| match name {
        n if n == "canary" || n.starts_with("yes") => Some(&["RUNNING"]),
        _ => Some(&["STARTING", "RUNNING", "BACKOFF"]),
    });
    let (rss, peak) = w.assert_rss(RSS_BOUND_KIB);

    // The console is read again: every line on it is whole, one program's, as written.
    let reader = std::thread::spawn(move || {
        let (mut lines, mut bad) = (0u64, Vec::new());
        for line in BufReader::new(console).lines() {
            let Ok(line) = line else { break };
            let whole = match line.split_once(" | ") {
                Some((p, text)) if p.starts_with("yes") => {
                    text.strip_prefix("soak-flood-") == p.strip_prefix("yes")
                }
                Some((p, text)) if p.starts_with("crash") => text == "crash-says-goodbye",
                _ => false,
            };
            lines += 1;
            if !whole && bad.len() < 10 {
                bad.push(line);
            }
        }
        (lines, bad)
    });
    wait_until("the floods flow again", DEADLINE, || flooded(&d) > flood_end + (4 << 20));
    command(&d, "stop", &[yes.clone(), crash.clone()].concat(), true);
    assert_states(&d, 1 + YES + CRASH, |name| match name {
        "canary" => Some(&["RUNNING"]),
        _ => Some(&["STOPPED"]),
    });
    let fds = w.settle(baseline);
    let flowed = flooded(&d) - flood_end;

    // The reader has all of it once the daemon is gone.
    d.signal(15);
    wait_until("the daemon exits", DEADLINE, || !alive(daemon));
    let (lines, bad) = reader.join().unwrap();
    report(&format!(
        "yes flood: {YES} floods, console blocked for {total:.0?}: Kahi read {} KiB of them \
         ({} KiB in the second half), {} crash-loop restarts meanwhile; {}; fds {baseline} -> \
         {fds}; RSS {rss} KiB (peak {peak} KiB, bound {RSS_BOUND_KIB}); unblocked: {} MiB, \
         {lines} lines, {} torn",
        flood_end / 1024,
        (flood_end - flood_half) / 1024,
        restarts_end,
        w.canary_figures(),
        flowed >> 20,
        bad.len(),
    ));
    assert!(bad.is_empty(), "torn or mixed lines on the console: {bad:?}");
    assert!(lines > 100_000, "only {lines} lines came once the console was read");
    w.assert_canary();
}
