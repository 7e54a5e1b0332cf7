//! Webhooks: real receivers on 127.0.0.1 (plain and TLS, started here) get the events of real
//! programs; what they check is what a receiver of GitHub-style signed webhooks checks.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Got {
    /// The request line.
    line: String,
    /// Header names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    at: Instant,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// What a receiver answers its `n`th request (from 0); it may take its time first.
type Answer = Arc<dyn Fn(usize) -> u16 + Send + Sync>;

/// A receiver on 127.0.0.1: one thread, one connection at a time, each request recorded. It
/// ends its thread when dropped.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(answer: Answer) -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap(), answer, None)
    }

    /// On a listener already bound; with `tls`, it speaks HTTPS.
    fn on(
        listener: TcpListener,
        answer: Answer,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (Arc::clone(&got), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(sock) = conn else { continue };
                sock.set_read_timeout(Some(DEADLINE)).unwrap();
                let n = g.lock().unwrap().len();
                match &tls {
                    None => serve(sock, &g, &answer, n),
                    Some(config) => {
                        let c = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
                        serve(rustls::StreamOwned::new(c, sock), &g, &answer, n)
                    }
                }
            }
        });
        Receiver { port, got, stop, thread: Some(thread) }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (head, then Content-Length bytes), records it, answers.
fn serve<S: Read + Write>(mut s: S, got: &Mutex<Vec<Got>>, answer: &Answer, n: usize) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(k) => data.extend_from_slice(&buf[..k]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < len {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(k) => body.extend_from_slice(&buf[..k]),
        }
    }
    got.lock().unwrap().push(Got { line, headers, body, at: Instant::now() });
    let status = answer(n);
    let _ = write!(s, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = s.flush();
}

fn always(status: u16) -> Answer {
    Arc::new(move |_| status)
}

/// A program that runs a moment and exits 3 (not expected), once.
const CRASH: &str = "[programs.crash]\ncommand = [\"/bin/sh\", \"-c\", \"sleep 0.3; exit 3\"]\nstartsecs = 0\nautorestart = false\n\n";

/// A webhook table.
fn webhook(name: &str, url: &str, rest: &str) -> String {
    format!("[webhooks.{name}]\nurl = \"{url}\"\n{rest}\n")
}

