//! Kahi as it is deployed: `kahi exec` as a one-child init (tini's checks), `--daemonize`
//! with `--pidfile` on bare metal, READY=1 to systemd, and `critical` programs.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

// ---- kahi exec ----

fn exec(args: &[&str]) -> Output {
    run(Command::new(KAHI).arg("exec").args(args))
}

#[test]
fn exec_exits_with_the_childs_code_or_128_plus_the_signal() {
    assert_eq!(exec(&["sh", "-c", "exit 3"]).code, 3);
    assert_eq!(exec(&["--", "sh", "-c", "exit 0"]).code, 0);
    // Killed by SIGKILL: 128 + 9, as a shell reports it.
    assert_eq!(exec(&["sh", "-c", "kill -KILL $$"]).code, 137);
    // The command's own options are its own, not Kahi's.
    let out = exec(&["sh", "-c", "echo \"$0 $1\"", "-v", "--help"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "-v --help\n"), "{out:?}");
    // Not found: 127; not executable: 126; with the reason on stderr.
    let out = exec(&["/nonexistent/program"]);
    assert_eq!(out.code, 127, "{out:?}");
    assert!(out.stderr.contains("/nonexistent/program: No such file or directory"), "{out:?}");
    let dir = Dir::new("exec-codes");
    let plain = dir.write("plain", "not a program\n");
    assert_eq!(exec(&[&path_str(&plain)]).code, 126);
    assert_eq!(exec(&[]).code, 2);
}

/// Starts `kahi exec` on a shell that notes which signal reached it, and waits for its trap.
fn trapping(dir: &Dir, signal: &str) -> Child {
    let ready = path_str(&dir.join("ready"));
    let got = path_str(&dir.join("got"));
    let script = format!(
        "trap 'echo {signal} > {got}; exit 7' {signal}; touch {ready}; while :; do sleep 0.05; done"
    );
    let child =
        dir.command(KAHI).args(["exec", "sh", "-c", &script]).stdin(Stdio::null()).spawn().unwrap();
    wait_until("the trap is set", DEADLINE, || dir.join("ready").exists());
    child
}

