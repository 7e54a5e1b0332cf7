//! The event loop: the one place that blocks. A reactor: it owns the `mio::Poll`, one table of
//! what every token stands for ([`sources`]), one heap of deadlines ([`timers`]), one record of
//! I/O per process ([`procio`]), the control connections and the supervisor, and it performs
//! the actions the pure modules decide on. Each job has its file:
//!
//! - `run`: the poll, the dispatch of its events by source, the end;
//! - `perform`: the supervisor's actions carried out (spawn, kill, spawn queues, instances);
//! - `reap`: signals, reaping, health checks and sd_notify, each an input for the supervisor;
//! - `output`: programs' output, read from the pipes through `logs::pipeline` to the sinks;
//! - `respond`: the loop as host of `api::dispatch`, the one dispatcher: responders, `settle`;
//! - `control_serve`: the control socket's clients;
//! - `http_serve`: requests the HTTP threads parsed, answered here;
//! - `listeners`: event listeners' pools, their stdout read as the protocol;
//! - `produce`: the events besides changes of state: groups, Kahi running, programs' output,
//!   ticks, remote communication;
//! - `webhooks`: webhooks on the bus, their events handed to their delivery threads.
//!
//! There is no periodic tick. The poll timeout is the earliest armed deadline, or none at all,
//! so an idle Kahi makes no wakeups. A source cut short by the per-iteration read budget is
//! re-driven with a zero timeout (mio is edge-triggered: an fd not drained to `WouldBlock`
//! would never be reported again).

mod control_serve;
mod http_serve;
mod listeners;
mod output;
mod perform;
mod procio;
mod produce;
mod reap;
mod respond;
mod run;
mod sources;
mod timers;
mod webhooks;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;

use crate::api::Waiter;
use crate::http::Http;
use crate::logs::console::Console;
use crate::logs::syslog::Syslog;
use crate::supervisor::{ProcId, Supervisor};
use crate::sys;

use http_serve::Feed;
use procio::ProcessIo;
use sources::Sources;
use timers::Timers;

/// Bytes read from one pipe per loop iteration before other sources get their turn.
const PIPE_BUDGET: usize = 256 * 1024;

/// A read of at least this much found the pipe full (a pipe holds 64 KiB unless grown)...
const PIPE_FULL: usize = 64 * 1024;
/// ...and its pipe is grown to this (the kernel's default pipe-max-size) where allowed...
const GROWN_PIPE: i32 = 1024 * 1024;
/// ...while fewer than this many are: what their programs have written and Kahi not yet read
/// stays under 64 MiB of kernel memory, however many programs flood.
const GROWN_PIPES_MAX: usize = 64;

/// Readiness events taken from one poll: each may be costly (a pipe's end, with its process
/// reaped), and a request waits for the rest of its turn.
const EVENTS_PER_TURN: usize = 256;

/// Client events served in a turn before a child's exit may put the rest off to the next
/// turn (see `EventLoop::deferred`).
const CLIENTS_BEFORE_YIELD: usize = 16;

/// Control clients accepted in one turn; the rest of the backlog waits for the next, so a
/// thousand clients at once hold the loop for a slice of their cost at a time.
const ACCEPTS_PER_TURN: usize = 64;

/// Exits found by a scan of the children in one turn of the loop, and the time the scan may
/// take; more are reaped in the next, with no wait between.
const REAP_BUDGET: usize = 256;
const REAP_SLICE: Duration = Duration::from_millis(5);

/// How long one turn of the loop may spend spawning (the processes of a large start, restarts
/// that fell due together) before it polls again: `kahi ctl` and the HTTP API are answered in
/// between. Only the spawns' own time counts, so a turn that also served a large status
/// still spawns its share, and no turn spawns for longer. A child's exit ends the slice
/// sooner (see `EventLoop::exited`).
const SPAWN_SLICE: Duration = Duration::from_millis(5);

