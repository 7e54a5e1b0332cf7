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
