//! Configuration: `load(path)` reads `kahi.toml` and its includes and returns a resolved
//! [`Config`], or every error found, each naming file, line, column and key path.
//!
//! Two phases, as ripgrep does with its flags: the TOML is parsed into a tree that keeps the
//! position of every value, then each table is walked against [`schema::KEYS`] and turned
//! into typed values. Nothing here starts, stops or binds anything; a config that fails to load
//! changes nothing.
//!
//! Where each job is: `load` (files, includes, the walk), `read` (one file, size-capped),
//! `schema` (every key), `values` (typed readers, places), `server`, `program` and `tables`
//! (the sections), `fcgi` (the socket of a FastCGI program), `validate` (checks across keys and tables), `check` (notes on what a
//! program names on this machine). The reread/update diff compares these types in
//! `supervisor`, which knows what is running.

pub mod check;
mod duplicate;
pub mod expand;
mod fcgi;
mod load;
mod program;
pub mod read;
mod remote;
pub mod schema;
mod server;
pub mod socket;
mod tables;
mod validate;
mod values;
mod webhooks;
pub mod words;

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::process::parse_signal;
use expand::Vars;
pub use fcgi::FcgiSocket;
#[cfg(test)]
use load::load_with;
use load::{At, Loader, Membership, ProgramTable, absolute, file_vars, nopos};
pub use load::{Format, load, load_as, load_text, reload};
use program::ProgramDraft;
use schema::{Read, Section};
use validate::{check_name, is_bcrypt};
use values::{describe, line_col, number};
pub use webhooks::Url;
#[cfg(test)]
pub use webhooks::parse_url;
pub use webhooks::{WebhookFormat, WebhookSpec};

/// A fully resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The main file, absolute.
    pub file: PathBuf,
    pub server: Server,
    pub logging: Logging,
    /// Every process, sorted by (priority, group, name): the start order.
    pub processes: Vec<ProcessSpec>,
    /// Every program (before numprocs expansion), sorted by name, for `avail`.
    pub programs: Vec<ProgramInfo>,
    /// What the checks of [`check`] found: errors for `--check`, warnings for the daemon.
    pub notes: Vec<check::Note>,
    /// `[webhooks.NAME]`, sorted by name.
    pub webhooks: Vec<WebhookSpec>,
    /// The format it was read as (`--format`): a reload reads the file the same way.
    pub format: Format,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub socket: PathBuf,
    pub socket_mode: u32,
    /// The control socket's group (a gid), when set.
    pub socket_group: Option<u32>,
    /// File descriptors Kahi must be able to open, or it does not start.
    pub minfds: u64,
    /// Programs a previous Kahi left running (it was killed): end them at start (true), or
    /// only report them.
    pub kill_orphans: bool,
    pub http: HttpConfig,
}

/// The defaults of `[server]`, as [`schema::KEYS`] documents them.
impl Default for Server {
    fn default() -> Self {
        Server {
            socket: default_socket(),
            socket_mode: 0o700,
            socket_group: None,
            // supervisord's.
            minfds: 1024,
            kill_orphans: true,
            http: HttpConfig::default(),
        }
    }
}

/// `[server.http]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Addresses of the HTTP listener (TCP, or a Unix socket's path); empty: none.
    pub listen: Vec<Listen>,
    /// Permission bits of a Unix socket listener.
    pub socket_mode: u32,
    /// Owner (uid, gid) given to a Unix socket listener, when set.
    pub socket_owner: Option<(u32, u32)>,
    /// On a Unix socket listener, a client running as root or as the daemon's user (by
    /// SO_PEERCRED) is admin without a password.
    pub peer_credentials: bool,
    /// Who may use the API; empty: anyone who can connect.
    pub users: Vec<HttpUser>,
    /// Certificate chain and private key (PEM files), for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Most connections at once, per listen address.
    pub max_connections: usize,
    /// /metrics needs the viewer role (else it is a probe: no authentication).
    pub metrics_auth: bool,
}

/// The defaults of `[server.http]`: no listener.
impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: Vec::new(),
            socket_mode: 0o700,
            socket_owner: None,
            peer_credentials: true,
            users: Vec::new(),
            tls: None,
            max_connections: 512,
            metrics_auth: false,
        }
    }
}

/// One `[[server.http.users]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUser {
    pub name: String,
    /// A bcrypt hash (`$2b$...`), as `kahi hash-password` prints it.
    pub password_hash: String,
    pub role: Role,
}

