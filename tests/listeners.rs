//! Event listeners: real listener processes, written in Python from the protocol as
//! supervisord's documentation gives it (READY, a header line of key:value tokens, len bytes
//! of payload, RESULT), receive the events of real programs.

use std::time::{Duration, Instant};

use crate::util::*;

/// A listener as supervisord's docs describe one. It appends each header line and payload to
/// the file of its first argument, says so on stderr, and answers OK, or FAIL to its first
/// event when its second argument is `fail-first`, or nothing at all with `hang`; with
/// `garbage` it says hello instead of READY.
const LISTENER: &str = r#"
import sys

out, mode = sys.argv[1], sys.argv[2]
count = 0
if mode == "garbage":
    sys.stdout.write("hello\n")
    sys.stdout.flush()
    sys.stdin.read()
while True:
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        break
    headers = dict(token.split(":", 1) for token in line.split())
    payload = sys.stdin.read(int(headers["len"]))
    with open(out, "a") as f:
        f.write(line + payload + "\n")
    sys.stderr.write("got " + headers["eventname"] + "\n")
    sys.stderr.flush()
    count += 1
    if mode == "hang":
        sys.stdin.read()
    elif mode == "fail-first" and count == 1:
        sys.stdout.write("RESULT 4\nFAIL")
    else:
        sys.stdout.write("RESULT 2\nOK")
    sys.stdout.flush()
"#;

/// The config of a listener `mon` of `events` running [`LISTENER`] in `mode`, its events
/// written to `events.txt`.
fn listener(dir: &Dir, events: &str, mode: &str) -> String {
    let script = dir.write("listener.py", LISTENER);
    format!(
        "[eventlisteners.mon]\ncommand = [\"python3\", \"-u\", \"{}\", \"{}\", \"{mode}\"]\nevents = [{events}]\n\n",
        script.display(),
        dir.join("events.txt").display()
    )
}

/// The events the listener wrote down: each header's tokens, and the payload.
fn received(dir: &Dir) -> Vec<(Vec<(String, String)>, String)> {
    let text = dir.read("events.txt");
    let mut lines = text.lines();
    let mut out = Vec::new();
    while let (Some(header), Some(payload)) = (lines.next(), lines.next()) {
        let tokens = header
            .split_whitespace()
            .filter_map(|t| t.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.push((tokens, payload.to_string()));
    }
    out
}

/// A program that crashes once (an exit code not in exitcodes), after half a second.
const CRASH: &str = "[programs.crash]\ncommand = [\"/bin/sh\", \"-c\", \"sleep 0.5; exit 3\"]\nstartsecs = 0\nautorestart = false\n";

/// Lets a process run 1.2 s, longer than restart_min_interval: its restart is at once.
fn run_a_while() {
    let since = Instant::now();
    wait_until("a run of 1.2 s", DEADLINE, || {
        std::thread::sleep(Duration::from_millis(50));
        since.elapsed() > Duration::from_millis(1200)
    });
}

fn token<'a>(tokens: &'a [(String, String)], key: &str) -> &'a str {
    tokens.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
}

#[test]
fn a_crash_reaches_a_listener_as_process_state_exited_unexpected() {
    let dir = Dir::new("listener-crash");
    let body = listener(&dir, "\"PROCESS_STATE_EXITED\"", "ok") + CRASH;
    let d = Daemon::start_in(dir, &body);
    wait_until("the listener has the exit", DEADLINE, || !received(&d.dir).is_empty());
    let events = received(&d.dir);
    let (tokens, payload) = &events[0];
    assert_eq!(token(tokens, "ver"), "3.0");
    assert_eq!(token(tokens, "pool"), "mon");
    assert_eq!(token(tokens, "poolserial"), "1");
    assert_eq!(token(tokens, "eventname"), "PROCESS_STATE_EXITED");
    assert_eq!(token(tokens, "len"), payload.len().to_string());
    assert!(token(tokens, "serial").parse::<u64>().is_ok(), "{tokens:?}");
    assert!(
        payload.starts_with("processname:crash groupname:crash from_state:RUNNING expected:0 pid:"),
        "{payload}"
    );
    assert_eq!(events.len(), 1, "only the type it asked for: {events:?}");
    // Its stderr is logged as a program's; its stdout, the protocol, is not.
    wait_until("the listener's stderr is logged", DEADLINE, || {
        d.ctl(&["tail", "mon", "stderr"]).stdout.contains("got PROCESS_STATE_EXITED")
    });
    let stdout = d.ctl(&["tail", "mon"]).stdout;
    assert!(!stdout.contains("READY") && !stdout.contains("RESULT"), "{stdout}");
    d.wait_state("mon", "RUNNING");
}

