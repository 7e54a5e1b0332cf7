//! Regressions of the supervisor's own bookkeeping (issue 14), and its cost at scale
//! (issue 13): what an update leaves of a held start, what a held start's waiter is told,
//! and look-ups and dependency checks that must not scan every process.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::*;
use crate::api::Outcome;

/// db stopped by an operator, and web and api held waiting for it.
fn two_held(t0: Instant) -> Harness {
    use crate::config::Condition::Started;
    let mut k = Harness::new(vec![
        with(program("db", 1), |s| s.autostart = false),
        needs(program("web", 2), "db", Started),
        needs(program("api", 3), "db", Started),
    ]);
    let db = k.id("db");
    k.sup.get_mut(db).unwrap().stopped_by_operator = true;
    k.boot(t0);
    assert_eq!((k.state("web"), k.pid("web")), (State::Starting, None));
    assert_eq!((k.state("api"), k.pid("api")), (State::Starting, None));
    k
}

/// Regression (issue 14): an update that removed a program still waiting for its
/// dependencies reported it removed, but kept it: once they were up, it started and ran.
#[test]
fn an_update_removing_a_held_program_forgets_it_and_it_never_starts() {
    let t0 = Instant::now();
    let mut k = two_held(t0);
    let t1 = t0 + secs(2);
    let changes = k.sup.update(
        config(vec![
            with(program("db", 1), |s| s.autostart = false),
            needs(program("api", 3), "db", crate::config::Condition::Started),
        ]),
        t1,
    );
    assert_eq!(changes.removed, ["web"]);
    k.perform(t1);
    assert_eq!(k.sup.resolve("web"), None, "forgotten at once: nothing of it runs");
    k.sup.operator_start(k.id("db"), t1);
    k.perform(t1);
    let done = k.advance_to(t1 + secs(2));
    assert_eq!(spawns(&done), ["api"], "db up: api starts, web is gone");
}

/// Regression (issue 14): two programs removed while held, then shutdown: the supervisor
/// panicked ("no entry found for key"), which aborts Kahi as PID 1.
#[test]
fn shutdown_after_removing_two_held_programs_completes() {
    let t0 = Instant::now();
    let mut k = two_held(t0);
    let t1 = t0 + secs(2);
    let changes = k.sup.update(config(vec![with(program("db", 1), |s| s.autostart = false)]), t1);
    assert_eq!(changes.removed, ["api", "web"]);
    k.perform(t1);
    k.sup.begin_shutdown(t1);
    k.perform(t1);
    assert!(k.sup.shutdown_complete());
}

// ==== at scale ====

/// Drives `sup` as the event loop would, cheaply: each spawn answered at once, each startsecs
/// deadline fired at its instant. Unlike the Harness it looks at no other process per step,
/// so a test measures the supervisor and not itself.
fn drive(sup: &mut Supervisor, next_pid: &mut i32, now: Instant) {
    let mut timers = BinaryHeap::new();
    let mut now = now;
    loop {
        while let Some((id, action)) = sup.actions.pop_front() {
            match action {
                Action::Spawn => {
                    *next_pid += 1;
                    sup.input(id, Input::Spawned { pid: *next_pid }, now);
                }
                Action::SetTimer(TimerKind::StartSecs, at) => timers.push(Reverse((at, id))),
                _ => {}
            }
        }
        let Some(Reverse((at, id))) = timers.pop() else { return };
        now = now.max(at);
        sup.input(id, Input::Timer(TimerKind::StartSecs, at), now);
    }
}

/// `n` programs `app_00000`..., each in a group of its own.
fn apps(n: usize) -> Vec<ProcessSpec> {
    (0..n).map(|i| program(&format!("app_{i:05}"), 10)).collect()
}

