//! Entry points for the fuzz targets of `fuzz/`. Each takes the bytes libFuzzer made, runs one
//! parser on them as Kahi runs it (a kahi.toml, a control request, an HTTP request, an XML-RPC
//! body, a supervisord.conf, a listener's answers), then what follows that is pure: a
//! configuration is checked and applied to a supervisor, a request is answered. What the event loop would do (spawn,
//! signal, wait) is stood in for by [`Loop`]: no file is written, no process started, no socket
//! opened. A finding is a panic, a hang or a blow-up of memory in Kahi's own code.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

use crate::api::{self, ApiError, ConfigUse, Now, Reply, Request};
use crate::config::{self, Config};
use crate::http::{self, Route};
use crate::process::machine::{Action, Input, TimerKind};
use crate::process::{ExitStatus, State};
use crate::supervisor::{ProcId, Supervisor};

/// The file every configuration text claims to be: it names errors and sets `%(here)s`.
const FILE: &str = "/etc/kahi/kahi.toml";

/// The configuration the control and HTTP requests are answered against, and which fuzzed
/// configurations update: groups, instances, a oneshot, dependencies, a stdin pipe, a ring
/// buffer small enough to wrap.
const BASE: &str = r#"
[programs.web]
command = ["/bin/sh", "-c", "exec sleep 1000"]
depends_on = [{ name = "setup", condition = "completed" }]
priority = 100
stdin_pipe = true
stdout_capture_maxbytes = 100

[programs.setup]
command = "/bin/true"
type = "oneshot"

[programs.workers]
command = "/bin/sleep 1000"
numprocs = 2
process_name = "%(program_name)s_%(process_num)02d"

[programs.flaky]
command = "/bin/false"
startsecs = 1

[programs.sleeper]
command = "/bin/sleep 1000"
autostart = false

[groups.backend]
programs = ["flaky", "workers"]
"#;

/// The environment `${VAR}` expands from: always the same few variables.
fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/root".into()),
        "USER" => Some("root".into()),
        "PORT" => Some("8080".into()),
        "XDG_RUNTIME_DIR" => Some("/run/user/0".into()),
        _ => None,
    }
}

fn base() -> &'static Config {
    static BASE_CONFIG: OnceLock<Config> = OnceLock::new();
    BASE_CONFIG.get_or_init(|| match config::load_text(Path::new(FILE), BASE, &env) {
        Ok(c) => c,
        Err(e) => panic!("the fuzz base configuration is invalid: {}", e[0]),
    })
}

/// The most processes a fuzzed configuration may have to be run, not only loaded: past a few
/// thousand, what a run costs (each exit looks for dependents among all the processes, each
/// state change checks every held start) makes an input a timeout, and says nothing new.
const MAX_RUN: usize = 2_000;

/// A configuration file's text: read for `kahi ctl -c` (its socket), loaded and checked as the
/// daemon loads it; when valid, started on its own and shut down, and applied to a supervisor
/// running [`BASE`] by `reread`, `avail` and `update`.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = Path::new(FILE);
    let _ = config::socket::socket_in(file, text, &env);
    let config = match config::load_text(file, text, &env) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                let _ = e.to_string();
            }
            return;
        }
    };
    for note in &config.notes {
        let _ = note.to_string();
    }
    if config.processes.len() > MAX_RUN {
        return;
    }
    let mut own = Loop::new(config.clone());
    let _ = own.answer(Request::Status { names: Vec::new() }, To::Control);
    own.exit_all(ExitStatus::Exited(1));
    own.exit_all(ExitStatus::Exited(0));
    own.shut_down();
    let mut l = Loop::new(base().clone());
    for what in [ConfigUse::Reread, ConfigUse::Avail] {
        let _ = serde_json::to_vec(&api::with_config(&mut l.sup, what, config.clone(), l.now));
    }
    let reply = api::with_config(&mut l.sup, ConfigUse::Update, config, l.now);
    let _ = serde_json::to_vec(&reply);
    l.perform();
    // And back.
    let _ = api::with_config(&mut l.sup, ConfigUse::Update, base().clone(), l.now);
    l.perform();
    l.shut_down();
}

/// What a client writes to the control socket: split into lines as the daemon splits them,
/// each line parsed and answered against a supervisor running [`BASE`].
pub fn control(data: &[u8]) {
    let mut l = Loop::new(base().clone());
    let mut lines = crate::control::Lines::default();
    // The bytes come as reads deliver them: in pieces.
    for piece in data.chunks(1024) {
        if lines.push(piece).is_err() {
            return;
        }
        while let Some(line) = lines.next_line() {
            match crate::control::parse(&line) {
                None => continue,
                Some(Ok(req)) => {
                    let _ = l.answer(req, To::Control);
                }
                Some(Err(e)) => api::Host::settle(&mut l, To::Control, Err(e)),
            }
        }
    }
    l.shut_down();
}

