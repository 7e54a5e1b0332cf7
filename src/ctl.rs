//! `kahi ctl`: the client. It sends one request over the control socket with a blocking
//! `UnixStream`, prints the reply as supervisorctl would (or as JSON), and exits with
//! supervisorctl's LSB status codes.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::api::{ApiError, ErrorCode, NameResult, Reply, Request};
use crate::cli::{CtlArgs, CtlCommand};
use crate::process::State;
use crate::supervisor::Stream;

/// Exit codes (supervisorctl's, from the LSB init-script conventions).
pub mod exit {
    pub const OK: i32 = 0;
    pub const GENERIC: i32 = 1;
    pub const USAGE: i32 = 2;
    /// status: a process is not running.
    pub const NOT_RUNNING: i32 = 3;
    /// status: a name is unknown.
    pub const UNKNOWN: i32 = 4;
    /// start/stop/restart/...: the daemon is not running.
    pub const DAEMON_DOWN: i32 = 7;
}

pub fn run(args: CtlArgs) -> i32 {
    let socket = match socket_path(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kahi: fatal: {e}");
            return exit::USAGE;
        }
    };
    let is_status = matches!(args.cmd, CtlCommand::Status(_));
    let (request, json) = match build(args.cmd) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kahi: {e}");
            return exit::USAGE;
        }
    };
    let stream = match UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "kahi: unable to connect to {}: {e} (is the daemon running?)",
                socket.display()
            );
            return if is_status { exit::NOT_RUNNING } else { exit::DAEMON_DOWN };
        }
    };
    match exchange(stream, &request, json) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kahi: {e}");
            exit::GENERIC
        }
    }
}

/// `-s`, else the socket of `-c`'s configuration, else `$KAHI_SOCKET`, else the default.
fn socket_path(args: &CtlArgs) -> Result<PathBuf, String> {
    if let Some(s) = &args.socket {
        return Ok(s.clone());
    }
    if let Some(c) = &args.config {
        let errors = match crate::config::load(c) {
            Ok(config) => return Ok(config.server.socket),
            Err(errors) => errors,
        };
        // The client needs the socket only: errors elsewhere are the daemon's business.
        let env = |name: &str| std::env::var(name).ok();
        let socket = crate::config::socket::socket_of(c, &env)
            .map_err(|e| format!("{e}; the control socket is unknown (give it with -s)"))?;
        eprintln!(
            "kahi: warning: {} has {} configuration error(s) (see kahi daemon --check -c {}); using its socket {}",
            c.display(),
            errors.len(),
            c.display(),
            socket.display()
        );
        return Ok(socket);
    }
    if let Some(s) = std::env::var_os("KAHI_SOCKET").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(s));
    }
    Ok(crate::config::default_socket())
}

fn build(cmd: CtlCommand) -> Result<(Request, bool), String> {
    let need = |names: &Vec<String>, verb: &str| {
        if names.is_empty() { Err(format!("{verb}: give a NAME, GROUP:*, or all")) } else { Ok(()) }
    };
    Ok(match cmd {
        CtlCommand::Status(a) => (Request::Status { names: a.names }, a.json),
        CtlCommand::Start(a) => {
            need(&a.names, "start")?;
            (Request::Start { names: a.names, wait: !a.no_wait }, false)
        }
        CtlCommand::Stop(a) => {
            need(&a.names, "stop")?;
            (Request::Stop { names: a.names, wait: !a.no_wait }, false)
        }
        CtlCommand::Restart(a) => {
            need(&a.names, "restart")?;
            (Request::Restart { names: a.names, wait: !a.no_wait }, false)
        }
        CtlCommand::Signal(a) => {
            need(&a.names, "signal")?;
            crate::process::parse_signal(&a.signal)?;
            (Request::Signal { signal: a.signal, names: a.names }, false)
        }
        CtlCommand::Pid(a) => (Request::Pid { name: a.name }, false),
        CtlCommand::Tail(a) => {
            let stream = match a.stream.as_deref() {
                None | Some("stdout") => Stream::Stdout,
                Some("stderr") => Stream::Stderr,
                Some(other) => {
                    return Err(format!(
                        "tail: unknown stream {other:?}; expected stdout or stderr"
                    ));
                }
            };
            let bytes = a.bytes.unwrap_or_else(crate::api::default_tail_bytes);
            // The bytes as the program wrote them, whatever they are.
            let encoding = crate::api::Encoding::Base64;
            (
                Request::Tail {
                    name: a.name,
                    stream,
                    bytes,
                    offset: None,
                    follow: a.follow,
                    encoding,
                },
                false,
            )
        }
        CtlCommand::Maintail(a) => {
            let bytes = a.bytes.unwrap_or_else(crate::api::default_tail_bytes);
            (Request::Maintail { bytes, follow: a.follow }, false)
        }
        CtlCommand::Events(a) => {
            let types: Vec<String> = a
                .types
                .iter()
                .flat_map(|t| t.split(','))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
            // Checked here too: a wrong name is a usage error even with no daemon to ask.
            crate::api::event_types(&types).map_err(|e| format!("events: {e}"))?;
            (Request::Events { types }, a.json)
        }
        CtlCommand::Clear(a) => {
            need(&a.names, "clear")?;
            (Request::Clear { names: a.names }, false)
        }
        CtlCommand::Stdin(a) => {
            let data = match a.text {
                Some(t) => t,
                None => read_stdin("stdin")?,
            };
            (Request::Stdin { name: a.name, data }, false)
        }
        CtlCommand::Sendcomm(a) => {
            let data = match a.data {
                Some(d) => d,
                None => read_stdin("sendcomm")?,
            };
            (Request::Sendcomm { kind: a.kind, data }, false)
        }
        CtlCommand::Reread(_) => (Request::Reread {}, false),
        CtlCommand::Update(_) => (Request::Update {}, false),
        CtlCommand::Avail(a) => (Request::Avail {}, a.json),
        CtlCommand::Shutdown(_) => (Request::Shutdown {}, false),
        CtlCommand::Version(_) => (Request::Version {}, false),
    })
}

