//! The HTTP listener: the probes and the read side of the API, with a real client over TCP.

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;

use crate::util::*;

/// Starts a daemon with an HTTP listener on a free loopback port; returns it and the port.
fn start(name: &str, body: &str) -> (Daemon, u16) {
    let d = Daemon::start(name, &format!("[server.http]\nlisten = \"127.0.0.1:0\"\n\n{body}"));
    d.wait_log("HTTP API listening on http://127.0.0.1:");
    let log = d.log();
    let port = log
        .split("HTTP API listening on http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {log}"));
    (d, port)
}

/// One request; returns the status code, the headers (lowercased names) and the JSON body.
fn request(port: u16, method: &str, path: &str) -> (u16, String, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{raw:?}"));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    let body = if body.is_empty() { Value::Null } else { serde_json::from_str(body).unwrap() };
    (status, head.to_ascii_lowercase(), body)
}

#[test]
fn probes_and_process_reads_answer_with_json_and_the_right_status() {
    let (d, port) = start(
        "http-read",
        "[programs.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [programs.slow]\ncommand = \"sleep 1000\"\nstartsecs = 30\n\n\
         [programs.manual]\ncommand = \"sleep 1000\"\nautostart = false\n",
    );
    d.wait_state("web", "RUNNING");
    let (code, head, body) = request(port, "GET", "/healthz");
    assert_eq!((code, &body["status"]), (200, &Value::from("ok")));
    assert!(head.contains("content-type: application/json"), "{head}");

    // `slow` is still STARTING: not ready, and the body says which.
    let (code, _, body) = request(port, "GET", "/readyz");
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["not_ready"], serde_json::json!([{ "name": "slow", "state": "STARTING" }]));
    // Only the ones asked about count; manual is not autostart but asked for by name.
    assert_eq!(request(port, "GET", "/readyz?process=web").0, 200);
    assert_eq!(request(port, "GET", "/readyz?process=web,manual").0, 503);
    let (code, _, body) = request(port, "GET", "/readyz?process=nope");
    assert_eq!((code, body["code"].as_str()), (404, Some("NOT_FOUND")));

    // The process list is what `status --json` shows.
    let (code, _, body) = request(port, "GET", "/api/v1/processes");
    assert_eq!(code, 200);
    let names: Vec<&str> =
        body.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["manual", "slow", "web"]);
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
fn a_restart_is_not_delayed_by_http_clients_that_never_read() {
    let (d, port) =
        start("http-stuck", "[programs.victim]\ncommand = \"sleep 1000\"\nstartsecs = 0\n");
    d.wait_state("victim", "RUNNING");
    // Idle connections, and clients that send half a request, held open.
    let mut held = Vec::new();
    for i in 0..50 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        if i % 2 == 0 {
            s.write_all(b"GET /api/v1/processes HTTP/1.1\r\nHost: x\r\n").unwrap();
        }
        held.push(s);
    }
    let delay = time_restart(&d, "victim", DEADLINE);
    println!("restart with 50 stuck HTTP clients: {delay:?}");
    assert!(delay < std::time::Duration::from_secs(1), "restart took {delay:?}");
    assert_eq!(request(port, "GET", "/healthz").0, 200);
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
