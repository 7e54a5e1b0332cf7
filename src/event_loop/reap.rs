//! What the kernel tells the loop about children, and what children tell it: signals, exits
//! reaped (all of them, on every SIGCHLD, within a budget per turn), health checks' results and
//! sd_notify messages; each becomes an input for the supervisor.

use std::sync::atomic::Ordering;
use std::time::Instant;

use mio::{Interest, Token};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::sources::Source;
use super::{EventLoop, REAP_BUDGET, REAP_SLICE};
use crate::api;
use crate::process::machine::Input;
use crate::supervisor::ProcId;
use crate::sys;

impl EventLoop {
    pub(super) fn on_signals(&mut self, now: Instant) {
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

    pub(super) fn reap(&mut self, now: Instant) {
        // Cleared before the scan: an exit after it sets the flag again.
        self.exited.store(false, Ordering::SeqCst);
        let (reaped, all) = sys::reap::reap(REAP_BUDGET, Some(Instant::now() + REAP_SLICE));
        // More may be waiting: the next turn reaps on, without waiting for a signal.
        self.reap_pending = !all;
        for (pid, status) in reaped {
            self.reaped(pid, status, now);
        }
    }

    /// One child was reaped: its process (or health check) hears of it.
    pub(super) fn reaped(&mut self, pid: i32, status: crate::process::ExitStatus, now: Instant) {
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
                            matches!(sources.get(*t), Some(Source::Pipe { pid: p, .. }) if *p == pid)
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
                    if let Some(io) = self.io.get_mut(&id) {
                        io.check = None;
                    }
                    let ok = status == crate::process::ExitStatus::Exited(0);
                    let detail = status.to_string();
                    self.sup.input(id, Input::HealthResult { ok, detail }, now);
                }
                None => log::debug!("reaped unknown pid {pid} ({status})"),
            },
        }
        self.perform(now);
    }

    /// A critical process that exited, or could not be started, ends everything.
    pub(super) fn end_on_critical(&mut self, now: Instant) {
        if let Some((what, _)) = &self.sup.critical_exit
            && !self.sup.is_shutting_down()
        {
            log::info!("critical program {what}, stopping every program");
            self.shutdown(now);
        }
    }

    // ---- health checks ----

    /// Starts the health check of a process; one that cannot start is a failure at once.
    pub(super) fn start_check(&mut self, id: ProcId, now: Instant) {
        self.cancel_check(id);
        let Some(probe) =
            self.sup.get(id).and_then(|e| e.spec.healthcheck.as_ref()).map(|h| h.probe.clone())
        else {
            return;
        };
        match crate::health::start(&probe) {
            Ok(mut check) => {
                let mut token = None;
                match &mut check {
                    crate::health::Check::Exec { pid } => {
                        self.check_pids.insert(*pid, id);
                    }
                    crate::health::Check::Socket { stream, .. } => {
                        let t = self.token();
                        if let Err(e) = self.poll.registry().register(
                            stream,
                            t,
                            Interest::READABLE | Interest::WRITABLE,
                        ) {
                            let detail = format!("unable to watch the check's socket: {e}");
                            self.sup.input(id, Input::HealthResult { ok: false, detail }, now);
                            return;
                        }
                        self.sources.insert(t, Source::Probe(id));
                        token = Some(t);
                    }
                }
                self.io(id).check = Some(Box::new((check, token)));
            }
            Err(detail) => self.sup.input(id, Input::HealthResult { ok: false, detail }, now),
        }
    }

    /// Abandons a process's check under way: a command is killed, a socket closed.
    pub(super) fn cancel_check(&mut self, id: ProcId) {
        let Some((check, token)) = self.io.get_mut(&id).and_then(|io| io.check.take()).map(|b| *b)
        else {
            return;
        };
        if let Some(t) = token {
            self.sources.remove(t);
        }
        match check {
            crate::health::Check::Exec { pid } => {
                self.check_pids.remove(&pid);
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            crate::health::Check::Socket { mut stream, .. } => {
                let _ = self.poll.registry().deregister(&mut stream);
            }
        }
    }

    /// A check's socket is ready: move it on, and report once it is decided.
    pub(super) fn drive_check(&mut self, id: ProcId, now: Instant) {
        let Some((check, _)) = self.io.get_mut(&id).and_then(|io| io.check.as_deref_mut()) else {
            return;
        };
        if let crate::health::Progress::Done { ok, detail } = check.drive() {
            self.cancel_check(id);
            self.sup.input(id, Input::HealthResult { ok, detail }, now);
        }
    }

    /// Pass a signal on to every running program (whether or not Kahi is PID 1, so that a
    /// signal meant for the programs never ends the daemon).
    pub(super) fn forward(&mut self, signal: Signal) {
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
    pub(super) fn read_notify(&mut self, now: Instant) {
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
}
