//! Kahi as PID 1 of a fresh PID namespace (`unshare --pid --fork --mount-proc`): it reaps
//! orphans, stops every program in reverse priority order on SIGTERM and exits 0, and passes
//! the signals it does not handle itself on to its programs. And, not as PID 1, Kahi is a
//! subreaper: orphans of its programs come to it and are reaped.
//!
//! The namespace is watched from the host's /proc: PPid links are host pids there.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const SIGTERM: i32 = 15;
const SIGUSR1: i32 = 10;

/// `kahi daemon` as PID 1 of a new PID namespace.
pub struct Ns {
    pub dir: Dir,
    /// The `unshare` process; its exit code is Kahi's.
    unshare: Option<Child>,
    /// Kahi's pid as the host sees it.
    pub kahi: i32,
    pub socket: PathBuf,
}

impl Ns {
    /// Starts Kahi under `unshare` on `body`; None (after saying why) when this machine does
    /// not allow a PID namespace.
    pub fn start(name: &str, body: &str) -> Option<Ns> {
        let dir = Dir::new(name);
        let socket = dir.join("kahi.sock");
        let config = dir
            .write("kahi.toml", &format!("[server]\nsocket = \"{}\"\n\n{body}", socket.display()));
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(KAHI)
            .arg("daemon")
            .arg("-c")
            .arg(&config)
            .arg("-v");
        Ns::launch(dir, socket, cmd)
    }

