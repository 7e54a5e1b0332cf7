//! The schema against the loader: every key of [`schema::KEYS`] is read, and the default it
//! documents is the one an absent key gets. So `KEYS`, the man page built from the same words
//! and the `Default`s of the spec types cannot drift apart.

use std::path::Path;

use super::schema::{KEYS, Key, Section};
use super::*;

/// No TOML value of any key is a date: each key must refuse one.
const DATE: &str = "1979-05-27T07:32:00Z";

/// A bcrypt hash of the right shape, for a user table.
const HASH: &str = "$2b$12$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// The configuration in `text`, loaded without reading a file.
fn load(text: &str) -> Result<Config, Vec<ConfigError>> {
    load_text(Path::new("/etc/kahi/kahi.toml"), text, &|_| None)
}

/// A valid configuration holding `key` (a `name = value` line, or nothing) in its section,
/// with whatever else that section needs to load; and the key path of `name` there.
fn with(k: &Key, line: &str) -> (String, String) {
    let name = k.name;
    let program = "[programs.p]\ncommand = \"/bin/sh\"\n";
    let others = |base: &[(&str, &str)]| -> String {
        base.iter().filter(|(n, _)| *n != name).map(|(n, v)| format!("{n} = {v}\n")).collect()
    };
    match k.section {
        Section::Root => (format!("{line}\n{program}"), name.into()),
        Section::Server => (format!("[server]\n{line}\n{program}"), format!("server.{name}")),
        Section::Http => {
            (format!("[server.http]\n{line}\n{program}"), format!("server.http.{name}"))
        }
        Section::HttpUser => {
            let user = others(&[
                ("name", "\"a\""),
                ("password_hash", &format!("{HASH:?}")),
                ("role", "\"viewer\""),
            ]);
            (
                format!("[[server.http.users]]\n{user}{line}\n{program}"),
                format!("server.http.users.0.{name}"),
            )
        }
        Section::Logging => (format!("[logging]\n{line}\n{program}"), format!("logging.{name}")),
        Section::Program => {
            // accept and max_instances apply to socket programs only.
            let socket = if matches!(name, "accept" | "max_instances") {
                "type = \"socket\"\nlisten = [\"tcp://127.0.0.1:1\"]\n"
            } else {
                ""
            };
            let base = others(&[("command", "\"/bin/sh\"")]);
            (format!("[programs.p]\n{base}{socket}{line}\n"), format!("programs.p.{name}"))
        }
        Section::Limits => {
            (format!("{program}[programs.p.limits]\n{line}\n"), format!("programs.p.limits.{name}"))
        }
        Section::Healthcheck => {
            let probe = if name == "tcp" { "exec = \"true\"\n" } else { "tcp = \"127.0.0.1:1\"\n" };
            (
                format!("{program}[programs.p.healthcheck]\n{probe}{line}\n"),
                format!("programs.p.healthcheck.{name}"),
            )
        }
        Section::Group => (
            format!("{program}[groups.g]\n{}{line}\n", others(&[("programs", "[\"p\"]")])),
            format!("groups.g.{name}"),
        ),
        Section::Listener => {
            let base = others(&[("command", "\"/bin/sh\""), ("events", "[\"EVENT\"]")]);
            (format!("[eventlisteners.l]\n{base}{line}\n"), format!("eventlisteners.l.{name}"))
        }
        Section::Fcgi => {
            let base =
                others(&[("command", "\"/bin/sh\""), ("socket", "\"unix:///run/kahi-f.sock\"")]);
            (format!("[fcgi_programs.f]\n{base}{line}\n"), format!("fcgi_programs.f.{name}"))
        }
        Section::Webhook => {
            let base = others(&[("url", "\"http://127.0.0.1:1/\""), ("events", "[\"EVENT\"]")]);
            (format!("{program}[webhooks.w]\n{base}{line}\n"), format!("webhooks.w.{name}"))
        }
    }
}

/// The default of `k` as a TOML value, when the schema writes it as one: `1`, `"TERM"`,
/// `[0]`, or such a value followed by `: ` and words (`0: no watchdog`). None for a default
/// in words only ("the daemon's user", "none").
fn default_value(k: &Key) -> Option<&'static str> {
    let parses = |v: &str| toml::from_str::<toml::Table>(&format!("v = {v}")).is_ok();
    [Some(k.default), k.default.split_once(": ").map(|(v, _)| v)]
        .into_iter()
        .flatten()
        .find(|v| parses(v))
}

