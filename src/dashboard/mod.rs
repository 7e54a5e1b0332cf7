//! The web dashboard at `/`: server-rendered HTML pages (the process table, a process, the
//! daemon), their stylesheet and script embedded in the binary, and the forms that act on
//! processes. It is one more framing of the one API: a page is rendered from a snapshot the
//! loop takes (the rendering itself is done by the front's thread, off the loop), and a form
//! becomes the same `api::Request` the REST API asks, with the role that request needs,
//! checked by the front like any other. What only the dashboard adds is its CSRF token
//! (`csrf.rs`) and the answer a browser wants to a form: a redirect back, or a page.
//!
//! Paths: `/` (the table), `/ui/p/NAME` (a process), `/ui/daemon`, `/ui/processes.json` (the
//! table's data, for the script's resynchronisation), `/ui/kahi.css`, `/ui/kahi.js`,
//! `/ui/icon.svg`; forms post to `/ui/p/NAME`, `/ui/g/GROUP`, `/ui/restart-failed`,
//! `/ui/daemon/reread` and `/ui/daemon/update`. No state here but the CSRF key.

pub mod csrf;
mod html;

use crate::api::{self, ApiError, ErrorCode, Now, Reply, Request};
use crate::config::{HttpUser, Role};
use crate::http::{Answer, Body, Route, Shape};
use crate::http_routes::percent_decode as decode;
use crate::supervisor::{Stream, Supervisor};

/// The bytes of each log a process page shows without the script.
const TAIL: u64 = 4096;

const CSS: &str = include_str!("kahi.css");
const JS: &str = include_str!("kahi.js");
const ICON: &str = include_str!("icon.svg");

/// What a GET of the dashboard asks for, or the one form that is not an API request.
#[derive(Debug, Clone, PartialEq)]
pub enum Page {
    /// The process table, filtered by a part of the name and a state.
    Index {
        q: String,
        state: String,
    },
    Process(String),
    Daemon,
    /// The table's data as JSON, with CPU time and memory.
    Data,
    Asset(Asset),
    /// Restart every process that failed (FATAL, BACKOFF, UNKNOWN, or EXITED unexpectedly):
    /// which they are is known on the loop.
    RestartFailed(Form),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Css,
    Js,
    Icon,
}

impl Page {
    pub fn role(&self) -> Role {
        match self {
            Page::RestartFailed(_) => Role::Operator,
            _ => Role::Viewer,
        }
    }
}

/// A form the dashboard posted: where to go back to, whether the script asked (it wants
/// JSON, not a redirect), and the CSRF token it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub back: String,
    pub json: bool,
    pub token: String,
    /// A reread: its changes are shown as a page, with the form that applies them.
    pub preview: bool,
}

/// Whether a path is the dashboard's.
pub fn owns(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

/// A method, path, query and body of the dashboard to a route. Pure.
pub fn route(method: &str, path: &str, query: &str, body: &[u8]) -> Route {
    let get = |p: Page| {
        if method == "GET" || method == "HEAD" {
            Route::Dashboard(p)
        } else {
            Route::MethodNotAllowed("GET")
        }
    };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let post = method == "POST";
    let not_post = Route::MethodNotAllowed("POST");
    match segments.as_slice() {
        [""] | ["", "ui"] => {
            get(Page::Index { q: field(query, "q"), state: field(query, "state") })
        }
        ["", "ui", "daemon"] => get(Page::Daemon),
        ["", "ui", "processes.json"] => get(Page::Data),
        ["", "ui", "kahi.css"] => get(Page::Asset(Asset::Css)),
        ["", "ui", "kahi.js"] => get(Page::Asset(Asset::Js)),
        ["", "ui", "icon.svg"] => get(Page::Asset(Asset::Icon)),
        ["", "ui", "p", name] if method == "GET" || method == "HEAD" => {
            Route::Dashboard(Page::Process(decode(name)))
        }
        ["", "ui", "p", name] if post => act(&decode(name), body, false),
        ["", "ui", "g", name] if post => act(&decode(name), body, true),
        ["", "ui", "g", _] => not_post,
        ["", "ui", "restart-failed"] if post => Route::Dashboard(Page::RestartFailed(form(body))),
        ["", "ui", "daemon", "reread"] if post => {
            Route::Api(Request::Reread {}, Shape::Form(Form { preview: true, ..form(body) }))
        }
        ["", "ui", "daemon", "update"] if post => Route::Api(Request::Update {}, form_shape(body)),
        ["", "ui", "restart-failed"] | ["", "ui", "daemon", "reread" | "update"] => not_post,
        _ => Route::NotFound,
    }
}

/// A form acting on a process (`group`: on every process of a group): `do` says what.
fn act(name: &str, body: &[u8], group: bool) -> Route {
    let target = if group { format!("{name}:*") } else { name.to_string() };
    let names = vec![target];
    let what = field_bytes(body, "do");
    let req = match what.as_str() {
        "start" => Request::Start { names, wait: false },
        "stop" => Request::Stop { names, wait: false },
        "restart" => Request::Restart { names, wait: false },
        "clear" => Request::Clear { names },
        "signal" => match field_bytes(body, "signal") {
            s if s.is_empty() => return invalid("signal: which signal?".into()),
            signal => Request::Signal { signal, names },
        },
        // An empty body is what the front routes to learn the role: every action needs an
        // operator.
        "" => return invalid("do: expected start, stop, restart, signal or clear".into()),
        other => return invalid(format!("do: unknown action {other:?}")),
    };
    Route::Api(req, form_shape(body))
}

fn invalid(why: String) -> Route {
    Route::Invalid { why, role: Role::Operator }
}

fn form(body: &[u8]) -> Form {
    let back = field_bytes(body, "back");
    // Only a path of this site: never `//host` or a scheme, which would send the browser off.
    let back = if back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') {
        back
    } else {
        "/".to_string()
    };
    let json = field_bytes(body, "as") == "json";
    Form { back, json, token: field_bytes(body, "csrf"), preview: false }
}

