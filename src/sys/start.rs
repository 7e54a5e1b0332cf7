//! What a Kahi process needs before anything else, done by its own `main`.
//!
//! `main` is the C library's entry point (`#![no_main]` in main.rs), so Rust's runtime
//! start-up does not run. Of what it does, two things matter to Kahi, and are here: fds 0, 1
//! and 2 open, and the arguments. The third, SIGPIPE, `main` sets for each command itself
//! (`signals::ignore_sigpipe`, `signals::default_sigpipe`). What is skipped: finding the main
//! thread's stack guard, which on glibc reads and parses /proc/self/maps, and the alternate
//! signal stack that turns a stack overflow into a message before the abort (without it, the
//! process still dies of the overflow, by SIGSEGV). For `kahi ctl status`, which is over in a
//! millisecond, that was a tenth of its time: docs/performance.md.

use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStrExt;

/// The arguments after the program's name, from what the C library passed `main`. (Rust's
/// `std::env::args` has them before `main` only on glibc; the static build uses musl.)
///
/// # Safety
/// `argv` must hold `argc` pointers to NUL-terminated strings, as `main`'s arguments do.
pub unsafe fn args(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    (1..argc.max(0) as usize)
        .map(|i| {
            // SAFETY: i < argc, and each of argv's first argc entries is a C string.
            let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
            std::ffi::OsStr::from_bytes(arg.to_bytes()).to_os_string()
        })
        .collect()
}

/// Opens /dev/null on whichever of fds 0, 1 and 2 is closed, so that no file or socket Kahi
/// opens later takes a standard stream's number (a log line written to "stderr" would go
/// into it). A PID 1 can be started with them closed. Aborts when /dev/null cannot be
/// opened: running on would be that risk.
pub fn open_standard_fds() {
    use nix::libc;
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: three pollfds, valid for the call; a zero timeout does not wait.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    for p in fds {
        // Where poll itself fails (too many fds for its limit), ask each fd.
        // SAFETY: F_GETFD reads a flag of the fd, or fails with EBADF.
        let closed = if polled < 0 {
            (unsafe { libc::fcntl(p.fd, libc::F_GETFD) }) < 0
        } else {
            p.revents & libc::POLLNVAL != 0
        };
        // SAFETY: open with a constant C string; the fd it returns is the lowest free one,
        // which is this one, since the ones below it are open.
        if closed && unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } != p.fd {
            std::process::abort();
        }
    }
}
