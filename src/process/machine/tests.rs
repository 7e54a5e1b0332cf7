//! One test per (state, input) cell of the lifecycle, then whole paths through it.
//!
//! Time is a fake clock: `t0` and offsets from it. No process is spawned and nothing sleeps;
//! the "world" (spawn outcomes, exits) is a list of inputs fed at chosen instants.

use std::time::{Duration, Instant};

use log::Level;
use nix::sys::signal::Signal;

use super::{Action, Context, Input, Proc, TimerKind};
use crate::config::{AutoRestart, ProcessSpec};
use crate::process::{ExitStatus, State};

/// The pid every fake spawn gets.
const PID: i32 = 42;

const ALL_TIMERS: [TimerKind; 10] = [
    TimerKind::StartSecs,
    TimerKind::Backoff,
    TimerKind::StopKill,
    TimerKind::StartDelay,
    TimerKind::ReadyDelay,
    TimerKind::Watchdog,
    TimerKind::HealthCheck,
    TimerKind::HealthTimeout,
    TimerKind::Restart,
    TimerKind::StartTimeout,
];

// ---- building blocks ----

/// A process named `web` with supervisord's defaults: startsecs 1, startretries 3,
/// autorestart unexpected, exitcodes [0], stopsignal TERM, stopwaitsecs 10.
fn spec() -> ProcessSpec {
    ProcessSpec {
        name: "web".into(),
        group: "web".into(),
        program: "web".into(),
        argv: vec!["/usr/bin/web".into()],
        priority: 999,
        autostart: true,
        startsecs: secs(1),
        startretries: 3,
        backoff_initial: Duration::from_secs(1),
        backoff_factor: None,
        backoff_max: None,
        restart_min_interval: Duration::from_secs(1),
        backoff_reset: Duration::from_secs(60),
        start_delay: Duration::ZERO,
        ready_delay: Duration::ZERO,
        watchdog_sec: Duration::ZERO,
        healthcheck: None,
        kind: crate::config::Kind::Simple,
        remain_after_exit: false,
        deps: Vec::new(),
        after: Vec::new(),
        autorestart: AutoRestart::Unexpected,
        exitcodes: vec![0],
        stopsignal: Signal::SIGTERM,
        stopwaitsecs: secs(10),
        stopasgroup: false,
        killasgroup: false,
        user: None,
        directory: None,
        umask: None,
        environment: Vec::new(),
        clean_environment: false,
        redirect_stderr: false,
        stdout_capture_maxbytes: 1 << 20,
        stderr_capture_maxbytes: 1 << 20,
        stdout_log: None,
        stderr_log: None,
        secrets: Vec::new(),
        strip_ansi: false,
        stdin_pipe: false,
        critical: false,
        listen: Vec::new(),
        accept: false,
        max_instances: 64,
        instance_of: None,
        limits: Vec::new(),
        cgroup: Default::default(),
        stdout_syslog: false,
        stderr_syslog: false,
    }
}

/// The default spec with some settings changed.
fn spec_with(change: impl FnOnce(&mut ProcessSpec)) -> ProcessSpec {
    let mut s = spec();
    change(&mut s);
    s
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn exit(code: i32) -> Input {
    Input::Exited(ExitStatus::Exited(code))
}

fn killed_by(signal: Signal) -> Input {
    Input::Exited(ExitStatus::Signaled { signal: signal as i32, core_dumped: false })
}

fn spawned() -> Input {
    Input::Spawned { pid: PID }
}

fn spawn_failed() -> Input {
    Input::SpawnFailed { error: "No such file or directory".into(), transient: false }
}

/// The deadline of `kind` passing at `at` (a stale one when `at` is not the armed deadline).
fn timer(kind: TimerKind, at: Instant) -> Input {
    Input::Timer(kind, at)
}

/// The armed deadline of `kind` passing (at whatever instant the test feeds it).
fn due(p: &Proc, kind: TimerKind) -> Input {
    Input::Timer(kind, p.timers.get(kind).expect("the deadline is armed"))
}

fn info(line: &str) -> Action {
    Action::Log(Level::Info, line.into())
}

fn warn(line: &str) -> Action {
    Action::Log(Level::Warn, line.into())
}

/// A state change as [`step`] shows it: from and to only. What the change carries besides
/// (pid, exit, expected, tries, next start) is checked by the tests of `super::step` itself.
fn changed(from: State, to: State) -> Action {
    Action::Changed { from, to, pid: None, exit: None, expected: None, tries: 0, next_start: None }
}

/// The machine's step, with state changes reduced to from and to.
fn step(p: &mut Proc, spec: &ProcessSpec, input: Input, now: Instant) -> Vec<Action> {
    super::step(p, spec, &Context::default(), input, now)
        .into_iter()
        .map(|a| match a {
            Action::Changed { from, to, .. } => changed(from, to),
            other => other,
        })
        .collect()
}

fn kill(signal: Signal, group: bool) -> Action {
    Action::Kill { signal, group }
}

fn none() -> Vec<Action> {
    Vec::new()
}

/// Feeds one input with the default spec.
fn feed(p: &mut Proc, input: Input, now: Instant) -> Vec<Action> {
    step(p, &spec(), input, now)
}

/// Asserts that `input` does nothing at all: no action, and the record is untouched.
fn assert_ignored(mut p: Proc, input: Input, now: Instant) {
    let before = p.clone();
    let actions = feed(&mut p, input, now);
    assert_eq!(actions, none());
    assert_eq!(p, before);
}

/// Asserts that `input` only writes `line` to the daemon's log and leaves the record untouched.
fn assert_only_logs(mut p: Proc, input: Input, now: Instant, line: Action) {
    let before = p.clone();
    let actions = feed(&mut p, input, now);
    assert_eq!(actions, [line]);
    assert_eq!(p, before);
}

// ---- each state, reached the way the event loop reaches it (UNKNOWN excepted) ----

/// STOPPED: never started.
fn stopped() -> Proc {
    Proc::default()
}

/// STARTING at t0, the spawn asked for but not answered yet: no pid.
fn starting_unspawned(t0: Instant) -> Proc {
    let mut p = Proc::default();
    feed(&mut p, Input::Start, t0);
    assert_eq!(p.state, State::Starting);
    assert_eq!(p.pid, None);
    p
}

/// STARTING with pid 42 spawned at t0: RUNNING is due at t0 + 1 s.
fn starting(t0: Instant) -> Proc {
    let mut p = starting_unspawned(t0);
    feed(&mut p, spawned(), t0);
    assert_eq!(p.state, State::Starting);
    assert_eq!(p.timers.get(TimerKind::StartSecs), Some(t0 + secs(1)));
    p
}

/// RUNNING since t0 + 1 s, pid 42.
fn running(t0: Instant) -> Proc {
    let mut p = starting(t0);
    feed(&mut p, timer(TimerKind::StartSecs, t0 + secs(1)), t0 + secs(1));
    assert_eq!(p.state, State::Running);
    p
}

/// BACKOFF: spawned at t0, exited at t0 + 0.5 s; the retry is due at t0 + 1.5 s.
fn backoff(t0: Instant) -> Proc {
    let mut p = starting(t0);
    feed(&mut p, exit(1), t0 + ms(500));
    assert_eq!(p.state, State::Backoff);
    assert_eq!(p.timers.get(TimerKind::Backoff), Some(t0 + ms(1500)));
    p
}

/// STOPPING: RUNNING, asked to stop at t0 + 5 s; SIGKILL is due at t0 + 15 s.
fn stopping(t0: Instant) -> Proc {
    let mut p = running(t0);
    feed(&mut p, Input::Stop, t0 + secs(5));
    assert_eq!(p.state, State::Stopping);
    assert_eq!(p.timers.get(TimerKind::StopKill), Some(t0 + secs(15)));
    p
}

/// EXITED: RUNNING, then exited 0 (expected, so not restarted) at t0 + 5 s.
fn exited(t0: Instant) -> Proc {
    let mut p = running(t0);
    feed(&mut p, exit(0), t0 + secs(5));
    assert_eq!(p.state, State::Exited);
    p
}

/// FATAL: four spawn failures in a row (t0, +1 s, +3 s, +6 s).
fn fatal(t0: Instant) -> Proc {
    let mut p = starting_unspawned(t0);
    let mut now = t0;
    feed(&mut p, spawn_failed(), now);
    while let Some(at) = p.timers.get(TimerKind::Backoff) {
        now = at;
        feed(&mut p, timer(TimerKind::Backoff, now), now);
        feed(&mut p, spawn_failed(), now);
    }
    assert_eq!(p.state, State::Fatal);
    assert_eq!(now, t0 + secs(6));
    p
}

/// UNKNOWN: no input leads there; set directly.
fn unknown() -> Proc {
    Proc { state: State::Unknown, ..Proc::default() }
}

/// The fake world's answer to a spawn: inputs fed at these delays after it.
type Script = Vec<(Duration, Input)>;

/// Feeds `first` at `t0`, then lets time run until nothing is left to happen. Each `Spawn` is
/// answered by `world(n)` (n counts spawns from 1). Time jumps to the next scripted input or
/// the earliest armed deadline, whichever comes first, as quinn's `drive()` does. Returns
/// every action with the instant it was taken. Panics after 100 steps, so that a restart loop
/// cannot hang the test.
fn drive_until_idle(
    p: &mut Proc,
    spec: &ProcessSpec,
    first: Input,
    t0: Instant,
    mut world: impl FnMut(u32) -> Script,
) -> Vec<(Instant, Action)> {
    let mut log = Vec::new();
    let mut pending: Vec<(Instant, Input)> = vec![(t0, first)];
    let mut spawns = 0;
    for _ in 0..100 {
        let next_input = pending.iter().enumerate().min_by_key(|(_, (at, _))| *at);
        let next_input = next_input.map(|(i, (at, _))| (i, *at));
        let next_timer =
            ALL_TIMERS.into_iter().filter_map(|k| p.timers.get(k).map(|at| (at, k))).min();
        let (now, input) = match (next_input, next_timer) {
            (Some((i, at)), Some((deadline, _))) if at <= deadline => (at, pending.remove(i).1),
            (Some((i, at)), None) => (at, pending.remove(i).1),
            (_, Some((deadline, kind))) => (deadline, timer(kind, deadline)),
            (None, None) => return log,
        };
        for action in step(p, spec, input, now) {
            if action == Action::Spawn {
                spawns += 1;
                pending.extend(world(spawns).into_iter().map(|(after, i)| (now + after, i)));
            }
            log.push((now, action));
        }
    }
    panic!("still busy after 100 steps: {p:?}");
}

/// The SetTimer actions of a drive, as (when set, kind, delay).
fn timers_set(log: &[(Instant, Action)]) -> Vec<(Instant, TimerKind, Duration)> {
    log.iter()
        .filter_map(|(now, a)| match a {
            Action::SetTimer(kind, at) => Some((*now, *kind, *at - *now)),
            _ => None,
        })
        .collect()
}

/// The log lines of a drive, in order.
fn lines(log: &[(Instant, Action)]) -> Vec<String> {
    log.iter()
        .filter_map(|(_, a)| match a {
            Action::Log(_, line) => Some(line.clone()),
            _ => None,
        })
        .collect()
}

fn count_spawns(log: &[(Instant, Action)]) -> usize {
    log.iter().filter(|(_, a)| *a == Action::Spawn).count()
}

// ==== STOPPED ====

#[test]
fn stopped_start_goes_starting_and_spawns() {
    let t0 = Instant::now();
    let mut p = stopped();
    assert_eq!(
        feed(&mut p, Input::Start, t0),
        [changed(State::Stopped, State::Starting), Action::Spawn]
    );
    assert_eq!(p.state, State::Starting);
    assert_eq!(p.pid, None);
    assert_eq!(p.restarts, 0, "a requested start is not a restart");
}

#[test]
fn stopped_stop_does_nothing() {
    assert_ignored(stopped(), Input::Stop, Instant::now());
}

#[test]
fn stopped_signal_does_nothing() {
    assert_ignored(stopped(), Input::Signal(Signal::SIGHUP), Instant::now());
}

#[test]
fn stopped_spawned_only_logs_cant_happen() {
    let line = warn("can't happen: spawn outcome for 'web' in state STOPPED");
    assert_only_logs(stopped(), spawned(), Instant::now(), line);
}

#[test]
fn stopped_spawn_failed_only_logs_cant_happen() {
    let line = warn("can't happen: spawn outcome for 'web' in state STOPPED");
    assert_only_logs(stopped(), spawn_failed(), Instant::now(), line);
}

#[test]
fn stopped_exited_only_logs_cant_happen() {
    let line = warn("can't happen: 'web' exited (exit status 1) in state STOPPED");
    assert_only_logs(stopped(), exit(1), Instant::now(), line);
}

#[test]
fn stopped_timer_startsecs_does_nothing() {
    assert_ignored(stopped(), timer(TimerKind::StartSecs, Instant::now()), Instant::now());
}

#[test]
fn stopped_timer_backoff_does_nothing() {
    assert_ignored(stopped(), timer(TimerKind::Backoff, Instant::now()), Instant::now());
}

#[test]
fn stopped_timer_stopkill_does_nothing() {
    assert_ignored(stopped(), timer(TimerKind::StopKill, Instant::now()), Instant::now());
}

// ==== STARTING ====

#[test]
fn starting_start_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(starting(t0), Input::Start, t0 + ms(100));
}