#[test]
fn fail_sends_the_event_again() {
    let dir = Dir::new("listener-fail");
    let body = listener(&dir, "\"PROCESS_STATE_EXITED\"", "fail-first") + CRASH;
    let d = Daemon::start_in(dir, &body);
    wait_until("the event came twice", DEADLINE, || received(&d.dir).len() >= 2);
    let events = received(&d.dir);
    assert_eq!(events[0], events[1], "the same event, serials and all");
    assert!(d.log().contains("rejected (FAIL)"), "{}", d.log());
}

/// A listener that takes an event and never answers holds only that event: a program killed
/// while it hangs is replaced within 100 ms, as without it, and a burst of events overflows
/// its buffer, dropped and said so, never waited for.
#[test]
fn a_listener_that_hangs_delays_no_restart() {
    let dir = Dir::new("listener-hang");
    let body = listener(&dir, "\"PROCESS_STATE\"", "hang")
        + "[programs.long]\ncommand = \"sleep 1000\"\nstartsecs = 0\nautorestart = true\n";
    let d = Daemon::start_in(dir, &body);
    wait_until("the listener has an event and hangs", DEADLINE, || !received(&d.dir).is_empty());
    d.wait_state("long", "RUNNING");
    run_a_while();
    for _ in 0..3 {
        // Each restart is three changes of state: the buffer (10) overflows by the third.
        let took = time_restart(&d, "long", Duration::from_millis(100));
        println!("restart while a listener hangs: {took:?}");
        run_a_while();
    }
    assert_eq!(received(&d.dir).len(), 1, "the listener took one event and no more");
    wait_until("the overflow is logged", DEADLINE, || d.log().contains("event buffer overflowed"));
    assert_eq!(d.state("mon"), "RUNNING");
}

/// A listener that writes what is not the protocol is stopped, and its autorestart starts it
/// again.
#[test]
fn a_listener_that_speaks_garbage_is_stopped_and_started_again() {
    let dir = Dir::new("listener-garbage");
    let body = listener(&dir, "\"PROCESS_STATE\"", "garbage");
    let d = Daemon::start_in(dir, &body);
    wait_until("the garbage is logged", DEADLINE, || {
        d.log().contains("mon: not the event listener protocol: wrote \"hello\\n\"")
    });
    let first = d.process("mon")["pid"].as_i64();
    wait_until("mon is started again", DEADLINE, || {
        let pid = d.process("mon")["pid"].as_i64();
        pid.is_some() && pid != first
    });
}

/// A pool of three listeners shares a burst of 100 events: each arrives once, none is lost
/// (the buffer holds them all), and the pool numbers them 1 to 100.
#[test]
fn a_pool_of_three_shares_a_burst_of_100_events() {
    let dir = Dir::new("listener-pool");
    let body = listener(&dir, "\"PROCESS_STATE_EXITED\"", "ok")
        + "numprocs = 3\nprocess_name = \"%(program_name)s_%(process_num)d\"\nbuffer_size = 200\n\n\
           [programs.burst]\ncommand = [\"/bin/sh\", \"-c\", \"sleep 0.2; exit 3\"]\n\
           numprocs = 100\nprocess_name = \"%(program_name)s_%(process_num)d\"\n\
           startsecs = 0\nautorestart = false\n";
    let d = Daemon::start_in(dir, &body);
    wait_until("every burst process has exited", DEADLINE, || {
        let burst: Vec<_> = d.status().into_iter().filter(|p| p["group"] == "burst").collect();
        burst.len() == 100 && burst.iter().all(|p| p["state"] == "EXITED")
    });
    wait_until("100 events arrived", DEADLINE, || received(&d.dir).len() >= 100);
    let events = received(&d.dir);
    assert_eq!(events.len(), 100, "no event twice");
    let mut names: Vec<&str> =
        events.iter().map(|(_, payload)| payload.split_whitespace().next().unwrap_or("")).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 100, "each process's exit once: {names:?}");
    let mut serials: Vec<u64> =
        events.iter().map(|(t, _)| token(t, "poolserial").parse().unwrap()).collect();
    serials.sort();
    assert_eq!(serials, (1..=100).collect::<Vec<u64>>(), "none lost, none twice");
    assert!(!d.log().contains("overflowed"), "{}", d.log());
}