pub struct EventLoop {
    poll: Poll,
    events: Events,
    signals: Signals,
    listener: UnixListener,
    sup: Supervisor,
    /// What each token stands for; pipes and control connections own their fds here.
    sources: Sources,
    /// Every deadline: processes' timers, partial lines' flushes.
    timers: Timers,
    /// Each process's pipes' state, log files, stdin, health check: forgotten in one remove.
    io: HashMap<ProcId, Box<ProcessIo>>,
    /// Exec health checks under way, by pid: the reaper's way back to their process.
    check_pids: HashMap<i32, ProcId>,
    /// Pipes whose read budget ran out: read again before blocking.
    pending_reads: HashSet<Token>,
    /// Clients' readiness events a child's exit put off to the next turn, in arrival order
    /// (edge-triggered: each is the only notice of its readiness). Tokens are never reused, so
    /// one whose source closed meanwhile finds nothing.
    deferred: Vec<(Token, bool, bool, bool)>,
    /// The last reap stopped at its budget: reap again before blocking.
    reap_pending: bool,
    /// The processes whose start failed for a shortage (EMFILE, EAGAIN) and waits to be tried
    /// again: the outage is warned of once, when the first is held back, and its end told once,
    /// when none is left (a start that slips through while others wait does not end it).
    spawn_short: HashSet<ProcId>,
    /// The running programs' pids, for a Kahi started after a crash of this one.
    state: sys::leftovers::StateFile,
    /// A spare fd, given up to accept (and turn away) a control client when Kahi is out of
    /// fds, and the warning of that shortage given once.
    reserve: Option<std::fs::File>,
    fd_shortage: bool,
    /// The control socket's backlog may hold more clients than one turn accepts.
    accept_more: bool,
    /// Spawns of a large start that did not fit in their turn, in order.
    spawn_queue: std::collections::VecDeque<ProcId>,
    /// Automatic restarts that did not fit in their turn (hundreds killed at once, a crash loop
    /// of programs in step): they go before `spawn_queue`.
    restart_queue: std::collections::VecDeque<ProcId>,
    /// The time this turn has spent spawning.
    spawn_spent: Duration,
    /// Where a pipe is read into, [`PIPE_BUDGET`] bytes: one buffer for all, rather than one
    /// zeroed for each read (an end of file included), which cost a debug build 0.3 ms a pipe.
    /// Its pages are touched only as far as reads fill it.
    read_buf: Box<[u8]>,
    /// Pipes grown to [`GROWN_PIPE`] and still open.
    grown_pipes: usize,
    /// Set by SIGCHLD's handler, cleared as a turn begins and by a scan of the children: a
    /// child has exited since. It ends the turn's spawns, so that a process killed while
    /// hundreds are being spawned is replaced in the next turn, not after all of them.
    exited: Arc<AtomicBool>,
    /// Parked starts, stops and restarts, and who gets the answer: by the token of their
    /// control connection, or a token of their own for HTTP.
    waiters: HashMap<Token, (respond::Responder, Waiter)>,
    /// Restarts whose client did not wait for them.
    detached: Vec<Waiter>,
    /// Connections following a log.
    followers: HashSet<Token>,
    /// Large replies being sent in pieces.
    pieces: HashMap<Token, crate::piecewise::Piecewise>,
    /// Connections with more to send than they were sent so far: a large reply's next piece,
    /// or the rest of a log a follower is behind on. Each gets more once its client has read
    /// most of what it has.
    behind: std::collections::BTreeSet<Token>,
    /// The daemon log's end when its followers were last fed.
    daemon_log_seen: u64,
    /// Control clients' users let in by group, as NSS answered a while ago.
    peers: control_serve::PeerCache,
    pid1: bool,
    /// Kahi runs detached (`--daemonize`): `console = "auto"` means off.
    daemonized: bool,
    /// Kahi's stdout: programs' lines in container mode, and the raw output of programs
    /// logging to `/dev/stdout`. (Its stderr buffer is shared with the logger:
    /// `console::stderr()`.)
    console: Console,
    /// Programs' lines to syslog, for programs that ask.
    syslog: Syslog,
    /// The console is behind: pipes are not read until it drains.
    paused: bool,
    /// Pipes left unread while paused.
    paused_reads: HashSet<Token>,
    /// Reading the pipe of a process that is gone while the console is blocked: it skips
    /// the console.
    console_off: bool,
    /// Bytes the console skipped so, reported once it drains.
    console_skipped: u64,
    /// Kahi's stdout and stderr flags before they were made non-blocking, restored at exit.
    std_flags: [Option<nix::fcntl::OFlag>; 2],
    /// The control socket's path as bound (an update cannot move it).
    socket: std::path::PathBuf,
    /// The HTTP listener, when `[server.http]` asks for one.
    http: Option<Http>,
    /// Server-Sent Events clients and what they follow.
    subscribers: Vec<(crate::http::Subscriber, Feed)>,
    /// Where events are published, a bounded queue per subscriber.
    bus: crate::events::Bus,
    /// Each tick's timer (`produce::TICKS`), while some subscriber takes that tick.
    ticks: [Option<produce::Tick>; 3],
    /// The event listeners' pools (each a subscriber of the bus), by listener name, with
    /// what the configuration asked of each.
    pools: HashMap<String, (crate::config::ListenerSpec, crate::events::listener::Pool)>,
    /// The NOTIFY_SOCKET of notify programs (None if it could not be bound).
    notify: Option<sys::notify::NotifySocket>,
    /// The listening sockets of socket programs.
    sockets: crate::activation::Sockets,
    /// Kahi's delegated cgroup: None until a program with cgroup limits starts, then Some(None)
    /// where there is none to be had.
    cgroups: Option<Option<sys::cgroup::Cgroups>>,
    /// Accept instances that are down, removed once their pipes are read to the end.
    finished_instances: HashSet<ProcId>,
    /// Wakes the loop from another thread: the HTTP front's, a webhook's (for what it logs).
    waker: Arc<mio::Waker>,
    /// The webhooks, each a subscriber of the bus with its delivery thread.
    webhooks: Vec<webhooks::Hook>,
    /// XML-RPC requests with a call to make next.
    xmlrpc: respond::XmlrpcQueue,
}

