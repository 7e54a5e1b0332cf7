//! Supervisor: start order, name look-up, the shutdown sequence, reread and update, and the
//! answers `api::handle` gives to start and stop.
//!
//! No process runs. A small harness stands in for the event loop: it answers each spawn at once
//! with a made-up pid (as the loop does, synchronously), feeds exits by pid, and fires armed
//! deadlines when told that time has passed. Time is a fake clock: `t0` and offsets from it.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;

use super::{Changes, ProcId, Stream, Supervisor};
use crate::api::{self, ApiError, ErrorCode, Handled, NameResult, Outcome, Reply, Request, Waiter};
use crate::config::{AutoRestart, Config, Logging, ProcessSpec, Server};
use crate::process::machine::{Action, Input, TimerKind};
use crate::process::{ExitStatus, State};

// ---- building blocks ----

/// A process `name` in `group`, with supervisord's defaults.
fn member(group: &str, name: &str, priority: i64) -> ProcessSpec {
    ProcessSpec {
        name: name.into(),
        group: group.into(),
        program: name.into(),
        argv: vec![format!("/usr/bin/{name}")],
        priority,
        ..ProcessSpec::default()
    }
}

/// A program with one process, in a group of its own name.
fn program(name: &str, priority: i64) -> ProcessSpec {
    member(name, name, priority)
}

/// `spec` with some settings changed.
fn with(mut spec: ProcessSpec, change: impl FnOnce(&mut ProcessSpec)) -> ProcessSpec {
    change(&mut spec);
    spec
}

