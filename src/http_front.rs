//! The HTTP front door: one thread with its own poll loop accepts every TCP connection of a
//! `[server.http] listen` address and relays its bytes to tiny_http, which listens on a
//! loopback port of its own. tiny_http gives each connection a thread and bounds nothing; the
//! front bounds what a client can hold:
//!
//! - at most `max_connections` at once: past it, a new connection is closed at once;
//! - a client that sends more than [`UNANSWERED`] bytes with nothing sent back (an endless
//!   header line, a body past the limit, a flood of pipelined requests) is dropped;
//! - a client that stops reading: once [`BUFFER`] bytes wait for it, nothing more is taken
//!   from tiny_http, and if it reads nothing for [`STALL`] it is dropped;
//! - a connection with no byte either way for [`IDLE`] is closed (an SSE stream sends a
//!   comment every 15 s, so a followed stream is never idle).
//!
//! The bytes are relayed as they are, TLS included: tiny_http still speaks HTTP and TLS. It
//! sees each connection come from the loopback port the front connected from; [`Peers`] maps
//! that port back to the client's address, for the login throttle and the logs.
//!
//! The thread sleeps until a socket is ready or the next deadline; with no connection, it
//! sleeps without a timeout.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// Bytes from a client with nothing sent back, past which it is dropped: a request head and
/// the largest body the API takes, with room to spare.
pub const UNANSWERED: usize = 256 << 10;
/// Bytes waiting for a client, past which nothing more is read for it.
pub const BUFFER: usize = 256 << 10;
/// How long a client may leave a full buffer unread.
pub const STALL: Duration = Duration::from_secs(10);
/// How long a connection may carry no byte either way.
pub const IDLE: Duration = Duration::from_secs(60);

const LISTENER: Token = Token(0);
/// [`Handle::flush`] asks the thread to relay what tiny_http wrote last.
const WAKE: Token = Token(usize::MAX);

/// The daemon's hold on a front thread, for its exit.
pub struct Handle {
    waker: mio::Waker,
    flushed: Arc<std::sync::atomic::AtomicBool>,
}

impl Handle {
    /// Relays what tiny_http has written to every client (the answer to a shutdown, say)
    /// before the daemon exits; waits until done or `deadline`.
    pub fn flush(&self, deadline: Instant) {
        use std::sync::atomic::Ordering;
        self.flushed.store(false, Ordering::SeqCst);
        if self.waker.wake().is_err() {
            return;
        }
        while !self.flushed.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Client addresses by the loopback port their relay connects to tiny_http from.
#[derive(Default)]
pub struct Peers(Mutex<HashMap<u16, SocketAddr>>);

impl Peers {
    /// The client behind a connection tiny_http sees from `seen`.
    pub fn client(&self, seen: SocketAddr) -> IpAddr {
        if !seen.ip().is_loopback() {
            return seen.ip();
        }
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&seen.port()).map_or(seen.ip(), |a| a.ip())
    }

    fn set(&self, port: u16, client: Option<SocketAddr>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match client {
            Some(c) => map.insert(port, c),
            None => map.remove(&port),
        };
    }
}

/// One client and its relay to tiny_http.
struct Pair {
    client: TcpStream,
    upstream: TcpStream,
    /// The relay's own port toward tiny_http (the key in [`Peers`]).
    port: u16,
    /// Read from the client, not yet written to tiny_http.
    up: Vec<u8>,
    /// Read from tiny_http, not yet written to the client.
    down: Vec<u8>,
    /// Bytes from the client since the last byte sent to it.
    unanswered: usize,
    /// The client sent its last byte (EOF): tiny_http is told once `up` is written.
    client_done: bool,
    /// tiny_http closed: the client is closed once `down` is written.
    upstream_done: bool,
    last: Instant,
    /// Since when `down` has been full.
    full_since: Option<Instant>,
}

impl Pair {
    /// Moves what can move, until nothing more does (the poll is edge-triggered: bytes left
    /// behind because a buffer was full would otherwise wait for an event that never comes);
    /// false when the pair is finished or must be dropped.
    fn pump(&mut self, now: Instant) -> bool {
        loop {
            match self.pump_once(now) {
                Some(true) => continue,
                Some(false) => return !(self.upstream_done && self.down.is_empty()),
                None => return false,
            }
        }
    }

