//! The table of every configuration key Kahi accepts: where it lives, its type, its default,
//! one line of documentation and the supervisord option it corresponds to.
//!
//! The parser reads each key through its entry: a key with a [`Read`] is read and stored by it
//! (the value's type decides the reader and its error), the others by their section's own code;
//! a name with no entry is an unknown key (with a "did you mean"). Defaults live in the
//! `Default` of what a section fills in ([`super::ProcessSpec`], [`super::Server`], ...); the
//! `default` text here says the same, and a test checks that it does. Another test checks the
//! table against `man/kahi.toml.5` and `kahi.example.toml`, so the three never drift apart.
//! No I/O here.

use std::fmt;
use std::time::Duration;

use super::program::ProgramDraft;
use super::server::HttpDraft;
use super::tables::HealthDraft;
use super::{HealthAction, Kind, ListenerSpec, Logging, OnFailure, Server, WebhookSpec};

/// Which table a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The top level of the main file.
    Root,
    /// `[server]`
    Server,
    /// `[server.http]`
    Http,
    /// `[[server.http.users]]`
    HttpUser,
    /// `[logging]`
    Logging,
    /// `[programs.NAME]`
    Program,
    /// `[programs.NAME.limits]`
    Limits,
    /// `[programs.NAME.healthcheck]`
    Healthcheck,
    /// `[groups.NAME]`
    Group,
    /// What `[eventlisteners.NAME]` has besides the keys of a program.
    Listener,
    /// What `[fcgi_programs.NAME]` has besides the keys of a program.
    Fcgi,
    /// `[webhooks.NAME]`
    Webhook,
}

/// One configuration key.
#[derive(Debug)]
// The documentation test reads every field; the parser needs the names and readers.
#[cfg_attr(not(test), allow(dead_code))]
pub struct Key {
    pub section: Section,
    pub name: &'static str,
    pub ty: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
    /// The supervisord option with the same meaning, if any.
    pub supervisord: Option<&'static str>,
    /// How the loader reads and stores the value.
    pub set: Set,
}

/// A reader of one value and where it stores it in `T`, what a section fills in. A value of
/// the wrong type or out of range is an error at its place, and `T` keeps its default.
pub enum Read<T: 'static> {
    Bool(fn(&mut T, bool)),
    /// An integer from the first bound to the second, inclusive.
    Int(i64, i64, fn(&mut T, i64)),
    /// A number of seconds >= 0, integer or float.
    Seconds(fn(&mut T, Duration)),
    /// A size: bytes, or a string such as "64KB".
    Size(fn(&mut T, usize)),
    /// A mode: a string of octal digits or a TOML octal integer.
    Octal(fn(&mut T, u32)),
    /// One of the strings; the setter gets its index.
    Choice(&'static [&'static str], fn(&mut T, usize)),
}

/// Which section's reader a key has, or `Custom`: read by its section's own code (a table, a
/// list whose items are checked one by one, a value that depends on other keys or is expanded
/// per process).
pub enum Set {
    Custom,
    Program(Read<ProgramDraft>),
    Server(Read<Server>),
    Http(Read<HttpDraft>),
    Logging(Read<Logging>),
    Health(Read<HealthDraft>),
    Listener(Read<ListenerSpec>),
    Webhook(Read<WebhookSpec>),
}

impl Set {
    /// The section whose reader this is; None for `Custom`.
    pub fn section(&self) -> Option<Section> {
        match self {
            Set::Custom => None,
            Set::Program(_) => Some(Section::Program),
            Set::Server(_) => Some(Section::Server),
            Set::Http(_) => Some(Section::Http),
            Set::Logging(_) => Some(Section::Logging),
            Set::Health(_) => Some(Section::Healthcheck),
            Set::Listener(_) => Some(Section::Listener),
            Set::Webhook(_) => Some(Section::Webhook),
        }
    }
}

impl fmt::Debug for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.section() {
            Some(s) => write!(f, "Set::{s:?}"),
            None => f.write_str("Set::Custom"),
        }
    }
}

/// What a section fills in: where its keys' readers are in a [`Set`].
pub trait Target: Sized + 'static {
    fn reader(set: &Set) -> Option<&Read<Self>>;
}

macro_rules! target {
    ($t:ty, $variant:ident) => {
        impl Target for $t {
            fn reader(set: &Set) -> Option<&Read<Self>> {
                match set {
                    Set::$variant(r) => Some(r),
                    _ => None,
                }
            }
        }
    };
}
target!(ProgramDraft, Program);
target!(Server, Server);
target!(HttpDraft, Http);
target!(Logging, Logging);
target!(HealthDraft, Health);
target!(ListenerSpec, Listener);
target!(WebhookSpec, Webhook);

const fn key(
    section: Section,
    name: &'static str,
    ty: &'static str,
    default: &'static str,
    doc: &'static str,
    supervisord: Option<&'static str>,
    set: Set,
) -> Key {
    Key { section, name, ty, default, doc, supervisord, set }
}

const fn program(r: Read<ProgramDraft>) -> Set {
    Set::Program(r)
}
const fn server(r: Read<Server>) -> Set {
    Set::Server(r)
}
const fn http(r: Read<HttpDraft>) -> Set {
    Set::Http(r)
}
const fn logging(r: Read<Logging>) -> Set {
    Set::Logging(r)
}
const fn health(r: Read<HealthDraft>) -> Set {
    Set::Health(r)
}
const fn listener(r: Read<ListenerSpec>) -> Set {
    Set::Listener(r)
}
const fn webhook(r: Read<WebhookSpec>) -> Set {
    Set::Webhook(r)
}

