//! Back-off, start delay, health checks, the restart guard, held starts and the start timeout, and shutdown as the machine's context.

use super::*;
use crate::process::machine;

// ---- backoff policy and start delay ----

#[test]
fn seconds_in_messages_are_written_as_a_person_writes_them() {
    let text = |ms| machine::secs_text(Duration::from_millis(ms));
    assert_eq!([text(2000), text(1500), text(1503), text(30)], ["2", "1.5", "1.503", "0.03"]);
    assert_eq!(machine::secs_text(Duration::from_nanos(1_000_000_001)), "1.000000001");
}

#[test]
fn backoff_is_linear_by_default_and_exponential_with_a_cap_when_asked() {
    let linear: Vec<Duration> = (1..=4).map(|n| machine::backoff_delay(&spec(), n)).collect();
    assert_eq!(linear, [secs(1), secs(2), secs(3), secs(4)], "supervisord's 1 s, 2 s, 3 s ...");
    let exp = spec_with(|s| {
        s.backoff_initial = ms(100);
        s.backoff_factor = Some(2.0);
        s.backoff_max = Some(ms(500));
    });
    let got: Vec<Duration> = (1..=5).map(|n| machine::backoff_delay(&exp, n)).collect();
    assert_eq!(got, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
    // Absurd settings stay bounded instead of overflowing the clock.
    let huge = spec_with(|s| s.backoff_factor = Some(100.0));
    assert_eq!(machine::backoff_delay(&huge, 1000), secs(86_400));
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

/// A program RUNNING at once (startsecs 0) with a TCP health check, timeout 1 s.
fn health_checked(
    interval: Duration,
    retries: u32,
    start_period: Duration,
    on_failure: crate::config::HealthAction,
) -> ProcessSpec {
    use crate::config::{HealthCheck, Probe};
    spec_with(|s| {
        s.startsecs = Duration::ZERO;
        s.healthcheck = Some(HealthCheck {
            probe: Probe::Tcp(([127, 0, 0, 1], 1).into()),
            interval,
            timeout: secs(1),
            retries,
            start_period,
            on_failure,
        });
    })
}

#[test]
fn health_checks_count_failures_after_start_period_and_a_pass_heals() {
    use crate::config::HealthAction;
    use crate::process::machine::Health;
    let t0 = Instant::now();
    let s = health_checked(secs(2), 2, secs(3), HealthAction::Restart);
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
    let said = |a: &[Action], what: &str| {
        a.iter().any(|a| matches!(a, Action::Log(_, text) if text.contains(what)))
    };
    let a = fail(&mut p, t0 + secs(4));
    assert_eq!((p.health, p.health_failures), (Some(Health::Starting), 1));
    assert!(said(&a, "health check failed (1/2): refused"), "{a:?}");
    let a = fail(&mut p, t0 + secs(6));
    assert!(a.contains(&Action::HealthChanged(Health::Unhealthy)), "{a:?}");
    // A timeout is a failure too, and cancels the check.
    let check = due(&p, TimerKind::HealthCheck);
    step(&mut p, &s, check, t0 + secs(8));
    let a = step(&mut p, &s, timer(TimerKind::HealthTimeout, t0 + secs(9)), t0 + secs(9));
    assert_eq!(a[0], Action::CancelHealthCheck);
    assert_eq!(p.health_failures, 3);
    // Past its retries, a failure is counted in a row, not as 3 of 2.
    assert!(said(&a, "health check failed (3 in a row)"), "{a:?}");
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

#[test]
fn a_pass_ends_the_start_period() {
    use crate::config::HealthAction;
    use crate::process::machine::Health;
    let t0 = Instant::now();
    let s = health_checked(secs(1), 1, secs(60), HealthAction::None);
    let mut p = stopped();
    step(&mut p, &s, Input::Start, t0);
    step(&mut p, &s, spawned(), t0);
    let result = |p: &mut Proc, ok: bool, at: Instant| {
        let due = due(p, TimerKind::HealthCheck);
        step(p, &s, due, at);
        step(p, &s, Input::HealthResult { ok, detail: "x".into() }, at)
    };
    // Not listening yet: within the period, not counted.
    result(&mut p, false, t0 + secs(1));
    assert_eq!((p.health, p.health_failures), (Some(Health::Starting), 0));
    result(&mut p, true, t0 + secs(2));
    assert_eq!(p.health, Some(Health::Healthy));
    // Up once: a failure counts, the period notwithstanding.
    let a = result(&mut p, false, t0 + secs(3));
    assert!(a.contains(&Action::HealthChanged(Health::Unhealthy)), "{a:?}");
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
    let actions = machine::step(&mut p, &spec(), &Context::default(), exit(1), t0 + secs(5));
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
    let actions = machine::step(&mut p, &spec(), &Context::default(), exit(2), t0 + ms(500));
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
    let actions = machine::step(
        &mut p,
        &spec(),
        &Context::default(),
        killed_by(Signal::SIGTERM),
        t0 + secs(6),
    );
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
            Action::SetTimer(TimerKind::StartTimeout, t0 + s.start_timeout)
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
    let stale = timer(TimerKind::StartTimeout, t0 + s.start_timeout);
    assert_eq!(step(&mut p, &s, stale, t0 + s.start_timeout), none());
}

#[test]
fn a_held_start_still_waiting_at_its_start_timeout_is_given_up() {
    let t0 = Instant::now();
    let (mut p, s) = held(t0);
    let at = t0 + s.start_timeout;
    let waiting = ["db (started)".to_string()];
    let ctx = Context { shutting_down: false, waiting_for: &waiting };
    let actions = machine::step(&mut p, &s, &ctx, timer(TimerKind::StartTimeout, at), at);
    assert_eq!(
        actions.first(),
        Some(&warn("gave up: web: waiting for db (started) timed out after 90 s"))
    );
    assert_eq!((p.state, p.held), (State::Fatal, false));
    assert_eq!(p.spawn_error.as_deref(), Some("waiting for db (started) timed out after 90 s"));
}

#[test]
fn a_start_timeout_of_zero_waits_for_ever() {
    let t0 = Instant::now();
    let s = spec_with(|s| {
        s.start_timeout = Duration::ZERO;
        s.deps.push(crate::config::Dep {
            program: "db".into(),
            condition: crate::config::Condition::Started,
            on_failure: crate::config::OnFailure::Ignore,
        })
    });
    let mut p = stopped();
    let actions = step(&mut p, &s, Input::StartHeld, t0);
    assert_eq!(actions, [changed(State::Stopped, State::Starting)]);
    assert_eq!(p.timers.get(TimerKind::StartTimeout), None);
}

#[test]
fn a_held_start_waiting_only_for_a_connection_is_not_given_up() {
    let t0 = Instant::now();
    let (mut p, s) = held(t0);
    let at = t0 + s.start_timeout;
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
    let actions = machine::step(&mut p, &spec(), &ctx, exit(1), t0 + secs(5));
    assert_eq!(p.state, State::Exited);
    assert!(!actions.contains(&Action::Spawn), "{actions:?}");
}

#[test]
fn a_start_that_fails_while_shutting_down_is_not_retried() {
    let t0 = Instant::now();
    let mut p = starting(t0);
    let ctx = Context { shutting_down: true, waiting_for: &[] };
    let actions = machine::step(&mut p, &spec(), &ctx, exit(1), t0 + ms(500));
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
