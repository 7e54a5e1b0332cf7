//! The events Kahi produces besides changes of state, as an event listener written from
//! supervisord's documentation of the protocol and of each event's payload receives them:
//! ticks, programs' output and capture mode, groups, Kahi running, remote communication,
//! dependencies.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// A listener as supervisord's docs describe one: READY, a header line of `key:value` tokens
/// (split as supervisord's childutils splits them), `len` bytes of payload, `RESULT 2\nOK`.
/// Each event goes to the file of its first argument as one JSON line: the header's tokens
/// and the payload. Given a second argument, it answers each event only once that file
/// exists (a listener that is behind).
const LISTENER: &str = r#"
import json, os, sys, time

out = sys.argv[1]
gate = sys.argv[2] if len(sys.argv) > 2 else None
while True:
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        break
    headers = dict([x.split(":") for x in line.split()])
    payload = sys.stdin.read(int(headers["len"]))
    with open(out, "a") as f:
        f.write(json.dumps({"headers": headers, "payload": payload}) + "\n")
    while gate and not os.path.exists(gate):
        time.sleep(0.01)
    sys.stdout.write("RESULT 2\nOK")
    sys.stdout.flush()
"#;

/// `[eventlisteners.mon]` of `events`, running [`LISTENER`] into `events.jsonl`.
fn listener(dir: &Dir, events: &str) -> String {
    let script = dir.write("listener.py", LISTENER);
    format!(
        "[eventlisteners.mon]\ncommand = [\"python3\", \"-u\", \"{}\", \"{}\"]\nevents = [{events}]\n\n",
        script.display(),
        dir.join("events.jsonl").display()
    )
}

