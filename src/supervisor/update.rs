//! A new configuration applied: what it changes (`diff`), and `update`, which stops what is
//! removed or changed and, once each is down, forgets it or starts it again with its new
//! settings (`settle`, which also moves the shutdown along). Pure.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::{Changes, Entry, Pending, ProcId, Supervisor, Work};
use crate::config::{Config, ProcessSpec};
use crate::logs::ring::Ring;
use crate::process::machine::{Input, Proc};

impl Supervisor {
    /// A process reached a state that is not transitional: run what `update` left pending,
    /// and move the shutdown along.
    pub(super) fn settle(&mut self, id: ProcId) {
        let Some(e) = self.entries.get_mut(&id) else { return };
        if e.proc.state.is_stopped() && e.proc.pid.is_none() {
            match e.pending.take() {
                Some(Pending::Remove) => self.forget(id),
                Some(Pending::Replace(spec)) => {
                    let autostart = spec.autostart;
                    self.unplace(id);
                    if let Some(e) = self.entries.get_mut(&id) {
                        let emptied = self.index.remove(id, &e.spec);
                        let new = self.index.insert(id, &spec);
                        // A process moved to another group: the old may be gone, the new
                        // may be new. In the same group, it never ceased to be.
                        if e.spec.group != spec.group {
                            if emptied {
                                self.groups_changed.push((e.spec.group.clone(), false));
                            }
                            if new {
                                self.groups_changed.push((spec.group.clone(), true));
                            }
                        }
                        replace_spec(e, *spec);
                    }
                    self.place(id);
                    if autostart && !self.shutdown {
                        self.work.push_back(Work::StartAsked(id));
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
                self.work.push_back(Work::Input(id, Input::Start));
            }
        }
        self.advance_shutdown(Some(id));
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
            .map(|e| (e.spec.namespec(), (&*e.spec, matches!(e.pending, Some(Pending::Remove)))))
            .collect();
        let mut seen = HashSet::new();
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

    /// What `changes` (of [`Supervisor::diff`]) are to whole groups, as supervisord's
    /// reloadConfig reports them, [added, changed, removed]: a group with no process yet is
    /// added, one that loses every process is removed, and one that keeps some while it gains,
    /// loses or changes any (a new numprocs) is changed, which supervisorctl's update makes
    /// anew.
    pub fn group_changes(&self, changes: &Changes) -> [Vec<String>; 3] {
        let group = |n: &str| n.split_once(':').map_or(n, |(g, _)| g).to_string();
        let mut had: HashMap<&str, usize> = HashMap::new();
        for e in self.entries.values().filter(|e| e.spec.instance_of.is_none()) {
            *had.entry(e.spec.group.as_str()).or_default() += 1;
        }
        let mut gone: HashMap<String, usize> = HashMap::new();
        for n in &changes.removed {
            *gone.entry(group(n)).or_default() += 1;
        }
        let gains: HashSet<String> = changes.added.iter().map(|n| group(n)).collect();
        let touched: std::collections::BTreeSet<String> = changes
            .added
            .iter()
            .chain(&changes.changed)
            .chain(&changes.removed)
            .map(|n| group(n))
            .collect();
        let [mut added, mut changed, mut removed] = <[Vec<String>; 3]>::default();
        for g in touched {
            match had.get(g.as_str()).copied().unwrap_or(0) {
                0 => added.push(g),
                n if gone.get(&g) == Some(&n) && !gains.contains(&g) => removed.push(g),
                _ => changed.push(g),
            }
        }
        [added, changed, removed]
    }

    /// Applies a new configuration: removed processes are stopped and forgotten, changed ones
    /// stopped and started again with their new settings, added ones started if autostart.
    /// Unchanged processes are not touched.
    pub fn update(&mut self, new: Config, now: Instant) -> Changes {
        self.apply(new, now, false)
    }

    /// supervisord's restart (supervisorctl's `reload`): a new configuration applied as
    /// `update` applies it, with every process that stays counted as changed, so that each is
    /// stopped and started again (if autostart) with its settings from the file.
    pub fn reload(&mut self, new: Config, now: Instant) -> Changes {
        self.apply(new, now, true)
    }

    fn apply(&mut self, new: Config, now: Instant, everything: bool) -> Changes {
        let mut changes = self.diff(&new);
        if everything {
            let added: HashSet<&String> = changes.added.iter().collect();
            let mut all: Vec<String> = new
                .processes
                .iter()
                .map(ProcessSpec::namespec)
                .filter(|n| !added.contains(n))
                .collect();
            all.sort();
            changes.changed = all;
        }
        let by_name: HashMap<String, ProcId> =
            self.entries.values().map(|e| (e.spec.namespec(), e.id)).collect();
        for id in changes.removed.iter().filter_map(|name| by_name.get(name)) {
            if let Some(e) = self.entries.get_mut(id) {
                e.pending = Some(Pending::Remove);
            }
            self.stop_or_settle(*id);
        }
        let changed: HashSet<&str> = changes.changed.iter().map(String::as_str).collect();
        let added: HashSet<&str> = changes.added.iter().map(String::as_str).collect();
        for spec in &new.processes {
            let name = spec.namespec();
            if changed.contains(name.as_str()) {
                let Some(&id) = by_name.get(&name) else { continue };
                if let Some(e) = self.entries.get_mut(&id) {
                    e.pending = Some(Pending::Replace(Box::new(spec.clone())));
                }
                self.stop_or_settle(id);
            } else if added.contains(name.as_str()) {
                let id = self.add(spec.clone());
                self.place(id);
                if spec.autostart {
                    self.work.push_back(Work::StartAsked(id));
                }
            }
        }
        self.config = new;
        self.drain(now);
        changes
    }

    /// supervisord's `addProcessGroup`: the processes of `group` in a new configuration are
    /// added (and started if autostart), when none of that group is there yet. Nothing else
    /// of the new configuration is applied, nor does it become the configuration in force.
    pub fn add_group(
        &mut self,
        new: &Config,
        group: &str,
        now: Instant,
    ) -> Result<Changes, GroupError> {
        if self.entries.values().any(|e| e.spec.group == group) {
            return Err(GroupError::AlreadyAdded);
        }
        let specs: Vec<&ProcessSpec> = new.processes.iter().filter(|s| s.group == group).collect();
        if specs.is_empty() {
            return Err(GroupError::NoSuchGroup);
        }
        let mut changes = Changes::default();
        for spec in specs {
            changes.added.push(spec.namespec());
            let id = self.add(spec.clone());
            self.place(id);
            if spec.autostart && !self.shutdown {
                self.work.push_back(Work::StartAsked(id));
            }
        }
        self.drain(now);
        Ok(changes)
    }

    /// supervisord's `removeProcessGroup`: the processes of `group` are forgotten, when every
    /// one of them is down (STOPPED, EXITED or FATAL, no pid). The event loop closes their
    /// files (they are reported in `changed`).
    pub fn remove_group(&mut self, group: &str) -> Result<Changes, GroupError> {
        let ids: Vec<ProcId> =
            self.entries.values().filter(|e| e.spec.group == group).map(|e| e.id).collect();
        if ids.is_empty() {
            return Err(GroupError::NoSuchGroup);
        }
        let up = |e: &Entry| !e.proc.state.is_stopped() || e.proc.pid.is_some();
        if ids.iter().filter_map(|id| self.entries.get(id)).any(up) {
            return Err(GroupError::StillRunning);
        }
        let mut changes = Changes::default();
        for id in ids {
            if let Some(e) = self.entries.get(&id) {
                changes.removed.push(e.spec.namespec());
            }
            self.forget(id);
            self.changed.push(id);
        }
        changes.removed.sort();
        Ok(changes)
    }

    /// Stops `id` for what `update` left pending, or, when nothing of it is up, applies it
    /// now. A start held for its dependencies is up in this sense: it is cancelled (STARTING
    /// -> STOPPED) rather than left to start later.
    fn stop_or_settle(&mut self, id: ProcId) {
        let Some(e) = self.entries.get(&id) else { return };
        if e.proc.state.is_stopped() && e.proc.pid.is_none() {
            self.settle(id);
        } else {
            self.work.push_back(Work::Input(id, Input::Stop));
        }
    }
}

/// Why a group could not be added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupError {
    NoSuchGroup,
    /// Added: it is there already.
    AlreadyAdded,
    /// Removed: one of its processes is not down.
    StillRunning,
}

/// A process down (no pid) takes its new settings as supervisord's new process object would
/// have them: STOPPED ("Not started"), no exit status, no spawn error, its retries and
/// restarts counted afresh; a FATAL or EXITED state does not outlive its settings. Its output
/// (the rings) and `downs`, which waiting stops count on, are kept.
fn replace_spec(e: &mut Entry, spec: ProcessSpec) {
    if spec.stdout_capture_maxbytes != e.stdout.capacity() {
        e.stdout = Ring::new(spec.stdout_capture_maxbytes);
    }
    if spec.stderr_capture_maxbytes != e.stderr.capacity() {
        e.stderr = Ring::new(spec.stderr_capture_maxbytes);
    }
    e.proc = Proc::default();
    e.stopped_by_operator = false;
    e.spec = std::sync::Arc::new(spec);
}
