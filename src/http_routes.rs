//! HTTP's routes: a method, a URL and a body to the `api::Request` every transport asks (and
//! so to the role it needs), and a reply to an HTTP answer (a status and a JSON body). Pure.

use serde::Deserialize;

use crate::api::{ApiError, ErrorCode, Outcome, Reply, Request};
use crate::config::Role;
use crate::http::Answer;
use crate::supervisor::Stream;

/// What a request asks for.
#[derive(Debug, PartialEq)]
pub enum Route {
    /// A request of the API, as every transport asks it, and how its reply becomes an HTTP
    /// answer.
    Api(Request, Shape),
    /// The OpenAPI description of these routes.
    OpenApi,
    /// supervisord's XML-RPC interface (`POST /RPC2`): the calls are in the body, and each
    /// needs the role of the request it asks, checked once the body is read.
    Xmlrpc,
    /// A page or an asset of the web dashboard (`crate::dashboard`).
    Dashboard(crate::dashboard::Page),
    /// A known path with a method it does not take.
    MethodNotAllowed(&'static str),
    NotFound,
    /// A known request whose query or body is bad: 400, for a client with the role the
    /// request needs.
    Invalid {
        why: String,
        role: Role,
    },
}

impl Route {
    /// The role a client must have to be answered, or None for a probe, which anyone may
    /// ask: /healthz, /readyz and, unless `metrics_auth` says otherwise, /metrics (as
    /// Prometheus and Kubernetes expect). A path Kahi does not serve needs a viewer to read
    /// it and an admin otherwise, so that who is not a user learns nothing of it.
    pub fn role(&self, method: &str, metrics_auth: bool) -> Option<Role> {
        match self {
            Route::Api(req, _) if req.is_probe(metrics_auth) => None,
            Route::Api(req, _) => Some(req.role()),
            Route::Invalid { role, .. } => Some(*role),
            Route::OpenApi => Some(Role::Viewer),
            Route::Dashboard(page) => Some(page.role()),
            // A user of any role; each call's own is checked on the loop.
            Route::Xmlrpc => Some(Role::Viewer),
            Route::MethodNotAllowed(_) | Route::NotFound => {
                Some(if is_read(method) { Role::Viewer } else { Role::Admin })
            }
        }
    }
}

fn is_read(method: &str) -> bool {
    method == "GET" || method == "HEAD"
}

/// The role a request needs (None for the probes), from its route: the front asks this
/// before the body is read, and a body that turns out bad still needs the role of its route.
pub fn required_role(method: &str, url: &str, metrics_auth: bool) -> Option<Role> {
    route(method, url, b"").role(method, metrics_auth)
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
    /// A follow of a log as its own bytes, not Server-Sent Events: supervisord's `/logtail`,
    /// which supervisorctl's `tail -f` reads.
    Text,
    /// A form of the web dashboard: a redirect back, or a page (`crate::dashboard`).
    Form(crate::dashboard::Form),
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
    let get = |r: Route| if is_read(method) { r } else { Route::MethodNotAllowed("GET") };
    let post = |r: Route| if method == "POST" { r } else { Route::MethodNotAllowed("POST") };
    let api = |req: Request, shape: Shape| Route::Api(req, shape);
    // A query or body that does not parse: refused, for whoever may ask the request.
    let invalid = |why: String, role: Role| Route::Invalid { why, role };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["", "healthz"] => get(api(Request::Health {}, Shape::Plain)),
        ["", "readyz"] => get(api(
            Request::Ready { names: query_values(query, "process"), anonymous: false },
            Shape::Plain,
        )),
        ["", "metrics"] => get(api(Request::Metrics {}, Shape::Plain)),
        ["", "api", "v1", "openapi.json"] => get(Route::OpenApi),
        ["", "RPC2"] => post(Route::Xmlrpc),
        // supervisord's: the last 1024 bytes, then each new one.
        ["", "logtail", name, rest @ ..] if rest.len() <= 1 => {
            let stream = match rest {
                [s] => stream_of(s),
                _ => Some(Stream::Stdout),
            };
            let Some(stream) = stream else { return Route::NotFound };
            let req = Request::Tail {
                name: percent_decode(name),
                stream,
                bytes: 1024,
                offset: None,
                follow: true,
                encoding: crate::api::Encoding::Text,
            };
            get(api(req, Shape::Text))
        }
        // supervisord's: Kahi's own log, the last 1024 bytes, then each new one.
        ["", "mainlogtail"] => {
            get(api(Request::Maintail { bytes: 1024, follow: true }, Shape::Text))
        }
        ["", "api", "v1", "version"] => get(api(Request::Version {}, Shape::Plain)),
        ["", "api", "v1", "processes"] => {
            get(api(Request::Status { names: Vec::new() }, Shape::Plain))
        }
        ["", "api", "v1", "processes", name] if !name.is_empty() => {
            let name = percent_decode(name);
            get(api(Request::Status { names: vec![name.clone()] }, Shape::One(name)))
        }
        ["", "api", "v1", "processes", name, "signal"] => post(match signal_body(body) {
            Ok(signal) => {
                api(Request::Signal { signal, names: vec![percent_decode(name)] }, Shape::Single)
            }
            Err(e) => invalid(e, Role::Operator),
        }),
        ["", "api", "v1", "processes", name, "stdin"] => post(match stdin_body(body) {
            Ok(data) => api(Request::Stdin { name: percent_decode(name), data }, Shape::Plain),
            Err(e) => invalid(e, Role::Operator),
        }),
        ["", "api", "v1", "processes", name, action] => match action_request(action, name, query) {
            Some(Ok(req)) => post(api(req, Shape::Single)),
            Some(Err(e)) => post(invalid(e, Role::Operator)),
            None => Route::NotFound,
        },
        ["", "api", "v1", "processes", name, "log", stream] => {
            let Some(stream) = stream_of(stream) else { return Route::NotFound };
            match log_query(query) {
                Ok((offset, length, encoding)) => get(api(
                    Request::Tail {
                        name: percent_decode(name),
                        stream,
                        bytes: length.unwrap_or(crate::api::default_tail_bytes()),
                        offset,
                        follow: false,
                        encoding,
                    },
                    Shape::Plain,
                )),
                Err(e) => get(invalid(e, Role::Viewer)),
            }
        }
        ["", "api", "v1", "processes", name, "log", stream, "stream"] => {
            let Some(stream) = stream_of(stream) else { return Route::NotFound };
            get(api(
                Request::Tail {
                    name: percent_decode(name),
                    stream,
                    bytes: crate::api::default_tail_bytes(),
                    offset: None,
                    follow: true,
                    encoding: crate::api::Encoding::Text,
                },
                Shape::Plain,
            ))
        }
        ["", "api", "v1", "groups"] => get(api(Request::Groups {}, Shape::Plain)),
        ["", "api", "v1", "groups", name, action] if *action != "signal" => {
            let group = format!("{}:*", percent_decode(name));
            match action_request(action, &group, query) {
                Some(Ok(req)) => post(api(req, Shape::Many)),
                Some(Err(e)) => post(invalid(e, Role::Operator)),
                None => Route::NotFound,
            }
        }
        ["", "api", "v1", "config"] => get(api(Request::Config {}, Shape::Plain)),
        ["", "api", "v1", "config", "reload"] => post(api(Request::Reread {}, Shape::Plain)),
        ["", "api", "v1", "config", "update"] => post(api(Request::Update {}, Shape::Plain)),
        ["", "api", "v1", "shutdown"] => post(api(Request::Shutdown {}, Shape::Plain)),
        ["", "api", "v1", "events", "remote"] => post(match remote_body(body) {
            Ok(b) => api(Request::Sendcomm { kind: b.kind, data: b.data }, Shape::Plain),
            Err(e) => invalid(e, Role::Operator),
        }),
        ["", "api", "v1", "events", "stream"] => {
            get(api(Request::Events { types: query_values(query, "types") }, Shape::Plain))
        }
        _ if crate::dashboard::owns(path) => crate::dashboard::route(method, path, query, body),
        _ => Route::NotFound,
    }
}

