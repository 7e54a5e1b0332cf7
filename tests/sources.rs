//! Where a configuration comes from: a reload reads the file as the start did (`--format`);
//! remote includes are fetched at start and at reload, pinned, capped, and kept when their
//! server is down.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::util::*;

const SIGHUP: i32 = 1;

/// The names `kahi ctl status` lists.
fn names(d: &Daemon) -> Vec<String> {
    d.status().iter().filter_map(|p| p["name"].as_str().map(String::from)).collect()
}

#[test]
fn a_reload_reads_the_file_in_the_format_the_start_was_told() {
    // TOML whose text has a line that looks like supervisord's: told by its content alone,
    // it would be read as a supervisord.conf.
    let dir = Dir::new("format-reload");
    let socket = dir.join("kahi.sock");
    let text = |more: &str| {
        format!(
            "[server]\nsocket = \"{}\"\n\n[programs.a]\ncommand = \"sleep 1000\"\n\n\
             [programs.a.environment]\nNOTE = \"\"\"\n[supervisord]\n\"\"\"\n{more}",
            socket.display()
        )
    };
    let config = dir.write("kahi.toml", &text(""));
    let mut cmd = dir.command(KAHI);
    cmd.arg("daemon").arg("--format").arg("toml").arg("-c").arg(&config).arg("-v");
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
    let d = Daemon::spawn(dir, config.clone(), socket.clone(), cmd);
    d.wait_state("a", "RUNNING");

    std::fs::write(&config, text("\n[programs.b]\ncommand = \"sleep 1000\"\n")).unwrap();
    d.signal(SIGHUP);
    wait_until("b is added by the reload", DEADLINE, || names(&d).contains(&"b".to_string()));
    d.wait_state("b", "RUNNING");
    assert!(!d.log().contains("supervisord"), "read as TOML again:\n{}", d.log());
}

// ---- Remote includes, from a server of the test's own on 127.0.0.1 ----

/// An HTTP server on 127.0.0.1 that serves `docs` (path -> body), until stopped.
struct Server {
    port: u16,
    docs: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        Server::serving(None)
    }

    /// With `tls`, it speaks HTTPS.
    fn serving(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let docs: Arc<Mutex<HashMap<String, Vec<u8>>>> = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (Arc::clone(&docs), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(DEADLINE));
                match &tls {
                    None => answer(conn, &d),
                    Some(config) => {
                        let c = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
                        answer(rustls::StreamOwned::new(c, conn), &d)
                    }
                }
            }
        });
        Server { port, docs, stop, thread: Some(thread) }
    }

    fn put(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.docs.lock().unwrap().insert(path.to_string(), body.into());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops listening: a fetch is refused from now on.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answer<S: Read + Write>(mut conn: S, docs: &Mutex<HashMap<String, Vec<u8>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
    let body = docs.lock().unwrap().get(&path).cloned();
    let reply = match body {
        Some(b) => {
            let mut r =
                format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", b.len()).into_bytes();
            r.extend_from_slice(&b);
            r
        }
        None => b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    };
    let _ = conn.write_all(&reply);
    let _ = conn.flush();
}

/// The sha256 of `text`, as sha256sum prints it.
fn sha256(text: &str) -> String {
    let dir = Dir::new("sha");
    let out = run(std::process::Command::new("sha256sum").arg(dir.write("x", text)));
    out.stdout.split_whitespace().next().expect("sha256sum's digest").to_string()
}

#[test]
fn remote_includes_are_fetched_at_start_again_at_reload_and_kept_when_the_server_is_down() {
    let mut server = Server::start();
    let toml = "[programs.remote]\ncommand = \"sleep 1000\"\n";
    server.put("/a.toml", toml);
    server.put("/b.json", r#"{"programs": {"j": {"command": "sleep 1000"}}}"#);
    let dir = Dir::new("remote-include");
    let socket = dir.join("kahi.sock");
    let text = format!(
        "include = [\"{}#sha256={}\", \"{}\"]\n\n[server]\nsocket = \"{}\"\n",
        server.url("/a.toml"),
        sha256(toml),
        server.url("/b.json"),
        socket.display()
    );
    let config = dir.write("kahi.toml", &text);
    let d = Daemon::launch(dir, config, socket, &[]);
    d.wait_state("remote", "RUNNING");
    d.wait_state("j", "RUNNING");

    // A reload fetches again, off the loop; the changed document is reloaded once it is in.
    server.put(
        "/b.json",
        r#"{"programs": {"j": {"command": "sleep 1000"}, "j2": {"command": "sleep 1000"}}}"#,
    );
    d.signal(SIGHUP);
    wait_until("j2 is added", DEADLINE, || names(&d).contains(&"j2".to_string()));
    d.wait_state("j2", "RUNNING");

    // The server goes away: a reload keeps the last good copies, and says so.
    server.stop();
    d.signal(SIGHUP);
    d.wait_log("keeping the last good copy");
    let mut got = names(&d);
    got.sort();
    assert_eq!(got, ["j", "j2", "remote"]);
    for name in ["j", "j2", "remote"] {
        assert_eq!(d.state(name), "RUNNING", "{name}");
    }
}

/// `kahi daemon --check` of a configuration that includes `entry`.
fn check_include(entry: &str) -> Output {
    check_include_with(entry, &[])
}

fn check_include_with(entry: &str, env: &[(&str, &std::path::Path)]) -> Output {
    let dir = Dir::new("remote-check");
    let config = dir.write("kahi.toml", &format!("include = [\"{entry}\"]\n"));
    let mut cmd = std::process::Command::new(KAHI);
    cmd.args(["daemon", "--check", "-c"]).arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// https: the server's certificate is verified (here against a CA of the test's own, given as
/// the bundle of trusted certificates).
#[test]
fn remote_includes_over_https_are_verified() {
    let dir = Dir::new("remote-tls");
    let (ca, tls) = crate::webhooks::test_ca(&dir);
    let server = Server::serving(Some(tls));
    server.put("/a.toml", "[programs.remote]\ncommand = \"sleep 1000\"\n");
    let url = format!("https://localhost:{}/a.toml", server.port);
    let out = check_include_with(&url, &[("SSL_CERT_FILE", &ca)]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = check_include_with(&url, &[("SSL_CERT_FILE", &dir.join("none.pem"))]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains(&url), "{out:?}");
}

#[test]
fn remote_includes_that_cannot_be_trusted_are_refused() {
    let server = Server::start();
    let toml = "[programs.remote]\ncommand = \"sleep 1000\"\n";
    server.put("/a.toml", toml);
    let ok = check_include(&format!("{}#sha256={}", server.url("/a.toml"), sha256(toml)));
    assert_eq!(ok.code, 0, "{ok:?}");

    let refused = |entry: String, why: &str| {
        let out = check_include(&entry);
        assert_eq!(out.code, 2, "{entry}: {out:?}");
        assert!(out.stderr.contains(why), "{entry}: {why} not in {out:?}");
    };
    refused(format!("{}#sha256={}", server.url("/a.toml"), "0".repeat(64)), "not the pinned");
    refused("http://192.0.2.1/a.toml".into(), "loopback address only");
    server.put("/big.toml", format!("# {}\n", "x".repeat(1 << 20)));
    refused(server.url("/big.toml"), "larger than a remote include may be");
    refused(server.url("/none.toml"), "the server answered 404");
    // A remote document may not include anything, local files least of all.
    server.put("/inc.toml", "include = [\"local.toml\"]\n");
    refused(server.url("/inc.toml"), "only the main file may set this");
}
