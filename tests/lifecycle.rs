//! Lifecycle: the states a process goes through, shown with the real `kahi daemon` and real
//! child processes: failed starts and back-off, startsecs, exit codes and autorestart, start
//! delays, and the replies of `kahi ctl start|stop|restart|status`. Stopping is in
//! `lifecycle_stop`, what a program starts with in `lifecycle_spawn`; the helpers they share
//! are here.

use crate::util::*;

// ---- helpers ----

/// `s` as a TOML basic string.
pub(crate) fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `command` running `script` with /bin/sh. Kahi expands `%(...)` and `${...}` in it; a lone
/// `$` is kept for the shell.
pub(crate) fn sh(script: &str) -> String {
    format!("[\"/bin/sh\", \"-c\", {}]", toml_str(script))
}

/// A path in the test directory, single-quoted for the shell.
pub(crate) fn shq(dir: &Dir, name: &str) -> String {
    format!("'{}'", dir.join(name).display())
}

/// The pid `status` shows for `name` (0 when none).
pub(crate) fn pid_of(d: &Daemon, name: &str) -> i32 {
    d.process(name)["pid"].as_i64().unwrap_or(0) as i32
}

/// Lines in a file of the test directory (0 while it does not exist).
fn count_lines(d: &Daemon, name: &str) -> usize {
    d.dir.read(name).lines().count()
}

/// Waits until a program has written a complete (newline-terminated) file in the test
/// directory, and returns its text.
pub(crate) fn wait_file(d: &Daemon, name: &str) -> String {
    let mut text = String::new();
    wait_until(&format!("a program wrote {name}"), DEADLINE, || {
        text = d.dir.read(name);
        text.ends_with('\n')
    });
    text
}

/// The daemon's log lines that contain `text`.
pub(crate) fn log_lines(d: &Daemon, text: &str) -> Vec<String> {
    d.log().lines().filter(|l| l.contains(text)).map(str::to_string).collect()
}

/// The time of a daemon log line (`2026-01-02T03:04:05.678Z LEVEL ...`), in ms since the epoch.
fn log_time_ms(line: &str) -> i64 {
    let parse = || -> Option<i64> {
        let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
        let (date, time) = stamp.split_once('T')?;
        let (hms, ms) = time.split_once('.')?;
        let d: Vec<i64> = date.split('-').map(|x| x.parse().ok()).collect::<Option<_>>()?;
        let t: Vec<i64> = hms.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
        let ms: i64 = ms.parse().ok()?;
        // Days since 1970-01-01 of a Gregorian date (H. Hinnant's days_from_civil).
        let (y, m, day) = (d[0] - i64::from(d[1] <= 2), d[1], d[2]);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + ms)
    };
    parse().unwrap_or_else(|| panic!("log line without a timestamp: {line:?}"))
}

/// The lines of `text`, sorted.
fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

// ---- failed starts and startsecs ----

#[test]
fn exiting_at_once_backs_off_then_goes_fatal_after_startretries_plus_one_attempts() {
    let dir = Dir::new("fatal");
    let body = format!(
        "[programs.quick]\ncommand = {}\nstartsecs = 1\nstartretries = 2\n",
        sh(&format!("echo attempt >> {}; exit 1", shq(&dir, "attempts")))
    );
    let d = Daemon::start_in(dir, &body);

    d.wait_state("quick", "BACKOFF");
    d.wait_state("quick", "FATAL");
    assert_eq!(count_lines(&d, "attempts"), 3, "startretries = 2 means 3 attempts");
    assert!(
        d.log().contains("gave up: quick entered FATAL state, too many start retries too quickly"),
        "{}",
        d.log()
    );
    let p = d.process("quick");
    assert_eq!(p["description"], "Exited too quickly (process log may have details)");
    assert_eq!(p["spawnerr"], "Exited too quickly (process log may have details)");
    assert_eq!(p["pid"], serde_json::Value::Null);

    // supervisord's back-off: the second try 1 s after the first failure, the third 2 s after
    // the second.
    let spawned: Vec<i64> =
        log_lines(&d, "spawned: 'quick'").iter().map(|l| log_time_ms(l)).collect();
    assert_eq!(spawned.len(), 3, "{}", d.log());
    assert!(spawned[1] - spawned[0] >= 950, "first back-off too short: {spawned:?}");
    assert!(spawned[2] - spawned[1] >= 1950, "second back-off too short: {spawned:?}");
}

