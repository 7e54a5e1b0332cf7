//! A supervised process: its state names and codes (supervisord's, so operators and tools carry
//! over), how it ended, and signal names. The lifecycle itself is in [`machine`]. No I/O here.

#![deny(clippy::indexing_slicing)]

mod backoff;
pub mod machine;
mod timers;

use std::fmt;
use std::str::FromStr;

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

/// supervisord's process states, with its numeric codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Stopped,
    Starting,
    Running,
    Backoff,
    Stopping,
    Exited,
    Fatal,
    Unknown,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Stopped,
        State::Starting,
        State::Running,
        State::Backoff,
        State::Stopping,
        State::Exited,
        State::Fatal,
        State::Unknown,
    ];

    pub fn code(self) -> u32 {
        match self {
            State::Stopped => 0,
            State::Starting => 10,
            State::Running => 20,
            State::Backoff => 30,
            State::Stopping => 40,
            State::Exited => 100,
            State::Fatal => 200,
            State::Unknown => 1000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Stopped => "STOPPED",
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Backoff => "BACKOFF",
            State::Stopping => "STOPPING",
            State::Exited => "EXITED",
            State::Fatal => "FATAL",
            State::Unknown => "UNKNOWN",
        }
    }

    /// supervisord's STOPPED_STATES: a start request is accepted.
    pub fn is_stopped(self) -> bool {
        matches!(self, State::Stopped | State::Exited | State::Fatal | State::Unknown)
    }

    /// supervisord's RUNNING_STATES: a start request is refused as "already started".
    pub fn is_running(self) -> bool {
        matches!(self, State::Running | State::Backoff | State::Starting)
    }

    /// supervisord's SIGNALLABLE_STATES: there is a pid to signal.
    pub fn is_signallable(self) -> bool {
        matches!(self, State::Running | State::Starting | State::Stopping)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    Exited(i32),
    Signaled { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    /// The shell's view: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled { signal, .. } => 128 + signal,
        }
    }

    /// Whether a program with these `exitcodes` meant to end so: an exit with one of them (a
    /// death by a signal never is).
    pub fn expected(self, exitcodes: &[i32]) -> bool {
        matches!(self, ExitStatus::Exited(c) if exitcodes.contains(&c))
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exit status {c}"),
            ExitStatus::Signaled { signal, core_dumped } => {
                let name = Signal::try_from(*signal).map(|s| s.as_str()).unwrap_or("?");
                write!(f, "terminated by {name}")?;
                if *core_dumped {
                    write!(f, " (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a spawn failed, as an errno, from the `COMMAND: strerror` its error says; None for any
/// other failure (a directory, a user, a limit).
pub fn spawn_errno(error: &str, command: &str) -> Option<nix::errno::Errno> {
    use nix::errno::Errno;
    let why = error.strip_prefix(command)?.strip_prefix(": ")?;
    [Errno::ENOENT, Errno::EACCES, Errno::ENOEXEC].into_iter().find(|e| e.desc() == why)
}

/// A signal by name (`TERM`, `SIGTERM`, `term`) or number (`15`).
pub fn parse_signal(s: &str) -> Result<Signal, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("unknown signal number {n}"));
    }
    let upper = t.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&full).map_err(|_| format!("unknown signal {s:?}; expected a name such as TERM, HUP, INT, QUIT, KILL, USR1, USR2 or a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal(" sigquit ").unwrap(), Signal::SIGQUIT);
        assert_eq!(parse_signal("hup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn exit_status_text() {
        assert_eq!(ExitStatus::Exited(3).to_string(), "exit status 3");
        assert_eq!(
            ExitStatus::Signaled { signal: 9, core_dumped: false }.to_string(),
            "terminated by SIGKILL"
        );
        assert_eq!(ExitStatus::Signaled { signal: 9, core_dumped: false }.code(), 137);
    }

    #[test]
    fn state_sets_match_supervisord() {
        use State::*;
        let running: Vec<State> = State::ALL.into_iter().filter(|s| s.is_running()).collect();
        assert_eq!(running, [Starting, Running, Backoff]);
        let stopped: Vec<State> = State::ALL.into_iter().filter(|s| s.is_stopped()).collect();
        assert_eq!(stopped, [Stopped, Exited, Fatal, Unknown]);
        assert_eq!(Fatal.code(), 200);
    }
}
