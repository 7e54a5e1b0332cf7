//! What a webhook POSTs: an event as Kahi's JSON object or as Slack's `{"text": ...}`, and the
//! body's signature. Pure: the time and the host name are given.

use serde_json::{Map, Value, json};

use crate::config::WebhookFormat;
use crate::events::Event;
use crate::process::State;

/// The body of `event` (the `serial`th published) in `format`; `time` is used where the
/// event carries no time of its own.
pub fn render(
    format: WebhookFormat,
    webhook: &str,
    serial: u64,
    event: &Event,
    time: &str,
    host: &str,
) -> Vec<u8> {
    match format {
        WebhookFormat::Json => json_body(webhook, serial, event, time, host).to_string(),
        WebhookFormat::Slack => json!({ "text": slack_text(event, host) }).to_string(),
    }
    .into_bytes()
}

/// `sha256=` and the hex HMAC-SHA256 of `body` keyed with `secret`: GitHub's
/// `X-Hub-Signature-256` scheme, so the receivers' verifiers carry over.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Kahi's JSON object: what every event has (webhook, event, serial, time, host, payload),
/// and the fields of its kind, each present only where the event has it.
fn json_body(webhook: &str, serial: u64, event: &Event, time: &str, host: &str) -> Value {
    let mut m = Map::new();
    m.insert("webhook".into(), webhook.into());
    m.insert("event".into(), event.kind().name().into());
    m.insert("serial".into(), serial.into());
    m.insert("time".into(), own_time(event).unwrap_or(time).into());
    m.insert("host".into(), host.into());
    let process = |m: &mut Map<String, Value>, p: &crate::events::ProcessRef| {
        m.insert("process".into(), p.namespec.clone().into());
        m.insert("name".into(), p.name.clone().into());
        m.insert("group".into(), p.group.clone().into());
        m.insert("program".into(), p.program.clone().into());
    };
    match event {
        Event::ProcessState { change: c, .. } => {
            process(&mut m, &c.process);
            m.insert("from".into(), c.from.name().into());
            m.insert("to".into(), c.to.name().into());
            if let Some(pid) = c.pid {
                m.insert("pid".into(), pid.into());
            }
            if let Some(e) = c.expected {
                m.insert("expected".into(), e.into());
            }
            if let Some(s) = c.exitstatus {
                m.insert("exitstatus".into(), s.into());
            }
            m.insert("tries".into(), c.tries.into());
        }
        Event::ProcessLog { process: p, pid, stream, data }
        | Event::ProcessCommunication { process: p, pid, stream, data } => {
            process(&mut m, p);
            m.insert("pid".into(), (*pid).into());
            m.insert("channel".into(), stream.name().into());
            m.insert("data".into(), String::from_utf8_lossy(data).into());
        }
        Event::RemoteCommunication { kind, data } => {
            m.insert("type".into(), kind.clone().into());
            m.insert("data".into(), data.clone().into());
        }
        Event::ProcessGroup { group, .. } => {
            m.insert("group".into(), group.clone().into());
        }
        Event::SupervisorState { .. } => {}
        Event::Tick { when, .. } => {
            m.insert("when".into(), (*when).into());
        }
        Event::Health { process: p, health, .. } => {
            process(&mut m, p);
            m.insert("health".into(), health.name().into());
        }
        Event::Dependency { process: p, waiting_for, .. } => {
            process(&mut m, p);
            m.insert("waiting_for".into(), waiting_for.clone().into());
        }
        Event::Update { changes } => {
            m.insert("added".into(), changes.added.clone().into());
            m.insert("changed".into(), changes.changed.clone().into());
            m.insert("removed".into(), changes.removed.clone().into());
        }
    }
    m.insert("payload".into(), String::from_utf8_lossy(&event.payload()).into());
    Value::Object(m)
}

/// The time an event was taken at, for those that carry it.
fn own_time(event: &Event) -> Option<&str> {
    match event {
        Event::ProcessState { ts, .. }
        | Event::SupervisorState { ts, .. }
        | Event::Health { ts, .. }
        | Event::Dependency { ts, .. } => Some(ts),
        _ => None,
    }
}

/// Longest stretch of a log line a chat message shows.
const SLACK_DATA: usize = 300;

