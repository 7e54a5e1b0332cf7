//! The daemon's shutdown: every process stopped, dependents before what they depend on, and
//! among the processes free to stop the highest priority first, the next tier only once that
//! one is down. Pure, like the rest of the supervisor.
//!
//! Linear in the processes and the dependency edges: the plan is built once, when shutdown
//! begins, and each process that goes down costs its own edges. (Recomputing "who still waits
//! for whom" after every exit was cubic: 10,000 programs never finished stopping.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use super::{ProcId, Supervisor, Work};
use crate::process::State;
use crate::process::machine::Input;

/// What is left to stop.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Every process still up: how many processes still up wait for it.
    waiters: HashMap<ProcId, usize>,
    /// Of those, the ones it waits for, so that its going down frees them.
    waits_for: HashMap<ProcId, Vec<ProcId>>,
    /// Up, and nothing up waits for it: free to stop, by priority.
    free: BTreeMap<i64, BTreeSet<ProcId>>,
    /// The tier whose every process was asked to stop, and the processes freed since.
    asked_tier: Option<i64>,
    fresh: Vec<ProcId>,
    /// Processes that settled since the plan last looked: the only ones that can have gone
    /// down.
    settled: Vec<ProcId>,
    /// Processes asked to stop whose stop was not sent yet: at most [`STOP_BATCH`] go per
    /// call, so that the loop answers between batches of a large shutdown.
    to_stop: std::collections::VecDeque<ProcId>,
    /// Something went down since the plan last looked: another round may stop more.
    again: bool,
}

/// Stops sent in one turn of the event loop. Each wakes a process that then exits on the same
/// two cores the loop runs on: all of 9,000 at once held the loop for half a second.
const STOP_BATCH: usize = 64;

impl Plan {
    fn make_free(&mut self, id: ProcId, priority: i64) {
        self.free.entry(priority).or_default().insert(id);
        self.fresh.push(id);
    }
}

impl Supervisor {
    /// Begins stopping everything; see the module's header for the order.
    pub fn begin_shutdown(&mut self, now: Instant) {
        if self.shutdown {
            return;
        }
        self.shutdown = true;
        // The exit status reports kills of this shutdown only.
        for e in self.entries.values_mut() {
            e.proc.killed = false;
            e.restart_when_stopped = false;
        }
        // Nothing runs in BACKOFF or while held: cancel those starts now rather than in turn.
        let cancel: Vec<ProcId> = self
            .iter()
            .filter(|e| {
                let p = &e.proc;
                p.state == State::Backoff || (p.state == State::Starting && p.pid.is_none())
            })
            .map(|e| e.id)
            .collect();
        self.work.extend(cancel.into_iter().map(|id| Work::Input(id, Input::Stop)));
        self.drain(now);
        self.plan = self.make_plan();
        self.advance_shutdown(None);
        self.continue_shutdown(now);
    }

    /// Who waits for whom among the processes still up: `a` waits for every process of the
    /// programs in its depends_on, requires and after (not its own).
    fn make_plan(&self) -> Plan {
        let up: Vec<&super::Entry> = self.iter().filter(|e| !self.is_down(e.id)).collect();
        let mut by_program: HashMap<&str, Vec<ProcId>> = HashMap::new();
        for e in &up {
            by_program.entry(e.spec.program.as_str()).or_default().push(e.id);
        }
        let mut plan = Plan::default();
        for e in &up {
            plan.waiters.insert(e.id, 0);
        }
        for e in &up {
            let (a, spec) = (&e.id, &e.spec);
            let mut programs: Vec<&str> = spec.deps.iter().map(|d| d.program.as_str()).collect();
            programs.extend(spec.after.iter().map(String::as_str));
            programs.sort_unstable();
            programs.dedup();
            let mut them = Vec::new();
            for program in programs.into_iter().filter(|p| *p != spec.program) {
                for b in by_program.get(program).into_iter().flatten() {
                    *plan.waiters.entry(*b).or_default() += 1;
                    them.push(*b);
                }
            }
            plan.waits_for.insert(*a, them);
        }
        for e in &up {
            if plan.waiters.get(&e.id) == Some(&0) {
                plan.make_free(e.id, e.spec.priority);
            }
        }
        plan
    }

