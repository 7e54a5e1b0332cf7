//! Dependencies between processes: what a held start waits for, when it may go on, what a
//! dependency's failure does to what depends on it; and the indexes that keep each of these
//! to the processes concerned (by name, group and program, and who waits on which program),
//! so that a state change costs its own dependents, not a scan of every process. Pure.

use std::collections::{BTreeSet, HashMap};

use super::{CONNECTION, ProcId, Supervisor, Work};
use crate::config::{Condition, Kind, OnFailure, ProcessSpec};
use crate::process::State;
use crate::process::machine::{self, Action, Input};

/// Processes by process name, group and program, and by the programs they wait for.
/// Maintained as processes are added, removed and given new specs.
#[derive(Debug, Default)]
pub(super) struct Index {
    names: HashMap<String, BTreeSet<ProcId>>,
    groups: HashMap<String, BTreeSet<ProcId>>,
    programs: HashMap<String, BTreeSet<ProcId>>,
    /// Program -> the processes whose depends_on or after names it.
    dependents: HashMap<String, BTreeSet<ProcId>>,
}

fn put(map: &mut HashMap<String, BTreeSet<ProcId>>, key: &str, id: ProcId) {
    map.entry(key.to_string()).or_default().insert(id);
}

fn take(map: &mut HashMap<String, BTreeSet<ProcId>>, key: &str, id: ProcId) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

fn of<'a>(
    map: &'a HashMap<String, BTreeSet<ProcId>>,
    key: &str,
) -> impl Iterator<Item = ProcId> + 'a {
    map.get(key).into_iter().flatten().copied()
}

/// The programs `spec` waits for: its depends_on and after.
fn awaited(spec: &ProcessSpec) -> impl Iterator<Item = &str> {
    spec.deps.iter().map(|d| d.program.as_str()).chain(spec.after.iter().map(String::as_str))
}

impl Index {
    /// Indexes a process; true when its group is new.
    pub(super) fn insert(&mut self, id: ProcId, spec: &ProcessSpec) -> bool {
        let new_group = !self.groups.contains_key(&spec.group);
        put(&mut self.names, &spec.name, id);
        put(&mut self.groups, &spec.group, id);
        put(&mut self.programs, &spec.program, id);
        for program in awaited(spec) {
            put(&mut self.dependents, program, id);
        }
        new_group
    }

    /// Takes a process out of the index; true when its group is left empty.
    pub(super) fn remove(&mut self, id: ProcId, spec: &ProcessSpec) -> bool {
        take(&mut self.names, &spec.name, id);
        take(&mut self.groups, &spec.group, id);
        take(&mut self.programs, &spec.program, id);
        for program in awaited(spec) {
            take(&mut self.dependents, program, id);
        }
        !self.groups.contains_key(&spec.group)
    }

    /// The processes named `name` (in any group).
    pub(super) fn named(&self, name: &str) -> impl Iterator<Item = ProcId> + '_ {
        of(&self.names, name)
    }

    pub(super) fn group(&self, group: &str) -> impl Iterator<Item = ProcId> + '_ {
        of(&self.groups, group)
    }

    pub(super) fn program(&self, program: &str) -> impl Iterator<Item = ProcId> + '_ {
        of(&self.programs, program)
    }

    pub(super) fn dependents(&self, program: &str) -> impl Iterator<Item = ProcId> + '_ {
        of(&self.dependents, program)
    }
}

impl Supervisor {
    /// A start of `id` waits for its dependencies: those that are down start too, as
    /// systemd's Requires= and Wants= do, unless an operator stopped them.
    pub(super) fn start_dependencies(&mut self, id: ProcId) {
        let Some(e) = self.entries.get(&id) else { return };
        let name = e.spec.namespec();
        let down: Vec<ProcId> = e
            .spec
            .deps
            .iter()
            .flat_map(|d| self.index.program(&d.program))
            .filter(|o| {
                self.entries.get(o).is_some_and(|dep| {
                    dep.proc.state.is_stopped() && !dep.proc.completed && !dep.stopped_by_operator
                })
            })
            .collect();
        let mut down = self.in_order(down);
        down.dedup();
        for dep in down {
            let Some(d) = self.entries.get(&dep) else { continue };
            let line = format!("{name}: starting {}, which it depends on", d.spec.namespec());
            self.actions.push_back((id, Action::Log(log::Level::Info, line)));
            self.work.push_back(Work::StartAsked(dep));
        }
    }

    /// A connection arrived on the sockets of `id`: start it if it waits for one.
    pub fn activate(&mut self, id: ProcId, now: std::time::Instant) {
        if let Some(e) = self.entries.get_mut(&id)
            && e.proc.held
            && !e.activated
        {
            e.activated = true;
            self.work.push_back(Work::Recheck(id));
            self.drain(now);
        }
    }

