//! Every process and its output buffers; name look-up; start order, the shutdown sequence and
//! the application of a new configuration. Pure: inputs go through the lifecycle machine and
//! the resulting actions are queued in `actions` for the event loop to perform.
//!
//! No recursion: what an input leads to (a held start released, a dependent stopped, an
//! update's pending removal, the shutdown's next stop) is queued as [`Work`] and drained in one
//! loop by the public entry point that took the input, as quinn-proto drains its own events.

#![deny(clippy::indexing_slicing)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use crate::config::{Config, Kind, ProcessSpec};
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
    pub spec: std::sync::Arc<ProcessSpec>,
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
    /// An event listener's process, spawned and not gone: where it is in the protocol. The
    /// loop keeps it as its pool says.
    pub listener_state: Option<crate::events::listener::ListenerState>,
}

impl Entry {
    /// A socket program that listens and waits for nothing but its first connection: as
    /// started as it gets until a client comes (systemd's socket unit is active then).
    pub fn listening(&self) -> bool {
        self.spec.kind == Kind::Socket
            && self.proc.state == State::Starting
            && self.proc.held
            && self.waiting_for.iter().all(|w| w.starts_with(CONNECTION))
    }

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
    /// Look-ups that would otherwise scan every process: see [`deps::Index`].
    index: deps::Index,
    next_id: ProcId,
    /// Actions for the event loop, in order.
    pub actions: VecDeque<(ProcId, Action)>,
    /// What the supervisor still has to do for itself: drained in a loop by each public entry
    /// point, so that one input's consequences never recurse into another's.
    work: VecDeque<Work>,
    /// Shutdown began.
    shutdown: bool,
    /// Processes that reached a final state since the event loop last looked.
    pub changed: Vec<ProcId>,
    /// What is left of the shutdown.
    plan: shutdown::Plan,
    /// Processes whose pending spawn is an automatic restart, which the event loop performs
    /// ahead of the spawns of a large start.
    urgent: HashSet<ProcId>,
    /// A `critical` process exited on its own or could not be started: what happened
    /// (`main exited with status 3`) and the status, which becomes Kahi's. The event loop
    /// begins the shutdown.
    pub critical_exit: Option<(String, i32)>,
    /// Groups that came to be (true) or ceased to be (false: their last process was
    /// forgotten), in order, for PROCESS_GROUP_ADDED / _REMOVED; taken by the event loop.
    pub groups_changed: Vec<(String, bool)>,
    /// The settings of processes forgotten while the actions they left are still to be
    /// performed (a process removed by an update is forgotten as it reaches STOPPED): the
    /// event loop tells of that change from here, then clears it.
    pub forgotten: HashMap<ProcId, std::sync::Arc<ProcessSpec>>,
    /// Held starts whose `waiting_for` changed (to nothing: their dependencies are met), for
    /// KAHI_DEPENDENCY; taken by the event loop.
    pub waits_changed: Vec<ProcId>,
}

/// One piece of the supervisor's own work.
#[derive(Debug)]
enum Work {
    /// Feed an input to a process's machine.
    Input(ProcId, Input),
    /// A start asked for (at boot, by an operator, by an update): held, it also starts what
    /// it depends on.
    StartAsked(ProcId),
    /// A held start: see whether what it waits for is there now.
    Recheck(ProcId),
}

/// How a socket program's wait for its first connection begins in `waiting_for`.
pub const CONNECTION: &str = "a connection on";

impl Supervisor {
    pub fn new(config: Config) -> Supervisor {
        let mut s = Supervisor {
            entries: HashMap::new(),
            order: Vec::new(),
            by_pid: HashMap::new(),
            index: deps::Index::default(),
            next_id: 1,
            actions: VecDeque::new(),
            work: VecDeque::new(),
            shutdown: false,
            changed: Vec::new(),
            plan: Default::default(),
            urgent: Default::default(),
            critical_exit: None,
            groups_changed: Vec::new(),
            forgotten: HashMap::new(),
            waits_changed: Vec::new(),
            config,
        };
        // One clone at a time (a whole copy of the list first took 5 MiB more at 10,000).
        let mut next = 0;
        while let Some(spec) = s.config.processes.get(next).cloned() {
            s.add(spec);
            next += 1;
        }
        s.sort();
        // The groups at start, in start order (supervisord adds them by priority).
        let mut seen = std::collections::HashSet::new();
        let groups: Vec<(String, bool)> = (s.iter())
            .filter(|e| seen.insert(e.spec.group.as_str()))
            .map(|e| (e.spec.group.clone(), true))
            .collect();
        s.groups_changed = groups;
        s
    }

    fn add(&mut self, spec: ProcessSpec) -> ProcId {
        let id = self.next_id;
        self.next_id += 1;
        if self.index.insert(id, &spec) {
            self.groups_changed.push((spec.group.clone(), true));
        }
        let entry = Entry {
            id,
            stdout: Ring::new(spec.stdout_capture_maxbytes),
            stderr: Ring::new(spec.stderr_capture_maxbytes),
            spec: std::sync::Arc::new(spec),
            proc: Proc::default(),
            pending: None,
            waiting_for: Vec::new(),
            restart_when_stopped: false,
            activated: false,
            next_instance: 1,
            stopped_by_operator: false,
            downs: 0,
            listener_state: None,
        };
        self.entries.insert(id, entry);
        id
    }

