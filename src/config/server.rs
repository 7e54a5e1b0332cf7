//! `[server]`, `[server.http]` with its `[[server.http.users]]`, and `[logging]`.

use super::*;

impl<'s> Loader<'s, '_> {
    pub(super) fn server(&mut self, table: Option<(At, DeTable<'s>)>) -> Server {
        let mut server = Server {
            socket: default_socket(),
            socket_mode: 0o700,
            socket_group: None,
            minfds: MINFDS,
            kill_orphans: true,
            http: HttpConfig::default(),
        };
        let Some((at, table)) = table else { return server };
        for (k, v) in table.iter() {
            let at = self.child(&at, v, k.get_ref());
            match k.get_ref().as_ref() {
                "socket" => {
                    if let Some(s) = self.expanded_string(&at, v, &file_vars(self.docs[0].file)) {
                        server.socket = PathBuf::from(s);
                    }
                }
                "socket_mode" => {
                    if let Some(m) = self.octal(&at, v) {
                        server.socket_mode = m;
                    }
                }
                "socket_group" => server.socket_group = self.group_id(&at, v),
                "orphans" => match self.string(&at, v).as_deref() {
                    Some("kill") => server.kill_orphans = true,
                    Some("keep") => server.kill_orphans = false,
                    Some(other) => {
                        self.error(&at, format!("expected \"kill\" or \"keep\", found {other:?}"))
                    }
                    None => {}
                },
                "minfds" => {
                    server.minfds = self.integer(&at, v, 0, 1 << 30).map_or(MINFDS, |n| n as u64)
                }
                "http" => {
                    if let Some(t) = self.table(&at, v).cloned() {
                        server.http = self.http(&at, &t);
                    }
                }
                other => self.unknown(&at, k.span(), Section::Server, other),
            }
        }
        server
    }

    /// `[server.http]`: the listener's addresses, users and TLS files. A listener reachable
    /// from other hosts is refused without users unless `insecure = true` says so.
    pub(super) fn http(&mut self, at: &At, table: &DeTable<'s>) -> HttpConfig {
        let mut addrs: Vec<(At, std::net::SocketAddr)> = Vec::new();
        let mut insecure = false;
        let mut http = HttpConfig { max_connections: MAX_CONNECTIONS, ..Default::default() };
        let (mut cert, mut key) = (None, None);
        let here = self.docs[at.doc].file.parent().unwrap_or(Path::new("/")).to_path_buf();
        for (k, v) in table.iter() {
            let at = self.child(at, v, k.get_ref());
            match k.get_ref().as_ref() {
                "listen" => {
                    let list = match v.get_ref() {
                        DeValue::String(_) => self.string(&at, v).map(|s| vec![s]),
                        _ => self.strings(&at, v),
                    };
                    for s in list.unwrap_or_default() {
                        use std::net::ToSocketAddrs;
                        match s.to_socket_addrs().map(|a| a.collect::<Vec<_>>()) {
                            Ok(a) if !a.is_empty() => {
                                addrs.extend(a.into_iter().map(|a| (at.clone(), a)))
                            }
                            Ok(_) => self.error(&at, format!("{s:?} resolves to no address")),
                            Err(e) => self.error(
                                &at,
                                format!("{s:?} is not a HOST:PORT address such as \"127.0.0.1:9876\": {e}"),
                            ),
                        }
                    }
                }
                "insecure" => insecure = self.boolean(&at, v).unwrap_or(false),
                "metrics_auth" => http.metrics_auth = self.boolean(&at, v).unwrap_or(false),
                "max_connections" => {
                    http.max_connections =
                        self.integer(&at, v, 1, 1_000_000).map_or(MAX_CONNECTIONS, |n| n as usize)
                }
                "users" => http.users = self.users(&at, v),
                "tls_cert" | "tls_key" => {
                    let Some(s) = self.string(&at, v) else { continue };
                    let path = here.join(s);
                    let is_cert = k.get_ref().as_ref() == "tls_cert";
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
                        Ok(_) => self.error(&at, format!("{} holds no {what}", path.display())),
                        Err(e) => {
                            self.error(&at, format!("unable to read {}: {e}", path.display()))
                        }
                    }
                    if is_cert {
                        cert = Some((at, path));
                    } else {
                        key = Some((at, path));
                    }
                }
                other => self.unknown(&at, k.span(), Section::Http, other),
            }
        }
        match (cert, key) {
            (Some((_, c)), Some((_, k))) => http.tls = Some((c, k)),
            (Some((at, _)), None) => self.error(&at, "needs tls_key as well"),
            (None, Some((at, _))) => self.error(&at, "needs tls_cert as well"),
            (None, None) => {}
        }
        // With users given but wrong, those errors are the ones to fix.
        if !insecure && http.users.is_empty() && !table.contains_key("users") {
            for (at, a) in &addrs {
                if !a.ip().is_loopback() {
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
        http.listen = addrs.into_iter().map(|(_, a)| a).collect();
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
                        role = match self.string(&at, v).as_deref() {
                            Some("viewer") => Some(Role::Viewer),
                            Some("operator") => Some(Role::Operator),
                            Some("admin") => Some(Role::Admin),
                            Some(other) => {
                                self.error(&at, format!("expected \"viewer\", \"operator\" or \"admin\", found {other:?}"));
                                None
                            }
                            None => None,
                        }
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
        if let Ok(n) = s.parse::<u32>() {
            return Some(n);
        }
        match nix::unistd::Group::from_name(&s) {
            Ok(Some(g)) => Some(g.gid.as_raw()),
            _ => {
                self.error(at, format!("no group named {s:?}"));
                None
            }
        }
    }

    pub(super) fn logging(&mut self, table: Option<(At, DeTable<'s>)>) -> Logging {
        let mut logging = Logging::default();
        let Some((at, table)) = table else { return logging };
        for (k, v) in table.iter() {
            let at = self.child(&at, v, k.get_ref());
            match k.get_ref().as_ref() {
                "level" => {
                    if let Some(s) = self.string(&at, v) {
                        match s.to_ascii_lowercase().parse::<log::LevelFilter>() {
                            Ok(l) => logging.level = l,
                            Err(_) => self.error(&at, format!("unknown level {s:?}; expected error, warn, info, debug or trace")),
                        }
                    }
                }
                "console" => match v.get_ref() {
                    DeValue::Boolean(true) => logging.console = ConsoleMode::On,
                    DeValue::Boolean(false) => logging.console = ConsoleMode::Off,
                    DeValue::String(s) if s.as_ref() == "auto" => {
                        logging.console = ConsoleMode::Auto
                    }
                    other => self.error(
                        &at,
                        format!("expected true, false or \"auto\", found {}", describe(other)),
                    ),
                },
                "format" => match self.string(&at, v).as_deref() {
                    Some("text") => logging.format = crate::logs::console::Format::Text,
                    Some("json") => logging.format = crate::logs::console::Format::Json,
                    Some(other) => self.error(
                        &at,
                        format!("unknown format {other:?}; expected \"text\" or \"json\""),
                    ),
                    None => {}
                },
                "max_line_bytes" => match self.size(&at, v) {
                    Some(0) => self.error(&at, "must be at least 1 byte".to_string()),
                    Some(n) => logging.max_line_bytes = n,
                    None => {}
                },
                "syslog" => {
                    if let Some(s) = self.string(&at, v) {
                        match syslog_target(&s) {
                            Ok(t) => logging.syslog = t,
                            Err(e) => self.error(&at, e),
                        }
                    }
                }
                "syslog_facility" => {
                    if let Some(s) = self.string(&at, v) {
                        match crate::logs::syslog::facility(&s) {
                            Some(f) => logging.syslog_facility = f,
                            None => self.error(
                                &at,
                                format!(
                                    "unknown facility {s:?}; expected one of {}",
                                    crate::logs::syslog::FACILITIES.join(", ")
                                ),
                            ),
                        }
                    }
                }
                "partial_line_secs" => {
                    if let Some(d) = self.seconds(&at, v) {
                        logging.partial_line_secs = d;
                    }
                }
                "childlogdir" => {
                    if let Some(s) = self.expanded_string(&at, v, &file_vars(self.docs[0].file)) {
                        let here = self.docs[0].file.parent().unwrap_or(Path::new("/"));
                        let dir = here.join(s);
                        if dir.is_dir() {
                            logging.childlogdir = dir;
                        } else {
                            self.error(&at, format!("{} is not a directory", dir.display()));
                        }
                    }
                }
                other => self.unknown(&at, k.span(), Section::Logging, other),
            }
        }
        logging
    }
}

/// `[logging] syslog`: an absolute path of a local datagram socket, or `udp://HOST:PORT`.
pub(super) fn syslog_target(s: &str) -> Result<crate::logs::syslog::Target, String> {
    use crate::logs::syslog::Target;
    if let Some(addr) = s.strip_prefix("udp://") {
        use std::net::ToSocketAddrs;
        return match addr.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(a)) => Ok(Target::Udp(a)),
            Ok(None) => Err(format!("{addr:?} resolves to no address")),
            Err(e) => Err(format!("{addr:?} is not a HOST:PORT address: {e}")),
        };
    }
    if s.starts_with('/') {
        Ok(Target::Local(s.into()))
    } else {
        Err(format!(
            "expected the absolute path of a local socket (\"/dev/log\") or \"udp://HOST:PORT\", found {s:?}"
        ))
    }
}
