//! What `kahi ctl` prints for a reply, and the exit status it means, as supervisorctl's: the
//! status table in its columns, each name's result line, logs as their bytes.

use std::io::Write;

use super::{exit, follows};
use crate::api::{NameResult, Outcome, Reply, Request};

/// Prints a reply; the exit status it means. Written through one buffer, flushed once: a
/// status of 100 processes is one write, not one per line.
pub(super) fn print(request: &Request, reply: Reply, json: bool) -> Result<i32, String> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let code = print_to(&mut out, request, reply, json)?;
    out.flush().map_err(|e| format!("unable to write: {e}"))?;
    Ok(code)
}

fn w(out: &mut impl Write, s: &str) -> Result<(), String> {
    out.write_all(s.as_bytes()).map_err(|e| format!("unable to write: {e}"))
}

fn print_to(
    out: &mut impl Write,
    request: &Request,
    reply: Reply,
    json: bool,
) -> Result<i32, String> {
    match reply {
        Reply::Status { processes, unknown } if json => {
            let text = serde_json::to_string_pretty(&processes).map_err(|e| e.to_string())?;
            w(out, &format!("{text}\n"))?;
            let down = processes.iter().any(|p| p.state.is_stopped());
            status_end(out, down, &unknown)
        }
        // Asked as a table, answered in pieces (many processes): the same table.
        Reply::Status { processes, unknown } => {
            let down = processes.iter().any(|p| p.state.is_stopped());
            let rows: Vec<_> =
                processes.into_iter().map(|p| (p.name, p.state, p.description)).collect();
            w(out, &crate::api::table(&rows))?;
            status_end(out, down, &unknown)
        }
        Reply::Table { text, down, unknown } => {
            w(out, &text)?;
            status_end(out, down, &unknown)
        }
        Reply::Results { results } => {
            let mut code = exit::OK;
            for r in &results {
                w(out, &format!("{}\n", result_line(r)))?;
                // supervisorctl keeps the status of the last result that sets one.
                if let Some(c) = exit_of(request, r) {
                    code = c;
                }
            }
            Ok(code)
        }
        Reply::Sent { taken } => {
            let s = if taken == 1 { "" } else { "s" };
            w(out, &format!("REMOTE_COMMUNICATION: sent to {taken} subscriber{s}\n"))?;
            Ok(exit::OK)
        }
        Reply::Written { name, bytes } => {
            w(out, &format!("{name}: {bytes} bytes written\n"))?;
            Ok(exit::OK)
        }
        Reply::Pid { pid } => {
            w(out, &format!("{pid}\n"))?;
            Ok(if pid == 0 { exit::DAEMON_DOWN } else { exit::OK })
        }
        Reply::Log { data, skipped, encoding, .. } => {
            if skipped > 0 && !follows(request) {
                eprintln!("kahi: {skipped} earlier bytes were overwritten in the ring buffer");
            }
            match encoding {
                crate::api::Encoding::Text => w(out, &data)?,
                crate::api::Encoding::Base64 => {
                    use base64::Engine;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(&data)
                        .map_err(|e| format!("the daemon sent a log that is not base64: {e}"))?;
                    out.write_all(&bytes).map_err(|e| e.to_string())?;
                }
            }
            out.flush().map_err(|e| e.to_string())?;
            Ok(exit::OK)
        }
        Reply::Changes { .. } if matches!(request, Request::Reload {}) => {
            w(out, "Restarted kahi\n")?;
            Ok(exit::OK)
        }
        Reply::Changes { changes } => {
            let applied = matches!(request, Request::Update {});
            let (a, c, r) = if applied {
                ("added", "updated", "removed")
            } else {
                ("available", "changed", "disappeared")
            };
            for n in &changes.added {
                w(out, &format!("{n}: {a}\n"))?;
            }
            for n in &changes.changed {
                w(out, &format!("{n}: {c}\n"))?;
            }
            for n in &changes.removed {
                w(out, &format!("{n}: {r}\n"))?;
            }
            if changes.added.is_empty() && changes.changed.is_empty() && changes.removed.is_empty()
            {
                w(out, "No config updates to processes\n")?;
            }
            Ok(exit::OK)
        }
        Reply::Avail { programs } => {
            if json {
                let text = serde_json::to_string_pretty(&programs).map_err(|e| e.to_string())?;
                w(out, &format!("{text}\n"))?;
            } else {
                // supervisorctl's columns: the name padded to 32 (a longer one is not, and
                // pushes its line on), then the others.
                for p in &programs {
                    let used = if p.in_use { "in use" } else { "avail" };
                    let auto = if p.autostart { "auto" } else { "manual" };
                    let (name, prio) = (&p.name, p.priority);
                    w(out, &format!("{name:<32} {used:<9} {auto:<9} {prio}:{prio}\n"))?;
                }
            }
            Ok(exit::OK)
        }
        Reply::Version { version } => {
            w(out, &format!("{version}\n"))?;
            Ok(exit::OK)
        }
        Reply::Shutdown { message } => {
            w(out, &format!("{message}\n"))?;
            Ok(exit::OK)
        }
        Reply::Event { data, lost, .. } => {
            // On stderr, so that stdout stays one event a line (JSON with --json); before
            // the event that followed the loss, where the gap is.
            if let Some(n) = lost {
                let s = if n == 1 { "" } else { "s" };
                eprintln!("kahi: {n} event{s} lost (the reader was too slow)");
            }
            let line = if json { data.to_string() } else { crate::api::event_line(&data) };
            w(out, &format!("{line}\n"))?;
            Ok(exit::OK)
        }
        Reply::Metrics { text } => {
            w(out, &text)?;
            Ok(exit::OK)
        }
        // What no command of kahi ctl asks for: as JSON.
        other => {
            let text = serde_json::to_string_pretty(&other).map_err(|e| e.to_string())?;
            w(out, &format!("{text}\n"))?;
            Ok(exit::OK)
        }
    }
}

