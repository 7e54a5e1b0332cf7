//! supervisord's `supervisor.*` and `system.*` methods, on Kahi's requests: [`plan`] reads a
//! call into the `api::Request` that answers it (or answers at once what needs no request),
//! and [`Convert`] turns the reply into the value supervisord returns, with its field names,
//! types, state codes and faults. Pure: the supervisor is only read, and the clock is an
//! argument.

use std::time::UNIX_EPOCH;

use super::codec::Value;
use crate::api::{ApiError, Encoding, ErrorCode, NameResult, Now, Outcome, Reply, Request};
use crate::config::Role;
use crate::process::{ExitStatus, State};
use crate::supervisor::{Stream, Supervisor};

/// supervisord's fault codes (`supervisor.xmlrpc.Faults`).
pub mod faults {
    pub const UNKNOWN_METHOD: i64 = 1;
    pub const INCORRECT_PARAMETERS: i64 = 2;
    pub const BAD_ARGUMENTS: i64 = 3;
    pub const SIGNATURE_UNSUPPORTED: i64 = 4;
    pub const SHUTDOWN_STATE: i64 = 6;
    pub const BAD_NAME: i64 = 10;
    pub const BAD_SIGNAL: i64 = 11;
    pub const NO_FILE: i64 = 20;
    pub const NOT_EXECUTABLE: i64 = 21;
    pub const FAILED: i64 = 30;
    pub const ABNORMAL_TERMINATION: i64 = 40;
    pub const SPAWN_ERROR: i64 = 50;
    pub const ALREADY_STARTED: i64 = 60;
    pub const NOT_RUNNING: i64 = 70;
    pub const SUCCESS: i64 = 80;
    pub const ALREADY_ADDED: i64 = 90;
    pub const STILL_RUNNING: i64 = 91;
    pub const CANT_REREAD: i64 = 92;

    /// The fault's name, as supervisord begins its faultString with it.
    pub fn name(code: i64) -> &'static str {
        match code {
            UNKNOWN_METHOD => "UNKNOWN_METHOD",
            INCORRECT_PARAMETERS => "INCORRECT_PARAMETERS",
            BAD_ARGUMENTS => "BAD_ARGUMENTS",
            SIGNATURE_UNSUPPORTED => "SIGNATURE_UNSUPPORTED",
            SHUTDOWN_STATE => "SHUTDOWN_STATE",
            BAD_NAME => "BAD_NAME",
            BAD_SIGNAL => "BAD_SIGNAL",
            NO_FILE => "NO_FILE",
            NOT_EXECUTABLE => "NOT_EXECUTABLE",
            FAILED => "FAILED",
            ABNORMAL_TERMINATION => "ABNORMAL_TERMINATION",
            SPAWN_ERROR => "SPAWN_ERROR",
            ALREADY_STARTED => "ALREADY_STARTED",
            NOT_RUNNING => "NOT_RUNNING",
            SUCCESS => "SUCCESS",
            ALREADY_ADDED => "ALREADY_ADDED",
            STILL_RUNNING => "STILL_RUNNING",
            CANT_REREAD => "CANT_REREAD",
            _ => "UNKNOWN",
        }
    }
}

use faults::*;

/// The version of supervisord's XML-RPC API that Kahi speaks: supervisorctl checks it.
pub const API_VERSION: &str = "3.0";

/// A fault: supervisord's code, and its text (`BAD_NAME: web`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: i64,
    pub text: String,
}

impl Fault {
    pub fn new(code: i64, extra: &str) -> Fault {
        let name = faults::name(code);
        let text = if extra.is_empty() { name.to_string() } else { format!("{name}: {extra}") };
        Fault { code, text }
    }
}

pub use super::introspect::METHODS;

/// What a call takes.
#[derive(Debug)]
pub enum Plan {
    /// The answer, at once.
    Now(Result<Value, Fault>),
    /// Ask this; the reply becomes the answer through the conversion.
    Ask(Request, Convert),
    /// `system.multicall`: these calls, one after the other.
    Multi(Vec<Result<super::codec::Call, Fault>>),
}

