//! Kahi's events, typed: supervisord's event types with their names and payloads
//! (PROCESS_STATE_*, PROCESS_LOG_*, PROCESS_COMMUNICATION_*, REMOTE_COMMUNICATION,
//! PROCESS_GROUP_*, SUPERVISOR_STATE_CHANGE_*, TICK_*), and
//! Kahi's own (KAHI_HEALTH, KAHI_DEPENDENCY, KAHI_UPDATE). The loop builds them from the
//! supervisor's actions and publishes them to the [`Bus`], where each subscriber has a bounded
//! queue. Each event has two forms: supervisord's payload, byte for byte as its event
//! listeners read it ([`Event::payload`]), and the JSON of the `/api/v1/events/stream`
//! Server-Sent Events ([`Event::stream`]). No I/O here, and no clock: the time of an event is
//! given to it.
//!
//! Event listeners (`[eventlisteners.NAME]`) get the payload through [`listener`], the
//! protocol they speak.

mod bus;
pub mod listener;

pub use bus::{Bus, SubId};

use crate::process::State;
use crate::process::machine::Health;
use crate::supervisor::{Changes, Stream};

/// An event type, by supervisord's name. The abstract ones (EVENT, PROCESS_STATE, ...) are
/// never an event's own type; a subscription to one takes every type under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Event,
    ProcessState,
    ProcessStateStopped,
    ProcessStateStarting,
    ProcessStateRunning,
    ProcessStateBackoff,
    ProcessStateStopping,
    ProcessStateExited,
    ProcessStateFatal,
    ProcessStateUnknown,
    ProcessLog,
    ProcessLogStdout,
    ProcessLogStderr,
    ProcessCommunication,
    ProcessCommunicationStdout,
    ProcessCommunicationStderr,
    RemoteCommunication,
    ProcessGroup,
    ProcessGroupAdded,
    ProcessGroupRemoved,
    SupervisorStateChange,
    SupervisorStateChangeRunning,
    SupervisorStateChangeStopping,
    Tick,
    Tick5,
    Tick60,
    Tick3600,
    KahiHealth,
    KahiDependency,
    KahiUpdate,
}

impl EventType {
    pub const ALL: [EventType; 30] = [
        EventType::Event,
        EventType::ProcessState,
        EventType::ProcessStateStopped,
        EventType::ProcessStateStarting,
        EventType::ProcessStateRunning,
        EventType::ProcessStateBackoff,
        EventType::ProcessStateStopping,
        EventType::ProcessStateExited,
        EventType::ProcessStateFatal,
        EventType::ProcessStateUnknown,
        EventType::ProcessLog,
        EventType::ProcessLogStdout,
        EventType::ProcessLogStderr,
        EventType::ProcessCommunication,
        EventType::ProcessCommunicationStdout,
        EventType::ProcessCommunicationStderr,
        EventType::RemoteCommunication,
        EventType::ProcessGroup,
        EventType::ProcessGroupAdded,
        EventType::ProcessGroupRemoved,
        EventType::SupervisorStateChange,
        EventType::SupervisorStateChangeRunning,
        EventType::SupervisorStateChangeStopping,
        EventType::Tick,
        EventType::Tick5,
        EventType::Tick60,
        EventType::Tick3600,
        EventType::KahiHealth,
        EventType::KahiDependency,
        EventType::KahiUpdate,
    ];

