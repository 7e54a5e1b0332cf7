//! Event listeners on the loop: one [`Pool`] per `[eventlisteners.NAME]`, a subscriber of the
//! bus. What a listener writes on its stdout is the protocol, read here (never its log);
//! what the pool sends it goes into its stdin pipe, written as the pipe takes it. Nothing
//! here waits for a listener: one that never answers holds only its own event.

use super::EventLoop;
use crate::config::ListenerSpec;
use crate::events::listener::{Outcome, Pool};
use crate::supervisor::ProcId;

/// The `server:` of the header: supervisord's `identifier`, which Kahi does not have.
const SERVER: &str = "kahi";

impl EventLoop {
    /// A pool for each listener of the configuration in force, made anew where its events or
    /// buffer_size changed (what it held is lost); the pools of listeners gone are closed.
    /// From the configuration, not the processes: after an update, a changed or removed
    /// listener's process keeps its old settings until it has stopped, and its old pool must
    /// not outlive the update (a pool of old events for the process started again, or one that
    /// fills up for no one). A process still stopping is no member of the new pool, which
    /// ignores what it says.
    pub(super) fn sync_pools(&mut self) {
        let mut wanted: Vec<(String, ListenerSpec)> = Vec::new();
        for spec in &self.sup.config.processes {
            if let Some(l) = &spec.listener
                && !wanted.iter().any(|(name, _)| *name == spec.program)
            {
                wanted.push((spec.program.clone(), l.clone()));
            }
        }
        let mut kept = Vec::new();
        for (name, (spec, pool)) in self.pools.drain() {
            match wanted.iter().find(|(n, _)| *n == name) {
                Some((_, l)) if *l == spec => kept.push((name, (spec, pool))),
                _ => pool.close(&mut self.bus),
            }
        }
        self.pools.extend(kept);
        for (name, l) in wanted {
            if !self.pools.contains_key(&name) {
                let pool = Pool::new(&name, l.events.clone(), l.buffer_size, &mut self.bus);
                self.pools.insert(name, (l, pool));
            }
        }
    }

    /// The pool of a listener process: the one it is a member of, else its program's; None
    /// for a program. By membership first: a process removed by an update is forgotten by the
    /// supervisor before its exit is carried out here, and the event it had must still go
    /// back to its pool.
    fn pool_of(&mut self, id: ProcId) -> Option<&mut Pool> {
        let program =
            self.sup.get(id).filter(|e| e.spec.listener.is_some()).map(|e| &e.spec.program);
        self.pools
            .values_mut()
            .map(|(_, pool)| pool)
            .find(|pool| pool.has(id) || program == Some(&pool.name))
    }

    /// Whether the process is an event listener.
    pub(super) fn is_listener(&self, id: ProcId) -> bool {
        self.sup.get(id).is_some_and(|e| e.spec.listener.is_some())
    }

    /// A listener process was spawned: it is ACKNOWLEDGED until it says READY.
    pub(super) fn listener_started(&mut self, id: ProcId) {
        if let Some(pool) = self.pool_of(id) {
            pool.started(id);
        }
        self.note_listener_state(id);
    }

    /// A listener process has gone: the event it had goes to another (or to its next
    /// instance).
    pub(super) fn listener_gone(&mut self, id: ProcId) {
        if let Some(pool) = self.pool_of(id) {
            pool.exited(id);
            self.note_listener_state(id);
            self.dispatch_events();
        }
    }

    /// What a listener process wrote on its stdout.
    pub(super) fn listener_said(&mut self, id: ProcId, data: &[u8]) {
        let Some(pool) = self.pool_of(id) else { return };
        let outcomes = pool.feed(id, data);
        self.note_listener_state(id);
        let Some(e) = self.sup.get(id) else { return };
        let name = e.spec.namespec();
        let (stopsignal, group) = (e.spec.stopsignal, e.spec.stopasgroup);
        for outcome in outcomes {
            match outcome {
                Outcome::Took(serial) => log::debug!("{name}: event {serial} taken"),
                Outcome::Failed(serial) => {
                    log::info!("{name}: event {serial} rejected (FAIL); it will be sent again")
                }
                Outcome::Garbage(why) => {
                    // Its own exit gives back its event, and autorestart starts it again.
                    log::warn!(
                        "{name}: not the event listener protocol: {why}; stopping it with {}",
                        stopsignal.as_str()
                    );
                    self.kill(id, stopsignal, group);
                }
            }
        }
        self.dispatch_events();
    }

    /// Sends each READY listener the next event of its pool, into its stdin pipe.
    pub(super) fn dispatch_events(&mut self) {
        if self.pools.is_empty() {
            return;
        }
        let mut sends = Vec::new();
        for (_, pool) in self.pools.values_mut() {
            let dropped = pool.newly_dropped(&self.bus);
            if dropped > 0 {
                // As supervisord says it.
                log::warn!(
                    "pool {} event buffer overflowed, discarding {dropped} event(s)",
                    pool.name
                );
            }
            while let Some(send) = pool.dispatch(&mut self.bus, SERVER) {
                sends.push(send);
            }
        }
        for (id, bytes) in sends {
            self.note_listener_state(id);
            self.queue_stdin(id, &bytes);
        }
    }

    /// The bus's losses and each pool's buffer, for /metrics.
    pub(super) fn event_stats(&self) -> crate::metrics::EventStats {
        let mut pools: Vec<crate::metrics::PoolStats> = self
            .pools
            .values()
            .map(|(_, pool)| crate::metrics::PoolStats {
                name: pool.name.clone(),
                queued: pool.queued(&self.bus),
                dropped: pool.dropped(&self.bus),
            })
            .collect();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        crate::metrics::EventStats { dropped: self.bus.dropped(), pools }
    }

    /// Keeps a listener process's protocol state where status, the API and /metrics read it,
    /// and logs each change of a live one, as supervisord does (`web: ACKNOWLEDGED -> READY`).
    fn note_listener_state(&mut self, id: ProcId) {
        let state = self.pool_of(id).and_then(|pool| pool.state(id));
        let Some(e) = self.sup.get_mut(id) else { return };
        if let (Some(from), Some(to)) = (e.listener_state, state)
            && from != to
        {
            log::debug!("{}: {} -> {}", e.spec.namespec(), from.name(), to.name());
        }
        e.listener_state = state;
    }
}
