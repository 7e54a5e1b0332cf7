//! Kahi's HTTP/1.x client connection, over TCP or rustls, each step bounded by a deadline:
//! webhook deliveries POST with it, and remote configuration includes GET with it. The host's
//! look-up is the one step the system's resolver bounds instead.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::tls;
use crate::config::Url;

pub(crate) struct Conn {
    stream: Stream,
    deadline: Instant,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    /// Connects to `url`'s host (TLS for https, the certificate verified against the name
    /// with the system's certificates and `ca_certs`); every later read and write must be done
    /// by `deadline` too.
    pub(crate) fn open(
        url: &Url,
        tls: &mut tls::Cache,
        ca_certs: &[rustls::Certificate],
        deadline: Instant,
    ) -> Result<Conn, String> {
        let addrs: Vec<_> = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|e| format!("unable to look up {}: {e}", url.host))?
            .collect();
        let mut last = format!("{} has no address", url.host);
        let mut sock = None;
        for addr in addrs {
            let Some(left) = left(deadline) else { break };
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = format!("unable to connect to {addr}: {e}"),
            }
        }
        let sock = sock.ok_or(last)?;
        let _ = sock.set_nodelay(true);
        let stream = if url.https {
            let config = tls.config(ca_certs)?;
            let name = rustls::ServerName::try_from(url.host.as_str())
                .map_err(|e| format!("{}: {e}", url.host))?;
            let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
            Stream::Tls(Box::new(rustls::StreamOwned::new(conn, sock)))
        } else {
            Stream::Plain(sock)
        };
        Ok(Conn { stream, deadline })
    }

    fn tcp(&self) -> &TcpStream {
        match &self.stream {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    /// Bounds the next call by what is left of the deadline.
    fn bound(&self) -> io::Result<()> {
        let left = left(self.deadline).ok_or(io::ErrorKind::TimedOut)?;
        self.tcp().set_write_timeout(Some(left))?;
        self.tcp().set_read_timeout(Some(left))
    }

    /// Writes all of `bytes`.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.bound()?;
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Stream::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
        }
    }

    /// Reads what has come, at most `buf.len()` bytes; 0 at the end. EINTR is retried.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.bound()?;
            let r = match &mut self.stream {
                Stream::Plain(s) => s.read(buf),
                Stream::Tls(s) => s.read(buf),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }
}

/// An I/O error in words, a timeout as the wait it exceeded.
pub(crate) fn io_error(e: io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no answer within {timeout:?}")
        }
        _ => e.to_string(),
    }
}

/// Time left before `deadline`, if any.
pub(crate) fn left(deadline: Instant) -> Option<Duration> {
    deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
}

/// The code of `HTTP/1.1 200 OK`.
pub(crate) fn status(line: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = words.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read() {
        assert_eq!(status(b"HTTP/1.1 204 No Content"), Some(204));
        assert_eq!(status(b"HTTP/1.0 500"), Some(500));
        assert_eq!(status(b"HTTP/2 200"), None);
        assert_eq!(status(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(status(b"HTTP/1.1 20 OK"), None);
    }
}
