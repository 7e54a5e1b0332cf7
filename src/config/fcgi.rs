//! `[fcgi_programs.NAME]`: a program whose processes share one listening socket, which Kahi
//! binds and hands to each of them as its stdin (fd 0), as supervisord's `[fcgi-program:x]`
//! does. The table is a program's with `socket`, `socket_owner`, `socket_mode` and
//! `socket_backlog`; this module reads those. No I/O but the look-ups of a host name and a
//! user.

use super::*;

/// The socket of a FastCGI program, as its processes get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcgiSocket {
    pub addr: Listen,
    /// A Unix socket's owner: a uid and, when given, a gid (else the group is left alone).
    pub owner: Option<(u32, Option<u32>)>,
    /// A Unix socket's permission bits.
    pub mode: u32,
    /// The listen backlog; None: the system's most (SOMAXCONN).
    pub backlog: Option<u32>,
}

/// supervisord's mode of a FastCGI Unix socket.
const DEFAULT_MODE: u32 = 0o700;

/// The keys of a FastCGI program that are not for it: its stdin is the socket, and it runs as
/// a simple program (Kahi binds the socket at load, not at a first connection).
const NOT_FOR_FCGI: [&str; 5] = ["stdin_pipe", "type", "listen", "accept", "max_instances"];

/// What the socket keys say, before they are checked together.
#[derive(Default)]
struct Draft {
    addr: Option<Listen>,
    owner: Option<(u32, Option<u32>)>,
    mode: Option<u32>,
    backlog: Option<u32>,
}

/// The socket keys are read by their own code (below): none has a reader in the schema.
impl schema::Target for Draft {
    fn reader(_: &schema::Set) -> Option<&schema::Read<Self>> {
        None
    }
}

impl<'s> Loader<'s, '_> {
    /// The keys `[fcgi_programs.NAME]` has besides a program's (`own`, at the table `at`);
    /// `t` is the rest of the table, `vars` the program's expansions (`socket` may use
    /// `%(program_name)s`, `%(here)s` and the environment, not `%(process_num)d`: every process
    /// gets the same socket).
    pub(super) fn fcgi(
        &mut self,
        at: &At,
        own: &DeTable<'s>,
        t: &DeTable<'s>,
        spec: &ProcessSpec,
        vars: &Vars,
    ) -> Option<FcgiSocket> {
        for key in NOT_FOR_FCGI {
            if let Some((at, _)) = self.entry(at, t, key) {
                self.error(&at, "does not apply to a FastCGI program: its stdin is the socket Kahi binds for it, and it runs as type = \"simple\"");
            }
        }
        let before = self.errors.len();
        let mut d = Draft::default();
        self.fields(at, own, Section::Fcgi, &mut d, |l, at, name, v, d| match name {
            "socket" => {
                let url = l.expanded_string(at, v, vars);
                d.addr = url.and_then(|u| socket_url(&u).map_err(|e| l.error(at, e)).ok());
            }
            "socket_owner" => d.owner = l.owner(at, v),
            "socket_mode" => d.mode = l.octal(at, v),
            "socket_backlog" => d.backlog = l.integer(at, v, 1, 65535).map(|n| n as u32),
            _ => {}
        });
        if !own.contains_key("socket") {
            self.error(
                at,
                "missing required key \"socket\" (\"tcp://HOST:PORT\" or \"unix:///PATH\")",
            );
        }
        if let Some(Listen::Tcp(_)) = d.addr {
            for key in ["socket_owner", "socket_mode"] {
                if let Some((at, _)) = self.entry(at, own, key) {
                    self.error(&at, "applies to a Unix socket (unix:///PATH) only");
                }
            }
        }
        if self.errors.len() > before {
            return None;
        }
        // supervisord gives a Unix socket to the program's user, when it is another.
        let me = nix::unistd::geteuid().as_raw();
        let owner = d
            .owner
            .or_else(|| spec.user.as_ref().filter(|u| u.uid != me).map(|u| (u.uid, Some(u.gid))));
        let unix = matches!(d.addr, Some(Listen::Unix(_)));
        Some(FcgiSocket {
            addr: d.addr?,
            owner: owner.filter(|_| unix),
            mode: d.mode.unwrap_or(DEFAULT_MODE),
            backlog: d.backlog,
        })
    }
}

impl Loader<'_, '_> {
    /// Two FastCGI programs on one address: the second could never bind it.
    pub(super) fn one_program_per_fcgi_socket(&mut self, processes: &[ProcessSpec]) {
        let mut seen: Vec<(&Listen, &str)> = Vec::new();
        for p in processes {
            let Some(f) = &p.fcgi else { continue };
            match seen.iter().find(|(addr, _)| **addr == f.addr) {
                Some((_, other)) if *other != p.program => self.err_nopos_main(format!(
                    "FastCGI programs {other:?} and {:?} both have the socket {}",
                    p.program, f.addr
                )),
                Some(_) => {}
                None => seen.push((&f.addr, &p.program)),
            }
        }
    }
}

/// `socket`: "tcp://HOST:PORT" (a name is looked up here, once) or "unix:///PATH".
fn socket_url(url: &str) -> Result<Listen, String> {
    if let Some(path) = url.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(format!(
                "{url:?}: expected an absolute path, such as unix:///run/php-fpm.sock"
            ));
        }
        // sun_path holds 108 bytes with the NUL.
        if path.len() > 107 {
            return Err(format!("{url:?}: a Unix socket's path holds 107 bytes at most"));
        }
        return Ok(Listen::Unix(PathBuf::from(path)));
    }
    match url.strip_prefix("tcp://") {
        Some(hostport) => super::server::address(hostport).map(Listen::Tcp),
        None => Err(format!(
            "{url:?}: expected tcp://HOST:PORT or unix:///PATH, such as tcp://127.0.0.1:9000"
        )),
    }
}
