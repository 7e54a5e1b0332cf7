//! The configuration reloaded every second (SIGHUP and `kahi ctl update` in turn) while
//! processes churn: each reload adds a program and removes one, changes the command of some,
//! grows or shrinks a numprocs pool, and one in seven is a broken file that must change
//! nothing. Programs the reloads do not touch keep their pids throughout.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::common::*;
use crate::util::*;

/// The daemon's RSS bound: measured 5.0 MiB (release, after 15 reloads and after 100) and
/// 9.8 MiB (debug); each reload parses and diffs the whole file, so a leak would show.
const RSS_BOUND_KIB: u64 = 24 * 1024;

const STABLE: usize = 10;
const CHANGING: usize = 5;
const WINDOW: u64 = 6;
const CRASH: usize = 10;

/// The configuration of reload `g`: `stable*` the same every time, `changing*` with a new
/// command, the window `w{g}..w{g+5}` moved on by one, the pool's size cycling 2, 3, 4.
fn generation(g: u64) -> String {
    let mut body = String::from(CANARY);
    for i in 0..STABLE {
        body.push_str(&format!(
            "[programs.stable{i}]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n"
        ));
    }
    for i in 0..CHANGING {
        body.push_str(&format!(
            "[programs.changing{i}]\ncommand = \"sleep {}\"\nstartsecs = 0\n\n",
            100_000 + g
        ));
    }
    for k in g..g + WINDOW {
        body.push_str(&format!("[programs.w{k}]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n"));
    }
    body.push_str(&format!(
        "[programs.pool]\ncommand = \"sleep 1000\"\nstartsecs = 0\nnumprocs = {}\n\
         process_name = \"pool_%(process_num)d\"\n\n",
        2 + g % 3
    ));
    // The churn: crash loops, untouched by the reloads.
    for i in 0..CRASH {
        body.push_str(&format!(
            "[programs.crash{i}]\ncommand = [\"/bin/sh\", \"-c\", \"echo crash; sleep 0.3; exit 1\"]\n\
             startsecs = 0\nautorestart = true\nrestart_min_interval = 0.5\nbackoff_max = 0.5\n\
             stopasgroup = true\n\n"
        ));
    }
    body
}

/// The names generation `g` has.
fn names(g: u64) -> HashSet<String> {
    let mut n: HashSet<String> = ["canary".to_string()].into();
    n.extend((0..STABLE).map(|i| format!("stable{i}")));
    n.extend((0..CHANGING).map(|i| format!("changing{i}")));
    n.extend((g..g + WINDOW).map(|k| format!("w{k}")));
    n.extend((0..2 + g % 3).map(|i| format!("pool:pool_{i}")));
    n.extend((0..CRASH).map(|i| format!("crash{i}")));
    n
}

/// The command line of `pid`, its words joined by spaces.
fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw).replace('\0', " ").trim_end().to_string()
}

/// Writes generation `g` to `d`'s config file.
fn write(d: &Daemon, g: u64, broken: bool) {
    let mut text = format!("[server]\nsocket = \"{}\"\n\n{}", d.socket.display(), generation(g));
    if broken {
        text.push_str("[programs.broken]\ncommand = \"sleep 1\"\nstartsecs = \"soon\"\n");
    }
    let tmp = d.config.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &d.config).unwrap();
}

