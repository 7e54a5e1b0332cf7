//! Cross-site request forgery, refused twice over.
//!
//! - Every state-changing request (the API's and the dashboard's) that a browser says comes
//!   from another site is refused: `Sec-Fetch-Site` other than `same-origin` or `none`, or,
//!   from a browser that does not send it, an `Origin` whose host is not the `Host` asked.
//!   Clients that are not browsers (curl, `kahi ctl`, supervisorctl) send neither.
//! - A dashboard form carries a token: the HMAC of the user's name under a key made at start
//!   (so a token is good for one user of one run of the daemon). Another site cannot read the
//!   page to learn it. The Basic credentials themselves are never in the page.

use std::sync::OnceLock;

use base64::Engine;
use ring::hmac;

use crate::api::{ApiError, ErrorCode};
use crate::config::HttpUser;
use crate::http::{Answer, Req, Route, Shape};

use super::Page;

fn key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        // The system's random source does not fail on Linux once booted; a key of zeros would
        // still tie a token to its user, and is never reached in practice.
        hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &[0; 32]))
    })
}

/// The token of a user ("" when no user is configured).
pub fn token(user: &str) -> String {
    let tag = hmac::sign(key(), format!("kahi-dashboard\0{user}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
}

/// Whether `token` is the user's, compared in constant time.
pub fn valid(user: &str, token: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token) else {
        return false;
    };
    hmac::verify(key(), format!("kahi-dashboard\0{user}").as_bytes(), &tag).is_ok()
}

/// The name of the user whose credentials came with the request ("" with no users).
pub fn user(rq: &Req, users: &[HttpUser]) -> String {
    if users.is_empty() {
        return String::new();
    }
    rq.header("Authorization")
        .and_then(crate::http::decode_basic)
        .map(|(name, _)| name)
        .unwrap_or_default()
}

/// Why a browser's request must be refused as cross-site, if it must.
pub fn cross_site(rq: &Req) -> Option<String> {
    if matches!(rq.method(), "GET" | "HEAD" | "OPTIONS") {
        return None;
    }
    if let Some(site) = rq.header("Sec-Fetch-Site") {
        return match site.to_ascii_lowercase().as_str() {
            "same-origin" | "none" => None,
            other => Some(format!("a {other} request may not change anything here")),
        };
    }
    let origin = rq.header("Origin")?;
    let host = rq.header("Host").unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h.trim_end_matches('/'));
    match origin_host {
        Some(h) if h.eq_ignore_ascii_case(host) => None,
        _ => Some(format!("a request from {origin} may not change anything on {host}")),
    }
}

/// The refusal of a request a browser was tricked into sending: cross-site, or a dashboard
/// form without its user's token. Checked on the loop before anything is done.
pub fn refuse(rq: &Req, route: &Route, users: &[HttpUser]) -> Option<Answer> {
    let forbidden = |why: String| {
        Some(super::secured(Answer::error(&ApiError::new(ErrorCode::Forbidden, why))))
    };
    if let Some(why) = cross_site(rq) {
        return forbidden(why);
    }
    let form = match route {
        Route::Api(_, Shape::Form(form)) | Route::Dashboard(Page::RestartFailed(form)) => form,
        _ => return None,
    };
    let sent = rq.header("X-Kahi-CSRF").unwrap_or(&form.token);
    if valid(&user(rq, users), sent) {
        None
    } else {
        forbidden("missing or stale form token; reload the page and try again".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_wire::ParsedHead;

    fn rq(method: &str, headers: &[(&str, &str)]) -> Req {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let head =
            ParsedHead { method: method.into(), url: "/".into(), headers, ..Default::default() };
        Req { conn: 1, head, peer: None, trusted: false }
    }

    #[test]
    fn a_token_is_its_users_alone() {
        let t = token("o");
        assert!(valid("o", &t));
        assert!(!valid("a", &t));
        assert!(!valid("o", ""));
        assert!(!valid("o", &t[1..]));
        assert!(!valid("", &t));
        assert_eq!(token("o"), t);
    }

    #[test]
    fn cross_site_writes_are_refused_and_same_site_reads_are_not() {
        let post = |h: &[(&str, &str)]| cross_site(&rq("POST", h));
        assert_eq!(post(&[]), None, "curl sends neither header");
        assert_eq!(post(&[("Sec-Fetch-Site", "same-origin")]), None);
        assert_eq!(post(&[("Sec-Fetch-Site", "none")]), None);
        assert!(post(&[("Sec-Fetch-Site", "cross-site")]).is_some());
        assert!(post(&[("Sec-Fetch-Site", "same-site")]).is_some());
        let host = ("Host", "127.0.0.1:9876");
        assert_eq!(post(&[host, ("Origin", "http://127.0.0.1:9876")]), None);
        assert!(post(&[host, ("Origin", "http://evil.example")]).is_some());
        assert!(post(&[host, ("Origin", "null")]).is_some());
        assert_eq!(cross_site(&rq("GET", &[("Sec-Fetch-Site", "cross-site")])), None);
    }

    #[test]
    fn a_form_needs_the_token_of_its_user() {
        let users: Vec<HttpUser> = Vec::new();
        let route = super::super::route("POST", "/ui/p/web", "", b"do=restart&csrf=nope");
        assert!(refuse(&rq("POST", &[]), &route, &users).is_some());
        let body = format!("do=restart&csrf={}", token(""));
        let route = super::super::route("POST", "/ui/p/web", "", body.as_bytes());
        assert!(refuse(&rq("POST", &[]), &route, &users).is_none());
        let header = [("X-Kahi-CSRF", token(""))];
        let header: Vec<(&str, &str)> = header.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let route = super::super::route("POST", "/ui/p/web", "", b"do=restart");
        assert!(refuse(&rq("POST", &header), &route, &users).is_none());
        // The API asks for no token; cross-site is refused there too.
        let api = crate::http::route("POST", "/api/v1/processes/web/restart", b"");
        assert!(refuse(&rq("POST", &[]), &api, &users).is_none());
        let cross = rq("POST", &[("Sec-Fetch-Site", "cross-site")]);
        assert_eq!(refuse(&cross, &api, &users).map(|a| a.status), Some(403));
    }
}
