//! The loop as the host of the one dispatcher (`api::dispatch`): the [`Responder`] of each
//! transport, [`Host::settle`] (the one place a reply is framed for its transport), parked
//! waits answered as their processes settle. What is a framing by nature (a follow, an event
//! stream, a long reply) goes to the transport's file: `control_serve.rs`, `http_serve.rs`.

use std::time::{Instant, SystemTime};

use mio::Token;

use super::EventLoop;
use crate::api::{
    self, ApiError, ConfigUse, Encoding, ErrorCode, Host, LogRead, LogSource, Now, Reply, Request,
    Waiter,
};
use crate::control::Mode;
use crate::events::EventType;
use crate::http::{self, Shape};
use crate::piecewise::Piecewise;
use crate::supervisor::{ProcId, Stream, Supervisor};
use crate::xmlrpc::{Exchange, Next};

/// Who gets the answer to a request, and how it is framed.
pub enum Responder {
    /// A control connection: one NDJSON line per reply, streams as more lines.
    Control(Token),
    /// An HTTP request, and how its reply becomes an answer.
    Http(http::Req, Shape),
    /// An XML-RPC request (`POST /RPC2`): the reply is its call's value, and its next call
    /// (a multicall's) is made once it is in.
    Xmlrpc(Box<Exchange<http::Req>>),
}

/// XML-RPC requests whose call was answered, waiting for their next (or their response).
/// They are driven in a loop, not from within the answer, so that a multicall of many calls
/// answered at once never recurses.
#[derive(Default)]
pub struct XmlrpcQueue {
    // Boxed as the responder carries them: moved, never copied.
    #[allow(clippy::vec_box)]
    ready: Vec<Box<Exchange<http::Req>>>,
    driving: bool,
}

impl EventLoop {
    /// Answers one request, from whichever transport.
    pub(super) fn answer_request(&mut self, to: Responder, req: Request, now: Instant) {
        api::dispatch(self, to, req, Now { mono: now, wall: SystemTime::now() });
    }

    /// Begins an XML-RPC request's calls.
    pub(super) fn xmlrpc_start(&mut self, x: Exchange<http::Req>, now: Instant) {
        self.xmlrpc.ready.push(Box::new(x));
        self.drive_xmlrpc(now);
    }

    /// Makes the calls of XML-RPC requests, one after the other, each as a request to the
    /// dispatcher; sends each request's response once its calls are answered.
    pub(super) fn drive_xmlrpc(&mut self, now: Instant) {
        if self.xmlrpc.driving {
            return;
        }
        self.xmlrpc.driving = true;
        while let Some(mut x) = self.xmlrpc.ready.pop() {
            match x.next() {
                Next::Ask(req) => self.answer_request(Responder::Xmlrpc(x), req, now),
                Next::Done(response) => {
                    let answer = http::Answer {
                        status: 200,
                        body: http::Body::Json(Box::new(move || response.into_bytes())),
                        headers: vec![("Content-Type", "text/xml".into())],
                    };
                    self.http_send(x.to, answer);
                }
            }
        }
        self.xmlrpc.driving = false;
    }

    /// Answers the parked starts, stops and restarts whose processes have settled.
    pub(super) fn poll_waiters(&mut self, now: Instant) {
        let tokens: Vec<Token> = self.waiters.keys().copied().collect();
        for token in tokens {
            let Some((to, mut w)) = self.waiters.remove(&token) else { continue };
            match w.poll(&mut self.sup, now) {
                Some(reply) => {
                    let control = matches!(to, Responder::Control(_));
                    if control && let Some(c) = self.sources.conn(token) {
                        c.mode = Mode::Idle;
                    }
                    self.settle(to, Ok(reply));
                    if control {
                        // Requests that arrived while it waited.
                        self.serve(token, now);
                    }
                }
                None => {
                    self.waiters.insert(token, (to, w));
                }
            }
        }
        let mut detached = std::mem::take(&mut self.detached);
        detached.retain_mut(|w| w.poll(&mut self.sup, now).is_none());
        self.detached.append(&mut detached);
        // A restart may have queued starts.
        if !self.sup.actions.is_empty() {
            self.perform(now);
        }
        // An XML-RPC call that waited is in: the next.
        self.drive_xmlrpc(now);
    }
}

impl Host for EventLoop {
    type Responder = Responder;

    fn supervisor(&mut self) -> &mut Supervisor {
        &mut self.sup
    }

