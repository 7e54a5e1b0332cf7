//! The control socket's clients, served on the loop: accepted (and turned away, with a
//! reason, when they may not use it or Kahi is out of fds), their request lines answered in
//! order through the one dispatcher (`dispatch.rs`), replies framed as NDJSON lines,
//! followers and large replies fed a piece at a time as the client reads.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use mio::{Interest, Token};

use super::http_serve::EVENTS_QUEUED;
use super::respond::Responder;
use super::sources::Source;
use super::{ACCEPTS_PER_TURN, CLIENTS_BEFORE_YIELD, EventLoop};
use crate::api::{self, ApiError, ErrorCode, LogSource, Now, Reply};
use crate::control::{self, Conn, Mode};
use crate::events::{Event, EventType};
use crate::piecewise;
use crate::supervisor::ProcId;

impl EventLoop {
    /// Accepts the clients in the control socket's backlog, [`ACCEPTS_PER_TURN`] at most: with
    /// more, `accept_more` stays set and the next turn goes on without waiting.
    pub(super) fn accept(&mut self) {
        self.accept_more = false;
        for n in 0..ACCEPTS_PER_TURN {
            // A child exited: the rest wait for the next turn, which restarts it first (a few
            // are accepted whatever happens, so a crash loop cannot shut clients out).
            if n >= CLIENTS_BEFORE_YIELD && self.exited.load(Ordering::SeqCst) {
                self.accept_more = true;
                return;
            }
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.fd_shortage = false;
                    let mut conn = Box::new(Conn::new(stream));
                    let group = self.sup.config.server.socket_group;
                    if let Err(why) = check_peer(&conn.stream, group, &mut self.peers) {
                        let e = ApiError::new(ErrorCode::Forbidden, why);
                        let _ = conn.queue(&serde_json::to_vec(&e).unwrap_or_default());
                        let _ = conn.flush();
                        continue;
                    }
                    let token = self.token();
                    if let Err(e) = self.poll.registry().register(
                        &mut conn.stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::warn!("unable to watch a control connection: {e}");
                        continue;
                    }
                    self.sources.insert(token, Source::Conn(conn));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(e.raw_os_error(), Some(nix::libc::EMFILE | nix::libc::ENFILE)) =>
                {
                    // Out of fds: the listener is edge-triggered, so a client left in the
                    // backlog would wait for the next one. The reserve fd makes room to accept
                    // it and tell it why it is turned away.
                    if !self.fd_shortage {
                        self.fd_shortage = true;
                        log::warn!(
                            "unable to accept a control connection: {e}; turning clients away until fds are free (see [server] minfds)"
                        );
                    }
                    // (accept says EMFILE before it looks at the backlog: it may be empty.)
                    let Some(reserve) = self.reserve.take() else { return };
                    drop(reserve);
                    let turned_away = match self.listener.accept() {
                        Ok((mut stream, _)) => {
                            let e = ApiError::new(
                                ErrorCode::ServerError,
                                "kahi is out of file descriptors; try again later",
                            );
                            let mut line = serde_json::to_vec(&e).unwrap_or_default();
                            line.push(b'\n');
                            let _ = io::Write::write(&mut stream, &line);
                            true
                        }
                        Err(_) => false,
                    };
                    self.reserve = std::fs::File::open("/").ok();
                    if !turned_away || self.reserve.is_none() {
                        return;
                    }
                }
                Err(e) => {
                    log::warn!("unable to accept a control connection: {e}");
                    return;
                }
            }
        }
        self.accept_more = true;
    }

    pub(super) fn read_conn(&mut self, token: Token, now: Instant) {
        if self.fill_conn(token) {
            self.serve(token, now);
        }
    }

    /// Reads what a connection sent, up to its buffer's bound; false when it was closed (it
    /// is gone, or sent a line too long).
    fn fill_conn(&mut self, token: Token) -> bool {
        let Some(conn) = self.sources.conn(token) else { return false };
        if let Err(e) = conn.fill() {
            if e.kind() == io::ErrorKind::InvalidData {
                let err = ApiError::new(
                    ErrorCode::BadRequest,
                    format!("request line longer than {} bytes", control::MAX_LINE),
                );
                let _ = conn.queue(&serde_json::to_vec(&err).unwrap_or_default());
                let _ = conn.flush();
            }
            self.close(token);
            return false;
        }
        true
    }

    /// Answers the requests a connection has sent, in order, while it is not parked.
    pub(super) fn serve(&mut self, token: Token, now: Instant) {
        loop {
            let Some(conn) = self.sources.conn(token) else { return };
            if conn.mode != Mode::Idle {
                break;
            }
            let Some(line) = conn.next_line() else {
                // Requests left in the kernel while the buffer was full: their turn now.
                if conn.more && self.fill_conn(token) {
                    continue;
                }
                break;
            };
            match control::parse(&line) {
                None => continue,
                Some(Ok(req)) => self.answer_request(Responder::Control(token), req, now),
                Some(Err(e)) => self.reply(token, Err(e)),
            }
            self.perform(now);
        }
        self.flush_conn(token);
    }

    /// Follows a log on a control connection: what is there from `offset`, then every new
    /// byte, as log replies.
    pub(super) fn follow_log(
        &mut self,
        token: Token,
        log: LogSource,
        offset: u64,
        encoding: api::Encoding,
    ) {
        if let Some(c) = self.sources.conn(token) {
            c.mode = Mode::Following { log, offset, encoding };
        }
        self.followers.insert(token);
        self.feed_follower(token);
    }

    /// Follows Kahi's events on a control connection, of the given types or of all, through a
    /// queue of its own on the bus.
    pub(super) fn follow_events_on(&mut self, token: Token, types: Vec<EventType>) {
        let id = self.bus.subscribe(types, EVENTS_QUEUED);
        if let Some(c) = self.sources.conn(token) {
            c.mode = Mode::Events { sub: id, told: 0 };
        }
        self.followers.insert(token);
    }

    /// Sends the control connections following events what their queues hold.
    pub(super) fn feed_event_followers(&mut self) {
        let tokens: Vec<Token> = self
            .followers
            .iter()
            .copied()
            .filter(|t| matches!(self.sources.get(*t), Some(Source::Conn(c)) if matches!(c.mode, Mode::Events { .. })))
            .collect();
        for token in tokens {
            self.feed_event_follower(token);
        }
    }

    /// Sends one connection the events of its queue, one line each, while it has read most
    /// of what it was sent; the rest wait on the bus (which drops the oldest past its bound).
    /// The first event sent after a loss says how many were lost before it (`lost`): the
    /// bus drops only to queue a newer one, so an event always follows a loss.
    fn feed_event_follower(&mut self, token: Token) {
        let Some(Source::Conn(conn)) = self.sources.get_mut(token) else { return };
        let Mode::Events { sub, mut told } = conn.mode else { return };
        loop {
            if conn.pending() > control::LOW_WATER {
                self.behind.insert(token);
                break;
            }
            let Some(event) = self.bus.next(sub) else { break };
            let lost = Some(self.bus.dropped_since(sub, &mut told)).filter(|n| *n > 0);
            conn.mode = Mode::Events { sub, told };
            let data = api::stream_json(&event, &crate::timefmt::rfc3339_now());
            let reply = Reply::Event { event: api::stream_name(&event).to_string(), data, lost };
            let line = serde_json::to_vec(&reply).unwrap_or_default();
            if conn.queue(&line) != control::Queued::Yes {
                log::warn!(
                    "dropping a control client that does not keep up with the events it follows"
                );
                self.close(token);
                return;
            }
        }
        self.flush_conn(token);
    }

    /// Sends a large reply in pieces, each once the client has read most of the last.
    pub(super) fn send_pieces_on(
        &mut self,
        token: Token,
        reply: piecewise::Piecewise,
        now: Instant,
    ) {
        if let Some(c) = self.sources.conn(token) {
            c.mode = Mode::Sending;
        }
        self.pieces.insert(token, reply);
        self.feed_piece(token, now);
    }

    /// Reads the configuration file again for reread, update or avail.
    pub(super) fn config_reply(
        &mut self,
        what: api::ConfigUse,
        now: Instant,
    ) -> Result<Reply, ApiError> {
        self.load_config().map(|config| {
            let applies = what.applies();
            let r = api::with_config(&mut self.sup, what, config, now);
            if let (true, Reply::Changes { changes }) = (applies, &r) {
                self.sync_sockets();
                self.sync_pools();
                self.sync_webhooks();
                self.peers.clear();
                // Processes removed at once (they were not running): close their files.
                let gone: Vec<ProcId> =
                    self.io.keys().copied().filter(|id| self.sup.get(*id).is_none()).collect();
                for id in gone {
                    self.forget(id);
                }
                log_changes(changes);
                self.publish(Event::Update { changes: changes.clone() });
            }
            r
        })
    }

    /// Begins stopping everything; the loop ends when the last program is reaped.
    pub(super) fn shutdown(&mut self, now: Instant) {
        if !self.sup.is_shutting_down() {
            let ts = crate::timefmt::rfc3339_now();
            self.publish(Event::SupervisorState { running: false, ts });
            crate::sys::detach::notify_manager("STOPPING=1");
        }
        self.sup.begin_shutdown(now);
    }

    pub(super) fn load_config(&self) -> Result<crate::config::Config, ApiError> {
        let loaded = crate::config::reload(&self.sup.config);
        for note in loaded.iter().flat_map(|c| &c.notes) {
            log::warn!("{}", note.error);
        }
        if let Ok(new) = &loaded
            && new.server != self.sup.config.server
        {
            log::warn!(
                "[server] changed in {}: it takes effect when kahi restarts (the socket stays {})",
                new.file.display(),
                self.socket.display()
            );
        }
        loaded.map_err(|errors| {
            let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            ApiError::new(ErrorCode::BadRequest, text.join("\n"))
        })
    }

    pub(super) fn reply(&mut self, token: Token, reply: Result<Reply, ApiError>) {
        let line = match &reply {
            Ok(r) => serde_json::to_vec(r),
            Err(e) => serde_json::to_vec(e),
        };
        let Ok(line) = line else { return };
        let Some(conn) = self.sources.conn(token) else { return };
        match conn.queue(&line) {
            control::Queued::Yes => {}
            control::Queued::TooLarge => {
                let e = ApiError::new(
                    ErrorCode::BadRequest,
                    format!(
                        "the reply would be {} bytes, more than the {} MiB one reply may hold; ask for less",
                        line.len(),
                        control::MAX_REPLY >> 20
                    ),
                );
                let _ = conn.queue(&serde_json::to_vec(&e).unwrap_or_default());
            }
            control::Queued::Behind => {
                log::warn!("dropping a control client that does not read its replies");
                self.close(token);
                return;
            }
        }
        self.flush_conn(token);
    }

    /// Sends what the daemon logged during this turn to the clients following its log.
    pub(super) fn feed_daemon_log_followers(&mut self) {
        if self.followers.is_empty() {
            return;
        }
        let end = crate::logs::daemon_log::end();
        if end == self.daemon_log_seen {
            return;
        }
        self.daemon_log_seen = end;
        let tokens: Vec<Token> = self
            .followers
            .iter()
            .copied()
            .filter(|t| {
                matches!(
                    self.sources.get(*t),
                    Some(Source::Conn(c)) if matches!(c.mode, Mode::Following { log: LogSource::Daemon, .. })
                )
            })
            .collect();
        for token in tokens {
            self.feed_follower(token);
        }
    }

    /// Sends a follower the bytes it has not seen, a piece at a time: one that has not read
    /// most of what it was sent gets more later, and if the program overwrote them meanwhile,
    /// the next reply says how many were skipped.
    pub(super) fn feed_follower(&mut self, token: Token) {
        let Some(Source::Conn(conn)) = self.sources.get_mut(token) else {
            self.followers.remove(&token);
            return;
        };
        let Mode::Following { log, offset, encoding } = conn.mode.clone() else { return };
        let (read, end) = match log {
            LogSource::Process(id, stream) => {
                let Some(entry) = self.sup.get(id) else { return };
                let ring = entry.ring(stream);
                (ring.end() > offset)
                    .then(|| ring.read(offset, piecewise::BYTES_PER_PIECE))
                    .zip(Some(ring.end()))
            }
            LogSource::Daemon => {
                let end = crate::logs::daemon_log::end();
                (end > offset).then(|| crate::logs::daemon_log::read(offset)).zip(Some(end))
            }
        }
        .map_or((None, 0), |(r, e)| (Some(r), e));
        let Some(read) = read else { return };
        if conn.pending() > control::LOW_WATER {
            self.behind.insert(token);
            return;
        }
        let line =
            serde_json::to_vec(&api::log_reply(&read.data, read.offset, read.skipped, encoding))
                .unwrap_or_default();
        let next = read.offset + read.data.len() as u64;
        if conn.queue(&line) != control::Queued::Yes {
            log::warn!("dropping a control client that does not keep up with the log it follows");
            self.close(token);
            return;
        }
        conn.mode = Mode::Following { log, offset: next, encoding };
        if next < end {
            self.behind.insert(token);
        }
        self.flush_conn(token);
    }

    /// Queues the next piece of a large reply; after its last, the connection reads requests
    /// again.
    pub(super) fn feed_piece(&mut self, token: Token, now: Instant) {
        let Some(mut reply) = self.pieces.remove(&token) else { return };
        let Some(Source::Conn(conn)) = self.sources.get_mut(token) else { return };
        if conn.pending() > control::LOW_WATER {
            self.pieces.insert(token, reply);
            self.behind.insert(token);
            return;
        }
        let mut piece = Vec::new();
        let clock = Now { mono: now, wall: SystemTime::now() };
        let last = reply.piece(&self.sup, clock, &mut piece);
        conn.queue_piece(&piece);
        if last {
            conn.mode = Mode::Idle;
        } else {
            self.pieces.insert(token, reply);
            self.behind.insert(token);
        }
        self.flush_conn(token);
        if last {
            // Requests that arrived meanwhile.
            self.serve(token, now);
        }
    }

    /// Whether a connection with more to send has room for it now.
    pub(super) fn behind_ready(&self) -> bool {
        self.behind.iter().any(|t| {
            matches!(self.sources.get(*t), Some(Source::Conn(c)) if c.pending() <= control::LOW_WATER)
        })
    }

    /// Sends the next piece to each connection with more to send and room for it.
    pub(super) fn feed_behind(&mut self, now: Instant) {
        if !self.behind_ready() {
            return;
        }
        for token in std::mem::take(&mut self.behind) {
            match self.sources.get(token) {
                Some(Source::Conn(c)) if c.pending() > control::LOW_WATER => {
                    self.behind.insert(token);
                }
                Some(Source::Conn(c)) if c.mode == Mode::Sending => self.feed_piece(token, now),
                Some(Source::Conn(c)) if matches!(c.mode, Mode::Events { .. }) => {
                    self.feed_event_follower(token)
                }
                Some(Source::Conn(_)) => self.feed_follower(token),
                _ => {}
            }
        }
    }

    pub(super) fn flush_conn(&mut self, token: Token) {
        let Some(conn) = self.sources.conn(token) else { return };
        let done = match conn.flush() {
            Ok(()) => conn.finished(),
            Err(_) => true,
        };
        if done {
            self.close(token);
        }
    }

    pub(super) fn close(&mut self, token: Token) {
        if let Some(Source::Conn(mut conn)) = self.sources.remove(token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            if let Mode::Events { sub, .. } = conn.mode {
                self.bus.unsubscribe(sub);
            }
        }
        self.waiters.remove(&token);
        self.followers.remove(&token);
        self.pieces.remove(&token);
        self.behind.remove(&token);
    }
}

