//! Requests the HTTP front parsed, answered on the loop (the front never touches the
//! supervisor): routed to an `api::Request` and handed to the one dispatcher
//! (`dispatch.rs`), as the control socket's are; what is HTTP's own framing is here: the
//! shared snapshot of the process list, log reads sent in pieces, Server-Sent Events.

use std::time::{Instant, SystemTime};

use super::EventLoop;
use super::respond::Responder;
use crate::api::{self, ApiError, ErrorCode, LogSource, Now, Request};
use crate::events::{Event, EventType, SubId};
use crate::http::{self, Answer, Http, Route, Shape};
use crate::supervisor::{ProcId, Stream};

impl EventLoop {
    /// Answers every request the HTTP threads have parsed.
    pub(super) fn serve_http(&mut self, now: Instant) {
        // What the HTTP threads logged: only the loop writes the daemon's log.
        crate::logs::daemon_log::take_deferred();
        // Requests for the whole process list that come together get one snapshot: nothing
        // can change between them unless a request that changes something comes in between.
        let mut all: Option<std::sync::Arc<http::Shared>> = None;
        while let Some(incoming) = self.http.as_ref().and_then(Http::next) {
            self.http_request(incoming, &mut all, now);
            self.perform(now);
        }
        // Long answers and log streams whose clients have taken most of what they were sent.
        let clock = Now { mono: now, wall: SystemTime::now() };
        if let Some(http) = &mut self.http {
            http.pump(&self.sup, clock);
        }
        self.forget_gone_subscribers();
        let mut i = self.subscribers.len();
        while i > 0 {
            i -= 1;
            if matches!(&self.subscribers[i], (sub, Feed::Log { .. }) if sub.ready()) {
                self.feed_log(i);
            }
        }
        self.feed_events();
    }

    /// Routes a request and hands it to the dispatcher; `all` is the process list's snapshot
    /// while nothing has changed.
    fn http_request(
        &mut self,
        incoming: http::Incoming,
        all: &mut Option<std::sync::Arc<http::Shared>>,
        now: Instant,
    ) {
        let http::Incoming { rq, body, authenticated } = incoming;
        let route = http::route(rq.method(), rq.url(), &body);
        // A browser tricked by another site into asking: nothing is done.
        if let Some(a) =
            crate::dashboard::csrf::refuse(&rq, &route, &self.sup.config.server.http.users)
        {
            return self.http_send(rq, a);
        }
        let (mut req, shape) = match route {
            Route::Api(req, shape) => (req, shape),
            Route::Dashboard(page) => {
                let clock = Now { mono: now, wall: SystemTime::now() };
                match crate::dashboard::serve(page, &rq, &self.sup, clock) {
                    crate::dashboard::Served::Answer(a) => return self.http_send(rq, a),
                    crate::dashboard::Served::Ask(req, shape) => (req, shape),
                }
            }
            Route::Xmlrpc => return self.xmlrpc_request(rq, &body, now),
            Route::OpenApi => {
                let a = Answer::raw(200, "application/json", http::OPENAPI.as_bytes());
                return self.http_send(rq, a);
            }
            Route::MethodNotAllowed(allow) => {
                let e = ApiError::new(
                    ErrorCode::BadRequest,
                    format!("{} is not allowed here; use {allow}", rq.method()),
                );
                let mut a = Answer::json(405, &e);
                a.headers.push(("Allow", allow.to_string()));
                return self.http_send(rq, a);
            }
            Route::Invalid { why, .. } => {
                return self
                    .http_send(rq, Answer::error(&ApiError::new(ErrorCode::BadRequest, why)));
            }
            Route::NotFound => {
                let path = rq.url().split('?').next().unwrap_or("");
                let e = ApiError::new(ErrorCode::NotFound, format!("no such endpoint: {path}"));
                return self.http_send(rq, Answer::error(&e));
            }
        };
        if matches!((&req, &shape), (Request::Status { names }, Shape::Plain) if names.is_empty()) {
            let clock = Now { mono: now, wall: SystemTime::now() };
            let shared = all.get_or_insert_with(|| {
                let processes: Vec<api::ProcessInfo> =
                    self.sup.iter().map(|e| api::process_info(e, clock)).collect();
                http::Shared::new(processes)
            });
            let body = http::Body::Shared(shared.clone());
            return self.http_send(rq, Answer { status: 200, body, headers: Vec::new() });
        }
        if req.role() > crate::config::Role::Viewer {
            *all = None;
        }
        // What only HTTP knows: whether the client is a user, and the last event it saw.
        match &mut req {
            Request::Ready { anonymous, .. } => *anonymous = !authenticated,
            Request::Tail { follow: true, offset, .. } => {
                *offset = rq.header("Last-Event-ID").and_then(|v| v.trim().parse::<u64>().ok());
            }
            _ => {}
        }
        self.answer_request(Responder::Http(rq, shape), req, now);
    }

