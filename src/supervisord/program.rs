//! One `[program:x]` or `[eventlistener:x]` section read as supervisord's
//! `_processes_from_section` reads it (options.py): the keys read once, with their defaults and
//! types; then, for each process_num, `environment`, `directory`, the log files, `command` and
//! the process's name, each expanded with that process's table. The outcome is a [`Program`]:
//! Kahi keys as TOML values, and each process's per-process values. No I/O but the checks
//! supervisord makes on this host (a log file's directory, a user).

use super::Note;
use super::emit::{Src, inline, string, strings};
use super::format::{Dict, Expanded, expand};
use super::ini::{Ini, Section, Value};
use super::values::{self, AutoRestart};
use crate::config::ConfigError;

/// The keys a program section may have; any other is ignored by supervisord (Kahi warns).
pub const PROGRAM_KEYS: &[&str] = &[
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "priority",
    "autostart",
    "autorestart",
    "startsecs",
    "startretries",
    "exitcodes",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "user",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stdout_capture_maxbytes",
    "stdout_events_enabled",
    "stdout_syslog",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_capture_maxbytes",
    "stderr_events_enabled",
    "stderr_syslog",
    "environment",
    "directory",
    "umask",
    "serverurl",
];

/// What an `[eventlistener:x]` has besides.
pub const LISTENER_KEYS: &[&str] = &["events", "buffer_size", "result_handler"];

/// supervisord's event types (events.py `EventTypes`).
const EVENT_TYPES: &[&str] = &[
    "EVENT",
    "PROCESS_STATE",
    "PROCESS_STATE_STOPPED",
    "PROCESS_STATE_EXITED",
    "PROCESS_STATE_STARTING",
    "PROCESS_STATE_STOPPING",
    "PROCESS_STATE_BACKOFF",
    "PROCESS_STATE_FATAL",
    "PROCESS_STATE_RUNNING",
    "PROCESS_STATE_UNKNOWN",
    "PROCESS_COMMUNICATION",
    "PROCESS_COMMUNICATION_STDOUT",
    "PROCESS_COMMUNICATION_STDERR",
    "PROCESS_LOG",
    "PROCESS_LOG_STDOUT",
    "PROCESS_LOG_STDERR",
    "REMOTE_COMMUNICATION",
    "SUPERVISOR_STATE_CHANGE",
    "SUPERVISOR_STATE_CHANGE_RUNNING",
    "SUPERVISOR_STATE_CHANGE_STOPPING",
    "TICK",
    "TICK_5",
    "TICK_60",
    "TICK_3600",
    "PROCESS_GROUP",
    "PROCESS_GROUP_ADDED",
    "PROCESS_GROUP_REMOVED",
];

/// The names expanded per process, kept as templates for Kahi when it can expand them.
pub const PER_PROCESS: &[&str] = &["process_num", "numprocs"];

/// A program read: its Kahi keys (TOML values), then its processes.
#[derive(Debug)]
pub struct Program {
    pub section: usize,
    pub listener: bool,
    pub name: String,
    pub group: String,
    /// Keys the same for every process: (Kahi key, TOML value, source).
    pub keys: Vec<(String, String, Src)>,
    pub numprocs_start: i64,
    pub procs: Vec<Proc>,
}

/// One process's own values: (Kahi key, expansion, source), and its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Proc {
    pub name: String,
    pub values: Vec<(String, Expanded, Src)>,
    pub environment: Vec<(String, String)>,
    pub environment_src: Src,
}

/// Reads one section's keys, with the table each may use.
pub struct Reader<'a> {
    pub ini: &'a Ini,
    pub sec: &'a Section,
    pub notes: &'a mut Vec<Note>,
}