/// How long an answer of NSS to "is this user in the socket's group" is kept.
const PEER_TTL: Duration = Duration::from_secs(30);
/// Most answers kept: past it, the stale ones go, and all of them if none is stale.
const PEERS_KEPT: usize = 1024;

/// What NSS said of the users who connected, by (uid, gid, group). NSS may be slow (LDAP, sssd,
/// a dead NIS server) and the loop must not wait on it for every connection: an answer is kept
/// for [`PEER_TTL`], so a user added to or removed from the group is seen within 30 s, and all
/// are forgotten when the configuration is reloaded (SIGHUP, `kahi ctl update`), at once.
/// Root and the daemon's own user never get here.
#[derive(Default)]
pub(super) struct PeerCache {
    answers: HashMap<(u32, u32, u32), (bool, Instant)>,
}

impl PeerCache {
    /// Whether `uid` (primary group `gid`) is in `group`: `look_up` asks NSS when no answer
    /// younger than [`PEER_TTL`] is kept.
    fn in_group(
        &mut self,
        (uid, gid, group): (u32, u32, u32),
        now: Instant,
        look_up: impl FnOnce() -> bool,
    ) -> bool {
        if gid == group {
            return true;
        }
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < PEER_TTL;
        if let Some((answer, at)) = self.answers.get(&(uid, gid, group))
            && fresh(at)
        {
            return *answer;
        }
        if self.answers.len() >= PEERS_KEPT {
            self.answers.retain(|_, (_, at)| fresh(at));
            if self.answers.len() >= PEERS_KEPT {
                self.answers.clear();
            }
        }
        let answer = look_up();
        self.answers.insert((uid, gid, group), (answer, now));
        answer
    }