/// One readable line: `[host] web: RUNNING -> EXITED, exit status 1 (not expected), pid 42`.
fn slack_text(event: &Event, host: &str) -> String {
    let what = match event {
        Event::ProcessState { change: c, .. } => {
            let mut s = format!("{}: {} -> {}", c.process.namespec, c.from.name(), c.to.name());
            match c.to {
                State::Exited => {
                    if let Some(code) = c.exitstatus {
                        s += &format!(", exit status {code}");
                    }
                    s += if c.expected == Some(false) { " (not expected)" } else { " (expected)" };
                }
                State::Backoff | State::Starting if c.tries > 0 => {
                    s += &format!(", {} failed start(s) in a row", c.tries)
                }
                State::Fatal => s += ", gave up starting it",
                _ => {}
            }
            if let Some(pid) = c.pid {
                s += &format!(", pid {pid}");
            }
            s
        }
        Event::ProcessLog { process, stream, data, .. }
        | Event::ProcessCommunication { process, stream, data, .. } => {
            let text = String::from_utf8_lossy(data);
            let text = text.trim_end();
            let cut: String = text.chars().take(SLACK_DATA).collect();
            let more = if cut.len() < text.len() { "..." } else { "" };
            format!("{} {}: {cut}{more}", process.namespec, stream.name())
        }
        Event::RemoteCommunication { kind, data } => format!("{kind}: {data}"),
        Event::ProcessGroup { group, added } => {
            format!("group {group} {}", if *added { "added" } else { "removed" })
        }
        Event::SupervisorState { running: true, .. } => "Kahi is running".into(),
        Event::SupervisorState { running: false, .. } => "Kahi is shutting down".into(),
        Event::Tick { when, .. } => format!("{} {when}", event.kind().name()),
        Event::Health { process, health, .. } => {
            format!("{}: health {}", process.namespec, health.name())
        }
        Event::Dependency { process, waiting_for, .. } if waiting_for.is_empty() => {
            format!("{}: dependencies met", process.namespec)
        }
        Event::Dependency { process, waiting_for, .. } => {
            format!("{}: waiting for {}", process.namespec, waiting_for.join(", "))
        }
        Event::Update { changes } => {
            let parts: Vec<String> = [
                ("added", &changes.added),
                ("changed", &changes.changed),
                ("removed", &changes.removed),
            ]
            .into_iter()
            .filter(|(_, names)| !names.is_empty())
            .map(|(what, names)| format!("{what} {}", names.join(", ")))
            .collect();
            if parts.is_empty() {
                "configuration reloaded, nothing changed".into()
            } else {
                format!("configuration reloaded: {}", parts.join("; "))
            }
        }
    };
    format!("[{host}] {what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ProcessRef, StateChange};

    fn exited() -> Event {
        let change = StateChange {
            process: ProcessRef {
                namespec: "web:web_01".into(),
                name: "web_01".into(),
                group: "web".into(),
                program: "web".into(),
            },
            from: State::Running,
            to: State::Exited,
            pid: Some(42),
            exitstatus: Some(3),
            expected: Some(false),
            tries: 0,
            next_start_in: None,
            oom_killed: false,
        };
        Event::ProcessState { change, ts: "2026-01-01T00:00:00.000Z".into() }
    }

    #[test]
    fn the_json_body_has_the_events_fields() {
        let body = render(WebhookFormat::Json, "ops", 7, &exited(), "later", "box");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["webhook"], "ops");
        assert_eq!(v["event"], "PROCESS_STATE_EXITED");
        assert_eq!(v["serial"], 7);
        assert_eq!(v["time"], "2026-01-01T00:00:00.000Z", "the event's own time");
        assert_eq!(v["host"], "box");
        assert_eq!(
            (&v["process"], &v["name"], &v["group"]),
            (&"web:web_01".into(), &"web_01".into(), &"web".into())
        );
        assert_eq!(
            (&v["from"], &v["to"], &v["pid"]),
            (&"RUNNING".into(), &"EXITED".into(), &42.into())
        );
        assert_eq!((&v["expected"], &v["exitstatus"]), (&false.into(), &3.into()));
        assert_eq!(
            v["payload"],
            "processname:web_01 groupname:web from_state:RUNNING expected:0 pid:42"
        );
        // An event without a time of its own gets the time it was handed over at; fields it
        // does not have are absent.
        let tick =
            render(WebhookFormat::Json, "ops", 8, &Event::Tick { period: 5, when: 5 }, "t", "b");
        let v: Value = serde_json::from_slice(&tick).unwrap();
        assert_eq!(
            (&v["time"], &v["when"], &v["event"]),
            (&"t".into(), &5.into(), &"TICK_5".into())
        );
        assert!(v.get("pid").is_none() && v.get("process").is_none(), "{v}");
    }

    #[test]
    fn slack_gets_one_readable_line() {
        let body = render(WebhookFormat::Slack, "ops", 7, &exited(), "t", "box");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"text": "[box] web:web_01: RUNNING -> EXITED, exit status 3 (not expected), pid 42"})
        );
    }

    #[test]
    fn a_remote_communication_carries_its_type_and_data() {
        let e = Event::RemoteCommunication { kind: "deploy".into(), data: "v2 out".into() };
        let v: Value =
            serde_json::from_slice(&render(WebhookFormat::Json, "o", 3, &e, "t", "b")).unwrap();
        assert_eq!(
            (&v["event"], &v["type"], &v["data"]),
            (&"REMOTE_COMMUNICATION".into(), &"deploy".into(), &"v2 out".into())
        );
        let v: Value =
            serde_json::from_slice(&render(WebhookFormat::Slack, "o", 3, &e, "t", "b")).unwrap();
        assert_eq!(v["text"], "[b] deploy: v2 out");
    }

    /// RFC 4231, test case 2.
    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