    /// Runs `cmd` (an `unshare` whose child ends up as Kahi) with its output in the test
    /// directory's daemon.log; returns once Kahi answers on `socket`.
    pub fn launch(dir: Dir, socket: PathBuf, mut cmd: Command) -> Option<Ns> {
        let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
        let mut unshare = cmd
            .env(TAG, &dir.tag)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run unshare (util-linux)");
        let end = Instant::now() + DEADLINE;
        loop {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                break;
            }
            if let Some(st) = unshare.try_wait().unwrap() {
                let log = dir.read("daemon.log");
                if log.contains("Operation not permitted") || log.contains("Permission denied") {
                    skip(&format!("unshare cannot make a PID namespace here ({st}): {log}"));
                    return None;
                }
                panic!("unshare exited ({st}) before Kahi answered:\n{log}");
            }
            if Instant::now() > end {
                let _ = unshare.kill();
                panic!("Kahi under unshare never answered:\n{}", dir.read("daemon.log"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let parent = unshare.id() as i32;
        let kahi = children(parent).first().map(|c| c.pid).unwrap_or(0);
        let ns = Ns { dir, unshare: Some(unshare), kahi, socket };
        assert!(kahi > 0, "no child of unshare ({parent}) found");
        // It really is PID 1 over there.
        let nspid = proc_field(kahi, "NSpid:").unwrap_or_default();
        assert_eq!(nspid.split_whitespace().last(), Some("1"), "NSpid of Kahi: {nspid:?}");
        // The socket is bound before the line that says so is logged.
        wait_until("Kahi says it is PID 1", DEADLINE, || ns.log().contains("(as PID 1)"));
        Some(ns)
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        run(Command::new(KAHI).arg("ctl").arg("-s").arg(&self.socket).args(args))
    }

    pub fn state(&self, name: &str) -> String {
        let out = self.ctl(&["status", "--json"]);
        let all: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap_or_default();
        all.iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["state"].as_str())
            .unwrap_or("")
            .to_string()
    }

    pub fn wait_state(&self, name: &str, state: &str) {
        wait_until(&format!("{name} is {state}"), DEADLINE, || self.state(name) == state);
    }

    pub fn log(&self) -> String {
        self.dir.read("daemon.log")
    }

    pub fn wait_log(&self, what: &str, cond: impl Fn(&str) -> bool) {
        let end = Instant::now() + DEADLINE;
        while !cond(&self.log()) {
            if Instant::now() > end {
                panic!("the daemon log never showed {what}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for unshare (and so Kahi) to exit; returns the exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let child = self.unshare.as_mut().expect("running");
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.unshare = None;
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > end {
                panic!("Kahi did not exit within {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let Some(mut child) = self.unshare.take() else { return };
        // unshare ignores SIGTERM while it waits; Kahi is the one to stop. When PID 1 of a
        // namespace dies, the kernel kills everything else in it.
        unsafe_kill(self.kahi, SIGTERM);
        let end = Instant::now() + Duration::from_secs(15);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        if child.try_wait().ok().flatten().is_none() {
            unsafe_kill(self.kahi, 9);
            let _ = child.wait();
        }
    }
}

/// A process as the host's /proc shows it.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub state: char,
    pub name: String,
}

pub fn proc_field(pid: i32, field: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(s.lines().find(|l| l.starts_with(field))?[field.len()..].trim().to_string())
}

/// Every process whose parent is `parent`.
pub fn children(parent: i32) -> Vec<Proc> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        let field = |name: &str| {
            status.lines().find(|l| l.starts_with(name)).map(|l| l[name.len()..].trim().to_string())
        };
        if field("PPid:").and_then(|p| p.parse::<i32>().ok()) != Some(parent) {
            continue;
        }
        let state = field("State:").and_then(|s| s.chars().next()).unwrap_or('?');
        out.push(Proc { pid, state, name: field("Name:").unwrap_or_default() });
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// Every process below `root`, at any depth.
pub fn descendants(root: i32) -> Vec<Proc> {
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for c in children(p) {
            todo.push(c.pid);
            out.push(c);
        }
    }
    out
}

pub fn zombies(root: i32) -> Vec<Proc> {
    descendants(root).into_iter().filter(|p| p.state == 'Z').collect()
}

/// The zombie count can fail: an exited child that nobody waits for is seen as one.
#[test]
fn the_zombie_count_sees_a_zombie() {
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let me = std::process::id() as i32;
    wait_until("the unwaited child shows as a zombie", DEADLINE, || {
        zombies(me).iter().any(|z| z.pid == child.id() as i32)
    });
    child.wait().unwrap();
    assert!(!zombies(me).iter().any(|z| z.pid == child.id() as i32));
}

#[test]
fn orphans_are_reaped_and_no_zombie_remains() {
    let Some(ns) = Ns::start(
        "pid1-orphans",
        "[programs.orphans]\n\
         command = \"/bin/sh -c 'for i in 1 2 3 4 5; do (sleep 0.2 &) ; done; sleep 1000'\"\n\
         startsecs = 0\nstopasgroup = true\n",
    ) else {
        return;
    };
    ns.wait_state("orphans", "RUNNING");
    // Each `sleep 0.2` lost its parent subshell at once, so it was Kahi's child when it exited.
    ns.wait_log("five orphans reaped", |log| log.matches("reaped unknown pid").count() >= 5);
    let left = zombies(ns.kahi);
    assert!(left.is_empty(), "zombies left in the namespace: {left:?}");
    // What remains is the program and its `sleep 1000`: no orphan is still around either.
    let names: Vec<String> = descendants(ns.kahi).into_iter().map(|p| p.name).collect();
    assert_eq!(names.iter().filter(|n| *n == "sleep").count(), 1, "{names:?}");
}

#[test]
fn sigterm_stops_programs_in_reverse_priority_order_and_exits_0() {
    // Each program notes its name when its stop signal arrives. The first to be stopped takes
    // the longest to note it, so stopping them all at once would give the reverse order.
    let dir = Dir::new("pid1-order-files");
    let order = path_str(&dir.join("order"));
    let program = |name: &str, priority: u32, delay: &str| {
        format!(
            "[programs.{name}]\n\
             command = ['/bin/sh', '-c', 'trap \"sleep {delay}; echo {name} >> {order}; exit 0\" TERM; echo up; sleep 1000 & wait']\n\
             priority = {priority}\nstartsecs = 0\nstopasgroup = true\n\n"
        )
    };
    let body = [program("first", 1, "0"), program("second", 2, "0.2"), program("third", 3, "0.4")]
        .concat();
    let Some(mut ns) = Ns::start("pid1-sigterm", &body) else { return };
    for name in ["first", "second", "third"] {
        ns.wait_state(name, "RUNNING");
    }
    // Every trap is set once each program has said so.
    wait_until("every program is up", DEADLINE, || {
        ["first", "second", "third"].iter().all(|n| ns.ctl(&["tail", n]).stdout == "up\n")
    });

    unsafe_kill(ns.kahi, SIGTERM);
    let code = ns.wait_exit(DEADLINE);
    let log = ns.log();
    assert_eq!(code, 0, "Kahi as PID 1 exits 0 after a clean stop:\n{log}");
    assert_eq!(dir.read("order"), "third\nsecond\nfirst\n", "stop order; log:\n{log}");
    let stopped: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("stopped: ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(stopped, ["third", "second", "first"], "{log}");
    assert!(log.contains("exiting with status 0 (pid 1)"), "{log}");
}

#[test]
fn a_signal_to_pid1_is_forwarded_to_programs() {
    let dir = Dir::new("pid1-forward-files");
    let marker = path_str(&dir.join("marker"));
    let body = format!(
        "[programs.trap]\n\
         command = ['/bin/sh', '-c', 'trap \"echo usr1 >> {marker}\" USR1; echo up; while :; do sleep 1000 & p=$!; wait $p; kill $p 2>/dev/null; done']\n\
         startsecs = 0\nstopasgroup = true\n"
    );
    let Some(ns) = Ns::start("pid1-forward", &body) else { return };
    ns.wait_state("trap", "RUNNING");
    wait_until("the trap is set", DEADLINE, || ns.ctl(&["tail", "trap"]).stdout == "up\n");
    assert_eq!(dir.read("marker"), "");

    unsafe_kill(ns.kahi, SIGUSR1);
    wait_until("the program got SIGUSR1", DEADLINE, || dir.read("marker") == "usr1\n");
    // Kahi itself is untouched by it: still serving, the program still the same.
    assert_eq!(ns.state("trap"), "RUNNING");
    assert!(ns.log().contains("(as PID 1)"));
}

#[test]
fn as_a_subreaper_kahi_adopts_and_reaps_orphans() {
    let dir = Dir::new("pid1-subreaper");
    let gc = path_str(&dir.join("grandchild.pid"));
    // The inner shell starts a sleep, writes its pid and exits at once: the sleep is orphaned.
    let body = format!(
        "[programs.parent]\n\
         command = ['/bin/sh', '-c', 'sh -c \"sleep 3 & echo \\$! > {gc}.tmp; mv {gc}.tmp {gc}\"; exec sleep 1000']\n\
         startsecs = 0\n"
    );
    let d = Daemon::start_in(dir, &body);
    d.wait_state("parent", "RUNNING");
    let mut grandchild = 0;
    wait_until("the grandchild's pid is written", DEADLINE, || {
        grandchild = d.dir.read("grandchild.pid").trim().parse().unwrap_or(0);
        grandchild > 0
    });
    wait_until("the orphan is reparented to Kahi", DEADLINE, || {
        proc_field(grandchild, "PPid:").is_some_and(|p| p == d.pid().to_string())
    });
    assert!(alive(grandchild), "the orphan still sleeps");
    assert_eq!(proc_field(grandchild, "Name:").as_deref(), Some("sleep"));

    // Once it exits, Kahi reaps it: it does not linger as a zombie.
    wait_until("the orphan is reaped", Duration::from_secs(30), || {
        !std::path::Path::new(&format!("/proc/{grandchild}")).exists()
    });
    d.wait_log(&format!("reaped unknown pid {grandchild} (exit status 0)"));
    assert!(zombies(d.pid()).is_empty(), "{:?}", zombies(d.pid()));
    assert_eq!(d.state("parent"), "RUNNING");
}