/// An HTTP request: `METHOD URL [AUTHORIZATION]`, a newline, then the body. The role it
/// needs, its route, and for an API route the answer, against a supervisor running [`BASE`];
/// and the same bytes read as a request head.
pub fn http(data: &[u8]) {
    // The same bytes as a request head off the wire.
    let _ = crate::http_wire::parse_head(data, http::MAX_BODY);
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else { return };
    let mut words = head.splitn(3, ' ');
    let method = words.next().unwrap_or("GET");
    let url = words.next().unwrap_or("/");
    if let Some(auth) = words.next() {
        let _ = http::decode_basic(auth);
    }
    for metrics_auth in [false, true] {
        let _ = http::required_role(method, url, metrics_auth);
    }
    let route = http::route(method, url, body);
    for metrics_auth in [false, true] {
        let _ = route.role(method, metrics_auth);
    }
    let Route::Api(req, shape) = route else { return };
    let mut l = Loop::new(base().clone());
    let _ = l.answer(req, To::Http(shape));
    l.shut_down();
}

/// The body of an XML-RPC request: read, planned, and each of its calls answered as `/RPC2`
/// answers them, against a supervisor running [`BASE`]; the response made into bytes.
pub fn xmlrpc(data: &[u8]) {
    use crate::xmlrpc::{Exchange, Next};
    let mut l = Loop::new(base().clone());
    let mut x = Exchange::new((), data, &l.sup);
    let _ = x.role();
    loop {
        match x.next() {
            Next::Done(response) => {
                let _ = response.into_bytes();
                break;
            }
            Next::Ask(req) => {
                let _ = l.answer(req, To::Xmlrpc);
                let reply = l.kept.take().unwrap_or_else(|| {
                    Err(ApiError::new(api::ErrorCode::ServerError, "a wait that never settled"))
                });
                x.answer(reply, &l.sup, Now { mono: l.now, wall: l.wall });
            }
        }
    }
    l.shut_down();
}

/// A supervisord configuration's text, read and mapped as `kahi migrate` and `kahi daemon -c
/// supervisord.conf` read it (its includes would be looked for beside a file that does not
/// exist, so none is read); what it becomes is loaded as a kahi.toml. The TOML written must
/// parse: a text it cannot is a finding, not an error of the input.
pub fn supervisord(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let vars = [("HOME".to_string(), "/root".to_string())];
    let main = Path::new("/nonexistent-kahi-fuzz/supervisord.conf");
    let Ok(m) = crate::supervisord::migrate(main, text, &vars) else { return };
    if let Err(e) = m.toml.parse::<toml::Table>() {
        panic!("kahi migrate wrote TOML that does not parse: {e}\n{}", m.toml);
    }
    if let Ok(c) = config::load_text(Path::new(FILE), &m.toml, &env) {
        let _ = c.processes.len();
    }
}

/// What an event listener writes on its stdout, to a pool of two: the first byte of each
/// piece says which member writes it and whether the pool sends the next events first, so
/// messages are cut anywhere and answers cross with events, as a real pool sees them.
pub fn listener(data: &[u8]) {
    use crate::events::listener::Pool;
    use crate::events::{Bus, Event, EventType};
    let mut bus = Bus::default();
    let mut pool = Pool::new("fuzz", vec![EventType::Event], 4, &mut bus);
    pool.started(1);
    pool.started(2);
    for (i, piece) in data.split(|&b| b == 0xff).enumerate() {
        let Some((&head, bytes)) = piece.split_first() else { continue };
        let id = 1 + u64::from(head & 1);
        if head & 2 != 0 {
            bus.publish(Event::Tick { period: 5, when: 5 * i as u64 });
        }
        if head & 4 != 0 {
            while pool.dispatch(&mut bus, "kahi").is_some() {}
        }
        if head & 8 != 0 {
            pool.exited(id);
            pool.started(id);
        }
        let _ = pool.feed(id, bytes);
        let _ = pool.state(id);
    }
    let _ = pool.queued(&bus);
}

