//! Log files: rotation loses, duplicates and reorders nothing; the last partial line is kept;
//! SIGUSR2 reopens; `clear` empties; bytes are written as they came; a full disk drops whole
//! lines, says so once, and counts them.

use std::path::Path;

use crate::util::*;

/// Every line of `base` and its backups, oldest file first.
fn lines_across_rotations(base: &Path, backups: u32) -> (Vec<String>, usize) {
    let mut files: Vec<std::path::PathBuf> = (1..=backups)
        .rev()
        .map(|n| std::path::PathBuf::from(format!("{}.{n}", base.display())))
        .filter(|p| p.exists())
        .collect();
    files.push(base.to_path_buf());
    let count = files.len();
    let mut lines = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends in the middle of a line",
            f.display()
        );
        lines.extend(text.lines().map(str::to_string));
    }
    (lines, count)
}

#[test]
fn a_flood_across_ten_rotations_keeps_every_line_once_in_order() {
    let n = 20_000;
    let d = Daemon::start(
        "log-rotation",
        &format!(
            "[programs.flood]\n\
             command = [\"/bin/sh\", \"-c\", \"i=0; while [ $i -lt {n} ]; do echo \\\"line $i of the flood\\\"; i=$((i+1)); done; echo done\"]\n\
             stdout_logfile = \"flood.log\"\n\
             stdout_logfile_maxbytes = \"40KB\"\n\
             stdout_logfile_backups = 30\n\
             autorestart = false\n\
             startsecs = 0\n"
        ),
    );
    d.wait_state("flood", "EXITED");
    let base = d.dir.join("flood.log");
    wait_until("the last line is in the log", DEADLINE, || {
        std::fs::read_to_string(&base).is_ok_and(|t| t.ends_with("done\n"))
    });
    let (lines, files) = lines_across_rotations(&base, 30);
    assert!(files >= 11, "only {files} files: fewer than ten rotations");
    let want: Vec<String> =
        (0..n).map(|i| format!("line {i} of the flood")).chain(["done".to_string()]).collect();
    assert_eq!(lines.len(), want.len(), "line count across {files} files");
    for (i, (got, want)) in lines.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "line {i}");
    }
    for n in 1..=30 {
        let p = std::path::PathBuf::from(format!("{}.{n}", base.display()));
        if let Ok(meta) = std::fs::metadata(&p) {
            assert!(meta.len() <= 40 * 1024, "{} is {} bytes", p.display(), meta.len());
        }
    }
}

#[test]
fn the_last_line_without_a_newline_is_logged() {
    let d = Daemon::start(
        "log-partial",
        "[programs.p]\ncommand = [\"/bin/sh\", \"-c\", \"echo first; printf 'no newline at the end'\"]\n\
         stdout_logfile = \"p.log\"\nautorestart = false\nstartsecs = 0\n",
    );
    d.wait_state("p", "EXITED");
    wait_until("the partial line reached the file", DEADLINE, || {
        d.dir.read("p.log") == "first\nno newline at the end"
    });
}

#[test]
fn binary_output_is_written_untouched() {
    let d = Daemon::start(
        "log-binary",
        "[programs.b]\ncommand = [\"/bin/sh\", \"-c\", \"printf '\\\\000\\\\377\\\\033[31mx\\\\r\\\\n'\"]\n\
         stdout_logfile = \"b.log\"\nautorestart = false\nstartsecs = 0\n",
    );
    d.wait_state("b", "EXITED");
    wait_until("the bytes reached the file", DEADLINE, || {
        std::fs::read(d.dir.join("b.log")).is_ok_and(|b| b.len() == 10)
    });
    assert_eq!(std::fs::read(d.dir.join("b.log")).unwrap(), b"\x00\xff\x1b[31mx\r\n");
}

