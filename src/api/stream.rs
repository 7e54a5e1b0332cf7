//! What the event streams show (`kahi ctl events`, the control socket's `events`,
//! `/api/v1/events/stream`): the names a client may follow, and each event's name and JSON.
//! Pure: the time an event without one of its own is shown at is an argument.
//!
//! Names: a client follows supervisord's names (PROCESS_STATE_FATAL, and the abstract ones,
//! PROCESS_STATE, TICK, EVENT, ...) and Kahi's (KAHI_HEALTH, ...), as `[eventlisteners.*]`
//! name them, or the stream's four short names of before, kept for the clients that use them:
//! `state` (PROCESS_STATE), `health` (KAHI_HEALTH), `update` (KAHI_UPDATE) and `shutdown`
//! (SUPERVISOR_STATE_CHANGE_STOPPING). An event is sent under its short name when it falls
//! under one (an SSE client listening for `state` still hears every change of state), under
//! supervisord's name otherwise; its JSON always says supervisord's name as `eventname`, and
//! its time as `ts`.

use serde_json::{Map, Value, json};

use super::EVENT_TYPES;
use crate::events::{Event, EventType};

/// The type a client names: a short name, or supervisord's or Kahi's name (in any case).
pub fn event_type(name: &str) -> Option<EventType> {
    EventType::of_stream_name(name).or_else(|| EventType::from_name(&name.to_ascii_uppercase()))
}

/// What a client follows when it names no type: every event but the periodic and the
/// voluminous ones (TICK_*, PROCESS_LOG_*), which it names to get (EVENT takes all). Without
/// this, a `kahi ctl events` left open would wake Kahi every 5 s for ticks it never asked
/// for, and have every enabled program's output built into events.
pub const DEFAULT_TYPES: [EventType; 8] = [
    EventType::ProcessState,
    EventType::ProcessGroup,
    EventType::SupervisorStateChange,
    EventType::ProcessCommunication,
    EventType::RemoteCommunication,
    EventType::KahiHealth,
    EventType::KahiDependency,
    EventType::KahiUpdate,
];

/// The types a client names ([`DEFAULT_TYPES`] when none), or what is wrong with one of them.
pub fn event_types(names: &[String]) -> Result<Vec<EventType>, String> {
    if names.is_empty() {
        return Ok(DEFAULT_TYPES.to_vec());
    }
    names
        .iter()
        .map(|n| {
            event_type(n).ok_or_else(|| {
                let all: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "types: unknown event type {n:?} (known: {}; or supervisord's names: {})",
                    EVENT_TYPES.join(", "),
                    all.join(", ")
                )
            })
        })
        .collect()
}

/// The name an event is sent under: the short name of the types it falls under, if any,
/// else its own.
pub fn stream_name(event: &Event) -> &'static str {
    let kind = event.kind();
    EVENT_TYPES
        .iter()
        .find(|n| EventType::of_stream_name(n).is_some_and(|t| kind.is_a(t)))
        .copied()
        .unwrap_or_else(|| kind.name())
}

/// The event's JSON: an object with its fields, `eventname` (supervisord's name) and `ts`
/// (`now_ts` when the event has no time of its own).
pub fn stream_json(event: &Event, now_ts: &str) -> Value {
    let who = |p: &crate::events::ProcessRef| json!({ "name": p.namespec, "group": p.group, "program": p.program });
    let mut v = match event {
        Event::ProcessLog { process, pid, stream, data } => {
            let mut v = who(process);
            v["pid"] = json!(pid);
            v["channel"] = json!(stream.name());
            v["data"] = json!(String::from_utf8_lossy(data));
            v
        }
        Event::ProcessGroup { group, .. } => json!({ "group": group }),
        Event::SupervisorState { ts, .. } => json!({ "ts": ts }),
        Event::Tick { when, .. } => {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(*when);
            json!({ "when": when, "ts": crate::timefmt::rfc3339(at) })
        }
        Event::Dependency { process, waiting_for, ts } => {
            let mut v = who(process);
            v["waiting_for"] = json!(waiting_for);
            v["ts"] = json!(ts);
            v
        }
        // The stream's JSON of before where there is one; else supervisord's payload, read.
        _ => event.stream().map(|(_, v)| v).unwrap_or_else(|| of_payload(&event.payload())),
    };
    if !v.is_object() {
        v = json!({ "data": v });
    }
    if let Value::Object(obj) = &mut v {
        obj.insert("eventname".into(), json!(event.kind().name()));
        obj.entry("ts").or_insert_with(|| json!(now_ts));
    }
    v
}