impl Reader<'_> {
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.ini.get(self.sec, key)
    }

    pub fn src(&self, key: &str) -> Src {
        self.value(key).map(|v| (v.file, v.line))
    }

    /// The error `message` about `key`, at its line (or the section's).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let (file, line) = self.src(key).unwrap_or((self.sec.file, self.sec.line));
        let name = if key.is_empty() {
            format!("[{}]", self.sec.name)
        } else {
            format!("[{}] {key}", self.sec.name)
        };
        self.ini.error_line(file, line, &name, message)
    }

    pub fn note(&mut self, key: &str, unmapped: bool, message: impl Into<String>) {
        let error = self.error(key, message);
        self.notes.push(Note { error, unmapped });
    }

    /// `key` expanded with `dict`, or `default` (expanded too, as `saneget` does) when unset.
    pub fn expanded(
        &mut self,
        key: &str,
        default: Option<&str>,
        dict: &Dict,
        keep: &[&str],
    ) -> Result<Option<Expanded>, ConfigError> {
        let Some(raw) = self.value(key).map(|v| v.text.clone()).or(default.map(String::from))
        else {
            return Ok(None);
        };
        let e = expand(&raw, dict, keep).map_err(|e| self.error(key, e.message(&raw)))?;
        if e.whole_table {
            self.note(
                key,
                true,
                "a '%' with no (name) before s, r or a: supervisord puts its whole table of names \
                 there; Kahi keeps the text as written (write %% for a literal %)",
            );
        }
        Ok(Some(e))
    }

    /// `key` expanded and converted by `f`, or `default`.
    pub fn typed<T>(
        &mut self,
        key: &str,
        default: &str,
        dict: &Dict,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let text = self.expanded(key, Some(default), dict, &[])?.map(|e| e.plain);
        f(text.as_deref().unwrap_or(default)).map_err(|e| self.error(key, e))
    }
}