fn form_shape(body: &[u8]) -> Shape {
    Shape::Form(form(body))
}

/// A field of a form body (`application/x-www-form-urlencoded`), or "".
fn field_bytes(body: &[u8], key: &str) -> String {
    field(&String::from_utf8_lossy(body), key)
}

/// A field of a query string or form body, decoded (`+` is a space here), or "".
fn field(text: &str, key: &str) -> String {
    text.split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| decode(&v.replace('+', " ")))
        .unwrap_or_default()
}

/// Who asks: the user's name ("" when no user is configured) and role.
pub struct Viewer {
    pub name: String,
    pub role: Role,
    pub token: String,
}

impl Viewer {
    pub fn of(rq: &crate::http::Req, users: &[HttpUser]) -> Viewer {
        let name = csrf::user(rq, users);
        let role = crate::http_auth::role_of(rq, users).unwrap_or(Role::Viewer);
        let token = csrf::token(&name);
        Viewer { name, role, token }
    }
}

/// What the loop does with a dashboard route.
pub enum Served {
    Answer(Answer),
    /// Ask this of the dispatcher, as the API would.
    Ask(Request, Shape),
}

/// Serves a dashboard route on the loop: takes the snapshot a page needs (the page is made
/// from it on the front's thread).
pub fn serve(page: Page, rq: &crate::http::Req, sup: &Supervisor, now: Now) -> Served {
    let users = &sup.config.server.http.users;
    let who = Viewer::of(rq, users);
    let infos = |names: Option<&str>| -> Vec<api::ProcessInfo> {
        sup.iter()
            .filter(|e| names.is_none_or(|n| e.spec.namespec() == n))
            .map(|e| api::process_info(e, now))
            .collect()
    };
    let answer = match page {
        Page::Asset(a) => return Served::Answer(asset(a)),
        Page::RestartFailed(form) => {
            let names: Vec<String> =
                sup.iter().filter(|e| failed(e)).map(|e| e.spec.namespec()).collect();
            if names.is_empty() {
                // Nothing failed: nothing to do, which is no error.
                let done = Ok(Reply::Results { results: Vec::new() });
                return Served::Answer(form_answer(&form, done));
            }
            return Served::Ask(Request::Restart { names, wait: false }, Shape::Form(form));
        }
        Page::Index { q, state } => {
            let list = infos(None);
            later(200, move || html::index(&who, &list, &q, &state, &html::usage(&list)))
        }
        Page::Data => {
            let list = infos(None);
            // CPU and memory are read from /proc by the front's thread, not the loop.
            let token = who.token.clone();
            let mut a = made(200, "application/json", move || html::data(list).to_string());
            // A daemon started again has a new key: the script takes the new token from here
            // when it reads the table again after its stream reconnects.
            a.headers.push(("X-Kahi-CSRF", token));
            a
        }
        Page::Process(name) => {
            let list = infos(Some(&name));
            let config =
                api::config_info(&sup.config).processes.into_iter().find(|p| p.name == name);
            // The end of each log, for a browser without the script (which follows them).
            let tail = |stream| {
                let e = sup.iter().find(|e| e.spec.namespec() == name)?;
                let ring = e.ring(stream);
                let read = ring.read(ring.end().saturating_sub(TAIL), TAIL as usize);
                Some(String::from_utf8_lossy(&read.data).into_owned())
            };
            let tails = [Stream::Stdout, Stream::Stderr].map(|s| tail(s).unwrap_or_default());
            match (list.into_iter().next(), config) {
                (Some(info), Some(config)) => {
                    later(200, move || html::process(&who, &info, &config, &tails))
                }
                _ => {
                    let e = ApiError::new(ErrorCode::NotFound, format!("no such process: {name}"));
                    later(404, move || html::error(&who, &e, "/"))
                }
            }
        }
        Page::Daemon => {
            let config = api::config_info(&sup.config);
            let count = sup.iter().count();
            later(200, move || html::daemon(&who, &config, count))
        }
    };
    Served::Answer(answer)
}

