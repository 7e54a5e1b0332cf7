//! The HTTP front: one thread with its own poll loop serves every connection of the
//! `[server.http] listen` addresses. It reads request heads and bodies, checks credentials it
//! already knows, hands each whole request to the event loop, and writes the answers the loop
//! sends back, without blocking on any client. It never touches supervisor state.
//!
//! What a client can hold is bounded here:
//!
//! - at most `max_connections` connections per listen address. At the limit a new connection
//!   takes the place of the one that has waited longest for its request head (idle or half
//!   sent); only when every connection has a request in hand is the new one closed. A probe
//!   sends its head at once, so it always gets a place however many clients stall;
//! - a request head must be whole within [`HEAD_TIMEOUT`] of its first byte (of the
//!   connection, for the first request), and at most [`crate::http_wire::MAX_HEAD`] bytes; its
//!   body within the same deadline, at most [`crate::http::MAX_BODY`] bytes. Past either, 408,
//!   431 or 413, and the connection closes;
//! - a kept-alive connection waits at most [`IDLE`] for its next request;
//! - a client that takes none of the bytes waiting for it for [`STALL`] is dropped. Long
//!   answers (a large log, event streams) come from the loop in pieces, the next only once the client
//!   has taken most of the last ([`LOW_WATER`]), and not while [`TOTAL`] bytes wait for all
//!   clients together; past that, new requests but the probes get 503.
//!
//! Threads: this one, and [`VERIFIERS`] that check new passwords with bcrypt (slow by design),
//! whatever the number of connections.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::http::{Answer, Incoming, MAX_BODY};
use crate::http_auth::Gate;
use crate::http_conn::{Chunk, Conn, State, Step, answer, step};
use crate::http_tls::{Got, Io, Listener, Peer};
use crate::http_wire::{MAX_HEAD, Req, answer_head, chunk};

/// How long a request head (and its body) may take from its first byte.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may wait for its next request.
pub const IDLE: Duration = Duration::from_secs(60);
/// How long a client may take none of the bytes waiting for it.
pub const STALL: Duration = Duration::from_secs(10);
/// A long answer's next piece is made once less than this waits for its client.
pub const LOW_WATER: usize = 64 << 10;
/// Bytes waiting for all clients together past which no long answer gets its next piece.
pub const TOTAL: usize = 64 << 20;
/// How long, and for how many bytes, a closing connection reads what its client still sends.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 << 10;
/// The socket send buffer of a connection with a long answer.
const LONG_SNDBUF: usize = 256 << 10;
/// Threads checking passwords with bcrypt.
pub const VERIFIERS: usize = 2;
/// Passwords waiting to be checked at most; past this, 503.
const VERIFY_QUEUE: usize = 16;
/// Deadlines are looked at no more often than this.
const SWEEP: Duration = Duration::from_millis(250);
/// A comment line this often keeps proxies from timing out a quiet event stream and finds
/// clients that are gone.
const KEEPALIVE: Duration = Duration::from_secs(15);

const WAKE: Token = Token(usize::MAX);

/// What the loop (and the password checkers) send the front.
pub enum ToFront {
    /// A whole answer to the request on `conn`.
    Answer {
        rq: Req,
        answer: Answer,
    },
    /// A long answer begins: its head; its body comes in [`ToFront::Data`] as the loop makes it.
    Open {
        rq: Req,
        head: Vec<u8>,
        chunked: bool,
        sse: bool,
        follow: bool,
        outlet: Arc<OutletState>,
    },
    Data {
        conn: u64,
        bytes: Vec<u8>,
    },
    /// The long answer on `conn` is complete (an event stream: closed).
    End {
        conn: u64,
    },
    /// A password was checked: the request goes on to the loop, or is refused.
    Verified {
        rq: Req,
        body: Vec<u8>,
        refused: Option<Answer>,
    },
    /// Tell the loop once every answer handed so far is written.
    Flush,
}

/// What the loop and the front share about one long answer.
#[derive(Default)]
pub struct OutletState {
    /// Bytes sent by the loop and not yet taken by the client.
    pub queued: AtomicUsize,
    /// The client is gone: nothing more to make.
    pub gone: AtomicBool,
}

