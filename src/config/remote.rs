//! Remote includes: `include` entries that are URLs (https://, or http:// to a loopback
//! address) of TOML or JSON documents holding what an included file holds. An entry may pin its
//! document: `https://host/x.toml#sha256=HEX` is refused unless the bytes have that digest.
//!
//! At start (and for --check) each document is fetched before the configuration is read, on a
//! thread waited for [`TIMEOUT`] at most. A reload runs on the event loop, which never waits on
//! a network: it reads the last good copy, and a thread fetches the document again; when the
//! new copy differs, the thread keeps it and raises SIGHUP, and the reload that follows reads
//! it. A fetch that fails leaves the last good copy in use, and says so in the log.
//!
//! The client is the webhooks' ([`crate::webhooks::conn`]); the request is HTTP/1.0, so the
//! answer is never chunked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use super::webhooks::{Url, parse_url};
use crate::webhooks::conn::{Conn, io_error, status};

/// The longest a fetch may take, from the look-up to the last byte.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The largest remote document Kahi reads.
pub const MAX_BYTES: usize = 1 << 20;

/// The answer's head read at most.
const HEAD_MAX: usize = 16 << 10;

/// How a load gets remote documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// Fetch each now, waiting [`TIMEOUT`] at most: the start, --check, kahi ctl.
    Now,
    /// Read the last good copy, and fetch again on a thread: a reload, on the event loop.
    Background,
}

/// Whether an `include` entry is a URL rather than a glob.
pub fn is_url(entry: &str) -> bool {
    entry.starts_with("https://") || entry.starts_with("http://")
}

/// What a document is called in errors: its URL, without the pin.
pub fn name(entry: &str) -> &str {
    entry.split('#').next().unwrap_or(entry)
}

/// A URL and its pin.
#[derive(Debug)]
struct Pinned {
    url: Url,
    sha256: Option<String>,
}

fn parse(entry: &str) -> Result<Pinned, String> {
    let url = parse_url(entry)?;
    let sha256 = match entry.split_once('#') {
        None => None,
        Some((_, pin)) => match pin.strip_prefix("sha256=") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(hex.to_ascii_lowercase())
            }
            _ => return Err("after # comes only a pin: sha256= and 64 hex digits".into()),
        },
    };
    let loopback =
        url.host == "localhost" || url.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !url.https && !loopback {
        return Err(format!(
            "http:// is allowed to a loopback address only (127.0.0.1, [::1], localhost), not {}: \
             use https://",
            url.host
        ));
    }
    Ok(Pinned { url, sha256 })
}

/// A document's copies, by entry.
#[derive(Default)]
struct Copy {
    /// The last good copy, as TOML.
    text: Option<String>,
    /// Fetched by a thread since the last reload read it.
    fresh: bool,
    /// A thread is fetching it.
    fetching: bool,
}

static COPIES: LazyLock<Mutex<HashMap<String, Copy>>> = LazyLock::new(Default::default);

fn copies() -> MutexGuard<'static, HashMap<String, Copy>> {
    COPIES.lock().unwrap_or_else(|e| e.into_inner())
}

/// The document of `entry`, as TOML.
pub fn get(entry: &str, fetch: Fetch) -> Result<String, String> {
    let pinned = parse(entry)?;
    match fetch {
        Fetch::Now => {
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("kahi-include".into())
                .spawn(move || {
                    let _ = tx.send(document(&pinned));
                })
                .map_err(|e| format!("unable to start a thread to fetch it: {e}"))?;
            // The thread bounds each step but the host's look-up: this bounds that too.
            let text = rx
                .recv_timeout(TIMEOUT + Duration::from_secs(1))
                .map_err(|_| format!("no answer within {TIMEOUT:?}"))??;
            let mut copies = copies();
            let copy = copies.entry(entry.to_string()).or_default();
            copy.text = Some(text.clone());
            copy.fresh = false;
            Ok(text)
        }
        Fetch::Background => {
            let mut copies = copies();
            let copy = copies.entry(entry.to_string()).or_default();
            if std::mem::take(&mut copy.fresh)
                && let Some(text) = &copy.text
            {
                return Ok(text.clone());
            }
            if !copy.fetching {
                let owned = entry.to_string();
                let started = std::thread::Builder::new()
                    .name("kahi-include".into())
                    .spawn(move || refresh(&owned, &pinned));
                match started {
                    Ok(_) => copy.fetching = true,
                    Err(e) => log::warn!("include {}: unable to fetch it again: {e}", name(entry)),
                }
            }
            copy.text.clone().ok_or_else(|| {
                "not fetched yet: it is being fetched now, and Kahi reloads once it has it".into()
            })
        }
    }
}

/// A reload's fetch, on its own thread: a new copy is kept and reloaded (SIGHUP); a failure
/// keeps the last good one.
fn refresh(entry: &str, pinned: &Pinned) {
    let result = document(pinned);
    let mut copies = copies();
    let copy = copies.entry(entry.to_string()).or_default();
    copy.fetching = false;
    match result {
        Ok(text) if copy.text.as_deref() != Some(text.as_str()) => {
            copy.text = Some(text);
            copy.fresh = true;
            drop(copies);
            log::info!("include {}: a new copy; reloading the configuration", name(entry));
            let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::SIGHUP);
        }
        Ok(_) => log::debug!("include {}: unchanged", name(entry)),
        Err(e) => {
            let keeping =
                if copy.text.is_some() { "keeping the last good copy" } else { "no copy yet" };
            log::warn!("include {}: {e}; {keeping}", name(entry));
        }
    }
}