#[test]
fn a_program_is_starting_until_it_has_stayed_up_startsecs() {
    let body = format!(
        "[programs.steady]\ncommand = \"sleep 1000\"\nstartsecs = 1\n\n\
         [programs.brief]\ncommand = {}\nstartsecs = 1\nstartretries = 0\n",
        sh("sleep 0.2")
    );
    let d = Daemon::start("startsecs", &body);

    d.wait_log("spawned: 'steady'");
    assert_eq!(d.state("steady"), "STARTING", "RUNNING before startsecs passed");
    d.wait_state("steady", "RUNNING");
    let spawned = log_time_ms(&log_lines(&d, "spawned: 'steady'")[0]);
    let success = log_lines(
        &d,
        "success: steady entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)",
    );
    assert_eq!(success.len(), 1, "{}", d.log());
    let waited = log_time_ms(&success[0]) - spawned;
    assert!(waited >= 950, "RUNNING {waited} ms after the spawn, before startsecs = 1");

    // Its twin exits after 0.2 s: it never counted as started.
    d.wait_state("brief", "FATAL");
    assert_eq!(
        d.process("brief")["description"],
        "Exited too quickly (process log may have details)"
    );
    assert!(!d.log().contains("success: brief"), "{}", d.log());
}

// ---- exit codes and autorestart ----

#[test]
fn an_expected_exit_code_leaves_the_process_exited_and_an_unexpected_one_restarts_it() {
    let dir = Dir::new("exitcodes");
    let body = format!(
        "[programs.expected]\ncommand = {}\nexitcodes = [0, 3]\nautorestart = \"unexpected\"\nstartsecs = 0\n\n\
         [programs.unexpected]\ncommand = {}\nexitcodes = [0, 3]\nautorestart = \"unexpected\"\nstartsecs = 0\n",
        sh(&format!("echo start >> {}; exit 3", shq(&dir, "expected.starts"))),
        sh(&format!("echo start >> {}; sleep 0.2; exit 4", shq(&dir, "unexpected.starts"))),
    );
    let d = Daemon::start_in(dir, &body);

    d.wait_state("expected", "EXITED");
    // Give the daemon the time to restart its twin twice more: time enough to restart it too.
    let n = count_lines(&d, "unexpected.starts");
    wait_until("the unexpected exit is restarted twice more", DEADLINE, || {
        count_lines(&d, "unexpected.starts") >= (n + 2).max(3)
    });

    let p = d.process("expected");
    assert_eq!(p["state"], "EXITED");
    assert_eq!(p["exitstatus"], 3);
    assert_eq!(p["restarts"], 0);
    assert_eq!(count_lines(&d, "expected.starts"), 1, "an expected exit was restarted");
    assert!(d.log().contains("exited: expected (exit status 3; expected)"), "{}", d.log());
    assert!(d.log().contains("exited: unexpected (exit status 4; not expected)"), "{}", d.log());
    assert!(d.process("unexpected")["restarts"].as_u64().unwrap() >= 2);
}

#[test]
fn autorestart_true_restarts_after_an_expected_exit_and_false_never_restarts() {
    let dir = Dir::new("autorestart");
    let body = format!(
        "[programs.always]\ncommand = {}\nautorestart = true\nstartsecs = 0\n\n\
         [programs.never]\ncommand = {}\nautorestart = false\nstartsecs = 0\n",
        sh(&format!("echo start >> {}; sleep 0.2; exit 0", shq(&dir, "always.starts"))),
        sh(&format!("echo start >> {}; exit 1", shq(&dir, "never.starts"))),
    );
    let d = Daemon::start_in(dir, &body);

    d.wait_state("never", "EXITED");
    let n = count_lines(&d, "always.starts");
    wait_until("autorestart = true restarts an exit 0 twice more", DEADLINE, || {
        count_lines(&d, "always.starts") >= (n + 2).max(3)
    });
    assert!(d.log().contains("exited: always (exit status 0; expected)"), "{}", d.log());

    let p = d.process("never");
    assert_eq!(p["state"], "EXITED");
    assert_eq!(p["exitstatus"], 1);
    assert_eq!(p["restarts"], 0);
    assert_eq!(count_lines(&d, "never.starts"), 1, "autorestart = false restarted");
    assert!(d.log().contains("exited: never (exit status 1; not expected)"), "{}", d.log());
}

// ---- kahi ctl start, stop, restart, status ----