#[test]
fn sigusr2_reopens_files_moved_away_and_clear_empties_them() {
    let d = Daemon::start(
        "log-reopen",
        "[programs.t]\ncommand = [\"/bin/sh\", \"-c\", \"while :; do echo tick; sleep 0.05; done\"]\n\
         stdout_logfile = \"t.log\"\nstderr_logfile = \"AUTO\"\n\n[logging]\nchildlogdir = \".\"\n",
    );
    d.wait_state("t", "RUNNING");
    assert!(d.dir.join("t-stderr.log").exists(), "AUTO stderr file in childlogdir");
    wait_until("ticks in the log", DEADLINE, || d.dir.read("t.log").contains("tick"));
    std::fs::rename(d.dir.join("t.log"), d.dir.join("t.log.old")).unwrap();
    // Negative twin: without SIGUSR2 the daemon keeps writing the moved file.
    let before = d.dir.read("t.log.old").len();
    wait_until("the moved file still grows", DEADLINE, || d.dir.read("t.log.old").len() > before);
    assert!(!d.dir.join("t.log").exists());
    d.signal(12); // SIGUSR2
    wait_until("a new t.log receives ticks", DEADLINE, || d.dir.read("t.log").contains("tick"));
    d.wait_log("reopened 2 log files");

    let out = d.ctl(&["clear", "t"]);
    assert_eq!(out.stdout, "t: cleared\n", "{out:?}");
    let len = std::fs::metadata(d.dir.join("t.log")).unwrap().len();
    assert!(len < 40, "the file was emptied (now {len} bytes)");
}

/// Regression: HTTP and the control socket had each their dispatcher, and HTTP's answered a
/// clear with "not available over HTTP" (with no route to it at all); now both transports
/// share one, and a clear over HTTP empties the ring buffers and the log files alike.
#[test]
fn clear_over_http_empties_the_log_files_as_the_control_socket_does() {
    let (d, port) = crate::http::start(
        "log-clear-http",
        "[programs.t]\ncommand = [\"/bin/sh\", \"-c\", \"echo hello; echo oops >&2; exec sleep 1000\"]\n\
         startsecs = 0\nstdout_logfile = \"t.log\"\nstderr_logfile = \"t.err\"\n\n\
         [programs.u]\ncommand = [\"/bin/sh\", \"-c\", \"echo there; exec sleep 1000\"]\n\
         startsecs = 0\nstdout_logfile = \"u.log\"\n\n[groups.g]\nprograms = [\"u\"]\n",
    );
    wait_until("both wrote", DEADLINE, || {
        d.dir.read("t.log") == "hello\n"
            && d.dir.read("t.err") == "oops\n"
            && d.dir.read("u.log") == "there\n"
    });
    let (code, _, body) = crate::http::request(port, "POST", "/api/v1/processes/t/clear");
    assert_eq!((code, body["outcome"].as_str()), (200, Some("cleared")), "{body}");
    assert_eq!((d.dir.read("t.log"), d.dir.read("t.err")), (String::new(), String::new()));
    let (_, _, log) = crate::http::request(port, "GET", "/api/v1/processes/t/log/stdout");
    assert_eq!(log["data"], "", "{log}");
    // A group, and the negative twin: what was not asked is left as it was.
    assert_eq!(d.dir.read("u.log"), "there\n");
    let (code, _, body) = crate::http::request(port, "POST", "/api/v1/groups/g/clear");
    assert_eq!((code, body[0]["outcome"].as_str()), (200, Some("cleared")), "{body}");
    assert_eq!(d.dir.read("u.log"), "");
    assert_eq!(crate::http::request(port, "POST", "/api/v1/processes/nope/clear").0, 404);
    // The requests only HTTP had are the control socket's too.
    let groups = d.request(r#"{"cmd":"groups"}"#);
    assert_eq!(groups["groups"][0]["processes"], serde_json::json!(["g:u"]), "{groups}");
    let ready = d.request(r#"{"cmd":"ready","names":["t"]}"#);
    assert_eq!(ready["ready"], true, "{ready}");
}

#[test]
fn a_logfile_in_a_missing_directory_is_a_config_error() {
    let dir = Dir::new("log-missing-dir");
    let config = dir.write(
        "kahi.toml",
        "[programs.p]\ncommand = \"sleep 1\"\nstdout_logfile = \"nowhere/p.log\"\n",
    );
    let out = run(std::process::Command::new(KAHI).args(["daemon", "--check", "-c"]).arg(&config));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("kahi.toml:3:18: programs.p.stdout_logfile: directory")
            && out.stderr.contains("nowhere does not exist"),
        "{}",
        out.stderr
    );
}

/// Receives datagrams until `n` arrived or the deadline passed.
fn receive(sock: &std::os::unix::net::UnixDatagram, n: usize) -> Vec<String> {
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 70_000];
    while got.len() < n {
        let len = sock.recv(&mut buf).unwrap_or_else(|e| panic!("after {got:?}: {e}"));
        got.push(String::from_utf8_lossy(&buf[..len]).into_owned());
    }
    got
}

