//! Views of the supervisor for replies: a process's status line, groups, the configuration in
//! force, readiness. Pure: the clock is an argument.

use std::time::{Duration, Instant, UNIX_EPOCH};

use super::*;
use crate::process::State;
use crate::process::machine::TimerKind;
use crate::supervisor::{ProcId, Supervisor};

/// The processes a status request names, in order, and the names that match none.
pub(super) fn status_ids(sup: &Supervisor, names: &[String]) -> (Vec<ProcId>, Vec<String>) {
    let mut unknown = Vec::new();
    let ids: Vec<ProcId> = if names.is_empty() {
        sup.iter().map(|e| e.id).collect()
    } else {
        let mut ids = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for n in names {
            match sup.resolve(n) {
                Some(found) => ids.extend(found.into_iter().filter(|id| seen.insert(*id))),
                None => unknown.push(n.clone()),
            }
        }
        ids
    };
    (ids, unknown)
}

/// The status of these processes.
pub fn status(sup: &Supervisor, ids: &[ProcId], unknown: Vec<String>, now: Now) -> Reply {
    let processes =
        ids.iter().filter_map(|id| sup.get(*id)).map(|e| process_info(e, now)).collect();
    Reply::Status { processes, unknown }
}

/// The status of these processes as `kahi ctl status` prints it, and only that: a name, a
/// state and a description a process, not the twenty fields of [`ProcessInfo`] (which the
/// client read and dropped: a third of its work).
pub fn status_table(sup: &Supervisor, ids: &[ProcId], unknown: Vec<String>, now: Now) -> Reply {
    let entries: Vec<_> = ids.iter().filter_map(|id| sup.get(*id)).collect();
    let down = entries.iter().any(|e| e.proc.state.is_stopped());
    let rows: Vec<_> =
        entries.iter().map(|e| (e.spec.namespec(), e.proc.state, description(e, now))).collect();
    Reply::Table { text: table(&rows), down, unknown }
}

/// supervisorctl's status table: the name padded to the widest (30 at least) and 3 more, the
/// state padded to 10, the description; a line each.
pub fn table(rows: &[(String, State, String)]) -> String {
    let width = rows.iter().map(|(name, ..)| name.len()).max().unwrap_or(0).max(30) + 3;
    let mut text = String::with_capacity(rows.len() * (width + 40));
    for (name, state, description) in rows {
        padded(&mut text, name, width);
        padded(&mut text, state.name(), 10);
        text.push_str(description);
        text.push('\n');
    }
    text
}

/// `s` and spaces up to `width` characters, as `{s:<width$}` (which pads a character at a time
/// through the formatter: a fifth of a status's cost).
fn padded(line: &mut String, s: &str, width: usize) {
    line.push_str(s);
    let n = width.saturating_sub(s.chars().count());
    line.extend(std::iter::repeat_n(' ', n));
}

pub fn process_info(e: &crate::supervisor::Entry, now: Now) -> ProcessInfo {
    let p = &e.proc;
    // To the millisecond: the two clocks are read a few microseconds apart at each request,
    // and a start time should not move between two of them.
    let wall = |at: Instant| {
        let ago = now.mono.saturating_duration_since(at);
        now.wall
            .checked_sub(ago)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as f64 / 1000.0)
    };
    let uptime = match (p.state, p.started_at) {
        (State::Running | State::Starting | State::Stopping, Some(at)) => {
            Some(now.mono.saturating_duration_since(at))
        }
        _ => None,
    };
    ProcessInfo {
        name: e.spec.namespec(),
        group: e.spec.group.clone(),
        program: e.spec.program.clone(),
        state: p.state,
        statecode: p.state.code(),
        pid: p.pid,
        exitstatus: p.exit_status.map(|s| s.code()),
        uptime_secs: uptime.map(round_secs),
        start_time: p.started_at.and_then(wall),
        stop_time: p.stopped_at.and_then(wall),
        restarts: p.restarts,
        spawnerr: p.spawn_error.clone(),
        description: description(e, now),
        waiting_for: if p.held { e.waiting_for.clone() } else { Vec::new() },
        status_text: p.status_text.clone(),
        health: p.health,
        oom_killed: p.oom_killed,
        next_start_in: next_start_in(p, now.mono).map(round_secs),
        listener_state: e.listener_state,
    }
}

