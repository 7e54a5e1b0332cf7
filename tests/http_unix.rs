//! The HTTP listener on a Unix socket: the real `supervisorctl -s unix:///…` and
//! `curl --unix-socket`, the socket's mode and owner, a stale socket replaced and a live one
//! refused, and peer credentials standing in for a password.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::http::{hash, role_users};
use crate::util::*;

/// supervisorctl, as Debian ships it.
const SUPERVISORCTL: &str = "/usr/bin/supervisorctl";

const WEB: &str = "[programs.web]\ncommand = [\"/bin/sh\", \"-c\", \"echo hello; exec sleep 1000\"]\nstartsecs = 0\n";

/// The HTTP socket's path in `dir`.
fn sock(dir: &Dir) -> PathBuf {
    dir.join("http.sock")
}

/// `[server.http]` listening on the test's Unix socket, with `keys` in the table, then `rest`.
fn config(dir: &Dir, keys: &str, rest: &str) -> String {
    format!("[server.http]\nlisten = \"unix://{}\"\n{keys}\n{rest}", sock(dir).display())
}

/// Starts a daemon listening on its Unix socket; returns once the listener is up.
fn start(name: &str, keys: &str, rest: &str) -> Daemon {
    let dir = Dir::new(name);
    let text = config(&dir, keys, rest);
    let d = Daemon::start_in(dir, &text);
    d.wait_log("HTTP API listening on unix://");
    d
}

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// `curl --unix-socket SOCK http://x PATH` with extra arguments: (HTTP status, body).
fn curl(socket: &Path, path: &str, extra: &[&str]) -> (u16, String) {
    let out = run(Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(socket)
        .args(extra)
        .arg(format!("http://x{path}")));
    assert_eq!(out.code, 0, "curl {path}: {}", out.stderr);
    let (body, status) = out.stdout.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), body.to_string())
}

/// supervisorctl against the Unix socket, with a `[supervisorctl]` file of its own.
fn supervisorctl(d: &Daemon, args: &[&str]) -> Output {
    let conf = d.dir.write("supervisorctl.conf", "[supervisorctl]\n");
    let url = format!("unix://{}", sock(&d.dir).display());
    run(Command::new(SUPERVISORCTL).arg("-c").arg(&conf).args(["-s", &url]).args(args))
}

#[test]
fn supervisorctl_and_curl_drive_kahi_over_the_unix_socket() {
    if !Path::new(SUPERVISORCTL).exists() || !have("curl") {
        return skip("supervisorctl or curl is not installed (apt-get install supervisor curl)");
    }
    // With users configured: the test runs as the daemon's user, whose peer credentials stand
    // in for a password.
    let mut d = start("unix-http", "", &format!("{}{WEB}", role_users()));
    d.wait_state("web", "RUNNING");
    let socket = sock(&d.dir);
    let mode = std::fs::metadata(&socket).unwrap().mode();
    assert_eq!(mode & 0o777, 0o700, "the default socket_mode: {mode:o}");
    let expect = |args: &[&str], code: i32, text: &str| {
        let out = supervisorctl(&d, args);
        assert!(
            out.stdout.contains(text),
            "{args:?}: {text:?} not in\n{}{}",
            out.stdout,
            out.stderr
        );
        assert_eq!(out.code, code, "{args:?}:\n{}{}", out.stdout, out.stderr);
    };
    expect(&["status", "web"], 0, "RUNNING");
    expect(&["stop", "web"], 0, "web: stopped");
    expect(&["status", "web"], 3, "STOPPED");
    expect(&["start", "web"], 0, "web: started");
    expect(&["tail", "web"], 0, "hello");

    // The same API as on TCP, the same routes and answers.
    let (status, body) = curl(&socket, "/api/v1/processes", &[]);
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["name"], "web", "{body}");
    assert_eq!(list[0]["state"], "RUNNING", "{body}");
    let (status, body) = curl(&socket, "/api/v1/processes/web/stop", &["-X", "POST"]);
    assert_eq!(status, 200, "{body}");
    d.wait_state("web", "STOPPED");
    assert_eq!(curl(&socket, "/api/v1/nope", &[]).0, 404);
    assert_eq!(curl(&socket, "/healthz", &[]).0, 200);

    expect(&["shutdown"], 0, "Shut down");
    assert_eq!(d.wait_exit(DEADLINE), 0);
    assert!(!socket.exists(), "the socket file outlived the daemon");
}