    /// supervisord's name (Kahi's own start with KAHI_).
    pub fn name(self) -> &'static str {
        use EventType::*;
        match self {
            Event => "EVENT",
            ProcessState => "PROCESS_STATE",
            ProcessStateStopped => "PROCESS_STATE_STOPPED",
            ProcessStateStarting => "PROCESS_STATE_STARTING",
            ProcessStateRunning => "PROCESS_STATE_RUNNING",
            ProcessStateBackoff => "PROCESS_STATE_BACKOFF",
            ProcessStateStopping => "PROCESS_STATE_STOPPING",
            ProcessStateExited => "PROCESS_STATE_EXITED",
            ProcessStateFatal => "PROCESS_STATE_FATAL",
            ProcessStateUnknown => "PROCESS_STATE_UNKNOWN",
            ProcessLog => "PROCESS_LOG",
            ProcessLogStdout => "PROCESS_LOG_STDOUT",
            ProcessLogStderr => "PROCESS_LOG_STDERR",
            ProcessCommunication => "PROCESS_COMMUNICATION",
            ProcessCommunicationStdout => "PROCESS_COMMUNICATION_STDOUT",
            ProcessCommunicationStderr => "PROCESS_COMMUNICATION_STDERR",
            RemoteCommunication => "REMOTE_COMMUNICATION",
            ProcessGroup => "PROCESS_GROUP",
            ProcessGroupAdded => "PROCESS_GROUP_ADDED",
            ProcessGroupRemoved => "PROCESS_GROUP_REMOVED",
            SupervisorStateChange => "SUPERVISOR_STATE_CHANGE",
            SupervisorStateChangeRunning => "SUPERVISOR_STATE_CHANGE_RUNNING",
            SupervisorStateChangeStopping => "SUPERVISOR_STATE_CHANGE_STOPPING",
            Tick => "TICK",
            Tick5 => "TICK_5",
            Tick60 => "TICK_60",
            Tick3600 => "TICK_3600",
            KahiHealth => "KAHI_HEALTH",
            KahiDependency => "KAHI_DEPENDENCY",
            KahiUpdate => "KAHI_UPDATE",
        }
    }

    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The abstract type it falls under; None for EVENT.
    pub fn parent(self) -> Option<EventType> {
        use EventType::*;
        Some(match self {
            Event => return None,
            ProcessStateStopped | ProcessStateStarting | ProcessStateRunning
            | ProcessStateBackoff | ProcessStateStopping | ProcessStateExited
            | ProcessStateFatal | ProcessStateUnknown => ProcessState,
            ProcessLogStdout | ProcessLogStderr => ProcessLog,
            ProcessCommunicationStdout | ProcessCommunicationStderr => ProcessCommunication,
            ProcessGroupAdded | ProcessGroupRemoved => ProcessGroup,
            SupervisorStateChangeRunning | SupervisorStateChangeStopping => SupervisorStateChange,
            Tick5 | Tick60 | Tick3600 => Tick,
            _ => Event,
        })
    }

    /// Whether an event of this type is one of `other` (itself, or a type under it).
    pub fn is_a(self, other: EventType) -> bool {
        let mut t = Some(self);
        while let Some(x) = t {
            if x == other {
                return true;
            }
            t = x.parent();
        }
        false
    }

    /// PROCESS_STATE_ of a state.
    pub fn of_state(state: State) -> EventType {
        match state {
            State::Stopped => EventType::ProcessStateStopped,
            State::Starting => EventType::ProcessStateStarting,
            State::Running => EventType::ProcessStateRunning,
            State::Backoff => EventType::ProcessStateBackoff,
            State::Stopping => EventType::ProcessStateStopping,
            State::Exited => EventType::ProcessStateExited,
            State::Fatal => EventType::ProcessStateFatal,
            State::Unknown => EventType::ProcessStateUnknown,
        }
    }

    /// The types the event stream's `types=` names: `state`, `health`, `update`, `shutdown`.
    pub fn of_stream_name(name: &str) -> Option<EventType> {
        match name {
            "state" => Some(EventType::ProcessState),
            "health" => Some(EventType::KahiHealth),
            "update" => Some(EventType::KahiUpdate),
            "shutdown" => Some(EventType::SupervisorStateChangeStopping),
            _ => None,
        }
    }
}

/// The process an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRef {
    /// The namespec: `group:name`, or `name`.
    pub namespec: String,
    /// supervisord's processname.
    pub name: String,
    pub group: String,
    pub program: String,
}

impl ProcessRef {
    pub fn of(spec: &crate::config::ProcessSpec) -> ProcessRef {
        ProcessRef {
            namespec: spec.namespec(),
            name: spec.name.clone(),
            group: spec.group.clone(),
            program: spec.program.clone(),
        }
    }
}

