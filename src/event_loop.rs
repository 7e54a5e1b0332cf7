//! The event loop: the one place that blocks. It owns the `mio::Poll`, the token map, the timer
//! heap, the control connections and the supervisor, and it performs the actions the pure
//! modules decide on.
//!
//! There is no periodic tick. The poll timeout is the earliest armed deadline, or none at all,
//! so an idle Kahi makes no wakeups. A source cut short by the per-iteration read budget is
//! re-driven with a zero timeout (mio is edge-triggered: an fd not drained to `WouldBlock`
//! would never be reported again).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use mio::net::UnixListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use signal_hook_mio::v1_0::Signals;

use crate::api::{self, ApiError, ErrorCode, Handled, LogSource, Now, Reply, Request, Waiter};
use crate::config::LogSpec;
use crate::control::{self, Conn, Mode};
use crate::http::{self, Answer, Http, Route, Shape};
use crate::logs::ansi::Stripper;
use crate::logs::console::{self, Console, Lines, Origin};
use crate::logs::file::{LogFile, Written};
use crate::logs::mask;
use crate::logs::syslog::Syslog;
use crate::piecewise;
use crate::process::machine::{Action, Input, TimerKind};
use crate::supervisor::{ProcId, Stream, Supervisor};
use crate::sys;

/// The destinations of whole lines for one stream, borrowed from the loop.
struct LineSinks<'a> {
    console: Option<(&'a mut Vec<u8>, console::Format)>,
    syslog: Option<&'a mut Syslog>,
    /// The stream's bytes as they came, for a log file of `/dev/stdout` or `/dev/stderr`.
    raw: Option<&'a mut Vec<u8>>,
    pid: Option<i32>,
}

impl LineSinks<'_> {
    /// A line (without its newline), or a piece of one that goes on (`continued`).
    fn line(&mut self, origin: &Origin<'_>, line: &[u8], continued: bool) {
        if let Some((buf, format)) = &mut self.console {
            console::format_line(buf, *format, origin, line, continued);
        }
        if let Some(syslog) = &mut self.syslog {
            syslog.send(origin, self.pid, line, continued);
        }
        if let Some(raw) = &mut self.raw {
            raw.extend_from_slice(line);
            if !continued {
                raw.push(b'\n');
            }
        }
    }

    /// The stream's last bytes, which had no newline.
    fn last(&mut self, origin: &Origin<'_>, rest: &[u8]) {
        let raw = self.raw.take();
        self.line(origin, rest, false);
        if let Some(raw) = raw {
            raw.extend_from_slice(rest);
        }
    }
}

const SIGNALS: Token = Token(0);
const CONTROL: Token = Token(1);
const STDOUT: Token = Token(2);
/// The HTTP threads have parsed requests for the loop.
const HTTP: Token = Token(3);
const STDERR: Token = Token(4);
/// sd_notify messages from programs of type notify.
const NOTIFY: Token = Token(5);
/// Dynamic tokens start here and only ever grow, so a token is never reused.
const FIRST_DYNAMIC: usize = 16;

/// Bytes read from one pipe per loop iteration before other sources get their turn.
const PIPE_BUDGET: usize = 256 * 1024;

/// Readiness events taken from one poll: each may be costly (a pipe's end, with its process
/// reaped), and a request waits for the rest of its turn.
const EVENTS_PER_TURN: usize = 256;

/// Exits found by a scan of the children in one turn of the loop, and the time the scan may
/// take; more are reaped in the next, with no wait between.
const REAP_BUDGET: usize = 256;
const REAP_SLICE: std::time::Duration = std::time::Duration::from_millis(5);

/// How long one turn of the loop may spend spawning (the processes of a large start, restarts
/// that fell due together) before it polls again: `kahi ctl` and the HTTP API are answered in
/// between. A child's exit ends the slice sooner (see `EventLoop::exited`).
const SPAWN_SLICE: std::time::Duration = std::time::Duration::from_millis(10);

/// What a token stands for.
enum Source {
    /// A program's stdout or stderr; `pid` is the instance that was spawned with it.
    Pipe {
        id: ProcId,
        stream: Stream,
        fd: OwnedFd,
        pid: i32,
    },
    Conn(Box<Conn>),
}

pub struct EventLoop {
    poll: Poll,
    events: Events,
    signals: Signals,
    listener: UnixListener,
    sup: Supervisor,
    sources: HashMap<Token, Source>,
    next_token: usize,
    timers: BinaryHeap<Reverse<(Instant, ProcId, TimerKind)>>,
    /// Pipes whose read budget ran out: read again before blocking.
    pending_reads: HashSet<Token>,
    /// The last reap stopped at its budget: reap again before blocking.
    reap_pending: bool,
    /// Spawns are failing for a shortage (EMFILE, EAGAIN): warned once, until one succeeds.
    spawn_shortage: bool,
    /// The running programs' pids, for a Kahi started after a crash of this one.
    state: sys::leftovers::StateFile,
    /// A spare fd, given up to accept (and turn away) a control client when Kahi is out of
    /// fds, and the warning of that shortage given once.
    reserve: Option<std::fs::File>,
    fd_shortage: bool,
    /// Spawns of a large start that did not fit in their turn, in order.
    spawn_queue: std::collections::VecDeque<ProcId>,
    /// Automatic restarts that did not fit in their turn (hundreds killed at once, a crash loop
    /// of programs in step): they go before `spawn_queue`.
    restart_queue: std::collections::VecDeque<ProcId>,
    /// When this turn's time for spawns is up.
    spawn_until: Instant,
    /// Where a pipe is read into: one buffer for all, rather than 64 KiB zeroed for each read
    /// (an end of file included), which cost a debug build 0.3 ms a pipe.
    read_buf: Box<[u8]>,
    /// Set by SIGCHLD's handler, cleared as a turn begins and by a scan of the children: a
    /// child has exited since. It ends the turn's spawns, so that a process killed while
    /// hundreds are being spawned is replaced in the next turn, not after all of them.
    exited: Arc<AtomicBool>,
    /// Connections with a parked start/stop/restart.
    waiters: HashMap<Token, Waiter>,
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
    /// Open log files of program streams.
    log_files: HashMap<(ProcId, Stream), LogFile>,
    /// How each stream's log file fares: what it dropped, and whether it fails now.
    log_health: HashMap<(ProcId, Stream), LogHealth>,
    pid1: bool,
    /// Kahi runs detached (`--daemonize`): `console = "auto"` means off.
    daemonized: bool,
    /// Kahi's stdout: programs' lines in container mode, and the raw output of programs
    /// logging to `/dev/stdout`. (Its stderr buffer is shared with the logger:
    /// `console::stderr()`.)
    console: Console,
    /// Programs' lines to syslog, for programs that ask.
    syslog: Syslog,
    /// Partial lines per program stream, for the console.
    lines: HashMap<(ProcId, Stream), Lines>,
    /// Partial lines per program stream whose output is masked.
    mask_lines: HashMap<(ProcId, Stream), Lines>,
    /// Escape-sequence state per program stream with `strip_ansi`.
    ansi: HashMap<(ProcId, Stream), Stripper>,
    /// Streams holding a partial line, and when it goes out if no more output comes.
    held: HashMap<(ProcId, Stream), Instant>,
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
    /// HTTP requests with a parked start/stop/restart, by the token of their waiter.
    http_waiting: HashMap<Token, (tiny_http::Request, Shape)>,
    /// Server-Sent Events clients and what they follow.
    subscribers: Vec<(http::Subscriber, Feed)>,
    /// Health checks under way, by process; their sockets' tokens; their commands' pids.
    checks: HashMap<ProcId, crate::health::Check>,
    check_tokens: HashMap<Token, ProcId>,
    check_pids: HashMap<i32, ProcId>,
    /// The NOTIFY_SOCKET of notify programs (None if it could not be bound).
    notify: Option<sys::notify::NotifySocket>,
    /// Stdin pipes of running processes with `stdin_pipe`, and their tokens.
    stdins: HashMap<ProcId, StdinPipe>,
    stdin_tokens: HashMap<Token, ProcId>,
    /// The listening sockets of socket programs.
    sockets: crate::activation::Sockets,
    /// Kahi's delegated cgroup: None until a program with cgroup limits starts, then Some(None)
    /// where there is none to be had.
    cgroups: Option<Option<sys::cgroup::Cgroups>>,
    /// OOM kills of each running limited process's group when it started.
    oom_kills: HashMap<ProcId, u64>,
    /// The connection of each accept instance not spawned yet.
    instance_conns: HashMap<ProcId, OwnedFd>,
    /// Accept instances that are down, removed once their pipes are read to the end.
    finished_instances: HashSet<ProcId>,
}

/// Kahi's end of a process's stdin pipe, and what waits to go into it.
/// How a stream's log file fares, across its reopenings: for the warnings and /metrics.
#[derive(Debug, Default)]
struct LogHealth {
    /// Bytes of output that never reached the file.
    dropped_bytes: u64,
    /// While the file cannot be opened or written (one outage, warned once): the bytes and
    /// lines dropped since it began. It ends with the first write that succeeds.
    outage: Option<(u64, u64)>,
    /// The output dropped while the file could not be opened ended mid-line: once it is open,
    /// the rest of that line is dropped too, so that the file gets no tail of a line.
    mid_line: bool,
}

struct StdinPipe {
    fd: OwnedFd,
    token: Token,
    pending: Vec<u8>,
}

/// Bytes a process's stdin may hold back before writes to it are refused.
const STDIN_BUFFER: usize = 64 << 10;

