//! Where events go: each subscriber names the types it wants (an abstract type takes every
//! type under it) and gets a bounded queue of its own. A subscriber that does not keep up
//! loses the oldest events of its queue, and the loss is counted (per subscriber, and in all
//! for /metrics). An event is stored once and shared by the queues that take it. With no
//! subscriber, publishing costs nothing: [`Bus::wants`] says so before an event is even built,
//! and [`Bus::publish`] stores nothing. Each event taken has a serial, from 1, as supervisord
//! numbers the events its listeners get. No I/O here; the loop delivers what is queued.

use std::collections::VecDeque;
use std::rc::Rc;

use super::{Event, EventType};

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

    /// Queues the event for every subscriber that takes its type; a full queue drops its
    /// oldest. Returns how many took it.
    pub fn publish(&mut self, event: Event) -> usize {
        let t = event.kind();
        if !self.wants(t) {
            return 0;
        }
        self.serial += 1;
        let event = (self.serial, Rc::new(event));
        let mut took = 0;
        for s in self.subscribers.iter_mut().filter(|s| s.takes(t)) {
            if s.queue.len() >= s.capacity {
                s.queue.pop_front();
                s.dropped += 1;
                self.dropped += 1;
            }
            s.queue.push_back(event.clone());
            took += 1;
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

    /// Events dropped from every queue so far (`kahi_events_dropped_total`).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ProcessRef, StateChange};
    use super::*;
    use crate::process::State;

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
}
