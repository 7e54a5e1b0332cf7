//! Container mode: every program's lines on Kahi's stdout, as text or JSON lines; a reader
//! that falls behind slows the programs down instead of losing lines, and never the loop.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::*;

/// Stops the daemon (SIGTERM, then SIGKILL) if a test ends early, by its pid only.
struct Guard(i32);

impl Drop for Guard {
    fn drop(&mut self) {
        if alive(self.0) {
            unsafe_kill(self.0, 15);
            let end = Instant::now() + Duration::from_secs(15);
            while alive(self.0) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            if alive(self.0) {
                unsafe_kill(self.0, 9);
            }
        }
    }
}

/// Starts `kahi daemon` in container mode with its stdout on a pipe the test reads (or not).
fn start(dir: &Dir, body: &str) -> (Child, std::path::PathBuf) {
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    start_with(dir, &format!("[logging]\nconsole = true\n{body}"), log.into())
}

/// Starts `kahi daemon` with `body` as its config, stdout on a pipe and stderr to `stderr`.
fn start_with(dir: &Dir, body: &str, stderr: Stdio) -> (Child, std::path::PathBuf) {
    let socket = dir.join("kahi.sock");
    let config =
        dir.write("kahi.toml", &format!("[server]\nsocket = \"{}\"\n\n{body}", socket.display()));
    let child = dir
        .command(KAHI)
        .args(["daemon", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let s = socket.clone();
    wait_until("the control socket answers", DEADLINE, || {
        std::os::unix::net::UnixStream::connect(&s).is_ok()
    });
    (child, socket)
}

fn ctl(socket: &std::path::Path, args: &[&str]) -> Output {
    run(Command::new(KAHI).arg("ctl").arg("-s").arg(socket).args(args))
}

fn stop(mut child: Child) -> String {
    unsafe_kill(child.id() as i32, 15);
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let _ = child.wait();
    out
}

#[test]
fn json_lines_parse_and_carry_program_stream_and_time() {
    let dir = Dir::new("console-json");
    let (child, _) = start(
        &dir,
        "format = \"json\"\n\n[programs.say]\n\
         command = [\"/bin/sh\", \"-c\", \"echo 'hello \\\"world\\\"'; echo oops >&2; printf 'no newline'\"]\n\
         autorestart = false\nstartsecs = 0\n",
    );
    let _guard = Guard(child.id() as i32);
    let log = dir.join("daemon.log");
    wait_until("the program exited", DEADLINE, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("exited: say"))
    });
    let out = stop(child);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let find = |text: &str| {
        lines.iter().find(|v| v["line"] == text).unwrap_or_else(|| panic!("{text} in {out}"))
    };
    let hello = find("hello \"world\"");
    assert_eq!(hello["program"], "say");
    assert_eq!(hello["process"], "say");
    assert_eq!(hello["stream"], "stdout");
    let ts = hello["ts"].as_str().unwrap();
    assert!(ts.len() == 24 && ts.ends_with('Z') && &ts[10..11] == "T", "RFC 3339 with ms: {ts}");
    assert_eq!(find("oops")["stream"], "stderr");
    find("no newline");
    // The daemon's own log is JSON too.
    for l in std::fs::read_to_string(&log).unwrap().lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("daemon log {l:?}: {e}"));
        assert_eq!(v["program"], "kahi");
    }
    // And jq reads the stream line by line, where it is installed.
    if Command::new("jq").arg("--version").output().is_ok() {
        let mut jq = Command::new("jq")
            .args(["-r", ".line"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(jq.stdin.as_mut().unwrap(), out.as_bytes()).unwrap();
        let done = jq.wait_with_output().unwrap();
        assert!(done.status.success());
        assert!(String::from_utf8_lossy(&done.stdout).contains("hello \"world\""));
    } else {
        skip("jq is not installed: the stream was not read with it");
    }
}

#[test]
fn text_lines_name_the_process() {
    let dir = Dir::new("console-text");
    let (child, _) = start(
        &dir,
        "\n[programs.web]\ncommand = [\"/bin/sh\", \"-c\", \"echo a; echo b\"]\nnumprocs = 2\n\
         process_name = \"web_%(process_num)d\"\nautorestart = false\nstartsecs = 0\n",
    );
    let _guard = Guard(child.id() as i32);
    let log = dir.join("daemon.log");
    wait_until("both exited", DEADLINE, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.matches("exited: web:").count() == 2)
    });
    let out = stop(child);
    for p in ["web:web_0", "web:web_1"] {
        // Processes interleave; each one's lines keep their order.
        let own: Vec<&str> = out.lines().filter(|l| l.starts_with(&format!("{p} | "))).collect();
        assert_eq!(own, [format!("{p} | a"), format!("{p} | b")], "{out}");
    }
}

