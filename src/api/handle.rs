//! Answers to requests, against the supervisor: `handle` turns a [`Request`] into a
//! [`Handled`], which says what the transport must do (answer now, park, follow a log, send in
//! pieces, read the configuration). Pure but for what it asks the supervisor to do: no I/O.

use std::time::Instant;

use super::views::{config_info, groups, readiness, status, status_ids, status_table};
use super::*;
use crate::process::machine::Input;
use crate::process::{State, parse_signal};
use crate::supervisor::{ProcId, Supervisor};

/// Handles one request.
pub fn handle(sup: &mut Supervisor, req: Request, now: Now) -> Handled {
    match req {
        Request::Status { names } => match status_ids(sup, &names) {
            (ids, unknown) if ids.len() > crate::piecewise::PROCESSES_PER_PIECE => {
                Handled::Piecewise(crate::piecewise::Piecewise::status(ids, unknown))
            }
            (ids, unknown) => Handled::Reply(Ok(status(sup, &ids, unknown, now))),
        },
        // Many processes: the status, in pieces, which the client prints the same.
        Request::StatusTable { names } => match status_ids(sup, &names) {
            (ids, unknown) if ids.len() > crate::piecewise::PROCESSES_PER_PIECE => {
                Handled::Piecewise(crate::piecewise::Piecewise::status(ids, unknown))
            }
            (ids, unknown) => Handled::Reply(Ok(status_table(sup, &ids, unknown, now))),
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
            Handled::Log(LogRead { id, stream, from, end, skipped, encoding })
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
        Request::Sendcomm { kind, data } => match remote_type(&kind) {
            Ok(()) => Handled::Remote { kind, data },
            Err(e) => Handled::Reply(Err(e)),
        },
        Request::Clear { names } => match clear(sup, &names) {
            Ok((ids, reply)) => Handled::Cleared(ids, reply),
            Err(e) => Handled::Reply(Err(e)),
        },
        Request::ClearMainlog {} => Handled::Reply(clear_mainlog()),
        Request::Reread {} => Handled::NeedConfig(ConfigUse::Reread),
        Request::Update {} => Handled::NeedConfig(ConfigUse::Update),
        Request::Reload {} => Handled::NeedConfig(ConfigUse::Reload),
        Request::Avail {} => Handled::NeedConfig(ConfigUse::Avail),
        Request::Add { name } => Handled::NeedConfig(ConfigUse::Add(name)),
        Request::Remove { name } => Handled::NeedConfig(ConfigUse::Remove(name)),
        Request::Shutdown {} => Handled::Shutdown,
        Request::Version {} => {
            Handled::Reply(Ok(Reply::Version { version: crate::VERSION.to_string() }))
        }
        Request::Groups {} => Handled::Reply(Ok(Reply::Groups { groups: groups(sup) })),
        Request::Config {} => {
            Handled::Reply(Ok(Reply::Config { config: config_info(&sup.config) }))
        }
        Request::Ready { names, anonymous } => Handled::Reply(readiness(sup, &names, anonymous)),
        Request::Health {} => Handled::Reply(Ok(Reply::Health { status: "ok".into() })),
        Request::Metrics {} => Handled::Metrics,
        Request::Events { types } => match event_types(&types) {
            Ok(types) => Handled::Events(types),
            Err(e) => Handled::Reply(Err(ApiError::new(ErrorCode::BadRequest, e))),
        },
    }
}

/// A REMOTE_COMMUNICATION's type goes into its payload's first line, `type:TYPE`, which
/// listeners split into `key:value` tokens at blanks and colons (supervisord's childutils
/// does): one word, then, without a colon.
fn remote_type(kind: &str) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::new(ErrorCode::BadRequest, format!("type: {why}")));
    if kind.is_empty() {
        return bad("must not be empty");
    }
    match kind.chars().find(|c| c.is_whitespace() || c.is_control() || *c == ':') {
        Some(c) => bad(&format!(
            "{c:?} is not allowed: the type is one word without colons, as the payload's `type:` token"
        )),
        None => Ok(()),
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

pub(crate) fn no_such(name: &str) -> ApiError {
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

/// What a freshly read configuration is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigUse {
    /// Report what it would change.
    Reread,
    /// Apply it.
    Update,
    /// Apply it, restarting every program (supervisord's restart).
    Reload,
    /// List its programs, and which are in use.
    Avail,
    /// Add this group of it, and nothing else.
    Add(String),
    /// Forget this group (the file is read so that what changes is reported as an update's
    /// changes are, once it is known to load).
    Remove(String),
}

impl ConfigUse {
    /// It changes the processes: what changed is published as an update's changes are.
    pub fn applies(&self) -> bool {
        matches!(
            self,
            ConfigUse::Update | ConfigUse::Reload | ConfigUse::Add(_) | ConfigUse::Remove(_)
        )
    }
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
        ConfigUse::Reload => Reply::Changes { changes: sup.reload(new, now) },
        ConfigUse::Avail => avail(sup, &new),
        ConfigUse::Add(group) => group_change(&group, sup.add_group(&new, &group, now)),
        ConfigUse::Remove(group) => group_change(&group, sup.remove_group(&group)),
    }
}

