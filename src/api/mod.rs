//! The requests Kahi answers and the replies it gives, defined once for every transport (the
//! control socket's newline-delimited JSON, HTTP's routes): a transport only frames them. The
//! role a request needs is the request's own ([`Request::role`]). `handle` answers them
//! against the supervisor (`handle.rs`), from views of it (`views.rs`). A request that fails
//! validation changes nothing. No I/O here: what needs I/O (spawning, reading a new config,
//! following a log) comes back as a queued action or a [`Handled`] for the transport.

mod dispatch;
mod handle;
mod stream;
mod tagged;
mod views;

use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

pub use dispatch::{Host, dispatch};
pub use handle::*;
pub use stream::{event_line, event_types, stream_json, stream_name};
pub use views::*;

use crate::config::Role;
use crate::process::State;
use crate::supervisor::{Changes, ProcId, Stream};

/// A request, as one JSON object: `{"cmd": "status", "names": ["web"]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Status {
        #[serde(default)]
        names: Vec<String>,
    },
    /// `status` as `kahi ctl status` prints it: answered with [`Reply::Table`].
    StatusTable {
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
    /// Empty the daemon's own log: its file (`--logfile`) and what `maintail` reads.
    ClearMainlog {},
    /// Write to a process's stdin pipe (`stdin_pipe = true`).
    Stdin {
        name: String,
        data: String,
    },
    /// Empty the ring buffers and log files of processes.
    Clear {
        names: Vec<String>,
    },
    /// Whether the named processes (or every autostart one) are ready: `/readyz`.
    Ready {
        #[serde(default)]
        names: Vec<String>,
        /// Asked by a client that is no user (HTTP without credentials): an unknown name is
        /// answered like a known one that is not ready, so that the answer does not tell which
        /// names exist. Set by the transport, never read from a request.
        #[serde(skip)]
        anonymous: bool,
    },
    /// Publish a REMOTE_COMMUNICATION event (supervisord's sendRemoteCommEvent): its payload
    /// is `type:TYPE` and a newline, then `data`.
    Sendcomm {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        data: String,
    },
    /// Follow Kahi's events, of the given types (supervisord's names, abstract ones too, or
    /// the short `state`, `health`, `update`, `shutdown`) or of all.
    Events {
        #[serde(default)]
        types: Vec<String>,
    },
    // Empty struct variants, not unit ones: serde's deny_unknown_fields does not reach unit
    // variants of an internally tagged enum, and `{"cmd":"shutdown","names":["web"]}` must be
    // refused, not shut everything down.
    Reread {},
    Update {},
    /// supervisord's restart (supervisorctl's `reload`): read the configuration file again
    /// and restart every program with it; answered once the file is known to load, with the
    /// changes (every program that stays counted as changed).
    Reload {},
    /// Add a group of the configuration file that is not running yet (supervisorctl's
    /// `add`), leaving the rest of the file unapplied.
    Add {
        name: String,
    },
    /// Forget a group whose processes are all down (supervisorctl's `remove`).
    Remove {
        name: String,
    },
    Avail {},
    Shutdown {},
    Version {},
    /// Each group and its processes.
    Groups {},
    /// The configuration in force (environment values left out: they may hold secrets).
    Config {},
    /// The Prometheus exposition.
    Metrics {},
    /// Kahi answers: `/healthz`.
    Health {},
}

impl Request {
    /// The role a client must have to ask this: viewer to read, operator to act on
    /// processes, admin for the configuration and shutdown.
    pub fn role(&self) -> Role {
        match self {
            Request::Status { .. }
            | Request::StatusTable { .. }
            | Request::Pid { .. }
            | Request::Tail { .. }
            | Request::Maintail { .. }
            | Request::Avail {}
            | Request::Version {}
            | Request::Groups {}
            | Request::Config {}
            | Request::Metrics {}
            | Request::Health {}
            | Request::Ready { .. }
            | Request::Events { .. } => Role::Viewer,
            Request::Start { .. }
            | Request::Stop { .. }
            | Request::Restart { .. }
            | Request::Signal { .. }
            | Request::Stdin { .. }
            | Request::Clear { .. }
            | Request::Sendcomm { .. } => Role::Operator,
            Request::Reread {}
            | Request::Update {}
            | Request::Reload {}
            | Request::ClearMainlog {}
            | Request::Add { .. }
            | Request::Remove { .. }
            | Request::Shutdown {} => Role::Admin,
        }
    }