impl Plan {
    /// The role a client needs for it.
    pub fn role(&self) -> Role {
        match self {
            Plan::Ask(req, _) => req.role(),
            Plan::Now(_) | Plan::Multi(_) => Role::Viewer,
        }
    }
}

/// How a reply becomes supervisord's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Convert {
    /// `true` once it went well; the outcome of one process, or a fault.
    One,
    /// One struct per process (`name`, `group`, `status`, `description`), leaving out those
    /// the action does not apply to (starting what runs, as supervisord's predicate does).
    Each {
        skip: Option<Outcome>,
        all: bool,
    },
    /// Like `One` for a process, like `Each` for a group (`GROUP:*`, or a name that is a
    /// group's), as supervisord's process methods hand a group to the group's method.
    OneOrEach {
        skip: Option<Outcome>,
        group: bool,
    },
    /// A process's info struct.
    Info,
    /// Every process's, in supervisord's order (group, then name).
    AllInfo,
    Pid,
    /// The log text.
    Log,
    /// `[text, offset, overflow]`, as supervisord's `tailFile` has them.
    Tail {
        name: String,
        stream: Stream,
        offset: u64,
        length: u64,
    },
    /// `[[added, changed, removed]]`, by group.
    Changes,
    /// `true` once Kahi's own log is emptied; NO_FILE when it has none, as supervisord.
    ClearLog,
    /// `true` once the file is read again and every program is being restarted with it;
    /// CANT_REREAD when it does not load (and nothing changed).
    Restart,
    Version,
    ConfigInfo,
}

/// Parameters, read by position.
struct Args<'a>(&'a [Value]);

impl Args<'_> {
    fn count(&self, min: usize, max: usize) -> Result<(), Fault> {
        if (min..=max).contains(&self.0.len()) {
            Ok(())
        } else {
            Err(Fault::new(INCORRECT_PARAMETERS, ""))
        }
    }

    fn str(&self, i: usize) -> Result<String, Fault> {
        match self.0.get(i) {
            Some(Value::Str(s)) => Ok(s.clone()),
            _ => Err(Fault::new(INCORRECT_PARAMETERS, "")),
        }
    }

    fn int(&self, i: usize) -> Result<i64, Fault> {
        match self.0.get(i) {
            Some(Value::Int(n)) => Ok(*n),
            _ => Err(Fault::new(INCORRECT_PARAMETERS, "")),
        }
    }

    /// A boolean (Python sends `wait` as one), or true when absent.
    fn wait(&self, i: usize) -> Result<bool, Fault> {
        match self.0.get(i) {
            None => Ok(true),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Int(n)) => Ok(*n != 0),
            _ => Err(Fault::new(INCORRECT_PARAMETERS, "")),
        }
    }

    /// A signal, by name or number.
    fn signal(&self, i: usize) -> Result<String, Fault> {
        let s = match self.0.get(i) {
            Some(Value::Str(s)) => s.clone(),
            Some(Value::Int(n)) => n.to_string(),
            _ => return Err(Fault::new(INCORRECT_PARAMETERS, "")),
        };
        match crate::process::parse_signal(&s) {
            Ok(_) => Ok(s),
            Err(_) => Err(Fault::new(BAD_SIGNAL, &s)),
        }
    }
}

/// Reads a call into what answers it.
pub fn plan(method: &str, params: &[Value], sup: &Supervisor) -> Plan {
    match plan_inner(method, params, sup) {
        Ok(p) => p,
        Err(f) => Plan::Now(Err(f)),
    }
}

