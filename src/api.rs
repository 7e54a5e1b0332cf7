//! The requests Kahi answers and the replies it gives, defined once for every transport (the
//! control socket's newline-delimited JSON today), and `handle`, which answers them against
//! the supervisor. A request that fails validation changes nothing. No I/O here: what needs
//! I/O (spawning, reading a new config) comes back as a queued action or an [`Outcome`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::process::machine::{Input, TimerKind};
use crate::process::{State, parse_signal};
use crate::supervisor::{Changes, ProcId, Stream, Supervisor};

/// A request, as one JSON object: `{"cmd": "status", "names": ["web"]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Status {
        #[serde(default)]
        names: Vec<String>,
    },
    Start {
        names: Vec<String>,
        #[serde(default = "yes")]
        wait: bool,
    },
    Stop {
        names: Vec<String>,
        #[serde(default = "yes")]
        wait: bool,
    },
    Restart {
        names: Vec<String>,
        #[serde(default = "yes")]
        wait: bool,
    },
    Signal {
        signal: String,
        names: Vec<String>,
    },
    Pid {
        #[serde(default)]
        name: Option<String>,
    },
    /// The end of a process's log (`bytes` of it), or, with `offset`, up to `bytes` from
    /// that offset on.
    Tail {
        name: String,
        #[serde(default = "stdout")]
        stream: Stream,
        #[serde(default = "default_tail_bytes")]
        bytes: u64,
        #[serde(default)]
        offset: Option<u64>,
        #[serde(default)]
        follow: bool,
        /// How the bytes travel: as text (invalid UTF-8 shown as U+FFFD) or as base64 of
        /// the bytes as the program wrote them.
        #[serde(default)]
        encoding: Encoding,
    },
    /// The end of the daemon's own log.
    Maintail {
        #[serde(default = "default_tail_bytes")]
        bytes: u64,
        #[serde(default)]
        follow: bool,
    },
    /// Write to a process's stdin pipe (`stdin_pipe = true`).
    Stdin {
        name: String,
        data: String,
    },
    /// Empty the ring buffers of processes.
    Clear {
        names: Vec<String>,
    },
    // Empty struct variants, not unit ones: serde's deny_unknown_fields does not reach unit
    // variants of an internally tagged enum, and `{"cmd":"shutdown","names":["web"]}` must be
    // refused, not shut everything down.
    Reread {},
    Update {},
    Avail {},
    Shutdown {},
    Version {},
}

/// How a log's bytes are put in a reply's `data`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Text: bytes that are not UTF-8 become U+FFFD.
    #[default]
    Text,
    /// Base64 of the bytes exactly as written.
    Base64,
}

impl Encoding {
    fn is_text(&self) -> bool {
        *self == Encoding::Text
    }
}

/// A log a client can follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    /// A process's stdout or stderr ring buffer.
    Process(ProcId, Stream),
    /// The daemon's own log.
    Daemon,
}

fn yes() -> bool {
    true
}

fn stdout() -> Stream {
    Stream::Stdout
}

/// supervisorctl's default tail length.
pub fn default_tail_bytes() -> u64 {
    1600
}

/// A successful reply (one JSON line, or several for a stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Status {
        processes: Vec<ProcessInfo>,
        /// Names asked for that match no process (supervisorctl's "no such process").
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unknown: Vec<String>,
    },
    Results {
        results: Vec<NameResult>,
    },
    Pid {
        pid: i32,
    },
    /// A piece of a log, from `offset` on. As text, bytes that are not UTF-8 are shown as
    /// U+FFFD; as base64, `data` holds the bytes exactly. A long piece is sent as it is read
    /// from the ring buffer, and ends early where the program overwrote the rest meanwhile.
    Log {
        data: String,
        offset: u64,
        skipped: u64,
        #[serde(default, skip_serializing_if = "Encoding::is_text")]
        encoding: Encoding,
    },
    Changes {
        changes: Changes,
    },
    Avail {
        programs: Vec<AvailInfo>,
    },
    Version {
        version: String,
    },
    Shutdown {
        message: String,
    },
    /// Bytes queued for a process's stdin.
    Written {
        name: String,
        bytes: usize,
    },
}

/// A failed request: `{"error": "...", "code": "NOT_FOUND"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    pub code: ErrorCode,
}

