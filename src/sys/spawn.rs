//! Starting a program: pipes for its output, its own process group, its user, directory,
//! umask and environment.
//!
//! Most programs are started with posix_spawn(3), which shares the daemon's memory until the
//! exec instead of copying its page tables (with a thousand programs, startup is a third
//! faster) and resets every signal to its default disposition on the way. A program with a
//! `user`, a `umask` or `limits` needs code between fork and exec: `std::process::Command`
//! does the fork and exec, and its `pre_exec` closure makes async-signal-safe system calls and
//! nothing else.
//! Both report an exec failure as an error, so "No such file or directory" is known rather
//! than guessed from an early exit. Every fd Kahi opens is CLOEXEC, so none leaks into a
//! program; the daemon ignores no signal but SIGPIPE, which both paths reset.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::libc;
use nix::unistd::{AccessFlags, Gid, Uid, access, pipe2};

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
    let Given { sockets, cgroup, connection } = given;
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

    let mut env = environment(spec);
    if spec.kind == crate::config::Kind::Notify {
        if let Some(path) = notify {
            set_var(&mut env, "NOTIFY_SOCKET", path.as_os_str());
        }
        if !spec.watchdog_sec.is_zero() {
            let usec = spec.watchdog_sec.as_micros().to_string();
            set_var(&mut env, "WATCHDOG_USEC", OsStr::new(&usec));
        }
    }
    if !sockets.is_empty() {
        // LISTEN_PID is the child's own pid, written in by the child before its exec.
        set_var(&mut env, "LISTEN_FDS", OsStr::new(&sockets.len().to_string()));
        let names = vec![spec.program.as_str(); sockets.len()].join(":");
        set_var(&mut env, "LISTEN_FDNAMES", OsStr::new(&names));
        set_var(&mut env, "LISTEN_PID", OsStr::new(LISTEN_PID_ROOM));
    }
    let started = resolve(&spec.argv[0], &env).and_then(|path| {
        if spec.user.is_some()
            || spec.umask.is_some()
            || !spec.limits.is_empty()
            || !sockets.is_empty()
            || cgroup.is_some()
            || connection.is_some()
        {
            fork_exec(spec, &path, &env, (out_w, err_w, in_r), given)
        } else {
            posix_spawn(spec, &path, &env, &out_w, &err_w, in_r.as_ref())
            // The write ends close here: EOF arrives when the program's copies close.
        }
    });
    let pid = started.map_err(|e| {
        let what = match (&spec.directory, e) {
            (Some(dir), Errno::ENOENT) if !dir.is_dir() => format!("directory {}", dir.display()),
            _ => spec.argv[0].clone(),
        };
        SpawnError::new(format!("{what}: {}", e.desc()), e)
    })?;

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

/// The program's environment: the daemon's (unless `clean_environment`), then the
/// `SUPERVISOR_*` variables, then the program's `environment`, later ones replacing earlier.
pub(crate) fn environment(spec: &ProcessSpec) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> =
        if spec.clean_environment { Vec::new() } else { std::env::vars_os().collect() };
    let supervisor = [
        ("SUPERVISOR_ENABLED", "1"),
        ("SUPERVISOR_PROCESS_NAME", spec.name.as_str()),
        ("SUPERVISOR_GROUP_NAME", spec.group.as_str()),
    ];
    let own = spec.environment.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (k, v) in supervisor.into_iter().chain(own) {
        match env.iter_mut().find(|(name, _)| name == k) {
            Some(e) => e.1 = v.into(),
            None => env.push((k.into(), v.into())),
        }
    }
    env
}

fn set_var(env: &mut Vec<(OsString, OsString)>, k: &str, v: &OsStr) {
    match env.iter_mut().find(|(name, _)| name == k) {
        Some(e) => e.1 = v.to_os_string(),
        None => env.push((k.into(), v.to_os_string())),
    }
}