/// Reads `[program:x]` (or `[eventlistener:x]` when `listener`) of group `group`. `dict`
/// holds here, host_node_name and ENV_*.
pub fn read(
    r: &mut Reader<'_>,
    section: usize,
    name: &str,
    group: &str,
    listener: bool,
    base: &Dict,
    strip_ansi: bool,
) -> Result<Program, ConfigError> {
    let mut dict = base.clone();
    dict.set_str("program_name", name);
    dict.set_str("group_name", group);
    let mut keys: Vec<(String, String, Src)> = Vec::new();
    // Written when set, and always for a listener pool (its priority, default -1: started
    // first, stopped last, orders its processes in Kahi) and for a program in a [group:x] (Kahi
    // would give it the group's; supervisord keeps the process's own, 999 by default).
    let priority =
        r.typed("priority", if listener { "-1" } else { "999" }, &dict, values::integer)?;
    if listener || group != name || r.value("priority").is_some() {
        keys.push(("priority".into(), priority.to_string(), r.src("priority")));
    }
    let mut put = |r: &Reader<'_>, key: &str, kahi: &str, value: String| {
        if r.value(key).is_some() {
            keys.push((kahi.to_string(), value, r.src(key)));
        }
    };
    let autostart = r.typed("autostart", "true", &dict, values::boolean)?;
    put(r, "autostart", "autostart", autostart.to_string());
    let autorestart = r.typed("autorestart", "unexpected", &dict, values::auto_restart)?;
    let restart = match autorestart {
        AutoRestart::Always => "true".into(),
        AutoRestart::Never => "false".into(),
        AutoRestart::Unexpected => string("unexpected"),
    };
    put(r, "autorestart", "autorestart", restart);
    for key in ["startsecs", "startretries", "stopwaitsecs"] {
        let default = if key == "startretries" {
            "3"
        } else if key == "startsecs" {
            "1"
        } else {
            "10"
        };
        let n = r.typed(key, default, &dict, values::integer)?;
        put(r, key, key, n.to_string());
    }
    let signal = r.typed("stopsignal", "TERM", &dict, values::signal_number)?;
    match nix::sys::signal::Signal::try_from(signal) {
        Ok(s) => put(r, "stopsignal", "stopsignal", string(s.as_str())),
        Err(_) => r.note(
            "stopsignal",
            true,
            format!("signal {signal} is not one Kahi can send as a stop signal; TERM is used"),
        ),
    }
    let stopasgroup = r.typed("stopasgroup", "false", &dict, values::boolean)?;
    put(r, "stopasgroup", "stopasgroup", stopasgroup.to_string());
    let killasgroup =
        r.typed("killasgroup", if stopasgroup { "true" } else { "false" }, &dict, values::boolean)?;
    put(r, "killasgroup", "killasgroup", killasgroup.to_string());
    let exitcodes = r.typed("exitcodes", "0", &dict, values::exitcodes)?;
    let codes: Vec<String> = exitcodes.iter().map(i32::to_string).collect();
    put(r, "exitcodes", "exitcodes", format!("[{}]", codes.join(", ")));
    let redirect_stderr = r.typed("redirect_stderr", "false", &dict, values::boolean)?;
    if listener && redirect_stderr {
        return Err(r.error(
            "redirect_stderr",
            format!(
                "[{}] section sets redirect_stderr=true but this is not allowed because it will \
                 interfere with the eventlistener protocol",
                r.sec.name
            ),
        ));
    }
    put(r, "redirect_stderr", "redirect_stderr", redirect_stderr.to_string());
    let numprocs = r.typed("numprocs", "1", &dict, values::integer)?;
    let numprocs_start = r.typed("numprocs_start", "0", &dict, values::integer)?;
    for stream in ["stdout", "stderr"] {
        let key = format!("{stream}_capture_maxbytes");
        let n = r.typed(&key, "0", &dict, values::byte_size)?;
        put(r, &key, &format!("{stream}_capturemode_maxbytes"), n.to_string());
        let key = format!("{stream}_events_enabled");
        let b = r.typed(&key, "false", &dict, values::boolean)?;
        put(r, &key, &key, b.to_string());
    }
    if let Some(url) = r.expanded("serverurl", None, &dict, &[])?
        && !url.plain.trim().eq_ignore_ascii_case("auto")
    {
        r.note(
            "serverurl",
            true,
            "ignored: Kahi gives every program one SUPERVISOR_SERVER_URL, its own XML-RPC \
             address (the first [server.http] listen address), as supervisord's serverurl=AUTO",
        );
    }
    if let Some(user) = r.expanded("user", None, &dict, &[])? {
        if r.ini.host_checks {
            check_user(&user.plain).map_err(|e| r.error("user", e))?;
        }
        put(r, "user", "user", string(&user.plain));
    }
    if r.value("umask").is_some() {
        let umask = r.typed("umask", "022", &dict, values::octal)?;
        put(r, "umask", "umask", string(&format!("{umask:03o}")));
    }
    if strip_ansi {
        keys.push(("strip_ansi".into(), "true".into(), None));
    }
    // The name template is checked before it is expanded, as supervisord does.
    let template = match r.value("process_name") {
        Some(v) => values::name(&v.text).map_err(|e| r.error("process_name", e))?,
        None => "%(program_name)s".to_string(),
    };
    if numprocs > 1 && !template.contains("%(process_num)") {
        return Err(r.error(
            "process_name",
            "%(process_num) must be present within process_name when numprocs > 1",
        ));
    }
    if stopasgroup && !killasgroup {
        return Err(r.error("killasgroup", "Cannot set stopasgroup=true and killasgroup=false"));
    }
    if listener {
        listener_keys(r, &dict, &mut keys)?;
    }
    let keep: &[&str] = if numprocs > 1 { PER_PROCESS } else { &[] };
    let mut procs = Vec::new();
    for num in numprocs_start..numprocs_start.saturating_add(numprocs.max(0)) {
        let mut dict = dict.clone();
        dict.set_int("process_num", num);
        dict.set_int("numprocs", numprocs);
        let proc = process(r, &mut dict, keep, &template, redirect_stderr, listener)?;
        procs.push(proc);
    }
    if numprocs < 1 {
        r.note(
            "numprocs",
            false,
            format!("numprocs = {numprocs}: supervisord runs no process of it, nor does Kahi"),
        );
    }
    Ok(Program {
        section,
        listener,
        name: name.to_string(),
        group: group.to_string(),
        keys,
        numprocs_start,
        procs,
    })
}