#[test]
fn starting_stop_sends_stopsignal_and_goes_stopping() {
    let t0 = Instant::now();
    let mut p = starting(t0);
    let now = t0 + ms(300);
    assert_eq!(
        feed(&mut p, Input::Stop, now),
        [
            Action::Log(Level::Debug, "stopping 'web' with SIGTERM".into()),
            kill(Signal::SIGTERM, false),
            Action::SetTimer(TimerKind::StopKill, now + secs(10)),
            changed(State::Starting, State::Stopping),
        ]
    );
    assert_eq!(p.state, State::Stopping);
    assert_eq!(p.timers.get(TimerKind::StartSecs), None, "RUNNING is no longer due");
    assert_eq!(p.pid, Some(PID));
}

#[test]
fn starting_signal_is_sent_to_the_pid() {
    let t0 = Instant::now();
    let mut p = starting(t0);
    let before = p.clone();
    assert_eq!(feed(&mut p, Input::Signal(Signal::SIGUSR1), t0), [kill(Signal::SIGUSR1, false)]);
    assert_eq!(p, before);
}

#[test]
fn starting_signal_before_the_spawn_answered_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(starting_unspawned(t0), Input::Signal(Signal::SIGUSR1), t0);
}

#[test]
fn starting_spawned_logs_the_pid_and_arms_startsecs() {
    let t0 = Instant::now();
    let mut p = starting_unspawned(t0);
    assert_eq!(
        feed(&mut p, spawned(), t0),
        [info("spawned: 'web' with pid 42"), Action::SetTimer(TimerKind::StartSecs, t0 + secs(1))]
    );
    assert_eq!(p.state, State::Starting);
    assert_eq!(p.pid, Some(PID));
    assert_eq!(p.started_at, Some(t0));
}

#[test]
fn starting_spawned_with_startsecs_zero_goes_running_at_once() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.startsecs = Duration::ZERO);
    let mut p = starting_unspawned(t0);
    assert_eq!(
        step(&mut p, &spec, spawned(), t0),
        [
            info("spawned: 'web' with pid 42"),
            info(
                "success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)"
            ),
            changed(State::Starting, State::Running),
        ]
    );
    assert_eq!(p.state, State::Running);
    assert_eq!(p.timers.get(TimerKind::StartSecs), None);
}

#[test]
fn starting_spawn_failed_goes_backoff_with_the_error() {
    let t0 = Instant::now();
    let mut p = starting_unspawned(t0);
    assert_eq!(
        feed(&mut p, spawn_failed(), t0),
        [
            info("spawnerr: can't start 'web': No such file or directory"),
            changed(State::Starting, State::Backoff),
            Action::SetTimer(TimerKind::Backoff, t0 + secs(1)),
        ]
    );
    assert_eq!(p.state, State::Backoff);
    assert_eq!(p.backoff, 1);
    assert_eq!(p.spawn_error.as_deref(), Some("No such file or directory"));
    assert_eq!(p.pid, None);
}

#[test]
fn starting_exited_before_startsecs_goes_backoff_even_with_an_expected_code() {
    // supervisord: leaving before startsecs is a failed start, whatever the exit code.
    let t0 = Instant::now();
    let mut p = starting(t0);
    let now = t0 + ms(500);
    assert_eq!(
        feed(&mut p, exit(0), now),
        [
            info("exited: web (exit status 0; not expected)"),
            changed(State::Starting, State::Backoff),
            Action::SetTimer(TimerKind::Backoff, now + secs(1)),
        ]
    );
    assert_eq!(p.state, State::Backoff);
    assert_eq!(p.pid, None);
    assert_eq!(p.exit_status, Some(ExitStatus::Exited(0)));
    assert_eq!(p.stopped_at, Some(now));
    assert_eq!(p.spawn_error.as_deref(), Some("Exited too quickly (process log may have details)"));
    assert_eq!(p.timers.get(TimerKind::StartSecs), None, "the RUNNING deadline is disarmed");
}

#[test]
fn starting_killed_by_a_signal_goes_backoff() {
    let t0 = Instant::now();
    let mut p = starting(t0);
    let actions = feed(&mut p, killed_by(Signal::SIGSEGV), t0 + ms(200));
    assert_eq!(actions[0], info("exited: web (terminated by SIGSEGV; not expected)"));
    assert_eq!(p.state, State::Backoff);
}