fn config(processes: Vec<ProcessSpec>) -> Config {
    Config {
        file: "/etc/kahi/kahi.toml".into(),
        server: Server {
            socket: "/run/kahi.sock".into(),
            socket_mode: 0o700,
            socket_group: None,
            minfds: 1024,
            kill_orphans: true,
            http: Default::default(),
        },
        logging: Logging::default(),
        processes,
        programs: Vec::new(),
        notes: Vec::new(),
        webhooks: Vec::new(),
        format: crate::config::Format::Auto,
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn code(c: i32) -> ExitStatus {
    ExitStatus::Exited(c)
}

fn by(signal: Signal) -> ExitStatus {
    ExitStatus::Signaled { signal: signal as i32, core_dumped: false }
}

/// What the event loop did, by process namespec.
type Done = Vec<(String, Action)>;

/// Who was sent which signal.
fn kills(done: &Done) -> Vec<(String, Signal)> {
    done.iter()
        .filter_map(|(name, a)| match a {
            Action::Kill { signal, .. } => Some((name.clone(), *signal)),
            _ => None,
        })
        .collect()
}

/// Who was spawned.
fn spawns(done: &Done) -> Vec<String> {
    done.iter().filter(|(_, a)| *a == Action::Spawn).map(|(name, _)| name.clone()).collect()
}

/// The names of `ids`, in order.
fn names(sup: &Supervisor, ids: Option<Vec<ProcId>>) -> Option<Vec<String>> {
    ids.map(|ids| ids.iter().map(|id| sup.get(*id).unwrap().spec.namespec()).collect())
}

/// Stands in for the event loop.
struct Harness {
    sup: Supervisor,
    next_pid: i32,
    /// Namespecs whose spawn fails.
    failing: Vec<String>,
    /// Every namespec seen, so that actions of a process already forgotten can still be named.
    seen: HashMap<ProcId, String>,
}

impl Harness {
    fn new(processes: Vec<ProcessSpec>) -> Harness {
        Harness {
            sup: Supervisor::new(config(processes)),
            next_pid: 100,
            failing: Vec::new(),
            seen: HashMap::new(),
        }
    }

    fn remember(&mut self) {
        for e in self.sup.iter() {
            self.seen.insert(e.id, e.spec.namespec());
        }
    }

    fn id(&self, name: &str) -> ProcId {
        let ids = self.sup.resolve(name).unwrap_or_else(|| panic!("no process {name}"));
        assert_eq!(ids.len(), 1, "{name} names one process");
        ids[0]
    }

    fn state(&self, name: &str) -> State {
        self.sup.get(self.id(name)).unwrap().proc.state
    }

    fn pid(&self, name: &str) -> Option<i32> {
        self.sup.get(self.id(name)).unwrap().proc.pid
    }

    /// Performs every queued action as the event loop does: a spawn is answered at once.
    fn perform(&mut self, now: Instant) -> Done {
        self.remember();
        let mut done = Vec::new();
        loop {
            // A large shutdown sends its stops a batch per turn of the loop.
            if self.sup.actions.is_empty() && self.sup.shutdown_busy() {
                self.sup.continue_shutdown(now);
            }
            let Some((id, action)) = self.sup.actions.pop_front() else { break };
            let name = self.seen[&id].clone();
            if action == Action::Spawn {
                let answer = if self.failing.contains(&name) {
                    Input::SpawnFailed {
                        error: "No such file or directory".into(),
                        transient: false,
                    }
                } else {
                    self.next_pid += 1;
                    Input::Spawned { pid: self.next_pid }
                };
                self.sup.input(id, answer, now);
                self.remember();
            }
            done.push((name, action));
        }
        done
    }

    /// The process's pid was reaped: routed by pid, as the event loop's reaper does.
    fn exit(&mut self, name: &str, status: ExitStatus, now: Instant) -> Done {
        let pid = self.pid(name).unwrap_or_else(|| panic!("{name} has no pid"));
        let id = self.sup.by_pid(pid).unwrap_or_else(|| panic!("pid {pid} is not known"));
        self.remember();
        self.sup.input(id, Input::Exited(status), now);
        self.perform(now)
    }

    /// Lets time run to `until`: every deadline due fires, earliest first, at its instant.
    fn advance_to(&mut self, until: Instant) -> Done {
        let mut done = Vec::new();
        loop {
            let due = self
                .sup
                .iter()
                .flat_map(|e| {
                    [
                        TimerKind::StartSecs,
                        TimerKind::Backoff,
                        TimerKind::StopKill,
                        TimerKind::StartDelay,
                        TimerKind::ReadyDelay,
                        TimerKind::StartTimeout,
                    ]
                    .into_iter()
                    .filter_map(move |k| e.proc.timers.get(k).map(|at| (at, e.id, k)))
                })
                .filter(|(at, _, _)| *at <= until)
                .min();
            let Some((at, id, kind)) = due else { return done };
            self.remember();
            self.sup.input(id, Input::Timer(kind, at), at);
            done.extend(self.perform(at));
        }
    }

    /// Starts the autostart processes at t0 and lets them reach RUNNING (startsecs 1).
    fn boot(&mut self, t0: Instant) -> Done {
        self.sup.start_autostart(t0);
        let mut done = self.perform(t0);
        done.extend(self.advance_to(t0 + secs(1)));
        done
    }
}

// ==== start order and look-up ====

#[test]
fn start_order_is_priority_then_group_then_name() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        program("late", 10),
        member("b", "y", 5),
        member("b", "x", 5),
        member("a", "y", 5),
        program("m", 5),
        program("z", 1),
    ]);
    let order: Vec<String> = k.sup.iter().map(|e| e.spec.namespec()).collect();
    assert_eq!(order, ["z", "a:y", "b:x", "b:y", "m", "late"]);
    k.sup.start_autostart(t0);
    assert_eq!(spawns(&k.perform(t0)), ["z", "a:y", "b:x", "b:y", "m", "late"]);
}

#[test]
fn start_autostart_skips_autostart_false() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        program("web", 1),
        with(program("batch", 2), |s| s.autostart = false),
        program("worker", 3),
    ]);
    k.sup.start_autostart(t0);
    assert_eq!(spawns(&k.perform(t0)), ["web", "worker"]);
    assert_eq!(k.state("batch"), State::Stopped);
    assert_eq!(k.state("web"), State::Starting);
}

/// web and worker in group backend, db alone, cache_0 and cache_1 from one program.
fn lookup() -> Supervisor {
    Supervisor::new(config(vec![
        member("backend", "web", 2),
        member("backend", "worker", 2),
        program("db", 1),
        member("cache", "cache_0", 3),
        member("cache", "cache_1", 3),
    ]))
}

