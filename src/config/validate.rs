//! Validation across keys and tables: names, groups and their members, references between
//! programs (depends_on, requires, after, before) and their cycles. Every finding is an error
//! with the place it points at; nothing is read or changed on the machine.

use super::*;

impl<'s> Loader<'s, '_> {
    /// The rules between a program's keys, once its table is read; `at` is the table's place.
    pub(super) fn program_rules(&mut self, at: &At, t: &DeTable<'s>, d: &mut ProgramDraft) {
        let place = |l: &Self, key: &str| l.entry(at, t, key).map(|(at, _)| at);
        d.spec.killasgroup = match d.killasgroup {
            Some(false) if d.spec.stopasgroup => {
                if let Some(at) = place(self, "killasgroup") {
                    self.error(&at, "cannot be false when stopasgroup is true (the group is signalled, so it must be killed too)");
                }
                true
            }
            Some(k) => k,
            None => d.spec.stopasgroup,
        };
        if d.spec.stderr_syslog
            && d.spec.redirect_stderr
            && let Some(at) = place(self, "stderr_syslog")
        {
            self.error(
                &at,
                "has no effect with redirect_stderr = true (stderr goes to stdout_syslog)",
            );
        }
        let socket_at = place(self, "type").filter(|_| d.spec.kind == Kind::Socket);
        let listen_at = place(self, "listen");
        let accept_at = place(self, "accept").or_else(|| place(self, "max_instances"));
        match (&socket_at, &listen_at) {
            (Some(at), None) => self.error(
                at,
                "type = \"socket\" needs listen = [\"tcp://127.0.0.1:8080\", \"unix:///run/NAME.sock\", ...]",
            ),
            (None, Some(at)) => self.error(at, "applies to type = \"socket\" only"),
            (None, None) if accept_at.is_some() => {
                self.error(accept_at.as_ref().unwrap_or(at), "applies to type = \"socket\" only")
            }
            (Some(at), Some(_)) if d.numprocs > 1 => {
                self.error(at, "a socket program has one process: numprocs must be 1")
            }
            _ => {}
        }
    }

    /// Gathers `[programs.*]`, `[eventlisteners.*]`, `[fcgi_programs.*]` (programs too, in one
    /// namespace) and `[groups.*]` from every document. Returns the program tables and, per
    /// program name, the group it belongs to (with that group's priority).
    pub(super) fn collect_programs_and_groups(&mut self) -> (Vec<ProgramTable<'s>>, Membership) {
        let mut programs: Vec<ProgramTable<'s>> = Vec::new();
        let mut seen: HashMap<String, (At, &'static str)> = HashMap::new();
        let mut group_tables = Vec::new();
        for doc in 0..self.docs.len() {
            let root = std::mem::take(&mut self.docs[doc].table);
            for (k, v) in root.iter() {
                let sections = ["programs", "eventlisteners", "fcgi_programs", "groups"];
                let Some(section) = sections.into_iter().find(|s| *s == k.get_ref().as_ref())
                else {
                    continue;
                };
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
                    if let Some((first, other)) = seen.get(name.get_ref().as_ref()) {
                        let place = self.place(first);
                        // Sections are read in the order of their names, not of the file.
                        let why = if *other == section {
                            format!("program defined twice; first at {place}")
                        } else {
                            format!(
                                "the name is also [{other}.{}], at {place}: programs, event \
                                 listeners and FastCGI programs share one set of names",
                                name.get_ref()
                            )
                        };
                        self.error(&at, why);
                        continue;
                    }
                    seen.insert(name.get_ref().to_string(), (at.clone(), section));
                    programs.push(ProgramTable {
                        name: name.get_ref().to_string(),
                        listener: section == "eventlisteners",
                        fcgi: section == "fcgi_programs",
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
                if programs.iter().any(|p| p.listener && p.name == m) {
                    self.error(
                        &members_at,
                        format!("{m:?} is an event listener, the group of its own pool; a group holds programs"),
                    );
                } else if !seen.contains_key(&m) {
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

    /// Every reference names a program; `before` becomes the other program's `after`; and
    /// the waits form no cycle (an error names the whole cycle).
    pub(super) fn check_dependencies(&mut self, processes: &mut [ProcessSpec]) {
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
        // program; "completed", a oneshot, whose end is its success. Once per program, at
        // the dependency's place.
        let mut unmeetable: Vec<(String, String, Condition)> = Vec::new();
        for p in processes.iter() {
            for d in p.deps.iter().filter(|d| d.condition != Condition::Started) {
                let can = processes.iter().filter(|q| q.program == d.program).all(|q| {
                    match d.condition {
                        Condition::Healthy => q.kind == Kind::Notify || q.healthcheck.is_some(),
                        _ => q.kind == Kind::Oneshot,
                    }
                });
                let entry = (p.program.clone(), d.program.clone(), d.condition);
                if !can && known.contains(&d.program) && !unmeetable.contains(&entry) {
                    unmeetable.push(entry);
                }
            }
        }
        for (from, to, condition) in unmeetable {
            let text = match condition {
                Condition::Healthy => format!(
                    "condition \"healthy\" needs {to:?} to have a [programs.{to}.healthcheck] or type = \"notify\"; use \"started\""
                ),
                _ => format!(
                    "condition \"completed\" needs {to:?} to be type = \"oneshot\", whose exit is its success; use \"started\""
                ),
            };
            let place = self.refs_checked.iter().find(|(f, t, _)| *f == from && *t == to);
            match place.map(|(_, _, at)| at.clone()) {
                Some(at) => self.error(&at, text),
                None => self.err_nopos_main(format!("programs.{from}.depends_on: {text}")),
            }
        }
        // program -> the programs it waits for (not itself: that was said above).
        let mut waits: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for p in processes.iter() {
            let e = waits.entry(p.program.as_str()).or_default();
            let others =
                p.deps.iter().map(|d| d.program.as_str()).chain(p.after.iter().map(String::as_str));
            for to in others.filter(|to| *to != p.program) {
                if !e.contains(&to) {
                    e.push(to);
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
}

/// A cycle in "waits for" edges, as the list of programs around it, the first repeated at
/// the end; None when there is none. Deterministic: programs are visited in name order.
pub(super) fn find_cycle<'a>(
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
pub(super) fn is_bcrypt(h: &str) -> bool {
    let b = h.as_bytes();
    b.len() == 60
        && (h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$"))
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

/// The longest program, group or process name.
pub(super) const MAX_NAME: usize = 128;

/// Program, group and process names: ASCII letters, digits, '_', '-' and '.', which every
/// place a name goes takes as it is: a namespec (`group:name`), a log file name, a URL path
/// segment, a `process=a,b` query, a shell word, a terminal. supervisord refuses only blanks,
/// ':' and '/'; the rest it allows ('*', ',', '@', '%', quotes, control and invisible
/// characters such as U+200B or U+202E) would be a glob, a separator, an instance name
/// (`NAME@N`), an escape or a name that looks like another.
pub(super) fn check_name(name: &str) -> Result<(), String> {
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
pub(super) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|c| (schema::edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
}
