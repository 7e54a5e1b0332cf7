//! Test harness: a private directory per test, the real `kahi` binary started on a config
//! written there, `kahi ctl` against it, and waits that poll a condition with a deadline.
//! Only pids the test started (the daemon, and programs the daemon reported) are ever killed.
//!
//! Nothing a test starts may outlive it. Every process a test starts through its [`Dir`]
//! carries `KAHI_TEST_TAG=<the directory's name>` in its environment, and whatever it starts
//! inherits the tag: programs, their shells' `sleep`s, orphans, a daemonized daemon. When the
//! `Dir` goes (after the daemon's guard has stopped the daemon), any live process that carries
//! the tag, or names the directory on its command line, is a leak: it is given a few seconds to
//! finish dying, then killed, and the test fails naming it. Each test checks its own processes,
//! so tests running in parallel threads do not see each other's. A program started with
//! `clean_environment` loses the tag; the daemon's guard kills those it saw in `status`.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const KAHI: &str = env!("CARGO_BIN_EXE_kahi");

/// The default deadline for a condition: generous, for a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `cond` until it holds or `timeout` passes; panics with `what` on timeout.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() > end {
            panic!("condition never met within {timeout:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A loopback TCP port that was free a moment ago, for a server that cannot say which port it
/// bound (supervisord, php-cgi, a config written before the start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The lines `out` gives, as they come, on a channel a test can wait on with a deadline; the
/// reading thread ends at end of file or once the receiver is gone.
pub fn lines_of(
    out: impl std::io::Read + Send + 'static,
) -> (std::sync::mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (rx, reader)
}

/// The port of the first `HTTP API listening on http://127.0.0.1:PORT` line in a daemon's log.
pub fn http_port(log: &str) -> u16 {
    log.split("HTTP API listening on http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP port in {log}"))
}

/// The environment variable that marks the processes of one test (see the module comment).
pub const TAG: &str = "KAHI_TEST_TAG";

/// How long a test's processes may take to finish dying once the test has ended them.
const LEAK_GRACE: Duration = Duration::from_secs(5);

/// A fresh directory for one test. When it is dropped, the test's processes must be gone (or
/// the test fails), and it is removed, failed test or not (KAHI_TEST_KEEP=1 keeps it).
pub struct Dir {
    pub path: PathBuf,
    /// The value of [`TAG`] for this test's processes: the directory's name.
    pub tag: String,
}