/// One process: the per-process keys, in supervisord's order.
fn process(
    r: &mut Reader<'_>,
    dict: &mut Dict,
    keep: &[&str],
    template: &str,
    redirect_stderr: bool,
    listener: bool,
) -> Result<Proc, ConfigError> {
    let mut values: Vec<(String, Expanded, Src)> = Vec::new();
    let raw = r.value("environment").map(|v| v.text.clone()).unwrap_or_default();
    let text = expand(&raw, dict, &[]).map_err(|e| r.error("environment", e.message(&raw)))?;
    let (environment, lost) =
        values::environment(&text.plain).map_err(|e| r.error("environment", e))?;
    for why in lost {
        r.note("environment", false, format!("{why} (supervisord reads it so too)"));
    }
    for (k, v) in &environment {
        dict.set_str(&format!("ENV_{k}"), v.clone());
    }
    if let Some(d) = r.expanded("directory", None, dict, keep)? {
        values.push(("directory".into(), d, r.src("directory")));
    }
    for stream in ["stdout", "stderr"] {
        let key = format!("{stream}_logfile");
        let set = r.value(&key).is_some();
        let Some(e) = r.expanded(&key, Some("AUTO"), dict, keep)? else { continue };
        let backups = r.typed(&format!("{key}_backups"), "10", dict, values::integer)?;
        let maxbytes = r.typed(&format!("{key}_maxbytes"), "50MB", dict, values::byte_size)?;
        let mut syslog = r.typed(&format!("{stream}_syslog"), "false", dict, values::boolean)?;
        let lower = e.plain.to_lowercase();
        let mut log = match lower.as_str() {
            "none" | "off" => None,
            "auto" => Some(Expanded { plain: "AUTO".into(), kahi: "AUTO".into(), ..e.clone() }),
            "syslog" => {
                r.note(
                    &key,
                    false,
                    format!("{key}=syslog is deprecated: read as {stream}_syslog=true"),
                );
                syslog = true;
                None
            }
            _ => Some(logfile_path(r, &key, e)?),
        };
        if stream == "stderr" && redirect_stderr {
            if log.as_ref().is_some_and(|l| l.plain != "AUTO") {
                r.note(&key, false, "redirect_stderr=true but stderr_logfile has also been set to a filename, the filename has been ignored");
            }
            log = None;
        }
        if log.as_ref().is_some_and(|l| l.plain == "AUTO") && maxbytes == 0 {
            r.note(&key, false, format!("AUTO logging used for {key} without rollover, set maxbytes > 0 to avoid filling up filesystem unintentionally"));
        }
        // A listener's stdout is the protocol: only a log file asked for is kept.
        let wanted = set || !(listener && stream == "stdout");
        if let Some(log) = log.filter(|_| wanted) {
            values.push((key.clone(), log, r.src(&key)));
            for (k, v) in [("maxbytes", maxbytes), ("backups", backups)] {
                let k = format!("{key}_{k}");
                if r.value(&k).is_some() {
                    let text = v.to_string();
                    let e = Expanded {
                        plain: text.clone(),
                        kahi: text,
                        whole_table: false,
                        kept: false,
                    };
                    values.push((k.clone(), e, r.src(&k)));
                }
            }
        }
        if syslog {
            let e = Expanded {
                plain: "true".into(),
                kahi: "true".into(),
                whole_table: false,
                kept: false,
            };
            values.push((format!("{stream}_syslog"), e, r.src(&key)));
        }
    }
    let Some(command) = r.expanded("command", None, dict, keep)? else {
        return Err(
            r.error("", format!("program section {} does not specify a command", r.sec.name))
        );
    };
    unsplittable(r, &command.plain);
    values.push(("command".into(), command, r.src("command")));
    let name =
        expand(template, dict, keep).map_err(|e| r.error("process_name", e.message(template)))?;
    let plain = name.plain.clone();
    values.push(("process_name".into(), name, r.src("process_name")));
    Ok(Proc { name: plain, values, environment, environment_src: r.src("environment") })
}

/// A log file's path: `~` expanded, its directory must exist now (when the host is checked);
/// relative to the directory Kahi runs in, as supervisord opens it.
fn logfile_path(r: &Reader<'_>, key: &str, mut e: Expanded) -> Result<Expanded, ConfigError> {
    if let Some(rest) = e.plain.strip_prefix('~')
        && let Ok(home) = std::env::var("HOME")
    {
        e.plain = format!("{home}{rest}");
        e.kahi = format!("{}{}", escape(&home), &e.kahi[1..]);
    }
    let path = std::path::Path::new(&e.plain);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && r.ini.host_checks
        && !dir.is_dir()
    {
        return Err(r.error(
            key,
            format!("The directory named as part of the path {} does not exist.", e.plain),
        ));
    }
    if path.is_relative() {
        let cwd = std::env::current_dir().unwrap_or_default();
        e.plain = cwd.join(&e.plain).to_string_lossy().into_owned();
        e.kahi = format!("{}/{}", escape(&cwd.to_string_lossy()), e.kahi);
    }
    Ok(e)
}