/// What a user may do: each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read: every GET.
    Viewer,
    /// Also start, stop, restart and signal processes and groups.
    Operator,
    /// Everything: configuration, shutdown.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Logging {
    pub level: log::LevelFilter,
    /// Where `AUTO` log files go.
    pub childlogdir: PathBuf,
    /// Copy every program's lines to Kahi's stdout.
    pub console: ConsoleMode,
    /// Format of the console lines and of Kahi's own log.
    pub format: crate::logs::console::Format,
    /// Lines longer than this are cut into marked pieces (console, masking).
    pub max_line_bytes: usize,
    /// A partial line held this long with no more output goes out as it is; zero holds it
    /// until its newline.
    pub partial_line_secs: Duration,
    /// Where programs with `stdout_syslog` or `stderr_syslog` send their lines.
    pub syslog: crate::logs::syslog::Target,
    /// The syslog facility code of those lines.
    pub syslog_facility: u8,
    /// How `kahi run` prefixes console lines (no key sets it): None, `GROUP:NAME | `.
    pub prefix: Option<crate::logs::console::Prefix>,
}

/// `[logging] console`: whether programs' lines go to Kahi's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleMode {
    /// On in the foreground (a container, a terminal, a service manager's journal), off with
    /// `--daemonize`, whose stdout is /dev/null.
    Auto,
    On,
    Off,
}

impl ConsoleMode {
    pub fn on(self, daemonized: bool) -> bool {
        match self {
            ConsoleMode::Auto => !daemonized,
            ConsoleMode::On => true,
            ConsoleMode::Off => false,
        }
    }
}

/// The defaults of `[logging]`, as [`schema::KEYS`] documents them.
impl Default for Logging {
    fn default() -> Self {
        Logging {
            level: log::LevelFilter::Info,
            childlogdir: std::env::temp_dir(),
            console: ConsoleMode::Auto,
            format: crate::logs::console::Format::Text,
            max_line_bytes: 64 << 10,
            partial_line_secs: Duration::from_secs(1),
            syslog: crate::logs::syslog::Target::Local("/dev/log".into()),
            syslog_facility: 3,
            prefix: None,
        }
    }
}

/// A program stream's log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec {
    pub path: PathBuf,
    /// Rotate past this size; 0 never rotates.
    pub maxbytes: u64,
    pub backups: u32,
}

impl LogSpec {
    /// Kahi's own stdout (1) or stderr (2), for `/dev/stdout` and `/dev/stderr`: the output goes
    /// there raw, through the daemon's buffer, whole lines at a time, and is never rotated.
    pub fn std_fd(&self) -> Option<i32> {
        match self.path.to_str() {
            Some("/dev/stdout") => Some(1),
            Some("/dev/stderr") => Some(2),
            _ => None,
        }
    }
}

/// Limits applied through a cgroup v2 of the program's own, where Kahi can make one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    /// memory.max, bytes.
    pub memory_max: Option<u64>,
    /// cpu.max, as a quota in microseconds per 100 ms period.
    pub cpu_quota_us: Option<u64>,
    /// pids.max.
    pub pids_max: Option<u64>,
}

impl CgroupLimits {
    pub fn is_empty(&self) -> bool {
        *self == CgroupLimits::default()
    }
}

/// The period of cpu.max, in microseconds (the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;

/// A resource limit a program may set (setrlimit(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Nofile,
    Nproc,
    Core,
    As,
    Cpu,
    Memlock,
    Stack,
}

impl Limit {
    pub const ALL: [Limit; 7] = [
        Limit::Nofile,
        Limit::Nproc,
        Limit::Core,
        Limit::As,
        Limit::Cpu,
        Limit::Memlock,
        Limit::Stack,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Limit::Nofile => "nofile",
            Limit::Nproc => "nproc",
            Limit::Core => "core",
            Limit::As => "as",
            Limit::Cpu => "cpu",
            Limit::Memlock => "memlock",
            Limit::Stack => "stack",
        }
    }

    /// Counted in bytes, so a size such as "1GB" is allowed.
    fn is_bytes(self) -> bool {
        matches!(self, Limit::Core | Limit::As | Limit::Memlock | Limit::Stack)
    }
}

/// What `avail` shows of a program.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramInfo {
    pub name: String,
    pub group: String,
    pub autostart: bool,
    pub priority: i64,
    pub numprocs: u32,
}

/// `[programs.NAME.healthcheck]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failures in a row that make the process unhealthy.
    pub retries: u32,
    /// After a start, failures do not count until the first pass, for this long at most.
    pub start_period: Duration,
    pub on_failure: HealthAction,
}

/// What a health check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Run a command; exit 0 is healthy.
    Exec(Vec<String>),
    /// Connect to HOST:PORT, looked up at load.
    Tcp(std::net::SocketAddr),
    /// GET a URL (http:// only) from its address, looked up at load, with `host` (HOST:PORT as
    /// written) in the Host header; healthy when the status is in `status` (inclusive) and the
    /// body holds `body`.
    Http {
        addr: std::net::SocketAddr,
        host: String,
        path: String,
        status: (u16, u16),
        body: Option<String>,
    },
}

