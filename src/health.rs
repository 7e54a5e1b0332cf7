//! Health checks under way, driven by the event loop without blocking it: an `exec` check is
//! a child process whose exit the reaper reports; `tcp` and `http` checks are non-blocking
//! sockets registered with the poll. When and how often, and what a result means, is the
//! lifecycle machine's business (`Action::CheckHealth`, `Input::HealthResult`).

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use crate::config::Probe;

/// The most of an HTTP answer read: enough for a status line and a body to search.
const MAX_ANSWER: usize = 64 << 10;

/// One check under way.
pub enum Check {
    /// A command: its pid, until the reaper reports its exit.
    Exec { pid: i32 },
    /// A connection: connected is a pass for `tcp`; `http` then sends its request and reads.
    Socket { stream: mio::net::TcpStream, http: Option<Http> },
}

/// The HTTP part of a socket check.
pub struct Http {
    request: Vec<u8>,
    sent: usize,
    answer: Vec<u8>,
    status: (u16, u16),
    body: Option<String>,
}

/// What a socket check has come to.
pub enum Progress {
    /// Nothing decided yet: wait for the next event.
    Waiting,
    Done {
        ok: bool,
        detail: String,
    },
}

/// Starts the check of `probe`: Err with the reason when it cannot even start (a failure).
pub fn start(probe: &Probe) -> Result<Check, String> {
    match probe {
        Probe::Exec(argv) => {
            let mut cmd = std::process::Command::new(&argv[0]);
            // /dev/null; in a scratch image without /dev, no input, and the output goes to
            // Kahi's own stderr rather than failing the check.
            use std::process::Stdio;
            let stdin = crate::sys::spawn::empty_input().ok().and_then(|fd| fd.try_clone().ok());
            let quiet = || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/null")
                    .map_or_else(|_| Stdio::inherit(), Stdio::from)
            };
            cmd.args(&argv[1..])
                .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
                .stdout(quiet())
                .stderr(quiet());
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            // The Child is dropped without waiting: the event loop reaps every pid itself.
            let child = cmd.spawn().map_err(|e| format!("{}: {e}", argv[0]))?;
            Ok(Check::Exec { pid: child.id() as i32 })
        }
        Probe::Tcp(addr) => Ok(Check::Socket { stream: connect(addr)?, http: None }),
        Probe::Http { addr, host, path, status, body } => {
            let request = format!(
                "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: kahi-healthcheck\r\nConnection: close\r\n\r\n"
            );
            Ok(Check::Socket {
                stream: connect(addr)?,
                http: Some(Http {
                    request: request.into_bytes(),
                    sent: 0,
                    answer: Vec::new(),
                    status: *status,
                    body: body.clone(),
                }),
            })
        }
    }
}

/// A non-blocking connect to an address the configuration looked up when it was loaded: a
/// check never waits for a resolver on the event loop.
fn connect(addr: &SocketAddr) -> Result<mio::net::TcpStream, String> {
    mio::net::TcpStream::connect(*addr).map_err(|e| format!("connect to {addr}: {e}"))
}

impl Check {
    /// Moves a socket check on after an event.
    pub fn drive(&mut self) -> Progress {
        let Check::Socket { stream, http } = self else { return Progress::Waiting };
        match stream.take_error() {
            Ok(Some(e)) | Err(e) => {
                return Progress::Done { ok: false, detail: format!("connect: {e}") };
            }
            Ok(None) => {}
        }
        match stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Progress::Waiting,
            Err(e) => return Progress::Done { ok: false, detail: format!("connect: {e}") },
        }
        let Some(h) = http else {
            return Progress::Done { ok: true, detail: "connected".into() };
        };
        while h.sent < h.request.len() {
            match stream.write(&h.request[h.sent..]) {
                Ok(n) => h.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Waiting,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Progress::Done { ok: false, detail: format!("send: {e}") },
            }
        }
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return h.verdict(),
                Ok(n) => {
                    h.answer.extend_from_slice(&buf[..n]);
                    if h.answer.len() >= MAX_ANSWER {
                        return h.verdict();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Waiting,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Progress::Done { ok: false, detail: format!("receive: {e}") },
            }
        }
    }
}

impl Http {
    /// The answer read so far, judged: the status in range, and the body holding the text.
    fn verdict(&self) -> Progress {
        let text = String::from_utf8_lossy(&self.answer);
        let status = text
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse::<u16>().ok());
        let Some(status) = status else {
            return Progress::Done {
                ok: false,
                detail: "no HTTP status line in the answer".into(),
            };
        };
        if status < self.status.0 || status > self.status.1 {
            return Progress::Done {
                ok: false,
                detail: format!("status {status}, expected {}-{}", self.status.0, self.status.1),
            };
        }
        if let Some(want) = &self.body {
            let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            if !body.contains(want.as_str()) {
                return Progress::Done {
                    ok: false,
                    detail: format!("status {status}, body without {want:?}"),
                };
            }
        }
        Progress::Done { ok: true, detail: format!("status {status}") }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use super::*;

    /// Drives `check` as the event loop does: on each readiness of its socket, until it is
    /// decided or nothing happens for 10 s.
    fn run(mut check: Check) -> (bool, String) {
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(4);
        if let Check::Socket { stream, .. } = &mut check {
            let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
            poll.registry().register(stream, mio::Token(0), interest).unwrap();
        }
        loop {
            if let Progress::Done { ok, detail } = check.drive() {
                return (ok, detail);
            }
            poll.poll(&mut events, Some(Duration::from_secs(10))).unwrap();
            assert!(!events.is_empty(), "the check made no progress in 10 s");
        }
    }

    #[test]
    fn a_tcp_check_connects_to_its_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let check = start(&Probe::Tcp(addr)).unwrap();
        assert_eq!(run(check), (true, "connected".into()));
        // Negative twin: nothing listens there once the listener is gone.
        drop(listener);
        let check = start(&Probe::Tcp(addr)).unwrap();
        let (ok, detail) = run(check);
        assert!(!ok && detail.starts_with("connect"), "{detail}");
    }

    #[test]
    fn an_http_check_sends_the_host_it_was_given_and_judges_the_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "the request ended early");
                request.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nall good").unwrap();
            String::from_utf8(request).unwrap()
        });
        let probe = Probe::Http {
            addr,
            host: "app.example:8080".into(),
            path: "/up".into(),
            status: (200, 299),
            body: Some("good".into()),
        };
        assert_eq!(run(start(&probe).unwrap()), (true, "status 200".into()));
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /up HTTP/1.0\r\nHost: app.example:8080\r\n"), "{request}");
    }
}