/// After a status's table: the names that match nothing, and the exit status.
fn status_end(out: &mut impl Write, down: bool, unknown: &[String]) -> Result<i32, String> {
    // The table before the errors, as they come on a terminal.
    out.flush().map_err(|e| format!("unable to write: {e}"))?;
    for n in unknown {
        match n.strip_suffix(":*") {
            Some(group) => eprintln!("{group}: ERROR (no such group)"),
            None => eprintln!("{n}: ERROR (no such process)"),
        }
    }
    // As supervisorctl: 4 for an unknown name, but 3 when a process shown is down.
    Ok(if down {
        exit::NOT_RUNNING
    } else if !unknown.is_empty() {
        exit::UNKNOWN
    } else {
        exit::OK
    })
}

/// `NAME: started`, `NAME: ERROR (spawn error): WHY`; a group that is not there is
/// supervisorctl's `GROUP: ERROR (no such group)`.
fn result_line(r: &NameResult) -> String {
    if let (Outcome::NoSuchProcess, Some(group)) = (r.outcome, r.name.strip_suffix(":*")) {
        return format!("{group}: ERROR (no such group)");
    }
    match &r.detail {
        Some(d) if r.outcome.exit_code() != 0 => format!("{}: {}: {d}", r.name, r.outcome.text()),
        _ => format!("{}: {}", r.name, r.outcome.text()),
    }
}

/// The exit status a result sets, as supervisorctl's: a start of what runs and a stop of
/// what does not set none; a process that is not running is 7 to signal, as one that failed
/// to start; a group that is not there is a usage error (2) to start; any other failure 1.
fn exit_of(request: &Request, r: &NameResult) -> Option<i32> {
    let code = match (request, r.outcome) {
        (Request::Signal { .. }, Outcome::NotRunning) => exit::DAEMON_DOWN,
        (Request::Start { .. }, Outcome::NoSuchProcess) if r.name.ends_with(":*") => exit::USAGE,
        (_, o) => o.exit_code(),
    };
    (code != exit::OK).then_some(code)
}
