//! Whole paths through the lifecycle, driven until idle.

use super::*;
use crate::process::machine;

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
    assert_eq!(p.timers, machine::Timers::default(), "FATAL has no deadline left");
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
