//! supervisord.conf read as supervisord reads it, and written as Kahi's TOML: the one reader
//! behind `kahi daemon -c supervisord.conf` (the TOML is loaded as any `kahi.toml`, so both
//! run the same configuration) and `kahi migrate` (the TOML is written out).
//!
//! The layers: `ini` (configparser's rules and `[include]`), `format` (Python's `%` expansion),
//! `values` (supervisord's value types and `environment=`), `program` and `server` (each
//! section as supervisord reads it), `map` (the sections to Kahi's tables), `emit` (the TOML,
//! each line knowing its supervisord line). Every rule cites supervisord; the reference is
//! supervisord 4.2.5's options.py and datatypes.py.

pub mod cli;
pub mod emit;
pub mod format;
pub mod ini;
pub mod map;
pub mod program;
pub mod server;
pub mod values;

use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// A finding of the migration, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub error: ConfigError,
    /// Something supervisord honours that Kahi leaves out or does otherwise (`migrate --check`
    /// fails); else a warning (supervisord ignores it too, or Kahi does the same another way).
    pub unmapped: bool,
}

impl Note {
    pub fn warning(error: ConfigError) -> Note {
        Note { error, unmapped: false }
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.unmapped { "not mapped" } else { "warning" };
        write!(f, "{what}: {}", self.error)
    }
}

/// A supervisord configuration written as Kahi's.
#[derive(Debug)]
pub struct Migration {
    pub toml: String,
    pub notes: Vec<Note>,
    /// The files read, the main one first.
    pub files: Vec<PathBuf>,
    out: emit::Out,
}

impl Migration {
    /// An error Kahi's loader found in the TOML, told at its supervisord place.
    pub fn place(&self, e: ConfigError) -> ConfigError {
        self.out.place(e, &self.files)
    }
}

/// Whether `text` is a supervisord configuration: a section of supervisord's that a
/// `kahi.toml` cannot have (`[program:x]`, `[supervisord]`, ...).
pub fn looks_like(text: &str) -> bool {
    const MARKS: &[&str] = &[
        "[program:",
        "[group:",
        "[eventlistener:",
        "[fcgi-program:",
        "[rpcinterface:",
        "[supervisord]",
        "[supervisorctl]",
        "[unix_http_server]",
        "[inet_http_server]",
        "[include]",
    ];
    text.lines().any(|l| {
        let l = l.trim_start();
        MARKS.iter().any(|m| l.starts_with(m))
    })
}

/// Reads the supervisord configuration `main` (whose text is `text`) and what it includes,
/// with `env` as supervisord's environment, and writes it as Kahi's TOML, to run here: users
/// and directories are checked on this host, as supervisord checks them.
pub fn migrate(
    main: &Path,
    text: &str,
    env: &[(String, String)],
) -> Result<Migration, Vec<ConfigError>> {
    convert(main, text, env, true)
}

/// [`migrate`], with users and directories checked on this host or (`host_checks` false, for
/// `kahi migrate`, which may write for another host) taken as written.
pub fn convert(
    main: &Path,
    text: &str,
    env: &[(String, String)],
    host_checks: bool,
) -> Result<Migration, Vec<ConfigError>> {
    let host =
        nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    let main = std::path::absolute(main).unwrap_or_else(|_| main.to_path_buf());
    let mut dict =
        format::Dict::default().with_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    dict.set_str(
        "here",
        main.parent().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default(),
    );
    dict.set_str("host_node_name", &host);
    let mut ini = ini::read(&main, text, &dict)?;
    ini.host_checks = host_checks;
    let mapped = map::map(&ini, env, &host)?;
    Ok(Migration {
        toml: mapped.out.text.clone(),
        notes: mapped.notes,
        files: ini.files,
        out: mapped.out,
    })
}

/// The process's environment, as supervisord's `ENV_*` sees it.
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
