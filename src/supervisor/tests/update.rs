//! Supervisor: reread (diff) and update, by the Harness.

use super::*;

/// web, worker and db, all running since t0 + 1 s.
fn three_running(t0: Instant) -> Harness {
    let mut k = Harness::new(vec![program("web", 1), program("worker", 2), program("db", 3)]);
    k.boot(t0);
    for name in ["web", "worker", "db"] {
        assert_eq!(k.state(name), State::Running);
    }
    k
}

/// The new configuration: web the same, worker with a new command, db gone, cache and batch
/// (not autostart) added.
fn new_config() -> Config {
    config(vec![
        program("web", 1),
        with(program("worker", 2), |s| s.argv = vec!["/usr/bin/worker".into(), "--v2".into()]),
        program("cache", 4),
        with(program("batch", 5), |s| s.autostart = false),
    ])
}

#[test]
fn diff_lists_added_changed_and_removed() {
    let t0 = Instant::now();
    let k = three_running(t0);
    assert_eq!(
        k.sup.diff(&new_config()),
        Changes {
            added: vec!["cache".into(), "batch".into()],
            changed: vec!["worker".into()],
            removed: vec!["db".into()],
        }
    );
}

#[test]
fn diff_of_the_same_config_is_empty() {
    let t0 = Instant::now();
    let k = three_running(t0);
    let same = config(vec![program("web", 1), program("worker", 2), program("db", 3)]);
    assert_eq!(k.sup.diff(&same), Changes::default());
}

#[test]
fn diff_sees_a_move_to_another_group_as_removed_and_added() {
    let k = Harness::new(vec![program("web", 1)]);
    let moved = config(vec![member("backend", "web", 1)]);
    assert_eq!(
        k.sup.diff(&moved),
        Changes { added: vec!["backend:web".into()], changed: vec![], removed: vec!["web".into()] }
    );
}

#[test]
fn group_changes_are_supervisords_a_new_numprocs_changes_its_group() {
    let w = |n| member("w", &format!("w_{n:02}"), 1);
    let k = Harness::new(vec![w(0), w(1), w(2), program("web", 1), member("g", "a", 1)]);
    // numprocs 3 -> 2, a new group, a group gone, web as it was.
    let changes = k.sup.diff(&config(vec![w(0), w(1), program("web", 1), member("n", "x", 1)]));
    assert_eq!(
        k.sup.group_changes(&changes),
        [vec!["n".to_string()], vec!["w".to_string()], vec!["g".to_string()]]
    );
    // numprocs 2 -> 3: w gains one, and is changed, not added.
    let k = Harness::new(vec![w(0), w(1)]);
    let changes = k.sup.diff(&config(vec![w(0), w(1), w(2)]));
    assert_eq!(k.sup.group_changes(&changes), [vec![], vec!["w".to_string()], vec![]]);
}

#[test]
fn diff_does_not_touch_anything() {
    let t0 = Instant::now();
    let k = three_running(t0);
    k.sup.diff(&new_config());
    assert!(k.sup.actions.is_empty());
    assert_eq!(k.state("db"), State::Running);
}

#[test]
fn update_stops_changed_and_removed_starts_added_autostart_and_leaves_the_rest() {
    let t0 = Instant::now();
    let mut k = three_running(t0);
    let web_pid = k.pid("web");
    let t1 = t0 + secs(5);
    let changes = k.sup.update(new_config(), t1);
    assert_eq!(changes.added, ["cache", "batch"]);
    let done = k.perform(t1);
    assert_eq!(kills(&done), [("db".into(), Signal::SIGTERM), ("worker".into(), Signal::SIGTERM)]);
    assert_eq!(spawns(&done), ["cache"]);
    assert!(done.iter().all(|(name, _)| name != "web" && name != "batch"), "{done:?}");
    assert_eq!(k.state("web"), State::Running);
    assert_eq!(k.pid("web"), web_pid);
    assert_eq!(k.state("batch"), State::Stopped);
    assert_eq!(k.state("worker"), State::Stopping);
    assert_eq!(k.sup.config, new_config());
}

