//! Supervisor: what `api::handle` answers to start and stop, and when a waiter is satisfied.

use super::*;

#[test]
fn api_start_of_an_unknown_name_is_no_such_process() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("web", 1)]);
    let reply = replied(api::handle(&mut k.sup, start(&["nope"]), at(t0)));
    assert_eq!(
        reply,
        Ok(Reply::Results { results: vec![result("nope", Outcome::NoSuchProcess, None)] })
    );
    assert!(k.sup.actions.is_empty());
    assert_eq!(Outcome::NoSuchProcess.text(), "ERROR (no such process)");
}

#[test]
fn api_start_of_a_running_process_is_already_started() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("web", 1)]);
    k.boot(t0);
    let reply = replied(api::handle(&mut k.sup, start(&["web"]), at(t0 + secs(2))));
    assert_eq!(
        reply,
        Ok(Reply::Results { results: vec![result("web", Outcome::AlreadyStarted, None)] })
    );
    assert!(k.sup.actions.is_empty());
}

#[test]
fn api_stop_of_a_stopped_process_is_not_running() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![with(program("web", 1), |s| s.autostart = false)]);
    let reply = replied(api::handle(&mut k.sup, stop(&["web"]), at(t0)));
    assert_eq!(
        reply,
        Ok(Reply::Results { results: vec![result("web", Outcome::NotRunning, None)] })
    );
    assert!(k.sup.actions.is_empty());
}

#[test]
fn api_start_with_wait_resolves_to_started_once_running() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![with(program("web", 1), |s| s.autostart = false)]);
    let mut w = waiting(api::handle(&mut k.sup, start(&["web"]), at(t0)));
    assert_eq!(spawns(&k.perform(t0)), ["web"]);
    assert_eq!(w.poll(&mut k.sup, t0), None, "STARTING: not yet");
    k.advance_to(t0 + secs(1));
    assert_eq!(k.state("web"), State::Running);
    assert_eq!(
        w.poll(&mut k.sup, t0 + secs(1)),
        results(vec![result("web", Outcome::Started, None)])
    );
}

#[test]
fn api_start_with_wait_resolves_to_abnormal_termination_when_it_goes_backoff() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![with(program("web", 1), |s| s.autostart = false)]);
    let mut w = waiting(api::handle(&mut k.sup, start(&["web"]), at(t0)));
    k.perform(t0);
    k.exit("web", code(1), t0 + ms(300));
    assert_eq!(k.state("web"), State::Backoff);
    assert_eq!(
        w.poll(&mut k.sup, t0 + ms(300)),
        results(vec![result("web", Outcome::AbnormalTermination, Some("exit status 1"))])
    );
}

#[test]
fn api_start_of_a_oneshot_resolves_to_started_once_it_completes_and_to_a_failure_if_not() {
    let t0 = Instant::now();
    let oneshot = |s: &mut crate::config::ProcessSpec| {
        s.kind = crate::config::Kind::Oneshot;
        s.autostart = false;
    };
    let mut k = Harness::new(vec![with(program("migrate", 1), oneshot)]);
    let mut w = waiting(api::handle(&mut k.sup, start(&["migrate"]), at(t0)));
    k.perform(t0);
    k.advance_to(t0 + secs(2));
    assert_eq!(w.poll(&mut k.sup, t0 + secs(2)), None, "still running: not yet");
    k.exit("migrate", code(0), t0 + secs(3));
    assert_eq!(k.state("migrate"), State::Exited);
    assert_eq!(
        w.poll(&mut k.sup, t0 + secs(3)),
        results(vec![result("migrate", Outcome::Started, Some("completed (exit status 0)"))])
    );
    // Started again, it runs again: its last completion does not answer for this run.
    let mut w = waiting(api::handle(&mut k.sup, start(&["migrate"]), at(t0 + secs(4))));
    k.perform(t0 + secs(4));
    assert_eq!(w.poll(&mut k.sup, t0 + secs(4)), None, "a new run: not yet");
    k.exit("migrate", code(1), t0 + secs(5));
    assert_eq!(
        w.poll(&mut k.sup, t0 + secs(5)),
        results(vec![result("migrate", Outcome::AbnormalTermination, Some("exit status 1"))])
    );
}