/// The closed set of error codes, modelled on supervisord's faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BadRequest,
    NotFound,
    Conflict,
    Unauthorized,
    Forbidden,
    ServerError,
    ShuttingDown,
}

impl ApiError {
    pub fn new(code: ErrorCode, error: impl Into<String>) -> ApiError {
        ApiError { error: error.into(), code }
    }
}

/// One process as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// The namespec: `group:name`, or `name` when both are the same.
    pub name: String,
    pub group: String,
    pub program: String,
    pub state: State,
    pub statecode: u32,
    pub pid: Option<i32>,
    /// The last exit's code (128 + signal when killed by one).
    pub exitstatus: Option<i32>,
    pub uptime_secs: Option<f64>,
    /// Unix time of the last start.
    pub start_time: Option<f64>,
    /// Unix time of the last exit.
    pub stop_time: Option<f64>,
    pub restarts: u64,
    pub spawnerr: Option<String>,
    pub description: String,
    /// A held start: the dependencies it waits for, as `db (started)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
    /// What a notify program last said with STATUS=.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    /// With a health check, while RUNNING: starting, healthy or unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::process::machine::Health>,
    /// The kernel's OOM killer ended its last run (memory_max).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
    /// In BACKOFF: seconds until the next automatic start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_start_in: Option<f64>,
}

/// How one named process fared in start, stop, restart or signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameResult {
    pub name: String,
    pub outcome: Outcome,
    /// More about a failure (the spawn error, the exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Started,
    Stopped,
    Signalled,
    Cleared,
    AlreadyStarted,
    NotRunning,
    NoSuchProcess,
    SpawnError,
    AbnormalTermination,
    ShuttingDown,
    Added,
    Changed,
    Removed,
}

impl Outcome {
    /// What supervisorctl prints after `name: `.
    pub fn text(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Stopped => "stopped",
            Outcome::Signalled => "signalled",
            Outcome::Cleared => "cleared",
            Outcome::AlreadyStarted => "ERROR (already started)",
            Outcome::NotRunning => "ERROR (not running)",
            Outcome::NoSuchProcess => "ERROR (no such process)",
            Outcome::SpawnError => "ERROR (spawn error)",
            Outcome::AbnormalTermination => "ERROR (abnormal termination)",
            Outcome::ShuttingDown => "ERROR (shutting down)",
            Outcome::Added => "added",
            Outcome::Changed => "changed",
            Outcome::Removed => "removed",
        }
    }

    /// supervisorctl's exit status for it (LSB init-script codes): starting what runs and
    /// stopping what does not are successes.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Started
            | Outcome::Stopped
            | Outcome::Signalled
            | Outcome::Cleared
            | Outcome::AlreadyStarted
            | Outcome::NotRunning
            | Outcome::Added
            | Outcome::Changed
            | Outcome::Removed => 0,
            Outcome::AbnormalTermination | Outcome::SpawnError => 7,
            Outcome::NoSuchProcess | Outcome::ShuttingDown => 1,
        }
    }
}

/// One program as `avail` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailInfo {
    pub name: String,
    pub group: String,
    pub in_use: bool,
    pub autostart: bool,
    pub priority: i64,
    pub numprocs: u32,
}

/// The clock a request is handled at: monotonic for logic, wall for display.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    pub wall: SystemTime,
}

/// What handling a request produced.
pub enum Handled {
    /// Answer now with this.
    Reply(Result<Reply, ApiError>),
    /// Answer once the waiter is satisfied (start, stop, restart with wait).
    Wait(Waiter),
    /// The ring buffers of these processes were emptied: empty their log files, then answer.
    Cleared(Vec<ProcId>, Reply),
    /// Answer now, and keep the waiter going without anyone to answer (restart --no-wait).
    ReplyThenWait(Reply, Waiter),
    /// Follow a log: send what is there, then every new byte.
    Follow { log: LogSource, offset: u64, encoding: Encoding },
    /// A reply too large for one turn of the loop: sent in pieces.
    Piecewise(crate::piecewise::Piecewise),
    /// The event loop must read the configuration file, then call [`with_config`].
    NeedConfig(ConfigUse),
    /// Shut down, then answer.
    Shutdown,
    /// Write `data` to the stdin pipe of this running process, then answer.
    Stdin { id: ProcId, name: String, data: String },
}

