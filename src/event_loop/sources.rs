//! What each poll token stands for: one table, looked up once per event. Tokens only ever
//! grow, so a token is never reused: a token freed and handed out again within one batch of
//! events would send a stale event to its new owner.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use mio::Token;

use crate::control::Conn;
use crate::supervisor::{ProcId, Stream};

pub(super) const SIGNALS: Token = Token(0);
pub(super) const CONTROL: Token = Token(1);
pub(super) const STDOUT: Token = Token(2);
/// The HTTP threads have parsed requests for the loop, or another thread (HTTP, a webhook's)
/// logged.
pub(super) const HTTP: Token = Token(3);
pub(super) const STDERR: Token = Token(4);
/// sd_notify messages from programs of type notify.
pub(super) const NOTIFY: Token = Token(5);
/// Dynamic tokens start here.
const FIRST_DYNAMIC: usize = 16;

/// What a token stands for.
pub(super) enum Source {
    /// SIGCHLD, SIGTERM, SIGHUP and the others, through signal-hook's self-pipe.
    Signals,
    /// The control socket's listener.
    Control,
    /// Kahi's stdout or stderr has room again.
    Console,
    /// The loop's waker: the HTTP threads', the webhooks' threads'.
    Http,
    /// The NOTIFY_SOCKET.
    Notify,
    /// A program's stdout or stderr; `pid` is the instance that was spawned with it; `grown`
    /// once the loop has made it larger (see `read_pipe`).
    Pipe { id: ProcId, stream: Stream, fd: OwnedFd, pid: i32, grown: bool },
    /// A process's stdin pipe has room (its fd is in the process's I/O record).
    Stdin(ProcId),
    /// A control connection.
    Conn(Box<Conn>),
    /// The socket of a process's tcp or http health check.
    Probe(ProcId),
    /// A socket program's listening socket (owned by `activation::Sockets`).
    Listen,
}

pub(super) struct Sources {
    table: HashMap<Token, Source>,
    next: usize,
}

impl Sources {
    pub(super) fn new() -> Sources {
        let table = HashMap::from([
            (SIGNALS, Source::Signals),
            (CONTROL, Source::Control),
            (STDOUT, Source::Console),
            (STDERR, Source::Console),
            (HTTP, Source::Http),
            (NOTIFY, Source::Notify),
        ]);
        Sources { table, next: FIRST_DYNAMIC }
    }

    /// A token never handed out before.
    pub(super) fn token(&mut self) -> Token {
        let t = Token(self.next);
        self.next += 1;
        t
    }

    /// A new token for `source`.
    pub(super) fn add(&mut self, source: Source) -> Token {
        let t = self.token();
        self.table.insert(t, source);
        t
    }

    pub(super) fn insert(&mut self, token: Token, source: Source) {
        self.table.insert(token, source);
    }

    pub(super) fn get(&self, token: Token) -> Option<&Source> {
        self.table.get(&token)
    }

    pub(super) fn get_mut(&mut self, token: Token) -> Option<&mut Source> {
        self.table.get_mut(&token)
    }

    pub(super) fn remove(&mut self, token: Token) -> Option<Source> {
        self.table.remove(&token)
    }

    /// Whether the token's events come from the programs (their signals, output, stdin,
    /// notifications and health checks), which a turn serves before its clients.
    pub(super) fn of_children(&self, token: Token) -> bool {
        matches!(
            self.table.get(&token),
            Some(
                Source::Signals
                    | Source::Pipe { .. }
                    | Source::Stdin(_)
                    | Source::Notify
                    | Source::Probe(_)
            )
        )
    }

    /// The control connection of a token.
    pub(super) fn conn(&mut self, token: Token) -> Option<&mut Conn> {
        match self.table.get_mut(&token) {
            Some(Source::Conn(c)) => Some(c),
            _ => None,
        }
    }

    /// The tokens whose source matches.
    pub(super) fn tokens(&self, keep: impl Fn(&Source) -> bool) -> Vec<Token> {
        self.table.iter().filter(|(_, s)| keep(s)).map(|(t, _)| *t).collect()
    }

    /// Drops the listening sockets' tokens that `live` no longer knows.
    pub(super) fn retain_listen(&mut self, live: impl Fn(Token) -> bool) {
        self.table.retain(|t, s| !matches!(s, Source::Listen) || live(*t));
    }

    pub(super) fn conns_mut(&mut self) -> impl Iterator<Item = &mut Conn> {
        self.table.values_mut().filter_map(|s| match s {
            Source::Conn(c) => Some(&mut **c),
            _ => None,
        })
    }
}