/// The status line's description: `pid 42, uptime 0:01:02`, how it ended, why it waits.
fn description(e: &crate::supervisor::Entry, now: Now) -> String {
    let p = &e.proc;
    let uptime = match (p.state, p.started_at) {
        (State::Running | State::Starting | State::Stopping, Some(at)) => {
            Some(now.mono.saturating_duration_since(at))
        }
        _ => None,
    };
    let description = match p.state {
        State::Running if p.pid.is_none() => "completed (remain_after_exit)".to_string(),
        State::Running => {
            // Built by hand: status of many processes is asked often (HTTP), and the
            // formatting machinery was most of its cost.
            let mut d = String::with_capacity(32);
            d.push_str("pid ");
            push_num(&mut d, p.pid.unwrap_or(0).max(0) as u64, 1);
            d.push_str(", uptime ");
            push_clock(&mut d, uptime.unwrap_or_default());
            d
        }
        State::Starting if p.held && !e.waiting_for.is_empty() => {
            format!("waiting for {}", e.waiting_for.join(", "))
        }
        State::Starting if e.spec.kind == crate::config::Kind::Notify && p.pid.is_some() => {
            format!("pid {}, waiting for READY=1", p.pid.unwrap_or(0))
        }
        State::Starting | State::Stopping => {
            p.pid.map(|pid| format!("pid {pid}")).unwrap_or_default()
        }
        State::Backoff => {
            // After a failed start: why it failed; after a run: how it ended.
            let why = match (&p.spawn_error, p.exit_status) {
                (Some(err), _) if p.timers.get(TimerKind::Backoff).is_some() => err.clone(),
                (_, Some(st)) => st.to_string(),
                (err, None) => err.clone().unwrap_or_default(),
            };
            match next_start_in(p, now.mono) {
                Some(secs) => format!("{why}, restarting in {} s", secs_text(secs)),
                None => why,
            }
        }
        State::Fatal => p.spawn_error.clone().unwrap_or_default(),
        State::Stopped | State::Exited => match (p.exit_status, p.stopped_at) {
            (Some(st), Some(at)) => {
                format!("{st}, {} ago", clock(now.mono.saturating_duration_since(at)))
            }
            _ => "Not started".to_string(),
        },
        State::Unknown => String::new(),
    };
    let description = if p.oom_killed
        && matches!(p.state, State::Exited | State::Stopped | State::Backoff | State::Fatal)
    {
        format!("{description} (OOM killed)")
    } else {
        description
    };
    let description = match p.health {
        Some(h) if h != crate::process::machine::Health::Healthy => {
            format!("{description} ({})", h.name())
        }
        _ => description,
    };
    match e.listener_state {
        Some(l) if !description.is_empty() => format!("{description} (listener {})", l.name()),
        Some(l) => format!("listener {}", l.name()),
        None => description,
    }
}

/// In BACKOFF: how long until the next automatic start.
pub fn next_start_in(p: &crate::process::machine::Proc, now: Instant) -> Option<Duration> {
    p.next_start().map(|at| at.saturating_duration_since(now))
}

/// Seconds to the millisecond, for JSON.
pub fn round_secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// A wait for people: whole seconds from 10 s on, tenths below.
fn secs_text(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{}", d.as_secs() + u64::from(d.subsec_nanos() > 0))
    } else {
        format!("{:.1}", (d.as_secs_f64() * 10.0).ceil() / 10.0)
    }
}

/// `H:MM:SS`, or `N days, H:MM:SS`, as supervisorctl shows uptime.
fn clock(d: Duration) -> String {
    let mut out = String::with_capacity(16);
    push_clock(&mut out, d);
    out
}

