//! Programs' lines to syslog: RFC 5424 messages over the local datagram socket (`/dev/log`)
//! or UDP, sent without blocking.
//!
//! Syslog is a copy: the ring buffer and the log files keep every line whatever happens here.
//! So a receiver that is absent or cannot keep up never stalls the loop nor slows a program:
//! a line it cannot take now is dropped and counted, with one warning per outage, and a
//! missing socket is looked for again at most every [`RETRY`].

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::logs::console::Origin;

/// How often a missing or refusing receiver is tried again (only when there is a line).
pub const RETRY: Duration = Duration::from_secs(10);

/// The largest UDP payload; longer messages are cut to it.
const UDP_MAX: usize = 65_507;

/// Where messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local datagram socket such as `/dev/log`.
    Local(PathBuf),
    /// A remote collector.
    Udp(SocketAddr),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Local(p) => write!(f, "{}", p.display()),
            Target::Udp(a) => write!(f, "udp://{a}"),
        }
    }
}

/// Facility names of RFC 5424, in code order.
pub const FACILITIES: &[&str] = &[
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// The code of a facility name.
pub fn facility(name: &str) -> Option<u8> {
    FACILITIES.iter().position(|f| *f == name).map(|i| i as u8)
}

/// Severity of every program line: informational, as systemd gives programs' output.
const SEVERITY_INFO: u8 = 6;

/// Appends one RFC 5424 message to `out`:
/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`, with the process as APP-NAME, its
/// pid as PROCID and the stream as MSGID. A piece of an over-long line ends in ` [continued]`.
pub fn format(
    out: &mut Vec<u8>,
    facility: u8,
    hostname: &str,
    o: &Origin<'_>,
    pid: Option<i32>,
    line: &[u8],
    continued: bool,
) {
    use std::io::Write;
    let pri = u32::from(facility) * 8 + u32::from(SEVERITY_INFO);
    let _ = write!(
        out,
        "<{pri}>1 {} {} {} {} {} - ",
        o.ts,
        header_field(hostname, 255),
        header_field(o.process, 48),
        pid.map_or("-".to_string(), |p| p.to_string()),
        header_field(o.stream, 32)
    );
    out.extend_from_slice(line);
    if continued {
        out.extend_from_slice(b" [continued]");
    }
}

/// A header field as RFC 5424 allows it: printable US-ASCII without spaces, at most `max`
/// characters, `-` when empty.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if f.is_empty() { "-".to_string() } else { f }
}

enum Socket {
    Local(UnixDatagram),
    Udp(UdpSocket),
}

/// The connection to the receiver, made when the first line comes.
pub struct Syslog {
    target: Target,
    facility: u8,
    hostname: String,
    socket: Option<Socket>,
    /// No new attempt to connect before this.
    retry_at: Option<Instant>,
    /// Lines dropped since the receiver last took one.
    dropped: u64,
    /// An outage is under way (it was warned about).
    down: bool,
    buf: Vec<u8>,
}

impl Syslog {
    pub fn new(target: Target, facility: u8) -> Syslog {
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        Syslog {
            target,
            facility,
            hostname,
            socket: None,
            retry_at: None,
            dropped: 0,
            down: false,
            buf: Vec::new(),
        }
    }

    /// Sends one line now, or drops it if the receiver cannot take it now.
    pub fn send(&mut self, o: &Origin<'_>, pid: Option<i32>, line: &[u8], continued: bool) {
        if self.socket.is_none() && !self.connect() {
            self.dropped += 1;
            return;
        }
        self.buf.clear();
        format(&mut self.buf, self.facility, &self.hostname, o, pid, line, continued);
        let sent = match &self.socket {
            Some(Socket::Local(s)) => s.send(&self.buf),
            Some(Socket::Udp(s)) => s.send(&self.buf[..self.buf.len().min(UDP_MAX)]),
            None => return,
        };
        match sent {
            Ok(_) => {
                if self.down {
                    self.down = false;
                    log::info!(
                        "syslog: {} takes lines again; {} were dropped meanwhile",
                        self.target,
                        self.dropped
                    );
                }
                self.dropped = 0;
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.raw_os_error() == Some(nix::libc::ENOBUFS) =>
            {
                // The receiver is behind: this line is dropped, the socket kept.
                self.dropped += 1;
                self.warn(&format!("it is not keeping up ({e})"));
            }
            Err(e) => {
                // Gone (the receiver restarted, or refuses): reconnect later.
                self.dropped += 1;
                self.socket = None;
                self.retry_at = Some(Instant::now() + RETRY);
                self.warn(&e.to_string());
            }
        }
    }

    fn connect(&mut self) -> bool {
        let now = Instant::now();
        if self.retry_at.is_some_and(|at| now < at) {
            return false;
        }
        let socket = match &self.target {
            Target::Local(path) => UnixDatagram::unbound().and_then(|s| {
                s.connect(path)?;
                s.set_nonblocking(true)?;
                Ok(Socket::Local(s))
            }),
            Target::Udp(addr) => {
                let local: SocketAddr = if addr.is_ipv4() {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                UdpSocket::bind(local).and_then(|s| {
                    s.connect(addr)?;
                    s.set_nonblocking(true)?;
                    Ok(Socket::Udp(s))
                })
            }
        };
        match socket {
            Ok(s) => {
                self.socket = Some(s);
                self.retry_at = None;
                true
            }
            Err(e) => {
                self.retry_at = Some(now + RETRY);
                self.warn(&format!("unable to connect: {e}"));
                false
            }
        }
    }

    /// One warning per outage.
    fn warn(&mut self, why: &str) {
        if !self.down {
            self.down = true;
            log::warn!(
                "syslog: {}: {why}; lines for syslog are dropped until it takes them (log files and kahi ctl tail keep them)",
                self.target
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc_5424() {
        let o = Origin {
            ts: "2026-11-23T09:30:00.123Z",
            program: "web",
            process: "web:web_0",
            stream: "stderr",
            style: Default::default(),
        };
        let mut out = Vec::new();
        format(
            &mut out,
            facility("daemon").unwrap(),
            "host one",
            &o,
            Some(42),
            b"hello world",
            false,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<30>1 2026-11-23T09:30:00.123Z hostone web:web_0 42 stderr - hello world"
        );
        let mut out = Vec::new();
        format(&mut out, facility("local7").unwrap(), "", &o, None, b"part", true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<190>1 2026-11-23T09:30:00.123Z - web:web_0 - stderr - part [continued]"
        );
        assert_eq!(facility("nope"), None);
        assert_eq!(facility("kern"), Some(0));
    }

    #[test]
    fn an_absent_socket_drops_lines_without_blocking_and_is_retried_later() {
        let path = std::env::temp_dir().join(format!("kahi-no-syslog-{}", std::process::id()));
        let mut s = Syslog::new(Target::Local(path.clone()), 3);
        let o = Origin {
            ts: "T",
            program: "p",
            process: "p",
            stream: "stdout",
            style: Default::default(),
        };
        s.send(&o, Some(1), b"one", false);
        s.send(&o, Some(1), b"two", false);
        assert_eq!(s.dropped, 2);
        assert!(s.down);
        // The socket appears; the next attempt waits for the retry time.
        let receiver = UnixDatagram::bind(&path).unwrap();
        s.send(&o, Some(1), b"three", false);
        assert_eq!(s.dropped, 3);
        s.retry_at = Some(Instant::now());
        s.send(&o, Some(1), b"four", false);
        assert_eq!(s.dropped, 0);
        assert!(!s.down);
        let mut buf = [0u8; 256];
        let n = receiver.recv(&mut buf).unwrap();
        assert!(
            buf[..n].ends_with(b" p 1 stdout - four"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        let _ = std::fs::remove_file(&path);
    }
}
