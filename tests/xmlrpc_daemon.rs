//! Kahi's own log over supervisord's interfaces: `supervisor.readLog` and `clearLog`,
//! `/mainlogtail` as the real `supervisorctl maintail` and `maintail -f` read it, against a
//! daemon with a log file (`--daemonize --logfile`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::deploy::{Detached, daemonize};
use crate::util::*;

/// supervisorctl, as Debian ships it.
const SUPERVISORCTL: &str = "/usr/bin/supervisorctl";

/// A daemonized Kahi with its log in kahi.log, its HTTP API on a free loopback port and on
/// http.sock; `marker-x` only runs when started.
fn start(name: &str) -> (Detached, u16) {
    let dir = Dir::new(name);
    dir.write(
        "kahi.toml",
        &format!(
            "[server]\nsocket = \"{}\"\n\n[server.http]\nlisten = [\"127.0.0.1:0\", \"unix://{}\"]\n\n\
             [programs.marker-x]\ncommand = \"true\"\nautostart = false\nstartsecs = 0\n",
            dir.join("kahi.sock").display(),
            dir.join("http.sock").display()
        ),
    );
    let d = Detached { pidfile: dir.join("kahi.pid"), dir };
    let out = daemonize(&d.dir, &["--logfile", &path_str(&d.dir.join("kahi.log"))]);
    assert_eq!(out.code, 0, "{out:?}");
    let port = http_port(&d.dir.read("kahi.log"));
    (d, port)
}

fn ctl(dir: &Dir, args: &[&str]) -> Output {
    run(Command::new(KAHI).arg("ctl").arg("-s").arg(dir.join("kahi.sock")).args(args))
}

/// supervisorctl against the daemon's Unix socket.
fn supervisorctl(dir: &Dir) -> Command {
    let conf = dir.write("supervisorctl.conf", "[supervisorctl]\n");
    let mut cmd = dir.command(SUPERVISORCTL);
    let url = format!("unix://{}", dir.join("http.sock").display());
    cmd.arg("-c").arg(conf).args(["-s", &url]);
    cmd
}

/// Runs a Python script with the XML-RPC URL as its argument; it prints `ok`.
fn python(dir: &Dir, port: u16, script: &str) {
    let path = dir.write("script.py", script);
    let url = format!("http://127.0.0.1:{port}/RPC2");
    let out = run(Command::new("python3").arg(&path).arg(&url));
    assert_eq!(
        (out.code, out.stdout.trim()),
        (0, "ok"),
        "{}\n{}",
        out.stderr,
        dir.read("kahi.log")
    );
}

#[test]
fn supervisorctl_maintail_follows_kahis_log_and_clear_log_empties_its_file() {
    let have_python = Command::new("python3").arg("--version").output().is_ok();
    if !Path::new(SUPERVISORCTL).exists() || !have_python {
        return skip("supervisorctl or python3 is not installed (apt-get install supervisor)");
    }
    let (d, port) = start("xmlrpc-mainlog");
    let started = "started with pid";

    // maintail: the end of Kahi's log, through supervisor.readLog.
    let out = run(supervisorctl(&d.dir).arg("maintail"));
    assert!(out.code == 0 && out.stdout.contains(started), "{out:?}");

    // maintail -f: /mainlogtail, the end of the log, then each new line as it is logged.
    let mut child = supervisorctl(&d.dir)
        .args(["maintail", "-f"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (rx, reader) = lines_of(stdout);
    let mut seen = Vec::new();
    let end = Instant::now() + DEADLINE;
    let mut asked = false;
    while !seen.iter().any(|l: &String| l.contains("spawned: 'marker-x'")) {
        // Once the follow has shown the log so far, something new is logged.
        if !asked && seen.iter().any(|l| l.contains(started)) {
            assert_eq!(ctl(&d.dir, &["start", "marker-x"]).code, 0);
            asked = true;
        }
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("maintail -f gave {seen:#?} within {DEADLINE:?}"),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();

    // clearLog empties the file and what readLog and maintail read; what is logged next
    // goes on at the file's new start.
    assert!(d.dir.read("kahi.log").contains(started));
    python(
        &d.dir,
        port,
        r#"
import sys, xmlrpc.client as x
sv = x.ServerProxy(sys.argv[1]).supervisor
assert "started with pid" in sv.readLog(-100000, 0)
assert sv.clearLog() is True
assert "started with pid" not in sv.readLog(-100000, 0)
print("ok")
"#,
    );
    let text = d.dir.read("kahi.log");
    assert!(!text.contains(started) && !text.starts_with('\0'), "{text:?}");
    assert_eq!(ctl(&d.dir, &["start", "marker-x"]).code, 0);
    wait_until("the next line is logged", DEADLINE, || {
        d.dir.read("kahi.log").starts_with(|c: char| c.is_ascii_digit())
    });
    let out = run(supervisorctl(&d.dir).arg("maintail"));
    assert!(out.code == 0 && !out.stdout.contains(started), "{out:?}");
    assert!(out.stdout.contains("marker-x"), "{out:?}");
    assert_eq!(ctl(&d.dir, &["shutdown"]).code, 0);
}