/// A listener's process shows where it is in the protocol (supervisord's READY, BUSY) in
/// status, its JSON and /metrics, and its pool's buffer (events waiting, events dropped) is in
/// /metrics.
#[test]
fn listener_states_and_buffers_show_in_status_and_metrics() {
    let dir = Dir::new("listener-states");
    let body = listener(&dir, "\"PROCESS_STATE_EXITED\"", "hang")
        + "buffer_size = 1\n\n[programs.crash]\ncommand = [\"/bin/sh\", \"-c\", \"exit 3\"]\n\
           startsecs = 0\nautostart = false\nautorestart = false\n";
    let d = Daemon::start_in(dir, &body);
    let metrics = || d.request(r#"{"cmd":"metrics"}"#)["text"].as_str().unwrap().to_string();
    let series = |name: &str, labels: &str, value: u64| format!("{name}{{{labels}}} {value}\n");
    let mon = "process=\"mon\",group=\"mon\",program=\"mon\"";
    wait_until("mon is READY", DEADLINE, || d.process("mon")["listener_state"] == "READY");
    d.wait_state("mon", "RUNNING");
    let p = d.process("mon");
    assert!(p["description"].as_str().unwrap().ends_with(" (listener READY)"), "{p}");
    let line = d.ctl(&["status", "mon"]).stdout;
    assert!(line.contains("RUNNING") && line.contains("(listener READY)"), "{line}");
    let m = metrics();
    assert!(
        m.contains(&series("kahi_listener_state", &format!("{mon},state=\"READY\""), 1)),
        "{m}"
    );
    assert!(m.contains(&series("kahi_listener_state", &format!("{mon},state=\"BUSY\""), 0)), "{m}");
    assert!(m.contains(&series("kahi_listener_events_queued", "pool=\"mon\"", 0)), "{m}");
    assert!(!m.contains("kahi_listener_state{process=\"crash\""), "a program has none: {m}");

    // One exit: it takes it and hangs, BUSY.
    // Each start is one exit: `start` has answered once it ran (or failed), so the EXITED
    // waited for is this start's.
    let crash = || {
        d.ctl(&["start", "crash"]);
        d.wait_state("crash", "EXITED");
    };
    crash();
    wait_until("mon is BUSY", DEADLINE, || d.process("mon")["listener_state"] == "BUSY");
    assert_eq!(received(&d.dir).len(), 1);
    assert!(d.ctl(&["status", "mon"]).stdout.contains("(listener BUSY)"));
    // Two more: the first waits in its buffer of one, the second pushes it out.
    crash();
    wait_until("an event waits", DEADLINE, || {
        metrics().contains(&series("kahi_listener_events_queued", "pool=\"mon\"", 1))
    });
    crash();
    wait_until("an event was dropped", DEADLINE, || {
        metrics().contains(&series("kahi_listener_events_dropped_total", "pool=\"mon\"", 1))
    });
    let m = metrics();
    assert!(m.contains(&series("kahi_listener_state", &format!("{mon},state=\"BUSY\""), 1)), "{m}");
    assert!(m.contains(&series("kahi_listener_events_queued", "pool=\"mon\"", 1)), "{m}");
}

/// The example's listener (kahi.example.toml), in POSIX sh with no Python, writes each event
/// it gets as a line on its stderr, its name and payload, and answers OK: each exit reaches it
/// once, and it is READY for the next.
#[test]
fn the_examples_sh_listener_logs_each_event_it_gets() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/kahi.example.toml");
    let example: toml::Table = toml::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    let exits = toml::to_string(&example["eventlisteners"]["exits"]).unwrap();
    let d = Daemon::start("listener-example", &format!("[eventlisteners.exits]\n{exits}\n{CRASH}"));
    let logged = || -> Vec<String> {
        let err = d.ctl(&["tail", "exits", "stderr"]).stdout;
        err.lines().map(String::from).collect()
    };
    wait_until("the exit is logged", DEADLINE, || !logged().is_empty());
    d.wait_state("crash", "EXITED");
    wait_until("it is READY again", DEADLINE, || d.process("exits")["listener_state"] == "READY");
    d.ctl(&["start", "crash"]);
    d.wait_state("crash", "EXITED");
    wait_until("the second exit is logged", DEADLINE, || logged().len() >= 2);
    let lines = logged();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert!(
            line.starts_with(
                "PROCESS_STATE_EXITED processname:crash groupname:crash from_state:RUNNING expected:0 pid:"
            ),
            "{line}"
        );
    }
    assert!(!d.log().contains("not the event listener protocol"), "{}", d.log());
}

/// The listener of the Docker images that stop the container when a critical program dies,
/// written as they write it from supervisord's docs: on PROCESS_STATE_FATAL it sends SIGTERM
/// to its parent, the supervisor (supervisord gives its children no pid to signal; the
/// images use the parent's, or a pidfile), then answers OK.
const STOPPER: &str = r#"
import os, signal, sys