    /// An XML-RPC request: its calls are made one after the other (`respond.rs`), once the
    /// client is seen to have the role every one of them needs.
    fn xmlrpc_request(&mut self, rq: http::Req, body: &[u8], now: Instant) {
        let x = crate::xmlrpc::Exchange::new(rq, body, &self.sup);
        let need = x.role();
        match crate::http_auth::role_of(&x.to, &self.sup.config.server.http.users) {
            Some(role) if role >= need => {
                self.xmlrpc_start(x, now);
            }
            role => {
                let has = role.map_or("none", |r| r.name());
                let why = format!("this needs the role {}; the user has {has}", need.name());
                let answer = Answer::error(&ApiError::new(ErrorCode::Forbidden, why));
                self.http_send(x.to, answer);
            }
        }
    }

    /// Hands an answer to the HTTP threads.
    pub(super) fn http_send(&mut self, rq: http::Req, answer: Answer) {
        if let Some(http) = &self.http {
            http.answer(rq, answer);
        }
    }

    /// A log read over HTTP: a short one is copied out of the ring here (the front makes it
    /// JSON); a long one is sent in pieces made from the ring as the client takes them.
    pub(super) fn http_log(&mut self, rq: http::Req, read: api::LogRead, now: Now) {
        if read.end - read.from > http::LONG_LOG {
            if let Some(http) = &mut self.http {
                http.stream(rq, read.pieces().for_http(), &self.sup, now);
            }
            return;
        }
        let Some(entry) = self.sup.get(read.id) else { return };
        let data = entry.ring(read.stream).read(read.from, (read.end - read.from) as usize);
        let chunk = http::LogChunk {
            data: data.data,
            offset: data.offset,
            skipped: read.skipped,
            encoding: read.encoding,
        };
        self.http_send(rq, Answer::json_later(200, chunk));
    }

    /// Follows a process's log as Server-Sent Events: from `offset` (the last 1600 bytes, or
    /// everything after the `Last-Event-ID` the client saw), then each new chunk, its id the
    /// offset after it.
    /// As `text`, the bytes themselves (supervisord's `/logtail`; `/mainlogtail` for Kahi's
    /// own log).
    pub(super) fn subscribe_log(&mut self, rq: http::Req, log: LogSource, offset: u64, text: bool) {
        let sub = self
            .http
            .as_ref()
            .and_then(|h| if text { h.subscribe_text(rq) } else { h.subscribe(rq) });
        let Some(sub) = sub else { return };
        self.subscribers.push((sub, Feed::Log { log, offset, text }));
        let last = self.subscribers.len() - 1;
        self.feed_log(last);
    }

    /// Follows the event stream, of the given types or of all.
    pub(super) fn subscribe_events(&mut self, rq: http::Req, types: Vec<EventType>) {
        let Some(sub) = self.http.as_ref().and_then(|h| h.subscribe(rq)) else { return };
        let id = self.bus.subscribe(types, EVENTS_QUEUED);
        self.subscribers.push((sub, Feed::Events { id, told: 0 }));
    }

    /// Sends a log subscriber what its log has gained, a piece at a time: the next once the
    /// client has taken most of the last. Drops it if it is gone.
    fn feed_log(&mut self, i: usize) {
        let Some((sub, Feed::Log { log, offset, text })) = self.subscribers.get_mut(i) else {
            return;
        };
        let piece = crate::piecewise::HTTP_BYTES_PER_PIECE;
        let read = match *log {
            LogSource::Process(id, stream) => {
                let Some(e) = self.sup.get(id) else { return };
                let ring = e.ring(stream);
                if ring.end() <= *offset || !sub.ready() {
                    return;
                }
                ring.read(*offset, piece)
            }
            LogSource::Daemon => {
                if crate::logs::daemon_log::end() <= *offset || !sub.ready() {
                    return;
                }
                crate::logs::daemon_log::read_some(*offset, piece)
            }
        };
        let next = read.offset + read.data.len() as u64;
        let bytes = if *text {
            read.data
        } else {
            http::sse_event("log", Some(next), &String::from_utf8_lossy(&read.data))
        };
        if sub.send(bytes) {
            *offset = next;
        } else {
            self.subscribers.swap_remove(i);
        }
    }

