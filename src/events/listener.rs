//! supervisord's event listener protocol, without I/O: what each listener process wrote is
//! fed in as bytes and read as a state machine ([`Protocol`]), and a [`Pool`] (the processes
//! of one `[eventlisteners.NAME]`) says which event goes to which member, as the bytes to
//! write to its stdin (supervisord's header line, then the payload).
//!
//! The protocol, as supervisord's "Events" chapter documents it: a listener starts
//! ACKNOWLEDGED and writes `READY\n` when it can take an event (READY); Kahi then writes
//! `ver:3.0 server:S serial:N pool:P poolserial:M eventname:E len:L\n` and L bytes of payload
//! (BUSY); the listener answers `RESULT <len>\n<body>`, where the body `OK` takes the event
//! and anything else (`FAIL`) gives it back, to be sent again (ACKNOWLEDGED); and so on.
//! Anything else it writes is garbage: the listener is UNKNOWN until it is restarted, and its
//! event is sent again once it has gone.
//!
//! The pool's buffer is its queue on the [`Bus`], `buffer_size` long: when the pool falls
//! behind, the oldest event is dropped and counted, as supervisord's buffer overflows. An
//! event given back (a FAIL, a member that died or spoke garbage while it had it) goes first
//! the next time, ahead of the buffer.

use std::collections::VecDeque;
use std::rc::Rc;

use super::{Bus, Event, EventType, SubId};
use crate::supervisor::ProcId;

/// `READY\n`: the listener can take an event.
const READY: &[u8] = b"READY\n";
/// `RESULT `, the start of an answer.
const RESULT: &[u8] = b"RESULT ";
/// The longest answer body taken; a longer one is garbage. supervisord's bodies are `OK`
/// and `FAIL`; this leaves room for a custom answer without buffering without end.
const MAX_BODY: usize = 64 << 10;

/// Where a listener is in the protocol, by supervisord's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ListenerState {
    /// Started, or has answered: waiting for `READY\n`.
    Acknowledged,
    /// Waiting for an event.
    Ready,
    /// Has an event, and owes its answer.
    Busy,
    /// Wrote garbage: takes nothing more until it is restarted.
    Unknown,
}

impl ListenerState {
    pub const ALL: [ListenerState; 4] = [
        ListenerState::Acknowledged,
        ListenerState::Ready,
        ListenerState::Busy,
        ListenerState::Unknown,
    ];

    /// supervisord's name.
    pub fn name(self) -> &'static str {
        match self {
            ListenerState::Acknowledged => "ACKNOWLEDGED",
            ListenerState::Ready => "READY",
            ListenerState::Busy => "BUSY",
            ListenerState::Unknown => "UNKNOWN",
        }
    }
}

/// What a listener said, in the order it said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// `READY\n`.
    Ready,
    /// `RESULT 2\nOK` (true), or any other body, `RESULT 4\nFAIL` (false).
    Result(bool),
    /// Not the protocol: what was wrong. The listener is UNKNOWN from now on.
    Garbage(String),
}

/// One listener process's end of the protocol: its state and what it wrote that is not
/// whole yet.
#[derive(Debug)]
pub struct Protocol {
    state: ListenerState,
    buf: Vec<u8>,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol { state: ListenerState::Acknowledged, buf: Vec::new() }
    }
}

impl Protocol {
    pub fn state(&self) -> ListenerState {
        self.state
    }

    /// An event was written to it: READY -> BUSY.
    fn sent(&mut self) {
        self.state = ListenerState::Busy;
    }