while True:
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        break
    headers = dict(token.split(":", 1) for token in line.split())
    payload = sys.stdin.read(int(headers["len"]))
    sys.stderr.write("critical program died (" + payload + "); stopping the supervisor\n")
    sys.stderr.flush()
    os.kill(os.getppid(), signal.SIGTERM)
    sys.stdout.write("RESULT 2\nOK")
    sys.stdout.flush()
"#;

/// A program that can never start (startretries = 0: FATAL at its first failure), the
/// stopper listening for that, and a bystander that must be stopped with the rest.
fn critical_dies(dir: &Dir) -> String {
    let script = dir.write("stopper.py", STOPPER);
    format!(
        "[eventlisteners.stopper]\ncommand = [\"python3\", \"-u\", \"{}\"]\nevents = [\"PROCESS_STATE_FATAL\"]\n\n\
         [programs.bystander]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [programs.critical]\ncommand = [\"/bin/sh\", \"-c\", \"exit 1\"]\nstartsecs = 1\nstartretries = 0\n\
         autostart = false\n",
        script.display()
    )
}

/// The "stop the container when a critical program dies" pattern: `kahi daemon` ends, every
/// program stopped, once the listener has heard of the FATAL.
#[test]
fn a_listener_on_fatal_that_signals_kahi_ends_it() {
    let dir = Dir::new("listener-stop-kahi");
    let body = critical_dies(&dir);
    let mut d = Daemon::start_in(dir, &body);
    d.wait_state("bystander", "RUNNING");
    wait_until("the stopper is READY", DEADLINE, || {
        d.process("stopper")["listener_state"] == "READY"
    });
    let bystander = d.process("bystander")["pid"].as_i64().unwrap() as i32;
    // Started now, so that it fails with the stopper READY (were it not, the event would wait
    // in its buffer).
    d.ctl(&["start", "critical"]);
    assert_eq!(d.wait_exit(DEADLINE), 0, "{}", d.log());
    let log = d.log();
    assert!(log.contains("gave up: critical entered FATAL state"), "{log}");
    assert!(!alive(bystander), "the bystander was stopped with the rest");
}

/// The same with Kahi as PID 1 of a PID namespace, as in a container: the listener's parent is
/// PID 1, which takes SIGTERM (it handles it), stops everything and exits 0, ending the
/// namespace.
#[test]
fn a_listener_on_fatal_that_signals_kahi_as_pid_1_ends_the_container() {
    let probe = Dir::new("listener-stop-pid1-body");
    let body = critical_dies(&probe);
    let Some(mut ns) = crate::pid1::Ns::start("listener-stop-pid1", &body) else { return };
    ns.wait_state("bystander", "RUNNING");
    wait_until("the stopper is READY", DEADLINE, || {
        ns.ctl(&["status", "stopper"]).stdout.contains("(listener READY)")
    });
    ns.ctl(&["start", "critical"]);
    assert_eq!(ns.wait_exit(DEADLINE), 0, "{}", ns.log());
    assert!(ns.log().contains("gave up: critical entered FATAL state"), "{}", ns.log());
}

/// `[eventlisteners.NAME]` running [`LISTENER`] in `mode`, taking `events`, writing what it
/// gets to `NAME.txt`, with `extra` keys.
fn named_listener(dir: &Dir, name: &str, events: &str, mode: &str, extra: &str) -> String {
    let script = dir.write("listener.py", LISTENER);
    format!(
        "[eventlisteners.{name}]\ncommand = [\"python3\", \"-u\", \"{}\", \"{}\", \"{mode}\"]\nevents = [{events}]\n{extra}\n",
        script.display(),
        dir.join(&format!("{name}.txt")).display()
    )
}

