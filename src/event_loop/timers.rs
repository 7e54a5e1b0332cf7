//! Every deadline of the loop, in one min-heap, cancelled lazily: an entry is acted on only if
//! its owner still holds that deadline (a process's timer table, a stream's pipeline), so
//! nothing is ever taken out of the middle of the heap. The poll timeout is the earliest entry.
//! A new kind of deadline (ticks, webhooks' retries) is a new `TimerKey` with its owner's test
//! of currency. A deadline whose wakeup is itself the cost (a tick nobody takes any more) is
//! taken out with [`Timers::cancel`].

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

use super::EventLoop;
use crate::process::machine::{Input, TimerKind};
use crate::supervisor::{ProcId, Stream};

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimerKey {
    /// One of a process's lifecycle timers: current while its timer table holds it.
    Process(ProcId, TimerKind),
    /// A stream's partial line goes out: current while the stream's record holds it armed.
    Flush(ProcId, Stream),
    /// TICK_5, TICK_60 or TICK_3600 (by its index in `produce::TICKS`): current while the
    /// loop's tick slot holds it.
    Tick(usize),
}

impl TimerKey {
    /// The order of keys that fall due at the same instant: by process, as they were armed.
    fn rank(&self) -> (ProcId, u8, Option<TimerKind>) {
        match *self {
            TimerKey::Process(id, kind) => (id, 0, Some(kind)),
            TimerKey::Flush(id, Stream::Stdout) => (id, 1, None),
            TimerKey::Flush(id, Stream::Stderr) => (id, 2, None),
            // After the processes' (ids start at 1): ProcId 0 is no process's.
            TimerKey::Tick(i) => (0, 3 + i as u8, None),
        }
    }
}

impl Ord for TimerKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl PartialOrd for TimerKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, TimerKey)>>,
}

impl Timers {
    pub(super) fn arm(&mut self, at: Instant, key: TimerKey) {
        self.heap.push(Reverse((at, key)));
    }

    /// Takes out every entry of `key`: for a timer that must not wake the loop once it is no
    /// longer wanted (a tick nobody takes), where a stale entry would. Linear in the heap's
    /// size, and rare.
    pub(super) fn cancel(&mut self, key: TimerKey) {
        self.heap.retain(|Reverse((_, k))| *k != key);
    }

    /// The earliest deadline, current or not.
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        let Reverse((at, _)) = self.heap.peek()?;
        if *at > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| e)
    }
}

impl EventLoop {
    /// Acts on every deadline due, in order; stale ones are dropped.
    pub(super) fn fire_timers(&mut self, now: Instant) {
        while let Some((at, key)) = self.timers.pop_due(now) {
            match key {
                TimerKey::Process(id, kind) => {
                    // A deadline since moved or cleared is recognised, and ignored, by the
                    // machine.
                    self.sup.input(id, Input::Timer(kind, at), now);
                    self.perform(now);
                }
                TimerKey::Flush(id, stream) => self.flush_due(id, stream, at, now),
                TimerKey::Tick(i) => self.tick_due(i, at),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadlines_come_out_in_order_and_only_when_due() {
        let mut t = Timers::default();
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        t.arm(t0 + secs(3), TimerKey::Flush(1, Stream::Stderr));
        t.arm(t0 + secs(1), TimerKey::Process(2, TimerKind::Backoff));
        t.arm(t0 + secs(1), TimerKey::Process(1, TimerKind::StartSecs));
        assert_eq!(t.next(), Some(t0 + secs(1)));
        assert_eq!(t.pop_due(t0), None);
        let due: Vec<TimerKey> =
            std::iter::from_fn(|| t.pop_due(t0 + secs(2))).map(|(_, k)| k).collect();
        assert_eq!(
            due,
            [TimerKey::Process(1, TimerKind::StartSecs), TimerKey::Process(2, TimerKind::Backoff)]
        );
        assert_eq!(t.next(), Some(t0 + secs(3)));
        // A cancelled key leaves no deadline behind.
        t.arm(t0 + secs(1), TimerKey::Tick(0));
        t.cancel(TimerKey::Tick(0));
        assert_eq!(t.next(), Some(t0 + secs(3)));
        t.cancel(TimerKey::Flush(1, Stream::Stderr));
        assert_eq!(t.next(), None);
    }
}