/// (eventname, payload) of each event the listener has written down, in order.
fn received(dir: &Dir) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            let name = v["headers"]["eventname"].as_str().unwrap_or("").to_string();
            (name, v["payload"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

fn payloads_of(dir: &Dir, event: &str) -> Vec<String> {
    received(dir).into_iter().filter(|(n, _)| n == event).map(|(_, p)| p).collect()
}

/// Rewrites the configuration (after the `[server]` table `Daemon::start` wrote) and applies
/// it.
fn update(d: &Daemon, body: &str) {
    let text = format!("[server]\nsocket = \"{}\"\n\n{body}", d.socket.display());
    std::fs::write(&d.config, text).unwrap();
    let out = d.ctl(&["update"]);
    assert_eq!(out.code, 0, "{out:?}");
}

/// Context switches of every thread of `pid` so far: each is a wakeup of the loop.
fn context_switches(pid: i32) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some(n) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += n.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    total
}

/// Once the daemon has been quiet for 500 ms, it does not wake up at all for longer than a
/// TICK_5 period (5.5 s): nothing it serves has a timer.
pub fn stays_asleep(d: &Daemon, why: &str) {
    let pid = d.pid();
    wait_until("no context switch for 500 ms", DEADLINE, || {
        let at = context_switches(pid);
        std::thread::sleep(Duration::from_millis(500));
        context_switches(pid) == at
    });
    let (before, t0) = (context_switches(pid), Instant::now());
    while t0.elapsed() < Duration::from_millis(5500) {
        assert_eq!(
            context_switches(pid),
            before,
            "woke up {why}, {:?} in:\n{}",
            t0.elapsed(),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TICK_5 listener gets `when:` multiples of 5, five apart, as the wall clock reaches them;
/// once an update removes it, the tick's timer goes too: over more than a period, the daemon
/// does not wake up at all (the idle test's positive twin).
#[test]
fn tick_5_comes_on_multiples_of_5_only_while_a_listener_takes_it() {
    let dir = Dir::new("events-tick");
    let body = listener(&dir, "\"TICK_5\"");
    let d = Daemon::start_in(dir, &body);
    wait_until("two ticks", Duration::from_secs(20), || payloads_of(&d.dir, "TICK_5").len() >= 2);
    let whens: Vec<u64> = payloads_of(&d.dir, "TICK_5")
        .iter()
        .map(|p| p.strip_prefix("when:").and_then(|w| w.parse().ok()).unwrap_or(0))
        .collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    for w in &whens {
        assert_eq!(w % 5, 0, "{whens:?}");
        assert!(w.abs_diff(now.as_secs()) < 30, "the wall clock's time: {whens:?}");
    }
    assert_eq!(whens[1] - whens[0], 5, "one tick per period: {whens:?}");

    update(&d, "");
    wait_until("the listener is gone", DEADLINE, || d.status().is_empty());
    let ticks = payloads_of(&d.dir, "TICK_5").len();
    stays_asleep(&d, "with no tick taken");
    assert_eq!(payloads_of(&d.dir, "TICK_5").len(), ticks, "no tick after the listener went");
}

/// A program with stdout_events_enabled: its output reaches a PROCESS_LOG_STDOUT listener
/// with supervisord's header and payload; a program without it sends nothing.
#[test]
fn output_reaches_a_process_log_listener_with_supervisords_payload() {
    let dir = Dir::new("events-log");
    let body = listener(&dir, "\"PROCESS_LOG\"")
        + "[programs.talk]\ncommand = [\"/bin/sh\", \"-c\", \"echo hello; exec sleep 1000\"]\n\
           startsecs = 0\nstdout_events_enabled = true\n\n\
           [programs.quiet]\ncommand = [\"/bin/sh\", \"-c\", \"echo nobody; echo hears >&2; exec sleep 1000\"]\n\
           startsecs = 0\n";
    let d = Daemon::start_in(dir, &body);
    wait_until("the line is an event", DEADLINE, || !received(&d.dir).is_empty());
    let pid = d.process("talk")["pid"].as_i64().unwrap();
    assert_eq!(
        received(&d.dir),
        [(
            "PROCESS_LOG_STDOUT".to_string(),
            format!("processname:talk groupname:talk pid:{pid} channel:stdout\nhello\n")
        )]
    );
    // quiet's output was read too (it is in its buffers), and made no event.
    wait_until("quiet's output is read", DEADLINE, || {
        d.ctl(&["tail", "quiet", "stderr"]).stdout.contains("hears")
    });
    assert_eq!(received(&d.dir).len(), 1, "{:?}", received(&d.dir));
}

/// Output written while the listener holds an event reaches it as one event when it is
/// READY again, not one per read of the pipe: PROCESS_LOG events carried one read each, so how
/// much one carried followed the loop's pace (a Python listener took 1.7 KB an event, 42 MB/s,
/// where it had taken 4.1 KB, 104 MB/s). Every line arrives, once, in order.
#[test]
fn output_that_waits_for_a_busy_listener_is_one_event() {
    let dir = Dir::new("events-merged");
    let script = dir.write("listener.py", LISTENER);
    let talk = dir.write(
        "talk.sh",
        &format!(
            "echo first\nwhile [ ! -e '{}' ]; do sleep 0.01; done\n\
             for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.05; done\nexec sleep 1000\n",
            dir.join("more").display()
        ),
    );
    let body = format!(
        "[eventlisteners.mon]\ncommand = [\"python3\", \"-u\", \"{}\", \"{}\", \"{}\"]\n\
         events = [\"PROCESS_LOG_STDOUT\"]\n\n\
         [programs.talk]\ncommand = [\"/bin/sh\", \"{}\"]\nstartsecs = 0\n\
         stdout_events_enabled = true\n",
        script.display(),
        dir.join("events.jsonl").display(),
        dir.join("go").display(),
        talk.display()
    );
    let d = Daemon::start_in(dir, &body);
    wait_until("the listener holds the first line", DEADLINE, || !received(&d.dir).is_empty());
    // Eight lines, apart: eight reads of the pipe while the listener is BUSY.
    d.dir.write("more", "");
    wait_until("Kahi has read every line", DEADLINE, || {
        d.ctl(&["tail", "talk"]).stdout.contains("line 8")
    });
    d.dir.write("go", "");
    wait_until("the listener has taken the rest", DEADLINE, || received(&d.dir).len() >= 2);
    let head = format!(
        "processname:talk groupname:talk pid:{} channel:stdout\n",
        d.process("talk")["pid"].as_i64().unwrap()
    );
    let lines: String = (1..=8).map(|i| format!("line {i}\n")).collect();
    assert_eq!(
        payloads_of(&d.dir, "PROCESS_LOG_STDOUT"),
        [head.clone() + "first\n", head + &lines]
    );
}

/// Capture mode: what a program writes between the markers, split across writes, is one
/// PROCESS_COMMUNICATION_STDOUT event with supervisord's payload, and is not in its log.
#[test]
fn a_capture_is_one_process_communication_event_and_not_logged() {
    let dir = Dir::new("events-capture");
    let script = "printf 'before\\n<!--XSUPERVISOR:BEG'; sleep 0.2; \
                  printf 'IN-->captured\\nlines'; sleep 0.2; \
                  printf '<!--XSUPERVISOR:END-->after\\n'; exec sleep 1000";
    let body = listener(&dir, "\"PROCESS_COMMUNICATION\"")
        + &format!(
            "[programs.comm]\ncommand = [\"/bin/sh\", \"-c\", \"{script}\"]\nstartsecs = 0\n\
             stdout_capturemode_maxbytes = \"1KB\"\nstdout_events_enabled = true\n"
        );
    let d = Daemon::start_in(dir, &body);
    wait_until("the capture is an event", DEADLINE, || !received(&d.dir).is_empty());
    let pid = d.process("comm")["pid"].as_i64().unwrap();
    assert_eq!(
        received(&d.dir),
        [(
            "PROCESS_COMMUNICATION_STDOUT".to_string(),
            format!("processname:comm groupname:comm pid:{pid}\ncaptured\nlines")
        )]
    );
    wait_until("the rest is logged", DEADLINE, || {
        d.ctl(&["tail", "comm"]).stdout.contains("after")
    });
    assert_eq!(d.ctl(&["tail", "comm"]).stdout, "before\nafter\n");
}

/// PROCESS_GROUP_ADDED for each group as Kahi starts, then SUPERVISOR_STATE_CHANGE_RUNNING;
/// an update that adds a group and removes another announces each, the removed one after its
/// process's PROCESS_STATE_STOPPED. KAHI_DEPENDENCY says what a held start waits for, and when
/// it waits no more.
#[test]
fn groups_come_and_go_with_updates_and_kahi_says_it_runs() {
    let dir = Dir::new("events-groups");
    let mon = listener(
        &dir,
        "\"PROCESS_GROUP\", \"SUPERVISOR_STATE_CHANGE\", \"KAHI_DEPENDENCY\", \"PROCESS_STATE_STOPPED\"",
    );
    let one = "[programs.one]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n";
    let d = Daemon::start_in(dir, &format!("{mon}{one}"));
    let running = ("SUPERVISOR_STATE_CHANGE_RUNNING".to_string(), String::new());
    wait_until("RUNNING", DEADLINE, || received(&d.dir).contains(&running));
    let added = |g: &str| ("PROCESS_GROUP_ADDED".to_string(), format!("groupname:{g}\n"));
    let removed = |g: &str| ("PROCESS_GROUP_REMOVED".to_string(), format!("groupname:{g}\n"));
    let mut at_start = received(&d.dir);
    assert_eq!(at_start.pop(), Some(running), "RUNNING after the groups: {at_start:?}");
    at_start.sort();
    assert_eq!(at_start, [added("mon"), added("one")]);

    let two = "[programs.two]\ncommand = \"sleep 1000\"\ndepends_on = [\"three\"]\n\n\
               [programs.three]\ncommand = \"sleep 1000\"\nstartsecs = 1\n\n";
    update(&d, &format!("{mon}{two}"));
    wait_until("one is removed", DEADLINE, || received(&d.dir).contains(&removed("one")));
    wait_until("two waits no more", DEADLINE, || payloads_of(&d.dir, "KAHI_DEPENDENCY").len() >= 2);
    let events = received(&d.dir);
    assert!(events.contains(&added("two")) && events.contains(&added("three")), "{events:?}");
    assert_eq!(events.iter().filter(|e| e.0 == "PROCESS_GROUP_REMOVED").count(), 1);
    // The removed program's last change is told, before its group goes, as supervisord does.
    let stopped = events
        .iter()
        .position(|e| e.0 == "PROCESS_STATE_STOPPED" && e.1.contains("processname:one "));
    let gone = events.iter().position(|e| *e == removed("one"));
    assert!(stopped.is_some() && stopped < gone, "{events:?}");
    let waits: Vec<Value> = payloads_of(&d.dir, "KAHI_DEPENDENCY")
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    assert_eq!(waits[0]["name"], "two");
    assert_eq!(waits[0]["waiting_for"], serde_json::json!(["three (started)"]));
    assert_eq!(waits[1]["waiting_for"], serde_json::json!([]));
    d.wait_state("two", "RUNNING");
}

/// REMOTE_COMMUNICATION, sent with `kahi ctl sendcomm` and over HTTP, reaches a listener as
/// supervisord's `type:T` and data; a bad type is refused and sends nothing.
#[test]
fn remote_communication_comes_from_ctl_and_http() {
    let dir = Dir::new("events-remote");
    let body = listener(&dir, "\"REMOTE_COMMUNICATION\"");
    let (d, port) = crate::http::start_in(dir, &body);
    let out = d.ctl(&["sendcomm", "deploy", "v2 is out"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "REMOTE_COMMUNICATION: sent to 1 subscriber\n")
    );
    let bad = d.ctl(&["sendcomm", "a:b", "x"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("type:"), "{bad:?}");
    let (status, _, answer) = crate::http::send_raw(
        port,
        "POST",
        "/api/v1/events/remote",
        "Content-Type: application/json\r\n",
        r#"{"type": "restart", "data": "line 1\nline 2"}"#,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(serde_json::from_str::<Value>(&answer).unwrap(), serde_json::json!({"taken": 1}));
    wait_until("both arrived", DEADLINE, || received(&d.dir).len() >= 2);
    assert_eq!(
        payloads_of(&d.dir, "REMOTE_COMMUNICATION"),
        ["type:deploy\nv2 is out", "type:restart\nline 1\nline 2"]
    );
}

/// Regression (issue 13): `kahi ctl events` behind a reader that stopped reading lost events
/// without a word (the daemon's queue for it holds 1024 and drops the oldest). The first
/// event after a loss says how many were lost, and the client prints it on stderr: every
/// event published is either printed or counted lost.
#[test]
fn ctl_events_says_how_many_events_a_slow_reader_lost() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::sync::mpsc;

    let d = Daemon::start("events-lost", "");
    let mut follower = d
        .dir
        .command(KAHI)
        .arg("ctl")
        .arg("-s")
        .arg(&d.socket)
        .args(["events", "--json", "--types", "REMOTE_COMMUNICATION"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its stdout read a line at a time, only when the test asks (a rendezvous channel): when
    // the test stops asking, the reader stops reading, and so in turn does `kahi ctl events`.
    let (tx, lines) = mpsc::sync_channel(0);
    let out = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (errors, _) = lines_of(follower.stderr.take().unwrap());

    let mut comm = Comm::open(&d);
    let mut published = 0;
    let mut printed = 0;
    wait_until("the follower follows", DEADLINE, || {
        published += comm.send("hello", "");
        let seen = lines.recv_timeout(Duration::from_millis(300)).is_ok();
        printed += u64::from(seen);
        seen
    });

    // 4000 events of 1 KiB: more than the pipe, the socket, the daemon's buffer for the
    // connection and the queue of 1024 hold together.
    let flood = 4000;
    let line = Comm::request("flood", &"x".repeat(1024));
    let writer = {
        let mut conn = comm.conn.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..flood {
                writeln!(conn, "{line}").unwrap();
            }
        })
    };
    for _ in 0..flood {
        published += comm.taken();
    }
    writer.join().unwrap();
    published += comm.send("last", "");

    // It reads again, to the last event.
    loop {
        let line = lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("{e} after {printed} lines; {}", d.log()));
        printed += 1;
        if line.contains(r#""type":"last""#) {
            break;
        }
    }
    let mut lost = 0;
    while let Ok(line) = errors.recv_timeout(Duration::from_millis(500)) {
        let n = line
            .strip_prefix("kahi: ")
            .and_then(|l| l.strip_suffix(" lost (the reader was too slow)"))
            .and_then(|l| l.strip_suffix(" events").or_else(|| l.strip_suffix(" event")))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("unexpected on stderr: {line:?}"));
        lost += n;
    }
    assert!(lost > 0, "nothing was lost: {printed} of {published} printed");
    assert_eq!(printed + lost, published, "{printed} printed, {lost} said lost");
    let _ = follower.kill();
    let _ = follower.wait();
}

/// A control connection that publishes REMOTE_COMMUNICATION events (`sendcomm`), many
/// requests on one connection, their replies read as they come.
struct Comm {
    conn: std::os::unix::net::UnixStream,
    replies: std::io::Lines<std::io::BufReader<std::os::unix::net::UnixStream>>,
}

impl Comm {
    fn open(d: &Daemon) -> Comm {
        let conn = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
        let replies = std::io::BufRead::lines(std::io::BufReader::new(conn.try_clone().unwrap()));
        Comm { conn, replies }
    }

    /// The request line that publishes one event.
    fn request(kind: &str, data: &str) -> String {
        serde_json::json!({"cmd": "sendcomm", "type": kind, "data": data}).to_string()
    }

    /// Publishes one event; how many subscribers took it.
    fn send(&mut self, kind: &str, data: &str) -> u64 {
        std::io::Write::write_all(&mut self.conn, (Comm::request(kind, data) + "\n").as_bytes())
            .unwrap();
        self.taken()
    }

    /// The answer to the next request sent: how many subscribers took its event.
    fn taken(&mut self) -> u64 {
        let reply: Value = serde_json::from_str(&self.replies.next().unwrap().unwrap()).unwrap();
        reply["taken"].as_u64().unwrap_or_else(|| panic!("{reply}"))
    }
}

/// Regression (issue 13): `/api/v1/events/stream` behind a client that stopped reading lost
/// events without a word (its queue holds 1024 and drops the oldest). Before the first event
/// after a loss comes a `lost` event that says how many: the gap in what the client gets
/// is exactly what it is told it lost.
#[test]
fn the_event_stream_says_how_many_events_a_slow_client_lost() {
    let (d, port) = crate::http::start("events-sse-lost", "");
    let mut stream =
        crate::http::Events::open(port, "/api/v1/events/stream?types=REMOTE_COMMUNICATION");
    // Numbered events of 4 KiB, the client reading none, until the daemon has dropped some:
    // past what the socket's buffers, the daemon's for the stream and the queue hold.
    let mut comm = Comm::open(&d);
    let pad = "x".repeat(4 << 10);
    let mut published = 0u64;
    while crate::logs::metric(port, "kahi_events_dropped_total") == Some(0) {
        assert!(published < 100_000, "nothing dropped after {published} events; {}", d.log());
        for _ in 0..64 {
            assert_eq!(comm.send("flood", &format!("{published} {pad}")), 1);
            published += 1;
        }
    }

    // It reads again, to the last event: each gap in the numbers is told just before it.
    let (mut next, mut told, mut lost) = (0, 0, 0);
    while next < published {
        let (name, _, data) = stream.next();
        let data: Value = serde_json::from_str(&data).unwrap();
        if name == "lost" {
            assert_eq!(told, 0, "two losses told in a row");
            told = data["lost"].as_u64().unwrap_or_else(|| panic!("{data}"));
            assert!(told > 0, "{data}");
            continue;
        }
        assert_eq!(name, "REMOTE_COMMUNICATION", "{data}");
        let text = data["data"].as_str().unwrap_or_else(|| panic!("{data}"));
        let n: u64 = text.split(' ').next().and_then(|n| n.parse().ok()).unwrap();
        assert_eq!(n - next, told, "event {n} came after {next}, with {told} told lost");
        lost += told;
        (next, told) = (n + 1, 0);
    }
    assert!(lost > 0, "nothing was lost of {published}");
    println!("{published} events published, {lost} told lost");
}
