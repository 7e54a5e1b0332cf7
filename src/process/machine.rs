//! THE lifecycle of one process, as a pure function:
//! `step(&mut Proc, &ProcessSpec, Input, now) -> Vec<Action>`.
//!
//! No syscalls, no clock, no logging, no globals: the event loop feeds inputs (a request, a
//! spawn's outcome, an exit, a timer) and performs the actions (spawn, signal, arm a timer,
//! emit a state change, write a log line). Every (state, input) pair is decided here on purpose;
//! "nothing happens" is a written case. Transitions follow supervisord's `process.py`.

use std::time::{Duration, Instant};

use log::Level;
use nix::sys::signal::Signal;

use super::backoff::{backoff_delay, restart_reason, restart_wait, round_ms};
pub use super::timers::{TimerKind, Timers};
use super::{ExitStatus, State};
use crate::config::{AutoRestart, Kind, ProcessSpec};

/// The runtime record of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub state: State,
    pub pid: Option<i32>,
    /// Failed starts in a row (supervisord's `backoff`).
    pub backoff: u32,
    /// When the current (or last) instance was spawned.
    pub started_at: Option<Instant>,
    /// When the last instance ended.
    pub stopped_at: Option<Instant>,
    pub exit_status: Option<ExitStatus>,
    /// Why the last start failed, for `status`.
    pub spawn_error: Option<String>,
    /// Spawns after the first one (automatic restarts and retries).
    pub restarts: u64,
    /// Unexpected exits in a row of runs shorter than `backoff_reset`: the restart guard's
    /// count, which grows the wait before each automatic restart.
    pub crashes: u32,
    /// When the last spawn was asked for: the restart guard starts no sooner than
    /// `restart_min_interval` after it.
    pub last_spawn: Option<Instant>,
    /// The current stop had to use SIGKILL.
    pub killed: bool,
    /// STARTING, but waiting for its dependencies before it spawns.
    pub held: bool,
    /// A oneshot whose last run exited with an expected code.
    pub completed: bool,
    /// RUNNING for `ready_delay` already: what depends on it may start.
    pub ready: bool,
    /// The last STATUS= a notify program sent.
    pub status_text: Option<String>,
    /// With a health check, while RUNNING: what the checks say.
    pub health: Option<Health>,
    /// Failed health checks in a row (after start_period).
    pub health_failures: u32,
    /// Its last exit was the kernel's OOM killer (its cgroup's memory_max); the event loop
    /// sets it before the exit is fed in.
    pub oom_killed: bool,
    pub timers: Timers,
}

impl Proc {
    /// In BACKOFF: when the next automatic start is due (a retry, or the restart guard's
    /// wait).
    pub fn next_start(&self) -> Option<Instant> {
        if self.state != State::Backoff {
            return None;
        }
        self.timers.get(TimerKind::Backoff).or(self.timers.get(TimerKind::Restart))
    }
}

impl Default for Proc {
    fn default() -> Self {
        Proc {
            state: State::Stopped,
            pid: None,
            backoff: 0,
            started_at: None,
            stopped_at: None,
            exit_status: None,
            spawn_error: None,
            restarts: 0,
            crashes: 0,
            last_spawn: None,
            killed: false,
            held: false,
            completed: false,
            ready: false,
            oom_killed: false,
            status_text: None,
            health: None,
            health_failures: 0,
            timers: Timers::default(),
        }
    }
}

/// What happened to a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Start it (at boot, by a request, or after an update).
    Start,
    /// Start it, but spawn only on `Release`: its dependencies are not met yet.
    StartHeld,
    /// Its dependencies are met: a held start goes on.
    Release,
    /// A message on NOTIFY_SOCKET from its pid: READY=1, WATCHDOG=1, STATUS=..., STOPPING=1.
    Notify(Notice),
    /// The health check under way passed (true) or failed, with what it saw.
    HealthResult { ok: bool, detail: String },
    /// Stop it.
    Stop,
    /// Send it a signal (a request).
    Signal(Signal),
    /// The spawn asked for succeeded.
    Spawned { pid: i32 },
    /// The spawn asked for failed (the OS error, e.g. "No such file or directory").
    /// `transient`: the system was short of something (fds, processes, memory), not the
    /// program at fault; the start is tried again and does not count toward startretries.
    SpawnFailed { error: String, transient: bool },
    /// Its pid was reaped.
    Exited(ExitStatus),
    /// One of its deadlines passed: the deadline it was armed for, so that one the process
    /// has since moved or cleared is recognised as stale and ignored here.
    Timer(TimerKind, Instant),
}