    /// Reads what the listener wrote, which may end anywhere (a message cut in two is
    /// completed by the next call). Returns what it said, whole messages only.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Heard> {
        let mut heard = Vec::new();
        if self.state == ListenerState::Unknown {
            return heard;
        }
        self.buf.extend_from_slice(bytes);
        while !self.buf.is_empty() {
            let step = match self.state {
                ListenerState::Acknowledged => self.ready(),
                ListenerState::Ready => {
                    Err(format!("wrote {} while it had no event", shown(&self.buf)))
                }
                ListenerState::Busy => self.result(),
                ListenerState::Unknown => break,
            };
            match step {
                Ok(Some(h)) => heard.push(h),
                // Not whole yet.
                Ok(None) => break,
                Err(why) => {
                    // -> UNKNOWN: garbage; nothing it writes counts any more.
                    self.state = ListenerState::Unknown;
                    self.buf = Vec::new();
                    heard.push(Heard::Garbage(why));
                }
            }
        }
        heard
    }

    /// ACKNOWLEDGED: `READY\n`, or a part of it so far.
    fn ready(&mut self) -> Result<Option<Heard>, String> {
        if self.buf.starts_with(READY) {
            self.buf.drain(..READY.len());
            // ACKNOWLEDGED -> READY
            self.state = ListenerState::Ready;
            return Ok(Some(Heard::Ready));
        }
        if READY.starts_with(&self.buf) {
            return Ok(None);
        }
        Err(format!("wrote {} where READY\\n was expected", shown(&self.buf)))
    }

    /// BUSY: `RESULT <len>\n` then len bytes, or a part of them so far.
    fn result(&mut self) -> Result<Option<Heard>, String> {
        let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
            // A start that can still become a RESULT line waits; any other fails now.
            let n = self.buf.len().min(RESULT.len());
            let digits = self.buf.get(RESULT.len()..).unwrap_or_default();
            if self.buf[..n] == RESULT[..n]
                && digits.iter().all(u8::is_ascii_digit)
                && digits.len() <= 6
            {
                return Ok(None);
            }
            return Err(format!("wrote {} where RESULT <len>\\n was expected", shown(&self.buf)));
        };
        let len = self.buf[..nl]
            .strip_prefix(RESULT)
            .and_then(|d| std::str::from_utf8(d).ok())
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|&n| n <= MAX_BODY)
            .ok_or_else(|| {
                format!("wrote {} where RESULT <len>\\n was expected", shown(&self.buf[..=nl]))
            })?;
        if self.buf.len() < nl + 1 + len {
            return Ok(None);
        }
        let ok = self.buf[nl + 1..nl + 1 + len] == *b"OK";
        self.buf.drain(..nl + 1 + len);
        // BUSY -> ACKNOWLEDGED: answered; READY\n comes next.
        self.state = ListenerState::Acknowledged;
        Ok(Some(Heard::Result(ok)))
    }
}

/// Some bytes, quoted for a log line, at most 40 of them.
fn shown(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(40)];
    let more = if bytes.len() > cut.len() { "..." } else { "" };
    format!("{:?}{more}", String::from_utf8_lossy(cut))
}

/// An event on its way to the pool's listeners, with its numbers.
#[derive(Debug, Clone)]
struct Queued {
    /// The bus's number of the event.
    serial: u64,
    /// The pool's.
    poolserial: u64,
    event: Rc<Event>,
}

struct Member {
    id: ProcId,
    protocol: Protocol,
    /// The event it has (BUSY, or UNKNOWN since).
    event: Option<Queued>,
}

/// What a pool did with what a member said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The member took its event (`OK`); the serial is the bus's.
    Took(u64),
    /// The member gave its event back (`FAIL`): it goes first next time.
    Failed(u64),
    /// The member wrote garbage: it must be restarted, and its event (if any) goes again
    /// once it has gone.
    Garbage(String),
}

/// The processes of one `[eventlisteners.NAME]`, and the events on their way to them.
pub struct Pool {
    pub name: String,
    /// Its buffer: its queue on the bus.
    sub: SubId,
    /// Events given back, ahead of the buffer.
    again: VecDeque<Queued>,
    members: Vec<Member>,
    /// The last poolserial given.
    poolserial: u64,
    /// Drops from its buffer already reported.
    reported: u64,
}