#[test]
fn resolve_all_is_every_process_in_start_order() {
    let sup = lookup();
    assert_eq!(
        names(&sup, sup.resolve("all")).unwrap(),
        ["db", "backend:web", "backend:worker", "cache:cache_0", "cache:cache_1"]
    );
}

#[test]
fn resolve_group_star_is_the_group() {
    let sup = lookup();
    assert_eq!(names(&sup, sup.resolve("backend:*")).unwrap(), ["backend:web", "backend:worker"]);
}

#[test]
fn resolve_group_colon_name_is_one_process() {
    let sup = lookup();
    assert_eq!(names(&sup, sup.resolve("backend:worker")).unwrap(), ["backend:worker"]);
    assert_eq!(names(&sup, sup.resolve("db:db")).unwrap(), ["db"]);
}

#[test]
fn resolve_process_name_alone_finds_it_in_its_group() {
    let sup = lookup();
    assert_eq!(names(&sup, sup.resolve("web")).unwrap(), ["backend:web"]);
    assert_eq!(names(&sup, sup.resolve("db")).unwrap(), ["db"]);
}

#[test]
fn resolve_group_name_alone_is_every_process_of_the_group() {
    let sup = lookup();
    assert_eq!(names(&sup, sup.resolve("cache")).unwrap(), ["cache:cache_0", "cache:cache_1"]);
}

#[test]
fn resolve_unknown_names_are_none() {
    let sup = lookup();
    assert_eq!(sup.resolve("nope"), None);
    assert_eq!(sup.resolve("nope:*"), None);
    assert_eq!(sup.resolve("backend:nope"), None);
    assert_eq!(sup.resolve("db:web"), None, "web is not in group db");
}

// ==== shutdown ====

#[test]
fn shutdown_stops_the_highest_priority_tier_first_and_the_next_once_it_is_down() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        program("db", 1),
        program("app", 2),
        program("web1", 3),
        program("web2", 3),
    ]);
    k.boot(t0);
    let t1 = t0 + secs(5);
    k.sup.begin_shutdown(t1);
    let done = k.perform(t1);
    assert_eq!(
        kills(&done),
        [("web1".into(), Signal::SIGTERM), ("web2".into(), Signal::SIGTERM)],
        "only the highest tier is stopped at first"
    );
    assert_eq!(k.state("app"), State::Running);

    // One of the tier is down: the next tier still waits.
    assert_eq!(kills(&k.exit("web1", by(Signal::SIGTERM), t1 + ms(10))), []);
    assert_eq!(k.state("app"), State::Running);

    // The whole tier is down: the next one is stopped.
    let done = k.exit("web2", by(Signal::SIGTERM), t1 + ms(20));
    assert_eq!(kills(&done), [("app".into(), Signal::SIGTERM)]);
    assert_eq!(k.state("db"), State::Running);

    let done = k.exit("app", code(0), t1 + ms(30));
    assert_eq!(kills(&done), [("db".into(), Signal::SIGTERM)]);
    assert!(!k.sup.shutdown_complete(), "db is still running");

    k.exit("db", code(0), t1 + ms(40));
    assert!(k.sup.shutdown_complete());
    assert_eq!(k.state("db"), State::Stopped);
}

#[test]
fn shutdown_complete_is_false_before_shutdown_begins() {
    let k = Harness::new(vec![with(program("web", 1), |s| s.autostart = false)]);
    assert!(!k.sup.shutdown_complete(), "nothing runs, but nobody asked to shut down");
}

#[test]
fn shutdown_with_nothing_running_completes_at_once() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        with(program("web", 1), |s| s.autostart = false),
        with(program("db", 2), |s| s.autostart = false),
    ]);
    k.sup.begin_shutdown(t0);
    assert_eq!(k.perform(t0), []);
    assert!(k.sup.is_shutting_down());
    assert!(k.sup.shutdown_complete());
}