/// `start`, `stop`, `restart` or `clear` of `name` (`?wait=false` not to wait for a start or
/// stop); None for another action.
fn action_request(action: &str, name: &str, query: &str) -> Option<Result<Request, String>> {
    let names = vec![percent_decode(name)];
    let wait = || match query_values(query, "wait").last().map(String::as_str) {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(format!("wait: expected true or false, found {v:?}")),
    };
    Some(match action {
        "start" => wait().map(|wait| Request::Start { names, wait }),
        "stop" => wait().map(|wait| Request::Stop { names, wait }),
        "restart" => wait().map(|wait| Request::Restart { names, wait }),
        "clear" => Ok(Request::Clear { names }),
        _ => return None,
    })
}

/// `offset`, `length` and `encoding` of a log read.
fn log_query(query: &str) -> Result<(Option<u64>, Option<u64>, crate::api::Encoding), String> {
    let number = |key: &str| -> Result<Option<u64>, String> {
        match query_values(query, key).last() {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{key}: expected a non-negative integer, found {v:?}")),
        }
    };
    let encoding = match query_values(query, "encoding").last().map(|v| v.as_str()) {
        None | Some("text") => crate::api::Encoding::Text,
        Some("base64") => crate::api::Encoding::Base64,
        Some(other) => return Err(format!("encoding: expected text or base64, found {other:?}")),
    };
    Ok((number("offset")?, number("length")?, encoding))
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

/// The body of `POST /api/v1/events/remote`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: String,
}

