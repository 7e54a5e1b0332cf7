//! Requests the HTTP threads parsed, answered on the loop (the threads never touch the
//! supervisor): the API as the control socket answers it, logs, event streams, /healthz,
//! /readyz, /metrics.

use std::time::{Instant, SystemTime};

use super::EventLoop;
use crate::api::{self, ApiError, ErrorCode, Handled, Now, Reply, Request};
use crate::config::LogSpec;
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
            let list = incoming.rq.is_read()
                && incoming.rq.url().trim_end_matches('/') == "/api/v1/processes";
            if list {
                let clock = Now { mono: now, wall: SystemTime::now() };
                let shared = all.get_or_insert_with(|| {
                    let processes: Vec<api::ProcessInfo> =
                        self.sup.iter().map(|e| api::process_info(e, clock)).collect();
                    http::Shared::new(processes)
                });
                let answer = Answer {
                    status: 200,
                    body: http::Body::Shared(shared.clone()),
                    headers: Vec::new(),
                };
                self.http_send(incoming.rq, answer);
                continue;
            }
            if !incoming.rq.is_read() {
                all = None;
            }
            self.http_request(incoming, now);
            self.perform(now);
        }
        // Long answers and log streams whose clients have taken most of what they were sent.
        let clock = Now { mono: now, wall: SystemTime::now() };
        if let Some(http) = &mut self.http {
            http.pump(&self.sup, clock);
        }
        self.subscribers.retain(|(sub, _)| !sub.gone());
        let mut i = self.subscribers.len();
        while i > 0 {
            i -= 1;
            if matches!(&self.subscribers[i], (sub, Feed::Log { .. }) if sub.ready()) {
                self.feed_log(i);
            }
        }
    }

    fn http_request(&mut self, incoming: http::Incoming, now: Instant) {
        let http::Incoming { rq, body, authenticated } = incoming;
        let answer = match http::route(rq.method(), rq.url(), &body) {
            Route::Api(Request::Tail { name, stream, bytes, offset, encoding, .. }, _) => {
                match self.http_log(&name, stream, bytes, offset, encoding) {
                    Ok(answer) => answer,
                    Err(log) => {
                        let clock = Now { mono: now, wall: SystemTime::now() };
                        if let Some(http) = &mut self.http {
                            http.stream(rq, log, &self.sup, clock);
                        }
                        return;
                    }
                }
            }
            Route::Api(req, shape) => return self.http_api(rq, req, shape, now),
            Route::LogStream { name, stream } => return self.subscribe_log(rq, &name, stream),
            Route::EventStream { types } => return self.subscribe_events(rq, types),
            Route::Healthz => Answer::json(200, &serde_json::json!({ "status": "ok" })),
            Route::Readyz { processes } => self.readiness(&processes, authenticated, now),
            Route::Metrics => Answer::metrics(crate::metrics::render(
                &self.sup,
                Now { mono: now, wall: SystemTime::now() },
                &http::counts(),
                &|id, stream| self.log_state(id, stream),
            )),
            Route::OpenApi => Answer::raw(200, "application/json", http::OPENAPI.as_bytes()),
            Route::Groups => Answer::json(200, &self.groups()),
            Route::Config => Answer::json(200, &self.config_info()),
            Route::MethodNotAllowed(allow) => {
                let mut a = Answer::json(
                    405,
                    &ApiError::new(
                        ErrorCode::BadRequest,
                        format!("{} is not allowed here; use {allow}", rq.method()),
                    ),
                );
                a.headers.push(("Allow", allow.to_string()));
                a
            }
            Route::BadRequest(why) => Answer::error(&ApiError::new(ErrorCode::BadRequest, why)),
            Route::NotFound => Answer::error(&ApiError::new(
                ErrorCode::NotFound,
                format!("no such endpoint: {}", rq.url().split('?').next().unwrap_or("")),
            )),
        };
        self.http_send(rq, answer);
    }

    /// Hands an answer to the HTTP threads.
    pub(super) fn http_send(&mut self, rq: http::Req, answer: Answer) {
        if let Some(http) = &self.http {
            http.answer(rq, answer);
        }
    }

    /// An API request, answered as the control socket answers it.
    fn http_api(&mut self, rq: http::Req, req: Request, shape: Shape, now: Instant) {
        let clock = Now { mono: now, wall: SystemTime::now() };
        let reply = match api::handle(&mut self.sup, req, clock) {
            Handled::Reply(r) => r,
            Handled::Wait(w) => {
                let token = self.token();
                self.waiters.insert(token, w);
                self.http_waiting.insert(token, (rq, shape));
                self.perform(now);
                self.poll_waiters(now);
                return;
            }
            Handled::ReplyThenWait(reply, w) => {
                self.detached.push(w);
                Ok(reply)
            }
            Handled::Piecewise(reply) => {
                // The responder thread serializes it, off the loop.
                Ok(reply.whole(&self.sup, Now { mono: now, wall: SystemTime::now() }))
            }
            Handled::NeedConfig(what) => self.config_reply(what, now),
            Handled::Stdin { id, name, data } => self.write_stdin(id, name, data.as_bytes()),
            Handled::Shutdown => {
                log::info!("shutdown requested over HTTP");
                self.http_send(
                    rq,
                    http::answer(&shape, Ok(Reply::Shutdown { message: "Shut down".into() })),
                );
                self.shutdown(now);
                return;
            }
            Handled::Cleared(..) | Handled::Follow { .. } => {
                Err(ApiError::new(ErrorCode::ServerError, "not available over HTTP"))
            }
        };
        self.http_send(rq, http::answer(&shape, reply));
    }

    /// `GET .../log/STREAM`: a short read is copied out of the ring here (the front makes it
    /// JSON); a long one (Err) is sent in pieces made from the ring as the client takes them.
    fn http_log(
        &self,
        name: &str,
        stream: Stream,
        bytes: u64,
        offset: Option<u64>,
        encoding: api::Encoding,
    ) -> Result<Answer, crate::piecewise::Piecewise> {
        let id = match api::one(&self.sup, name) {
            Ok(id) => id,
            Err(e) => return Ok(Answer::error(&e)),
        };
        let Some(entry) = self.sup.get(id) else {
            return Ok(Answer::error(&ApiError::new(
                ErrorCode::NotFound,
                format!("no such process: {name}"),
            )));
        };
        let ring = entry.ring(stream);
        let (from, end, skipped) = ring.span(offset, bytes);
        if end - from > http::LONG_LOG {
            let log = crate::piecewise::Piecewise::log(id, stream, from, end, skipped, encoding);
            return Err(log.for_http());
        }
        let read = ring.read(from, (end - from) as usize);
        Ok(Answer::json_later(
            200,
            http::LogChunk { data: read.data, offset: read.offset, skipped, encoding },
        ))
    }

    /// Follows a process's log as Server-Sent Events: the last 1600 bytes (or everything
    /// after the `Last-Event-ID` the client saw), then each new chunk, its id the offset
    /// after it.
    fn subscribe_log(&mut self, rq: http::Req, name: &str, stream: Stream) {
        let id = match api::one(&self.sup, name) {
            Ok(id) => id,
            Err(e) => return self.http_send(rq, Answer::error(&e)),
        };
        let last_seen = rq.header("Last-Event-ID").and_then(|v| v.trim().parse::<u64>().ok());
        let Some(e) = self.sup.get(id) else { return };
        let offset =
            last_seen.unwrap_or_else(|| e.ring(stream).tail(api::default_tail_bytes()).offset);
        let Some(sub) = self.http.as_ref().and_then(|h| h.subscribe(rq)) else { return };
        self.subscribers.push((sub, Feed::Log { id, stream, offset }));
        let last = self.subscribers.len() - 1;
        self.feed_log(last);
    }

    /// Follows the event stream, of the given types or of all.
    fn subscribe_events(&mut self, rq: http::Req, types: Vec<String>) {
        if let Some(bad) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
            let e = ApiError::new(
                ErrorCode::BadRequest,
                format!("types: unknown event type {bad:?} (known: {})", EVENT_TYPES.join(", ")),
            );
            return self.http_send(rq, Answer::error(&e));
        }
        let Some(sub) = self.http.as_ref().and_then(|h| h.subscribe(rq)) else { return };
        self.subscribers.push((sub, Feed::Events(types)));
    }

    /// Sends a log subscriber what its log has gained, a piece at a time: the next once the
    /// client has taken most of the last. Drops it if it is gone.
    fn feed_log(&mut self, i: usize) {
        let Some((sub, Feed::Log { id, stream, offset })) = self.subscribers.get_mut(i) else {
            return;
        };
        let Some(e) = self.sup.get(*id) else { return };
        let ring = e.ring(*stream);
        if ring.end() <= *offset || !sub.ready() {
            return;
        }
        let read = ring.read(*offset, crate::piecewise::HTTP_BYTES_PER_PIECE);
        let next = read.offset + read.data.len() as u64;
        let text = String::from_utf8_lossy(&read.data);
        if sub.send(http::sse_event("log", Some(next), &text)) {
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
            if matches!(&self.subscribers[i].1, Feed::Log { id: x, stream: s, .. } if *x == id && *s == stream)
            {
                self.feed_log(i);
            }
        }
    }

    /// Sends an event to the subscribers that want its type; drops those that cannot take it.
    pub(super) fn emit(&mut self, kind: &str, data: serde_json::Value) {
        if self.subscribers.is_empty() {
            return;
        }
        let mut event = None;
        self.subscribers.retain(|(sub, feed)| match feed {
            Feed::Events(types) if types.is_empty() || types.iter().any(|t| t == kind) => {
                let e = event.get_or_insert_with(|| http::sse_event(kind, None, &data.to_string()));
                sub.send(e.clone())
            }
            _ => true,
        });
    }

    /// `GET /api/v1/groups`: each group and its processes, in start order.
    fn groups(&self) -> serde_json::Value {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for e in self.sup.iter() {
            match groups.iter_mut().find(|(g, _)| *g == e.spec.group) {
                Some((_, procs)) => procs.push(e.spec.namespec()),
                None => groups.push((e.spec.group.clone(), vec![e.spec.namespec()])),
            }
        }
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        serde_json::Value::Array(
            groups
                .into_iter()
                .map(
                    |(name, processes)| serde_json::json!({ "name": name, "processes": processes }),
                )
                .collect(),
        )
    }

    /// `GET /api/v1/config`: the configuration in force. Environment values are left out:
    /// they may hold secrets.
    fn config_info(&self) -> serde_json::Value {
        let c = &self.sup.config;
        let programs: Vec<serde_json::Value> = c
            .programs
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name, "group": p.group, "autostart": p.autostart,
                    "priority": p.priority, "numprocs": p.numprocs,
                })
            })
            .collect();
        let processes: Vec<serde_json::Value> = c
            .processes
            .iter()
            .map(|p| {
                let log = |l: &Option<LogSpec>| l.as_ref().map(|l| l.path.display().to_string());
                serde_json::json!({
                    "name": p.namespec(), "program": p.program, "command": p.argv,
                    "directory": p.directory, "autostart": p.autostart,
                    "autorestart": format!("{:?}", p.autorestart).to_lowercase(),
                    "startsecs": p.startsecs.as_secs_f64(), "startretries": p.startretries,
                    "exitcodes": p.exitcodes, "stopsignal": p.stopsignal.as_str(),
                    "stopwaitsecs": p.stopwaitsecs.as_secs_f64(),
                    "environment": p.environment.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                    "stdout_logfile": log(&p.stdout_log), "stderr_logfile": log(&p.stderr_log),
                })
            })
            .collect();
        serde_json::json!({
            "file": c.file,
            "socket": c.server.socket,
            "http": c.server.http.listen,
            "programs": programs,
            "processes": processes,
        })
    }

    /// `/readyz`: 200 when every named process, or every autostart process when none is
    /// named, is RUNNING; 503 with the ones that are not, otherwise.
    fn readiness(&self, names: &[String], authenticated: bool, now: Instant) -> Answer {
        if !authenticated && !names.is_empty() {
            return self.anonymous_readiness(names);
        }
        let clock = Now { mono: now, wall: SystemTime::now() };
        let mut waiting = Vec::new();
        let mut unknown = Vec::new();
        let entries: Vec<&crate::supervisor::Entry> = if names.is_empty() {
            self.sup.iter().filter(|e| e.spec.autostart).collect()
        } else {
            let mut v = Vec::new();
            for n in names {
                match self.sup.resolve(n) {
                    Some(ids) => v.extend(ids.into_iter().filter_map(|id| self.sup.get(id))),
                    None => unknown.push(n.clone()),
                }
            }
            v
        };
        for e in entries {
            if !is_ready(e) {
                let info = api::process_info(e, clock);
                let mut entry = serde_json::json!({ "name": info.name, "state": info.state });
                if let Some(h) = info.health {
                    entry["health"] = serde_json::json!(h);
                }
                waiting.push(entry);
            }
        }
        if !unknown.is_empty() {
            return Answer::error(&ApiError::new(
                ErrorCode::NotFound,
                format!("no such process: {}", unknown.join(", ")),
            ));
        }
        if waiting.is_empty() {
            Answer::json(200, &serde_json::json!({ "ready": true }))
        } else {
            Answer::json(503, &serde_json::json!({ "ready": false, "not_ready": waiting }))
        }
    }

    /// `/readyz?process=...` for a client that is not a user: an unknown name is answered
    /// like a known one that is not ready, and only the names asked are listed, so the answer
    /// does not tell which names exist.
    fn anonymous_readiness(&self, names: &[String]) -> Answer {
        let waiting: Vec<serde_json::Value> = names
            .iter()
            .filter(|n| {
                let ids = self.sup.resolve(n).unwrap_or_default();
                ids.is_empty() || !ids.iter().filter_map(|id| self.sup.get(*id)).all(is_ready)
            })
            .map(|n| serde_json::json!({ "name": n }))
            .collect();
        if waiting.is_empty() {
            Answer::json(200, &serde_json::json!({ "ready": true }))
        } else {
            Answer::json(503, &serde_json::json!({ "ready": false, "not_ready": waiting }))
        }
    }
}

