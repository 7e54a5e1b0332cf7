//! The command line as anyone types it (issue 12, "sharp edges"): the short spellings every
//! CLI user expects, output into a pipe that closes early, and the signals `kahi exec` hands
//! its command.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};

use crate::util::*;

/// Runs `cmd` with its stdout on a pipe whose read end is already closed, as after
/// `cmd | head -1` once `head` has gone; returns how it ended and its stderr.
fn into_closed_pipe(cmd: &mut Command) -> (ExitStatus, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut child =
        cmd.stdin(Stdio::null()).stdout(writer).stderr(Stdio::piped()).spawn().expect("start kahi");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (child.wait().unwrap(), stderr)
}

/// Ended quietly: killed by SIGPIPE as `cat` is, or exited 0, and nothing on stderr.
fn assert_quiet_end(what: &str, (status, stderr): (ExitStatus, String)) {
    assert!(
        status.signal() == Some(13) || status.code() == Some(0),
        "{what}: ended with {status:?}, stderr {stderr:?}"
    );
    assert_eq!(stderr, "", "{what}");
}

#[test]
fn version_and_help_take_the_short_spellings_issue_12() {
    let version = format!("kahi {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let out = run(Command::new(KAHI).arg(flag));
        assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, &*version, ""));
    }
    for args in [&["-h"][..], &["daemon", "-h"], &["ctl", "-h"], &["ctl", "tail", "-f", "x", "-h"]]
    {
        let short = run(Command::new(KAHI).args(args));
        let long: Vec<&str> = args.iter().map(|a| if *a == "-h" { "--help" } else { a }).collect();
        let long = run(Command::new(KAHI).args(&long));
        assert_eq!(short.code, 0, "{args:?}: {short:?}");
        assert!(short.stdout.starts_with("Usage: kahi"), "{args:?}: {short:?}");
        assert_eq!(short.stdout, long.stdout, "{args:?}");
    }
    let top = run(Command::new(KAHI).arg("-h"));
    assert!(top.stdout.contains("-V, --version"), "{top:?}");
    // The negative twin: what follows the command of `kahi exec` is the command's own.
    let out = run(Command::new(KAHI).args(["exec", "--", "echo", "-h", "-V"]));
    assert_eq!((out.code, out.stdout.as_str()), (0, "-h -V\n"), "{out:?}");
    let out = run(Command::new(KAHI).args(["exec", "echo", "-h"]));
    assert_eq!((out.code, out.stdout.as_str()), (0, "-h\n"), "{out:?}");
    let out = run(Command::new(KAHI).args(["daemon", "-V"]));
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn a_closed_pipe_on_stdout_ends_a_client_quietly_issue_12() {
    for args in [&["--help"][..], &["ctl", "--help"], &["version"], &["-V"], &["daemon", "-h"]] {
        assert_quiet_end(&format!("{args:?}"), into_closed_pipe(Command::new(KAHI).args(args)));
    }
    let d = Daemon::start(
        "cli-pipe",
        "[programs.ticker]\ncommand = ['/bin/sh', '-c', 'while :; do echo tick; sleep 0.05; done']\n\
         startsecs = 0\nstopasgroup = true\n",
    );
    d.wait_state("ticker", "RUNNING");
    let ctl = |args: &[&str]| {
        let mut cmd = Command::new(KAHI);
        cmd.arg("ctl").arg("-s").arg(&d.socket).args(args);
        cmd
    };
    assert_quiet_end("ctl status", into_closed_pipe(&mut ctl(&["status"])));
    // A follower notices at its next write, as `tail -f | head -1` does.
    assert_quiet_end("ctl tail -f", into_closed_pipe(&mut ctl(&["tail", "-f", "ticker"])));
    // The daemon, which ignores SIGPIPE, is still there.
    assert_eq!(d.ctl(&["status"]).code, 0);
}