/// What an unhealthy process gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthAction {
    Restart,
    Stop,
    None,
}

/// How a program runs: `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Runs until stopped: RUNNING once up `startsecs`.
    Simple,
    /// Runs to completion: STARTING while it runs; an expected exit completes it.
    Oneshot,
    /// Says when it is ready (sd_notify READY=1 on NOTIFY_SOCKET): STARTING until then.
    Notify,
    /// Started on demand: Kahi listens on its `listen` sockets and starts it at the first
    /// connection, handing them over (LISTEN_FDS); as `simple` once started.
    Socket,
}

/// A socket Kahi listens on for a `type = "socket"` program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
}

impl Listen {
    /// As `[server.http] listen` writes it: HOST:PORT, or unix:///PATH.
    pub fn http(&self) -> String {
        match self {
            Listen::Tcp(a) => a.to_string(),
            Listen::Unix(_) => self.to_string(),
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "tcp://{a}"),
            Listen::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// What a dependency must be before a program that depends on it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Every process of it RUNNING.
    Started,
    /// A oneshot: every process of it exited with an expected code.
    Completed,
    /// A notify program: every process of it said READY=1.
    Healthy,
}

impl Condition {
    pub fn name(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Completed => "completed",
            Condition::Healthy => "healthy",
        }
    }
}

/// What happens to a running program when a program it depends on fails or is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Stop,
    Restart,
    Ignore,
}

/// One dependency of a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// The program depended on.
    pub program: String,
    pub condition: Condition,
    pub on_failure: OnFailure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoRestart {
    Always,
    Never,
    Unexpected,
}

/// The user a process runs as, resolved at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (from the group database when the user is named; empty otherwise).
    pub groups: Vec<u32>,
}

/// Everything needed to run and supervise one process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    pub name: String,
    pub group: String,
    pub program: String,
    pub argv: Vec<String>,
    pub priority: i64,
    pub autostart: bool,
    pub startsecs: Duration,
    pub startretries: u32,
    /// The wait before the first retry after a failed start.
    pub backoff_initial: Duration,
    /// Exponential growth of the wait; None: linear, as supervisord.
    pub backoff_factor: Option<f64>,
    /// The longest wait.
    pub backoff_max: Option<Duration>,
    /// The restart guard: a run shorter than this is started again no sooner than this
    /// after its start.
    pub restart_min_interval: Duration,
    /// The restart guard: a run this long forgets the unexpected exits before it.
    pub backoff_reset: Duration,
    /// A wait before a start from a stopped state.
    pub start_delay: Duration,
    /// How long a start may wait for its dependencies; zero: for ever.
    pub start_timeout: Duration,
    /// How long RUNNING before what depends on it may start.
    pub ready_delay: Duration,
    /// A notify program must send WATCHDOG=1 at least this often; zero: no watchdog.
    pub watchdog_sec: Duration,
    pub healthcheck: Option<HealthCheck>,
    /// `type`.
    pub kind: Kind,
    /// A completed oneshot counts as RUNNING (without a pid) until stopped.
    pub remain_after_exit: bool,
    /// Programs to wait for (depends_on, requires).
    pub deps: Vec<Dep>,
    /// Programs to start after, when they are being started (after, and others' before).
    pub after: Vec<String>,
    pub autorestart: AutoRestart,
    pub exitcodes: Vec<i32>,
    pub stopsignal: Signal,
    pub stopwaitsecs: Duration,
    pub stopasgroup: bool,
    pub killasgroup: bool,
    pub user: Option<RunAs>,
    pub directory: Option<PathBuf>,
    pub umask: Option<u32>,
    pub environment: Vec<(String, String)>,
    pub clean_environment: bool,
    pub redirect_stderr: bool,
    pub stdout_capture_maxbytes: usize,
    pub stderr_capture_maxbytes: usize,
    /// Publish the output as PROCESS_LOG_STDOUT / _STDERR events.
    pub stdout_events_enabled: bool,
    pub stderr_events_enabled: bool,
    /// supervisord's capture mode: 0 is off; else the most bytes one capture keeps.
    pub stdout_capturemode_maxbytes: usize,
    pub stderr_capturemode_maxbytes: usize,
    pub stdout_log: Option<LogSpec>,
    pub stderr_log: Option<LogSpec>,
    /// Values to mask in the output (see `logs::mask`), longest first.
    pub secrets: Vec<Vec<u8>>,
    /// Remove ANSI escape sequences from the output.
    pub strip_ansi: bool,
    /// Give the process a pipe on stdin that the API can write to.
    pub stdin_pipe: bool,
    /// When it exits on its own, Kahi stops everything and exits with its status.
    pub critical: bool,
    /// The sockets of a `type = "socket"` program, passed to it as fds 3, 4, ...
    pub listen: Vec<Listen>,
    /// A socket program started once per connection (inetd style) instead of once.
    pub accept: bool,
    /// With `accept`: most instances at once; further connections wait in the backlog.
    pub max_instances: u32,
    /// An instance started for one connection of this socket program (not from the file).
    pub instance_of: Option<String>,
    /// Resource limits set in the process before its exec (soft and hard alike).
    pub limits: Vec<(Limit, Option<u64>)>,
    /// Limits of its cgroup (memory_max, cpu_max, pids_max in `limits`).
    pub cgroup: CgroupLimits,
    /// Send the stdout lines to syslog.
    pub stdout_syslog: bool,
    /// Send the stderr lines to syslog.
    pub stderr_syslog: bool,
    /// An event listener (`[eventlisteners.NAME]`): its stdin and stdout speak supervisord's
    /// listener protocol.
    pub listener: Option<ListenerSpec>,
    /// A FastCGI program's socket (`[fcgi_programs.NAME]`): each of its processes gets it as
    /// stdin.
    pub fcgi: Option<FcgiSocket>,
}

