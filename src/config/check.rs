//! Checks of what a configuration names on this machine, which may change before a program
//! starts: that each program's command is an executable file. The loader records the outcome
//! as notes, not errors: `kahi daemon --check` fails on a note of severity error, while the
//! daemon logs every note as a warning and starts, as supervisord refuses to spawn a missing
//! program but not to start (one broken program must not take a container down).

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::errno::Errno;

use super::{ConfigError, ProcessSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Wrong whatever happens later: `--check` fails.
    Error,
    /// Possibly fine when the program starts (PATH may differ then).
    Warning,
}

/// A finding of the checks, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub severity: Severity,
    pub error: ConfigError,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}", self.error),
            Severity::Warning => write!(f, "warning: {}", self.error),
        }
    }
}

/// Whether the command of `spec` resolves as the spawn will resolve it: a path (a name with a
/// slash, relative to the program's `directory`) must be an executable file; a bare name is
/// looked for in the PATH the program will get (its own `environment`, else the daemon's).
pub fn command(spec: &ProcessSpec) -> Option<(Severity, String)> {
    let name = spec.argv.first()?;
    if !name.contains('/') {
        let env = crate::sys::environ::Environment::for_program(spec);
        let path = env.get("PATH").map(|v| v.to_string_lossy());
        let path = path.unwrap_or(crate::sys::spawn::DEFAULT_PATH.into());
        let why = match crate::sys::spawn::resolve(name, env.get("PATH")) {
            Ok(_) => return None,
            Err(Errno::EACCES) => "is in PATH but not executable",
            Err(_) => "is not found in PATH",
        };
        return Some((
            Severity::Warning,
            format!("{name:?} {why} ({path}); it may be there when the program starts"),
        ));
    }
    let file = match &spec.directory {
        Some(dir) if Path::new(name).is_relative() => dir.join(name),
        _ => name.into(),
    };
    let shown = if file.as_os_str() == name.as_str() {
        format!("{name:?}")
    } else {
        format!("{name:?} ({})", file.display())
    };
    match std::fs::metadata(&file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some((Severity::Error, format!("{shown}: no such file")))
        }
        Err(e) => Some((Severity::Warning, format!("{shown}: unable to check: {e}"))),
        Ok(m) if m.is_dir() => Some((Severity::Error, format!("{shown} is a directory"))),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Some((
            Severity::Error,
            format!("{shown} is not executable (mode {:04o})", m.permissions().mode() & 0o7777),
        )),
        Ok(_) => None,
    }
}