fn plan_inner(method: &str, params: &[Value], sup: &Supervisor) -> Result<Plan, Fault> {
    let a = Args(params);
    let now = |v: Value| Ok(Plan::Now(Ok(v)));
    let ask = |req: Request, c: Convert| Ok(Plan::Ask(req, c));
    let name = |i: usize| a.str(i);
    if method.starts_with("supervisor.") && sup.is_shutting_down() {
        // As supervisord: once shutting down, its namespace answers nothing else.
        return Err(Fault::new(SHUTDOWN_STATE, ""));
    }
    let group = |g: String| vec![format!("{g}:*")];
    let (min, max) = METHODS
        .iter()
        .find(|(m, _, _)| *m == method)
        .map(|(_, sig, _)| {
            // Optional trailing `wait`.
            let n = sig.len() - 1;
            let optional = sig.last() == Some(&"boolean") && n > 0 && method.contains("Process");
            (n - usize::from(optional), n)
        })
        .ok_or_else(|| Fault::new(UNKNOWN_METHOD, ""))?;
    a.count(min, max)?;
    match method {
        "supervisor.getAPIVersion" | "supervisor.getVersion" => now(Value::str(API_VERSION)),
        "supervisor.getSupervisorVersion" => ask(Request::Version {}, Convert::Version),
        "supervisor.getIdentification" => now(Value::str("kahi")),
        "supervisor.getState" => now(Value::record(vec![
            ("statecode", Value::Int(1)),
            ("statename", Value::str("RUNNING")),
        ])),
        "supervisor.getPID" => ask(Request::Pid { name: None }, Convert::Pid),
        "supervisor.readLog" | "supervisor.readMainLog" => {
            let (offset, length) = (a.int(0)?, a.int(1)?);
            if offset >= 0 || length != 0 {
                // Kahi's own log is read from its end: the form supervisorctl's maintail uses.
                return Err(Fault::new(
                    BAD_ARGUMENTS,
                    "Kahi reads its log from the end only: give a negative offset and length 0",
                ));
            }
            ask(Request::Maintail { bytes: offset.unsigned_abs(), follow: false }, Convert::Log)
        }
        "supervisor.shutdown" => ask(Request::Shutdown {}, Convert::One),
        "supervisor.clearLog" => ask(Request::ClearMainlog {}, Convert::ClearLog),
        "supervisor.reloadConfig" => ask(Request::Reread {}, Convert::Changes),
        // Answered once the file is read and the restart of every program has begun.
        "supervisor.restart" => ask(Request::Reload {}, Convert::Restart),
        "supervisor.addProcessGroup" => ask(Request::Add { name: name(0)? }, Convert::One),
        "supervisor.removeProcessGroup" => ask(Request::Remove { name: name(0)? }, Convert::One),
        "supervisor.startProcess" => {
            let n = name(0)?;
            ask(
                Request::Start { names: vec![n.clone()], wait: a.wait(1)? },
                Convert::OneOrEach {
                    skip: Some(Outcome::AlreadyStarted),
                    group: is_group(&n, sup),
                },
            )
        }
        "supervisor.startProcessGroup" => ask(
            Request::Start { names: group(name(0)?), wait: a.wait(1)? },
            Convert::Each { skip: Some(Outcome::AlreadyStarted), all: false },
        ),
        "supervisor.startAllProcesses" => ask(
            Request::Start { names: vec!["all".into()], wait: a.wait(0)? },
            Convert::Each { skip: Some(Outcome::AlreadyStarted), all: true },
        ),
        "supervisor.stopProcess" => {
            let n = name(0)?;
            ask(
                Request::Stop { names: vec![n.clone()], wait: a.wait(1)? },
                Convert::OneOrEach { skip: Some(Outcome::NotRunning), group: is_group(&n, sup) },
            )
        }
        "supervisor.stopProcessGroup" => ask(
            Request::Stop { names: group(name(0)?), wait: a.wait(1)? },
            Convert::Each { skip: Some(Outcome::NotRunning), all: false },
        ),
        "supervisor.stopAllProcesses" => ask(
            Request::Stop { names: vec!["all".into()], wait: a.wait(0)? },
            Convert::Each { skip: Some(Outcome::NotRunning), all: true },
        ),
        "supervisor.signalProcess" => {
            let n = name(0)?;
            ask(
                Request::Signal { signal: a.signal(1)?, names: vec![n.clone()] },
                Convert::OneOrEach { skip: Some(Outcome::NotRunning), group: is_group(&n, sup) },
            )
        }
        "supervisor.signalProcessGroup" => ask(
            Request::Signal { signal: a.signal(1)?, names: group(name(0)?) },
            Convert::Each { skip: Some(Outcome::NotRunning), all: false },
        ),
        "supervisor.signalAllProcesses" => ask(
            Request::Signal { signal: a.signal(0)?, names: vec!["all".into()] },
            Convert::Each { skip: Some(Outcome::NotRunning), all: true },
        ),
        "supervisor.sendProcessStdin" => {
            ask(Request::Stdin { name: name(0)?, data: a.str(1)? }, Convert::One)
        }
        "supervisor.sendRemoteCommEvent" => {
            ask(Request::Sendcomm { kind: a.str(0)?, data: a.str(1)? }, Convert::One)
        }
        "supervisor.getProcessInfo" => {
            ask(Request::Status { names: vec![name(0)?] }, Convert::Info)
        }
        "supervisor.getAllProcessInfo" => {
            ask(Request::Status { names: Vec::new() }, Convert::AllInfo)
        }
        "supervisor.getAllConfigInfo" => ask(Request::Config {}, Convert::ConfigInfo),
        "supervisor.readProcessStdoutLog"
        | "supervisor.readProcessLog"
        | "supervisor.readProcessStderrLog" => {
            let stream = stream_of(method);
            let (offset, length) = (a.int(1)?, a.int(2)?);
            let (offset, bytes) = match (offset, length) {
                (o, 0) if o < 0 => (None, o.unsigned_abs()),
                (o, l) if o >= 0 && l >= 0 => {
                    (Some(o as u64), if l == 0 { u64::MAX } else { l as u64 })
                }
                _ => return Err(Fault::new(BAD_ARGUMENTS, "")),
            };
            let req = Request::Tail {
                name: name(0)?,
                stream,
                bytes,
                offset,
                follow: false,
                encoding: Encoding::Text,
            };
            ask(req, Convert::Log)
        }
        "supervisor.tailProcessStdoutLog"
        | "supervisor.tailProcessLog"
        | "supervisor.tailProcessStderrLog" => {
            let stream = stream_of(method);
            let (offset, length) = (a.int(1)?.max(0) as u64, a.int(2)?.max(0) as u64);
            let n = name(0)?;
            // The read itself is made at conversion, from the ring as it stands then.
            let req = Request::Tail {
                name: n.clone(),
                stream,
                bytes: 0,
                offset: None,
                follow: false,
                encoding: Encoding::Text,
            };
            ask(req, Convert::Tail { name: n, stream, offset, length })
        }
        // The older name, which supervisord keeps as an alias.
        "supervisor.clearProcessLog" | "supervisor.clearProcessLogs" => {
            let n = name(0)?;
            let group = is_group(&n, sup);
            ask(Request::Clear { names: vec![n] }, Convert::OneOrEach { skip: None, group })
        }
        "supervisor.clearAllProcessLogs" => ask(
            Request::Clear { names: vec!["all".into()] },
            Convert::Each { skip: None, all: true },
        ),
        "system.listMethods" => {
            now(Value::Array(METHODS.iter().map(|(m, _, _)| Value::str(*m)).collect()))
        }
        "system.methodHelp" | "system.methodSignature" => {
            let asked = name(0)?;
            let Some((_, sig, help)) = METHODS.iter().find(|(m, _, _)| *m == asked) else {
                return Err(Fault::new(SIGNATURE_UNSUPPORTED, ""));
            };
            if method == "system.methodHelp" {
                now(Value::str(*help))
            } else {
                now(Value::Array(sig.iter().map(|t| Value::str(*t)).collect()))
            }
        }
        "system.multicall" => {
            let Some(Value::Array(calls)) = params.first() else {
                return Err(Fault::new(INCORRECT_PARAMETERS, ""));
            };
            Ok(Plan::Multi(calls.iter().map(multicall_entry).collect()))
        }
        _ => Err(Fault::new(UNKNOWN_METHOD, "")),
    }
}

