//! Socket activation (`type = "socket"`): Kahi binds a program's `listen` sockets itself, and
//! the event loop watches them while the program is not running. The first connection starts
//! it, with the listening sockets as fds 3, 4, ... (systemd's LISTEN_FDS protocol); the
//! connection itself waits in the socket's backlog for the program to accept it. The sockets
//! stay Kahi's across restarts, so no connection is refused while the program is down.
//!
//! A FastCGI program (`[fcgi_programs.NAME]`) has one socket, bound here at load and shared by
//! every one of its processes as stdin (fd 0), as supervisord does. Kahi keeps it across their
//! restarts and across reloads that leave it where it is (a new mode, owner or backlog is
//! applied in place); a reload that moves it binds the new one, and a program gone closes its
//! socket and removes the file of a Unix one.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::config::{FcgiSocket, Kind, Listen};
use crate::supervisor::Supervisor;

/// The bound sockets of one program.
struct Listening {
    addrs: Vec<Listen>,
    /// Kahi accepts the connections itself (the sockets are non-blocking).
    accept: bool,
    fds: Vec<OwnedFd>,
    tokens: Vec<Token>,
}

/// The socket of a FastCGI program.
struct Shared {
    socket: FcgiSocket,
    /// None while it cannot be bound: tried again at each start of one of its processes.
    fd: Option<OwnedFd>,
}

/// Every socket program's sockets, by process name, and every FastCGI program's, by program.
#[derive(Default)]
pub struct Sockets {
    by_name: HashMap<String, Listening>,
    owners: HashMap<Token, String>,
    fcgi: HashMap<String, Shared>,
}

impl Sockets {
    /// Binds the sockets of socket programs that have none (or whose `listen` changed), and
    /// closes those of programs that are gone. `token` hands out poll tokens.
    pub fn sync(
        &mut self,
        sup: &Supervisor,
        registry: &Registry,
        token: &mut dyn FnMut() -> Token,
    ) {
        let wanted: HashMap<String, (&Vec<Listen>, bool)> = sup
            .iter()
            .filter(|e| e.spec.kind == Kind::Socket)
            .map(|e| (e.spec.namespec(), (&e.spec.listen, e.spec.accept)))
            .collect();
        let stale: Vec<String> = self
            .by_name
            .iter()
            .filter(|(name, l)| {
                wanted
                    .get(*name)
                    .is_none_or(|(addrs, accept)| **addrs != l.addrs || *accept != l.accept)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            self.close(&name, registry);
        }
        for (name, (addrs, accept)) in wanted {
            if self.by_name.contains_key(&name) {
                continue;
            }
            let mut listening =
                Listening { addrs: addrs.clone(), accept, fds: Vec::new(), tokens: Vec::new() };
            for addr in addrs {
                match bind(addr, accept) {
                    Ok(fd) => {
                        let t = token();
                        if let Err(e) =
                            registry.register(&mut SourceFd(&fd.as_raw_fd()), t, Interest::READABLE)
                        {
                            log::error!("{name}: unable to watch {addr}: {e}");
                            continue;
                        }
                        log::info!("{name}: listening on {addr}");
                        self.owners.insert(t, name.clone());
                        listening.tokens.push(t);
                        listening.fds.push(fd);
                    }
                    Err(e) => log::error!("{name}: unable to listen on {addr}: {e}"),
                }
            }
            self.by_name.insert(name, listening);
        }
        self.sync_fcgi(sup);
    }

    /// The FastCGI programs' sockets: those of the configuration in force, and of the processes
    /// outside it (still stopping after a reload removed them, or added by addProcessGroup).
    fn sync_fcgi(&mut self, sup: &Supervisor) {
        let mut wanted: HashMap<&str, &FcgiSocket> = HashMap::new();
        let specs = sup.iter().map(|e| &*e.spec).chain(&sup.config.processes);
        for spec in specs {
            if let Some(socket) = &spec.fcgi {
                wanted.insert(&spec.program, socket);
            }
        }
        let moved: Vec<String> = self
            .fcgi
            .iter()
            .filter(|(name, s)| wanted.get(name.as_str()).is_none_or(|w| w.addr != s.socket.addr))
            .map(|(name, _)| name.clone())
            .collect();
        for name in moved {
            if let Some(s) = self.fcgi.remove(&name) {
                log::info!("{name}: FastCGI socket {} closed", s.socket.addr);
                remove_files(&[s.socket.addr]);
            }
        }
        for (name, want) in wanted {
            match self.fcgi.get_mut(name) {
                Some(s) if s.socket == *want => {}
                Some(s) => {
                    // The same address: its settings change in place, for the processes
                    // that hold it already as well.
                    s.socket = want.clone();
                    if let Some(fd) = &s.fd
                        && let Err(e) = settle(fd, &s.socket)
                    {
                        log::error!("{name}: unable to set up FastCGI socket {}: {e}", want.addr);
                    }
                }
                None => {
                    let fd = bind_fcgi(name, want).map_err(|e| log::error!("{e}")).ok();
                    self.fcgi.insert(name.to_string(), Shared { socket: want.clone(), fd });
                }
            }
        }
    }

    /// What a process of `spec` gets as stdin: its FastCGI program's socket (bound now if it
    /// could not be before), or None for any other program.
    pub fn stdin(&mut self, spec: &crate::config::ProcessSpec) -> Result<Option<RawFd>, String> {
        let Some(want) = &spec.fcgi else { return Ok(None) };
        let shared = self
            .fcgi
            .entry(spec.program.clone())
            .or_insert_with(|| Shared { socket: want.clone(), fd: None });
        if shared.fd.is_none() {
            shared.fd = Some(bind_fcgi(&spec.program, &shared.socket)?);
        }
        Ok(shared.fd.as_ref().map(|fd| fd.as_raw_fd()))
    }

    fn close(&mut self, name: &str, registry: &Registry) {
        let Some(l) = self.by_name.remove(name) else { return };
        for (fd, t) in l.fds.iter().zip(&l.tokens) {
            let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
            self.owners.remove(t);
        }
        remove_files(&l.addrs);
    }

    /// The process whose socket `token` is.
    pub fn owner(&self, token: Token) -> Option<&str> {
        self.owners.get(&token).map(String::as_str)
    }

    /// The listening fds to hand to `name`: all of its sockets, or an error when one could
    /// not be bound (the program would miss a socket it expects).
    pub fn fds(&self, name: &str) -> Result<Vec<RawFd>, String> {
        let Some(l) = self.by_name.get(name) else { return Ok(Vec::new()) };
        if l.fds.len() != l.addrs.len() {
            return Err("not every listen socket could be bound (see the daemon's log)".into());
        }
        Ok(l.fds.iter().map(|fd| fd.as_raw_fd()).collect())
    }

    /// Whether a connection already waits on one of `name`'s sockets (the poll wakes up only
    /// for new ones).
    pub fn pending(&self, name: &str) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let Some(l) = self.by_name.get(name) else { return false };
        let mut fds: Vec<PollFd> =
            l.fds.iter().map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)).collect();
        poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
    }

    /// Takes one waiting connection from `name`'s sockets (close-on-exec), if any.
    pub fn accept(&self, name: &str) -> Option<OwnedFd> {
        use nix::sys::socket::{SockFlag, accept4};
        let l = self.by_name.get(name)?;
        l.fds.iter().find_map(|fd| {
            let raw = accept4(fd.as_raw_fd(), SockFlag::SOCK_CLOEXEC).ok()?;
            // SAFETY: accept4 just returned this fd, owned by nothing else.
            Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
        })
    }

    /// Removes the Unix socket files, at exit.
    pub fn close_all(&mut self) {
        for l in self.by_name.values() {
            remove_files(&l.addrs);
        }
        for s in self.fcgi.values().filter(|s| s.fd.is_some()) {
            remove_files(std::slice::from_ref(&s.socket.addr));
        }
        self.by_name.clear();
        self.owners.clear();
        self.fcgi.clear();
    }
}

