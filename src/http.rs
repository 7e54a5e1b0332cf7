//! The HTTP listener: the API under `/api/v1`, the probes `/healthz` and `/readyz`.
//!
//! Connections come in through [`crate::http_front`], which bounds them and relays them to
//! tiny_http on a loopback port. tiny_http parses on its own threads; each parsed request is
//! handed to the event loop through a bounded channel and a `mio::Waker`, and the loop
//! answers it inline, with the same code that serves the control socket. The answer is written back by a responder thread,
//! so a client that reads slowly never holds the loop. No thread but the loop's touches
//! supervisor state.
//!
//! [`route`] and [`status_of`] are pure; the rest moves requests between threads.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Deserialize;

use crate::api::{ApiError, ErrorCode, Outcome, Reply, Request};
use crate::config::{HttpConfig, HttpUser, Role};
use crate::supervisor::Stream;

/// The OpenAPI 3 description of everything served here.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Requests parsed but not yet answered by the loop; past this, the listener threads wait.
const QUEUE: usize = 1024;
/// Threads writing answers, so one slow client does not hold the others.
const RESPONDERS: usize = 4;

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

    fn bytes(&self) -> &[u8] {
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

/// A parsed request with its body, ready for the loop.
pub struct Incoming {
    pub rq: tiny_http::Request,
    pub body: Vec<u8>,
    /// The request came with the credentials of a configured user (of any role). False for
    /// everyone when no user is configured.
    pub authenticated: bool,
}

/// The largest request body read; a longer one is refused with 413.
pub const MAX_BODY: usize = 64 << 10;
/// Requests being prepared at once (a password hashed, a body read), each on a thread of its
/// own, so a client that sends slowly holds only its own thread; past this, 503.
const MAX_PREPARING: usize = 16;
/// Server-Sent Events clients at once; past this, 503.
pub const MAX_SUBSCRIBERS: usize = 64;
/// Events queued for one subscriber that has not taken them yet; past this it is dropped.
const SUBSCRIBER_QUEUE: usize = 1024;
/// A comment line this often keeps proxies from timing out a quiet stream and finds clients
/// that are gone.
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// The listeners and the threads around them.
pub struct Http {
    requests: Receiver<Incoming>,
    answers: SyncSender<(tiny_http::Request, Answer)>,
    servers: Vec<Arc<tiny_http::Server>>,
    subscribers: Arc<AtomicUsize>,
    /// Answers handed to the responders and not yet written.
    unwritten: Arc<AtomicUsize>,
    fronts: Vec<crate::http_front::Handle>,
}

impl Http {
    /// Binds every address (an error names the one that failed) and starts the threads.
    pub fn start(config: &HttpConfig, waker: Arc<mio::Waker>) -> Result<Http, String> {
        let (tx, requests) = sync_channel(QUEUE);
        let mut servers = Vec::new();
        let mut fronts = Vec::new();
        let tls = match &config.tls {
            Some((cert, key)) => {
                let read = |p: &std::path::Path| {
                    std::fs::read(p).map_err(|e| format!("unable to read {}: {e}", p.display()))
                };
                Some(tiny_http::SslConfig { certificate: read(cert)?, private_key: read(key)? })
            }
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        // tiny_http listens on a loopback port of its own; each listen address has a front
        // that bounds connections and relays them there.
        let peers = Arc::new(crate::http_front::Peers::default());
        for addr in &config.listen {
            let public = std::net::TcpListener::bind(addr)
                .map_err(|e| format!("unable to listen on {addr}: {e}"))?;
            // Accepted connections inherit it: answers and small SSE events go out at once.
            let _ =
                nix::sys::socket::setsockopt(&public, nix::sys::socket::sockopt::TcpNoDelay, &true);
            let bound = public.local_addr().map_err(|e| format!("{addr}: {e}"))?;
            let private = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
                .map_err(|e| format!("unable to listen on a loopback port: {e}"))?;
            let upstream = private.local_addr().map_err(|e| format!("{addr}: {e}"))?;
            let ssl = tls.as_ref().map(|tls| tiny_http::SslConfig {
                certificate: tls.certificate.clone(),
                private_key: tls.private_key.clone(),
            });
            let server = tiny_http::Server::from_listener(private, ssl)
                .map_err(|e| format!("unable to serve HTTP on {addr}: {e}"))?;
            let front =
                crate::http_front::start(public, upstream, config.max_connections, peers.clone())
                    .map_err(|e| format!("unable to start the HTTP front for {addr}: {e}"))?;
            fronts.push(front);
            // The port as bound: port 0 in the configuration picks a free one.
            log::info!("HTTP API listening on {scheme}://{bound}");
            servers.push(Arc::new(server));
        }
        let gate = Arc::new(Gate::new(config.users.clone(), config.metrics_auth, peers));
        let readers = Arc::new(AtomicUsize::new(0));
        for server in &servers {
            let (server, tx, waker) = (server.clone(), tx.clone(), waker.clone());
            let (readers, gate) = (readers.clone(), gate.clone());
            std::thread::Builder::new()
                .name("http-accept".into())
                .spawn(move || {
                    // recv fails once the server is unblocked at shutdown.
                    while let Ok(rq) = server.recv() {
                        let hand = |incoming: Incoming| {
                            let sent = tx.send(incoming).is_ok();
                            let _ = waker.wake();
                            sent
                        };
                        let (verify, authenticated) = match gate.check(&rq) {
                            Check::Pass { authenticated } => (false, authenticated),
                            Check::Verify => (true, false),
                            Check::Refuse(answer) => {
                                respond(rq, answer);
                                continue;
                            }
                        };
                        if !verify && !has_body(&rq) {
                            if !hand(Incoming { rq, body: Vec::new(), authenticated }) {
                                break;
                            }
                            continue;
                        }
                        // A password to hash or a body to read: on a thread of its own, so
                        // neither holds the listener.
                        if readers.fetch_add(1, Ordering::SeqCst) >= MAX_PREPARING {
                            readers.fetch_sub(1, Ordering::SeqCst);
                            refuse(rq, 503, ErrorCode::ServerError, "too many requests at once");
                            continue;
                        }
                        let (count, hand_tx, waker) = (readers.clone(), tx.clone(), waker.clone());
                        let gate = gate.clone();
                        let spawned = std::thread::Builder::new()
                            .name("http-prepare".into())
                            .spawn(move || {
                                let refused = if verify { gate.verify(&rq).err() } else { None };
                                if let Some(answer) = refused {
                                    respond(rq, answer);
                                } else if let Some(incoming) =
                                    read_body(rq, authenticated || verify)
                                {
                                    let _ = hand_tx.send(incoming);
                                    let _ = waker.wake();
                                }
                                count.fetch_sub(1, Ordering::SeqCst);
                            });
                        if spawned.is_err() {
                            readers.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                })
                .map_err(|e| format!("unable to start a thread: {e}"))?;
        }
        let (answers, rx) = sync_channel::<(tiny_http::Request, Answer)>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let unwritten = Arc::new(AtomicUsize::new(0));
        for _ in 0..RESPONDERS {
            let (rx, unwritten) = (rx.clone(), unwritten.clone());
            std::thread::Builder::new()
                .name("http-respond".into())
                .spawn(move || {
                    loop {
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((rq, answer)) = next else { break };
                        respond(rq, answer);
                        unwritten.fetch_sub(1, Ordering::SeqCst);
                    }
                })
                .map_err(|e| format!("unable to start a thread: {e}"))?;
        }
        let subscribers = Arc::new(AtomicUsize::new(0));
        Ok(Http { requests, answers, servers, subscribers, unwritten, fronts })
    }

    /// The next request waiting for the loop, if any.
    pub fn next(&self) -> Option<Incoming> {
        self.requests.try_recv().ok()
    }

    /// Hands an answer to the responder threads.
    pub fn answer(&self, rq: tiny_http::Request, answer: Answer) {
        // The queue is full only when every responder is stuck on a slow client and a
        // thousand answers wait: dropping this one closes its connection.
        self.unwritten.fetch_add(1, Ordering::SeqCst);
        if self.answers.try_send((rq, answer)).is_err() {
            self.unwritten.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// At exit: gives the responders until `deadline` to write the answers they hold (the
    /// answer to a shutdown request among them).
    pub fn drain(&self, deadline: Instant) {
        while self.unwritten.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        for front in &self.fronts {
            front.flush(deadline);
        }
    }

    /// Turns the request into a Server-Sent Events stream written by a thread of its own;
    /// the loop sends it events through the returned subscriber. None (and a 503) when
    /// there are already [`MAX_SUBSCRIBERS`].
    pub fn subscribe(&self, rq: tiny_http::Request) -> Option<Subscriber> {
        if self.subscribers.fetch_add(1, Ordering::SeqCst) >= MAX_SUBSCRIBERS {
            self.subscribers.fetch_sub(1, Ordering::SeqCst);
            let e = ApiError::new(ErrorCode::ServerError, "too many event streams at once");
            self.answer(rq, Answer::json(503, &e));
            return None;
        }
        count(rq.method(), 200);
        let (tx, rx) = sync_channel::<Vec<u8>>(SUBSCRIBER_QUEUE);
        let count = self.subscribers.clone();
        let spawned = std::thread::Builder::new().name("http-events".into()).spawn(move || {
            write_events(rq, rx);
            count.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            self.subscribers.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Subscriber { tx })
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        for s in &self.servers {
            s.unblock();
        }
    }
}

/// The loop's end of an event stream.
pub struct Subscriber {
    tx: SyncSender<Vec<u8>>,
}

impl Subscriber {
    /// Queues one event (already formatted). False when the client is gone or has fallen
    /// [`SUBSCRIBER_QUEUE`] events behind: drop the subscriber, which ends its stream.
    pub fn send(&self, event: Vec<u8>) -> bool {
        self.tx.try_send(event).is_ok()
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

/// Writes the stream's head, then each event as it comes, until the loop drops the
/// subscriber or the client goes away.
fn write_events(rq: tiny_http::Request, rx: Receiver<Vec<u8>>) {
    use std::io::Write;
    let mut w = rq.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                Connection: close\r\nX-Accel-Buffering: no\r\n\r\n";
    if w.write_all(head.as_bytes()).and_then(|()| w.flush()).is_err() {
        return;
    }
    loop {
        let chunk = match rx.recv_timeout(KEEPALIVE) {
            Ok(chunk) => chunk,
            Err(RecvTimeoutError::Timeout) => b": keepalive\n\n".to_vec(),
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if w.write_all(&chunk).and_then(|()| w.flush()).is_err() {
            return;
        }
    }
}

/// Whether the request comes with a body to read.
fn has_body(rq: &tiny_http::Request) -> bool {
    match rq.body_length() {
        Some(n) => n > 0,
        // No length: chunked, or nothing (GET); only methods that carry bodies are read.
        None => !matches!(rq.method(), tiny_http::Method::Get | tiny_http::Method::Head),
    }
}

/// Reads the body, up to [`MAX_BODY`]; a longer one gets 413 and None.
fn read_body(mut rq: tiny_http::Request, authenticated: bool) -> Option<Incoming> {
    use std::io::Read;
    if !has_body(&rq) {
        return Some(Incoming { rq, body: Vec::new(), authenticated });
    }
    if rq.body_length().is_some_and(|n| n > MAX_BODY) {
        refuse(rq, 413, ErrorCode::BadRequest, "request body larger than 64 KiB");
        return None;
    }
    let mut body = Vec::new();
    let read = rq.as_reader().take(MAX_BODY as u64 + 1).read_to_end(&mut body);
    if read.is_err() {
        return None;
    }
    if body.len() > MAX_BODY {
        refuse(rq, 413, ErrorCode::BadRequest, "request body larger than 64 KiB");
        return None;
    }
    Some(Incoming { rq, body, authenticated })
}

/// Answers from a listener thread, without the loop: only for refusals that need no state.
fn refuse(rq: tiny_http::Request, status: u16, code: ErrorCode, why: &str) {
    respond(rq, Answer::json(status, &ApiError::new(code, why)));
}

/// Answers given, by method and status, for `/metrics`: counted where every answer goes out,
/// on whichever thread writes it.
static COUNTS: Mutex<BTreeMap<(String, u16), u64>> = Mutex::new(BTreeMap::new());

fn count(method: &tiny_http::Method, status: u16) {
    let mut c = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    match c.get_mut(&(method.as_str().to_string(), status)) {
        Some(n) => *n += 1,
        None => {
            c.insert((method.as_str().to_string(), status), 1);
        }
    }
}

/// The answers given so far, by method and status.
pub fn counts() -> BTreeMap<(String, u16), u64> {
    COUNTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn respond(rq: tiny_http::Request, answer: Answer) {
    use std::io::Write;
    count(rq.method(), answer.status);
    // The whole answer in one write: a head sent alone would leave the body's last segment
    // waiting for the client's delayed ACK (Nagle), 40 ms a request on a kept-alive connection.
    let body = answer.body.into_bytes();
    let mut out = Vec::with_capacity(body.len() + 256);
    let version = if rq.http_version() == &tiny_http::HTTPVersion(1, 0) { "1.0" } else { "1.1" };
    let reason = tiny_http::StatusCode(answer.status).default_reason_phrase();
    let _ = write!(out, "HTTP/{version} {} {reason}\r\n", answer.status);
    if !answer.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Content-Type")) {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    for (k, v) in &answer.headers {
        // Values are Kahi's own; a line break in one would split the head.
        if !v.contains(['\r', '\n']) {
            let _ = write!(out, "{k}: {v}\r\n");
        }
    }
    // tiny_http closes the connection after this answer when the request asked for it.
    let close = rq.headers().iter().any(|h| {
        h.field.equiv("Connection") && h.value.as_str().to_ascii_lowercase().contains("close")
    });
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    if rq.method() != &tiny_http::Method::Head {
        out.extend_from_slice(&body);
    }
    let mut w = rq.into_writer();
    // The client may be gone; nothing to do about it.
    let _ = w.write_all(&out).and_then(|()| w.flush());
}

/// Whether the URL is the readiness probe's.
fn is_readyz(url: &str) -> bool {
    url.split('?').next().unwrap_or(url).trim_end_matches('/') == "/readyz"
}

/// The role a request needs, or None for the probes, which anyone may ask: /healthz, /readyz
/// and, unless `metrics_auth` says otherwise, /metrics (as Prometheus and Kubernetes expect).
pub fn required_role(method: &str, url: &str, metrics_auth: bool) -> Option<Role> {
    let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    if path == "/healthz" || path == "/readyz" || (path == "/metrics" && !metrics_auth) {
        return None;
    }
    if method == "GET" || method == "HEAD" {
        return Some(Role::Viewer);
    }
    let segments: Vec<&str> = path.split('/').collect();
    Some(match segments.as_slice() {
        ["", "api", "v1", "processes", _, "start" | "stop" | "restart" | "signal" | "stdin"]
        | ["", "api", "v1", "groups", _, "start" | "stop" | "restart"] => Role::Operator,
        _ => Role::Admin,
    })
}

/// Consecutive failed logins for one user name from one address before that name must wait
/// there: another user at the same address (the same host, or behind the same NAT) is not
/// held by someone guessing this one's password.
const FREE_FAILURES: u32 = 5;
/// Consecutive failed logins from one address, whatever the names, before every name must
/// wait there: it slows one client trying many names. Looser, so that a guesser held to one
/// try per [`MAX_LOCKOUT`] on one name takes hours to reach it.
const FREE_ADDRESS_FAILURES: u32 = 50;
/// Failed logins per (user name or None for any, address): how many in a row, and until when
/// the key must wait.
type Failures = HashMap<(Option<String>, IpAddr), (u32, Instant)>;
/// Failure records kept at most; past this, the ones no longer waiting are forgotten.
const MAX_FAILURE_RECORDS: usize = 4096;
/// The longest wait.
const MAX_LOCKOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Authentication and authorization, on the listener threads (bcrypt is slow by design and
/// must never run on the loop).
struct Gate {
    users: Vec<HttpUser>,
    /// /metrics needs the viewer role.
    metrics_auth: bool,
    /// `Authorization` values that passed bcrypt once, and whose they are.
    known: Mutex<HashMap<String, usize>>,
    /// Failed logins per (user name, address) and per address (name None): how many in a
    /// row, and until when it must wait.
    failures: Mutex<Failures>,
    /// A hash to check unknown names against, so they take as long as known ones.
    decoy: OnceLock<String>,
    /// The clients behind the front's relays.
    peers: Arc<crate::http_front::Peers>,
}

enum Check {
    /// Let through; `authenticated` when credentials of a user came with it.
    Pass {
        authenticated: bool,
    },
    /// The credentials are new: check them with bcrypt (off the listener thread).
    Verify,
    Refuse(Answer),
}

impl Gate {
    fn new(users: Vec<HttpUser>, metrics_auth: bool, peers: Arc<crate::http_front::Peers>) -> Gate {
        Gate {
            users,
            metrics_auth,
            known: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            decoy: OnceLock::new(),
            peers,
        }
    }

    /// The client's address (not the relay's).
    fn peer(&self, rq: &tiny_http::Request) -> Option<IpAddr> {
        rq.remote_addr().map(|a| self.peers.client(*a))
    }

    /// What can be decided without bcrypt.
    fn check(&self, rq: &tiny_http::Request) -> Check {
        if self.users.is_empty() {
            return Check::Pass { authenticated: false };
        }
        let need = match required_role(rq.method().as_str(), rq.url(), self.metrics_auth) {
            Some(need) => need,
            // /readyz tells a user which names are unknown, and nobody else: credentials
            // that come with it are checked like any others.
            None if is_readyz(rq.url()) && authorization(rq).is_some() => Role::Viewer,
            None => return Check::Pass { authenticated: false },
        };
        let Some(auth) = authorization(rq) else {
            return Check::Refuse(unauthorized("authentication required"));
        };
        if let Some(wait) = self.locked_out(rq, auth) {
            return Check::Refuse(Answer::json(
                429,
                &ApiError::new(
                    ErrorCode::Unauthorized,
                    format!(
                        "too many failed logins from this address; try again in {} s",
                        wait.as_secs() + 1
                    ),
                ),
            ));
        }
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner()).get(auth).copied();
        match known {
            Some(i) => self.allow(i, need),
            None => Check::Verify,
        }
    }

    /// Checks new credentials with bcrypt; remembers them when they are right, counts and
    /// logs the failure (with the peer's address) when not.
    fn verify(&self, rq: &tiny_http::Request) -> Result<(), Answer> {
        let need = required_role(rq.method().as_str(), rq.url(), self.metrics_auth)
            .unwrap_or(Role::Viewer);
        let auth = authorization(rq).unwrap_or_default().to_string();
        let (name, password) = decode_basic(&auth).unwrap_or_default();
        let user = self.users.iter().position(|u| u.name == name);
        let hash = match user {
            Some(i) => self.users[i].password_hash.as_str(),
            None => self.decoy.get_or_init(|| {
                let cost = self.users[0].password_hash[4..6].parse().unwrap_or(12);
                bcrypt::hash("decoy", cost).unwrap_or_default()
            }),
        };
        let right = bcrypt::verify(&password, hash).unwrap_or(false) && user.is_some();
        let peer = self.peer(rq);
        match (right, user) {
            (true, Some(i)) => {
                if let Some(ip) = peer {
                    // The address has a user who knows a password: its count starts over.
                    let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
                    f.remove(&(Some(name.clone()), ip));
                    f.remove(&(None, ip));
                }
                let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
                if known.len() >= 1024 {
                    known.clear();
                }
                known.insert(auth, i);
                match self.allow(i, need) {
                    Check::Refuse(a) => Err(a),
                    _ => Ok(()),
                }
            }
            _ => {
                let n = match peer {
                    Some(ip) => {
                        let now = Instant::now();
                        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
                        if f.len() >= MAX_FAILURE_RECORDS {
                            f.retain(|_, (_, until)| *until > now);
                        }
                        count_failure(&mut f, (None, ip), FREE_ADDRESS_FAILURES, now);
                        count_failure(&mut f, (Some(name.clone()), ip), FREE_FAILURES, now)
                    }
                    None => 1,
                };
                let from = peer.map_or("an unknown address".to_string(), |ip| ip.to_string());
                if n <= FREE_FAILURES || n.is_power_of_two() {
                    log::warn!("HTTP: failed login for user {name:?} from {from} ({n} in a row)");
                }
                Err(unauthorized("wrong user name or password"))
            }
        }
    }

    /// How long the request must still wait after failed logins: for its user name from its
    /// address, or for any name from its address.
    fn locked_out(&self, rq: &tiny_http::Request, auth: &str) -> Option<std::time::Duration> {
        let ip = self.peer(rq)?;
        let name = decode_basic(auth).map(|(name, _)| name).unwrap_or_default();
        let now = Instant::now();
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        [(Some(name), ip), (None, ip)]
            .iter()
            .filter_map(|key| f.get(key))
            .filter_map(|(_, until)| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
            .max()
    }

    fn allow(&self, user: usize, need: Role) -> Check {
        let u = &self.users[user];
        if u.role >= need {
            Check::Pass { authenticated: true }
        } else {
            Check::Refuse(Answer::error(&ApiError::new(
                ErrorCode::Forbidden,
                format!("user {} has role {}; this needs {}", u.name, u.role.name(), need.name()),
            )))
        }
    }
}

/// Counts one more failed login under `key`; from the `free`-th in a row on, it must wait
/// 1 s, then twice as long each time, up to [`MAX_LOCKOUT`]. Returns the count.
fn count_failure(f: &mut Failures, key: (Option<String>, IpAddr), free: u32, now: Instant) -> u32 {
    let entry = f.entry(key).or_insert((0, now));
    entry.0 = entry.0.saturating_add(1);
    if entry.0 >= free {
        let wait = std::time::Duration::from_secs(1 << (entry.0 - free).min(9));
        entry.1 = now + wait.min(MAX_LOCKOUT);
    }
    entry.0
}

/// The `Authorization` header's value.
fn authorization(rq: &tiny_http::Request) -> Option<&str> {
    rq.headers().iter().find(|h| h.field.equiv("Authorization")).map(|h| h.value.as_str())
}

/// `Basic BASE64(name:password)` -> (name, password).
pub fn decode_basic(value: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

fn unauthorized(why: &str) -> Answer {
    let mut a = Answer::error(&ApiError::new(ErrorCode::Unauthorized, why));
    a.headers.push(("WWW-Authenticate", "Basic realm=\"kahi\", charset=\"UTF-8\"".into()));
    a
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