/// The values of the `Choice` keys, in the order of their names.
const KINDS: [Kind; 4] = [Kind::Simple, Kind::Oneshot, Kind::Notify, Kind::Socket];
const ON_FAILURE: [OnFailure; 3] = [OnFailure::Stop, OnFailure::Restart, OnFailure::Ignore];
const HEALTH_ACTIONS: [HealthAction; 3] =
    [HealthAction::Restart, HealthAction::Stop, HealthAction::None];
const FORMATS: [super::WebhookFormat; 2] =
    [super::WebhookFormat::Json, super::WebhookFormat::Slack];

use Read::*;
use Section::*;
use Set::Custom;

/// Every key, in the order the manual documents them.
#[rustfmt::skip]
pub const KEYS: &[Key] = &[
    key(Root, "include", "array of strings", "[]",
        "Glob patterns of further files holding [programs.*] and [groups.*] tables, relative to the main file's directory; matches are read in sorted order. An entry may instead be the URL of a TOML or JSON document holding the same tables (https://, or http:// to a loopback address), pinned with #sha256=HEX if wanted: fetched at start and again at each reload, in the background, keeping the last good copy when the fetch fails.",
        Some("[include] files"),
        Custom),
    key(Server, "socket", "string", "/run/kahi.sock as root, else $XDG_RUNTIME_DIR/kahi.sock or /tmp/kahi-UID.sock",
        "Path of the control socket that kahi ctl talks to.",
        Some("[unix_http_server] file"),
        Custom),
    key(Server, "socket_mode", "octal string or integer", "\"0700\"",
        "Permission bits of the control socket.",
        Some("[unix_http_server] chmod"),
        server(Octal(|s, m| s.socket_mode = m))),
    key(Server, "orphans", "\"kill\" or \"keep\"", "\"kill\"",
        "What becomes of the programs when Kahi is killed and cannot stop them: with kill each program gets SIGKILL the moment Kahi dies (PR_SET_PDEATHSIG), and the next Kahi ends what they left, named in the state file SOCKET.pids (SIGTERM to each process group, SIGKILL after 5 s), before starting anew; keep leaves them running and only reports them.",
        None,
        server(Choice(&["kill", "keep"], |s, i| s.kill_orphans = i == 0))),
    key(Server, "minfds", "integer >= 0", "1024",
        "File descriptors Kahi must be able to open. At start Kahi raises its soft limit (RLIMIT_NOFILE) to the hard one (and the hard one to minfds when it may, as root); a hard limit below minfds refuses the start. Programs inherit the raised limit, as under supervisord.",
        Some("[supervisord] minfds"),
        server(Int(0, 1 << 30, |s, n| s.minfds = n as u64))),
    key(Http, "listen", "string or array of strings", "none: no HTTP listener",
        "Addresses the HTTP API, probes, metrics and XML-RPC listen on: HOST:PORT, or unix:///PATH for a Unix socket (what supervisorctl -s unix:///PATH and curl --unix-socket reach). A listener on a non-loopback address needs users or insecure = true. A Unix socket left by a Kahi that is gone is replaced, one that still answers refuses the start; the file is removed at exit. TLS applies to TCP addresses only.",
        Some("[inet_http_server] port"),
        Custom),
    key(Http, "socket_mode", "octal string or integer", "\"0700\"",
        "Permission bits of a unix:// listen socket, set once it is bound.",
        Some("[unix_http_server] chmod"),
        http(Octal(|h, m| h.http.socket_mode = m))),
    key(Http, "socket_owner", "string (USER or USER:GROUP, names or numbers)", "the daemon's user and group",
        "Owner of a unix:// listen socket, set once it is bound; without GROUP, the user's primary group. Only root may give it to another user.",
        Some("[unix_http_server] chown"),
        Custom),
    key(Http, "peer_credentials", "boolean", "true",
        "On a unix:// listener, a client running as root or as the daemon's own user (seen with SO_PEERCRED, as on the control socket) is admin without a password; anyone else who can connect needs HTTP Basic credentials when users are configured. false: Basic for everyone.",
        None,
        http(Bool(|h, b| h.http.peer_credentials = b))),
    key(Server, "socket_group", "string (a group name) or integer (a gid)", "the daemon's group",
        "Group of the control socket, so that with socket_mode = \"0770\" its members can use kahi ctl. Peers are checked with SO_PEERCRED: root, the daemon's user and, when set, members of this group.",
        Some("[unix_http_server] chown"),
        Custom),
    key(Http, "tls_cert", "string (a path)", "none: plain HTTP",
        "PEM file of the certificate chain; with tls_key, every listener speaks HTTPS. Relative to the main file's directory.",
        None,
        Custom),
    key(Http, "tls_key", "string (a path)", "none",
        "PEM file of the certificate's private key.",
        None,
        Custom),
    key(Http, "users", "array of tables", "[]: no authentication",
        "Who may use the API, as [[server.http.users]] tables. With users, every request but /healthz and /readyz needs HTTP Basic authentication.",
        Some("[inet_http_server] username"),
        Custom),
    key(HttpUser, "name", "string", "required",
        "The user name; unique, without ':'.",
        Some("[inet_http_server] username"),
        Custom),
    key(HttpUser, "password_hash", "string", "required",
        "A bcrypt hash of the password, as kahi hash-password prints it.",
        Some("[inet_http_server] password"),
        Custom),
    key(HttpUser, "role", "\"viewer\", \"operator\" or \"admin\"", "required",
        "viewer may read (GET); operator may also start, stop, restart and signal processes and groups; admin may also read and apply the configuration and shut Kahi down.",
        None,
        Custom),
    key(Http, "insecure", "boolean", "false",
        "Allow listening on a non-loopback address without users.",
        None,
        http(Bool(|h, b| h.insecure = b))),
    key(Http, "max_connections", "integer from 1 to 1000000", "512",
        "Most connections at once on each listen address; past it a new connection takes the place of the one that has waited longest for its request head, and is closed when every connection has a request in hand.",
        None,
        http(Int(1, 1_000_000, |h, n| h.http.max_connections = n as usize))),
    key(Http, "metrics_auth", "boolean", "false",
        "Whether /metrics needs a user (the viewer role) when users are configured. By default it is a probe, like /healthz and /readyz: Prometheus scrapes it without a password.",
        None,
        http(Bool(|h, b| h.http.metrics_auth = b))),
    key(Logging, "level", "string", "\"info\"",
        "Level of the daemon's own log: error, warn, info, debug or trace. -v and RUST_LOG override it.",
        Some("[supervisord] loglevel"),
        Custom),
    key(Logging, "console", "true, false or \"auto\"", "\"auto\": on in the foreground, off with --daemonize",
        "Copy every line of every program to Kahi's own stdout, for docker logs or a cluster's collector.",
        None,
        Custom),
    key(Logging, "format", "\"text\" or \"json\"", "\"text\"",
        "Format of console lines (text: PROCESS | line; json: one object per line with ts, program, process, stream, line) and of Kahi's own log.",
        None,
        Custom),
    key(Logging, "max_line_bytes", "size (integer bytes or \"64KB\", \"1MB\", \"1GB\")", "\"64KB\"",
        "Lines longer than this are cut into pieces of this size on the console and in syslog, each piece but the last marked as continued. Log files and the ring buffer keep the bytes as they came.",
        None,
        Custom),
    key(Logging, "partial_line_secs", "number of seconds", "1",
        "A line without its newline is held this long after the program's last output, then written as it is (a prompt, a progress bar); 0 holds it until the newline comes or the pipe closes.",
        None,
        logging(Seconds(|l, d| l.partial_line_secs = d))),
    key(Logging, "syslog", "string: a socket path or \"udp://HOST:PORT\"", "\"/dev/log\"",
        "Where the lines of programs with stdout_syslog or stderr_syslog go, as RFC 5424 messages: a local datagram socket, or a collector over UDP.",
        None,
        Custom),
    key(Logging, "syslog_facility", "string", "\"daemon\"",
        "The syslog facility of those messages: kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, solaris-cron, local0 to local7.",
        None,
        Custom),
    key(Logging, "childlogdir", "string", "the system's temporary directory ($TMPDIR or /tmp)",
        "Directory of the log files of programs whose stdout_logfile or stderr_logfile is AUTO.",
        Some("[supervisord] childlogdir"),
        Custom),
    key(Program, "command", "string or array of strings", "required",
        "The program to run. A string is split like a POSIX shell word list (quotes and backslashes, no expansion); an array is used as argv, element by element, without splitting. Variables are expanded in both.",
        Some("command"),
        Custom),
    key(Program, "process_name", "string", "\"%(program_name)s\"",
        "Template for each process's name; must contain %(process_num) when numprocs > 1.",
        Some("process_name"),
        Custom),
    key(Program, "numprocs", "integer >= 1", "1",
        "How many copies of the program to run.",
        Some("numprocs"),
        program(Int(1, 100_000, |p, n| p.numprocs = n as u32))),
    key(Program, "numprocs_start", "integer >= 0", "0",
        "The first process_num.",
        Some("numprocs_start"),
        program(Int(0, 1_000_000, |p, n| p.numprocs_start = n as u32))),
    key(Program, "priority", "integer", "999",
        "Lower priorities start first and stop last.",
        Some("priority"),
        program(Int(i64::MIN, i64::MAX, |p, n| p.spec.priority = n))),
    key(Program, "autostart", "boolean", "true",
        "Start the program when the daemon starts.",
        Some("autostart"),
        program(Bool(|p, b| p.spec.autostart = b))),
    key(Program, "startsecs", "number >= 0 (seconds)", "1",
        "How long the program must stay up to count as RUNNING; fractions are allowed. 0: RUNNING as soon as it is spawned.",
        Some("startsecs"),
        program(Seconds(|p, d| p.spec.startsecs = d))),
    key(Program, "startretries", "integer >= 0", "3",
        "How many failed starts in a row (spawn errors, or exits before startsecs) are retried before the process goes FATAL.",
        Some("startretries"),
        program(Int(0, u32::MAX as i64, |p, n| p.spec.startretries = n as u32))),
    key(Program, "backoff_initial", "number >= 0 (seconds)", "1",
        "The wait before the first retry after a failed start (an exit before startsecs, or a spawn error).",
        None,
        program(Seconds(|p, d| p.spec.backoff_initial = d))),
    key(Program, "backoff_factor", "number from 1 to 100", "none: linear growth, as supervisord",
        "Without it, retry n waits backoff_initial × n (supervisord: 1 s, 2 s, 3 s ...); with it, backoff_initial × factor^(n-1).",
        None,
        Custom),
    key(Program, "backoff_max", "number >= 0 (seconds)", "none (but at most a day)",
        "The longest wait between retries, and between the restart guard's restarts.",
        None,
        program(Seconds(|p, d| p.spec.backoff_max = Some(d)))),
    key(Program, "restart_min_interval", "number >= 0 (seconds)", "1",
        "The restart guard's floor: a process that ran less than this is started again no sooner than this after its previous start (BACKOFF meanwhile), so a program that exits at once is restarted about once a second, not a thousand times. 0 turns the floor off.",
        None,
        program(Seconds(|p, d| p.spec.restart_min_interval = d))),
    key(Program, "backoff_reset", "number >= 0 (seconds)", "60",
        "The restart guard's memory: unexpected exits in a row grow the wait before the next automatic restart by the back-off policy (backoff_initial, backoff_factor, backoff_max; the first exit is restarted at once), until a run lasts this long.",
        None,
        program(Seconds(|p, d| p.spec.backoff_reset = d))),
    key(Program, "start_delay", "number >= 0 (seconds)", "0",
        "A wait before each start from a stopped state (at boot, kahi ctl start, an update); the process is STARTING meanwhile, and a stop cancels it. Automatic restarts and retries do not wait for it.",
        None,
        program(Seconds(|p, d| p.spec.start_delay = d))),
    key(Program, "start_timeout", "number >= 0 (seconds)", "90",
        "How long a start may wait for its dependencies (depends_on, after) before it is given up: the process goes FATAL with the reason, and a kahi ctl start waiting for it answers with an error. 0 waits for ever (systemd's TimeoutStartSec=infinity).",
        None,
        program(Seconds(|p, d| p.spec.start_timeout = d))),
    key(Program, "ready_delay", "number >= 0 (seconds)", "0",
        "How long the process must have been RUNNING before programs that depend on it (condition started) may start.",
        None,
        program(Seconds(|p, d| p.spec.ready_delay = d))),
    key(Program, "type", "\"simple\", \"oneshot\", \"notify\" or \"socket\"", "\"simple\"",
        "simple runs until stopped (RUNNING after startsecs); oneshot runs to completion: STARTING while it runs, then EXITED (or RUNNING with remain_after_exit) when its exit code is in exitcodes, BACKOFF and retries otherwise; notify is STARTING until it sends READY=1 on NOTIFY_SOCKET (sd_notify); socket is started at the first connection to one of its listen sockets, which it receives as fds 3, 4, ... (LISTEN_FDS).",
        None,
        program(Choice(&["simple", "oneshot", "notify", "socket"], |p, i| p.spec.kind = KINDS[i]))),
    key(Program, "listen", "array of strings", "none",
        "The sockets Kahi binds and listens on for a type = \"socket\" program, and hands to it when the first connection arrives.",
        None,
        Custom),
    key(Program, "accept", "boolean", "false",
        "With type = \"socket\": Kahi accepts each connection and starts one instance of the program for it, with the connection as stdin, stdout and fd 3 (inetd style, systemd's Accept=yes).",
        None,
        program(Bool(|p, b| p.spec.accept = b))),
    key(Program, "max_instances", "integer from 1 to 65536", "64",
        "With accept = true: most instances at once; further connections wait in the listen backlog until one ends.",
        None,
        program(Int(1, 65536, |p, n| p.spec.max_instances = n as u32))),
    key(Program, "watchdog_sec", "number >= 0 (seconds)", "0: no watchdog",
        "A notify program must send WATCHDOG=1 at least this often once RUNNING (it finds the period in WATCHDOG_USEC); if it does not, it gets SIGABRT, and autorestart decides.",
        None,
        program(Seconds(|p, d| p.spec.watchdog_sec = d))),
    key(Program, "remain_after_exit", "boolean", "false",
        "A oneshot that completed shows RUNNING (without a pid) until stopped, as systemd's RemainAfterExit.",
        None,
        program(Bool(|p, b| p.spec.remain_after_exit = b))),
    key(Program, "depends_on", "array of program names or { name, condition } tables", "[]",
        "Programs that must be ready before this one spawns: condition \"started\" (every process RUNNING, the default), \"healthy\" (a notify program said READY=1) or \"completed\" (a oneshot exited with an expected code). Until then the process is STARTING, with waiting_for in status.",
        None,
        Custom),
    key(Program, "requires", "array of program names", "[]",
        "As depends_on with condition \"started\", and this program is stopped when one of them fails or is stopped (systemd's Requires= with After=).",
        None,
        Custom),
    key(Program, "after", "array of program names", "[]",
        "Ordering only: when one of them is being started, wait until it is up (or has failed); when nobody starts it, do not wait (systemd's After=).",
        None,
        Custom),
    key(Program, "before", "array of program names", "[]",
        "The reverse of after: those programs start after this one.",
        None,
        Custom),
    key(Program, "on_dependency_failure", "\"stop\", \"restart\" or \"ignore\"", "\"ignore\"",
        "What happens to this running program when a program of its depends_on fails or is stopped: stop it, restart it (it starts again once the dependency is back), or nothing.",
        None,
        program(Choice(&["stop", "restart", "ignore"], |p, i| p.on_dependency_failure = ON_FAILURE[i]))),
    key(Program, "autorestart", "true, false or \"unexpected\"", "\"unexpected\"",
        "Restart a RUNNING process that exits: always, never, or only when the exit is unexpected (a code not in exitcodes, or death by a signal).",
        Some("autorestart"),
        Custom),
    key(Program, "exitcodes", "array of integers 0-255", "[0]",
        "Exit codes that count as expected.",
        Some("exitcodes"),
        Custom),
    key(Program, "stopsignal", "signal name or number", "\"TERM\"",
        "The signal sent first to stop the process.",
        Some("stopsignal"),
        Custom),
    key(Program, "stopwaitsecs", "number >= 0 (seconds)", "10",
        "How long to wait after stopsignal before sending SIGKILL.",
        Some("stopwaitsecs"),
        program(Seconds(|p, d| p.spec.stopwaitsecs = d))),
    key(Program, "stopasgroup", "boolean", "false",
        "Send stopsignal to the process's whole process group; implies killasgroup.",
        Some("stopasgroup"),
        program(Bool(|p, b| p.spec.stopasgroup = b))),
    key(Program, "killasgroup", "boolean", "same as stopasgroup",
        "Send the final SIGKILL to the whole process group.",
        Some("killasgroup"),
        program(Bool(|p, b| p.killasgroup = Some(b)))),
    key(Program, "user", "string", "the daemon's user",
        "Run as this user: NAME, UID, NAME:GROUP or UID:GID. Only a daemon running as root can switch users.",
        Some("user"),
        Custom),
    key(Program, "directory", "string", "the daemon's directory",
        "Working directory of the process.",
        Some("directory"),
        Custom),
    key(Program, "umask", "octal string or integer", "the daemon's umask",
        "File mode creation mask of the process.",
        Some("umask"),
        program(Octal(|p, m| p.spec.umask = Some(m)))),
    key(Program, "environment", "table of strings", "{}",
        "Variables added to the process's environment.",
        Some("environment"),
        Custom),
    key(Program, "clean_environment", "boolean", "false",
        "Start from an empty environment instead of the daemon's; SUPERVISOR_* and environment are still set.",
        None,
        program(Bool(|p, b| p.spec.clean_environment = b))),
    key(Program, "redirect_stderr", "boolean", "false",
        "Send the process's stderr into its stdout stream, in order.",
        Some("redirect_stderr"),
        program(Bool(|p, b| p.spec.redirect_stderr = b))),
    key(Program, "stdout_capture_maxbytes", "size (integer bytes or \"64KB\", \"1MB\", \"1GB\")", "\"1MB\"",
        "Size of the in-memory ring buffer of the process's stdout, read by kahi ctl tail; 0 disables it. Memory grows with output, up to this size.",
        Some("stdout_capture_maxbytes"),
        program(Size(|p, n| p.spec.stdout_capture_maxbytes = n))),
    key(Program, "stderr_capture_maxbytes", "size (integer bytes or \"64KB\", \"1MB\", \"1GB\")", "\"1MB\"",
        "Size of the in-memory ring buffer of the process's stderr.",
        Some("stderr_capture_maxbytes"),
        program(Size(|p, n| p.spec.stderr_capture_maxbytes = n))),
    key(Program, "stdout_events_enabled", "boolean", "false",
        "Publish the process's stdout as PROCESS_LOG_STDOUT events, one for each read of its pipe, as it is kept (ANSI stripped, secrets masked).",
        Some("stdout_events_enabled"),
        program(Bool(|p, b| p.spec.stdout_events_enabled = b))),
    key(Program, "stderr_events_enabled", "boolean", "false",
        "Publish the process's stderr as PROCESS_LOG_STDERR events.",
        Some("stderr_events_enabled"),
        program(Bool(|p, b| p.spec.stderr_events_enabled = b))),
    key(Program, "stdout_capturemode_maxbytes", "size (integer bytes or \"64KB\", \"1MB\", \"1GB\")", "0",
        "Capture mode: stdout between <!--XSUPERVISOR:BEGIN--> and <!--XSUPERVISOR:END--> is published as one PROCESS_COMMUNICATION_STDOUT event and not logged; one capture keeps its last this many bytes. 0 turns capture mode off.",
        Some("stdout_capture_maxbytes"),
        program(Size(|p, n| p.spec.stdout_capturemode_maxbytes = n))),
    key(Program, "stderr_capturemode_maxbytes", "size (integer bytes or \"64KB\", \"1MB\", \"1GB\")", "0",
        "Capture mode of the process's stderr, as stdout_capturemode_maxbytes: PROCESS_COMMUNICATION_STDERR.",
        Some("stderr_capture_maxbytes"),
        program(Size(|p, n| p.spec.stderr_capturemode_maxbytes = n))),
    key(Program, "stdout_logfile", "string: a path, AUTO, NONE, /dev/stdout or /dev/stderr", "NONE",
        "File that receives the process's stdout. AUTO: NAME-stdout.log in childlogdir. /dev/stdout and /dev/stderr: Kahi's own, raw, a whole line at a time, never rotated. A relative path is relative to the file that defines the program; its directory must exist.",
        Some("stdout_logfile"),
        Custom),
    key(Program, "stdout_logfile_maxbytes", "size (integer bytes or \"64KB\", \"1MB\", \"1GB\")", "\"50MB\"",
        "Rotate stdout_logfile once it would grow past this size, at a line boundary; 0 never rotates.",
        Some("stdout_logfile_maxbytes"),
        program(Size(|p, n| p.rotation[0].0 = n as u64))),
    key(Program, "stdout_logfile_backups", "integer from 0 to 1000", "10",
        "Rotated files kept (FILE.1 is the newest); 0 empties the file in place instead.",
        Some("stdout_logfile_backups"),
        program(Int(0, 1000, |p, n| p.rotation[0].1 = n as u32))),
    key(Program, "stderr_logfile", "string: a path, AUTO, NONE, /dev/stdout or /dev/stderr", "NONE",
        "File that receives the process's stderr; an error with redirect_stderr = true. AUTO: NAME-stderr.log in childlogdir.",
        Some("stderr_logfile"),
        Custom),
    key(Program, "stderr_logfile_maxbytes", "size (integer bytes or \"64KB\", \"1MB\", \"1GB\")", "\"50MB\"",
        "Rotate stderr_logfile once it would grow past this size, at a line boundary; 0 never rotates.",
        Some("stderr_logfile_maxbytes"),
        program(Size(|p, n| p.rotation[1].0 = n as u64))),
    key(Program, "stderr_logfile_backups", "integer from 0 to 1000", "10",
        "Rotated stderr files kept; 0 empties the file in place instead.",
        Some("stderr_logfile_backups"),
        program(Int(0, 1000, |p, n| p.rotation[1].1 = n as u32))),
    key(Program, "critical", "boolean", "false",
        "When the process exits on its own, stop every program and exit Kahi with its exit status (128 + N when killed by signal N); it is not restarted.",
        None,
        program(Bool(|p, b| p.spec.critical = b))),
    key(Program, "stdin_pipe", "boolean", "false",
        "Give the process a pipe on its stdin, written by POST /api/v1/processes/NAME/stdin and kahi ctl stdin; without it, stdin is /dev/null.",
        None,
        program(Bool(|p, b| p.spec.stdin_pipe = b))),
    key(Program, "limits", "table", "{}: the daemon's limits",
        "Resource limits of the process, as a [programs.NAME.limits] table (below).",
        None,
        Custom),
    key(Limits, "nofile", "integer or \"unlimited\"", "the daemon's",
        "Most open files (RLIMIT_NOFILE).",
        None,
        Custom),
    key(Limits, "nproc", "integer or \"unlimited\"", "the daemon's",
        "Most processes of the process's user (RLIMIT_NPROC).",
        None,
        Custom),
    key(Limits, "core", "size or \"unlimited\"", "the daemon's",
        "Largest core dump (RLIMIT_CORE); 0 writes none.",
        None,
        Custom),
    key(Limits, "as", "size or \"unlimited\"", "the daemon's",
        "Largest address space (RLIMIT_AS).",
        None,
        Custom),
    key(Limits, "cpu", "integer (seconds) or \"unlimited\"", "the daemon's",
        "CPU time before SIGXCPU (RLIMIT_CPU).",
        None,
        Custom),
    key(Limits, "memlock", "size or \"unlimited\"", "the daemon's",
        "Most locked memory (RLIMIT_MEMLOCK).",
        None,
        Custom),
    key(Limits, "stack", "size or \"unlimited\"", "the daemon's",
        "Largest stack (RLIMIT_STACK).",
        None,
        Custom),
    key(Limits, "memory_max", "size or \"max\"", "\"max\": no limit",
        "Most memory of the process and its children together (cgroup v2 memory.max); beyond it the kernel reclaims, then OOM-kills, which status reports.",
        None,
        Custom),
    key(Limits, "cpu_max", "number of CPUs, \"N%\" or \"max\"", "\"max\": no limit",
        "Most CPU time of the process and its children together, as CPUs (0.5: half of one) or a percentage of one (cgroup v2 cpu.max over 100 ms).",
        None,
        Custom),
    key(Limits, "pids_max", "integer or \"max\"", "\"max\": no limit",
        "Most processes and threads of the process and its children together (cgroup v2 pids.max).",
        None,
        Custom),
    key(Program, "healthcheck", "table", "none",
        "A health check of the running process, as a [programs.NAME.healthcheck] table (below).",
        None,
        Custom),
    key(Healthcheck, "exec", "string or array of strings", "none",
        "A command to run; exit status 0 is healthy. Split like command, without variable expansion.",
        None,
        Custom),
    key(Healthcheck, "tcp", "string (HOST:PORT)", "none",
        "An address to connect to; a connection is healthy. A host name here or in http is looked up when the configuration is loaded (and again by reread), never by a check: one that does not resolve is an error.",
        None,
        Custom),
    key(Healthcheck, "http", "string (an http:// URL)", "none",
        "A URL to GET; healthy when the status is in expect_status and the body holds expect_body.",
        None,
        Custom),
    key(Healthcheck, "expect_status", "integer or string (\"200-399\")", "\"200-399\"",
        "The statuses an http check accepts: one, or an inclusive range.",
        None,
        Custom),
    key(Healthcheck, "expect_body", "string", "none: any body",
        "Text the body of an http check must hold.",
        None,
        Custom),
    key(Healthcheck, "interval", "number > 0 (seconds)", "30",
        "The time between checks; the first runs a second after the process is RUNNING (or after interval, when shorter).",
        None,
        health(Seconds(|h, d| h.interval = d))),
    key(Healthcheck, "timeout", "number > 0 (seconds)", "30",
        "A check that takes longer fails.",
        None,
        health(Seconds(|h, d| h.timeout = d))),
    key(Healthcheck, "retries", "integer >= 1", "3",
        "Failures in a row that make the process unhealthy.",
        None,
        health(Int(1, 1_000_000, |h, n| h.retries = n as u32))),
    key(Healthcheck, "start_period", "number >= 0 (seconds)", "0",
        "After a start, failures do not count for this long (a pass counts at once).",
        None,
        health(Seconds(|h, d| h.start_period = d))),
    key(Healthcheck, "on_failure", "\"restart\", \"stop\" or \"none\"", "\"restart\"",
        "What an unhealthy process gets: a restart, a stop, or nothing but the state.",
        None,
        health(Choice(&["restart", "stop", "none"], |h, i| h.on_failure = HEALTH_ACTIONS[i]))),
    key(Program, "strip_ansi", "boolean", "false",
        "Remove ANSI escape sequences (colours, cursor movement) from the process's output before Kahi keeps or shows it.",
        Some("[supervisord] strip_ansi"),
        program(Bool(|p, b| p.spec.strip_ansi = b))),
    key(Program, "mask_env", "array of strings", "[]",
        "Environment variables whose values are replaced by **** in the process's output, wherever Kahi keeps or shows it; variables whose names end in _PASSWORD, _SECRET, _TOKEN or _KEY (values of 4 bytes or more) are masked without being named.",
        None,
        Custom),
    key(Program, "stdout_syslog", "boolean", "false",
        "Also send each stdout line to syslog ([logging] syslog), with the process as APP-NAME and stdout as MSGID.",
        Some("stdout_syslog"),
        program(Bool(|p, b| p.spec.stdout_syslog = b))),
    key(Program, "stderr_syslog", "boolean", "false",
        "Also send each stderr line to syslog; an error with redirect_stderr = true.",
        Some("stderr_syslog"),
        program(Bool(|p, b| p.spec.stderr_syslog = b))),
    key(Listener, "events", "array of strings", "required",
        "The event types the listener takes, by supervisord's names (PROCESS_STATE_EXITED, TICK_60, ...) or Kahi's (KAHI_HEALTH, ...); an abstract type (EVENT, PROCESS_STATE, PROCESS_LOG, PROCESS_GROUP, SUPERVISOR_STATE_CHANGE, TICK) takes every type under it.",
        Some("events"),
        Custom),
    key(Listener, "buffer_size", "integer from 1 to 100000", "10",
        "Events held for the listener's processes while none is READY; past it the oldest is dropped (and counted in kahi_events_dropped_total), as supervisord's buffer overflows.",
        Some("buffer_size"),
        listener(Int(1, 100_000, |l, n| l.buffer_size = n as usize))),
    key(Listener, "result_handler", "string", "\"supervisor.dispatchers:default_handler\"",
        "How a listener's answer is read: only supervisord's default, where a body of OK takes the event and any other gives it back, to be sent again. supervisord's other handlers are Python functions, and Kahi runs no Python: any other value is an error. A listener that wants another outcome acts on the event itself and answers OK.",
        Some("result_handler"),
        Custom),
    key(Fcgi, "socket", "string: \"tcp://HOST:PORT\" or \"unix:///PATH\"", "required",
        "The socket Kahi binds when it loads the configuration and keeps across restarts of the processes (and across reloads that leave it as it is), so no request is refused while one restarts. Each process of the program gets it as its stdin (fd 0), as FastCGI applications (php-cgi) expect; stdout and stderr are captured as for any program. A HOST name is looked up at load. May use %(program_name)s, %(here)s and the environment, not %(process_num)d.",
        Some("socket"),
        Custom),
    key(Fcgi, "socket_owner", "string: \"USER\" or \"USER:GROUP\"", "the program's user, when it is not Kahi's",
        "Owner of a Unix socket's file (only root may give it to another user); a Unix socket only.",
        Some("socket_owner"),
        Custom),
    key(Fcgi, "socket_mode", "octal string or integer", "\"0700\"",
        "Permission bits of a Unix socket's file; a Unix socket only.",
        Some("socket_mode"),
        Custom),
    key(Fcgi, "socket_backlog", "integer from 1 to 65535", "the system's most (SOMAXCONN)",
        "The listen backlog: connections that wait for a process to accept them.",
        Some("socket_backlog"),
        Custom),
    key(Group, "programs", "array of strings", "required",
        "The programs that belong to the group.",
        Some("programs"),
        Custom),
    key(Group, "priority", "integer", "999",
        "Default priority of the group's programs that do not set their own.",
        Some("priority"),
        Custom),
    key(Webhook, "url", "string (an http:// or https:// URL)", "required",
        "Where each event is POSTed. An https URL names its host (the certificate is verified against the name, with the system's certificates and ca_file); the host is looked up at each delivery, by the delivery thread.",
        None,
        Custom),
    key(Webhook, "events", "array of strings", "required",
        "The event types the webhook takes, as the events of [eventlisteners.NAME]: supervisord's names, Kahi's (KAHI_HEALTH, KAHI_DEPENDENCY, KAHI_UPDATE), or an abstract type that takes every type under it.",
        None,
        Custom),
    key(Webhook, "headers", "table of strings", "{}",
        "Header lines added to each request (Authorization, say); Content-Type and User-Agent may be replaced, Host, Content-Length, Transfer-Encoding, Connection and X-Kahi-Signature may not.",
        None,
        Custom),
    key(Webhook, "secret", "string", "none: unsigned",
        "Sign each body: X-Kahi-Signature: sha256= and the hex HMAC-SHA256 of the body with this key, as GitHub signs its webhooks. ${VAR} keeps it out of the file.",
        None,
        Custom),
    key(Webhook, "format", "\"json\" or \"slack\"", "\"json\"",
        "The body: Kahi's JSON object (see WEBHOOKS), or Slack's {\"text\": ...}, a readable line, which most chat tools take.",
        None,
        webhook(Choice(&["json", "slack"], |w, i| w.format = FORMATS[i]))),
    key(Webhook, "timeout", "number > 0 (seconds)", "10",
        "How long one attempt may take: looking the host up, connecting, sending, and reading the status line.",
        None,
        webhook(Seconds(|w, d| w.timeout = d))),
    key(Webhook, "retries", "integer from 0 to 100", "3",
        "Attempts after a failed one (an error, or a status other than 2xx), each after a wait twice as long as the one before; then the event is given up, counted as failed.",
        None,
        webhook(Int(0, 100, |w, n| w.retries = n as u32))),
    key(Webhook, "retry_backoff", "number >= 0 (seconds)", "1",
        "The wait before the first retry (then 2, 4, 8 ... times it, at most 5 minutes).",
        None,
        webhook(Seconds(|w, d| w.retry_backoff = d))),
    key(Webhook, "queue_size", "integer from 1 to 1000000", "1000",
        "Events waiting for delivery at most, while the receiver is slow or down; past it the oldest is dropped (counted as dropped).",
        None,
        webhook(Int(1, 1_000_000, |w, n| w.queue_size = n as usize))),
    key(Webhook, "ca_file", "string (a path)", "none: the system's certificates only",
        "A PEM file of certificates trusted besides the system's (/etc/ssl/certs/ca-certificates.crt or the like, or SSL_CERT_FILE), for a receiver with a private CA. Relative to the file that names it.",
        None,
        Custom),
];