/// Handles one request.
pub fn handle(sup: &mut Supervisor, req: Request, now: Now) -> Handled {
    match req {
        Request::Status { names } => match status_ids(sup, &names) {
            (ids, unknown) if ids.len() > crate::piecewise::PROCESSES_PER_PIECE => {
                Handled::Piecewise(crate::piecewise::Piecewise::status(ids, unknown))
            }
            (ids, unknown) => Handled::Reply(Ok(status(sup, &ids, unknown, now))),
        },
        Request::Start { names, wait } => act(sup, Action::Start, &names, wait, now.mono),
        Request::Stop { names, wait } => act(sup, Action::Stop, &names, wait, now.mono),
        Request::Restart { names, wait } => act(sup, Action::Restart, &names, wait, now.mono),
        Request::Signal { signal, names } => {
            Handled::Reply(signal_names(sup, &signal, &names, now.mono))
        }
        Request::Pid { name: None } => {
            Handled::Reply(Ok(Reply::Pid { pid: std::process::id() as i32 }))
        }
        Request::Pid { name: Some(name) } => Handled::Reply(match one(sup, &name) {
            Ok(id) => Ok(Reply::Pid { pid: sup.get(id).and_then(|e| e.proc.pid).unwrap_or(0) }),
            Err(e) => Err(e),
        }),
        Request::Tail { name, stream, bytes, offset, follow, encoding } => {
            let id = match one(sup, &name) {
                Ok(id) => id,
                Err(e) => return Handled::Reply(Err(e)),
            };
            let Some(entry) = sup.get(id) else { return Handled::Reply(Err(no_such(&name))) };
            let ring = entry.ring(stream);
            let (from, end, skipped) = ring.span(offset, bytes);
            if follow {
                return Handled::Follow {
                    log: LogSource::Process(id, stream),
                    offset: from,
                    encoding,
                };
            }
            if end - from > crate::piecewise::BYTES_PER_PIECE as u64 {
                return Handled::Piecewise(crate::piecewise::Piecewise::log(
                    id, stream, from, end, skipped, encoding,
                ));
            }
            let read = ring.read(from, (end - from) as usize);
            Handled::Reply(Ok(log_reply(&read.data, read.offset, skipped, encoding)))
        }
        Request::Maintail { bytes, follow } => {
            let read = crate::logs::daemon_log::tail(bytes);
            if follow {
                Handled::Follow {
                    log: LogSource::Daemon,
                    offset: read.offset,
                    encoding: Encoding::Text,
                }
            } else {
                Handled::Reply(Ok(log_reply(&read.data, read.offset, read.skipped, Encoding::Text)))
            }
        }
        Request::Stdin { name, data } => {
            let id = match one(sup, &name) {
                Ok(id) => id,
                Err(e) => return Handled::Reply(Err(e)),
            };
            let running = sup.get(id).is_some_and(|e| e.proc.pid.is_some());
            if !running {
                return Handled::Reply(Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!("{name} is not running"),
                )));
            }
            Handled::Stdin { id, name, data }
        }
        Request::Clear { names } => match clear(sup, &names) {
            Ok((ids, reply)) => Handled::Cleared(ids, reply),
            Err(e) => Handled::Reply(Err(e)),
        },
        Request::Reread {} => Handled::NeedConfig(ConfigUse::Reread),
        Request::Update {} => Handled::NeedConfig(ConfigUse::Update),
        Request::Avail {} => Handled::NeedConfig(ConfigUse::Avail),
        Request::Shutdown {} => Handled::Shutdown,
        Request::Version {} => {
            Handled::Reply(Ok(Reply::Version { version: crate::VERSION.to_string() }))
        }
    }
}

/// A log chunk as a reply.
pub fn log_reply(data: &[u8], offset: u64, skipped: u64, encoding: Encoding) -> Reply {
    let data = match encoding {
        Encoding::Text => String::from_utf8_lossy(data).into_owned(),
        Encoding::Base64 => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(data)
        }
    };
    Reply::Log { data, offset, skipped, encoding }
}

fn no_such(name: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no such process: {name}"))
}

