//! Where events go: each subscriber names the types it wants (an abstract type takes every
//! type under it) and gets a bounded queue of its own. A subscriber that does not keep up
//! loses the oldest events of its queue, and the loss is counted (per subscriber, and in all
//! for /metrics). An event is stored once and shared by the queues that take it. With no
//! subscriber, publishing costs nothing: [`Bus::wants`] says so before an event is even built,
//! and [`Bus::publish`] stores nothing. Each event taken has a serial, from 1, as supervisord
//! numbers the events its listeners get. No I/O here; the loop delivers what is queued.
//!
//! A program's output waiting in a queue is merged: a PROCESS_LOG event published while the
//! last one queued for a subscriber is output of the same instance and stream, not yet taken,
//! is appended to that one (up to [`LOG_EVENT_MAX`] bytes) rather than queued after it. So a
//! listener that is behind gets the output that waited for it in one event, as one read would
//! have given it, and not in as many events as Kahi happened to make reads: how much one
//! event carries follows the listener's pace, not the loop's. Nothing is cut (each read stays
//! whole, in order), nothing waits (an event is merged only while it would wait anyway), and
//! the merged part takes no serial and no room in the queue.

use std::collections::VecDeque;
use std::rc::Rc;

use super::{Event, EventType};

/// The most output one PROCESS_LOG event carries by merging: supervisord's read size
/// (`2 << 16`), the most one of its PROCESS_LOG events carries. A single read of more (Kahi
/// reads up to 256 KiB at a time) stays one event, as it was read.
pub const LOG_EVENT_MAX: usize = 128 << 10;

/// A subscription's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubId(u64);

struct Subscriber {
    id: SubId,
    /// The types it takes; every type when empty.
    types: Vec<EventType>,
    /// Each event with its serial.
    queue: VecDeque<(u64, Rc<Event>)>,
    capacity: usize,
    dropped: u64,
}

impl Subscriber {
    fn takes(&self, t: EventType) -> bool {
        self.types.is_empty() || self.types.iter().any(|s| t.is_a(*s))
    }
}

#[derive(Default)]
pub struct Bus {
    subscribers: Vec<Subscriber>,
    next: u64,
    /// Events dropped from every queue so far.
    dropped: u64,
    /// The serial of the last event someone took.
    serial: u64,
}

impl Bus {
    /// A subscriber of `types` (all when empty), whose queue holds `capacity` events at most.
    pub fn subscribe(&mut self, types: Vec<EventType>, capacity: usize) -> SubId {
        self.next += 1;
        let id = SubId(self.next);
        let capacity = capacity.max(1);
        self.subscribers.push(Subscriber {
            id,
            types,
            queue: VecDeque::new(),
            capacity,
            dropped: 0,
        });
        id
    }

    pub fn unsubscribe(&mut self, id: SubId) {
        self.subscribers.retain(|s| s.id != id);
    }

    /// Whether any subscriber takes events of this type: if not, do not build one.
    pub fn wants(&self, t: EventType) -> bool {
        self.subscribers.iter().any(|s| s.takes(t))
    }

    /// Queues the event for every subscriber that takes its type (a program's output may be
    /// appended to the last one queued instead, see the module's notes); a full queue drops
    /// its oldest. Returns how many took it.
    pub fn publish(&mut self, event: Event) -> usize {
        let t = event.kind();
        if !self.wants(t) {
            return 0;
        }
        let event = Rc::new(event);
        // Given when a queue takes it as an event of its own.
        let mut serial = None;
        let mut took = 0;
        for s in self.subscribers.iter_mut().filter(|s| s.takes(t)) {
            took += 1;
            if let Some((_, last)) = s.queue.back_mut()
                && let Some(more) = continued_output(last, &event)
            {
                // Copied first if another subscriber holds it too.
                if let Event::ProcessLog { data, .. } = Rc::make_mut(last) {
                    data.extend_from_slice(more);
                }
                continue;
            }
            if s.queue.len() >= s.capacity {
                s.queue.pop_front();
                s.dropped += 1;
                self.dropped += 1;
            }
            let n = *serial.get_or_insert_with(|| {
                self.serial += 1;
                self.serial
            });
            s.queue.push_back((n, event.clone()));
        }
        took
    }

    /// The subscriber's next event, oldest first.
    pub fn next(&mut self, id: SubId) -> Option<Rc<Event>> {
        self.next_numbered(id).map(|(_, e)| e)
    }

    /// The subscriber's next event with its serial: events are numbered from 1 as they are
    /// published, those no one takes not counted (supervisord's `serial`).
    pub fn next_numbered(&mut self, id: SubId) -> Option<(u64, Rc<Event>)> {
        self.subscribers.iter_mut().find(|s| s.id == id)?.queue.pop_front()
    }

    /// Events in this subscriber's queue.
    pub fn queued_for(&self, id: SubId) -> usize {
        self.subscribers.iter().find(|s| s.id == id).map_or(0, |s| s.queue.len())
    }