/// The entry of `name` in `section`, if there is one.
pub fn find(section: Section, name: &str) -> Option<&'static Key> {
    keys_of(section).find(|k| k.name == name)
}

/// The keys of one section.
pub fn keys_of(section: Section) -> impl Iterator<Item = &'static Key> {
    KEYS.iter().filter(move |k| k.section == section)
}

/// The tables a section holds besides its keys, each a section of its own.
pub fn tables(section: Section) -> &'static [&'static str] {
    match section {
        Root => &[
            "server",
            "logging",
            "programs",
            "eventlisteners",
            "fcgi_programs",
            "groups",
            "webhooks",
        ],
        Server => &["http"],
        _ => &[],
    }
}

/// The known key closest to `name`, if it is close enough to be a likely typo.
pub fn suggest(section: Section, name: &str) -> Option<&'static str> {
    keys_of(section)
        .map(|k| k.name)
        .chain(tables(section).iter().copied())
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(d, candidate)| *d <= 2.max(candidate.len() / 4))
        .min()
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over bytes; the names compared are ASCII.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(suggest(Program, "startsec"), Some("startsecs"));
        assert_eq!(suggest(Program, "autorestrat"), Some("autorestart"));
        assert_eq!(suggest(Program, "stopsingal"), Some("stopsignal"));
        assert_eq!(suggest(Root, "program"), Some("programs"));
        assert_eq!(suggest(Program, "zzzzzz"), None);
    }

    #[test]
    fn every_key_is_documented() {
        for k in KEYS {
            assert!(!k.ty.is_empty() && !k.default.is_empty(), "{}: type and default", k.name);
            assert!(k.doc.ends_with('.'), "{}: doc is a sentence", k.name);
            assert!(k.supervisord.is_none_or(|s| !s.is_empty()), "{}", k.name);
        }
    }

    #[test]
    fn readers_belong_to_their_keys_section() {
        for k in KEYS {
            assert!(
                k.set.section().is_none_or(|s| s == k.section),
                "{}: reader of {:?}",
                k.name,
                k.set
            );
        }
    }

    /// Every index a `Choice` can give is one its setter takes.
    #[test]
    fn choices_have_a_value_for_each_name() {
        fn each<T: Default>(read: &Read<T>) {
            if let Choice(names, set) = read {
                (0..names.len()).for_each(|i| set(&mut T::default(), i));
            }
        }
        for k in KEYS {
            match &k.set {
                Set::Program(r) => each(r),
                Set::Server(r) => each(r),
                Set::Http(r) => each(r),
                Set::Logging(r) => each(r),
                Set::Health(r) => each(r),
                Set::Listener(r) => each(r),
                Set::Webhook(r) => each(r),
                Set::Custom => {}
            }
        }
    }

    #[test]
    fn keys_are_unique_per_section() {
        for (i, a) in KEYS.iter().enumerate() {
            for b in &KEYS[i + 1..] {
                assert!(!(a.section == b.section && a.name == b.name), "duplicate key {}", a.name);
            }
        }
    }
}