    /// Forgets `id`: its entry, its place in the start order and in every index.
    fn forget(&mut self, id: ProcId) {
        self.unplace(id);
        if let Some(e) = self.entries.remove(&id) {
            if self.index.remove(id, &e.spec) {
                self.groups_changed.push((e.spec.group.clone(), false));
            }
            if let Some(pid) = e.proc.pid {
                self.by_pid.remove(&pid);
            }
            // Whatever waited "after" it, or for it, looks again.
            self.recheck_dependents(&e.spec.program);
            self.forgotten.insert(id, e.spec);
        }
    }

    /// Where `id` sorts in the start order.
    fn order_key(&self, id: ProcId) -> Option<(i64, &str, &str)> {
        let s = &self.entries.get(&id)?.spec;
        Some((s.priority, s.group.as_str(), s.name.as_str()))
    }

    fn sort(&mut self) {
        let mut order: Vec<ProcId> = self.entries.keys().copied().collect();
        order.sort_by(|a, b| self.order_key(*a).cmp(&self.order_key(*b)));
        self.order = order;
    }

    /// Sorts `ids` into start order.
    fn in_order(&self, mut ids: Vec<ProcId>) -> Vec<ProcId> {
        ids.sort_by(|a, b| self.order_key(*a).cmp(&self.order_key(*b)));
        ids
    }

    /// Puts `id`, added or given a new spec, in its place in the start order: a binary search,
    /// not a sort of the whole order, which made an update that adds many processes quadratic.
    fn place(&mut self, id: ProcId) {
        let Some(key) = self.order_key(id) else { return };
        let at = self.order.partition_point(|o| self.order_key(*o) < Some(key));
        self.order.insert(at, id);
    }

    /// Takes `id` out of the start order (found by a binary search on its current spec).
    fn unplace(&mut self, id: ProcId) {
        let key = self.order_key(id);
        let at = self.order.partition_point(|o| self.order_key(*o) < key);
        let i = if self.order.get(at) == Some(&id) {
            Some(at)
        } else {
            self.order.iter().position(|o| *o == id)
        };
        if let Some(i) = i {
            self.order.remove(i);
        }
    }

    /// Every process in start order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.order.iter().filter_map(|id| self.entries.get(id))
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

    /// Feeds one input to one process, and does all that follows from it; the actions are
    /// queued in `actions`.
    pub fn input(&mut self, id: ProcId, input: Input, now: Instant) {
        self.work.push_back(Work::Input(id, input));
        self.drain(now);
    }

    /// Does the queued work, and the work that work queues, until none is left. Nothing it
    /// calls drains again: follow-ups are queued, never done by recursion.
    fn drain(&mut self, now: Instant) {
        while let Some(work) = self.work.pop_front() {
            match work {
                Work::Input(id, input) => self.step(id, input, now),
                Work::StartAsked(id) => self.start_asked(id, now),
                Work::Recheck(id) => self.recheck(id),
            }
        }
    }

