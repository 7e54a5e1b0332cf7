//! `GET /metrics`: Prometheus' text exposition format (version 0.0.4).
//!
//! Per process, labelled `process` (the namespec), `group` and `program`: up, state (one
//! series per state), start time, restarts, the restart guard (seconds to the next start, the
//! crash streak), last exit code, and CPU time and resident memory
//! read from /proc; per log file (also labelled `stream`), the bytes it dropped and whether
//! it fails now; per event listener process, its listener state (one series per state, as
//! the process state), and per listener pool (labelled `pool`), the events waiting in its
//! buffer and those it dropped. Daemon-wide: build info, processes per state, HTTP answers by
//! method and code, events dropped. Names, types, units and HELP follow Prometheus' conventions (`_total` counters,
//! seconds and bytes), so `promtool check metrics` has nothing to say.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Instant, UNIX_EPOCH};

use crate::api::Now;
use crate::events::listener::ListenerState;
use crate::process::State;
use crate::supervisor::{Entry, ProcId, Stream, Supervisor};

/// What the loop knows of events: the events subscribers lost, in all, and each listener
/// pool's buffer.
#[derive(Debug, Default)]
pub struct EventStats {
    pub dropped: u64,
    pub pools: Vec<PoolStats>,
}

/// One `[eventlisteners.NAME]` pool's buffer.
#[derive(Debug)]
pub struct PoolStats {
    pub name: String,
    /// Events waiting for a READY listener.
    pub queued: usize,
    /// Events its buffer dropped, oldest first, since the pool was made.
    pub dropped: u64,
}

