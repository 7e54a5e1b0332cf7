//! Reaping: `waitpid(-1, WNOHANG)` until nothing is left, on every SIGCHLD (signals coalesce,
//! so one SIGCHLD may stand for many exits), at most `max` per call and no later than a
//! deadline, so that thousands of exits at once do not hold the event loop: the caller calls
//! again, with no wait, while a call comes back cut short. Each such call walks the kernel's
//! list of children up to the first that has ended (10,000 children: ~0.15 ms a call), so the
//! caller first reaps the exits it can name, by pid ([`reap_pid`]). EINTR is retried; unknown pids (orphans reparented to Kahi as PID 1 or
//! subreaper) are reaped like any other and reported, so the caller can forget them.

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::time::Instant;

use crate::process::ExitStatus;

/// The children that have ended since the last call, with how they ended, and whether that
/// is all of them: false when `max` were found or `until` passed first.
pub fn reap(max: usize, until: Option<Instant>) -> (Vec<(i32, ExitStatus)>, bool) {
    let mut out = Vec::new();
    loop {
        if out.len() >= max || (!out.is_empty() && until.is_some_and(|t| Instant::now() >= t)) {
            return (out, false);
        }
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => out.push((pid.as_raw(), ExitStatus::Exited(code))),
            Ok(WaitStatus::Signaled(pid, sig, core_dumped)) => {
                out.push((pid.as_raw(), ExitStatus::Signaled { signal: sig as i32, core_dumped }))
            }
            Ok(WaitStatus::StillAlive) => break,
            // Stopped/continued children are not reported without WUNTRACED/WCONTINUED.
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => break,
            Err(e) => {
                log::warn!("unable to reap children: waitpid: {e}");
                break;
            }
        }
    }
    (out, true)
}

/// `pid`'s exit, if it has ended: a look at one child, which costs the kernel nothing like a
/// scan of every child (`waitpid(-1)` walks the whole list of children, and a shutdown of
/// thousands at once made that the daemon's main cost).
pub fn reap_pid(pid: i32) -> Option<ExitStatus> {
    loop {
        return match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Some(ExitStatus::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, core_dumped)) => {
                Some(ExitStatus::Signaled { signal: sig as i32, core_dumped })
            }
            Err(Errno::EINTR) => continue,
            _ => None,
        };
    }
}