fn wait_child(child: &mut Child) -> i32 {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        assert!(Instant::now() < end, "kahi exec did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn exec_forwards_sigterm_sigint_and_sighup() {
    for (signal, number) in [("TERM", 15), ("INT", 2), ("HUP", 1)] {
        let dir = Dir::new(&format!("exec-{signal}"));
        let mut child = trapping(&dir, signal);
        unsafe_kill(child.id() as i32, number);
        assert_eq!(wait_child(&mut child), 7, "SIG{signal}");
        assert_eq!(dir.read("got"), format!("{signal}\n"));
    }
}

#[test]
fn exec_reaps_orphans() {
    let dir = Dir::new("exec-orphans");
    let marker = path_str(&dir.join("spawned"));
    let script = format!(
        "for i in 1 2 3 4 5 6 7 8 9 10; do (sh -c 'exit 0' &); done; touch {marker}; exec sleep 1000"
    );
    let mut child = dir.command(KAHI).args(["exec", "sh", "-c", &script]).spawn().unwrap();
    let kahi = child.id() as i32;
    wait_until("the orphans are spawned", DEADLINE, || dir.join("spawned").exists());
    // Each `sh -c 'exit 0'` lost its parent subshell, so it came to Kahi (a subreaper). An
    // orphan may still be running when the marker appears; once all have exited, none may stay a
    // zombie and only the command remains.
    let names =
        || -> Vec<String> { crate::pid1::descendants(kahi).into_iter().map(|p| p.name).collect() };
    wait_until("only the command remains under kahi exec", DEADLINE, || {
        crate::pid1::zombies(kahi).is_empty() && names() == ["sleep"]
    });
    unsafe_kill(kahi, 15);
    assert_eq!(wait_child(&mut child), 128 + 15);
}

// ---- --daemonize and --pidfile ----

/// A daemonized Kahi, stopped by the pid in its pidfile when the test ends.
pub(crate) struct Detached {
    pub(crate) dir: Dir,
    pub(crate) pidfile: std::path::PathBuf,
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pidfile).unwrap_or_default().trim().parse() {
            unsafe_kill(pid, 15);
            let end = Instant::now() + Duration::from_secs(10);
            while alive(pid) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// `kahi daemon --daemonize` on `dir`'s kahi.toml, its pidfile kahi.pid there.
pub(crate) fn daemonize(dir: &Dir, extra: &[&str]) -> Output {
    run(dir
        .command(KAHI)
        .arg("daemon")
        .arg("-c")
        .arg(dir.join("kahi.toml"))
        .args(["--daemonize", "--pidfile"])
        .arg(dir.join("kahi.pid"))
        .args(extra))
}

fn ctl(dir: &Dir, args: &[&str]) -> Output {
    run(Command::new(KAHI).arg("ctl").arg("-s").arg(dir.join("kahi.sock")).args(args))
}

#[test]
fn daemonize_returns_once_ready_writes_the_pidfile_and_removes_it_at_exit() {
    let dir = Dir::new("daemonize");
    dir.write(
        "kahi.toml",
        &format!(
            "[server]\nsocket = \"{}\"\n\n[programs.sleeper]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
            dir.join("kahi.sock").display()
        ),
    );
    let d = Detached { pidfile: dir.join("kahi.pid"), dir };
    let log = path_str(&d.dir.join("kahi.log"));
    let out = daemonize(&d.dir, &["--logfile", &log]);
    assert_eq!(out.code, 0, "{out:?}");
    // Ready when the command returns: the socket answers and the pidfile is there.
    let pid: i32 = d.dir.read("kahi.pid").trim().parse().expect("a pid in the pidfile");
    let said = ctl(&d.dir, &["pid"]);
    assert_eq!(said.stdout.trim(), pid.to_string(), "{said:?}");
    // Detached: not a child of the test, in a new session that it does not lead (so it can
    // never acquire a terminal).
    let stat = |pid: &str| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<String> =
            stat.rsplit(')').next().unwrap().split_whitespace().map(String::from).collect();
        (fields[1].clone(), fields[3].clone())
    };
    let (ppid, sid) = stat(&pid.to_string());
    assert_ne!(ppid, std::process::id().to_string());
    assert_ne!(sid, stat("self").1, "still in the test's session");
    assert_ne!(sid, pid.to_string(), "a session leader");
    wait_until("the program runs", DEADLINE, || {
        ctl(&d.dir, &["status", "sleeper"]).stdout.contains("RUNNING")
    });

    // A second start with the same pidfile is refused, naming it.
    let again = daemonize(&d.dir, &[]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again.stderr.contains("still running") && again.stderr.contains("kahi.pid"),
        "{again:?}"
    );

    // At exit the pidfile goes, and the daemon's log went to --logfile.
    assert_eq!(ctl(&d.dir, &["shutdown"]).code, 0);
    wait_until("the pidfile is removed", DEADLINE, || !d.dir.join("kahi.pid").exists());
    wait_until("the daemon is gone", DEADLINE, || !alive(pid));
    let text = d.dir.read("kahi.log");
    assert!(
        text.contains("spawned: 'sleeper'") && text.contains("exiting with status 0"),
        "{text}"
    );
}

#[test]
fn daemonize_replaces_a_stale_pidfile_and_reports_start_failures() {
    let dir = Dir::new("daemonize-stale");
    // A pid that surely names no running process: one that has exited and been waited for.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    dir.write("kahi.pid", &format!("{}\n", gone.id()));
    // The socket's directory is missing: the daemon fails after the fork, and the command
    // that was run says why.
    dir.write(
        "kahi.toml",
        &format!("[server]\nsocket = \"{}\"\n", dir.join("no/kahi.sock").display()),
    );
    let d = Detached { pidfile: dir.join("kahi.pid"), dir };
    let out = daemonize(&d.dir, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("directory") && out.stderr.contains("does not exist"), "{out:?}");

    // A bad configuration is reported before any fork, with its exit code.
    d.dir.write("kahi.toml", "[server]\nsocket = 5\n");
    let out = daemonize(&d.dir, &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("kahi.toml:2"), "{out:?}");

    // Fixed: it starts, and the stale pidfile now holds the new pid.
    d.dir.write(
        "kahi.toml",
        &format!("[server]\nsocket = \"{}\"\n", d.dir.join("kahi.sock").display()),
    );
    let out = daemonize(&d.dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let pid: i32 = d.dir.read("kahi.pid").trim().parse().unwrap();
    assert_ne!(pid, gone.id() as i32);
    assert!(alive(pid));
}

// ---- systemd's READY=1 ----

#[test]
fn under_systemd_kahi_sends_ready_and_stopping_and_programs_do_not_inherit_notify_socket() {
    let dir = Dir::new("sd-notify");
    let manager = UnixDatagram::bind(dir.join("manager.sock")).unwrap();
    manager.set_read_timeout(Some(DEADLINE)).unwrap();
    let socket = dir.join("kahi.sock");
    let config = dir.write(
        "kahi.toml",
        &format!(
            "[server]\nsocket = \"{}\"\n\n[programs.env]\n\
             command = \"sh -c 'echo N=${{NOTIFY_SOCKET:-none}}; exec sleep 1000'\"\nstartsecs = 0\n",
            socket.display()
        ),
    );
    let path = path_str(&dir.join("manager.sock"));
    let mut d = Daemon::launch(dir, config, socket, &[("NOTIFY_SOCKET", &path)]);
    let mut buf = [0u8; 256];
    let n = manager.recv(&mut buf).expect("READY=1 within the deadline");
    assert_eq!(String::from_utf8_lossy(&buf[..n]), format!("READY=1\nMAINPID={}", d.pid()));
    d.wait_state("env", "RUNNING");
    wait_until("the program spoke", DEADLINE, || !d.ctl(&["tail", "env"]).stdout.is_empty());
    assert_eq!(d.ctl(&["tail", "env"]).stdout, "N=none\n");

    d.signal(15);
    let n = manager.recv(&mut buf).expect("STOPPING=1 within the deadline");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert_eq!(d.wait_exit(DEADLINE), 0);
}

// ---- critical ----

#[test]
fn a_critical_program_killed_by_a_signal_ends_kahi_with_128_plus_it_but_a_stop_does_not() {
    let mut d = Daemon::start(
        "critical",
        "[programs.main]\ncommand = \"sleep 1000\"\nstartsecs = 0\ncritical = true\n\n\
         [programs.side]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state("main", "RUNNING");
    d.wait_state("side", "RUNNING");
    // Stopped on request: nothing else happens, and it can be started again.
    assert_eq!(d.ctl(&["stop", "main"]).code, 0);
    assert_eq!(d.state("side"), "RUNNING");
    assert_eq!(d.ctl(&["start", "main"]).code, 0);

    let pid = d.process("main")["pid"].as_i64().unwrap() as i32;
    unsafe_kill(pid, 9);
    assert_eq!(d.wait_exit(DEADLINE), 137, "{}", d.log());
    let log = d.log();
    assert!(log.contains("critical program main exited with status 137"), "{log}");
    assert!(log.contains("stopped: side"), "{log}");
}

/// A critical program that cannot be started at all (its command is not there) ends Kahi too,
/// once its retries are spent, with the status a shell gives such a command: a typo must not
/// leave a container that runs nothing and answers /healthz.
#[test]
fn a_critical_program_that_cannot_start_ends_kahi_with_127() {
    let mut d = Daemon::start(
        "critical-fatal",
        "[programs.main]\ncommand = \"/nonexistent/kahi-main\"\ncritical = true\nstartretries = 1\n\n\
         [programs.side]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    assert_eq!(d.wait_exit(DEADLINE), 127, "{}", d.log());
    let log = d.log();
    assert!(log.contains("critical program main could not be started (status 127)"), "{log}");
    assert!(log.contains("stopped: side"), "{log}");
}

// ---- the System V init script ----

/// Runs contrib/sysvinit/kahi ACTION against the binary under test.
fn initscript(dir: &Dir, action: &str) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/sysvinit/kahi");
    run(dir
        .command("sh")
        .arg(script)
        .arg(action)
        .env("DAEMON", KAHI)
        .env("CONFIG", dir.join("kahi.toml"))
        .env("PIDFILE", dir.join("kahi.pid"))
        .env("LOGFILE", dir.join("kahi.log")))
}

#[test]
fn the_sysvinit_script_starts_reports_restarts_and_stops_the_daemon() {
    if run(Command::new("sh").args(["-c", "command -v start-stop-daemon"])).code != 0 {
        panic!("start-stop-daemon (Debian's dpkg) is needed");
    }
    let dir = Dir::new("sysvinit");
    dir.write(
        "kahi.toml",
        &format!(
            "[server]\nsocket = \"{}\"\n\n[programs.sleeper]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
            dir.join("kahi.sock").display()
        ),
    );
    let d = Detached { pidfile: dir.join("kahi.pid"), dir };
    let status = |d: &Detached| initscript(&d.dir, "status").code;
    let pid = |d: &Detached| -> i32 { d.dir.read("kahi.pid").trim().parse().unwrap_or(0) };

    assert_eq!(status(&d), 3, "not running yet");
    let out = initscript(&d.dir, "start");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(status(&d), 0);
    // Ready when start returns: ctl answers at once.
    let first = pid(&d);
    assert_eq!(ctl(&d.dir, &["pid"]).stdout.trim(), first.to_string());
    assert_eq!(initscript(&d.dir, "start").code, 0, "start of a running daemon is fine");
    assert_eq!(pid(&d), first, "and starts nothing");

    let out = initscript(&d.dir, "restart");
    assert_eq!(out.code, 0, "{out:?}");
    let second = pid(&d);
    assert!(second > 0 && second != first, "restart gave pid {second} (was {first})");
    assert!(!alive(first));
    assert_eq!(status(&d), 0);
    assert_eq!(ctl(&d.dir, &["pid"]).stdout.trim(), second.to_string());

    let out = initscript(&d.dir, "stop");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!alive(second));
    assert!(!d.dir.join("kahi.pid").exists(), "the pidfile is removed");
    assert_eq!(status(&d), 3);
    assert_eq!(initscript(&d.dir, "stop").code, 0, "stop of a stopped daemon is fine");

    // A pidfile left by a dead daemon: status 1, and start replaces it.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    d.dir.write("kahi.pid", &format!("{}\n", gone.id()));
    assert_eq!(status(&d), 1);
    assert_eq!(initscript(&d.dir, "start").code, 0);
    assert_eq!(status(&d), 0);
    assert_ne!(pid(&d), gone.id() as i32);
    // The daemon's own log went to LOGFILE.
    assert!(d.dir.read("kahi.log").contains("spawned: 'sleeper'"), "{}", d.dir.read("kahi.log"));
}

#[test]
fn exec_as_pid1_forwards_sigterm_and_exits_with_the_childs_code() {
    let dir = Dir::new("exec-pid1");
    let ready = path_str(&dir.join("ready"));
    let script = format!("trap 'exit 9' TERM; touch {ready}; while :; do sleep 0.05; done");
    let mut unshare = dir
        .command("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child", KAHI, "exec", "sh", "-c"])
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + DEADLINE;
    while !dir.join("ready").exists() {
        if let Some(st) = unshare.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(unshare.stderr.as_mut().unwrap(), &mut err).unwrap();
            if err.contains("Operation not permitted") {
                skip(&format!("no PID namespace here: {err}"));
                return;
            }
            panic!("unshare exited early ({st}): {err}");
        }
        assert!(Instant::now() < end, "the trap was never set");
        std::thread::sleep(Duration::from_millis(10));
    }
    let kahi = crate::pid1::children(unshare.id() as i32)[0].pid;
    let nspid = crate::pid1::proc_field(kahi, "NSpid:").unwrap_or_default();
    assert_eq!(nspid.split_whitespace().last(), Some("1"), "kahi exec is PID 1: {nspid}");
    unsafe_kill(kahi, 15);
    assert_eq!(wait_child(&mut unshare), 9);
}