#[test]
fn starting_timer_startsecs_goes_running() {
    let t0 = Instant::now();
    let mut p = starting(t0);
    assert_eq!(
        feed(&mut p, timer(TimerKind::StartSecs, t0 + secs(1)), t0 + secs(1)),
        [
            info(
                "success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)"
            ),
            changed(State::Starting, State::Running),
        ]
    );
    assert_eq!(p.state, State::Running);
    assert_eq!(p.timers.get(TimerKind::StartSecs), None);
}

#[test]
fn starting_timer_backoff_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(starting(t0), timer(TimerKind::Backoff, t0 + ms(500)), t0 + ms(500));
}

#[test]
fn starting_timer_stopkill_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(starting(t0), timer(TimerKind::StopKill, t0 + ms(500)), t0 + ms(500));
}

// ==== RUNNING ====

#[test]
fn running_start_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(running(t0), Input::Start, t0 + secs(2));
}

#[test]
fn running_stop_sends_stopsignal_arms_stopkill_and_goes_stopping() {
    let t0 = Instant::now();
    let mut p = running(t0);
    let now = t0 + secs(5);
    assert_eq!(
        feed(&mut p, Input::Stop, now),
        [
            Action::Log(Level::Debug, "stopping 'web' with SIGTERM".into()),
            kill(Signal::SIGTERM, false),
            Action::SetTimer(TimerKind::StopKill, now + secs(10)),
            changed(State::Running, State::Stopping),
        ]
    );
    assert_eq!(p.state, State::Stopping);
    assert!(!p.killed);
}

#[test]
fn running_stop_uses_the_configured_stopsignal_and_stopasgroup() {
    let t0 = Instant::now();
    let spec = spec_with(|s| {
        s.stopsignal = Signal::SIGQUIT;
        s.stopasgroup = true;
        s.killasgroup = true;
        s.stopwaitsecs = secs(3);
    });
    let mut p = running(t0);
    let now = t0 + secs(5);
    assert_eq!(
        step(&mut p, &spec, Input::Stop, now),
        [
            Action::Log(Level::Debug, "stopping 'web' with SIGQUIT".into()),
            kill(Signal::SIGQUIT, true),
            Action::SetTimer(TimerKind::StopKill, now + secs(3)),
            changed(State::Running, State::Stopping),
        ]
    );
}

#[test]
fn running_signal_is_sent_to_the_pid_not_the_group() {
    let t0 = Instant::now();
    let spec = spec_with(|s| {
        s.stopasgroup = true;
        s.killasgroup = true;
    });
    let mut p = running(t0);
    let before = p.clone();
    assert_eq!(
        step(&mut p, &spec, Input::Signal(Signal::SIGHUP), t0),
        [kill(Signal::SIGHUP, false)]
    );
    assert_eq!(p, before);
}

#[test]
fn running_spawned_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: spawn outcome for 'web' in state RUNNING");
    assert_only_logs(running(t0), Input::Spawned { pid: 43 }, t0 + secs(2), line);
}

#[test]
fn running_spawn_failed_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: spawn outcome for 'web' in state RUNNING");
    assert_only_logs(running(t0), spawn_failed(), t0 + secs(2), line);
}

#[test]
fn running_exited_expected_autorestart_unexpected_stays_exited() {
    let t0 = Instant::now();
    let mut p = running(t0);
    let now = t0 + secs(5);
    assert_eq!(
        feed(&mut p, exit(0), now),
        [info("exited: web (exit status 0; expected)"), changed(State::Running, State::Exited)]
    );
    assert_eq!(p.state, State::Exited);
    assert_eq!(p.pid, None);
    assert_eq!(p.exit_status, Some(ExitStatus::Exited(0)));
    assert_eq!(p.stopped_at, Some(now));
    assert_eq!(p.restarts, 0);
}

#[test]
fn running_exited_unexpected_autorestart_unexpected_restarts() {
    let t0 = Instant::now();
    let mut p = running(t0);
    assert_eq!(
        feed(&mut p, exit(1), t0 + secs(5)),
        [
            info("exited: web (exit status 1; not expected)"),
            changed(State::Running, State::Exited),
            changed(State::Exited, State::Starting),
            Action::Spawn,
        ]
    );
    assert_eq!(p.state, State::Starting);
    assert_eq!(p.restarts, 1);
    assert_eq!(p.backoff, 0, "a process that was RUNNING starts its retries afresh");
    assert_eq!(p.exit_status, None, "the new instance has not exited");
}

#[test]
fn running_killed_by_a_signal_autorestart_unexpected_restarts() {
    let t0 = Instant::now();
    let mut p = running(t0);
    let actions = feed(&mut p, killed_by(Signal::SIGKILL), t0 + secs(5));
    assert_eq!(actions[0], info("exited: web (terminated by SIGKILL; not expected)"));
    assert_eq!(actions.last(), Some(&Action::Spawn));
    assert_eq!(p.state, State::Starting);
}

#[test]
fn running_exited_with_a_listed_exitcode_is_expected() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.exitcodes = vec![0, 2]);
    let mut p = running(t0);
    assert_eq!(
        step(&mut p, &spec, exit(2), t0 + secs(5)),
        [info("exited: web (exit status 2; expected)"), changed(State::Running, State::Exited)]
    );
    assert_eq!(p.state, State::Exited);
}

#[test]
fn running_exited_expected_autorestart_always_restarts() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.autorestart = AutoRestart::Always);
    let mut p = running(t0);
    assert_eq!(
        step(&mut p, &spec, exit(0), t0 + secs(5)),
        [
            info("exited: web (exit status 0; expected)"),
            changed(State::Running, State::Exited),
            changed(State::Exited, State::Starting),
            Action::Spawn,
        ]
    );
    assert_eq!(p.restarts, 1);
}

#[test]
fn running_exited_unexpected_autorestart_always_restarts() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.autorestart = AutoRestart::Always);
    let mut p = running(t0);
    let actions = step(&mut p, &spec, exit(3), t0 + secs(5));
    assert_eq!(actions[0], info("exited: web (exit status 3; not expected)"));
    assert_eq!(actions.last(), Some(&Action::Spawn));
    assert_eq!(p.state, State::Starting);
}

#[test]
fn running_exited_expected_autorestart_never_stays_exited() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.autorestart = AutoRestart::Never);
    let mut p = running(t0);
    assert_eq!(
        step(&mut p, &spec, exit(0), t0 + secs(5)),
        [info("exited: web (exit status 0; expected)"), changed(State::Running, State::Exited)]
    );
    assert_eq!(p.state, State::Exited);
}

#[test]
fn running_exited_unexpected_autorestart_never_stays_exited() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.autorestart = AutoRestart::Never);
    let mut p = running(t0);
    assert_eq!(
        step(&mut p, &spec, exit(1), t0 + secs(5)),
        [info("exited: web (exit status 1; not expected)"), changed(State::Running, State::Exited)]
    );
    assert_eq!(p.state, State::Exited);
    assert_eq!(p.restarts, 0);
}

#[test]
fn running_timer_startsecs_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(running(t0), timer(TimerKind::StartSecs, t0 + secs(2)), t0 + secs(2));
}

#[test]
fn running_timer_backoff_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(running(t0), timer(TimerKind::Backoff, t0 + secs(2)), t0 + secs(2));
}

#[test]
fn running_timer_stopkill_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(running(t0), timer(TimerKind::StopKill, t0 + secs(2)), t0 + secs(2));
}

// ==== BACKOFF ====

#[test]
fn backoff_start_does_nothing() {
    // supervisord counts BACKOFF among the running states: "already started".
    let t0 = Instant::now();
    assert_ignored(backoff(t0), Input::Start, t0 + secs(1));
}

#[test]
fn backoff_stop_cancels_the_retry_and_goes_stopped() {
    let t0 = Instant::now();
    let mut p = backoff(t0);
    assert_eq!(feed(&mut p, Input::Stop, t0 + secs(1)), [changed(State::Backoff, State::Stopped)]);
    assert_eq!(p.state, State::Stopped);
    assert_eq!(p.timers.get(TimerKind::Backoff), None);
    assert_eq!(p.backoff, 0);
}

#[test]
fn backoff_signal_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(backoff(t0), Input::Signal(Signal::SIGHUP), t0 + secs(1));
}

#[test]
fn backoff_spawned_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: spawn outcome for 'web' in state BACKOFF");
    assert_only_logs(backoff(t0), spawned(), t0 + secs(1), line);
}

#[test]
fn backoff_spawn_failed_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: spawn outcome for 'web' in state BACKOFF");
    assert_only_logs(backoff(t0), spawn_failed(), t0 + secs(1), line);
}

#[test]
fn backoff_exited_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: 'web' exited (exit status 1) in state BACKOFF");
    assert_only_logs(backoff(t0), exit(1), t0 + secs(1), line);
}

#[test]
fn backoff_timer_startsecs_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(backoff(t0), timer(TimerKind::StartSecs, t0 + secs(1)), t0 + secs(1));
}

