//! The events the loop produces besides changes of state and health (`perform.rs`): the
//! supervisor's own (SUPERVISOR_STATE_CHANGE_RUNNING, PROCESS_GROUP_ADDED / _REMOVED), programs'
//! output (PROCESS_LOG_*, PROCESS_COMMUNICATION_*), the ticks (TICK_5, TICK_60, TICK_3600),
//! held starts' waits (KAHI_DEPENDENCY) and what a client sends (REMOTE_COMMUNICATION). Each
//! is built only when some subscriber of the bus takes its type; a tick's timer exists only while one does, so a Kahi nobody listens to
//! never wakes up for them.

use std::time::{Duration, Instant, SystemTime};

use super::EventLoop;
use super::timers::TimerKey;
use crate::events::{Event, EventType, ProcessRef};
use crate::logs::pipeline::Ops;
use crate::supervisor::{ProcId, Stream};

/// supervisord's tick periods, in seconds, and their types.
pub(super) const TICKS: [(u64, EventType); 3] =
    [(5, EventType::Tick5), (60, EventType::Tick60), (3600, EventType::Tick3600)];

/// A tick's timer: when it is due, and the Unix time (a multiple of its period) it announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tick {
    pub(super) at: Instant,
    pub(super) when: u64,
}

/// The next multiple of `period` after the wall time `wall`, and how far off it is.
fn next_tick(period: u64, wall: Duration) -> (u64, Duration) {
    let when = (wall.as_secs() / period + 1) * period;
    (when, Duration::from_secs(when).saturating_sub(wall))
}

impl EventLoop {
    /// The groups the supervisor added or removed (at start, by an update): those added, then
    /// those removed, each in order.
    pub(super) fn publish_groups(&mut self) {
        for added in [true, false] {
            self.publish_groups_where(added);
        }
    }

    /// The groups added (or removed), in order; the others wait.
    pub(super) fn publish_groups_where(&mut self, added: bool) {
        let (these, others) = std::mem::take(&mut self.sup.groups_changed)
            .into_iter()
            .partition(|(_, a)| *a == added);
        self.sup.groups_changed = others;
        for (group, added) in these {
            let kind =
                if added { EventType::ProcessGroupAdded } else { EventType::ProcessGroupRemoved };
            if self.bus.wants(kind) {
                self.publish(Event::ProcessGroup { group, added });
            }
        }
    }

    /// KAHI_DEPENDENCY for each held start whose wait changed: what it waits for now (nothing:
    /// it goes on).
    pub(super) fn publish_waits(&mut self) {
        let ids = std::mem::take(&mut self.sup.waits_changed);
        if !self.bus.wants(EventType::KahiDependency) {
            return;
        }
        for id in ids {
            let Some(e) = self.sup.get(id) else { continue };
            let process = ProcessRef::of(&e.spec);
            let waiting_for = e.waiting_for.clone();
            let ts = crate::timefmt::rfc3339_now();
            self.publish(Event::Dependency { process, waiting_for, ts });
        }
    }

    /// SUPERVISOR_STATE_CHANGE_RUNNING, once, as Kahi has queued its first starts.
    pub(super) fn publish_running(&mut self) {
        if self.bus.wants(EventType::SupervisorStateChangeRunning) {
            let ts = crate::timefmt::rfc3339_now();
            self.publish(Event::SupervisorState { running: true, ts });
        }
    }

    /// Output kept of a process whose events are enabled: PROCESS_LOG_STDOUT or _STDERR, one
    /// event for what one read of its pipe yielded (the bus appends it to the last event
    /// still waiting for a subscriber, when that is the same stream's output).
    pub(super) fn publish_output(&mut self, id: ProcId, stream: Stream, pid: i32, data: &[u8]) {
        let Some(e) = self.sup.get(id) else { return };
        let (enabled, kind) = match stream {
            Stream::Stdout => (e.spec.stdout_events_enabled, EventType::ProcessLogStdout),
            Stream::Stderr => (e.spec.stderr_events_enabled, EventType::ProcessLogStderr),
        };
        if enabled && self.bus.wants(kind) {
            let process = ProcessRef::of(&e.spec);
            self.publish(Event::ProcessLog { process, pid, stream, data: data.to_vec() });
        }
    }

