//! The HTTP listener: the API under `/api/v1`, the probes `/healthz` and `/readyz`.
//!
//! Connections are served by [`crate::http_front`], one thread that reads requests, bounds
//! what each client can hold and writes the answers. Each whole request is handed to the
//! event loop through a channel and a `mio::Waker`, and the loop answers it inline, with the
//! same code that serves the control socket; the answer goes back to the front, so a client
//! that reads slowly never holds the loop. Long answers (a large log read, event streams) are
//! made by the loop in pieces as the client takes them. No thread but the loop's touches
//! supervisor state.
//!
//! [`route`] and [`status_of`] are pure; [`Http`] is the loop's end of the front.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Deserialize;

use crate::api::{ApiError, ErrorCode, Now, Outcome, Reply, Request};
use crate::config::HttpConfig;
use crate::http_auth::Gate;
pub use crate::http_auth::{decode_basic, required_role};
use crate::http_front::{OutletState, ToFront};
pub use crate::http_wire::Req;
use crate::supervisor::{Stream, Supervisor};

/// The OpenAPI 3 description of everything served here.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What a request asks for.
#[derive(Debug, PartialEq)]
pub enum Route {
    Healthz,
    /// Ready when every named process (or, with none named, every autostart process) is
    /// RUNNING.
    Readyz {
        processes: Vec<String>,
    },
    Metrics,
    OpenApi,
    /// A request the control socket also answers, and how its reply becomes an HTTP answer.
    Api(Request, Shape),
    Groups,
    Config,
    /// Server-Sent Events: a process's log as it grows.
    LogStream {
        name: String,
        stream: Stream,
    },
    /// Server-Sent Events: state changes (and other events), of the given types or all.
    EventStream {
        types: Vec<String>,
    },
    /// A known path with a method it does not take.
    MethodNotAllowed(&'static str),
    NotFound,
    BadRequest(String),
}

/// How the reply to an API request becomes an HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// The reply's payload as it is (a list, a log chunk, changes).
    Plain,
    /// One process: the single element of a status, or 404.
    One(String),
    /// An action on one process: 200, or an error status for the outcome.
    Single,
    /// An action on a group: 200 with every process's outcome.
    Many,
}

/// The body of `POST .../signal`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalBody {
    signal: String,
}