#[test]
fn backoff_timer_backoff_retries() {
    let t0 = Instant::now();
    let mut p = backoff(t0);
    assert_eq!(
        feed(&mut p, timer(TimerKind::Backoff, t0 + ms(1500)), t0 + ms(1500)),
        [changed(State::Backoff, State::Starting), Action::Spawn]
    );
    assert_eq!(p.state, State::Starting);
    assert_eq!(p.timers.get(TimerKind::Backoff), None);
    assert_eq!(p.restarts, 1);
    assert_eq!(p.backoff, 1, "the failure still counts until the process stays up");
}

#[test]
fn backoff_timer_stopkill_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(backoff(t0), timer(TimerKind::StopKill, t0 + secs(1)), t0 + secs(1));
}

// ==== STOPPING ====

#[test]
fn stopping_start_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(stopping(t0), Input::Start, t0 + secs(6));
}

#[test]
fn stopping_stop_does_nothing() {
    // The first stop's SIGKILL deadline stands; a second stop does not push it back.
    let t0 = Instant::now();
    assert_ignored(stopping(t0), Input::Stop, t0 + secs(6));
}

#[test]
fn stopping_signal_is_sent_to_the_pid() {
    let t0 = Instant::now();
    let mut p = stopping(t0);
    let before = p.clone();
    assert_eq!(
        feed(&mut p, Input::Signal(Signal::SIGINT), t0 + secs(6)),
        [kill(Signal::SIGINT, false)]
    );
    assert_eq!(p, before);
}

#[test]
fn stopping_spawned_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: spawn outcome for 'web' in state STOPPING");
    assert_only_logs(stopping(t0), Input::Spawned { pid: 43 }, t0 + secs(6), line);
}

#[test]
fn stopping_spawn_failed_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: spawn outcome for 'web' in state STOPPING");
    assert_only_logs(stopping(t0), spawn_failed(), t0 + secs(6), line);
}

#[test]
fn stopping_exited_goes_stopped() {
    let t0 = Instant::now();
    let mut p = stopping(t0);
    let now = t0 + secs(6);
    assert_eq!(
        feed(&mut p, killed_by(Signal::SIGTERM), now),
        [info("stopped: web (terminated by SIGTERM)"), changed(State::Stopping, State::Stopped)]
    );
    assert_eq!(p.state, State::Stopped);
    assert_eq!(p.pid, None);
    assert_eq!(p.stopped_at, Some(now));
    assert_eq!(p.timers.get(TimerKind::StopKill), None, "no SIGKILL for a process that is gone");
    assert!(!p.killed);
}

#[test]
fn stopping_exited_with_an_unexpected_code_still_goes_stopped() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.autorestart = AutoRestart::Always);
    let mut p = stopping(t0);
    assert_eq!(
        step(&mut p, &spec, exit(1), t0 + secs(6)),
        [info("stopped: web (exit status 1)"), changed(State::Stopping, State::Stopped)]
    );
}

#[test]
fn stopping_timer_startsecs_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(stopping(t0), timer(TimerKind::StartSecs, t0 + secs(6)), t0 + secs(6));
}

#[test]
fn stopping_timer_backoff_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(stopping(t0), timer(TimerKind::Backoff, t0 + secs(6)), t0 + secs(6));
}

#[test]
fn stopping_timer_stopkill_sends_sigkill() {
    let t0 = Instant::now();
    let mut p = stopping(t0);
    assert_eq!(
        feed(&mut p, timer(TimerKind::StopKill, t0 + secs(15)), t0 + secs(15)),
        [
            warn("killing 'web' (42) with SIGKILL: still running 10s after its stop signal"),
            kill(Signal::SIGKILL, false),
        ]
    );
    assert_eq!(p.state, State::Stopping, "STOPPED only once the pid is reaped");
    assert!(p.killed);
    assert_eq!(p.timers.get(TimerKind::StopKill), None);
}

// ==== EXITED ====

#[test]
fn exited_start_goes_starting_and_spawns() {
    let t0 = Instant::now();
    let mut p = exited(t0);
    assert_eq!(
        feed(&mut p, Input::Start, t0 + secs(9)),
        [changed(State::Exited, State::Starting), Action::Spawn]
    );
    assert_eq!(p.state, State::Starting);
    assert_eq!(p.exit_status, None);
    assert_eq!(p.restarts, 0);
}

#[test]
fn exited_stop_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(exited(t0), Input::Stop, t0 + secs(9));
}

#[test]
fn exited_signal_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(exited(t0), Input::Signal(Signal::SIGHUP), t0 + secs(9));
}

#[test]
fn exited_spawned_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: spawn outcome for 'web' in state EXITED");
    assert_only_logs(exited(t0), spawned(), t0 + secs(9), line);
}

#[test]
fn exited_spawn_failed_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: spawn outcome for 'web' in state EXITED");
    assert_only_logs(exited(t0), spawn_failed(), t0 + secs(9), line);
}

#[test]
fn exited_exited_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: 'web' exited (exit status 0) in state EXITED");
    assert_only_logs(exited(t0), exit(0), t0 + secs(9), line);
}

#[test]
fn exited_timer_startsecs_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(exited(t0), timer(TimerKind::StartSecs, t0 + secs(9)), t0 + secs(9));
}

#[test]
fn exited_timer_backoff_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(exited(t0), timer(TimerKind::Backoff, t0 + secs(9)), t0 + secs(9));
}

#[test]
fn exited_timer_stopkill_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(exited(t0), timer(TimerKind::StopKill, t0 + secs(9)), t0 + secs(9));
}

// ==== FATAL ====

#[test]
fn fatal_start_goes_starting_with_a_fresh_retry_count() {
    let t0 = Instant::now();
    let mut p = fatal(t0);
    let now = t0 + secs(60);
    assert_eq!(
        feed(&mut p, Input::Start, now),
        [changed(State::Fatal, State::Starting), Action::Spawn]
    );
    assert_eq!(p.backoff, 0);
    // The next failure waits 1 s again, as the first one did.
    let actions = feed(&mut p, spawn_failed(), now);
    assert_eq!(actions.last(), Some(&Action::SetTimer(TimerKind::Backoff, now + secs(1))));
}

#[test]
fn fatal_stop_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(fatal(t0), Input::Stop, t0 + secs(60));
}

#[test]
fn fatal_signal_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(fatal(t0), Input::Signal(Signal::SIGHUP), t0 + secs(60));
}

#[test]
fn fatal_spawned_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: spawn outcome for 'web' in state FATAL");
    assert_only_logs(fatal(t0), spawned(), t0 + secs(60), line);
}

#[test]
fn fatal_spawn_failed_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: spawn outcome for 'web' in state FATAL");
    assert_only_logs(fatal(t0), spawn_failed(), t0 + secs(60), line);
}

#[test]
fn fatal_exited_only_logs_cant_happen() {
    let t0 = Instant::now();
    let line = warn("can't happen: 'web' exited (exit status 1) in state FATAL");
    assert_only_logs(fatal(t0), exit(1), t0 + secs(60), line);
}

#[test]
fn fatal_timer_startsecs_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(fatal(t0), timer(TimerKind::StartSecs, t0 + secs(60)), t0 + secs(60));
}

#[test]
fn fatal_timer_backoff_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(fatal(t0), timer(TimerKind::Backoff, t0 + secs(60)), t0 + secs(60));
}

#[test]
fn fatal_timer_stopkill_does_nothing() {
    let t0 = Instant::now();
    assert_ignored(fatal(t0), timer(TimerKind::StopKill, t0 + secs(60)), t0 + secs(60));
}

// ==== UNKNOWN ====

#[test]
fn unknown_start_goes_starting_and_spawns() {
    let mut p = unknown();
    assert_eq!(
        feed(&mut p, Input::Start, Instant::now()),
        [changed(State::Unknown, State::Starting), Action::Spawn]
    );
    assert_eq!(p.state, State::Starting);
}

#[test]
fn unknown_stop_does_nothing() {
    assert_ignored(unknown(), Input::Stop, Instant::now());
}

#[test]
fn unknown_signal_does_nothing() {
    assert_ignored(unknown(), Input::Signal(Signal::SIGHUP), Instant::now());
}

#[test]
fn unknown_spawned_only_logs_cant_happen() {
    let line = warn("can't happen: spawn outcome for 'web' in state UNKNOWN");
    assert_only_logs(unknown(), spawned(), Instant::now(), line);
}

#[test]
fn unknown_spawn_failed_only_logs_cant_happen() {
    let line = warn("can't happen: spawn outcome for 'web' in state UNKNOWN");
    assert_only_logs(unknown(), spawn_failed(), Instant::now(), line);
}

#[test]
fn unknown_exited_only_logs_cant_happen() {
    let line = warn("can't happen: 'web' exited (exit status 1) in state UNKNOWN");
    assert_only_logs(unknown(), exit(1), Instant::now(), line);
}

#[test]
fn unknown_timer_startsecs_does_nothing() {
    assert_ignored(unknown(), timer(TimerKind::StartSecs, Instant::now()), Instant::now());
}