/// Fetches the document: checked against its pin, JSON written as TOML.
fn document(pinned: &Pinned) -> Result<String, String> {
    let body = get_body(&pinned.url)?;
    if let Some(want) = &pinned.sha256 {
        let got = hex(ring::digest::digest(&ring::digest::SHA256, &body).as_ref());
        if got != *want {
            return Err(format!("its sha256 is {got}, not the pinned {want}: refused"));
        }
    }
    let text = String::from_utf8(body).map_err(|e| format!("not UTF-8 text: {e}"))?;
    if text.trim_start().starts_with('{') { json_to_toml(&text) } else { Ok(text) }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The body of a 200 answer to `GET url`, at most [`MAX_BYTES`].
fn get_body(url: &Url) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + TIMEOUT;
    let mut tls = crate::webhooks::tls::Cache::default();
    let mut conn = Conn::open(url, &mut tls, &[], deadline)?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: kahi/{}\r\n\
         Accept: application/toml, application/json, text/plain\r\n\r\n",
        url.path,
        url.host_header(),
        crate::VERSION
    );
    conn.send(request.as_bytes()).map_err(|e| io_error(e, TIMEOUT))?;
    let mut data = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match conn.read(&mut buf).map_err(|e| io_error(e, TIMEOUT))? {
            0 => break,
            n => data.extend_from_slice(&buf[..n]),
        }
        if data.len() > HEAD_MAX + MAX_BYTES {
            return Err(too_big());
        }
    }
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err("the answer has no complete head".into());
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let code = lines.next().and_then(|l| status(l.as_bytes()));
    match code {
        Some(200) => {}
        Some(code) => return Err(format!("the server answered {code}")),
        None => return Err("not an HTTP answer".into()),
    }
    let mut body = data.split_off(end + 4);
    for line in lines {
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim();
        if k.eq_ignore_ascii_case("transfer-encoding") && !v.eq_ignore_ascii_case("identity") {
            return Err(format!("a {v} answer to an HTTP/1.0 request"));
        }
        if k.eq_ignore_ascii_case("content-length") {
            let n: usize = v.parse().map_err(|_| format!("a bad Content-Length: {v:?}"))?;
            if n > MAX_BYTES {
                return Err(too_big());
            }
            if body.len() < n {
                return Err(format!("the answer was cut short: {} of {n} bytes", body.len()));
            }
            body.truncate(n);
        }
    }
    if body.len() > MAX_BYTES {
        return Err(too_big());
    }
    Ok(body)
}

fn too_big() -> String {
    format!("the document is larger than a remote include may be ({} KiB)", MAX_BYTES >> 10)
}

/// A JSON object as TOML: each member a key, its value inline.
fn json_to_toml(text: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let serde_json::Value::Object(members) = value else {
        return Err("a JSON document must be an object".into());
    };
    let mut out = String::new();
    for (k, v) in &members {
        out.push_str(&format!("{} = {}\n", crate::supervisord::emit::bare(k), inline(k, v)?));
    }
    Ok(out)
}

fn inline(key: &str, v: &serde_json::Value) -> Result<String, String> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => return Err(format!("{key}: null has no TOML value")),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => crate::supervisord::emit::string(s),
        Value::Array(items) => {
            let items: Result<Vec<String>, String> = items.iter().map(|i| inline(key, i)).collect();
            format!("[{}]", items?.join(", "))
        }
        Value::Object(members) => {
            let mut parts = Vec::new();
            for (k, v) in members {
                let v = inline(&format!("{key}.{k}"), v)?;
                parts.push(format!("{} = {v}", crate::supervisord::emit::bare(k)));
            }
            format!("{{ {} }}", parts.join(", "))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_urls_with_an_optional_pin() {
        assert!(is_url("https://example.com/x.toml") && !is_url("conf.d/*.toml"));
        let pin = "ab".repeat(32);
        let p = parse(&format!("https://example.com/x.toml#sha256={pin}")).unwrap();
        assert_eq!((p.url.path.as_str(), p.sha256.as_deref()), ("/x.toml", Some(pin.as_str())));
        assert_eq!(
            name(&format!("https://example.com/x.toml#sha256={pin}")),
            "https://example.com/x.toml"
        );
        assert!(parse("https://example.com/x.toml#sha256=abc").unwrap_err().contains("64 hex"));
        assert!(parse("https://example.com/x.toml#top").is_err());
    }

    #[test]
    fn http_is_for_loopback_only() {
        for ok in [
            "http://127.0.0.1:8080/x",
            "http://127.1.2.3/x",
            "http://[::1]:80/x",
            "http://localhost/x",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for refused in ["http://192.0.2.1/x", "http://example.com/x", "http://[2001:db8::1]/x"] {
            assert!(parse(refused).unwrap_err().contains("loopback"), "{refused}");
        }
    }

    #[test]
    fn json_becomes_toml_with_the_same_values() {
        let json = r#"{"programs": {"web": {"command": "sleep \"1\"", "numprocs": 2, "autostart": false,
            "environment": {"A": "x"}, "exitcodes": [0, 2]}}}"#;
        let toml_text = json_to_toml(json).unwrap();
        let t: toml::Table = toml::from_str(&toml_text).unwrap();
        let web = &t["programs"]["web"];
        assert_eq!(web["command"].as_str(), Some("sleep \"1\""));
        assert_eq!(
            (web["numprocs"].as_integer(), web["autostart"].as_bool()),
            (Some(2), Some(false))
        );
        assert_eq!(web["environment"]["A"].as_str(), Some("x"));
        assert_eq!(web["exitcodes"].as_array().map(Vec::len), Some(2));
        assert!(json_to_toml(r#"{"a": null}"#).unwrap_err().contains("null"));
        assert!(json_to_toml("[1]").unwrap_err().contains("object"));
    }
}
