//! The control socket: a Unix stream socket speaking newline-delimited JSON (one request per
//! line, one or more reply lines). This module owns the listener set-up, the per-client
//! framing with bounded buffers ([`Lines`], pure) and what a line asks for ([`parse`], pure);
//! the event loop drives it and answers requests.
//!
//! A client that sends a line longer than [`MAX_LINE`] gets an error and is closed; a client
//! that does not read its replies is dropped once [`MAX_PENDING`] bytes wait for it. Neither
//! ever blocks the loop. What a client sends is read only while it is used: a connection holds
//! at most [`MAX_LINE`] bytes (plus one read) of requests not yet answered, and the rest stays
//! in the kernel's socket buffer, where the client's writes block on it, until the connection
//! answers requests again (a parked start or stop settled, a large reply sent; a follower
//! never does).

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use mio::net::{UnixListener, UnixStream};

use crate::api::{ApiError, ErrorCode, Request};

/// Longest request line accepted.
pub const MAX_LINE: usize = 64 * 1024;
/// Most reply bytes held for a client that is not reading.
pub const MAX_PENDING: usize = 8 * 1024 * 1024;
/// Most bytes one reply may have: a tail of the largest ring, status of 100,000 processes.
pub const MAX_REPLY: usize = 128 * 1024 * 1024;

/// How queueing a reply went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Yes,
    /// Earlier replies still wait for the client, and this one would pass MAX_PENDING.
    Behind,
    /// The reply alone is over MAX_REPLY.
    TooLarge,
}

/// Binds the control socket at `path` with `mode`. A socket file left by a daemon that is gone
/// is replaced; one that still answers is refused, so two daemons never share a socket, and
/// `taken` says what to do then.
pub fn bind(
    path: &Path,
    mode: u32,
    group: Option<u32>,
    taken: &str,
) -> Result<UnixListener, String> {
    let what = "the control socket";
    let l = bind_unix(path, mode, (None, group), what, taken)?;
    l.set_nonblocking(true).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    Ok(UnixListener::from_std(l))
}

/// Binds a Unix stream socket at `path` (`what` names it in errors), then gives it `owner`
/// (uid, gid) and `mode`. A socket file left by a process that is gone is replaced; one that
/// still answers is refused, and `taken` says what to do about it.
pub fn bind_unix(
    path: &Path,
    mode: u32,
    owner: (Option<u32>, Option<u32>),
    what: &str,
    taken: &str,
) -> Result<std::os::unix::net::UnixListener, String> {
    let shown = path.display();
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "unable to bind {what} {shown}: another kahi is listening there ({taken})"
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("unable to remove the stale socket {shown}: {e}"))?;
    }
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        return Err(format!(
            "unable to bind {what} {shown}: directory {} does not exist",
            dir.display()
        ));
    }
    // Created with no access for anyone, then opened up to `mode`: no window where a wider
    // mode applies.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o777));
    let bound = std::os::unix::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| format!("unable to bind {what} {shown}: {e}"))?;
    if owner != (None, None) {
        let (uid, gid) = owner;
        let to = match (uid, gid) {
            (Some(u), Some(g)) => format!("{u}:{g}"),
            (Some(u), None) => format!("user {u}"),
            (None, g) => format!("group {}", g.unwrap_or_default()),
        };
        nix::unistd::chown(
            path,
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
        )
        .map_err(|e| format!("unable to give {what} {shown} to {to}: {e}"))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("unable to chmod {what} {shown}: {e}"))?;
    Ok(listener)
}

/// What a connection is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Reading requests.
    Idle,
    /// A start/stop/restart is waiting; the reply comes later.
    Waiting,
    /// `tail -f` or `maintail -f`: every new byte of this log is sent.
    Following { log: crate::api::LogSource, offset: u64, encoding: crate::api::Encoding },
    /// A large reply is being sent in pieces, each made once the last has mostly drained.
    Sending,
    /// Kahi's events, from this queue on the bus; `told`: the events the bus had dropped from
    /// it as of the last one sent, so that the next says only what was lost since.
    Events { sub: crate::events::SubId, told: u64 },
}

/// A connection gets the next piece of a large reply, or of a log it follows, once what it
/// was sent before is down to this.
pub const LOW_WATER: usize = 256 * 1024;

/// Request lines as they arrive: bytes in, complete lines out. No I/O here.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
}

/// A request line passed [`MAX_LINE`] bytes without ending.
#[derive(Debug, PartialEq, Eq)]
pub struct LineTooLong;