/// What the machine is told about the world around the process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The daemon is shutting down (or a critical process's exit is about to make it): no
    /// automatic restart.
    pub shutting_down: bool,
    /// For a held start's [`TimerKind::StartTimeout`]: the dependencies it still waits for,
    /// as `db (started)` (a socket program's wait for its first connection is not one).
    pub waiting_for: &'a [String],
}

/// What a process's health checks say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// No check has passed yet.
    Starting,
    Healthy,
    /// `retries` checks in a row failed.
    Unhealthy,
}

impl Health {
    pub fn name(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// One sd_notify message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Ready,
    Watchdog,
    Status(String),
    Stopping,
}

/// What the event loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fork and exec the command; answer with `Spawned` or `SpawnFailed`.
    Spawn,
    /// Send `signal` to the pid, or to its process group.
    Kill { signal: Signal, group: bool },
    /// A deadline was armed (the slot in `Proc::timers` already holds it).
    SetTimer(TimerKind, Instant),
    /// The state changed. What supervisord's PROCESS_STATE events carry is taken at the
    /// moment of the change, so a restart that follows at once cannot erase it.
    Changed {
        from: State,
        to: State,
        /// The pid; for a change caused by an exit, the pid that ended.
        pid: Option<i32>,
        /// How the process ended, when an exit caused this change.
        exit: Option<ExitStatus>,
        /// Whether that exit was expected (`exitcodes`).
        expected: Option<bool>,
        /// Failed starts in a row (supervisord's `tries`).
        tries: u32,
        /// Entering BACKOFF: when the next start is due.
        next_start: Option<Instant>,
    },
    /// A line for the daemon's log.
    Log(Level, String),
    /// Run the health check (its timeout is armed); answer with `HealthResult`.
    CheckHealth,
    /// Abandon the health check under way (it timed out, or the process left RUNNING).
    CancelHealthCheck,
    /// What the health checks say changed.
    HealthChanged(Health),
}