#[test]
fn a_reader_that_falls_behind_loses_nothing_and_delays_no_restart() {
    let dir = Dir::new("console-backpressure");
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    falls_behind(dir, "[logging]\nconsole = true\n", "", "flood | ", log.into());
}

#[test]
fn a_program_logging_to_dev_stdout_is_held_back_by_a_slow_reader_too() {
    let dir = Dir::new("devstdout-backpressure");
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    falls_behind(dir, "", "stdout_logfile = \"/dev/stdout\"\n", "", log.into());
}

/// A flood of numbered lines to Kahi's stdout while nobody reads it: Kahi stops reading the
/// flood rather than buffer it all, still restarts a killed program at once, and once the
/// reader comes every line arrives (after `prefix`), in order, once.
fn falls_behind(dir: Dir, top: &str, flood_keys: &str, prefix: &str, stderr: Stdio) {
    let n = 1_000_000;
    let (mut child, socket) = start_with(
        &dir,
        &format!(
            "{top}\n[programs.flood]\n\
             command = [\"/bin/sh\", \"-c\", \"seq 1 {n}; echo end-of-flood; exec sleep 1000\"]\n\
             startsecs = 0\n{flood_keys}\n\
             [programs.victim]\ncommand = \"sleep 1000\"\nstartsecs = 0\nautorestart = true\n\
             restart_min_interval = 0\n"
        ),
        stderr,
    );
    let _guard = Guard(child.id() as i32);
    // Nobody reads stdout yet: the pipe (64 KiB) and Kahi's buffer fill, then Kahi stops
    // reading the flood. The loop must still restart a killed program at once.
    let pid_of = |name: &str| -> i64 {
        let out = ctl(&socket, &["status", "--json", name]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v[0]["pid"].as_i64().unwrap_or(0)
    };
    wait_until("victim running", DEADLINE, || pid_of("victim") > 0);
    std::thread::sleep(Duration::from_millis(300)); // let the flood fill every buffer
    let victim = pid_of("victim");
    let killed = Instant::now();
    unsafe_kill(victim as i32, 9);
    wait_until("the victim was replaced", Duration::from_secs(5), || {
        let p = pid_of("victim");
        p > 0 && p != victim
    });
    let delay = killed.elapsed();
    println!("restart under a stalled console: {delay:?}");
    assert!(delay < Duration::from_secs(1), "restart took {delay:?}");
    let flood_pid = pid_of("flood");
    // Back-pressure, not buffering without bound: Kahi stopped reading the flood, so the
    // end of it has not even reached the ring buffer.
    let tail = ctl(&socket, &["tail", "-n", "200", "flood"]);
    assert!(
        !tail.stdout.contains("end-of-flood"),
        "the whole flood was read while stdout was stalled"
    );

    // Now read: every line arrives, in order, once.
    let stdout = child.stdout.take().unwrap();
    let prefix = prefix.to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut next = 1u64;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some(rest) = line.strip_prefix(prefix.as_str()) else { continue };
            if rest == "end-of-flood" {
                let _ = tx.send(Ok(next));
                return;
            }
            match rest.parse::<u64>() {
                Ok(k) if k == next => next += 1,
                _ => {
                    let _ = tx.send(Err(format!("expected {next}, got {rest:?}")));
                    return;
                }
            }
        }
        let _ = tx.send(Err(format!("stream ended at {next}")));
    });
    let got = rx.recv_timeout(Duration::from_secs(60)).expect("the flood arrived");
    assert_eq!(got, Ok(n + 1), "every line once, in order");
    unsafe_kill(child.id() as i32, 15);
    let _ = child.wait();
    if alive(flood_pid as i32) {
        unsafe_kill(flood_pid as i32, 9);
    }
}

