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
//! The routes (a method and URL to an `api::Request` and the role it needs) and the shaping of
//! replies into answers are `http_routes`, pure; [`Http`] is the loop's end of the front.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::api::{ApiError, ErrorCode, Now};
use crate::config::{HttpConfig, Listen};
use crate::http_auth::Gate;
pub use crate::http_auth::decode_basic;
use crate::http_front::{OutletState, ToFront};
pub use crate::http_routes::{Route, Shape, answer, required_role, route, status_of};
use crate::http_tls::Listener;
pub use crate::http_wire::Req;
use crate::supervisor::Supervisor;

/// The OpenAPI 3 description of everything served here.
pub const OPENAPI: &str = include_str!("openapi.json");

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
    /// The files of the Unix sockets listened on, removed at exit.
    files: Vec<SocketFile>,
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
        let mut files = Vec::new();
        for addr in &config.listen {
            let (listener, url, tls, peer_credentials) = match addr {
                Listen::Tcp(addr) => {
                    let l = std::net::TcpListener::bind(addr)
                        .and_then(|l| l.set_nonblocking(true).map(|()| l))
                        .map_err(|e| format!("unable to listen on {addr}: {e}"))?;
                    let bound = l.local_addr().map_err(|e| format!("{addr}: {e}"))?;
                    // The port as bound: port 0 in the configuration picks a free one.
                    let url = server_url(scheme, bound);
                    log::info!("HTTP API listening on {scheme}://{bound}");
                    (Listener::Tcp(mio::net::TcpListener::from_std(l)), url, tls.clone(), false)
                }
                Listen::Unix(path) => {
                    let (what, taken) =
                        ("the HTTP socket", "stop it, or change [server.http] listen");
                    let owner =
                        config.socket_owner.map_or((None, None), |(u, g)| (Some(u), Some(g)));
                    let l =
                        crate::control::bind_unix(path, config.socket_mode, owner, what, taken)?;
                    files.push(SocketFile::new(path));
                    l.set_nonblocking(true).map_err(|e| format!("{}: {e}", path.display()))?;
                    log::info!("HTTP API listening on {addr}");
                    let listener = Listener::Unix(mio::net::UnixListener::from_std(l));
                    (listener, addr.to_string(), None, config.peer_credentials)
                }
            };
            if listens.is_empty() {
                crate::sys::environ::set_server_url(url);
            }
            listens.push(crate::http_front::Listen { listener, tls, peer_credentials });
        }
        let gate = Arc::new(Gate::new(config.users.clone(), config.metrics_auth));
        let front = crate::http_front::start(listens, config.max_connections, gate, tx, waker)
            .map_err(|e| format!("unable to start the HTTP front: {e}"))?;
        let subscribers = Arc::new(AtomicUsize::new(0));
        Ok(Http { requests, front, subscribers, streams: HashMap::new(), files })
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
    fn open(&self, rq: Req, head: Vec<u8>, chunked: bool, sse: bool, follow: bool) -> Outlet {
        let state = Arc::new(OutletState::default());
        let conn = rq.conn;
        self.front.send(ToFront::Open { rq, head, chunked, sse, follow, outlet: state.clone() });
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
        let head_only = rq.method() == "HEAD";
        let chunked = !rq.head.http10 && !rq.head.close && !head_only;
        let head = crate::http_wire::answer_head(rq.head.http10, 200, &[], None, !chunked);
        let outlet = self.open(rq, head, chunked, false, false);
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
    /// a shutdown request among them), and removes the Unix sockets' files.
    pub fn drain(&self, deadline: Instant) {
        self.front.flushed.store(false, Ordering::SeqCst);
        self.front.send(ToFront::Flush);
        while !self.front.flushed.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        self.files.iter().for_each(SocketFile::remove);
    }

    /// Turns the request into a Server-Sent Events stream; the loop sends it events through
    /// the returned subscriber. None (and a 503) when there are already [`MAX_SUBSCRIBERS`].
    pub fn subscribe(&self, rq: Req) -> Option<Subscriber> {
        let head =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                     Connection: close\r\nX-Accel-Buffering: no\r\n\r\n"
                .to_vec();
        self.subscribe_with(rq, head, true)
    }

    /// Like [`Http::subscribe`], for a log sent as its own bytes (supervisord's `/logtail`,
    /// which supervisorctl's `tail -f` reads): plain text, no event framing, no keep-alive
    /// comments; it ends with the connection.
    pub fn subscribe_text(&self, rq: Req) -> Option<Subscriber> {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain;charset=utf-8\r\n\
                     Cache-Control: no-cache\r\nConnection: close\r\nX-Accel-Buffering: no\r\n\r\n"
            .to_vec();
        self.subscribe_with(rq, head, false)
    }

    fn subscribe_with(&self, rq: Req, head: Vec<u8>, sse: bool) -> Option<Subscriber> {
        if self.subscribers.fetch_add(1, Ordering::SeqCst) >= MAX_SUBSCRIBERS {
            self.subscribers.fetch_sub(1, Ordering::SeqCst);
            let e = ApiError::new(ErrorCode::ServerError, "too many event streams at once");
            self.answer(rq, Answer::json(503, &e));
            return None;
        }
        let outlet = self.open(rq, head, false, sse, true);
        Some(Subscriber { outlet, count: self.subscribers.clone() })
    }
}