/// Whether a name given to a process's method names a group: `GROUP:*`, or a name that
/// stands for more than one process.
fn is_group(name: &str, sup: &Supervisor) -> bool {
    name.ends_with(":*")
        || name.ends_with(':')
        || sup.resolve(name).is_some_and(|ids| ids.len() > 1)
}

/// One call of a `system.multicall`: `{methodName, params}`.
fn multicall_entry(v: &Value) -> Result<super::codec::Call, Fault> {
    let method = match v.member("methodName") {
        Some(Value::Str(m)) => m.clone(),
        _ => return Err(Fault::new(INCORRECT_PARAMETERS, "No methodName")),
    };
    if method == "system.multicall" {
        return Err(Fault::new(INCORRECT_PARAMETERS, "Recursive system.multicall forbidden"));
    }
    let params = match v.member("params") {
        None => Vec::new(),
        Some(Value::Array(p)) => p.clone(),
        Some(_) => return Err(Fault::new(INCORRECT_PARAMETERS, "params must be an array")),
    };
    Ok(super::codec::Call { method, params })
}

fn stream_of(method: &str) -> Stream {
    if method.contains("Stderr") { Stream::Stderr } else { Stream::Stdout }
}

/// A reply's error as supervisord's fault.
fn fault_of(e: &ApiError, convert: &Convert) -> Fault {
    let code = match (e.code, convert) {
        (ErrorCode::NotFound, Convert::ClearLog) => NO_FILE,
        (_, Convert::ClearLog) => FAILED,
        (ErrorCode::NotFound, _) => BAD_NAME,
        (ErrorCode::ShuttingDown, _) => SHUTDOWN_STATE,
        (_, Convert::Changes | Convert::Restart) => CANT_REREAD,
        (ErrorCode::Conflict, _) if e.error.contains("not running") => NOT_RUNNING,
        (ErrorCode::Conflict, _) if e.error.contains("no stdin pipe") => NO_FILE,
        (ErrorCode::BadRequest, _) if e.error.starts_with("signal:") => BAD_SIGNAL,
        (ErrorCode::BadRequest, _) if e.error.contains("processes; give one") => BAD_NAME,
        _ => FAILED,
    };
    Fault::new(code, &e.error)
}