/// Stands in for the event loop: a spawn succeeds at once with a made-up pid, a process
/// being stopped exits on the first signal, and the deadlines that move a start on (startsecs,
/// start and ready delays, back-off) pass at once. Health checks and watchdogs never run.
struct Loop {
    sup: Supervisor,
    now: Instant,
    wall: SystemTime,
    next_pid: i32,
    /// The bytes of the last answer sent.
    answered: Option<Vec<u8>>,
    /// The last reply to an XML-RPC call, as it was given.
    kept: Option<Result<Reply, ApiError>>,
}

/// Who a request came from: the control socket, or HTTP with the shape of its route.
enum To {
    Control,
    Http(http::Shape),
    /// A call of an XML-RPC request: the reply is kept as it is, for the exchange.
    Xmlrpc,
}

/// The event loop's part in answering a request, stood in for: what would be sent is
/// serialized as its transport would, and kept; files, pipes and streams are left alone.
impl api::Host for Loop {
    type Responder = To;

    fn supervisor(&mut self) -> &mut Supervisor {
        &mut self.sup
    }

    fn transport(to: &To) -> &'static str {
        match to {
            To::Control => "the control socket",
            To::Http(_) => "HTTP",
            To::Xmlrpc => "XML-RPC",
        }
    }

    fn settle(&mut self, to: To, reply: Result<Reply, ApiError>) {
        if let To::Xmlrpc = to {
            self.kept = Some(reply);
            return;
        }
        self.answered = Some(match to {
            To::Control => match &reply {
                Ok(r) => serde_json::to_vec(r).unwrap_or_default(),
                Err(e) => serde_json::to_vec(e).unwrap_or_default(),
            },
            To::Http(shape) => http::answer(&shape, reply).body.into_bytes(),
            To::Xmlrpc => Vec::new(),
        });
    }

    fn park(&mut self, to: To, mut waiter: api::Waiter, _: Instant) {
        self.perform();
        if let Some(reply) = waiter.poll(&mut self.sup, self.now) {
            self.settle(to, Ok(reply));
        }
    }

    fn detach(&mut self, mut waiter: api::Waiter) {
        self.perform();
        let _ = waiter.poll(&mut self.sup, self.now);
    }

    fn clear_log_files(&mut self, _: &[ProcId]) {}

    /// What is there now, as the first reply of the follow.
    fn follow(&mut self, to: To, log: api::LogSource, offset: u64, encoding: api::Encoding) {
        let read = match log {
            api::LogSource::Process(id, stream) => {
                self.sup.get(id).map(|e| e.ring(stream).read(offset, usize::MAX))
            }
            api::LogSource::Daemon => Some(crate::logs::daemon_log::read(offset)),
        };
        if let Some(r) = read {
            self.settle(to, Ok(api::log_reply(&r.data, r.offset, r.skipped, encoding)));
        }
    }

    fn follow_events(&mut self, _: To, _: Vec<crate::events::EventType>) {}

    fn send_log(&mut self, to: To, read: api::LogRead, now: Now) {
        match to {
            To::Control => self.send_pieces(to, read.pieces(), now),
            To::Http(_) | To::Xmlrpc => {
                if let Some(reply) = read.reply(&self.sup, u64::MAX) {
                    self.settle(to, reply);
                }
            }
        }
    }

    fn send_pieces(&mut self, to: To, mut reply: crate::piecewise::Piecewise, now: Now) {
        match to {
            // Over the control socket, in pieces: they must make one reply line.
            To::Control => {
                let mut line = Vec::new();
                while !reply.piece(&self.sup, now, &mut line) {}
                let parsed = serde_json::from_slice::<Reply>(&line);
                parsed.expect("the pieces of a reply make one reply");
                self.answered = Some(line);
            }
            To::Http(_) | To::Xmlrpc => {
                let whole = reply.whole(&self.sup, now);
                self.settle(to, Ok(whole));
            }
        }
    }

    fn read_config(&mut self, what: ConfigUse, now: Instant) -> Result<Reply, ApiError> {
        Ok(api::with_config(&mut self.sup, what, base().clone(), now))
    }

    fn feed_stdin(&mut self, _: ProcId, name: String, data: String) -> Result<Reply, ApiError> {
        Ok(Reply::Written { name, bytes: data.len() })
    }

    fn metrics(&mut self, now: Now) -> String {
        crate::metrics::render(
            &self.sup,
            now,
            &Default::default(),
            &|_, _| (0, false),
            &Default::default(),
        )
    }

    fn send_remote(&mut self, _: String, _: String) -> usize {
        0
    }

    fn begin_shutdown(&mut self, now: Instant) {
        self.sup.begin_shutdown(now);
    }
}

