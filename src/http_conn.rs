//! One HTTP connection as the front sees it: where it is in its request, the bytes waiting
//! for its client, and what newly read bytes make of it ([`step`]). No poll and no thread:
//! [`crate::http_front`] drives it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::http::{Answer, Body, Incoming, MAX_BODY, Shared};
use crate::http_auth::{Check, Gate};
use crate::http_front::{HEAD_TIMEOUT, IDLE, LOW_WATER, OutletState, STALL, TOTAL};
use crate::http_tls::{Io, Peer};
use crate::http_wire::{Head, MAX_HEAD, ParsedHead, Req, answer_head, parse_head};

/// Where a connection is in its request.
pub enum State {
    /// Waiting for a request head; `since` when the head's first byte came (for the first
    /// request of a connection: when it was accepted).
    Head { since: Option<Instant> },
    /// Reading the body of `rq`, within the deadline of its head, whose first byte came at
    /// `since`.
    Body { rq: Req, since: Instant },
    /// A password is being checked.
    Verifying,
    /// The loop has the request.
    Loop,
    /// A long answer is being sent.
    /// `follow`: it ends only when the client goes (an event stream, a log followed), so a
    /// client that closes its side has gone.
    Long { chunked: bool, sse: bool, follow: bool, outlet: Arc<OutletState>, keepalive: Instant },
    /// Answered and closed for writing; what the client still sends is read and dropped
    /// until it closes too, so that closing does not reset the connection before the client
    /// has read the answer (a refused body it is still sending, say).
    Linger { until: Instant, dropped: usize },
}

/// Bytes waiting for a client.
pub enum Chunk {
    Own(Vec<u8>),
    Shared(Arc<Shared>),
}

impl Chunk {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Own(b) => b,
            Chunk::Shared(s) => s.bytes(),
        }
    }
}

pub struct Conn {
    /// Its token, and the connection a request names.
    pub id: u64,
    pub io: Io,
    pub peer: Option<Peer>,
    /// Its peer credentials make it admin (see [`Req::trusted`]).
    pub trusted: bool,
    /// Which listener it came from (its connections are counted against the limit there).
    pub listener: usize,
    pub inbuf: Vec<u8>,
    pub state: State,
    /// Since when it waits for a request (the order in which connections give way).
    pub waiting_since: Instant,
    pub out: VecDeque<Chunk>,
    /// Bytes of `out[0]` already written.
    pub out_pos: usize,
    pub out_len: usize,
    /// When the client last took a byte (or when bytes began waiting for it).
    pub progress: Instant,
    /// Close once `out` is written.
    pub close: bool,
    /// The client closed its side.
    pub eof: bool,
    /// A long answer fell below [`LOW_WATER`]: the loop is to make its next piece.
    pub drained: bool,
    /// Read what the client still sends for a while after the last answer before closing
    /// (see [`State::Linger`]).
    pub linger: bool,
}

impl Conn {
    /// When this connection must be looked at even if nothing happens.
    pub fn deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |d| d.min(t)));
        if self.out_len > 0 || self.io.unsent() {
            at(self.progress + STALL);
        }
        match &self.state {
            State::Head { since: Some(s) } => at(*s + HEAD_TIMEOUT),
            State::Head { since: None } => at(self.waiting_since + IDLE),
            State::Body { since, .. } => at(*since + HEAD_TIMEOUT),
            State::Long { sse: true, keepalive, .. } => at(*keepalive),
            State::Linger { until, .. } => at(*until),
            _ => {}
        }
        d
    }

    pub fn queue(&mut self, chunk: Chunk, total: &AtomicUsize, now: Instant) {
        let n = chunk.bytes().len();
        if n == 0 {
            return;
        }
        if self.out_len == 0 {
            self.progress = now;
        }
        self.out_len += n;
        total.fetch_add(n, Ordering::Relaxed);
        self.out.push_back(chunk);
    }

    /// Writes what the client takes now; false when the connection failed.
    pub fn write(&mut self, total: &AtomicUsize, now: Instant) -> bool {
        if self.io.unsent() && self.io.push().is_err() {
            return false;
        }
        while self.out_len > 0 {
            let mut bufs: Vec<&[u8]> = Vec::with_capacity(self.out.len().min(8));
            for (i, c) in self.out.iter().take(8).enumerate() {
                bufs.push(if i == 0 { &c.bytes()[self.out_pos..] } else { c.bytes() });
            }
            let n = match self.io.write(&bufs) {
                Ok(0) => return true,
                Ok(n) => n,
                Err(_) => return false,
            };
            self.progress = now;
            self.out_len -= n;
            total.fetch_sub(n, Ordering::Relaxed);
            if let State::Long { outlet, .. } = &self.state {
                let before = outlet
                    .queued
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                        Some(q.saturating_sub(n))
                    })
                    .unwrap_or(0);
                // The loop makes the next piece once the client has taken most of this one.
                self.drained |= before >= LOW_WATER && before.saturating_sub(n) < LOW_WATER;
            }
            let mut left = n;
            while left > 0 {
                let first = self.out[0].bytes().len() - self.out_pos;
                if left >= first {
                    left -= first;
                    self.out.pop_front();
                    self.out_pos = 0;
                } else {
                    self.out_pos += left;
                    left = 0;
                }
            }
        }
        true
    }
}