/// `s` as a Kahi value that expands to itself.
pub fn escape(s: &str) -> String {
    s.replace('%', "%%").replace('$', "$$")
}

/// A command that cannot be split into words: supervisord accepts the file and fails at each
/// spawn ("can't parse command"); Kahi writes it as one word, which cannot start either
/// (`map`'s `value`). Said once per program, with the likely cause: an inline comment cut it.
fn unsplittable(r: &mut Reader<'_>, command: &str) {
    let Err(why) = crate::config::words::split(command) else { return };
    let cause = if r.value("command").is_some_and(|v| v.cut) {
        "; probably cut short by an inline comment (a ';' or '#' after a space ends a \
         supervisord value, also inside quotes): write it with no space before the ';' or '#'"
    } else {
        ""
    };
    let error = r.error(
        "command",
        format!(
            "{command:?} cannot be split into words ({why}): supervisord cannot start it \
             (\"can't parse command\"), nor can Kahi, which keeps it as one word{cause}"
        ),
    );
    if !r.notes.iter().any(|n| n.error == error) {
        r.notes.push(Note::warning(error));
    }
}

/// supervisord's `name_to_uid`: a user name or uid that exists here.
pub fn check_user(user: &str) -> Result<(), String> {
    use nix::unistd::{Uid, User};
    match values::integer(user) {
        Ok(uid) => match u32::try_from(uid)
            .ok()
            .and_then(|u| User::from_uid(Uid::from_raw(u)).ok().flatten())
        {
            Some(_) => Ok(()),
            None => Err(format!("Invalid user id {user}")),
        },
        Err(_) => match User::from_name(user).ok().flatten() {
            Some(_) => Ok(()),
            None => Err(format!("Invalid user name {user}")),
        },
    }
}

/// `events`, `buffer_size`, `result_handler` of an `[eventlistener:x]`.
fn listener_keys(
    r: &mut Reader<'_>,
    dict: &Dict,
    keys: &mut Vec<(String, String, Src)>,
) -> Result<(), ConfigError> {
    // Pool-level keys see here and ENV_* only.
    let mut pool = Dict::default();
    for (k, v) in &dict.0 {
        if k.starts_with("ENV_") || k == "here" {
            pool.0.insert(k.clone(), v.clone());
        }
    }
    let buffer_size = r.typed("buffer_size", "10", &pool, values::integer)?;
    if buffer_size < 1 {
        return Err(r.error(
            "buffer_size",
            format!("[{}] section sets invalid buffer_size ({buffer_size})", r.sec.name),
        ));
    }
    if r.value("buffer_size").is_some() {
        keys.push(("buffer_size".into(), buffer_size.to_string(), r.src("buffer_size")));
    }
    if let Some(h) = r.expanded("result_handler", None, &pool, &[])? {
        keys.push(("result_handler".into(), string(&h.plain), r.src("result_handler")));
    }
    let events = r.expanded("events", Some(""), &pool, &[])?.map(|e| e.plain).unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    for e in values::list_of_strings(&events) {
        let upper = e.to_uppercase();
        if !names.contains(&upper) {
            names.push(upper);
        }
    }
    if names.is_empty() {
        return Err(
            r.error("events", format!("[{}] section requires an \"events\" line", r.sec.name))
        );
    }
    if let Some(bad) = names.iter().find(|n| !EVENT_TYPES.contains(&n.as_str())) {
        return Err(
            r.error("events", format!("Unknown event type {bad} in [{}] events", r.sec.name))
        );
    }
    keys.push(("events".into(), strings(&names), r.src("events")));
    Ok(())
}

/// The environment as a TOML inline table.
pub fn environment_value(env: &[(String, String)]) -> String {
    inline(env)
}