#[test]
fn shutdown_begun_twice_stops_each_process_once() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("web", 1)]);
    k.boot(t0);
    k.sup.begin_shutdown(t0 + secs(2));
    assert_eq!(kills(&k.perform(t0 + secs(2))).len(), 1);
    k.sup.begin_shutdown(t0 + secs(3));
    assert_eq!(k.perform(t0 + secs(3)), []);
}

#[test]
fn shutdown_does_not_autorestart_a_process_that_exits() {
    // low waits for its turn while high stops; it exits unexpectedly meanwhile.
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        with(program("low", 1), |s| s.autorestart = AutoRestart::Always),
        program("high", 2),
    ]);
    k.boot(t0);
    k.sup.begin_shutdown(t0 + secs(2));
    k.perform(t0 + secs(2));
    let done = k.exit("low", code(1), t0 + secs(3));
    assert_eq!(spawns(&done), Vec::<String>::new());
    assert_eq!(k.state("low"), State::Exited);
    k.exit("high", by(Signal::SIGTERM), t0 + secs(4));
    assert!(k.sup.shutdown_complete());
}

#[test]
fn shutdown_leaves_the_autorestart_setting_intact() {
    // autorestart is overridden for the duration of one input only; the spec is not changed.
    let t0 = Instant::now();
    let mut k =
        Harness::new(vec![with(program("web", 1), |s| s.autorestart = AutoRestart::Always)]);
    k.boot(t0);
    k.sup.begin_shutdown(t0 + secs(2));
    k.perform(t0 + secs(2));
    k.exit("web", code(0), t0 + secs(3));
    assert_eq!(k.sup.get(k.id("web")).unwrap().spec.autorestart, AutoRestart::Always);
}

#[test]
fn shutdown_stops_backoff_processes_at_once_whatever_their_tier() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("low", 1), program("high", 2)]);
    k.sup.start_autostart(t0);
    k.perform(t0);
    k.exit("low", code(1), t0 + ms(500));
    k.advance_to(t0 + secs(1));
    assert_eq!(k.state("low"), State::Backoff);
    assert_eq!(k.state("high"), State::Running);

    k.sup.begin_shutdown(t0 + ms(1200));
    let done = k.perform(t0 + ms(1200));
    assert!(done.iter().any(|(name, a)| name == "low"
        && matches!(a, Action::Changed { from: State::Backoff, to: State::Stopped, .. })));
    assert_eq!(k.state("low"), State::Stopped, "stopped while the higher tier is still stopping");
    assert_eq!(k.state("high"), State::Stopping);
    assert_eq!(k.sup.get(k.id("low")).unwrap().proc.timers.get(TimerKind::Backoff), None);
    // Its retry never comes.
    assert_eq!(spawns(&k.advance_to(t0 + secs(5))), Vec::<String>::new());
}

#[test]
fn shutdown_does_not_retry_a_process_that_fails_to_start_meanwhile() {
    // low is still STARTING (startsecs 10) when shutdown begins; it dies before its tier's
    // turn. supervisord spawns nothing once shutdown began; neither must Kahi.
    let t0 = Instant::now();
    let mut k =
        Harness::new(vec![with(program("low", 1), |s| s.startsecs = secs(10)), program("high", 2)]);
    k.boot(t0);
    assert_eq!(k.state("low"), State::Starting);
    k.sup.begin_shutdown(t0 + secs(2));
    k.perform(t0 + secs(2));
    k.exit("low", code(1), t0 + secs(3));
    let done = k.advance_to(t0 + secs(9));
    assert_eq!(spawns(&done), Vec::<String>::new(), "nothing is spawned during shutdown");
    assert_ne!(k.state("low"), State::Starting);
    k.exit("high", by(Signal::SIGTERM), t0 + secs(9));
    assert!(k.sup.shutdown_complete());
}

