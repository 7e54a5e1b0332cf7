//! `[supervisord]`, `[unix_http_server]` and `[inet_http_server]` read as supervisord reads
//! them (options.py `process_config`, `server_configs_from_parser`), mapped to `[server]`,
//! `[server.http]` and `[logging]`; what Kahi has no key for (the daemon's own log file, pid
//! file, user, umask) is a note saying what to do instead. No I/O but supervisord's checks of
//! this host (directories that must exist).

use super::Note;
use super::emit::{Out, Src, string, strings};
use super::format::{Dict, expand};
use super::ini::{Ini, Section};
use super::map::unknown_keys;
use super::program::Reader;
use super::values;
use crate::config::ConfigError;

const SUPERVISORD_KEYS: &[&str] = &[
    "logfile",
    "logfile_maxbytes",
    "logfile_backups",
    "loglevel",
    "pidfile",
    "umask",
    "nodaemon",
    "silent",
    "minfds",
    "minprocs",
    "nocleanup",
    "childlogdir",
    "user",
    "directory",
    "strip_ansi",
    "environment",
    "identifier",
];

/// The cost of the bcrypt hash of an `[inet_http_server]` password.
const BCRYPT_COST: u32 = 10;

/// Keys of `[server]`, `[server.http]`, each `[[server.http.users]]` and `[logging]`.
#[derive(Debug, Default)]
pub struct Tables {
    server: Vec<(String, String, Src)>,
    /// `[server.http] listen`: the Unix socket first, as supervisord names it to programs.
    listen: Vec<(String, Src)>,
    http: Vec<(String, String, Src)>,
    users: Vec<Vec<(String, String, Src)>>,
    logging: Vec<(String, String, Src)>,
    /// Where each table comes from.
    places: [Src; 3],
}

impl Tables {
    pub fn write(&self, out: &mut Out, ini: &Ini) {
        let tables =
            [("server", &self.server), ("server.http", &self.http), ("logging", &self.logging)];
        for (i, (name, keys)) in tables.into_iter().enumerate() {
            if keys.is_empty() && (i != 1 || (self.users.is_empty() && self.listen.is_empty())) {
                continue;
            }
            out.table(name, self.places[i], &ini.files);
            if let (1, Some((_, src))) = (i, self.listen.first()) {
                let mut all: Vec<&str> = self.listen.iter().map(|(a, _)| a.as_str()).collect();
                all.sort_by_key(|a| !a.starts_with("unix://"));
                let value = if all.len() == 1 { string(all[0]) } else { strings(&all) };
                out.key("listen", &value, *src);
            }
            for (k, v, src) in keys {
                out.key(k, v, *src);
            }
            if i == 1 {
                for user in &self.users {
                    out.line("", None);
                    out.line("[[server.http.users]]", user.first().and_then(|u| u.2));
                    for (k, v, src) in user {
                        out.key(k, v, *src);
                    }
                }
            }
        }
    }
}

/// What programs take from `[supervisord]`.
#[derive(Debug, Default)]
pub struct Global {
    pub environment: Vec<(String, String)>,
    pub strip_ansi: bool,
}

fn place(sec: &Section) -> Src {
    Some((sec.file, sec.line))
}

