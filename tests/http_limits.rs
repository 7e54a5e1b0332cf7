//! The HTTP listener's bounds: connections, request heads, clients that trickle, that never
//! read, or that hold a place; what a daemon spends on them, in threads and memory.

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;

use crate::http::{Events, hash, request, send_raw, start};
use crate::util::*;

#[test]
fn a_restart_is_not_delayed_by_http_clients_that_never_read() {
    let (d, port) = start(
        "http-stuck",
        "[programs.victim]\ncommand = \"sleep 1000\"\nstartsecs = 0\nrestart_min_interval = 0\n\n\
         [programs.big]\ncommand = [\"/bin/sh\", \"-c\", \"seq 1 1200000; exec sleep 1000\"]\n\
         startsecs = 0\nstdout_capture_maxbytes = \"16MB\"\n",
    );
    d.wait_state("victim", "RUNNING");
    wait_until("the big log is in", DEADLINE, || {
        d.ctl(&["tail", "-n", "20", "big"]).stdout.contains("1200000")
    });
    // 300 idle connections, and clients that send half a request, held open.
    let mut held = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        if i % 3 == 0 {
            s.write_all(b"GET /api/v1/processes HTTP/1.1\r\nHost: x\r\n").unwrap();
        }
        held.push(s);
    }
    // A client asks for the whole large log (8 MB) and never reads the answer.
    let mut greedy = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        greedy,
        "GET /api/v1/processes/big/log/stdout?offset=0&length=16000000 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    held.push(greedy);
    let delay = time_restart(&d, "victim", DEADLINE);
    println!("restart with 300 idle HTTP clients and an unread 8 MB answer: {delay:?}");
    assert!(delay < std::time::Duration::from_millis(100), "restart took {delay:?}");
    assert_eq!(request(port, "GET", "/healthz").0, 200);
    assert_eq!(request(port, "GET", "/api/v1/processes/victim").0, 200);
}

/// Whether the server closed `s` (EOF or a reset) within the deadline, without answering.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn connections_past_max_connections_and_endless_headers_are_cut_off() {
    let (d, port) = start_with("http-limits", "max_connections = 5\n");
    // Five event streams hold every place, each with a request in hand.
    let mut streams: Vec<Events> =
        (0..5).map(|_| Events::open(port, "/api/v1/events/stream")).collect();
    // The sixth is closed at once, unanswered.
    let mut sixth = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = sixth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(closed_by_server(&mut sixth), "a sixth connection was served");
    d.wait_log("connections open, the most allowed (max_connections)");

    // One place frees: served again.
    streams.pop();
    wait_until("a connection is served again", DEADLINE, || {
        std::panic::catch_unwind(|| request(port, "GET", "/healthz").0 == 200).unwrap_or(false)
    });
    drop(streams);

    // Connections waiting for a request give way to new ones, the longest waiting first.
    let mut idle: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut buf = [0u8; 12];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"HTTP/1.1 200");
            let mut rest = [0u8; 256];
            let _ = s.read(&mut rest);
            s
        })
        .collect();
    assert_eq!(request(port, "GET", "/healthz").0, 200);
    assert!(closed_by_server(&mut idle[0]), "the longest idle connection was kept");

    // A request head that never ends is cut off, and the server goes on.
    let mut flood = TcpStream::connect(("127.0.0.1", port)).unwrap();
    flood.write_all(b"GET /healthz HTTP/1.1\r\nX-Long: ").unwrap();
    flood.set_write_timeout(Some(DEADLINE)).unwrap();
    // The kernel alone may buffer the socket's send buffer and the daemon's receive window
    // (tcp_wmem and tcp_rmem at most, 36 MiB on common defaults) before the daemon reads a
    // byte; past twice that, the daemon must have been reading and throwing away.
    let chunk = vec![b'a'; 64 << 10];
    let bound = 2 * (socket_buffer_max("tcp_rmem") + socket_buffer_max("tcp_wmem"));
    let mut sent = 0;
    while sent < bound && flood.write_all(&chunk).is_ok() {
        sent += chunk.len();
    }
    assert!(sent < bound, "{sent} bytes of one header line were taken");
    assert!(closed_by_server_or(&mut flood, b"HTTP/1.1 431"));
    assert_eq!(request(port, "GET", "/healthz").0, 200);
}

