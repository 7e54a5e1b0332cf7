//! `kahi ctl`: the client. It sends requests over the control socket with a blocking
//! `UnixStream`, prints the replies as supervisorctl would (or as JSON), and exits with
//! supervisorctl's LSB status codes. A command supervisorctl builds from several calls
//! (`pid NAME...`, `update GROUP...`, `add`, `remove`) is the same calls here, in order, on one
//! connection (`groups.rs`); `fg` follows a process's output and feeds its stdin (`fg.rs`);
//! what is printed, and the exit status it means, is `print.rs`.

mod fg;
mod groups;
mod print;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::api::{ApiError, ErrorCode, Reply, Request};
use crate::cli::{CtlArgs, CtlCommand};
use crate::supervisor::Stream;

/// Exit codes (supervisorctl's, from the LSB init-script conventions).
pub mod exit {
    pub const OK: i32 = 0;
    pub const GENERIC: i32 = 1;
    pub const USAGE: i32 = 2;
    /// status: a process is down (STOPPED, EXITED, FATAL, UNKNOWN).
    pub const NOT_RUNNING: i32 = 3;
    /// status: a name is unknown, or the daemon cannot be reached. Other commands: the
    /// daemon's socket refused the connection (LSB's "insufficient privileges", as
    /// supervisorctl says it).
    pub const UNKNOWN: i32 = 4;
    /// start/stop/restart/...: the daemon is not running; a process is not (pid, signal), or
    /// failed to start.
    pub const DAEMON_DOWN: i32 = 7;
}

/// What a command asks of the daemon: one request and its replies, or several calls.
enum Plan {
    One(Request, bool),
    Pid(Vec<String>),
    Update(Vec<String>),
    Add(Vec<String>),
    Remove(Vec<String>),
    Fg(String),
    /// Refused before asking (a bad signal name): the lines to print, the exit status.
    Refused(Vec<String>, i32),
}

