//! Procfiles: `kahi run` (foreman's `start`: the stack in the foreground, one command) and
//! `kahi migrate --from procfile` (foreman's `export`: the same processes as a `kahi.toml`).
//!
//! Both go one way: the Procfile, the `.env` files and the formation are read
//! ([`parse`], as foreman reads them) into a [`Stack`], one entry per process with the name
//! and PORT foreman gives it; the stack is written as Kahi's TOML ([`Stack::toml`]), which
//! Kahi's loader reads as it reads any `kahi.toml`. `kahi run` loads that text in memory and
//! runs it as an ordinary daemon ([`run`]); migrate writes it out.
//!
//! Each process is a program of its own (`[programs."web.1"]`, in the group `web`) rather
//! than one program with `numprocs`: foreman's PORT is base + 100 × the type's index + the
//! instance's, which no `%(process_num)d` template can say.

pub mod parse;
pub mod run;

use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::supervisord::emit::{self, Out};
use crate::supervisord::program::escape;
use parse::{Entry, Formation};

/// foreman's base port.
pub const DEFAULT_PORT: u32 = 5000;

/// foreman's shutdown timeout: SIGKILL this many seconds after SIGTERM.
pub const DEFAULT_TIMEOUT: u32 = 5;

/// What `kahi run` and `kahi migrate --from procfile` are given.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `.env` files to read (`-e`); empty: `.env` next to the Procfile, when there is one.
    pub env_files: Vec<PathBuf>,
    /// `-m`.
    pub formation: Option<String>,
    /// `-p`.
    pub port: Option<u32>,
    /// `-t`: seconds between SIGTERM and SIGKILL.
    pub timeout: Option<u32>,
}

/// One process of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// foreman's name: `web.1`.
    pub name: String,
    /// The process type: `web`.
    pub kind: String,
    pub command: String,
    pub port: u32,
    /// The Procfile line of its type.
    pub line: usize,
}

/// A Procfile read with its options: the processes to run, in order.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The Procfile, absolute.
    pub procfile: PathBuf,
    /// Where the processes run: the Procfile's directory (foreman's root).
    pub root: PathBuf,
    pub processes: Vec<Process>,
    /// The types, in Procfile order (those run zero times too).
    pub kinds: Vec<String>,
    /// The `.env` variables every process gets, in order.
    pub env: Vec<(String, String)>,
    pub base_port: u32,
    pub timeout: u32,
    /// The formation as given, for the TOML's header.
    pub formation: Option<String>,
}

/// Reads a file for the stack; an error names it.
fn read(path: &Path) -> Result<String, Vec<ConfigError>> {
    crate::config::read::text(path)
        .map_err(|e| vec![parse::error(path, 0, format!("unable to read: {e}"))])
}