#[test]
fn unknown_timer_backoff_does_nothing() {
    assert_ignored(unknown(), timer(TimerKind::Backoff, Instant::now()), Instant::now());
}

#[test]
fn unknown_timer_stopkill_does_nothing() {
    assert_ignored(unknown(), timer(TimerKind::StopKill, Instant::now()), Instant::now());
}

// ==== whole paths ====

#[test]
fn spawn_failing_every_time_goes_fatal_after_startretries_plus_one_tries() {
    let t0 = Instant::now();
    let mut p = Proc::default();
    let log = drive_until_idle(&mut p, &spec(), Input::Start, t0, |_| {
        vec![(Duration::ZERO, spawn_failed())]
    });
    assert_eq!(count_spawns(&log), 4, "the first start and startretries = 3 retries");
    // supervisord's back-off: 1 s after the first failure, 2 s after the second, 3 s after the third.
    assert_eq!(
        timers_set(&log),
        [
            (t0, TimerKind::Backoff, secs(1)),
            (t0 + secs(1), TimerKind::Backoff, secs(2)),
            (t0 + secs(3), TimerKind::Backoff, secs(3)),
        ]
    );
    let (when, _) = log.last().unwrap();
    assert_eq!(*when, t0 + secs(6));
    assert_eq!(
        log[log.len() - 3..].iter().map(|(_, a)| a.clone()).collect::<Vec<_>>(),
        [
            changed(State::Starting, State::Backoff),
            info("gave up: web entered FATAL state, too many start retries too quickly"),
            changed(State::Backoff, State::Fatal),
        ]
    );
    assert_eq!(p.state, State::Fatal);
    assert_eq!(p.restarts, 3);
    assert_eq!(p.timers, super::Timers::default(), "FATAL has no deadline left");
    assert_eq!(p.spawn_error.as_deref(), Some("No such file or directory"));
}

#[test]
fn exiting_before_startsecs_every_time_goes_fatal_with_delays_of_1_2_3_seconds() {
    let t0 = Instant::now();
    let mut p = Proc::default();
    let log = drive_until_idle(&mut p, &spec(), Input::Start, t0, |_| {
        vec![(Duration::ZERO, spawned()), (ms(500), exit(1))]
    });
    assert_eq!(count_spawns(&log), 4);
    let backoffs: Vec<(Instant, Duration)> = timers_set(&log)
        .into_iter()
        .filter(|(_, kind, _)| *kind == TimerKind::Backoff)
        .map(|(at, _, delay)| (at, delay))
        .collect();
    assert_eq!(
        backoffs,
        [(t0 + ms(500), secs(1)), (t0 + ms(2000), secs(2)), (t0 + ms(4500), secs(3))]
    );
    assert_eq!(p.state, State::Fatal);
    assert_eq!(p.exit_status, Some(ExitStatus::Exited(1)));
}

#[test]
fn startretries_zero_goes_fatal_at_the_first_failure() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.startretries = 0);
    let mut p = Proc::default();
    let log = drive_until_idle(&mut p, &spec, Input::Start, t0, |_| {
        vec![(Duration::ZERO, spawn_failed())]
    });
    assert_eq!(count_spawns(&log), 1);
    assert!(timers_set(&log).is_empty());
    assert_eq!(p.state, State::Fatal);
}

#[test]
fn startsecs_zero_goes_running_at_spawned_and_arms_nothing() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.startsecs = Duration::ZERO);
    let mut p = Proc::default();
    let log =
        drive_until_idle(&mut p, &spec, Input::Start, t0, |_| vec![(Duration::ZERO, spawned())]);
    assert!(timers_set(&log).is_empty());
    assert_eq!(p.state, State::Running);
    assert_eq!(p.pid, Some(PID));
}

#[test]
fn staying_up_startsecs_resets_the_retry_count() {
    // Two failed starts, then one that stays up: a later crash starts counting from 1 again.
    let t0 = Instant::now();
    let mut p = Proc::default();
    let log = drive_until_idle(&mut p, &spec(), Input::Start, t0, |n| match n {
        1 | 2 => vec![(Duration::ZERO, spawned()), (ms(100), exit(1))],
        3 => vec![(Duration::ZERO, spawned()), (secs(30), exit(1))],
        _ => vec![(Duration::ZERO, spawn_failed())],
    });
    let delays: Vec<Duration> = timers_set(&log)
        .into_iter()
        .filter(|(_, kind, _)| *kind == TimerKind::Backoff)
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(delays, [secs(1), secs(2), secs(1), secs(2), secs(3)]);
    assert_eq!(count_spawns(&log), 3 + 4, "three tries, then a crash and four more");
    assert_eq!(p.state, State::Fatal);
}

#[test]
fn autorestart_always_restarts_after_every_exit_and_counts_restarts() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.autorestart = AutoRestart::Always);
    let mut p = running(t0);
    for n in 1..=3 {
        let now = t0 + secs(10 * n);
        let actions = step(&mut p, &spec, exit(0), now);
        assert_eq!(actions.last(), Some(&Action::Spawn));
        step(&mut p, &spec, spawned(), now);
        step(&mut p, &spec, timer(TimerKind::StartSecs, now + secs(1)), now + secs(1));
        assert_eq!(p.state, State::Running);
        assert_eq!(p.restarts, n);
    }
}

#[test]
fn stop_escalates_to_sigkill_at_stopwaitsecs() {
    let t0 = Instant::now();
    let mut p = running(t0);
    let stop_at = t0 + secs(5);
    let actions = feed(&mut p, Input::Stop, stop_at);
    assert!(actions.contains(&kill(Signal::SIGTERM, false)));
    assert!(actions.contains(&Action::SetTimer(TimerKind::StopKill, stop_at + secs(10))));
    // Nothing happens before the deadline: the event loop only feeds the timer when it is due.
    assert!(p.timers.is_current(TimerKind::StopKill, stop_at + secs(10)));
    let actions = feed(&mut p, timer(TimerKind::StopKill, stop_at + secs(10)), stop_at + secs(10));
    assert_eq!(actions.last(), Some(&kill(Signal::SIGKILL, false)));
    let actions = feed(&mut p, killed_by(Signal::SIGKILL), stop_at + secs(10) + ms(5));
    assert_eq!(
        actions,
        [info("stopped: web (terminated by SIGKILL)"), changed(State::Stopping, State::Stopped)]
    );
    assert!(p.killed, "the record remembers that SIGKILL was needed");
}

#[test]
fn stopasgroup_signals_the_group_for_both_the_stop_and_the_kill() {
    let t0 = Instant::now();
    let spec = spec_with(|s| {
        s.stopasgroup = true;
        s.killasgroup = true;
    });
    let mut p = running(t0);
    let actions = step(&mut p, &spec, Input::Stop, t0 + secs(5));
    assert!(actions.contains(&kill(Signal::SIGTERM, true)));
    let actions = step(&mut p, &spec, timer(TimerKind::StopKill, t0 + secs(15)), t0 + secs(15));
    assert_eq!(actions.last(), Some(&kill(Signal::SIGKILL, true)));
}

#[test]
fn killasgroup_alone_stops_the_pid_and_kills_the_group() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.killasgroup = true);
    let mut p = running(t0);
    let actions = step(&mut p, &spec, Input::Stop, t0 + secs(5));
    assert!(actions.contains(&kill(Signal::SIGTERM, false)));
    let actions = step(&mut p, &spec, timer(TimerKind::StopKill, t0 + secs(15)), t0 + secs(15));
    assert_eq!(actions.last(), Some(&kill(Signal::SIGKILL, true)));
}

#[test]
fn a_new_start_clears_killed_and_the_last_exit() {
    let t0 = Instant::now();
    let mut p = stopping(t0);
    feed(&mut p, timer(TimerKind::StopKill, t0 + secs(15)), t0 + secs(15));
    feed(&mut p, killed_by(Signal::SIGKILL), t0 + secs(15));
    assert!(p.killed);
    feed(&mut p, Input::Start, t0 + secs(20));
    assert!(!p.killed);
    assert_eq!(p.exit_status, None);
}

#[test]
fn a_successful_spawn_clears_the_last_spawn_error() {
    let t0 = Instant::now();
    let mut p = starting_unspawned(t0);
    feed(&mut p, spawn_failed(), t0);
    feed(&mut p, timer(TimerKind::Backoff, t0 + secs(1)), t0 + secs(1));
    assert!(p.spawn_error.is_some());
    feed(&mut p, spawned(), t0 + secs(1));
    assert_eq!(p.spawn_error, None);
}

#[test]
fn stale_startsecs_after_an_early_exit_does_nothing() {
    let t0 = Instant::now();
    let mut p = starting(t0);
    feed(&mut p, exit(1), t0 + ms(500));
    let before = p.clone();
    // The RUNNING deadline of t0 + 1 s is no longer armed; if it fires anyway, nothing happens.
    assert!(!p.timers.is_current(TimerKind::StartSecs, t0 + secs(1)));
    assert_eq!(feed(&mut p, timer(TimerKind::StartSecs, t0 + secs(1)), t0 + secs(1)), none());
    assert_eq!(p, before);
    assert_eq!(p.state, State::Backoff);
    assert_eq!(p.timers.get(TimerKind::Backoff), Some(t0 + ms(1500)), "the retry stays armed");
}