/// The front's channels and counters, as the loop holds them.
pub struct Handle {
    pub tx: Sender<ToFront>,
    pub waker: Arc<mio::Waker>,
    /// Bytes waiting for all clients.
    pub total: Arc<AtomicUsize>,
    /// Set by the front when a [`ToFront::Flush`] is done.
    pub flushed: Arc<AtomicBool>,
}

impl Handle {
    pub fn send(&self, m: ToFront) {
        if self.tx.send(m).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// A listen address, bound (non-blocking), with its TLS configuration.
pub struct Listen {
    pub listener: Listener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// A Unix socket's clients running as root or as the daemon's user are admin without a
    /// password.
    pub peer_credentials: bool,
}

/// Starts the front thread and the password checkers.
pub fn start(
    listens: Vec<Listen>,
    max_connections: usize,
    gate: Arc<Gate>,
    to_loop: Sender<Incoming>,
    loop_waker: Arc<mio::Waker>,
) -> io::Result<Handle> {
    let poll = Poll::new()?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE)?);
    let (tx, rx) = std::sync::mpsc::channel();
    let (tx2, waker2) = (tx.clone(), waker.clone());
    let mut listeners = Vec::new();
    for (i, mut l) in listens.into_iter().enumerate() {
        poll.registry().register(&mut l.listener, Token(i), Interest::READABLE)?;
        listeners.push((l, 0usize));
    }
    let verify_tx = crate::http_auth::start_checkers(
        VERIFIERS,
        VERIFY_QUEUE,
        &gate,
        move |rq, body, refused| {
            let done = tx2.send(ToFront::Verified { rq, body, refused }).is_ok();
            let _ = waker2.wake();
            done
        },
        &loop_waker,
    )?;
    let total = Arc::new(AtomicUsize::new(0));
    let flushed = Arc::new(AtomicBool::new(false));
    let front = Front {
        poll,
        listeners,
        me: nix::unistd::geteuid().as_raw(),
        max_connections,
        conns: HashMap::new(),
        next: 1 << 20,
        rx,
        gate,
        verify: verify_tx,
        to_loop,
        loop_waker,
        total: total.clone(),
        flushed: flushed.clone(),
        flush_asked: false,
        next_sweep: None,
        last_sweep: Instant::now(),
        refused: 0,
        accept_failures: 0,
        retry_accept: false,
    };
    std::thread::Builder::new().name("http-front".into()).spawn(move || front.run())?;
    Ok(Handle { tx, waker, total, flushed })
}

struct Front {
    poll: Poll,
    /// Each listener and how many connections it has.
    listeners: Vec<(Listen, usize)>,
    /// The daemon's user.
    me: u32,
    max_connections: usize,
    /// By token; tokens are never reused.
    conns: HashMap<u64, Conn>,
    next: u64,
    rx: Receiver<ToFront>,
    gate: Arc<Gate>,
    verify: SyncSender<(Req, Vec<u8>)>,
    to_loop: Sender<Incoming>,
    loop_waker: Arc<mio::Waker>,
    total: Arc<AtomicUsize>,
    flushed: Arc<AtomicBool>,
    flush_asked: bool,
    next_sweep: Option<Instant>,
    last_sweep: Instant,
    /// Connections closed at once for want of a place.
    refused: u64,
    /// Accepts that failed (out of descriptors, say), and whether to try again.
    accept_failures: u64,
    retry_accept: bool,
}