    /// Sends every log subscriber of this stream what it has not seen.
    pub(super) fn feed_log_subscribers(&mut self, id: ProcId, stream: Stream) {
        let mut i = self.subscribers.len();
        while i > 0 {
            i -= 1;
            if matches!(&self.subscribers[i].1, Feed::Log { log, .. } if *log == LogSource::Process(id, stream))
            {
                self.feed_log(i);
            }
        }
    }

    /// Sends every follower of Kahi's own log over HTTP what it has not seen: at the end of
    /// each turn, once what the turn logged is in.
    pub(super) fn feed_main_log_subscribers(&mut self) {
        let mut i = self.subscribers.len();
        while i > 0 {
            i -= 1;
            if matches!(&self.subscribers[i].1, Feed::Log { log: LogSource::Daemon, .. }) {
                self.feed_log(i);
            }
        }
    }

    /// Publishes an event to the bus, and sends it on to the event listeners and the event
    /// streams (HTTP's and the control socket's) that take it.
    pub(super) fn publish(&mut self, event: Event) -> usize {
        let took = self.bus.publish(event);
        if took > 0 {
            self.dispatch_events();
            self.feed_events();
            self.feed_event_followers();
        }
        took
    }

    /// Sends each event stream what its queue on the bus holds, while its client has taken
    /// most of what it was sent; what a slow client has not taken waits on the bus, whose
    /// queue drops the oldest when it is full (counted in /metrics). An event is formatted once
    /// for all the streams that take it.
    ///
    /// A loss is told before the first event after it, as an event of its own, `lost`, with
    /// `{"lost": N}`: the bus drops only to queue a newer event, so one always follows. An
    /// event of its own rather than a field of the next: an EventSource client hears events
    /// by name, and one that listens for `state` would not see a field carried by the
    /// `health` that happened to come next; one that does not listen for `lost` is not
    /// troubled by it.
    fn feed_events(&mut self) {
        let mut formatted: Vec<(*const Event, Vec<u8>)> = Vec::new();
        for (sub, feed) in &mut self.subscribers {
            let Feed::Events { id, told } = feed else { continue };
            while sub.ready() {
                let Some(event) = self.bus.next(*id) else { break };
                let lost = self.bus.dropped_since(*id, told);
                if lost > 0 {
                    let lost = serde_json::json!({ "lost": lost });
                    sub.send(http::sse_event("lost", None, &lost.to_string()));
                }
                let key = std::rc::Rc::as_ptr(&event);
                let i = match formatted.iter().position(|(k, _)| *k == key) {
                    Some(i) => i,
                    None => {
                        let data = api::stream_json(&event, &crate::timefmt::rfc3339_now());
                        let name = api::stream_name(&event);
                        formatted.push((key, http::sse_event(name, None, &data.to_string())));
                        formatted.len() - 1
                    }
                };
                sub.send(formatted[i].1.clone());
            }
        }
    }

    /// Forgets the streams whose clients are gone, and their queues on the bus.
    fn forget_gone_subscribers(&mut self) {
        let bus = &mut self.bus;
        self.subscribers.retain(|(sub, feed)| {
            let gone = sub.gone();
            if let (true, Feed::Events { id, .. }) = (gone, feed) {
                bus.unsubscribe(*id);
            }
            !gone
        });
    }
}

/// What an event-stream client follows.
pub(super) enum Feed {
    /// Events, through its queue on the bus; `told`, the events the bus dropped from it that
    /// the client has been told were lost.
    Events { id: SubId, told: u64 },
    /// A process's log, or Kahi's own, from this offset on; as its own bytes (`text`) or as
    /// events.
    Log { log: LogSource, offset: u64, text: bool },
}

/// Events queued on the bus for a stream whose client has not taken what it was sent; past
/// this, the oldest are dropped (and counted).
pub(super) const EVENTS_QUEUED: usize = 1024;
