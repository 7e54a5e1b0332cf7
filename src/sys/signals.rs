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
/// SIGPIPE (which the daemon ignores, and resets for each program when it is started).
///
/// An ignored signal survives exec, and Kahi may have been started with some (`nohup`, or
/// glibc's posix_spawn, which leaves its two internal real-time signals ignored): what it
/// starts must start as a shell would start it, with none. Programs have every signal set
/// back to its default on their way (see `vfork`); this covers the rest, health-check
/// commands among them.
pub fn default_ignored_signals() {
    const SIG_IGN: u64 = 1;
    for sig in catchable().filter(|&sig| sig != nix::libc::SIGPIPE) {
        if handler(sig) == Some(SIG_IGN) {
            raw_sigaction(sig, Some(&SIGACTION_DEFAULT), None);
        }
    }
}

/// The signals whose disposition is not the default now, a bit each (bit n - 1 for signal
/// n); one whose disposition cannot be read counts as changed.
pub(crate) fn not_default() -> u64 {
    catchable().filter(|&sig| handler(sig) != Some(0)).fold(0, |set, sig| set | 1 << (sig - 1))
}

/// Every signal but SIGKILL and SIGSTOP, whose dispositions cannot change.
fn catchable() -> impl Iterator<Item = i32> {
    use nix::libc::{SIGKILL, SIGSTOP};
    (1..=64).filter(|&sig| sig != SIGKILL && sig != SIGSTOP)
}

/// The handler of `sig`, which the kernel's struct sigaction starts with (SIG_DFL 0, SIG_IGN
/// 1, else a function's address); None where it cannot be read.
fn handler(sig: i32) -> Option<u64> {
    let mut old = [0u64; 4];
    (raw_sigaction(sig, None, Some(&mut old)) == 0).then_some(old[0])
}

/// The kernel's struct sigaction with every field zero: SIG_DFL, no flags, an empty mask,
/// whatever the architecture's layout (it starts with the handler; 32 bytes hold it all).
pub(crate) const SIGACTION_DEFAULT: [u64; 4] = [0; 4];

/// rt_sigaction(2) itself, not the C library's wrapper, which refuses the library's own
/// real-time signals. Returns what the system call returns. Async-signal-safe: it touches no
/// memory but `old`, so a child sharing the daemon's memory before its exec may call it.
pub(crate) fn raw_sigaction(sig: i32, new: Option<&[u64; 4]>, old: Option<&mut [u64; 4]>) -> i64 {
    use nix::libc;
    let new = new.map_or(std::ptr::null(), |n| n.as_ptr());
    let old = old.map_or(std::ptr::null_mut(), |o| o.as_mut_ptr());
    // SAFETY: both buffers (where given) outlive the call and are larger than the kernel's
    // structure; the kernel's sigset is 8 bytes.
    unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, new, old, 8usize) }
}

/// rt_sigprocmask(2) itself, on the kernel's 64-bit set (signal n at bit n - 1, the C
/// library's internal signals included): sets the calling thread's mask by `how`
/// (SIG_SETMASK, SIG_BLOCK, ...) and returns the previous one. Async-signal-safe.
pub(crate) fn raw_sigmask(how: i32, set: u64) -> u64 {
    use nix::libc;
    let mut old = 0u64;
    // SAFETY: both sets are 8 bytes, the size passed, and outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &set as *const u64,
            &mut old as *mut u64,
            8usize,
        );
    }
    old
}

/// Sets SIGPIPE to its default disposition, whatever Kahi was started with, so that a write
/// to a pipe whose reader is gone ends the process quietly, as it ends `cat`. Only for
/// commands that print and exit: the daemon must never die of SIGPIPE.
pub fn default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_DFL installs no handler, so nothing runs in signal context.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// Ignores SIGPIPE: the daemon, `kahi run` and `kahi exec` must never die of a write to a
/// pipe or socket whose reader is gone (a client that left); the write fails with EPIPE.
pub fn ignore_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_IGN installs no handler, so nothing runs in signal context.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}