#[test]
fn shutdown_keeps_tier_order_when_a_tier_holds_a_backoff_process() {
    // mid is STARTING when shutdown begins and dies before its turn, so its tier holds a
    // BACKOFF process when top (the highest tier) is down. Then only the next tier, a's, may
    // be stopped; b waits for a.
    let t0 = Instant::now();
    let mut k = Harness::new(vec![
        program("b", 1),
        program("a", 2),
        with(program("mid", 3), |s| s.startsecs = secs(10)),
        program("top", 4),
    ]);
    k.boot(t0);
    k.sup.begin_shutdown(t0 + secs(2));
    assert_eq!(kills(&k.perform(t0 + secs(2))), [("top".into(), Signal::SIGTERM)]);
    k.exit("mid", code(1), t0 + ms(2100));
    let done = k.exit("top", by(Signal::SIGTERM), t0 + ms(2200));
    assert_eq!(kills(&done), [("a".into(), Signal::SIGTERM)], "b waits until a is down");
    assert_eq!(k.state("b"), State::Running);
}

#[test]
fn shutdown_begun_before_a_queued_spawn_is_performed_still_stops_that_process() {
    // A reload that adds a program and a shutdown in the same batch of signals: the new
    // process is STARTING, its spawn still queued, when the shutdown stops it.
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("web", 1)]);
    k.boot(t0);
    let t1 = t0 + secs(2);
    k.sup.update(config(vec![program("web", 1), program("late", 2)]), t1);
    k.sup.begin_shutdown(t1);
    let done = k.perform(t1);
    assert!(k.pid("late").is_some(), "the spawned pid is known, so it can be signalled and reaped");
    // The stop asked for is carried out once there is a pid to signal.
    let spawned = done.iter().position(|(n, a)| n == "late" && *a == Action::Spawn).unwrap();
    assert!(
        done[spawned..].iter().any(|(n, a)| n == "late" && matches!(a, Action::Kill { .. })),
        "{done:?}"
    );
    k.exit("late", by(Signal::SIGTERM), t1 + ms(10));
    k.exit("web", by(Signal::SIGTERM), t1 + ms(20));
    assert!(k.sup.shutdown_complete());
}

#[test]
fn any_killed_once_a_stop_needed_sigkill() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("web", 1)]);
    k.boot(t0);
    k.sup.begin_shutdown(t0 + secs(2));
    k.perform(t0 + secs(2));
    assert!(!k.sup.any_killed());
    let done = k.advance_to(t0 + secs(12));
    assert_eq!(kills(&done), [("web".into(), Signal::SIGKILL)]);
    assert!(k.sup.any_killed());
    k.exit("web", by(Signal::SIGKILL), t0 + secs(12));
    assert!(k.sup.shutdown_complete());
    assert!(k.sup.any_killed(), "still known after the process is reaped");
}

#[test]
fn any_killed_is_false_when_every_process_obeyed_its_stop_signal() {
    let t0 = Instant::now();
    let mut k = Harness::new(vec![program("web", 1), program("db", 2)]);
    k.boot(t0);
    k.sup.begin_shutdown(t0 + secs(2));
    k.perform(t0 + secs(2));
    k.exit("db", by(Signal::SIGTERM), t0 + secs(3));
    k.exit("web", by(Signal::SIGTERM), t0 + secs(4));
    assert!(k.sup.shutdown_complete());
    assert!(!k.sup.any_killed());
}

// ---- requests and what they wait for ----

fn at(mono: Instant) -> api::Now {
    api::Now { mono, wall: SystemTime::UNIX_EPOCH }
}

fn start(names: &[&str]) -> Request {
    Request::Start { names: names.iter().map(|n| n.to_string()).collect(), wait: true }
}

fn stop(names: &[&str]) -> Request {
    Request::Stop { names: names.iter().map(|n| n.to_string()).collect(), wait: true }
}

fn result(name: &str, outcome: Outcome, detail: Option<&str>) -> NameResult {
    NameResult { name: name.into(), outcome, detail: detail.map(str::to_string) }
}

/// The reply of a request answered at once.
fn replied(h: Handled) -> Result<Reply, ApiError> {
    match h {
        Handled::Reply(r) => r,
        _ => panic!("expected an answer at once"),
    }
}

/// The waiter of a request that waits.
fn waiting(h: Handled) -> Waiter {
    match h {
        Handled::Wait(w) => w,
        _ => panic!("expected to wait"),
    }
}

fn results(results: Vec<NameResult>) -> Option<Reply> {
    Some(Reply::Results { results })
}