/// Splits an RFC 5424 message into its six header fields and the message.
fn rfc5424(m: &str) -> (Vec<&str>, &str) {
    let mut parts = m.splitn(8, ' ');
    let header: Vec<&str> = parts.by_ref().take(7).collect();
    (header, parts.next().unwrap_or(""))
}

#[test]
fn lines_reach_syslog_as_rfc_5424_messages() {
    let dir = Dir::new("log-syslog");
    let socket = dir.join("log.sock");
    let receiver = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    let d = Daemon::start_in(
        dir,
        &format!(
            "[logging]\nsyslog = \"{}\"\nsyslog_facility = \"local3\"\n\n\
             [programs.talk]\n\
             command = [\"/bin/sh\", \"-c\", \"echo to-out; echo to-err >&2; exec sleep 1000\"]\n\
             stdout_syslog = true\nstderr_syslog = true\nstartsecs = 0\n\n\
             [programs.quiet]\n\
             command = [\"/bin/sh\", \"-c\", \"echo not-for-syslog; exec sleep 1000\"]\n\
             startsecs = 0\n",
            socket.display()
        ),
    );
    let mut got = receive(&receiver, 2);
    got.sort_by_key(|m| rfc5424(m).0[5].to_string());
    let pid = d.process("talk")["pid"].as_i64().unwrap().to_string();
    let host = run(&mut std::process::Command::new("hostname")).stdout.trim().to_string();
    for (m, stream, text) in [(&got[0], "stderr", "to-err"), (&got[1], "stdout", "to-out")] {
        let (h, msg) = rfc5424(m);
        // local3 (19) * 8 + info (6) = 158.
        assert_eq!(h[0], "<158>1", "{m}");
        assert!(h[1].len() == 24 && h[1].ends_with('Z'), "timestamp in {m}");
        assert_eq!(h[2], host, "{m}");
        assert_eq!(&h[3..7], ["talk", pid.as_str(), stream, "-"], "{m}");
        assert_eq!(msg, text);
    }
    // The negative twin: a program without stdout_syslog sends nothing.
    d.wait_state("quiet", "RUNNING");
    wait_until("quiet's line is in its ring buffer", DEADLINE, || {
        d.ctl(&["tail", "quiet"]).stdout.contains("not-for-syslog")
    });
    receiver.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    assert!(receiver.recv(&mut buf).is_err(), "a message for a program without syslog");
}

#[test]
fn lines_reach_a_udp_collector() {
    let collector = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = collector.local_addr().unwrap();
    let _d = Daemon::start(
        "log-syslog-udp",
        &format!(
            "[logging]\nsyslog = \"udp://{addr}\"\n\n\
             [programs.talk]\n\
             command = [\"/bin/sh\", \"-c\", \"echo over-udp; exec sleep 1000\"]\n\
             stdout_syslog = true\nstartsecs = 0\n"
        ),
    );
    collector.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 2048];
    let n = collector.recv(&mut buf).expect("a datagram");
    let m = String::from_utf8_lossy(&buf[..n]);
    let (h, msg) = rfc5424(&m);
    assert_eq!(h[0], "<30>1", "daemon (3) * 8 + info (6): {m}");
    assert_eq!((h[3], h[5], msg), ("talk", "stdout", "over-udp"));
}