/// Feeds one input to one process.
pub fn step(
    p: &mut Proc,
    spec: &ProcessSpec,
    ctx: &Context<'_>,
    input: Input,
    now: Instant,
) -> Vec<Action> {
    let mut out = Vec::new();
    if let Input::Timer(kind, at) = &input
        && !p.timers.is_current(*kind, *at)
    {
        // A deadline moved or cleared since it was armed: stale, nothing to do.
        return out;
    }
    let name = spec.namespec();
    match (p.state, input) {
        // ---- Start ----
        (s, Input::Start) if s.is_stopped() => {
            // STOPPED|EXITED|FATAL|UNKNOWN -> STARTING: a fresh start forgets earlier failures.
            p.backoff = 0;
            p.crashes = 0;
            if spec.start_delay.is_zero() {
                begin_start(p, now, &mut out);
            } else {
                // STARTING, but nothing is spawned until start_delay has passed.
                hold_start(p, &mut out);
                arm(p, TimerKind::StartDelay, now + spec.start_delay, &mut out);
            }
        }
        (s, Input::StartHeld) if s.is_stopped() => {
            // STOPPED|EXITED|FATAL|UNKNOWN -> STARTING, held until Release.
            p.backoff = 0;
            p.crashes = 0;
            hold_start(p, &mut out);
            p.held = true;
            if (!spec.deps.is_empty() || !spec.after.is_empty()) && !spec.start_timeout.is_zero() {
                arm(p, TimerKind::StartTimeout, now + spec.start_timeout, &mut out);
            }
        }
        (_, Input::Start | Input::StartHeld) => {} // already STARTING, RUNNING, BACKOFF or STOPPING
        (State::Starting, Input::Release) if p.held => {
            p.held = false;
            p.timers.clear(TimerKind::StartTimeout);
            if spec.start_delay.is_zero() {
                spawn(p, now, &mut out);
            } else {
                arm(p, TimerKind::StartDelay, now + spec.start_delay, &mut out);
            }
        }
        (_, Input::Release) => {} // not held: nothing

        // ---- Spawn outcome ----
        (State::Starting, Input::Spawned { pid }) => {
            p.pid = Some(pid);
            p.oom_killed = false;
            p.started_at = Some(now);
            p.spawn_error = None;
            out.push(Action::Log(Level::Info, format!("spawned: '{name}' with pid {pid}")));
            if matches!(spec.kind, Kind::Oneshot | Kind::Notify) {
                // A oneshot stays STARTING while it runs, its exit decides; a notify program
                // until it says READY=1.
            } else if spec.startsecs.is_zero() {
                // STARTING -> RUNNING: startsecs = 0 means up as soon as spawned.
                become_running(p, spec, &name, now, &mut out);
            } else {
                arm(p, TimerKind::StartSecs, now + spec.startsecs, &mut out);
            }
        }
        (State::Starting, Input::SpawnFailed { error, transient: true }) => {
            // The event loop warns once per shortage; each try is a debug line.
            out.push(Action::Log(
                Level::Debug,
                format!("spawnerr: can't start '{name}': {error}; trying again"),
            ));
            p.spawn_error = Some(error);
            // STARTING -> BACKOFF: a shortage; retried without counting toward FATAL.
            let at = now + backoff_delay(spec, p.backoff.max(1));
            wait_in_backoff(p, TimerKind::Backoff, at, None, &mut out);
        }
        (State::Starting, Input::SpawnFailed { error, .. }) => {
            out.push(Action::Log(Level::Info, format!("spawnerr: can't start '{name}': {error}")));
            p.spawn_error = Some(error);
            // STARTING -> BACKOFF: the spawn itself failed.
            enter_backoff(p, spec, &name, now, None, &mut out);
        }
        (State::Stopping, Input::Spawned { pid }) if p.pid.is_none() => {
            // A stop reached the process while its spawn was still queued: keep the pid so
            // it is supervised, and stop it now (the SIGKILL deadline is already armed).
            p.pid = Some(pid);
            p.started_at = Some(now);
            out.push(Action::Log(Level::Info, format!("spawned: '{name}' with pid {pid}")));
            out.push(Action::Kill { signal: spec.stopsignal, group: spec.stopasgroup });
        }
        (State::Stopping, Input::SpawnFailed { error, .. }) if p.pid.is_none() => {
            out.push(Action::Log(Level::Info, format!("spawnerr: can't start '{name}': {error}")));
            p.spawn_error = Some(error);
            p.timers.clear(TimerKind::StopKill);
            // STOPPING -> STOPPED: nothing ever ran.
            change(p, State::Stopped, &mut out);
        }
        (_, Input::Spawned { .. } | Input::SpawnFailed { .. }) => {
            out.push(Action::Log(
                Level::Warn,
                format!("can't happen: spawn outcome for '{name}' in state {}", p.state),
            ));
        }

        // ---- Exit ----
        (State::Starting, Input::Exited(status)) if spec.kind == Kind::Oneshot => {
            let exit = ended(p, spec, status, now);
            if exit.expected {
                p.completed = true;
                p.backoff = 0;
                out.push(Action::Log(Level::Info, format!("exited: {name} ({status}; expected)")));
                out.push(Action::Log(Level::Info, format!("success: {name} completed")));
                // STARTING -> RUNNING (remain_after_exit, without a pid) or EXITED.
                let to = if spec.remain_after_exit { State::Running } else { State::Exited };
                p.ready = to == State::Running;
                change_after(p, to, Some(&exit), &mut out);
            } else {
                out.push(Action::Log(
                    Level::Info,
                    format!("exited: {name} ({status}; not expected)"),
                ));
                p.spawn_error = Some(format!("{status} (not expected)"));
                // STARTING -> BACKOFF: a oneshot that failed is retried like a failed start.
                enter_backoff(p, spec, &name, now, Some(&exit), &mut out);
            }
        }
        (State::Starting, Input::Exited(status)) => {
            p.timers.clear(TimerKind::StartSecs);
            let mut exit = ended(p, spec, status, now);
            // Whatever its code, an exit before startsecs is a failed start.
            exit.expected = false;
            out.push(Action::Log(Level::Info, format!("exited: {name} ({status}; not expected)")));
            p.spawn_error = Some("Exited too quickly (process log may have details)".into());
            // STARTING -> BACKOFF: exited before startsecs.
            enter_backoff(p, spec, &name, now, Some(&exit), &mut out);
        }
        (State::Running, Input::Exited(status)) => {
            let ran = p.started_at.map(|at| now.saturating_duration_since(at));
            let exit = ended(p, spec, status, now);
            let word = if exit.expected { "expected" } else { "not expected" };
            out.push(Action::Log(Level::Info, format!("exited: {name} ({status}; {word})")));
            // RUNNING -> EXITED
            change_after(p, State::Exited, Some(&exit), &mut out);
            // No automatic restarts while shutting down, as supervisord: stop what exits.
            let restart = !ctx.shutting_down
                && match spec.autorestart {
                    AutoRestart::Always => true,
                    AutoRestart::Never => false,
                    AutoRestart::Unexpected => !exit.expected,
                };
            if restart {
                // A SIGKILL that Kahi did not send (an operator's `kill -9`, often meant as
                // "restart it now") is not the program crashing: it does not grow the wait.
                // The kernel's OOM killer's is, where the cgroup tells it apart.
                let killed = matches!(status, ExitStatus::Signaled { signal: 9, .. });
                let crash = !exit.expected && (!killed || p.oom_killed);
                let wait = restart_wait(p, spec, exit.expected, crash, ran, now);
                if wait.is_zero() {
                    // EXITED -> STARTING: autorestart, at once (it ran long enough).
                    p.restarts += 1;
                    begin_start(p, now, &mut out);
                } else {
                    // EXITED -> BACKOFF: autorestart, held back by the restart guard.
                    out.push(Action::Log(
                        Level::Info,
                        format!(
                            "{name}: restarting in {} s ({})",
                            secs_text(round_ms(wait)),
                            restart_reason(p, spec, ran)
                        ),
                    ));
                    wait_in_backoff(p, TimerKind::Restart, now + wait, None, &mut out);
                }
            }
        }
        (State::Stopping, Input::Exited(status)) => {
            p.timers.clear(TimerKind::StopKill);
            let exit = ended(p, spec, status, now);
            out.push(Action::Log(Level::Info, format!("stopped: {name} ({status})")));
            // STOPPING -> STOPPED
            change_after(p, State::Stopped, Some(&exit), &mut out);
        }
        (_, Input::Exited(status)) => {
            out.push(Action::Log(
                Level::Warn,
                format!("can't happen: '{name}' exited ({status}) in state {}", p.state),
            ));
        }

        // ---- Stop ----
        (State::Starting, Input::Stop)
            if p.held || p.timers.get(TimerKind::StartDelay).is_some() =>
        {
            p.timers.clear(TimerKind::StartDelay);
            p.timers.clear(TimerKind::StartTimeout);
            p.held = false;
            // STARTING -> STOPPED: still waiting (dependencies, start_delay), nothing runs.
            change(p, State::Stopped, &mut out);
        }
        (State::Running, Input::Stop) if p.pid.is_none() => {
            // RUNNING -> STOPPED: a completed oneshot with remain_after_exit; nothing runs.
            change(p, State::Stopped, &mut out);
        }
        (State::Starting | State::Running, Input::Stop) => {
            p.timers.clear(TimerKind::StartSecs);
            p.killed = false;
            let signal = spec.stopsignal;
            out.push(Action::Log(
                Level::Debug,
                format!("stopping '{name}' with {}", signal.as_str()),
            ));
            out.push(Action::Kill { signal, group: spec.stopasgroup });
            arm(p, TimerKind::StopKill, now + spec.stopwaitsecs, &mut out);
            // STARTING|RUNNING -> STOPPING
            change(p, State::Stopping, &mut out);
        }
        (State::Backoff, Input::Stop) => {
            p.timers.clear(TimerKind::Backoff);
            p.timers.clear(TimerKind::Restart);
            p.backoff = 0;
            // BACKOFF -> STOPPED: nothing runs, cancel the retry.
            change(p, State::Stopped, &mut out);
        }
        (_, Input::Stop) => {} // STOPPING already, or nothing running

        // ---- Signal ----
        (s, Input::Signal(signal)) if s.is_signallable() && p.pid.is_some() => {
            out.push(Action::Kill { signal, group: false });
        }
        (_, Input::Signal(_)) => {} // nothing to signal

        // ---- Timers ----
        (State::Starting, Input::Timer(TimerKind::StartTimeout, _))
            if p.held && !ctx.waiting_for.is_empty() =>
        {
            p.timers.clear(TimerKind::StartTimeout);
            p.held = false;
            let why = format!(
                "waiting for {} timed out after {} s",
                ctx.waiting_for.join(", "),
                secs_text(spec.start_timeout)
            );
            out.push(Action::Log(Level::Warn, format!("gave up: {name}: {why}")));
            p.spawn_error = Some(why);
            // STARTING -> FATAL: its dependencies were not met within the start timeout.
            change(p, State::Fatal, &mut out);
        }
        (State::Starting, Input::Timer(TimerKind::StartSecs, _)) => {
            p.timers.clear(TimerKind::StartSecs);
            // STARTING -> RUNNING: stayed up startsecs.
            become_running(p, spec, &name, now, &mut out);
        }
        // ---- sd_notify ----
        (State::Starting, Input::Notify(Notice::Ready))
            if spec.kind == Kind::Notify && p.pid.is_some() =>
        {
            // STARTING -> RUNNING: the program says it is ready.
            become_running(p, spec, &name, now, &mut out);
        }
        (State::Running, Input::Notify(Notice::Watchdog)) if !spec.watchdog_sec.is_zero() => {
            arm(p, TimerKind::Watchdog, now + spec.watchdog_sec, &mut out);
        }
        (_, Input::Notify(Notice::Status(text))) => p.status_text = Some(text),
        (State::Running, Input::Notify(Notice::Stopping)) => {
            out.push(Action::Log(Level::Info, format!("{name} says STOPPING=1")));
        }
        (_, Input::Notify(_)) => {} // READY=1 again, or a ping with no watchdog: nothing
        (State::Running, Input::Timer(TimerKind::Watchdog, _)) if !spec.watchdog_sec.is_zero() => {
            p.timers.clear(TimerKind::Watchdog);
            out.push(Action::Log(
                Level::Warn,
                format!(
                    "{name}: no WATCHDOG=1 for {} s (watchdog_sec); aborting it with SIGABRT",
                    secs_text(spec.watchdog_sec)
                ),
            ));
            // As systemd: SIGABRT, and the exit that follows is an unexpected one.
            out.push(Action::Kill { signal: Signal::SIGABRT, group: false });
        }
        // ---- health checks ----
        (State::Running, Input::Timer(TimerKind::HealthCheck, _)) if spec.healthcheck.is_some() => {
            p.timers.clear(TimerKind::HealthCheck);
            let timeout = spec.healthcheck.as_ref().map_or(Duration::ZERO, |h| h.timeout);
            out.push(Action::CheckHealth);
            arm(p, TimerKind::HealthTimeout, now + timeout, &mut out);
        }
        (State::Running, Input::Timer(TimerKind::HealthTimeout, _))
            if spec.healthcheck.is_some() =>
        {
            p.timers.clear(TimerKind::HealthTimeout);
            out.push(Action::CancelHealthCheck);
            let timeout = spec.healthcheck.as_ref().map_or(Duration::ZERO, |h| h.timeout);
            health_result(
                p,
                spec,
                &name,
                false,
                &format!("no answer within {} s", secs_text(timeout)),
                now,
                &mut out,
            );
        }
        (State::Running, Input::HealthResult { ok, detail })
            if p.timers.get(TimerKind::HealthTimeout).is_some() =>
        {
            p.timers.clear(TimerKind::HealthTimeout);
            health_result(p, spec, &name, ok, &detail, now, &mut out);
        }
        (_, Input::HealthResult { .. }) => {} // a check of a run that is over: nothing
        (State::Running, Input::Timer(TimerKind::ReadyDelay, _)) => {
            p.timers.clear(TimerKind::ReadyDelay);
            // RUNNING for ready_delay: ready for what depends on it.
            p.ready = true;
        }
        (State::Starting, Input::Timer(TimerKind::StartDelay, _)) => {
            p.timers.clear(TimerKind::StartDelay);
            // STARTING: start_delay passed, spawn.
            spawn(p, now, &mut out);
        }
        (State::Backoff, Input::Timer(TimerKind::Backoff, _))
            if p.timers.get(TimerKind::Backoff).is_some() =>
        {
            p.timers.clear(TimerKind::Backoff);
            // BACKOFF -> STARTING: try again.
            p.restarts += 1;
            begin_start(p, now, &mut out);
        }
        (State::Backoff, Input::Timer(TimerKind::Restart, _))
            if p.timers.get(TimerKind::Restart).is_some() =>
        {
            p.timers.clear(TimerKind::Restart);
            // BACKOFF -> STARTING: the restart guard's wait is over.
            p.restarts += 1;
            begin_start(p, now, &mut out);
        }
        (State::Stopping, Input::Timer(TimerKind::StopKill, _)) => {
            p.timers.clear(TimerKind::StopKill);
            p.killed = true;
            let pid = p.pid.map_or_else(|| "?".to_string(), |p| p.to_string());
            out.push(Action::Log(
                Level::Warn,
                format!("killing '{name}' ({pid}) with SIGKILL: still running {:?} after its stop signal", spec.stopwaitsecs),
            ));
            out.push(Action::Kill { signal: Signal::SIGKILL, group: spec.killasgroup });
        }
        (_, Input::Timer(kind, _)) => {
            // A deadline of a state already left (or a held start that waits for nothing
            // but a connection): nothing to do.
            p.timers.clear(kind);
        }
    }
    if ctx.shutting_down && p.state == State::Backoff {
        p.timers.clear(TimerKind::Backoff);
        p.timers.clear(TimerKind::Restart);
        p.backoff = 0;
        // BACKOFF -> STOPPED: no retry while shutting down; a start that just failed stays
        // down, as supervisord does.
        change(p, State::Stopped, &mut out);
    }
    out
}