impl Plan {
    /// supervisorctl checks that the daemon answers before these (its `upcheck`), and exits
    /// 7 when its socket is not there, 4 when it refuses; the others fail on their first
    /// call, with 1.
    fn checks_daemon(&self) -> bool {
        match self {
            Plan::One(r, _) => matches!(
                r,
                Request::Status { .. }
                    | Request::StatusTable { .. }
                    | Request::Start { .. }
                    | Request::Stop { .. }
                    | Request::Restart { .. }
                    | Request::Signal { .. }
                    | Request::Pid { .. }
                    | Request::Tail { .. }
                    | Request::Maintail { .. }
                    | Request::Clear { .. }
                    | Request::Version {}
            ),
            Plan::Pid(_) | Plan::Fg(_) => true,
            _ => false,
        }
    }
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
    let plan = match build(args.cmd) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kahi: {e}");
            return exit::USAGE;
        }
    };
    if let Plan::Refused(lines, code) = &plan {
        for l in lines {
            println!("{l}");
        }
        return *code;
    }
    let client = match Client::connect(&socket) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "kahi: unable to connect to {}: {e} (is the daemon running?)",
                socket.display()
            );
            return match e.raw_os_error() {
                _ if is_status => exit::UNKNOWN,
                _ if !plan.checks_daemon() => exit::GENERIC,
                Some(nix::libc::ENOENT) => exit::DAEMON_DOWN,
                Some(nix::libc::ECONNREFUSED | nix::libc::EACCES) => exit::UNKNOWN,
                _ => exit::GENERIC,
            };
        }
    };
    let done = match plan {
        Plan::One(request, json) => exchange(client, &request, json),
        Plan::Pid(names) => groups::pid(client, names),
        Plan::Update(names) => groups::update(client, names),
        Plan::Add(names) => groups::add(client, names),
        Plan::Remove(names) => groups::remove(client, names),
        Plan::Fg(name) => fg::run(client, &socket, name),
        Plan::Refused(..) => unreachable!("answered above"),
    };
    match done {
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

fn build(cmd: CtlCommand) -> Result<Plan, String> {
    let need = |names: &Vec<String>, verb: &str| {
        if names.is_empty() { Err(format!("{verb}: give a NAME, GROUP:*, or all")) } else { Ok(()) }
    };
    let one = |r: Request| Ok(Plan::One(r, false));
    match cmd {
        // The table is built by the daemon, which has it at hand: the client only writes it.
        CtlCommand::Status(a) if a.json => Ok(Plan::One(Request::Status { names: a.names }, true)),
        CtlCommand::Status(a) => one(Request::StatusTable { names: a.names }),
        CtlCommand::Start(a) => {
            need(&a.names, "start")?;
            one(Request::Start { names: a.names, wait: !a.no_wait })
        }
        CtlCommand::Stop(a) => {
            need(&a.names, "stop")?;
            one(Request::Stop { names: a.names, wait: !a.no_wait })
        }
        CtlCommand::Restart(a) => {
            need(&a.names, "restart")?;
            one(Request::Restart { names: a.names, wait: !a.no_wait })
        }
        CtlCommand::Signal(a) => {
            need(&a.names, "signal")?;
            if crate::process::parse_signal(&a.signal).is_err() {
                // As supervisorctl: each name's error, exit status 1.
                let lines = a.names.iter().map(|n| format!("{n}: ERROR (bad signal name)"));
                return Ok(Plan::Refused(lines.collect(), exit::GENERIC));
            }
            one(Request::Signal { signal: a.signal, names: a.names })
        }
        CtlCommand::Pid(a) if a.names.is_empty() => one(Request::Pid { name: None }),
        CtlCommand::Pid(a) => Ok(Plan::Pid(a.names)),
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
            one(Request::Tail {
                name: a.name,
                stream,
                bytes,
                offset: None,
                follow: a.follow,
                encoding,
            })
        }
        CtlCommand::Maintail(a) => {
            let bytes = a.bytes.unwrap_or_else(crate::api::default_tail_bytes);
            one(Request::Maintail { bytes, follow: a.follow })
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
            Ok(Plan::One(Request::Events { types }, a.json))
        }
        CtlCommand::Clear(a) => {
            need(&a.names, "clear")?;
            one(Request::Clear { names: a.names })
        }
        CtlCommand::Stdin(a) => {
            let data = match a.text {
                Some(t) => t,
                None => read_stdin("stdin")?,
            };
            one(Request::Stdin { name: a.name, data })
        }
        CtlCommand::Sendcomm(a) => {
            let data = match a.data {
                Some(d) => d,
                None => read_stdin("sendcomm")?,
            };
            one(Request::Sendcomm { kind: a.kind, data })
        }
        CtlCommand::Reread(_) => one(Request::Reread {}),
        CtlCommand::Update(a) => Ok(Plan::Update(a.groups)),
        CtlCommand::Add(a) => {
            need(&a.groups, "add")?;
            Ok(Plan::Add(a.groups))
        }
        CtlCommand::Remove(a) => {
            need(&a.groups, "remove")?;
            Ok(Plan::Remove(a.groups))
        }
        CtlCommand::Reload(_) => one(Request::Reload {}),
        CtlCommand::Avail(a) => Ok(Plan::One(Request::Avail {}, a.json)),
        CtlCommand::Fg(a) => Ok(Plan::Fg(a.name)),
        CtlCommand::Shutdown(_) => one(Request::Shutdown {}),
        CtlCommand::Version(_) => one(Request::Version {}),
    }
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

/// One connection to the daemon: requests sent as lines, replies read as lines, in order.
struct Client {
    reader: BufReader<UnixStream>,
    line: String,
}

impl Client {
    fn connect(socket: &Path) -> std::io::Result<Client> {
        Ok(Client { reader: BufReader::new(UnixStream::connect(socket)?), line: String::new() })
    }

    fn send(&mut self, request: &Request) -> Result<(), String> {
        let mut line = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        line.push(b'\n');
        send_all(self.reader.get_ref(), &line)
            .map_err(|e| format!("unable to send the request: {e}"))
    }

    /// The next reply, or None when the daemon closed the connection.
    fn next(&mut self) -> Result<Option<Result<Reply, ApiError>>, String> {
        self.line.clear();
        let n = self
            .reader
            .read_line(&mut self.line)
            .map_err(|e| format!("unable to read the reply: {e}"))?;
        if n == 0 {
            return Ok(None);
        }
        // Straight into the reply's types, tag first (`api/tagged.rs`): through a
        // serde_json::Value, every string of a status of 100 processes was allocated twice.
        match serde_json::from_str::<Reply>(&self.line) {
            Ok(reply) => Ok(Some(Ok(reply))),
            Err(e) => match serde_json::from_str::<ApiError>(&self.line) {
                Ok(error) => Ok(Some(Err(error))),
                Err(_) => Err(format!("unreadable reply: {e}")),
            },
        }
    }

    /// One request, one reply.
    fn call(&mut self, request: &Request) -> Result<Result<Reply, ApiError>, String> {
        self.send(request)?;
        self.next()?.ok_or_else(|| "the daemon closed the connection without replying".into())
    }
}

fn exchange(mut client: Client, request: &Request, json: bool) -> Result<i32, String> {
    client.send(request)?;
    let follow = follows(request);
    let mut code = exit::OK;
    loop {
        let reply = match client.next()? {
            Some(r) => r,
            None if follow => return Ok(code),
            None => return Err("the daemon closed the connection without replying".into()),
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(err) => {
                eprintln!("kahi: {}", err.error);
                return Ok(match (request, err.code) {
                    (Request::Status { .. } | Request::StatusTable { .. }, ErrorCode::NotFound) => {
                        exit::UNKNOWN
                    }
                    // A configuration file that does not load: 1, as supervisorctl's.
                    (
                        Request::Reread {}
                        | Request::Update {}
                        | Request::Avail {}
                        | Request::Reload {},
                        _,
                    ) => exit::GENERIC,
                    (_, ErrorCode::BadRequest) => exit::USAGE,
                    _ => exit::GENERIC,
                });
            }
        };
        code = print::print(request, reply, json)?;
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
