//! The HTTP listener: the probes and the read side of the API, with a real client over TCP.

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;

use crate::util::*;

/// Starts a daemon with an HTTP listener on a free loopback port; returns it and the port.
pub(crate) fn start(name: &str, body: &str) -> (Daemon, u16) {
    start_in(Dir::new(name), body)
}

/// [`start`] in a directory the test has prepared.
pub(crate) fn start_in(dir: Dir, body: &str) -> (Daemon, u16) {
    let d = Daemon::start_in(dir, &format!("[server.http]\nlisten = \"127.0.0.1:0\"\n\n{body}"));
    d.wait_log("HTTP API listening on http://127.0.0.1:");
    let port = http_port(&d.log());
    (d, port)
}

/// One request; returns the status code, the headers (lowercased names) and the JSON body.
pub(crate) fn request(port: u16, method: &str, path: &str) -> (u16, String, Value) {
    send(port, method, path, "", "")
}

/// One request with extra header lines (each ending in CRLF) and a body.
fn send(port: u16, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, Value) {
    let (status, head, body) = send_raw(port, method, path, headers, body);
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    (status, head, body)
}

pub(crate) fn send_raw(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no answer but {raw:?}"));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn probes_and_process_reads_answer_with_json_and_the_right_status() {
    let (d, port) = start(
        "http-read",
        "[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [programs.slow]\ncommand = \"sleep 1000\"\nstartsecs = 30\n\n\
         [programs.manual]\ncommand = \"sleep 1000\"\nautostart = false\n\n\
         [programs.done]\ncommand = \"true\"\nstartsecs = 0\n",
    );
    d.wait_state("web", "RUNNING");
    d.wait_state("done", "EXITED");
    let (code, head, body) = request(port, "GET", "/healthz");
    assert_eq!((code, &body["status"]), (200, &Value::from("ok")));
    assert!(head.contains("content-type: application/json"), "{head}");

    // `slow` is still STARTING: not ready, and the body says which.
    let (code, _, body) = request(port, "GET", "/readyz");
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["not_ready"], serde_json::json!([{ "name": "slow", "state": "STARTING" }]));
    // Only the ones asked about count; manual is not autostart but asked for by name.
    assert_eq!(request(port, "GET", "/readyz?process=web").0, 200);
    // A program that exited as expected and is not restarted is done, not unready.
    assert_eq!(request(port, "GET", "/readyz?process=web,done").0, 200);
    assert_eq!(request(port, "GET", "/readyz?process=web,manual").0, 503);
    // Regression (issue 13): with no users, nobody may learn which names exist: an unknown
    // name is answered as a known one that is not ready (it got 404).
    let (code, _, manual) = request(port, "GET", "/readyz?process=manual");
    assert_eq!(code, 503, "{manual}");
    let (code, _, nope) = request(port, "GET", "/readyz?process=nope");
    assert_eq!(code, 503, "{nope}");
    assert_eq!(nope.to_string(), manual.to_string().replace("manual", "nope"));
    assert_eq!(nope, serde_json::json!({ "ready": false, "not_ready": [{ "name": "nope" }] }));

    // The process list is what `status --json` shows.
    let (code, _, body) = request(port, "GET", "/api/v1/processes");
    assert_eq!(code, 200);
    let names: Vec<&str> =
        body.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["done", "manual", "slow", "web"]);
    let (code, _, web) = request(port, "GET", "/api/v1/processes/web");
    assert_eq!(code, 200);
    assert_eq!(web["pid"], d.process("web")["pid"]);
    assert_eq!(web["state"], "RUNNING");
    let (code, _, body) = request(port, "GET", "/api/v1/processes/nope");
    assert_eq!((code, body["code"].as_str()), (404, Some("NOT_FOUND")));
    assert!(body["error"].as_str().unwrap().contains("nope"));

    let (code, _, body) = request(port, "GET", "/api/v1/version");
    assert_eq!(code, 200);
    assert!(d.ctl(&["version"]).stdout.contains(body["version"].as_str().unwrap()));
    let (code, head, body) = request(port, "DELETE", "/api/v1/version");
    assert_eq!((code, body["code"].as_str()), (405, Some("BAD_REQUEST")));
    assert!(head.contains("allow: get"), "{head}");
    let (code, _, body) = request(port, "GET", "/nothing/here");
    assert_eq!((code, body["code"].as_str()), (404, Some("NOT_FOUND")));
}