impl Front {
    fn run(mut self) {
        crate::logs::daemon_log::off_loop(self.loop_waker.clone());
        let mut events = Events::with_capacity(256);
        let mut scratch = vec![0u8; 64 << 10];
        loop {
            let timeout = self
                .next_sweep
                .map(|t| t.max(self.last_sweep + SWEEP).saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::error!("HTTP: poll: {e}");
                return;
            }
            let now = Instant::now();
            let mut handed = false;
            let total_before = self.total.load(Ordering::Relaxed);
            for event in events.iter() {
                match event.token() {
                    WAKE => {}
                    Token(t) if t < self.listeners.len() => self.accept(t, now, &mut scratch),
                    Token(t) => handed |= self.drive(t as u64, now, &mut scratch),
                }
            }
            loop {
                match self.rx.try_recv() {
                    Ok(m) => handed |= self.message(m, now, &mut scratch),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if self.next_sweep.is_some_and(|t| t <= now && self.last_sweep + SWEEP <= now) {
                self.sweep(now, &mut scratch);
            }
            if self.flush_asked && self.conns.values().all(|c| c.out_len == 0) {
                self.flush_asked = false;
                self.flushed.store(true, Ordering::SeqCst);
            }
            // Long answers held back for the total may go on.
            handed |= total_before >= TOTAL && self.total.load(Ordering::Relaxed) < TOTAL;
            if handed {
                let _ = self.loop_waker.wake();
            }
        }
    }

    fn accept(&mut self, l: usize, now: Instant, scratch: &mut [u8]) {
        loop {
            let (sock, peer) = match self.listeners[l].0.listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // EMFILE and the like: the connection stays in the backlog, and accepting
                    // is tried again at the next sweep (a deadline may free a descriptor).
                    self.accept_failures += 1;
                    if self.accept_failures.is_power_of_two() {
                        log::warn!(
                            "HTTP: unable to accept a connection: {e} ({} times so far)",
                            self.accept_failures
                        );
                    }
                    self.retry_accept = true;
                    self.next_sweep = Some(now);
                    return;
                }
            };
            let from = peer.map_or("an unknown peer".to_string(), |p| p.to_string());
            if self.listeners[l].1 >= self.max_connections && !self.make_room(l) {
                self.refused += 1;
                if self.refused.is_power_of_two() {
                    log::warn!(
                        "HTTP: {} connections open, the most allowed (max_connections), each with a request in hand; closed the one from {from} ({} so far)",
                        self.listeners[l].1,
                        self.refused
                    );
                }
                continue;
            }
            let io = match Io::new(sock, self.listeners[l].0.tls.as_ref()) {
                Ok(io) => io,
                Err(e) => {
                    log::warn!("HTTP: unable to serve a connection from {from}: {e}");
                    continue;
                }
            };
            let trusted = self.listeners[l].0.peer_credentials
                && matches!(peer, Some(Peer::Uid(uid)) if uid == 0 || uid == self.me);
            let id = self.next;
            self.next += 1;
            let mut conn = Conn {
                id,
                io,
                peer,
                trusted,
                listener: l,
                inbuf: Vec::new(),
                state: State::Head { since: Some(now) },
                waiting_since: now,
                out: VecDeque::new(),
                out_pos: 0,
                out_len: 0,
                progress: now,
                close: false,
                eof: false,
                drained: false,
                linger: true,
            };
            let both = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.poll.registry().register(conn.io.sock(), Token(id as usize), both)
            {
                log::warn!("HTTP: unable to serve a connection from {from}: {e}");
                continue;
            }
            self.listeners[l].1 += 1;
            self.conns.insert(id, conn);
            // Bytes may have come with the connection.
            if self.drive(id, now, scratch) {
                let _ = self.loop_waker.wake();
            }
        }
    }

