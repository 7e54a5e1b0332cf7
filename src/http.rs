//! The HTTP listener: the API under `/api/v1`, the probes `/healthz` and `/readyz`.
//!
//! tiny_http accepts and parses on its own threads; each parsed request is handed to the event
//! loop through a bounded channel and a `mio::Waker`, and the loop answers it inline, with the
//! same code that serves the control socket. The answer is written back by a responder thread,
//! so a client that reads slowly never holds the loop. No thread but the loop's touches
//! supervisor state.
//!
//! [`route`] and [`status_of`] are pure; the rest moves requests between threads.

use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use crate::api::{ApiError, ErrorCode};

/// Requests parsed but not yet answered by the loop; past this, the listener threads wait.
const QUEUE: usize = 1024;
/// Threads writing answers, so one slow client does not hold the others.
const RESPONDERS: usize = 4;

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Healthz,
    /// Ready when every named process (or, with none named, every autostart process) is
    /// RUNNING.
    Readyz {
        processes: Vec<String>,
    },
    Processes,
    Process(String),
    Version,
    /// A known path with a method it does not take.
    MethodNotAllowed(&'static str),
    NotFound,
}

/// Maps a method and a URL (path and query) to a route.
pub fn route(method: &str, url: &str) -> Route {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let get = |r: Route| {
        if method == "GET" || method == "HEAD" { r } else { Route::MethodNotAllowed("GET") }
    };
    match path.trim_end_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        ["", "healthz"] => get(Route::Healthz),
        ["", "readyz"] => get(Route::Readyz { processes: query_values(query, "process") }),
        ["", "api", "v1", "processes"] => get(Route::Processes),
        ["", "api", "v1", "processes", name] if !name.is_empty() => {
            get(Route::Process(percent_decode(name)))
        }
        ["", "api", "v1", "version"] => get(Route::Version),
        _ => Route::NotFound,
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
    pub body: Vec<u8>,
    /// Extra headers, such as `Allow`.
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn json(status: u16, value: &impl serde::Serialize) -> Answer {
        let mut body = serde_json::to_vec(value).unwrap_or_default();
        body.push(b'\n');
        Answer { status, body, headers: Vec::new() }
    }

    pub fn error(e: &ApiError) -> Answer {
        Answer::json(status_of(e.code), e)
    }
}

/// The listeners and the threads around them.
pub struct Http {
    requests: Receiver<tiny_http::Request>,
    answers: SyncSender<(tiny_http::Request, Answer)>,
    servers: Vec<Arc<tiny_http::Server>>,
}

impl Http {
    /// Binds every address (an error names the one that failed) and starts the threads.
    pub fn start(addrs: &[SocketAddr], waker: Arc<mio::Waker>) -> Result<Http, String> {
        let (tx, requests) = sync_channel(QUEUE);
        let mut servers = Vec::new();
        for addr in addrs {
            let server = tiny_http::Server::http(addr)
                .map_err(|e| format!("unable to listen on {addr}: {e}"))?;
            // The port as bound: port 0 in the configuration picks a free one.
            match server.server_addr().to_ip() {
                Some(bound) => log::info!("HTTP API listening on http://{bound}"),
                None => log::info!("HTTP API listening on http://{addr}"),
            }
            servers.push(Arc::new(server));
        }
        for server in &servers {
            let (server, tx, waker) = (server.clone(), tx.clone(), waker.clone());
            std::thread::Builder::new()
                .name("http-accept".into())
                .spawn(move || {
                    // recv fails once the server is unblocked at shutdown.
                    while let Ok(rq) = server.recv() {
                        if tx.send(rq).is_err() {
                            break;
                        }
                        let _ = waker.wake();
                    }
                })
                .map_err(|e| format!("unable to start a thread: {e}"))?;
        }
        let (answers, rx) = sync_channel::<(tiny_http::Request, Answer)>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..RESPONDERS {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name("http-respond".into())
                .spawn(move || {
                    loop {
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((rq, answer)) = next else { break };
                        respond(rq, answer);
                    }
                })
                .map_err(|e| format!("unable to start a thread: {e}"))?;
        }
        Ok(Http { requests, answers, servers })
    }

    /// The next request waiting for the loop, if any.
    pub fn next(&self) -> Option<tiny_http::Request> {
        self.requests.try_recv().ok()
    }

    /// Hands an answer to the responder threads.
    pub fn answer(&self, rq: tiny_http::Request, answer: Answer) {
        // The queue is full only when every responder is stuck on a slow client and a
        // thousand answers wait: dropping this one closes its connection.
        let _ = self.answers.try_send((rq, answer));
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        for s in &self.servers {
            s.unblock();
        }
    }
}

fn respond(rq: tiny_http::Request, answer: Answer) {
    let head = rq.method() == &tiny_http::Method::Head;
    let mut headers = vec![header("Content-Type", "application/json")];
    headers.extend(answer.headers.iter().map(|(k, v)| header(k, v)));
    let len = answer.body.len();
    let body: Box<dyn std::io::Read + Send> =
        if head { Box::new(std::io::empty()) } else { Box::new(std::io::Cursor::new(answer.body)) };
    let response = tiny_http::Response::new(
        tiny_http::StatusCode(answer.status),
        headers,
        body,
        Some(len),
        None,
    );
    // The client may be gone; nothing to do about it.
    let _ = rq.respond(response);
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|_| tiny_http::Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/healthz"), Route::Healthz);
        assert_eq!(route("HEAD", "/healthz"), Route::Healthz);
        assert_eq!(route("GET", "/readyz"), Route::Readyz { processes: vec![] });
        assert_eq!(
            route("GET", "/readyz?process=web&process=db,g%3Aw"),
            Route::Readyz { processes: vec!["web".into(), "db".into(), "g:w".into()] }
        );
        assert_eq!(route("GET", "/api/v1/processes"), Route::Processes);
        assert_eq!(route("GET", "/api/v1/processes/"), Route::Processes);
        assert_eq!(route("GET", "/api/v1/processes/g%3Aweb"), Route::Process("g:web".into()));
        assert_eq!(route("GET", "/api/v1/version"), Route::Version);
        assert_eq!(route("POST", "/api/v1/version"), Route::MethodNotAllowed("GET"));
        assert_eq!(route("GET", "/api/v2/processes"), Route::NotFound);
        assert_eq!(route("GET", "/"), Route::NotFound);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn error_codes_map_to_http_statuses() {
        assert_eq!(status_of(ErrorCode::NotFound), 404);
        assert_eq!(status_of(ErrorCode::ShuttingDown), 503);
        let a = Answer::error(&ApiError::new(ErrorCode::NotFound, "no such process: x"));
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["code"], "NOT_FOUND");
        assert_eq!(a.status, 404);
    }
}