#[test]
fn secrets_are_masked_in_the_file_the_ring_buffer_and_the_json_stream() {
    let dir = Dir::new("console-mask");
    let (child, socket) = start(
        &dir,
        // A long quiet time: the secret split across two writes must be joined, not flushed.
        "format = \"json\"\npartial_line_secs = 60\n\n[programs.leaky]\n\
         command = [\"/bin/sh\", \"-c\", \"echo \\\"password is $DB_PASSWORD\\\"; echo \\\"key $PLAIN_ONE\\\"; \
         printf 'split: s3cr'; sleep 0.2; echo 'et-value done'; echo visible; exec sleep 1000\"]\n\
         environment = { DB_PASSWORD = \"hunter2-db\", PLAIN_ONE = \"my-named-secret\", OTHER = \"s3cret-value\" }\n\
         mask_env = [\"PLAIN_ONE\", \"OTHER\"]\n\
         stdout_logfile = \"leaky.log\"\nstartsecs = 0\n",
    );
    let _guard = Guard(child.id() as i32);
    let file = dir.join("leaky.log");
    wait_until("the output reached the file", DEADLINE, || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.contains("visible"))
    });
    let logged = std::fs::read_to_string(&file).unwrap();
    assert_eq!(logged, "password is ****\nkey ****\nsplit: **** done\nvisible\n");
    let tail = ctl(&socket, &["tail", "leaky"]);
    assert_eq!(tail.stdout, logged, "the ring buffer is masked too");
    let out = stop(child);
    for secret in ["hunter2-db", "my-named-secret", "s3cret-value", "s3cr"] {
        assert!(!out.contains(secret), "{secret} on the console: {out}");
        assert!(!logged.contains(secret));
    }
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|v| v["line"] == "password is ****"), "{out}");
    // The negative twin: the same value in a variable that is not secret is shown.
    assert!(lines.iter().any(|v| v["line"] == "visible"));
}

/// Reads the daemon's stdout on a thread, line by line, into a channel.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Receives console lines until one satisfies `done`; returns them all.
fn lines_until(rx: &mpsc::Receiver<String>, done: impl Fn(&str) -> bool) -> Vec<String> {
    let end = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while let Ok(line) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        let stop = done(&line);
        got.push(line);
        if stop {
            return got;
        }
    }
    panic!("no awaited line within {DEADLINE:?}; got {got:?}");
}

#[test]
fn long_lines_are_cut_into_marked_pieces_and_a_quiet_prompt_goes_out() {
    let dir = Dir::new("console-lines");
    let (mut child, socket) = start(
        &dir,
        "format = \"json\"\nmax_line_bytes = 10\npartial_line_secs = 0.3\n\n[programs.talk]\n\
         command = [\"/bin/sh\", \"-c\", \"echo 0123456789abcdefghijXY; echo short; printf 'prompt> '; exec sleep 1000\"]\n\
         stdout_logfile = \"talk.log\"\nstartsecs = 0\n",
    );
    let _guard = Guard(child.id() as i32);
    let rx = stdout_lines(&mut child);
    let got = lines_until(&rx, |l| l.contains("prompt"));
    let pieces: Vec<(String, bool)> = got
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["line"].as_str().unwrap().to_string(), v["continued"] == true)
        })
        .collect();
    let want = [
        ("0123456789", true),
        ("abcdefghij", true),
        ("XY", false),
        ("short", false),
        ("prompt> ", true),
    ];
    let want: Vec<(String, bool)> = want.iter().map(|(l, c)| (l.to_string(), *c)).collect();
    assert_eq!(pieces, want);
    // The file keeps the bytes as they came, the prompt included, without marks.
    assert_eq!(
        std::fs::read_to_string(dir.join("talk.log")).unwrap(),
        "0123456789abcdefghijXY\nshort\nprompt> "
    );
    let _ = ctl(&socket, &["stop", "talk"]);
    drop(rx);
    stop(child);
}