#[test]
fn socket_mode_and_owner_are_applied_once_bound() {
    let me = nix::unistd::geteuid().as_raw();
    // Root may give the socket away; anyone may give it to themselves.
    let (uid, gid) = if me == 0 { (65534, 65534) } else { (me, nix::unistd::getegid().as_raw()) };
    let d = start(
        "unix-mode",
        &format!("socket_mode = \"0660\"\nsocket_owner = \"{uid}:{gid}\"\n"),
        WEB,
    );
    let m = std::fs::metadata(sock(&d.dir)).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid(), m.gid()), (0o660, uid, gid), "{:o}", m.mode());
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refuses_the_start() {
    // Stale: a socket file nobody listens on any more, as a killed daemon leaves.
    let dir = Dir::new("unix-stale");
    drop(std::os::unix::net::UnixListener::bind(sock(&dir)).unwrap());
    assert!(sock(&dir).exists());
    let text = config(&dir, "", WEB);
    let d = Daemon::start_in(dir, &text);
    d.wait_log("HTTP API listening on unix://");
    let reply = http_get(&sock(&d.dir), "/healthz");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    drop(d);

    // Live: something answers there; the daemon refuses to start and says why.
    let dir = Dir::new("unix-live");
    let holder = std::os::unix::net::UnixListener::bind(sock(&dir)).unwrap();
    let path = dir.write(
        "kahi.toml",
        &format!(
            "[server]\nsocket = \"{}\"\n\n{}",
            dir.join("kahi.sock").display(),
            config(&dir, "", WEB)
        ),
    );
    let out = run(dir.command(KAHI).args(["daemon", "-c"]).arg(&path));
    assert_ne!(out.code, 0, "{out:?}");
    let want = format!(
        "unable to bind the HTTP socket {}: another kahi is listening there",
        sock(&dir).display()
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert!(sock(&dir).exists(), "the live socket was removed");
    assert!(!dir.join("kahi.sock").exists(), "the control socket was left behind");
    drop(holder);
}

/// One GET over the Unix socket, by hand: the whole answer.
fn http_get(socket: &Path, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn peer_credentials_stand_in_for_basic_auth_unless_turned_off() {
    if !have("curl") {
        return skip("curl is not installed");
    }
    let users = format!(
        "[[server.http.users]]\nname = \"admin\"\npassword_hash = \"{}\"\nrole = \"admin\"\n\n",
        hash("secret")
    );
    // On: the daemon's own user is admin without a password, over the API and XML-RPC.
    let d = start("unix-peer-on", "socket_mode = \"0777\"\n", &format!("{users}{WEB}"));
    d.wait_state("web", "RUNNING");
    let socket = sock(&d.dir);
    assert_eq!(curl(&socket, "/api/v1/processes", &[]).0, 200);
    assert_eq!(curl(&socket, "/api/v1/processes/web/restart", &["-X", "POST"]).0, 200);
    let call = "<?xml version=\"1.0\"?><methodCall><methodName>supervisor.stopProcess</methodName>\
                <params><param><value><string>web</string></value></param></params></methodCall>";
    let (status, body) =
        curl(&socket, "/RPC2", &["-H", "Content-Type: text/xml", "--data-binary", call]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<boolean>1</boolean>"), "{body}");
    // Another user who can connect (the socket is 0777 here) must authenticate.
    if nix::unistd::geteuid().is_root() && have("setpriv") {
        let as_nobody = |extra: &[&str]| {
            let out = run(Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                ])
                .args(["-w", "%{http_code}", "--unix-socket"])
                .arg(&socket)
                .args(extra)
                .arg("http://x/api/v1/processes"));
            out.stdout.trim().to_string()
        };
        assert_eq!(as_nobody(&[]), "401");
        assert_eq!(as_nobody(&["-u", "admin:secret"]), "200");
    }
    drop(d);

    // Off: Basic for everyone, the daemon's own user too.
    let d = start("unix-peer-off", "peer_credentials = false\n", &format!("{users}{WEB}"));
    d.wait_state("web", "RUNNING");
    let socket = sock(&d.dir);
    let (status, body) = curl(&socket, "/api/v1/processes", &[]);
    assert_eq!(status, 401, "{body}");
    assert_eq!(curl(&socket, "/api/v1/processes", &["-u", "admin:wrong"]).0, 401);
    assert_eq!(curl(&socket, "/api/v1/processes", &["-u", "admin:secret"]).0, 200);
    assert_eq!(curl(&socket, "/healthz", &[]).0, 200, "probes need no user");
    if Path::new(SUPERVISORCTL).exists() {
        let out = supervisorctl(&d, &["status"]);
        assert!(out.stdout.contains("Server requires authentication"), "{out:?}");
        let out = supervisorctl(&d, &["-u", "admin", "-p", "secret", "status"]);
        assert!(out.stdout.contains("RUNNING"), "{out:?}");
    }
}