impl Pool {
    /// A pool of the listener `name`, taking `types` from the bus through a queue of
    /// `buffer_size` events.
    pub fn new(name: &str, types: Vec<EventType>, buffer_size: usize, bus: &mut Bus) -> Pool {
        Pool {
            name: name.to_string(),
            sub: bus.subscribe(types, buffer_size),
            again: VecDeque::new(),
            members: Vec::new(),
            poolserial: 0,
            reported: 0,
        }
    }

    /// Leaves the bus; the events it had are lost.
    pub fn close(self, bus: &mut Bus) {
        bus.unsubscribe(self.sub);
    }

    /// Events waiting for a READY member: given back, and in its buffer.
    pub fn queued(&self, bus: &Bus) -> usize {
        self.again.len() + bus.queued_for(self.sub)
    }

    /// Events dropped from its buffer, since it was made.
    pub fn dropped(&self, bus: &Bus) -> u64 {
        bus.dropped_for(self.sub)
    }

    /// Events dropped from its buffer since the last call (supervisord logs each).
    pub fn newly_dropped(&mut self, bus: &Bus) -> u64 {
        bus.dropped_since(self.sub, &mut self.reported)
    }

    /// A member process was spawned: ACKNOWLEDGED, waiting for READY. A member spawned again
    /// starts over (its last event was given back when it exited).
    pub fn started(&mut self, id: ProcId) {
        self.exited(id);
        self.members.push(Member { id, protocol: Protocol::default(), event: None });
    }

    /// A member process has gone: the event it had goes again, first.
    pub fn exited(&mut self, id: ProcId) {
        if let Some(i) = self.members.iter().position(|m| m.id == id) {
            let m = self.members.remove(i);
            self.again.extend(m.event);
        }
    }

    /// Whether `id` is a member (spawned and not gone).
    pub fn has(&self, id: ProcId) -> bool {
        self.members.iter().any(|m| m.id == id)
    }

    /// The member's protocol state; None when `id` is no member (not spawned, or gone).
    pub fn state(&self, id: ProcId) -> Option<ListenerState> {
        self.members.iter().find(|m| m.id == id).map(|m| m.protocol.state())
    }

    /// Reads what member `id` wrote on its stdout.
    pub fn feed(&mut self, id: ProcId, bytes: &[u8]) -> Vec<Outcome> {
        let Some(m) = self.members.iter_mut().find(|m| m.id == id) else { return Vec::new() };
        let mut out = Vec::new();
        for heard in m.protocol.feed(bytes) {
            match heard {
                Heard::Ready => {}
                Heard::Result(ok) => {
                    let Some(q) = m.event.take() else { continue };
                    if ok {
                        out.push(Outcome::Took(q.serial));
                    } else {
                        out.push(Outcome::Failed(q.serial));
                        // Rebuffered, as supervisord does: ahead of the rest.
                        self.again.push_front(q);
                    }
                }
                // The event stays with the member until it has gone: the listener may be
                // acting on it still.
                Heard::Garbage(why) => out.push(Outcome::Garbage(why)),
            }
        }
        out
    }