#[test]
fn strip_ansi_cleans_the_file_the_ring_buffer_and_the_console() {
    let dir = Dir::new("console-ansi");
    let (mut child, socket) = start(
        &dir,
        "\n[programs.colour]\n\
         command = [\"/bin/sh\", \"-c\", \"printf '\\\\033[1;31mred\\\\033[0m plain\\\\n'; printf '\\\\033]0;title\\\\007done\\\\n'; exec sleep 1000\"]\n\
         strip_ansi = true\nstdout_logfile = \"colour.log\"\nstartsecs = 0\n\n\
         [programs.raw]\n\
         command = [\"/bin/sh\", \"-c\", \"printf '\\\\033[1;31mred\\\\033[0m\\\\n'; exec sleep 1000\"]\n\
         stdout_logfile = \"raw.log\"\nstartsecs = 0\n",
    );
    let _guard = Guard(child.id() as i32);
    let rx = stdout_lines(&mut child);
    let mut got = lines_until(&rx, |l| l == "colour | done");
    let file = dir.join("colour.log");
    wait_until("the file has both lines", DEADLINE, || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.ends_with("done\n"))
    });
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "red plain\ndone\n");
    assert_eq!(ctl(&socket, &["tail", "colour"]).stdout, "red plain\ndone\n");
    assert!(got.contains(&"colour | red plain".to_string()), "{got:?}");
    // The negative twin: without strip_ansi the bytes are kept as they came.
    let raw = dir.join("raw.log");
    wait_until("the raw file has its line", DEADLINE, || {
        std::fs::read_to_string(&raw).is_ok_and(|t| t.ends_with('\n'))
    });
    assert_eq!(std::fs::read_to_string(&raw).unwrap(), "\x1b[1;31mred\x1b[0m\n");
    if !got.iter().any(|l| l.starts_with("raw | ")) {
        got = lines_until(&rx, |l| l.starts_with("raw | "));
    }
    let raw_line = got.iter().find(|l| l.starts_with("raw | ")).unwrap();
    assert_eq!(raw_line, "raw | \x1b[1;31mred\x1b[0m");
    let _ = ctl(&socket, &["stop", "all"]);
    drop(rx);
    stop(child);
}

#[test]
fn dev_stdout_and_dev_stderr_carry_the_bytes_as_written() {
    let dir = Dir::new("devstdout-raw");
    // Both on pipes, as under a container runtime.
    let (mut child, socket) = start_with(
        &dir,
        "[programs.raw]\n\
         command = [\"/bin/sh\", \"-c\", \"printf 'one\\\\ntwo\\\\n\\\\001\\\\377 bytes\\\\n'; echo to-stderr >&2; printf 'no newline at the end'\"]\n\
         startsecs = 0\nautorestart = false\n\
         stdout_logfile = \"/dev/stdout\"\nstderr_logfile = \"/dev/stderr\"\n",
        Stdio::piped(),
    );
    let _guard = Guard(child.id() as i32);
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    wait_until("raw exited", DEADLINE, || {
        let out = ctl(&socket, &["status", "--json", "raw"]);
        out.stdout.contains("EXITED")
    });
    unsafe_kill(child.id() as i32, 15);
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    // Nothing else goes to stdout without console = true: the bytes are exactly the program's,
    // binary ones and the unterminated last line included.
    assert_eq!(out, b"one\ntwo\n\x01\xff bytes\nno newline at the end");
    let err = err.join().unwrap();
    assert!(err.lines().any(|l| l == "to-stderr"), "stderr was:\n{err}");
    // The daemon's own log shares stderr, line by line.
    assert!(err.lines().any(|l| l.contains("raw") && l.contains("exited")), "stderr was:\n{err}");
}

/// Regression (issue 12): with a minimal config, programs' output reached neither Kahi's stdout
/// nor a file, so `docker logs` showed nothing. `console = "auto"`, the default, copies every
/// line to stdout in the foreground; with --daemonize (whose stdout is --logfile here) it does
/// not, and `console = true` still forces it.
#[test]
fn console_auto_is_on_in_the_foreground_and_off_when_daemonized() {
    let body = "[programs.hello]\ncommand = [\"/bin/sh\", \"-c\", \"echo hello-from-a-program; exec sleep 1000\"]\nstartsecs = 0\n";
    let dir = Dir::new("console-auto");
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let (mut child, socket) = start_with(&dir, body, log.into());
    let _guard = Guard(child.id() as i32);
    let rx = stdout_lines(&mut child);
    let lines = lines_until(&rx, |l| l.contains("hello-from-a-program"));
    assert_eq!(lines.last().map(String::as_str), Some("hello | hello-from-a-program"));
    assert_eq!(ctl(&socket, &["shutdown"]).code, 0);
    let _ = child.wait();

    for (logging, copied) in [("", false), ("[logging]\nconsole = true\n", true)] {
        let dir = Dir::new("console-auto-detached");
        let socket = dir.join("kahi.sock");
        let config = dir.write(
            "kahi.toml",
            &format!("[server]\nsocket = \"{}\"\n{logging}\n{body}", socket.display()),
        );
        let (logfile, pidfile) = (dir.join("kahi.log"), dir.join("kahi.pid"));
        let out = run(dir
            .command(KAHI)
            .args(["daemon", "--daemonize", "-c"])
            .arg(&config)
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--logfile")
            .arg(&logfile));
        assert_eq!(out.code, 0, "{out:?}");
        let pid: i32 = dir.read("kahi.pid").trim().parse().expect("a pid in the pidfile");
        let _guard = Guard(pid);
        wait_until("the program's line is in its ring buffer", DEADLINE, || {
            ctl(&socket, &["tail", "hello"]).stdout.contains("hello-from-a-program")
        });
        assert_eq!(ctl(&socket, &["shutdown"]).code, 0);
        wait_until("the daemon is gone", DEADLINE, || !alive(pid));
        let text = dir.read("kahi.log");
        assert_eq!(text.contains("hello | hello-from-a-program"), copied, "{logging:?}: {text}");
    }
}

