//! `kahi exec [--] CMD ARGS…`: one child, no configuration, as tini runs it. Kahi starts the
//! command in its own process group (the terminal's foreground group when there is one),
//! passes on every signal it receives, reaps every orphan that reaches it, and exits with the
//! child's status: its exit code, or 128 + N when signal N killed it.
//!
//! No event loop: every signal stays blocked and is taken with `sigwait`, so none is lost
//! between two waits and none needs a handler (as PID 1, a signal without a handler and not
//! blocked would simply be dropped by the kernel).

use std::ffi::CString;

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, signal, sigprocmask};
use nix::unistd::{ForkResult, Pid, execvp, fork};

use crate::sys::{reap, signals};

/// The exit code when the command cannot be run, as a shell reports it: 127 when it is not
/// found, 126 when it is found but cannot be executed.
fn exec_failure(e: Errno) -> i32 {
    if e == Errno::ENOENT { 127 } else { 126 }
}

/// Signals that stay unblocked: faults Kahi itself might raise, and the job-control stops a
/// terminal sends to a background group.
const NOT_TAKEN: &[Signal] = &[
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

pub fn run(command: Vec<String>) -> i32 {
    let Some(program) = command.first() else {
        eprintln!("kahi exec: no command given\nUsage: kahi exec [--] COMMAND [ARGS...]");
        return 2;
    };
    let argv: Vec<CString> = match command.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(v) => v,
        Err(_) => {
            eprintln!("kahi exec: an argument holds a NUL byte");
            return 2;
        }
    };
    let failed = format!("kahi exec: {program}: ");

    if !signals::is_pid1() {
        // Orphans of the child come to Kahi rather than to the host's init.
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
    let mut taken = SigSet::all();
    for s in NOT_TAKEN {
        taken.remove(*s);
    }
    let mut old = SigSet::empty();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&taken), Some(&mut old)) {
        eprintln!("kahi exec: unable to block signals: {e}");
        return 1;
    }
    // The command gets the signal mask and the ignored signals Kahi was started with, as tini
    // gives them: a signal ignored on purpose (`nohup` ignores SIGHUP) stays ignored. SIGPIPE
    // is the exception, at its default whatever Kahi was started with: ignored, it would make
    // `yes | head` print "Broken pipe" instead of ending quietly. Blocked like every other
    // signal here, it is taken by `sigwait` and passed on like them too.
    signals::default_sigpipe();

    // SAFETY: Kahi has one thread here; the child only calls async-signal-safe functions
    // (setpgid, sigprocmask, tcsetpgrp, execvp, write, _exit) before it execs or exits.
    let child = match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => {
            // Kahi is in the background of the terminal now: a message it writes there (with
            // `stty tostop`) or a read must not stop it, as tini ignores them too.
            // SAFETY: SIG_IGN installs no handler.
            unsafe {
                let _ = signal(Signal::SIGTTOU, SigHandler::SigIgn);
                let _ = signal(Signal::SIGTTIN, SigHandler::SigIgn);
            }
            child
        }
        Ok(ForkResult::Child) => {
            let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            // The terminal's foreground group, so ^C and ^Z reach the command. The new group
            // is a background one until then, and a background group that asks for the
            // terminal is stopped by SIGTTOU unless it blocks or ignores it: blocked here,
            // until the mask Kahi was started with is restored below. Without a terminal,
            // ENOTTY, which is fine.
            let ttou = SigSet::from(Signal::SIGTTOU);
            let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&ttou), None);
            let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpgrp());
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            let e = execvp(&argv[0], &argv).unwrap_err();
            let stderr = std::io::stderr();
            let _ = nix::unistd::write(&stderr, failed.as_bytes());
            let _ = nix::unistd::write(&stderr, e.desc().as_bytes());
            let _ = nix::unistd::write(&stderr, b"\n");
            // SAFETY: _exit skips the parent's atexit handlers and buffers, as a forked
            // child must.
            unsafe { nix::libc::_exit(exec_failure(e)) }
        }
        Err(e) => {
            eprintln!("kahi exec: unable to fork: {e}");
            return 1;
        }
    };

    loop {
        let sig = match taken.wait() {
            Ok(s) => s,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("kahi exec: sigwait: {e}");
                return 1;
            }
        };
        if sig != Signal::SIGCHLD {
            // The child may be gone already: its exit is still queued as a SIGCHLD.
            let _ = kill(child, sig);
            continue;
        }
        let mut code = None;
        for (pid, status) in reap::reap(usize::MAX, None).0 {
            if pid == child.as_raw() {
                code = Some(status.code());
            }
        }
        if let Some(code) = code {
            return code;
        }
    }
}