/// Maps a method, a URL (path and query) and a body to a route.
pub fn route(method: &str, url: &str, body: &[u8]) -> Route {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let is_get = method == "GET" || method == "HEAD";
    let get = |r: Route| if is_get { r } else { Route::MethodNotAllowed("GET") };
    let post = |r: Route| if method == "POST" { r } else { Route::MethodNotAllowed("POST") };
    let wait = match query_values(query, "wait").last().map(String::as_str) {
        None | Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(v) => return Route::BadRequest(format!("wait: expected true or false, found {v:?}")),
    };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["", "healthz"] => get(Route::Healthz),
        ["", "readyz"] => get(Route::Readyz { processes: query_values(query, "process") }),
        ["", "metrics"] => get(Route::Metrics),
        ["", "api", "v1", "openapi.json"] => get(Route::OpenApi),
        ["", "api", "v1", "version"] => get(Route::Api(Request::Version {}, Shape::Plain)),
        ["", "api", "v1", "processes"] => {
            get(Route::Api(Request::Status { names: Vec::new() }, Shape::Plain))
        }
        ["", "api", "v1", "processes", name] if !name.is_empty() => {
            let name = percent_decode(name);
            get(Route::Api(Request::Status { names: vec![name.clone()] }, Shape::One(name)))
        }
        ["", "api", "v1", "processes", name, "signal"] => post(match signal_body(body) {
            Ok(signal) => Route::Api(
                Request::Signal { signal, names: vec![percent_decode(name)] },
                Shape::Single,
            ),
            Err(e) => Route::BadRequest(e),
        }),
        ["", "api", "v1", "processes", name, "stdin"] => post(match stdin_body(body) {
            Ok(data) => {
                Route::Api(Request::Stdin { name: percent_decode(name), data }, Shape::Plain)
            }
            Err(e) => Route::BadRequest(e),
        }),
        ["", "api", "v1", "processes", name, action] => match action_request(action, name, wait) {
            Some(req) => post(Route::Api(req, Shape::Single)),
            None => Route::NotFound,
        },
        ["", "api", "v1", "processes", name, "log", stream] => {
            let Some(stream) = stream_of(stream) else { return Route::NotFound };
            let number = |key: &str| -> Result<Option<u64>, String> {
                match query_values(query, key).last() {
                    None => Ok(None),
                    Some(v) => v.parse().map(Some).map_err(|_| {
                        format!("{key}: expected a non-negative integer, found {v:?}")
                    }),
                }
            };
            let (offset, length) = match (number("offset"), number("length")) {
                (Ok(o), Ok(l)) => (o, l),
                (Err(e), _) | (_, Err(e)) => return Route::BadRequest(e),
            };
            let encoding = match query_values(query, "encoding").last().map(|v| v.as_str()) {
                None | Some("text") => crate::api::Encoding::Text,
                Some("base64") => crate::api::Encoding::Base64,
                Some(other) => {
                    return Route::BadRequest(format!(
                        "encoding: expected text or base64, found {other:?}"
                    ));
                }
            };
            get(Route::Api(
                Request::Tail {
                    name: percent_decode(name),
                    stream,
                    bytes: length.unwrap_or(crate::api::default_tail_bytes()),
                    offset,
                    follow: false,
                    encoding,
                },
                Shape::Plain,
            ))
        }
        ["", "api", "v1", "processes", name, "log", stream, "stream"] => {
            let Some(stream) = stream_of(stream) else { return Route::NotFound };
            get(Route::LogStream { name: percent_decode(name), stream })
        }
        ["", "api", "v1", "groups"] => get(Route::Groups),
        ["", "api", "v1", "groups", name, action] => {
            let group = format!("{}:*", percent_decode(name));
            match action_request(action, &group, wait) {
                Some(req) if *action != "signal" => post(Route::Api(req, Shape::Many)),
                _ => Route::NotFound,
            }
        }
        ["", "api", "v1", "config"] => get(Route::Config),
        ["", "api", "v1", "config", "reload"] => post(Route::Api(Request::Reread {}, Shape::Plain)),
        ["", "api", "v1", "config", "update"] => post(Route::Api(Request::Update {}, Shape::Plain)),
        ["", "api", "v1", "shutdown"] => post(Route::Api(Request::Shutdown {}, Shape::Plain)),
        ["", "api", "v1", "events", "stream"] => {
            get(Route::EventStream { types: query_values(query, "types") })
        }
        _ => Route::NotFound,
    }
}

/// `start`, `stop` or `restart` of `name`.
fn action_request(action: &str, name: &str, wait: bool) -> Option<Request> {
    let names = vec![percent_decode(name)];
    match action {
        "start" => Some(Request::Start { names, wait }),
        "stop" => Some(Request::Stop { names, wait }),
        "restart" => Some(Request::Restart { names, wait }),
        _ => None,
    }
}

fn stream_of(s: &str) -> Option<Stream> {
    match s {
        "stdout" => Some(Stream::Stdout),
        "stderr" => Some(Stream::Stderr),
        _ => None,
    }
}

/// The body of `POST .../stdin`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StdinBody {
    data: String,
}

fn stdin_body(body: &[u8]) -> Result<String, String> {
    serde_json::from_slice::<StdinBody>(body)
        .map(|b| b.data)
        .map_err(|e| format!("request body: {e} (expected {{\"data\": \"text\"}})"))
}

fn signal_body(body: &[u8]) -> Result<String, String> {
    serde_json::from_slice::<SignalBody>(body)
        .map(|b| b.signal)
        .map_err(|e| format!("request body: {e} (expected {{\"signal\": \"HUP\"}})"))
}