/// Exactly one process.
pub fn one(sup: &Supervisor, name: &str) -> Result<ProcId, ApiError> {
    match sup.resolve(name) {
        Some(ids) if ids.len() == 1 => Ok(ids[0]),
        Some(ids) => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("{name} names {} processes; give one, as GROUP:NAME", ids.len()),
        )),
        None => Err(no_such(name)),
    }
}

/// The processes a status request names, in order, and the names that match none.
fn status_ids(sup: &Supervisor, names: &[String]) -> (Vec<ProcId>, Vec<String>) {
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

pub fn process_info(e: &crate::supervisor::Entry, now: Now) -> ProcessInfo {
    let p = &e.proc;
    let wall = |at: Instant| {
        let ago = now.mono.saturating_duration_since(at);
        now.wall
            .checked_sub(ago)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
    };
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
        description,
        waiting_for: if p.held { e.waiting_for.clone() } else { Vec::new() },
        status_text: p.status_text.clone(),
        health: p.health,
        oom_killed: p.oom_killed,
        next_start_in: next_start_in(p, now.mono).map(round_secs),
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

/// What a freshly read configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigUse {
    /// Report what it would change.
    Reread,
    /// Apply it.
    Update,
    /// List its programs, and which are in use.
    Avail,
}

/// Answers a request that needed the configuration file read again.
pub fn with_config(
    sup: &mut Supervisor,
    what: ConfigUse,
    new: crate::config::Config,
    now: Instant,
) -> Reply {
    match what {
        ConfigUse::Reread => Reply::Changes { changes: sup.diff(&new) },
        ConfigUse::Update => Reply::Changes { changes: sup.update(new, now) },
        ConfigUse::Avail => avail(sup, &new),
    }
}

/// supervisorctl's `avail`: every program of the file, `in use` when it is running config.
fn avail(sup: &Supervisor, config: &crate::config::Config) -> Reply {
    let programs = config
        .programs
        .iter()
        .map(|p| AvailInfo {
            name: p.name.clone(),
            group: p.group.clone(),
            in_use: sup.iter().any(|e| e.spec.program == p.name),
            autostart: p.autostart,
            priority: p.priority,
            numprocs: p.numprocs,
        })
        .collect();
    Reply::Avail { programs }
}

/// What `start`, `stop` and `restart` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

/// Resolves names to (label, id) pairs; unknown names become results right away.
fn targets(
    sup: &Supervisor,
    names: &[String],
    results: &mut Vec<NameResult>,
) -> Result<Vec<(String, ProcId)>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "names: give at least one name, GROUP:*, or all",
        ));
    }
    let mut out: Vec<(String, ProcId)> = Vec::new();
    for n in names {
        match sup.resolve(n) {
            Some(ids) => {
                for id in ids {
                    if !out.iter().any(|(_, x)| *x == id) {
                        let label = sup.get(id).map(|e| e.spec.namespec()).unwrap_or_default();
                        out.push((label, id));
                    }
                }
            }
            None => results.push(NameResult {
                name: n.clone(),
                outcome: Outcome::NoSuchProcess,
                detail: None,
            }),
        }
    }
    Ok(out)
}

