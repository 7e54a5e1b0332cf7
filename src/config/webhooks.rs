//! `[webhooks.NAME]`: where events are POSTed over HTTP(S). Read from the main file and from
//! included ones (a file of its own can keep the secrets apart). The URL is checked here, not
//! resolved: the delivery worker looks the host up at each delivery, off the loop. A
//! `ca_file` is read here: a missing or empty one is an error of the configuration, and a
//! reload sees a new certificate in the same file as a change.

use super::*;
use crate::events::EventType;

/// A webhook, as the configuration asks for it. Its `Default` holds the keys' defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    pub name: String,
    pub url: Url,
    /// The event types it takes (an abstract one takes every type under it).
    pub events: Vec<EventType>,
    /// Extra header lines, in the file's order.
    pub headers: Vec<(String, String)>,
    /// For one attempt: resolving, connecting, sending and reading the status line.
    pub timeout: Duration,
    /// Attempts after the first failed one.
    pub retries: u32,
    /// The wait before the first retry; each further wait is twice the one before.
    pub retry_backoff: Duration,
    /// The key of the body's HMAC-SHA256 (`X-Kahi-Signature`).
    pub secret: Option<String>,
    pub format: WebhookFormat,
    /// PEM certificates trusted besides the system's, for https.
    pub ca_file: Option<PathBuf>,
    /// The certificates of `ca_file`, as it was read.
    pub ca_certs: Vec<rustls::Certificate>,
    /// Events waiting for delivery at most; past it, the oldest is dropped.
    pub queue_size: usize,
}

/// The secret is never shown: Debug prints `secret: Some("****")`.
impl fmt::Debug for WebhookSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSpec")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("headers", &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("secret", &self.secret.as_ref().map(|_| "****"))
            .field("format", &self.format)
            .field("ca_file", &self.ca_file)
            .field("ca_certs", &self.ca_certs.len())
            .field("queue_size", &self.queue_size)
            .finish()
    }
}

impl Default for WebhookSpec {
    fn default() -> Self {
        WebhookSpec {
            name: String::new(),
            url: Url::default(),
            events: Vec::new(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            retries: 3,
            retry_backoff: Duration::from_secs(1),
            secret: None,
            format: WebhookFormat::Json,
            ca_file: None,
            ca_certs: Vec::new(),
            queue_size: 1000,
        }
    }
}

/// What the body of a POST is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// Kahi's JSON object (kahi.toml(5), WEBHOOKS).
    Json,
    /// Slack's `{"text": "..."}`, which most chat tools take.
    Slack,
}

/// An `http://` or `https://` URL, taken apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// A name, or an IP address (an IPv6 one without its brackets).
    pub host: String,
    pub port: u16,
    /// The path and query, from the first `/`.
    pub path: String,
}

impl Url {
    /// The `Host` header: the host, and the port unless it is the scheme's.
    pub fn host_header(&self) -> String {
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match (self.https, self.port) {
            (false, 80) | (true, 443) => host,
            _ => format!("{host}:{}", self.port),
        }
    }
}

/// The receiver as the log names it: scheme, host and port, without the path and query,
/// which may carry a token (a Slack webhook's path is its secret).
impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.host_header())
    }
}