/// Reload with listeners: a listener whose events change gets a new pool (its processes
/// restart, the events its old pool held are lost, as supervisord's update remakes the
/// group); one left as it was keeps its processes, their listener states and the events
/// waiting in its buffer; one removed is stopped and its pool goes. A change of numprocs keeps
/// the pool (its other processes run on): a process added joins it, and a process removed
/// gives back the event it had, which waits for the others.
#[test]
fn a_reload_remakes_changed_pools_and_keeps_the_others() {
    let dir = Dir::new("listener-reload");
    let exited = "\"PROCESS_STATE_EXITED\"";
    let crash = "[programs.crash]\ncommand = [\"/bin/sh\", \"-c\", \"exit 3\"]\nstartsecs = 0\n\
                 autostart = false\nautorestart = false\n\n";
    let change = |dir: &Dir, events: &str, numprocs: u32| {
        named_listener(
            dir,
            "change",
            events,
            "hang",
            &format!(
                "numprocs = {numprocs}\nprocess_name = \"%(program_name)s_%(process_num)d\"\n"
            ),
        )
    };
    let keep = named_listener(&dir, "keep", exited, "hang", "");
    let gone = named_listener(&dir, "gone", exited, "ok", "");
    let first = format!("{keep}{}{gone}{crash}", change(&dir, exited, 1));
    let d = Daemon::start_in(dir, &first);
    let reload = |d: &Daemon, body: &str| {
        let text = format!("[server]\nsocket = \"{}\"\n\n{body}", d.socket.display());
        std::fs::write(&d.config, text).unwrap();
        d.ctl(&["update"])
    };
    let metrics =
        |d: &Daemon| d.request(r#"{"cmd":"metrics"}"#)["text"].as_str().unwrap().to_string();
    let queued = |d: &Daemon, pool: &str| -> Option<u64> {
        let m = metrics(d);
        let prefix = format!("kahi_listener_events_queued{{pool=\"{pool}\"}} ");
        m.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| v.parse().unwrap())
    };
    let listener_state = |d: &Daemon, name: &str| d.process(name)["listener_state"].clone();
    for name in ["keep", "change:change_0", "gone"] {
        wait_until(&format!("{name} is READY"), DEADLINE, || listener_state(&d, name) == "READY");
    }
    // Three exits: keep and change take the first and hang on it, two wait for each.
    for _ in 0..3 {
        d.ctl(&["start", "crash"]);
        d.wait_state("crash", "EXITED");
    }
    wait_until("two events wait for keep and for change", DEADLINE, || {
        queued(&d, "keep") == Some(2) && queued(&d, "change") == Some(2)
    });
    let pid = |d: &Daemon, name: &str| d.process(name)["pid"].as_i64();
    let (keep_pid, change_pid, gone_pid) =
        (pid(&d, "keep"), pid(&d, "change:change_0"), pid(&d, "gone"));

    // change takes FATAL too; gone is removed; keep is as it was.
    let fatal = "\"PROCESS_STATE_EXITED\", \"PROCESS_STATE_FATAL\"";
    let second = format!("{keep}{}{crash}", change(&d.dir, fatal, 1));
    let out = reload(&d, &second);
    assert!(
        out.stdout.contains("change:change_0: updated") && out.stdout.contains("gone: removed"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("keep"), "{out:?}");
    wait_until("gone is stopped and removed", DEADLINE, || {
        !d.status().iter().any(|p| p["name"] == "gone")
    });
    assert!(!alive(gone_pid.unwrap() as i32));
    wait_until("change runs again, READY", DEADLINE, || {
        listener_state(&d, "change:change_0") == "READY" && pid(&d, "change:change_0") != change_pid
    });
    assert_eq!(queued(&d, "change"), Some(0), "a new pool: what the old one held is gone");
    assert_eq!(queued(&d, "gone"), None, "its pool is gone: {}", metrics(&d));
    assert_eq!((pid(&d, "keep"), listener_state(&d, "keep")), (keep_pid, "BUSY".into()));
    assert_eq!(queued(&d, "keep"), Some(2), "keep's buffer is as it was");

    // numprocs 2: change_0 runs on in the same pool, change_1 joins it.
    let change_pid = pid(&d, "change:change_0");
    let out = reload(&d, &format!("{keep}{}{crash}", change(&d.dir, fatal, 2)));
    assert!(out.stdout.contains("change:change_1: added"), "{out:?}");
    wait_until("change_1 is READY", DEADLINE, || listener_state(&d, "change:change_1") == "READY");
    assert_eq!(pid(&d, "change:change_0"), change_pid);
    // Two exits: one for each, BUSY both.
    for _ in 0..2 {
        d.ctl(&["start", "crash"]);
        d.wait_state("crash", "EXITED");
    }
    wait_until("both change processes are BUSY", DEADLINE, || {
        listener_state(&d, "change:change_0") == "BUSY"
            && listener_state(&d, "change:change_1") == "BUSY"
    });
    assert_eq!(queued(&d, "change"), Some(0));
    // numprocs 1 again: change_1 goes, and its event waits for change_0.
    let out = reload(&d, &format!("{keep}{}{crash}", change(&d.dir, fatal, 1)));
    assert!(out.stdout.contains("change:change_1: removed"), "{out:?}");
    wait_until("change_1's event waits in the pool", DEADLINE, || queued(&d, "change") == Some(1));
    assert_eq!(pid(&d, "change:change_0"), change_pid);
    assert_eq!(queued(&d, "keep"), Some(4), "keep had the four exits too: {}", metrics(&d));
}