#[test]
fn a_flood_to_files_and_an_absent_syslog_delays_no_restart() {
    let d = Daemon::start(
        "log-flood-restart",
        "[logging]\nsyslog = \"/nonexistent/kahi-test/log\"\n\n\
         [programs.flood]\n\
         command = [\"/bin/sh\", \"-c\", \"exec yes 'a line of a program that floods its output, with some words'\"]\n\
         stdout_logfile = \"flood.log\"\nstdout_logfile_maxbytes = \"1MB\"\nstdout_logfile_backups = 1\n\
         stdout_syslog = true\nstartsecs = 0\n\n\
         [programs.victim]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\
         restart_min_interval = 0\nbackoff_reset = 0\n",
    );
    d.wait_state("flood", "RUNNING");
    d.wait_state("victim", "RUNNING");
    let flood = d.dir.join("flood.log.1");
    wait_until("the flood rotated its file", DEADLINE, || flood.exists());
    let mut delays: Vec<std::time::Duration> =
        (0..5).map(|_| time_restart(&d, "victim", DEADLINE)).collect();
    println!("restarts during a flood: {delays:?}");
    delays.sort();
    // Rotation renames the file away for a moment: read its time when it is there.
    let modified = || std::fs::metadata(&flood).and_then(|m| m.modified()).ok();
    let mut rotated = None;
    wait_until("the rotated file is there", DEADLINE, || {
        rotated = modified();
        rotated.is_some()
    });
    assert!(delays[2] < std::time::Duration::from_millis(100), "median restart {:?}", delays[2]);
    // The flood went on all along: the file rotated again meanwhile.
    wait_until("the flood rotated again", DEADLINE, || modified() > rotated);
    d.ctl(&["stop", "flood"]);
    // The absent syslog was warned about once, not once per line.
    let log = d.log();
    assert_eq!(log.matches("syslog: /nonexistent/kahi-test/log").count(), 1, "{log}");
}

/// `kahi ctl ARGS` with its stdout on a pipe read line by line into a channel.
fn follow(d: &Daemon, args: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = d
        .dir
        .command(KAHI)
        .arg("ctl")
        .arg("-s")
        .arg(&d.socket)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (rx, _) = lines_of(stdout);
    (child, rx)
}

fn end_follower(mut child: std::process::Child) {
    unsafe_kill(child.id() as i32, 15);
    let _ = child.wait();
}

/// Receives lines until one contains `text`; panics with what came if none does in time.
fn recv_until(rx: &std::sync::mpsc::Receiver<String>, text: &str) -> Vec<String> {
    let end = std::time::Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while let Ok(line) = rx.recv_timeout(end.saturating_duration_since(std::time::Instant::now())) {
        let found = line.contains(text);
        got.push(line);
        if found {
            return got;
        }
    }
    panic!("no line with {text:?} within {DEADLINE:?}; got {got:?}");
}

#[test]
fn tail_f_follows_across_rotations_without_a_gap() {
    let n = 20_000;
    let dir = Dir::new("log-tail-rotation");
    let go = dir.join("go");
    let d = Daemon::start_in(
        dir,
        &format!(
            "[programs.flood]\n\
             command = [\"/bin/sh\", \"-c\", \"echo ready; while [ ! -e {} ]; do sleep 0.01; done; \
             i=0; while [ $i -lt 20 ]; do seq $((i*1000+1)) $((i*1000+1000)); sleep 0.02; i=$((i+1)); done; \
             echo done; exec sleep 1000\"]\n\
             stdout_logfile = \"flood.log\"\nstdout_logfile_maxbytes = \"8KB\"\n\
             stdout_logfile_backups = 2\nstartsecs = 0\n",
            go.display()
        ),
    );
    d.wait_state("flood", "RUNNING");
    // Everything from the start of the buffer, so no line can be missed whenever it connects.
    let (child, rx) = follow(&d, &["tail", "-f", "-n", "10000000", "flood"]);
    recv_until(&rx, "ready");
    std::fs::write(&go, "").unwrap();
    let lines = recv_until(&rx, "done");
    let want: Vec<String> = (1..=n).map(|i| i.to_string()).chain(["done".into()]).collect();
    assert_eq!(lines.len(), want.len(), "line count");
    for (i, (got, want)) in lines.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "line {i}");
    }
    // The file rotated many times meanwhile (about 108 KB into 8 KB files).
    assert!(d.dir.join("flood.log.2").exists(), "no second rotation");
    end_follower(child);
}

