//! `kahi init`: the starters pass `kahi daemon --check`, start, and are never written over an
//! existing file.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use crate::util::*;

/// `kahi init ARGS` in `dir`.
fn init(dir: &Dir, args: &[&str]) -> Output {
    run(dir.command(KAHI).current_dir(&dir.path).arg("init").args(args))
}

fn check(dir: &Dir, file: &str) {
    let out = run(Command::new(KAHI).args(["daemon", "--check", "-c"]).arg(dir.join(file)));
    assert_eq!(out.code, 0, "{file}: {out:?}\n{}", dir.read(file));
}

/// The status line and body of `GET path` on 127.0.0.1:port, with an Authorization header
/// when given.
fn get(port: u16, path: &str, auth: Option<&str>) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn init_writes_a_starter_that_checks_and_starts_and_never_overwrites() {
    let dir = Dir::new("init");
    let out = init(&dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    check(&dir, "kahi.toml");
    let first = dir.read("kahi.toml");
    assert!(first.lines().filter(|l| l.starts_with('#')).count() >= 10, "commented:\n{first}");

    // A second init is refused, and the file is as it was.
    dir.write("kahi.toml", "# mine\n");
    let out = init(&dir, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("kahi.toml exists: not overwritten"), "{out:?}");
    assert_eq!(dir.read("kahi.toml"), "# mine\n");
    let out = init(&dir, &["--container", "-o", "kahi.toml"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(dir.read("kahi.toml"), "# mine\n");

    // -o - writes to stdout; what it writes is the starter.
    let out = init(&dir, &["-o", "-"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, first.as_str()));

    // It starts: its program runs.
    let socket = dir.join("kahi.sock");
    let text =
        first.replacen("[server]\n", &format!("[server]\nsocket = \"{}\"\n", socket.display()), 1);
    let config = dir.write("run.toml", &text);
    let d = Daemon::launch(dir, config, socket, &[]);
    d.wait_state("hello", "RUNNING");
    assert!(d.ctl(&["tail", "hello"]).stdout.contains("hello from kahi"));
}

#[test]
fn init_container_has_console_probes_a_user_and_a_critical_program() {
    let dir = Dir::new("init-container");
    let out = init(&dir, &["--container", "-o", "c.toml"]);
    assert_eq!(out.code, 0, "{out:?}");
    check(&dir, "c.toml");
    let password = out
        .stderr
        .split("has the password ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the password on stderr")
        .to_string();
    let text = dir.read("c.toml");
    assert!(!text.contains(&password), "the password itself is not written");
    for line in
        ["console = true", "critical = true", "listen = \"0.0.0.0:9876\"", "role = \"admin\""]
    {
        assert!(text.contains(line), "{line} in:\n{text}");
    }

    // It starts (on a socket and a port of the test's own): the probes answer without a
    // password, the API only with the user's.
    let socket = dir.join("kahi.sock");
    let port = free_port();
    let text = text
        .replace("\"/run/kahi.sock\"", &format!("\"{}\"", socket.display()))
        .replace("0.0.0.0:9876", &format!("127.0.0.1:{port}"));
    let config = dir.write("run.toml", &text);
    let d = Daemon::launch(dir, config, socket, &[]);
    d.wait_state("app", "RUNNING");
    wait_until("/readyz is 200", DEADLINE, || {
        get(port, "/readyz", None).starts_with("HTTP/1.1 200")
    });
    assert!(get(port, "/healthz", None).starts_with("HTTP/1.1 200"));
    assert!(get(port, "/api/v1/processes", None).starts_with("HTTP/1.1 401"));
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"));
    let reply = get(port, "/api/v1/processes", Some(&format!("Basic {basic}")));
    assert!(reply.starts_with("HTTP/1.1 200") && reply.contains("\"app\""), "{reply}");
}
