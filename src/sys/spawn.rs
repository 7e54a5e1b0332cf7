//! Starting a program: pipes for its output, its own process group, its user, directory,
//! umask and environment.
//!
//! `std::process::Command` does the fork and exec, and reports an exec failure through its
//! CLOEXEC error pipe, so "No such file or directory" is known rather than guessed from an
//! early exit. The only code that runs between fork and exec is the `pre_exec` closure below,
//! which makes async-signal-safe system calls and nothing else. Every fd Kahi opens is
//! CLOEXEC, so none leaks into a program.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::{Gid, Uid, pipe2};

use crate::config::ProcessSpec;

/// A program just started: its pid and the read ends of its output pipes (non-blocking).
pub struct Spawned {
    pub pid: i32,
    pub stdout: OwnedFd,
    /// None when stderr goes into the stdout pipe.
    pub stderr: Option<OwnedFd>,
}

/// Starts one process of `spec`. The error names what failed and why.
pub fn spawn(spec: &ProcessSpec) -> Result<Spawned, String> {
    let (out_r, out_w) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("unable to create a pipe: {e}"))?;
    let (err_r, err_w) = if spec.redirect_stderr {
        let w = out_w.try_clone().map_err(|e| format!("unable to duplicate a pipe: {e}"))?;
        (None, w)
    } else {
        let (r, w) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("unable to create a pipe: {e}"))?;
        (Some(r), w)
    };

    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..]);
    if spec.clean_environment {
        cmd.env_clear();
    }
    cmd.env("SUPERVISOR_ENABLED", "1")
        .env("SUPERVISOR_PROCESS_NAME", &spec.name)
        .env("SUPERVISOR_GROUP_NAME", &spec.group);
    cmd.envs(spec.environment.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &spec.directory {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
    // Its own process group, so a stop can signal the whole group and a terminal's ^C sent to
    // Kahi's group does not reach programs behind its back.
    cmd.process_group(0);

    {
        let user = spec.user.clone();
        let groups: Vec<Gid> = user
            .as_ref()
            .map(|u| u.groups.iter().map(|g| Gid::from_raw(*g)).collect())
            .unwrap_or_default();
        let umask = spec.umask;
        // A program starts with every signal at its default disposition, as a shell would
        // start it. Handlers are reset by exec, but an ignored signal survives it, and Kahi
        // may have been started with some ignored (`nohup`, or glibc's posix_spawn, which
        // leaves its two internal real-time signals ignored).
        // SAFETY: the closure runs in the child between fork and exec. It only makes system
        // calls (sigaction, setgroups, setgid, setuid, umask) on data prepared before the fork:
        // no allocation, no locks, no logging.
        unsafe {
            cmd.pre_exec(move || {
                reset_signal_dispositions();
                if let Some(u) = &user {
                    // Order matters: groups and gid can only be changed while still root.
                    if nix::unistd::getuid().is_root() {
                        nix::unistd::setgroups(&groups)?;
                    }
                    nix::unistd::setgid(Gid::from_raw(u.gid))?;
                    nix::unistd::setuid(Uid::from_raw(u.uid))?;
                }
                if let Some(mask) = umask {
                    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
                }
                Ok(())
            });
        }
    }

    let child = cmd.spawn().map_err(|e| {
        let what = match (&spec.directory, e.kind()) {
            (Some(dir), std::io::ErrorKind::NotFound) if !dir.is_dir() => {
                format!("directory {}", dir.display())
            }
            _ => spec.argv[0].clone(),
        };
        format!("{what}: {}", strip_os_error(&e))
    })?;
    let pid = child.id() as i32;
    // The Child is dropped without waiting: the event loop reaps every pid itself.
    drop(child);
    drop(cmd); // closes our copies of the write ends, so EOF arrives when the program's close

    set_nonblocking(&out_r)?;
    if let Some(r) = &err_r {
        set_nonblocking(r)?;
    }
    Ok(Spawned { pid, stdout: out_r, stderr: err_r })
}

/// Sets every catchable signal to SIG_DFL. Only rt_sigaction(2): safe between fork and exec.
/// The raw system call, because the C library's wrapper refuses its own internal signals.
fn reset_signal_dispositions() {
    use nix::libc;
    // An all-zero kernel sigaction is SIG_DFL with no flags and an empty mask, whatever the
    // architecture's layout of the structure.
    let default = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `default` outlives the call and is larger than the kernel's structure;
        // the old action is not asked for. A failure leaves that one signal as it was.
        unsafe {
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

fn set_nonblocking(fd: &OwnedFd) -> Result<(), String> {
    let flags =
        fcntl(fd, FcntlArg::F_GETFL).map_err(|e| format!("fcntl({}): {e}", fd.as_raw_fd()))?;
    fcntl(fd, FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK))
        .map_err(|e| format!("fcntl({}): {e}", fd.as_raw_fd()))?;
    Ok(())
}

/// "No such file or directory (os error 2)" -> "No such file or directory".
fn strip_os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
