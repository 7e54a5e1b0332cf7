//! HTTP/1.1 on the wire: a request head read from bytes, and the head of an answer. Pure: no
//! socket, no clock, no thread (the front in [`crate::http_front`] does the I/O).
//!
//! Only what Kahi's API needs is taken: a request line, header lines, and a body announced by
//! `Content-Length`. A head longer than [`MAX_HEAD`] or with more than [`MAX_HEADERS`] lines is
//! refused, so a client can never make a head cost more than that.

/// The longest request head taken (request line and headers).
pub const MAX_HEAD: usize = 16 << 10;
/// The most header lines in one head.
pub const MAX_HEADERS: usize = 100;

/// A request head, as the front read it, with where its answer goes.
#[derive(Debug, Clone)]
pub struct Req {
    /// The connection it came on (never reused).
    pub conn: u64,
    pub head: ParsedHead,
    /// The client: its address, or its uid on a Unix socket.
    pub peer: Option<crate::http_tls::Peer>,
    /// The client's peer credentials stand in for a password: root or the daemon's own
    /// user on a Unix socket with `peer_credentials`. It is admin.
    pub trusted: bool,
}

impl Req {
    pub fn method(&self) -> &str {
        &self.head.method
    }

    pub fn url(&self) -> &str {
        &self.head.url
    }

    /// The value of the first header line named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let headers = &self.head.headers;
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the bytes read so far make.
#[derive(Debug, PartialEq)]
pub enum Head {
    /// Not a whole head yet.
    Partial,
    /// A head of `len` bytes (its blank line included).
    Done(ParsedHead, usize),
    /// A head that cannot be taken: the status to answer with (the connection then closes).
    Bad(u16, &'static str),
}

/// A head's parts, before the front adds the connection and the peer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedHead {
    pub method: String,
    /// The request target: a path and a query.
    pub url: String,
    /// HTTP/1.0 (else 1.1).
    pub http10: bool,
    /// The connection closes after the answer (`Connection: close`, or HTTP/1.0 without
    /// keep-alive).
    pub close: bool,
    /// Header lines, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body's length (`Content-Length`; none: 0).
    pub length: usize,
    /// `Expect: 100-continue`: the client waits for a 100 before it sends the body.
    pub expect_continue: bool,
}

/// Reads a request head from the start of `buf`. Blank lines before it are skipped (RFC 9112
/// allows them); lines may end in CRLF or LF.
pub fn parse_head(buf: &[u8], max_body: usize) -> Head {
    let skip = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    let rest = &buf[skip..];
    let Some(end) = head_end(rest) else {
        return if buf.len() > MAX_HEAD {
            Head::Bad(431, "request head too large")
        } else {
            Head::Partial
        };
    };
    if end > MAX_HEAD {
        return Head::Bad(431, "request head too large");
    }
    let Ok(text) = std::str::from_utf8(&rest[..end]) else {
        return Head::Bad(400, "request head is not UTF-8");
    };
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut words = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(url), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Head::Bad(400, "malformed request line");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) || url.is_empty() {
        return Head::Bad(400, "malformed request line");
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        v if v.starts_with("HTTP/") => return Head::Bad(505, "only HTTP/1.0 and 1.1 are served"),
        _ => return Head::Bad(400, "malformed request line"),
    };
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        if headers.len() == MAX_HEADERS {
            return Head::Bad(431, "too many header lines");
        }
        let Some((name, value)) = line.split_once(':') else {
            return Head::Bad(400, "malformed header line");
        };
        // No space in a name: a line folded onto the one before (obs-fold) is refused too.
        if name.is_empty() || name.contains([' ', '\t']) {
            return Head::Bad(400, "malformed header line");
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let value = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    if value("Transfer-Encoding").is_some() {
        return Head::Bad(
            411,
            "a request body needs Content-Length (chunked bodies are not taken)",
        );
    }
    // Every Content-Length (the field repeated, or a list) must give one length, in digits: a
    // body that a proxy in front could frame otherwise is refused (RFC 9112, 6.3).
    let mut lengths = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim);
    let length = match lengths.next() {
        None => 0,
        Some(first) if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) => {
            return Head::Bad(400, "malformed Content-Length");
        }
        Some(first) if lengths.any(|v| v != first) => {
            return Head::Bad(400, "conflicting Content-Length");
        }
        Some(first) => match first.parse::<usize>() {
            Ok(n) if n > max_body => return Head::Bad(413, "request body too large"),
            Ok(n) => n,
            Err(_) => return Head::Bad(413, "request body too large"),
        },
    };
    let connection = value("Connection").unwrap_or_default();
    let close = connection.contains("close") || (http10 && !connection.contains("keep-alive"));
    let expect_continue = value("Expect").is_some_and(|v| v == "100-continue");
    let head = ParsedHead {
        method: method.to_string(),
        url: url.to_string(),
        http10,
        close,
        headers,
        length,
        expect_continue,
    };
    Head::Done(head, skip + end)
}