/// Turns the reply to an API request into an HTTP answer.
pub fn answer(shape: &Shape, reply: Result<Reply, ApiError>) -> Answer {
    let reply = match reply {
        Ok(r) => r,
        Err(e) => return Answer::error(&e),
    };
    match (shape, reply) {
        (Shape::One(name), Reply::Status { mut processes, unknown }) => {
            if !unknown.is_empty() || processes.is_empty() {
                Answer::error(&ApiError::new(
                    ErrorCode::NotFound,
                    format!("no such process: {name}"),
                ))
            } else if processes.len() == 1 {
                Answer::json_later(200, processes.remove(0))
            } else {
                Answer::json_later(200, processes)
            }
        }
        (_, Reply::Status { processes, .. }) => Answer::json_later(200, processes),
        (Shape::Single, Reply::Results { results }) if !results.is_empty() => {
            // A restart reports its stop half, then its start: the last says how it ended.
            let r = &results[results.len() - 1];
            let (status, code) = match r.outcome {
                Outcome::NoSuchProcess => (404, ErrorCode::NotFound),
                Outcome::AlreadyStarted | Outcome::NotRunning => (409, ErrorCode::Conflict),
                Outcome::SpawnError | Outcome::AbnormalTermination => (500, ErrorCode::ServerError),
                Outcome::ShuttingDown => (503, ErrorCode::ShuttingDown),
                _ => return Answer::json(200, r),
            };
            let text = match &r.detail {
                Some(d) => format!("{}: {} ({d})", r.name, r.outcome.text()),
                None => format!("{}: {}", r.name, r.outcome.text()),
            };
            Answer::json(status, &ApiError::new(code, text))
        }
        (Shape::Many, Reply::Results { results })
            if results.iter().all(|r| r.outcome == Outcome::NoSuchProcess) =>
        {
            let names: Vec<&str> = results.iter().map(|r| r.name.trim_end_matches(":*")).collect();
            Answer::error(&ApiError::new(
                ErrorCode::NotFound,
                format!("no such group: {}", names.join(", ")),
            ))
        }
        (_, Reply::Results { results }) => Answer::json(200, &results),
        (_, Reply::Changes { changes }) => Answer::json(200, &changes),
        (_, other) => {
            // Log, Version, Shutdown, Pid: the payload without its tag.
            let mut v = serde_json::to_value(&other).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.remove("reply");
            }
            Answer::json(200, &v)
        }
    }
}

/// Every value of `key` in a query string (`process=a&process=b`, or `process=a,b`).
fn query_values(query: &str, key: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == key)
        .flat_map(|(_, v)| v.split(','))
        .filter(|v| !v.is_empty())
        .map(percent_decode)
        .collect()
}

/// `%3A` -> `:`; `+` stays (it only means a space in forms).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The HTTP status of an API error code.
pub fn status_of(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::BadRequest => 400,
        ErrorCode::Unauthorized => 401,
        ErrorCode::Forbidden => 403,
        ErrorCode::NotFound => 404,
        ErrorCode::Conflict => 409,
        ErrorCode::ServerError => 500,
        ErrorCode::ShuttingDown => 503,
    }
}

/// An answer the loop has made: a status and a JSON body.
pub struct Answer {
    pub status: u16,
    pub body: Body,
    /// Extra headers, such as `Allow`.
    pub headers: Vec<(&'static str, String)>,
}

/// The bytes of an answer, or a value the responder thread turns into them, so that the loop
/// spends its time on taking the snapshot, not on formatting it.
pub enum Body {
    Bytes(Vec<u8>),
    Json(MakeBytes),
    /// The same answer to several requests: serialized once, by the first responder to need it.
    Shared(Arc<Shared>),
}

impl Body {
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Body::Bytes(b) => b,
            Body::Json(f) => f(),
            Body::Shared(s) => s.bytes().to_vec(),
        }
    }
}

/// A piece of a log as `GET .../log/STREAM` answers it; the bytes become text (invalid UTF-8
/// as U+FFFD) on the responder thread, not on the loop.
pub struct LogChunk {
    pub data: Vec<u8>,
    pub offset: u64,
    pub skipped: u64,
    pub encoding: crate::api::Encoding,
}

