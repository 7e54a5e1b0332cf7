//! Lifecycle: every path a process takes through its states, shown with the real `kahi daemon`
//! and real child processes: failed starts and back-off, startsecs, exit codes and autorestart,
//! stop escalation and process groups, numprocs naming, what a program starts with (environment,
//! directory, umask, file descriptors, signal dispositions), spawn failures, output capture, the
//! replies of `kahi ctl start|stop|restart|status`, and the order of a shutdown.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::util::*;

// ---- helpers ----

/// `s` as a TOML basic string.
fn toml_str(s: &str) -> String {
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
fn sh(script: &str) -> String {
    format!("[\"/bin/sh\", \"-c\", {}]", toml_str(script))
}

/// A path in the test directory, single-quoted for the shell.
fn shq(dir: &Dir, name: &str) -> String {
    format!("'{}'", dir.join(name).display())
}

/// The pid `status` shows for `name` (0 when none).
fn pid_of(d: &Daemon, name: &str) -> i32 {
    d.process(name)["pid"].as_i64().unwrap_or(0) as i32
}

/// Waits until `pid` has exactly `want` among its fds but `stray`, and fails naming what it
/// has. A program that has just started may hold a file of its own for a moment (`sleep`
/// reads its locale: /usr/lib/locale/C.utf8/LC_CTYPE on fd 3), which a loaded machine makes
/// visible; an inherited fd stays.
fn wait_fds(pid: i32, stray: &[i32], want: &[i32], what: &str) {
    let own = || -> Vec<i32> { fds(pid).into_iter().filter(|fd| !stray.contains(fd)).collect() };
    let end = Instant::now() + DEADLINE;
    while own() != want {
        if Instant::now() > end {
            let links: Vec<String> = own()
                .iter()
                .map(|fd| {
                    format!("{fd} -> {:?}", std::fs::read_link(format!("/proc/{pid}/fd/{fd}")))
                })
                .collect();
            panic!("{what}: fds {links:?}, not {want:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lines in a file of the test directory (0 while it does not exist).
fn count_lines(d: &Daemon, name: &str) -> usize {
    d.dir.read(name).lines().count()
}

/// Waits until a program has written a complete (newline-terminated) file in the test
/// directory, and returns its text.
fn wait_file(d: &Daemon, name: &str) -> String {
    let mut text = String::new();
    wait_until(&format!("a program wrote {name}"), DEADLINE, || {
        text = d.dir.read(name);
        text.ends_with('\n')
    });
    text
}

/// Waits for a file holding one pid, written by a program, and returns the pid.
fn wait_pid_file(d: &Daemon, name: &str) -> i32 {
    let pid: i32 = wait_file(d, name).trim().parse().unwrap_or(0);
    assert!(pid > 0, "{name} does not hold a pid");
    pid
}

/// The daemon's log lines that contain `text`.
fn log_lines(d: &Daemon, text: &str) -> Vec<String> {
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

/// A hexadecimal signal-set field of /proc/PID/status (`SigIgn:`, `SigBlk:`).
fn sigset(pid: i32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| {
        panic!("no {field} in /proc/{pid}/status");
    });
    u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
}

/// The environment a process was started with, from /proc/PID/environ, sorted.
fn environ(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let mut vars: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    vars.sort();
    vars
}

/// The lines of `text`, sorted.
fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

/// `kahi ctl tail -n BYTES NAME [STREAM]`'s output.
fn tail(d: &Daemon, name: &str, stream: &str) -> String {
    let out = d.ctl(&["tail", "-n", "1000000", name, stream]);
    assert_eq!(out.code, 0, "tail {name} {stream}: {out:?}");
    out.stdout
}

/// A `sleep` a program left behind, reparented to the daemon (a subreaper): killed when the
/// test ends, even a failed one, while /proc still shows it as that daemon's `sleep`. Declare it
/// after the daemon, so it is dropped first.
struct StraySleep {
    pid: i32,
    daemon: i32,
}

impl Drop for StraySleep {
    fn drop(&mut self) {
        let pid = self.pid;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1));
        if cmdline.starts_with(b"sleep\0") && ppid == Some(&self.daemon.to_string()) {
            unsafe_kill(pid, 9);
        }
    }
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

// ---- stopping ----

#[test]
fn a_program_ignoring_its_stop_signal_is_killed_after_stopwaitsecs() {
    let dir = Dir::new("escalation");
    let body = format!(
        "[programs.stubborn]\ncommand = {}\nstopwaitsecs = 1\nstartsecs = 0\n\n\
         [programs.polite]\ncommand = \"sleep 1000\"\nstopwaitsecs = 5\nstartsecs = 0\n",
        sh(&format!(
            "trap '' TERM; echo ready > {}; while :; do sleep 0.1; done",
            shq(&dir, "ready")
        )),
    );
    let d = Daemon::start_in(dir, &body);
    wait_file(&d, "ready");
    d.wait_state("stubborn", "RUNNING");
    d.wait_state("polite", "RUNNING");

    let pid = pid_of(&d, "stubborn");
    let t = Instant::now();
    let out = d.ctl(&["stop", "stubborn"]);
    let took = t.elapsed();
    assert_eq!((out.code, out.stdout.as_str()), (0, "stubborn: stopped\n"), "{out:?}");
    assert!(took >= Duration::from_secs(1), "stopped after {took:?}, before stopwaitsecs");
    let killing = log_lines(&d, &format!("killing 'stubborn' ({pid}) with SIGKILL"));
    assert_eq!(killing.len(), 1, "{}", d.log());
    assert!(!alive(pid), "pid {pid} still alive after stop");
    let p = d.process("stubborn");
    assert_eq!((p["state"].as_str(), p["exitstatus"].as_i64()), (Some("STOPPED"), Some(137)));

    // Its twin obeys SIGTERM: stopped at once, no SIGKILL.
    let pid = pid_of(&d, "polite");
    let t = Instant::now();
    let out = d.ctl(&["stop", "polite"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "polite: stopped\n"), "{out:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "polite waited for stopwaitsecs");
    assert!(!d.log().contains("killing 'polite'"), "{}", d.log());
    assert!(!alive(pid));
    assert_eq!(d.process("polite")["exitstatus"], 128 + 15);
}

/// Starts a program whose shell starts a `sleep` grandchild, stops it with `kahi ctl stop`, and
/// returns the daemon and the grandchild.
fn stop_a_parent_of_a_grandchild(name: &str, stopasgroup: bool) -> (Daemon, StraySleep) {
    let dir = Dir::new(name);
    let body = format!(
        "[programs.parent]\ncommand = {}\nstopasgroup = {stopasgroup}\nstartsecs = 0\nstopwaitsecs = 5\n",
        sh(&format!("sleep 1000 & echo $! > {}; wait", shq(&dir, "grandchild.pid"))),
    );
    let d = Daemon::start_in(dir, &body);
    let grandchild = StraySleep { pid: wait_pid_file(&d, "grandchild.pid"), daemon: d.pid() };
    let parent = pid_of(&d, "parent");
    assert!(alive(parent) && alive(grandchild.pid));
    let out = d.ctl(&["stop", "parent"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "parent: stopped\n"), "{out:?}");
    assert!(!alive(parent), "the parent survived its stop");
    (d, grandchild)
}

#[test]
fn stopasgroup_stops_the_grandchildren_too() {
    let (_d, grandchild) = stop_a_parent_of_a_grandchild("stopasgroup", true);
    wait_until("the grandchild is gone", DEADLINE, || !alive(grandchild.pid));
}

#[test]
fn without_stopasgroup_the_grandchildren_survive_a_stop() {
    let (_d, grandchild) = stop_a_parent_of_a_grandchild("nostopasgroup", false);
    assert!(alive(grandchild.pid), "the grandchild was stopped without stopasgroup");
    // Now adopted by the daemon, it is this test's to kill.
    unsafe_kill(grandchild.pid, 9);
    wait_until("the grandchild is killed", DEADLINE, || !alive(grandchild.pid));
}

// ---- names and what a program starts with ----

#[test]
fn numprocs_processes_are_named_from_process_name_and_see_their_names() {
    let dir = Dir::new("numprocs");
    // Written under a temporary name, then renamed: a reader never sees half a file.
    let script = format!(
        "env > \"{dir}/tmp.$SUPERVISOR_PROCESS_NAME\"; \
         mv \"{dir}/tmp.$SUPERVISOR_PROCESS_NAME\" \"{dir}/env.$SUPERVISOR_PROCESS_NAME\"; \
         exec sleep 1000",
        dir = dir.path.display(),
    );
    let body = format!(
        "[programs.web]\ncommand = {}\nnumprocs = 3\n\
         process_name = \"%(program_name)s_%(process_num)02d\"\nstartsecs = 0\n",
        sh(&script),
    );
    let d = Daemon::start_in(dir, &body);
    for name in ["web:web_00", "web:web_01", "web:web_02"] {
        d.wait_state(name, "RUNNING");
    }

    let out = d.ctl(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    let names: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        names,
        [("web:web_00", "RUNNING"), ("web:web_01", "RUNNING"), ("web:web_02", "RUNNING")],
        "{}",
        out.stdout
    );

    for n in ["web_00", "web_01", "web_02"] {
        let env = wait_file(&d, &format!("env.{n}"));
        let env: Vec<&str> = env.lines().collect();
        for want in [
            format!("SUPERVISOR_PROCESS_NAME={n}"),
            "SUPERVISOR_GROUP_NAME=web".to_string(),
            "SUPERVISOR_ENABLED=1".to_string(),
        ] {
            assert!(env.contains(&want.as_str()), "{n} lacks {want}: {env:?}");
        }
    }
}

#[test]
fn a_program_runs_with_its_environment_directory_and_umask() {
    let dir = Dir::new("shaped");
    std::fs::create_dir(dir.join("work")).unwrap();
    // What a program reports, into files named with `prefix` (relative: in its directory).
    let report = |prefix: &str| {
        sh(&format!(
            "umask > {prefix}umask.out; pwd -P > {prefix}pwd.out; \
             echo \"$GREETING\" > {prefix}greeting.out; echo done > {prefix}done.out; \
             exec sleep 1000"
        ))
    };
    // Its twin sets none of the three and writes into the test directory.
    let body = format!(
        "[programs.shaped]\ncommand = {}\ndirectory = {}\numask = \"027\"\n\
         environment = {{ GREETING = \"hello from kahi\" }}\nstartsecs = 0\n\n\
         [programs.plain]\ncommand = {}\nstartsecs = 0\n",
        report(""),
        toml_str(&path_str(&dir.join("work"))),
        report(&format!("{}/", dir.path.display())),
    );
    let d = Daemon::start_in(dir, &body);

    wait_file(&d, "work/done.out");
    assert_eq!(d.dir.read("work/umask.out"), "0027\n");
    let work = std::fs::canonicalize(d.dir.join("work")).unwrap();
    assert_eq!(d.dir.read("work/pwd.out"), format!("{}\n", work.display()));
    assert_eq!(d.dir.read("work/greeting.out"), "hello from kahi\n");

    wait_file(&d, "done.out");
    let daemon_umask = std::fs::read_to_string(format!("/proc/{}/status", d.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:").map(|u| u.trim().to_string()))
        .unwrap();
    assert_eq!(d.dir.read("umask.out").trim(), daemon_umask, "without umask: the daemon's");
    let daemon_cwd = std::fs::read_link(format!("/proc/{}/cwd", d.pid())).unwrap();
    assert_eq!(d.dir.read("pwd.out"), format!("{}\n", daemon_cwd.display()), "without directory");
    assert_eq!(d.dir.read("greeting.out"), "\n");
}

#[test]
fn clean_environment_leaves_only_the_configured_and_supervisor_variables() {
    let body = "[programs.clean]\ncommand = \"/bin/sleep 1000\"\nclean_environment = true\n\
                environment = { ONLY = \"this\" }\nstartsecs = 0\n\n\
                [programs.with_path]\ncommand = \"/bin/sleep 1000\"\nclean_environment = true\n\
                environment = { PATH = \"/usr/bin:/bin\" }\nstartsecs = 0\n\n\
                [programs.inherited]\ncommand = \"/bin/sleep 1000\"\n\
                environment = { ONLY = \"this\" }\nstartsecs = 0\n";
    let d = Daemon::start("cleanenv", body);
    for name in ["clean", "with_path", "inherited"] {
        d.wait_state(name, "RUNNING");
    }

    assert_eq!(
        environ(pid_of(&d, "clean")),
        [
            "ONLY=this",
            "SUPERVISOR_ENABLED=1",
            "SUPERVISOR_GROUP_NAME=clean",
            "SUPERVISOR_PROCESS_NAME=clean"
        ]
    );
    assert_eq!(
        environ(pid_of(&d, "with_path")),
        [
            "PATH=/usr/bin:/bin",
            "SUPERVISOR_ENABLED=1",
            "SUPERVISOR_GROUP_NAME=with_path",
            "SUPERVISOR_PROCESS_NAME=with_path"
        ]
    );
    // Without clean_environment the daemon's own variables (PATH among them) are passed on.
    let inherited = environ(pid_of(&d, "inherited"));
    assert!(inherited.iter().any(|v| v.starts_with("PATH=")), "{inherited:?}");
    assert!(inherited.contains(&"ONLY=this".to_string()), "{inherited:?}");
    assert!(inherited.len() > 5, "{inherited:?}");
}

// ---- spawn failures ----

#[test]
fn a_command_that_cannot_be_executed_is_reported_and_the_daemon_keeps_running() {
    let dir = Dir::new("spawnerr");
    let noexec = dir.write("not-executable.sh", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(&noexec, std::fs::Permissions::from_mode(0o644)).unwrap();
    let body = format!(
        "[programs.missing]\ncommand = {}\nautostart = false\nstartretries = 0\n\n\
         [programs.noexec]\ncommand = {}\nautostart = false\nstartretries = 1\n\n\
         [programs.nodir]\ncommand = \"/bin/sleep 1000\"\ndirectory = {}\nautostart = false\n\
         startretries = 0\n",
        toml_str(&path_str(&dir.join("does-not-exist"))),
        toml_str(&path_str(&noexec)),
        toml_str(&path_str(&dir.join("no-such-dir"))),
    );
    let d = Daemon::start_in(dir, &body);

    // As supervisord's start: the command itself missing or not executable is NO_FILE or
    // NOT_EXECUTABLE (exit 1); anything else a spawn error (exit 7).
    for (name, outcome, code, error) in [
        ("missing", "no such file", 1, "No such file or directory"),
        ("noexec", "file is not executable", 1, "Permission denied"),
        ("nodir", "spawn error", 7, "No such file or directory"),
    ] {
        let out = d.ctl(&["start", name]);
        assert_eq!(out.code, code, "start {name}: {out:?}");
        let line = out.stdout.trim_end();
        assert!(
            line.starts_with(&format!("{name}: ERROR ({outcome})")) && line.ends_with(error),
            "start {name}: {out:?}"
        );
        let p = d.process(name);
        assert!(p["state"] == "BACKOFF" || p["state"] == "FATAL", "{name}: {p}");
        let spawnerr = p["spawnerr"].as_str().unwrap_or("");
        assert!(spawnerr.ends_with(error), "{name}: {p}");
        // In BACKOFF, with the time to the next try.
        assert!(p["description"].as_str().unwrap_or("").starts_with(spawnerr), "{name}: {p}");
        assert!(d.log().contains(&format!("spawnerr: can't start '{name}': ")), "{}", d.log());
        assert!(alive(d.pid()), "the daemon died on a spawn error of {name}");
    }
    assert!(d.process("nodir")["spawnerr"].as_str().unwrap().contains("no-such-dir"));

    // startretries = 1: one more try after a back-off, then FATAL.
    d.wait_state("noexec", "FATAL");
    assert_eq!(log_lines(&d, "spawnerr: can't start 'noexec'").len(), 2, "{}", d.log());
    let out = d.ctl(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 3, "{out:?}");
    assert!(alive(d.pid()));
}

// ---- what a program inherits ----

/// The open fds of `pid`, by number.
fn fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

/// The fds above 2 of `pid` without close-on-exec: the ones its children inherit.
fn inheritable_fds(pid: i32) -> Vec<i32> {
    const O_CLOEXEC: u32 = 0o2000000;
    fds(pid)
        .into_iter()
        .filter(|fd| *fd > 2)
        .filter(|fd| {
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"));
            let flags = info.ok().and_then(|i| {
                let f = i.lines().find_map(|l| l.strip_prefix("flags:"))?.trim().to_string();
                u32::from_str_radix(&f, 8).ok()
            });
            flags.is_some_and(|f| f & O_CLOEXEC == 0)
        })
        .collect()
}

/// Programs started with nothing to do before the exec (`plain`) and with something
/// (`masked`: a umask); `ignorer` ignores SIGUSR1 itself.
const SPAWN_WAYS: &str = "[programs.plain]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
     [programs.masked]\ncommand = \"sleep 1000\"\numask = \"022\"\nstartsecs = 0\n\n\
     [programs.ignorer]\ncommand = [\"/bin/sh\", \"-c\", \"trap '' USR1; exec sleep 1000\"]\n\
     startsecs = 0\n";

#[test]
fn a_program_inherits_no_fd_kahi_opened() {
    // Fds this test process holds open across exec (left by whatever started the tests) reach
    // the daemon too; what becomes of those is the next test's concern.
    let stray = inheritable_fds(std::process::id() as i32);
    let body = "[programs.first]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
                [programs.plain]\ncommand = \"sleep 1000\"\nautostart = false\nstartsecs = 0\n\n\
                [programs.masked]\ncommand = \"sleep 1000\"\numask = \"022\"\nautostart = false\n\
                startsecs = 0\n";
    let d = Daemon::start("inherit-fds", body);
    d.wait_state("first", "RUNNING");
    // A control connection held open while the others start: one more fd in the daemon, as
    // are the pipes of `first`.
    let _held = UnixStream::connect(&d.socket).unwrap();
    for name in ["plain", "masked"] {
        let out = d.ctl(&["start", name]);
        assert_eq!(out.stdout, format!("{name}: started\n"), "{out:?}");
    }
    // The daemon has fds to leak (its poll, signal pipe, socket, connection, program pipes),
    // and every one it opened itself is close-on-exec.
    let daemon = d.pid();
    assert!(fds(daemon).len() >= 8 + stray.len(), "the daemon has only {:?}", fds(daemon));
    let opened: Vec<i32> =
        inheritable_fds(daemon).into_iter().filter(|fd| !stray.contains(fd)).collect();
    assert!(opened.is_empty(), "fds of the daemon without close-on-exec: {opened:?}");

    for name in ["plain", "masked"] {
        let pid = pid_of(&d, name);
        wait_fds(pid, &stray, &[0, 1, 2], &format!("{name} inherited fds"));
        let link = |fd: u32| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap().display().to_string()
        };
        assert_eq!(link(0), "/dev/null", "{name}'s stdin");
        assert!(link(1).starts_with("pipe:") && link(2).starts_with("pipe:"), "{name}");
        assert_ne!(link(1), link(2), "{name}: stdout and stderr share a pipe");
    }
}

#[test]
fn a_program_starts_with_no_blocked_signal_and_no_standard_signal_ignored() {
    let d = Daemon::start("inherit-signals", SPAWN_WAYS);
    for name in ["plain", "masked", "ignorer"] {
        d.wait_state(name, "RUNNING");
    }
    // The daemon itself ignores SIGPIPE (13): its programs must not.
    assert_ne!(sigset(d.pid(), "SigIgn:") & 1 << (13 - 1), 0, "the daemon does not ignore SIGPIPE");
    for name in ["plain", "masked"] {
        let pid = pid_of(&d, name);
        assert_eq!(sigset(pid, "SigBlk:"), 0, "{name} starts with blocked signals");
        // Signals 1 to 31; the real-time ones are the next test's.
        let ignored = sigset(pid, "SigIgn:") & 0x7fff_ffff;
        assert_eq!(ignored, 0, "{name} starts with signals ignored: {ignored:#x}");
    }
    // The reading sees an ignored signal: this program ignores SIGUSR1 (10) itself.
    assert_eq!(sigset(pid_of(&d, "ignorer"), "SigIgn:") & 0x7fff_ffff, 1 << (10 - 1));
}

#[test]
fn a_program_starts_with_no_signal_ignored() {
    let d = Daemon::start("inherit-rt-signals", SPAWN_WAYS);
    for name in ["plain", "masked"] {
        d.wait_state(name, "RUNNING");
        let ignored = sigset(pid_of(&d, name), "SigIgn:");
        assert_eq!(ignored, 0, "{name} starts with signals ignored: {ignored:#x}");
    }
}

#[test]
fn a_program_does_not_inherit_fds_the_daemon_was_started_with() {
    let body = "[programs.first]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
                [programs.second]\ncommand = \"sleep 1000\"\numask = \"022\"\nstartsecs = 0\n";
    // An init script or a shell that leaves fd 7 open, as supervisord's users meet them.
    let d = Daemon::start_after("inherited-fd", "exec 7</dev/null", body);
    assert!(
        std::path::Path::new(&format!("/proc/{}/fd/7", d.pid())).exists(),
        "the daemon did not get fd 7"
    );
    for name in ["first", "second"] {
        d.wait_state(name, "RUNNING");
        wait_fds(pid_of(&d, name), &[], &[0, 1, 2], &format!("{name} inherited fds"));
    }
}

// ---- output ----

#[test]
fn redirect_stderr_merges_stderr_into_stdout_in_order() {
    let script = "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exec sleep 1000";
    let body = format!(
        "[programs.merged]\ncommand = {cmd}\nredirect_stderr = true\nstartsecs = 0\n\n\
         [programs.split]\ncommand = {cmd}\nstartsecs = 0\n",
        cmd = sh(script),
    );
    let d = Daemon::start("redirect", &body);

    wait_until("merged output arrives", DEADLINE, || tail(&d, "merged", "stdout").contains("err2"));
    assert_eq!(tail(&d, "merged", "stdout"), "out1\nerr1\nout2\nerr2\n");
    assert_eq!(tail(&d, "merged", "stderr"), "");

    wait_until("split output arrives", DEADLINE, || {
        tail(&d, "split", "stdout").contains("out2") && tail(&d, "split", "stderr").contains("err2")
    });
    assert_eq!(tail(&d, "split", "stdout"), "out1\nout2\n");
    assert_eq!(tail(&d, "split", "stderr"), "err1\nerr2\n");
}

#[test]
fn output_written_just_before_exiting_is_kept() {
    // More than a pipe holds (64 KiB), so part of it is still in the pipe at the exit.
    let body = format!(
        "[programs.burst]\ncommand = {}\nautorestart = false\nstartsecs = 0\n",
        sh("seq 1 20000; echo last line")
    );
    let d = Daemon::start("drain", &body);
    let mut want: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    want.push_str("last line\n");

    d.wait_state("burst", "EXITED");
    assert_eq!(d.process("burst")["exitstatus"], 0);
    wait_until("the last line is in the log", DEADLINE, || {
        tail(&d, "burst", "stdout").contains("last line")
    });
    let got = tail(&d, "burst", "stdout");
    assert!(got == want, "{} bytes captured of {}; ends with {:?}", got.len(), want.len(), {
        &got[got.len().saturating_sub(40)..]
    });
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

// ---- shutdown ----

/// Starts two programs that each append `stopped NAME` to one file when SIGTERM reaches them,
/// sends SIGTERM to the daemon, and returns that file and the daemon's exit code.
fn shutdown_order(name: &str, alpha_priority: i64, beta_priority: i64) -> (String, i32) {
    let dir = Dir::new(name);
    let mut body = String::new();
    for (prog, priority) in [("alpha", alpha_priority), ("beta", beta_priority)] {
        let script = format!(
            "trap 'echo stopped {prog} >> {order}; exit 0' TERM; echo ready > {ready}; \
             while :; do sleep 0.1; done",
            order = shq(&dir, "order"),
            ready = shq(&dir, &format!("{prog}.ready")),
        );
        body.push_str(&format!(
            "[programs.{prog}]\ncommand = {}\npriority = {priority}\nstartsecs = 0\n\n",
            sh(&script)
        ));
    }
    let mut d = Daemon::start_in(dir, &body);
    wait_file(&d, "alpha.ready");
    wait_file(&d, "beta.ready");
    d.signal(15);
    let code = d.wait_exit(DEADLINE);
    (d.dir.read("order"), code)
}

#[test]
fn sigterm_stops_programs_in_reverse_priority_order_and_exits_0() {
    let (order, code) = shutdown_order("shutdown-order", 2, 1);
    assert_eq!(order, "stopped alpha\nstopped beta\n");
    assert_eq!(code, 0);
}

#[test]
fn sigterm_stop_order_follows_priority_not_name() {
    let (order, code) = shutdown_order("shutdown-order-swapped", 1, 2);
    assert_eq!(order, "stopped beta\nstopped alpha\n");
    assert_eq!(code, 0);
}

#[test]
fn a_program_needing_sigkill_at_shutdown_makes_the_daemon_exit_1() {
    let dir = Dir::new("shutdown-kill");
    let body = format!(
        "[programs.stubborn]\ncommand = {}\nstopwaitsecs = 1\nstartsecs = 0\n\n\
         [programs.polite]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
        sh(&format!(
            "trap '' TERM; echo ready > {}; while :; do sleep 0.1; done",
            shq(&dir, "ready")
        )),
    );
    let mut d = Daemon::start_in(dir, &body);
    wait_file(&d, "ready");
    d.wait_state("polite", "RUNNING");
    let pids = [pid_of(&d, "stubborn"), pid_of(&d, "polite")];

    d.signal(15);
    assert_eq!(d.wait_exit(DEADLINE), 1);
    assert!(d.log().contains("killing 'stubborn'"), "{}", d.log());
    assert!(d.log().contains("exiting with status 1"), "{}", d.log());
    assert!(pids.iter().all(|p| !alive(*p)), "a program outlived the daemon");
}

#[test]
fn a_sigkill_before_the_shutdown_does_not_change_the_exit_code() {
    let dir = Dir::new("shutdown-after-kill");
    let body = format!(
        "[programs.stubborn]\ncommand = {}\nstopwaitsecs = 1\nstartsecs = 0\n",
        sh(&format!(
            "trap '' TERM; echo ready > {}; while :; do sleep 0.1; done",
            shq(&dir, "ready")
        )),
    );
    let mut d = Daemon::start_in(dir, &body);
    wait_file(&d, "ready");
    d.wait_state("stubborn", "RUNNING");
    assert_eq!(d.ctl(&["stop", "stubborn"]).stdout, "stubborn: stopped\n");
    assert!(d.log().contains("killing 'stubborn'"), "{}", d.log());

    // Nothing runs at the shutdown, so nothing needs SIGKILL then.
    d.signal(15);
    assert_eq!(d.wait_exit(DEADLINE), 0, "{}", d.log());
}

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

#[test]
fn resource_limits_are_visible_in_the_program() {
    let d = Daemon::start(
        "rlimits",
        "[programs.lim]\ncommand = [\"/bin/sh\", \"-c\", \"cat /proc/self/limits; exec sleep 1000\"]\n\
         startsecs = 0\n\n[programs.lim.limits]\nnofile = 321\ncore = 0\nstack = \"4MB\"\n",
    );
    d.wait_state("lim", "RUNNING");
    wait_until("the limits are printed", DEADLINE, || {
        d.ctl(&["tail", "lim"]).stdout.contains("Max stack")
    });
    let limits = d.ctl(&["tail", "lim"]).stdout;
    let row = |name: &str| -> Vec<String> {
        let line =
            limits.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{limits}"));
        line[name.len()..].split_whitespace().take(2).map(str::to_string).collect()
    };
    assert_eq!(row("Max open files"), ["321", "321"], "{limits}");
    assert_eq!(row("Max core file size"), ["0", "0"], "{limits}");
    assert_eq!(row("Max stack size"), ["4194304", "4194304"], "{limits}");
    // The daemon's own limits are untouched.
    let own = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    assert!(!own.lines().any(|l| l.starts_with("Max open files") && l.contains(" 321 ")), "{own}");
}