fn act(
    sup: &mut Supervisor,
    action: Action,
    names: &[String],
    wait: bool,
    now: Instant,
) -> Handled {
    let mut results = Vec::new();
    let targets = match targets(sup, names, &mut results) {
        Ok(t) => t,
        Err(e) => return Handled::Reply(Err(e)),
    };
    if sup.is_shutting_down() && action != Action::Stop {
        return Handled::Reply(Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "kahi is shutting down",
        )));
    }
    let mut waiting = Vec::new();
    let mut not_running = Vec::new();
    for (label, id) in targets {
        let Some(state) = sup.get(id).map(|e| e.proc.state) else { continue };
        match action {
            Action::Start if state.is_running() => results.push(NameResult {
                name: label,
                outcome: Outcome::AlreadyStarted,
                detail: None,
            }),
            Action::Start => {
                sup.operator_start(id, now);
                waiting.push((label, id));
            }
            Action::Stop if !state.is_running() && state != State::Stopping => {
                results.push(NameResult { name: label, outcome: Outcome::NotRunning, detail: None })
            }
            Action::Stop => {
                sup.operator_stop(id, now);
                waiting.push((label, id));
            }
            Action::Restart => {
                // As supervisorctl: report the stop half, then the start.
                if !state.is_running() && state != State::Stopping {
                    results.push(NameResult {
                        name: label.clone(),
                        outcome: Outcome::NotRunning,
                        detail: None,
                    });
                    not_running.push(id);
                }
                sup.input(id, Input::Stop, now);
                waiting.push((label, id));
            }
        }
    }
    let downs = waiting.iter().map(|(_, id)| (*id, sup.get(*id).map_or(0, |e| e.downs))).collect();
    let mut waiter =
        Waiter { action, results, waiting, restarting: Vec::new(), not_running, downs };
    if !wait {
        // Report what was asked, without waiting for the outcome.
        let mut results = std::mem::take(&mut waiter.results);
        for (name, _) in &waiter.waiting {
            let outcome = if action == Action::Stop { Outcome::Stopped } else { Outcome::Started };
            results.push(NameResult { name: name.clone(), outcome, detail: None });
        }
        if action == Action::Restart {
            // The start half still has to happen once each process is down.
            return match waiter.poll(sup, now) {
                Some(_) => Handled::Reply(Ok(Reply::Results { results })),
                None => Handled::ReplyThenWait(Reply::Results { results }, waiter),
            };
        }
        return Handled::Reply(Ok(Reply::Results { results }));
    }
    match waiter.poll(sup, now) {
        Some(reply) => Handled::Reply(Ok(reply)),
        None => Handled::Wait(waiter),
    }
}

/// A start, stop or restart waiting for its processes to settle.
#[derive(Debug)]
pub struct Waiter {
    action: Action,
    results: Vec<NameResult>,
    /// Still waiting: (label, id).
    waiting: Vec<(String, ProcId)>,
    /// Restart: stopped and started again, waiting to be up.
    restarting: Vec<(String, ProcId)>,
    /// Restart: was not running to begin with (already reported as such).
    not_running: Vec<ProcId>,
    /// How many times each process had gone down when the request came: one that went down
    /// since has stopped, even if an update started it again meanwhile.
    downs: std::collections::HashMap<ProcId, u64>,
}

impl Waiter {
    /// Checks the processes; returns the reply once every one has settled. Called after each
    /// state change.
    pub fn poll(&mut self, sup: &mut Supervisor, now: Instant) -> Option<Reply> {
        let mut still = Vec::new();
        for (label, id) in std::mem::take(&mut self.waiting) {
            let Some(e) = sup.get(id) else {
                // An update removed it meanwhile: it is down for good.
                let (outcome, detail) = match self.action {
                    Action::Stop => (Outcome::Stopped, Some("removed by an update".to_string())),
                    _ => (Outcome::NoSuchProcess, None),
                };
                self.results.push(NameResult { name: label, outcome, detail });
                continue;
            };
            let state = e.proc.state;
            let stop_phase = self.action == Action::Stop
                || (self.action == Action::Restart
                    && !self.restarting.iter().any(|(_, x)| *x == id));
            let went_down = self.downs.get(&id).is_some_and(|d| e.downs > *d);
            if stop_phase {
                if !went_down && matches!(state, State::Stopping | State::Running | State::Starting)
                {
                    still.push((label, id));
                } else if self.action == Action::Restart {
                    if sup.is_shutting_down() {
                        self.results.push(NameResult {
                            name: label,
                            outcome: Outcome::ShuttingDown,
                            detail: None,
                        });
                        continue;
                    }
                    if !self.not_running.contains(&id) {
                        self.results.push(NameResult {
                            name: label.clone(),
                            outcome: Outcome::Stopped,
                            detail: None,
                        });
                    }
                    self.restart_now(sup, id, now);
                    self.restarting.push((label.clone(), id));
                    still.push((label, id));
                } else {
                    // An update may have started it again with new settings meanwhile.
                    let detail = state
                        .is_running()
                        .then(|| "changed by an update, and started again".to_string());
                    self.results.push(NameResult {
                        name: label,
                        outcome: Outcome::Stopped,
                        detail,
                    });
                }
                continue;
            }
            match state {
                State::Starting => still.push((label, id)),
                State::Running => self.results.push(NameResult {
                    name: label,
                    outcome: Outcome::Started,
                    detail: None,
                }),
                _ => {
                    let e = &sup.get(id).map(|e| e.proc.clone()).unwrap_or_default();
                    let (outcome, detail) = match (&e.spawn_error, e.exit_status) {
                        (Some(err), None) => (Outcome::SpawnError, Some(err.clone())),
                        (_, Some(st)) => (Outcome::AbnormalTermination, Some(st.to_string())),
                        (err, None) => (Outcome::AbnormalTermination, err.clone()),
                    };
                    self.results.push(NameResult { name: label, outcome, detail });
                }
            }
        }
        self.waiting = still;
        if self.waiting.is_empty() {
            Some(Reply::Results { results: std::mem::take(&mut self.results) })
        } else {
            None
        }
    }