/// An update sorted the whole start order again for each process it added, and looked each
/// name up in the lists of changes: adding 20,000 processes blocked the event loop for
/// minutes. It takes well under a second now (the bound leaves room for a slow machine).
#[test]
fn an_update_adding_many_processes_does_not_take_quadratic_time() {
    const N: usize = 5_000;
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("web", 999)]);
    k.sup.start_autostart(t0);
    k.perform(t0);
    let mut processes: Vec<ProcessSpec> =
        (0..N).map(|n| member("many", &format!("many_{n:05}"), 1)).collect();
    processes.push(program("web", 999));
    let started = Instant::now();
    let changes = k.sup.update(config(processes), t0);
    let took = started.elapsed();
    assert_eq!(changes.added.len(), N);
    assert!(took < Duration::from_secs(3), "an update adding {N} processes took {took:?}");
    let names: Vec<String> = k.sup.iter().map(|e| e.spec.namespec()).collect();
    assert_eq!(names[0], "many:many_00000", "sorted by priority, then name");
    assert_eq!(names[N - 1], format!("many:many_{:05}", N - 1));
    assert_eq!(names[N], "web");
    let spawns = k.sup.actions.iter().filter(|(_, a)| *a == Action::Spawn).count();
    assert_eq!(spawns, N);
}

#[test]
fn update_restarts_a_changed_running_process_with_its_new_spec_after_it_exits() {
    let t0 = Instant::now();
    let mut k = three_running(t0);
    let id = k.id("worker");
    let t1 = t0 + secs(5);
    k.sup.update(new_config(), t1);
    k.perform(t1);
    assert_eq!(k.sup.get(id).unwrap().spec.argv, ["/usr/bin/worker"], "old spec until it is down");

    let done = k.exit("worker", by(Signal::SIGTERM), t1 + ms(50));
    assert_eq!(spawns(&done), ["worker"]);
    let e = k.sup.get(id).unwrap();
    assert_eq!(e.spec.argv, ["/usr/bin/worker", "--v2"]);
    assert_eq!(e.proc.state, State::Starting);
    assert_eq!(k.id("worker"), id, "the same process, with a new spec");
}

#[test]
fn update_forgets_a_removed_process_once_it_has_stopped() {
    let t0 = Instant::now();
    let mut k = three_running(t0);
    let id = k.id("db");
    let t1 = t0 + secs(5);
    k.sup.update(new_config(), t1);
    k.perform(t1);
    assert_eq!(k.state("db"), State::Stopping, "still known while it stops");
    assert_eq!(k.sup.diff(&new_config()).removed, Vec::<String>::new(), "no longer in a reread");

    let done = k.exit("db", by(Signal::SIGTERM), t1 + ms(50));
    assert_eq!(spawns(&done), Vec::<String>::new());
    assert!(k.sup.get(id).is_none());
    assert_eq!(k.sup.resolve("db"), None);
}

#[test]
fn update_applies_at_once_to_processes_that_are_not_running() {
    // A removed process that is stopped is forgotten, and a changed one that is stopped gets
    // its new spec, without a stop.
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        with(program("old", 1), |s| s.autostart = false),
        with(program("tool", 2), |s| s.autostart = false),
    ]);
    let tool = k.id("tool");
    let new = config(vec![with(program("tool", 2), |s| {
        s.autostart = false;
        s.argv = vec!["/usr/bin/tool".into(), "-x".into()];
    })]);
    let changes = k.sup.update(new, t0);
    assert_eq!(changes.removed, ["old"]);
    assert_eq!(changes.changed, ["tool"]);
    assert_eq!(k.perform(t0), []);
    assert_eq!(k.sup.resolve("old"), None);
    assert_eq!(k.sup.get(tool).unwrap().spec.argv, ["/usr/bin/tool", "-x"]);
    assert_eq!(k.state("tool"), State::Stopped);
}

#[test]
fn update_starts_a_changed_autostart_process_that_had_exited() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("job", 1)]);
    k.boot(t0);
    k.exit("job", code(0), t0 + secs(2));
    assert_eq!(k.state("job"), State::Exited);
    let new = config(vec![with(program("job", 1), |s| s.argv = vec!["/usr/bin/job2".into()])]);
    k.sup.update(new, t0 + secs(3));
    assert_eq!(spawns(&k.perform(t0 + secs(3))), ["job"]);
    assert_eq!(k.sup.get(k.id("job")).unwrap().spec.argv, ["/usr/bin/job2"]);
}

