//! Starting a program: pipes for its output, its own process group, its user, directory,
//! umask, limits and environment, sockets for socket activation, and, with
//! `[server] orphans = "kill"`, death with Kahi.
//!
//! Every program is started by [`super::vfork`]: clone(CLONE_VM | CLONE_VFORK), as posix_spawn
//! does inside, so the daemon's page tables are not copied however large it grows (with a
//! thousand programs, fork and exec started them a third slower than posix_spawn), yet the
//! child can switch user, set limits and ask for PR_SET_PDEATHSIG, which posix_spawn cannot.
//! An exec failure is reported as an error, so "No such file or directory" is known rather
//! than guessed from an early exit. Every fd Kahi opens is CLOEXEC, so none leaks into a
//! program; the daemon ignores no signal but SIGPIPE, which the child resets with every other.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::libc;
use nix::unistd::{AccessFlags, access, pipe2};

use super::environ::Environment;
use super::vfork;
use crate::config::ProcessSpec;

/// Where a command without a slash is looked for when no PATH is set.
pub(crate) const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// What a process is handed besides its pipes: listening sockets for fds 3, 4, ... (socket
/// activation) and the `cgroup.procs` of the cgroup it joins.
#[derive(Clone, Copy, Default)]
pub struct Given<'a> {
    pub sockets: &'a [RawFd],
    pub cgroup: Option<RawFd>,
    /// A connection for stdin and stdout (an instance of an `accept = true` program).
    pub connection: Option<RawFd>,
    /// The listening socket for stdin (a FastCGI program's), instead of /dev/null.
    pub stdin: Option<RawFd>,
    /// PR_SET_PDEATHSIG: the program is killed when Kahi dies (`[server] orphans = "kill"`).
    /// The kernel sends it when the *thread* that started the program ends: programs are
    /// started on the event loop's thread, the process's main thread, which ends only with
    /// the process (the HTTP front and password-checker threads start none).
    pub die_with_kahi: bool,
}

/// A program just started: its pid and the read ends of its output pipes (non-blocking).
pub struct Spawned {
    pub pid: i32,
    pub stdout: OwnedFd,
    /// None when stderr goes into the stdout pipe.
    pub stderr: Option<OwnedFd>,
    /// The write end of its stdin pipe (non-blocking), with `stdin_pipe`; else its stdin is
    /// /dev/null.
    pub stdin: Option<OwnedFd>,
}

/// Why a spawn failed: the message names what failed; the errno, where there is one, tells a
/// shortage (fds, processes, memory) that passes from a fault of the program's settings.
#[derive(Debug)]
pub struct SpawnError {
    pub message: String,
    pub errno: Option<Errno>,
}

impl SpawnError {
    fn new(message: String, errno: Errno) -> SpawnError {
        SpawnError { message, errno: Some(errno) }
    }

    /// The system is short of something for now: the start is tried again, and does not count
    /// toward startretries.
    pub fn transient(&self) -> bool {
        matches!(self.errno, Some(Errno::EMFILE | Errno::ENFILE | Errno::EAGAIN | Errno::ENOMEM))
    }
}