/// The file to execute for `command`: itself when it holds a slash, else the first executable
/// file of that name in the program's PATH, as execvp(3) looks for it.
pub(crate) fn resolve(command: &str, env: &[(OsString, OsString)]) -> Result<PathBuf, Errno> {
    if command.contains('/') {
        return Ok(PathBuf::from(command));
    }
    let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_os_str());
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

/// Starts the program with posix_spawn: stdin from its pipe or /dev/null, stdout and stderr
/// on the pipes, its own process group, no blocked signal and every signal at its default
/// disposition.
fn posix_spawn(
    spec: &ProcessSpec,
    path: &Path,
    env: &[(OsString, OsString)],
    out_w: &OwnedFd,
    err_w: &OwnedFd,
    in_r: Option<&OwnedFd>,
) -> Result<i32, Errno> {
    let file = cstring(path.as_os_str().as_bytes())?;
    let args = spec.argv.iter().map(|a| cstring(a.as_bytes())).collect::<Result<Vec<_>, _>>()?;
    let vars = env
        .iter()
        .map(|(k, v)| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = spec.directory.as_ref().map(|d| cstring(d.as_os_str().as_bytes())).transpose()?;
    let argv: Vec<*mut libc::c_char> =
        args.iter().map(|a| a.as_ptr().cast_mut()).chain([std::ptr::null_mut()]).collect();
    let envp: Vec<*mut libc::c_char> =
        vars.iter().map(|a| a.as_ptr().cast_mut()).chain([std::ptr::null_mut()]).collect();

    /// Destroys the attribute objects however the function returns.
    struct Objects {
        actions: libc::posix_spawn_file_actions_t,
        attr: libc::posix_spawnattr_t,
    }
    impl Drop for Objects {
        fn drop(&mut self) {
            // SAFETY: both were initialised before this value was made.
            unsafe {
                libc::posix_spawn_file_actions_destroy(&mut self.actions);
                libc::posix_spawnattr_destroy(&mut self.attr);
            }
        }
    }
    let check = |rc: libc::c_int| if rc == 0 { Ok(()) } else { Err(Errno::from_raw(rc)) };

    // SAFETY: the objects are initialised before use and destroyed once (by `Objects`); every
    // pointer handed over (paths, argv, envp and the strings they point to) outlives the
    // posix_spawn call; the signal sets are plain bit arrays written within their size.
    unsafe {
        let mut o = Objects { actions: std::mem::zeroed(), attr: std::mem::zeroed() };
        check(libc::posix_spawn_file_actions_init(&mut o.actions))?;
        if let Err(e) = check(libc::posix_spawnattr_init(&mut o.attr)) {
            libc::posix_spawn_file_actions_destroy(&mut o.actions);
            std::mem::forget(o);
            return Err(e);
        }
        // The pipes are never fds 0 to 2 (std keeps those open), so the order cannot clash.
        check(libc::posix_spawn_file_actions_adddup2(&mut o.actions, out_w.as_raw_fd(), 1))?;
        check(libc::posix_spawn_file_actions_adddup2(&mut o.actions, err_w.as_raw_fd(), 2))?;
        match in_r {
            Some(r) => {
                check(libc::posix_spawn_file_actions_adddup2(&mut o.actions, r.as_raw_fd(), 0))?
            }
            None => check(libc::posix_spawn_file_actions_adddup2(
                &mut o.actions,
                empty_input()?.as_raw_fd(),
                0,
            ))?,
        }
        if let Some(dir) = &dir {
            check(libc::posix_spawn_file_actions_addchdir_np(&mut o.actions, dir.as_ptr()))?;
        }
        // Its own process group, so a stop can signal the whole group and a terminal's ^C
        // sent to Kahi's group does not reach programs behind its back.
        let flags = libc::POSIX_SPAWN_SETPGROUP
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        check(libc::posix_spawnattr_setflags(&mut o.attr, flags as libc::c_short))?;
        check(libc::posix_spawnattr_setpgroup(&mut o.attr, 0))?;
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        check(libc::posix_spawnattr_setsigmask(&mut o.attr, &none))?;
        // Every signal, the C library's internal ones included (sigfillset and sigaddset
        // leave those out, and the child would start with them ignored): the bits are set
        // directly, signal n at bit n - 1.
        let mut all: libc::sigset_t = std::mem::zeroed();
        let words = (&mut all as *mut libc::sigset_t).cast::<libc::c_ulong>();
        let bits = libc::c_ulong::BITS as usize;
        for sig in 1..=64usize {
            if sig as i32 != libc::SIGKILL && sig as i32 != libc::SIGSTOP {
                *words.add((sig - 1) / bits) |= 1 << ((sig - 1) % bits);
            }
        }
        check(libc::posix_spawnattr_setsigdefault(&mut o.attr, &all))?;
        let mut pid: libc::pid_t = 0;
        check(libc::posix_spawn(
            &mut pid,
            file.as_ptr(),
            &o.actions,
            &o.attr,
            argv.as_ptr(),
            envp.as_ptr(),
        ))?;
        Ok(pid)
    }
}

/// Room for the digits of a pid in LISTEN_PID's value, filled in by the child.
const LISTEN_PID_ROOM: &str = "                    ";

/// What a child that places sockets execs: the path, argv and envp as C arrays, the strings
/// they point into, and where LISTEN_PID's digits go.
struct Exec {
    file: CString,
    _strings: (Vec<CString>, Vec<CString>),
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    digits: *mut u8,
}

// SAFETY: the pointers point into the CStrings the value owns, and are only used in the child
// after fork, where one thread exists.
unsafe impl Send for Exec {}
unsafe impl Sync for Exec {}

/// Starts the program with fork and exec, switching cgroup, limits, user and umask in
/// between, and placing `sockets` at fds 3, 4, ... with LISTEN_PID set to the child's pid.
fn fork_exec(
    spec: &ProcessSpec,
    path: &Path,
    env: &[(OsString, OsString)],
    (out_w, err_w, in_r): (OwnedFd, OwnedFd, Option<OwnedFd>),
    Given { sockets, cgroup, connection }: Given,
) -> Result<i32, Errno> {
    let mut cmd = Command::new(path);
    cmd.arg0(&spec.argv[0]).args(&spec.argv[1..]);
    cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &spec.directory {
        cmd.current_dir(dir);
    }
    let stdin = match in_r {
        Some(r) => r,
        None => empty_input()?
            .try_clone()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?,
    };
    cmd.stdin(Stdio::from(stdin));
    cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
    cmd.process_group(0);
    let user = spec.user.clone();
    let groups: Vec<Gid> = user
        .as_ref()
        .map(|u| u.groups.iter().map(|g| Gid::from_raw(*g)).collect())
        .unwrap_or_default();
    let umask = spec.umask;
    let limits: Vec<(nix::sys::resource::Resource, u64)> = spec
        .limits
        .iter()
        .map(|(l, v)| (resource(*l), v.unwrap_or(nix::sys::resource::RLIM_INFINITY)))
        .collect();
    // With sockets, the child execs itself, with an environment made here: std's would not
    // hold the child's pid. The pointers stay valid as long as the vectors, which the closure
    // owns.
    let mut sockets = sockets.to_vec();
    let exec = if sockets.is_empty() {
        None
    } else {
        let file = cstring(path.as_os_str().as_bytes())?;
        let args =
            spec.argv.iter().map(|a| cstring(a.as_bytes())).collect::<Result<Vec<_>, _>>()?;
        let vars = env
            .iter()
            .map(|(k, v)| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect::<Result<Vec<_>, _>>()?;
        let pid_at = vars
            .iter()
            .position(|v| v.as_bytes().starts_with(b"LISTEN_PID="))
            .ok_or(Errno::EINVAL)?;
        let pointers = |strings: &[CString]| -> Vec<*const libc::c_char> {
            strings.iter().map(|s| s.as_ptr()).chain([std::ptr::null()]).collect()
        };
        let (argv, envp) = (pointers(&args), pointers(&vars));
        // The digits go into the heap buffer of LISTEN_PID's entry, right after the "=".
        let digits = vars[pid_at].as_ptr().cast_mut().cast::<u8>().wrapping_add(11);
        Some(Exec { file, _strings: (args, vars), argv, envp, digits })
    };
    // SAFETY: the closure runs in the child between fork and exec. It only makes system calls
    // (setrlimit, setgroups, setgid, setuid, umask, fcntl, dup2, getpid, execve) on data
    // prepared before the fork, and writes digits into a buffer it owns: no allocation, no
    // locks, no logging.
    unsafe {
        cmd.pre_exec(move || {
            // Into its cgroup first, while still privileged: "0" is the writer itself.
            if let Some(fd) = cgroup
                && libc::write(fd, b"0".as_ptr().cast(), 1) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // Before the user switch: raising a hard limit needs the privilege root has.
            for (r, v) in &limits {
                nix::sys::resource::setrlimit(*r, *v, *v)?;
            }
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
            // inetd style: the connection is stdin and stdout (the pipe stays for stderr).
            if let Some(c) = connection
                && (libc::dup2(c, 0) < 0 || libc::dup2(c, 1) < 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(e) = &exec {
                // First out of the way (above the target range), then into place: a socket
                // may already sit on one of the target numbers.
                let first = 3 + sockets.len() as i32;
                for fd in sockets.iter_mut() {
                    *fd = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, first);
                    if *fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (i, fd) in sockets.iter().enumerate() {
                    // dup2 leaves the new fd without close-on-exec.
                    if libc::dup2(*fd, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // The pid's digits, then the end of the string (the room holds 20 bytes).
                let mut reversed = [0u8; 10];
                let mut n = libc::getpid() as u32;
                let mut len = 0;
                loop {
                    reversed[len] = b'0' + (n % 10) as u8;
                    len += 1;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                for i in 0..len {
                    *e.digits.add(i) = reversed[len - 1 - i];
                }
                *e.digits.add(len) = 0;
                libc::execve(e.file.as_ptr(), e.argv.as_ptr(), e.envp.as_ptr());
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    // The Child is dropped without waiting: the event loop reaps every pid itself. Dropping
    // `cmd` closes our copies of the write ends.
    Ok(child.id() as i32)
}

fn resource(l: crate::config::Limit) -> nix::sys::resource::Resource {
    use crate::config::Limit;
    use nix::sys::resource::Resource;
    match l {
        Limit::Nofile => Resource::RLIMIT_NOFILE,
        Limit::Nproc => Resource::RLIMIT_NPROC,
        Limit::Core => Resource::RLIMIT_CORE,
        Limit::As => Resource::RLIMIT_AS,
        Limit::Cpu => Resource::RLIMIT_CPU,
        Limit::Memlock => Resource::RLIMIT_MEMLOCK,
        Limit::Stack => Resource::RLIMIT_STACK,
    }
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

    fn path_env(path: &str) -> Vec<(OsString, OsString)> {
        vec![("PATH".into(), path.into())]
    }

    #[test]
    fn a_command_is_looked_for_in_the_programs_path() {
        let dir = std::env::temp_dir().join(format!("kahi-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("not-executable");
        std::fs::write(&plain, "").unwrap();
        let d = dir.display();
        assert_eq!(
            resolve("sh", &path_env(&format!("/nonexistent:{d}:/bin"))),
            Ok("/bin/sh".into())
        );
        assert_eq!(resolve("./x/y", &path_env("/bin")), Ok("./x/y".into()));
        assert_eq!(resolve("no-such-command", &path_env("/bin")), Err(Errno::ENOENT));
        // Found but not executable, and nothing better later: EACCES, as execvp says.
        assert_eq!(resolve("not-executable", &path_env(&format!("{d}"))), Err(Errno::EACCES));
        // A directory of that name is skipped.
        std::fs::create_dir_all(dir.join("subdir")).unwrap();
        assert_eq!(resolve("subdir", &path_env(&format!("{d}"))), Err(Errno::ENOENT));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