/// The file of a Unix socket Kahi bound, removed when Kahi is done with it, unless another
/// file has taken its place since.
struct SocketFile {
    path: std::path::PathBuf,
    /// Its device and inode, as bound.
    id: Option<(u64, u64)>,
}

impl SocketFile {
    fn new(path: &std::path::Path) -> SocketFile {
        SocketFile { path: path.to_path_buf(), id: Self::id_of(path) }
    }

    fn id_of(path: &std::path::Path) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }

    fn remove(&self) {
        if self.id.is_some() && Self::id_of(&self.path) == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.remove();
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

/// The URL programs are given to reach the first listen address (`SUPERVISOR_SERVER_URL`):
/// one bound to every address is reached on the loopback.
fn server_url(scheme: &str, mut at: std::net::SocketAddr) -> String {
    if at.ip().is_unspecified() {
        at.set_ip(match at {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("{scheme}://{at}")
}

/// One Server-Sent Event: `event: NAME`, an optional `id:`, and the data, one `data:` line
/// per line of it. Lines end where the protocol says they do (CR LF, CR or LF), so that no
/// byte of the data can end a `data:` line and start a field of its own (a progress bar's CR
/// followed by `id: ...`); a client joins them with LF, so a data that ends with a line end
/// arrives with it (an empty last `data:` line), and a CR arrives as LF.
pub fn sse_event(name: &str, id: Option<u64>, data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 32);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    if let Some(id) = id {
        out.extend_from_slice(format!("id: {id}\n").as_bytes());
    }
    let mut rest = Some(data);
    while let Some(text) = rest {
        let (line, next) = match text.find(['\r', '\n']) {
            Some(i) => {
                let end = if text[i..].starts_with("\r\n") { i + 2 } else { i + 1 };
                (&text[..i], Some(&text[end..]))
            }
            None => (text, None),
        };
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        rest = next;
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
    fn programs_reach_the_first_address_on_the_loopback_when_it_is_every_address() {
        let url = |a: &str| server_url("http", a.parse().unwrap());
        assert_eq!(url("127.0.0.1:9001"), "http://127.0.0.1:9001");
        assert_eq!(url("0.0.0.0:9001"), "http://127.0.0.1:9001");
        assert_eq!(url("[::]:9001"), "http://[::1]:9001");
        assert_eq!(url("10.1.2.3:80"), "http://10.1.2.3:80");
    }

    #[test]
    fn events_are_framed_line_by_line() {
        // A line end in the data is a data line's end: the last, empty one keeps it.
        let e = sse_event("log", Some(42), "one\ntwo\r\n");
        assert_eq!(e, b"event: log\nid: 42\ndata: one\ndata: two\ndata: \n\n");
        assert_eq!(sse_event("log", None, "abc"), b"event: log\ndata: abc\n\n");
        // A CR ends a line too: what follows it cannot be a field of the event.
        let e = sse_event("log", Some(7), "50%\rid: 999\revent: pwned\rdata: x\n");
        assert_eq!(
            e,
            b"event: log\nid: 7\ndata: 50%\ndata: id: 999\ndata: event: pwned\ndata: data: x\ndata: \n\n"
        );
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