    /// Captures that ended: PROCESS_COMMUNICATION_STDOUT or _STDERR, one each; a capture cut
    /// to its limit, or never ended, is said in the daemon's log.
    pub(super) fn publish_captures(&mut self, id: ProcId, stream: Stream, pid: i32, ops: &Ops) {
        let Some(e) = self.sup.get(id) else { return };
        let name = e.spec.namespec();
        let process = ProcessRef::of(&e.spec);
        let kind = match stream {
            Stream::Stdout => EventType::ProcessCommunicationStdout,
            Stream::Stderr => EventType::ProcessCommunicationStderr,
        };
        if ops.unended > 0 {
            log::warn!(
                "'{name}' {} output: a capture begun with <!--XSUPERVISOR:BEGIN--> never ended; \
                 its {} bytes are dropped",
                stream.name(),
                ops.unended
            );
        }
        for c in &ops.captured {
            if c.dropped > 0 {
                log::warn!(
                    "'{name}' {} output: a capture passed its limit; its first {} bytes are dropped",
                    stream.name(),
                    c.dropped
                );
            }
            log::debug!("'{name}' {} output: {} bytes captured", stream.name(), c.data.len());
            if self.bus.wants(kind) {
                let (process, data) = (process.clone(), c.data.clone());
                self.publish(Event::ProcessCommunication { process, pid, stream, data });
            }
        }
    }

    /// REMOTE_COMMUNICATION, as a client sent it; how many subscribers took it.
    pub(super) fn publish_remote(&mut self, kind: String, data: String) -> usize {
        if !self.bus.wants(EventType::RemoteCommunication) {
            return 0;
        }
        self.publish(Event::RemoteCommunication { kind, data })
    }

    /// Arms the timer of each tick some subscriber takes, and forgets those nobody takes any
    /// more (their heap entries go too: nothing wakes Kahi for them). Cheap enough for every
    /// turn: subscriptions come and go with listeners, streams and reloads.
    pub(super) fn sync_ticks(&mut self) {
        for (i, (period, kind)) in TICKS.into_iter().enumerate() {
            match (self.ticks[i], self.bus.wants(kind)) {
                (None, true) => {
                    let since = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default();
                    let (when, wait) = next_tick(period, since);
                    let tick = Tick { at: Instant::now() + wait, when };
                    self.ticks[i] = Some(tick);
                    self.timers.arm(tick.at, TimerKey::Tick(i));
                }
                (Some(_), false) => {
                    self.ticks[i] = None;
                    self.timers.cancel(TimerKey::Tick(i));
                }
                _ => {}
            }
        }
    }

    /// A tick's timer fell due: TICK_N with the multiple of N it announces, as supervisord's
    /// `when` (the start of the new period); then the next one. After a jump of the wall
    /// clock (or a suspend), the next tick is the next multiple of the period from now: one
    /// tick, never a burst of the missed ones.
    pub(super) fn tick_due(&mut self, i: usize, at: Instant) {
        let Some(tick) = self.ticks.get(i).copied().flatten() else { return };
        if tick.at != at {
            return;
        }
        self.ticks[i] = None;
        let (period, _) = TICKS[i];
        let now =
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        let when = tick.when.max(now / period * period);
        self.publish(Event::Tick { period: period as u32, when });
        self.sync_ticks();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_multiples_of_their_period() {
        let at = |secs: u64, ms: u64| Duration::from_secs(secs) + Duration::from_millis(ms);
        assert_eq!(next_tick(5, at(1_800_000_001, 250)), (1_800_000_005, at(3, 750)));
        // On a multiple exactly: that one was just announced, the next is a period away.
        assert_eq!(next_tick(5, at(1_800_000_000, 0)), (1_800_000_005, at(5, 0)));
        assert_eq!(next_tick(60, at(1_800_000_001, 0)), (1_800_000_060, at(59, 0)));
        assert_eq!(next_tick(3600, at(1_800_000_001, 0)), (1_800_003_600, at(3599, 0)));
    }
}
