//! Lifecycle, the way down: stop escalation (stopwaitsecs, SIGKILL), process groups
//! (stopasgroup), and the order and exit code of a shutdown, with the real `kahi daemon` and
//! real child processes.

use std::time::{Duration, Instant};

use crate::lifecycle::{log_lines, pid_of, sh, shq, wait_file};
use crate::util::*;

// ---- helpers ----

/// Waits for a file holding one pid, written by a program, and returns the pid.
fn wait_pid_file(d: &Daemon, name: &str) -> i32 {
    let pid: i32 = wait_file(d, name).trim().parse().unwrap_or(0);
    assert!(pid > 0, "{name} does not hold a pid");
    pid
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