/// What `[eventlisteners.NAME]` adds to a program. Its `Default` holds the keys' defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The event types it takes (an abstract one takes every type under it).
    pub events: Vec<crate::events::EventType>,
    /// Events its pool holds for it at most; past it, the oldest is dropped.
    pub buffer_size: usize,
}

impl Default for ListenerSpec {
    fn default() -> Self {
        // supervisord's buffer_size.
        ListenerSpec { events: Vec::new(), buffer_size: 10 }
    }
}

/// The defaults of every program key, supervisord's where it has the key, as [`schema::KEYS`]
/// documents them. The name, group, program and command are the table's own.
impl Default for ProcessSpec {
    fn default() -> Self {
        ProcessSpec {
            name: String::new(),
            group: String::new(),
            program: String::new(),
            argv: Vec::new(),
            priority: 999,
            autostart: true,
            startsecs: Duration::from_secs(1),
            startretries: 3,
            backoff_initial: Duration::from_secs(1),
            backoff_factor: None,
            backoff_max: None,
            restart_min_interval: Duration::from_secs(1),
            backoff_reset: Duration::from_secs(60),
            start_delay: Duration::ZERO,
            start_timeout: Duration::from_secs(90),
            ready_delay: Duration::ZERO,
            watchdog_sec: Duration::ZERO,
            healthcheck: None,
            kind: Kind::Simple,
            remain_after_exit: false,
            deps: Vec::new(),
            after: Vec::new(),
            autorestart: AutoRestart::Unexpected,
            exitcodes: vec![0],
            stopsignal: Signal::SIGTERM,
            stopwaitsecs: Duration::from_secs(10),
            stopasgroup: false,
            killasgroup: false,
            user: None,
            directory: None,
            umask: None,
            environment: Vec::new(),
            clean_environment: false,
            redirect_stderr: false,
            stdout_capture_maxbytes: 1 << 20,
            stderr_capture_maxbytes: 1 << 20,
            stdout_events_enabled: false,
            stderr_events_enabled: false,
            stdout_capturemode_maxbytes: 0,
            stderr_capturemode_maxbytes: 0,
            stdout_log: None,
            stderr_log: None,
            secrets: Vec::new(),
            strip_ansi: false,
            stdin_pipe: false,
            critical: false,
            listen: Vec::new(),
            accept: false,
            max_instances: 64,
            instance_of: None,
            limits: Vec::new(),
            cgroup: CgroupLimits::default(),
            stdout_syslog: false,
            stderr_syslog: false,
            listener: None,
            fcgi: None,
        }
    }
}

impl ProcessSpec {
    /// supervisord's namespec: `group:name`, or `name` when the two are equal.
    pub fn namespec(&self) -> String {
        if self.group == self.name {
            self.name.clone()
        } else {
            format!("{}:{}", self.group, self.name)
        }
    }
}

/// One error, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error has no position (an unreadable file).
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// `1024`, `"64KB"`, `"1MB"`, `"2GB"` (case-insensitive, 1024-based).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let upper = s.to_ascii_uppercase();
    let (digits, mult) = [("KB", 1u64 << 10), ("MB", 1 << 20), ("GB", 1 << 30)]
        .iter()
        .find_map(|(suffix, mult)| {
            upper.strip_suffix(suffix).map(|d| (d.trim().to_string(), *mult))
        })
        .unwrap_or((upper.clone(), 1));
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

/// The control socket's default place: `/run/kahi.sock` for root, else the user's runtime dir.
pub fn default_socket() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/kahi.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("kahi.sock"),
        _ => PathBuf::from(format!("/tmp/kahi-{}.sock", nix::unistd::geteuid())),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod doc_tests;

#[cfg(test)]
mod key_tests;
