//! `[server]`, `[server.http]` with its `[[server.http.users]]`, and `[logging]`.

use super::*;

/// `[server.http]` being read: the configuration, and what is checked once every key is.
#[derive(Default)]
pub struct HttpDraft {
    pub(super) http: HttpConfig,
    /// The listen addresses, each with the place of its value.
    pub(super) listen: Vec<(At, Listen)>,
    pub(super) insecure: bool,
    pub(super) cert: Option<(At, PathBuf)>,
    pub(super) key: Option<(At, PathBuf)>,
}

/// The addresses `HOST:PORT` stands for, looked up now: at load, not where they are used.
/// `example` follows "is not a HOST:PORT address" in the error.
pub(super) fn addresses(s: &str, example: &str) -> Result<Vec<std::net::SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let found: Vec<_> = s
        .to_socket_addrs()
        .map_err(|e| format!("{s:?} is not a HOST:PORT address{example}: {e}"))?
        .collect();
    if found.is_empty() {
        return Err(format!("{s:?} resolves to no address"));
    }
    Ok(found)
}

/// The address a client of `HOST:PORT` connects to: the first it stands for.
pub(super) fn address(s: &str) -> Result<std::net::SocketAddr, String> {
    addresses(s, "")?.into_iter().next().ok_or_else(|| format!("{s:?} resolves to no address"))
}