    /// Events dropped from this subscriber's queue so far.
    pub fn dropped_for(&self, id: SubId) -> u64 {
        self.subscribers.iter().find(|s| s.id == id).map_or(0, |s| s.dropped)
    }

    /// Events dropped from this subscriber's queue since `told` of them were, which becomes
    /// all of them: what a subscriber has not yet been told it lost.
    pub fn dropped_since(&self, id: SubId, told: &mut u64) -> u64 {
        let all = self.dropped_for(id);
        let new = all.saturating_sub(*told);
        *told = all;
        new
    }

    /// Events dropped from every queue so far (`kahi_events_dropped_total`).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The output of `next` when it may be appended to `last`: both a program's output
/// (PROCESS_LOG) from the same instance and stream, together no more than [`LOG_EVENT_MAX`].
fn continued_output<'a>(last: &Event, next: &'a Event) -> Option<&'a [u8]> {
    match (last, next) {
        (
            Event::ProcessLog { process: p, pid, stream, data: held },
            Event::ProcessLog { process: q, pid: qpid, stream: qstream, data },
        ) if pid == qpid
            && stream == qstream
            && p.namespec == q.namespec
            && held.len() + data.len() <= LOG_EVENT_MAX =>
        {
            Some(data)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ProcessRef, StateChange};
    use super::*;
    use crate::process::State;
    use crate::supervisor::Stream;

    fn state(to: State, pid: i32) -> Event {
        let change = StateChange {
            process: ProcessRef {
                namespec: "web".into(),
                name: "web".into(),
                group: "web".into(),
                program: "web".into(),
            },
            from: State::Starting,
            to,
            pid: Some(pid),
            exitstatus: None,
            expected: None,
            tries: 0,
            next_start_in: None,
            oom_killed: false,
        };
        Event::ProcessState { change, ts: String::new() }
    }

    fn pid(e: &Event) -> Option<i32> {
        match e {
            Event::ProcessState { change, .. } => change.pid,
            _ => None,
        }
    }

    #[test]
    fn an_overflow_drops_the_oldest_and_counts_it() {
        let mut bus = Bus::default();
        let id = bus.subscribe(Vec::new(), 3);
        for n in 1..=5 {
            assert_eq!(bus.publish(state(State::Running, n)), 1);
        }
        assert_eq!((bus.dropped_for(id), bus.dropped()), (2, 2));
        // What the subscriber is told it lost: each drop once.
        let mut told = 0;
        assert_eq!((bus.dropped_since(id, &mut told), bus.dropped_since(id, &mut told)), (2, 0));
        let got: Vec<Option<i32>> = std::iter::from_fn(|| bus.next(id)).map(|e| pid(&e)).collect();
        assert_eq!(got, [Some(3), Some(4), Some(5)], "the newest are kept, in order");
        // Another subscriber's loss is its own, and adds to the total.
        let other = bus.subscribe(Vec::new(), 1);
        bus.publish(state(State::Running, 6));
        bus.publish(state(State::Running, 7));
        assert_eq!((bus.dropped_for(id), bus.dropped_for(other), bus.dropped()), (2, 1, 3));
        assert_eq!(bus.next(id).map(|e| pid(&e)), Some(Some(6)));
    }

    #[test]
    fn without_a_subscriber_nothing_is_wanted_or_kept() {
        let mut bus = Bus::default();
        for t in EventType::ALL {
            assert!(!bus.wants(t), "{}", t.name());
        }
        assert_eq!(bus.publish(state(State::Running, 1)), 0);
        assert_eq!(bus.dropped(), 0);
        // Nor once the last subscriber has gone.
        let id = bus.subscribe(Vec::new(), 8);
        assert!(bus.wants(EventType::ProcessStateRunning));
        bus.unsubscribe(id);
        assert!(!bus.wants(EventType::ProcessStateRunning));
        assert_eq!(bus.publish(state(State::Running, 2)), 0);
        assert!(bus.next(id).is_none());
    }

    #[test]
    fn subscribers_get_the_types_they_name_and_those_under_them() {
        let mut bus = Bus::default();
        let any_state = bus.subscribe(vec![EventType::ProcessState], 8);
        let running = bus.subscribe(vec![EventType::ProcessStateRunning], 8);
        let health = bus.subscribe(vec![EventType::KahiHealth], 8);
        assert!(!bus.wants(EventType::Tick5), "nobody takes ticks");
        assert_eq!(bus.publish(state(State::Running, 1)), 2);
        assert_eq!(bus.publish(state(State::Exited, 1)), 1);
        assert_eq!(bus.publish(Event::Tick { period: 5, when: 5 }), 0);
        let kinds = |bus: &mut Bus, id| -> Vec<EventType> {
            std::iter::from_fn(|| bus.next(id)).map(|e| e.kind()).collect()
        };
        assert_eq!(
            kinds(&mut bus, any_state),
            [EventType::ProcessStateRunning, EventType::ProcessStateExited]
        );
        assert_eq!(kinds(&mut bus, running), [EventType::ProcessStateRunning]);
        assert!(kinds(&mut bus, health).is_empty());
    }

    fn log(name: &str, pid: i32, stream: Stream, data: &[u8]) -> Event {
        let process = ProcessRef {
            namespec: name.into(),
            name: name.into(),
            group: name.into(),
            program: name.into(),
        };
        Event::ProcessLog { process, pid, stream, data: data.to_vec() }
    }

    /// (serial, data) of each PROCESS_LOG event in the subscriber's queue, taken in order.
    fn logs(bus: &mut Bus, id: SubId) -> Vec<(u64, Vec<u8>)> {
        std::iter::from_fn(|| bus.next_numbered(id))
            .map(|(n, e)| match &*e {
                Event::ProcessLog { data, .. } => (n, data.clone()),
                other => (n, other.kind().name().as_bytes().to_vec()),
            })
            .collect()
    }

    /// Output that waits for a subscriber is one event, however many reads made it: the
    /// reads in order, whole, under the first one's serial, in one place of the queue.
    #[test]
    fn output_that_waits_is_merged_into_one_event() {
        let mut bus = Bus::default();
        let id = bus.subscribe(vec![EventType::ProcessLog], 2);
        for part in [&b"one\ntw"[..], b"o\n", b"three\n"] {
            assert_eq!(bus.publish(log("web", 7, Stream::Stdout, part)), 1);
        }
        assert_eq!(bus.queued_for(id), 1);
        assert_eq!(logs(&mut bus, id), [(1, b"one\ntwo\nthree\n".to_vec())]);
        // Taken: what comes next is an event of its own, with the next serial.
        bus.publish(log("web", 7, Stream::Stdout, b"four\n"));
        assert_eq!(logs(&mut bus, id), [(2, b"four\n".to_vec())]);
        assert_eq!(bus.dropped(), 0, "merged output takes no room: nothing dropped");
    }

    /// Only output of one instance's stream, next to each other in the queue, is merged:
    /// another stream, process or pid, or another event between them, keeps them apart.
    #[test]
    fn only_neighbours_of_one_instance_and_stream_are_merged() {
        let mut bus = Bus::default();
        let id = bus.subscribe(Vec::new(), 100);
        bus.publish(log("web", 7, Stream::Stdout, b"a"));
        bus.publish(log("web", 7, Stream::Stderr, b"b"));
        bus.publish(log("db", 7, Stream::Stderr, b"c"));
        bus.publish(log("db", 8, Stream::Stderr, b"d"));
        bus.publish(state(State::Running, 8));
        bus.publish(log("db", 8, Stream::Stderr, b"e"));
        bus.publish(log("db", 8, Stream::Stderr, b"f"));
        let got: Vec<Vec<u8>> = logs(&mut bus, id).into_iter().map(|(_, d)| d).collect();
        let want: [&[u8]; 6] = [b"a", b"b", b"c", b"d", b"PROCESS_STATE_RUNNING", b"ef"];
        assert_eq!(got, want);
    }

    /// One event carries at most LOG_EVENT_MAX bytes by merging; a read of more alone stays
    /// whole.
    #[test]
    fn a_merged_event_stops_at_its_limit() {
        let mut bus = Bus::default();
        let id = bus.subscribe(Vec::new(), 100);
        let half = vec![b'x'; LOG_EVENT_MAX / 2];
        for _ in 0..3 {
            bus.publish(log("web", 7, Stream::Stdout, &half));
        }
        let big = vec![b'y'; LOG_EVENT_MAX + 1];
        bus.publish(log("web", 7, Stream::Stdout, &big));
        bus.publish(log("web", 7, Stream::Stdout, b"z"));
        let sizes: Vec<(u64, usize)> =
            logs(&mut bus, id).into_iter().map(|(n, d)| (n, d.len())).collect();
        assert_eq!(
            sizes,
            [(1, LOG_EVENT_MAX), (2, LOG_EVENT_MAX / 2), (3, LOG_EVENT_MAX + 1), (4, 1)]
        );
    }

    /// An event two subscribers share is merged for the one still holding it, and stays as
    /// it was for the one that took it: each sees every byte once.
    #[test]
    fn a_shared_event_is_copied_before_it_grows() {
        let mut bus = Bus::default();
        let (a, b) = (bus.subscribe(Vec::new(), 10), bus.subscribe(Vec::new(), 10));
        bus.publish(log("web", 7, Stream::Stdout, b"1\n"));
        let taken = bus.next_numbered(a).unwrap();
        bus.publish(log("web", 7, Stream::Stdout, b"2\n"));
        assert_eq!(logs(&mut bus, b), [(1, b"1\n2\n".to_vec())]);
        assert_eq!(*taken.1, log("web", 7, Stream::Stdout, b"1\n"));
        assert_eq!(logs(&mut bus, a), [(2, b"2\n".to_vec())], "a new event, for a alone");
    }
}