    fn transport(to: &Responder) -> &'static str {
        match to {
            Responder::Control(_) => "the control socket",
            Responder::Http(..) => "HTTP",
            Responder::Xmlrpc(..) => "XML-RPC",
        }
    }

    fn settle(&mut self, to: Responder, reply: Result<Reply, ApiError>) {
        match to {
            Responder::Control(token) => self.reply(token, reply),
            Responder::Http(rq, shape) => self.http_send(rq, http::answer(&shape, reply)),
            Responder::Xmlrpc(mut x) => {
                x.answer(reply, &self.sup, Now { mono: Instant::now(), wall: SystemTime::now() });
                self.xmlrpc.ready.push(x);
            }
        }
    }

    fn park(&mut self, to: Responder, waiter: Waiter, now: Instant) {
        let token = match &to {
            Responder::Control(token) => {
                if let Some(c) = self.sources.conn(*token) {
                    c.mode = Mode::Waiting;
                }
                *token
            }
            Responder::Http(..) | Responder::Xmlrpc(..) => self.token(),
        };
        self.waiters.insert(token, (to, waiter));
        // Actions run now, so the waiter is checked after them.
        self.perform(now);
        self.poll_waiters(now);
    }

    fn detach(&mut self, waiter: Waiter) {
        self.detached.push(waiter);
    }

    fn clear_log_files(&mut self, ids: &[ProcId]) {
        for &id in ids {
            for stream in [Stream::Stdout, Stream::Stderr] {
                if let Some(f) = self.log_file(id, stream)
                    && let Err(e) = f.clear()
                {
                    log::warn!("unable to clear {}: {e}", f.path().display());
                }
            }
        }
    }

    fn follow(&mut self, to: Responder, log: LogSource, offset: u64, encoding: Encoding) {
        match (to, log) {
            (Responder::Control(token), log) => self.follow_log(token, log, offset, encoding),
            (Responder::Http(rq, shape), log @ LogSource::Process(..)) => {
                self.subscribe_log(rq, log, offset, shape == Shape::Text)
            }
            // supervisord's /mainlogtail, which `supervisorctl maintail -f` reads.
            (Responder::Http(rq, Shape::Text), LogSource::Daemon) => {
                self.subscribe_log(rq, LogSource::Daemon, offset, true)
            }
            // No other route asks for it (see kahi(1)). No XML-RPC method follows a log.
            (to @ (Responder::Http(..) | Responder::Xmlrpc(..)), _) => self.settle(
                to,
                Err(ApiError::new(ErrorCode::NotFound, "Kahi's own log is not served over HTTP")),
            ),
        }
    }

    fn follow_events(&mut self, to: Responder, types: Vec<EventType>) {
        match to {
            Responder::Http(rq, _) => self.subscribe_events(rq, types),
            Responder::Control(token) => self.follow_events_on(token, types),
            to @ Responder::Xmlrpc(..) => {
                self.settle(to, Err(ApiError::new(ErrorCode::NotFound, "no event stream here")))
            }
        }
    }

    fn send_log(&mut self, to: Responder, read: LogRead, now: Now) {
        match to {
            Responder::Control(token) => {
                match read.reply(&self.sup, crate::piecewise::BYTES_PER_PIECE as u64) {
                    Some(r) => self.reply(token, r),
                    None => self.send_pieces_on(token, read.pieces(), now.mono),
                }
            }
            Responder::Http(rq, _) => self.http_log(rq, read, now),
            // A value of its own: read whole (a ring holds what it was configured to).
            to @ Responder::Xmlrpc(..) => {
                let reply = read.reply(&self.sup, u64::MAX).unwrap_or_else(|| {
                    Err(ApiError::new(ErrorCode::ServerError, "the log could not be read"))
                });
                self.settle(to, reply)
            }
        }
    }

    fn send_pieces(&mut self, to: Responder, reply: Piecewise, now: Now) {
        match to {
            Responder::Control(token) => self.send_pieces_on(token, reply, now.mono),
            // The front serializes it, off the loop.
            to @ (Responder::Http(..) | Responder::Xmlrpc(..)) => {
                let whole = reply.whole(&self.sup, now);
                self.settle(to, Ok(whole))
            }
        }
    }

    fn read_config(&mut self, what: ConfigUse, now: Instant) -> Result<Reply, ApiError> {
        self.config_reply(what, now)
    }

    fn feed_stdin(&mut self, id: ProcId, name: String, data: String) -> Result<Reply, ApiError> {
        if self.is_listener(id) {
            return Err(ApiError::new(
                crate::api::ErrorCode::Conflict,
                format!("{name} is an event listener: its stdin carries the events Kahi sends it"),
            ));
        }
        self.write_stdin(id, name, data.as_bytes())
    }

    fn metrics(&mut self, now: Now) -> String {
        let events = self.event_stats();
        let mut out = crate::metrics::render(
            &self.sup,
            now,
            &http::counts(),
            &|id, s| self.log_state(id, s),
            &events,
        );
        crate::metrics::webhooks(&mut out, &self.webhook_counts());
        out
    }

    fn send_remote(&mut self, kind: String, data: String) -> usize {
        self.publish_remote(kind, data)
    }

    fn begin_shutdown(&mut self, now: Instant) {
        self.shutdown(now);
    }
}