/// Ready for `/readyz`: RUNNING (and healthy, with a health check), or done: a oneshot that
/// completed, or a program that exited with an expected code and will not be restarted.
fn is_ready(e: &crate::supervisor::Entry) -> bool {
    use crate::process::State;
    let p = &e.proc;
    match p.state {
        State::Running => {
            e.spec.healthcheck.is_none()
                || p.health == Some(crate::process::machine::Health::Healthy)
        }
        // A socket program listening for its first connection: its socket answers.
        State::Starting if e.spec.kind == crate::config::Kind::Socket && p.held => {
            e.waiting_for.iter().all(|w| w.starts_with(crate::supervisor::CONNECTION))
        }
        State::Exited => {
            p.completed
                || (e.spec.autorestart != crate::config::AutoRestart::Always
                    && matches!(p.exit_status, Some(crate::process::ExitStatus::Exited(c)) if e.spec.exitcodes.contains(&c)))
        }
        _ => false,
    }
}

/// What an event-stream client follows.
pub(super) enum Feed {
    /// Events of these types (all when empty).
    Events(Vec<String>),
    /// A process's log, from this offset on.
    Log { id: ProcId, stream: Stream, offset: u64 },
}

/// The event types of `/api/v1/events/stream`.
pub const EVENT_TYPES: &[&str] = &["state", "health", "update", "shutdown"];