#[test]
fn a_daemon_started_with_its_standard_fds_closed_has_them_on_dev_null() {
    // As a PID 1 may be started: nothing on 0, 1 and 2. No file or socket the daemon opens may
    // take their numbers, or a line it writes to stderr would go into that file.
    let d = Daemon::start_after(
        "cli-closed-fds",
        "exec 0<&- 1>&- 2>&-",
        "[programs.s]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state("s", "RUNNING");
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{}/fd/{fd}", d.pid())).unwrap();
        assert_eq!(target, std::path::Path::new("/dev/null"), "fd {fd}");
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    assert_ne!(sigset(&status, "SigIgn:") & bit(13), 0, "the daemon does not ignore SIGPIPE");
    // A client started the same way answers as usual.
    let out = run(Command::new("/bin/sh")
        .arg("-c")
        .arg("exec 0<&- 1>&- 2>&-; exec \"$0\" ctl -s \"$1\" status")
        .arg(KAHI)
        .arg(&d.socket));
    assert_eq!(out.code, 0, "{out:?}");
}

/// A hexadecimal signal set from `grep -E 'SigIgn|SigBlk' /proc/self/status` output.
fn sigset(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status:?}"));
    u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
}

/// Signal `n`'s bit in a /proc signal set.
fn bit(n: u32) -> u64 {
    1 << (n - 1)
}

const SHOW_SIGNALS: &str = "grep -E 'SigIgn|SigBlk' /proc/self/status";

#[test]
fn exec_gives_its_command_sigpipe_at_its_default_issue_12() {
    let out = run(Command::new(KAHI).args(["exec", "--", "sh", "-c", SHOW_SIGNALS]));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(sigset(&out.stdout, "SigIgn:") & bit(13), 0, "SIGPIPE is ignored: {out:?}");
    assert_eq!(sigset(&out.stdout, "SigBlk:"), 0, "Kahi's blocked signals leak: {out:?}");
    // What users see: `yes` ends of SIGPIPE, without a word, as under a shell.
    let out = run(Command::new(KAHI).args(["exec", "--", "sh", "-c", "yes | head -1"]));
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, "y\n", ""));
}

#[test]
fn exec_keeps_the_signals_its_parent_ignored_issue_12() {
    // As under `nohup`: the parent ignores SIGHUP (1) and SIGUSR1 (10), and exec keeps that.
    let out = run(Command::new("/bin/sh")
        .arg("-c")
        .arg("trap '' HUP USR1; exec \"$0\" exec -- sh -c \"$1\"")
        .arg(KAHI)
        .arg(SHOW_SIGNALS));
    assert_eq!(out.code, 0, "{out:?}");
    let ignored = sigset(&out.stdout, "SigIgn:");
    assert_eq!(ignored & (bit(1) | bit(10)), bit(1) | bit(10), "{out:?}");
    assert_eq!(ignored & bit(13), 0, "{out:?}");
    // The negative twin: without the trap, neither is ignored.
    let out = run(Command::new(KAHI).args(["exec", "--", "sh", "-c", SHOW_SIGNALS]));
    assert_eq!(sigset(&out.stdout, "SigIgn:") & (bit(1) | bit(10)), 0, "{out:?}");
}