#[test]
fn update_stops_a_changed_backoff_process_and_starts_it_with_the_new_spec() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("web", 1)]);
    k.failing.push("web".into());
    k.sup.start_autostart(t0);
    k.perform(t0);
    assert_eq!(k.state("web"), State::Backoff);
    k.failing.clear();
    let new = config(vec![with(program("web", 1), |s| s.argv = vec!["/usr/bin/web2".into()])]);
    k.sup.update(new, t0 + ms(500));
    let done = k.perform(t0 + ms(500));
    assert_eq!(spawns(&done), ["web"]);
    assert_eq!(k.state("web"), State::Starting);
    assert_eq!(k.sup.get(k.id("web")).unwrap().spec.argv, ["/usr/bin/web2"]);
    assert_eq!(k.sup.get(k.id("web")).unwrap().proc.backoff, 0, "retries counted afresh");
}

#[test]
fn update_with_a_new_priority_moves_the_process_in_the_start_order() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        with(program("a", 1), |s| s.autostart = false),
        with(program("b", 2), |s| s.autostart = false),
    ]);
    let new = config(vec![
        with(program("a", 3), |s| s.autostart = false),
        with(program("b", 2), |s| s.autostart = false),
    ]);
    k.sup.update(new, t0);
    let order: Vec<String> = k.sup.iter().map(|e| e.spec.namespec()).collect();
    assert_eq!(order, ["b", "a"]);
}

/// PROCESS_GROUP_ADDED and _REMOVED: the groups at start, in start order; a group that comes
/// with an update; one that goes once its last process is forgotten; none for a process that
/// changes within its group.
#[test]
fn groups_are_announced_as_they_come_and_go() {
    let t0 = Instant::now();
    let mut k = three_running(t0);
    let g = |v: &[(&str, bool)]| -> Vec<(String, bool)> {
        v.iter().map(|(n, a)| (n.to_string(), *a)).collect()
    };
    // `boot` left them for the loop: taken here as the loop would.
    assert_eq!(
        std::mem::take(&mut k.sup.groups_changed),
        g(&[("web", true), ("worker", true), ("db", true)])
    );
    let t1 = t0 + secs(5);
    k.sup.update(new_config(), t1);
    k.perform(t1);
    assert_eq!(
        std::mem::take(&mut k.sup.groups_changed),
        g(&[("cache", true), ("batch", true)]),
        "worker changed, and is still in its group; db is stopping, still there"
    );
    k.exit("db", by(Signal::SIGTERM), t1 + ms(50));
    assert_eq!(std::mem::take(&mut k.sup.groups_changed), g(&[("db", false)]));
    // A second member of a group that exists announces nothing.
    let mut more = new_config();
    more.processes.push(member("cache", "cache_2", 4));
    k.sup.update(more, t1 + secs(1));
    assert!(k.sup.groups_changed.is_empty(), "{:?}", k.sup.groups_changed);
}

/// supervisorctl's update of a changed group: stop it, remove it, add it again from the file;
/// of an added one: add it. Nothing else of the file is applied.
#[test]
fn groups_are_removed_once_down_and_added_from_the_file() {
    use crate::supervisor::GroupError;
    let t0 = Instant::now();
    let mut k = three_running(t0);
    let t1 = t0 + secs(2);
    assert_eq!(k.sup.remove_group("worker"), Err(GroupError::StillRunning));
    assert_eq!(k.sup.remove_group("nope"), Err(GroupError::NoSuchGroup));
    assert_eq!(k.sup.add_group(&new_config(), "worker", t1), Err(GroupError::AlreadyAdded));
    k.sup.operator_stop(k.id("worker"), t1);
    k.perform(t1);
    k.exit("worker", by(Signal::SIGTERM), t1 + ms(10));
    assert_eq!(k.state("worker"), State::Stopped);
    let removed = k.sup.remove_group("worker").unwrap();
    assert_eq!(removed.removed, ["worker"]);
    assert!(k.sup.resolve("worker").is_none());
    assert!(!k.sup.changed.is_empty(), "the loop is told, to close its files");
    // Added again with its new command, and started.
    let added = k.sup.add_group(&new_config(), "worker", t1 + ms(20)).unwrap();
    assert_eq!(added.added, ["worker"]);
    let done = k.perform(t1 + ms(20));
    assert_eq!(spawns(&done), ["worker"]);
    assert_eq!(k.sup.get(k.id("worker")).unwrap().spec.argv[1], "--v2");
    // An added group; db, gone from the file, is left alone, and nothing else is applied.
    assert!(k.sup.add_group(&new_config(), "cache", t1).is_ok());
    assert_eq!(k.sup.add_group(&new_config(), "nope", t1), Err(GroupError::NoSuchGroup));
    assert_eq!(k.state("db"), State::Running);
    assert!(k.sup.resolve("batch").is_none());
}