/// A group added or removed: the changes, or why not as the group's result.
fn group_change(
    group: &str,
    done: Result<crate::supervisor::Changes, crate::supervisor::GroupError>,
) -> Reply {
    use crate::supervisor::GroupError;
    let outcome = match done {
        Ok(changes) => return Reply::Changes { changes },
        Err(GroupError::NoSuchGroup) => Outcome::NoSuchProcess,
        Err(GroupError::AlreadyAdded) => Outcome::AlreadyAdded,
        Err(GroupError::StillRunning) => Outcome::StillRunning,
    };
    Reply::Results { results: vec![NameResult { name: group.to_string(), outcome, detail: None }] }
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
                // A socket program is up once it listens: its program starts with the first
                // connection, which may never come.
                State::Starting if e.listening() => self.results.push(NameResult {
                    name: label,
                    outcome: Outcome::Started,
                    detail: None,
                }),
                State::Starting => still.push((label, id)),
                State::Running => self.results.push(NameResult {
                    name: label,
                    outcome: Outcome::Started,
                    detail: None,
                }),
                // A oneshot that did its work: started, as `systemctl start` says of one.
                State::Exited if e.proc.completed => self.results.push(NameResult {
                    name: label,
                    outcome: Outcome::Started,
                    detail: e.proc.exit_status.map(|st| format!("completed ({st})")),
                }),
                _ => {
                    let e = &sup.get(id).map(|e| e.proc.clone()).unwrap_or_default();
                    let spec = sup.get(id).map(|e| &*e.spec);
                    let (outcome, detail) = match (&e.spawn_error, e.exit_status) {
                        (Some(err), None) => (spawn_outcome(err, spec), Some(err.clone())),
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

/// A spawn that failed as supervisord's start refuses one before it spawns: the command is
/// not there (NO_FILE) or may not be executed (NOT_EXECUTABLE); any other failure is a spawn
/// error. The spawn names the command and the reason as `COMMAND: strerror`. supervisord
/// checks as itself: a program run as another `user`, denied, may be denied as that user (its
/// directory, say), which is a spawn error in supervisord too.
fn spawn_outcome(error: &str, spec: Option<&crate::config::ProcessSpec>) -> Outcome {
    use nix::errno::Errno;
    let Some(spec) = spec else { return Outcome::SpawnError };
    let command = spec.argv.first().map_or("", String::as_str);
    match crate::process::spawn_errno(error, command) {
        Some(Errno::ENOENT) => Outcome::NoSuchFile,
        Some(Errno::EACCES) if spec.user.is_none() => Outcome::NotExecutable,
        _ => Outcome::SpawnError,
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

/// Empties the daemon's log; NOT_FOUND when it has no file.
fn clear_mainlog() -> Result<Reply, ApiError> {
    use crate::logs::daemon_log::{ClearError, clear};
    match clear() {
        Ok(path) => Ok(Reply::Results {
            results: vec![NameResult {
                name: path.display().to_string(),
                outcome: Outcome::Cleared,
                detail: None,
            }],
        }),
        Err(ClearError::NoFile(why)) => Err(ApiError::new(ErrorCode::NotFound, why)),
        Err(ClearError::Failed(why)) => Err(ApiError::new(ErrorCode::ServerError, why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// supervisord's NO_FILE and NOT_EXECUTABLE, told from the spawn's `COMMAND: strerror`;
    /// the same errno about something else (the directory) is a spawn error.
    #[test]
    fn a_spawn_failure_of_the_command_itself_is_no_such_file_or_not_executable() {
        let spec = crate::config::ProcessSpec {
            argv: vec!["/srv/job".into()],
            ..crate::config::ProcessSpec::default()
        };
        let no_file = "/srv/job: No such file or directory";
        let denied = "/srv/job: Permission denied";
        assert_eq!(spawn_outcome(no_file, Some(&spec)), Outcome::NoSuchFile);
        assert_eq!(spawn_outcome(denied, Some(&spec)), Outcome::NotExecutable);
        let other = "/srv/job: Exec format error";
        assert_eq!(spawn_outcome(other, Some(&spec)), Outcome::SpawnError);
        let dir = "directory /srv: No such file or directory";
        assert_eq!(spawn_outcome(dir, Some(&spec)), Outcome::SpawnError);
        assert_eq!(spawn_outcome(no_file, None), Outcome::SpawnError);
        // Run as another user, a denial may be that user's: a spawn error.
        let user =
            crate::config::RunAs { name: "nobody".into(), uid: 65534, gid: 65534, groups: vec![] };
        let nobody = crate::config::ProcessSpec { user: Some(user), ..spec.clone() };
        assert_eq!(spawn_outcome(denied, Some(&nobody)), Outcome::SpawnError);
    }

    /// A REMOTE_COMMUNICATION type must survive a listener's `key:value` split of the
    /// payload's first line.
    #[test]
    fn a_remote_type_is_one_word_without_colons() {
        assert!(remote_type("deploy").is_ok());
        assert!(remote_type("v2.1-rc_3").is_ok());
        for bad in ["", "a b", "a:b", "a\nb", "tab\there"] {
            let e = remote_type(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{bad:?}");
            assert!(e.error.starts_with("type: "), "{}", e.error);
        }
    }
}