/// All of standard input, for the `verb` that takes it when its text is not given.
fn read_stdin(verb: &str) -> Result<String, String> {
    let mut t = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
        .map_err(|e| format!("{verb}: unable to read standard input: {e}"))?;
    Ok(t)
}

/// A request whose replies go on until the client hangs up (or the daemon, which is the end
/// of a follow, not an error: exit 0).
fn follows(request: &Request) -> bool {
    matches!(
        request,
        Request::Tail { follow: true, .. }
            | Request::Maintail { follow: true, .. }
            | Request::Events { .. }
    )
}

fn exchange(stream: UnixStream, request: &Request, json: bool) -> Result<i32, String> {
    let mut line = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    line.push(b'\n');
    send_all(&stream, &line).map_err(|e| format!("unable to send the request: {e}"))?;
    let mut reader = BufReader::new(stream);
    let follow = follows(request);
    let mut code = exit::OK;
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).map_err(|e| format!("unable to read the reply: {e}"))?;
        if n == 0 {
            if follow {
                return Ok(code);
            }
            return Err("the daemon closed the connection without replying".into());
        }
        let value: serde_json::Value =
            serde_json::from_str(&buf).map_err(|e| format!("unreadable reply: {e}"))?;
        if value.get("error").is_some() {
            let err: ApiError =
                serde_json::from_value(value).map_err(|e| format!("unreadable reply: {e}"))?;
            eprintln!("kahi: {}", err.error);
            return Ok(match (request, err.code) {
                (Request::Status { .. }, ErrorCode::NotFound) => exit::UNKNOWN,
                (_, ErrorCode::BadRequest) => exit::USAGE,
                _ => exit::GENERIC,
            });
        }
        let reply: Reply =
            serde_json::from_value(value).map_err(|e| format!("unreadable reply: {e}"))?;
        code = print(request, reply, json)?;
        if !follow {
            return Ok(code);
        }
    }
}

/// Writes all of `buf` with MSG_NOSIGNAL: the client does not ignore SIGPIPE (see `main`), and
/// a daemon that hangs up is an error to report (exit 1), not a signal that ends the client
/// without a word.
fn send_all(stream: &UnixStream, mut buf: &[u8]) -> std::io::Result<()> {
    use nix::sys::socket::{MsgFlags, send};
    use std::os::fd::AsRawFd;
    while !buf.is_empty() {
        match send(stream.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Prints a reply; the exit status it means. Written through one buffer, flushed once: a
/// status of 100 processes is one write, not one per line.
fn print(request: &Request, reply: Reply, json: bool) -> Result<i32, String> {
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
        Reply::Status { processes, unknown } => {
            if json {
                let text = serde_json::to_string_pretty(&processes).map_err(|e| e.to_string())?;
                w(out, &format!("{text}\n"))?;
            } else {
                let width = processes.iter().map(|p| p.name.len()).max().unwrap_or(0).max(32);
                for p in &processes {
                    let row =
                        format!("{:<width$} {:<10} {}", p.name, p.state.name(), p.description);
                    w(out, &format!("{}\n", row.trim_end()))?;
                }
            }
            // The table before the errors, as they come on a terminal.
            out.flush().map_err(|e| format!("unable to write: {e}"))?;
            for n in &unknown {
                eprintln!("{n}: ERROR (no such process)");
            }
            let not_running = processes.iter().any(|p| p.state != State::Running);
            Ok(if !unknown.is_empty() {
                exit::UNKNOWN
            } else if not_running {
                exit::NOT_RUNNING
            } else {
                exit::OK
            })
        }
        Reply::Results { results } => {
            for r in &results {
                w(out, &format!("{}\n", result_line(r)))?;
            }
            Ok(results.iter().map(|r| r.outcome.exit_code()).max().unwrap_or(exit::OK))
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
            Ok(if pid == 0 { exit::NOT_RUNNING } else { exit::OK })
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
                let width = programs.iter().map(|p| p.name.len()).max().unwrap_or(0).max(32);
                for p in &programs {
                    let used = if p.in_use { "in use" } else { "avail" };
                    let auto = if p.autostart { "auto" } else { "manual" };
                    w(
                        out,
                        &format!(
                            "{:<width$} {used:<9} {auto:<9} {}:{}\n",
                            p.name, p.priority, p.priority
                        ),
                    )?;
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
        Reply::Event { data, .. } => {
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

fn result_line(r: &NameResult) -> String {
    match &r.detail {
        Some(d) if r.outcome.exit_code() != 0 => format!("{}: {}: {d}", r.name, r.outcome.text()),
        _ => format!("{}: {}", r.name, r.outcome.text()),
    }
}
