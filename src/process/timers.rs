//! The deadlines of one process: which kinds there are, and the slot that holds each. Pure.

use std::time::Instant;

/// The kinds of deadline a process can have; at most one of each is armed at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// STARTING -> RUNNING once the process has stayed up `startsecs`.
    StartSecs,
    /// BACKOFF -> STARTING: the next try.
    Backoff,
    /// STOPPING: `stopwaitsecs` passed, send SIGKILL.
    StopKill,
    /// STARTING without a pid: `start_delay` passed, spawn now.
    StartDelay,
    /// RUNNING: `ready_delay` passed, programs that depend on it may start.
    ReadyDelay,
    /// RUNNING (notify): no WATCHDOG=1 for `watchdog_sec`.
    Watchdog,
    /// RUNNING with a health check: time for the next one.
    HealthCheck,
    /// RUNNING: the health check under way took longer than its timeout.
    HealthTimeout,
    /// BACKOFF after a run: the restart guard's wait passed, start again.
    Restart,
    /// STARTING, held for its dependencies: [`START_TIMEOUT`](super::machine::START_TIMEOUT) passed, give the start up.
    StartTimeout,
}

impl TimerKind {
    const COUNT: usize = 10;

    fn index(self) -> usize {
        self as usize
    }
}

/// One deadline slot per kind. The slot is the truth: the event loop's heap may hold stale
/// entries, and the machine ignores a timer input whose deadline the slot no longer holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timers {
    slots: [Option<Instant>; TimerKind::COUNT],
}

impl Timers {
    pub fn get(&self, kind: TimerKind) -> Option<Instant> {
        self.slots.get(kind.index()).copied().flatten()
    }

    pub(super) fn set(&mut self, kind: TimerKind, at: Instant) {
        if let Some(slot) = self.slots.get_mut(kind.index()) {
            *slot = Some(at);
        }
    }

    pub(super) fn clear(&mut self, kind: TimerKind) {
        if let Some(slot) = self.slots.get_mut(kind.index()) {
            *slot = None;
        }
    }

    /// True when `at` is still the armed deadline of `kind`.
    pub fn is_current(&self, kind: TimerKind, at: Instant) -> bool {
        self.get(kind) == Some(at)
    }
}
