//! Configuration: `load(path)` reads `kahi.toml` and its includes and returns a resolved
//! [`Config`], or every error found, each naming file, line, column and key path.
//!
//! Two phases, as ripgrep does with its flags: the TOML is parsed into a tree that keeps the
//! position of every value, then each table is walked against [`schema::KEYS`] and turned
//! into typed values. Nothing here starts, stops or binds anything; a config that fails to load
//! changes nothing.

pub mod check;
mod duplicate;
pub mod expand;
pub mod read;
pub mod schema;
pub mod socket;
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
use schema::Section;

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

/// `[server.http]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpConfig {
    /// Addresses of the HTTP listener; empty: none.
    pub listen: Vec<std::net::SocketAddr>,
    /// Who may use the API; empty: anyone who can connect.
    pub users: Vec<HttpUser>,
    /// Certificate chain and private key (PEM files), for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Most connections at once, per listen address.
    pub max_connections: usize,
    /// /metrics needs the viewer role (else it is a probe: no authentication).
    pub metrics_auth: bool,
}

/// `[server] minfds` when not given: supervisord's default.
pub const MINFDS: u64 = 1024;

/// `max_connections` when not given.
pub const MAX_CONNECTIONS: usize = 512;

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

/// A cycle in "waits for" edges, as the list of programs around it, the first repeated at
/// the end; None when there is none. Deterministic: programs are visited in name order.
fn find_cycle<'a>(
    waits: &std::collections::BTreeMap<&'a str, Vec<&'a str>>,
) -> Option<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit<'a>(
        n: &'a str,
        waits: &std::collections::BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut HashMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match marks.get(n).copied().unwrap_or(Mark::New) {
            Mark::Done => return None,
            Mark::OnPath => {
                let start = path.iter().position(|p| *p == n).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(n);
                return Some(cycle);
            }
            Mark::New => {}
        }
        marks.insert(n, Mark::OnPath);
        path.push(n);
        for next in waits.get(n).map(Vec::as_slice).unwrap_or_default() {
            if let Some(c) = visit(next, waits, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let mut marks = HashMap::new();
    for n in waits.keys() {
        let mut path = Vec::new();
        if let Some(c) = visit(n, waits, &mut marks, &mut path) {
            return Some(c);
        }
    }
    None
}

/// `$2a$`, `$2b$` or `$2y$`, a two-digit cost, `$`, then 53 characters of bcrypt's base64.
fn is_bcrypt(h: &str) -> bool {
    let b = h.as_bytes();
    b.len() == 60
        && (h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$"))
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
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
    /// After a start, failures do not count for this long.
    pub start_period: Duration,
    pub on_failure: HealthAction,
}

/// What a health check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Run a command; exit 0 is healthy.
    Exec(Vec<String>),
    /// Connect to HOST:PORT.
    Tcp(String),
    /// GET a URL (http:// only); healthy when the status is in `status` (inclusive) and the
    /// body holds `body`.
    Http { addr: String, host: String, path: String, status: (u16, u16), body: Option<String> },
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

/// Loads `path` and everything it includes, expanding `${VAR}` from the daemon's environment.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    load_with(path, &|name| std::env::var(name).ok())
}

/// [`load`] with the environment given, for tests.
pub fn load_with(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let file = absolute(path);
    let mut errors = Vec::new();
    let mut files = Vec::new();
    match read::text(&file) {
        Ok(src) => files.push((file.clone(), src)),
        Err(e) => return Err(vec![nopos(&file, "", format!("unable to read: {e}"))]),
    }
    // Which files make up the configuration: the main one and what its `include` matches. The
    // patterns are read here only to know what to read; the walk below checks them properly.
    let here = file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    let patterns: Vec<(String, usize)> = match DeTable::parse(&files[0].1) {
        Ok(t) => t
            .get_ref()
            .get("include")
            .and_then(|v| v.get_ref().as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|i| i.get_ref().as_str().map(|s| (s.to_string(), i.span().start)))
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let vars = file_vars(&file);
    let mut read: Vec<PathBuf> =
        vec![std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone())];
    for (raw, at) in patterns {
        let pattern = match expand::expand(&raw, &vars, env) {
            Ok(p) => p,
            Err(e) => {
                let (line, column) = line_col(&files[0].1, at);
                errors.push(ConfigError {
                    file: file.clone(),
                    line,
                    column,
                    key: "include".into(),
                    message: e,
                });
                continue;
            }
        };
        let full = here.join(&pattern);
        let matched = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => {
                let mut m: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                m.sort();
                m
            }
            Err(e) => {
                errors.push(nopos(&file, "include", format!("bad pattern {pattern:?}: {}", e.msg)));
                continue;
            }
        };
        if matched.is_empty() {
            log::warn!("no file matches include pattern {pattern:?} of {}", file.display());
        }
        for path in matched {
            // A file matched twice (or the main file matching its own pattern) is read once.
            let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if read.contains(&canonical) {
                continue;
            }
            read.push(canonical);
            match read::text(&path) {
                Ok(src) => files.push((path, src)),
                Err(e) => {
                    errors.push(nopos(&path, "", format!("unable to read included file: {e}")))
                }
            }
        }
    }
    resolve(&files, errors, env)
}

/// The configuration in the text `src` of `file`, checked as [`load_with`] checks it, but for
/// its includes: the patterns are checked, no file is read for them. For the fuzz targets,
/// which must not depend on files; `file` is notional (it names errors and sets `%(here)s`).
pub fn load_text(
    file: &Path,
    src: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    resolve(&[(file.to_path_buf(), src.to_string())], Vec::new(), env)
}

/// Parses and checks `files` (the main file first, then its includes), after the `errors`
/// met reading them.
fn resolve(
    files: &[(PathBuf, String)],
    errors: Vec<ConfigError>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let mut loader = Loader {
        env,
        errors,
        notes: Vec::new(),
        docs: Vec::new(),
        childlogdir: std::env::temp_dir(),
        refs: Vec::new(),
        refs_checked: Vec::new(),
    };
    for (path, src) in files {
        loader.parse(path, src);
    }
    loader.run()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn nopos(file: &Path, key: &str, message: String) -> ConfigError {
    ConfigError { file: file.to_path_buf(), line: 0, column: 0, key: key.to_string(), message }
}

/// A file being read: its text (for positions) and its parsed tree.
struct Doc<'s> {
    file: &'s Path,
    src: &'s str,
    table: DeTable<'s>,
}

/// Where a value is: which document, which span, which key path.
#[derive(Clone)]
struct At {
    doc: usize,
    span: Range<usize>,
    key: String,
}

struct Loader<'s, 'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    /// `[logging] childlogdir`, for AUTO log files.
    childlogdir: PathBuf,
    errors: Vec<ConfigError>,
    /// Findings of [`check`], which do not make the configuration invalid.
    notes: Vec<check::Note>,
    docs: Vec<Doc<'s>>,
    /// Every program named by depends_on, requires, after or before: (from, key, place, to).
    refs: Vec<(String, &'static str, At, String)>,
    /// The references that named a known program: (from, to, place), to point at errors.
    refs_checked: Vec<(String, String, At)>,
}

/// Program name -> (its group, the group's priority).
type Membership = HashMap<String, (String, Option<i64>)>;

/// A program table, not yet typed.
struct ProgramTable<'s> {
    name: String,
    doc: usize,
    span: Range<usize>,
    table: DeTable<'s>,
}