/// An outcome's fault code (SUCCESS when it went well).
fn status_of(o: Outcome) -> i64 {
    match o {
        Outcome::Started
        | Outcome::Stopped
        | Outcome::Signalled
        | Outcome::Cleared
        | Outcome::Added
        | Outcome::Changed
        | Outcome::Removed => SUCCESS,
        Outcome::AlreadyStarted => ALREADY_STARTED,
        Outcome::NotRunning => NOT_RUNNING,
        Outcome::NoSuchProcess => BAD_NAME,
        Outcome::SpawnError => SPAWN_ERROR,
        Outcome::AbnormalTermination => ABNORMAL_TERMINATION,
        Outcome::ShuttingDown => SHUTDOWN_STATE,
        Outcome::AlreadyAdded => ALREADY_ADDED,
        Outcome::StillRunning => STILL_RUNNING,
        Outcome::NoSuchFile => NO_FILE,
        Outcome::NotExecutable => NOT_EXECUTABLE,
    }
}

/// `group:name` -> (group, name); a name alone is its own group.
fn split(namespec: &str) -> (&str, &str) {
    namespec.split_once(':').unwrap_or((namespec, namespec))
}

impl Convert {
    /// The reply as supervisord's value, or its fault.
    pub fn apply(
        &self,
        reply: Result<Reply, ApiError>,
        sup: &Supervisor,
        now: Now,
    ) -> Result<Value, Fault> {
        let reply = reply.map_err(|e| fault_of(&e, self))?;
        match (self, as_supervisord(reply, sup)) {
            (Convert::One, Reply::Results { results }) => one(&results),
            (Convert::One | Convert::ClearLog | Convert::Restart, _) => Ok(Value::Bool(true)),
            (Convert::OneOrEach { skip, group: true }, Reply::Results { results }) => {
                each(&results, *skip, false)
            }
            (Convert::OneOrEach { group: false, .. }, Reply::Results { results }) => one(&results),
            (Convert::Each { skip, all }, Reply::Results { results }) => {
                each(&results, *skip, *all)
            }
            (Convert::Info, Reply::Status { processes, unknown }) => match processes.first() {
                Some(p) if processes.len() == 1 => Ok(info(p, sup, now)),
                // A group's name: supervisord wants one process.
                Some(p) => Err(Fault::new(BAD_NAME, &p.group)),
                None => Err(Fault::new(BAD_NAME, unknown.first().map_or("", String::as_str))),
            },
            (Convert::AllInfo, Reply::Status { mut processes, .. }) => {
                processes.sort_by(|a, b| {
                    (a.group.as_str(), split(&a.name).1).cmp(&(b.group.as_str(), split(&b.name).1))
                });
                Ok(Value::Array(processes.iter().map(|p| info(p, sup, now)).collect()))
            }
            (Convert::Pid, Reply::Pid { pid }) => Ok(Value::Int(pid.into())),
            (Convert::Log, Reply::Log { data, .. }) => Ok(Value::Str(data)),
            (Convert::Tail { name, stream, offset, length }, _) => {
                tail(sup, name, *stream, *offset, *length)
            }
            (Convert::Changes, Reply::Changes { changes }) => {
                let lists = sup
                    .group_changes(&changes)
                    .map(|groups| Value::Array(groups.iter().map(Value::str).collect()));
                Ok(Value::Array(vec![Value::Array(lists.into())]))
            }
            (Convert::Version, Reply::Version { version }) => Ok(Value::Str(version)),
            (Convert::ConfigInfo, _) => Ok(config_info(sup)),
            (_, other) => Err(Fault::new(FAILED, &format!("unexpected reply {other:?}"))),
        }
    }
}