/// Issue 13: `resolve` scanned every process for each name: with 10,000 programs, a client
/// polling one name's status took 27-31% of a core. By the name index now: resolving each of
/// 20,000 names once takes well under a second (the bound leaves room for a slow machine;
/// the scan took minutes).
#[test]
fn resolving_names_does_not_scan_every_process() {
    const N: usize = 20_000;
    let mut processes = apps(N);
    processes.push(member("tools", "app_00007", 10));
    let sup = Supervisor::new(config(processes));
    let started = Instant::now();
    for i in 0..N {
        let name = format!("app_{i:05}");
        let ids = sup.resolve(&name).unwrap_or_default();
        assert_eq!(ids.len(), if i == 7 { 2 } else { 1 }, "{name}");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{N} look-ups took {took:?}");
    // What the index answers is what the scan answered: in start order, by group too.
    assert_eq!(names(&sup, sup.resolve("app_00007")).unwrap(), ["app_00007", "tools:app_00007"]);
    assert_eq!(names(&sup, sup.resolve("tools")).unwrap(), ["tools:app_00007"]);
    assert_eq!(names(&sup, sup.resolve("tools:*")).unwrap(), ["tools:app_00007"]);
    assert_eq!(names(&sup, sup.resolve("tools:app_00007")).unwrap(), ["tools:app_00007"]);
    assert_eq!(sup.resolve("tools:app_00008"), None);
    assert_eq!(sup.resolve("all").map(|ids| ids.len()), Some(N + 1));
}

/// Issue 13: each state change scanned every process for the dependents of the one that
/// moved, and every held start for whether it could go on, each of those scanning every
/// process again: with 5,000 programs crashing once each while 20 starts were held, 67 s in a
/// debug build. By the dependents index now a change looks only at its own dependents: well
/// under a second (the bound leaves room for a slow machine).
#[test]
fn state_changes_of_many_processes_do_not_take_quadratic_time() {
    use crate::config::Condition::Started;
    const N: usize = 5_000;
    const HELD: usize = 20;
    let t0 = Instant::now();
    let mut processes = apps(N);
    processes.push(with(program("db", 1), |s| s.autostart = false));
    processes.extend((0..HELD).map(|i| needs(program(&format!("web_{i:02}"), 2), "db", Started)));
    let mut sup = Supervisor::new(config(processes));
    let db = sup.resolve("db").unwrap_or_default();
    for id in db {
        sup.get_mut(id).unwrap().stopped_by_operator = true;
    }
    let mut pid = 100;
    let started = Instant::now();
    sup.start_autostart(t0);
    drive(&mut sup, &mut pid, t0);
    let ids: Vec<ProcId> =
        sup.iter().filter(|e| e.spec.name.starts_with("app_")).map(|e| e.id).collect();
    assert_eq!(ids.len(), N);
    assert!(ids.iter().all(|id| sup.get(*id).unwrap().proc.state == State::Running));
    // Each crashes once, and is restarted at once (it ran long enough).
    let t1 = t0 + secs(100);
    for id in &ids {
        sup.input(*id, Input::Exited(code(1)), t1);
        drive(&mut sup, &mut pid, t1);
    }
    let took = started.elapsed();
    assert!(ids.iter().all(|id| sup.get(*id).unwrap().proc.restarts == 1));
    for web in sup.iter().filter(|e| e.spec.name.starts_with("web_")) {
        assert_eq!((web.proc.state, web.proc.pid), (State::Starting, None));
        assert_eq!(web.waiting_for, ["db (stopped by operator)"]);
    }
    assert!(took < Duration::from_secs(5), "{N} starts and crashes took {took:?}");
}

/// Regression (issue 14): `kahi ctl start web` on a program waiting for a dependency that
/// does not come up never returned. A start that waits for its dependencies is given up after
/// the start timeout (90 s, systemd's default): FATAL, saying what it waited for, and the
/// waiter answers with that.
#[test]
fn a_start_waiting_for_its_dependencies_is_given_up_after_the_start_timeout() {
    use crate::config::Condition::Started;
    // The default start_timeout.
    const START_TIMEOUT: Duration = Duration::from_secs(90);
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        with(program("db", 1), |s| s.autostart = false),
        with(needs(program("web", 2), "db", Started), |s| s.autostart = false),
    ]);
    let db = k.id("db");
    k.sup.get_mut(db).unwrap().stopped_by_operator = true;
    let mut w = waiting(api::handle(&mut k.sup, start(&["web"]), at(t0)));
    k.perform(t0);
    k.advance_to(t0 + START_TIMEOUT - ms(1));
    assert_eq!(
        (k.state("web"), w.poll(&mut k.sup, t0 + START_TIMEOUT - ms(1))),
        (State::Starting, None)
    );
    let done = k.advance_to(t0 + START_TIMEOUT);
    let why = "waiting for db (stopped by operator) timed out after 90 s";
    assert_eq!(k.state("web"), State::Fatal);
    assert!(
        done.contains(&(
            "web".into(),
            Action::Log(log::Level::Warn, format!("gave up: web: {why}"))
        )),
        "{done:?}"
    );
    assert_eq!(
        w.poll(&mut k.sup, t0 + START_TIMEOUT),
        results(vec![result("web", Outcome::SpawnError, Some(why))])
    );
    // Nothing starts it later: db coming up does not release a start given up.
    k.sup.operator_start(db, t0 + START_TIMEOUT);
    let done = k.perform(t0 + START_TIMEOUT);
    let done = [done, k.advance_to(t0 + START_TIMEOUT + secs(2))].concat();
    assert_eq!(spawns(&done), ["db"]);
    assert_eq!(k.state("web"), State::Fatal);
}

/// The negative twin: what it waits for comes up within the start timeout, it starts, and
/// the start timeout's deadline does nothing after.
#[test]
fn a_start_whose_dependencies_come_up_in_time_is_not_given_up() {
    use crate::config::Condition::Started;
    // The default start_timeout.
    const START_TIMEOUT: Duration = Duration::from_secs(90);
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        with(program("db", 1), |s| s.startsecs = secs(60)),
        needs(program("web", 2), "db", Started),
    ]);
    k.sup.start_autostart(t0);
    k.perform(t0);
    let deadline = k.sup.get(k.id("web")).unwrap().proc.timers.get(TimerKind::StartTimeout);
    assert_eq!(deadline, Some(t0 + START_TIMEOUT));
    let done = k.advance_to(t0 + secs(61));
    assert_eq!(spawns(&done), ["web"]);
    // The deadline is cleared; fed anyway (a stale heap entry), it is ignored.
    let web = k.id("web");
    assert_eq!(k.sup.get(web).unwrap().proc.timers.get(TimerKind::StartTimeout), None);
    k.sup.input(web, Input::Timer(TimerKind::StartTimeout, t0 + START_TIMEOUT), t0 + START_TIMEOUT);
    assert!(k.sup.actions.is_empty());
    k.advance_to(t0 + START_TIMEOUT + secs(1));
    assert_eq!(k.state("web"), State::Running);
}