/// Starts one process of `spec`; a notify program gets `notify` as NOTIFY_SOCKET, a socket
/// program its listening `sockets` as fds 3, 4, ... (systemd's LISTEN_FDS protocol). The
/// error names what failed and why.
pub fn spawn(
    spec: &ProcessSpec,
    notify: Option<&Path>,
    given: Given,
) -> Result<Spawned, SpawnError> {
    let sockets = given.sockets;
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| SpawnError::new(format!("unable to create a pipe: {e}"), e))?;
    let (err_r, err_w) = if spec.redirect_stderr {
        let w = out_w.try_clone().map_err(|e| {
            let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
            SpawnError::new(format!("unable to duplicate a pipe: {e}"), errno)
        })?;
        (None, w)
    } else {
        let (r, w) = pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| SpawnError::new(format!("unable to create a pipe: {e}"), e))?;
        (Some(r), w)
    };

    let (in_r, in_w) = if spec.stdin_pipe {
        let (r, w) = pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| SpawnError::new(format!("unable to create a pipe: {e}"), e))?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };

    let mut env = Environment::for_program(spec);
    if spec.kind == crate::config::Kind::Notify {
        if let Some(path) = notify {
            env.set("NOTIFY_SOCKET", path.as_os_str().as_bytes());
        }
        if !spec.watchdog_sec.is_zero() {
            env.set("WATCHDOG_USEC", spec.watchdog_sec.as_micros().to_string().as_bytes());
        }
    }
    if !sockets.is_empty() {
        // LISTEN_PID is the child's own pid, written in by the child before its exec.
        env.set("LISTEN_FDS", sockets.len().to_string().as_bytes());
        let names = vec![spec.program.as_str(); sockets.len()].join(":");
        env.set("LISTEN_FDNAMES", names.as_bytes());
        env.set("LISTEN_PID", LISTEN_PID_ROOM.as_bytes());
    }
    let stdin = match (&in_r, given.stdin) {
        (Some(r), _) => r.as_raw_fd(),
        (None, Some(socket)) => socket,
        (None, None) => empty_input()
            .map_err(|e| SpawnError::new(format!("unable to open /dev/null: {e}"), e))?
            .as_raw_fd(),
    };
    let stdio = [stdin, out_w.as_raw_fd(), err_w.as_raw_fd()];
    let started = resolve(&spec.argv[0], env.get("PATH"))
        .map_err(|errno| vfork::Failure { errno, step: vfork::Step::Exec })
        .and_then(|path| start(spec, &path, &mut env, stdio, given));
    // The write ends close here: EOF arrives when the program's copies close.
    drop((out_w, err_w, in_r));
    let pid = started.map_err(|f| SpawnError::new(failure_text(spec, f), f.errno))?;

    let nonblocking =
        |fd: &OwnedFd| set_nonblocking(fd).map_err(|message| SpawnError { message, errno: None });
    nonblocking(&out_r)?;
    if let Some(r) = &err_r {
        nonblocking(r)?;
    }
    if let Some(w) = &in_w {
        nonblocking(w)?;
    }
    Ok(Spawned { pid, stdout: out_r, stderr: err_r, stdin: in_w })
}

/// The file to execute for `command`: itself when it holds a slash, else the first executable
/// file of that name in `path`, the program's PATH, as execvp(3) looks for it.
pub(crate) fn resolve(command: &str, path: Option<&OsStr>) -> Result<PathBuf, Errno> {
    if command.contains('/') {
        return Ok(PathBuf::from(command));
    }
    let mut denied = false;
    for dir in path.unwrap_or(OsStr::new(DEFAULT_PATH)).as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() { Path::new(".") } else { Path::new(OsStr::from_bytes(dir)) };
        let candidate = dir.join(command);
        match access(&candidate, AccessFlags::X_OK) {
            Ok(()) if candidate.is_file() => return Ok(candidate),
            Err(Errno::EACCES) => denied = true,
            _ => {}
        }
    }
    Err(if denied { Errno::EACCES } else { Errno::ENOENT })
}

fn cstring(s: &[u8]) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

/// What a program without `stdin_pipe` reads: /dev/null, or where there is no /dev (a bare
/// scratch image) a pipe whose write end is closed, which reads as the end of input as well.
/// Opened once; stays open for the daemon's life (close-on-exec).
pub fn empty_input() -> Result<&'static OwnedFd, Errno> {
    static EMPTY: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
    if let Some(fd) = EMPTY.get() {
        return Ok(fd);
    }
    let fd = match std::fs::File::open("/dev/null") {
        Ok(f) => OwnedFd::from(f),
        Err(_) => pipe2(OFlag::O_CLOEXEC)?.0,
    };
    Ok(EMPTY.get_or_init(|| fd))
}

/// Room for the digits of a pid in LISTEN_PID's value, filled in by the child.
const LISTEN_PID_ROOM: &str = "                    ";

/// What a failed start says: `COMMAND: strerror` when the command could not be run (what
/// supervisord says, and what NO_FILE and exit status 127 are read from), else the step that
/// failed: the directory, the user, a limit.
fn failure_text(spec: &ProcessSpec, f: vfork::Failure) -> String {
    let what = match f.step {
        vfork::Step::Directory => {
            spec.directory.as_ref().map(|dir| format!("directory {}", dir.display()))
        }
        vfork::Step::User => {
            spec.user.as_ref().map(|u| format!("user {} (uid {}, gid {})", u.name, u.uid, u.gid))
        }
        vfork::Step::Limit(i) => spec.limits.get(i).map(|(limit, value)| {
            let value = value.map_or_else(|| "unlimited".to_string(), |v| v.to_string());
            format!("limits.{} = {value}", limit.name())
        }),
        vfork::Step::Prepare | vfork::Step::Exec => None,
    };
    format!("{}: {}", what.as_deref().unwrap_or(&spec.argv[0]), f.errno.desc())
}

