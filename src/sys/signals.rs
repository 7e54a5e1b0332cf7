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

/// Sets every signal Kahi was started with ignored back to its default disposition, but
/// SIGPIPE (ignored by Rust's runtime, and reset for each program when it is started).
///
/// An ignored signal survives exec, and Kahi may have been started with some (`nohup`, or
/// glibc's posix_spawn, which leaves its two internal real-time signals ignored): its
/// programs must start as a shell would start them, with none. Doing it once here lets
/// programs be started with posix_spawn (no page tables copied, no copy-on-write faults
/// afterwards) instead of fork.
pub fn default_ignored_signals() {
    use nix::libc;
    const SIG_IGN: u64 = 1;
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGPIPE {
            continue;
        }
        // The kernel's struct sigaction starts with the handler; an all-zero one is SIG_DFL
        // with no flags and an empty mask, whatever the architecture's layout.
        let mut old = [0u64; 4];
        let default = [0u64; 4];
        // SAFETY: both buffers outlive the calls and are larger than the kernel's structure.
        // The raw system call, because the C library's wrapper refuses its own signals.
        unsafe {
            let got = libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<u64>(),
                old.as_mut_ptr(),
                8usize,
            );
            if got == 0 && old[0] == SIG_IGN {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    default.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8usize,
                );
            }
        }
    }
}

/// Sets SIGPIPE back to its default disposition (Rust's runtime ignores it before `main`), so
/// that a write to a pipe whose reader is gone ends the process quietly, as it ends `cat`.
/// Only for commands that print and exit: the daemon must never die of SIGPIPE.
pub fn default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_DFL installs no handler, so nothing runs in signal context.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