fn push_clock(out: &mut String, d: Duration) {
    let s = d.as_secs();
    let (days, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match days {
        0 => {}
        1 => out.push_str("1 day, "),
        n => {
            push_num(out, n, 1);
            out.push_str(" days, ");
        }
    }
    push_num(out, h, 1);
    out.push(':');
    push_num(out, m, 2);
    out.push(':');
    push_num(out, s, 2);
}

/// `n` in decimal, zero-padded to `width` digits.
fn push_num(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while n > 0 || digits.len() - i < width {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
}

/// A group and its processes, in start order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    pub processes: Vec<String>,
}

/// Each group and its processes, groups by name.
pub fn groups(sup: &Supervisor) -> Vec<GroupInfo> {
    let mut groups: Vec<GroupInfo> = Vec::new();
    for e in sup.iter() {
        match groups.iter_mut().find(|g| g.name == e.spec.group) {
            Some(g) => g.processes.push(e.spec.namespec()),
            None => groups
                .push(GroupInfo { name: e.spec.group.clone(), processes: vec![e.spec.namespec()] }),
        }
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    groups
}

/// The configuration in force, as `GET /api/v1/config` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigInfo {
    pub file: std::path::PathBuf,
    pub socket: std::path::PathBuf,
    /// The HTTP listen addresses: HOST:PORT, or unix:///PATH.
    pub http: Vec<String>,
    pub programs: Vec<ProgramConfig>,
    pub processes: Vec<ProcessConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramConfig {
    pub name: String,
    pub group: String,
    pub autostart: bool,
    pub priority: i64,
    pub numprocs: u32,
}

/// A process's settings; of its environment, the names only (values may hold secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessConfig {
    pub name: String,
    pub program: String,
    pub command: Vec<String>,
    pub directory: Option<std::path::PathBuf>,
    pub autostart: bool,
    pub autorestart: String,
    pub startsecs: f64,
    pub startretries: u32,
    pub exitcodes: Vec<i32>,
    pub stopsignal: String,
    pub stopwaitsecs: f64,
    pub environment: Vec<String>,
    pub stdout_logfile: Option<String>,
    pub stderr_logfile: Option<String>,
}

/// The configuration in force.
pub fn config_info(c: &crate::config::Config) -> ConfigInfo {
    let log = |l: &Option<crate::config::LogSpec>| l.as_ref().map(|l| l.path.display().to_string());
    ConfigInfo {
        file: c.file.clone(),
        socket: c.server.socket.clone(),
        http: c.server.http.listen.iter().map(crate::config::Listen::http).collect(),
        programs: c
            .programs
            .iter()
            .map(|p| ProgramConfig {
                name: p.name.clone(),
                group: p.group.clone(),
                autostart: p.autostart,
                priority: p.priority,
                numprocs: p.numprocs,
            })
            .collect(),
        processes: c
            .processes
            .iter()
            .map(|p| ProcessConfig {
                name: p.namespec(),
                program: p.program.clone(),
                command: p.argv.clone(),
                directory: p.directory.clone(),
                autostart: p.autostart,
                autorestart: format!("{:?}", p.autorestart).to_lowercase(),
                startsecs: p.startsecs.as_secs_f64(),
                startretries: p.startretries,
                exitcodes: p.exitcodes.clone(),
                stopsignal: p.stopsignal.as_str().to_string(),
                stopwaitsecs: p.stopwaitsecs.as_secs_f64(),
                environment: p.environment.iter().map(|(k, _)| k.clone()).collect(),
                stdout_logfile: log(&p.stdout_log),
                stderr_logfile: log(&p.stderr_log),
            })
            .collect(),
    }
}

/// A process that is not ready, as `/readyz` lists it: its name, and for a user its state and
/// health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotReady {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::process::machine::Health>,
}

/// Whether every named process, or every autostart process when none is named, is ready.
/// `anonymous`: an unknown name is answered like a known one that is not ready, and only the
/// names asked are listed, so the answer does not tell which names exist.
pub fn readiness(sup: &Supervisor, names: &[String], anonymous: bool) -> Result<Reply, ApiError> {
    let mut not_ready = Vec::new();
    if anonymous && !names.is_empty() {
        for n in names {
            let ids = sup.resolve(n).unwrap_or_default();
            if ids.is_empty() || !ids.iter().filter_map(|id| sup.get(*id)).all(is_ready) {
                not_ready.push(NotReady { name: n.clone(), state: None, health: None });
            }
        }
        return Ok(Reply::Ready { ready: not_ready.is_empty(), not_ready });
    }
    let mut unknown = Vec::new();
    let entries: Vec<&crate::supervisor::Entry> = if names.is_empty() {
        sup.iter().filter(|e| e.spec.autostart).collect()
    } else {
        let mut v = Vec::new();
        for n in names {
            match sup.resolve(n) {
                Some(ids) => v.extend(ids.into_iter().filter_map(|id| sup.get(id))),
                None => unknown.push(n.clone()),
            }
        }
        v
    };
    if !unknown.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no such process: {}", unknown.join(", ")),
        ));
    }
    for e in entries.into_iter().filter(|e| !is_ready(e)) {
        not_ready.push(NotReady {
            name: e.spec.namespec(),
            state: Some(e.proc.state),
            health: e.proc.health,
        });
    }
    Ok(Reply::Ready { ready: not_ready.is_empty(), not_ready })
}

/// Ready for `/readyz`: RUNNING (and healthy, with a health check), or done: a oneshot that
/// completed, or a program that exited with an expected code and will not be restarted.
fn is_ready(e: &crate::supervisor::Entry) -> bool {
    let p = &e.proc;
    match p.state {
        State::Running => {
            e.spec.healthcheck.is_none()
                || p.health == Some(crate::process::machine::Health::Healthy)
        }
        // A socket program listening for its first connection: its socket answers.
        State::Starting => e.listening(),
        State::Exited => {
            p.completed
                || (e.spec.autorestart != crate::config::AutoRestart::Always
                    && p.exit_status.is_some_and(|s| s.expected(&e.spec.exitcodes)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_clock() {
        assert_eq!(clock(Duration::from_secs(62)), "0:01:02");
        assert_eq!(clock(Duration::from_secs(0)), "0:00:00");
        assert_eq!(clock(Duration::from_secs(3 * 86400 + 36000 + 59)), "3 days, 10:00:59");
        assert_eq!(clock(Duration::from_secs(86400 + 3600)), "1 day, 1:00:00");
    }
}
