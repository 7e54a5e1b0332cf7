//! Supervisor: dependencies between programs (held starts, what they start, shutdown order).

use super::*;

#[test]
fn independent_programs_start_together_and_a_dependent_spawns_only_when_its_dependency_is_up() {
    use crate::config::Condition::Started;
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        needs(program("web", 1), "db", Started),
        program("db", 5),
        program("cache", 5),
    ]);
    k.sup.start_autostart(t0);
    let done = k.perform(t0);
    // db and cache spawn at once (db first: web, first by priority, started what it needs);
    // web is held, saying why.
    assert_eq!(spawns(&done), ["db", "cache"]);
    assert_eq!((k.state("web"), k.pid("web")), (State::Starting, None));
    assert_eq!(k.sup.get(k.id("web")).unwrap().waiting_for, ["db (started)"]);
    // For KAHI_DEPENDENCY: what it waits for changed, from nothing.
    assert_eq!(std::mem::take(&mut k.sup.waits_changed), [k.id("web")]);
    // db RUNNING after startsecs: web spawns in the same step.
    let done = k.advance_to(t0 + secs(1));
    assert!(spawns(&done).contains(&"web".to_string()), "{done:?}");
    assert!(k.sup.get(k.id("web")).unwrap().waiting_for.is_empty());
    assert_eq!(std::mem::take(&mut k.sup.waits_changed), [k.id("web")], "and to nothing");
}

#[test]
fn a_oneshot_completes_and_releases_what_waits_for_its_completion() {
    use crate::config::Condition::Completed;
    let t0 = Instant::now();
    let migrate = with(program("migrate", 5), |s| s.kind = crate::config::Kind::Oneshot);
    let mut k = Harness::new(vec![migrate, needs(program("web", 9), "migrate", Completed)]);
    k.sup.start_autostart(t0);
    assert_eq!(spawns(&k.perform(t0)), ["migrate"]);
    // Running past startsecs is not completing.
    k.advance_to(t0 + secs(3));
    assert_eq!(k.state("migrate"), State::Starting);
    assert_eq!(k.pid("web"), None);
    // A failed run is retried, and still releases nothing.
    k.exit("migrate", code(1), t0 + secs(4));
    assert_eq!(k.state("migrate"), State::Backoff);
    k.advance_to(t0 + secs(5));
    let done = k.exit("migrate", code(0), t0 + secs(6));
    assert_eq!(k.state("migrate"), State::Exited);
    assert_eq!(spawns(&done), ["web"]);
}

#[test]
fn shutdown_stops_dependents_first_even_against_priority() {
    use crate::config::Condition::Started;
    let t0 = Instant::now();
    // By priority alone db (999) would stop first; web waits for it, so web goes first.
    let mut k = Harness::new(vec![program("db", 999), needs(program("web", 1), "db", Started)]);
    k.boot(t0);
    k.advance_to(t0 + secs(2));
    assert_eq!(k.state("web"), State::Running);
    let t1 = t0 + secs(5);
    k.sup.begin_shutdown(t1);
    assert_eq!(kills(&k.perform(t1)), [("web".into(), Signal::SIGTERM)]);
    assert_eq!(
        kills(&k.exit("web", by(Signal::SIGTERM), t1 + ms(10))),
        [("db".into(), Signal::SIGTERM)]
    );
    k.exit("db", by(Signal::SIGTERM), t1 + ms(20));
    assert!(k.sup.shutdown_complete());
}

#[test]
fn a_held_start_is_cancelled_by_a_stop_and_by_shutdown() {
    use crate::config::Condition::Started;
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        with(program("db", 1), |s| s.autostart = false),
        needs(program("web", 2), "db", Started),
    ]);
    let db = k.id("db");
    k.sup.get_mut(db).unwrap().stopped_by_operator = true;
    k.sup.start_autostart(t0);
    k.perform(t0);
    assert_eq!(k.state("web"), State::Starting);
    assert_eq!(k.sup.get(k.id("web")).unwrap().waiting_for, ["db (stopped by operator)"]);
    k.sup.begin_shutdown(t0 + secs(1));
    let done = k.perform(t0 + secs(1));
    assert_eq!(kills(&done), [], "nothing ran, nothing is signalled");
    assert_eq!(k.state("web"), State::Stopped);
    assert!(k.sup.shutdown_complete());
}

#[test]
fn ready_delay_holds_dependents_until_it_has_passed() {
    use crate::config::Condition::Started;
    let t0 = Instant::now();
    let db = with(program("db", 1), |s| s.ready_delay = ms(2500));
    let mut k = Harness::new(vec![db, needs(program("web", 2), "db", Started)]);
    k.sup.start_autostart(t0);
    k.perform(t0);
    // db RUNNING at 1 s, ready at 3.5 s.
    k.advance_to(t0 + secs(3));
    assert_eq!(k.state("db"), State::Running);
    assert_eq!(k.pid("web"), None);
    let done = k.advance_to(t0 + secs(4));
    assert_eq!(spawns(&done), ["web"]);
}

/// Regression (issue 12): a dependent whose dependency has autostart = false waited in
/// STARTING forever, saying nothing. Starting it starts what it depends on (systemd's
/// Requires=), with a line in the log; a dependency an operator stopped is waited for
/// instead, and status says so.
#[test]
fn a_start_starts_what_it_depends_on_unless_an_operator_stopped_it() {
    use crate::config::Condition::Started;
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        with(program("db", 1), |s| s.autostart = false),
        needs(program("web", 2), "db", Started),
    ]);
    k.sup.start_autostart(t0);
    let done = k.perform(t0);
    assert_eq!(spawns(&done), ["db"]);
    assert!(
        done.iter().any(|(n, a)| n == "web"
            && *a == Action::Log(log::Level::Info, "web: starting db, which it depends on".into())),
        "{done:?}"
    );
    let done = k.advance_to(t0 + secs(1));
    assert_eq!(spawns(&done), ["web"]);

    // The operator stops both, then starts web alone: it waits for db, and says why.
    let t1 = t0 + secs(5);
    for name in ["web", "db"] {
        let id = k.id(name);
        k.sup.operator_stop(id, t1);
        k.perform(t1);
        k.exit(name, by(Signal::SIGTERM), t1);
    }
    let web = k.id("web");
    k.sup.operator_start(web, t1);
    assert_eq!(spawns(&k.perform(t1)), Vec::<String>::new());
    assert_eq!(k.sup.get(web).unwrap().waiting_for, ["db (stopped by operator)"]);
    // Started again by the operator, db releases web.
    k.sup.operator_start(k.id("db"), t1);
    k.perform(t1);
    let done = k.advance_to(t1 + secs(1));
    assert_eq!(spawns(&done), ["web"]);
}