/// `[supervisord]`: its keys see `here` and ENV_* (the process's environment only).
pub fn supervisord(
    ini: &Ini,
    base: &Dict,
    host: &str,
    tables: &mut Tables,
    notes: &mut Vec<Note>,
    errors: &mut Vec<ConfigError>,
) -> Global {
    let Some(sec) = ini.section("supervisord") else { return Global::default() };
    unknown_keys(ini, sec, &[SUPERVISORD_KEYS], notes);
    // supervisord copies no program's output to its own (a program whose stdout_logfile is
    // /dev/stdout writes there itself): neither does Kahi on its file.
    tables.logging.push(("console".into(), "false".into(), place(sec)));
    tables.places[2] = place(sec);
    let mut r = Reader { ini, sec, notes };
    let mut global = Global::default();
    let result = (|| -> Result<(), ConfigError> {
        if r.value("minfds").is_some() {
            let n = r.typed("minfds", "1024", base, values::integer)?;
            tables.server.push(("minfds".into(), n.to_string(), r.src("minfds")));
            tables.places[0] = place(sec);
        }
        if r.value("minprocs").is_some() {
            r.typed("minprocs", "200", base, values::integer)?;
            r.note("minprocs", true, "Kahi does not raise RLIMIT_NPROC for itself: set [programs.NAME.limits] nproc where a program needs it");
        }
        if let Some(dir) = r.expanded("directory", None, base, &[])? {
            if r.ini.host_checks {
                existing_directory(&dir.plain).map_err(|e| r.error("directory", e))?;
            }
            r.note("directory", true, "Kahi does not change its own directory: start it in that directory, or set directory for each program");
        }
        if r.value("user").is_some() {
            r.note("user", true, "Kahi does not switch its own user: start it as that user (programs keep their user)");
        }
        if r.value("umask").is_some() {
            r.typed("umask", "022", base, values::octal)?;
            r.note("umask", true, "Kahi does not change its own umask: set umask for each program, or start Kahi with that umask");
        }
        if let Some(f) = r.expanded("logfile", None, base, &[])? {
            if r.ini.host_checks {
                existing_dirpath(&f.plain).map_err(|e| r.error("logfile", e))?;
            }
            r.note("logfile", true, "Kahi's own log goes to its stderr (a service manager's journal, a container's log), or with --daemonize to kahi daemon --logfile FILE");
        }
        for key in ["logfile_maxbytes", "logfile_backups", "identifier", "nocleanup", "silent"] {
            if r.value(key).is_some() {
                r.note(key, true, "Kahi has no such setting for its own log: ignored");
            }
        }
        if let Some(f) = r.expanded("pidfile", None, base, &[])? {
            if r.ini.host_checks {
                existing_dirpath(&f.plain).map_err(|e| r.error("pidfile", e))?;
            }
            r.note(
                "pidfile",
                true,
                format!("give it on the command line: kahi daemon --pidfile {}", f.plain),
            );
        }
        if r.value("loglevel").is_some() {
            let level = r.typed("loglevel", "info", base, values::logging_level)?;
            tables.logging.push(("level".into(), string(level), r.src("loglevel")));
            tables.places[2] = place(sec);
        }
        let nodaemon = r.typed("nodaemon", "false", base, values::boolean)?;
        if !nodaemon {
            r.note("nodaemon", false, "supervisord would detach (nodaemon=false): Kahi stays in the foreground unless started with kahi daemon --daemonize");
        }
        if let Some(d) = r.expanded("childlogdir", None, base, &[])? {
            if r.ini.host_checks {
                existing_directory(&d.plain).map_err(|e| r.error("childlogdir", e))?;
            }
            tables.logging.push((
                "childlogdir".into(),
                string(&super::program::escape(&d.plain)),
                r.src("childlogdir"),
            ));
            tables.places[2] = place(sec);
        }
        global.strip_ansi = r.typed("strip_ansi", "false", base, values::boolean)?;
        // environment is expanded twice (supervisord 4.2.5, options.py:654-655): as every key
        // of the section, then again with the include table (host_node_name too). So `%%`
        // there must be written `%%%%`, and `%%(ENV_X)s` is X's value.
        let mut dict = base.clone();
        dict.set_str("host_node_name", host);
        if let Some(once) = r.expanded("environment", None, base, &[])? {
            let e = expand(&once.plain, &dict, &[])
                .map_err(|e| r.error("environment", e.message(&once.plain)))?;
            let (pairs, lost) =
                values::environment(&e.plain).map_err(|e| r.error("environment", e))?;
            for why in lost {
                r.note("environment", false, format!("{why} (supervisord reads it so too)"));
            }
            global.environment = pairs;
        }
        Ok(())
    })();
    if let Err(e) = result {
        errors.push(e);
    }
    global
}

