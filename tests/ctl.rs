//! `kahi ctl` as an operator uses it: the status table and its JSON, pids, signals, tails,
//! `avail`, `version`, how the socket is found, what a missing daemon looks like, and
//! `shutdown`. Also the raw protocol, as `socat - UNIX-CONNECT:SOCK` would speak it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::*;

/// A shell program that says `ready` once its traps are set, writes `trapped SIG` to `marker`
/// and to its stdout for each trapped signal, and otherwise sleeps. Its stop signal goes to the
/// whole group, so its `sleep` never outlives it.
fn trapper(name: &str, marker: &str, sigs: &[&str]) -> String {
    let mut script = String::new();
    for sig in sigs {
        script.push_str(&format!(
            "trap \"echo trapped {sig} >> {marker}; echo trapped {sig}\" {sig}; "
        ));
    }
    script
        .push_str("echo ready; while :; do sleep 1000 & p=$!; wait $p; kill $p 2>/dev/null; done");
    format!(
        "[programs.{name}]\ncommand = ['/bin/sh', '-c', '{script}']\nstartsecs = 0\nstopasgroup = true\n"
    )
}

/// `kahi ctl` with no `-s`, for the tests of socket resolution.
fn ctl_bare(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(KAHI);
    cmd.arg("ctl").args(args).env_remove("KAHI_SOCKET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// Waits until `name`'s stdout tail contains `text`.
fn wait_tail(d: &Daemon, name: &str, text: &str) {
    wait_tail_of(d, name, "stdout", text);
}

fn wait_tail_of(d: &Daemon, name: &str, stream: &str, text: &str) {
    let mut last = String::new();
    let end = Instant::now() + DEADLINE;
    while !last.contains(text) {
        if Instant::now() > end {
            panic!("the tail of {name} never contained {text:?}; last {last:?}; log:\n{}", d.log());
        }
        std::thread::sleep(Duration::from_millis(10));
        last = d.ctl(&["tail", name, stream]).stdout;
    }
}

#[test]
fn status_table_shows_name_state_pid_and_uptime() {
    let d = Daemon::start(
        "ctl-table",
        "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n\n\
         [programs.idle]\ncommand = \"/bin/sleep 1000\"\nautostart = false\n",
    );
    d.wait_state("web", "RUNNING");
    let pid = d.process("web")["pid"].as_i64().unwrap();

    let out = d.ctl(&["status"]);
    // One process is not running, so the exit status is 3, as supervisorctl's.
    assert_eq!(out.code, 3, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    let web = lines.iter().find(|l| l.starts_with("web ")).unwrap_or_else(|| panic!("{out:?}"));
    let idle = lines.iter().find(|l| l.starts_with("idle ")).unwrap_or_else(|| panic!("{out:?}"));
    // supervisorctl's columns: the name padded to 30 and 3 more, the state to 10, the
    // description.
    assert_eq!(&web[..33], format!("{:<33}", "web"), "{web:?}");
    assert_eq!(&web[33..43], "RUNNING   ", "{web:?}");
    let desc = &web[43..];
    let rest =
        desc.strip_prefix(&format!("pid {pid}, uptime ")).unwrap_or_else(|| panic!("{web:?}"));
    let parts: Vec<&str> = rest.split(':').collect();
    assert_eq!(parts.len(), 3, "uptime is H:MM:SS: {web:?}");
    assert!(parts[0].parse::<u32>().is_ok(), "{web:?}");
    assert!(parts[1].len() == 2 && parts[1].parse::<u32>().is_ok_and(|m| m < 60), "{web:?}");
    assert!(parts[2].len() == 2 && parts[2].parse::<u32>().is_ok_and(|s| s < 60), "{web:?}");
    assert_eq!(&idle[33..], "STOPPED   Not started", "{idle:?}");

    // Only running processes named: 0. An unknown name: 4.
    let out = d.ctl(&["status", "web"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    // As supervisorctl: the known ones are shown, the unknown one named as an error.
    let out = d.ctl(&["status", "web", "nosuch"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert_eq!(out.stderr, "nosuch: ERROR (no such process)\n", "{out:?}");
}

#[test]
fn status_json_has_the_documented_fields() {
    let d = Daemon::start(
        "ctl-json",
        "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n\n\
         [programs.quits]\ncommand = \"/bin/sh -c 'exit 3'\"\nstartsecs = 0\nautorestart = false\n\n\
         [groups.backend]\nprograms = [\"quits\"]\n",
    );
    d.wait_state("web", "RUNNING");
    d.wait_state("backend:quits", "EXITED");

    let out = d.ctl(&["status", "--json"]);
    let all: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let all = all.as_array().unwrap_or_else(|| panic!("an array: {out:?}"));
    assert_eq!(all.len(), 2);
    for p in all {
        for key in ["name", "group", "state", "pid", "exitstatus", "uptime_secs", "description"] {
            assert!(p.get(key).is_some(), "{key} missing from {p}");
        }
    }

    let web = all.iter().find(|p| p["name"] == "web").unwrap();
    assert_eq!(web["group"], "web");
    assert_eq!(web["state"], "RUNNING");
    let pid = web["pid"].as_i64().unwrap();
    assert!(alive(pid as i32), "the pid in status is a live process: {web}");
    assert!(web["exitstatus"].is_null(), "{web}");
    assert!(web["uptime_secs"].as_f64().is_some_and(|u| u >= 0.0), "{web}");
    assert!(web["description"].as_str().unwrap().starts_with(&format!("pid {pid}, uptime ")));

    let quits = all.iter().find(|p| p["name"] == "backend:quits").unwrap();
    assert_eq!(quits["group"], "backend");
    assert_eq!(quits["state"], "EXITED");
    assert!(quits["pid"].is_null(), "{quits}");
    assert_eq!(quits["exitstatus"], 3, "{quits}");
    assert!(quits["uptime_secs"].is_null(), "{quits}");
    let desc = quits["description"].as_str().unwrap();
    assert!(desc.starts_with("exit status 3, ") && desc.ends_with(" ago"), "{desc:?}");
}

#[test]
fn pid_prints_the_daemon_a_process_and_zero_for_a_stopped_one() {
    let d = Daemon::start(
        "ctl-pid",
        "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n\n\
         [programs.idle]\ncommand = \"/bin/sleep 1000\"\nautostart = false\n",
    );
    d.wait_state("web", "RUNNING");

    let out = d.ctl(&["pid"]);
    assert_eq!((out.code, out.stdout.trim()), (0, d.pid().to_string().as_str()), "{out:?}");

    let web = d.process("web")["pid"].as_i64().unwrap();
    let out = d.ctl(&["pid", "web"]);
    assert_eq!((out.code, out.stdout.trim()), (0, web.to_string().as_str()), "{out:?}");

    // As supervisorctl: 0 and LSB's "not running" (7) for a process that is not running.
    let out = d.ctl(&["pid", "idle"]);
    assert_eq!((out.code, out.stdout.trim()), (7, "0"), "{out:?}");

    let out = d.ctl(&["pid", "nosuch"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, "No such process nosuch\n"), "{out:?}");

    // Several names, one a line; all: every process's, in start order.
    let out = d.ctl(&["pid", "web", "idle"]);
    assert_eq!((out.code, out.stdout), (7, format!("{web}\n0\n")));
    let out = d.ctl(&["pid", "all"]);
    assert_eq!((out.code, out.stdout), (0, format!("0\n{web}\n")));
}

#[test]
fn signal_hup_reaches_the_program() {
    let dir = Dir::new("ctl-signal");
    let marker = path_str(&dir.join("marker"));
    let d = Daemon::start_in(dir, &trapper("trap", &marker, &["HUP"]));
    d.wait_state("trap", "RUNNING");
    wait_tail(&d, "trap", "ready");
    assert_eq!(d.dir.read("marker"), "", "nothing trapped before the signal");

    let out = d.ctl(&["signal", "HUP", "trap"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "trap: signalled\n"), "{out:?}");
    wait_until("the program trapped SIGHUP", DEADLINE, || d.dir.read("marker") == "trapped HUP\n");
    // A trapped signal is not a stop: the same process still runs.
    assert_eq!(d.state("trap"), "RUNNING");

    // A stopped process is not signalled.
    let out = d.ctl(&["stop", "trap"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = d.ctl(&["signal", "HUP", "trap"]);
    assert_eq!(out.stdout, "trap: ERROR (not running)\n", "{out:?}");
}

#[test]
fn signal_with_a_bad_name_exits_1_and_changes_nothing() {
    let d = Daemon::start(
        "ctl-badsig",
        "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state("web", "RUNNING");
    let pid = d.process("web")["pid"].as_i64().unwrap();

    // As supervisorctl: each name's error, exit status 1.
    let out = d.ctl(&["signal", "BOGUS", "web"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, "web: ERROR (bad signal name)\n"), "{out:?}");

    // The daemon refuses it too, for clients that skip kahi ctl's check.
    let r = d.request(r#"{"cmd":"signal","signal":"BOGUS","names":["web"]}"#);
    assert_eq!(r["code"], "BAD_REQUEST", "{r}");
    assert!(r["error"].as_str().unwrap().contains("BOGUS"), "{r}");

    assert_eq!(d.process("web")["pid"].as_i64(), Some(pid));
    assert_eq!(d.state("web"), "RUNNING");
}

#[test]
fn tail_n_prints_the_last_bytes() {
    let d = Daemon::start(
        "ctl-tail",
        "[programs.talk]\ncommand = \"/bin/sh -c 'echo hello world; echo to stderr >&2; exec sleep 1000'\"\n\
         startsecs = 0\n",
    );
    d.wait_state("talk", "RUNNING");
    wait_tail(&d, "talk", "hello world\n");
    wait_tail_of(&d, "talk", "stderr", "to stderr\n");

    let out = d.ctl(&["tail", "talk"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "hello world\n"), "{out:?}");
    let out = d.ctl(&["tail", "-n", "6", "talk"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "world\n"), "{out:?}");
    let out = d.ctl(&["tail", "-n", "7", "talk", "stderr"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "stderr\n"), "{out:?}");
    let out = d.ctl(&["tail", "talk", "stdin"]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn tail_f_receives_lines_written_after_it_started() {
    let dir = Dir::new("ctl-tailf");
    let marker = path_str(&dir.join("marker"));
    let d = Daemon::start_in(dir, &trapper("talker", &marker, &["USR1"]));
    d.wait_state("talker", "RUNNING");
    wait_tail(&d, "talker", "ready");

    let mut follower = d
        .dir
        .command(KAHI)
        .arg("ctl")
        .arg("-s")
        .arg(&d.socket)
        .args(["tail", "-f", "talker"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kahi ctl tail -f");
    let stdout = follower.stdout.take().unwrap();
    let (rx, reader) = lines_of(stdout);
    let expect_line = |want: &str| {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line == want => return,
                Ok(_) => continue,
                Err(e) => panic!("tail -f never printed {want:?}: {e}"),
            }
        }
    };
    // What was there before: the follower is registered once this arrives.
    expect_line("ready");
    for _ in 0..3 {
        let out = d.ctl(&["signal", "USR1", "talker"]);
        assert_eq!(out.code, 0, "{out:?}");
        expect_line("trapped USR1");
    }

    follower.kill().expect("kill kahi ctl tail -f");
    follower.wait().unwrap();
    reader.join().unwrap();
    // The daemon forgets the follower and goes on.
    assert_eq!(d.state("talker"), "RUNNING");
}

#[test]
fn clear_empties_the_tail() {
    let d = Daemon::start(
        "ctl-clear",
        "[programs.talk]\ncommand = \"/bin/sh -c 'echo some output; exec sleep 1000'\"\nstartsecs = 0\n",
    );
    d.wait_state("talk", "RUNNING");
    wait_tail(&d, "talk", "some output\n");

    let out = d.ctl(&["clear", "talk"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "talk: cleared\n"), "{out:?}");
    let out = d.ctl(&["tail", "talk"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");

    let out = d.ctl(&["clear", "nosuch"]);
    assert_eq!(out.stdout, "nosuch: ERROR (no such process)\n", "{out:?}");
    assert_eq!(out.code, 1, "{out:?}");
}

#[test]
fn avail_lists_programs_in_use_and_autostart() {
    let d = Daemon::start(
        "ctl-avail",
        "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\npriority = 10\n\n\
         [programs.batch]\ncommand = \"/bin/sleep 1000\"\nautostart = false\n",
    );
    d.wait_state("web", "RUNNING");
    let out = d.ctl(&["avail"]);
    assert_eq!(out.code, 0, "{out:?}");
    let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(rows.contains(&vec!["web", "in", "use", "auto", "10:10"]), "{out:?}");
    assert!(rows.contains(&vec!["batch", "in", "use", "manual", "999:999"]), "{out:?}");
    assert_eq!(rows.len(), 2, "{out:?}");

    let out = d.ctl(&["avail", "--json"]);
    let progs: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let batch = progs.iter().find(|p| p["name"] == "batch").unwrap();
    assert_eq!(
        (batch["in_use"].as_bool(), batch["autostart"].as_bool()),
        (Some(true), Some(false))
    );
}

/// supervisorctl's `avail` shows what `reread` found: a program added to the file is listed as
/// `avail` (not in use) until `update` adds it.
#[test]
fn avail_shows_a_program_found_by_reread_as_avail() {
    let d = Daemon::start(
        "ctl-avail-new",
        "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state("web", "RUNNING");
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        format!("{text}\n[programs.extra]\ncommand = \"/bin/sleep 1000\"\nautostart = false\n"),
    )
    .unwrap();
    let out = d.ctl(&["reread"]);
    assert_eq!(out.stdout, "extra: available\n", "{out:?}");

    let out = d.ctl(&["avail"]);
    let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(rows.contains(&vec!["extra", "avail", "manual", "999:999"]), "{out:?}");

    let out = d.ctl(&["update"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = d.ctl(&["avail"]);
    let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(rows.contains(&vec!["extra", "in", "use", "manual", "999:999"]), "{out:?}");
}

#[test]
fn version_prints_the_version() {
    let d = Daemon::start("ctl-version", "");
    let out = d.ctl(&["version"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, format!("{}\n", env!("CARGO_PKG_VERSION")).as_str())
    );
    let out = run(Command::new(KAHI).arg("version"));
    assert_eq!(out.stdout, format!("kahi {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn raw_protocol_answers_one_json_line_per_request() {
    let d =
        Daemon::start("ctl-raw", "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n");
    let r = d.request(r#"{"cmd":"version"}"#);
    assert_eq!(r, serde_json::json!({"reply": "version", "version": env!("CARGO_PKG_VERSION")}));
    d.wait_state("web", "RUNNING");
    let r = d.request(r#"{"cmd":"status","names":["web"]}"#);
    assert_eq!(r["reply"], "status", "{r}");
    assert_eq!(r["processes"][0]["name"], "web", "{r}");
    let r = d.request(r#"{"cmd":"pid","name":"nosuch"}"#);
    assert_eq!(r, serde_json::json!({"error": "no such process: nosuch", "code": "NOT_FOUND"}));
}

#[test]
fn socket_is_found_from_the_config_and_from_kahi_socket() {
    let d = Daemon::start(
        "ctl-resolve",
        "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n",
    );
    let config = path_str(&d.config);
    let out = ctl_bare(&["-c", &config, "version"], &[]);
    assert_eq!((out.code, out.stdout.trim()), (0, env!("CARGO_PKG_VERSION")), "{out:?}");
    let out = ctl_bare(&["-c", &config, "pid"], &[]);
    assert_eq!(out.stdout.trim(), d.pid().to_string(), "{out:?}");

    let socket = path_str(&d.socket);
    let out = ctl_bare(&["pid"], &[("KAHI_SOCKET", &socket)]);
    assert_eq!((out.code, out.stdout.trim()), (0, d.pid().to_string().as_str()), "{out:?}");

    // The negative twin: the variable is what found it.
    let missing = path_str(&d.dir.join("missing.sock"));
    let out = ctl_bare(&["pid"], &[("KAHI_SOCKET", &missing)]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(out.stderr.contains(&missing), "{out:?}");
}

#[test]
fn a_missing_socket_is_a_clear_error_with_lsb_exit_codes() {
    let dir = Dir::new("ctl-missing");
    let socket = path_str(&dir.join("kahi.sock"));
    let status = ctl_bare(&["-s", &socket, "status"], &[]);
    // LSB's "unknown" for status, "not running" for the others, as supervisorctl's.
    assert_eq!(status.code, 4, "status: the daemon is not running: {status:?}");
    for args in [&["pid"][..], &["start", "web"], &["version"], &["tail", "web"]] {
        let mut all = vec!["-s", socket.as_str()];
        all.extend_from_slice(args);
        let out = ctl_bare(&all, &[]);
        assert_eq!(out.code, 7, "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{out:?}");
        assert!(
            out.stderr.contains(&format!("unable to connect to {socket}"))
                && out.stderr.contains("is the daemon running?"),
            "{args:?}: {out:?}"
        );
    }
    assert!(status.stderr.contains("is the daemon running?"), "{status:?}");
}

#[test]
fn shutdown_stops_everything_and_the_daemon_exits_0() {
    let mut d = Daemon::start(
        "ctl-shutdown",
        "[programs.a]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n\n\
         [programs.b]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state("a", "RUNNING");
    d.wait_state("b", "RUNNING");
    let pids: Vec<i32> = d.status().iter().map(|p| p["pid"].as_i64().unwrap() as i32).collect();

    let out = d.ctl(&["shutdown"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "Shut down\n"), "{out:?}");
    assert_eq!(d.wait_exit(DEADLINE), 0, "log:\n{}", d.log());
    for pid in pids {
        assert!(!alive(pid), "program pid {pid} still runs after shutdown");
    }
    assert!(!d.socket.exists(), "the socket file is removed");
    let out = d.ctl(&["status"]);
    assert_eq!(out.code, 4, "{out:?}");
}

/// An operator stops `kahi ctl tail -f` with ^C. The daemon must let go of that connection
/// then, not whenever the followed program next writes: a quiet program would otherwise keep
/// one fd per finished `tail -f` for ever.
#[test]
fn a_finished_tail_f_releases_its_connection() {
    let d = Daemon::start(
        "ctl-tailf-gone",
        "[programs.quiet]\ncommand = \"/bin/sh -c 'echo hello; exec sleep 1000'\"\nstartsecs = 0\n",
    );
    d.wait_state("quiet", "RUNNING");
    wait_tail(&d, "quiet", "hello");
    // The `tail` connections above may still be closing: the fewest of a few samples.
    let baseline = (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(5));
            fd_count(d.pid())
        })
        .min()
        .unwrap();

    for _ in 0..3 {
        let mut follower = d
            .dir
            .command(KAHI)
            .arg("ctl")
            .arg("-s")
            .arg(&d.socket)
            .args(["tail", "-f", "quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kahi ctl tail -f");
        let mut first = String::new();
        BufReader::new(follower.stdout.take().unwrap()).read_line(&mut first).unwrap();
        assert_eq!(first, "hello\n");
        // The negative twin: the count sees the follower's connection.
        assert!(fd_count(d.pid()) > baseline, "the daemon holds the follower's socket");
        follower.kill().expect("kill kahi ctl tail -f");
        follower.wait().unwrap();
        wait_until(
            "the daemon closes the finished follower's socket",
            Duration::from_secs(5),
            || fd_count(d.pid()) == baseline,
        );
    }
}

/// Issue 14: a control client that followed a log (or waited on a parked start) and went on
/// sending had every byte it sent read into a buffer that grew without bound. Now what the
/// connection cannot answer yet stays in the kernel, and the client's writes block.
#[test]
fn issue_14_a_follower_that_keeps_sending_is_not_buffered_without_bound() {
    use std::io::Write;
    let d = Daemon::start(
        "ctl-sendflood",
        "[programs.quiet]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state("quiet", "RUNNING");
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.write_all(b"{\"cmd\":\"tail\",\"name\":\"quiet\",\"follow\":true}\n").unwrap();
    // Requests the follower sends on: each waits for the follow to end, which it never does.
    let chunk = b"{\"cmd\":\"version\"}\n".repeat(4096);
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let limit = 64 << 20;
    let mut sent = 0;
    while sent < limit {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => panic!("the daemon closed the connection after {sent} bytes: {e}"),
        }
    }
    assert!(sent < 8 << 20, "the daemon took in {sent} bytes of requests it could not answer yet");
    let reply = d.request(r#"{"cmd":"version"}"#);
    assert_eq!(reply["version"], env!("CARGO_PKG_VERSION"), "{reply}");
    assert_eq!(d.state("quiet"), "RUNNING");
}

/// The event stream HTTP sends, over the control socket: one line per event, as HTTP has
/// them, until the client closes.
#[test]
fn events_are_followed_over_the_control_socket_as_over_http() {
    use std::io::Write;
    let d =
        Daemon::start("ctl-events", "[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n");
    d.wait_state("web", "RUNNING");
    let s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    (&s).write_all(b"{\"cmd\":\"events\",\"types\":[\"state\"]}\n").unwrap();
    // The subscription is in place once a request sent after it is answered.
    assert_eq!(d.request(r#"{"cmd":"version"}"#)["reply"], "version");
    assert_eq!(d.ctl(&["stop", "web"]).code, 0);
    let mut lines = BufReader::new(&s).lines();
    let mut next =
        || -> serde_json::Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    let first = next();
    assert_eq!((first["reply"].as_str(), first["event"].as_str()), (Some("event"), Some("state")));
    assert_eq!(
        (&first["data"]["from"], &first["data"]["to"]),
        (&"RUNNING".into(), &"STOPPING".into())
    );
    assert_eq!(first["data"]["name"], "web");
    let second = next();
    assert_eq!(second["data"]["to"], "STOPPED", "{second}");
    // An unknown type is refused, as over HTTP.
    let bad = d.request(r#"{"cmd":"events","types":["bogus"]}"#);
    assert_eq!(bad["code"], "BAD_REQUEST", "{bad}");
}

/// `kahi ctl events` without --types follows no ticks: while it waits, Kahi does not wake up
/// at all (it did every 5 s when no types meant every type).
#[test]
fn a_follower_without_types_leaves_kahi_asleep() {
    let d = Daemon::start(
        "ctl-events-asleep",
        "[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    wait_until("web RUNNING", DEADLINE, || d.status()[0]["state"] == "RUNNING");
    let f = Follower::start(&d, &[]);
    // Once it follows, an event sent now and again reaches it.
    wait_until("the follower hears an event", DEADLINE, || {
        assert_eq!(d.ctl(&["sendcomm", "ping", "x"]).code, 0);
        f.lines
            .recv_timeout(Duration::from_millis(200))
            .is_ok_and(|l| l.contains("REMOTE_COMMUNICATION"))
    });
    crate::events::stays_asleep(&d, "for a follower that took no ticks");
}

/// A `kahi ctl events` running beside the test: its stdout lines as they come. Killed when
/// dropped, if it has not ended by then.
struct Follower {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn start(d: &Daemon, args: &[&str]) -> Follower {
        let mut child = d
            .dir
            .command(KAHI)
            .arg("ctl")
            .arg("-s")
            .arg(&d.socket)
            .arg("events")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (lines, _) = lines_of(out);
        Follower { child, lines }
    }

    /// The next line, skipping those that hold `skip`.
    fn next(&self, skip: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).expect("an event line");
            if !line.contains(skip) {
                return line;
            }
        }
    }

    /// Waits for it to end: its exit status and stderr.
    fn end(mut self) -> (std::process::ExitStatus, String) {
        let mut status = None;
        wait_until("kahi ctl events ends", DEADLINE, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let mut err = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut err).unwrap();
        (status.unwrap(), err)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `kahi ctl events` follows the bus as `docker events` does: a readable line per event (or
/// JSON lines), by supervisord's names and filtered by them, and the HTTP stream shows the
/// same events under the same names, the four short names of before kept. An unknown name is
/// a usage error; when Kahi shuts down, the command ends with 0.
#[test]
fn ctl_events_follows_the_bus_by_supervisords_names_until_kahi_ends() {
    let (mut d, port) = crate::http::start(
        "ctl-events-follow",
        "[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state("web", "RUNNING");
    let bad = d.ctl(&["events", "--types", "state,bogus"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("unknown event type \"bogus\""), "{bad:?}");

    let lines = Follower::start(&d, &["--types", "update,PROCESS_STATE_STOPPED,shutdown"]);
    let json = Follower::start(&d, &["--json"]);
    let (tx, sse) = mpsc::channel();
    let mut stream = crate::http::Events::open(
        port,
        "/api/v1/events/stream?types=KAHI_UPDATE,PROCESS_STATE_STOPPED,SUPERVISOR_STATE_CHANGE",
    );
    std::thread::spawn(move || while tx.send(stream.next()).is_ok() {});
    // Each follows once it has seen an update: until then, update again.
    let (mut seen_lines, mut seen_json, mut seen_sse) = (false, false, false);
    wait_until("every follower sees an update", DEADLINE, || {
        assert_eq!(d.ctl(&["update"]).code, 0);
        let quick = Duration::from_millis(300);
        seen_lines = seen_lines || lines.lines.recv_timeout(quick).is_ok();
        seen_json = seen_json || json.lines.recv_timeout(quick).is_ok();
        seen_sse = seen_sse || sse.recv_timeout(quick).is_ok();
        seen_lines && seen_json && seen_sse
    });

    assert_eq!(d.ctl(&["stop", "web"]).code, 0);
    let line = lines.next("KAHI_UPDATE");
    let (ts, rest) = line.split_once(' ').unwrap();
    assert!(ts.len() == 24 && ts.ends_with('Z'), "an RFC 3339 time first: {line}");
    assert!(rest.starts_with("PROCESS_STATE_STOPPED web (exitstatus=143"), "{line}");
    assert!(rest.contains("from=STOPPING") && !rest.contains("null"), "{line}");
    let event = |line: String| -> serde_json::Value { serde_json::from_str(&line).unwrap() };
    let stopping = event(json.next("KAHI_UPDATE"));
    assert_eq!(
        (&stopping["eventname"], &stopping["name"]),
        (&"PROCESS_STATE_STOPPING".into(), &"web".into())
    );
    let stopped = event(json.next("KAHI_UPDATE"));
    assert_eq!(
        (&stopped["eventname"], &stopped["to"]),
        (&"PROCESS_STATE_STOPPED".into(), &"STOPPED".into())
    );
    // Over HTTP: a state change keeps its name `state`, and says supervisord's.
    let (name, _, data) = std::iter::from_fn(|| sse.recv_timeout(DEADLINE).ok())
        .find(|(n, _, _)| n != "update")
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!((name.as_str(), &data["eventname"]), ("state", &"PROCESS_STATE_STOPPED".into()));

    assert_eq!(d.ctl(&["shutdown"]).code, 0);
    assert!(lines.next("KAHI_UPDATE").ends_with(" SUPERVISOR_STATE_CHANGE_STOPPING"));
    assert_eq!(event(json.next("KAHI_UPDATE"))["eventname"], "SUPERVISOR_STATE_CHANGE_STOPPING");
    let (name, _, data) = sse.recv_timeout(DEADLINE).unwrap();
    assert_eq!(name, "shutdown");
    assert_eq!(event(data)["eventname"], "SUPERVISOR_STATE_CHANGE_STOPPING");
    assert_eq!(d.wait_exit(DEADLINE), 0);
    for f in [lines, json] {
        let (status, err) = f.end();
        assert_eq!(status.code(), Some(0), "kahi ctl events ends with Kahi: {err}");
        assert!(err.is_empty(), "{err}");
    }
}

/// `kahi ctl events | head -1`: once its reader has gone, the next event ends it, silently,
/// as SIGPIPE ends `cat`.
#[test]
fn ctl_events_ends_quietly_when_its_reader_goes() {
    use std::os::unix::process::ExitStatusExt;
    let d = Daemon::start("ctl-events-pipe", "[programs.web]\ncommand = \"sleep 1000\"\n");
    let mut f = Follower::start(&d, &["--types", "KAHI_UPDATE"]);
    wait_until("it follows", DEADLINE, || {
        assert_eq!(d.ctl(&["update"]).code, 0);
        f.lines.recv_timeout(Duration::from_millis(300)).is_ok()
    });
    // Its reader goes: the thread ends at the next line it is sent, and closes the pipe.
    f.lines = mpsc::channel().1;
    wait_until("it ends", DEADLINE, || {
        assert_eq!(d.ctl(&["update"]).code, 0);
        f.child.try_wait().unwrap().is_some()
    });
    let (status, err) = f.end();
    assert_eq!(status.signal(), Some(13), "{status:?}: {err}");
    assert!(err.is_empty(), "{err}");
}