fn needs(spec: ProcessSpec, program: &str, condition: crate::config::Condition) -> ProcessSpec {
    with(spec, |s| {
        s.deps.push(crate::config::Dep {
            program: program.into(),
            condition,
            on_failure: crate::config::OnFailure::Ignore,
        })
    })
}

// ==== shutdown at scale, and replies in pieces ====

/// Shutdown at scale (issue 13): 200 processes in ten priority tiers, each tier's processes
/// depending on a process of the tier above. Every process gets exactly one stop signal, a
/// tier only once the one before it is down, and dependents before what they wait for.
#[test]
fn shutdown_of_many_stops_each_once_in_tier_and_dependency_order() {
    use crate::config::Condition::Started;
    let t0 = Instant::now();
    let mut specs = Vec::new();
    for tier in 0..10i64 {
        for i in 0..20 {
            let spec = program(&format!("p{tier}_{i}"), 100 - tier);
            // Each waits for a process of the tier that stops after it (lower priority).
            specs.push(if tier < 9 {
                needs(spec, &format!("p{}_{i}", tier + 1), Started)
            } else {
                spec
            });
        }
    }
    let mut k = Harness::new(specs);
    k.boot(t0);
    // Each tier waits for the next one to be RUNNING (startsecs 1 each).
    k.advance_to(t0 + secs(12));
    assert!(k.sup.iter().all(|e| e.proc.state == State::Running));
    let t1 = t0 + secs(15);
    k.sup.begin_shutdown(t1);
    let mut signalled: Vec<String> = kills(&k.perform(t1)).into_iter().map(|(n, _)| n).collect();
    assert_eq!(signalled.len(), 20, "the first tier, all at once");
    assert!(signalled.iter().all(|n| n.starts_with("p0_")));
    let mut order = signalled.clone();
    while let Some(name) = signalled.pop() {
        let more = kills(&k.exit(&name, by(Signal::SIGTERM), t1 + ms(10)));
        for (n, _) in more {
            order.push(n.clone());
            signalled.insert(0, n);
        }
    }
    assert_eq!(order.len(), 200, "each process signalled exactly once");
    let mut seen = std::collections::HashSet::new();
    assert!(order.iter().all(|n| seen.insert(n.clone())));
    let tiers: Vec<u32> =
        order.iter().map(|n| n[1..n.find('_').unwrap()].parse().unwrap()).collect();
    assert!(tiers.windows(2).all(|w| w[0] <= w[1]), "tier order");
    assert!(k.sup.shutdown_complete());
}

// ---- replies sent in pieces ----

/// Every piece of `reply`, joined: what the client reads.
fn pieces(
    sup: &Supervisor,
    mut reply: crate::piecewise::Piecewise,
    now: api::Now,
) -> (Vec<u8>, usize) {
    let (mut out, mut n) = (Vec::new(), 0);
    while !reply.piece(sup, now, &mut out) {
        n += 1;
        assert!(n < 10_000, "no end");
    }
    (out, n + 1)
}

fn whole_line(reply: &Reply) -> Vec<u8> {
    let mut line = serde_json::to_vec(reply).unwrap();
    line.push(b'\n');
    line
}

#[test]
fn the_status_of_many_processes_in_pieces_is_the_whole_reply_byte_for_byte() {
    let sup = Supervisor::new(config((0..1300).map(|i| program(&format!("p{i}"), 1)).collect()));
    let now = api::Now { mono: Instant::now(), wall: SystemTime::now() };
    let mut ids: Vec<ProcId> = sup.iter().map(|e| e.id).collect();
    // One was removed (by an update) while its reply was on its way: it is left out.
    let gone = ProcId::MAX;
    ids.insert(700, gone);
    let reply = crate::piecewise::Piecewise::status(ids.clone(), vec!["nope".into()]);
    let (sent, n) = pieces(&sup, reply, now);
    assert_eq!(n, 3, "1300 processes, 512 a piece");
    ids.retain(|id| *id != gone);
    let whole = api::status(&sup, &ids, vec!["nope".into()], now);
    assert_eq!(String::from_utf8(sent).unwrap(), String::from_utf8(whole_line(&whole)).unwrap());
    let Reply::Status { processes, .. } = whole else { panic!() };
    assert_eq!(processes.len(), 1300);
}