/// A FastCGI program's socket, bound and set up; the error names the program and the socket.
fn bind_fcgi(name: &str, socket: &FcgiSocket) -> Result<OwnedFd, String> {
    let fd = bind(&socket.addr, false).and_then(|fd| settle(&fd, socket).map(|()| fd));
    match fd {
        Ok(fd) => {
            log::info!("{name}: listening on {} (FastCGI)", socket.addr);
            Ok(fd)
        }
        Err(e) => {
            // A file of ours that could not be set up is no socket to leave behind.
            if e.kind() != std::io::ErrorKind::AddrInUse {
                remove_files(std::slice::from_ref(&socket.addr));
            }
            Err(format!("{name}: unable to listen on {} (FastCGI): {e}", socket.addr))
        }
    }
}

/// Applies a FastCGI socket's backlog, and a Unix one's owner and mode (owner first: chown
/// clears the set-id bits a mode may have).
fn settle(fd: &OwnedFd, socket: &FcgiSocket) -> std::io::Result<()> {
    use nix::sys::socket::{Backlog, listen};
    // Listening again on a listening socket only sets its backlog (Linux).
    let backlog = socket.backlog.map_or(Ok(Backlog::MAXCONN), |n| Backlog::new(n as i32));
    backlog.and_then(|b| listen(fd, b)).map_err(std::io::Error::from)?;
    if let Listen::Unix(path) = &socket.addr {
        if let Some((uid, gid)) = socket.owner {
            let (uid, gid) = (nix::unistd::Uid::from_raw(uid), gid.map(nix::unistd::Gid::from_raw));
            nix::unistd::chown(path, Some(uid), gid).map_err(std::io::Error::from)?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(socket.mode))?;
    }
    Ok(())
}

fn remove_files(addrs: &[Listen]) {
    for a in addrs {
        if let Listen::Unix(path) = a {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A listening socket on `addr`, close-on-exec; blocking, as a program given it expects, or
/// non-blocking when Kahi accepts on it.
fn bind(addr: &Listen, accept: bool) -> std::io::Result<OwnedFd> {
    match addr {
        Listen::Tcp(a) => {
            let l = std::net::TcpListener::bind(a)?;
            l.set_nonblocking(accept)?;
            Ok(l.into())
        }
        Listen::Unix(path) => {
            // A file left by an earlier run: nobody listens there (connect fails).
            if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
                let _ = std::fs::remove_file(path);
            }
            let l = std::os::unix::net::UnixListener::bind(path)?;
            l.set_nonblocking(accept)?;
            Ok(l.into())
        }
    }
}
