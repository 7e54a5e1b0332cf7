//! The mapping: supervisord's sections, read as supervisord reads them, written as Kahi's
//! TOML. `[program:x]` -> `[programs.x]`, `[eventlistener:x]` -> `[eventlisteners.x]`,
//! `[fcgi-program:x]` -> `[fcgi_programs.x]` (its socket keys read here), `[group:x]` -> `[groups.x]`, `[supervisord]` -> `[server]`, `[logging]` and each program's
//! keys, `[unix_http_server]` -> `[server]`'s socket, `[inet_http_server]` -> `[server.http]`
//! (`src/supervisord/server.rs`). What Kahi cannot carry is a note with its place and the
//! reason; what supervisord ignores (an unknown key or section) is a warning. No I/O but
//! supervisord's checks of this host.

use std::collections::HashMap;

use super::Note;
use super::emit::{Out, Src, bare, string, strings};
use super::format::{Dict, Expanded};
use super::ini::{Ini, Section};
use super::program::{self, LISTENER_KEYS, PROGRAM_KEYS, Program, Reader, environment_value};
use super::server::{self, Tables};
use super::values;
use crate::config::ConfigError;

/// What a migration found: the TOML and the notes.
pub struct Mapped {
    pub out: Out,
    pub notes: Vec<Note>,
}

/// A `[group:x]`: its name, members (supervisord program names), priority, place.
struct Group {
    name: String,
    members: Vec<String>,
    priority: Option<i64>,
    src: Src,
}