/// A start that ended in an exit before `startsecs` is a spawn error to supervisord (its
/// `spawnerr` says "Exited too quickly"), where Kahi's own clients hear of an abnormal
/// termination with the exit status; supervisord's ABNORMAL_TERMINATION is left for a start
/// that ended otherwise (stopped meanwhile).
fn as_supervisord(reply: Reply, sup: &Supervisor) -> Reply {
    let Reply::Results { mut results } = reply else { return reply };
    for r in &mut results {
        let failed = || {
            let ids = sup.resolve(&r.name)?;
            sup.get(*ids.first()?)?.proc.spawn_error.as_ref()
        };
        if r.outcome == Outcome::AbnormalTermination && failed().is_some() {
            r.outcome = Outcome::SpawnError;
        }
    }
    Reply::Results { results }
}

/// One process's outcome: true, or its fault.
fn one(results: &[NameResult]) -> Result<Value, Fault> {
    // A restart-like sequence reports several; the last says how it ended.
    match results.last() {
        Some(r) if status_of(r.outcome) == SUCCESS => Ok(Value::Bool(true)),
        Some(r) => Err(Fault::new(status_of(r.outcome), &r.name)),
        None => Ok(Value::Bool(true)),
    }
}

/// One struct per process, as supervisord's group methods return them.
fn each(results: &[NameResult], skip: Option<Outcome>, all: bool) -> Result<Value, Fault> {
    let missing: Vec<&NameResult> =
        results.iter().filter(|r| r.outcome == Outcome::NoSuchProcess).collect();
    if !all && !missing.is_empty() && missing.len() == results.len() {
        let g = missing.first().map(|r| r.name.trim_end_matches(":*")).unwrap_or("");
        return Err(Fault::new(BAD_NAME, g));
    }
    let items = results
        .iter()
        .filter(|r| Some(r.outcome) != skip && !(all && r.outcome == Outcome::NoSuchProcess))
        .map(|r| {
            let (group, name) = split(&r.name);
            let status = status_of(r.outcome);
            let description =
                if status == SUCCESS { "OK".to_string() } else { Fault::new(status, &r.name).text };
            Value::record(vec![
                ("name", Value::str(name)),
                ("group", Value::str(group)),
                ("status", Value::Int(status)),
                ("description", Value::Str(description)),
            ])
        })
        .collect();
    Ok(Value::Array(items))
}

/// A process's description as supervisord's `_interpretProcessInfo` gives it, which
/// supervisorctl prints: Kahi's own (the REST API's, `kahi ctl`'s) says more, but clients of
/// XML-RPC read this one.
fn description(p: &crate::api::ProcessInfo) -> String {
    match p.state {
        State::Running => p.description.clone(),
        State::Fatal | State::Backoff => match &p.spawnerr {
            Some(e) if !e.is_empty() => e.clone(),
            // The restart guard's wait after a run, which supervisord does not have: Kahi's
            // own words, rather than supervisorctl's guess of an unknown error.
            _ if !p.description.is_empty() => p.description.clone(),
            _ => format!("unknown error (try \"tail {}\")", split(&p.name).1),
        },
        State::Stopped | State::Exited => match (p.start_time, p.stop_time) {
            (Some(_), Some(stop)) => crate::timefmt::supervisord_local(stop as i64),
            (Some(_), None) => crate::timefmt::supervisord_local(0),
            _ => "Not started".into(),
        },
        _ => String::new(),
    }
}