/// Regression (issue 13): with the console blocked, the pipes of processes that had exited were
/// never read to their end, so every restart leaked two fds until starts failed with EMFILE.
/// They are read now: what they held goes to the console's buffer, up to EXITED_ROOM (16 MiB:
/// a crash's last words reach the reader), then only to the ring, and the console says what it
/// skipped once it drains.
#[test]
fn a_blocked_console_does_not_leak_the_pipes_of_processes_that_exit() {
    let dir = Dir::new("console-blocked-fds");
    let (mut child, socket) = start(
        &dir,
        "[programs.flood]\ncommand = \"yes flood\"\nstartsecs = 0\n\n\
         [programs.crash]\ncommand = [\"/bin/sh\", \"-c\", \
         \"head -c 60000 /dev/zero | tr '\\\\0' x; echo; echo crash-says-goodbye; exit 1\"]\n\
         startsecs = 0\nautorestart = true\nrestart_min_interval = 0\nbackoff_reset = 0\n",
    );
    let _guard = Guard(child.id() as i32);
    let restarts = || -> u64 {
        let out = ctl(&socket, &["status", "--json", "crash"]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
        v[0]["restarts"].as_u64().unwrap_or(0)
    };
    // Nobody reads stdout: the flood fills it and the console stops reading programs.
    wait_until("the crash loop is under way", DEADLINE, || restarts() > 20);
    // The fewest over a few samples: at any one, the crash loop may hold a dead instance's
    // pipes and a new one's for a moment.
    let fds = fewest_fds(child.id() as i32);
    let from = restarts();
    wait_until("300 more restarts", Duration::from_secs(60), || restarts() > from + 300);
    let after = fewest_fds(child.id() as i32);
    println!("fds with a blocked console: {fds} -> {after} over 300 restarts");
    assert!(after <= fds + 4, "fds grew from {fds} to {after}");
    let tail = ctl(&socket, &["tail", "crash"]);
    assert!(tail.stdout.contains("crash-says-goodbye"), "the ring has the output: {tail:?}");
    // Reading stdout again: the last words held for it arrive, and the console says what it
    // skipped past its room.
    ctl(&socket, &["stop", "crash", "flood"]);
    let rx = stdout_lines(&mut child);
    let end = Instant::now() + DEADLINE;
    let mut goodbyes = 0;
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        goodbyes += usize::from(line == "crash | crash-says-goodbye");
        if Instant::now() > end {
            break;
        }
    }
    println!("{goodbyes} goodbyes reached stdout");
    assert!(goodbyes > 200, "{goodbyes} of the crashes' last words reached stdout");
    wait_until("the skipped output is reported", DEADLINE, || {
        dir.read("daemon.log").contains("were not copied to stdout while it was blocked")
    });
}

/// A reader of Kahi's stdout that stops reading does not keep Kahi from exiting: SIGTERM stops
/// the programs, the last lines wait for the reader at most LAST_FLUSH (2 s) of its taking
/// nothing, and Kahi exits with its status, saying what it could not write.
#[test]
fn a_stalled_stdout_does_not_hold_the_exit() {
    let dir = Dir::new("console-stalled-exit");
    let (mut child, socket) =
        start(&dir, "[programs.flood]\ncommand = \"yes flood\"\nstartsecs = 0\n");
    let _guard = Guard(child.id() as i32);
    wait_until("flood is running", DEADLINE, || ctl(&socket, &["status", "flood"]).code == 0);
    // Its stdout is a pipe this test never reads (held open, so writes block, not fail).
    let _held = child.stdout.take();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    unsafe_kill(child.id() as i32, 15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "kahi did not exit within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("exited {:?} after SIGTERM with a stalled stdout", t0.elapsed());
    assert_eq!(status.code(), Some(0), "{}", dir.read("daemon.log"));
    assert!(
        dir.read("daemon.log").contains("were not written to stdout"),
        "{}",
        dir.read("daemon.log")
    );
}