impl Dir {
    pub fn new(name: &str) -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let tag = format!("t-{}-{name}-{n}", std::process::id());
        let path = base.join(&tag);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        Dir { path, tag }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.join(name)).unwrap_or_default()
    }

    /// A command marked as this test's: it and everything it starts are checked for leaks.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env(TAG, &self.tag);
        cmd
    }

    /// The live processes of this test: tagged, or naming this directory on their command line.
    pub fn processes(&self) -> Vec<Leftover> {
        let needle = format!("{TAG}={}", self.tag).into_bytes();
        let dir = self.path.as_os_str().as_encoded_bytes();
        let me = std::process::id() as i32;
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else { return out };
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            if pid == me {
                continue;
            }
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let tagged = environ.split(|b| *b == 0).any(|v| v == needle.as_slice());
            let names_dir = cmdline.windows(dir.len()).any(|w| w == dir);
            if (tagged || names_dir) && alive(pid) {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                out.push(Leftover { pid, cmdline: cmdline.trim_end().to_string() });
            }
        }
        out.sort_by_key(|p| p.pid);
        out
    }

    /// Waits up to [`LEAK_GRACE`] for this test's processes to be gone, then kills those that
    /// are not, and returns them.
    pub fn end_leftovers(&self) -> Vec<Leftover> {
        let end = Instant::now() + LEAK_GRACE;
        loop {
            let left = self.processes();
            if left.is_empty() {
                return left;
            }
            if Instant::now() > end {
                for p in &left {
                    unsafe_kill(p.pid, 9);
                }
                return left;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A process a test left behind.
#[derive(Debug, Clone)]
pub struct Leftover {
    pub pid: i32,
    pub cmdline: String,
}

impl Drop for Dir {
    fn drop(&mut self) {
        let left = self.end_leftovers();
        if std::env::var_os("KAHI_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
        if !left.is_empty() {
            let list: Vec<String> =
                left.iter().map(|p| format!("  {} {}", p.pid, p.cmdline)).collect();
            let msg = format!(
                "the test left {} process(es) behind (now killed); a shell-wrapped program \
                 needs `exec` or stopasgroup = true:\n{}",
                left.len(),
                list.join("\n")
            );
            if std::thread::panicking() {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
        }
    }
}

/// Says on the test runner's output that the calling test (or a part of it) cannot run here,
/// and why: `skipped: TEST: WHY` on stderr. libtest captures what `print!` and `eprint!` say
/// in a passing test, but not a direct write to stderr, so the line shows in `cargo test`
/// output. With KAHI_TEST_NO_SKIP=1 set (a machine that has everything), a skip fails instead.
pub fn skip(why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    if std::env::var_os("KAHI_TEST_NO_SKIP").is_some() {
        panic!("{test} cannot run here, and KAHI_TEST_NO_SKIP is set: {why}");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
}

/// What a command printed and how it exited.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("run command");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running `kahi daemon`.
pub struct Daemon {
    pub dir: Dir,
    pub child: Option<Child>,
    pub socket: PathBuf,
    pub config: PathBuf,
    /// Every program pid seen through status, killed at drop if still alive.
    seen: std::cell::RefCell<Vec<i32>>,
}

impl Daemon {
    /// Writes `body` after a `[server]` table pointing the socket into the test dir, and
    /// starts the daemon; returns once the socket answers.
    pub fn start(name: &str, body: &str) -> Daemon {
        let dir = Dir::new(name);
        Daemon::start_in(dir, body)
    }

    pub fn start_in(dir: Dir, body: &str) -> Daemon {
        let socket = dir.join("kahi.sock");
        let text = format!("[server]\nsocket = \"{}\"\n\n{body}", socket.display());
        let config = dir.write("kahi.toml", &text);
        Daemon::launch(dir, config, socket, &[])
    }

    /// Starts the daemon on an existing config with extra arguments/environment.
    pub fn launch(dir: Dir, config: PathBuf, socket: PathBuf, env: &[(&str, &str)]) -> Daemon {
        let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
        let mut cmd = dir.command(KAHI);
        cmd.arg("daemon").arg("-c").arg(&config).arg("-v");
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon::spawn(dir, config, socket, cmd)
    }

    /// Runs `cmd`, a command of `dir` ([`Dir::command`]) that is, or execs, the daemon on
    /// `config`, and returns once `socket` answers. The daemon's pid is `cmd`'s.
    pub fn spawn(dir: Dir, config: PathBuf, socket: PathBuf, mut cmd: Command) -> Daemon {
        let child = cmd.spawn().expect("start kahi");
        let mut d = Daemon { dir, child: Some(child), socket, config, seen: Default::default() };
        let sock = d.socket.clone();
        wait_until("the control socket answers", DEADLINE, || {
            if let Some(st) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                d.child = None;
                panic!("the daemon exited ({st}) before it answered; log:\n{}", d.log());
            }
            UnixStream::connect(&sock).is_ok()
        });
        d
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// `kahi ctl -s SOCKET args...`
    pub fn ctl(&self, args: &[&str]) -> Output {
        run(Command::new(KAHI).arg("ctl").arg("-s").arg(&self.socket).args(args))
    }

    /// One raw request line; returns every reply line up to the first one.
    pub fn request(&self, line: &str) -> Value {
        let mut s = UnixStream::connect(&self.socket).expect("connect");
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
        let mut r = BufReader::new(s);
        let mut reply = String::new();
        r.read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("bad reply {reply:?}: {e}"))
    }

    /// `status --json` as values.
    pub fn status(&self) -> Vec<Value> {
        let out = self.ctl(&["status", "--json"]);
        let v: Vec<Value> = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json: {e}: {out:?}"));
        for p in &v {
            if let Some(pid) = p["pid"].as_i64() {
                let mut seen = self.seen.borrow_mut();
                if !seen.contains(&(pid as i32)) {
                    seen.push(pid as i32);
                }
            }
        }
        v
    }

    /// One process's status object.
    pub fn process(&self, name: &str) -> Value {
        self.status()
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no process {name} in status"))
    }

    pub fn state(&self, name: &str) -> String {
        self.process(name)["state"].as_str().unwrap_or("").to_string()
    }

    /// Waits until `name` is in `state`.
    pub fn wait_state(&self, name: &str, state: &str) {
        self.wait_state_within(name, state, DEADLINE);
    }

    pub fn wait_state_within(&self, name: &str, state: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            let last = self.state(name);
            if last == state {
                return;
            }
            if Instant::now() > end {
                panic!(
                    "{name} never reached {state} within {timeout:?} (last {last}); daemon log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log(&self) -> String {
        self.dir.read("daemon.log")
    }

    /// Waits until the daemon's log contains `text`.
    pub fn wait_log(&self, text: &str) {
        let end = Instant::now() + DEADLINE;
        while !self.log().contains(text) {
            if Instant::now() > end {
                panic!("daemon log never contained {text:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: i32) {
        unsafe_kill(self.pid(), sig);
    }

    /// Waits for the daemon to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let end = Instant::now() + timeout;
        let child = self.child.as_mut().expect("daemon running");
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > end {
                panic!("daemon did not exit within {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe_kill(child.id() as i32, 15);
            let end = Instant::now() + Duration::from_secs(15);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Programs outlive a daemon that was killed: those it reported are the test's. What
        // else is left, the Dir's leak check finds when it is dropped, right after this.
        for pid in self.seen.borrow().iter() {
            if alive(*pid) {
                unsafe_kill(*pid, 9);
            }
        }
    }
}

/// kill(2) by pid, through the `kill` command so tests need no libc binding.
pub fn unsafe_kill(pid: i32, sig: i32) {
    if pid > 0 {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status();
    }
}

/// killpg(2): `sig` to every process of the group `pgid`, through the `kill` command.
pub fn kill_group(pgid: i32, sig: i32) {
    if pgid > 0 {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg("--")
            .arg(format!("-{pgid}"))
            .stderr(Stdio::null())
            .status();
    }
}

/// True when `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// Number of open fds of `pid`.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// The fewest fds `pid` has over a few samples 5 ms apart: a control connection of the
/// test's own may be open for a moment at any one of them.
pub fn fewest_fds(pid: i32) -> usize {
    (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(5));
            fd_count(pid)
        })
        .min()
        .unwrap_or(0)
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    status_field(pid, "VmRSS:").unwrap_or(0)
}

/// A numeric field of /proc/PID/status.
pub fn status_field(pid: i32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

impl Daemon {
    /// Like [`Daemon::start`], but `/bin/sh` runs `prelude` and then execs the daemon under its
    /// own pid, so the daemon inherits what `prelude` sets up (an open fd, an ignored signal).
    pub fn start_after(name: &str, prelude: &str, body: &str) -> Daemon {
        let dir = Dir::new(name);
        let socket = dir.join("kahi.sock");
        let text = format!("[server]\nsocket = \"{}\"\n\n{body}", socket.display());
        let config = dir.write("kahi.toml", &text);
        let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
        let mut cmd = dir.command("/bin/sh");
        cmd.arg("-c")
            .arg(format!("{prelude}\nexec \"$0\" daemon -c \"$1\" -v"))
            .arg(KAHI)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        Daemon::spawn(dir, config, socket, cmd)
    }
}

/// One kill -9 of a process and its replacement, as [`restart`] saw them.
#[derive(Debug, Clone, Copy)]
pub struct Restart {
    /// From the kill until `status` showed a new pid, RUNNING.
    pub seen: Duration,
    /// The replacement's pid.
    pub pid: i32,
    /// When the kill was sent, by the wall clock (the one the daemon's log lines carry).
    pub killed: std::time::SystemTime,
    /// When the killed process had ended (a zombie, its parent's SIGCHLD sent), by the same
    /// clock: the kernel's part of a restart ends here and the supervisor's begins.
    pub ended: std::time::SystemTime,
}

/// Kills `name` with SIGKILL and waits until `status` shows a new pid, RUNNING, asked over one
/// connection about every half millisecond; panics if that takes longer than `within`. The
/// clock starts at kill(2) itself, not before a `kill` command is forked, so the figure is
/// Kahi's alone (to a poll's resolution), even on a loaded machine. The moment the process
/// ended is taken from a pidfd of it, which the kernel makes readable as it sends the
/// daemon's SIGCHLD.
pub fn restart(d: &Daemon, name: &str, within: Duration) -> Restart {
    let stream = UnixStream::connect(&d.socket).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let request = format!("{{\"cmd\":\"status\",\"names\":[\"{name}\"]}}\n");
    let mut ask = || -> (Option<i64>, bool) {
        writer.write_all(request.as_bytes()).expect("send status");
        let mut line = String::new();
        reader.read_line(&mut line).expect("read status");
        let r: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let p = &r["processes"][0];
        (p["pid"].as_i64(), p["state"] == "RUNNING")
    };
    let old = ask().0.unwrap_or_else(|| panic!("{name} is not running"));
    let ending = pidfd(old as i32);
    let killed = std::time::SystemTime::now();
    let t0 = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), nix::sys::signal::SIGKILL)
        .unwrap_or_else(|e| panic!("kill -9 {old}: {e}"));
    // No new pid can show before the old process has ended.
    let ended = match ending {
        Some(fd) => {
            let mut p =
                nix::libc::pollfd { fd: fd.as_raw_fd(), events: nix::libc::POLLIN, revents: 0 };
            // SAFETY: one pollfd, valid for the call.
            let n = unsafe { nix::libc::poll(&mut p, 1, within.as_millis() as i32) };
            assert!(n == 1, "{name} (pid {old}) had not ended {within:?} after kill -9");
            std::time::SystemTime::now()
        }
        None => killed,
    };
    while t0.elapsed() < within {
        if let (Some(pid), true) = ask()
            && pid != old
        {
            return Restart { seen: t0.elapsed(), pid: pid as i32, killed, ended };
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    panic!("{name} was not replaced within {within:?}; daemon log:\n{}", d.log());
}

/// A pidfd of `pid` (Linux 5.3 and later), or None where there is none to have.
fn pidfd(pid: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a new fd that nothing else owns.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Kills `name` with SIGKILL and returns how long it took until `status` shows a new pid,
/// RUNNING (see [`restart`]); panics if that takes longer than `within`.
pub fn time_restart(d: &Daemon, name: &str, within: Duration) -> Duration {
    restart(d, name, within).seen
}

/// The millisecond of the day (UTC) of a daemon log line: `2026-12-04T23:36:02.102Z ...`.
pub fn log_ms(line: &str) -> Option<u64> {
    let t = line.get(11..23)?;
    let (h, m, s, ms) = (t.get(0..2)?, t.get(3..5)?, t.get(6..8)?, t.get(9..12)?);
    Some(
        ((h.parse::<u64>().ok()? * 60 + m.parse::<u64>().ok()?) * 60 + s.parse::<u64>().ok()?)
            * 1000
            + ms.parse::<u64>().ok()?,
    )
}