fn existing_directory(d: &str) -> Result<(), String> {
    if std::path::Path::new(&expanduser(d)).is_dir() {
        Ok(())
    } else {
        Err(format!("{d} is not an existing directory"))
    }
}

fn existing_dirpath(p: &str) -> Result<(), String> {
    let full = expanduser(p);
    match std::path::Path::new(&full).parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => {
            Err(format!("The directory named as part of the path {p} does not exist."))
        }
        _ => Ok(()),
    }
}

fn expanduser(p: &str) -> String {
    match (p.strip_prefix('~'), std::env::var("HOME")) {
        (Some(rest), Ok(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{home}{rest}")
        }
        _ => p.to_string(),
    }
}

/// `[unix_http_server]` and `[inet_http_server]`.
pub fn servers(
    ini: &Ini,
    base: &Dict,
    tables: &mut Tables,
    notes: &mut Vec<Note>,
    errors: &mut Vec<ConfigError>,
) {
    for sec in &ini.sections {
        let result = if sec.name == "unix_http_server" {
            unknown_keys(ini, sec, &[&["file", "chmod", "chown", "username", "password"]], notes);
            unix(&mut Reader { ini, sec, notes }, base, tables)
        } else if sec.name == "inet_http_server" {
            unknown_keys(ini, sec, &[&["port", "username", "password"]], notes);
            inet(&mut Reader { ini, sec, notes }, base, tables)
        } else if sec.name.starts_with("unix_http_server")
            || sec.name.starts_with("inet_http_server")
        {
            let e = ini.error_line(sec.file, sec.line, &format!("[{}]", sec.name), "a second server of supervisord's: Kahi has one control socket and one HTTP listener; left out");
            notes.push(Note { error: e, unmapped: true });
            Ok(())
        } else {
            Ok(())
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
}

/// The salt of the password hashes, one for this process: a reread hashes a password as the
/// start did (so `[server]` is not seen as changed), another run of Kahi or of kahi migrate
/// otherwise.
fn salt() -> [u8; 16] {
    use std::io::Read;
    static SALT: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    *SALT.get_or_init(|| {
        let mut s = [0u8; 16];
        let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut s));
        if read.is_err() {
            // No /dev/urandom (a bare chroot): bcrypt's own random salt, as text.
            let salt = bcrypt::hash_with_result(b"", 4).map(|h| h.get_salt()).unwrap_or_default();
            for (i, b) in salt.bytes().take(16).enumerate() {
                s[i] = b;
            }
        }
        s
    })
}

/// `username` and `password`: both or neither.
fn credentials(r: &Reader<'_>) -> Result<Option<(String, String)>, ConfigError> {
    let user = r.value("username").map(|v| v.text.clone());
    let pass = r.value("password").map(|v| v.text.clone());
    match (user, pass) {
        (None, None) => Ok(None),
        (Some(u), Some(p)) => Ok(Some((u, p))),
        _ => Err(r.error(
            if r.value("username").is_some() { "username" } else { "password" },
            format!(
                "Section [{}] contains incomplete authentication: If a username or a password is specified, both the username and password must be specified",
                r.sec.name
            ),
        )),
    }
}

fn unix(r: &mut Reader<'_>, base: &Dict, tables: &mut Tables) -> Result<(), ConfigError> {
    let Some(file) = r.expanded("file", None, base, &[])? else {
        return Err(r.error("", "section [unix_http_server] has no file value"));
    };
    tables.places[0] = place(r.sec);
    tables.places[1] = tables.places[1].or(place(r.sec));
    // supervisorctl and every XML-RPC client speak HTTP there: the file becomes an HTTP
    // listener, and Kahi's own control socket (kahi ctl's JSON lines) goes beside it.
    // As supervisord's normalize_path: ~ expanded, and absolute from the current directory.
    let full = expanduser(&file.plain);
    let path = std::path::absolute(&full).map_or(full, |p| p.display().to_string());
    tables.listen.push((format!("unix://{path}"), r.src("file")));
    let control = super::program::escape(&control_socket(&path));
    tables.server.push(("socket".into(), string(&control), r.src("file")));
    if r.value("chmod").is_some() {
        let mode = string(&format!("{:04o}", r.typed("chmod", "0700", base, values::octal)?));
        tables.server.push(("socket_mode".into(), mode.clone(), r.src("chmod")));
        tables.http.push(("socket_mode".into(), mode, r.src("chmod")));
    }
    if let Some(chown) = r.value("chown").map(|v| v.text.clone()) {
        tables.http.push(("socket_owner".into(), string(&chown), r.src("chown")));
        match chown.split_once(':') {
            Some((_, group)) => {
                tables.server.push(("socket_group".into(), string(group), r.src("chown")));
            }
            None => r.note(
                "chown",
                false,
                format!("Kahi's control socket ({control}) keeps Kahi's user and group: write USER:GROUP to give it the group"),
            ),
        }
    }
    if let Some((user, password)) = credentials(r)? {
        add_user(r, tables, &user, &password)?;
        r.note("username", false, "root and Kahi's own user connect to the socket without the password (peer_credentials); anyone else gives it");
    }
    Ok(())
}

/// Kahi's control socket for supervisord's `[unix_http_server] file`: beside it,
/// `supervisor.sock` -> `supervisor.kahi.sock`.
fn control_socket(file: &str) -> String {
    format!("{}.kahi.sock", file.strip_suffix(".sock").unwrap_or(file))
}

/// A `[[server.http.users]]` admin for supervisord's `username` and `password`; a name already
/// given (both servers name one) is kept with its first password.
fn add_user(
    r: &mut Reader<'_>,
    tables: &mut Tables,
    user: &str,
    password: &str,
) -> Result<(), ConfigError> {
    if tables.users.iter().any(|u| u.first().is_some_and(|(_, name, _)| *name == string(user))) {
        r.note(
            "username",
            false,
            format!("{user} is already a user, with the password given first"),
        );
        return Ok(());
    }
    let hash = bcrypt::hash_with_salt(password, BCRYPT_COST, salt())
        .map(|h| h.format_for_version(bcrypt::Version::TwoB))
        .map_err(|e| r.error("password", format!("unable to hash the password: {e}")))?;
    tables.users.push(vec![
        ("name".into(), string(user), r.src("username")),
        ("password_hash".into(), string(&hash), r.src("password")),
        ("role".into(), string("admin"), r.src("username")),
    ]);
    Ok(())
}

fn inet(r: &mut Reader<'_>, base: &Dict, tables: &mut Tables) -> Result<(), ConfigError> {
    // supervisord expands port, username and password with ENV_* only.
    let env = Dict(
        base.0
            .iter()
            .filter(|(k, _)| k.starts_with("ENV_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let Some(port) = r.expanded("port", None, &env, &[])? else {
        return Err(r.error("", "section [inet_http_server] has no port value"));
    };
    let (host, port) = values::inet_address(&port.plain).map_err(|e| r.error("port", e))?;
    let host = if host.is_empty() { "0.0.0.0".to_string() } else { host };
    tables.places[1] = place(r.sec);
    let loopback =
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
    tables.listen.push((format!("{host}:{port}"), r.src("port")));
    match credentials(r)? {
        Some((user, password)) => {
            if let Some(hex) = password.strip_prefix("{SHA}") {
                r.note("password", true, format!("a {{SHA}} hash ({}...) cannot become a bcrypt hash: set password_hash with kahi hash-password", &hex[..hex.len().min(8)]));
                if !loopback {
                    tables.http.push(("insecure".into(), "true".into(), r.src("password")));
                }
                return Ok(());
            }
            add_user(r, tables, &user, &password)?;
        }
        None if !loopback => {
            tables.http.push(("insecure".into(), "true".into(), r.src("port")));
            r.note("port", false, "no username: anyone who reaches this address may control every program, as with supervisord (insecure = true)");
        }
        None => {}
    }
    Ok(())
}
