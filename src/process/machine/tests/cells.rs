//! The lifecycle's grid: one test per (state, input) cell, state by state.

use super::*;

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