    /// Feeds one input to one process's machine, queues what it decided, and queues the
    /// supervisor's own follow-ups.
    fn step(&mut self, id: ProcId, input: Input, now: Instant) {
        // What a held start still waits for, when its start timeout fires.
        let waiting_for = match input {
            Input::Timer(TimerKind::StartTimeout, _) => self.unmet_dependencies(id),
            _ => Vec::new(),
        };
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
        let ready_now = matches!(input, Input::Timer(TimerKind::ReadyDelay, _));
        let automatic = matches!(
            input,
            Input::Exited(_) | Input::Timer(TimerKind::Backoff | TimerKind::Restart, _)
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
                    let code = status.code();
                    self.critical_exit =
                        Some((format!("{} exited with status {code}", e.spec.name), code));
                }
                true
            }
            _ => false,
        };
        let was_held = e.proc.held;
        let ctx = machine::Context {
            // A critical exit begins the shutdown: what exited is not restarted either.
            shutting_down: shutting_down || critical,
            waiting_for: &waiting_for,
        };
        let actions = machine::step(&mut e.proc, &e.spec, &ctx, input, now);
        if let Some(pid) = e.proc.pid {
            self.by_pid.insert(pid, id);
        }
        // A critical process that cannot be started (FATAL) ends everything too, with the
        // status a shell gives a command it cannot run.
        if e.spec.critical
            && !shutting_down
            && e.proc.state == State::Fatal
            && self.critical_exit.is_none()
        {
            let code = failed_start_status(e);
            let what = format!("{} could not be started (status {code})", e.spec.name);
            self.critical_exit = Some((what, code));
        }
        let held_now = e.proc.held && !was_held;
        let program = e.spec.program.clone();
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
        e.downs += downs;
        if held_now {
            self.work.push_back(Work::Recheck(id));
        }
        if settled {
            self.changed.push(id);
            self.settle(id);
        }
        if let Some((from, to)) = moved {
            if !self.shutdown {
                self.dependency_moved(id, &program, from, to);
            }
            self.recheck_dependents(&program);
        } else if ready_now || health == Some(machine::Health::Healthy) {
            self.recheck_dependents(&program);
        }
        if health == Some(machine::Health::Unhealthy) && !self.shutdown {
            self.unhealthy(id);
        }
        // A socket program that exited listens again: the next connection starts it.
        if socket && matches!(moved, Some((_, State::Exited))) && !self.shutdown {
            self.work.push_back(Work::Input(id, Input::Start));
        }
    }

    /// A start asked for (at boot, by an operator, by an update): when it has to wait for
    /// its dependencies, those that are down start too, as systemd's Requires= and Wants= do,
    /// unless an operator stopped them. Automatic restarts do not: a dependency that failed
    /// stays down as its own settings say.
    fn start_asked(&mut self, id: ProcId, now: Instant) {
        let was_stopped = self.entries.get(&id).is_some_and(|e| e.proc.state.is_stopped());
        self.step(id, Input::Start, now);
        if was_stopped && self.entries.get(&id).is_some_and(|e| e.proc.held) && !self.shutdown {
            self.start_dependencies(id);
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
        self.work.push_back(Work::StartAsked(id));
        self.drain(now);
    }

    /// A stop asked for by an operator: what depends on it will wait for it rather than
    /// start it again.
    pub fn operator_stop(&mut self, id: ProcId, now: Instant) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.stopped_by_operator = true;
        }
        self.input(id, Input::Stop, now);
    }

    /// A new instance of the `accept = true` program `template`, for one connection: named
    /// `NAME@N` in the program's group, started at once, run once (never restarted), and
    /// removed by [`Supervisor::remove_instance`] once it is down.
    pub fn add_instance(&mut self, template: ProcId, now: Instant) -> Option<ProcId> {
        let t = self.entries.get_mut(&template)?;
        let n = t.next_instance;
        t.next_instance += 1;
        let mut spec = ProcessSpec::clone(&t.spec);
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
            self.forget(id);
        }
        down
    }

    /// Starts every autostart process, in priority order.
    pub fn start_autostart(&mut self, now: Instant) {
        for id in self.order.clone() {
            if self.entries.get(&id).is_some_and(|e| e.spec.autostart) {
                self.work.push_back(Work::StartAsked(id));
                self.drain(now);
            }
        }
    }

    /// Nothing of it runs, and nothing needs a stop (true when it is not there at all).
    fn is_down(&self, id: ProcId) -> bool {
        self.entries.get(&id).is_none_or(|e| {
            e.proc.pid.is_none()
                && !matches!(
                    e.proc.state,
                    State::Starting | State::Running | State::Backoff | State::Stopping
                )
        })
    }

    /// Whether any process had to be SIGKILLed while stopping.
    pub fn any_killed(&self) -> bool {
        self.entries.values().any(|e| e.proc.killed)
    }

    /// Looks names up the way supervisorctl does: `all`, `GROUP:*`, `GROUP:NAME`, a namespec, a
    /// process name, or a group name (meaning its every process). Each name gives its ids, in
    /// start order, or None when it matches nothing. By the name index: a client polling one
    /// name's status costs nothing like a scan of 10,000 processes.
    pub fn resolve(&self, name: &str) -> Option<Vec<ProcId>> {
        let ids: Vec<ProcId> = if name == "all" {
            self.order.clone()
        } else if let Some((group, proc)) = name.split_once(':') {
            if proc == "*" || proc.is_empty() {
                self.in_order(self.index.group(group).collect())
            } else {
                let named = self.index.named(proc);
                let ids =
                    named.filter(|id| self.entries.get(id).is_some_and(|e| e.spec.group == group));
                self.in_order(ids.collect())
            }
        } else {
            let by_name: Vec<ProcId> = self.index.named(name).collect();
            let ids = if by_name.is_empty() { self.index.group(name).collect() } else { by_name };
            self.in_order(ids)
        };
        if ids.is_empty() { None } else { Some(ids) }
    }
}

mod deps;
mod shutdown;
// A test that indexes out of range fails, as it should: the lint is for the daemon's paths.
#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests;
mod update;
pub use update::GroupError;

/// The exit status a shell gives a command it cannot run, for a critical process that could
/// not be started: 127 not found, 126 not executable, else 1 (a directory, a user, a limit,
/// dependencies that never came).
fn failed_start_status(e: &Entry) -> i32 {
    use nix::errno::Errno;
    let command = e.spec.argv.first().map_or("", String::as_str);
    let error = e.proc.spawn_error.as_deref().unwrap_or("");
    match crate::process::spawn_errno(error, command) {
        Some(Errno::ENOENT) => 127,
        Some(Errno::EACCES | Errno::ENOEXEC) => 126,
        _ => 1,
    }
}