fn begin_start(p: &mut Proc, now: Instant, out: &mut Vec<Action>) {
    p.killed = false;
    p.exit_status = None;
    p.completed = false;
    change(p, State::Starting, out);
    spawn(p, now, out);
}

fn spawn(p: &mut Proc, now: Instant, out: &mut Vec<Action>) {
    p.last_spawn = Some(now);
    out.push(Action::Spawn);
}

/// STARTING without a spawn yet: a start_delay or dependencies to wait for.
fn hold_start(p: &mut Proc, out: &mut Vec<Action>) {
    p.killed = false;
    p.exit_status = None;
    p.completed = false;
    change(p, State::Starting, out);
}

fn become_running(
    p: &mut Proc,
    spec: &ProcessSpec,
    name: &str,
    now: Instant,
    out: &mut Vec<Action>,
) {
    p.backoff = 0;
    p.ready = spec.ready_delay.is_zero();
    if !p.ready {
        arm(p, TimerKind::ReadyDelay, now + spec.ready_delay, out);
    }
    if spec.kind == Kind::Notify && !spec.watchdog_sec.is_zero() {
        arm(p, TimerKind::Watchdog, now + spec.watchdog_sec, out);
    }
    if let Some(h) = &spec.healthcheck {
        // The first check a second after RUNNING (or after interval, when shorter), then
        // every interval.
        p.health = Some(Health::Starting);
        p.health_failures = 0;
        arm(p, TimerKind::HealthCheck, now + h.interval.min(Duration::from_secs(1)), out);
    }
    let why = if spec.kind == Kind::Notify {
        "it said READY=1".to_string()
    } else {
        format!(
            "process has stayed up for > than {} seconds (startsecs)",
            secs_text(spec.startsecs)
        )
    };
    out.push(Action::Log(Level::Info, format!("success: {name} entered RUNNING state, {why}")));
    change(p, State::Running, out);
}