/// A change of state, with what supervisord's PROCESS_STATE events carry, taken when it
/// happened.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub process: ProcessRef,
    pub from: State,
    pub to: State,
    /// The pid; for a change an exit caused, the pid that ended.
    pub pid: Option<i32>,
    pub exitstatus: Option<i32>,
    pub expected: Option<bool>,
    /// Failed starts in a row.
    pub tries: u32,
    /// In BACKOFF: seconds to the next start.
    pub next_start_in: Option<f64>,
    pub oom_killed: bool,
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// PROCESS_STATE_*.
    ProcessState { change: StateChange, ts: String },
    /// PROCESS_LOG_STDOUT, PROCESS_LOG_STDERR: output as it was read (ANSI stripped, secrets
    /// masked), from the instance `pid`.
    ProcessLog { process: ProcessRef, pid: i32, stream: Stream, data: Vec<u8> },
    /// PROCESS_COMMUNICATION_STDOUT, _STDERR: what a program wrote between
    /// `<!--XSUPERVISOR:BEGIN-->` and `<!--XSUPERVISOR:END-->` (capture mode).
    ProcessCommunication { process: ProcessRef, pid: i32, stream: Stream, data: Vec<u8> },
    /// REMOTE_COMMUNICATION: sent by a client (`kahi ctl sendcomm TYPE DATA`).
    RemoteCommunication { kind: String, data: String },
    /// PROCESS_GROUP_ADDED, PROCESS_GROUP_REMOVED.
    ProcessGroup { group: String, added: bool },
    /// SUPERVISOR_STATE_CHANGE_RUNNING, or _STOPPING (Kahi begins to shut down).
    SupervisorState { running: bool, ts: String },
    /// TICK_5, TICK_60, TICK_3600: `when` is the Unix time, a multiple of `period`.
    Tick { period: u32, when: u64 },
    /// KAHI_HEALTH: what a process's health checks say changed.
    Health { process: ProcessRef, health: Health, ts: String },
    /// KAHI_DEPENDENCY: a held start's dependencies are met, or what it still waits for.
    Dependency { process: ProcessRef, waiting_for: Vec<String>, ts: String },
    /// KAHI_UPDATE: a configuration update was applied.
    Update { changes: Changes },
}

impl Event {
    /// Its own (concrete) type.
    pub fn kind(&self) -> EventType {
        match self {
            Event::ProcessState { change, .. } => EventType::of_state(change.to),
            Event::ProcessLog { stream: Stream::Stdout, .. } => EventType::ProcessLogStdout,
            Event::ProcessLog { stream: Stream::Stderr, .. } => EventType::ProcessLogStderr,
            Event::ProcessCommunication { stream: Stream::Stdout, .. } => {
                EventType::ProcessCommunicationStdout
            }
            Event::ProcessCommunication { stream: Stream::Stderr, .. } => {
                EventType::ProcessCommunicationStderr
            }
            Event::RemoteCommunication { .. } => EventType::RemoteCommunication,
            Event::ProcessGroup { added: true, .. } => EventType::ProcessGroupAdded,
            Event::ProcessGroup { added: false, .. } => EventType::ProcessGroupRemoved,
            Event::SupervisorState { running: true, .. } => EventType::SupervisorStateChangeRunning,
            Event::SupervisorState { running: false, .. } => {
                EventType::SupervisorStateChangeStopping
            }
            Event::Tick { period: 5, .. } => EventType::Tick5,
            Event::Tick { period: 60, .. } => EventType::Tick60,
            Event::Tick { .. } => EventType::Tick3600,
            Event::Health { .. } => EventType::KahiHealth,
            Event::Dependency { .. } => EventType::KahiDependency,
            Event::Update { .. } => EventType::KahiUpdate,
        }
    }