fn remote_body(body: &[u8]) -> Result<RemoteBody, String> {
    serde_json::from_slice::<RemoteBody>(body).map_err(|e| {
        format!("request body: {e} (expected {{\"type\": \"T\", \"data\": \"text\"}})")
    })
}

fn signal_body(body: &[u8]) -> Result<String, String> {
    serde_json::from_slice::<SignalBody>(body)
        .map(|b| b.signal)
        .map_err(|e| format!("request body: {e} (expected {{\"signal\": \"HUP\"}})"))
}

/// Turns the reply to an API request into an HTTP answer.
pub fn answer(shape: &Shape, reply: Result<Reply, ApiError>) -> Answer {
    if let Shape::Form(form) = shape {
        return crate::dashboard::form_answer(form, reply);
    }
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
        // One process (a group name answers as the group's own action does, below).
        (Shape::Single, Reply::Results { results })
            if results.first().is_some_and(|f| results.iter().all(|r| r.name == f.name)) =>
        {
            // A restart reports its stop half, then its start: the last says how it ended.
            let r = &results[results.len() - 1];
            let (status, code) = match r.outcome {
                Outcome::NoSuchProcess => (404, ErrorCode::NotFound),
                Outcome::AlreadyStarted | Outcome::NotRunning => (409, ErrorCode::Conflict),
                Outcome::SpawnError
                | Outcome::AbnormalTermination
                | Outcome::NoSuchFile
                | Outcome::NotExecutable => (500, ErrorCode::ServerError),
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
        (_, Reply::Groups { groups }) => Answer::json(200, &groups),
        (_, Reply::Config { config }) => Answer::json(200, &config),
        (_, Reply::Metrics { text }) => Answer::metrics(text),
        (_, other) => {
            // Log, Version, Shutdown, Pid, Ready, Health: the payload without its tag; not
            // ready is 503, as probes expect.
            let status = if matches!(other, Reply::Ready { ready: false, .. }) { 503 } else { 200 };
            let mut v = serde_json::to_value(&other).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.remove("reply");
            }
            Answer::json(status, &v)
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
pub fn percent_decode(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let get = |url: &str| route("GET", url, b"");
        let status = |names: &[&str]| Request::Status {
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        let plain = |req: Request| Route::Api(req, Shape::Plain);
        assert_eq!(get("/healthz"), plain(Request::Health {}));
        assert_eq!(route("HEAD", "/healthz", b""), plain(Request::Health {}));
        assert_eq!(get("/readyz"), plain(Request::Ready { names: vec![], anonymous: false }));
        assert_eq!(
            get("/readyz?process=web&process=db,g%3Aw"),
            plain(Request::Ready {
                names: vec!["web".into(), "db".into(), "g:w".into()],
                anonymous: false
            })
        );
        // A query that only an action reads is no concern of a probe's.
        assert_eq!(get("/healthz?wait=maybe"), plain(Request::Health {}));
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
        let Route::Invalid { why, role: Role::Operator } =
            route("POST", "/api/v1/processes/web/signal", br#"{"sig":1}"#)
        else {
            panic!("a bad body was taken")
        };
        assert!(why.contains("sig"), "{why}");
        assert_eq!(
            route("POST", "/api/v1/events/remote", br#"{"type":"deploy","data":"v2"}"#),
            plain(Request::Sendcomm { kind: "deploy".into(), data: "v2".into() })
        );
        assert!(matches!(
            route("POST", "/api/v1/events/remote", br#"{"data":"v2"}"#),
            Route::Invalid { role: Role::Operator, .. }
        ));
        assert_eq!(route("GET", "/api/v1/events/remote", b""), Route::MethodNotAllowed("POST"));
        assert!(matches!(
            route("POST", "/api/v1/processes/web/start?wait=maybe", b""),
            Route::Invalid { role: Role::Operator, .. }
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
            Route::Invalid { role: Role::Viewer, .. }
        ));
        assert!(matches!(get("/api/v1/processes/web/log/stdout?offset=-1"), Route::Invalid { .. }));
        assert_eq!(get("/api/v1/processes/web/log/stdin"), Route::NotFound);
        assert_eq!(
            get("/api/v1/processes/web/log/stdout/stream"),
            plain(Request::Tail {
                name: "web".into(),
                stream: Stream::Stdout,
                bytes: 1600,
                offset: None,
                follow: true,
                encoding: crate::api::Encoding::Text,
            })
        );
        assert_eq!(
            get("/api/v1/events/stream?types=state"),
            plain(Request::Events { types: vec!["state".into()] })
        );
        assert_eq!(get("/api/v1/version"), Route::Api(Request::Version {}, Shape::Plain));
        assert_eq!(route("POST", "/api/v1/version", b""), Route::MethodNotAllowed("GET"));
        assert_eq!(get("/api/v1/shutdown"), Route::MethodNotAllowed("POST"));
        assert_eq!(route("POST", "/api/v1/processes/web/explode", b""), Route::NotFound);
        assert_eq!(route("POST", "/api/v1/groups/g/signal", b""), Route::NotFound);
        assert_eq!(get("/api/v2/processes"), Route::NotFound);
        assert_eq!(get("/nothing"), Route::NotFound);
        assert_eq!(
            route("POST", "/api/v1/processes/web/clear", b""),
            Route::Api(Request::Clear { names: vec!["web".into()] }, Shape::Single)
        );
        assert_eq!(
            route("POST", "/api/v1/groups/g/clear", b""),
            Route::Api(Request::Clear { names: vec!["g:*".into()] }, Shape::Many)
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    /// The role comes from the routed request, whatever its path looks like.
    #[test]
    fn each_route_needs_the_role_of_its_request() {
        let role = |method: &str, url: &str| required_role(method, url, false);
        assert_eq!(role("GET", "/healthz"), None);
        assert_eq!(role("GET", "/readyz?process=web"), None);
        assert_eq!(role("GET", "/metrics"), None);
        assert_eq!(required_role("GET", "/metrics", true), Some(Role::Viewer));
        assert_eq!(role("GET", "/api/v1/processes"), Some(Role::Viewer));
        assert_eq!(role("GET", "/api/v1/events/stream"), Some(Role::Viewer));
        for action in ["start", "stop", "restart", "signal", "stdin", "clear"] {
            let url = format!("/api/v1/processes/web/{action}");
            assert_eq!(role("POST", &url), Some(Role::Operator), "{url}");
        }
        // A body that is yet to be read (or bad) does not change it.
        assert_eq!(role("POST", "/api/v1/groups/g/restart?wait=maybe"), Some(Role::Operator));
        assert_eq!(role("POST", "/api/v1/config/reload"), Some(Role::Admin));
        assert_eq!(role("POST", "/api/v1/shutdown"), Some(Role::Admin));
        assert_eq!(role("POST", "/RPC2"), Some(Role::Viewer));
        assert_eq!(route("GET", "/RPC2", b""), Route::MethodNotAllowed("POST"));
        assert_eq!(role("GET", "/logtail/web/stderr"), Some(Role::Viewer));
        assert!(matches!(
            route("GET", "/logtail/g%3Aweb", b""),
            Route::Api(
                Request::Tail { follow: true, stream: Stream::Stdout, bytes: 1024, .. },
                Shape::Text
            )
        ));
        assert_eq!(route("GET", "/logtail/web/stdin", b""), Route::NotFound);
        assert_eq!(role("GET", "/mainlogtail"), Some(Role::Viewer));
        assert_eq!(
            route("GET", "/mainlogtail", b""),
            Route::Api(Request::Maintail { bytes: 1024, follow: true }, Shape::Text)
        );
        assert_eq!(route("GET", "/logtail/web/stdout/x", b""), Route::NotFound);
        // What Kahi does not serve: a viewer to read it, an admin otherwise.
        assert_eq!(role("GET", "/nothing"), Some(Role::Viewer));
        assert_eq!(role("POST", "/nothing"), Some(Role::Admin));
        assert_eq!(role("DELETE", "/api/v1/version"), Some(Role::Admin));
    }
}