/// `kahi_webhook_deliveries_total` of `webhook`, per outcome.
fn deliveries(d: &Daemon, webhook: &str) -> [u64; 4] {
    let text = d.request(r#"{"cmd":"metrics"}"#)["text"].as_str().unwrap_or_default().to_string();
    ["delivered", "failed", "dropped", "retried"].map(|outcome| {
        let key = format!(
            "kahi_webhook_deliveries_total{{outcome=\"{outcome}\",webhook=\"{webhook}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    })
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::sign(&key, body).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A crash reaches a signed JSON webhook and a Slack one: the signature is the HMAC of the
/// body, the body has the event's fields and supervisord's payload.
#[test]
fn a_crash_is_posted_signed_as_json_and_as_a_slack_line() {
    let json = Receiver::start(always(204));
    let slack = Receiver::start(always(200));
    let body = format!(
        "{CRASH}{}{}",
        webhook(
            "ops",
            &format!("http://127.0.0.1:{}/hooks/kahi?x=1", json.port),
            "events = [\"PROCESS_STATE_EXITED\"]\nsecret = \"s3cret\"\nheaders = { Authorization = \"Bearer tok\" }"
        ),
        webhook(
            "chat",
            &format!("http://localhost:{}/", slack.port),
            "events = [\"PROCESS_STATE_EXITED\"]\nformat = \"slack\""
        ),
    );
    let d = Daemon::start("webhook-crash", &body);
    wait_until("both receivers have the exit", DEADLINE, || {
        !json.got().is_empty() && !slack.got().is_empty()
    });
    let got = &json.got()[0];
    assert_eq!(got.line, "POST /hooks/kahi?x=1 HTTP/1.1");
    let signature = got.header("x-kahi-signature").expect("signed");
    assert_eq!(signature, format!("sha256={}", hmac_hex(b"s3cret", &got.body)));
    assert_ne!(
        signature,
        format!("sha256={}", hmac_hex(b"other", &got.body)),
        "the check can fail"
    );
    assert_eq!(got.header("authorization"), Some("Bearer tok"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("x-kahi-event"), Some("PROCESS_STATE_EXITED"));
    assert_eq!(got.header("host"), Some(format!("127.0.0.1:{}", json.port).as_str()));
    let v = got.json();
    assert_eq!(v["webhook"], "ops");
    assert_eq!(v["event"], "PROCESS_STATE_EXITED");
    assert_eq!(
        (&v["process"], &v["group"], &v["program"]),
        (&"crash".into(), &"crash".into(), &"crash".into())
    );
    assert_eq!((&v["from"], &v["to"]), (&"RUNNING".into(), &"EXITED".into()));
    assert_eq!((&v["expected"], &v["exitstatus"]), (&false.into(), &3.into()));
    let pid = v["pid"].as_i64().expect("a pid");
    assert_eq!(got.header("x-kahi-serial"), Some(v["serial"].to_string().as_str()));
    assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    assert_eq!(
        v["payload"],
        format!("processname:crash groupname:crash from_state:RUNNING expected:0 pid:{pid}")
    );
    let s = slack.got()[0].json();
    let text = s["text"].as_str().expect("text");
    assert_eq!(s.as_object().unwrap().len(), 1, "only text: {s}");
    assert!(
        text.ends_with(&format!(
            "crash: RUNNING -> EXITED, exit status 3 (not expected), pid {pid}"
        )),
        "{text}"
    );
    assert!(slack.got()[0].header("x-kahi-signature").is_none(), "no secret, no signature");
    wait_until("both are counted delivered", DEADLINE, || {
        deliveries(&d, "ops") == [1, 0, 0, 0] && deliveries(&d, "chat") == [1, 0, 0, 0]
    });
    assert_eq!((json.got().len(), slack.got().len()), (1, 1), "only the type asked for");
}

/// A receiver that answers 500 twice gets the event a third time, after waits that double;
/// one that is not listening yet gets it once it is; one that never listens is given up.
#[test]
fn a_receiver_that_is_down_is_retried_with_back_off() {
    let flaky = Receiver::start(Arc::new(|n| if n < 2 { 500 } else { 200 }));
    // A port with nothing on it yet: bound, its number taken, closed.
    let later = TcpListener::bind("127.0.0.1:0").unwrap();
    let later_port = later.local_addr().unwrap().port();
    drop(later);
    let never = TcpListener::bind("127.0.0.1:0").unwrap();
    let never_port = never.local_addr().unwrap().port();
    drop(never);
    let events = "events = [\"PROCESS_STATE_EXITED\"]";
    let body = format!(
        "{CRASH}{}{}{}",
        webhook(
            "flaky",
            &format!("http://127.0.0.1:{}/", flaky.port),
            &format!("{events}\nretries = 3\nretry_backoff = 0.3")
        ),
        webhook(
            "later",
            &format!("http://127.0.0.1:{later_port}/"),
            &format!("{events}\nretries = 20\nretry_backoff = 0.2")
        ),
        webhook(
            "never",
            &format!("http://127.0.0.1:{never_port}/"),
            &format!("{events}\nretries = 1\nretry_backoff = 0.1")
        ),
    );
    let d = Daemon::start("webhook-retry", &body);
    wait_until("flaky got it three times", DEADLINE, || flaky.got().len() >= 3);
    let got = flaky.got();
    let serials: Vec<_> =
        got.iter().map(|g| g.header("x-kahi-serial").map(str::to_string)).collect();
    assert!(serials.iter().all(|s| *s == serials[0] && s.is_some()), "the same event: {serials:?}");
    assert_eq!(got[0].body, got[2].body);
    let (first, second) = (got[1].at - got[0].at, got[2].at - got[1].at);
    assert!(first >= Duration::from_millis(300), "retry_backoff first: {first:?}");
    assert!(second >= Duration::from_millis(600), "then twice as long: {second:?}");
    wait_until("flaky: delivered after 2 retries", DEADLINE, || {
        deliveries(&d, "flaky") == [1, 0, 0, 2]
    });
    // The one not listening: refused, said once, then delivered when it listens.
    d.wait_log("webhook later: unable to deliver event");
    let later =
        Receiver::on(TcpListener::bind(("127.0.0.1", later_port)).unwrap(), always(200), None);
    wait_until("later: delivered once it listens", DEADLINE, || deliveries(&d, "later")[0] == 1);
    let [_, failed, dropped, retried] = deliveries(&d, "later");
    assert!((failed, dropped) == (0, 0) && retried >= 1, "{:?}", deliveries(&d, "later"));
    assert_eq!(later.got().len(), 1);
    assert_eq!(later.got()[0].json()["to"], "EXITED");
    wait_until("never: given up after its retry", DEADLINE, || {
        deliveries(&d, "never") == [0, 1, 0, 1]
    });
    d.wait_log("webhook never: gave up on event");
    d.wait_log("webhook later: delivering again");
}

/// 1,000 events to a receiver that takes 20 ms for each (20 s of deliveries) hold back no
/// restart: a program killed during the burst is RUNNING again within a second, the loop
/// having only queued them.
#[test]
fn a_burst_to_a_slow_receiver_delays_no_restart() {
    let slow = Receiver::start(Arc::new(|_| {
        std::thread::sleep(Duration::from_millis(20));
        200
    }));
    let body = format!(
        "[programs.many]\ncommand = \"sleep 1000\"\nnumprocs = 500\nprocess_name = \"%(program_name)s_%(process_num)d\"\nstartsecs = 0\n\n\
         [programs.victim]\ncommand = \"sleep 1000\"\nstartsecs = 0\nautorestart = true\npriority = 1\n\n{}",
        webhook(
            "slow",
            &format!("http://127.0.0.1:{}/", slow.port),
            "events = [\"PROCESS_STATE\"]\nqueue_size = 2000"
        ),
    );
    let d = Daemon::start("webhook-burst", &body);
    wait_until("the 500 and the victim are RUNNING", DEADLINE, || {
        let st = d.status();
        st.len() == 501 && st.iter().all(|p| p["state"] == "RUNNING")
    });
    // Let the victim outlive restart_min_interval, so its restart is at once.
    let since = Instant::now();
    wait_until("a run of 1.2 s", DEADLINE, || {
        std::thread::sleep(Duration::from_millis(50));
        since.elapsed() > Duration::from_millis(1200)
    });
    let before = slow.got().len();
    assert!(before < 900, "the burst is still being delivered ({before} of 1002 so far)");
    let took = time_restart(&d, "victim", Duration::from_secs(1));
    println!("restart during a burst of 1,000 webhook events: {took:?}");
    let [delivered, failed, dropped, _] = deliveries(&d, "slow");
    assert!(delivered < 1000 && failed == 0 && dropped == 0, "{:?}", deliveries(&d, "slow"));
}

/// With queue_size = 3, a receiver that holds its first request makes the events behind it
/// overflow the queue: the oldest are dropped (and counted), the newest 3 delivered.
#[test]
fn a_full_queue_drops_the_oldest() {
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let hold = Mutex::new(hold);
    let receiver = Receiver::start(Arc::new(move |n| {
        if n == 0 {
            let _ = hold.lock().unwrap().recv_timeout(DEADLINE);
        }
        200
    }));
    let body = format!(
        "[programs.one]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [programs.many]\ncommand = \"sleep 1000\"\nnumprocs = 8\nprocess_name = \"%(program_name)s_%(process_num)d\"\nstartsecs = 0\nautostart = false\n\n{}",
        webhook(
            "small",
            &format!("http://127.0.0.1:{}/", receiver.port),
            "events = [\"PROCESS_STATE_RUNNING\"]\nqueue_size = 3\ntimeout = 60"
        ),
    );
    let d = Daemon::start("webhook-queue", &body);
    wait_until("the receiver holds the first event", DEADLINE, || receiver.got().len() == 1);
    assert_eq!(d.ctl(&["start", "many:*"]).code, 0);
    wait_until("5 of the 8 are dropped", DEADLINE, || deliveries(&d, "small")[2] == 5);
    release.send(()).unwrap();
    wait_until("the first and the newest 3 are delivered", DEADLINE, || {
        deliveries(&d, "small") == [4, 0, 5, 0]
    });
    let serials: Vec<u64> =
        receiver.got().iter().map(|g| g.json()["serial"].as_u64().unwrap()).collect();
    assert_eq!(serials, [1, 7, 8, 9], "the oldest of the 8 were dropped");
}

/// The certificates of a receiver at `localhost`: a test CA, and a certificate it signed.
/// Returns (the CA's PEM path, the receiver's TLS configuration).
pub(crate) fn test_ca(dir: &Dir) -> (std::path::PathBuf, Arc<rustls::ServerConfig>) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir.path)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "1", "-subj", "/CN=Kahi test CA", "-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[&["req"][..], &ec, &["-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "leaf.csr"]]
            .concat(),
    );
    dir.write(
        "leaf.ext",
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "2",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    let certs =
        rustls_pemfile::certs(&mut &std::fs::read(dir.join("cert.pem")).unwrap()[..]).unwrap();
    let key =
        rustls_pemfile::pkcs8_private_keys(&mut &std::fs::read(dir.join("key.pem")).unwrap()[..])
            .unwrap()
            .remove(0);
    let config = rustls::ServerConfig::builder()
        .with_safe_defaults()
        .with_no_client_auth()
        .with_single_cert(
            certs.into_iter().map(rustls::Certificate).collect(),
            rustls::PrivateKey(key),
        )
        .unwrap();
    (dir.join("ca.pem"), Arc::new(config))
}

/// https to a receiver whose certificate a private CA signed: verified with ca_file, refused
/// (and counted failed) without it.
#[test]
fn https_is_verified_with_ca_file_and_fails_without() {
    let dir = Dir::new("webhook-tls");
    let (ca, tls) = test_ca(&dir);
    let receiver = Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap(), always(200), Some(tls));
    let url = format!("https://localhost:{}/hook", receiver.port);
    let events = "events = [\"PROCESS_STATE_EXITED\"]\nretries = 0";
    let body = format!(
        "{CRASH}{}{}",
        webhook("trusted", &url, &format!("{events}\nca_file = \"{}\"", ca.display())),
        webhook("untrusted", &url, events),
    );
    let d = Daemon::start_in(dir, &body);
    wait_until("trusted delivered, untrusted failed", DEADLINE, || {
        deliveries(&d, "trusted") == [1, 0, 0, 0] && deliveries(&d, "untrusted") == [0, 1, 0, 0]
    });
    let got = receiver.got();
    assert_eq!(got.len(), 1, "only the trusted one got through: {got:?}");
    assert_eq!(got[0].json()["webhook"], "trusted");
    assert_eq!(got[0].header("host"), Some(format!("localhost:{}", receiver.port).as_str()));
    let log = d.log();
    let line = log.lines().find(|l| l.contains("webhook untrusted: gave up")).expect("logged");
    assert!(line.contains("UnknownIssuer"), "{line}");
}

/// A reload adds a webhook, points it elsewhere, and removes it.
#[test]
fn reload_adds_changes_and_removes_webhooks() {
    let first = Receiver::start(always(200));
    let second = Receiver::start(always(200));
    let crash = "[programs.crash]\ncommand = [\"/bin/sh\", \"-c\", \"exit 3\"]\nstartsecs = 0\nautorestart = false\nautostart = false\n\n";
    let d = Daemon::start("webhook-reload", crash);
    let config = d.config.clone();
    let text = std::fs::read_to_string(&config).unwrap();
    let events = "events = [\"PROCESS_STATE_EXITED\"]";
    let crash_once = |d: &Daemon| {
        let _ = d.ctl(&["start", "crash"]);
        wait_until("crash exited", DEADLINE, || d.state("crash") == "EXITED");
    };
    let with = |url: String| format!("{text}{}", webhook("ops", &url, events));
    std::fs::write(&config, with(format!("http://127.0.0.1:{}/", first.port))).unwrap();
    assert_eq!(d.ctl(&["update"]).code, 0);
    d.wait_log("webhook ops: posting to http://127.0.0.1:");
    crash_once(&d);
    wait_until("the first receiver has it", DEADLINE, || first.got().len() == 1);
    std::fs::write(&config, with(format!("http://127.0.0.1:{}/", second.port))).unwrap();
    assert_eq!(d.ctl(&["update"]).code, 0);
    d.wait_log("webhook ops: changed");
    crash_once(&d);
    wait_until("the second receiver has it", DEADLINE, || second.got().len() == 1);
    assert_eq!(deliveries(&d, "ops"), [2, 0, 0, 0], "the counts carry over a change");
    std::fs::write(&config, &text).unwrap();
    assert_eq!(d.ctl(&["update"]).code, 0);
    d.wait_log("webhook ops: removed");
    crash_once(&d);
    let metrics = d.request(r#"{"cmd":"metrics"}"#)["text"].as_str().unwrap().to_string();
    assert!(!metrics.contains("webhook=\"ops\""), "{metrics}");
    assert_eq!((first.got().len(), second.got().len()), (1, 1));
}

/// A reload reads ca_file again: the receiver's CA written into the file a webhook already
/// names is a change, and trusted from then on.
#[test]
fn a_reload_reads_ca_file_again() {
    let dir = Dir::new("webhook-tls-reload");
    let (ca, tls) = test_ca(&dir);
    let other = Dir::new("webhook-tls-other");
    let (other_ca, _) = test_ca(&other);
    std::fs::copy(&other_ca, dir.join("trust.pem")).unwrap();
    let receiver = Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap(), always(200), Some(tls));
    let url = format!("https://localhost:{}/hook", receiver.port);
    let crash = CRASH.replace("autorestart = false\n", "autorestart = false\nautostart = false\n");
    let rest = "events = [\"PROCESS_STATE_EXITED\"]\nretries = 0\nca_file = \"trust.pem\"";
    let d = Daemon::start_in(dir, &format!("{crash}{}", webhook("ops", &url, rest)));
    let crash_once = || {
        let _ = d.ctl(&["start", "crash"]);
        wait_until("crash exited", DEADLINE, || d.state("crash") == "EXITED");
    };
    crash_once();
    wait_until("another CA: failed", DEADLINE, || deliveries(&d, "ops") == [0, 1, 0, 0]);
    std::fs::copy(&ca, d.dir.join("trust.pem")).unwrap();
    assert_eq!(d.ctl(&["update"]).code, 0);
    d.wait_log("webhook ops: changed");
    crash_once();
    wait_until("its CA: delivered", DEADLINE, || deliveries(&d, "ops") == [1, 1, 0, 0]);
    assert_eq!(receiver.got().len(), 1);
}

/// The scheduling policy of a thread or process, from the 39th field after the name in its
/// /proc stat (0 the default, 3 SCHED_BATCH, 5 SCHED_IDLE).
fn policy(stat: &str) -> Option<u32> {
    std::fs::read_to_string(stat).ok()?.rsplit(')').next()?.split_whitespace().nth(38)?.parse().ok()
}

/// A delivery thread is SCHED_BATCH, so the threads woken by a restart's events do not preempt
/// the program just started; the loop and the programs keep the default policy.
#[test]
fn delivery_threads_do_not_preempt_on_waking() {
    let receiver = Receiver::start(always(200));
    let url = format!("http://127.0.0.1:{}/", receiver.port);
    let body = format!(
        "[programs.p]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n{}",
        webhook("ops", &url, "events = [\"PROCESS_STATE\"]")
    );
    let d = Daemon::start("webhook-policy", &body);
    let task = |name: &str| {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", d.pid())).ok()?;
        tasks
            .flatten()
            .map(|t| t.path())
            .find(|t| std::fs::read_to_string(t.join("comm")).is_ok_and(|c| c.trim_end() == name))
    };
    let mut seen = None;
    wait_until("the delivery thread has its policy", DEADLINE, || {
        seen = task("webhook ops").and_then(|t| policy(&t.join("stat").to_string_lossy()));
        seen == Some(3)
    });
    let main = format!("/proc/{0}/task/{0}/stat", d.pid());
    assert_eq!(policy(&main), Some(0), "the loop keeps the default policy");
    wait_until("p is RUNNING", DEADLINE, || d.state("p") == "RUNNING");
    let pid = d.process("p")["pid"].as_i64().expect("a pid");
    assert_eq!(policy(&format!("/proc/{pid}/stat")), Some(0), "so do the programs");
    wait_until("the events are delivered", DEADLINE, || !receiver.got().is_empty());
}