    /// supervisord's payload, as its event listeners read it after the header:
    /// `processname:cat groupname:cat from_state:STOPPED tries:0`. Kahi's own events carry
    /// their stream JSON.
    pub fn payload(&self) -> Vec<u8> {
        match self {
            Event::ProcessState { change: c, .. } => {
                let mut s = format!(
                    "processname:{} groupname:{} from_state:{}",
                    c.process.name,
                    c.process.group,
                    c.from.name()
                );
                let pid = c.pid.unwrap_or(0);
                // As supervisord's ProcessState*Event.get_extra_values.
                match c.to {
                    State::Starting | State::Backoff => s += &format!(" tries:{}", c.tries),
                    State::Exited => {
                        s +=
                            &format!(" expected:{} pid:{pid}", u8::from(c.expected.unwrap_or(true)))
                    }
                    State::Running | State::Stopping | State::Stopped => {
                        s += &format!(" pid:{pid}")
                    }
                    State::Fatal | State::Unknown => {}
                }
                s.into_bytes()
            }
            Event::ProcessLog { process, pid, stream, data } => {
                let mut out = format!(
                    "processname:{} groupname:{} pid:{pid} channel:{}\n",
                    process.name,
                    process.group,
                    stream.name()
                )
                .into_bytes();
                out.extend_from_slice(data);
                out
            }
            Event::ProcessCommunication { process, pid, data, .. } => {
                let mut out =
                    format!("processname:{} groupname:{} pid:{pid}\n", process.name, process.group)
                        .into_bytes();
                out.extend_from_slice(data);
                out
            }
            Event::RemoteCommunication { kind, data } => {
                format!("type:{kind}\n{data}").into_bytes()
            }
            Event::ProcessGroup { group, .. } => format!("groupname:{group}\n").into_bytes(),
            Event::SupervisorState { .. } => Vec::new(),
            Event::Tick { when, .. } => format!("when:{when}").into_bytes(),
            // Not on the event stream (yet): its JSON is its own.
            Event::Dependency { process, waiting_for, ts } => serde_json::json!({
                "ts": ts,
                "name": process.namespec,
                "group": process.group,
                "program": process.program,
                "waiting_for": waiting_for,
            })
            .to_string()
            .into_bytes(),
            Event::Health { .. } | Event::Update { .. } => {
                self.stream().map(|(_, v)| v.to_string().into_bytes()).unwrap_or_default()
            }
        }
    }