#[test]
fn maintail_shows_and_follows_the_daemons_own_log() {
    let d =
        Daemon::start("log-maintail", "[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n");
    d.wait_state("web", "RUNNING");
    let out = d.ctl(&["maintail"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("spawned: 'web' with pid"), "{}", out.stdout);
    // The same lines as on the daemon's stderr.
    assert!(d.log().contains(out.stdout.lines().last().unwrap()));
    let short = d.ctl(&["maintail", "-n", "20"]);
    assert!(short.stdout.len() <= 20 && !short.stdout.is_empty(), "{short:?}");

    let (child, rx) = follow(&d, &["maintail", "-f", "-n", "1000000"]);
    // The follower is in place once what was logged before has come.
    recv_until(&rx, "spawned: 'web'");
    d.ctl(&["stop", "web"]);
    recv_until(&rx, "stopped: web");
    end_follower(child);
}

/// A tmpfs mounted for one test; lazily unmounted (the daemon may still hold a file there)
/// and its mount point removed when dropped, passed or failed.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The value of a /metrics sample, by its whole name and labels.
pub(crate) fn metric(port: u16, series: &str) -> Option<u64> {
    let (_, _, text) = crate::http::send_raw(port, "GET", "/metrics", "", "");
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Issue 13, finding 9: on a full disk a short write tore a line into the next record
/// (`line 2188 xxxxline 6789`), and "No space left on device" was logged 4,601 times in 20 s.
#[test]
fn issue_13_a_full_disk_drops_whole_lines_warns_once_and_counts_them() {
    const LINES: usize = 2500;
    const FIRST: usize = 2000;
    let line = |i: usize| format!("line {i:05} the quick brown fox jumps over the lazy dog");
    let dir = Dir::new("disk-full");
    let disk = dir.join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted =
        run(dir.command("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(&disk));
    if mounted.code != 0 {
        let _ = std::fs::remove_dir(&disk);
        return skip(&format!("cannot mount a tmpfs here: {}", mounted.stderr.trim()));
    }
    let tmpfs = Tmpfs(disk.clone());
    // The filler leaves the log two pages (8 KiB); the program writes ~140 KiB.
    std::fs::write(disk.join("filler"), vec![b'f'; 56 * 1024]).unwrap();
    let go = dir.join("go");
    let script = format!(
        "i=0; while [ $i -lt {FIRST} ]; do printf 'line %05d the quick brown fox jumps over the lazy dog\\n' $i; i=$((i+1)); done; \
         while [ ! -e {go} ]; do sleep 0.05; done; \
         while [ $i -lt {LINES} ]; do printf 'line %05d the quick brown fox jumps over the lazy dog\\n' $i; i=$((i+1)); done; \
         exec sleep 1000",
        go = go.display()
    );
    let log = disk.join("out.log");
    let (d, port) = crate::http::start_in(
        dir,
        &format!(
            "[programs.chatty]\ncommand = [\"/bin/sh\", \"-c\", \"{script}\"]\nstartsecs = 0\n\
             stdout_logfile = \"{}\"\nstdout_logfile_maxbytes = 0\n",
            log.display()
        ),
    );
    let tmpfs = tmpfs; // unmounted before the daemon's directory goes
    let series = |name: &str| {
        format!(r#"{name}{{process="chatty",group="chatty",program="chatty",stream="stdout"}}"#)
    };
    let (dropped, failing) =
        (series("kahi_log_dropped_bytes_total"), series("kahi_log_file_failing"));

    // The disk fills up; the ring buffer still gets every line.
    let last = line(FIRST - 1);
    wait_until("the first lines are all read", DEADLINE, || {
        d.ctl(&["tail", "-n", "200", "chatty"]).stdout.contains(&last)
    });
    wait_until("the log file fails", DEADLINE, || metric(port, &failing) == Some(1));
    let warning = "unable to write the log file";
    assert_eq!(d.log().matches(warning).count(), 1, "{}", d.log());
    assert!(d.log().contains("No space left on device"), "{}", d.log());
    let dropped_while_full = metric(port, &dropped).unwrap_or(0);
    assert!(dropped_while_full > 0, "nothing counted as dropped");

    // Space is freed: writing resumes on a line boundary, and the recovery is said once.
    std::fs::remove_file(disk.join("filler")).unwrap();
    std::fs::write(&go, "").unwrap();
    let end = line(LINES - 1);
    wait_until("the last line is in the file", DEADLINE, || {
        std::fs::read_to_string(&log).unwrap_or_default().contains(&end)
    });
    d.wait_log("is written again");
    let daemon_log = d.log();
    assert_eq!(daemon_log.matches(warning).count(), 1, "{daemon_log}");
    assert_eq!(daemon_log.matches("is written again").count(), 1, "{daemon_log}");
    let (bytes, lines): (u64, usize) = daemon_log
        .split("is written again; ")
        .nth(1)
        .and_then(|rest| {
            let (b, rest) = rest.split_once(" bytes (")?;
            let (l, _) = rest.split_once(" lines)")?;
            Some((b.parse().ok()?, l.parse().ok()?))
        })
        .unwrap_or_else(|| panic!("no counts in {daemon_log}"));

    // Every line in the file is whole and as written, in order; the lines missing are the
    // ones counted, and all of them were written while the disk was full.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'), "the file ends mid-line");
    let mut seen = Vec::new();
    for l in text.lines() {
        let n: usize = l
            .get(5..10)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a torn line in the file: {l:?}"));
        assert_eq!(l, line(n), "a torn line in the file");
        assert!(seen.last().is_none_or(|&p| p < n), "{n} after {:?}", seen.last());
        seen.push(n);
    }
    assert!(seen.len() > 100, "the lines that fitted are missing: {}", seen.len());
    assert_eq!(seen.len() + lines, LINES, "kept {} + dropped {lines}", seen.len());
    assert!(seen.ends_with(&(FIRST..LINES).collect::<Vec<_>>()), "lines after the outage lost");
    let total: u64 = (0..LINES).map(|i| line(i).len() as u64 + 1).sum();
    assert_eq!(text.len() as u64 + bytes, total, "kept + dropped bytes");
    assert_eq!(metric(port, &dropped), Some(bytes));
    assert_eq!(metric(port, &failing), Some(0));
    println!(
        "full tmpfs: kept {} lines ({} bytes), dropped {lines} lines ({bytes} bytes), \
         {} warning",
        seen.len(),
        text.len(),
        daemon_log.matches(warning).count()
    );
    drop(tmpfs);
    drop(d);
}

/// A program that fills its pipe gets a larger one (1 MiB), so that it writes on while the loop
/// is busy and each read takes more; a quiet program keeps the kernel's 64 KiB.
#[test]
fn a_pipe_its_program_fills_is_grown() {
    let d = Daemon::start(
        "log-pipe-grows",
        "[programs.flood]\ncommand = [\"yes\", \"a line of the flood\"]\nstartsecs = 0\n\n\
         [programs.quiet]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    // The size of the pipe a program writes its stdout to, through /proc.
    let pipe_size = |name: &str| -> i32 {
        let status = d.status();
        let pid = status.iter().find(|p| p["name"] == name).and_then(|p| p["pid"].as_i64());
        let Some(pid) = pid else { return 0 };
        let Ok(f) = std::fs::OpenOptions::new().write(true).open(format!("/proc/{pid}/fd/1"))
        else {
            return 0;
        };
        nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GETPIPE_SZ).unwrap_or(0)
    };
    wait_until("the flood's pipe is grown to 1 MiB", DEADLINE, || pipe_size("flood") == 1 << 20);
    assert_eq!(pipe_size("quiet"), 64 << 10);
}