impl Lines {
    /// Appends bytes read from the client.
    pub fn push(&mut self, data: &[u8]) -> Result<(), LineTooLong> {
        self.buf.extend_from_slice(data);
        if self.buf.len() > MAX_LINE && !self.buf[..MAX_LINE].contains(&b'\n') {
            return Err(LineTooLong);
        }
        Ok(())
    }

    /// The next complete line, without its `\n` or `\r\n`, if any.
    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        let end = self.buf.iter().position(|&b| b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=end).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(line)
    }

    /// Whether a complete line waits.
    pub fn has_line(&self) -> bool {
        self.buf.contains(&b'\n')
    }
}

/// The request of one line, or why it is not one; None for a blank line, which is skipped.
pub fn parse(line: &[u8]) -> Option<Result<Request, ApiError>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(
        serde_json::from_slice::<Request>(line)
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("bad request: {e}"))),
    )
}

/// One client connection.
pub struct Conn {
    pub stream: UnixStream,
    pub mode: Mode,
    rbuf: Lines,
    wbuf: Vec<u8>,
    /// Bytes of `wbuf` already written.
    written: usize,
    /// The client closed its writing side: answer what was asked, then close.
    pub read_closed: bool,
    /// Reading stopped with the buffer full: the client may have sent more, left in the
    /// kernel until the buffered lines are answered.
    pub more: bool,
}

impl Conn {
    pub fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            mode: Mode::Idle,
            rbuf: Lines::default(),
            wbuf: Vec::new(),
            written: 0,
            read_closed: false,
            more: false,
        }
    }

    /// Reads what is available, until [`MAX_LINE`] bytes wait to be answered. Errors mean
    /// the connection is done.
    pub fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        self.more = false;
        loop {
            if self.rbuf.buf.len() >= MAX_LINE {
                if !self.rbuf.has_line() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request line too long",
                    ));
                }
                self.more = true;
                return Ok(());
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.read_closed = true;
                    return Ok(());
                }
                Ok(n) => {
                    if self.rbuf.push(&chunk[..n]).is_err() {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "request line too long",
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next complete request line, if any.
    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        self.rbuf.next_line()
    }

    /// Queues one reply line. One reply may be large (up to MAX_REPLY); what piles up behind
    /// replies the client has not read yet may not pass MAX_PENDING.
    pub fn queue(&mut self, line: &[u8]) -> Queued {
        if line.len() > MAX_REPLY {
            return Queued::TooLarge;
        }
        if self.pending() > 0 && self.pending() + line.len() > MAX_PENDING {
            return Queued::Behind;
        }
        self.wbuf.extend_from_slice(line);
        self.wbuf.push(b'\n');
        Queued::Yes
    }

    /// Queues a piece of a reply as it is (the reply's last piece holds its newline).
    pub fn queue_piece(&mut self, piece: &[u8]) {
        self.wbuf.extend_from_slice(piece);
    }

    /// Writes what the socket takes now. Errors mean the connection is done.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.written < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.written == self.wbuf.len() {
            self.wbuf.clear();
            self.written = 0;
        } else if self.written > 64 * 1024 {
            self.wbuf.drain(..self.written);
            self.written = 0;
        }
        Ok(())
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.wbuf.len() - self.written
    }

    /// Done: the client closed, nothing is parked and everything was written.
    pub fn finished(&self) -> bool {
        self.read_closed && self.mode == Mode::Idle && self.pending() == 0 && !self.rbuf.has_line()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_whole_whatever_the_pieces() {
        let mut lines = Lines::default();
        assert_eq!(lines.push(b"{\"cmd\":\"sta"), Ok(()));
        assert_eq!(lines.next_line(), None);
        assert_eq!(lines.push(b"tus\"}\r\n\n{\"cmd\""), Ok(()));
        assert_eq!(lines.next_line(), Some(b"{\"cmd\":\"status\"}".to_vec()));
        assert_eq!(lines.next_line(), Some(Vec::new()));
        assert_eq!(lines.next_line(), None);
        assert!(!lines.has_line());
        assert_eq!(lines.push(&vec![b'x'; MAX_LINE]), Err(LineTooLong));
    }

    #[test]
    fn a_line_is_a_request_an_error_or_nothing() {
        assert_eq!(parse(b" \t"), None);
        assert_eq!(parse(b"{\"cmd\":\"version\"}"), Some(Ok(Request::Version {})));
        let Some(Err(e)) = parse(b"{\"cmd\":\"shutdown\",\"names\":[\"web\"]}") else {
            panic!("a shutdown with names must be refused")
        };
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.error.starts_with("bad request: "), "{}", e.error);
    }
}