    /// One round each way: Some(whether another round may move more: bytes moved while a
    /// full buffer had stopped a read), or None to drop the pair.
    fn pump_once(&mut self, now: Instant) -> Option<bool> {
        let mut buf = [0u8; 16 << 10];
        let mut moved = false;
        let mut stopped_full = false;
        // Client -> tiny_http.
        while !self.client_done && self.up.len() < 64 << 10 {
            match self.client.read(&mut buf) {
                Ok(0) => self.client_done = true,
                Ok(n) => {
                    self.up.extend_from_slice(&buf[..n]);
                    self.unanswered += n;
                    self.last = now;
                    moved = true;
                    if self.unanswered > UNANSWERED {
                        return None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
        stopped_full |= !self.client_done && self.up.len() >= 64 << 10;
        let before = self.up.len();
        if !write_some(&mut self.upstream, &mut self.up) {
            // tiny_http stopped reading (it answered before taking a whole body): what it
            // said still goes to the client; what the client sends is dropped.
            self.up.clear();
            self.client_done = true;
        }
        moved |= self.up.len() < before;
        if self.client_done && self.up.is_empty() {
            let _ = self.upstream.shutdown(std::net::Shutdown::Write);
        }
        // tiny_http -> client.
        while !self.upstream_done && self.down.len() < BUFFER {
            match self.upstream.read(&mut buf) {
                Ok(0) => self.upstream_done = true,
                Ok(n) => {
                    self.down.extend_from_slice(&buf[..n]);
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => self.upstream_done = true,
            }
        }
        stopped_full |= !self.upstream_done && self.down.len() >= BUFFER;
        let before = self.down.len();
        if !write_some(&mut self.client, &mut self.down) {
            return None;
        }
        if self.down.len() < before {
            self.unanswered = 0;
            self.last = now;
            moved = true;
        }
        self.full_since = match (self.down.len() >= BUFFER, self.full_since) {
            (true, None) => Some(now),
            (true, since) => since,
            (false, _) => None,
        };
        Some(moved && stopped_full)
    }

    /// When this pair must be looked at even if nothing happens.
    fn deadline(&self) -> Instant {
        let idle = self.last + IDLE;
        self.full_since.map_or(idle, |s| idle.min(s + STALL))
    }
}

/// Writes as much of `buf` as `to` takes now; false on an error.
fn write_some(to: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut done = 0;
    while done < buf.len() {
        match to.write(&buf[done..]) {
            Ok(0) => return false,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    buf.drain(..done);
    true
}

/// Starts the front thread for `listener`, relaying to tiny_http at `upstream`.
pub fn start(
    listener: std::net::TcpListener,
    upstream: SocketAddr,
    max_connections: usize,
    peers: Arc<Peers>,
) -> io::Result<Handle> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = mio::Waker::new(poll.registry(), WAKE)?;
    let flushed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = flushed.clone();
    std::thread::Builder::new().name("http-front".into()).spawn(move || {
        let pairs = HashMap::new();
        Front { poll, listener, upstream, max_connections, peers, pairs, next: 1, done }.run()
    })?;
    Ok(Handle { waker, flushed })
}

struct Front {
    poll: Poll,
    listener: TcpListener,
    upstream: SocketAddr,
    max_connections: usize,
    peers: Arc<Peers>,
    /// By the token of the client socket; the upstream socket's token is the next one.
    pairs: HashMap<usize, Pair>,
    next: usize,
    /// Set once a flush asked for by the [`Handle`] is done.
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl Front {
    fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut refused = 0u64;
        loop {
            let timeout = self
                .pairs
                .values()
                .map(Pair::deadline)
                .min()
                .map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::error!("HTTP front: poll: {e}");
                return;
            }
            let now = Instant::now();
            let mut touched = Vec::new();
            let mut flush = false;
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now, &mut refused),
                    WAKE => {
                        touched.extend(self.pairs.keys().copied());
                        flush = true;
                    }
                    Token(t) => touched.push(t - (t % 2 == 0) as usize),
                }
            }
            touched.sort_unstable();
            touched.dedup();
            for key in touched {
                if let Some(p) = self.pairs.get_mut(&key)
                    && !p.pump(now)
                {
                    self.drop_pair(key);
                }
            }
            // Deadlines: idle connections and clients that stopped reading.
            let late: Vec<usize> =
                self.pairs.iter().filter(|(_, p)| p.deadline() <= now).map(|(k, _)| *k).collect();
            for key in late {
                self.drop_pair(key);
            }
            if flush {
                self.done.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    fn accept(&mut self, now: Instant, refused: &mut u64) {
        loop {
            let (client, addr) = match self.listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and the like: the connection stays in the backlog.
                    log::warn!("HTTP front: accept: {e}");
                    return;
                }
            };
            if self.pairs.len() >= self.max_connections {
                *refused += 1;
                if refused.is_power_of_two() {
                    log::warn!(
                        "HTTP: {} connections open, the most allowed (max_connections); closed the one from {addr} ({refused} so far)",
                        self.pairs.len()
                    );
                }
                continue;
            }
            if let Err(e) = self.relay(client, addr, now) {
                log::warn!("HTTP front: unable to relay a connection from {addr}: {e}");
            }
        }
    }

    fn relay(&mut self, mut client: TcpStream, addr: SocketAddr, now: Instant) -> io::Result<()> {
        let upstream = std::net::TcpStream::connect(self.upstream)?;
        upstream.set_nodelay(true)?;
        upstream.set_nonblocking(true)?;
        let port = upstream.local_addr()?.port();
        let mut upstream = TcpStream::from_std(upstream);
        let key = self.next;
        self.next += 2;
        let both = Interest::READABLE | Interest::WRITABLE;
        self.poll.registry().register(&mut client, Token(key), both)?;
        self.poll.registry().register(&mut upstream, Token(key + 1), both)?;
        self.peers.set(port, Some(addr));
        let mut pair = Pair {
            client,
            upstream,
            port,
            up: Vec::new(),
            down: Vec::new(),
            unanswered: 0,
            client_done: false,
            upstream_done: false,
            last: now,
            full_since: None,
        };
        // Bytes may have arrived before registration.
        if pair.pump(now) {
            self.pairs.insert(key, pair);
        } else {
            self.peers.set(port, None);
        }
        Ok(())
    }

    fn drop_pair(&mut self, key: usize) {
        if let Some(mut p) = self.pairs.remove(&key) {
            let _ = self.poll.registry().deregister(&mut p.client);
            let _ = self.poll.registry().deregister(&mut p.upstream);
            self.peers.set(p.port, None);
        }
    }
}