    /// The next event for a READY member, if there are both: the member and the bytes to
    /// write to its stdin (the member is BUSY from now on). Call until None.
    pub fn dispatch(&mut self, bus: &mut Bus, server: &str) -> Option<(ProcId, Vec<u8>)> {
        let m = self.members.iter_mut().find(|m| m.protocol.state() == ListenerState::Ready)?;
        let q = match self.again.pop_front() {
            Some(q) => q,
            None => {
                let (serial, event) = bus.next_numbered(self.sub)?;
                self.poolserial += 1;
                Queued { serial, poolserial: self.poolserial, event }
            }
        };
        let payload = q.event.payload();
        let mut bytes = format!(
            "ver:3.0 server:{server} serial:{} pool:{} poolserial:{} eventname:{} len:{}\n",
            q.serial,
            self.name,
            q.poolserial,
            q.event.kind().name(),
            payload.len()
        )
        .into_bytes();
        bytes.extend_from_slice(&payload);
        // READY -> BUSY
        m.protocol.sent();
        let id = m.id;
        m.event = Some(q);
        Some((id, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ProcessRef, StateChange};
    use super::*;
    use crate::process::State;

    fn feed_all(p: &mut Protocol, chunks: &[&[u8]]) -> Vec<Heard> {
        chunks.iter().flat_map(|c| p.feed(c)).collect()
    }

    #[test]
    fn a_listener_goes_round_the_protocol() {
        let mut p = Protocol::default();
        assert_eq!(p.state(), ListenerState::Acknowledged);
        assert_eq!(p.feed(b"READY\n"), [Heard::Ready]);
        assert_eq!(p.state(), ListenerState::Ready);
        p.sent();
        assert_eq!(p.state(), ListenerState::Busy);
        assert_eq!(p.feed(b"RESULT 2\nOK"), [Heard::Result(true)]);
        assert_eq!(p.state(), ListenerState::Acknowledged);
        // The answer and the next READY in one write.
        assert_eq!(p.feed(b"READY\n"), [Heard::Ready]);
        p.sent();
        assert_eq!(p.feed(b"RESULT 4\nFAILREADY\n"), [Heard::Result(false), Heard::Ready]);
        assert_eq!(p.state(), ListenerState::Ready);
    }

    #[test]
    fn messages_cut_anywhere_are_put_together() {
        let mut p = Protocol::default();
        assert!(feed_all(&mut p, &[b"RE", b"AD", b"Y"]).is_empty());
        assert_eq!(p.feed(b"\n"), [Heard::Ready]);
        p.sent();
        let whole = b"RESULT 2\nOK";
        for cut in 0..whole.len() {
            let mut q = Protocol { state: ListenerState::Busy, buf: Vec::new() };
            let heard = feed_all(&mut q, &[&whole[..cut], &whole[cut..]]);
            assert_eq!(heard, [Heard::Result(true)], "cut at {cut}");
        }
        // Byte by byte.
        let heard: Vec<Heard> = whole.iter().flat_map(|b| p.feed(&[*b])).collect();
        assert_eq!(heard, [Heard::Result(true)]);
        assert_eq!(p.state(), ListenerState::Acknowledged);
    }

    /// supervisord's default result handler: OK takes the event, any other body gives it back.
    #[test]
    fn only_ok_takes_the_event() {
        for (answer, ok) in [
            (&b"RESULT 2\nOK"[..], true),
            (b"RESULT 4\nFAIL", false),
            (b"RESULT 0\n", false),
            (b"RESULT 3\nOK!", false),
        ] {
            let mut p = Protocol { state: ListenerState::Busy, buf: Vec::new() };
            assert_eq!(p.feed(answer), [Heard::Result(ok)], "{answer:?}");
        }
    }

    #[test]
    fn garbage_makes_a_listener_unknown() {
        let garbage = |state: ListenerState, bytes: &[u8]| {
            let mut p = Protocol { state, buf: Vec::new() };
            let heard = p.feed(bytes);
            assert!(matches!(heard[..], [Heard::Garbage(_)]), "{state:?} {bytes:?}: {heard:?}");
            assert_eq!(p.state(), ListenerState::Unknown);
            // Nothing it says counts any more, not even the protocol.
            assert!(p.feed(b"READY\n").is_empty());
            assert_eq!(p.state(), ListenerState::Unknown);
        };
        use ListenerState::*;
        garbage(Acknowledged, b"hello\n");
        garbage(Acknowledged, b"READY ");
        garbage(Acknowledged, b"X");
        garbage(Ready, b"READY\n");
        garbage(Ready, b"RESULT 2\nOK");
        garbage(Busy, b"OK\n");
        garbage(Busy, b"RESULT two\n");
        garbage(Busy, b"RESULT \n");
        garbage(Busy, b"RESULT 2 \nOK");
        garbage(Busy, b"RESULT 9999999");
        garbage(Busy, b"RESULT 99999999\n");
        // Its negative twin: the same starts that can still become the protocol wait.
        let mut p = Protocol { state: Busy, buf: Vec::new() };
        assert!(p.feed(b"RESULT 99").is_empty());
        assert_eq!(p.state(), Busy);
        let mut p = Protocol::default();
        assert!(p.feed(b"READY").is_empty());
        assert_eq!(p.state(), Acknowledged);
    }

    fn exited(pid: i32) -> Event {
        let change = StateChange {
            process: ProcessRef {
                namespec: "cat".into(),
                name: "cat".into(),
                group: "cat".into(),
                program: "cat".into(),
            },
            from: State::Running,
            to: State::Exited,
            pid: Some(pid),
            exitstatus: Some(1),
            expected: Some(false),
            tries: 0,
            next_start_in: None,
            oom_killed: false,
        };
        Event::ProcessState { change, ts: String::new() }
    }

    /// The header line and the payload of what was sent.
    fn split(bytes: &[u8]) -> (String, String) {
        let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
        let header = String::from_utf8(bytes[..nl].to_vec()).unwrap();
        (header, String::from_utf8(bytes[nl + 1..].to_vec()).unwrap())
    }

    fn pool(bus: &mut Bus, buffer_size: usize) -> Pool {
        Pool::new("mon", vec![EventType::ProcessState], buffer_size, bus)
    }

    #[test]
    fn a_ready_member_gets_the_header_and_the_payload() {
        let mut bus = Bus::default();
        let mut pool = pool(&mut bus, 10);
        pool.started(7);
        bus.publish(exited(42));
        assert!(pool.dispatch(&mut bus, "kahi").is_none(), "not READY yet");
        assert_eq!(pool.state(7), Some(ListenerState::Acknowledged));
        assert!(pool.feed(7, b"READY\n").is_empty());
        let (to, bytes) = pool.dispatch(&mut bus, "kahi").unwrap();
        let (header, payload) = split(&bytes);
        assert_eq!(to, 7);
        assert_eq!(payload, "processname:cat groupname:cat from_state:RUNNING expected:0 pid:42");
        assert_eq!(
            header,
            format!(
                "ver:3.0 server:kahi serial:1 pool:mon poolserial:1 eventname:PROCESS_STATE_EXITED len:{}",
                payload.len()
            )
        );
        assert_eq!(pool.state(7), Some(ListenerState::Busy));
        assert!(pool.dispatch(&mut bus, "kahi").is_none(), "nothing more to send");
        assert_eq!(pool.feed(7, b"RESULT 2\nOK"), [Outcome::Took(1)]);
        assert_eq!(pool.state(7), Some(ListenerState::Acknowledged));
    }

    #[test]
    fn a_busy_pool_queues_and_each_member_takes_one_at_a_time() {
        let mut bus = Bus::default();
        let mut pool = pool(&mut bus, 10);
        for id in [1, 2] {
            pool.started(id);
            pool.feed(id, b"READY\n");
        }
        for pid in 100..103 {
            bus.publish(exited(pid));
        }
        let a = pool.dispatch(&mut bus, "kahi").unwrap();
        let b = pool.dispatch(&mut bus, "kahi").unwrap();
        assert_eq!((a.0, b.0), (1, 2));
        assert!(pool.dispatch(&mut bus, "kahi").is_none(), "both are BUSY: the third waits");
        assert!(split(&b.1).0.contains("serial:2 pool:mon poolserial:2 "));
        pool.feed(2, b"RESULT 2\nOKREADY\n");
        let c = pool.dispatch(&mut bus, "kahi").unwrap();
        assert_eq!(c.0, 2);
        assert!(split(&c.1).1.ends_with("pid:102"));
    }

    #[test]
    fn fail_sends_the_event_again_first() {
        let mut bus = Bus::default();
        let mut pool = pool(&mut bus, 10);
        pool.started(1);
        pool.feed(1, b"READY\n");
        bus.publish(exited(100));
        bus.publish(exited(101));
        let (_, first) = pool.dispatch(&mut bus, "kahi").unwrap();
        assert_eq!(pool.feed(1, b"RESULT 4\nFAILREADY\n"), [Outcome::Failed(1)]);
        let (_, again) = pool.dispatch(&mut bus, "kahi").unwrap();
        assert_eq!(again, first, "the same event, with the same serials");
        pool.feed(1, b"RESULT 2\nOKREADY\n");
        let (_, next) = pool.dispatch(&mut bus, "kahi").unwrap();
        assert!(split(&next).1.ends_with("pid:101"));
        assert!(split(&next).0.contains("serial:2 pool:mon poolserial:2 "));
    }

    #[test]
    fn a_member_that_dies_with_an_event_gives_it_back() {
        let mut bus = Bus::default();
        let mut pool = pool(&mut bus, 10);
        pool.started(1);
        pool.feed(1, b"READY\n");
        bus.publish(exited(100));
        let (_, first) = pool.dispatch(&mut bus, "kahi").unwrap();
        pool.exited(1);
        assert!(!pool.has(1));
        assert!(pool.dispatch(&mut bus, "kahi").is_none(), "no member");
        // Its next instance gets it once READY.
        pool.started(1);
        assert!(pool.dispatch(&mut bus, "kahi").is_none());
        pool.feed(1, b"READY\n");
        assert_eq!(pool.dispatch(&mut bus, "kahi").unwrap().1, first);
    }

    #[test]
    fn garbage_is_reported_and_the_event_goes_again_once_the_member_is_gone() {
        let mut bus = Bus::default();
        let mut pool = pool(&mut bus, 10);
        pool.started(1);
        pool.started(2);
        pool.feed(1, b"READY\n");
        bus.publish(exited(100));
        let (_, first) = pool.dispatch(&mut bus, "kahi").unwrap();
        let out = pool.feed(1, b"Traceback (most recent call last):\n");
        assert!(
            matches!(&out[..], [Outcome::Garbage(why)] if why.contains("Traceback")),
            "{out:?}"
        );
        assert_eq!(pool.state(1), Some(ListenerState::Unknown));
        pool.feed(2, b"READY\n");
        assert!(pool.dispatch(&mut bus, "kahi").is_none(), "the event is still member 1's");
        pool.exited(1);
        assert_eq!(pool.dispatch(&mut bus, "kahi"), Some((2, first)));
    }

    #[test]
    fn an_overflowing_buffer_drops_the_oldest_and_counts_it() {
        let mut bus = Bus::default();
        let mut pool = pool(&mut bus, 3);
        pool.started(1);
        for pid in 100..105 {
            bus.publish(exited(pid));
        }
        assert_eq!(pool.newly_dropped(&bus), 2);
        assert_eq!(pool.newly_dropped(&bus), 0, "each drop is told once");
        pool.feed(1, b"READY\n");
        let mut got = Vec::new();
        while let Some((_, bytes)) = pool.dispatch(&mut bus, "kahi") {
            got.push(split(&bytes));
            pool.feed(1, b"RESULT 2\nOKREADY\n");
        }
        let pids: Vec<&str> = got.iter().map(|(_, p)| &p[p.len() - 3..]).collect();
        assert_eq!(pids, ["102", "103", "104"], "the newest are kept, in order");
        // The bus's serials show the gap; the pool numbers what it takes.
        assert!(got[0].0.contains("serial:3 pool:mon poolserial:1 "), "{}", got[0].0);
        assert!(got[2].0.contains("serial:5 pool:mon poolserial:3 "), "{}", got[2].0);
    }

    #[test]
    fn a_pool_takes_only_its_types() {
        let mut bus = Bus::default();
        let mut pool = Pool::new("fatal", vec![EventType::ProcessStateFatal], 10, &mut bus);
        pool.started(1);
        pool.feed(1, b"READY\n");
        bus.publish(exited(100));
        assert!(pool.dispatch(&mut bus, "kahi").is_none());
        pool.close(&mut bus);
        assert!(!bus.wants(EventType::ProcessStateFatal), "a closed pool takes nothing");
    }
}