#[test]
fn reload_every_second_while_processes_churn() {
    let _serial = serial();
    let d = Daemon::start("soak-reload", &generation(0));
    let daemon = d.pid();
    let settled = |g: u64| {
        let all = states(&d);
        let want = names(g);
        all.len() == want.len()
            && all.iter().all(|(name, state)| {
                want.contains(name) && (name.starts_with("crash") || state == "RUNNING")
            })
    };
    wait_until("generation 0 RUNNING", DEADLINE, || settled(0));
    let stable: HashMap<String, i32> =
        pids(&d).into_iter().filter(|(n, _)| n.starts_with("stable")).collect();
    // Baseline: each running process holds two pipes in the daemon; the rest is its own.
    let own = |d: &Daemon| fewest_fds(daemon) - 2 * pids(d).len();
    let crashes: Vec<String> = (0..CRASH).map(|i| format!("crash{i}")).collect();
    command(&d, "stop", &crashes, true);
    let own_before = own(&d);
    command(&d, "start", &crashes, false);

    let mut w = Watch::new(&d);
    let (mut g, mut reloads, mut broken_ones, mut broken_hups) = (0u64, 0u64, 0u64, 0usize);
    let mut seen_w: HashMap<String, i32> = HashMap::new();
    w.paced(scenario_secs(), Duration::from_secs(1), |i| {
        for (name, pid) in pids(&d) {
            if name.starts_with('w') {
                seen_w.insert(name, pid);
            }
        }
        let broken = i % 7 == 6;
        if broken {
            broken_ones += 1;
        } else {
            g += 1;
        }
        write(&d, g, broken);
        if i % 2 == 0 {
            broken_hups += usize::from(broken);
            d.signal(1);
        } else {
            let r = d.request(r#"{"cmd":"update"}"#);
            assert_eq!(r.get("error").is_some(), broken, "update of generation {g}: {r}");
        }
        reloads += 1;
    });
    let last = g;
    // The last reload was SIGHUP or update: wait for what it asked to be done.
    wait_until(&format!("generation {last} in place"), DEADLINE, || settled(last));
    // A broken file sent by SIGHUP is refused in the log (by update, in its answer, above).
    let refused = d.log().matches("configuration not reloaded, nothing changed").count();
    assert_eq!(refused, broken_hups, "broken files refused on SIGHUP");

    // Exactly the last generation's programs, the untouched ones with their first pids, the
    // changed ones running the last command, the removed ones gone.
    assert_states(&d, names(last).len(), |name| {
        if !names(last).contains(name) {
            None
        } else if name.starts_with("crash") {
            Some(&["STARTING", "RUNNING", "BACKOFF"])
        } else {
            Some(&["RUNNING"])
        }
    });
    let now = pids(&d);
    for (name, pid) in &stable {
        assert_eq!(now.get(name), Some(pid), "{name} was restarted by a reload that left it alone");
    }
    for i in 0..CHANGING {
        let pid = now[&format!("changing{i}")];
        assert_eq!(cmdline(pid), format!("sleep {}", 100_000 + last), "changing{i}");
    }
    // Every live process of the test is one the daemon shows: the removed ones are gone.
    command(&d, "stop", &crashes, true);
    let canary = processes(&d, &["canary"])[0]["pid"].as_i64().unwrap_or(0) as i32;
    let shown: HashSet<i32> = pids(&d).values().copied().chain([daemon, canary]).collect();
    for (name, pid) in &seen_w {
        if !names(last).contains(name) {
            assert!(!alive(*pid) || shown.contains(pid), "{name} ({pid}) was removed but runs");
        }
    }
    let strays: Vec<String> = d
        .dir
        .processes()
        .into_iter()
        .filter(|p| !shown.contains(&p.pid))
        .map(|p| format!("{} {}", p.pid, p.cmdline))
        .collect();
    assert!(strays.is_empty(), "processes the daemon does not show: {strays:?}");

    let own_after = own(&d);
    assert!(own_after.abs_diff(own_before) <= FD_SLACK, "own fds {own_before} -> {own_after}");
    wait_until("no zombie of the daemon", DEADLINE, || zombies(daemon).is_empty());
    w.look();
    let (rss, peak) = w.assert_rss(RSS_BOUND_KIB);
    report(&format!(
        "reload: {reloads} reloads ({broken_ones} broken, refused) to generation {last}, {} \
         programs; {}; daemon's own fds {own_before} -> {own_after} (besides 2 a process); RSS \
         {rss} KiB (peak {peak} KiB, bound {RSS_BOUND_KIB})",
        names(last).len(),
        w.canary_figures(),
    ));
    w.assert_canary();
}