/// The most actions one [`Loop::perform`] runs: a supervisor that never settles is a hang,
/// which this turns into a panic with a name.
const MAX_ACTIONS: usize = 1_000_000;

impl Loop {
    /// A supervisor for `config`, its autostart programs started.
    fn new(config: Config) -> Loop {
        let mut l = Loop {
            sup: Supervisor::new(config),
            now: Instant::now(),
            wall: SystemTime::now(),
            next_pid: 100,
            answered: None,
            kept: None,
        };
        l.sup.start_autostart(l.now);
        l.perform();
        // Some output, so that reads of the logs have something to read; more than web's
        // ring holds, so that one has wrapped.
        let ids: Vec<_> = l.sup.iter().map(|e| e.id).collect();
        for (n, id) in ids.into_iter().enumerate() {
            if let Some(e) = l.sup.get_mut(id) {
                for line in 0..n % 4 + 5 {
                    e.stdout.write(format!("line {line} of process {id}\n").as_bytes());
                }
                e.stderr.write(b"warning: ");
            }
        }
        l
    }

    /// Every process that runs exits with `status`.
    fn exit_all(&mut self, status: ExitStatus) {
        let running: Vec<_> =
            self.sup.iter().filter(|e| e.proc.pid.is_some()).map(|e| e.id).collect();
        for id in running {
            self.sup.input(id, Input::Exited(status), self.now);
            self.perform();
        }
    }

    fn perform(&mut self) {
        for _ in 0..MAX_ACTIONS {
            if self.sup.actions.is_empty() && self.sup.shutdown_busy() {
                self.sup.continue_shutdown(self.now);
            }
            let Some((id, action)) = self.sup.actions.pop_front() else { return };
            match action {
                Action::Spawn => {
                    self.next_pid += 1;
                    self.sup.input(id, Input::Spawned { pid: self.next_pid }, self.now);
                }
                Action::Kill { signal, .. } => {
                    let stopping = self
                        .sup
                        .get(id)
                        .is_some_and(|e| e.proc.state == State::Stopping && e.proc.pid.is_some());
                    if stopping {
                        let status =
                            ExitStatus::Signaled { signal: signal as i32, core_dumped: false };
                        self.sup.input(id, Input::Exited(status), self.now);
                    }
                }
                Action::SetTimer(
                    kind @ (TimerKind::StartSecs
                    | TimerKind::StartDelay
                    | TimerKind::ReadyDelay
                    | TimerKind::Backoff
                    | TimerKind::Restart),
                    at,
                ) => {
                    self.now = self.now.max(at);
                    self.sup.input(id, Input::Timer(kind, at), self.now);
                }
                _ => {}
            }
        }
        panic!("the supervisor did not settle after {MAX_ACTIONS} actions");
    }

    /// Answers `req` through the dispatcher the event loop uses, for the control socket
    /// (`control`) or HTTP with `shape`: the answer's bytes as the transport would frame them,
    /// or None when nothing would be sent yet.
    fn answer(&mut self, req: Request, to: To) -> Option<Vec<u8>> {
        let now = Now { mono: self.now, wall: self.wall };
        self.answered = None;
        api::dispatch(self, to, req, now);
        self.perform();
        self.answered.take()
    }

    /// Shuts down, as SIGTERM does, until every process is down.
    fn shut_down(&mut self) {
        self.sup.begin_shutdown(self.now);
        self.perform();
    }
}

#[cfg(test)]
mod tests {
    /// The seed corpus of every target runs as the fuzzer would run it: the stand-in loop
    /// answers through the event loop's dispatcher without a panic.
    #[test]
    fn the_seed_corpus_runs() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        type Target = fn(&[u8]);
        let targets: [(&str, Target); 6] = [
            ("config", super::config),
            ("control", super::control),
            ("http", super::http),
            ("xmlrpc", super::xmlrpc),
            ("supervisord", super::supervisord),
            ("listener", super::listener),
        ];
        for (target, run) in targets {
            let dir = corpus.join(target);
            let mut seeds = 0;
            for entry in std::fs::read_dir(&dir).unwrap() {
                run(&std::fs::read(entry.unwrap().path()).unwrap());
                seeds += 1;
            }
            assert!(seeds > 0, "no seeds in {}", dir.display());
        }
        // And what only a route with a body reaches, and a clear.
        super::http(b"POST /api/v1/processes/web/stdin\n{\"data\":\"x\"}");
        super::http(b"POST /api/v1/processes/web/clear\n");
        super::control(b"{\"cmd\":\"metrics\"}\n{\"cmd\":\"ready\"}\n{\"cmd\":\"events\"}\n");
    }
}