/// supervisord's payload as JSON: the `key:value` tokens of its first line as fields
/// (numbers as numbers), what follows the line as `data`. A payload that is JSON already
/// (Kahi's own events) is taken as it is.
fn of_payload(payload: &[u8]) -> Value {
    if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(payload) {
        return v;
    }
    let text = String::from_utf8_lossy(payload);
    let (head, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let mut obj = Map::new();
    for (k, val) in head.split(' ').filter_map(|t| t.split_once(':')) {
        let val = val.parse::<i64>().map_or_else(|_| json!(val), |n| json!(n));
        obj.insert(k.to_string(), val);
    }
    if !rest.is_empty() {
        obj.insert("data".into(), json!(rest));
    }
    Value::Object(obj)
}

/// One event as `kahi ctl events` prints it, as `docker events` does: the time, supervisord's
/// name, what it is about (the process, or the group; supervisord's `processname` for an event
/// read from its payload), then its other fields but those the
/// name says already (`to`) or that say nothing (null, `oom_killed=false`):
/// `2026-01-01T00:00:00.000Z PROCESS_STATE_EXITED web (expected=false, from=RUNNING, pid=42)`.
pub fn event_line(data: &Value) -> String {
    let text = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("");
    let mut line = format!("{} {}", text("ts"), text("eventname"));
    let subject = ["name", "group", "processname"].into_iter().find(|k| !text(k).is_empty());
    if let Some(k) = subject {
        line.push(' ');
        line.push_str(text(k));
    }
    let skip = |k: &str, v: &Value| {
        matches!(k, "ts" | "eventname" | "program" | "to")
            || Some(k) == subject
            || (k == "group" && subject == Some("name"))
            || (k == "oom_killed" && *v == Value::Bool(false))
            || v.is_null()
    };
    let fields: Vec<String> = data
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| !skip(k, v))
        .map(|(k, v)| format!("{k}={}", shown(v)))
        .collect();
    if !fields.is_empty() {
        line.push_str(&format!(" ({})", fields.join(", ")));
    }
    line
}