fn enter_backoff(
    p: &mut Proc,
    spec: &ProcessSpec,
    name: &str,
    now: Instant,
    exit: Option<&Exit>,
    out: &mut Vec<Action>,
) {
    p.backoff += 1;
    if p.backoff > spec.startretries {
        change_after(p, State::Backoff, exit, out);
        // BACKOFF -> FATAL: too many start retries too quickly.
        p.backoff = 0;
        out.push(Action::Log(
            Level::Info,
            format!("gave up: {name} entered FATAL state, too many start retries too quickly"),
        ));
        change(p, State::Fatal, out);
    } else {
        // The retry waits its back-off alone: failed starts end in FATAL after startretries,
        // so they cannot loop; the restart guard is for processes that did run.
        let at = now + backoff_delay(spec, p.backoff);
        wait_in_backoff(p, TimerKind::Backoff, at, exit, out);
    }
}

/// -> BACKOFF until `at`, when `kind` fires. The deadline is armed before the change, so that
/// the change carries it.
fn wait_in_backoff(
    p: &mut Proc,
    kind: TimerKind,
    at: Instant,
    exit: Option<&Exit>,
    out: &mut Vec<Action>,
) {
    p.timers.set(kind, at);
    change_after(p, State::Backoff, exit, out);
    out.push(Action::SetTimer(kind, at));
}