impl<'s> Loader<'s, '_> {
    pub(super) fn server(&mut self, table: Option<(At, DeTable<'s>)>) -> Server {
        let mut server = Server::default();
        let Some((at, table)) = table else { return server };
        self.fields(&at, &table, Section::Server, &mut server, |l, at, name, v, server| {
            match name {
                "socket" => {
                    if let Some(s) = l.expanded_string(at, v, &file_vars(l.docs[0].file)) {
                        server.socket = PathBuf::from(s);
                        // It may be made before the daemon starts; --check says so meanwhile.
                        let dir = server.socket.parent().filter(|d| !d.as_os_str().is_empty());
                        if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                            let why = format!(
                                "{} is not a directory (yet): the daemon cannot make its control socket there",
                                dir.display()
                            );
                            l.note(at, super::check::Severity::Warning, why);
                        }
                    }
                }
                "socket_group" => server.socket_group = l.group_id(at, v),
                "http" => {
                    if let Some(t) = l.table(at, v).cloned() {
                        server.http = l.http(at, &t);
                    }
                }
                // Every other key has its reader in KEYS; a test reads each.
                _ => {}
            }
        });
        server
    }

    /// `[server.http]`: the listener's addresses, users and TLS files. A listener reachable
    /// from other hosts is refused without users unless `insecure = true` says so.
    pub(super) fn http(&mut self, at: &At, table: &DeTable<'s>) -> HttpConfig {
        let mut d = HttpDraft::default();
        let here = self.docs[at.doc].file.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.fields(at, table, Section::Http, &mut d, |l, at, name, v, d| match name {
            "listen" => {
                let list = match v.get_ref() {
                    DeValue::String(_) => l.string(at, v).map(|s| vec![s]),
                    _ => l.strings(at, v),
                };
                for s in list.unwrap_or_default() {
                    let found = match super::program::unix_path(&s) {
                        Some(path) => path.map(|p| vec![Listen::Unix(p)]),
                        None => addresses(&s, " such as \"127.0.0.1:9876\" or \"unix:///run/kahi-http.sock\"")
                            .map(|a| a.into_iter().map(Listen::Tcp).collect()),
                    };
                    match found {
                        Ok(found) => {
                            for a in found {
                                if matches!(a, Listen::Unix(_)) && d.listen.iter().any(|(_, b)| *b == a) {
                                    l.error(at, format!("{s:?} is listed twice"));
                                } else {
                                    d.listen.push((at.clone(), a));
                                }
                            }
                        }
                        Err(e) => l.error(at, e),
                    }
                }
            }
            "socket_owner" => {
                if let Some(s) = l.string(at, v) {
                    match l.run_as(&s) {
                        Ok(r) => d.http.socket_owner = Some((r.uid, r.gid)),
                        Err(e) => l.error(at, e),
                    }
                }
            }
            "users" => d.http.users = l.users(at, v),
            "tls_cert" | "tls_key" => {
                let Some(s) = l.string(at, v) else { return };
                let path = here.join(s);
                let is_cert = name == "tls_cert";
                // What the TLS library takes; checked here, so a wrong file is an error
                // with its place rather than a failure at start.
                let (markers, what): (&[&str], _) = if is_cert {
                    (&["-----BEGIN CERTIFICATE-----"], "a PEM certificate")
                } else {
                    (
                        &["-----BEGIN PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----"],
                        "an unencrypted PKCS#8 or RSA private key in PEM (convert others with `openssl pkcs8 -topk8 -nocrypt`)",
                    )
                };
                match read::text(&path) {
                    Ok(text) if markers.iter().any(|m| text.contains(m)) => {}
                    Ok(_) => l.error(at, format!("{} holds no {what}", path.display())),
                    Err(e) => l.error(at, format!("unable to read {}: {e}", path.display())),
                }
                if is_cert {
                    d.cert = Some((at.clone(), path));
                } else {
                    d.key = Some((at.clone(), path));
                }
            }
            // Every other key has its reader in KEYS; a test reads each.
            _ => {}
        });
        let HttpDraft { mut http, listen, insecure, cert, key } = d;
        match (cert, key) {
            (Some((_, c)), Some((_, k))) => http.tls = Some((c, k)),
            (Some((at, _)), None) => self.error(&at, "needs tls_key as well"),
            (None, Some((at, _))) => self.error(&at, "needs tls_cert as well"),
            (None, None) => {}
        }
        // With users given but wrong, those errors are the ones to fix.
        if !insecure && http.users.is_empty() && !table.contains_key("users") {
            for (at, a) in &listen {
                if let Listen::Tcp(a) = a
                    && !a.ip().is_loopback()
                {
                    self.error(
                        at,
                        format!(
                            "{a} is reachable from other hosts and the API has no users; \
                             add [[server.http.users]], listen on 127.0.0.1 or ::1, or set insecure = true"
                        ),
                    );
                }
            }
        }
        http.listen = listen.into_iter().map(|(_, a)| a).collect();
        http
    }

    /// `[[server.http.users]]`: names unique, bcrypt hashes, known roles.
    pub(super) fn users(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Vec<HttpUser> {
        let Some(items) = self.array(at, v) else { return Vec::new() };
        let mut users: Vec<HttpUser> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = self.child(at, item, &i.to_string());
            let Some(t) = self.table(&at, item) else { continue };
            let (mut name, mut hash, mut role) = (None, None, None);
            for (k, v) in t.iter() {
                let at = self.child(&at, v, k.get_ref());
                match k.get_ref().as_ref() {
                    "name" => name = self.string(&at, v).filter(|n| !n.is_empty() && !n.contains(':')).or_else(|| {
                        self.error(&at, "expected a non-empty name without ':'");
                        None
                    }),
                    "password_hash" => {
                        hash = self.string(&at, v).filter(|h| is_bcrypt(h)).or_else(|| {
                            self.error(&at, "expected a bcrypt hash ($2b$12$ followed by 53 characters), as `kahi hash-password` prints");
                            None
                        })
                    }
                    "role" => {
                        const ROLES: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];
                        role = self
                            .choice(&at, v, &ROLES.map(Role::name))
                            .and_then(|i| ROLES.get(i).copied());
                    }
                    other => self.unknown(&at, k.span(), Section::HttpUser, other),
                }
            }
            let missing: Vec<&str> = [
                ("name", name.is_none()),
                ("password_hash", hash.is_none()),
                ("role", role.is_none()),
            ]
            .iter()
            .filter(|(k, none)| *none && !t.contains_key(*k))
            .map(|(k, _)| *k)
            .collect();
            if !missing.is_empty() {
                self.error(&at, format!("missing {}", missing.join(", ")));
            }
            if let (Some(name), Some(password_hash), Some(role)) = (name, hash, role) {
                if users.iter().any(|u| u.name == name) {
                    self.error(&at, format!("user {name:?} is defined twice"));
                    continue;
                }
                users.push(HttpUser { name, password_hash, role });
            }
        }
        users
    }

    /// A group name (looked up in the group database) or a numeric gid.
    pub(super) fn group_id(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<u32> {
        let s = match v.get_ref() {
            DeValue::Integer(_) => {
                return self.integer(at, v, 0, i64::from(u32::MAX)).map(|n| n as u32);
            }
            _ => self.string(at, v)?,
        };
        super::values::gid(&s).map_err(|e| self.error(at, e)).ok()
    }

    pub(super) fn logging(&mut self, table: Option<(At, DeTable<'s>)>) -> Logging {
        let mut logging = Logging::default();
        let Some((at, table)) = table else { return logging };
        self.fields(&at, &table, Section::Logging, &mut logging, |l, at, name, v, logging| {
            match name {
                "level" => {
                    if let Some(s) = l.string(at, v) {
                        match s.to_ascii_lowercase().parse::<log::LevelFilter>() {
                            Ok(l) => logging.level = l,
                            Err(_) => l.error(at, format!("unknown level {s:?}; expected error, warn, info, debug or trace")),
                        }
                    }
                }
                "console" => match v.get_ref() {
                    DeValue::Boolean(true) => logging.console = ConsoleMode::On,
                    DeValue::Boolean(false) => logging.console = ConsoleMode::Off,
                    DeValue::String(s) if s.as_ref() == "auto" => {
                        logging.console = ConsoleMode::Auto
                    }
                    other => l.error(
                        at,
                        format!("expected true, false or \"auto\", found {}", describe(other)),
                    ),
                },
                "format" => match l.string(at, v).as_deref() {
                    Some("text") => logging.format = crate::logs::console::Format::Text,
                    Some("json") => logging.format = crate::logs::console::Format::Json,
                    Some(other) => l.error(
                        at,
                        format!("unknown format {other:?}; expected \"text\" or \"json\""),
                    ),
                    None => {}
                },
                "max_line_bytes" => match l.size(at, v) {
                    Some(0) => l.error(at, "must be at least 1 byte".to_string()),
                    Some(n) => logging.max_line_bytes = n,
                    None => {}
                },
                "syslog" => {
                    if let Some(s) = l.string(at, v) {
                        match syslog_target(&s) {
                            Ok(t) => logging.syslog = t,
                            Err(e) => l.error(at, e),
                        }
                    }
                }
                "syslog_facility" => {
                    if let Some(s) = l.string(at, v) {
                        match crate::logs::syslog::facility(&s) {
                            Some(f) => logging.syslog_facility = f,
                            None => l.error(
                                at,
                                format!(
                                    "unknown facility {s:?}; expected one of {}",
                                    crate::logs::syslog::FACILITIES.join(", ")
                                ),
                            ),
                        }
                    }
                }
                "childlogdir" => {
                    if let Some(s) = l.expanded_string(at, v, &file_vars(l.docs[0].file)) {
                        let here = l.docs[0].file.parent().unwrap_or(Path::new("/"));
                        let dir = here.join(s);
                        if dir.is_dir() {
                            logging.childlogdir = dir;
                        } else {
                            l.error(at, format!("{} is not a directory", dir.display()));
                        }
                    }
                }
                // Every other key has its reader in KEYS; a test reads each.
                _ => {}
            }
        });
        logging
    }
}

/// `[logging] syslog`: an absolute path of a local datagram socket, or `udp://HOST:PORT`.
pub(super) fn syslog_target(s: &str) -> Result<crate::logs::syslog::Target, String> {
    use crate::logs::syslog::Target;
    if let Some(addr) = s.strip_prefix("udp://") {
        return address(addr).map(Target::Udp);
    }
    if s.starts_with('/') {
        Ok(Target::Local(s.into()))
    } else {
        Err(format!(
            "expected the absolute path of a local socket (\"/dev/log\") or \"udp://HOST:PORT\", found {s:?}"
        ))
    }
}