#[test]
fn the_status_table_is_the_status_as_the_client_prints_it() {
    let long = "a_long_name_of_40_characters_or_so";
    let mut sup = Supervisor::new(config(vec![program("web", 1), program(long, 1)]));
    let now = api::Now { mono: Instant::now(), wall: SystemTime::now() };
    let ids: Vec<ProcId> = sup.iter().map(|e| e.id).collect();
    let Reply::Status { processes, .. } = api::status(&sup, &ids, vec![], now) else { panic!() };
    let rows: Vec<_> = processes.into_iter().map(|p| (p.name, p.state, p.description)).collect();
    let table = |names: &[&str]| Request::StatusTable {
        names: names.iter().map(|n| n.to_string()).collect(),
    };
    let Handled::Reply(Ok(Reply::Table { text, down, unknown })) =
        api::handle(&mut sup, table(&[]), now)
    else {
        panic!("a table")
    };
    assert_eq!(text, api::table(&rows));
    assert!(text.lines().any(|l| l == format!("{long}   STOPPED   Not started")), "{text}");
    assert!(down, "STOPPED is down");
    assert!(unknown.is_empty());
    let Handled::Reply(Ok(Reply::Table { text, unknown, .. })) =
        api::handle(&mut sup, table(&["web", "nope"]), now)
    else {
        panic!("a table")
    };
    assert_eq!(text, format!("{:<33}STOPPED   Not started\n", "web"));
    assert_eq!(unknown, ["nope"]);
    // Many processes: the status in pieces, which the client prints as the same table.
    let mut many =
        Supervisor::new(config((0..600).map(|i| program(&format!("p{i}"), 1)).collect()));
    assert!(matches!(api::handle(&mut many, table(&[]), now), Handled::Piecewise(_)));
}

#[test]
fn a_log_in_pieces_is_the_whole_reply_and_cuts_no_character_in_two() {
    use crate::api::Encoding;
    use crate::piecewise::{BYTES_PER_PIECE, Piecewise};
    let mut sup = Supervisor::new(config(vec![with(program("web", 1), |s| {
        s.stdout_capture_maxbytes = 4 << 20
    })]));
    let id = sup.iter().next().unwrap().id;
    // "é" (2 bytes) astride the first piece's end, a byte that is not UTF-8, quotes, controls.
    let mut data = vec![b'a'; BYTES_PER_PIECE - 1];
    data.extend_from_slice("é\"\\\n\u{1}".as_bytes());
    data.push(0xff);
    data.extend(std::iter::repeat_n(b'z', BYTES_PER_PIECE + 17));
    sup.get_mut(id).unwrap().stdout.write(&data);
    let now = api::Now { mono: Instant::now(), wall: SystemTime::now() };
    let end = data.len() as u64;
    for encoding in [Encoding::Text, Encoding::Base64] {
        let reply = Piecewise::log(id, Stream::Stdout, 0, end, 0, encoding);
        let (sent, n) = pieces(&sup, reply, now);
        assert!(n >= 3, "{n} pieces");
        let whole = Piecewise::log(id, Stream::Stdout, 0, end, 0, encoding).whole(&sup, now);
        assert_eq!(sent, whole_line(&whole), "{encoding:?}");
    }
    // Overwritten before the rest was sent: the data ends there, and says where it began.
    let mut reply = Piecewise::log(id, Stream::Stdout, 0, end, 0, Encoding::Text);
    let mut out = Vec::new();
    assert!(!reply.piece(&sup, now, &mut out));
    sup.get_mut(id).unwrap().stdout.write(&vec![b'q'; 4 << 20]);
    assert!(reply.piece(&sup, now, &mut out));
    let got: Reply = serde_json::from_slice(&out).unwrap();
    let Reply::Log { data: text, offset, .. } = got else { panic!() };
    assert_eq!((text.len(), offset), (BYTES_PER_PIECE - 1, 0));
}

mod deps;
mod regressions;
mod requests;
mod update;