    fn restart_now(&mut self, sup: &mut Supervisor, id: ProcId, now: Instant) {
        if sup.get(id).is_some_and(|e| e.proc.state.is_stopped() || e.proc.state == State::Backoff)
        {
            sup.operator_start(id, now);
        }
    }
}

fn signal_names(
    sup: &mut Supervisor,
    signal: &str,
    names: &[String],
    now: Instant,
) -> Result<Reply, ApiError> {
    let sig = parse_signal(signal)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("signal: {e}")))?;
    let mut results = Vec::new();
    for (label, id) in targets(sup, names, &mut results)? {
        let running =
            sup.get(id).is_some_and(|e| e.proc.state.is_signallable() && e.proc.pid.is_some());
        if running {
            sup.input(id, Input::Signal(sig), now);
            results.push(NameResult { name: label, outcome: Outcome::Signalled, detail: None });
        } else {
            results.push(NameResult { name: label, outcome: Outcome::NotRunning, detail: None });
        }
    }
    Ok(Reply::Results { results })
}

fn clear(sup: &mut Supervisor, names: &[String]) -> Result<(Vec<ProcId>, Reply), ApiError> {
    let mut results = Vec::new();
    let mut ids = Vec::new();
    for (label, id) in targets(sup, names, &mut results)? {
        if let Some(e) = sup.get_mut(id) {
            e.stdout.clear();
            e.stderr.clear();
        }
        ids.push(id);
        results.push(NameResult { name: label, outcome: Outcome::Cleared, detail: None });
    }
    Ok((ids, Reply::Results { results }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_the_documented_json() {
        let r: Request = serde_json::from_str(r#"{"cmd":"status"}"#).unwrap();
        assert_eq!(r, Request::Status { names: vec![] });
        let r: Request = serde_json::from_str(r#"{"cmd":"start","names":["web"]}"#).unwrap();
        assert_eq!(r, Request::Start { names: vec!["web".into()], wait: true });
        let r: Request =
            serde_json::from_str(r#"{"cmd":"tail","name":"web","stream":"stderr","follow":true}"#)
                .unwrap();
        assert_eq!(
            r,
            Request::Tail {
                name: "web".into(),
                stream: Stream::Stderr,
                bytes: 1600,
                offset: None,
                follow: true,
                encoding: Encoding::Text,
            }
        );
        let r: Request =
            serde_json::from_str(r#"{"cmd":"tail","name":"web","encoding":"base64"}"#).unwrap();
        assert!(matches!(r, Request::Tail { encoding: Encoding::Base64, .. }));
        let r: Request = serde_json::from_str(r#"{"cmd":"maintail","follow":true}"#).unwrap();
        assert_eq!(r, Request::Maintail { bytes: 1600, follow: true });
        assert!(
            serde_json::from_str::<Request>(r#"{"cmd":"start","names":["web"],"bogus":1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"explode"}"#).is_err());
    }

    #[test]
    fn errors_serialize_as_documented() {
        let e = ApiError::new(ErrorCode::NotFound, "no such process: x");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"error":"no such process: x","code":"NOT_FOUND"}"#
        );
    }

    #[test]
    fn uptime_clock() {
        assert_eq!(clock(Duration::from_secs(62)), "0:01:02");
        assert_eq!(clock(Duration::from_secs(0)), "0:00:00");
        assert_eq!(clock(Duration::from_secs(3 * 86400 + 36000 + 59)), "3 days, 10:00:59");
        assert_eq!(clock(Duration::from_secs(86400 + 3600)), "1 day, 1:00:00");
    }
}