#[test]
fn stale_stopkill_after_the_process_stopped_does_nothing() {
    let t0 = Instant::now();
    let mut p = stopping(t0);
    feed(&mut p, exit(0), t0 + secs(6));
    let before = p.clone();
    assert_eq!(feed(&mut p, timer(TimerKind::StopKill, t0 + secs(15)), t0 + secs(15)), none());
    assert_eq!(p, before);
    assert!(!p.killed);
}

#[test]
fn stale_backoff_after_a_stop_does_nothing() {
    let t0 = Instant::now();
    let mut p = backoff(t0);
    feed(&mut p, Input::Stop, t0 + secs(1));
    let before = p.clone();
    assert_eq!(feed(&mut p, timer(TimerKind::Backoff, t0 + ms(1500)), t0 + ms(1500)), none());
    assert_eq!(p, before);
    assert_eq!(p.state, State::Stopped);
}

#[test]
fn timers_is_current_only_for_the_armed_kind_and_instant() {
    let t0 = Instant::now();
    let p = starting(t0);
    assert!(p.timers.is_current(TimerKind::StartSecs, t0 + secs(1)));
    assert!(!p.timers.is_current(TimerKind::StartSecs, t0 + secs(2)));
    assert!(!p.timers.is_current(TimerKind::Backoff, t0 + secs(1)));
    assert!(!p.timers.is_current(TimerKind::StopKill, t0 + secs(1)));
}

#[test]
fn timers_is_current_is_false_for_a_deadline_of_an_earlier_instance() {
    // Stopped and started again: the first instance's RUNNING deadline is stale, so the event
    // loop must drop it rather than make the second instance RUNNING too early.
    let t0 = Instant::now();
    let mut p = starting(t0);
    feed(&mut p, Input::Stop, t0 + ms(200));
    feed(&mut p, exit(0), t0 + ms(300));
    feed(&mut p, Input::Start, t0 + ms(600));
    feed(&mut p, spawned(), t0 + ms(600));
    assert!(!p.timers.is_current(TimerKind::StartSecs, t0 + secs(1)));
    assert!(p.timers.is_current(TimerKind::StartSecs, t0 + ms(1600)));
}

#[test]
fn log_lines_speak_supervisord() {
    // A start that fails once, one that stays up, an unexpected exit, then too many failures.
    let t0 = Instant::now();
    let mut p = Proc::default();
    let log = drive_until_idle(&mut p, &spec(), Input::Start, t0, |n| match n {
        1 => vec![(Duration::ZERO, spawned()), (ms(100), exit(1))],
        2 => vec![(Duration::ZERO, spawned()), (secs(5), exit(1))],
        _ => vec![(Duration::ZERO, spawn_failed())],
    });
    assert_eq!(
        lines(&log),
        [
            "spawned: 'web' with pid 42",
            "exited: web (exit status 1; not expected)",
            "spawned: 'web' with pid 42",
            "success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)",
            "exited: web (exit status 1; not expected)",
            "spawnerr: can't start 'web': No such file or directory",
            "spawnerr: can't start 'web': No such file or directory",
            "spawnerr: can't start 'web': No such file or directory",
            "spawnerr: can't start 'web': No such file or directory",
            "gave up: web entered FATAL state, too many start retries too quickly",
        ]
    );
}

#[test]
fn log_lines_name_a_grouped_process_by_its_namespec() {
    let t0 = Instant::now();
    let spec = spec_with(|s| s.group = "backend".into());
    let mut p = Proc::default();
    step(&mut p, &spec, Input::Start, t0);
    assert_eq!(step(&mut p, &spec, spawned(), t0)[0], info("spawned: 'backend:web' with pid 42"));
}

#[test]
fn starting_stop_before_spawned_then_spawned_keeps_the_pid_and_stops_it() {
    // The event loop performs a Spawn action only when it gets to it in the queue: an input
    // fed in between (a shutdown beginning in the same batch of signals as a reload that added
    // the program) reaches a STARTING process that has no pid yet.
    let t0 = Instant::now();
    let mut p = starting_unspawned(t0);
    feed(&mut p, Input::Stop, t0);
    assert_eq!(p.state, State::Stopping);
    let actions = feed(&mut p, spawned(), t0);
    assert_eq!(p.pid, Some(PID), "the pid must be known to reap and stop the process");
    assert!(actions.contains(&kill(Signal::SIGTERM, false)), "the stop asked for is carried out");
    feed(&mut p, exit(0), t0 + ms(100));
    assert_eq!(p.state, State::Stopped);
}

// ---- backoff policy and start delay ----