    pub(super) fn clear(&mut self) {
        self.answers.clear();
    }
}

/// Only root, the daemon's own user and (with `socket_group`) that group may use the control
/// socket.
fn check_peer(
    stream: &mio::net::UnixStream,
    group: Option<u32>,
    peers: &mut PeerCache,
) -> Result<(), String> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let creds = getsockopt(stream, PeerCredentials)
        .map_err(|e| format!("unable to read peer credentials: {e}"))?;
    let me = nix::unistd::geteuid().as_raw();
    if creds.uid() == 0
        || creds.uid() == me
        || group.is_some_and(|g| {
            let (uid, gid) = (creds.uid(), creds.gid());
            peers.in_group((uid, gid, g), Instant::now(), || in_group(uid, g))
        })
    {
        Ok(())
    } else {
        Err(match group {
            Some(g) => format!(
                "uid {} may not use this control socket (only root, uid {me} and group {g})",
                creds.uid()
            ),
            None => format!(
                "uid {} may not use this control socket (only root and uid {me})",
                creds.uid()
            ),
        })
    }
}

/// Whether a user belongs to a group as a supplementary one (or as the primary group of its
/// passwd entry), by NSS.
fn in_group(uid: u32, group: u32) -> bool {
    let Ok(Some(user)) = crate::sys::users::user_by_uid(nix::unistd::Uid::from_raw(uid)) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(user.name) else { return false };
    crate::sys::users::group_list(&name, user.gid)
        .is_ok_and(|groups| groups.iter().any(|g| g.as_raw() == group))
}