#[test]
fn api_start_with_wait_resolves_to_spawn_error_when_the_spawn_fails() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![with(program("web", 1), |s| s.autostart = false)]);
    k.failing.push("web".into());
    let mut w = waiting(api::handle(&mut k.sup, start(&["web"]), at(t0)));
    k.perform(t0);
    assert_eq!(k.state("web"), State::Backoff);
    assert_eq!(
        w.poll(&mut k.sup, t0),
        results(vec![result("web", Outcome::SpawnError, Some("No such file or directory"))])
    );
    assert_eq!(Outcome::SpawnError.exit_code(), 7);
}

#[test]
fn api_start_with_wait_reports_unknown_names_alongside_the_others() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![with(program("web", 1), |s| s.autostart = false)]);
    let mut w = waiting(api::handle(&mut k.sup, start(&["web", "nope"]), at(t0)));
    k.perform(t0);
    k.advance_to(t0 + secs(1));
    assert_eq!(
        w.poll(&mut k.sup, t0 + secs(1)),
        results(vec![
            result("nope", Outcome::NoSuchProcess, None),
            result("web", Outcome::Started, None),
        ])
    );
}

#[test]
fn api_stop_with_wait_resolves_to_stopped_once_reaped() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("web", 1)]);
    k.boot(t0);
    let mut w = waiting(api::handle(&mut k.sup, stop(&["web"]), at(t0 + secs(2))));
    assert_eq!(kills(&k.perform(t0 + secs(2))), [("web".into(), Signal::SIGTERM)]);
    assert_eq!(w.poll(&mut k.sup, t0 + secs(2)), None, "STOPPING: not yet");
    k.exit("web", by(Signal::SIGTERM), t0 + secs(3));
    assert_eq!(
        w.poll(&mut k.sup, t0 + secs(3)),
        results(vec![result("web", Outcome::Stopped, None)])
    );
}

#[test]
fn api_restart_with_wait_stops_then_starts_and_resolves_to_started() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("web", 1)]);
    k.boot(t0);
    let first_pid = k.pid("web");
    let req = Request::Restart { names: vec!["web".into()], wait: true };
    let mut w = waiting(api::handle(&mut k.sup, req, at(t0 + secs(2))));
    k.perform(t0 + secs(2));
    k.exit("web", by(Signal::SIGTERM), t0 + secs(3));
    assert_eq!(w.poll(&mut k.sup, t0 + secs(3)), None, "stopped; now starting again");
    assert_eq!(spawns(&k.perform(t0 + secs(3))), ["web"]);
    assert_ne!(k.pid("web"), first_pid);
    k.advance_to(t0 + secs(4));
    assert_eq!(
        w.poll(&mut k.sup, t0 + secs(4)),
        results(vec![result("web", Outcome::Stopped, None), result("web", Outcome::Started, None)])
    );
}

#[test]
fn api_start_without_wait_answers_at_once() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![with(program("web", 1), |s| s.autostart = false)]);
    let req = Request::Start { names: vec!["web".into()], wait: false };
    let reply = replied(api::handle(&mut k.sup, req, at(t0)));
    assert_eq!(reply, Ok(Reply::Results { results: vec![result("web", Outcome::Started, None)] }));
    assert_eq!(spawns(&k.perform(t0)), ["web"]);
}

#[test]
fn api_start_during_shutdown_is_refused_and_changes_nothing() {
    let t0 = Instant::now();
    let mut k =
        Harness::new(vec![program("web", 1), with(program("tool", 2), |s| s.autostart = false)]);
    k.boot(t0);
    k.sup.begin_shutdown(t0 + secs(2));
    k.perform(t0 + secs(2));
    let reply = replied(api::handle(&mut k.sup, start(&["tool"]), at(t0 + secs(2))));
    assert_eq!(reply.map_err(|e| e.code), Err(ErrorCode::ShuttingDown));
    assert!(k.sup.actions.is_empty());
    assert_eq!(k.state("tool"), State::Stopped);
}
