//! Running as a classic Unix daemon on bare metal: `--daemonize` (double fork, setsid, stdio
//! away from the terminal), `--pidfile`, and telling systemd when Kahi is ready.
//!
//! The order matters and [`crate::daemon`] keeps it: the pidfile is claimed (a live one
//! refuses the start) before forking, so the error reaches the terminal; the fork happens
//! before any thread exists; the pidfile is written, and the waiting parent and systemd are
//! told, only once the control socket accepts connections. `kahi ctl` works as soon as the
//! start command returns.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::unistd::{ForkResult, Pid, dup2_stderr, dup2_stdin, dup2_stdout, fork, setsid};

/// The pidfile: claimed before the start, written once ready, removed at exit.
pub struct Pidfile {
    path: PathBuf,
}

impl Pidfile {
    /// Refuses when the file names a running Kahi; a pidfile left by a dead process (or by
    /// a pid that now belongs to something else) is stale, and replaced later.
    pub fn claim(path: &Path) -> Result<Pidfile, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if let Ok(pid) = text.trim().parse::<i32>()
                    && pid > 0
                    && running_kahi(pid)
                {
                    return Err(format!(
                        "pidfile {} names pid {pid}, a kahi that is still running",
                        path.display()
                    ));
                }
                log::info!("replacing the stale pidfile {}", path.display());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("unable to read the pidfile {}: {e}", path.display())),
        }
        // Fail now, on the terminal, rather than after the fork when the directory is missing
        // or not writable.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if let Err(e) = nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK) {
            return Err(format!(
                "unable to write the pidfile {}: directory {}: {e}",
                path.display(),
                dir.display()
            ));
        }
        Ok(Pidfile { path: path.to_path_buf() })
    }

    /// Writes this process's pid: into a new file renamed over the old one, so a reader never
    /// sees a half-written pid.
    pub fn write(&self) -> Result<(), String> {
        let mut tmp = self.path.as_os_str().to_os_string();
        tmp.push(".new");
        let tmp = PathBuf::from(tmp);
        let written = std::fs::write(&tmp, format!("{}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("unable to write the pidfile {}: {e}", self.path.display())
        })
    }

    /// Removes the file, if it still names this process.
    pub fn remove(&self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|t| t.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `pid` runs and looks like Kahi: a pid reused by another program after a reboot or
/// a crash must not block the start forever.
fn running_kahi(pid: i32) -> bool {
    match nix::sys::signal::kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(_) => return false,
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            cmdline.split(|b| *b == 0).take(2).any(|arg| arg.ends_with(b"kahi") || arg == b"daemon")
        }
        // No /proc to tell: assume the worst.
        Err(_) => true,
    }
}

/// The detached daemon's line back to the command that started it.
pub struct Detached {
    ready: Option<File>,
    output: Option<PathBuf>,
}

/// Detaches from the terminal. Returns in the daemon (the grandchild, in a new session); the
/// command that was run waits until [`Detached::ready`] or [`Detached::failed`] and exits with
/// 0 or 1, printing the error. Must run before any thread is started.
pub fn daemonize(output: Option<PathBuf>) -> Result<Detached, i32> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| {
        eprintln!("kahi: unable to daemonize: pipe: {e}");
        1
    })?;
    // SAFETY: no other thread exists yet (the caller's contract), so the child may go on
    // running ordinary code.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => {
            drop(w);
            Err(wait_for_daemon(r, child))
        }
        Ok(ForkResult::Child) => {
            drop(r);
            let _ = setsid();
            // SAFETY: as above; the first child exits at once, the second goes on.
            match unsafe { fork() } {
                // SAFETY: _exit skips flushing buffers the parent still owns.
                Ok(ForkResult::Parent { .. }) => unsafe { nix::libc::_exit(0) },
                Ok(ForkResult::Child) => {}
                Err(e) => {
                    let _ = File::from(w).write_all(format!("fork: {e}").as_bytes());
                    // SAFETY: as above.
                    unsafe { nix::libc::_exit(1) }
                }
            }
            // Not a session leader: the daemon can never acquire a terminal again.
            let _ = std::env::set_current_dir("/");
            Ok(Detached { ready: Some(File::from(w)), output })
        }
        Err(e) => {
            eprintln!("kahi: unable to daemonize: fork: {e}");
            Err(1)
        }
    }
}

/// In the command that was run: the daemon's outcome as an exit code.
fn wait_for_daemon(r: OwnedFd, child: Pid) -> i32 {
    let _ = nix::sys::wait::waitpid(child, None);
    let mut said = String::new();
    let _ = File::from(r).read_to_string(&mut said);
    match said.as_str() {
        "ready" => 0,
        "" => {
            eprintln!("kahi: the daemon exited before it was ready; see its log");
            1
        }
        error => {
            eprintln!("kahi: {error}");
            1
        }
    }
}

impl Detached {
    /// Stdin from /dev/null, stdout and stderr to `output` (appended) or /dev/null, from now
    /// on; done before the event loop looks at them.
    pub fn redirect(&mut self) -> Result<(), String> {
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("unable to open /dev/null: {e}"))?;
        let out = match &self.output {
            Some(p) => File::options()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("unable to open the log {}: {e}", p.display()))?,
            None => null.try_clone().map_err(|e| format!("unable to dup /dev/null: {e}"))?,
        };
        let _ = dup2_stdin(null.as_fd());
        let _ = dup2_stdout(out.as_fd());
        let _ = dup2_stderr(out.as_fd());
        Ok(())
    }

    /// Lets the command that was run exit 0.
    pub fn ready(&mut self) {
        if let Some(mut w) = self.ready.take() {
            let _ = w.write_all(b"ready");
        }
    }

    /// Lets the command that was run print `error` and exit 1.
    pub fn failed(&mut self, error: &str) {
        if let Some(mut w) = self.ready.take() {
            let _ = w.write_all(error.as_bytes());
        }
    }
}

/// Sends `state` (`READY=1`, `STOPPING=1`, …) to the service manager that started Kahi, when
/// one did (NOTIFY_SOCKET, as sd_notify(3) defines it: a path, or `@` for the abstract
/// namespace). [`take_notify_socket`] must have run first.
pub fn notify_manager(state: &str) {
    let Some(addr) = MANAGER.get().and_then(|a| a.as_ref()) else { return };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else { return };
    if let Err(e) = sock.send_to_addr(state.as_bytes(), addr) {
        log::warn!("unable to notify the service manager ({state}): {e}");
    }
}

static MANAGER: std::sync::OnceLock<Option<std::os::unix::net::SocketAddr>> =
    std::sync::OnceLock::new();

/// Takes NOTIFY_SOCKET out of the environment, so programs do not inherit it (a program of
/// `type = "notify"` gets Kahi's own socket instead), and keeps it for [`notify_manager`].
/// Must run before any thread is started.
pub fn take_notify_socket() {
    use std::os::linux::net::SocketAddrExt;
    let value = std::env::var_os("NOTIFY_SOCKET");
    // SAFETY: Kahi has one thread at this point (the caller's contract).
    unsafe { std::env::remove_var("NOTIFY_SOCKET") };
    let addr = value.and_then(|v| {
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name),
            None => std::os::unix::net::SocketAddr::from_pathname(Path::new(&v)),
        };
        addr.map_err(|e| log::warn!("NOTIFY_SOCKET={v:?} is not a usable address: {e}")).ok()
    });
    let _ = MANAGER.set(addr);
}