fn log_changes(changes: &crate::supervisor::Changes) {
    for n in &changes.added {
        log::info!("update: {n}: added");
    }
    for n in &changes.changed {
        log::info!("update: {n}: changed, restarting it");
    }
    for n in &changes.removed {
        log::info!("update: {n}: removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nss_is_asked_once_per_user_while_its_answer_is_fresh() {
        let mut peers = PeerCache::default();
        let t0 = Instant::now();
        let asked = std::cell::Cell::new(0);
        let ask = |answer: bool| {
            asked.set(asked.get() + 1);
            answer
        };
        assert!(peers.in_group((1000, 1000, 50), t0, || ask(true)));
        assert!(peers.in_group((1000, 1000, 50), t0 + Duration::from_secs(29), || ask(false)));
        assert_eq!(asked.get(), 1, "a fresh answer is kept");
        assert!(!peers.in_group((1000, 1000, 50), t0 + PEER_TTL, || ask(false)));
        assert_eq!(asked.get(), 2, "a stale one is asked again");
        peers.clear();
        assert!(peers.in_group((1000, 1000, 50), t0 + PEER_TTL, || ask(true)));
        assert_eq!(asked.get(), 3, "a reload forgets every answer");
        assert!(peers.in_group((1001, 50, 50), t0, || ask(false)), "the primary group is enough");
        assert_eq!(asked.get(), 3, "and needs no look-up");
        for uid in 0..PEERS_KEPT as u32 * 2 {
            peers.in_group((uid, 1, 2), t0, || false);
        }
        assert!(peers.answers.len() <= PEERS_KEPT);
    }
}