#[test]
fn backoff_is_linear_by_default_and_exponential_with_a_cap_when_asked() {
    let linear: Vec<Duration> = (1..=4).map(|n| super::backoff_delay(&spec(), n)).collect();
    assert_eq!(linear, [secs(1), secs(2), secs(3), secs(4)], "supervisord's 1 s, 2 s, 3 s ...");
    let exp = spec_with(|s| {
        s.backoff_initial = ms(100);
        s.backoff_factor = Some(2.0);
        s.backoff_max = Some(ms(500));
    });
    let got: Vec<Duration> = (1..=5).map(|n| super::backoff_delay(&exp, n)).collect();
    assert_eq!(got, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
    // Absurd settings stay bounded instead of overflowing the clock.
    let huge = spec_with(|s| s.backoff_factor = Some(100.0));
    assert_eq!(super::backoff_delay(&huge, 1000), secs(86_400));
}

#[test]
fn failed_starts_wait_as_the_policy_says() {
    let t0 = Instant::now();
    let s = spec_with(|s| {
        s.backoff_initial = ms(100);
        s.backoff_factor = Some(3.0);
        s.startretries = 3;
    });
    let mut p = stopped();
    step(&mut p, &s, Input::Start, t0);
    let mut waits = Vec::new();
    let mut now = t0;
    for _ in 0..3 {
        step(&mut p, &s, spawned(), now);
        let actions = step(&mut p, &s, exit(1), now);
        let at = actions
            .iter()
            .find_map(|a| match a {
                Action::SetTimer(TimerKind::Backoff, at) => Some(*at),
                _ => None,
            })
            .expect("a retry is armed");
        waits.push(at - now);
        now = at;
        step(&mut p, &s, timer(TimerKind::Backoff, now), now);
    }
    assert_eq!(waits, [ms(100), ms(300), ms(900)]);
}

#[test]
fn start_delay_holds_the_spawn_and_a_stop_cancels_it() {
    let t0 = Instant::now();
    let s = spec_with(|s| s.start_delay = ms(1500));
    let mut p = stopped();
    let actions = step(&mut p, &s, Input::Start, t0);
    assert_eq!(
        actions,
        [
            changed(State::Stopped, State::Starting),
            Action::SetTimer(TimerKind::StartDelay, t0 + ms(1500))
        ]
    );
    assert_eq!(p.pid, None);
    // The delay passes: now it spawns.
    let actions = step(&mut p, &s, timer(TimerKind::StartDelay, t0 + ms(1500)), t0 + ms(1500));
    assert_eq!(actions, [Action::Spawn]);
    step(&mut p, &s, spawned(), t0 + ms(1500));
    // An exit after RUNNING restarts at once: the delay is for starts from a stopped state.
    let s2 = spec_with(|s| {
        s.start_delay = ms(1500);
        s.startsecs = Duration::ZERO;
        s.autorestart = AutoRestart::Always;
    });
    let mut q = stopped();
    step(&mut q, &s2, Input::Start, t0);
    step(&mut q, &s2, timer(TimerKind::StartDelay, t0 + ms(1500)), t0 + ms(1500));
    step(&mut q, &s2, spawned(), t0 + ms(1500));
    let actions = step(&mut q, &s2, exit(0), t0 + secs(5));
    assert!(actions.contains(&Action::Spawn), "{actions:?}");
    // A stop during the delay: STOPPED at once, nothing spawned, no kill.
    let mut r = stopped();
    step(&mut r, &s, Input::Start, t0);
    let actions = step(&mut r, &s, Input::Stop, t0 + ms(10));
    assert_eq!(actions, [changed(State::Starting, State::Stopped)]);
    assert_eq!(r.timers.get(TimerKind::StartDelay), None);
    // Its stale timer then does nothing.
    assert_eq!(
        step(&mut r, &s, timer(TimerKind::StartDelay, t0 + ms(1500)), t0 + ms(1500)),
        none()
    );
}

// ---- health checks ----

#[test]
fn health_checks_count_failures_after_start_period_and_a_pass_heals() {
    use super::Health;
    use crate::config::{HealthAction, HealthCheck, Probe};
    let t0 = Instant::now();
    let s = spec_with(|s| {
        s.startsecs = Duration::ZERO;
        s.healthcheck = Some(HealthCheck {
            probe: Probe::Tcp(([127, 0, 0, 1], 1).into()),
            interval: secs(2),
            timeout: secs(1),
            retries: 2,
            start_period: secs(3),
            on_failure: HealthAction::Restart,
        });
    });
    let mut p = stopped();
    step(&mut p, &s, Input::Start, t0);
    let actions = step(&mut p, &s, spawned(), t0);
    assert!(
        actions.contains(&Action::SetTimer(TimerKind::HealthCheck, t0 + secs(1))),
        "{actions:?}"
    );
    assert_eq!(p.health, Some(Health::Starting));
    let fail = |p: &mut Proc, at: Instant| {
        let due = due(p, TimerKind::HealthCheck);
        let a = step(p, &s, due, at);
        assert_eq!(a[0], Action::CheckHealth);
        step(p, &s, Input::HealthResult { ok: false, detail: "refused".into() }, at)
    };
    // Within start_period: not counted.
    fail(&mut p, t0 + secs(1));
    assert_eq!(p.health_failures, 0);
    fail(&mut p, t0 + secs(4));
    assert_eq!((p.health, p.health_failures), (Some(Health::Starting), 1));
    let a = fail(&mut p, t0 + secs(6));
    assert!(a.contains(&Action::HealthChanged(Health::Unhealthy)), "{a:?}");
    // A timeout is a failure too, and cancels the check.
    let check = due(&p, TimerKind::HealthCheck);
    step(&mut p, &s, check, t0 + secs(8));
    let a = step(&mut p, &s, timer(TimerKind::HealthTimeout, t0 + secs(9)), t0 + secs(9));
    assert_eq!(a[0], Action::CancelHealthCheck);
    assert_eq!(p.health_failures, 3);
    // A pass heals at once.
    let check = due(&p, TimerKind::HealthCheck);
    step(&mut p, &s, check, t0 + secs(11));
    let a = step(
        &mut p,
        &s,
        Input::HealthResult { ok: true, detail: "connected".into() },
        t0 + secs(11),
    );
    assert!(a.contains(&Action::HealthChanged(Health::Healthy)), "{a:?}");
    assert_eq!((p.health, p.health_failures), (Some(Health::Healthy), 0));
    // Leaving RUNNING forgets health and cancels a check under way.
    let check = due(&p, TimerKind::HealthCheck);
    step(&mut p, &s, check, t0 + secs(13));
    let a = step(&mut p, &s, exit(1), t0 + secs(13));
    assert!(a.contains(&Action::CancelHealthCheck), "{a:?}");
    assert_eq!(p.health, None);
}

// ---- the restart guard (issue 12: crash loops must never eat the machine) ----

/// Regression: a program that exits at once with startsecs = 0 was restarted about 1,000
/// times a second. It now waits in BACKOFF until restart_min_interval after its start.
#[test]
fn an_instant_crasher_with_startsecs_zero_is_restarted_once_a_second() {
    let t0 = Instant::now();
    let s = spec_with(|s| {
        s.startsecs = Duration::ZERO;
        s.autorestart = AutoRestart::Always;
    });
    let mut p = Proc::default();
    step(&mut p, &s, Input::Start, t0);
    step(&mut p, &s, spawned(), t0);
    assert_eq!(p.state, State::Running);
    let actions = step(&mut p, &s, exit(1), t0 + ms(3));
    assert_eq!(
        actions,
        [
            info("exited: web (exit status 1; not expected)"),
            changed(State::Running, State::Exited),
            info(
                "web: restarting in 0.997 s (it ran 0.003 s, less than restart_min_interval = 1 s)"
            ),
            changed(State::Exited, State::Backoff),
            Action::SetTimer(TimerKind::Restart, t0 + secs(1)),
        ]
    );
    assert_eq!(p.state, State::Backoff);
    assert_eq!(p.exit_status, Some(ExitStatus::Exited(1)), "status shows how it ended");
    assert_eq!(p.restarts, 0, "nothing restarted yet");
    // Its own timer kind: a stale Backoff deadline does nothing.
    assert_eq!(step(&mut p, &s, timer(TimerKind::Backoff, t0 + secs(1)), t0 + secs(1)), none());
    assert_eq!(
        step(&mut p, &s, timer(TimerKind::Restart, t0 + secs(1)), t0 + secs(1)),
        [changed(State::Backoff, State::Starting), Action::Spawn]
    );
    assert_eq!(p.restarts, 1);
}

/// Over a long crash loop the starts are at most one a second, and the waits grow by the
/// back-off policy from the second exit on.
#[test]
fn a_crash_loop_backs_off_by_the_policy_and_a_long_run_forgets_it() {
    let t0 = Instant::now();
    let s = spec_with(|s| {
        s.startsecs = secs(1);
        s.autorestart = AutoRestart::Always;
    });
    // Each instance becomes RUNNING after 1 s and crashes 0.3 s later (1.3 s in all).
    let mut p = Proc::default();
    let mut now = t0;
    step(&mut p, &s, Input::Start, now);
    let mut waits = Vec::new();
    for _ in 0..5 {
        step(&mut p, &s, spawned(), now);
        step(&mut p, &s, timer(TimerKind::StartSecs, now + secs(1)), now + secs(1));
        assert_eq!(p.state, State::Running);
        now += ms(1300);
        step(&mut p, &s, exit(1), now);
        match p.timers.get(TimerKind::Restart) {
            Some(at) if p.state == State::Backoff => {
                waits.push(at - now);
                now = at;
                step(&mut p, &s, timer(TimerKind::Restart, now), now);
            }
            _ => waits.push(Duration::ZERO),
        }
        assert_eq!(p.state, State::Starting);
    }
    // The first crash after a run is restarted at once; then 1 s, 2 s, 3 s, 4 s (linear,
    // backoff_initial 1 s, as supervisord's retries).
    assert_eq!(waits, [Duration::ZERO, secs(1), secs(2), secs(3), secs(4)]);
    assert_eq!(p.crashes, 5);
    // A run of backoff_reset (60 s) forgets the loop: the next crash is restarted at once.
    step(&mut p, &s, spawned(), now);
    step(&mut p, &s, timer(TimerKind::StartSecs, now + secs(1)), now + secs(1));
    now += secs(61);
    step(&mut p, &s, exit(1), now);
    assert_eq!(p.state, State::Starting);
    assert_eq!(p.crashes, 1);
}

/// The waits follow backoff_factor and stop at backoff_max.
#[test]
fn the_restart_guard_follows_backoff_factor_and_max() {
    let t0 = Instant::now();
    let s = spec_with(|s| {
        s.startsecs = Duration::ZERO;
        s.autorestart = AutoRestart::Always;
        s.restart_min_interval = Duration::ZERO;
        s.backoff_initial = ms(500);
        s.backoff_factor = Some(2.0);
        s.backoff_max = Some(secs(3));
    });
    let mut p = Proc::default();
    let mut now = t0;
    step(&mut p, &s, Input::Start, now);
    let mut waits = Vec::new();
    for _ in 0..6 {
        step(&mut p, &s, spawned(), now);
        now += ms(100);
        step(&mut p, &s, exit(3), now);
        let wait = p.timers.get(TimerKind::Restart).map_or(Duration::ZERO, |at| at - now);
        waits.push(wait);
        now += wait;
        if !wait.is_zero() {
            step(&mut p, &s, timer(TimerKind::Restart, now), now);
        }
    }
    assert_eq!(waits, [Duration::ZERO, ms(500), secs(1), secs(2), secs(3), secs(3)]);
}

/// A process that ran for seconds and crashes once is replaced at once: the guard must not
/// cost the sub-10 ms restart.
#[test]
fn a_long_runner_that_crashes_once_is_replaced_at_once() {
    let t0 = Instant::now();
    let mut p = running(t0);
    let actions = feed(&mut p, killed_by(Signal::SIGSEGV), t0 + secs(5));
    assert!(actions.ends_with(&[changed(State::Exited, State::Starting), Action::Spawn]));
    assert_eq!(p.crashes, 1);
}

/// An operator's `kill -9`, again and again, is no crash loop: each is replaced as soon as
/// the floor allows, with no growing wait; closer than the floor, the floor holds.
#[test]
fn repeated_sigkills_from_outside_meet_only_the_floor() {
    let t0 = Instant::now();
    let s = spec_with(|s| s.startsecs = Duration::ZERO);
    let mut p = Proc::default();
    let mut now = t0;
    step(&mut p, &s, Input::Start, now);
    for _ in 0..10 {
        step(&mut p, &s, spawned(), now);
        now += ms(1500);
        let actions = step(&mut p, &s, killed_by(Signal::SIGKILL), now);
        assert!(actions.ends_with(&[changed(State::Exited, State::Starting), Action::Spawn]));
    }
    assert_eq!(p.crashes, 0);
    step(&mut p, &s, spawned(), now);
    step(&mut p, &s, killed_by(Signal::SIGKILL), now + ms(400));
    assert_eq!(p.timers.get(TimerKind::Restart), Some(now + secs(1)));
    // The OOM killer's SIGKILL is a crash.
    let mut p = running(t0);
    p.oom_killed = true;
    step(&mut p, &spec(), killed_by(Signal::SIGKILL), t0 + secs(5));
    assert_eq!(p.crashes, 1);
}

/// Expected exits restart too (autorestart = true), no sooner than the floor, and do not
/// grow the wait.
#[test]
fn expected_exits_only_meet_the_floor() {
    let t0 = Instant::now();
    let s = spec_with(|s| {
        s.startsecs = Duration::ZERO;
        s.autorestart = AutoRestart::Always;
    });
    let mut p = Proc::default();
    let mut now = t0;
    step(&mut p, &s, Input::Start, now);
    for _ in 0..4 {
        step(&mut p, &s, spawned(), now);
        step(&mut p, &s, exit(0), now + ms(200));
        assert_eq!(p.timers.get(TimerKind::Restart), Some(now + secs(1)));
        now += secs(1);
        step(&mut p, &s, timer(TimerKind::Restart, now), now);
    }
    assert_eq!(p.crashes, 0);
}

#[test]
fn a_stop_during_the_restart_wait_cancels_it() {
    let t0 = Instant::now();
    let s = spec_with(|s| s.startsecs = Duration::ZERO);
    let mut p = Proc::default();
    step(&mut p, &s, Input::Start, t0);
    step(&mut p, &s, spawned(), t0);
    step(&mut p, &s, exit(1), t0 + ms(10));
    assert_eq!(p.state, State::Backoff);
    assert_eq!(
        step(&mut p, &s, Input::Stop, t0 + ms(20)),
        [changed(State::Backoff, State::Stopped)]
    );
    assert_eq!(p.timers.get(TimerKind::Restart), None);
    assert_eq!(step(&mut p, &s, timer(TimerKind::Restart, t0 + secs(1)), t0 + secs(1)), none());
    // A start by an operator is not held back, and forgets the crashes.
    assert_eq!(
        step(&mut p, &s, Input::Start, t0 + ms(30)),
        [changed(State::Stopped, State::Starting), Action::Spawn]
    );
    assert_eq!(p.crashes, 0);
}

/// Regression: the RUNNING -> EXITED event of an autorestarted crash said `exitstatus: null`,
/// because the restart had cleared it before the event was written. A change now carries
/// what supervisord's PROCESS_STATE payloads carry, taken when it happens.
#[test]
fn a_state_change_carries_pid_exit_expected_and_tries() {
    let t0 = Instant::now();
    let mut p = running(t0);
    let actions = super::step(&mut p, &spec(), &Context::default(), exit(1), t0 + secs(5));
    let changes: Vec<&Action> =
        actions.iter().filter(|a| matches!(a, Action::Changed { .. })).collect();
    assert_eq!(
        changes,
        [
            &Action::Changed {
                from: State::Running,
                to: State::Exited,
                pid: Some(PID),
                exit: Some(ExitStatus::Exited(1)),
                expected: Some(false),
                tries: 0,
                next_start: None,
            },
            &Action::Changed {
                from: State::Exited,
                to: State::Starting,
                pid: None,
                exit: None,
                expected: None,
                tries: 0,
                next_start: None,
            },
        ]
    );
    // A failed start: BACKOFF carries the exit, the tries and when the retry is due.
    let mut p = starting(t0);
    let actions = super::step(&mut p, &spec(), &Context::default(), exit(2), t0 + ms(500));
    assert!(
        actions.contains(&Action::Changed {
            from: State::Starting,
            to: State::Backoff,
            pid: Some(PID),
            exit: Some(ExitStatus::Exited(2)),
            expected: Some(false),
            tries: 1,
            next_start: Some(t0 + ms(1500)),
        }),
        "{actions:?}"
    );
    // Stopped: the pid that ended and how.
    let mut p = stopping(t0);
    let actions =
        super::step(&mut p, &spec(), &Context::default(), killed_by(Signal::SIGTERM), t0 + secs(6));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Changed { to: State::Stopped, pid: Some(PID), exit: Some(_), .. }
    )));
}