#[test]
fn every_key_reads_its_value() {
    let mut unread = Vec::new();
    for k in KEYS {
        let (text, path) = with(k, &format!("{} = {DATE}", k.name));
        let found = load(&text).err().unwrap_or_default();
        if !found.iter().any(|e| e.key == path && e.message.contains("datetime")) {
            unread.push(format!("{path}: a date gave {found:?}"));
        }
    }
    assert!(unread.is_empty(), "keys whose value is not read:\n{}", unread.join("\n"));
}

#[test]
fn the_default_in_the_schema_is_what_an_absent_key_gets() {
    let (mut checked, mut in_words, mut wrong) = (0, Vec::new(), Vec::new());
    for k in KEYS {
        let Some(value) = default_value(k) else {
            in_words.push(k.name);
            continue;
        };
        // A user table has no defaults: all its keys are required.
        if k.section == Section::HttpUser {
            continue;
        }
        let (absent, _) = with(k, "");
        let (given, path) = with(k, &format!("{} = {value}", k.name));
        match (load(&absent), load(&given)) {
            (Ok(a), Ok(g)) if a == g => checked += 1,
            (a, g) => wrong.push(format!("{path} = {value}: absent {a:?}\n  given {g:?}")),
        }
    }
    assert!(wrong.is_empty(), "defaults that differ from the schema's:\n{}", wrong.join("\n"));
    // Defaults in words say what no TOML value can; a new one is a choice made here.
    assert_eq!(
        in_words,
        [
            "socket",
            "listen",
            "socket_owner",
            "socket_group",
            "tls_cert",
            "tls_key",
            "name",
            "password_hash",
            "role",
            "childlogdir",
            "command",
            "backoff_factor",
            "backoff_max",
            "listen",
            "killasgroup",
            "user",
            "directory",
            "umask",
            "stdout_logfile",
            "stderr_logfile",
            "nofile",
            "nproc",
            "core",
            "as",
            "cpu",
            "memlock",
            "stack",
            "healthcheck",
            "exec",
            "tcp",
            "http",
            "expect_body",
            "events",
            "socket",
            "socket_owner",
            "socket_backlog",
            "programs",
            "url",
            "events",
            "secret",
            "ca_file",
        ]
    );
    assert!(checked >= 60, "only {checked} defaults checked");
}

/// The comparison above can fail: a value other than the default changes the result.
#[test]
fn a_value_other_than_the_default_is_seen() {
    let startsecs = KEYS.iter().find(|k| k.name == "startsecs").unwrap();
    let (absent, _) = with(startsecs, "");
    let (given, _) = with(startsecs, "startsecs = 2");
    assert_ne!(load(&absent).unwrap(), load(&given).unwrap());
}

#[test]
fn probe_addresses_are_looked_up_at_load_issue_14() {
    let config = load(
        "[programs.a]\ncommand = \"/bin/sh\"\n[programs.a.healthcheck]\ntcp = \"localhost:8080\"\n\
         [programs.b]\ncommand = \"/bin/sh\"\n[programs.b.healthcheck]\nhttp = \"http://localhost:8081/up\"\n",
    )
    .unwrap();
    let probe = |name: &str| {
        let p = config.processes.iter().find(|p| p.name == name).unwrap();
        p.healthcheck.as_ref().unwrap().probe.clone()
    };
    match probe("a") {
        Probe::Tcp(a) => assert!(a.ip().is_loopback() && a.port() == 8080, "{a}"),
        other => panic!("{other:?}"),
    }
    match probe("b") {
        Probe::Http { addr, host, path, .. } => {
            assert!(addr.ip().is_loopback() && addr.port() == 8081, "{addr}");
            assert_eq!((host.as_str(), path.as_str()), ("localhost:8081", "/up"));
        }
        other => panic!("{other:?}"),
    }
}

/// A name that does not resolve was a failure at every check, on the event loop; it is now an
/// error of the configuration, at its place.
#[test]
fn a_probe_name_that_does_not_resolve_is_a_config_error_issue_14() {
    for (key, value) in
        [("tcp", "no-such-host.invalid:80"), ("http", "http://no-such-host.invalid/")]
    {
        let text = format!(
            "[programs.web]\ncommand = \"/bin/sh\"\n\n[programs.web.healthcheck]\n{key} = \"{value}\"\n"
        );
        let errors = load(&text).unwrap_err();
        let e = errors
            .iter()
            .find(|e| e.key == format!("programs.web.healthcheck.{key}"))
            .unwrap_or_else(|| panic!("{errors:?}"));
        assert_eq!(
            (e.file.as_path(), e.line, e.column),
            (Path::new("/etc/kahi/kahi.toml"), 5, key.len() + 4)
        );
        assert!(e.message.contains("no-such-host.invalid"), "{}", e.message);
    }
}