#[test]
fn a_listener_other_hosts_can_reach_is_refused_without_insecure() {
    let d = Dir::new("http-insecure");
    let config = d.write(
        "kahi.toml",
        "[server.http]\nlisten = [\"127.0.0.1:0\", \"0.0.0.0:0\"]\n\n[programs.a]\ncommand = \"true\"\n",
    );
    let out = run(std::process::Command::new(KAHI).args(["daemon", "--check", "-c"]).arg(&config));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("kahi.toml:2:"), "{}", out.stderr);
    assert!(out.stderr.contains("server.http.listen"), "{}", out.stderr);
    assert!(out.stderr.contains("0.0.0.0:0 is reachable from other hosts"), "{}", out.stderr);
    // The negative twin: with insecure = true the same file is accepted.
    let config = d.write(
        "kahi.toml",
        "[server.http]\nlisten = [\"127.0.0.1:0\", \"0.0.0.0:0\"]\ninsecure = true\n\n[programs.a]\ncommand = \"true\"\n",
    );
    let out = run(std::process::Command::new(KAHI).args(["daemon", "--check", "-c"]).arg(&config));
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn actions_logs_groups_config_and_their_errors() {
    let (d, port) = start(
        "http-actions",
        "[programs.web]\ncommand = [\"/bin/sh\", \"-c\", \"trap 'echo got-usr1' USR1; echo hello-web; while :; do sleep 0.05; done\"]\nstartsecs = 0\n\n\
         [programs.a]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [programs.b]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [groups.pair]\nprograms = [\"a\", \"b\"]\n",
    );
    d.wait_state("web", "RUNNING");
    d.wait_state("pair:b", "RUNNING");
    let post = |path: &str| send(port, "POST", path, "", "");

    // stop, stop again (409), start, restart: each answered once it has settled.
    let (code, _, body) = post("/api/v1/processes/web/stop");
    assert_eq!((code, body["outcome"].as_str()), (200, Some("stopped")), "{body}");
    assert_eq!(d.state("web"), "STOPPED");
    let (code, _, body) = post("/api/v1/processes/web/stop");
    assert_eq!((code, body["code"].as_str()), (409, Some("CONFLICT")), "{body}");
    let (code, _, body) = post("/api/v1/processes/web/start");
    assert_eq!((code, body["outcome"].as_str()), (200, Some("started")), "{body}");
    assert_eq!(d.state("web"), "RUNNING");
    let pid = d.process("web")["pid"].clone();
    let (code, _, body) = post("/api/v1/processes/web/restart");
    assert_eq!((code, body["outcome"].as_str()), (200, Some("started")), "{body}");
    assert_ne!(d.process("web")["pid"], pid);
    let (code, _, body) = post("/api/v1/processes/nope/start");
    assert_eq!((code, body["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
    // A GET on an action is refused, naming the method to use.
    let (code, head, _) = request(port, "GET", "/api/v1/processes/web/start");
    assert_eq!(code, 405);
    assert!(head.contains("allow: post"), "{head}");

    // signal: the program's trap writes a line; the log endpoint shows it.
    let (code, _, body) =
        send(port, "POST", "/api/v1/processes/web/signal", "", r#"{"signal":"USR1"}"#);
    assert_eq!((code, body["outcome"].as_str()), (200, Some("signalled")), "{body}");
    wait_until("the trap ran", DEADLINE, || {
        request(port, "GET", "/api/v1/processes/web/log/stdout").2["data"]
            .as_str()
            .is_some_and(|d| d.contains("got-usr1"))
    });
    for (bad, field) in [
        (r#"{"sig":"USR1"}"#, "sig"),
        ("not json", "request body"),
        (r#"{"signal":"NOPE"}"#, "NOPE"),
    ] {
        let (code, _, body) = send(port, "POST", "/api/v1/processes/web/signal", "", bad);
        assert_eq!((code, body["code"].as_str()), (400, Some("BAD_REQUEST")), "{bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains(field), "{bad}: {body}");
    }
    // A body over the bound is refused before it reaches the loop.
    let big = format!(r#"{{"signal":"{}"}}"#, "x".repeat(70_000));
    let (code, _, body) = send(port, "POST", "/api/v1/processes/web/signal", "", &big);
    assert_eq!(code, 413);
    // Regression (issue 13): kahi(1) gave this code as SERVER_ERROR while the answer said
    // BAD_REQUEST; the page must name the code the answer carries.
    let code = body["code"].as_str().unwrap();
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/kahi.1")).unwrap();
    let documented = page
        .split(')')
        .find(|item| item.contains("413 for a body over 64 KiB"))
        .and_then(|item| {
            // The last code named before "(400, 413 ...".
            item.split_whitespace().rfind(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        })
        .unwrap_or_else(|| panic!("kahi(1) does not say which code a body over 64 KiB gets"));
    assert_eq!(documented, code, "kahi(1) and the answer disagree: {body}");

    // Log reads: the tail by default, or length bytes from offset.
    let (code, _, log) = request(port, "GET", "/api/v1/processes/web/log/stdout");
    assert_eq!(code, 200);
    let data = log["data"].as_str().unwrap();
    assert!(data.starts_with("hello-web\n"), "{log}");
    let (_, _, piece) = request(port, "GET", "/api/v1/processes/web/log/stdout?offset=6&length=3");
    assert_eq!((piece["data"].as_str(), piece["offset"].as_u64()), (Some("web"), Some(6)));
    let (code, _, body) = request(port, "GET", "/api/v1/processes/web/log/stdout?length=x");
    assert_eq!((code, body["code"].as_str()), (400, Some("BAD_REQUEST")));
    assert!(body["error"].as_str().unwrap().contains("length"), "{body}");

    // Groups: the list, and an action on all of a group's processes.
    let (code, _, groups) = request(port, "GET", "/api/v1/groups");
    assert_eq!(code, 200);
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "pair"
                && g["processes"] == serde_json::json!(["pair:a", "pair:b"])),
        "{groups}"
    );
    let (code, _, results) = post("/api/v1/groups/pair/stop");
    assert_eq!(code, 200, "{results}");
    assert_eq!(results.as_array().unwrap().len(), 2, "{results}");
    assert_eq!(d.state("pair:a"), "STOPPED");
    assert_eq!(post("/api/v1/groups/nope/stop").0, 404);
    // A group's name where a process's goes answers as the group's action does: every
    // process's outcome, not the last one's.
    let (code, _, results) = post("/api/v1/processes/pair/start");
    assert_eq!(code, 200, "{results}");
    let names: Vec<&str> =
        results.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pair:a", "pair:b"], "{results}");
    assert!(results.as_array().unwrap().iter().all(|r| r["outcome"] == "started"), "{results}");

    // Config: what is in force; reload reports, update applies; a bad file changes nothing.
    let (code, _, config) = request(port, "GET", "/api/v1/config");
    assert_eq!(code, 200);
    assert_eq!(config["file"].as_str(), Some(d.config.to_str().unwrap()));
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, format!("{text}\n[programs.late]\ncommand = \"sleep 1000\"\n"))
        .unwrap();
    let (code, _, changes) = post("/api/v1/config/reload");
    assert_eq!((code, &changes["added"]), (200, &serde_json::json!(["late"])), "{changes}");
    assert_eq!(request(port, "GET", "/api/v1/processes/late").0, 404, "reload applied");
    let (code, _, changes) = post("/api/v1/config/update");
    assert_eq!((code, &changes["added"]), (200, &serde_json::json!(["late"])), "{changes}");
    assert_eq!(request(port, "GET", "/api/v1/processes/late").0, 200);
    std::fs::write(&d.config, format!("{text}\n[programs.late]\ncommand = 5\n")).unwrap();
    let (code, _, body) = post("/api/v1/config/update");
    assert_eq!((code, body["code"].as_str()), (400, Some("BAD_REQUEST")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("kahi.toml:"), "{body}");
    assert_eq!(
        request(port, "GET", "/api/v1/processes/late").0,
        200,
        "a bad file changed something"
    );

    // Shutdown: answered, then everything stops and Kahi exits 0.
    let mut d = d;
    let (code, _, body) = post("/api/v1/shutdown");
    assert_eq!(code, 200, "{body}");
    assert_eq!(d.wait_exit(DEADLINE), 0);
}

/// Every path and method of the OpenAPI document is served, with one of the statuses the
/// document gives for it.
#[test]
fn the_openapi_document_matches_what_is_served() {
    let (d, port) = start(
        "http-openapi",
        "[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [programs.a]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [groups.g]\nprograms = [\"a\"]\n",
    );
    d.wait_state("web", "RUNNING");
    let (code, _, doc) = request(port, "GET", "/api/v1/openapi.json");
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{} paths", paths.len());
    let mut walked = 0;
    // Shutdown last: it ends the daemon.
    let mut order: Vec<(&String, &Value)> = paths.iter().collect();
    order.sort_by_key(|(p, _)| p.ends_with("/shutdown"));
    for (path, item) in order {
        for (method, op) in item.as_object().unwrap() {
            let url =
                path.replace("{name}", "web").replace("{group}", "g").replace("{stream}", "stdout");
            let body = if url.ends_with("/signal") {
                r#"{"signal":"CONT"}"#
            } else if url.ends_with("/stdin") {
                r#"{"data":"x"}"#
            } else {
                ""
            };
            let status = if url.ends_with("/stream") {
                // An event stream: the status line is enough.
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(DEADLINE)).unwrap();
                write!(s, "GET {url} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut line = String::new();
                std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line).unwrap();
                line.split(' ').nth(1).unwrap().parse::<u16>().unwrap()
            } else {
                send_raw(port, &method.to_uppercase(), &url, "", body).0
            };
            let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            assert!(
                documented.iter().any(|c| **c == status.to_string()),
                "{method} {url} answered {status}, documented {documented:?}"
            );
            walked += 1;
        }
    }
    assert!(walked >= 22, "walked {walked}");
    // And the reverse, for a sample of what is served: none is missing from the document.
    for served in ["/api/v1/processes/{name}/log/{stream}", "/api/v1/events/stream", "/metrics"] {
        assert!(paths.contains_key(served), "{served} is not documented");
    }
}

/// Reads Server-Sent Events from a raw connection: each event as (name, id, data).
pub(crate) struct Events {
    reader: std::io::BufReader<TcpStream>,
}

impl Events {
    pub(crate) fn open(port: u16, path: &str) -> Events {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n").unwrap();
        let mut reader = std::io::BufReader::new(s);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: text/event-stream"), "{head}");
        Events { reader }
    }

    pub(crate) fn next(&mut self) -> (String, Option<u64>, String) {
        let (mut name, mut id, mut data) = (String::new(), None, Vec::new());
        loop {
            let mut line = String::new();
            let n = std::io::BufRead::read_line(&mut self.reader, &mut line).expect("an event");
            assert!(n > 0, "the stream ended");
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if !name.is_empty() {
                    return (name, id, data.join("\n"));
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("event: ") {
                name = v.to_string();
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push(v.to_string());
            }
        }
    }
}

#[test]
fn event_streams_follow_a_log_and_state_changes_at_once() {
    let (d, port) = start(
        "http-sse",
        "[programs.talk]\ncommand = [\"/bin/sh\", \"-c\", \"echo first; trap 'echo second' USR1; while :; do sleep 0.05; done\"]\nstartsecs = 0\n\n\
         [programs.victim]\ncommand = \"sleep 1000\"\nstartsecs = 0\nautorestart = true\n\n\
         [programs.bar]\ncommand = [\"/bin/sh\", \"-c\", \"printf '50 pct\\\\rid: 999999\\\\revent: pwned\\\\rdata: x\\\\n'; exec sleep 1000\"]\nstartsecs = 0\n",
    );
    d.wait_state("talk", "RUNNING");
    d.wait_state("victim", "RUNNING");
    wait_until("first line", DEADLINE, || d.ctl(&["tail", "talk"]).stdout.contains("first"));

    // The log: what is there, then what comes, each chunk with the offset after it, its line
    // end kept.
    let mut log = Events::open(port, "/api/v1/processes/talk/log/stdout/stream");
    let (name, id, data) = log.next();
    assert_eq!((name.as_str(), data.as_str(), id), ("log", "first\n", Some(6)));
    d.ctl(&["signal", "USR1", "talk"]);
    let (_, id, data) = log.next();
    assert_eq!((data.as_str(), id), ("second\n", Some(13)));
    // A program's CR (a progress bar) ends a data line: what follows is data, not a field.
    d.wait_state("bar", "RUNNING");
    let mut bar = Events::open(port, "/api/v1/processes/bar/log/stdout/stream");
    let (name, id, data) = bar.next();
    assert_eq!(
        (name.as_str(), data.as_str(), id),
        ("log", "50 pct\nid: 999999\nevent: pwned\ndata: x\n", Some(39))
    );

    // State changes, filtered by type, within 100 ms of the change.
    let mut events = Events::open(port, "/api/v1/events/stream?types=state");
    let pid = d.process("victim")["pid"].as_i64().unwrap();
    let killed = std::time::Instant::now();
    unsafe_kill(pid as i32, 9);
    let (name, _, data) = events.next();
    let took = killed.elapsed();
    println!("state event after a kill: {took:?}");
    assert_eq!(name, "state");
    let v: Value = serde_json::from_str(&data).unwrap();
    assert_eq!((v["name"].as_str(), v["from"].as_str()), (Some("victim"), Some("RUNNING")), "{v}");
    assert!(took < std::time::Duration::from_millis(100), "took {took:?}");
    // Regression (issue 12): the exit of an autorestarted process said `exitstatus: null`.
    assert_eq!(v["to"], "EXITED", "{v}");
    assert_eq!((v["pid"].as_i64(), v["exitstatus"].as_i64()), (Some(pid), Some(137)), "{v}");
    assert_eq!(v["expected"], false, "{v}");
    let (_, _, data) = events.next();
    let v: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["from"], "EXITED", "{v}");
    assert!(v["to"] == "STARTING" || v["to"] == "BACKOFF", "{v}");

    let (code, _, body) = request(port, "GET", "/api/v1/events/stream?types=bogus");
    assert_eq!((code, body["code"].as_str()), (400, Some("BAD_REQUEST")));
    assert_eq!(request(port, "GET", "/api/v1/processes/nope/log/stdout/stream").0, 404);
}

#[test]
fn metrics_follow_the_prometheus_conventions() {
    let (d, port) = start(
        "http-metrics",
        "[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\nstdout_logfile = \"web.log\"\n\n\
         [programs.done]\ncommand = [\"/bin/sh\", \"-c\", \"exit 3\"]\nstartsecs = 0\nautorestart = false\n\n\
         [programs.flop]\ncommand = [\"/bin/sh\", \"-c\", \"exit 4\"]\nstartsecs = 0\nautorestart = true\n\
         restart_min_interval = 300\n",
    );
    d.wait_state("web", "RUNNING");
    d.wait_state("done", "EXITED");
    d.wait_state("flop", "BACKOFF");
    request(port, "GET", "/api/v1/processes");
    let (code, head, text) = send_raw(port, "GET", "/metrics", "", "");
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/plain; version=0.0.4"), "{head}");
    let has = |line: &str| assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    has(r#"kahi_process_up{process="web",group="web",program="web"} 1"#);
    has(r#"kahi_process_state{process="web",group="web",program="web",state="RUNNING"} 1"#);
    has(r#"kahi_process_state{process="web",group="web",program="web",state="STOPPED"} 0"#);
    has(r#"kahi_process_exit_code{process="done",group="done",program="done"} 3"#);
    has(r#"kahi_processes{state="RUNNING"} 1"#);
    has(r#"kahi_processes{state="EXITED"} 1"#);
    has(r#"kahi_processes{state="BACKOFF"} 1"#);
    has(r#"kahi_process_crash_streak{process="flop",group="flop",program="flop"} 1"#);
    // The restart guard's wait: under 300 s, and only for the process in BACKOFF.
    let next: Vec<&str> =
        text.lines().filter(|l| l.starts_with("kahi_process_next_start_seconds{")).collect();
    assert_eq!(next.len(), 1, "{next:?}");
    let secs: f64 = next[0].rsplit(' ').next().unwrap().parse().unwrap();
    assert!(next[0].contains("process=\"flop\"") && secs > 200.0 && secs <= 300.0, "{next:?}");
    has(r#"kahi_http_requests_total{code="200",method="GET"} 1"#);
    has("kahi_events_dropped_total 0");
    // A stream with a log file of its own has its drop counter and failure gauge; one without
    // has none.
    has(
        r#"kahi_log_dropped_bytes_total{process="web",group="web",program="web",stream="stdout"} 0"#,
    );
    has(r#"kahi_log_file_failing{process="web",group="web",program="web",stream="stdout"} 0"#);
    assert!(!text.contains(r#"program="done",stream="#), "{text}");
    has("# TYPE kahi_process_cpu_seconds_total counter");
    let rss = text
        .lines()
        .find(|l| l.starts_with("kahi_process_resident_memory_bytes{process=\"web\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("rss of web");
    assert!(rss > 100_000, "rss {rss}");
    // Every family has HELP and TYPE; promtool, where installed, has nothing to say.
    for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = l.split(' ').nth(2).unwrap();
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP");
    }
    if let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && said.trim().is_empty(), "promtool: {said}");
    } else {
        skip("promtool is not installed: the exposition was not checked with it");
    }
}

/// `kahi hash-password` with the password on stdin (cost 4: fast, for tests).
pub(crate) fn hash(password: &str) -> String {
    use std::process::{Command, Stdio};
    let mut child = Command::new(KAHI)
        .args(["hash-password", "--cost", "4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let h = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(h.starts_with("$2b$04$") && h.len() == 60, "{h}");
    h
}

pub(crate) fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}

/// `[[server.http.users]]` tables of three users, one per role: v (viewer), o (operator) and
/// a (admin), whose passwords are vpw, opw and apw.
pub(crate) fn role_users() -> String {
    [("v", "vpw", "viewer"), ("o", "opw", "operator"), ("a", "apw", "admin")]
        .iter()
        .map(|(n, p, r)| {
            format!(
                "[[server.http.users]]\nname = \"{n}\"\npassword_hash = \"{}\"\nrole = \"{r}\"\n\n",
                hash(p)
            )
        })
        .collect()
}

#[test]
fn each_role_is_allowed_and_refused_exactly_where_it_should_be() {
    let users = role_users();
    let (d, port) = start(
        "http-auth",
        &format!("{users}[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n"),
    );
    d.wait_state("web", "RUNNING");
    let as_ = |who: Option<(&str, &str)>, method: &str, path: &str| {
        let h = who.map(|(u, p)| basic(u, p)).unwrap_or_default();
        send(port, method, path, &h, "")
    };
    let (v, o, a) = (Some(("v", "vpw")), Some(("o", "opw")), Some(("a", "apw")));

    // Probes need nobody.
    assert_eq!(as_(None, "GET", "/healthz").0, 200);
    assert_eq!(as_(None, "GET", "/readyz").0, 200);
    // Everything else needs someone, and says how to authenticate.
    let (code, head, body) = as_(None, "GET", "/api/v1/processes");
    assert_eq!((code, body["code"].as_str()), (401, Some("UNAUTHORIZED")));
    assert!(head.contains("www-authenticate: basic realm=\"kahi\""), "{head}");
    // Regression (issue 12): /metrics is a probe too, as Prometheus expects, unless
    // metrics_auth says otherwise (below).
    assert_eq!(send_raw(port, "GET", "/metrics", "", "").0, 200);
    // Wrong passwords and unknown users are refused alike.
    assert_eq!(as_(Some(("v", "wrong")), "GET", "/api/v1/processes").0, 401);
    assert_eq!(as_(Some(("nobody", "vpw")), "GET", "/api/v1/processes").0, 401);
    d.wait_log("failed login for user \"nobody\" from 127.0.0.1");

    // viewer: reads only.
    assert_eq!(as_(v, "GET", "/api/v1/processes").0, 200);
    let (code, _, metrics) = send_raw(port, "GET", "/metrics", &basic("v", "vpw"), "");
    assert_eq!(code, 200);
    // Refusals made before the loop are counted too.
    assert!(
        metrics.contains(r#"kahi_http_requests_total{code="401",method="GET"} 3"#),
        "{metrics}"
    );
    assert_eq!(as_(v, "GET", "/api/v1/config").0, 200);
    let (code, _, body) = as_(v, "POST", "/api/v1/processes/web/restart");
    assert_eq!((code, body["code"].as_str()), (403, Some("FORBIDDEN")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("viewer"), "{body}");
    // operator: also actions on processes and groups, but not the configuration.
    assert_eq!(as_(o, "POST", "/api/v1/processes/web/restart").0, 200);
    assert_eq!(as_(o, "POST", "/api/v1/groups/web/restart").0, 200);
    assert_eq!(as_(o, "POST", "/api/v1/config/reload").0, 403);
    assert_eq!(as_(o, "POST", "/api/v1/shutdown").0, 403);
    // admin: everything.
    assert_eq!(as_(a, "POST", "/api/v1/config/reload").0, 200);
    assert_eq!(d.state("web"), "RUNNING", "a refused request changed something");

    // Five failures in a row from one address: it must wait, even with the right password.
    for _ in 0..5 {
        assert_eq!(as_(Some(("a", "nope")), "GET", "/api/v1/version").0, 401);
    }
    let (code, _, body) = as_(Some(("a", "apw")), "GET", "/api/v1/version");
    assert_eq!(code, 429, "{body}");
    wait_until("the wait is over", DEADLINE, || as_(a, "GET", "/api/v1/version").0 == 200);
}

#[test]
fn issue_13_failed_logins_for_one_user_do_not_hold_another_at_the_same_address() {
    let (_d, port) = start(
        "http-lockout",
        &format!(
            "[[server.http.users]]\nname = \"x\"\npassword_hash = \"{}\"\nrole = \"admin\"\n\n\
             [[server.http.users]]\nname = \"y\"\npassword_hash = \"{}\"\nrole = \"viewer\"\n",
            hash("xpw"),
            hash("ypw")
        ),
    );
    let as_ = |user: &str, password: &str| {
        send(port, "GET", "/api/v1/version", &basic(user, password), "").0
    };
    // Someone guesses x's password from this address: x must wait here...
    for _ in 0..5 {
        assert_eq!(as_("x", "guess"), 401);
    }
    assert_eq!(as_("x", "xpw"), 429);
    // ...and y, at the same address, was not held (it was, when the count was per address).
    assert_eq!(as_("y", "ypw"), 200);
    // Many names from one address: past fifty failures in a row, every name waits there.
    for i in 0..50 {
        assert_eq!(as_(&format!("n{i}"), "guess"), 401, "name n{i}");
    }
    let (code, _, body) = send(port, "GET", "/api/v1/version", &basic("y", "ypw"), "");
    assert_eq!(code, 429, "{body}");
    wait_until("the address's wait is over", DEADLINE, || as_("y", "ypw") == 200);
}

#[test]
fn issue_13_readyz_tells_unknown_names_apart_only_to_users() {
    let (d, port) = start(
        "http-readyz-names",
        &format!(
            "[[server.http.users]]\nname = \"v\"\npassword_hash = \"{}\"\nrole = \"viewer\"\n\n\
             [programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
             [programs.manual]\ncommand = \"sleep 1000\"\nautostart = false\n",
            hash("vpw")
        ),
    );
    d.wait_state("web", "RUNNING");
    let ask =
        |who: &str, names: &str| send(port, "GET", &format!("/readyz?process={names}"), who, "");
    // Without credentials: the probe still answers, and an unknown name looks like a known
    // one that is not ready.
    assert_eq!(ask("", "web").0, 200);
    let (code, _, manual) = ask("", "manual");
    let (code2, _, nope) = ask("", "nope");
    assert_eq!((code, code2), (503, 503), "{manual} {nope}");
    assert_eq!(nope.to_string(), manual.to_string().replace("manual", "nope"));
    let (code, _, both) = ask("", "web,nope");
    assert_eq!(code, 503);
    assert_eq!(both["not_ready"], serde_json::json!([{ "name": "nope" }]));
    // A user (of any role) gets the precise answer.
    let v = basic("v", "vpw");
    let (code, _, body) = ask(&v, "nope");
    assert_eq!((code, body["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
    let (code, _, body) = ask(&v, "manual");
    assert_eq!(code, 503);
    assert_eq!(body["not_ready"], serde_json::json!([{ "name": "manual", "state": "STOPPED" }]));
    // Credentials that are wrong are refused, like anywhere else.
    assert_eq!(ask(&basic("v", "wrong"), "nope").0, 401);
}

#[test]
fn metrics_auth_puts_metrics_behind_the_viewer_role() {
    let (_d, port) = start(
        "http-metrics-auth",
        &format!(
            "[[server.http.users]]\nname = \"v\"\npassword_hash = \"{}\"\nrole = \"viewer\"\n\n\
             [programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
            hash("vpw")
        )
        .replace("[[server.http.users]]", "metrics_auth = true\n\n[[server.http.users]]"),
    );
    assert_eq!(send_raw(port, "GET", "/metrics", "", "").0, 401);
    assert_eq!(send_raw(port, "GET", "/metrics", &basic("v", "vpw"), "").0, 200);
    assert_eq!(send_raw(port, "GET", "/healthz", "", "").0, 200);
}

#[test]
fn users_must_have_bcrypt_hashes_and_known_roles() {
    let dir = Dir::new("http-users-config");
    let config = dir.write(
        "kahi.toml",
        "[server.http]\nlisten = \"0.0.0.0:0\"\n\n\
         [[server.http.users]]\nname = \"x\"\npassword_hash = \"hunter2\"\nrole = \"root\"\n\n\
         [programs.a]\ncommand = \"true\"\n",
    );
    let out = run(std::process::Command::new(KAHI).args(["daemon", "--check", "-c"]).arg(&config));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("kahi.toml:6:") && out.stderr.contains("password_hash"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("kahi.toml:7:") && out.stderr.contains("\"root\""),
        "{}",
        out.stderr
    );
    // With a user, a listener other hosts can reach needs no `insecure`.
    let config = dir.write(
        "kahi.toml",
        &format!(
            "[server.http]\nlisten = \"0.0.0.0:0\"\n\n\
             [[server.http.users]]\nname = \"x\"\npassword_hash = \"{}\"\nrole = \"viewer\"\n\n\
             [programs.a]\ncommand = \"true\"\n",
            hash("pw")
        ),
    );
    let out = run(std::process::Command::new(KAHI).args(["daemon", "--check", "-c"]).arg(&config));
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn https_with_a_certificate_made_here() {
    let dir = Dir::new("http-tls");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let d = Daemon::start_in(
        dir,
        "[server.http]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n\n\
         [programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_log("HTTP API listening on https://127.0.0.1:");
    let log = d.log();
    let port: u16 = log
        .split("listening on https://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    d.wait_state("web", "RUNNING");
    // The handshake verifies against the certificate made above.
    let out = run(std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(d.dir.join("cert.pem"))
        .arg(format!("https://127.0.0.1:{port}/api/v1/processes/web")));
    assert_eq!(out.code, 0, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["state"], "RUNNING");
    // Plain HTTP on that port gets no answer.
    let out = run(std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}/healthz")));
    assert_ne!(out.code, 0, "{out:?}");
}

#[test]
fn stdin_reaches_a_program_with_a_pipe_and_is_refused_otherwise() {
    let (d, port) = start(
        "http-stdin",
        "[programs.echo]\ncommand = \"cat\"\nstartsecs = 0\nstdin_pipe = true\n\n\
         [programs.deaf]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state("echo", "RUNNING");
    d.wait_state("deaf", "RUNNING");
    let (code, _, body) =
        send(port, "POST", "/api/v1/processes/echo/stdin", "", r#"{"data":"over http\n"}"#);
    assert_eq!((code, body["bytes"].as_u64()), (200, Some(10)), "{body}");
    let out = d.ctl(&["stdin", "echo", "over the socket\n"]);
    assert_eq!(out.code, 0, "{out:?}");
    wait_until("cat echoed both", DEADLINE, || {
        d.ctl(&["tail", "echo"]).stdout == "over http\nover the socket\n"
    });
    let (code, _, body) = send(port, "POST", "/api/v1/processes/deaf/stdin", "", r#"{"data":"x"}"#);
    assert_eq!((code, body["code"].as_str()), (409, Some("CONFLICT")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("stdin_pipe"), "{body}");
    let (code, _, body) = send(port, "POST", "/api/v1/processes/echo/stdin", "", r#"{"text":"x"}"#);
    assert_eq!((code, body["code"].as_str()), (400, Some("BAD_REQUEST")), "{body}");
    // A restarted program gets a fresh pipe.
    d.ctl(&["restart", "echo"]);
    d.ctl(&["clear", "echo"]);
    assert_eq!(d.ctl(&["stdin", "echo", "again\n"]).code, 0);
    wait_until("the new cat echoed", DEADLINE, || {
        d.ctl(&["tail", "echo"]).stdout.contains("again\n")
    });
    d.ctl(&["stop", "echo"]);
    let out = d.ctl(&["stdin", "echo", "late\n"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("not running"), "{out:?}");
}