/// The whole exposition. `log_file` says, for a process's stream, the bytes its log file
/// dropped and whether writing it fails now.
pub fn render(
    sup: &Supervisor,
    now: Now,
    http: &BTreeMap<(String, u16), u64>,
    log_file: &dyn Fn(ProcId, Stream) -> (u64, bool),
    events: &EventStats,
) -> String {
    let mut out = String::with_capacity(4096 + sup.iter().count() * 1200);
    let entries: Vec<&Entry> = sup.iter().collect();
    let labels: Vec<String> = entries.iter().map(|e| process_labels(e)).collect();
    let unix = |at: Instant| {
        let ago = now.mono.saturating_duration_since(at);
        now.wall.checked_sub(ago).and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    };

    family(&mut out, "kahi_process_up", "gauge", "1 when the process is RUNNING, else 0.");
    for (e, l) in entries.iter().zip(&labels) {
        sample(&mut out, "kahi_process_up", l, u8::from(e.proc.state == State::Running));
    }

    family(
        &mut out,
        "kahi_process_state",
        "gauge",
        "1 for the state the process is in, 0 for the others.",
    );
    for (e, l) in entries.iter().zip(&labels) {
        for s in State::ALL {
            let l = format!("{l},state=\"{}\"", s.name());
            sample(&mut out, "kahi_process_state", &l, u8::from(e.proc.state == s));
        }
    }

    family(
        &mut out,
        "kahi_process_start_time_seconds",
        "gauge",
        "Unix time the process was last started.",
    );
    for (e, l) in entries.iter().zip(&labels) {
        if let Some(t) = e.proc.started_at.and_then(unix) {
            sample(
                &mut out,
                "kahi_process_start_time_seconds",
                l,
                format!("{:.3}", t.as_secs_f64()),
            );
        }
    }

    family(
        &mut out,
        "kahi_process_restarts_total",
        "counter",
        "Times the process was started again after it had run.",
    );
    for (e, l) in entries.iter().zip(&labels) {
        sample(&mut out, "kahi_process_restarts_total", l, e.proc.restarts);
    }

    family(
        &mut out,
        "kahi_process_next_start_seconds",
        "gauge",
        "In BACKOFF: seconds until the next automatic start (the back-off or the restart guard's wait).",
    );
    for (e, l) in entries.iter().zip(&labels) {
        if let Some(d) = crate::api::next_start_in(&e.proc, now.mono) {
            sample(
                &mut out,
                "kahi_process_next_start_seconds",
                l,
                format!("{:.3}", d.as_secs_f64()),
            );
        }
    }

    family(
        &mut out,
        "kahi_process_crash_streak",
        "gauge",
        "Unexpected exits in a row of runs shorter than backoff_reset: what grows the restart guard's wait.",
    );
    for (e, l) in entries.iter().zip(&labels) {
        sample(&mut out, "kahi_process_crash_streak", l, e.proc.crashes);
    }

    family(
        &mut out,
        "kahi_process_exit_code",
        "gauge",
        "Exit code of the process's last exit (128 + signal when a signal killed it).",
    );
    for (e, l) in entries.iter().zip(&labels) {
        if let Some(st) = e.proc.exit_status {
            sample(&mut out, "kahi_process_exit_code", l, st.code());
        }
    }

    let usage: Vec<Option<Usage>> = entries.iter().map(|e| e.proc.pid.and_then(usage_of)).collect();
    family(
        &mut out,
        "kahi_process_cpu_seconds_total",
        "counter",
        "User and system CPU time of the running process, from /proc.",
    );
    for (u, l) in usage.iter().zip(&labels) {
        if let Some(u) = u {
            sample(&mut out, "kahi_process_cpu_seconds_total", l, format!("{:.2}", u.cpu_seconds));
        }
    }
    family(
        &mut out,
        "kahi_process_resident_memory_bytes",
        "gauge",
        "Resident memory of the running process, from /proc.",
    );
    for (u, l) in usage.iter().zip(&labels) {
        if let Some(u) = u {
            sample(&mut out, "kahi_process_resident_memory_bytes", l, u.rss_bytes);
        }
    }

    // Only streams that go to a file of their own (not /dev/stdout or /dev/stderr).
    let files: Vec<(String, (u64, bool))> = entries
        .iter()
        .zip(&labels)
        .flat_map(|(e, l)| {
            [(Stream::Stdout, &e.spec.stdout_log), (Stream::Stderr, &e.spec.stderr_log)]
                .into_iter()
                .filter(|(_, spec)| spec.as_ref().is_some_and(|s| s.std_fd().is_none()))
                .map(move |(s, _)| (format!("{l},stream=\"{}\"", s.name()), log_file(e.id, s)))
        })
        .collect();
    family(
        &mut out,
        "kahi_log_dropped_bytes_total",
        "counter",
        "Bytes of output the process's log file did not take (disk full, write or open errors), dropped a line at a time.",
    );
    for (l, (dropped, _)) in &files {
        sample(&mut out, "kahi_log_dropped_bytes_total", l, dropped);
    }
    family(
        &mut out,
        "kahi_log_file_failing",
        "gauge",
        "1 while the process's log file cannot be written or opened (its output is being dropped), else 0.",
    );
    for (l, (_, failing)) in &files {
        sample(&mut out, "kahi_log_file_failing", l, u8::from(*failing));
    }

    family(
        &mut out,
        "kahi_listener_state",
        "gauge",
        "For an event listener's process: 1 for the listener state it is in (supervisord's ACKNOWLEDGED, READY, BUSY, UNKNOWN), 0 for the others.",
    );
    for (e, l) in entries.iter().zip(&labels) {
        let Some(state) = e.listener_state else { continue };
        for s in ListenerState::ALL {
            let l = format!("{l},state=\"{}\"", s.name());
            sample(&mut out, "kahi_listener_state", &l, u8::from(state == s));
        }
    }
    family(
        &mut out,
        "kahi_listener_events_queued",
        "gauge",
        "Events waiting in an event listener pool's buffer for a READY listener.",
    );
    for p in &events.pools {
        let l = format!("pool=\"{}\"", escape(&p.name));
        sample(&mut out, "kahi_listener_events_queued", &l, p.queued);
    }
    family(
        &mut out,
        "kahi_listener_events_dropped_total",
        "counter",
        "Events an event listener pool's buffer dropped, oldest first, when it was full (buffer_size).",
    );
    for p in &events.pools {
        let l = format!("pool=\"{}\"", escape(&p.name));
        sample(&mut out, "kahi_listener_events_dropped_total", &l, p.dropped);
    }

    family(&mut out, "kahi_build_info", "gauge", "Always 1; the labels say which Kahi this is.");
    sample(&mut out, "kahi_build_info", &format!("version=\"{}\"", escape(crate::VERSION)), 1);

    family(&mut out, "kahi_processes", "gauge", "Processes in each state.");
    for s in State::ALL {
        let n = entries.iter().filter(|e| e.proc.state == s).count();
        sample(&mut out, "kahi_processes", &format!("state=\"{}\"", s.name()), n);
    }

    family(
        &mut out,
        "kahi_http_requests_total",
        "counter",
        "HTTP requests answered, by method and status code.",
    );
    for ((method, code), n) in http {
        sample(
            &mut out,
            "kahi_http_requests_total",
            &format!("code=\"{code}\",method=\"{}\"", escape(method)),
            n,
        );
    }

    family(
        &mut out,
        "kahi_events_dropped_total",
        "counter",
        "Events dropped, oldest first, from the queue of a subscriber that did not keep up.",
    );
    let _ = writeln!(out, "kahi_events_dropped_total {}", events.dropped);
    out
}