/// The largest size the kernel lets a TCP socket's buffer grow to (the last of
/// /proc/sys/net/ipv4/`name`), 8 MiB where that cannot be read.
fn socket_buffer_max(name: &str) -> usize {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .ok()
        .and_then(|s| s.split_whitespace().last()?.parse().ok())
        .unwrap_or(8 << 20)
}

/// A daemon whose `[server.http]` table has `extra` lines besides its listen address; returns
/// it and the port.
fn start_with(name: &str, extra: &str) -> (Daemon, u16) {
    let d = Daemon::start(name, &format!("[server.http]\nlisten = \"127.0.0.1:0\"\n{extra}"));
    d.wait_log("HTTP API listening on http://127.0.0.1:");
    let port = http_port(&d.log());
    (d, port)
}

/// The local ports `pid` listens on over TCP (its sockets in LISTEN state).
fn listening_ports(pid: i32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address rem_address st ... inode (the tenth field)
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort_unstable();
    ports
}

/// The daemon's threads.
fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

/// The most threads a daemon with an HTTP listener has, whatever its clients do: the loop,
/// the front and the two password checkers.
const MOST_THREADS: usize = 4;

#[test]
fn only_the_configured_port_listens() {
    let (d, port) = start("http-ports", "");
    assert_eq!(request(port, "GET", "/healthz").0, 200);
    assert_eq!(listening_ports(d.pid()), vec![port]);
    assert!(threads(d.pid()) <= MOST_THREADS, "{} threads", threads(d.pid()));
}

#[test]
fn heads_trickled_a_line_at_a_time_neither_hold_every_place_nor_starve_the_probes() {
    let users = format!(
        "max_connections = 100\n\n[[server.http.users]]\nname = \"admin\"\nrole = \"admin\"\n\
         password_hash = \"{}\"\n",
        hash("secret")
    );
    let (d, port) = start_with("http-trickle", &users);
    // 200 unauthenticated clients, each sending its head a line at a time, a line a second.
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let _ = s.write_all(b"GET /api/v1/processes HTTP/1.1\r\n");
            s
        })
        .collect();
    let started = std::time::Instant::now();
    let mut probes = 0;
    // Past the head deadline (10 s): every probe is answered meanwhile.
    while started.elapsed() < std::time::Duration::from_secs(12) {
        for s in &mut slow {
            let _ = s.write_all(b"X-Slow: 1\r\n");
        }
        let (code, _, body) = request(port, "GET", "/healthz");
        assert_eq!((code, body["status"].as_str()), (200, Some("ok")));
        probes += 1;
        assert!(threads(d.pid()) <= MOST_THREADS, "{} threads", threads(d.pid()));
        std::thread::sleep(std::time::Duration::from_millis(1000));
    }
    // None of them is served or kept: each was closed to make room or at its deadline.
    for s in &mut slow {
        assert!(closed_by_server_or(s, b"HTTP/1.1 408"), "a trickled head was still open");
    }
    println!("{probes} probes answered while 200 heads trickled");
}