impl<'s> Loader<'s, '_> {
    fn run(&mut self) -> Result<Config, Vec<ConfigError>> {
        // A syntax error in any file stops here: positions past it mean nothing.
        if !self.errors.is_empty() || self.docs.is_empty() {
            return Err(std::mem::take(&mut self.errors));
        }
        let file = self.docs[0].file.to_path_buf();
        let mut server = None;
        let mut logging = None;
        let root = std::mem::take(&mut self.docs[0].table);
        for (k, v) in root.iter() {
            let at = self.at(0, v, k.get_ref());
            match k.get_ref().as_ref() {
                "include" => {
                    self.strings(&at, v);
                }
                "server" => server = self.table(&at, v).cloned().map(|t| (at.clone(), t)),
                "logging" => logging = self.table(&at, v).cloned().map(|t| (at.clone(), t)),
                "programs" | "groups" => {}
                other => self.unknown(&at, k.span(), Section::Root, other),
            }
        }
        self.docs[0].table = root;
        for doc in 1..self.docs.len() {
            self.check_included_root(doc);
        }

        let server = self.server(server);
        let logging = self.logging(logging);
        self.childlogdir = logging.childlogdir.clone();
        let (programs, groups) = self.collect_programs_and_groups();
        let (mut processes, infos) = self.programs(programs, &groups);
        self.check_dependencies(&mut processes);

        if !self.errors.is_empty() {
            // In reading order: the main file first, then each included file, line by line.
            let order: Vec<PathBuf> = self.docs.iter().map(|d| d.file.to_path_buf()).collect();
            let rank = |e: &ConfigError| {
                (order.iter().position(|f| *f == e.file).unwrap_or(usize::MAX), e.line, e.column)
            };
            self.errors.sort_by_key(rank);
            return Err(std::mem::take(&mut self.errors));
        }
        if processes.is_empty() {
            let message =
                "no program is configured ([programs.NAME] tables): the daemon would run nothing";
            self.notes.push(check::Note {
                severity: check::Severity::Warning,
                error: nopos(&file, "programs", message.into()),
            });
        }
        let notes = std::mem::take(&mut self.notes);
        Ok(Config { file, server, logging, processes, programs: infos, notes })
    }

    /// Parses one file; a syntax error is recorded.
    fn parse(&mut self, file: &'s Path, src: &'s str) {
        match DeTable::parse(src) {
            Ok(table) => self.docs.push(Doc { file, src, table: table.into_inner() }),
            Err(e) => {
                let (line, column) = e.span().map(|s| line_col(src, s.start)).unwrap_or((0, 0));
                let message = e.message().trim();
                // The parser names neither the key nor its first place.
                let duplicate = e
                    .span()
                    .filter(|_| message == "duplicate key")
                    .and_then(|s| duplicate::duplicate(src, s.start));
                let (key, message) = duplicate
                    .unwrap_or_else(|| (String::new(), format!("invalid TOML: {message}")));
                self.errors.push(ConfigError {
                    file: file.to_path_buf(),
                    line,
                    column,
                    key,
                    message,
                });
            }
        }
    }

    fn check_included_root(&mut self, doc: usize) {
        let root = std::mem::take(&mut self.docs[doc].table);
        for (k, v) in root.iter() {
            let at = self.at(doc, v, k.get_ref());
            match k.get_ref().as_ref() {
                "programs" | "groups" => {}
                "include" | "server" | "logging" => {
                    self.error(&at, "only the main file may set this; included files hold [programs.*] and [groups.*] tables")
                }
                other => self.unknown(&at, k.span(), Section::Root, other),
            }
        }
        self.docs[doc].table = root;
    }

    fn server(&mut self, table: Option<(At, DeTable<'s>)>) -> Server {
        let mut server = Server {
            socket: default_socket(),
            socket_mode: 0o700,
            socket_group: None,
            minfds: MINFDS,
            kill_orphans: true,
            http: HttpConfig::default(),
        };
        let Some((at, table)) = table else { return server };
        for (k, v) in table.iter() {
            let at = self.child(&at, v, k.get_ref());
            match k.get_ref().as_ref() {
                "socket" => {
                    if let Some(s) = self.expanded_string(&at, v, &file_vars(self.docs[0].file)) {
                        server.socket = PathBuf::from(s);
                    }
                }
                "socket_mode" => {
                    if let Some(m) = self.octal(&at, v) {
                        server.socket_mode = m;
                    }
                }
                "socket_group" => server.socket_group = self.group_id(&at, v),
                "orphans" => match self.string(&at, v).as_deref() {
                    Some("kill") => server.kill_orphans = true,
                    Some("keep") => server.kill_orphans = false,
                    Some(other) => {
                        self.error(&at, format!("expected \"kill\" or \"keep\", found {other:?}"))
                    }
                    None => {}
                },
                "minfds" => {
                    server.minfds = self.integer(&at, v, 0, 1 << 30).map_or(MINFDS, |n| n as u64)
                }
                "http" => {
                    if let Some(t) = self.table(&at, v).cloned() {
                        server.http = self.http(&at, &t);
                    }
                }
                other => self.unknown(&at, k.span(), Section::Server, other),
            }
        }
        server
    }

    /// `[server.http]`: the listener's addresses, users and TLS files. A listener reachable
    /// from other hosts is refused without users unless `insecure = true` says so.
    fn http(&mut self, at: &At, table: &DeTable<'s>) -> HttpConfig {
        let mut addrs: Vec<(At, std::net::SocketAddr)> = Vec::new();
        let mut insecure = false;
        let mut http = HttpConfig { max_connections: MAX_CONNECTIONS, ..Default::default() };
        let (mut cert, mut key) = (None, None);
        let here = self.docs[at.doc].file.parent().unwrap_or(Path::new("/")).to_path_buf();
        for (k, v) in table.iter() {
            let at = self.child(at, v, k.get_ref());
            match k.get_ref().as_ref() {
                "listen" => {
                    let list = match v.get_ref() {
                        DeValue::String(_) => self.string(&at, v).map(|s| vec![s]),
                        _ => self.strings(&at, v),
                    };
                    for s in list.unwrap_or_default() {
                        use std::net::ToSocketAddrs;
                        match s.to_socket_addrs().map(|a| a.collect::<Vec<_>>()) {
                            Ok(a) if !a.is_empty() => {
                                addrs.extend(a.into_iter().map(|a| (at.clone(), a)))
                            }
                            Ok(_) => self.error(&at, format!("{s:?} resolves to no address")),
                            Err(e) => self.error(
                                &at,
                                format!("{s:?} is not a HOST:PORT address such as \"127.0.0.1:9876\": {e}"),
                            ),
                        }
                    }
                }
                "insecure" => insecure = self.boolean(&at, v).unwrap_or(false),
                "metrics_auth" => http.metrics_auth = self.boolean(&at, v).unwrap_or(false),
                "max_connections" => {
                    http.max_connections =
                        self.integer(&at, v, 1, 1_000_000).map_or(MAX_CONNECTIONS, |n| n as usize)
                }
                "users" => http.users = self.users(&at, v),
                "tls_cert" | "tls_key" => {
                    let Some(s) = self.string(&at, v) else { continue };
                    let path = here.join(s);
                    let is_cert = k.get_ref().as_ref() == "tls_cert";
                    // What the TLS library takes; checked here, so a wrong file is an error
                    // with its place rather than a failure at start.
                    let (markers, what): (&[&str], _) = if is_cert {
                        (&["-----BEGIN CERTIFICATE-----"], "a PEM certificate")
                    } else {
                        (
                            &["-----BEGIN PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----"],
                            "an unencrypted PKCS#8 or RSA private key in PEM (convert others with `openssl pkcs8 -topk8 -nocrypt`)",
                        )
                    };
                    match read::text(&path) {
                        Ok(text) if markers.iter().any(|m| text.contains(m)) => {}
                        Ok(_) => self.error(&at, format!("{} holds no {what}", path.display())),
                        Err(e) => {
                            self.error(&at, format!("unable to read {}: {e}", path.display()))
                        }
                    }
                    if is_cert {
                        cert = Some((at, path));
                    } else {
                        key = Some((at, path));
                    }
                }
                other => self.unknown(&at, k.span(), Section::Http, other),
            }
        }
        match (cert, key) {
            (Some((_, c)), Some((_, k))) => http.tls = Some((c, k)),
            (Some((at, _)), None) => self.error(&at, "needs tls_key as well"),
            (None, Some((at, _))) => self.error(&at, "needs tls_cert as well"),
            (None, None) => {}
        }
        // With users given but wrong, those errors are the ones to fix.
        if !insecure && http.users.is_empty() && !table.contains_key("users") {
            for (at, a) in &addrs {
                if !a.ip().is_loopback() {
                    self.error(
                        at,
                        format!(
                            "{a} is reachable from other hosts and the API has no users; \
                             add [[server.http.users]], listen on 127.0.0.1 or ::1, or set insecure = true"
                        ),
                    );
                }
            }
        }
        http.listen = addrs.into_iter().map(|(_, a)| a).collect();
        http
    }

    /// `[[server.http.users]]`: names unique, bcrypt hashes, known roles.
    fn users(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Vec<HttpUser> {
        let Some(items) = self.array(at, v) else { return Vec::new() };
        let mut users: Vec<HttpUser> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = self.child(at, item, &i.to_string());
            let Some(t) = self.table(&at, item) else { continue };
            let (mut name, mut hash, mut role) = (None, None, None);
            for (k, v) in t.iter() {
                let at = self.child(&at, v, k.get_ref());
                match k.get_ref().as_ref() {
                    "name" => name = self.string(&at, v).filter(|n| !n.is_empty() && !n.contains(':')).or_else(|| {
                        self.error(&at, "expected a non-empty name without ':'");
                        None
                    }),
                    "password_hash" => {
                        hash = self.string(&at, v).filter(|h| is_bcrypt(h)).or_else(|| {
                            self.error(&at, "expected a bcrypt hash ($2b$12$ followed by 53 characters), as `kahi hash-password` prints");
                            None
                        })
                    }
                    "role" => {
                        role = match self.string(&at, v).as_deref() {
                            Some("viewer") => Some(Role::Viewer),
                            Some("operator") => Some(Role::Operator),
                            Some("admin") => Some(Role::Admin),
                            Some(other) => {
                                self.error(&at, format!("expected \"viewer\", \"operator\" or \"admin\", found {other:?}"));
                                None
                            }
                            None => None,
                        }
                    }
                    other => self.unknown(&at, k.span(), Section::HttpUser, other),
                }
            }
            let missing: Vec<&str> = [
                ("name", name.is_none()),
                ("password_hash", hash.is_none()),
                ("role", role.is_none()),
            ]
            .iter()
            .filter(|(k, none)| *none && !t.contains_key(*k))
            .map(|(k, _)| *k)
            .collect();
            if !missing.is_empty() {
                self.error(&at, format!("missing {}", missing.join(", ")));
            }
            if let (Some(name), Some(password_hash), Some(role)) = (name, hash, role) {
                if users.iter().any(|u| u.name == name) {
                    self.error(&at, format!("user {name:?} is defined twice"));
                    continue;
                }
                users.push(HttpUser { name, password_hash, role });
            }
        }
        users
    }

    /// `depends_on = ["db", { name = "migrate", condition = "completed" }]`.
    fn depends_on(&mut self, at: &At, v: &Spanned<DeValue<'s>>, from: &str) -> Vec<Dep> {
        let Some(items) = self.array(at, v) else { return Vec::new() };
        let mut deps: Vec<Dep> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = self.child(at, item, &i.to_string());
            let (name, condition) = match item.get_ref() {
                DeValue::String(s) => (s.to_string(), Condition::Started),
                DeValue::Table(t) => {
                    let mut name = None;
                    let mut condition = Condition::Started;
                    for (k, v) in t.iter() {
                        let at = self.child(&at, v, k.get_ref());
                        match k.get_ref().as_ref() {
                            "name" => name = self.string(&at, v),
                            "condition" => match self.string(&at, v).as_deref() {
                                Some("started") => condition = Condition::Started,
                                Some("completed") => condition = Condition::Completed,
                                Some("healthy") => condition = Condition::Healthy,
                                Some(other) => self.error(
                                    &at,
                                    format!("expected \"started\", \"healthy\" or \"completed\", found {other:?}"),
                                ),
                                None => {}
                            },
                            other => self.error(
                                &at,
                                format!("unknown key {other:?}; a dependency has name and condition"),
                            ),
                        }
                    }
                    let Some(name) = name else {
                        if !t.contains_key("name") {
                            self.error(&at, "missing required key \"name\"");
                        }
                        continue;
                    };
                    (name, condition)
                }
                other => {
                    self.error(
                        &at,
                        format!(
                            "expected a program name or {{ name = ..., condition = ... }}, found {}",
                            describe(other)
                        ),
                    );
                    continue;
                }
            };
            self.refs.push((from.to_string(), "depends_on", at.clone(), name.clone()));
            if deps.iter().any(|d| d.program == name) {
                self.error(&at, format!("{name:?} is named twice"));
                continue;
            }
            deps.push(Dep { program: name, condition, on_failure: OnFailure::Ignore });
        }
        deps
    }

    /// `requires`, `after`, `before`: program names, remembered for checking once every
    /// program is known.
    fn program_refs(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
        from: &str,
        key: &'static str,
    ) -> Vec<String> {
        let names = self.strings(at, v).unwrap_or_default();
        for n in &names {
            self.refs.push((from.to_string(), key, at.clone(), n.clone()));
        }
        names
    }

    /// Every reference names a program; `before` becomes the other program's `after`; and
    /// the waits form no cycle (an error names the whole cycle).
    fn check_dependencies(&mut self, processes: &mut [ProcessSpec]) {
        let known: Vec<String> = {
            let mut v: Vec<String> = processes.iter().map(|p| p.program.clone()).collect();
            v.dedup();
            v
        };
        for (from, key, at, to) in std::mem::take(&mut self.refs) {
            if !known.contains(&to) {
                let hint = closest(&to, known.iter().map(String::as_str))
                    .map(|c| format!("; did you mean {c:?}?"))
                    .unwrap_or_default();
                self.error(&at, format!("unknown program {to:?}{hint}"));
                continue;
            }
            if to == from {
                self.error(&at, format!("{from:?} cannot wait for itself"));
                continue;
            }
            if key == "before" {
                for p in processes.iter_mut().filter(|p| p.program == to) {
                    if !p.after.contains(&from) {
                        p.after.push(from.clone());
                    }
                }
            }
            self.refs_checked.push((from, to, at));
        }
        // "healthy" needs something that says so: a health check, or READY=1 of a notify
        // program. Once per program, at the dependency's place.
        let mut unhealthy: Vec<(String, String)> = Vec::new();
        for p in processes.iter() {
            for d in p.deps.iter().filter(|d| d.condition == Condition::Healthy) {
                let says_healthy = processes
                    .iter()
                    .filter(|q| q.program == d.program)
                    .all(|q| q.kind == Kind::Notify || q.healthcheck.is_some());
                let pair = (p.program.clone(), d.program.clone());
                if !says_healthy && known.contains(&d.program) && !unhealthy.contains(&pair) {
                    unhealthy.push(pair);
                }
            }
        }
        for (from, to) in unhealthy {
            let text = format!(
                "condition \"healthy\" needs {to:?} to have a [programs.{to}.healthcheck] or type = \"notify\"; use \"started\""
            );
            let place = self.refs_checked.iter().find(|(f, t, _)| *f == from && *t == to);
            match place.map(|(_, _, at)| at.clone()) {
                Some(at) => self.error(&at, text),
                None => self.err_nopos_main(format!("programs.{from}.depends_on: {text}")),
            }
        }
        // program -> the programs it waits for.
        let mut waits: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for p in processes.iter() {
            let e = waits.entry(p.program.as_str()).or_default();
            for d in &p.deps {
                if !e.contains(&d.program.as_str()) {
                    e.push(d.program.as_str());
                }
            }
            for a in &p.after {
                if !e.contains(&a.as_str()) {
                    e.push(a.as_str());
                }
            }
        }
        if let Some(cycle) = find_cycle(&waits) {
            let first = cycle[0].to_string();
            let place = self
                .refs_checked
                .iter()
                .find(|(from, _, _)| *from == first)
                .map(|(_, _, at)| at.clone());
            let text = format!("dependency cycle: {}", cycle.join(" -> "));
            match place {
                Some(at) => self.error(&at, text),
                None => self.err_nopos_main(text),
            }
        }
        self.refs_checked.clear();
    }

    /// `[programs.NAME.healthcheck]`: exactly one of exec, tcp, http, and how often and how
    /// strictly to run it.
    fn healthcheck(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<HealthCheck> {
        let t = self.table(at, v)?.clone();
        let mut probes: Vec<Probe> = Vec::new();
        let mut check = HealthCheck {
            probe: Probe::Tcp(String::new()),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            retries: 3,
            start_period: Duration::ZERO,
            on_failure: HealthAction::Restart,
        };
        let mut status = (200u16, 399u16);
        let mut body = None;
        let mut http_at = None;
        for (k, v) in t.iter() {
            let at = self.child(at, v, k.get_ref());
            match k.get_ref().as_ref() {
                "exec" => {
                    if let Some(argv) = self.command(&at, v, &Vars::default()) {
                        probes.push(Probe::Exec(argv));
                    }
                }
                "tcp" => {
                    if let Some(a) = self.string(&at, v) {
                        match a.rsplit_once(':') {
                            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {
                                probes.push(Probe::Tcp(a))
                            }
                            _ => self.error(&at, format!("expected HOST:PORT, found {a:?}")),
                        }
                    }
                }
                "http" => {
                    let Some(url) = self.string(&at, v) else { continue };
                    let Some(rest) = url.strip_prefix("http://") else {
                        self.error(&at, format!("expected an http:// URL, found {url:?}"));
                        continue;
                    };
                    let (hostport, path) = match rest.find('/') {
                        Some(i) => (&rest[..i], &rest[i..]),
                        None => (rest, "/"),
                    };
                    let addr = if hostport.contains(':') && !hostport.ends_with(']') {
                        hostport.to_string()
                    } else {
                        format!("{hostport}:80")
                    };
                    http_at = Some(at.clone());
                    probes.push(Probe::Http {
                        addr,
                        host: hostport.to_string(),
                        path: path.to_string(),
                        status: (0, 0),
                        body: None,
                    });
                }
                "interval" => check.interval = self.seconds(&at, v).unwrap_or(check.interval),
                "timeout" => check.timeout = self.seconds(&at, v).unwrap_or(check.timeout),
                "start_period" => check.start_period = self.seconds(&at, v).unwrap_or_default(),
                "retries" => {
                    check.retries = self.integer(&at, v, 1, 1_000_000).map_or(3, |n| n as u32)
                }
                "on_failure" => match self.string(&at, v).as_deref() {
                    Some("restart") => check.on_failure = HealthAction::Restart,
                    Some("stop") => check.on_failure = HealthAction::Stop,
                    Some("none") => check.on_failure = HealthAction::None,
                    Some(other) => self.error(
                        &at,
                        format!("expected \"restart\", \"stop\" or \"none\", found {other:?}"),
                    ),
                    None => {}
                },
                "expect_status" => {
                    let range = match v.get_ref() {
                        DeValue::Integer(_) => {
                            self.integer(&at, v, 100, 599).map(|n| (n as u16, n as u16))
                        }
                        DeValue::String(s) => s.split_once('-').and_then(|(a, b)| {
                            Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
                        }),
                        _ => None,
                    };
                    match range {
                        Some((a, b)) if (100..=599).contains(&a) && a <= b && b <= 599 => {
                            status = (a, b)
                        }
                        _ => self.error(
                            &at,
                            format!("expected a status such as 200 or a range such as \"200-399\", found {}", describe(v.get_ref())),
                        ),
                    }
                }
                "expect_body" => body = self.string(&at, v),
                other => self.unknown(&at, k.span(), Section::Healthcheck, other),
            }
        }
        if check.interval.is_zero() || check.timeout.is_zero() {
            self.error(at, "interval and timeout must be more than 0");
            return None;
        }
        if probes.len() != 1 {
            self.error(
                at,
                format!("needs exactly one of exec, tcp and http, found {}", probes.len()),
            );
            return None;
        }
        check.probe = probes.remove(0);
        match &mut check.probe {
            Probe::Http { status: s, body: b, .. } => {
                *s = status;
                *b = body;
            }
            _ if body.is_some() || status != (200, 399) => {
                let place = http_at.unwrap_or_else(|| at.clone());
                self.error(&place, "expect_status and expect_body apply to http checks only");
            }
            _ => {}
        }
        Some(check)
    }

    /// `[programs.NAME.limits]`: resource name -> a number, a size, or "unlimited".
    fn limits(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
    ) -> (Vec<(Limit, Option<u64>)>, CgroupLimits) {
        let mut cgroup = CgroupLimits::default();
        let Some(t) = self.table(at, v).cloned() else { return (Vec::new(), cgroup) };
        let mut out = Vec::new();
        for (k, v) in t.iter() {
            let at = self.child(at, v, k.get_ref());
            // "max" is the cgroup's own default: no limit.
            let max = matches!(v.get_ref(), DeValue::String(s) if s.as_ref() == "max");
            match k.get_ref().as_ref() {
                "memory_max" => {
                    cgroup.memory_max =
                        if max { None } else { self.size(&at, v).map(|n| n as u64) };
                    continue;
                }
                "pids_max" => {
                    cgroup.pids_max = if max {
                        None
                    } else {
                        self.integer(&at, v, 1, i64::MAX).map(|n| n as u64)
                    };
                    continue;
                }
                "cpu_max" => {
                    cgroup.cpu_quota_us = if max { None } else { self.cpus(&at, v) };
                    continue;
                }
                _ => {}
            }
            let Some(limit) = Limit::ALL.iter().copied().find(|l| l.name() == k.get_ref().as_ref())
            else {
                self.unknown(&at, k.span(), Section::Limits, k.get_ref().as_ref());
                continue;
            };
            let value = match v.get_ref() {
                DeValue::String(s) if s.eq_ignore_ascii_case("unlimited") => Some(None),
                DeValue::String(s) if limit.is_bytes() => parse_size(s).map(Some),
                DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix()).ok().map(Some),
                _ => None,
            };
            match value {
                Some(n) => out.push((limit, n)),
                None => self.error(
                    &at,
                    format!(
                        "expected an integer >= 0{} or \"unlimited\", found {}",
                        if limit.is_bytes() { ", a size such as \"1GB\"" } else { "" },
                        describe(v.get_ref())
                    ),
                ),
            }
        }
        (out, cgroup)
    }

    /// `cpu_max`: CPUs as a number (0.5 is half of one CPU, 2 is two) or a percentage string
    /// ("50%", as systemd's CPUQuota); the quota per 100 ms period, in microseconds.
    fn cpus(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<u64> {
        let cpus = match v.get_ref() {
            DeValue::Integer(i) => i.as_str().parse::<f64>().ok(),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::String(s) => {
                s.strip_suffix('%').and_then(|p| p.trim().parse::<f64>().ok()).map(|p| p / 100.0)
            }
            _ => None,
        };
        match cpus {
            Some(c) if (0.01..=10_000.0).contains(&c) => {
                Some((c * CPU_PERIOD_US as f64).round() as u64)
            }
            _ => {
                self.error(
                    at,
                    format!(
                        "expected a number of CPUs from 0.01 (such as 0.5 or 2), a percentage such as \"50%\", or \"max\", found {}",
                        describe(v.get_ref())
                    ),
                );
                None
            }
        }
    }

    /// A group name (looked up in the group database) or a numeric gid.
    fn group_id(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<u32> {
        let s = match v.get_ref() {
            DeValue::Integer(_) => {
                return self.integer(at, v, 0, i64::from(u32::MAX)).map(|n| n as u32);
            }
            _ => self.string(at, v)?,
        };
        if let Ok(n) = s.parse::<u32>() {
            return Some(n);
        }
        match nix::unistd::Group::from_name(&s) {
            Ok(Some(g)) => Some(g.gid.as_raw()),
            _ => {
                self.error(at, format!("no group named {s:?}"));
                None
            }
        }
    }

    fn logging(&mut self, table: Option<(At, DeTable<'s>)>) -> Logging {
        let mut logging = Logging::default();
        let Some((at, table)) = table else { return logging };
        for (k, v) in table.iter() {
            let at = self.child(&at, v, k.get_ref());
            match k.get_ref().as_ref() {
                "level" => {
                    if let Some(s) = self.string(&at, v) {
                        match s.to_ascii_lowercase().parse::<log::LevelFilter>() {
                            Ok(l) => logging.level = l,
                            Err(_) => self.error(&at, format!("unknown level {s:?}; expected error, warn, info, debug or trace")),
                        }
                    }
                }
                "console" => match v.get_ref() {
                    DeValue::Boolean(true) => logging.console = ConsoleMode::On,
                    DeValue::Boolean(false) => logging.console = ConsoleMode::Off,
                    DeValue::String(s) if s.as_ref() == "auto" => {
                        logging.console = ConsoleMode::Auto
                    }
                    other => self.error(
                        &at,
                        format!("expected true, false or \"auto\", found {}", describe(other)),
                    ),
                },
                "format" => match self.string(&at, v).as_deref() {
                    Some("text") => logging.format = crate::logs::console::Format::Text,
                    Some("json") => logging.format = crate::logs::console::Format::Json,
                    Some(other) => self.error(
                        &at,
                        format!("unknown format {other:?}; expected \"text\" or \"json\""),
                    ),
                    None => {}
                },
                "max_line_bytes" => match self.size(&at, v) {
                    Some(0) => self.error(&at, "must be at least 1 byte".to_string()),
                    Some(n) => logging.max_line_bytes = n,
                    None => {}
                },
                "syslog" => {
                    if let Some(s) = self.string(&at, v) {
                        match syslog_target(&s) {
                            Ok(t) => logging.syslog = t,
                            Err(e) => self.error(&at, e),
                        }
                    }
                }
                "syslog_facility" => {
                    if let Some(s) = self.string(&at, v) {
                        match crate::logs::syslog::facility(&s) {
                            Some(f) => logging.syslog_facility = f,
                            None => self.error(
                                &at,
                                format!(
                                    "unknown facility {s:?}; expected one of {}",
                                    crate::logs::syslog::FACILITIES.join(", ")
                                ),
                            ),
                        }
                    }
                }
                "partial_line_secs" => {
                    if let Some(d) = self.seconds(&at, v) {
                        logging.partial_line_secs = d;
                    }
                }
                "childlogdir" => {
                    if let Some(s) = self.expanded_string(&at, v, &file_vars(self.docs[0].file)) {
                        let here = self.docs[0].file.parent().unwrap_or(Path::new("/"));
                        let dir = here.join(s);
                        if dir.is_dir() {
                            logging.childlogdir = dir;
                        } else {
                            self.error(&at, format!("{} is not a directory", dir.display()));
                        }
                    }
                }
                other => self.unknown(&at, k.span(), Section::Logging, other),
            }
        }
        logging
    }

    /// Gathers `[programs.*]` and `[groups.*]` from every document. Returns the program tables
    /// and, per program name, the group it belongs to (with that group's priority).
    fn collect_programs_and_groups(&mut self) -> (Vec<ProgramTable<'s>>, Membership) {
        let mut programs: Vec<ProgramTable<'s>> = Vec::new();
        let mut seen: HashMap<String, At> = HashMap::new();
        let mut group_tables = Vec::new();
        for doc in 0..self.docs.len() {
            let root = std::mem::take(&mut self.docs[doc].table);
            for (k, v) in root.iter() {
                let section = k.get_ref().as_ref();
                if section != "programs" && section != "groups" {
                    continue;
                }
                let at = self.at(doc, v, section);
                let Some(entries) = self.table(&at, v) else { continue };
                for (name, body) in entries.iter() {
                    let at = self.child(&at, body, name.get_ref());
                    let Some(body_table) = self.table(&at, body) else { continue };
                    if let Err(why) = check_name(name.get_ref()) {
                        self.error(&at, why);
                        continue;
                    }
                    if section == "groups" {
                        group_tables.push((at, name.get_ref().to_string(), body_table.clone()));
                        continue;
                    }
                    if let Some(first) = seen.get(name.get_ref().as_ref()) {
                        let place = self.place(first);
                        self.error(&at, format!("program defined twice; first at {place}"));
                        continue;
                    }
                    seen.insert(name.get_ref().to_string(), at.clone());
                    programs.push(ProgramTable {
                        name: name.get_ref().to_string(),
                        doc,
                        span: at.span.clone(),
                        table: body_table.clone(),
                    });
                }
            }
            self.docs[doc].table = root;
        }

        let mut member_of: Membership = HashMap::new();
        let mut group_names: HashMap<String, At> = HashMap::new();
        for (at, group, table) in group_tables {
            if let Some(first) = group_names.get(&group) {
                let place = self.place(first);
                self.error(&at, format!("group defined twice; first at {place}"));
                continue;
            }
            group_names.insert(group.clone(), at.clone());
            let mut members = None;
            let mut priority = None;
            for (k, v) in table.iter() {
                let at = self.child(&at, v, k.get_ref());
                match k.get_ref().as_ref() {
                    "programs" => members = self.strings(&at, v).map(|m| (at.clone(), m)),
                    "priority" => priority = self.integer(&at, v, i64::MIN, i64::MAX),
                    other => self.unknown(&at, k.span(), Section::Group, other),
                }
            }
            let Some((members_at, members)) = members else {
                if !table.contains_key("programs") {
                    self.error(&at, "missing required key \"programs\"");
                }
                continue;
            };
            for m in members {
                if !seen.contains_key(&m) {
                    let hint = closest(&m, seen.keys().map(String::as_str))
                        .map(|c| format!("; did you mean {c:?}?"))
                        .unwrap_or_default();
                    self.error(&members_at, format!("unknown program {m:?}{hint}"));
                } else if let Some((other, _)) = member_of.get(&m) {
                    self.error(&members_at, format!("program {m:?} is already in group {other:?}"));
                } else if seen.contains_key(&group) && group != m {
                    self.error(
                        &members_at,
                        format!("group {group:?} has the name of a program that is not in it"),
                    );
                } else {
                    member_of.insert(m, (group.clone(), priority));
                }
            }
        }
        (programs, member_of)
    }

    fn programs(
        &mut self,
        programs: Vec<ProgramTable<'s>>,
        groups: &Membership,
    ) -> (Vec<ProcessSpec>, Vec<ProgramInfo>) {
        let mut processes = Vec::new();
        let mut infos = Vec::new();
        for p in programs {
            let (group, group_priority) =
                groups.get(&p.name).cloned().unwrap_or((p.name.clone(), None));
            let mut vars = file_vars(self.docs[p.doc].file);
            vars.set_str("program_name", &p.name);
            vars.set_str("group_name", &group);
            let at = At { doc: p.doc, span: p.span.clone(), key: format!("programs.{}", p.name) };
            if let Some(specs) = self.program(&at, &p, &group, group_priority, vars) {
                infos.push(ProgramInfo {
                    name: p.name.clone(),
                    group: group.clone(),
                    autostart: specs[0].autostart,
                    priority: specs[0].priority,
                    numprocs: specs.len() as u32,
                });
                processes.extend(specs);
            }
        }
        // Unique names across every group, as the control socket addresses them.
        let mut names: HashMap<String, String> = HashMap::new();
        for spec in &processes {
            if let Some(other) = names.insert(spec.namespec(), spec.program.clone()) {
                self.err_nopos_main(format!(
                    "programs {other:?} and {:?} both define a process named {:?}",
                    spec.program,
                    spec.namespec()
                ));
            }
        }
        processes
            .sort_by(|a, b| (a.priority, &a.group, &a.name).cmp(&(b.priority, &b.group, &b.name)));
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        (processes, infos)
    }

    /// Types one program table and expands it into its processes.
    fn program(
        &mut self,
        at: &At,
        p: &ProgramTable<'s>,
        group: &str,
        group_priority: Option<i64>,
        mut vars: Vars,
    ) -> Option<Vec<ProcessSpec>> {
        let before = self.errors.len();
        let mut command: Option<(At, Spanned<DeValue<'s>>)> = None;
        let mut process_name: Option<(At, Spanned<DeValue<'s>>)> = None;
        let mut directory: Option<(At, Spanned<DeValue<'s>>)> = None;
        let mut environment: Option<(At, Spanned<DeValue<'s>>)> = None;
        let mut numprocs = 1u32;
        let mut numprocs_start = 0u32;
        let mut base = ProcessSpec {
            name: String::new(),
            group: group.to_string(),
            program: p.name.clone(),
            argv: Vec::new(),
            priority: group_priority.unwrap_or(999),
            autostart: true,
            startsecs: Duration::from_secs(1),
            startretries: 3,
            backoff_initial: Duration::from_secs(1),
            backoff_factor: None,
            backoff_max: None,
            restart_min_interval: Duration::from_secs(1),
            backoff_reset: Duration::from_secs(60),
            start_delay: Duration::ZERO,
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
        };
        let mut killasgroup: Option<(At, bool)> = None;
        let mut on_dependency_failure = OnFailure::Ignore;
        let mut requires: Vec<String> = Vec::new();
        let mut mask_env: Vec<String> = Vec::new();
        let mut stderr_syslog_at: Option<At> = None;
        let mut socket_at: Option<At> = None;
        let mut listen_at: Option<At> = None;
        let mut accept_at: Option<At> = None;
        // [stdout, stderr]: the logfile value, and (maxbytes, backups) as supervisord's defaults.
        let mut logfiles: [Option<(At, Spanned<DeValue<'s>>)>; 2] = [None, None];
        let mut rotation = [(50u64 << 20, 10u32); 2];
        for (k, v) in p.table.iter() {
            let at = self.child(at, v, k.get_ref());
            let b = &mut base;
            match k.get_ref().as_ref() {
                "command" => command = Some((at, v.clone())),
                "process_name" => process_name = Some((at, v.clone())),
                "directory" => directory = Some((at, v.clone())),
                "environment" => environment = Some((at, v.clone())),
                "numprocs" => numprocs = self.integer(&at, v, 1, 100_000).map_or(1, |n| n as u32),
                "numprocs_start" => {
                    numprocs_start = self.integer(&at, v, 0, 1_000_000).map_or(0, |n| n as u32)
                }
                "priority" => b.priority = self.integer(&at, v, i64::MIN, i64::MAX).unwrap_or(999),
                "autostart" => b.autostart = self.boolean(&at, v).unwrap_or(true),
                "startsecs" => b.startsecs = self.seconds(&at, v).unwrap_or_default(),
                "start_delay" => b.start_delay = self.seconds(&at, v).unwrap_or_default(),
                "ready_delay" => b.ready_delay = self.seconds(&at, v).unwrap_or_default(),
                "watchdog_sec" => b.watchdog_sec = self.seconds(&at, v).unwrap_or_default(),
                "type" => match self.string(&at, v).as_deref() {
                    Some("simple") => b.kind = Kind::Simple,
                    Some("oneshot") => b.kind = Kind::Oneshot,
                    Some("notify") => b.kind = Kind::Notify,
                    Some("socket") => {
                        b.kind = Kind::Socket;
                        socket_at = Some(at);
                    }
                    Some(other) => self.error(
                        &at,
                        format!(
                            "expected \"simple\", \"oneshot\", \"notify\" or \"socket\", found {other:?}"
                        ),
                    ),
                    None => {}
                },
                "listen" => {
                    b.listen = self.listen(&at, v);
                    listen_at = Some(at);
                }
                "accept" => {
                    b.accept = self.boolean(&at, v).unwrap_or(false);
                    accept_at = Some(at);
                }
                "max_instances" => {
                    b.max_instances = self.integer(&at, v, 1, 65536).map_or(64, |n| n as u32);
                    accept_at = accept_at.or(Some(at));
                }
                "remain_after_exit" => b.remain_after_exit = self.boolean(&at, v).unwrap_or(false),
                "depends_on" => b.deps = self.depends_on(&at, v, &p.name),
                "requires" => {
                    requires = self.program_refs(&at, v, &p.name, "requires");
                }
                "after" => b.after = self.program_refs(&at, v, &p.name, "after"),
                "before" => {
                    self.program_refs(&at, v, &p.name, "before");
                }
                "on_dependency_failure" => match self.string(&at, v).as_deref() {
                    Some("stop") => on_dependency_failure = OnFailure::Stop,
                    Some("restart") => on_dependency_failure = OnFailure::Restart,
                    Some("ignore") => on_dependency_failure = OnFailure::Ignore,
                    Some(other) => self.error(
                        &at,
                        format!("expected \"stop\", \"restart\" or \"ignore\", found {other:?}"),
                    ),
                    None => {}
                },
                "backoff_initial" => {
                    b.backoff_initial = self.seconds(&at, v).unwrap_or(Duration::from_secs(1))
                }
                "backoff_max" => b.backoff_max = self.seconds(&at, v),
                "restart_min_interval" => {
                    b.restart_min_interval =
                        self.seconds(&at, v).unwrap_or(Duration::from_secs(1))
                }
                "backoff_reset" => {
                    b.backoff_reset = self.seconds(&at, v).unwrap_or(Duration::from_secs(60))
                }
                "backoff_factor" => {
                    let f = match v.get_ref() {
                        DeValue::Integer(i) => {
                            i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64)
                        }
                        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
                        _ => None,
                    };
                    match f {
                        Some(f) if (1.0..=100.0).contains(&f) => b.backoff_factor = Some(f),
                        _ => self.error(
                            &at,
                            format!(
                                "expected a number from 1 to 100, found {}",
                                describe(v.get_ref())
                            ),
                        ),
                    }
                }
                "startretries" => {
                    b.startretries =
                        self.integer(&at, v, 0, u32::MAX as i64).map_or(3, |n| n as u32)
                }
                "autorestart" => {
                    b.autorestart = match v.get_ref() {
                        DeValue::Boolean(true) => AutoRestart::Always,
                        DeValue::Boolean(false) => AutoRestart::Never,
                        DeValue::String(s) if s.eq_ignore_ascii_case("unexpected") => {
                            AutoRestart::Unexpected
                        }
                        other => {
                            self.error(
                                &at,
                                format!(
                                    "expected true, false or \"unexpected\", found {}",
                                    describe(other)
                                ),
                            );
                            AutoRestart::Unexpected
                        }
                    }
                }
                "exitcodes" => {
                    if let Some(items) = self.array(&at, v) {
                        let codes: Vec<i32> = items
                            .iter()
                            .filter_map(|i| self.integer(&at, i, 0, 255).map(|c| c as i32))
                            .collect();
                        b.exitcodes = codes;
                    }
                }
                "stopsignal" => {
                    let parsed = match v.get_ref() {
                        DeValue::String(s) => parse_signal(s),
                        DeValue::Integer(i) => parse_signal(i.as_str()),
                        other => Err(format!(
                            "expected a signal name or number, found {}",
                            describe(other)
                        )),
                    };
                    match parsed {
                        Ok(sig) => b.stopsignal = sig,
                        Err(e) => self.error(&at, e),
                    }
                }
                "stopwaitsecs" => {
                    b.stopwaitsecs = self.seconds(&at, v).unwrap_or(Duration::from_secs(10))
                }
                "stopasgroup" => b.stopasgroup = self.boolean(&at, v).unwrap_or(false),
                "killasgroup" => killasgroup = self.boolean(&at, v).map(|x| (at.clone(), x)),
                "user" => {
                    if let Some(s) = self.expanded_string(&at, v, &vars) {
                        match resolve_user(&s) {
                            Ok(u) => b.user = Some(u),
                            Err(e) => self.error(&at, e),
                        }
                    }
                }
                "umask" => b.umask = self.octal(&at, v),
                "clean_environment" => b.clean_environment = self.boolean(&at, v).unwrap_or(false),
                "redirect_stderr" => b.redirect_stderr = self.boolean(&at, v).unwrap_or(false),
                "stdout_syslog" => b.stdout_syslog = self.boolean(&at, v).unwrap_or(false),
                "stderr_syslog" => {
                    b.stderr_syslog = self.boolean(&at, v).unwrap_or(false);
                    stderr_syslog_at = Some(at);
                }
                "strip_ansi" => b.strip_ansi = self.boolean(&at, v).unwrap_or(false),
                "stdin_pipe" => b.stdin_pipe = self.boolean(&at, v).unwrap_or(false),
                "critical" => b.critical = self.boolean(&at, v).unwrap_or(false),
                "mask_env" => mask_env = self.strings(&at, v).unwrap_or_default(),
                "limits" => (b.limits, b.cgroup) = self.limits(&at, v),
                "healthcheck" => b.healthcheck = self.healthcheck(&at, v),
                "stdout_capture_maxbytes" => {
                    b.stdout_capture_maxbytes = self.size(&at, v).unwrap_or(1 << 20)
                }
                "stderr_capture_maxbytes" => {
                    b.stderr_capture_maxbytes = self.size(&at, v).unwrap_or(1 << 20)
                }
                "stdout_logfile" => logfiles[0] = Some((at, v.clone())),
                "stderr_logfile" => logfiles[1] = Some((at, v.clone())),
                "stdout_logfile_maxbytes" => rotation[0].0 = self.size(&at, v).unwrap_or(0) as u64,
                "stderr_logfile_maxbytes" => rotation[1].0 = self.size(&at, v).unwrap_or(0) as u64,
                "stdout_logfile_backups" => {
                    rotation[0].1 = self.integer(&at, v, 0, 1000).map_or(0, |n| n as u32)
                }
                "stderr_logfile_backups" => {
                    rotation[1].1 = self.integer(&at, v, 0, 1000).map_or(0, |n| n as u32)
                }
                other => self.unknown(&at, k.span(), Section::Program, other),
            }
        }
        base.killasgroup = match killasgroup {
            Some((at, false)) if base.stopasgroup => {
                self.error(&at, "cannot be false when stopasgroup is true (the group is signalled, so it must be killed too)");
                true
            }
            Some((_, k)) => k,
            None => base.stopasgroup,
        };
        // depends_on follows on_dependency_failure; requires stops with what it requires, as
        // systemd's Requires= does.
        for d in &mut base.deps {
            d.on_failure = on_dependency_failure;
        }
        for r in requires {
            match base.deps.iter_mut().find(|d| d.program == r) {
                Some(d) => d.on_failure = OnFailure::Stop,
                None => base.deps.push(Dep {
                    program: r,
                    condition: Condition::Started,
                    on_failure: OnFailure::Stop,
                }),
            }
        }
        if let Some(at) = stderr_syslog_at
            && base.stderr_syslog
            && base.redirect_stderr
        {
            self.error(
                &at,
                "has no effect with redirect_stderr = true (stderr goes to stdout_syslog)",
            );
        }
        match (&socket_at, &listen_at) {
            (Some(at), None) => self.error(
                at,
                "type = \"socket\" needs listen = [\"tcp://127.0.0.1:8080\", \"unix:///run/NAME.sock\", ...]",
            ),
            (None, Some(at)) => self.error(at, "applies to type = \"socket\" only"),
            (None, None) if accept_at.is_some() => {
                self.error(accept_at.as_ref().unwrap_or(at), "applies to type = \"socket\" only")
            }
            (Some(at), Some(_)) if numprocs > 1 => {
                self.error(at, "a socket program has one process: numprocs must be 1")
            }
            _ => {}
        }
        let Some((command_at, command)) = command else {
            self.error(at, "missing required key \"command\"");
            return None;
        };
        if numprocs > 1 {
            let template = process_name
                .as_ref()
                .and_then(|(_, v)| v.get_ref().as_str())
                .unwrap_or("%(program_name)s");
            if !template.contains("%(process_num)") {
                // Point at the template, or say which key is missing.
                let place = match &process_name {
                    Some((a, _)) => a.clone(),
                    None => At { key: format!("{}.process_name", at.key), ..at.clone() },
                };
                self.error(
                    &place,
                    "must contain %(process_num) when numprocs > 1, so that each process gets its own name \
                     (for example \"%(program_name)s_%(process_num)02d\")",
                );
                return None;
            }
        }
        vars.set_int("numprocs", numprocs as i64);
        let mut specs = Vec::with_capacity(numprocs as usize);
        for num in numprocs_start..numprocs_start + numprocs {
            let mut spec = base.clone();
            let mut vars = vars.clone();
            vars.set_int("process_num", num as i64);
            // Every per-process key is expanded even when another one failed, so that each
            // error is reported; after the first process, one error is enough (the others
            // would repeat it).
            let errors_before = self.errors.len();
            if let Some((at, v)) = &environment {
                spec.environment = self.environment(at, v, &mut vars).unwrap_or_default();
            }
            spec.name = match &process_name {
                Some((at, v)) => self
                    .expanded_string(at, v, &vars)
                    .filter(|name| match check_name(name) {
                        Ok(()) => true,
                        Err(why) => {
                            self.error(at, why);
                            false
                        }
                    })
                    .unwrap_or_default(),
                None => p.name.clone(),
            };
            if let Some((at, v)) = &directory {
                spec.directory = self.expanded_string(at, v, &vars).map(PathBuf::from);
            }
            spec.argv = self.command(&command_at, &command, &vars).unwrap_or_default();
            if let Some((severity, message)) = check::command(&spec) {
                self.note(&command_at, severity, message);
            }
            spec.secrets = self.secrets(&spec, &mask_env);
            for (i, stream) in ["stdout", "stderr"].into_iter().enumerate() {
                let Some((at, v)) = &logfiles[i] else { continue };
                let name = spec.namespec().replace(':', "_");
                let log = self.logfile(at, v, &vars, &name, stream).map(|path| LogSpec {
                    path,
                    maxbytes: rotation[i].0,
                    backups: rotation[i].1,
                });
                if i == 0 {
                    spec.stdout_log = log;
                } else if log.is_some() && spec.redirect_stderr {
                    self.error(
                        at,
                        "has no effect with redirect_stderr = true (stderr goes to stdout_logfile)",
                    );
                } else {
                    spec.stderr_log = log;
                }
            }
            if self.errors.len() > errors_before {
                break;
            }
            specs.push(spec);
        }
        if self.errors.len() > before {
            return None;
        }
        Some(specs)
    }

    fn command(&mut self, at: &At, v: &Spanned<DeValue<'s>>, vars: &Vars) -> Option<Vec<String>> {
        let argv = match v.get_ref() {
            DeValue::String(s) => {
                let line = self.expand(at, s, vars)?;
                match words::split(&line) {
                    Ok(w) => w,
                    Err(e) => {
                        self.error(at, format!("cannot split into words: {e}"));
                        return None;
                    }
                }
            }
            DeValue::Array(items) => {
                // Each item is checked, so every bad one is reported.
                let argv: Vec<Option<String>> =
                    items.iter().map(|item| self.expanded_string(at, item, vars)).collect();
                argv.into_iter().collect::<Option<Vec<String>>>()?
            }
            other => {
                self.error(
                    at,
                    format!("expected a string or an array of strings, found {}", describe(other)),
                );
                return None;
            }
        };
        if argv.is_empty() || argv[0].is_empty() {
            self.error(at, "is empty");
            return None;
        }
        // execve(2) takes C strings: a NUL would end the word there, so it is refused here
        // rather than at each spawn.
        if argv.iter().any(|w| w.contains('\0')) {
            self.error(at, "a NUL byte is not allowed in a command");
            return None;
        }
        Some(argv)
    }

    /// The secret values of a process's environment: its own variables, and (unless
    /// clean_environment) the ones it inherits from the daemon.
    fn secrets(&self, spec: &ProcessSpec, named: &[String]) -> Vec<Vec<u8>> {
        let own = spec.environment.iter().map(|(k, v)| (k.clone(), v.clone()));
        let mut all: Vec<(String, String)> = own.collect();
        if !spec.clean_environment {
            let inherited = std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(k, _)| !all.iter().any(|(o, _)| o == k))
                .collect::<Vec<_>>();
            all.extend(inherited);
            // A name in mask_env that the test environment provides through `env` only.
            for n in named {
                if !all.iter().any(|(k, _)| k == n)
                    && let Some(v) = (self.env)(n)
                {
                    all.push((n.clone(), v));
                }
            }
        }
        crate::logs::mask::secrets(all.iter().map(|(k, v)| (k.as_str(), v.as_str())), named)
    }

    /// A logfile value: NONE (no file), AUTO (a file in childlogdir) or a path whose
    /// directory exists.
    fn logfile(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
        vars: &Vars,
        name: &str,
        stream: &str,
    ) -> Option<PathBuf> {
        let s = self.expanded_string(at, v, vars)?;
        if s.eq_ignore_ascii_case("none") || s.eq_ignore_ascii_case("off") {
            return None;
        }
        let path = if s.eq_ignore_ascii_case("auto") {
            self.childlogdir.join(format!("{name}-{stream}.log"))
        } else {
            // Relative to the file that defines the program, as include patterns are.
            let here = self.docs[at.doc].file.parent().unwrap_or(Path::new("/"));
            here.join(&s)
        };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            self.error(at, format!("directory {} does not exist", dir.display()));
            return None;
        }
        Some(path)
    }

    fn environment(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
        vars: &mut Vars,
    ) -> Option<Vec<(String, String)>> {
        let table = self.table(at, v)?.clone();
        let mut env = Vec::new();
        let mut ok = true;
        for (k, v) in table.iter() {
            let at = self.child(at, v, k.get_ref());
            // As in supervisord, the values see the daemon's environment, not each other, so
            // their order does not matter.
            let value = match v.get_ref() {
                DeValue::String(_) => self.expanded_string(&at, v, vars),
                DeValue::Integer(i) => Some(i.as_str().to_string()),
                DeValue::Float(f) => Some(f.as_str().to_string()),
                DeValue::Boolean(b) => Some(b.to_string()),
                other => {
                    self.error(&at, format!("expected a string, found {}", describe(other)));
                    None
                }
            };
            if k.get_ref().is_empty() || k.get_ref().contains(['=', '\0']) {
                self.error(&at, "a variable name cannot be empty or contain '=' or NUL");
                ok = false;
            }
            // The environment reaches execve(2) as C strings, which a NUL would cut short.
            let value = match value {
                Some(value) if value.contains('\0') => {
                    self.error(&at, "a NUL byte is not allowed in an environment value");
                    None
                }
                value => value,
            };
            match value {
                Some(value) => env.push((k.get_ref().to_string(), value)),
                None => ok = false,
            }
        }
        // The keys after it (directory, command, process_name) may use %(ENV_X)s of these.
        for (k, value) in &env {
            vars.set_str(&format!("ENV_{k}"), value.clone());
        }
        ok.then_some(env)
    }

    // ---- typed getters: each records an error and returns None on a mismatch ----

    fn string(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(at, format!("expected a string, found {}", describe(other)));
                None
            }
        }
    }

    fn expand(&mut self, at: &At, s: &str, vars: &Vars) -> Option<String> {
        match expand::expand(s, vars, self.env) {
            Ok(x) => Some(x),
            Err(e) => {
                self.error(at, e);
                None
            }
        }
    }

    fn expanded_string(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
        vars: &Vars,
    ) -> Option<String> {
        let s = self.string(at, v)?;
        self.expand(at, &s, vars)
    }

    /// `listen`: "tcp://ADDRESS:PORT" (an IP address, [::1] for IPv6) or "unix:///PATH".
    fn listen(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Vec<Listen> {
        let Some(items) = self.strings(at, v) else { return Vec::new() };
        if items.is_empty() {
            self.error(at, "must name at least one socket");
        }
        let mut out = Vec::new();
        for item in items {
            let parsed = if let Some(addr) = item.strip_prefix("tcp://") {
                addr.parse().map(Listen::Tcp).map_err(|_| {
                    format!("{item:?}: expected tcp://ADDRESS:PORT with an IP address, such as tcp://127.0.0.1:8080")
                })
            } else if let Some(path) = item.strip_prefix("unix://") {
                if path.starts_with('/') {
                    Ok(Listen::Unix(PathBuf::from(path)))
                } else {
                    Err(format!(
                        "{item:?}: expected an absolute path, such as unix:///run/echo.sock"
                    ))
                }
            } else {
                Err(format!("{item:?}: expected tcp://ADDRESS:PORT or unix:///PATH"))
            };
            match parsed {
                Ok(l) if out.contains(&l) => self.error(at, format!("{item:?} is listed twice")),
                Ok(l) => out.push(l),
                Err(e) => self.error(at, e),
            }
        }
        out
    }

    fn strings(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<Vec<String>> {
        let items = self.array(at, v)?;
        items.iter().map(|i| self.string(at, i)).collect()
    }

    fn array<'v>(
        &mut self,
        at: &At,
        v: &'v Spanned<DeValue<'s>>,
    ) -> Option<&'v toml::de::DeArray<'s>> {
        match v.get_ref() {
            DeValue::Array(a) => Some(a),
            other => {
                self.error(at, format!("expected an array, found {}", describe(other)));
                None
            }
        }
    }

    fn table<'v>(&mut self, at: &At, v: &'v Spanned<DeValue<'s>>) -> Option<&'v DeTable<'s>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.error(at, format!("expected a table, found {}", describe(other)));
                None
            }
        }
    }

    fn boolean(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.error(at, format!("expected true or false, found {}", describe(other)));
                None
            }
        }
    }

    fn integer(&mut self, at: &At, v: &Spanned<DeValue<'s>>, min: i64, max: i64) -> Option<i64> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            other => {
                self.error(at, format!("expected an integer, found {}", describe(other)));
                return None;
            }
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let range = match (min, max) {
                    (i64::MIN, i64::MAX) => "a 64-bit integer".to_string(),
                    (min, max) if max >= i64::from(u32::MAX) => format!("an integer >= {min}"),
                    (min, max) => format!("an integer from {min} to {max}"),
                };
                self.error(at, format!("expected {range}, found {}", describe(v.get_ref())));
                None
            }
        }
    }

    /// A duration in seconds: an integer or a float, not negative.
    fn seconds(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<Duration> {
        let secs = match v.get_ref() {
            DeValue::Integer(i) => {
                i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64)
            }
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => None,
        };
        match secs {
            Some(s) if s.is_finite() && (0.0..=1e9).contains(&s) => {
                Some(Duration::from_secs_f64(s))
            }
            _ => {
                self.error(
                    at,
                    format!("expected a number of seconds >= 0, found {}", describe(v.get_ref())),
                );
                None
            }
        }
    }

    /// An octal mode: a string of octal digits ("022", "0o022") or a TOML integer (0o022).
    fn octal(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<u32> {
        let parsed = match v.get_ref() {
            DeValue::String(s) => {
                let digits = s.strip_prefix("0o").unwrap_or(s);
                u32::from_str_radix(digits, 8).ok()
            }
            // A decimal 700 would mean 0o1274: only 0, or TOML's own 0o700, is unambiguous.
            DeValue::Integer(i) if i.radix() == 10 && i.as_str() != "0" => {
                self.error(
                    at,
                    format!(
                        "{} is decimal; write a mode in octal, as \"0{0}\" or 0o{0}",
                        i.as_str()
                    ),
                );
                return None;
            }
            DeValue::Integer(i) => u32::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        match parsed {
            Some(m) if m <= 0o7777 => Some(m),
            _ => {
                self.error(
                    at,
                    format!(
                        "expected an octal mode such as \"022\", found {}",
                        describe(v.get_ref())
                    ),
                );
                None
            }
        }
    }

    /// A byte size: an integer, or a string with a KB/MB/GB suffix (1024-based, as supervisord).
    fn size(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<usize> {
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix()).ok(),
            DeValue::String(s) => parse_size(s),
            _ => None,
        };
        match parsed {
            Some(n) if n <= (1 << 40) => Some(n as usize),
            _ => {
                self.error(
                    at,
                    format!(
                        "expected a size such as 1048576 or \"1MB\", found {}",
                        describe(v.get_ref())
                    ),
                );
                None
            }
        }
    }

    // ---- places and errors ----

    fn at(&self, doc: usize, v: &Spanned<DeValue<'s>>, key: &str) -> At {
        At { doc, span: v.span(), key: key.to_string() }
    }

    fn child(&self, parent: &At, v: &Spanned<DeValue<'s>>, key: &str) -> At {
        let plain = !key.is_empty()
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let key =
            if plain { format!("{}.{key}", parent.key) } else { format!("{}.{key:?}", parent.key) };
        At { doc: parent.doc, span: v.span(), key }
    }

    fn place(&self, at: &At) -> String {
        let doc = &self.docs[at.doc];
        let (line, col) = line_col(doc.src, at.span.start);
        format!("{}:{line}:{col}", doc.file.display())
    }

    fn error(&mut self, at: &At, message: impl Into<String>) {
        let doc = &self.docs[at.doc];
        let (line, column) = line_col(doc.src, at.span.start);
        self.errors.push(ConfigError {
            file: doc.file.to_path_buf(),
            line,
            column,
            key: at.key.clone(),
            message: message.into(),
        });
    }

    /// A finding of [`check`] at `at`, once (the processes of one program share their place).
    fn note(&mut self, at: &At, severity: check::Severity, message: String) {
        let doc = &self.docs[at.doc];
        let (line, column) = line_col(doc.src, at.span.start);
        let error = ConfigError {
            file: doc.file.to_path_buf(),
            line,
            column,
            key: at.key.clone(),
            message,
        };
        let note = check::Note { severity, error };
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    fn err_nopos_main(&mut self, message: String) {
        self.errors.push(nopos(self.docs[0].file, "programs", message));
    }

    /// An unknown key: the error points at the key itself, not its value.
    fn unknown(&mut self, at: &At, key_span: Range<usize>, section: Section, name: &str) {
        let hint = schema::suggest(section, name)
            .map(|s| format!("; did you mean {s:?}?"))
            .unwrap_or_default();
        let what = if section == Section::Root { "unknown table or key" } else { "unknown key" };
        let at = At { span: key_span, ..at.clone() };
        self.error(&at, format!("{what}{hint}"));
    }
}

/// The expansions every value of a file may use: `%(here)s`, `%(host_node_name)s`.
fn file_vars(file: &Path) -> Vars {
    let mut vars = Vars::default();
    vars.set_str(
        "here",
        file.parent().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default(),
    );
    let host =
        nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    vars.set_str("host_node_name", host);
    vars
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    let before = &src[..src.floor_char_boundary(at)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("string {s:?}"),
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// The longest program, group or process name.
const MAX_NAME: usize = 128;

/// Program, group and process names: ASCII letters, digits, '_', '-' and '.', which every
/// place a name goes takes as it is: a namespec (`group:name`), a log file name, a URL path
/// segment, a `process=a,b` query, a shell word, a terminal. supervisord refuses only blanks,
/// ':' and '/'; the rest it allows ('*', ',', '@', '%', quotes, control and invisible
/// characters such as U+200B or U+202E) would be a glob, a separator, an instance name
/// (`NAME@N`), an escape or a name that looks like another.
fn check_name(name: &str) -> Result<(), String> {
    const ALLOWED: &str = "names may contain only ASCII letters, digits, '_', '-' and '.'";
    if name.is_empty() {
        return Err("a name cannot be empty".into());
    }
    if let Some(c) =
        name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        // Debug formatting shows a control or invisible character as an escape.
        return Err(format!("name {name:?} contains {c:?}; {ALLOWED}"));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a name: it means a directory"));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "a name is at most {MAX_NAME} characters; this one has {}",
            name.len()
        ));
    }
    if name == "all" {
        return Err("\"all\" is reserved: kahi ctl uses it for every process".into());
    }
    Ok(())
}