#[test]
fn ctl_start_stop_restart_and_status_reply_as_supervisorctl() {
    let body = "[programs.solo]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
                [programs.api]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
                [programs.worker]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
                [groups.backend]\nprograms = [\"api\", \"worker\"]\n";
    let d = Daemon::start("replies", body);
    for name in ["backend:api", "backend:worker", "solo"] {
        d.wait_state(name, "RUNNING");
    }
    let ctl = |args: &[&str]| {
        let out = d.ctl(args);
        (out.code, out.stdout)
    };

    assert_eq!(ctl(&["status"]).0, 0, "everything RUNNING");
    assert_eq!(ctl(&["start", "solo"]), (0, "solo: ERROR (already started)\n".into()));
    let pid = pid_of(&d, "solo");
    assert_eq!(ctl(&["stop", "solo"]), (0, "solo: stopped\n".into()));
    assert!(!alive(pid));
    assert_eq!(d.state("solo"), "STOPPED");
    assert_eq!(ctl(&["stop", "solo"]), (0, "solo: ERROR (not running)\n".into()));
    assert_eq!(ctl(&["status"]).0, 3, "solo is not RUNNING");
    assert_eq!(ctl(&["status", "solo"]).0, 3);
    assert_eq!(ctl(&["status", "backend:api"]).0, 0);
    let out = d.ctl(&["status", "nope"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("nope"), "{out:?}");
    assert_eq!(ctl(&["start", "nope"]), (1, "nope: ERROR (no such process)\n".into()));
    assert_eq!(ctl(&["stop", "nope"]), (1, "nope: ERROR (no such process)\n".into()));

    assert_eq!(ctl(&["start", "solo"]), (0, "solo: started\n".into()));
    let pid = pid_of(&d, "solo");
    assert!(pid > 0 && alive(pid));
    let (code, text) = ctl(&["restart", "solo"]);
    assert_eq!(code, 0);
    assert!(text.ends_with("solo: started\n"), "{text:?}");
    let new = pid_of(&d, "solo");
    assert!(new > 0 && new != pid && alive(new) && !alive(pid), "restart kept pid {pid}");
    assert_eq!(d.state("solo"), "RUNNING");

    // Several names: one line each, in the order they settle (as supervisord's results).
    let (code, text) = ctl(&["stop", "backend:*"]);
    assert_eq!(code, 0);
    assert_eq!(sorted_lines(&text), ["backend:api: stopped", "backend:worker: stopped"]);
    assert_eq!(d.state("solo"), "RUNNING", "backend:* stopped solo");
    let (code, text) = ctl(&["start", "all"]);
    assert_eq!(code, 0);
    assert_eq!(
        sorted_lines(&text),
        ["backend:api: started", "backend:worker: started", "solo: ERROR (already started)"]
    );
    assert_eq!(ctl(&["status"]).0, 0);
    let (code, text) = ctl(&["stop", "all"]);
    assert_eq!(code, 0);
    assert_eq!(
        sorted_lines(&text),
        ["backend:api: stopped", "backend:worker: stopped", "solo: stopped"]
    );
    for name in ["backend:api", "backend:worker", "solo"] {
        assert_eq!(d.state(name), "STOPPED");
    }
}

#[test]
fn ctl_restart_replies_stopped_then_started_as_supervisorctl() {
    let body = "[programs.solo]\ncommand = \"sleep 1000\"\nstartsecs = 0\n";
    let d = Daemon::start("restart-reply", body);
    d.wait_state("solo", "RUNNING");
    let out = d.ctl(&["restart", "solo"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "solo: stopped\nsolo: started\n"));
    d.ctl(&["stop", "solo"]);
    let out = d.ctl(&["restart", "solo"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "solo: ERROR (not running)\nsolo: started\n"));
}

// ---- start delays ----

#[test]
fn start_delay_holds_a_start_and_a_stop_cancels_it() {
    let d = Daemon::start(
        "start-delay",
        "[programs.late]\ncommand = \"sleep 1000\"\nstartsecs = 0\nstart_delay = 2\n\n\
         [programs.now]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state("now", "RUNNING");
    d.wait_state("late", "RUNNING");
    // Spawned two seconds after the other, whatever the machine's load.
    let started = |n: &str| d.process(n)["start_time"].as_f64().unwrap();
    let gap = started("late") - started("now");
    assert!(gap >= 1.95, "late started {gap:.3} s after now");
    // During the delay: STARTING without a pid; a stop cancels it at once, nothing spawned.
    assert_eq!(d.ctl(&["stop", "late"]).code, 0);
    assert_eq!(d.ctl(&["start", "--no-wait", "late"]).code, 0);
    let p = d.process("late");
    assert_eq!((p["state"].as_str(), p["pid"].is_null()), (Some("STARTING"), true), "{p}");
    let out = d.ctl(&["stop", "late"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(d.state("late"), "STOPPED");
    assert!(d.process("late")["pid"].is_null());
}