    /// Closes the connection of listener `l` that has waited longest for a request head, if
    /// any waits for one.
    fn make_room(&mut self, l: usize) -> bool {
        let oldest = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.listener == l
                    && matches!(c.state, State::Head { .. } | State::Linger { .. })
                    && c.out_len == 0
            })
            .min_by_key(|(_, c)| c.waiting_since)
            .map(|(id, _)| *id);
        match oldest {
            Some(id) => {
                self.close(id);
                true
            }
            None => false,
        }
    }

    fn close(&mut self, id: u64) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(c.io.sock());
            self.total.fetch_sub(c.out_len, Ordering::Relaxed);
            self.listeners[c.listener].1 -= 1;
            if let State::Long { outlet, .. } = &c.state {
                outlet.gone.store(true, Ordering::SeqCst);
                // The loop forgets the answer next time it looks.
                let _ = self.loop_waker.wake();
            }
        }
    }

    /// Moves the connection on as far as it goes now; true when a request went to the loop.
    fn drive(&mut self, id: u64, now: Instant, scratch: &mut [u8]) -> bool {
        let Some(c) = self.conns.get_mut(&id) else { return false };
        let mut handed = false;
        let ok = loop {
            if !c.write(&self.total, now) {
                break false;
            }
            if c.out_len > 0 || c.io.unsent() {
                if c.close {
                    break true;
                }
                // Nothing more is read until the client takes its answer (a client that
                // pipelines requests without reading gets no further).
                if matches!(c.state, State::Head { .. }) {
                    break true;
                }
            } else if c.close && !matches!(c.state, State::Long { .. }) {
                // Closed once its answer is written (a long one: once it has ended).
                if c.eof || !c.linger {
                    break false;
                }
                if !matches!(c.state, State::Linger { .. }) {
                    let _ = c.io.sock().shutdown(std::net::Shutdown::Write);
                    c.state = State::Linger { until: now + LINGER, dropped: 0 };
                    c.inbuf = Vec::new();
                }
                let got = match c.io.read(scratch, &mut c.inbuf, scratch.len()) {
                    Ok(Got::Some) => c.inbuf.len(),
                    _ => break false,
                };
                c.inbuf.clear();
                let State::Linger { dropped, .. } = &mut c.state else { break false };
                *dropped += got;
                if *dropped > LINGER_BYTES {
                    break false;
                }
                if got == 0 {
                    break true;
                }
                continue;
            }
            // Read what may be read now.
            let room = match &c.state {
                State::Head { .. } => MAX_HEAD + 1 - c.inbuf.len().min(MAX_HEAD + 1),
                State::Body { rq, .. } => rq.head.length.saturating_sub(c.inbuf.len()),
                // Only to see the client go: what it sends meanwhile waits for its turn, up
                // to a head's worth.
                _ => MAX_HEAD.saturating_sub(c.inbuf.len()),
            };
            let before = c.inbuf.len();
            match c.io.read(scratch, &mut c.inbuf, room) {
                Ok(Got::Some) => {}
                Ok(Got::Eof) => c.eof = true,
                Err(_) => break false,
            }
            if c.inbuf.len() > MAX_HEAD + MAX_BODY {
                c.inbuf.truncate(MAX_HEAD + MAX_BODY);
            }
            let got = c.inbuf.len() > before;
            let out_before = c.out_len;
            match step(c, &self.gate, &self.total, now) {
                Step::Wait => {}
                Step::Hand(incoming) => {
                    handed |= self.to_loop.send(incoming).is_ok();
                }
                Step::Verify(rq, body) => {
                    if let Err(e) = self.verify.try_send((rq, body)) {
                        let (std::sync::mpsc::TrySendError::Full((rq, _))
                        | std::sync::mpsc::TrySendError::Disconnected((rq, _))) = e;
                        let a = crate::http::refusal(503, "too many logins being checked at once");
                        answer(c, &rq, a, &self.total, now);
                    }
                }
                Step::Answer(rq, a) => answer(c, &rq, a, &self.total, now),
                Step::Close => break false,
            }
            if c.eof && matches!(c.state, State::Head { .. }) && c.out_len == 0 {
                // Nothing more will come; what was asked has been answered.
                break false;
            }
            // A client that closed its side of a stream without end (plain text such as
            // /logtail has no keep-alive to find out otherwise) has gone: its place is freed.
            if c.eof && matches!(c.state, State::Long { follow: true, .. }) {
                break false;
            }
            let moved = got || c.out_len > out_before;
            if !moved || c.eof {
                break true;
            }
        };
        if let Some(c) = self.conns.get_mut(&id)
            && std::mem::take(&mut c.drained)
        {
            let _ = self.loop_waker.wake();
        }
        let deadline = self.conns.get(&id).and_then(Conn::deadline);
        self.arm(deadline);
        if !ok {
            self.close(id);
        }
        handed
    }

    fn arm(&mut self, at: Option<Instant>) {
        if let Some(at) = at {
            self.next_sweep = Some(self.next_sweep.map_or(at, |t| t.min(at)));
        }
    }

    /// Handles one message; true when a request went to the loop.
    fn message(&mut self, m: ToFront, now: Instant, scratch: &mut [u8]) -> bool {
        let id = match m {
            ToFront::Answer { rq, answer: a } => {
                let Some(c) = self.conns.get_mut(&rq.conn) else { return false };
                answer(c, &rq, a, &self.total, now);
                c.state = State::Head { since: None };
                c.waiting_since = now;
                rq.conn
            }
            ToFront::Open { rq, head, chunked, sse, follow, outlet } => {
                let Some(c) = self.conns.get_mut(&rq.conn) else {
                    outlet.gone.store(true, Ordering::SeqCst);
                    return false;
                };
                crate::http::count(rq.method(), 200);
                // The kernel holds at most this much of a long answer for the client too
                // (on loopback it would take megabytes each, made by the loop for nothing).
                let _ = nix::sys::socket::setsockopt(
                    &*c.io.sock(),
                    nix::sys::socket::sockopt::SndBuf,
                    &LONG_SNDBUF,
                );
                // The connection closes once the answer ends if it has no other end.
                c.close |= rq.head.close || sse || !chunked;
                c.queue(Chunk::Own(head), &self.total, now);
                c.state = State::Long { chunked, sse, follow, outlet, keepalive: now + KEEPALIVE };
                rq.conn
            }
            ToFront::Data { conn, bytes } => {
                let Some(c) = self.conns.get_mut(&conn) else { return false };
                let State::Long { chunked, outlet, .. } = &c.state else { return false };
                let framed = if *chunked { chunk(&bytes) } else { bytes };
                // `queued` counts the bytes the loop sent; it falls by every byte written,
                // framing included, so it reaches 0 a little early.
                let _ = outlet;
                c.queue(Chunk::Own(framed), &self.total, now);
                conn
            }
            ToFront::End { conn } => {
                let Some(c) = self.conns.get_mut(&conn) else { return false };
                let State::Long { chunked, sse, .. } = &c.state else { return false };
                if *sse {
                    c.close = true;
                } else if *chunked {
                    c.queue(Chunk::Own(b"0\r\n\r\n".to_vec()), &self.total, now);
                }
                c.state = State::Head { since: None };
                c.waiting_since = now;
                conn
            }
            ToFront::Verified { rq, body, refused } => {
                let Some(c) = self.conns.get_mut(&rq.conn) else { return false };
                match refused {
                    Some(a) => answer(c, &rq, a, &self.total, now),
                    None => {
                        c.state = State::Loop;
                        return self
                            .to_loop
                            .send(Incoming { rq, body, authenticated: true })
                            .is_ok();
                    }
                }
                rq.conn
            }
            ToFront::Flush => {
                self.flush_asked = true;
                return false;
            }
        };
        self.drive(id, now, scratch)
    }

    /// Closes connections past their deadlines; sends event streams their keep-alive.
    fn sweep(&mut self, now: Instant, scratch: &mut [u8]) {
        self.last_sweep = now;
        self.next_sweep = None;
        let mut late = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            if let State::Long { sse: true, keepalive, .. } = &mut c.state
                && *keepalive <= now
            {
                *keepalive = now + KEEPALIVE;
                c.queue(Chunk::Own(b": keepalive\n\n".to_vec()), &self.total, now);
                late.push((*id, false));
                continue;
            }
            if c.deadline().is_some_and(|d| d <= now) {
                late.push((*id, true));
            }
        }
        for (id, expired) in late {
            if !expired {
                self.drive(id, now, scratch);
                continue;
            }
            // A client with bytes waiting may have taken some that the poll did not report (a
            // TCP socket says writable only once a third of its buffer is free): one that
            // reads, however slowly, is not stalled.
            if let Some(c) = self.conns.get_mut(&id)
                && c.out_len > 0
                && c.write(&self.total, now)
                && c.deadline().is_some_and(|d| d > now)
            {
                if std::mem::take(&mut c.drained) {
                    let _ = self.loop_waker.wake();
                }
                continue;
            }
            if let Some(c) = self.conns.get_mut(&id)
                && c.out_len == 0
                && matches!(c.state, State::Head { since: Some(_) } | State::Body { .. })
            {
                // A request that took too long: say so, if the client takes it now.
                let why = "the request was not complete within the time allowed";
                let body = crate::http::refusal(408, why).body.into_bytes();
                let mut out = answer_head(false, 408, &[], Some(body.len()), true);
                out.extend_from_slice(&body);
                let _ = c.io.write(&[&out]);
            }
            self.close(id);
        }
        let deadlines: Vec<Option<Instant>> = self.conns.values().map(Conn::deadline).collect();
        for d in deadlines {
            self.arm(d);
        }
        if std::mem::take(&mut self.retry_accept) {
            for l in 0..self.listeners.len() {
                self.accept(l, now, scratch);
            }
        }
    }
}