/// One health check's outcome: healthy at once on a pass; unhealthy after `retries` failures
/// in a row, not counting those within `start_period` of the start before a first pass; the
/// next check armed.
fn health_result(
    p: &mut Proc,
    spec: &ProcessSpec,
    name: &str,
    ok: bool,
    detail: &str,
    now: Instant,
    out: &mut Vec<Action>,
) {
    let Some(h) = &spec.healthcheck else { return };
    if ok {
        p.health_failures = 0;
        if p.health != Some(Health::Healthy) {
            out.push(Action::Log(Level::Info, format!("{name} is healthy")));
            p.health = Some(Health::Healthy);
            out.push(Action::HealthChanged(Health::Healthy));
        }
    } else {
        // As Docker's start period: until the first pass, and no longer than start_period.
        let grace = p.health == Some(Health::Starting)
            && p.started_at.is_some_and(|at| now < at + h.start_period);
        if !grace {
            p.health_failures += 1;
            // Counted against retries until they are spent; then only in a row.
            let count = if p.health_failures <= h.retries {
                format!("{}/{}", p.health_failures, h.retries)
            } else {
                format!("{} in a row", p.health_failures)
            };
            out.push(Action::Log(
                Level::Info,
                format!("{name}: health check failed ({count}): {detail}"),
            ));
            if p.health_failures >= h.retries && p.health != Some(Health::Unhealthy) {
                out.push(Action::Log(
                    Level::Warn,
                    format!(
                        "{name} is unhealthy: {} health checks in a row failed",
                        p.health_failures
                    ),
                ));
                p.health = Some(Health::Unhealthy);
                out.push(Action::HealthChanged(Health::Unhealthy));
            }
        }
    }
    arm(p, TimerKind::HealthCheck, now + h.interval, out);
}