/// `http://HOST[:PORT][/PATH][?QUERY]` or `https://...`; for https, HOST must be a name.
pub fn parse_url(s: &str) -> Result<Url, String> {
    let bad = |why: &str| Err(format!("{why}, found {s:?}"));
    let (https, rest) = match (s.strip_prefix("http://"), s.strip_prefix("https://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return bad("expected an http:// or https:// URL"),
    };
    if s.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return bad("a URL holds no spaces or control characters");
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    if authority.contains('@') {
        return bad("credentials do not go in the URL (set an Authorization header in headers)");
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return bad("expected [IPv6]:PORT"),
            },
            None => return bad("expected [IPv6]:PORT"),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return bad("the URL has no host");
    }
    let port = match port {
        None => {
            if https {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return bad("expected a port from 1 to 65535"),
        },
    };
    if https && host.parse::<std::net::IpAddr>().is_ok() {
        return bad(
            "an https URL needs a host name, not an IP address: the certificate is verified against the name",
        );
    }
    Ok(Url { https, host: host.to_string(), port, path })
}

/// Header names Kahi writes itself: the request's framing.
const OWN_HEADERS: [&str; 5] =
    ["host", "content-length", "transfer-encoding", "connection", "x-kahi-signature"];

impl<'s> Loader<'s, '_> {
    /// Every `[webhooks.NAME]` of every file, sorted by name.
    pub(super) fn webhooks(&mut self) -> Vec<WebhookSpec> {
        let mut hooks: Vec<(WebhookSpec, At)> = Vec::new();
        for doc in 0..self.docs.len() {
            let root = std::mem::take(&mut self.docs[doc].table);
            if let Some(v) = root.get("webhooks") {
                let at = self.at(doc, v, "webhooks");
                if let Some(entries) = self.table(&at, v) {
                    for (name, body) in entries.iter() {
                        let at = self.child(&at, body, name.get_ref());
                        if let Err(why) = check_name(name.get_ref()) {
                            self.error(&at, why);
                            continue;
                        }
                        if let Some((_, first)) =
                            hooks.iter().find(|(h, _)| h.name == **name.get_ref())
                        {
                            let place = self.place(first);
                            self.error(&at, format!("webhook defined twice; first at {place}"));
                            continue;
                        }
                        let Some(t) = self.table(&at, body) else { continue };
                        if let Some(spec) = self.webhook(&at, name.get_ref(), t) {
                            hooks.push((spec, at));
                        }
                    }
                }
            }
            self.docs[doc].table = root;
        }
        let mut hooks: Vec<WebhookSpec> = hooks.into_iter().map(|(h, _)| h).collect();
        hooks.sort_by(|a, b| a.name.cmp(&b.name));
        hooks
    }

    /// One `[webhooks.NAME]` table at `at`.
    fn webhook(&mut self, at: &At, name: &str, t: &DeTable<'s>) -> Option<WebhookSpec> {
        let mut w = WebhookSpec { name: name.to_string(), ..WebhookSpec::default() };
        let vars = file_vars(self.docs[at.doc].file);
        let mut ok = true;
        self.fields(at, t, Section::Webhook, &mut w, |l, at, key, v, w| {
            let read = match key {
                "url" => {
                    let url = l.expanded_string(at, v, &vars).map(|s| parse_url(&s));
                    match url {
                        Some(Ok(url)) => {
                            w.url = url;
                            Some(())
                        }
                        Some(Err(e)) => {
                            l.error(at, e);
                            None
                        }
                        None => None,
                    }
                }
                "events" => l.event_types(at, v).map(|types| w.events = types),
                "headers" => l.headers(at, v, &vars).map(|h| w.headers = h),
                "secret" => match l.expanded_string(at, v, &vars) {
                    Some(s) if s.is_empty() => {
                        l.error(at, "an empty secret signs nothing: leave the key out");
                        None
                    }
                    s => s.map(|s| w.secret = Some(s)),
                },
                "ca_file" => l.ca_file(at, v, &vars).map(|(path, certs)| {
                    w.ca_file = Some(path);
                    w.ca_certs = certs;
                }),
                // Every other key has its reader in KEYS.
                _ => Some(()),
            };
            ok &= read.is_some();
        });
        for required in ["url", "events"] {
            if !t.contains_key(required) {
                self.error(at, format!("missing required key {required:?}"));
                ok = false;
            }
        }
        if w.timeout.is_zero() {
            if let Some((at, _)) = self.entry(at, t, "timeout") {
                self.error(&at, "must be more than 0");
            }
            ok = false;
        }
        ok.then_some(w)
    }

    /// `headers`: a table of strings, each name a valid header name that is not one Kahi
    /// writes itself, each value on one line.
    fn headers(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
        vars: &Vars,
    ) -> Option<Vec<(String, String)>> {
        let t = self.table(at, v)?.clone();
        let mut headers = Vec::new();
        let mut ok = true;
        for (k, v) in t.iter() {
            let name = k.get_ref().to_string();
            let at = self.child(at, v, &name);
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if name.is_empty() || !name.chars().all(token) {
                self.error(&at, "not a header name (letters, digits and !#$%&'*+-.^_`|~)");
                ok = false;
                continue;
            }
            if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                self.error(&at, "Kahi writes this header itself");
                ok = false;
                continue;
            }
            match self.expanded_string(&at, v, vars) {
                Some(value) if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) => {
                    self.error(&at, "a header value holds no line break or NUL");
                    ok = false;
                }
                Some(value) => headers.push((name, value)),
                None => ok = false,
            }
        }
        ok.then_some(headers)
    }

    /// `ca_file`: a PEM file of at least one certificate, relative to the file that names it.
    fn ca_file(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
        vars: &Vars,
    ) -> Option<(PathBuf, Vec<rustls::Certificate>)> {
        let s = self.expanded_string(at, v, vars)?;
        let here = self.docs[at.doc].file.parent().unwrap_or(Path::new("/"));
        let path = here.join(&s);
        match crate::webhooks::read_certificates(&path) {
            Ok(certs) => Some((path, certs)),
            Err(e) => {
                self.error(at, e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart() {
        let u = parse_url("https://hooks.example.com/services/T0/B1?x=1#frag").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path.as_str()),
            (true, "hooks.example.com", 443, "/services/T0/B1?x=1")
        );
        assert_eq!(u.to_string(), "https://hooks.example.com", "the path may be a secret");
        let u = parse_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (u.port, u.path.as_str(), u.host_header()),
            (8080, "/", "127.0.0.1:8080".into())
        );
        let u = parse_url("http://[::1]:9000?q").unwrap();
        assert_eq!((u.host.as_str(), u.path.as_str()), ("::1", "/?q"));
        assert_eq!(u.host_header(), "[::1]:9000");
        assert_eq!(parse_url("http://example.com:80/").unwrap().host_header(), "example.com");
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("ftp://example.com/", "http:// or https://"),
            ("example.com", "http:// or https://"),
            ("http:///path", "no host"),
            ("http://example.com:0/", "port"),
            ("http://example.com:http/", "port"),
            ("http://user:pw@example.com/", "Authorization"),
            ("http://example.com/a b", "spaces"),
            ("https://127.0.0.1/", "host name"),
            ("https://[::1]:8443/", "host name"),
        ] {
            let e = parse_url(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
    }
}