/// The candidate nearest to `name` by edit distance, if it is a likely typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (schema::edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
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

/// `NAME`, `UID`, `NAME:GROUP`, `UID:GID`. Numbers need no user database.
fn resolve_user(spec: &str) -> Result<RunAs, String> {
    use nix::unistd::{Gid, Group, Uid, User};
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (name, uid, mut gid, by_name) = if let Ok(uid) = user.parse::<u32>() {
        let entry = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        let gid = entry.as_ref().map_or(uid, |e| e.gid.as_raw());
        (entry.map_or_else(|| uid.to_string(), |e| e.name), uid, gid, false)
    } else {
        match User::from_name(user) {
            Ok(Some(e)) => (e.name, e.uid.as_raw(), e.gid.as_raw(), true),
            Ok(None) => {
                return Err(format!(
                    "no such user {user:?} (a numeric UID or UID:GID needs no /etc/passwd)"
                ));
            }
            Err(e) => return Err(format!("unable to look up user {user:?}: {e}")),
        }
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match Group::from_name(g) {
                Ok(Some(e)) => e.gid.as_raw(),
                Ok(None) => return Err(format!("no such group {g:?}")),
                Err(e) => return Err(format!("unable to look up group {g:?}: {e}")),
            },
        };
    }
    let me = nix::unistd::geteuid();
    if !me.is_root() && me.as_raw() != uid {
        return Err(format!(
            "kahi runs as uid {me}, and only root can switch to another user ({spec:?} is uid {uid})"
        ));
    }
    let groups = if by_name {
        std::ffi::CString::new(name.clone())
            .ok()
            .and_then(|c| nix::unistd::getgrouplist(&c, Gid::from_raw(gid)).ok())
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(RunAs { name, uid, gid, groups })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod doc_tests;

/// `[logging] syslog`: an absolute path of a local datagram socket, or `udp://HOST:PORT`.
fn syslog_target(s: &str) -> Result<crate::logs::syslog::Target, String> {
    use crate::logs::syslog::Target;
    if let Some(addr) = s.strip_prefix("udp://") {
        use std::net::ToSocketAddrs;
        return match addr.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(a)) => Ok(Target::Udp(a)),
            Ok(None) => Err(format!("{addr:?} resolves to no address")),
            Err(e) => Err(format!("{addr:?} is not a HOST:PORT address: {e}")),
        };
    }
    if s.starts_with('/') {
        Ok(Target::Local(s.into()))
    } else {
        Err(format!(
            "expected the absolute path of a local socket (\"/dev/log\") or \"udp://HOST:PORT\", found {s:?}"
        ))
    }
}
