//! Every process and its output buffers; name look-up; start order, the shutdown sequence and
//! the application of a new configuration. Pure: inputs go through the lifecycle machine and
//! the resulting actions are queued in `actions` for the event loop to perform.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use crate::config::{Condition, Config, Kind, OnFailure, ProcessSpec};
use crate::logs::ring::Ring;
use crate::process::State;
use crate::process::machine::{self, Action, Input, Proc, TimerKind};

/// A process's identity for as long as it is configured. Never reused.
pub type ProcId = u64;

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One configured process.
#[derive(Debug)]
pub struct Entry {
    pub id: ProcId,
    pub spec: ProcessSpec,
    pub proc: Proc,
    pub stdout: Ring,
    pub stderr: Ring,
    /// What to do once it has stopped, for `update`.
    pending: Option<Pending>,
    /// While its start is held: the dependencies it waits for, as `db (started)`.
    pub waiting_for: Vec<String>,
    /// Start it again once it has stopped (a dependency failed, on_dependency_failure =
    /// "restart").
    restart_when_stopped: bool,
    /// A socket program: a connection came in since its start was held.
    activated: bool,
    /// An `accept = true` program: the number of its next instance.
    next_instance: u64,
    /// An operator stopped it (and has not started it since): what depends on it waits
    /// rather than start it.
    pub stopped_by_operator: bool,
    /// Times it went down (to STOPPED, EXITED or FATAL): a waiting stop is answered even when
    /// an update started it again in the meantime.
    pub downs: u64,
}

impl Entry {
    pub fn ring(&self, stream: Stream) -> &Ring {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }

    pub fn ring_mut(&mut self, stream: Stream) -> &mut Ring {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }
}

#[derive(Debug)]
enum Pending {
    Remove,
    Replace(Box<ProcessSpec>),
}

/// What `reread` found.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

pub struct Supervisor {
    pub config: Config,
    entries: HashMap<ProcId, Entry>,
    /// Start order: (priority, group, name).
    order: Vec<ProcId>,
    by_pid: HashMap<i32, ProcId>,
    next_id: ProcId,
    /// Actions for the event loop, in order.
    pub actions: VecDeque<(ProcId, Action)>,
    /// Shutdown began.
    shutdown: bool,
    /// Releasing held starts (no re-entry).
    releasing: bool,
    /// Processes whose start is held, in the order they were held.
    held: Vec<ProcId>,
    /// Processes that reached a final state since the event loop last looked.
    pub changed: Vec<ProcId>,
    /// What is left of the shutdown.
    plan: shutdown::Plan,
    /// Processes whose pending spawn is an automatic restart, which the event loop performs
    /// ahead of the spawns of a large start.
    urgent: std::collections::HashSet<ProcId>,
    /// A `critical` process exited on its own: its name and exit status, which become
    /// Kahi's. The event loop begins the shutdown.
    pub critical_exit: Option<(String, i32)>,
}

/// How a socket program's wait for its first connection begins in `waiting_for`.
pub const CONNECTION: &str = "a connection on";

impl Supervisor {
    pub fn new(config: Config) -> Supervisor {
        let mut s = Supervisor {
            entries: HashMap::new(),
            order: Vec::new(),
            by_pid: HashMap::new(),
            next_id: 1,
            actions: VecDeque::new(),
            shutdown: false,
            releasing: false,
            held: Vec::new(),
            changed: Vec::new(),
            plan: Default::default(),
            urgent: Default::default(),
            critical_exit: None,
            config: Config { processes: Vec::new(), ..config.clone() },
        };
        for spec in config.processes.iter().cloned() {
            s.add(spec);
        }
        s.sort();
        s.config = config;
        s
    }

    fn add(&mut self, spec: ProcessSpec) -> ProcId {
        let id = self.next_id;
        self.next_id += 1;
        let entry = Entry {
            id,
            stdout: Ring::new(spec.stdout_capture_maxbytes),
            stderr: Ring::new(spec.stderr_capture_maxbytes),
            spec,
            proc: Proc::default(),
            pending: None,
            waiting_for: Vec::new(),
            restart_when_stopped: false,
            activated: false,
            next_instance: 1,
            stopped_by_operator: false,
            downs: 0,
        };
        self.entries.insert(id, entry);
        id
    }

