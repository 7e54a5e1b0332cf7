//! A connection's bytes, plain or through TLS (rustls, driven without blocking): what the
//! HTTP front reads and writes, whatever the listener speaks, over TCP or a Unix socket.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

/// A listen socket of the HTTP front.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Who connected: the address of a TCP peer, the uid of a Unix socket's (SO_PEERCRED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    Ip(std::net::IpAddr),
    Uid(u32),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Ip(ip) => write!(f, "{ip}"),
            Peer::Uid(uid) => write!(f, "uid {uid} on the Unix socket"),
        }
    }
}

impl Listener {
    /// The next connection and its peer; a Unix peer whose credentials cannot be read is
    /// refused (an error of the connection, not of the listener).
    pub fn accept(&self) -> io::Result<(Sock, Option<Peer>)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept()?;
                let _ = s.set_nodelay(true);
                Ok((Sock::Tcp(s), Some(Peer::Ip(addr.ip()))))
            }
            Listener::Unix(l) => {
                let (s, _) = l.accept()?;
                use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
                let uid = getsockopt(&s, PeerCredentials).ok().map(|c| Peer::Uid(c.uid()));
                Ok((Sock::Unix(s), uid))
            }
        }
    }
}

/// `mio::event::Source` for an enum of a TCP and a Unix socket: each call goes to the one it
/// holds.
macro_rules! source_of_either {
    ($t:ident) => {
        impl mio::event::Source for $t {
            fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
                match self {
                    $t::Tcp(s) => s.register(r, t, i),
                    $t::Unix(s) => s.register(r, t, i),
                }
            }
            fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
                match self {
                    $t::Tcp(s) => s.reregister(r, t, i),
                    $t::Unix(s) => s.reregister(r, t, i),
                }
            }
            fn deregister(&mut self, r: &Registry) -> io::Result<()> {
                match self {
                    $t::Tcp(s) => s.deregister(r),
                    $t::Unix(s) => s.deregister(r),
                }
            }
        }
    };
}

source_of_either!(Listener);
source_of_either!(Sock);

/// A client's socket.
pub enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.shutdown(how),
            Sock::Unix(s) => s.shutdown(how),
        }
    }
}

impl AsFd for Sock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Sock::Tcp(s) => s.as_fd(),
            Sock::Unix(s) => s.as_fd(),
        }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write_vectored(bufs),
            Sock::Unix(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The certificate chain and key of `[server.http] tls_cert`/`tls_key`, ready to serve.
pub fn config(cert: &[u8], key: &[u8]) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain: Vec<rustls::Certificate> = rustls_pemfile::certs(&mut &cert[..])
        .map_err(|e| format!("tls_cert: {e}"))?
        .into_iter()
        .map(rustls::Certificate)
        .collect();
    if chain.is_empty() {
        return Err("tls_cert: no certificate in the file".into());
    }
    let mut keys = rustls_pemfile::pkcs8_private_keys(&mut &key[..]).unwrap_or_default();
    if keys.is_empty() {
        keys = rustls_pemfile::rsa_private_keys(&mut &key[..]).unwrap_or_default();
    }
    let Some(key) = keys.into_iter().next() else {
        return Err("tls_key: no PKCS#8 or RSA private key in the file".into());
    };
    rustls::ServerConfig::builder()
        .with_safe_defaults()
        .with_no_client_auth()
        .with_single_cert(chain, rustls::PrivateKey(key))
        .map(Arc::new)
        .map_err(|e| format!("tls_cert and tls_key: {e}"))
}

/// Plaintext held inside rustls at most, each way.
const TLS_BUFFER: usize = 64 << 10;

/// One client's socket, with its TLS session when the listener speaks HTTPS.
pub enum Io {
    Plain(Sock),
    Tls(Sock, Box<rustls::ServerConnection>),
}

/// What a read brought.
pub enum Got {
    /// Bytes were appended (maybe none: nothing more now).
    Some,
    /// The client closed its side.
    Eof,
}

impl Io {
    pub fn new(sock: Sock, tls: Option<&Arc<rustls::ServerConfig>>) -> io::Result<Io> {
        Ok(match tls {
            None => Io::Plain(sock),
            Some(config) => {
                let mut c =
                    rustls::ServerConnection::new(config.clone()).map_err(io::Error::other)?;
                c.set_buffer_limit(Some(TLS_BUFFER));
                Io::Tls(sock, Box::new(c))
            }
        })
    }

    pub fn sock(&mut self) -> &mut Sock {
        match self {
            Io::Plain(s) | Io::Tls(s, _) => s,
        }
    }

    /// Reads what there is, up to `room` bytes appended to `into`.
    pub fn read(
        &mut self,
        scratch: &mut [u8],
        into: &mut Vec<u8>,
        mut room: usize,
    ) -> io::Result<Got> {
        match self {
            Io::Plain(sock) => {
                while room > 0 {
                    let want = room.min(scratch.len());
                    match sock.read(&mut scratch[..want]) {
                        Ok(0) => return Ok(Got::Eof),
                        Ok(n) => {
                            into.extend_from_slice(&scratch[..n]);
                            room -= n;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(Got::Some)
            }
            Io::Tls(sock, tls) => {
                let mut eof = false;
                loop {
                    // Plaintext first: rustls refuses to read more while its buffer is full.
                    while room > 0 {
                        let want = room.min(scratch.len());
                        match tls.reader().read(&mut scratch[..want]) {
                            Ok(0) => return Ok(Got::Eof),
                            Ok(n) => {
                                into.extend_from_slice(&scratch[..n]);
                                room -= n;
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                                return Ok(Got::Eof);
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    if room == 0 || eof || !tls.wants_read() {
                        break;
                    }
                    match tls.read_tls(sock) {
                        Ok(0) => eof = true,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                    if let Err(e) = tls.process_new_packets() {
                        // The alert, if it goes out now; the connection ends either way.
                        let _ = tls.write_tls(sock);
                        return Err(io::Error::other(e));
                    }
                }
                // The handshake's answers.
                self.flush()?;
                Ok(if eof { Got::Eof } else { Got::Some })
            }
        }
    }

    /// Writes as much of `bufs` (in order) as the socket takes now; how many bytes it took.
    pub fn write(&mut self, bufs: &[&[u8]]) -> io::Result<usize> {
        match self {
            Io::Plain(sock) => {
                let slices: Vec<io::IoSlice> = bufs.iter().map(|b| io::IoSlice::new(b)).collect();
                loop {
                    match sock.write_vectored(&slices) {
                        Ok(n) => return Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Io::Tls(_, tls) => {
                let mut taken = 0;
                for b in bufs {
                    let n = tls.writer().write(b)?;
                    taken += n;
                    if n < b.len() {
                        break;
                    }
                }
                self.flush()?;
                Ok(taken)
            }
        }
    }

    /// Writes the TLS records rustls holds; nothing to do for a plain socket.
    fn flush(&mut self) -> io::Result<()> {
        if let Io::Tls(sock, tls) = self {
            while tls.wants_write() {
                match tls.write_tls(sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Bytes accepted but not yet on the wire (TLS records rustls holds).
    pub fn unsent(&self) -> bool {
        matches!(self, Io::Tls(_, tls) if tls.wants_write())
    }

    /// Flushes what rustls holds; for a plain socket, nothing.
    pub fn push(&mut self) -> io::Result<()> {
        self.flush()
    }
}