/// tool (not autostart, no retries) whose command does not exist, started by hand until FATAL.
fn fatal_tool(t0: Instant) -> Harness {
    let tool = with(program("tool", 1), |s| {
        s.autostart = false;
        s.startretries = 0;
    });
    let mut k = Harness::new(vec![tool]);
    k.failing.push("tool".into());
    let id = k.id("tool");
    k.sup.input(id, Input::Start, t0);
    k.perform(t0);
    assert_eq!(k.state("tool"), State::Fatal);
    assert!(k.sup.get(id).unwrap().proc.spawn_error.is_some());
    k
}

/// Asserts `name` is as a process never started is: STOPPED, no pid, no exit status, no
/// spawn error, no retries or restarts counted.
fn assert_fresh(k: &Harness, name: &str) {
    let p = &k.sup.get(k.id(name)).unwrap().proc;
    assert_eq!(p.state, State::Stopped, "{name}");
    assert_eq!(p.pid, None, "{name}");
    assert_eq!(p.exit_status, None, "{name}");
    assert_eq!(p.spawn_error, None, "{name}");
    assert_eq!((p.backoff, p.restarts, p.crashes), (0, 0, 0), "{name}");
    assert_eq!((p.started_at, p.stopped_at), (None, None), "{name}");
}

/// Regression (issue 16): a reload (supervisord's restart) left a FATAL program that does not
/// autostart FATAL; supervisord makes every process anew, so it is STOPPED, "Not started".
#[test]
fn reload_leaves_a_fatal_program_that_does_not_autostart_stopped_as_new() {
    let t0 = Instant::now();
    let mut k = fatal_tool(t0);
    let same = config(k.sup.iter().map(|e| ProcessSpec::clone(&e.spec)).collect());
    let changes = k.sup.reload(same, t0 + secs(1));
    assert_eq!(changes.changed, ["tool"]);
    assert_eq!(k.perform(t0 + secs(1)), []);
    assert_fresh(&k, "tool");
}

/// Regression (issue 16): `update` gave a changed FATAL program its new settings but left it
/// FATAL, with the old spawn error; supervisord replaces it with a new, STOPPED process. An
/// unchanged one is not touched, FATAL as it was.
#[test]
fn update_makes_a_changed_fatal_program_new_and_leaves_an_unchanged_one_fatal() {
    let t0 = Instant::now();
    let mut k = fatal_tool(t0);
    let same = config(k.sup.iter().map(|e| ProcessSpec::clone(&e.spec)).collect());
    assert_eq!(k.sup.update(same.clone(), t0 + secs(1)), Changes::default());
    assert_eq!(k.state("tool"), State::Fatal, "update left alone what did not change");

    let mut changed = same;
    changed.processes[0].argv = vec!["/usr/bin/tool2".into()];
    let changes = k.sup.update(changed, t0 + secs(2));
    assert_eq!(changes.changed, ["tool"]);
    assert_eq!(k.perform(t0 + secs(2)), []);
    assert_fresh(&k, "tool");
}

/// A reload starts an autostart program afresh: a process that had used up retries and
/// restarts begins again with none counted, as a new supervisord's process does.
#[test]
fn reload_starts_an_autostart_program_with_its_counts_afresh() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![with(program("web", 1), |s| s.startretries = 1)]);
    k.failing.push("web".into());
    k.sup.start_autostart(t0);
    k.perform(t0);
    k.advance_to(t0 + secs(10));
    assert_eq!(k.state("web"), State::Fatal);
    k.failing.clear();
    let same = config(k.sup.iter().map(|e| ProcessSpec::clone(&e.spec)).collect());
    k.sup.reload(same, t0 + secs(20));
    assert_eq!(spawns(&k.perform(t0 + secs(20))), ["web"]);
    let p = &k.sup.get(k.id("web")).unwrap().proc;
    assert_eq!(p.state, State::Starting);
    assert_eq!((p.backoff, p.restarts, p.spawn_error.as_deref()), (0, 0, None));
}