/// A field's value on a line: a plain word as it is, anything else as JSON.
fn shown(v: &Value) -> String {
    match v.as_str() {
        Some(s)
            if !s.is_empty()
                && s.chars().all(|c| c.is_ascii_graphic() && !"\"(),=".contains(c)) =>
        {
            s.to_string()
        }
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ProcessRef, StateChange};
    use crate::process::State;
    use crate::supervisor::Stream;

    fn web() -> ProcessRef {
        ProcessRef {
            namespec: "web".into(),
            name: "web".into(),
            group: "web".into(),
            program: "web".into(),
        }
    }

    fn exited() -> Event {
        let change = StateChange {
            process: web(),
            from: State::Running,
            to: State::Exited,
            pid: Some(42),
            exitstatus: Some(1),
            expected: Some(false),
            tries: 0,
            next_start_in: None,
            oom_killed: false,
        };
        Event::ProcessState { change, ts: "2026-01-01T00:00:00.000Z".into() }
    }

    /// A client that names no type takes every event but ticks and output, which it names
    /// to get.
    #[test]
    fn no_types_is_all_but_ticks_and_output() {
        let default = event_types(&[]).unwrap();
        for t in EventType::ALL {
            let taken = default.iter().any(|d| t.is_a(*d));
            let periodic_or_output = t.is_a(EventType::Tick) || t.is_a(EventType::ProcessLog);
            let abstract_only =
                matches!(t, EventType::Event | EventType::Tick | EventType::ProcessLog);
            if !abstract_only {
                assert_eq!(taken, !periodic_or_output, "{}", t.name());
            }
        }
        let all = event_types(&["EVENT".to_string()]).unwrap();
        assert!(all.iter().any(|d| EventType::Tick5.is_a(*d)));
    }

    #[test]
    fn clients_name_types_by_short_or_supervisords_names() {
        let names = |n: &[&str]| event_types(&n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            names(&["state", "PROCESS_STATE_FATAL", "tick", "EVENT", "KAHI_HEALTH"]).unwrap(),
            [
                EventType::ProcessState,
                EventType::ProcessStateFatal,
                EventType::Tick,
                EventType::Event,
                EventType::KahiHealth
            ]
        );
        for t in EventType::ALL {
            assert_eq!(event_type(t.name()), Some(t));
        }
        for n in EVENT_TYPES {
            assert!(event_type(n).is_some(), "{n}");
        }
        let err = names(&["state", "bogus"]).unwrap_err();
        assert!(err.contains("\"bogus\"") && err.contains("PROCESS_STATE_FATAL"), "{err}");
    }

    /// An event under a short name keeps it, for the clients of before; the rest go by
    /// supervisord's name, and every one says that name in its JSON.
    #[test]
    fn every_event_has_a_name_and_says_supervisords() {
        let tick = Event::Tick { period: 5, when: 1_800_000_000 };
        let log = Event::ProcessLog {
            process: web(),
            pid: 7,
            stream: Stream::Stderr,
            data: b"oops\n".to_vec(),
        };
        let group = Event::ProcessGroup { group: "g".into(), added: true };
        let running = Event::SupervisorState { running: true, ts: "t0".into() };
        let stopping = Event::SupervisorState { running: false, ts: "t1".into() };
        let cases = [
            (&exited(), "state", "PROCESS_STATE_EXITED"),
            (&tick, "TICK_5", "TICK_5"),
            (&log, "PROCESS_LOG_STDERR", "PROCESS_LOG_STDERR"),
            (&group, "PROCESS_GROUP_ADDED", "PROCESS_GROUP_ADDED"),
            (&running, "SUPERVISOR_STATE_CHANGE_RUNNING", "SUPERVISOR_STATE_CHANGE_RUNNING"),
            (&stopping, "shutdown", "SUPERVISOR_STATE_CHANGE_STOPPING"),
        ];
        for (event, name, eventname) in cases {
            assert_eq!(stream_name(event), name);
            let v = stream_json(event, "now");
            assert_eq!(v["eventname"], eventname, "{v}");
            assert!(v["ts"].is_string(), "{v}");
        }
        let v = stream_json(&exited(), "now");
        assert_eq!(
            (&v["ts"], &v["to"], &v["pid"]),
            (&json!("2026-01-01T00:00:00.000Z"), &json!("EXITED"), &json!(42))
        );
        let v = stream_json(&tick, "now");
        assert_eq!(
            (&v["when"], &v["ts"]),
            (&json!(1_800_000_000), &json!("2027-01-15T08:00:00.000Z"))
        );
        let v = stream_json(&log, "now");
        assert_eq!(
            (&v["name"], &v["channel"], &v["data"]),
            (&json!("web"), &json!("stderr"), &json!("oops\n"))
        );
        assert_eq!(stream_json(&group, "now")["group"], "g");
    }

    #[test]
    fn payloads_without_a_form_of_their_own_are_read() {
        let v = of_payload(b"processname:a groupname:b pid:9\nsome data");
        assert_eq!(v, json!({"processname": "a", "groupname": "b", "pid": 9, "data": "some data"}));
        assert_eq!(of_payload(b""), json!({}));
        assert_eq!(of_payload(br#"{"x":1}"#), json!({"x": 1}));
    }

    #[test]
    fn a_line_reads_like_docker_events() {
        let v = stream_json(&exited(), "now");
        assert_eq!(
            event_line(&v),
            "2026-01-01T00:00:00.000Z PROCESS_STATE_EXITED web (exitstatus=1, expected=false, \
             from=RUNNING, pid=42, tries=0)"
        );
        let log = Event::ProcessLog {
            process: web(),
            pid: 7,
            stream: Stream::Stdout,
            data: b"a b\n".to_vec(),
        };
        assert_eq!(
            event_line(&stream_json(&log, "T")),
            "T PROCESS_LOG_STDOUT web (channel=stdout, data=\"a b\\n\", pid=7)"
        );
        let group = Event::ProcessGroup { group: "g".into(), added: false };
        assert_eq!(event_line(&stream_json(&group, "T")), "T PROCESS_GROUP_REMOVED g");
        let running = Event::SupervisorState { running: true, ts: "T".into() };
        assert_eq!(event_line(&stream_json(&running, "x")), "T SUPERVISOR_STATE_CHANGE_RUNNING");
        // An event read from supervisord's payload.
        let read =
            json!({"ts": "T", "eventname": "E", "processname": "p", "groupname": "g", "pid": 3});
        assert_eq!(event_line(&read), "T E p (groupname=g, pid=3)");
    }
}