/// supervisord's process info struct.
fn info(p: &crate::api::ProcessInfo, sup: &Supervisor, now: Now) -> Value {
    let secs = |t: Option<f64>| Value::Int(t.map_or(0, |t| t as i64));
    let logs = sup.resolve(&p.name).and_then(|ids| ids.first().and_then(|id| sup.get(*id)));
    let path = |s: Stream| {
        let spec = logs.map(|e| match s {
            Stream::Stdout => &e.spec.stdout_log,
            Stream::Stderr => &e.spec.stderr_log,
        });
        let p = spec.and_then(|l| l.as_ref()).map(|l| l.path.display().to_string());
        Value::Str(p.unwrap_or_default())
    };
    let wall = now.wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    // supervisord's view of the last exit: its code, -1 for a death by a signal, kept only in
    // the states an exit leaves a process in (a spawn clears it, and so does an exit before
    // startsecs, which leaves the spawn error instead); an unexpected one is a "Bad exit code".
    let last = logs.and_then(|e| e.proc.exit_status.map(|st| (st, &e.spec)));
    let (exitstatus, spawnerr) = match (p.state, last) {
        (State::Exited | State::Stopped, Some((st, spec))) if p.spawnerr.is_none() => {
            let code = match st {
                ExitStatus::Exited(c) => c,
                ExitStatus::Signaled { .. } => -1,
            };
            let why = (p.state == State::Exited && !st.expected(&spec.exitcodes))
                .then(|| format!("Bad exit code {code}"));
            (code, why.unwrap_or_default())
        }
        _ => (0, p.spawnerr.clone().unwrap_or_default()),
    };
    Value::record(vec![
        ("name", Value::str(split(&p.name).1)),
        ("group", Value::str(&p.group)),
        ("description", Value::Str(description(p))),
        ("start", secs(p.start_time)),
        ("stop", secs(p.stop_time)),
        ("now", Value::Int(wall)),
        ("state", Value::Int(p.statecode.into())),
        ("statename", Value::str(p.state.name())),
        ("spawnerr", Value::Str(spawnerr)),
        ("exitstatus", Value::Int(exitstatus.into())),
        ("logfile", path(Stream::Stdout)),
        ("stdout_logfile", path(Stream::Stdout)),
        ("stderr_logfile", path(Stream::Stderr)),
        ("pid", Value::Int(p.pid.unwrap_or(0).into())),
    ])
}

/// supervisord's `tailFile` on a ring: the `length` bytes before its end, or what came since
/// `offset` if that is less; `overflow` when more than `length` came since `offset`.
fn tail(
    sup: &Supervisor,
    name: &str,
    stream: Stream,
    offset: u64,
    length: u64,
) -> Result<Value, Fault> {
    let id = crate::api::one(sup, name).map_err(|e| fault_of(&e, &Convert::One))?;
    let Some(e) = sup.get(id) else { return Err(Fault::new(BAD_NAME, name)) };
    let ring = e.ring(stream);
    let end = ring.end();
    let overflow = end > offset.saturating_add(length);
    let from = if overflow { end - length } else { offset.min(end) };
    let read = ring.read(from, (end - from) as usize);
    Ok(Value::Array(vec![
        Value::Str(String::from_utf8_lossy(&read.data).into_owned()),
        Value::Int(end as i64),
        Value::Bool(overflow),
    ]))
}

/// `argv` as one command line a shell splits back into it, as supervisord shows the command it
/// was given: a word with anything but letters, digits and `_@%+=:,./-` in single quotes.
fn command_line(argv: &[String]) -> String {
    let plain = |w: &str| {
        !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b))
    };
    let words: Vec<String> = argv
        .iter()
        .map(|w| if plain(w) { w.clone() } else { format!("'{}'", w.replace('\'', r"'\''")) })
        .collect();
    words.join(" ")
}