    fn sort(&mut self) {
        let mut order: Vec<ProcId> = self.entries.keys().copied().collect();
        order.sort_by(|a, b| {
            let (a, b) = (&self.entries[a].spec, &self.entries[b].spec);
            (a.priority, &a.group, &a.name).cmp(&(b.priority, &b.group, &b.name))
        });
        self.order = order;
    }

    /// Puts `id`, added or given a new spec, in its place in the start order: a binary search,
    /// not a sort of the whole order, which made an update that adds many processes quadratic.
    fn place(&mut self, id: ProcId) {
        let Some(e) = self.entries.get(&id) else { return };
        let key = (e.spec.priority, &e.spec.group, &e.spec.name);
        let at = self.order.partition_point(|o| {
            let s = &self.entries[o].spec;
            (s.priority, &s.group, &s.name) < key
        });
        self.order.insert(at, id);
    }

    /// Takes `id` out of the start order.
    fn unplace(&mut self, id: ProcId) {
        if let Some(i) = self.order.iter().position(|o| *o == id) {
            self.order.remove(i);
        }
    }

    /// Every process in start order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.order.iter().map(|id| &self.entries[id])
    }

    pub fn get(&self, id: ProcId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    pub fn get_mut(&mut self, id: ProcId) -> Option<&mut Entry> {
        self.entries.get_mut(&id)
    }

    pub fn by_pid(&self, pid: i32) -> Option<ProcId> {
        self.by_pid.get(&pid).copied()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown
    }

    /// Feeds one input to one process and queues what it decided.
    pub fn input(&mut self, id: ProcId, input: Input, now: Instant) {
        let shutting_down = self.shutdown;
        let Some(e) = self.entries.get_mut(&id) else { return };
        // A program that waits for others starts held; it spawns once they are ready.
        // A socket program waits for its first connection too.
        let socket = e.spec.kind == Kind::Socket;
        let input = match input {
            Input::Start if socket || !e.spec.deps.is_empty() || !e.spec.after.is_empty() => {
                if e.proc.state.is_stopped() {
                    e.activated = false;
                }
                Input::StartHeld
            }
            other => other,
        };
        let ready_now = input == Input::Timer(TimerKind::ReadyDelay);
        let automatic = matches!(
            input,
            Input::Exited(_) | Input::Timer(TimerKind::Backoff | TimerKind::Restart)
        );
        if let (Input::Exited(_), Some(pid)) = (&input, e.proc.pid) {
            self.by_pid.remove(&pid);
        }
        // A critical process that exits unasked ends everything; the first one's status wins.
        let critical = match input {
            Input::Exited(status)
                if e.spec.critical && !shutting_down && e.proc.state != State::Stopping =>
            {
                if self.critical_exit.is_none() {
                    self.critical_exit = Some((e.spec.name.clone(), status.code()));
                }
                true
            }
            _ => false,
        };
        // No automatic restarts while shutting down, as supervisord: stop what exits.
        let autorestart = e.spec.autorestart;
        if shutting_down || critical {
            e.spec.autorestart = crate::config::AutoRestart::Never;
        }
        let actions = machine::step(&mut e.proc, &e.spec, input, now);
        e.spec.autorestart = autorestart;
        if let Some(pid) = e.proc.pid {
            self.by_pid.insert(pid, id);
        }
        let held = e.proc.held;
        match self.held.iter().position(|h| *h == id) {
            Some(i) if !held => {
                self.held.remove(i);
            }
            None if held => self.held.push(id),
            _ => {}
        }
        let mut settled = false;
        let mut moved = None;
        let mut downs = 0;
        let mut health = None;
        for a in actions {
            if let Action::Changed { from, to, .. } = a {
                settled |= !matches!(to, State::Starting | State::Stopping);
                moved = Some((from, to));
                downs += u64::from(to.is_stopped());
            }
            if let Action::HealthChanged(h) = a {
                health = Some(h);
            }
            if automatic && a == Action::Spawn {
                self.urgent.insert(id);
            }
            self.actions.push_back((id, a));
        }
        if let Some(e) = self.entries.get_mut(&id) {
            e.downs += downs;
        }
        if settled {
            self.changed.push(id);
            self.settle(id, now);
        }
        if let Some((from, to)) = moved {
            if !self.shutdown {
                self.dependency_moved(id, from, to, now);
            }
            self.release_ready(now);
        } else if ready_now || health == Some(machine::Health::Healthy) {
            self.release_ready(now);
        }
        if health == Some(machine::Health::Unhealthy) && !self.shutdown {
            self.unhealthy(id, now);
        }
        // A socket program that exited listens again: the next connection starts it.
        if socket && matches!(moved, Some((_, State::Exited))) && !self.shutdown {
            self.input(id, Input::Start, now);
        }
    }

    /// A start asked for (at boot, by an operator, by an update): when it has to wait for
    /// its dependencies, those that are down start too, as systemd's Requires= and Wants= do,
    /// unless an operator stopped them. Automatic restarts do not: a dependency that failed
    /// stays down as its own settings say.
    fn start_asked(&mut self, id: ProcId, now: Instant) {
        let was_stopped = self.entries.get(&id).is_some_and(|e| e.proc.state.is_stopped());
        self.input(id, Input::Start, now);
        if was_stopped && self.entries.get(&id).is_some_and(|e| e.proc.held) && !self.shutdown {
            self.start_dependencies(id, now);
        }
    }

    /// Whether the spawn asked for `id` is an automatic restart (and forgets it).
    pub fn take_urgent(&mut self, id: ProcId) -> bool {
        self.urgent.remove(&id)
    }

    /// A start asked for by an operator (kahi ctl, the API): it also forgets an operator's
    /// stop.
    pub fn operator_start(&mut self, id: ProcId, now: Instant) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.stopped_by_operator = false;
        }
        self.start_asked(id, now);
    }

    /// A stop asked for by an operator: what depends on it will wait for it rather than
    /// start it again.
    pub fn operator_stop(&mut self, id: ProcId, now: Instant) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.stopped_by_operator = true;
        }
        self.input(id, Input::Stop, now);
    }

    /// A start of `id` waits for its dependencies: those that are down start too, as
    /// systemd's Requires= and Wants= do, unless an operator stopped them.
    fn start_dependencies(&mut self, id: ProcId, now: Instant) {
        let Some(e) = self.entries.get(&id) else { return };
        let name = e.spec.namespec();
        let programs: Vec<&str> = e.spec.deps.iter().map(|d| d.program.as_str()).collect();
        let down: Vec<ProcId> = self
            .order
            .iter()
            .copied()
            .filter(|o| {
                let dep = &self.entries[o];
                programs.contains(&dep.spec.program.as_str())
                    && dep.proc.state.is_stopped()
                    && !dep.proc.completed
                    && !dep.stopped_by_operator
            })
            .collect();
        for dep in down {
            let Some(d) = self.entries.get(&dep) else { continue };
            let line = format!("{name}: starting {}, which it depends on", d.spec.namespec());
            self.actions.push_back((id, Action::Log(log::Level::Info, line)));
            self.start_asked(dep, now);
        }
    }

    /// A new instance of the `accept = true` program `template`, for one connection: named
    /// `NAME@N` in the program's group, started at once, run once (never restarted), and
    /// removed by [`Supervisor::remove_instance`] once it is down.
    pub fn add_instance(&mut self, template: ProcId, now: Instant) -> Option<ProcId> {
        let t = self.entries.get_mut(&template)?;
        let n = t.next_instance;
        t.next_instance += 1;
        let mut spec = t.spec.clone();
        spec.instance_of = Some(t.spec.namespec());
        spec.name = format!("{}@{n}", t.spec.name);
        spec.kind = Kind::Simple;
        spec.accept = false;
        spec.listen.clear();
        spec.deps.clear();
        spec.after.clear();
        spec.autostart = false;
        spec.autorestart = crate::config::AutoRestart::Never;
        spec.startsecs = std::time::Duration::ZERO;
        spec.start_delay = std::time::Duration::ZERO;
        spec.healthcheck = None;
        spec.critical = false;
        spec.stdin_pipe = false;
        // Many at once: their output stays in memory (and the console, syslog), not in files
        // they would all share.
        spec.stdout_log = None;
        spec.stderr_log = None;
        let id = self.add(spec);
        self.place(id);
        self.input(id, Input::Start, now);
        Some(id)
    }

    /// How many instances of the program `template` (a process name) are not yet removed.
    pub fn instances(&self, template: &str) -> usize {
        self.entries.values().filter(|e| e.spec.instance_of.as_deref() == Some(template)).count()
    }

    /// Removes an instance that is down; false when it is not (yet).
    pub fn remove_instance(&mut self, id: ProcId) -> bool {
        let down =
            self.entries.get(&id).is_some_and(|e| e.spec.instance_of.is_some()) && self.is_down(id);
        if down {
            self.entries.remove(&id);
            self.unplace(id);
        }
        down
    }

    /// A connection arrived on the sockets of `id`: start it if it waits for one.
    pub fn activate(&mut self, id: ProcId, now: Instant) {
        if let Some(e) = self.entries.get_mut(&id)
            && e.proc.held
            && !e.activated
        {
            e.activated = true;
            self.release_ready(now);
        }
    }

    /// What a process waits for before it may spawn, as `db (started)`; empty when nothing.
    fn unmet(&self, id: ProcId) -> Vec<String> {
        let Some(e) = self.entries.get(&id) else { return Vec::new() };
        let mut unmet = Vec::new();
        for d in &e.spec.deps {
            let mut them = self.entries.values().filter(|o| o.spec.program == d.program).peekable();
            let met = them.peek().is_some()
                && them.all(|o| match d.condition {
                    Condition::Started => o.proc.state == State::Running && o.proc.ready,
                    Condition::Healthy => {
                        o.proc.state == State::Running
                            && o.proc.ready
                            && (o.spec.healthcheck.is_none()
                                || o.proc.health == Some(machine::Health::Healthy))
                    }
                    Condition::Completed => o.proc.completed && o.proc.pid.is_none(),
                });
            if !met {
                let stopped = self.entries.values().any(|o| {
                    o.spec.program == d.program
                        && o.stopped_by_operator
                        && o.proc.state.is_stopped()
                });
                let why = if stopped { "stopped by operator" } else { d.condition.name() };
                unmet.push(format!("{} ({why})", d.program));
            }
        }
        if e.spec.kind == Kind::Socket && !e.activated {
            let on: Vec<String> = e.spec.listen.iter().map(|l| l.to_string()).collect();
            unmet.push(format!("{CONNECTION} {}", on.join(", ")));
        }
        for a in &e.spec.after {
            // Ordering only: wait while it is on its way up, not when nobody starts it.
            let starting = self.entries.values().any(|o| {
                o.spec.program == *a && matches!(o.proc.state, State::Starting | State::Backoff)
            });
            if starting {
                unmet.push(format!("{a} (after)"));
            }
        }
        unmet
    }

    /// Lets every held start whose dependencies are now met go on, and records what the
    /// others wait for.
    fn release_ready(&mut self, now: Instant) {
        if self.releasing || self.held.is_empty() {
            return;
        }
        self.releasing = true;
        loop {
            let held: Vec<ProcId> = self
                .held
                .iter()
                .copied()
                .filter(|id| self.entries.get(id).is_some_and(|e| e.proc.held))
                .collect();
            let mut released = false;
            for id in held {
                let unmet = self.unmet(id);
                if let Some(e) = self.entries.get_mut(&id) {
                    if unmet.is_empty() {
                        e.waiting_for.clear();
                    } else {
                        e.waiting_for = unmet;
                        continue;
                    }
                }
                self.input(id, Input::Release, now);
                released = true;
            }
            if !released {
                break;
            }
        }
        self.releasing = false;
    }

    /// A process became unhealthy: its health check's on_failure says what it gets.
    fn unhealthy(&mut self, id: ProcId, now: Instant) {
        let Some(e) = self.entries.get_mut(&id) else { return };
        let Some(how) = e.spec.healthcheck.as_ref().map(|h| h.on_failure) else { return };
        let name = e.spec.namespec();
        let verb = match how {
            crate::config::HealthAction::None => return,
            crate::config::HealthAction::Restart => "restarting",
            crate::config::HealthAction::Stop => "stopping",
        };
        e.restart_when_stopped = how == crate::config::HealthAction::Restart;
        self.actions.push_back((
            id,
            Action::Log(
                log::Level::Info,
                format!("{name}: {verb} it, as its health check says (on_failure)"),
            ),
        ));
        self.input(id, Input::Stop, now);
    }

    /// A process changed state: the programs that depend on its program react as their
    /// on_dependency_failure says when it failed or was stopped.
    fn dependency_moved(&mut self, id: ProcId, from: State, to: State, now: Instant) {
        let Some(e) = self.entries.get(&id) else { return };
        let was_up = matches!(from, State::Running | State::Starting | State::Stopping);
        let completed = e.spec.kind == Kind::Oneshot && e.proc.completed;
        let failed = was_up
            && !completed
            && matches!(to, State::Stopped | State::Fatal | State::Backoff | State::Exited);
        if !failed {
            return;
        }
        let program = e.spec.program.clone();
        let name = e.spec.namespec();
        let dependents: Vec<(ProcId, OnFailure)> = self
            .order
            .iter()
            .filter_map(|d| {
                let de = &self.entries[d];
                let dep = de.spec.deps.iter().find(|x| x.program == program)?;
                let up = matches!(de.proc.state, State::Running | State::Starting | State::Backoff)
                    && !de.proc.held;
                (up && dep.on_failure != OnFailure::Ignore).then_some((*d, dep.on_failure))
            })
            .collect();
        for (d, how) in dependents {
            let Some(de) = self.entries.get_mut(&d) else { continue };
            let verb = if how == OnFailure::Restart { "restarting" } else { "stopping" };
            let line =
                format!("{}: {verb} it, as {name} it depends on is {to}", de.spec.namespec());
            de.restart_when_stopped = how == OnFailure::Restart;
            self.actions.push_back((d, Action::Log(log::Level::Info, line)));
            self.input(d, Input::Stop, now);
        }
    }

    /// A process reached a state that is not transitional: run what `update` left pending,
    /// and move the shutdown along.
    fn settle(&mut self, id: ProcId, now: Instant) {
        let Some(e) = self.entries.get_mut(&id) else { return };
        if e.proc.state.is_stopped() && e.proc.pid.is_none() {
            match e.pending.take() {
                Some(Pending::Remove) => {
                    self.entries.remove(&id);
                    self.unplace(id);
                }
                Some(Pending::Replace(spec)) => {
                    let autostart = spec.autostart;
                    replace_spec(e, *spec);
                    self.unplace(id);
                    self.place(id);
                    if autostart && !self.shutdown {
                        self.start_asked(id, now);
                    }
                }
                None => {}
            }
        }
        // on_dependency_failure = "restart": down now, so up again (held until its
        // dependencies are back).
        if let Some(e) = self.entries.get_mut(&id)
            && e.restart_when_stopped
            && e.proc.state.is_stopped()
            && e.proc.pid.is_none()
        {
            e.restart_when_stopped = false;
            if !self.shutdown {
                self.input(id, Input::Start, now);
            }
        }
        // No retries once shutdown began: a process that just failed to start stays down.
        if self.shutdown && self.entries.get(&id).is_some_and(|e| e.proc.state == State::Backoff) {
            self.input(id, Input::Stop, now);
        }
        self.advance_shutdown(Some(id));
    }

    /// Starts every autostart process, in priority order.
    pub fn start_autostart(&mut self, now: Instant) {
        for id in self.order.clone() {
            if self.entries.get(&id).is_some_and(|e| e.spec.autostart) {
                self.start_asked(id, now);
            }
        }
    }

    /// Nothing of it runs, and nothing needs a stop.
    fn is_down(&self, id: ProcId) -> bool {
        let p = &self.entries[&id].proc;
        p.pid.is_none()
            && !matches!(
                p.state,
                State::Starting | State::Running | State::Backoff | State::Stopping
            )
    }

    /// Whether any process had to be SIGKILLed while stopping.
    pub fn any_killed(&self) -> bool {
        self.entries.values().any(|e| e.proc.killed)
    }

    /// Looks names up the way supervisorctl does: `all`, `GROUP:*`, `GROUP:NAME`, a namespec, a
    /// process name, or a group name (meaning its every process). Each name gives its ids, or
    /// None when it matches nothing.
    pub fn resolve(&self, name: &str) -> Option<Vec<ProcId>> {
        let ids: Vec<ProcId> = if name == "all" {
            self.order.clone()
        } else if let Some((group, proc)) = name.split_once(':') {
            self.order
                .iter()
                .copied()
                .filter(|id| {
                    let s = &self.entries[id].spec;
                    s.group == group && (proc == "*" || proc.is_empty() || s.name == proc)
                })
                .collect()
        } else {
            let by_name: Vec<ProcId> = self
                .order
                .iter()
                .copied()
                .filter(|id| self.entries[id].spec.name == name)
                .collect();
            if by_name.is_empty() {
                self.order
                    .iter()
                    .copied()
                    .filter(|id| self.entries[id].spec.group == name)
                    .collect()
            } else {
                by_name
            }
        };
        if ids.is_empty() { None } else { Some(ids) }
    }

    /// What a new configuration would change, by process namespec.
    pub fn diff(&self, new: &Config) -> Changes {
        let mut changes = Changes::default();
        // (spec, still being removed by an earlier update)
        // Instances of accept programs come and go with connections, not with the file.
        let old: HashMap<String, (&ProcessSpec, bool)> = self
            .entries
            .values()
            .filter(|e| e.spec.instance_of.is_none())
            .map(|e| (e.spec.namespec(), (&e.spec, matches!(e.pending, Some(Pending::Remove)))))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for spec in &new.processes {
            let name = spec.namespec();
            match old.get(&name) {
                None => changes.added.push(name.clone()),
                // Back before its removal finished: it stays, with the new settings.
                Some((o, removing)) if *removing || **o != *spec => {
                    changes.changed.push(name.clone())
                }
                Some(_) => {}
            }
            seen.insert(name);
        }
        let mut removed: Vec<String> = old
            .iter()
            .filter(|(n, (_, removing))| !removing && !seen.contains(*n))
            .map(|(n, _)| n.clone())
            .collect();
        removed.sort();
        changes.removed = removed;
        changes
    }

    /// Applies a new configuration: removed processes are stopped and forgotten, changed ones
    /// stopped and started again with their new settings, added ones started if autostart.
    /// Unchanged processes are not touched.
    pub fn update(&mut self, new: Config, now: Instant) -> Changes {
        let changes = self.diff(&new);
        let by_name: HashMap<String, ProcId> =
            self.entries.values().map(|e| (e.spec.namespec(), e.id)).collect();
        for name in &changes.removed {
            let id = by_name[name];
            if let Some(e) = self.entries.get_mut(&id) {
                e.pending = Some(Pending::Remove);
            }
            self.stop_or_settle(id, now);
        }
        let changed: HashSet<&str> = changes.changed.iter().map(String::as_str).collect();
        let added: HashSet<&str> = changes.added.iter().map(String::as_str).collect();
        for spec in &new.processes {
            let name = spec.namespec();
            if changed.contains(name.as_str()) {
                let id = by_name[&name];
                if let Some(e) = self.entries.get_mut(&id) {
                    e.pending = Some(Pending::Replace(Box::new(spec.clone())));
                }
                self.stop_or_settle(id, now);
            } else if added.contains(name.as_str()) {
                let id = self.add(spec.clone());
                self.place(id);
                if spec.autostart {
                    self.start_asked(id, now);
                }
            }
        }
        self.config = new;
        changes
    }

    fn stop_or_settle(&mut self, id: ProcId, now: Instant) {
        let Some(e) = self.entries.get(&id) else { return };
        if e.proc.pid.is_some() || e.proc.state == State::Backoff {
            self.input(id, Input::Stop, now);
        } else {
            // Nothing runs (STOPPED, EXITED, FATAL): apply now.
            self.settle(id, now);
        }
    }
}

fn replace_spec(e: &mut Entry, spec: ProcessSpec) {
    if spec.stdout_capture_maxbytes != e.stdout.capacity() {
        e.stdout = Ring::new(spec.stdout_capture_maxbytes);
    }
    if spec.stderr_capture_maxbytes != e.stderr.capacity() {
        e.stderr = Ring::new(spec.stderr_capture_maxbytes);
    }
    e.proc.backoff = 0;
    e.spec = spec;
}

mod shutdown;
#[cfg(test)]
mod tests;