/// What an event-stream client follows.
enum Feed {
    /// Events of these types (all when empty).
    Events(Vec<String>),
    /// A process's log, from this offset on.
    Log { id: ProcId, stream: Stream, offset: u64 },
}

/// The event types of `/api/v1/events/stream`.
pub const EVENT_TYPES: &[&str] = &["state", "health", "update", "shutdown"];

impl EventLoop {
    pub fn new(
        sup: Supervisor,
        listener: UnixListener,
        pid1: bool,
        daemonized: bool,
    ) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let http = if sup.config.server.http.listen.is_empty() {
            None
        } else {
            let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), HTTP)?);
            Some(Http::start(&sup.config.server.http, waker).map_err(io::Error::other)?)
        };
        let sup_socket = sup.config.server.socket.clone();
        let sup_syslog = sup.config.logging.syslog.clone();
        let sup_facility = sup.config.logging.syslog_facility;
        let std_flags = [watch_out(&poll, 1, STDOUT), watch_out(&poll, 2, STDERR)];
        let notify = match sys::notify::NotifySocket::bind(&sup.config.server.socket) {
            Ok(mut n) => {
                poll.registry().register(&mut n.sock, NOTIFY, Interest::READABLE)?;
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
        poll.registry().register(&mut signals, SIGNALS, Interest::READABLE)?;
        let exited = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGCHLD, Arc::clone(&exited))?;
        let mut listener = listener;
        poll.registry().register(&mut listener, CONTROL, Interest::READABLE)?;
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(EVENTS_PER_TURN),
            signals,
            listener,
            sup,
            sources: HashMap::new(),
            next_token: FIRST_DYNAMIC,
            timers: BinaryHeap::new(),
            pending_reads: HashSet::new(),
            reap_pending: false,
            spawn_shortage: false,
            state: sys::leftovers::StateFile::new(&sup_socket),
            reserve: std::fs::File::open("/").ok(),
            fd_shortage: false,
            spawn_queue: Default::default(),
            restart_queue: Default::default(),
            spawn_until: Instant::now() + SPAWN_SLICE,
            read_buf: vec![0; 64 * 1024].into_boxed_slice(),
            exited,
            waiters: HashMap::new(),
            detached: Vec::new(),
            followers: HashSet::new(),
            pieces: HashMap::new(),
            behind: Default::default(),
            daemon_log_seen: 0,
            log_files: HashMap::new(),
            log_health: HashMap::new(),
            pid1,
            daemonized,
            socket: sup_socket,
            console: Console::new(1),
            syslog: Syslog::new(sup_syslog, sup_facility),
            lines: HashMap::new(),
            mask_lines: HashMap::new(),
            ansi: HashMap::new(),
            held: HashMap::new(),
            paused: false,
            paused_reads: HashSet::new(),
            console_off: false,
            console_skipped: 0,
            std_flags,
            http,
            http_waiting: HashMap::new(),
            subscribers: Vec::new(),
            notify,
            checks: HashMap::new(),
            check_tokens: HashMap::new(),
            check_pids: HashMap::new(),
            stdins: HashMap::new(),
            stdin_tokens: HashMap::new(),
            sockets: Default::default(),
            cgroups: None,
            oom_kills: HashMap::new(),
            instance_conns: HashMap::new(),
            finished_instances: HashSet::new(),
        })
    }

    /// Runs until shutdown completes; returns the daemon's exit code.
    pub fn run(mut self) -> i32 {
        let now = Instant::now();
        self.spawn_until = now + SPAWN_SLICE;
        self.sync_sockets();
        self.sup.start_autostart(now);
        self.perform(now);
        loop {
            let timeout = if self.pending_reads.is_empty()
                && self.spawn_queue.is_empty()
                && self.restart_queue.is_empty()
                && !self.reap_pending
                && !self.sup.shutdown_busy()
                && !self.behind_ready()
            {
                // The earliest deadline: a timer, the state file, a partial line's flush.
                let timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
                let held = if self.paused { None } else { self.held.values().min().copied() };
                [timer, self.state.due(), held]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|at| at.saturating_duration_since(Instant::now()))
            } else {
                Some(std::time::Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut self.events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("unable to poll: {e}");
                }
                continue;
            }
            let now = Instant::now();
            self.spawn_until = now + SPAWN_SLICE;
            // The exits that ended the last turn's spawns are among this turn's events.
            self.exited.store(false, Ordering::SeqCst);
            let ready: Vec<(Token, bool, bool, bool)> = self
                .events
                .iter()
                .map(|e| {
                    (
                        e.token(),
                        e.is_readable() || e.is_read_closed() || e.is_error(),
                        e.is_writable(),
                        e.is_write_closed(),
                    )
                })
                .collect();
            for (token, readable, writable, hung_up) in ready {
                match token {
                    SIGNALS => self.on_signals(now),
                    CONTROL => self.accept(),
                    STDOUT | STDERR => self.flush_console(),
                    NOTIFY => self.read_notify(now),
                    HTTP => self.serve_http(now),
                    t if self.check_tokens.contains_key(&t) => self.drive_check(t, now),
                    t if self.sockets.owner(t).is_some() => self.on_connection(t, now),
                    t => {
                        if readable {
                            self.on_readable(t, now);
                        }
                        if writable {
                            match self.stdin_tokens.get(&t) {
                                Some(id) => self.flush_stdin(*id),
                                None => self.flush_conn(t),
                            }
                        }
                        if hung_up && self.conn(t).is_some() {
                            // The client is gone for good (not merely done sending): a
                            // `tail -f` on a quiet program would otherwise hold it forever.
                            self.close(t);
                        }
                    }
                }
                self.perform(now);
            }
            for token in std::mem::take(&mut self.pending_reads) {
                self.read_pipe(token);
            }
            if self.reap_pending {
                self.reap(now);
            }
            self.fire_timers(now);
            self.flush_held(now);
            self.sup.continue_shutdown(now);
            self.perform(now);
            self.spawn_queued();
            self.state.flush(Instant::now());
            self.remove_instances(now);
            self.feed_daemon_log_followers();
            self.feed_behind(Instant::now());
            if self.sup.shutdown_complete() {
                return self.finish();
            }
        }
    }

    // ---- actions ----

    /// Performs every queued action, feeding outcomes back, then answers settled waiters.
    fn perform(&mut self, now: Instant) {
        while let Some((id, action)) = self.sup.actions.pop_front() {
            match action {
                // Spawns go at once while this turn has time for them: an automatic restart
                // ahead of those queued, the spawns of a start asked for in order. After that
                // they wait in their queue, restarts ahead of a start.
                Action::Spawn => {
                    let restart = self.sup.take_urgent(id);
                    let queued = !self.restart_queue.is_empty() || !self.spawn_queue.is_empty();
                    if self.spawn_time_left() && (restart || !queued) {
                        self.spawn(id)
                    } else if restart {
                        self.restart_queue.push_back(id)
                    } else {
                        self.spawn_queue.push_back(id)
                    }
                }
                Action::Kill { signal, group } => self.kill(id, signal, group),
                Action::SetTimer(kind, at) => self.timers.push(Reverse((at, id, kind))),
                Action::Changed { from, to, pid, exit, expected, tries, next_start } => {
                    if !to.is_running() && to != crate::process::State::Stopping {
                        self.close_stdin(id);
                    }
                    // A socket program listens again: a connection may be waiting already.
                    if to == crate::process::State::Starting
                        && let Some(e) = self.sup.get(id)
                        && e.spec.kind == crate::config::Kind::Socket
                        && e.proc.held
                        && self.sockets.pending(&e.spec.namespec())
                    {
                        if e.spec.accept {
                            self.accept_instances(id, now);
                        } else {
                            self.sup.activate(id, now);
                        }
                    }
                    if let Some(e) = self.sup.get(id) {
                        log::debug!("{}: {from} -> {to}", e.spec.namespec());
                        if !self.subscribers.is_empty() {
                            let event = serde_json::json!({
                                "ts": crate::timefmt::rfc3339_now(),
                                "name": e.spec.namespec(),
                                "group": e.spec.group,
                                "program": e.spec.program,
                                "from": from,
                                "to": to,
                                "pid": pid,
                                "exitstatus": exit.map(|s| s.code()),
                                "expected": expected,
                                "tries": tries,
                                "next_start_in": next_start.map(|at| {
                                    api::round_secs(at.saturating_duration_since(now))
                                }),
                                "oom_killed": e.proc.oom_killed,
                            });
                            self.emit("state", event);
                        }
                    }
                }
                Action::Log(level, line) => log::log!(level, "{line}"),
                Action::CheckHealth => self.start_check(id, now),
                Action::CancelHealthCheck => self.cancel_check(id),
                Action::HealthChanged(h) => {
                    if let Some(e) = self.sup.get(id) {
                        let event = serde_json::json!({
                            "ts": crate::timefmt::rfc3339_now(),
                            "name": e.spec.namespec(),
                            "group": e.spec.group,
                            "program": e.spec.program,
                            "health": h,
                        });
                        self.emit("health", event);
                    }
                }
            }
        }
        if !self.sup.changed.is_empty() {
            for id in &self.sup.changed {
                if self.sup.get(*id).is_some_and(|e| e.spec.instance_of.is_some()) {
                    self.finished_instances.insert(*id);
                }
            }
            self.sup.changed.clear();
            // Processes an update removed: close their files.
            let sup = &self.sup;
            self.log_files.retain(|(id, _), _| sup.get(*id).is_some());
            self.log_health.retain(|(id, _), _| sup.get(*id).is_some());
            self.poll_waiters(now);
        }
    }

    fn spawn(&mut self, id: ProcId) {
        let now = Instant::now();
        let Some(spec) = self.sup.get(id).map(|e| e.spec.clone()) else { return };
        let sockets = match self.sockets.fds(&spec.namespec()) {
            Ok(fds) => fds,
            Err(error) => {
                return self.sup.input(id, Input::SpawnFailed { error, transient: false }, now);
            }
        };
        let joined = self.join_cgroup(id, &spec);
        let cgroup = joined.as_ref().map(|j| j.procs.as_raw_fd());
        let notify = self.notify.as_ref().map(|n| n.path());
        // An instance of an accept program: its connection is stdin, stdout and fd 3. Kahi's
        // copy is closed once the spawn is done.
        let connection = self.instance_conns.remove(&id);
        let raw = connection.as_ref().map(|c| [c.as_raw_fd()]);
        let sockets = raw.as_ref().map_or(&sockets[..], |r| &r[..]);
        let die_with_kahi = self.sup.config.server.kill_orphans;
        let given =
            sys::spawn::Given { sockets, cgroup, connection: raw.map(|r| r[0]), die_with_kahi };
        match sys::spawn::spawn(&spec, notify, given) {
            Ok(child) => {
                self.state.spawned(child.pid, spec.namespec(), now);
                if std::mem::take(&mut self.spawn_shortage) {
                    log::info!("starts succeed again ('{}' was started)", spec.namespec());
                }
                // The log files exist from the start, as operators expect to find them.
                let _ = self.log_file(id, Stream::Stdout);
                let _ = self.log_file(id, Stream::Stderr);
                self.add_pipe(id, Stream::Stdout, child.stdout, child.pid);
                if let Some(err) = child.stderr {
                    self.add_pipe(id, Stream::Stderr, err, child.pid);
                }
                self.close_stdin(id);
                if let Some(fd) = child.stdin {
                    let token = self.token();
                    let watched = self.poll.registry().register(
                        &mut SourceFd(&fd.as_raw_fd()),
                        token,
                        Interest::WRITABLE,
                    );
                    if watched.is_ok() {
                        self.stdin_tokens.insert(token, id);
                        self.stdins.insert(id, StdinPipe { fd, token, pending: Vec::new() });
                    }
                }
                // The time of this spawn, not of the turn: startsecs counts from here.
                self.sup.input(id, Input::Spawned { pid: child.pid }, Instant::now());
            }
            Err(error) => {
                let transient = error.transient();
                if transient && !self.spawn_shortage {
                    self.spawn_shortage = true;
                    log::warn!(
                        "unable to start '{}': {}; starts are tried again until it passes (see [server] minfds)",
                        spec.namespec(),
                        error.message
                    );
                }
                let error = error.message;
                self.sup.input(id, Input::SpawnFailed { error, transient }, Instant::now())
            }
        }
    }

    /// Whether this turn may spawn on: its slice is not used up, and no child has exited since
    /// the turn began (or the last scan of the children).
    fn spawn_time_left(&self) -> bool {
        Instant::now() < self.spawn_until && !self.exited.load(Ordering::SeqCst)
    }

    /// Queued restarts, then spawns queued by a large start, for a slice of this turn: a full
    /// one whatever else the turn did (a client polling status must not starve the start), and
    /// one spawn at least (a storm of exits must not either).
    fn spawn_queued(&mut self) {
        if self.restart_queue.is_empty() && self.spawn_queue.is_empty() {
            return;
        }
        self.spawn_until = Instant::now() + SPAWN_SLICE;
        loop {
            let Some(id) = self.restart_queue.pop_front().or_else(|| self.spawn_queue.pop_front())
            else {
                return;
            };
            let now = Instant::now();
            match self.sup.get(id).map(|e| (e.proc.state, e.proc.pid)) {
                // Stopped before its turn came: nothing to spawn, nothing to kill.
                Some((crate::process::State::Stopping, None)) => self.sup.input(
                    id,
                    Input::SpawnFailed {
                        error: "stopped before its spawn".into(),
                        transient: false,
                    },
                    now,
                ),
                Some(_) => self.spawn(id),
                None => {}
            }
            self.perform(now);
            if !self.spawn_time_left() {
                return;
            }
        }
    }

    fn add_pipe(&mut self, id: ProcId, stream: Stream, fd: OwnedFd, pid: i32) {
        let token = self.token();
        if let Err(e) =
            self.poll.registry().register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)
        {
            log::warn!(
                "unable to watch the {} pipe of process {id}: {e}; its output is lost",
                stream.name()
            );
            return;
        }
        self.sources.insert(token, Source::Pipe { id, stream, fd, pid });
    }

    fn kill(&mut self, id: ProcId, signal: Signal, group: bool) {
        let Some(e) = self.sup.get(id) else { return };
        let Some(pid) = e.proc.pid else { return };
        let result = if group {
            killpg(Pid::from_raw(pid), signal)
        } else {
            kill(Pid::from_raw(pid), signal)
        };
        match result {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(err) => log::warn!(
                "unable to send {} to '{}' (pid {pid}): {err}",
                signal.as_str(),
                e.spec.namespec()
            ),
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, id, kind))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let current = self.sup.get(id).is_some_and(|e| e.proc.timers.is_current(kind, at));
            if current {
                self.sup.input(id, Input::Timer(kind), now);
                self.perform(now);
            }
        }
    }

    /// The cgroup a process with memory_max, cpu_max or pids_max joins as it starts; None
    /// without such limits, or where Kahi cannot make cgroups (said once).
    fn join_cgroup(
        &mut self,
        id: ProcId,
        spec: &crate::config::ProcessSpec,
    ) -> Option<sys::cgroup::Joined> {
        if spec.cgroup.is_empty() {
            return None;
        }
        let cgroups = self.cgroups.get_or_insert_with(|| {
            sys::cgroup::Cgroups::delegate()
                .map_err(|e| {
                    log::warn!(
                        "memory_max, cpu_max and pids_max are not applied: no writable cgroup v2 group for Kahi ({e})"
                    )
                })
                .ok()
        });
        let cgroups = cgroups.as_ref()?;
        match cgroups.prepare(&spec.namespec(), &spec.cgroup) {
            Ok(joined) => {
                self.oom_kills.insert(id, joined.oom_kills);
                Some(joined)
            }
            Err(e) => {
                log::warn!("{}: limits not applied: {e}", spec.namespec());
                None
            }
        }
    }

    /// Binds the sockets of new socket programs, and closes those of removed ones.
    fn sync_sockets(&mut self) {
        let next = &mut self.next_token;
        let mut token = || {
            let t = Token(*next);
            *next += 1;
            t
        };
        self.sockets.sync(&self.sup, self.poll.registry(), &mut token);
    }

    /// A connection arrived on a socket program's socket.
    fn on_connection(&mut self, token: Token, now: Instant) {
        let Some(name) = self.sockets.owner(token) else { return };
        let Some(e) = self.sup.iter().find(|e| e.spec.namespec() == name) else { return };
        let id = e.id;
        if e.spec.accept {
            self.accept_instances(id, now);
        } else {
            self.sup.activate(id, now);
        }
    }

    /// Starts an instance of the accept program `template` for each waiting connection, up to
    /// its max_instances; the rest wait in the backlog. Only while the program is armed (not
    /// stopped).
    fn accept_instances(&mut self, template: ProcId, now: Instant) {
        let Some(e) = self.sup.get(template) else { return };
        if !e.proc.held || !e.spec.accept || self.sup.is_shutting_down() {
            return;
        }
        let (name, max) = (e.spec.namespec(), e.spec.max_instances as usize);
        while self.sup.instances(&name) < max {
            let Some(conn) = self.sockets.accept(&name) else { break };
            // Spawned when the Start below is performed, which takes the connection.
            let id = self.sup.add_instance(template, now);
            if let Some(id) = id {
                self.instance_conns.insert(id, conn);
            }
        }
    }

    /// Removes instances that are down once their output is read to the end, and lets the
    /// next waiting connections in.
    fn remove_instances(&mut self, now: Instant) {
        if self.finished_instances.is_empty() {
            return;
        }
        let mut templates = HashSet::new();
        for id in std::mem::take(&mut self.finished_instances) {
            let piped =
                self.sources.values().any(|s| matches!(s, Source::Pipe { id: i, .. } if *i == id));
            let template = self.sup.get(id).and_then(|e| e.spec.instance_of.clone());
            if piped || !self.sup.remove_instance(id) {
                self.finished_instances.insert(id);
                continue;
            }
            self.instance_conns.remove(&id);
            self.log_files.retain(|(i, _), _| *i != id);
            self.log_health.retain(|(i, _), _| *i != id);
            templates.extend(template);
        }
        for name in templates {
            let id = self.sup.iter().find(|e| e.spec.namespec() == name).map(|e| e.id);
            if let Some(id) = id
                && self.sockets.pending(&name)
            {
                self.accept_instances(id, now);
            }
        }
        self.perform(now);
    }

    /// Whether the OOM killer ended the process that just exited, from its cgroup's
    /// memory.events.
    fn note_oom(&mut self, id: ProcId) {
        let (Some(before), Some(Some(cgroups))) = (self.oom_kills.remove(&id), &self.cgroups)
        else {
            return;
        };
        let Some(e) = self.sup.get_mut(id) else { return };
        let after = cgroups.oom_kills(&e.spec.namespec());
        e.proc.oom_killed = after > before;
        if e.proc.oom_killed {
            log::warn!(
                "{} was killed by the kernel's OOM killer (memory_max {} bytes)",
                e.spec.namespec(),
                e.spec.cgroup.memory_max.unwrap_or(0)
            );
        }
    }

    fn token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }

    // ---- signals ----

    fn on_signals(&mut self, now: Instant) {
        let got: Vec<i32> = self.signals.pending().collect();
        for sig in got {
            let Ok(signal) = Signal::try_from(sig) else { continue };
            match signal {
                // At the end of the turn: the pipes that closed in it name their processes,
                // which are reaped by pid, cheaper than a scan of every child.
                Signal::SIGCHLD => self.reap_pending = true,
                Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT => {
                    if !self.sup.is_shutting_down() {
                        log::info!("received {}, stopping every program", signal.as_str());
                    }
                    self.shutdown(now);
                }
                Signal::SIGHUP => {
                    log::info!("received SIGHUP, reloading the configuration");
                    match self.config_reply(api::ConfigUse::Update, now) {
                        Ok(_) => {}
                        Err(e) => {
                            log::error!("configuration not reloaded, nothing changed:\n{}", e.error)
                        }
                    }
                }
                Signal::SIGUSR2 => self.reopen_logs(),
                other => self.forward(other),
            }
        }
    }

    fn reap(&mut self, now: Instant) {
        // Cleared before the scan: an exit after it sets the flag again.
        self.exited.store(false, Ordering::SeqCst);
        let (reaped, all) = sys::reap::reap(REAP_BUDGET, Some(Instant::now() + REAP_SLICE));
        // More may be waiting: the next turn reaps on, without waiting for a signal.
        self.reap_pending = !all;
        for (pid, status) in reaped {
            self.reaped(pid, status, now);
        }
        self.after_reaping(now);
    }

    /// One child was reaped: its process (or health check) hears of it.
    fn reaped(&mut self, pid: i32, status: crate::process::ExitStatus, now: Instant) {
        self.state.exited(pid, now);
        match self.sup.by_pid(pid) {
            Some(id) => {
                self.note_oom(id);
                self.sup.input(id, Input::Exited(status), now);
                if self.paused {
                    // Its pipes are read to the end now, console or not.
                    let sources = &self.sources;
                    let mine: Vec<Token> = self
                        .paused_reads
                        .iter()
                        .copied()
                        .filter(|t| {
                            matches!(sources.get(t), Some(Source::Pipe { pid: p, .. }) if *p == pid)
                        })
                        .collect();
                    for t in mine {
                        self.paused_reads.remove(&t);
                        self.pending_reads.insert(t);
                    }
                }
            }
            None => match self.check_pids.remove(&pid) {
                Some(id) => {
                    self.checks.remove(&id);
                    let ok = status == crate::process::ExitStatus::Exited(0);
                    let detail = status.to_string();
                    self.sup.input(id, Input::HealthResult { ok, detail }, now);
                }
                None => log::debug!("reaped unknown pid {pid} ({status})"),
            },
        }
        self.perform(now);
    }

    /// A critical process that exited ends everything.
    fn after_reaping(&mut self, now: Instant) {
        if let Some((name, code)) = &self.sup.critical_exit
            && !self.sup.is_shutting_down()
        {
            log::info!("critical program {name} exited with status {code}, stopping every program");
            self.shutdown(now);
        }
    }

    // ---- health checks ----

    /// Starts the health check of a process; one that cannot start is a failure at once.
    fn start_check(&mut self, id: ProcId, now: Instant) {
        self.cancel_check(id);
        let Some(probe) =
            self.sup.get(id).and_then(|e| e.spec.healthcheck.as_ref()).map(|h| h.probe.clone())
        else {
            return;
        };
        match crate::health::start(&probe) {
            Ok(mut check) => {
                match &mut check {
                    crate::health::Check::Exec { pid } => {
                        self.check_pids.insert(*pid, id);
                    }
                    crate::health::Check::Socket { stream, .. } => {
                        let token = self.token();
                        if let Err(e) = self.poll.registry().register(
                            stream,
                            token,
                            Interest::READABLE | Interest::WRITABLE,
                        ) {
                            let detail = format!("unable to watch the check's socket: {e}");
                            self.sup.input(id, Input::HealthResult { ok: false, detail }, now);
                            return;
                        }
                        self.check_tokens.insert(token, id);
                    }
                }
                self.checks.insert(id, check);
            }
            Err(detail) => self.sup.input(id, Input::HealthResult { ok: false, detail }, now),
        }
    }

    /// Abandons a process's check under way: a command is killed, a socket closed.
    fn cancel_check(&mut self, id: ProcId) {
        let Some(check) = self.checks.remove(&id) else { return };
        match check {
            crate::health::Check::Exec { pid } => {
                self.check_pids.remove(&pid);
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            crate::health::Check::Socket { mut stream, .. } => {
                self.check_tokens.retain(|_, v| *v != id);
                let _ = self.poll.registry().deregister(&mut stream);
            }
        }
    }

    /// A check's socket is ready: move it on, and report once it is decided.
    fn drive_check(&mut self, token: Token, now: Instant) {
        let Some(&id) = self.check_tokens.get(&token) else { return };
        let Some(check) = self.checks.get_mut(&id) else { return };
        if let crate::health::Progress::Done { ok, detail } = check.drive() {
            self.cancel_check(id);
            self.sup.input(id, Input::HealthResult { ok, detail }, now);
        }
    }

    /// Pass a signal on to every running program (whether or not Kahi is PID 1, so that a
    /// signal meant for the programs never ends the daemon).
    fn forward(&mut self, signal: Signal) {
        for e in self.sup.iter() {
            if let Some(pid) = e.proc.pid
                && let Err(err) = kill(Pid::from_raw(pid), signal)
                && err != nix::errno::Errno::ESRCH
            {
                log::warn!(
                    "unable to forward {} to '{}': {err}",
                    signal.as_str(),
                    e.spec.namespec()
                );
            }
        }
    }

    /// sd_notify messages: each from the main pid of a supervised process goes to it.
    fn read_notify(&mut self, now: Instant) {
        while let Some((pid, notices)) = self.notify.as_ref().and_then(|n| n.recv()) {
            let Some(id) = self.sup.by_pid(pid) else {
                log::debug!(
                    "notify message from pid {pid}, which is no program's main pid: ignored"
                );
                continue;
            };
            for n in notices {
                self.sup.input(id, Input::Notify(n), now);
            }
            self.perform(now);
        }
    }

    // ---- pipes ----

    fn on_readable(&mut self, token: Token, now: Instant) {
        match self.sources.get(&token) {
            Some(Source::Pipe { .. }) => self.read_pipe(token),
            Some(Source::Conn(_)) => self.read_conn(token, now),
            None => {}
        }
    }

    /// Reads a child's pipe until it would block, the budget runs out, or EOF.
    fn read_pipe(&mut self, token: Token) {
        let Some(Source::Pipe { id, stream, pid, .. }) = self.sources.get(&token) else { return };
        let (id, stream, pid) = (*id, *stream, *pid);
        // The instance that writes it is gone (reaped): nothing to hold back any more.
        let gone = self.sup.get(id).is_none_or(|e| e.proc.pid != Some(pid));
        if self.paused && !gone {
            // Back-pressure: the program blocks on its full pipe until the console drains.
            self.paused_reads.insert(token);
            return;
        }
        // A process that has exited cannot be held back: its last output is read now, so
        // that its pipes close, into the ring and its log file; the blocked console skips it
        // (and says so once it drains).
        self.console_off = self.paused;
        let Some(Source::Pipe { fd, .. }) = self.sources.get(&token) else { return };
        let mut data: Vec<u8> = Vec::new();
        let mut eof = false;
        loop {
            match nix::unistd::read(fd, &mut self.read_buf[..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    data.extend_from_slice(&self.read_buf[..n]);
                    if data.len() >= PIPE_BUDGET {
                        self.pending_reads.insert(token);
                        break;
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    log::warn!("unable to read the {} pipe of process {id}: {e}", stream.name());
                    eof = true;
                    break;
                }
            }
        }
        if !data.is_empty() {
            if self.console_off {
                self.console_skipped += data.len() as u64;
            }
            self.output(id, stream, &data, false);
        }
        if eof {
            self.end_of_output(id, stream);
        }
        self.console_off = false;
        if self.paused && !eof {
            // Read once, to what is there: a grandchild that keeps it open waits for the
            // console like everyone else.
            self.pending_reads.remove(&token);
            self.paused_reads.insert(token);
        }
        if eof {
            if let Some(Source::Pipe { fd, .. }) = self.sources.remove(&token) {
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd.as_raw_fd()));
            }
            self.pending_reads.remove(&token);
            // A pipe closes when its process exits, as a rule: look at that one child now,
            // rather than leave it to a scan of them all on SIGCHLD.
            if !gone && let Some(status) = sys::reap::reap_pid(pid) {
                let now = Instant::now();
                self.reaped(pid, status, now);
                self.after_reaping(now);
            }
        }
    }

    /// Output from a program: into its ring buffer and log file, and to whoever follows it.
    /// `last`: the pipe closed, so a held partial line goes out too.
    fn output(&mut self, id: ProcId, stream: Stream, data: &[u8], last: bool) {
        let Some(e) = self.sup.get(id) else { return };
        let key = (id, stream);
        let stripped;
        let data = if e.spec.strip_ansi {
            let mut out = Vec::with_capacity(data.len());
            self.ansi.entry(key).or_default().strip(data, &mut out);
            if last {
                self.ansi.remove(&key);
            }
            stripped = out;
            &stripped[..]
        } else {
            data
        };
        if e.spec.secrets.is_empty() {
            self.deliver(id, stream, data, last);
        } else {
            // Masking works on whole lines, so a secret split across two reads is still found.
            let secrets = &e.spec.secrets;
            let max = self.sup.config.logging.max_line_bytes;
            let mut masked = Vec::with_capacity(data.len());
            let lines = self.mask_lines.entry(key).or_default();
            lines.push(data, max, |line, continued| {
                mask::mask_into(&mut masked, line, secrets);
                if !continued {
                    masked.push(b'\n');
                }
            });
            if last {
                if let Some(rest) = lines.finish() {
                    mask::mask_into(&mut masked, &rest, secrets);
                }
                self.mask_lines.remove(&key);
            }
            self.deliver(id, stream, &masked, last);
        }
        self.hold(key);
    }

    /// Arms (or re-arms: the wait is for quiet) the flush of a stream's partial line.
    fn hold(&mut self, key: (ProcId, Stream)) {
        let partial =
            |m: &HashMap<(ProcId, Stream), Lines>| m.get(&key).is_some_and(|l| l.has_partial());
        let wait = self.sup.config.logging.partial_line_secs;
        if !wait.is_zero() && (partial(&self.mask_lines) || partial(&self.lines)) {
            self.held.insert(key, Instant::now() + wait);
        } else {
            self.held.remove(&key);
        }
    }

    /// Writes out the partial lines that have been quiet for `partial_line_secs`.
    fn flush_held(&mut self, now: Instant) {
        // While paused, the rest of a line may be waiting in its pipe, unread by Kahi.
        if self.held.is_empty() || self.paused {
            return;
        }
        let due: Vec<(ProcId, Stream)> =
            self.held.iter().filter(|(_, at)| **at <= now).map(|(k, _)| *k).collect();
        for key @ (id, stream) in due {
            self.held.remove(&key);
            if let Some(rest) = self.mask_lines.get_mut(&key).and_then(Lines::finish) {
                let Some(e) = self.sup.get(id) else { continue };
                let mut masked = Vec::with_capacity(rest.len());
                mask::mask_into(&mut masked, &rest, &e.spec.secrets);
                self.deliver(id, stream, &masked, false);
            }
            if let Some(rest) = self.lines.get_mut(&key).and_then(Lines::finish) {
                self.line_sinks(id, stream, |sinks, origin| sinks.line(origin, &rest, true));
            }
        }
    }

    /// Output as it is kept: into the ring buffer, the console, the log file, the followers.
    fn deliver(&mut self, id: ProcId, stream: Stream, data: &[u8], last: bool) {
        let Some(e) = self.sup.get_mut(id) else { return };
        e.ring_mut(stream).write(data);
        self.write_lines(id, stream, data, last);
        if let Some(file) = self.log_file(id, stream) {
            let written = file.write(data);
            let path = file.path().display().to_string();
            self.log_written(id, stream, &path, written);
        } else if let Some(h) = self.log_health.get_mut(&(id, stream))
            && let Some((bytes, lines)) = &mut h.outage
            && !data.is_empty()
        {
            // The file could not be opened.
            let n = data.len() as u64;
            h.dropped_bytes += n;
            *bytes += n;
            *lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
            h.mid_line = data.last() != Some(&b'\n');
        }
        if !self.followers.is_empty() {
            for token in self.followers.clone() {
                self.feed_follower(token);
            }
        }
        if !self.subscribers.is_empty() {
            self.feed_log_subscribers(id, stream);
        }
    }

    /// Accounts for a write to a stream's log file: one warning when writes start to fail,
    /// one line when they succeed again, saying how much was dropped in between. A failing
    /// disk costs one failed write per read of the program's output, never a retry loop.
    fn log_written(&mut self, id: ProcId, stream: Stream, path: &str, w: Written) {
        let Some(e) = self.sup.get(id) else { return };
        let name = e.spec.namespec();
        let h = self.log_health.entry((id, stream)).or_default();
        h.dropped_bytes += w.dropped;
        if let Some((bytes, lines)) = &mut h.outage {
            *bytes += w.dropped;
            *lines += w.dropped_lines;
        }
        match w.error {
            Some(err) if h.outage.is_none() => {
                h.outage = Some((w.dropped, w.dropped_lines));
                log::warn!(
                    "unable to write the log file {path} of '{name}' ({}): {err}; dropping \
                     its output, whole lines at a time, until it can be written (kahi ctl \
                     tail still shows it)",
                    stream.name()
                );
            }
            Some(_) => {}
            None if w.bytes > 0 => {
                if let Some((bytes, lines)) = h.outage.take() {
                    log::warn!(
                        "the log file {path} of '{name}' ({}) is written again; {bytes} bytes \
                         ({lines} lines) of its output were dropped",
                        stream.name()
                    );
                }
            }
            None => {}
        }
    }

    /// Bytes of a stream's output its log file dropped, and whether it is failing now: for
    /// /metrics.
    fn log_state(&self, id: ProcId, stream: Stream) -> (u64, bool) {
        self.log_health
            .get(&(id, stream))
            .map_or((0, false), |h| (h.dropped_bytes, h.outage.is_some()))
    }

    /// Cuts output into lines for the destinations that take whole lines: the console and
    /// syslog.
    fn write_lines(&mut self, id: ProcId, stream: Stream, data: &[u8], last: bool) {
        let max = self.sup.config.logging.max_line_bytes;
        let mut lines = self.lines.remove(&(id, stream)).unwrap_or_default();
        self.line_sinks(id, stream, |sinks, origin| {
            lines.push(data, max, |line, continued| sinks.line(origin, line, continued));
            if last && let Some(rest) = lines.finish() {
                sinks.last(origin, &rest);
            }
        });
        if lines.has_partial() {
            self.lines.insert((id, stream), lines);
        }
    }

    /// Lets `write` send lines of a program stream to the console, syslog and Kahi's own
    /// stdout or stderr, as the program asks; then flushes the console. Does nothing when the
    /// stream goes to none of them.
    fn line_sinks(
        &mut self,
        id: ProcId,
        stream: Stream,
        write: impl FnOnce(&mut LineSinks<'_>, &Origin<'_>),
    ) {
        let Some(e) = self.sup.get(id) else { return };
        let to_syslog = match stream {
            Stream::Stdout => e.spec.stdout_syslog,
            Stream::Stderr => e.spec.stderr_syslog,
        };
        let raw_fd = match stream {
            Stream::Stdout => e.spec.stdout_log.as_ref(),
            Stream::Stderr => e.spec.stderr_log.as_ref(),
        }
        .and_then(LogSpec::std_fd);
        // A stream that goes to Kahi's stdout or stderr as it is is not copied there again.
        let to_console = raw_fd.is_none()
            && !self.console_off
            && self.sup.config.logging.console.on(self.daemonized);
        let raw_fd = raw_fd.filter(|_| !self.console_off);
        if !to_console && !to_syslog && raw_fd.is_none() {
            return;
        }
        let ts = crate::timefmt::rfc3339_now();
        let process = e.spec.namespec();
        let origin =
            Origin { ts: &ts, program: &e.spec.program, process: &process, stream: stream.name() };
        let format = self.sup.config.logging.format;
        let mut raw = Vec::new();
        let mut sinks = LineSinks {
            console: if to_console { Some((self.console.buf(), format)) } else { None },
            syslog: if to_syslog { Some(&mut self.syslog) } else { None },
            raw: raw_fd.map(|_| &mut raw),
            pid: e.proc.pid,
        };
        write(&mut sinks, &origin);
        match raw_fd {
            Some(1) => self.console.buf().extend_from_slice(&raw),
            Some(_) => console::stderr().buf().extend_from_slice(&raw),
            None => {}
        }
        self.flush_console();
    }

    /// The stream's pipe closed: its last partial line goes out now.
    fn end_of_output(&mut self, id: ProcId, stream: Stream) {
        self.output(id, stream, &[], true);
        self.lines.remove(&(id, stream));
        self.held.remove(&(id, stream));
    }

    /// Writes what Kahi's stdout and stderr take now; pauses reading programs' pipes while
    /// either is far behind.
    fn flush_console(&mut self) {
        self.console.flush();
        let pending = {
            let mut err = console::stderr();
            err.flush();
            self.console.pending().max(err.pending())
        };
        if !self.paused && pending > console::HIGH_WATER {
            self.paused = true;
        } else if self.paused && pending <= console::LOW_WATER {
            self.paused = false;
            self.pending_reads.extend(self.paused_reads.drain());
            if self.console_skipped > 0 {
                log::warn!(
                    "{} bytes of output of processes that had exited were not copied to stdout \
                     while it was blocked; their ring buffers and log files hold them",
                    std::mem::take(&mut self.console_skipped)
                );
            }
            // A partial line was quiet only because Kahi stopped reading: its wait for
            // quiet starts again now.
            let again = Instant::now() + self.sup.config.logging.partial_line_secs;
            for at in self.held.values_mut() {
                *at = again;
            }
        }
    }

    /// The open log file of a stream, opened (or reopened, after an update changed it) as
    /// needed. None when the stream has no log file, or it cannot be opened.
    fn log_file(&mut self, id: ProcId, stream: Stream) -> Option<&mut LogFile> {
        let e = self.sup.get(id)?;
        let spec = match stream {
            Stream::Stdout => e.spec.stdout_log.as_ref(),
            Stream::Stderr => e.spec.stderr_log.as_ref(),
        };
        let Some(spec) = spec else {
            self.log_files.remove(&(id, stream));
            return None;
        };
        if spec.std_fd().is_some() {
            // Kahi's own stdout or stderr: written by line_sinks, through its buffer.
            return None;
        }
        let current = self.log_files.get(&(id, stream)).is_some_and(|f| f.is(spec));
        if !current {
            match LogFile::open_spec(spec) {
                Ok(mut f) => {
                    // The outage, if any, ends with the first write that succeeds.
                    if let Some(h) = self.log_health.get_mut(&(id, stream))
                        && std::mem::take(&mut h.mid_line)
                    {
                        f.skip_to_next_line();
                    }
                    self.log_files.insert((id, stream), f);
                }
                Err(err) => {
                    let h = self.log_health.entry((id, stream)).or_default();
                    if h.outage.is_none() {
                        h.outage = Some((0, 0));
                        log::warn!(
                            "unable to open the log file {} of '{}' ({}): {err}; dropping its \
                             output until it can be written (kahi ctl tail still shows it)",
                            spec.path.display(),
                            e.spec.namespec(),
                            stream.name()
                        );
                    }
                    return None;
                }
            }
        }
        self.log_files.get_mut(&(id, stream))
    }

    /// SIGUSR2: reopen every log file (logrotate moved them away).
    fn reopen_logs(&mut self) {
        for (_, f) in self.log_files.iter_mut() {
            if let Err(e) = f.reopen() {
                log::warn!("unable to reopen {}: {e}", f.path().display());
            }
        }
        log::info!("reopened {} log files", self.log_files.len());
    }

    // ---- control connections ----

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.fd_shortage = false;
                    let mut conn = Box::new(Conn::new(stream));
                    if let Err(why) = check_peer(&conn.stream, self.sup.config.server.socket_group)
                    {
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
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
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
                    let Some(reserve) = self.reserve.take() else { break };
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
                        break;
                    }
                }
                Err(e) => {
                    log::warn!("unable to accept a control connection: {e}");
                    break;
                }
            }
        }
    }

    fn conn(&mut self, token: Token) -> Option<&mut Conn> {
        match self.sources.get_mut(&token) {
            Some(Source::Conn(c)) => Some(c),
            _ => None,
        }
    }

    fn read_conn(&mut self, token: Token, now: Instant) {
        let Some(conn) = self.conn(token) else { return };
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
            return;
        }
        self.serve(token, now);
    }

    /// Answers the requests a connection has sent, in order, while it is not parked.
    fn serve(&mut self, token: Token, now: Instant) {
        loop {
            let Some(conn) = self.conn(token) else { return };
            if conn.mode != Mode::Idle {
                break;
            }
            let Some(line) = conn.next_line() else { break };
            match control::parse(&line) {
                None => continue,
                Some(Ok(req)) => self.request(token, req, now),
                Some(Err(e)) => self.reply(token, Err(e)),
            }
            self.perform(now);
        }
        self.flush_conn(token);
    }

    fn request(&mut self, token: Token, req: Request, now: Instant) {
        let clock = Now { mono: now, wall: SystemTime::now() };
        match api::handle(&mut self.sup, req, clock) {
            Handled::Reply(r) => self.reply(token, r),
            Handled::Wait(w) => {
                if let Some(c) = self.conn(token) {
                    c.mode = Mode::Waiting;
                }
                self.waiters.insert(token, w);
                // Actions run now, so the waiter is checked after them.
                self.perform(now);
                self.poll_waiters(now);
            }
            Handled::Cleared(ids, reply) => {
                for id in ids {
                    for stream in [Stream::Stdout, Stream::Stderr] {
                        if let Some(f) = self.log_file(id, stream)
                            && let Err(e) = f.clear()
                        {
                            log::warn!("unable to clear {}: {e}", f.path().display());
                        }
                    }
                }
                self.reply(token, Ok(reply));
            }
            Handled::ReplyThenWait(reply, w) => {
                self.reply(token, Ok(reply));
                self.detached.push(w);
            }
            Handled::Follow { log, offset, encoding } => {
                if let Some(c) = self.conn(token) {
                    c.mode = Mode::Following { log, offset, encoding };
                }
                self.followers.insert(token);
                self.feed_follower(token);
            }
            Handled::Piecewise(reply) => {
                if let Some(c) = self.conn(token) {
                    c.mode = Mode::Sending;
                }
                self.pieces.insert(token, reply);
                self.feed_piece(token, now);
            }
            Handled::NeedConfig(what) => {
                let reply = self.config_reply(what, now);
                self.reply(token, reply);
            }
            Handled::Stdin { id, name, data } => {
                let reply = self.write_stdin(id, name, data.as_bytes());
                self.reply(token, reply);
            }
            Handled::Shutdown => {
                log::info!("shutdown requested over the control socket");
                self.reply(token, Ok(Reply::Shutdown { message: "Shut down".into() }));
                self.shutdown(now);
            }
        }
    }

    /// Reads the configuration file again for reread, update or avail.
    fn config_reply(&mut self, what: api::ConfigUse, now: Instant) -> Result<Reply, ApiError> {
        self.load_config().map(|config| {
            let r = api::with_config(&mut self.sup, what, config, now);
            if let (api::ConfigUse::Update, Reply::Changes { changes }) = (what, &r) {
                self.sync_sockets();
                log_changes(changes);
                self.emit("update", serde_json::to_value(changes).unwrap_or_default());
            }
            r
        })
    }

    /// Queues bytes for a process's stdin pipe and writes what it takes now.
    fn write_stdin(&mut self, id: ProcId, name: String, data: &[u8]) -> Result<Reply, ApiError> {
        let Some(pipe) = self.stdins.get_mut(&id) else {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("{name} has no stdin pipe (set stdin_pipe = true)"),
            ));
        };
        if pipe.pending.len() + data.len() > STDIN_BUFFER {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "the stdin of {name} is full: the program has not read the last {} KiB",
                    STDIN_BUFFER >> 10
                ),
            ));
        }
        pipe.pending.extend_from_slice(data);
        self.flush_stdin(id);
        Ok(Reply::Written { name, bytes: data.len() })
    }

    /// Writes what a stdin pipe takes now; a program that closed its stdin loses the rest.
    fn flush_stdin(&mut self, id: ProcId) {
        let Some(pipe) = self.stdins.get_mut(&id) else { return };
        while !pipe.pending.is_empty() {
            match nix::unistd::write(&pipe.fd, &pipe.pending) {
                Ok(n) => {
                    pipe.pending.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(_) => {
                    pipe.pending.clear();
                    break;
                }
            }
        }
    }

    /// Forgets a process's stdin pipe (it exited), closing Kahi's end.
    fn close_stdin(&mut self, id: ProcId) {
        if let Some(pipe) = self.stdins.remove(&id) {
            self.stdin_tokens.remove(&pipe.token);
            let _ = self.poll.registry().deregister(&mut SourceFd(&pipe.fd.as_raw_fd()));
        }
    }

    /// Begins stopping everything; the loop ends when the last program is reaped.
    fn shutdown(&mut self, now: Instant) {
        if !self.sup.is_shutting_down() {
            self.emit("shutdown", serde_json::json!({ "ts": crate::timefmt::rfc3339_now() }));
            crate::sys::detach::notify_manager("STOPPING=1");
        }
        self.sup.begin_shutdown(now);
    }

    fn load_config(&self) -> Result<crate::config::Config, ApiError> {
        let loaded = crate::config::load(&self.sup.config.file);
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

    fn reply(&mut self, token: Token, reply: Result<Reply, ApiError>) {
        if let Some((rq, shape)) = self.http_waiting.remove(&token) {
            return self.http_send(rq, http::answer(&shape, reply));
        }
        let line = match &reply {
            Ok(r) => serde_json::to_vec(r),
            Err(e) => serde_json::to_vec(e),
        };
        let Ok(line) = line else { return };
        let Some(conn) = self.conn(token) else { return };
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

    fn poll_waiters(&mut self, now: Instant) {
        let tokens: Vec<Token> = self.waiters.keys().copied().collect();
        for token in tokens {
            let Some(mut w) = self.waiters.remove(&token) else { continue };
            match w.poll(&mut self.sup, now) {
                Some(reply) => {
                    if let Some(c) = self.conn(token) {
                        c.mode = Mode::Idle;
                    }
                    self.reply(token, Ok(reply));
                    // Requests that arrived while it waited.
                    self.serve(token, now);
                }
                None => {
                    self.waiters.insert(token, w);
                }
            }
        }
        let mut detached = std::mem::take(&mut self.detached);
        detached.retain_mut(|w| w.poll(&mut self.sup, now).is_none());
        self.detached.append(&mut detached);
        // A restart may have queued starts.
        if !self.sup.actions.is_empty() {
            self.perform(now);
        }
    }

    /// Sends what the daemon logged during this turn to the clients following its log.
    fn feed_daemon_log_followers(&mut self) {
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
                    self.sources.get(t),
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
    fn feed_follower(&mut self, token: Token) {
        let Some(Source::Conn(conn)) = self.sources.get_mut(&token) else {
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
    fn feed_piece(&mut self, token: Token, now: Instant) {
        let Some(mut reply) = self.pieces.remove(&token) else { return };
        let Some(Source::Conn(conn)) = self.sources.get_mut(&token) else { return };
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
    fn behind_ready(&self) -> bool {
        self.behind.iter().any(|t| {
            matches!(self.sources.get(t), Some(Source::Conn(c)) if c.pending() <= control::LOW_WATER)
        })
    }

    /// Sends the next piece to each connection with more to send and room for it.
    fn feed_behind(&mut self, now: Instant) {
        if !self.behind_ready() {
            return;
        }
        for token in std::mem::take(&mut self.behind) {
            match self.sources.get(&token) {
                Some(Source::Conn(c)) if c.pending() > control::LOW_WATER => {
                    self.behind.insert(token);
                }
                Some(Source::Conn(c)) if c.mode == Mode::Sending => self.feed_piece(token, now),
                Some(Source::Conn(_)) => self.feed_follower(token),
                _ => {}
            }
        }
    }

    fn flush_conn(&mut self, token: Token) {
        let Some(conn) = self.conn(token) else { return };
        let done = match conn.flush() {
            Ok(()) => conn.finished(),
            Err(_) => true,
        };
        if done {
            self.close(token);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(Source::Conn(mut conn)) = self.sources.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
        self.waiters.remove(&token);
        self.followers.remove(&token);
        self.pieces.remove(&token);
        self.behind.remove(&token);
    }

    // ---- HTTP ----

    /// Answers every request the HTTP threads have parsed.
    fn serve_http(&mut self, now: Instant) {
        // Requests for the whole process list that come together get one snapshot: nothing
        // can change between them unless a request that changes something comes in between.
        let mut all: Option<std::sync::Arc<http::Shared>> = None;
        while let Some(incoming) = self.http.as_ref().and_then(Http::next) {
            let method = incoming.rq.method();
            let list = matches!(method, tiny_http::Method::Get | tiny_http::Method::Head)
                && incoming.rq.url().trim_end_matches('/') == "/api/v1/processes";
            if list {
                let clock = Now { mono: now, wall: SystemTime::now() };
                let shared = all.get_or_insert_with(|| {
                    let processes: Vec<api::ProcessInfo> =
                        self.sup.iter().map(|e| api::process_info(e, clock)).collect();
                    http::Shared::new(processes)
                });
                let answer = Answer {
                    status: 200,
                    body: http::Body::Shared(shared.clone()),
                    headers: Vec::new(),
                };
                self.http_send(incoming.rq, answer);
                continue;
            }
            if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
                all = None;
            }
            self.http_request(incoming, now);
            self.perform(now);
        }
    }

    fn http_request(&mut self, incoming: http::Incoming, now: Instant) {
        let http::Incoming { rq, body, authenticated } = incoming;
        let answer = match http::route(rq.method().as_str(), rq.url(), &body) {
            Route::Api(Request::Tail { name, stream, bytes, offset, encoding, .. }, _) => {
                self.http_log(&name, stream, bytes, offset, encoding)
            }
            Route::Api(req, shape) => return self.http_api(rq, req, shape, now),
            Route::LogStream { name, stream } => return self.subscribe_log(rq, &name, stream),
            Route::EventStream { types } => return self.subscribe_events(rq, types),
            Route::Healthz => Answer::json(200, &serde_json::json!({ "status": "ok" })),
            Route::Readyz { processes } => self.readiness(&processes, authenticated, now),
            Route::Metrics => Answer::metrics(crate::metrics::render(
                &self.sup,
                Now { mono: now, wall: SystemTime::now() },
                &http::counts(),
                &|id, stream| self.log_state(id, stream),
            )),
            Route::OpenApi => Answer::raw(200, "application/json", http::OPENAPI.as_bytes()),
            Route::Groups => Answer::json(200, &self.groups()),
            Route::Config => Answer::json(200, &self.config_info()),
            Route::MethodNotAllowed(allow) => {
                let mut a = Answer::json(
                    405,
                    &ApiError::new(
                        ErrorCode::BadRequest,
                        format!("{} is not allowed here; use {allow}", rq.method()),
                    ),
                );
                a.headers.push(("Allow", allow.to_string()));
                a
            }
            Route::BadRequest(why) => Answer::error(&ApiError::new(ErrorCode::BadRequest, why)),
            Route::NotFound => Answer::error(&ApiError::new(
                ErrorCode::NotFound,
                format!("no such endpoint: {}", rq.url().split('?').next().unwrap_or("")),
            )),
        };
        self.http_send(rq, answer);
    }

    /// Hands an answer to the HTTP threads.
    fn http_send(&mut self, rq: tiny_http::Request, answer: Answer) {
        if let Some(http) = &self.http {
            http.answer(rq, answer);
        }
    }

    /// An API request, answered as the control socket answers it.
    fn http_api(&mut self, rq: tiny_http::Request, req: Request, shape: Shape, now: Instant) {
        let clock = Now { mono: now, wall: SystemTime::now() };
        let reply = match api::handle(&mut self.sup, req, clock) {
            Handled::Reply(r) => r,
            Handled::Wait(w) => {
                let token = self.token();
                self.waiters.insert(token, w);
                self.http_waiting.insert(token, (rq, shape));
                self.perform(now);
                self.poll_waiters(now);
                return;
            }
            Handled::ReplyThenWait(reply, w) => {
                self.detached.push(w);
                Ok(reply)
            }
            Handled::Piecewise(reply) => {
                // The responder thread serializes it, off the loop.
                Ok(reply.whole(&self.sup, Now { mono: now, wall: SystemTime::now() }))
            }
            Handled::NeedConfig(what) => self.config_reply(what, now),
            Handled::Stdin { id, name, data } => self.write_stdin(id, name, data.as_bytes()),
            Handled::Shutdown => {
                log::info!("shutdown requested over HTTP");
                self.http_send(
                    rq,
                    http::answer(&shape, Ok(Reply::Shutdown { message: "Shut down".into() })),
                );
                self.shutdown(now);
                return;
            }
            Handled::Cleared(..) | Handled::Follow { .. } => {
                Err(ApiError::new(ErrorCode::ServerError, "not available over HTTP"))
            }
        };
        self.http_send(rq, http::answer(&shape, reply));
    }

    /// `GET .../log/STREAM`: the bytes are copied out of the ring here; making them JSON, which
    /// for a large read takes a while, is the responder thread's work.
    fn http_log(
        &self,
        name: &str,
        stream: Stream,
        bytes: u64,
        offset: Option<u64>,
        encoding: api::Encoding,
    ) -> Answer {
        let entry = match api::one(&self.sup, name) {
            Ok(id) => self.sup.get(id),
            Err(e) => return Answer::error(&e),
        };
        let Some(entry) = entry else {
            return Answer::error(&ApiError::new(
                ErrorCode::NotFound,
                format!("no such process: {name}"),
            ));
        };
        let ring = entry.ring(stream);
        let (from, end, skipped) = ring.span(offset, bytes);
        let read = ring.read(from, (end - from) as usize);
        Answer::json_later(
            200,
            http::LogChunk { data: read.data, offset: read.offset, skipped, encoding },
        )
    }

    /// Follows a process's log as Server-Sent Events: the last 1600 bytes (or everything
    /// after the `Last-Event-ID` the client saw), then each new chunk, its id the offset
    /// after it.
    fn subscribe_log(&mut self, rq: tiny_http::Request, name: &str, stream: Stream) {
        let id = match api::one(&self.sup, name) {
            Ok(id) => id,
            Err(e) => return self.http_send(rq, Answer::error(&e)),
        };
        let last_seen = rq
            .headers()
            .iter()
            .find(|h| h.field.equiv("Last-Event-ID"))
            .and_then(|h| h.value.as_str().trim().parse::<u64>().ok());
        let Some(e) = self.sup.get(id) else { return };
        let offset =
            last_seen.unwrap_or_else(|| e.ring(stream).tail(api::default_tail_bytes()).offset);
        let Some(sub) = self.http.as_ref().and_then(|h| h.subscribe(rq)) else { return };
        self.subscribers.push((sub, Feed::Log { id, stream, offset }));
        let last = self.subscribers.len() - 1;
        self.feed_log(last);
    }

    /// Follows the event stream, of the given types or of all.
    fn subscribe_events(&mut self, rq: tiny_http::Request, types: Vec<String>) {
        if let Some(bad) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
            let e = ApiError::new(
                ErrorCode::BadRequest,
                format!("types: unknown event type {bad:?} (known: {})", EVENT_TYPES.join(", ")),
            );
            return self.http_send(rq, Answer::error(&e));
        }
        let Some(sub) = self.http.as_ref().and_then(|h| h.subscribe(rq)) else { return };
        self.subscribers.push((sub, Feed::Events(types)));
    }

    /// Sends a log subscriber what its log has gained; drops it if it cannot take it.
    fn feed_log(&mut self, i: usize) {
        let Some((sub, Feed::Log { id, stream, offset })) = self.subscribers.get_mut(i) else {
            return;
        };
        let Some(e) = self.sup.get(*id) else { return };
        let ring = e.ring(*stream);
        if ring.end() <= *offset {
            return;
        }
        let read = ring.read(*offset, usize::MAX);
        let next = read.offset + read.data.len() as u64;
        let text = String::from_utf8_lossy(&read.data);
        if sub.send(http::sse_event("log", Some(next), &text)) {
            *offset = next;
        } else {
            self.subscribers.swap_remove(i);
        }
    }

    /// Sends every log subscriber of this stream what it has not seen.
    fn feed_log_subscribers(&mut self, id: ProcId, stream: Stream) {
        let mut i = self.subscribers.len();
        while i > 0 {
            i -= 1;
            if matches!(&self.subscribers[i].1, Feed::Log { id: x, stream: s, .. } if *x == id && *s == stream)
            {
                self.feed_log(i);
            }
        }
    }

    /// Sends an event to the subscribers that want its type; drops those that cannot take it.
    fn emit(&mut self, kind: &str, data: serde_json::Value) {
        if self.subscribers.is_empty() {
            return;
        }
        let mut event = None;
        self.subscribers.retain(|(sub, feed)| match feed {
            Feed::Events(types) if types.is_empty() || types.iter().any(|t| t == kind) => {
                let e = event.get_or_insert_with(|| http::sse_event(kind, None, &data.to_string()));
                sub.send(e.clone())
            }
            _ => true,
        });
    }

    /// `GET /api/v1/groups`: each group and its processes, in start order.
    fn groups(&self) -> serde_json::Value {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for e in self.sup.iter() {
            match groups.iter_mut().find(|(g, _)| *g == e.spec.group) {
                Some((_, procs)) => procs.push(e.spec.namespec()),
                None => groups.push((e.spec.group.clone(), vec![e.spec.namespec()])),
            }
        }
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        serde_json::Value::Array(
            groups
                .into_iter()
                .map(
                    |(name, processes)| serde_json::json!({ "name": name, "processes": processes }),
                )
                .collect(),
        )
    }

    /// `GET /api/v1/config`: the configuration in force. Environment values are left out:
    /// they may hold secrets.
    fn config_info(&self) -> serde_json::Value {
        let c = &self.sup.config;
        let programs: Vec<serde_json::Value> = c
            .programs
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name, "group": p.group, "autostart": p.autostart,
                    "priority": p.priority, "numprocs": p.numprocs,
                })
            })
            .collect();
        let processes: Vec<serde_json::Value> = c
            .processes
            .iter()
            .map(|p| {
                let log = |l: &Option<LogSpec>| l.as_ref().map(|l| l.path.display().to_string());
                serde_json::json!({
                    "name": p.namespec(), "program": p.program, "command": p.argv,
                    "directory": p.directory, "autostart": p.autostart,
                    "autorestart": format!("{:?}", p.autorestart).to_lowercase(),
                    "startsecs": p.startsecs.as_secs_f64(), "startretries": p.startretries,
                    "exitcodes": p.exitcodes, "stopsignal": p.stopsignal.as_str(),
                    "stopwaitsecs": p.stopwaitsecs.as_secs_f64(),
                    "environment": p.environment.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                    "stdout_logfile": log(&p.stdout_log), "stderr_logfile": log(&p.stderr_log),
                })
            })
            .collect();
        serde_json::json!({
            "file": c.file,
            "socket": c.server.socket,
            "http": c.server.http.listen,
            "programs": programs,
            "processes": processes,
        })
    }

    /// `/readyz`: 200 when every named process, or every autostart process when none is
    /// named, is RUNNING; 503 with the ones that are not, otherwise.
    fn readiness(&self, names: &[String], authenticated: bool, now: Instant) -> Answer {
        if !authenticated && !names.is_empty() {
            return self.anonymous_readiness(names);
        }
        let clock = Now { mono: now, wall: SystemTime::now() };
        let mut waiting = Vec::new();
        let mut unknown = Vec::new();
        let entries: Vec<&crate::supervisor::Entry> = if names.is_empty() {
            self.sup.iter().filter(|e| e.spec.autostart).collect()
        } else {
            let mut v = Vec::new();
            for n in names {
                match self.sup.resolve(n) {
                    Some(ids) => v.extend(ids.into_iter().filter_map(|id| self.sup.get(id))),
                    None => unknown.push(n.clone()),
                }
            }
            v
        };
        for e in entries {
            if !is_ready(e) {
                let info = api::process_info(e, clock);
                let mut entry = serde_json::json!({ "name": info.name, "state": info.state });
                if let Some(h) = info.health {
                    entry["health"] = serde_json::json!(h);
                }
                waiting.push(entry);
            }
        }
        if !unknown.is_empty() {
            return Answer::error(&ApiError::new(
                ErrorCode::NotFound,
                format!("no such process: {}", unknown.join(", ")),
            ));
        }
        if waiting.is_empty() {
            Answer::json(200, &serde_json::json!({ "ready": true }))
        } else {
            Answer::json(503, &serde_json::json!({ "ready": false, "not_ready": waiting }))
        }
    }

    /// `/readyz?process=...` for a client that is not a user: an unknown name is answered
    /// like a known one that is not ready, and only the names asked are listed, so the answer
    /// does not tell which names exist.
    fn anonymous_readiness(&self, names: &[String]) -> Answer {
        let waiting: Vec<serde_json::Value> = names
            .iter()
            .filter(|n| {
                let ids = self.sup.resolve(n).unwrap_or_default();
                ids.is_empty() || !ids.iter().filter_map(|id| self.sup.get(*id)).all(is_ready)
            })
            .map(|n| serde_json::json!({ "name": n }))
            .collect();
        if waiting.is_empty() {
            Answer::json(200, &serde_json::json!({ "ready": true }))
        } else {
            Answer::json(503, &serde_json::json!({ "ready": false, "not_ready": waiting }))
        }
    }

    // ---- the end ----

    fn finish(&mut self) -> i32 {
        // Whatever the programs wrote last is still in their pipes: read it before leaving.
        let pipes: Vec<Token> = self
            .sources
            .iter()
            .filter(|(_, s)| matches!(s, Source::Pipe { .. }))
            .map(|(t, _)| *t)
            .collect();
        for t in pipes {
            self.read_pipe(t);
        }
        let tokens: Vec<Token> = self.sources.keys().copied().collect();
        for t in tokens {
            if let Some(Source::Conn(c)) = self.sources.get_mut(&t) {
                let _ = c.flush();
            }
        }
        let _ = std::fs::remove_file(&self.socket);
        self.state.remove();
        self.sockets.close_all();
        if let Some(Some(cgroups)) = &self.cgroups {
            cgroups.remove_all();
        }
        if let Some(http) = &self.http {
            http.drain(Instant::now() + std::time::Duration::from_secs(1));
        }
        // The last lines for stdout and stderr: block for them now, then give both back as
        // they were.
        for (fd, flags) in [1, 2].into_iter().zip(self.std_flags) {
            if let Some(flags) = flags {
                // SAFETY: fds 1 and 2 stay open for the daemon's whole life.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags));
            }
        }
        self.console.flush();
        console::stderr().flush();
        let code = match &self.sup.critical_exit {
            Some((_, code)) => *code,
            None => i32::from(self.sup.any_killed()),
        };
        log::info!(
            "every program is stopped; exiting with status {code}{}",
            if self.pid1 { " (pid 1)" } else { "" }
        );
        code
    }
}

/// Watches Kahi's stdout or stderr for room to write, and makes it non-blocking; returns its
/// old flags. Only a pipe or a socket (a container runtime, journald) is changed: a regular
/// file or /dev/null never makes a writer wait, and a terminal is shared with the shell, which
/// must not find its own descriptor non-blocking.
fn watch_out(poll: &Poll, fd: i32, token: Token) -> Option<nix::fcntl::OFlag> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::sys::stat::{SFlag, fstat};
    // SAFETY: fds 1 and 2 stay open for the daemon's whole life.
    let out = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let kind = SFlag::from_bits_truncate(fstat(out).ok()?.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFIFO && kind != SFlag::S_IFSOCK {
        return None;
    }
    let flags = OFlag::from_bits_truncate(fcntl(out, FcntlArg::F_GETFL).ok()?);
    poll.registry().register(&mut SourceFd(&fd), token, Interest::WRITABLE).ok()?;
    fcntl(out, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).ok()?;
    Some(flags)
}

/// Ready for `/readyz`: RUNNING (and healthy, with a health check), or done: a oneshot that
/// completed, or a program that exited with an expected code and will not be restarted.
fn is_ready(e: &crate::supervisor::Entry) -> bool {
    use crate::process::State;
    let p = &e.proc;
    match p.state {
        State::Running => {
            e.spec.healthcheck.is_none()
                || p.health == Some(crate::process::machine::Health::Healthy)
        }
        // A socket program listening for its first connection: its socket answers.
        State::Starting if e.spec.kind == crate::config::Kind::Socket && p.held => {
            e.waiting_for.iter().all(|w| w.starts_with(crate::supervisor::CONNECTION))
        }
        State::Exited => {
            p.completed
                || (e.spec.autorestart != crate::config::AutoRestart::Always
                    && matches!(p.exit_status, Some(crate::process::ExitStatus::Exited(c)) if e.spec.exitcodes.contains(&c)))
        }
        _ => false,
    }
}

/// Only root and the daemon's own user may use the control socket.
fn check_peer(stream: &mio::net::UnixStream, group: Option<u32>) -> Result<(), String> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let creds = getsockopt(stream, PeerCredentials)
        .map_err(|e| format!("unable to read peer credentials: {e}"))?;
    let me = nix::unistd::geteuid().as_raw();
    if creds.uid() == 0
        || creds.uid() == me
        || group.is_some_and(|g| in_group(creds.uid(), creds.gid(), g))
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

/// Whether a user belongs to a group, as its primary group or a supplementary one.
fn in_group(uid: u32, gid: u32, group: u32) -> bool {
    if gid == group {
        return true;
    }
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(user.name) else { return false };
    nix::unistd::getgrouplist(&name, user.gid)
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