/// An exit, as the state change it causes reports it.
struct Exit {
    pid: Option<i32>,
    status: ExitStatus,
    expected: bool,
}

fn ended(p: &mut Proc, spec: &ProcessSpec, status: ExitStatus, now: Instant) -> Exit {
    let pid = p.pid.take();
    p.exit_status = Some(status);
    p.stopped_at = Some(now);
    let expected = status.expected(&spec.exitcodes);
    Exit { pid, status, expected }
}

fn arm(p: &mut Proc, kind: TimerKind, at: Instant, out: &mut Vec<Action>) {
    p.timers.set(kind, at);
    out.push(Action::SetTimer(kind, at));
}

fn change(p: &mut Proc, to: State, out: &mut Vec<Action>) {
    change_after(p, to, None, out);
}

/// A state change, caused by `exit` when there is one.
fn change_after(p: &mut Proc, to: State, exit: Option<&Exit>, out: &mut Vec<Action>) {
    let from = p.state;
    if to != State::Running {
        p.ready = false;
        p.timers.clear(TimerKind::ReadyDelay);
        p.timers.clear(TimerKind::Watchdog);
        p.timers.clear(TimerKind::HealthCheck);
        if p.timers.get(TimerKind::HealthTimeout).is_some() {
            p.timers.clear(TimerKind::HealthTimeout);
            out.push(Action::CancelHealthCheck);
        }
        p.health = None;
        p.health_failures = 0;
    }
    if to == State::Starting {
        p.status_text = None;
    } else {
        p.timers.clear(TimerKind::StartTimeout);
    }
    p.state = to;
    let next_start = p.next_start();
    out.push(Action::Changed {
        from,
        to,
        pid: exit.map_or(p.pid, |e| e.pid),
        exit: exit.map(|e| e.status),
        expected: exit.map(|e| e.expected),
        tries: p.backoff,
        next_start,
    });
}

/// Seconds as a person writes them: `2`, `1.5`, `1.503`, from the integer parts, so that no
/// float's binary rounding shows (1.503 s as an f64 prints 1.5030000000000001).
pub(super) fn secs_text(d: Duration) -> String {
    match d.subsec_nanos() {
        0 => d.as_secs().to_string(),
        n => format!("{}.{}", d.as_secs(), format!("{n:09}").trim_end_matches('0')),
    }
}

// A test that indexes out of range fails, as it should: the lint is for the daemon's paths.
#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests;