/// What a connection's bytes make of it.
pub enum Step {
    Wait,
    Hand(Incoming),
    Verify(Req, Vec<u8>),
    Answer(Req, Answer),
    Close,
}

/// Parses what came; moves the connection to its next state.
pub fn step(c: &mut Conn, gate: &Gate, total: &AtomicUsize, now: Instant) -> Step {
    if let State::Head { since } = &mut c.state {
        if c.inbuf.is_empty() {
            return Step::Wait;
        }
        since.get_or_insert(now);
        let since = since.unwrap_or(now);
        match parse_head(&c.inbuf, MAX_BODY) {
            Head::Partial => return Step::Wait,
            Head::Bad(status, why) => {
                c.inbuf.clear();
                // A head past every limit is a flood: nothing more of it is read.
                c.linger = status != 431;
                let head = ParsedHead { method: "GET".into(), close: true, ..Default::default() };
                let rq = Req { conn: 0, head, peer: c.peer, trusted: c.trusted };
                return Step::Answer(rq, crate::http::refusal(status, why));
            }
            Head::Done(h, len) => {
                c.inbuf.drain(..len);
                if c.inbuf.capacity() > 4 * MAX_HEAD {
                    c.inbuf.shrink_to(MAX_HEAD);
                }
                if h.expect_continue && h.length > c.inbuf.len() {
                    c.queue(Chunk::Own(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()), total, now);
                }
                let rq = Req { conn: c.id, head: h, peer: c.peer, trusted: c.trusted };
                c.state = State::Body { rq, since };
            }
        }
    }
    let State::Body { rq, .. } = &c.state else { return Step::Wait };
    if c.inbuf.len() < rq.head.length {
        return if c.eof { Step::Close } else { Step::Wait };
    }
    let State::Body { rq, .. } = std::mem::replace(&mut c.state, State::Loop) else {
        return Step::Wait;
    };
    let body: Vec<u8> = c.inbuf.drain(..rq.head.length).collect();
    // Clients that do not read what they asked for hold their answers for STALL at most; while
    // that adds up to TOTAL for all of them, only the probes are served.
    if total.load(Ordering::Relaxed) > TOTAL
        && crate::http_auth::required_role(rq.method(), rq.url(), true).is_some()
    {
        let why = "too many answers wait for their clients; try again";
        return Step::Answer(rq, crate::http::refusal(503, why));
    }
    match gate.check(&rq) {
        Check::Pass { authenticated } => Step::Hand(Incoming { rq, body, authenticated }),
        Check::Verify => {
            c.state = State::Verifying;
            Step::Verify(rq, body)
        }
        Check::Refuse(a) => Step::Answer(rq, a),
    }
}

/// Queues an answer to `rq` on its connection.
pub fn answer(c: &mut Conn, rq: &Req, a: Answer, total: &AtomicUsize, now: Instant) {
    crate::http::count(rq.method(), a.status);
    c.close |= rq.head.close || c.eof;
    let head_only = rq.method() == "HEAD";
    match a.body {
        Body::Shared(s) => {
            let head =
                answer_head(rq.head.http10, a.status, &a.headers, Some(s.bytes().len()), c.close);
            c.queue(Chunk::Own(head), total, now);
            if !head_only {
                c.queue(Chunk::Shared(s), total, now);
            }
        }
        body => {
            let body = body.into_bytes();
            let mut out =
                answer_head(rq.head.http10, a.status, &a.headers, Some(body.len()), c.close);
            if !head_only {
                out.extend_from_slice(&body);
            }
            c.queue(Chunk::Own(out), total, now);
        }
    }
    if !matches!(c.state, State::Head { .. }) {
        c.state = State::Head { since: None };
        c.waiting_since = now;
    }
}