/// Maps `ini`; `env` is the environment supervisord would run in (its `ENV_*`), `host` its
/// `host_node_name`.
pub fn map(ini: &Ini, env: &[(String, String)], host: &str) -> Result<Mapped, Vec<ConfigError>> {
    let mut notes: Vec<Note> = ini.warnings.iter().cloned().map(Note::warning).collect();
    let mut errors = Vec::new();
    let here = ini.files[0].parent().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
    let mut base = Dict::default().with_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    base.set_str("here", &here);

    let mut tables = Tables::default();
    let global = server::supervisord(ini, &base, host, &mut tables, &mut notes, &mut errors);
    server::servers(ini, &base, &mut tables, &mut notes, &mut errors);

    // Programs see [supervisord] environment as ENV_*, and get it under their own.
    let mut dict = base.clone();
    dict.set_str("host_node_name", host);
    for (k, v) in &global.environment {
        dict.set_str(&format!("ENV_{k}"), v.clone());
    }
    let groups = groups(ini, &base, &mut notes, &mut errors);
    let mut membership: HashMap<String, String> = HashMap::new();
    for g in &groups {
        for member in &g.members {
            if let Some(first) = membership.get(member) {
                let sec = ini.sections.iter().find(|s| s.name == format!("group:{}", g.name));
                if let Some(sec) = sec {
                    let r = Reader { ini, sec, notes: &mut notes };
                    let e = r.error("programs", format!(
                        "{member} is in [group:{first}] already: supervisord runs it in both groups, Kahi only in the first"
                    ));
                    notes.push(Note { error: e, unmapped: true });
                }
                continue;
            }
            membership.insert(member.clone(), g.name.clone());
        }
    }

    let mut programs: Vec<Program> = Vec::new();
    for (i, sec) in ini.sections.iter().enumerate() {
        let listener = sec.name.starts_with("eventlistener:");
        let fcgi = sec.name.starts_with("fcgi-program:");
        let Some(raw) = sec
            .name
            .strip_prefix("program:")
            .or_else(|| sec.name.strip_prefix("eventlistener:"))
            .or_else(|| sec.name.strip_prefix("fcgi-program:"))
        else {
            continue;
        };
        let known: &[&[&str]] = match (listener, fcgi) {
            (true, _) => &[PROGRAM_KEYS, LISTENER_KEYS],
            (_, true) => &[PROGRAM_KEYS, FCGI_KEYS],
            _ => &[PROGRAM_KEYS],
        };
        unknown_keys(ini, sec, known, &mut notes);
        let mut r = Reader { ini, sec, notes: &mut notes };
        let name = match values::name(raw) {
            Ok(n) => n,
            Err(e) => {
                errors.push(r.error("", e));
                continue;
            }
        };
        let group = match membership.get(&name) {
            Some(g) if !listener => g.clone(),
            _ => name.clone(),
        };
        let read = program::read(&mut r, i, &name, &group, listener, &dict, global.strip_ansi);
        // In a [group:x], supervisord runs an fcgi-program's processes as a program's, and
        // reads none of its socket keys.
        let read = match read {
            Ok(p) if fcgi && group != name => {
                r.note("", false, format!("in [group:{group}], supervisord runs its processes without the socket, as a program's (its socket keys are not read), and so does Kahi: take it out of the group to give them the socket"));
                Ok(p)
            }
            Ok(mut p) if fcgi => fcgi_keys(&mut r, &name, &dict, &mut p.keys).map(|()| p),
            other => other,
        };
        // supervisord gives every process a pipe for its stdin and holds the other end (a
        // listener's is its protocol, an fcgi program's the socket): a program that reads it
        // waits there, where /dev/null would end it (`cat` exits at once under Kahi's default).
        let read = read.map(|mut p| {
            let own_stdin = p.listener || (fcgi && p.group == p.name);
            if !own_stdin {
                p.keys.push(("stdin_pipe".into(), "true".into(), None));
            }
            p
        });
        match read {
            Ok(mut p) => {
                for proc in &mut p.procs {
                    proc.environment = overlay(&global.environment, &proc.environment);
                }
                programs.push(p);
            }
            Err(e) => errors.push(e),
        }
    }
    // supervisord expands its plugins' keys with ENV_* alone.
    let mut plugin = Dict::default().with_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for (k, v) in &global.environment {
        plugin.set_str(&format!("ENV_{k}"), v.clone());
    }
    other_sections(ini, &plugin, &mut notes, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut out = Out::default();
    out.line(
        &format!("# Kahi's configuration, written by kahi migrate from {}", ini.files[0].display()),
        None,
    );
    out.line("# Each table names the supervisord section it comes from.", None);
    tables.write(&mut out, ini);
    let mut names: HashMap<String, Vec<String>> = HashMap::new();
    for p in &programs {
        names.insert(p.name.clone(), emit_program(&mut out, p, ini));
    }
    for g in &groups {
        let list: Vec<String> = g
            .members
            .iter()
            .filter(|m| membership.get(*m) == Some(&g.name))
            .flat_map(|m| names.get(m).cloned().unwrap_or_default())
            .collect();
        if list.is_empty() {
            continue;
        }
        out.table(&format!("groups.{}", bare(&g.name)), g.src, &ini.files);
        out.key("programs", &strings(&list), g.src);
        if let Some(p) = g.priority {
            out.key("priority", &p.to_string(), g.src);
        }
    }
    // A program written as one Kahi program per process keeps its group by a [groups.x].
    for p in programs.iter().filter(|p| p.group == p.name && !p.listener) {
        let list = names.get(&p.name).cloned().unwrap_or_default();
        if list.is_empty() || list == [p.name.clone()] {
            continue;
        }
        let sec = &ini.sections[p.section];
        let src = Some((sec.file, sec.line));
        out.table(&format!("groups.{}", bare(&p.name)), src, &ini.files);
        out.key("programs", &strings(&list), src);
    }
    Ok(Mapped { out, notes })
}

/// `programs` overlaid on `global`: a key of both keeps its global place, the program's value.
fn overlay(global: &[(String, String)], own: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = global.to_vec();
    for (k, v) in own {
        match env.iter_mut().find(|(g, _)| g == k) {
            Some((_, gv)) => *gv = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    env
}

/// Writes a program's table(s); returns the Kahi program names written. One table when every
/// process's values are the same templates (`%(process_num)02d` left for Kahi) that Kahi expands
/// to what supervisord has; else one Kahi program per process, named after it.
fn emit_program(out: &mut Out, p: &Program, ini: &Ini) -> Vec<String> {
    let sec = &ini.sections[p.section];
    let fcgi = sec.name.starts_with("fcgi-program:") && p.group == p.name;
    let table = match (p.listener, fcgi) {
        (true, _) => "eventlisteners",
        (_, true) => "fcgi_programs",
        _ => "programs",
    };
    let src = Some((sec.file, sec.line));
    if p.procs.is_empty() {
        return Vec::new();
    }
    let n = p.procs.len();
    if n == 1 || uniform(p) {
        out.table(&format!("{table}.{}", bare(&p.name)), src, &ini.files);
        let first = &p.procs[0];
        for (k, e, src) in ordered(&first.values) {
            if k == "process_name" && n == 1 && e.plain == p.name {
                continue;
            }
            let text = if n == 1 { program::escape(&e.plain) } else { e.kahi.clone() };
            out.key(k, &value(k, &text), *src);
        }
        if n > 1 {
            out.key("numprocs", &n.to_string(), src);
            if p.numprocs_start != 0 {
                out.key("numprocs_start", &p.numprocs_start.to_string(), src);
            }
        }
        keys(out, p, first);
        return vec![p.name.clone()];
    }
    let mut names = Vec::new();
    for proc in &p.procs {
        out.table(&format!("{table}.{}", bare(&proc.name)), src, &ini.files);
        out.line(&format!("# process {:?} of [{}], numprocs = {n}", proc.name, sec.name), src);
        for (k, e, src) in ordered(&proc.values).into_iter().filter(|(k, ..)| k != "process_name") {
            out.key(k, &value(k, &program::escape(&e.plain)), *src);
        }
        keys(out, p, proc);
        names.push(proc.name.clone());
    }
    names
}

/// A process's values, command and name first (supervisord reads them last).
fn ordered(values: &[(String, Expanded, Src)]) -> Vec<&(String, Expanded, Src)> {
    let rank = |k: &str| match k {
        "command" => 0,
        "process_name" => 1,
        _ => 2,
    };
    let mut v: Vec<_> = values.iter().collect();
    v.sort_by_key(|(k, ..)| rank(k));
    v
}

/// The keys every process shares, then the process's environment.
fn keys(out: &mut Out, p: &Program, proc: &program::Proc) {
    for (k, v, src) in &p.keys {
        out.key(k, v, *src);
    }
    if !proc.environment.is_empty() {
        let env: Vec<(String, String)> =
            proc.environment.iter().map(|(k, v)| (k.clone(), program::escape(v))).collect();
        out.key("environment", &environment_value(&env), proc.environment_src);
    }
}

/// A per-process value as TOML: numbers and booleans bare, the rest strings; a command that
/// cannot be split into words is one word (see `program::unsplittable`).
fn value(key: &str, text: &str) -> String {
    if key.ends_with("_maxbytes") || key.ends_with("_backups") || key.ends_with("_syslog") {
        text.to_string()
    } else if key == "command" && crate::config::words::split(text).is_err() {
        format!("[{}]", string(text))
    } else {
        string(text)
    }
}

/// Whether one table with templates gives every process what supervisord gives it.
fn uniform(p: &Program) -> bool {
    let first = &p.procs[0];
    p.procs.iter().all(|proc| {
        proc.environment == first.environment
            && proc.values.len() == first.values.len()
            && proc.values.iter().zip(&first.values).all(|((k, e, _), (k0, e0, _))| {
                k == k0 && e.kahi == e0.kahi && kahi_expands_to(e, proc, p)
            })
    })
}

/// Kahi's expansion of the template, for this process, is supervisord's value.
fn kahi_expands_to(e: &Expanded, proc: &program::Proc, p: &Program) -> bool {
    let index = p.procs.iter().position(|x| std::ptr::eq(x, proc)).unwrap_or(0);
    let mut vars = crate::config::expand::Vars::default();
    vars.set_int("process_num", p.numprocs_start + index as i64);
    vars.set_int("numprocs", p.procs.len() as i64);
    crate::config::expand::expand(&e.kahi, &vars, &|_| None).is_ok_and(|s| s == e.plain)
}

/// The `[group:x]` sections, as `process_groups_from_parser` reads them.
fn groups(
    ini: &Ini,
    base: &Dict,
    notes: &mut Vec<Note>,
    errors: &mut Vec<ConfigError>,
) -> Vec<Group> {
    let mut groups = Vec::new();
    let has = |name: &str| ini.sections.iter().any(|s| s.name == name);
    for sec in ini.sections.iter().filter(|s| s.name.starts_with("group:")) {
        unknown_keys(ini, sec, &[&["programs", "priority"]], notes);
        let mut r = Reader { ini, sec, notes };
        let name = match values::name(&sec.name["group:".len()..]) {
            Ok(n) => n,
            Err(e) => {
                errors.push(r.error("", e));
                continue;
            }
        };
        let result = (|| {
            let members = match r.expanded("programs", None, base, &[])? {
                Some(e) => values::list_of_strings(&e.plain),
                None => Vec::new(),
            };
            let priority = r.typed("priority", "999", base, values::integer)?;
            for m in &members {
                let program = has(&format!("program:{m}"));
                let fcgi = has(&format!("fcgi-program:{m}"));
                if !program && !fcgi {
                    return Err(r.error(
                        "programs",
                        format!("[{}] names unknown program or fcgi-program {m}", sec.name),
                    ));
                }
                if program && fcgi {
                    return Err(r.error(
                        "programs",
                        format!(
                            "[{}] name {m} is ambiguous (exists as program and fcgi-program)",
                            sec.name
                        ),
                    ));
                }
            }
            if r.value("priority").is_some() {
                r.note("priority", false, "Kahi orders processes by their own priority: the group's priority does not order its programs");
            }
            if members.is_empty() {
                r.note("programs", false, "a group with no programs: nothing to write");
            }
            Ok(Group {
                name,
                members,
                priority: r.value("priority").map(|_| priority),
                src: Some((sec.file, sec.line)),
            })
        })();
        match result {
            Ok(g) => groups.push(g),
            Err(e) => errors.push(e),
        }
    }
    groups
}

/// Warns of each key written in `sec` that none of `known` lists (a `[DEFAULT]` key is not
/// the section's own).
pub fn unknown_keys(ini: &Ini, sec: &Section, known: &[&[&str]], notes: &mut Vec<Note>) {
    for (k, v) in &sec.keys {
        if !known.iter().any(|list| list.contains(&k.as_str())) {
            let e = ini.error_at(
                v,
                &format!("[{}] {k}", sec.name),
                "unknown key: supervisord ignores it, and so does Kahi",
            );
            notes.push(Note::warning(e));
        }
    }
}

/// The sections that are neither programs, listeners, groups nor what `server.rs` reads.
/// `[rpcinterface:x]` is checked as supervisord's `get_plugins` checks it: the factory is
/// required, and it and every other key are expanded with `plugin` (a factory supervisord
/// cannot import refuses the file there; Kahi imports nothing, so it cannot tell).
fn other_sections(ini: &Ini, plugin: &Dict, notes: &mut Vec<Note>, errors: &mut Vec<ConfigError>) {
    const KNOWN_PREFIXES: &[&str] = &[
        "program:",
        "eventlistener:",
        "group:",
        "fcgi-program:",
        "rpcinterface:",
        "ctlplugin:",
        "unix_http_server",
        "inet_http_server",
    ];
    const KNOWN: &[&str] = &["supervisord", "supervisorctl", "include"];
    for sec in &ini.sections {
        let n = &sec.name;
        let say = |message: String, unmapped: bool| Note {
            error: ini.error_line(sec.file, sec.line, &format!("[{n}]"), message),
            unmapped,
        };
        if let Some(rest) = n.strip_prefix("rpcinterface:") {
            const FACTORY: &str = "supervisor.rpcinterface_factory";
            let mut r = Reader { ini, sec, notes: &mut *notes };
            let factory = match r.expanded(FACTORY, None, plugin, &[]) {
                Ok(Some(f)) => f.plain,
                Ok(None) => {
                    errors.push(r.error("", format!("section [{n}] does not specify a {FACTORY}")));
                    continue;
                }
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let mut extras: Vec<&String> = Vec::new();
            for (k, _) in sec.keys.iter().chain(&ini.defaults) {
                if k != FACTORY && !extras.contains(&k) {
                    extras.push(k);
                }
            }
            for k in extras {
                if let Err(e) = r.expanded(k, None, plugin, &[]) {
                    errors.push(e);
                }
            }
            if factory != "supervisor.rpcinterface:make_main_rpcinterface" {
                notes.push(say(
                    format!(
                        "RPC interface plugin {rest:?} is Python code Kahi does not run: left out"
                    ),
                    true,
                ));
            }
        } else if n.starts_with("ctlplugin:") {
            notes
                .push(say("supervisorctl plugins do not apply to kahi ctl: ignored".into(), false));
        } else if KNOWN.contains(&n.as_str()) || KNOWN_PREFIXES.iter().any(|p| n.starts_with(p)) {
        } else if KNOWN.contains(&n.to_lowercase().as_str())
            || KNOWN_PREFIXES.iter().any(|p| n.to_lowercase().starts_with(p))
        {
            notes.push(say(
                format!("section names are case-sensitive: supervisord ignores [{n}], and so does Kahi (did you mean [{}]?)", n.to_lowercase()),
                false,
            ));
        } else {
            notes.push(say(
                "unknown section: supervisord ignores it, and so does Kahi".into(),
                false,
            ));
        }
    }
}

/// What an `[fcgi-program:x]` has besides a program's keys.
pub(super) const FCGI_KEYS: &[&str] = &["socket", "socket_owner", "socket_mode", "socket_backlog"];

/// The socket keys of `[fcgi-program:NAME]`, checked as supervisord checks them
/// (options.py `process_groups_from_parser`, `parse_fcgi_socket`), written as Kahi's. The
/// socket's value is written expanded: supervisord expands it with `program_name`, `here` and
/// `ENV_*` only.
fn fcgi_keys(
    r: &mut Reader<'_>,
    name: &str,
    dict: &Dict,
    keys: &mut Vec<(String, String, Src)>,
) -> Result<(), ConfigError> {
    let mut own = Dict::default();
    for (k, v) in &dict.0 {
        if k.starts_with("ENV_") || k == "here" {
            own.0.insert(k.clone(), v.clone());
        }
    }
    own.set_str("program_name", name);
    let section = r.sec.name.clone();
    if let Some(b) = r.expanded("socket_backlog", None, &own, &[])? {
        match values::integer(&b.plain) {
            Ok(n) if (1..=65535).contains(&n) => {
                keys.push(("socket_backlog".into(), n.to_string(), r.src("socket_backlog")))
            }
            _ => {
                let e = format!("Invalid socket_backlog value {}", b.plain);
                return Err(r.error("socket_backlog", e));
            }
        }
    }
    let owner = r.expanded("socket_owner", None, &own, &[])?;
    if let Some(o) = &owner
        && r.ini.host_checks
        && !user_group_exists(&o.plain)
    {
        let e = format!("Invalid socket_owner value {}", o.plain);
        return Err(r.error("socket_owner", e));
    }
    let mode = match r.expanded("socket_mode", None, &own, &[])? {
        Some(m) => Some(values::octal(&m.plain).map_err(|_| {
            r.error("socket_mode", format!("Invalid socket_mode value {}", m.plain))
        })?),
        None => None,
    };
    let socket = r.expanded("socket", None, &own, &[])?.map(|e| e.plain).unwrap_or_default();
    let refused =
        |r: &Reader<'_>, why: String| r.error("socket", format!("{why} in [{section}] socket"));
    if socket.is_empty() {
        return Err(r.error("socket", format!("[{section}] section requires a \"socket\" line")));
    }
    if let Some(path) = socket.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(refused(r, format!("Unix socket path {path} is not an absolute path")));
        }
    } else if owner.is_some() || mode.is_some() {
        return Err(refused(
            r,
            "socket_owner and socket_mode params should only be used with a Unix domain socket"
                .into(),
        ));
    } else {
        let tcp = socket.strip_prefix("tcp://").and_then(|hp| hp.rsplit_once(':'));
        let ok = tcp.is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.contains(|c: char| c == ':' || c.is_whitespace())
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
        });
        if !ok {
            return Err(refused(r, format!("Bad socket format {socket}")));
        }
    }
    keys.push(("socket".into(), string(&program::escape(&socket)), r.src("socket")));
    if let Some(o) = owner {
        keys.push(("socket_owner".into(), string(&o.plain), r.src("socket_owner")));
    }
    if let Some(m) = mode {
        keys.push(("socket_mode".into(), string(&format!("{m:04o}")), r.src("socket_mode")));
    }
    Ok(())
}

/// supervisord's `colon_separated_user_group`: "USER" or "USER:GROUP", each a name or a number
/// that exists here.
fn user_group_exists(spec: &str) -> bool {
    use nix::unistd::{Gid, Group};
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let group_ok = group.is_none_or(|g| match values::integer(g) {
        Ok(gid) => u32::try_from(gid)
            .is_ok_and(|gid| Group::from_gid(Gid::from_raw(gid)).ok().flatten().is_some()),
        Err(_) => Group::from_name(g).ok().flatten().is_some(),
    });
    program::check_user(user).is_ok() && group_ok
}