#[test]
fn ctl_c_finds_the_socket_in_a_file_with_errors_elsewhere_issue_12() {
    let d = Daemon::start(
        "cli-lenient",
        "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state("web", "RUNNING");
    let dir = path_str(&d.dir.path);
    // The socket through ${VAR:-default}, a bad program table, and broken TOML after both.
    let bad = d.dir.write(
        "bad.toml",
        "[server]\nsocket = \"${KAHI_TEST_DIR:-/nonexistent}/kahi.sock\"\n\n\
         [programs.web]\nstartsecs = \"soon\"\n\n[programs.broken]\ncommand = \"unterminated\n",
    );
    let ctl = |config: &std::path::Path, args: &[&str]| {
        run(Command::new(KAHI)
            .arg("ctl")
            .arg("-c")
            .arg(config)
            .args(args)
            .env("KAHI_TEST_DIR", &dir)
            .env_remove("KAHI_SOCKET"))
    };
    let out = ctl(&bad, &["status", "web"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("web "), "{out:?}");
    let warning: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warning.len(), 1, "one line of warning: {out:?}");
    assert!(
        warning[0].starts_with("kahi: warning: ")
            && warning[0].contains(&format!("kahi daemon --check -c {}", bad.display())),
        "{out:?}"
    );
    // A good file: no warning.
    let out = ctl(&d.config, &["status", "web"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    // The negative twin: when the socket itself is wrong, a clear error and exit 2.
    let worse = d.dir.write("worse.toml", "[server]\nsocket = 42\n[programs.x]\ncommand = 1\n");
    let out = ctl(&worse, &["status"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "{}:2:10: server.socket: expected a string, found integer 42",
            worse.display()
        )) && out.stderr.contains("give it with -s"),
        "{out:?}"
    );
}

/// The exit codes a man page lists under EXIT STATUS: (which list, code, its text without
/// roff). A list starts at each paragraph that says which command exits "with:".
fn documented_codes(page: &str) -> Vec<(usize, i32, String)> {
    let section = page.split(".SH EXIT STATUS\n").nth(1).expect("an EXIT STATUS section");
    let section = section.split("\n.SH ").next().unwrap_or_default();
    let mut codes: Vec<(usize, i32, String)> = Vec::new();
    let mut list = 0;
    let mut open = false;
    let mut lines = section.lines().peekable();
    while let Some(line) = lines.next() {
        if line == ".TP" {
            let code =
                lines.next().and_then(|l| l.strip_prefix(".B ")).and_then(|c| c.parse().ok());
            open = code.is_some();
            if let Some(code) = code {
                codes.push((list, code, String::new()));
            }
        } else if line == ".PP" {
            open = false;
        } else if line.ends_with("with:") && codes.iter().any(|c| c.0 == list) {
            list += 1;
        } else if open {
            let words = line.split_once(' ').map_or("", |(_, w)| w);
            let text = if line.starts_with('.') { words } else { line };
            let text = text.replace(['"', '\\'], "").replace(" ,", ",").replace(" .", ".");
            let entry = codes.last_mut().expect("an entry");
            entry.2.push(' ');
            entry.2.push_str(&text);
        }
    }
    codes
}

/// Checks each case against the page: the code's entry in `list` mentions `phrase`, and the
/// command exits with it. Every code the page lists must have a case.
fn hold_to_the_page(page: &str, cases: &[(usize, i32, &str, Output)]) {
    let codes = documented_codes(page);
    for (list, code, text) in &codes {
        assert!(
            cases.iter().any(|c| c.0 == *list && c.1 == *code),
            "no case for code {code} of list {list}: {text}"
        );
    }
    for (list, code, phrase, out) in cases {
        let entry = codes.iter().find(|c| c.0 == *list && c.1 == *code);
        let text = entry.map(|e| e.2.as_str()).unwrap_or_default();
        assert!(text.contains(phrase), "list {list}, code {code}: {phrase:?} not in {text:?}");
        assert_eq!(out.code, *code, "{phrase}: {out:?}");
    }
}

#[test]
fn every_exit_code_kahi_ctl_1_documents_is_the_real_one_issue_12() {
    let d = Daemon::start(
        "cli-exit-codes",
        "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n\n\
         [programs.idle]\ncommand = \"/bin/sleep 1000\"\nautostart = false\n\n\
         [programs.multi]\ncommand = \"/bin/sleep 1000\"\nnumprocs = 2\n\
         process_name = \"multi_%(process_num)d\"\nstartsecs = 0\n\n\
         [programs.broken]\ncommand = \"/no/such/bin\"\nautostart = false\n\n\
         [programs.nodir]\ncommand = \"/bin/sleep 1000\"\ndirectory = \"/no/such/dir\"\n\
         autostart = false\n\n\
         [programs.slow]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 1000\n\n\
         [programs.flaky]\ncommand = \"/bin/sh -c 'exit 1'\"\nautostart = false\n\
         startsecs = 1\nstartretries = 0\n",
    );
    d.wait_state("web", "RUNNING");
    let gone = path_str(&d.dir.join("gone.sock"));
    let off = |args: &[&str]| run(Command::new(KAHI).args(["ctl", "-s", &gone]).args(args));
    let bad = d.dir.write("bad.toml", "[server]\nsocket = 1\n");
    let bad_config = run(Command::new(KAHI).arg("ctl").arg("-c").arg(&bad).arg("pid"));
    // A socket file its daemon left: connecting is refused.
    let stale = d.dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let stale = path_str(&stale);
    let refused = |args: &[&str]| run(Command::new(KAHI).args(["ctl", "-s", &stale]).args(args));
    assert_eq!(d.state("slow"), "STARTING");
    let (status, other) = (0, 1);
    let cases = [
        (status, 0, "STARTING", d.ctl(&["status", "web", "slow"])),
        (status, 3, "STOPPED", d.ctl(&["status", "idle"])),
        (status, 4, "the daemon cannot be reached", off(&["status"])),
        (status, 4, "the daemon cannot be reached", refused(&["status"])),
        (status, 4, "A name matches no process", d.ctl(&["status", "nosuch"])),
        (other, 0, "ERROR (already started)", d.ctl(&["start", "web"])),
        (other, 0, "ERROR (not running)", d.ctl(&["stop", "idle"])),
        (other, 0, "process group already active", d.ctl(&["add", "web"])),
        (other, 1, "ERROR (no such process)", d.ctl(&["start", "nosuch"])),
        (other, 1, "ERROR (no such file)", d.ctl(&["start", "broken"])),
        (other, 1, "ERROR (bad signal name)", d.ctl(&["signal", "BOGUS", "web"])),
        (other, 1, "No such process", d.ctl(&["pid", "nosuch"])),
        (other, 1, "errors of add", d.ctl(&["add", "nosuch"])),
        (other, 1, "when the daemon cannot be reached", off(&["avail"])),
        (other, 2, "no name given", d.ctl(&["start"])),
        (other, 2, "an unknown stream", d.ctl(&["tail", "web", "bogus"])),
        (other, 2, "several processes where one is needed", d.ctl(&["tail", "multi"])),
        (other, 2, "socket cannot be read", bad_config),
        (other, 2, "cannot be parsed", d.ctl(&["status", "--bogus"])),
        (other, 2, "cannot be parsed", d.ctl(&["--bogus", "status"])),
        (other, 2, "of a group", d.ctl(&["start", "nosuch:*"])),
        (other, 4, "refused the connection", refused(&["pid"])),
        (other, 7, "from signal", d.ctl(&["signal", "HUP", "idle"])),
        (other, 7, "a pid of 0", d.ctl(&["pid", "idle"])),
        (other, 7, "ERROR (spawn error)", d.ctl(&["start", "nodir"])),
        (other, 7, "ERROR (abnormal termination)", d.ctl(&["start", "flaky"])),
        (other, 7, "socket is not there", off(&["pid"])),
    ];
    hold_to_the_page(&std::fs::read_to_string("man/kahi-ctl.1").unwrap(), &cases);
}

#[test]
fn the_exit_codes_kahi_1_documents_for_the_daemon_are_the_real_ones_issue_12() {
    let dir = Dir::new("cli-daemon-codes");
    let daemon = |config: &std::path::Path, extra: &[&str]| {
        run(Command::new(KAHI).arg("daemon").arg("-c").arg(config).args(extra))
    };
    let good = dir.write("good.toml", "[programs.web]\ncommand = \"/bin/sleep 1000\"\n");
    let bad = dir.write("bad.toml", "[programs.web]\nstartsecs = \"soon\"\n");
    // No such directory for the socket: start-up fails after the configuration was read.
    let nowhere = dir.write(
        "nowhere.toml",
        &format!("[server]\nsocket = \"{}/no/such/dir/kahi.sock\"\n", dir.path.display()),
    );
    let cases = [
        (0, 0, "found the configuration good", daemon(&good, &["--check"])),
        (0, 1, "the control socket could not be bound", daemon(&nowhere, &[])),
        (0, 2, "The configuration is invalid", daemon(&bad, &["--check"])),
        (0, 2, "The configuration is invalid", daemon(&bad, &[])),
        (0, 2, "a command line that cannot be parsed", daemon(&good, &["--bogus"])),
    ];
    hold_to_the_page(&std::fs::read_to_string("man/kahi.1").unwrap(), &cases);
    let _ = std::fs::remove_dir_all(&dir.path);
}