impl EventLoop {
    pub fn new(
        sup: Supervisor,
        listener: UnixListener,
        pid1: bool,
        daemonized: bool,
    ) -> io::Result<EventLoop> {
        // The spawn's fd slots: low numbers, taken before anything else is opened.
        sys::vfork::prepare();
        let poll = Poll::new()?;
        // The one waker (mio allows one per poll): the HTTP threads' and the webhooks'.
        let waker = Arc::new(mio::Waker::new(poll.registry(), sources::HTTP)?);
        let http = if sup.config.server.http.listen.is_empty() {
            None
        } else {
            let waker = Arc::clone(&waker);
            Some(Http::start(&sup.config.server.http, waker).map_err(io::Error::other)?)
        };
        let sup_socket = sup.config.server.socket.clone();
        let sup_syslog = sup.config.logging.syslog.clone();
        let sup_facility = sup.config.logging.syslog_facility;
        let std_flags =
            [run::watch_out(&poll, 1, sources::STDOUT), run::watch_out(&poll, 2, sources::STDERR)];
        let notify = match sys::notify::NotifySocket::bind(&sup.config.server.socket) {
            Ok(mut n) => {
                poll.registry().register(&mut n.sock, sources::NOTIFY, Interest::READABLE)?;
                Some(n)
            }
            Err(e) => {
                log::warn!(
                    "unable to bind the notify socket next to {}: {e}; programs of type notify will not be seen ready",
                    sup.config.server.socket.display()
                );
                None
            }
        };
        let signals: Vec<i32> = sys::signals::HANDLED
            .iter()
            .chain(sys::signals::FORWARDED)
            .map(|s| *s as i32)
            .collect();
        let mut signals = Signals::new(signals)?;
        poll.registry().register(&mut signals, sources::SIGNALS, Interest::READABLE)?;
        let exited = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGCHLD, Arc::clone(&exited))?;
        let mut listener = listener;
        poll.registry().register(&mut listener, sources::CONTROL, Interest::READABLE)?;
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(EVENTS_PER_TURN),
            signals,
            listener,
            sup,
            sources: Sources::new(),
            timers: Timers::default(),
            io: HashMap::new(),
            check_pids: HashMap::new(),
            pending_reads: HashSet::new(),
            deferred: Vec::new(),
            reap_pending: false,
            spawn_short: HashSet::new(),
            state: sys::leftovers::StateFile::new(&sup_socket),
            reserve: std::fs::File::open("/").ok(),
            fd_shortage: false,
            accept_more: false,
            spawn_queue: Default::default(),
            restart_queue: Default::default(),
            spawn_spent: Duration::ZERO,
            read_buf: vec![0; PIPE_BUDGET].into_boxed_slice(),
            grown_pipes: 0,
            exited,
            waiters: HashMap::new(),
            detached: Vec::new(),
            followers: HashSet::new(),
            pieces: HashMap::new(),
            behind: Default::default(),
            daemon_log_seen: 0,
            peers: Default::default(),
            pid1,
            daemonized,
            socket: sup_socket,
            console: Console::new(1),
            syslog: Syslog::new(sup_syslog, sup_facility),
            paused: false,
            paused_reads: HashSet::new(),
            console_off: false,
            console_skipped: 0,
            std_flags,
            http,
            subscribers: Vec::new(),
            bus: Default::default(),
            ticks: [None; 3],
            pools: HashMap::new(),
            notify,
            sockets: Default::default(),
            cgroups: None,
            finished_instances: HashSet::new(),
            waker,
            webhooks: Vec::new(),
            xmlrpc: Default::default(),
        })
    }

    /// A new token, never handed out before.
    fn token(&mut self) -> Token {
        self.sources.token()
    }

    /// The process's I/O record, made on first use.
    fn io(&mut self, id: ProcId) -> &mut ProcessIo {
        self.io.entry(id).or_default()
    }

    /// Forgets a process's I/O (it was removed): closes its log files and stdin, abandons its
    /// health check. Pipes still open are read to their end and then closed.
    fn forget(&mut self, id: ProcId) {
        self.close_stdin(id);
        self.cancel_check(id);
        self.io.remove(&id);
    }
}