/// Starts the program: `stdio` for its fds 0 to 2, the rest as `given` says.
fn start(
    spec: &ProcessSpec,
    path: &Path,
    env: &mut Environment,
    stdio: [RawFd; 3],
    Given { sockets, cgroup, connection, die_with_kahi, .. }: Given,
) -> Result<i32, vfork::Failure> {
    let file = cstring(path.as_os_str().as_bytes())?;
    let args = spec.argv.iter().map(|a| cstring(a.as_bytes())).collect::<Result<Vec<_>, _>>()?;
    let argv: Vec<*const libc::c_char> =
        args.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
    // The child writes LISTEN_PID's digits into the room set for them, through a pointer made
    // for writing (the room holds 20 bytes and the NUL).
    let pid_digits = if sockets.is_empty() {
        None
    } else {
        Some(env.value_ptr_mut("LISTEN_PID").ok_or(Errno::EINVAL)?)
    };
    let envp = env.envp()?;
    let dir = spec.directory.as_ref().map(|d| cstring(d.as_os_str().as_bytes())).transpose()?;
    let groups: Vec<libc::gid_t> = spec.user.as_ref().map(|u| u.groups.clone()).unwrap_or_default();
    let limits: Vec<(libc::c_int, u64)> =
        spec.limits.iter().map(|(l, v)| (resource(*l), v.unwrap_or(libc::RLIM_INFINITY))).collect();
    let mut sockets = sockets.to_vec();
    debug_assert!(
        !die_with_kahi || nix::unistd::gettid() == nix::unistd::getpid(),
        "PR_SET_PDEATHSIG would follow a thread that may end before Kahi"
    );
    vfork::spawn(vfork::Plan {
        file: &file,
        argv: &argv,
        envp: &envp,
        directory: dir.as_deref(),
        stdio,
        connection,
        sockets: &mut sockets,
        cgroup,
        limits: &limits,
        user: spec.user.as_ref().map(|u| vfork::User { uid: u.uid, gid: u.gid, groups: &groups }),
        umask: spec.umask,
        // SIGKILL: Kahi, which would have sent the stop signal and waited, is gone; see
        // `orphans` in kahi.toml(5).
        death_signal: die_with_kahi.then_some(libc::SIGKILL),
        pid_digits,
    })
}

fn resource(l: crate::config::Limit) -> libc::c_int {
    use crate::config::Limit;
    (match l {
        Limit::Nofile => libc::RLIMIT_NOFILE,
        Limit::Nproc => libc::RLIMIT_NPROC,
        Limit::Core => libc::RLIMIT_CORE,
        Limit::As => libc::RLIMIT_AS,
        Limit::Cpu => libc::RLIMIT_CPU,
        Limit::Memlock => libc::RLIMIT_MEMLOCK,
        Limit::Stack => libc::RLIMIT_STACK,
    }) as libc::c_int
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), String> {
    let flags =
        fcntl(fd, FcntlArg::F_GETFL).map_err(|e| format!("fcntl({}): {e}", fd.as_raw_fd()))?;
    fcntl(fd, FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK))
        .map_err(|e| format!("fcntl({}): {e}", fd.as_raw_fd()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_env(path: &str) -> Option<&OsStr> {
        Some(OsStr::new(path))
    }

    #[test]
    fn a_command_is_looked_for_in_the_programs_path() {
        let dir = std::env::temp_dir().join(format!("kahi-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("not-executable");
        std::fs::write(&plain, "").unwrap();
        let d = dir.display();
        assert_eq!(
            resolve("sh", path_env(&format!("/nonexistent:{d}:/bin"))),
            Ok("/bin/sh".into())
        );
        assert_eq!(resolve("./x/y", path_env("/bin")), Ok("./x/y".into()));
        assert_eq!(resolve("no-such-command", path_env("/bin")), Err(Errno::ENOENT));
        // Found but not executable, and nothing better later: EACCES, as execvp says.
        assert_eq!(resolve("not-executable", path_env(&format!("{d}"))), Err(Errno::EACCES));
        // A directory of that name is skipped.
        std::fs::create_dir_all(dir.join("subdir")).unwrap();
        assert_eq!(resolve("subdir", path_env(&format!("{d}"))), Err(Errno::ENOENT));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