/// Whether the server closed `s`, at most with an answer that starts with `why` and says why
/// in a JSON error body.
fn closed_by_server_or(s: &mut TcpStream, why: &[u8]) -> bool {
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) if got.is_empty() => true,
        Ok(_) => {
            let text = String::from_utf8_lossy(&got);
            let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let error = serde_json::from_str::<serde_json::Value>(body).unwrap_or_default();
            got.starts_with(why) && error["code"].is_string() && error["error"].is_string()
        }
        // A reset may come first: the client's last bytes were not read.
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn viewers_that_never_read_a_large_log_hold_little_memory_and_delay_nothing() {
    let (d, port) = start(
        "http-greedy",
        "[programs.victim]\ncommand = \"sleep 1000\"\nstartsecs = 0\nrestart_min_interval = 0\n\n\
         [programs.big]\ncommand = [\"/bin/sh\", \"-c\", \"seq 1 3000000; exec sleep 1000\"]\n\
         startsecs = 0\nstdout_capture_maxbytes = \"32MB\"\n",
    );
    d.wait_state("victim", "RUNNING");
    wait_until("the big log is in", DEADLINE, || {
        d.ctl(&["tail", "-n", "20", "big"]).stdout.contains("3000000")
    });
    let before = rss_kib(d.pid());
    // 20 clients ask for the whole log (about 21 MB each) and never read.
    let greedy: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(
                b"GET /api/v1/processes/big/log/stdout?offset=0&length=32000000 HTTP/1.1\r\nHost: x\r\n\r\n",
            )
            .unwrap();
            s
        })
        .collect();
    let mut most = before;
    for _ in 0..10 {
        assert_eq!(request(port, "GET", "/healthz").0, 200);
        most = most.max(rss_kib(d.pid()));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let delay = time_restart(&d, "victim", DEADLINE);
    println!(
        "20 viewers not reading a 21 MB log: RSS {before} KiB before, at most {most} KiB; a restart took {delay:?}"
    );
    // Whole copies would be 20 x 21 MB and their JSON: gigabytes.
    assert!(most < before + (96 << 10), "RSS grew from {before} KiB to {most} KiB");
    assert!(delay < std::time::Duration::from_secs(1), "restart took {delay:?}");
    assert!(threads(d.pid()) <= MOST_THREADS, "{} threads", threads(d.pid()));
    drop(greedy);
    // A reader that does read gets the whole log, byte for byte.
    let (code, _, body) =
        send_raw(port, "GET", "/api/v1/processes/big/log/stdout?offset=0&length=32000000", "", "");
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let data = v["data"].as_str().unwrap();
    assert!(
        data.starts_with("1\n2\n3\n") && data.ends_with("2999999\n3000000\n"),
        "{}",
        &data[..20]
    );
    assert_eq!((v["offset"].as_u64(), v["skipped"].as_u64()), (Some(0), Some(0)));
}

/// The status an event stream's request gets; the connection is kept when it is 200.
fn open_stream(port: u16, path: &str) -> (u16, TcpStream) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    let status = std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap();
    (status, s)
}

#[test]
fn event_streams_whose_clients_left_give_their_places_back() {
    let (_d, port) = start("http-streams-gone", "[programs.quiet]\ncommand = \"sleep 1000\"\n");
    let path = "/api/v1/processes/quiet/log/stdout/stream";
    // Every place (64) taken by streams of a log that never grows, then left: the SSE log
    // streams, then supervisord's /logtail, which sends no keep-alive to find out by.
    for (round, path) in [path, path, "/logtail/quiet"].into_iter().enumerate() {
        let streams: Vec<TcpStream> = (0..64)
            .map(|i| {
                let (status, s) = open_stream(port, path);
                assert_eq!(status, 200, "stream {i} of round {round}");
                s
            })
            .collect();
        assert_eq!(open_stream(port, path).0, 503, "a 65th stream was taken");
        // Each client reads what it was sent and closes: a FIN, not a reset, which is how
        // a reader such as curl leaves.
        for mut s in streams {
            s.set_read_timeout(Some(std::time::Duration::from_millis(20))).unwrap();
            let mut sink = [0u8; 4096];
            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        }
        wait_until("the streams' places are given back", DEADLINE, || {
            let (status, _s) = open_stream(port, path);
            status == 200
        });
        // That probe's stream ends with its connection.
        wait_until("the probe's place is given back", DEADLINE, || {
            let (status, _s) = open_stream(port, "/api/v1/events/stream");
            status == 200
        });
    }
}