/// A spawn that fails for a shortage (EMFILE, EAGAIN) is retried without end: it does not
/// count toward startretries, so fds coming back finds the process still trying, not FATAL.
#[test]
fn a_transient_spawn_failure_is_retried_and_never_fatal() {
    let t0 = Instant::now();
    let mut p = starting_unspawned(t0);
    let mut now = t0;
    for _ in 0..10 {
        let short =
            Input::SpawnFailed { error: "unable to create a pipe: EMFILE".into(), transient: true };
        feed(&mut p, short, now);
        assert_eq!(p.state, State::Backoff);
        assert_eq!(p.backoff, 0);
        let at = p.timers.get(TimerKind::Backoff).expect("a retry");
        assert_eq!(at - now, secs(1));
        now = at;
        feed(&mut p, timer(TimerKind::Backoff, now), now);
        assert_eq!(p.state, State::Starting);
    }
    feed(&mut p, spawned(), now);
    assert_eq!(p.state, State::Starting);
    assert_eq!(p.spawn_error, None);
}

// ---- held starts (dependencies) and the start timeout ----

/// A program with a dependency, held at t0.
fn held(t0: Instant) -> (Proc, ProcessSpec) {
    let s = spec_with(|s| {
        s.deps.push(crate::config::Dep {
            program: "db".into(),
            condition: crate::config::Condition::Started,
            on_failure: crate::config::OnFailure::Ignore,
        })
    });
    let mut p = stopped();
    let actions = step(&mut p, &s, Input::StartHeld, t0);
    assert_eq!(
        actions,
        [
            changed(State::Stopped, State::Starting),
            Action::SetTimer(TimerKind::StartTimeout, t0 + super::START_TIMEOUT)
        ]
    );
    assert!(p.held);
    (p, s)
}

#[test]
fn a_held_start_released_spawns_and_forgets_its_start_timeout() {
    let t0 = Instant::now();
    let (mut p, s) = held(t0);
    assert_eq!(step(&mut p, &s, Input::Release, t0 + secs(5)), [Action::Spawn]);
    assert_eq!(p.timers.get(TimerKind::StartTimeout), None);
    let stale = timer(TimerKind::StartTimeout, t0 + super::START_TIMEOUT);
    assert_eq!(step(&mut p, &s, stale, t0 + super::START_TIMEOUT), none());
}

#[test]
fn a_held_start_still_waiting_at_its_start_timeout_is_given_up() {
    let t0 = Instant::now();
    let (mut p, s) = held(t0);
    let at = t0 + super::START_TIMEOUT;
    let waiting = ["db (started)".to_string()];
    let ctx = Context { shutting_down: false, waiting_for: &waiting };
    let actions = super::step(&mut p, &s, &ctx, timer(TimerKind::StartTimeout, at), at);
    assert_eq!(
        actions.first(),
        Some(&warn("gave up: web: waiting for db (started) timed out after 90 s"))
    );
    assert_eq!((p.state, p.held), (State::Fatal, false));
    assert_eq!(p.spawn_error.as_deref(), Some("waiting for db (started) timed out after 90 s"));
}

#[test]
fn a_held_start_waiting_only_for_a_connection_is_not_given_up() {
    let t0 = Instant::now();
    let (mut p, s) = held(t0);
    let at = t0 + super::START_TIMEOUT;
    assert_eq!(step(&mut p, &s, timer(TimerKind::StartTimeout, at), at), none());
    assert_eq!((p.state, p.held), (State::Starting, true));
    assert_eq!(p.timers.get(TimerKind::StartTimeout), None);
}

#[test]
fn a_held_start_stopped_forgets_its_start_timeout() {
    let t0 = Instant::now();
    let (mut p, s) = held(t0);
    assert_eq!(step(&mut p, &s, Input::Stop, t0), [changed(State::Starting, State::Stopped)]);
    assert_eq!(p.timers.get(TimerKind::StartTimeout), None);
}

// ---- shutdown, as the machine's context ----

#[test]
fn no_automatic_restart_while_shutting_down() {
    let t0 = Instant::now();
    let mut p = running(t0);
    let ctx = Context { shutting_down: true, waiting_for: &[] };
    let actions = super::step(&mut p, &spec(), &ctx, exit(1), t0 + secs(5));
    assert_eq!(p.state, State::Exited);
    assert!(!actions.contains(&Action::Spawn), "{actions:?}");
}

#[test]
fn a_start_that_fails_while_shutting_down_is_not_retried() {
    let t0 = Instant::now();
    let mut p = starting(t0);
    let ctx = Context { shutting_down: true, waiting_for: &[] };
    let actions = super::step(&mut p, &spec(), &ctx, exit(1), t0 + ms(500));
    let moves: Vec<(State, State)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Changed { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(moves, [(State::Starting, State::Backoff), (State::Backoff, State::Stopped)]);
    assert_eq!((p.state, p.timers.get(TimerKind::Backoff)), (State::Stopped, None));
}