    /// The event as `/api/v1/events/stream` sends it: its name there and its JSON; None for
    /// the types the stream does not carry.
    pub fn stream(&self) -> Option<(&'static str, serde_json::Value)> {
        use serde_json::json;
        Some(match self {
            Event::ProcessState { change: c, ts } => (
                "state",
                json!({
                    "ts": ts,
                    "name": c.process.namespec,
                    "group": c.process.group,
                    "program": c.process.program,
                    "from": c.from,
                    "to": c.to,
                    "pid": c.pid,
                    "exitstatus": c.exitstatus,
                    "expected": c.expected,
                    "tries": c.tries,
                    "next_start_in": c.next_start_in,
                    "oom_killed": c.oom_killed,
                }),
            ),
            Event::Health { process, health, ts } => (
                "health",
                json!({
                    "ts": ts,
                    "name": process.namespec,
                    "group": process.group,
                    "program": process.program,
                    "health": health,
                }),
            ),
            Event::Update { changes } => ("update", serde_json::to_value(changes).ok()?),
            Event::SupervisorState { running: false, ts } => ("shutdown", json!({ "ts": ts })),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> ProcessRef {
        ProcessRef {
            namespec: "cat".into(),
            name: "cat".into(),
            group: "cat".into(),
            program: "cat".into(),
        }
    }

    fn change(from: State, to: State, pid: Option<i32>, expected: Option<bool>) -> Event {
        let change = StateChange {
            process: cat(),
            from,
            to,
            pid,
            exitstatus: None,
            expected,
            tries: 0,
            next_start_in: None,
            oom_killed: false,
        };
        Event::ProcessState { change, ts: "2026-01-01T00:00:00Z".into() }
    }

    /// The payloads of supervisord's "Events" documentation, byte for byte.
    #[test]
    fn process_state_payloads_are_supervisords() {
        let p = |e: Event| String::from_utf8(e.payload()).unwrap();
        use State::*;
        assert_eq!(
            p(change(Stopped, Starting, None, None)),
            "processname:cat groupname:cat from_state:STOPPED tries:0"
        );
        assert_eq!(
            p(change(Starting, Running, Some(2766), None)),
            "processname:cat groupname:cat from_state:STARTING pid:2766"
        );
        assert_eq!(
            p(change(Starting, Backoff, None, None)),
            "processname:cat groupname:cat from_state:STARTING tries:0"
        );
        assert_eq!(
            p(change(Running, Stopping, Some(2766), None)),
            "processname:cat groupname:cat from_state:RUNNING pid:2766"
        );
        assert_eq!(
            p(change(Running, Exited, Some(2766), Some(false))),
            "processname:cat groupname:cat from_state:RUNNING expected:0 pid:2766"
        );
        assert_eq!(
            p(change(Running, Exited, Some(2766), Some(true))),
            "processname:cat groupname:cat from_state:RUNNING expected:1 pid:2766"
        );
        assert_eq!(
            p(change(Stopping, Stopped, Some(2766), None)),
            "processname:cat groupname:cat from_state:STOPPING pid:2766"
        );
        assert_eq!(
            p(change(Backoff, Fatal, None, None)),
            "processname:cat groupname:cat from_state:BACKOFF"
        );
        assert_eq!(
            p(change(Backoff, Unknown, None, None)),
            "processname:cat groupname:cat from_state:BACKOFF"
        );
        // A process in a group of its own name or not: processname is the process's name.
        let mut e = change(Stopped, Starting, None, None);
        if let Event::ProcessState { change, .. } = &mut e {
            change.process = ProcessRef {
                namespec: "web:web_01".into(),
                name: "web_01".into(),
                group: "web".into(),
                program: "web".into(),
            };
            change.tries = 2;
        }
        assert_eq!(p(e), "processname:web_01 groupname:web from_state:STOPPED tries:2");
    }

    #[test]
    fn other_payloads_are_supervisords() {
        let log = Event::ProcessLog {
            process: cat(),
            pid: 7,
            stream: Stream::Stderr,
            data: b"x\n".to_vec(),
        };
        assert_eq!(log.payload(), b"processname:cat groupname:cat pid:7 channel:stderr\nx\n");
        assert_eq!(
            Event::ProcessGroup { group: "g".into(), added: true }.payload(),
            b"groupname:g\n"
        );
        assert_eq!(Event::Tick { period: 60, when: 1_800_000_000 }.payload(), b"when:1800000000");
        assert_eq!(Event::SupervisorState { running: true, ts: String::new() }.payload(), b"");
        let comm = Event::ProcessCommunication {
            process: cat(),
            pid: 7,
            stream: Stream::Stdout,
            data: b"<x/>".to_vec(),
        };
        assert_eq!(comm.payload(), b"processname:cat groupname:cat pid:7\n<x/>");
        assert_eq!(comm.kind(), EventType::ProcessCommunicationStdout);
        let remote = Event::RemoteCommunication { kind: "deploy".into(), data: "v2\nok".into() };
        assert_eq!(remote.payload(), b"type:deploy\nv2\nok");
        assert_eq!(remote.kind().parent(), Some(EventType::Event));
        let dep = Event::Dependency {
            process: cat(),
            waiting_for: vec!["db (healthy)".into()],
            ts: "t".into(),
        };
        let v: serde_json::Value = serde_json::from_slice(&dep.payload()).unwrap();
        assert_eq!((&v["name"], &v["waiting_for"][0]), (&"cat".into(), &"db (healthy)".into()));
    }

    #[test]
    fn types_fall_under_their_abstract_ones() {
        for t in EventType::ALL {
            assert!(t.is_a(EventType::Event), "{}", t.name());
            assert!(t.is_a(t));
            assert_eq!(EventType::from_name(t.name()), Some(t));
        }
        for s in State::ALL {
            let t = EventType::of_state(s);
            assert!(t.is_a(EventType::ProcessState));
            assert_eq!(t.name(), format!("PROCESS_STATE_{}", s.name()));
        }
        assert!(!EventType::ProcessState.is_a(EventType::ProcessStateRunning));
        assert!(!EventType::Tick5.is_a(EventType::ProcessState));
        assert!(EventType::Tick3600.is_a(EventType::Tick));
        assert!(EventType::ProcessCommunicationStderr.is_a(EventType::ProcessCommunication));
        assert!(!EventType::ProcessCommunicationStderr.is_a(EventType::ProcessLog));
        assert_eq!(Event::Tick { period: 5, when: 5 }.kind(), EventType::Tick5);
    }

    /// The event stream keeps its names and fields.
    #[test]
    fn the_stream_form_keeps_its_names() {
        let (name, v) = change(State::Starting, State::Running, Some(9), None).stream().unwrap();
        assert_eq!(
            (name, &v["to"], &v["from"], &v["pid"]),
            ("state", &"RUNNING".into(), &"STARTING".into(), &9.into())
        );
        assert_eq!(v["name"], "cat");
        let shutdown = Event::SupervisorState { running: false, ts: "t".into() };
        assert_eq!(shutdown.stream().unwrap().0, "shutdown");
        assert_eq!(shutdown.kind(), EventType::of_stream_name("shutdown").unwrap());
        assert!(Event::Tick { period: 5, when: 5 }.stream().is_none());
        for name in crate::api::EVENT_TYPES {
            assert!(EventType::of_stream_name(name).is_some(), "{name}");
        }
    }
}