    /// What a process waits for before it may spawn, as `db (started)`; empty when nothing.
    pub(super) fn unmet(&self, id: ProcId) -> Vec<String> {
        let Some(e) = self.entries.get(&id) else { return Vec::new() };
        let mut unmet = Vec::new();
        for d in &e.spec.deps {
            let mut them = self.index.program(&d.program).filter_map(|o| self.entries.get(&o));
            let mut any = false;
            let met = them.all(|o| {
                any = true;
                match d.condition {
                    Condition::Started => o.proc.state == State::Running && o.proc.ready,
                    Condition::Healthy => {
                        o.proc.state == State::Running
                            && o.proc.ready
                            && (o.spec.healthcheck.is_none()
                                || o.proc.health == Some(machine::Health::Healthy))
                    }
                    Condition::Completed => o.proc.completed && o.proc.pid.is_none(),
                }
            });
            if !(met && any) {
                let stopped = self.index.program(&d.program).any(|o| {
                    self.entries
                        .get(&o)
                        .is_some_and(|o| o.stopped_by_operator && o.proc.state.is_stopped())
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
            let starting = self.index.program(a).any(|o| {
                self.entries
                    .get(&o)
                    .is_some_and(|o| matches!(o.proc.state, State::Starting | State::Backoff))
            });
            if starting {
                unmet.push(format!("{a} (after)"));
            }
        }
        unmet
    }

    /// What `id` waits for among other programs (not a connection): what a start timeout
    /// gives it up for.
    pub(super) fn unmet_dependencies(&self, id: ProcId) -> Vec<String> {
        let mut unmet = self.unmet(id);
        unmet.retain(|u| !u.starts_with(CONNECTION));
        unmet
    }

    /// A held start whose dependencies are now met goes on; one that still waits records
    /// for what.
    pub(super) fn recheck(&mut self, id: ProcId) {
        if !self.entries.get(&id).is_some_and(|e| e.proc.held) {
            return;
        }
        let unmet = self.unmet(id);
        let Some(e) = self.entries.get_mut(&id) else { return };
        let met = unmet.is_empty();
        if e.waiting_for != unmet {
            self.waits_changed.push(id);
        }
        e.waiting_for = unmet;
        if met {
            self.work.push_back(Work::Input(id, Input::Release));
        }
    }

    /// A process of `program` moved: the held starts that wait for it look again (only
    /// those, by the dependents index).
    pub(super) fn recheck_dependents(&mut self, program: &str) {
        let held: Vec<ProcId> = self
            .index
            .dependents(program)
            .filter(|d| self.entries.get(d).is_some_and(|e| e.proc.held))
            .collect();
        self.work.extend(held.into_iter().map(Work::Recheck));
    }

    /// A process became unhealthy: its health check's on_failure says what it gets.
    pub(super) fn unhealthy(&mut self, id: ProcId) {
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
        self.work.push_back(Work::Input(id, Input::Stop));
    }

    /// A process of `program` changed state: the processes that depend on it react as their
    /// on_dependency_failure says when it failed or was stopped.
    pub(super) fn dependency_moved(&mut self, id: ProcId, program: &str, from: State, to: State) {
        let Some(e) = self.entries.get(&id) else { return };
        let was_up = matches!(from, State::Running | State::Starting | State::Stopping);
        let completed = e.spec.kind == Kind::Oneshot && e.proc.completed;
        let failed = was_up
            && !completed
            && matches!(to, State::Stopped | State::Fatal | State::Backoff | State::Exited);
        if !failed {
            return;
        }
        let name = e.spec.namespec();
        let dependents: Vec<ProcId> = self.index.dependents(program).collect();
        for d in self.in_order(dependents) {
            let Some(de) = self.entries.get_mut(&d) else { continue };
            let Some(dep) = de.spec.deps.iter().find(|x| x.program == program) else { continue };
            let up = matches!(de.proc.state, State::Running | State::Starting | State::Backoff)
                && !de.proc.held;
            if !up || dep.on_failure == OnFailure::Ignore {
                continue;
            }
            let how = dep.on_failure;
            let verb = if how == OnFailure::Restart { "restarting" } else { "stopping" };
            let line =
                format!("{}: {verb} it, as {name} it depends on is {to}", de.spec.namespec());
            de.restart_when_stopped = how == OnFailure::Restart;
            self.actions.push_back((d, Action::Log(log::Level::Info, line)));
            self.work.push_back(Work::Input(d, Input::Stop));
        }
    }
}