    /// Stops the highest tier of the processes free to stop; moves to the next tier when one
    /// is down. Called when shutdown begins and whenever a process settles (`id`).
    pub(super) fn advance_shutdown(&mut self, settled: Option<ProcId>) {
        if !self.shutdown {
            return;
        }
        self.plan.settled.extend(settled);
        self.note_down();
        loop {
            self.plan.again = false;
            let Some((&top, tier)) = self.plan.free.iter().next_back() else { break };
            // The whole tier when it comes up; then only what was freed into it since.
            let ask: Vec<ProcId> = if self.plan.asked_tier != Some(top) {
                tier.iter().copied().collect()
            } else {
                self.plan.fresh.iter().copied().filter(|id| tier.contains(id)).collect()
            };
            self.plan.asked_tier = Some(top);
            self.plan.fresh.clear();
            // Sent a batch per turn of the loop (`continue_shutdown`), not here: a process
            // that goes down would otherwise send the next batch at once, and all would go in
            // one turn.
            self.plan.to_stop.extend(ask);
            self.note_down();
            // Go on only when something went down meanwhile (a tier that went down at once);
            // otherwise the next exit moves things along.
            if !self.plan.again {
                break;
            }
        }
    }

    /// Queues the next batch of the stops asked for.
    fn send_stops(&mut self) {
        for _ in 0..STOP_BATCH {
            let Some(id) = self.plan.to_stop.pop_front() else { return };
            let state = self.entries.get(&id).map(|e| e.proc.state);
            if matches!(state, Some(State::Starting | State::Running | State::Backoff)) {
                self.work.push_back(Work::Input(id, Input::Stop));
            }
        }
    }

    /// Stops asked for still wait to be sent: the event loop calls [`Self::continue_shutdown`]
    /// in its next turn, without waiting.
    pub fn shutdown_busy(&self) -> bool {
        !self.plan.to_stop.is_empty()
    }

    /// The next batch of stops; the event loop calls it once a turn.
    pub fn continue_shutdown(&mut self, now: Instant) {
        if self.plan.to_stop.is_empty() {
            return;
        }
        self.send_stops();
        self.drain(now);
        // What went down at once (a process that was not running) moves the plan along.
        self.advance_shutdown(None);
    }

    /// Takes the processes that went down out of the plan, freeing what they waited for.
    fn note_down(&mut self) {
        // Only processes settled since the last look can have gone down.
        let candidates: Vec<ProcId> = std::mem::take(&mut self.plan.settled);
        for id in candidates {
            if !self.plan.waiters.contains_key(&id) {
                continue;
            }
            if self.entries.contains_key(&id) && !self.is_down(id) {
                continue;
            }
            self.plan.waiters.remove(&id);
            let priority = self.entries.get(&id).map(|e| e.spec.priority);
            if let Some(p) = priority
                && let Some(set) = self.plan.free.get_mut(&p)
            {
                set.remove(&id);
                if set.is_empty() {
                    self.plan.free.remove(&p);
                }
                self.plan.again = true;
            }
            for b in self.plan.waits_for.remove(&id).unwrap_or_default() {
                let Some(n) = self.plan.waiters.get_mut(&b) else { continue };
                *n = n.saturating_sub(1);
                if *n == 0 {
                    let p = self.entries.get(&b).map_or(0, |e| e.spec.priority);
                    self.plan.make_free(b, p);
                    self.plan.again = true;
                }
            }
        }
    }

    /// True once shutdown began and every process is down.
    pub fn shutdown_complete(&self) -> bool {
        self.shutdown && self.plan.waiters.is_empty()
    }
}