impl serde::Serialize for LogChunk {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        // The same fields as the control socket's log reply.
        let crate::api::Reply::Log { data, encoding, .. } =
            crate::api::log_reply(&self.data, self.offset, self.skipped, self.encoding)
        else {
            unreachable!("log_reply makes a log reply")
        };
        let mut st = s.serialize_struct("LogChunk", 4)?;
        st.serialize_field("data", &data)?;
        st.serialize_field("offset", &self.offset)?;
        st.serialize_field("skipped", &self.skipped)?;
        if encoding != crate::api::Encoding::Text {
            st.serialize_field("encoding", &encoding)?;
        }
        st.end()
    }
}

/// Serialization to be done by a responder thread.
pub type MakeBytes = Box<dyn FnOnce() -> Vec<u8> + Send>;

/// A JSON body shared by identical answers.
pub struct Shared {
    make: Mutex<Option<MakeBytes>>,
    bytes: OnceLock<Vec<u8>>,
}

impl Shared {
    pub fn new(value: impl serde::Serialize + Send + 'static) -> Arc<Shared> {
        Arc::new(Shared {
            make: Mutex::new(Some(Box::new(move || json_bytes(&value)))),
            bytes: OnceLock::new(),
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.bytes.get_or_init(|| {
            let make = self.make.lock().unwrap_or_else(|e| e.into_inner()).take();
            make.map(|f| f()).unwrap_or_default()
        })
    }
}

fn json_bytes(value: &impl serde::Serialize) -> Vec<u8> {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    body
}

impl Answer {
    pub fn json(status: u16, value: &impl serde::Serialize) -> Answer {
        Answer { status, body: Body::Bytes(json_bytes(value)), headers: Vec::new() }
    }

    /// A JSON answer serialized by the responder thread.
    pub fn json_later(status: u16, value: impl serde::Serialize + Send + 'static) -> Answer {
        Answer {
            status,
            body: Body::Json(Box::new(move || json_bytes(&value))),
            headers: Vec::new(),
        }
    }

    pub fn error(e: &ApiError) -> Answer {
        Answer::json(status_of(e.code), e)
    }

    /// A body that is not JSON.
    pub fn raw(status: u16, content_type: &str, body: &[u8]) -> Answer {
        Answer {
            status,
            body: Body::Bytes(body.to_vec()),
            headers: vec![("Content-Type", content_type.into())],
        }
    }

    /// Prometheus' text exposition format.
    pub fn metrics(text: String) -> Answer {
        Answer {
            status: 200,
            body: Body::Bytes(text.into_bytes()),
            headers: vec![("Content-Type", "text/plain; version=0.0.4; charset=utf-8".into())],
        }
    }
}

/// A request with its body, read by the front, ready for the loop.
pub struct Incoming {
    pub rq: Req,
    pub body: Vec<u8>,
    /// The request came with the credentials of a configured user (of any role). False for
    /// everyone when no user is configured.
    pub authenticated: bool,
}

/// The largest request body read; a longer one is refused with 413.
pub const MAX_BODY: usize = 64 << 10;
/// Server-Sent Events clients at once; past this, 503.
pub const MAX_SUBSCRIBERS: usize = 64;
/// Bytes of events queued for one subscriber that has not taken them; past this it is
/// dropped.
const SUBSCRIBER_QUEUE: usize = 256 << 10;
/// A log read longer than this is sent in pieces made from the ring as the client takes
/// them, instead of being copied whole.
pub const LONG_LOG: u64 = 64 << 10;

/// The loop's side of the HTTP listener: requests from the front, answers to it, and the long
/// answers being made in pieces.
pub struct Http {
    requests: Receiver<Incoming>,
    front: crate::http_front::Handle,
    subscribers: Arc<AtomicUsize>,
    /// Log reads being sent in pieces, by connection.
    streams: HashMap<u64, (Outlet, crate::piecewise::Piecewise)>,
}

impl Http {
    /// Binds every address (an error names the one that failed) and starts the front.
    pub fn start(config: &HttpConfig, waker: Arc<mio::Waker>) -> Result<Http, String> {
        let (tx, requests) = std::sync::mpsc::channel();
        let tls = match &config.tls {
            Some((cert, key)) => {
                let read = |p: &std::path::Path| {
                    std::fs::read(p).map_err(|e| format!("unable to read {}: {e}", p.display()))
                };
                Some(crate::http_tls::config(&read(cert)?, &read(key)?)?)
            }
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut listens = Vec::new();
        for addr in &config.listen {
            let listener = std::net::TcpListener::bind(addr)
                .map_err(|e| format!("unable to listen on {addr}: {e}"))?;
            let bound = listener.local_addr().map_err(|e| format!("{addr}: {e}"))?;
            // The port as bound: port 0 in the configuration picks a free one.
            log::info!("HTTP API listening on {scheme}://{bound}");
            listens.push(crate::http_front::Listen { listener, tls: tls.clone() });
        }
        let gate = Arc::new(Gate::new(config.users.clone(), config.metrics_auth));
        let front = crate::http_front::start(listens, config.max_connections, gate, tx, waker)
            .map_err(|e| format!("unable to start the HTTP front: {e}"))?;
        let subscribers = Arc::new(AtomicUsize::new(0));
        Ok(Http { requests, front, subscribers, streams: HashMap::new() })
    }

    /// The next request waiting for the loop, if any.
    pub fn next(&self) -> Option<Incoming> {
        self.requests.try_recv().ok()
    }

    /// Hands an answer to the front.
    pub fn answer(&self, rq: Req, answer: Answer) {
        self.front.send(ToFront::Answer { rq, answer });
    }

    /// Starts a long answer on `rq`'s connection: its head now, its body through the
    /// returned outlet.
    fn open(&self, rq: Req, head: Vec<u8>, chunked: bool, sse: bool) -> Outlet {
        let state = Arc::new(OutletState::default());
        let conn = rq.conn;
        self.front.send(ToFront::Open { rq, head, chunked, sse, outlet: state.clone() });
        Outlet { conn, state, tx: self.front.tx.clone(), waker: self.front.waker.clone() }
    }

    /// Answers `rq` with a log read made in pieces from the ring as the client takes them.
    pub fn stream(
        &mut self,
        rq: Req,
        log: crate::piecewise::Piecewise,
        sup: &Supervisor,
        now: Now,
    ) {
        // Chunked on a kept-alive connection; else the body ends with the connection (and a
        // HEAD, whose length is not known before the body is made, ends it at once).
        let head_only = rq.method == "HEAD";
        let chunked = !rq.http10 && !rq.close && !head_only;
        let head = crate::http_wire::answer_head(rq.http10, 200, &[], None, !chunked);
        let outlet = self.open(rq, head, chunked, false);
        if head_only {
            return outlet.end();
        }
        self.streams.insert(outlet.conn, (outlet, log));
        self.pump(sup, now);
    }

    /// Makes the next piece of each long answer whose client has taken most of the last,
    /// while the bytes waiting for all clients stay under the front's bound; forgets those
    /// whose client is gone.
    pub fn pump(&mut self, sup: &Supervisor, now: Now) {
        if self.streams.is_empty() {
            return;
        }
        let total = &self.front.total;
        self.streams.retain(|_, (outlet, log)| {
            if outlet.gone() {
                return false;
            }
            while outlet.queued() < crate::http_front::LOW_WATER
                && total.load(Ordering::Relaxed) < crate::http_front::TOTAL
            {
                let mut piece = Vec::new();
                let last = log.piece(sup, now, &mut piece);
                outlet.push(piece);
                if last {
                    outlet.end();
                    return false;
                }
            }
            true
        });
    }

    /// At exit: gives the front until `deadline` to write the answers it holds (the answer to
    /// a shutdown request among them).
    pub fn drain(&self, deadline: Instant) {
        self.front.flushed.store(false, Ordering::SeqCst);
        self.front.send(ToFront::Flush);
        while !self.front.flushed.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Turns the request into a Server-Sent Events stream; the loop sends it events through
    /// the returned subscriber. None (and a 503) when there are already [`MAX_SUBSCRIBERS`].
    pub fn subscribe(&self, rq: Req) -> Option<Subscriber> {
        if self.subscribers.fetch_add(1, Ordering::SeqCst) >= MAX_SUBSCRIBERS {
            self.subscribers.fetch_sub(1, Ordering::SeqCst);
            let e = ApiError::new(ErrorCode::ServerError, "too many event streams at once");
            self.answer(rq, Answer::json(503, &e));
            return None;
        }
        let head =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                     Connection: close\r\nX-Accel-Buffering: no\r\n\r\n"
                .to_vec();
        let outlet = self.open(rq, head, false, true);
        Some(Subscriber { outlet, count: self.subscribers.clone() })
    }
}

/// The loop's end of a long answer: bytes go to the front, which counts what the client has
/// not taken yet.
pub struct Outlet {
    conn: u64,
    state: Arc<OutletState>,
    tx: std::sync::mpsc::Sender<ToFront>,
    waker: Arc<mio::Waker>,
}

impl Outlet {
    fn push(&self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        self.state.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        if self.tx.send(ToFront::Data { conn: self.conn, bytes }).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Bytes sent and not yet taken by the client.
    pub fn queued(&self) -> usize {
        self.state.queued.load(Ordering::Relaxed)
    }

    fn gone(&self) -> bool {
        self.state.gone.load(Ordering::SeqCst)
    }

    fn end(&self) {
        if self.tx.send(ToFront::End { conn: self.conn }).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// The loop's end of an event stream; dropping it ends the stream.
pub struct Subscriber {
    outlet: Outlet,
    count: Arc<AtomicUsize>,
}

impl Subscriber {
    /// Queues one event (already formatted). False when the client is gone or has left
    /// [`SUBSCRIBER_QUEUE`] bytes untaken: drop the subscriber, which ends its stream.
    pub fn send(&self, event: Vec<u8>) -> bool {
        if self.outlet.gone() || self.outlet.queued() > SUBSCRIBER_QUEUE {
            return false;
        }
        self.outlet.push(event);
        true
    }

    /// The client is gone (or was dropped): forget the subscriber.
    pub fn gone(&self) -> bool {
        self.outlet.gone()
    }

    /// The client has taken most of what it was sent: a log stream may send what it has
    /// not seen yet.
    pub fn ready(&self) -> bool {
        !self.outlet.gone() && self.outlet.queued() < crate::http_front::LOW_WATER
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.outlet.end();
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One Server-Sent Event: `event: NAME`, an optional `id:`, and the data, one `data:` line
/// per line of it.
pub fn sse_event(name: &str, id: Option<u64>, data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 32);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    if let Some(id) = id {
        out.extend_from_slice(format!("id: {id}\n").as_bytes());
    }
    for line in data.strip_suffix('\n').unwrap_or(data).split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix('\r').unwrap_or(line).as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// A refusal that needs no state (a bad head, too many logins at once).
pub fn refusal(status: u16, why: &str) -> Answer {
    let code = match status {
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        400..=499 => ErrorCode::BadRequest,
        _ => ErrorCode::ServerError,
    };
    Answer::json(status, &ApiError::new(code, why))
}

/// Answers given, by method and status, for `/metrics`: counted where every answer goes out.
static COUNTS: Mutex<BTreeMap<(String, u16), u64>> = Mutex::new(BTreeMap::new());

pub fn count(method: &str, status: u16) {
    let mut c = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    match c.get_mut(&(method.to_string(), status)) {
        Some(n) => *n += 1,
        None => {
            c.insert((method.to_string(), status), 1);
        }
    }
}

/// The answers given so far, by method and status.
pub fn counts() -> BTreeMap<(String, u16), u64> {
    COUNTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let get = |url: &str| route("GET", url, b"");
        let status = |names: &[&str]| Request::Status {
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        assert_eq!(get("/healthz"), Route::Healthz);
        assert_eq!(route("HEAD", "/healthz", b""), Route::Healthz);
        assert_eq!(get("/readyz"), Route::Readyz { processes: vec![] });
        assert_eq!(
            get("/readyz?process=web&process=db,g%3Aw"),
            Route::Readyz { processes: vec!["web".into(), "db".into(), "g:w".into()] }
        );
        assert_eq!(get("/api/v1/processes"), Route::Api(status(&[]), Shape::Plain));
        assert_eq!(get("/api/v1/processes/"), Route::Api(status(&[]), Shape::Plain));
        assert_eq!(
            get("/api/v1/processes/g%3Aweb"),
            Route::Api(status(&["g:web"]), Shape::One("g:web".into()))
        );
        assert_eq!(
            route("POST", "/api/v1/processes/web/restart?wait=false", b""),
            Route::Api(Request::Restart { names: vec!["web".into()], wait: false }, Shape::Single)
        );
        assert_eq!(
            route("POST", "/api/v1/groups/g/stop", b""),
            Route::Api(Request::Stop { names: vec!["g:*".into()], wait: true }, Shape::Many)
        );
        assert_eq!(
            route("POST", "/api/v1/processes/web/signal", br#"{"signal":"HUP"}"#),
            Route::Api(
                Request::Signal { signal: "HUP".into(), names: vec!["web".into()] },
                Shape::Single
            )
        );
        let Route::BadRequest(why) = route("POST", "/api/v1/processes/web/signal", br#"{"sig":1}"#)
        else {
            panic!("a bad body was taken")
        };
        assert!(why.contains("sig"), "{why}");
        assert!(matches!(
            route("POST", "/api/v1/processes/web/start?wait=maybe", b""),
            Route::BadRequest(_)
        ));
        assert_eq!(
            get("/api/v1/processes/web/log/stderr?offset=10&length=20"),
            Route::Api(
                Request::Tail {
                    name: "web".into(),
                    stream: Stream::Stderr,
                    bytes: 20,
                    offset: Some(10),
                    follow: false,
                    encoding: crate::api::Encoding::Text,
                },
                Shape::Plain
            )
        );
        assert!(matches!(
            get("/api/v1/processes/web/log/stdout?encoding=base64"),
            Route::Api(Request::Tail { encoding: crate::api::Encoding::Base64, .. }, _)
        ));
        assert!(matches!(
            get("/api/v1/processes/web/log/stdout?encoding=hex"),
            Route::BadRequest(_)
        ));
        assert!(matches!(get("/api/v1/processes/web/log/stdout?offset=-1"), Route::BadRequest(_)));
        assert_eq!(get("/api/v1/processes/web/log/stdin"), Route::NotFound);
        assert_eq!(
            get("/api/v1/processes/web/log/stdout/stream"),
            Route::LogStream { name: "web".into(), stream: Stream::Stdout }
        );
        assert_eq!(
            get("/api/v1/events/stream?types=state"),
            Route::EventStream { types: vec!["state".into()] }
        );
        assert_eq!(get("/api/v1/version"), Route::Api(Request::Version {}, Shape::Plain));
        assert_eq!(route("POST", "/api/v1/version", b""), Route::MethodNotAllowed("GET"));
        assert_eq!(get("/api/v1/shutdown"), Route::MethodNotAllowed("POST"));
        assert_eq!(route("POST", "/api/v1/processes/web/explode", b""), Route::NotFound);
        assert_eq!(route("POST", "/api/v1/groups/g/signal", b""), Route::NotFound);
        assert_eq!(get("/api/v2/processes"), Route::NotFound);
        assert_eq!(get("/"), Route::NotFound);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn events_are_framed_line_by_line() {
        let e = sse_event("log", Some(42), "one\ntwo\r\n");
        assert_eq!(e, b"event: log\nid: 42\ndata: one\ndata: two\n\n");
    }

    #[test]
    fn error_codes_map_to_http_statuses() {
        assert_eq!(status_of(ErrorCode::NotFound), 404);
        assert_eq!(status_of(ErrorCode::ShuttingDown), 503);
        let a = Answer::error(&ApiError::new(ErrorCode::NotFound, "no such process: x"));
        let v: serde_json::Value = serde_json::from_slice(&a.body.into_bytes()).unwrap();
        assert_eq!(v["code"], "NOT_FOUND");
        assert_eq!(a.status, 404);
    }
}