/// A process that failed, for "restart all failed".
fn failed(e: &crate::supervisor::Entry) -> bool {
    use crate::process::State;
    match e.proc.state {
        State::Fatal | State::Backoff | State::Unknown => true,
        State::Exited => e.proc.exit_status.is_some_and(|s| !s.expected(&e.spec.exitcodes)),
        _ => false,
    }
}

/// An HTML page made on the front's thread.
fn later(status: u16, make: impl FnOnce() -> String + Send + 'static) -> Answer {
    made(status, "text/html; charset=utf-8", make)
}

/// A body of this type made on the front's thread.
fn made(status: u16, ty: &str, make: impl FnOnce() -> String + Send + 'static) -> Answer {
    let a = Answer {
        status,
        body: Body::Json(Box::new(move || make().into_bytes())),
        headers: vec![("Content-Type", ty.into())],
    };
    secured(a)
}

/// The headers every dashboard answer carries: nothing but this site's own script and style
/// runs or loads, no framing, no caching of pages that show state.
pub fn secured(mut a: Answer) -> Answer {
    a.headers.push(("Content-Security-Policy", CSP.into()));
    a.headers.push(("X-Content-Type-Options", "nosniff".into()));
    a.headers.push(("X-Frame-Options", "DENY".into()));
    a.headers.push(("Referrer-Policy", "same-origin".into()));
    if !a.headers.iter().any(|(k, _)| *k == "Cache-Control") {
        a.headers.push(("Cache-Control", "no-store".into()));
    }
    a
}

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

fn asset(a: Asset) -> Answer {
    let (ty, body) = match a {
        Asset::Css => ("text/css; charset=utf-8", CSS),
        Asset::Js => ("text/javascript; charset=utf-8", JS),
        Asset::Icon => ("image/svg+xml", ICON),
    };
    let mut answer = Answer::raw(200, ty, body.as_bytes());
    // The URL names the version (`?v=`): a new binary's assets are new URLs.
    answer.headers.push(("Cache-Control", "public, max-age=86400".into()));
    secured(answer)
}

/// The answer to a form: for the script, JSON as the API gives; for a browser without it, a
/// redirect back (303) when everything went as asked, else a page that says what did not.
pub fn form_answer(form: &Form, reply: Result<Reply, ApiError>) -> Answer {
    if form.json {
        // Every outcome, as a group's action answers (none at all is no error here).
        return match reply {
            Ok(Reply::Results { results }) => secured(Answer::json(200, &results)),
            other => secured(crate::http::answer(&Shape::Plain, other)),
        };
    }
    let who = Viewer { name: String::new(), role: Role::Admin, token: form.token.clone() };
    let back = form.back.clone();
    match reply {
        Ok(Reply::Results { results }) if results.iter().all(|r| r.outcome.exit_code() == 0) => {
            redirect(&back)
        }
        Ok(Reply::Results { results }) => later(409, move || html::results(&who, &results, &back)),
        Ok(Reply::Changes { changes }) if form.preview => {
            later(200, move || html::changes(&who, &changes, &back))
        }
        Ok(_) => redirect(&back),
        Err(e) => {
            let status = crate::http::status_of(e.code);
            later(status, move || html::error(&who, &e, &back))
        }
    }
}

fn redirect(to: &str) -> Answer {
    let mut a = Answer::raw(303, "text/plain; charset=utf-8", b"");
    a.headers.push(("Location", to.to_string()));
    secured(a)
}

#[cfg(test)]
mod tests;
