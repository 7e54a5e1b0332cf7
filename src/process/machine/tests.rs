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
        ..ProcessSpec::default()
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

mod cells;
mod paths;
mod policies;