/// supervisord's `getAllConfigInfo`: one struct per process of the configuration in force,
/// by name.
fn config_info(sup: &Supervisor) -> Value {
    let mut entries: Vec<_> = sup.iter().filter(|e| e.spec.instance_of.is_none()).collect();
    entries.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    let log = |l: &Option<crate::config::LogSpec>| {
        l.as_ref().map_or_else(|| "none".to_string(), |l| l.path.display().to_string())
    };
    let items = entries
        .into_iter()
        .map(|e| {
            let s = &e.spec;
            // Kahi's groups have no priority of their own: a process's stands in.
            let group_prio = s.priority;
            Value::record(vec![
                ("name", Value::str(&s.name)),
                ("group", Value::str(&s.group)),
                ("autostart", Value::Bool(s.autostart)),
                ("command", Value::Str(command_line(&s.argv))),
                (
                    "directory",
                    Value::str(
                        s.directory.as_ref().map_or("none".into(), |d| d.display().to_string()),
                    ),
                ),
                ("uid", s.user.as_ref().map_or(Value::str("none"), |u| Value::Int(u.uid.into()))),
                (
                    "exitcodes",
                    Value::Array(s.exitcodes.iter().map(|c| Value::Int((*c).into())).collect()),
                ),
                ("group_prio", Value::Int(group_prio)),
                ("process_prio", Value::Int(s.priority)),
                ("inuse", Value::Bool(true)),
                ("killasgroup", Value::Bool(s.killasgroup)),
                ("redirect_stderr", Value::Bool(s.redirect_stderr)),
                ("startretries", Value::Int(s.startretries.into())),
                ("startsecs", Value::Int(s.startsecs.as_secs() as i64)),
                ("stopsignal", Value::Int(s.stopsignal as i64)),
                ("stopwaitsecs", Value::Int(s.stopwaitsecs.as_secs() as i64)),
                // supervisord's capture mode (Kahi's *_capture_maxbytes is its ring's size).
                ("stdout_capture_maxbytes", Value::Int(s.stdout_capturemode_maxbytes as i64)),
                ("stderr_capture_maxbytes", Value::Int(s.stderr_capturemode_maxbytes as i64)),
                ("stdout_events_enabled", Value::Bool(s.stdout_events_enabled)),
                ("stderr_events_enabled", Value::Bool(s.stderr_events_enabled)),
                // Every program is given Kahi's own address, as supervisord's default does.
                ("serverurl", Value::str("auto")),
                ("stdout_logfile", Value::Str(log(&s.stdout_log))),
                ("stderr_logfile", Value::Str(log(&s.stderr_log))),
                (
                    "stdout_logfile_maxbytes",
                    Value::Int(s.stdout_log.as_ref().map_or(0, |l| l.maxbytes as i64)),
                ),
                (
                    "stderr_logfile_maxbytes",
                    Value::Int(s.stderr_log.as_ref().map_or(0, |l| l.maxbytes as i64)),
                ),
                (
                    "stdout_logfile_backups",
                    Value::Int(s.stdout_log.as_ref().map_or(0, |l| l.backups.into())),
                ),
                (
                    "stderr_logfile_backups",
                    Value::Int(s.stderr_log.as_ref().map_or(0, |l| l.backups.into())),
                ),
                ("stdout_syslog", Value::Bool(s.stdout_syslog)),
                ("stderr_syslog", Value::Bool(s.stderr_syslog)),
            ])
        })
        .collect();
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::command_line;

    #[test]
    fn a_command_line_quotes_the_words_a_shell_would_split() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command_line(&argv(&["/bin/sh", "-c", "echo hello; exec sleep 1000"])),
            "/bin/sh -c 'echo hello; exec sleep 1000'"
        );
        assert_eq!(command_line(&argv(&["sleep", "10", "--x=a,b"])), "sleep 10 --x=a,b");
        assert_eq!(command_line(&argv(&["echo", "it's", ""])), r"echo 'it'\''s' ''");
    }
}