impl Stack {
    /// Reads `procfile` and the `.env` files, and lays out the processes: `env` is the
    /// environment's `PORT`, the base port when neither `-p` nor a `.env` gives one.
    pub fn read(
        procfile: &Path,
        options: &Options,
        env_port: Option<&str>,
    ) -> Result<Stack, Vec<ConfigError>> {
        let procfile = std::path::absolute(procfile).unwrap_or_else(|_| procfile.to_path_buf());
        let root = procfile.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let entries = parse::procfile(&procfile, &read(&procfile)?)?;
        // foreman: the files given, else `.env` at the root when it exists.
        let env_files = if options.env_files.is_empty() {
            let default = root.join(".env");
            if default.is_file() { vec![default] } else { Vec::new() }
        } else {
            options.env_files.iter().map(|f| std::path::absolute(f).unwrap_or(f.clone())).collect()
        };
        let mut env: Vec<(String, String)> = Vec::new();
        let mut errors = Vec::new();
        for file in &env_files {
            match read(file).and_then(|text| parse::env_file(file, &text)) {
                Ok(vars) => {
                    for (k, v) in vars {
                        env.retain(|(key, _)| *key != k);
                        env.push((k, v));
                    }
                }
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let general = |message: String| vec![parse::error(&procfile, 0, message)];
        let formation = match &options.formation {
            Some(m) => Formation::parse(m).map_err(general)?,
            None => Formation::default(),
        };
        let unknown = formation.unknown(&entries);
        if !unknown.is_empty() {
            return Err(general(format!(
                "-m names {unknown:?}, which the Procfile does not define"
            )));
        }
        // foreman: -p, else PORT from the .env files, else from the environment, else 5000.
        let base_port = match options.port {
            Some(p) => p,
            None => {
                let given = env.iter().find(|(k, _)| k == "PORT").map(|(_, v)| v.as_str());
                match given.or(env_port).filter(|s| !s.is_empty()) {
                    Some(s) => s.trim().parse().map_err(|_| {
                        general(format!("PORT {s:?} is not a port number (set -p to choose one)"))
                    })?,
                    None => DEFAULT_PORT,
                }
            }
        };
        let processes = lay_out(&entries, &formation, base_port);
        if let Some(last) = processes.iter().map(|p| p.port).max()
            && (base_port == 0 || last > 65535)
        {
            return Err(general(format!(
                "the base port {base_port} gives ports up to {last}: choose one from 1 to {} with -p",
                65535u32.saturating_sub(last - base_port)
            )));
        }
        if processes.is_empty() {
            return Err(general("the formation runs no process".into()));
        }
        Ok(Stack {
            procfile,
            root,
            processes,
            kinds: entries.into_iter().map(|e| e.name).collect(),
            env,
            base_port,
            timeout: options.timeout.unwrap_or(DEFAULT_TIMEOUT),
            formation: options.formation.clone(),
        })
    }

    /// The stack as Kahi's TOML. `run`: as `kahi run` runs it, with its control socket there
    /// (the stack ends when a process exits); else as a daemon keeps it (each process
    /// restarted when it exits, as foreman's exports do).
    pub fn toml(&self, run: Option<&Path>) -> Out {
        let mut out = Out::default();
        let files = [self.procfile.clone()];
        let src = |line: usize| Some((0, line));
        out.line(
            &format!(
                "# {} from {} by kahi {}{}, base port {}.",
                if run.is_some() { "The stack kahi run runs" } else { "Written" },
                self.procfile.display(),
                if run.is_some() { "run" } else { "migrate --from procfile" },
                self.formation.as_deref().map(|m| format!(" -m {m}")).unwrap_or_default(),
                self.base_port,
            ),
            None,
        );
        out.line(
            "# One program per process, named as foreman names it (web.1, web.2, ...), in the group\n\
             # of its type (kahi ctl restart web.1, or web for all of them), with the PORT foreman\n\
             # gives it: the base port + 100 for each type before it in the Procfile + the instance - 1.",
            None,
        );
        if run.is_none() {
            out.line(
                "# As foreman's exports: each process is restarted when it exits, and gets SIGTERM, then\n\
                 # SIGKILL after stopwaitsecs, in its whole process group.",
                None,
            );
        }
        if let Some(socket) = run {
            out.line("", None);
            out.line("[server]", None);
            out.key("socket", &emit::string(&escape(&socket.to_string_lossy())), None);
            out.line("", None);
            out.line("[logging]", None);
            out.key("console", "true", None);
        }
        for (i, kind) in self.kinds.iter().enumerate() {
            let members: Vec<&Process> =
                self.processes.iter().filter(|p| p.kind == *kind).collect();
            let Some(first) = members.first() else { continue };
            out.table(&format!("groups.{}", emit::bare(kind)), src(first.line), &files);
            let names: Vec<&str> = members.iter().map(|p| p.name.as_str()).collect();
            out.key("programs", &emit::strings(&names), src(first.line));
            // Procfile order is start order; the stop goes the other way.
            out.key("priority", &(i + 1).to_string(), src(first.line));
        }
        for p in &self.processes {
            let at = src(p.line);
            out.table(&format!("programs.{}", emit::bare(&p.name)), at, &files);
            let argv = ["/bin/sh".to_string(), "-c".to_string(), escape(&p.command)];
            out.key("command", &emit::strings(&argv), at);
            out.key("directory", &emit::string(&escape(&self.root.to_string_lossy())), at);
            let mut env: Vec<(String, String)> =
                self.env.iter().filter(|(k, _)| k != "PORT" && k != "PS").cloned().collect();
            env.push(("PORT".into(), p.port.to_string()));
            env.push(("PS".into(), p.name.clone()));
            let env: Vec<(String, String)> =
                env.into_iter().map(|(k, v)| (k, escape(&v))).collect();
            out.key("environment", &emit::inline(&env), at);
            out.key("redirect_stderr", "true", at);
            out.key("stopasgroup", "true", at);
            out.key("stopwaitsecs", &self.timeout.to_string(), at);
            if run.is_some() {
                out.key("autorestart", "false", at);
                out.key("critical", "true", at);
            }
        }
        out
    }
}

/// foreman's processes: each type as many times as the formation says, in Procfile order.
fn lay_out(entries: &[Entry], formation: &Formation, base: u32) -> Vec<Process> {
    let mut processes = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        for n in 1..=formation.count(&e.name) {
            processes.push(Process {
                name: format!("{}.{n}", e.name),
                kind: e.name.clone(),
                command: e.command.clone(),
                port: base.saturating_add(100 * i as u32).saturating_add(n - 1),
                line: e.line,
            });
        }
    }
    processes
}

#[cfg(test)]
mod tests;
