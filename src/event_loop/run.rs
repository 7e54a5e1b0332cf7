//! The loop itself: wait for the earliest of an event and a deadline, hand each event to its
//! source's owner, then the turn's chores (budgeted reads, reaping, timers, queued spawns,
//! pieces of large replies); and the end, once the last program is reaped.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token};

use super::sources::Source;
use super::{CLIENTS_BEFORE_YIELD, EventLoop};
use crate::logs::console;

impl EventLoop {
    /// Runs until shutdown completes; returns the daemon's exit code.
    pub fn run(mut self) -> i32 {
        // The loop, and each child until its exec, runs as soon as it can (sys::vfork).
        crate::sys::vfork::shorten_slice();
        // Every handler of the loop is set: children set back only those (sys::vfork).
        crate::sys::vfork::note_dispositions();
        let now = Instant::now();
        self.sync_sockets();
        self.sync_pools();
        self.sync_webhooks();
        // As supervisord: each group added, then RUNNING, then the first starts' changes.
        self.publish_groups();
        self.sup.start_autostart(now);
        self.publish_running();
        self.perform(now);
        loop {
            // A tick's timer exists while someone takes it: listeners and streams come and go.
            self.sync_ticks();
            let timeout = if self.pending_reads.is_empty()
                && self.spawn_queue.is_empty()
                && self.restart_queue.is_empty()
                && !self.reap_pending
                && !self.accept_more
                && self.deferred.is_empty()
                && !self.sup.shutdown_busy()
                && !self.behind_ready()
            {
                // The earliest deadline: a timer (a partial line's flush among them), the
                // state file.
                [self.timers.next(), self.state.due()]
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
            self.spawn_spent = std::time::Duration::ZERO;
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
            // Children first: their output, their exits and the restarts those allow are
            // done before the turn serves its clients, so a thousand requests at once delay
            // no restart by more than the turn they arrive in.
            let (children, fresh): (Vec<_>, Vec<_>) =
                ready.into_iter().partition(|(token, ..)| self.sources.of_children(*token));
            // Clients a child's exit put off come first among clients.
            let mut clients = std::mem::take(&mut self.deferred);
            clients.extend(fresh);
            for (token, readable, writable, hung_up) in children {
                self.dispatch(token, readable, writable, hung_up, now);
                self.perform(now);
            }
            if self.reap_pending {
                self.reap(now);
                self.perform(now);
                self.spawn_queued();
            }
            let mut clients = clients.into_iter();
            let mut served = 0;
            while let Some((token, readable, writable, hung_up)) = clients.next() {
                self.dispatch(token, readable, writable, hung_up, now);
                self.perform(now);
                served += 1;
                // A child exited while the turn served clients: the rest wait for the next
                // turn, which reaps and restarts first. A few are served each turn whatever
                // happens, so a crash loop cannot starve them.
                if served >= CLIENTS_BEFORE_YIELD && self.exited.load(Ordering::SeqCst) {
                    self.deferred.extend(clients);
                    break;
                }
            }
            if self.accept_more {
                self.accept();
            }
            for token in std::mem::take(&mut self.pending_reads) {
                self.read_pipe(token);
            }
            if self.reap_pending {
                self.reap(now);
            }
            self.fire_timers(now);
            self.sup.continue_shutdown(now);
            self.perform(now);
            self.spawn_queued();
            self.state.flush(Instant::now());
            self.remove_instances(now);
            self.feed_daemon_log_followers();
            self.feed_main_log_subscribers();
            self.feed_behind(Instant::now());
            self.feed_webhooks();
            if self.sup.shutdown_complete() {
                return self.finish();
            }
        }
    }

    /// One event, to the owner of its source. A token no longer in the table is a source
    /// closed earlier in this batch: its event is stale.
    fn dispatch(
        &mut self,
        token: Token,
        readable: bool,
        writable: bool,
        hung_up: bool,
        now: Instant,
    ) {
        match self.sources.get(token) {
            None => {}
            Some(Source::Signals) => self.on_signals(now),
            // Accepted with the turn's chores, a slice at a time.
            Some(Source::Control) => self.accept_more = true,
            Some(Source::Console) => self.flush_console(),
            Some(Source::Notify) => self.read_notify(now),
            Some(Source::Http) => self.serve_http(now),
            Some(&Source::Probe(id)) => self.drive_check(id, now),
            Some(Source::Listen) => self.on_connection(token, now),
            Some(Source::Pipe { .. }) if readable => self.read_pipe(token),
            Some(&Source::Stdin(id)) if writable => self.flush_stdin(id),
            Some(Source::Pipe { .. } | Source::Stdin(_)) => {}
            Some(Source::Conn(_)) => {
                if readable {
                    self.read_conn(token, now);
                }
                if writable {
                    self.flush_conn(token);
                }
                if hung_up && self.sources.conn(token).is_some() {
                    // The client is gone for good (not merely done sending): a `tail -f` on a
                    // quiet program would otherwise hold it forever.
                    self.close(token);
                }
            }
        }
    }

    fn finish(&mut self) -> i32 {
        // Whatever the programs wrote last is still in their pipes: read it before leaving.
        for t in self.sources.tokens(|s| matches!(s, Source::Pipe { .. })) {
            self.read_pipe(t);
        }
        for c in self.sources.conns_mut() {
            let _ = c.flush();
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
        self.drain_webhooks(Instant::now() + std::time::Duration::from_secs(1));
        let code = match &self.sup.critical_exit {
            Some((_, code)) => *code,
            None => i32::from(self.sup.any_killed()),
        };
        // The last lines for stdout, then stderr: written as their readers take them, but not
        // waited for past LAST_FLUSH of a reader taking nothing (a stalled log collector must
        // not hold PID 1 until docker stop's SIGKILL); then both are given back as they were.
        let lost = self.console.flush_within(console::LAST_FLUSH);
        if lost > 0 || self.console_skipped > 0 {
            log::warn!(
                "{} bytes of the programs' output were not written to stdout: its reader took \
                 nothing for {} s; their ring buffers and log files held them",
                lost as u64 + std::mem::take(&mut self.console_skipped),
                console::LAST_FLUSH.as_secs()
            );
        }
        log::info!(
            "every program is stopped; exiting with status {code}{}",
            if self.pid1 { " (pid 1)" } else { "" }
        );
        console::stderr().flush_within(console::LAST_FLUSH);
        for (fd, flags) in [1, 2].into_iter().zip(self.std_flags) {
            if let Some(flags) = flags {
                // SAFETY: fds 1 and 2 stay open for the daemon's whole life.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags));
            }
        }
        code
    }
}

/// Watches Kahi's stdout or stderr for room to write, and makes it non-blocking; returns its
/// old flags. Only a pipe or a socket (a container runtime, journald) is changed: a regular
/// file or /dev/null never makes a writer wait, and a terminal is shared with the shell, which
/// must not find its own descriptor non-blocking.
pub(super) fn watch_out(poll: &Poll, fd: i32, token: Token) -> Option<nix::fcntl::OFlag> {
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
