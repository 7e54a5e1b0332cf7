//! The signals Kahi handles, and the ones it passes on to its programs when it is PID 1.

use nix::sys::signal::Signal;

/// Signals the daemon acts on itself.
pub const HANDLED: &[Signal] = &[
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGUSR2,
];

/// Signals Kahi forwards to every running program. The synchronous faults
/// (SIGSEGV, SIGBUS, ...), SIGKILL/SIGSTOP and the job-control signals stay out of the set.
pub const FORWARDED: &[Signal] =
    &[Signal::SIGUSR1, Signal::SIGWINCH, Signal::SIGALRM, Signal::SIGPWR, Signal::SIGCONT];

/// True when this process is PID 1 of its namespace.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Makes Kahi adopt orphans of its programs, so it reaps them even when it is not PID 1.
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        log::warn!(
            "unable to become a child subreaper: prctl: {e}; orphans of programs will be reaped by PID 1 instead"
        );
    }
}