/// Where the blank line that ends a head ends.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(n) = buf[i..].iter().position(|&b| b == b'\n') {
        let at = i + n;
        let next = &buf[at + 1..];
        if next.starts_with(b"\n") {
            return Some(at + 2);
        }
        if next.starts_with(b"\r\n") {
            return Some(at + 3);
        }
        i = at + 1;
    }
    None
}

/// The head of an answer: status line, the given headers, Content-Type (JSON unless given),
/// and either Content-Length or, with `length` None, chunked framing (a kept-alive HTTP/1.1
/// connection) or the end of the connection.
pub fn answer_head(
    http10: bool,
    status: u16,
    headers: &[(&'static str, String)],
    length: Option<usize>,
    close: bool,
) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::with_capacity(160);
    let version = if http10 { "1.0" } else { "1.1" };
    let _ = write!(out, "HTTP/{version} {status} {}\r\n", reason(status));
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Content-Type")) {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        // Values are Kahi's own; a line break in one would split the head.
        if !v.contains(['\r', '\n']) {
            let _ = write!(out, "{k}: {v}\r\n");
        }
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    match length {
        Some(n) => {
            let _ = write!(out, "Content-Length: {n}\r\n\r\n");
        }
        None if !http10 && !close => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n"),
        None => out.extend_from_slice(b"\r\n"),
    }
    out
}

/// One chunk of a chunked body.
pub fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    out.extend_from_slice(format!("{:x}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

/// The reason phrase of the statuses Kahi answers with.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(text: &str) -> (ParsedHead, usize) {
        match parse_head(text.as_bytes(), 1 << 16) {
            Head::Done(h, n) => (h, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_head_is_taken_whole_with_its_length() {
        let text = "GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET";
        let (h, n) = done(text);
        assert_eq!(
            (h.method.as_str(), h.url.as_str(), h.http10, h.close),
            ("GET", "/healthz?x=1", false, false)
        );
        assert_eq!((h.length, &text[n..]), (3, "abcGET"));
        assert_eq!(h.headers[0], ("Host".to_string(), "a".to_string()));
        let (h, _) = done("\r\nPOST / HTTP/1.0\nExpect: 100-continue\n\n");
        assert!(h.http10 && h.close && h.expect_continue);
        let (h, _) = done("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(!h.close);
        let (h, _) = done("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(h.close);
        // The same length given twice is one length.
        let (h, _) = done("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3, 3\r\n\r\n");
        assert_eq!(h.length, 3);
    }

    #[test]
    fn partial_heads_wait_and_bad_ones_are_refused() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n", 10), Head::Partial);
        assert_eq!(parse_head(b"", 10), Head::Partial);
        let bad = |t: &str| match parse_head(t.as_bytes(), 10) {
            Head::Bad(s, _) => s,
            other => panic!("{t:?} gave {other:?}"),
        };
        assert_eq!(bad("GET /\r\n\r\n"), 400);
        assert_eq!(bad("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(bad("GET / HTTP/1.1\r\nno colon\r\n\r\n"), 400);
        assert_eq!(bad("GET / HTTP/1.1\r\nX: a\r\n folded: b\r\n\r\n"), 400);
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"), 413);
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"), 400);
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n"), 400);
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: 5, 7\r\n\r\n"), 400);
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 413);
        assert_eq!(bad("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(bad(&long), 431);
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X: 1\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(bad(&many), 431);
    }

    #[test]
    fn mangled_heads_are_taken_or_refused_never_a_panic() {
        let good = b"POST /api/v1/processes/web/signal HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut b = good.to_vec();
            for _ in 0..(next() % 6) {
                let i = (next() as usize) % b.len();
                match next() % 3 {
                    0 => b[i] = next() as u8,
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, b"\r\n: \x00\xff"[(next() % 6) as usize]),
                }
            }
            if let Head::Done(h, n) = parse_head(&b, 1 << 16) {
                assert!(n <= b.len() && h.length <= 1 << 16);
            }
        }
    }

    #[test]
    fn answer_heads_frame_the_body() {
        let h = String::from_utf8(answer_head(false, 200, &[], Some(5), false)).unwrap();
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n"
        );
        let h = String::from_utf8(answer_head(false, 200, &[], None, false)).unwrap();
        assert!(h.ends_with("Transfer-Encoding: chunked\r\n\r\n"), "{h}");
        let h = String::from_utf8(answer_head(false, 200, &[], None, true)).unwrap();
        assert!(h.ends_with("Connection: close\r\n\r\n"), "{h}");
        let h = String::from_utf8(answer_head(true, 404, &[("Allow", "GET".into())], None, true))
            .unwrap();
        assert!(
            h.starts_with("HTTP/1.0 404 Not Found\r\n")
                && h.contains("Allow: GET\r\nConnection: close\r\n\r\n"),
            "{h}"
        );
    }
}