/// `kahi_webhook_deliveries_total`, appended to the exposition: per webhook, its events by
/// outcome (in the order of [`crate::webhooks::OUTCOMES`]).
pub fn webhooks(out: &mut String, counts: &[(String, [u64; 4])]) {
    family(
        out,
        "kahi_webhook_deliveries_total",
        "counter",
        "Webhook events by outcome: delivered (2xx), failed (given up after the last retry), dropped (the queue was full), and retried (attempts made again).",
    );
    for (name, counts) in counts {
        for (outcome, n) in crate::webhooks::OUTCOMES.iter().zip(counts) {
            let labels = format!("outcome=\"{outcome}\",webhook=\"{}\"", escape(name));
            sample(out, "kahi_webhook_deliveries_total", &labels, n);
        }
    }
}

fn process_labels(e: &Entry) -> String {
    format!(
        "process=\"{}\",group=\"{}\",program=\"{}\"",
        escape(&e.spec.namespec()),
        escape(&e.spec.group),
        escape(&e.spec.program)
    )
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

/// A label value: backslash, double quote and newline escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub(crate) struct Usage {
    pub(crate) cpu_seconds: f64,
    pub(crate) rss_bytes: u64,
}

/// CPU time and resident memory of a live process, from /proc/PID/stat.
pub(crate) fn usage_of(pid: i32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat, ticks_per_second(), page_size())
}

/// Fields 14 and 15 (utime, stime, in clock ticks) and 24 (rss, in pages) of /proc/PID/stat.
/// The command name (field 2) may hold spaces and parentheses: fields are counted from the
/// last `)`.
fn parse_stat(stat: &str, ticks: f64, page: u64) -> Option<Usage> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state).
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let (utime, stime, rss) = (field(14)?, field(15)?, field(24)?);
    Some(Usage { cpu_seconds: (utime + stime) as f64 / ticks, rss_bytes: rss * page })
}

pub(crate) fn ticks_per_second() -> f64 {
    use nix::unistd::{SysconfVar, sysconf};
    sysconf(SysconfVar::CLK_TCK).ok().flatten().map_or(100.0, |v| v as f64)
}

fn page_size() -> u64 {
    use nix::unistd::{SysconfVar, sysconf};
    sysconf(SysconfVar::PAGE_SIZE).ok().flatten().map_or(4096, |v| v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 \
                    12345 1000000 300 18446744073709551615";
        let u = parse_stat(stat, 100.0, 4096).unwrap();
        assert_eq!(u.cpu_seconds, 3.0);
        assert_eq!(u.rss_bytes, 300 * 4096);
        assert!(parse_stat("garbage", 100.0, 4096).is_none());
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
