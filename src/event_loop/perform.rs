//! The supervisor's actions carried out: spawns (at once while the turn has time, else queued,
//! restarts first), kills, timers armed, state changes announced; and what comes with spawning:
//! cgroups, socket programs' listeners, accept instances.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::sources::Source;
use super::timers::TimerKey;
use super::{EventLoop, SPAWN_SLICE};
use crate::api;
use crate::events::{self, Event, EventType};
use crate::process::machine::{Action, Input};
use crate::supervisor::{ProcId, Stream};
use crate::sys;

impl EventLoop {
    /// Performs every queued action, feeding outcomes back, then answers settled waiters.
    pub(super) fn perform(&mut self, now: Instant) {
        // A group added is told of before its processes' changes; one removed, after them.
        if self.sup.groups_changed.iter().any(|(_, added)| *added) {
            self.publish_groups_where(true);
        }
        if !self.sup.waits_changed.is_empty() {
            self.publish_waits();
        }
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
                Action::SetTimer(kind, at) => self.timers.arm(at, TimerKey::Process(id, kind)),
                Action::Changed { from, to, pid, exit, expected, tries, next_start } => {
                    if !to.is_running() && to != crate::process::State::Stopping {
                        self.close_stdin(id);
                    }
                    // Its pid is gone: a listener's event goes to another, or again to it.
                    if !to.is_signallable() {
                        self.listener_gone(id);
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
                    // A process an update removed is forgotten as it stops: its last change
                    // is told all the same.
                    let known = match self.sup.get(id) {
                        Some(e) => Some((&e.spec, e.proc.oom_killed)),
                        None => self.sup.forgotten.get(&id).map(|spec| (spec, false)),
                    };
                    if let Some((spec, oom_killed)) = known {
                        log::debug!("{}: {from} -> {to}", spec.namespec());
                        // Built only when someone takes it: no subscriber, no work.
                        if self.bus.wants(EventType::of_state(to)) {
                            let change = events::StateChange {
                                process: events::ProcessRef::of(spec),
                                from,
                                to,
                                pid,
                                exitstatus: exit.map(|s| s.code()),
                                expected,
                                tries,
                                next_start_in: next_start
                                    .map(|at| api::round_secs(at.saturating_duration_since(now))),
                                oom_killed,
                            };
                            let ts = crate::timefmt::rfc3339_now();
                            self.publish(Event::ProcessState { change, ts });
                        }
                    }
                }
                Action::Log(level, line) => log::log!(level, "{line}"),
                Action::CheckHealth => self.start_check(id, now),
                Action::CancelHealthCheck => self.cancel_check(id),
                Action::HealthChanged(health) => {
                    if self.bus.wants(EventType::KahiHealth)
                        && let Some(e) = self.sup.get(id)
                    {
                        let process = events::ProcessRef::of(&e.spec);
                        let ts = crate::timefmt::rfc3339_now();
                        self.publish(Event::Health { process, health, ts });
                    }
                }
            }
        }
        self.sup.forgotten.clear();
        // A critical process that exited, or could not be started, ends everything.
        self.end_on_critical(now);
        if !self.sup.groups_changed.is_empty() {
            self.publish_groups();
        }
        if !self.sup.changed.is_empty() {
            let mut forgot = false;
            for id in std::mem::take(&mut self.sup.changed) {
                match self.sup.get(id) {
                    Some(e) if e.spec.instance_of.is_some() => {
                        self.finished_instances.insert(id);
                    }
                    Some(_) => {}
                    // Removed by an update once it stopped: close its files.
                    None => {
                        self.forget(id);
                        forgot = true;
                    }
                }
            }
            // The last process of a removed listener is gone: so is its pool, and its
            // subscription (which would otherwise hold its events, and its ticks' timers).
            if forgot && !self.pools.is_empty() {
                self.sync_pools();
            }
            // The last process of a removed FastCGI program is gone: so is its socket.
            if forgot {
                self.sync_sockets();
            }
            self.poll_waiters(now);
        }
    }

    /// Starts `id`'s process, the time it takes counted against the turn's slice.
    fn spawn(&mut self, id: ProcId) {
        let t = Instant::now();
        self.spawn_one(id);
        self.spawn_spent += t.elapsed();
    }

    fn spawn_one(&mut self, id: ProcId) {
        let now = Instant::now();
        let Some(spec) = self.sup.get(id).map(|e| std::sync::Arc::clone(&e.spec)) else { return };
        let sockets = match self.sockets.fds(&spec.namespec()) {
            Ok(fds) => fds,
            Err(error) => {
                return self.sup.input(id, Input::SpawnFailed { error, transient: false }, now);
            }
        };
        // A FastCGI program's socket is its stdin.
        let stdin = match self.sockets.stdin(&spec) {
            Ok(fd) => fd,
            Err(error) => {
                return self.sup.input(id, Input::SpawnFailed { error, transient: false }, now);
            }
        };
        let joined = self.join_cgroup(id, &spec);
        let cgroup = joined.as_ref().map(|j| j.procs.as_raw_fd());
        let notify = self.notify.as_ref().map(|n| n.path());
        // An instance of an accept program: its connection is stdin, stdout and fd 3. Kahi's
        // copy is closed once the spawn is done.
        let connection = self.io.get_mut(&id).and_then(|io| io.instance_conn.take());
        let raw = connection.as_ref().map(|c| [c.as_raw_fd()]);
        let sockets = raw.as_ref().map_or(&sockets[..], |r| &r[..]);
        let die_with_kahi = self.sup.config.server.kill_orphans;
        let connection = raw.map(|r| r[0]);
        let given = sys::spawn::Given { sockets, cgroup, connection, stdin, die_with_kahi };
        match sys::spawn::spawn(&spec, notify, given) {
            Ok(child) => {
                self.state.spawned(child.pid, spec.namespec(), now);
                if self.spawn_short.remove(&id) {
                    // Those stopped or removed meanwhile wait for nothing.
                    use crate::process::State::{Backoff, Starting};
                    let sup = &self.sup;
                    self.spawn_short.retain(|p| {
                        sup.get(*p).is_some_and(|e| matches!(e.proc.state, Backoff | Starting))
                    });
                    if self.spawn_short.is_empty() {
                        log::info!("starts succeed again ('{}' was started)", spec.namespec());
                    }
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
                    self.add_stdin(id, fd);
                }
                self.listener_started(id);
                // The time of this spawn, not of the turn: startsecs counts from here.
                self.sup.input(id, Input::Spawned { pid: child.pid }, Instant::now());
            }
            Err(error) => {
                let transient = error.transient();
                if transient && self.spawn_short.is_empty() {
                    log::warn!(
                        "unable to start '{}': {}; starts are tried again until it passes (see [server] minfds)",
                        spec.namespec(),
                        error.message
                    );
                }
                if transient {
                    self.spawn_short.insert(id);
                }
                let error = error.message;
                self.sup.input(id, Input::SpawnFailed { error, transient }, Instant::now())
            }
        }
    }

    /// Whether this turn may spawn on: its slice is not used up, and no child has exited since
    /// the turn began (or the last scan of the children).
    fn spawn_time_left(&self) -> bool {
        self.spawn_spent < SPAWN_SLICE && !self.exited.load(Ordering::SeqCst)
    }

    /// Queued restarts, then spawns queued by a large start, for what is left of this turn's
    /// slice, and one spawn at least (a storm of exits must not starve the start). A slice
    /// begins with one queued start, if any: programs crash-looping without a pause keep
    /// restarts always queued, and must not hold the others' starts back forever.
    pub(super) fn spawn_queued(&mut self) {
        if self.restart_queue.is_empty() && self.spawn_queue.is_empty() {
            return;
        }
        let mut start_first = !self.restart_queue.is_empty();
        loop {
            let next =
                if std::mem::take(&mut start_first) { self.spawn_queue.pop_front() } else { None };
            let Some(id) = next
                .or_else(|| self.restart_queue.pop_front())
                .or_else(|| self.spawn_queue.pop_front())
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
        self.sources.insert(token, Source::Pipe { id, stream, fd, pid, grown: false });
        self.io(id).pipes += 1;
    }

    pub(super) fn kill(&mut self, id: ProcId, signal: Signal, group: bool) {
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
                self.io(id).oom_kills = Some(joined.oom_kills);
                Some(joined)
            }
            Err(e) => {
                log::warn!("{}: limits not applied: {e}", spec.namespec());
                None
            }
        }
    }

    /// Binds the sockets of new socket programs, and closes those of removed ones.
    pub(super) fn sync_sockets(&mut self) {
        let sources = &mut self.sources;
        let mut token = || sources.add(Source::Listen);
        self.sockets.sync(&self.sup, self.poll.registry(), &mut token);
        let sockets = &self.sockets;
        self.sources.retain_listen(|t| sockets.owner(t).is_some());
    }

    /// A connection arrived on a socket program's socket.
    pub(super) fn on_connection(&mut self, token: Token, now: Instant) {
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
                self.io(id).instance_conn = Some(conn);
            }
        }
    }

    /// Removes instances that are down once their output is read to the end, and lets the
    /// next waiting connections in.
    pub(super) fn remove_instances(&mut self, now: Instant) {
        if self.finished_instances.is_empty() {
            return;
        }
        let mut templates = HashSet::new();
        for id in std::mem::take(&mut self.finished_instances) {
            let piped = self.io.get(&id).is_some_and(|io| io.pipes > 0);
            let template = self.sup.get(id).and_then(|e| e.spec.instance_of.clone());
            if piped || !self.sup.remove_instance(id) {
                self.finished_instances.insert(id);
                continue;
            }
            self.forget(id);
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
    pub(super) fn note_oom(&mut self, id: ProcId) {
        let before = self.io.get_mut(&id).and_then(|io| io.oom_kills.take());
        let (Some(before), Some(Some(cgroups))) = (before, &self.cgroups) else {
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
}