    /// A probe anyone may ask where a transport has users (HTTP): orchestrators and scrapers
    /// come without credentials. /metrics only while `metrics_auth` is off.
    pub fn is_probe(&self, metrics_auth: bool) -> bool {
        match self {
            Request::Health {} | Request::Ready { .. } => true,
            Request::Metrics {} => !metrics_auth,
            _ => false,
        }
    }
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

/// The short names of event types a client can follow (`/api/v1/events/stream?types=`), kept
/// from before it took supervisord's names too (see `stream.rs`).
pub const EVENT_TYPES: &[&str] = &["state", "health", "update", "shutdown"];

/// supervisorctl's default tail length.
pub fn default_tail_bytes() -> u64 {
    1600
}

tagged::tagged! {
/// A successful reply (one JSON line, or several for a stream). Read tag first (`tagged.rs`).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply tag "reply" {
    Status {
        processes: Vec<ProcessInfo>,
        /// Names asked for that match no process (supervisorctl's "no such process").
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unknown: Vec<String>,
    },
    /// The status of processes as supervisorctl's table, its lines in `text`; whether a
    /// process shown is down (STOPPED, EXITED, FATAL, UNKNOWN); the names that match none.
    Table {
        text: String,
        down: bool,
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
    Groups {
        groups: Vec<GroupInfo>,
    },
    Config {
        config: ConfigInfo,
    },
    /// Ready, or the processes that are not (with their state, unless asked anonymously).
    Ready {
        ready: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        not_ready: Vec<NotReady>,
    },
    /// Prometheus' text exposition format.
    Metrics {
        text: String,
    },
    Health {
        status: String,
    },
    /// An event was published: how many subscribers (listener pools, event streams) took it.
    Sent {
        taken: usize,
    },
    /// One of Kahi's events, on a stream of them: its name and data as the HTTP event stream
    /// has them.
    Event {
        event: String,
        data: serde_json::Value,
        /// Events this stream lost just before this one: its reader was too slow, and the
        /// daemon's bounded queue for it dropped the oldest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lost: Option<u64>,
    },
}
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
    /// An event listener's process, spawned and not gone: where it is in supervisord's
    /// listener protocol (ACKNOWLEDGED, READY, BUSY, UNKNOWN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_state: Option<crate::events::listener::ListenerState>,
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
    /// Add: the group is there already.
    AlreadyAdded,
    /// Remove: a process of the group is not down.
    StillRunning,
    /// Start: its command is not there (supervisord's NO_FILE).
    NoSuchFile,
    /// Start: its command is there but may not be executed (supervisord's NOT_EXECUTABLE).
    NotExecutable,
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
            Outcome::AlreadyAdded => "ERROR (already active)",
            Outcome::StillRunning => "ERROR (still running)",
            Outcome::NoSuchFile => "ERROR (no such file)",
            Outcome::NotExecutable => "ERROR (file is not executable)",
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
            Outcome::NoSuchProcess
            | Outcome::ShuttingDown
            | Outcome::AlreadyAdded
            | Outcome::StillRunning
            | Outcome::NoSuchFile
            | Outcome::NotExecutable => 1,
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

/// A range of a process's log to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRead {
    pub id: ProcId,
    pub stream: Stream,
    pub from: u64,
    pub end: u64,
    pub skipped: u64,
    pub encoding: Encoding,
}

impl LogRead {
    /// Copies it out of the ring as one reply, when it is not longer than `max` bytes; a
    /// longer one is for sending in pieces.
    pub fn reply(
        &self,
        sup: &crate::supervisor::Supervisor,
        max: u64,
    ) -> Option<Result<Reply, ApiError>> {
        if self.end - self.from > max {
            return None;
        }
        let Some(e) = sup.get(self.id) else { return Some(Err(no_such("that process"))) };
        let read = e.ring(self.stream).read(self.from, (self.end - self.from) as usize);
        Some(Ok(log_reply(&read.data, read.offset, self.skipped, self.encoding)))
    }

    /// To be sent in pieces made from the ring as the client takes them.
    pub fn pieces(&self) -> crate::piecewise::Piecewise {
        let LogRead { id, stream, from, end, skipped, encoding } = *self;
        crate::piecewise::Piecewise::log(id, stream, from, end, skipped, encoding)
    }
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
    /// Follow the events of these types.
    Events(Vec<crate::events::EventType>),
    /// Bytes `from..end` of a process's log were asked for (`skipped` before `from` were
    /// overwritten): the transport reads them whole or in pieces, as its framing wants.
    Log(LogRead),
    /// The loop renders the metrics, which need its I/O state too.
    Metrics,
    /// A reply too large for one turn of the loop: sent in pieces.
    Piecewise(crate::piecewise::Piecewise),
    /// The event loop must read the configuration file, then call [`with_config`].
    NeedConfig(ConfigUse),
    /// Shut down, then answer.
    Shutdown,
    /// Write `data` to the stdin pipe of this running process, then answer.
    Stdin { id: ProcId, name: String, data: String },
    /// Publish a REMOTE_COMMUNICATION event, then answer.
    Remote { kind: String, data: String },
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
    fn each_request_needs_its_role() {
        let req = |json: &str| serde_json::from_str::<Request>(json).unwrap();
        assert_eq!(req(r#"{"cmd":"status"}"#).role(), Role::Viewer);
        assert_eq!(req(r#"{"cmd":"clear","names":["web"]}"#).role(), Role::Operator);
        assert_eq!(req(r#"{"cmd":"update"}"#).role(), Role::Admin);
        let comm = req(r#"{"cmd":"sendcomm","type":"deploy","data":"v2"}"#);
        assert_eq!(comm, Request::Sendcomm { kind: "deploy".into(), data: "v2".into() });
        assert_eq!(comm.role(), Role::Operator);
        assert!(req(r#"{"cmd":"ready"}"#).is_probe(true));
        assert!(req(r#"{"cmd":"metrics"}"#).is_probe(false));
        assert!(!req(r#"{"cmd":"metrics"}"#).is_probe(true));
        // Only the transport says a client is anonymous.
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"ready","anonymous":true}"#).is_err());
    }
}
