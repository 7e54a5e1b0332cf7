//! `[programs.NAME]`: one program table typed into a [`ProcessSpec`] and expanded into its
//! processes (numprocs, the per-process expansions), and the values only programs have.
//! `[eventlisteners.NAME]` is read here too: a program, with `events` and `buffer_size`; and
//! `[fcgi_programs.NAME]`, whose socket keys `fcgi` reads.

use super::*;

/// A program table being read: the spec its keys fill in, and the keys that shape its
/// processes rather than belong to each. Its `Default` holds those keys' defaults.
#[derive(Debug)]
pub struct ProgramDraft {
    pub(super) spec: ProcessSpec,
    pub(super) numprocs: u32,
    pub(super) numprocs_start: u32,
    /// When not set: as stopasgroup.
    pub(super) killasgroup: Option<bool>,
    pub(super) on_dependency_failure: OnFailure,
    pub(super) requires: Vec<String>,
    pub(super) mask_env: Vec<String>,
    /// [stdout, stderr]: the log file's (maxbytes, backups).
    pub(super) rotation: [(u64, u32); 2],
}

impl Default for ProgramDraft {
    fn default() -> Self {
        ProgramDraft {
            spec: ProcessSpec::default(),
            numprocs: 1,
            numprocs_start: 0,
            killasgroup: None,
            on_dependency_failure: OnFailure::Ignore,
            requires: Vec::new(),
            mask_env: Vec::new(),
            // supervisord's: 50MB, 10 backups.
            rotation: [(50 << 20, 10); 2],
        }
    }
}

impl<'s> Loader<'s, '_> {
    pub(super) fn programs(
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
            let table = match (p.listener, p.fcgi) {
                (true, _) => "eventlisteners",
                (_, true) => "fcgi_programs",
                _ => "programs",
            };
            let at = At { doc: p.doc, span: p.span.clone(), key: format!("{table}.{}", p.name) };
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
        self.one_program_per_fcgi_socket(&processes);
        processes
            .sort_by(|a, b| (a.priority, &a.group, &a.name).cmp(&(b.priority, &b.group, &b.name)));
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        (processes, infos)
    }

    /// Types one program table and expands it into its processes.
    pub(super) fn program(
        &mut self,
        at: &At,
        p: &ProgramTable<'s>,
        group: &str,
        group_priority: Option<i64>,
        mut vars: Vars,
    ) -> Option<Vec<ProcessSpec>> {
        let before = self.errors.len();
        let mut d = ProgramDraft::default();
        d.spec.group = group.to_string();
        d.spec.program = p.name.clone();
        if let Some(priority) = group_priority {
            d.spec.priority = priority;
        }
        // A listener or a FastCGI program is a program with a part of its own: those keys are
        // read apart.
        // A copy only where keys are taken out.
        let mut table = std::borrow::Cow::Borrowed(&p.table);
        let mut own = DeTable::new();
        let part = match (p.listener, p.fcgi) {
            (true, _) => Some(Section::Listener),
            (_, true) => Some(Section::Fcgi),
            _ => None,
        };
        if let Some(part) = part {
            for key in schema::keys_of(part) {
                if let Some((k, v)) = table.to_mut().remove_entry(key.name) {
                    own.insert(k, v);
                }
            }
        }
        let t = &*table;
        self.fields(at, t, Section::Program, &mut d, |l, at, name, v, d| {
            l.program_key(at, name, v, d, &vars, &p.name)
        });
        self.program_rules(at, t, &mut d);
        if p.listener {
            d.spec.listener = self.listener(at, &own, &mut d.spec);
            self.listener_rules(at, t, &d.spec);
        }
        if p.fcgi {
            d.spec.fcgi = self.fcgi(at, &own, t, &d.spec, &vars);
        }
        let ProgramDraft { spec: mut base, numprocs, numprocs_start, .. } = d;
        // depends_on follows on_dependency_failure; requires stops with what it requires, as
        // systemd's Requires= does.
        for dep in &mut base.deps {
            dep.on_failure = d.on_dependency_failure;
        }
        for r in d.requires {
            match base.deps.iter_mut().find(|dep| dep.program == r) {
                Some(dep) => dep.on_failure = OnFailure::Stop,
                None => base.deps.push(Dep {
                    program: r,
                    condition: Condition::Started,
                    on_failure: OnFailure::Stop,
                }),
            }
        }
        // The keys read per process, below.
        let process_name = self.entry(at, t, "process_name");
        let directory = self.entry(at, t, "directory");
        let environment = self.entry(at, t, "environment");
        let logfiles = [self.entry(at, t, "stdout_logfile"), self.entry(at, t, "stderr_logfile")];
        let Some((command_at, command)) = self.entry(at, t, "command") else {
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
            spec.argv = self.command(&command_at, command, &vars).unwrap_or_default();
            if let Some((severity, message)) = check::command(&spec) {
                self.note(&command_at, severity, message);
            }
            spec.secrets = self.secrets(&spec, &d.mask_env);
            for (i, stream) in ["stdout", "stderr"].into_iter().enumerate() {
                let Some((at, v)) = &logfiles[i] else { continue };
                let name = spec.namespec().replace(':', "_");
                let log = self.logfile(at, v, &vars, &name, stream).map(|path| LogSpec {
                    path,
                    maxbytes: d.rotation[i].0,
                    backups: d.rotation[i].1,
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

    /// A program key without a reader in [`schema::KEYS`].
    fn program_key(
        &mut self,
        at: &At,
        name: &str,
        v: &Spanned<DeValue<'s>>,
        d: &mut ProgramDraft,
        vars: &Vars,
        program: &str,
    ) {
        let b = &mut d.spec;
        match name {
            // Read once the table is, per process: they may use %(process_num)d and each
            // other's %(ENV_X)s.
            "command" | "process_name" | "directory" | "environment" | "stdout_logfile"
            | "stderr_logfile" => {}
            "listen" => b.listen = self.listen(at, v),
            "depends_on" => b.deps = self.depends_on(at, v, program),
            "requires" => d.requires = self.program_refs(at, v, program, "requires"),
            "after" => b.after = self.program_refs(at, v, program, "after"),
            "before" => {
                self.program_refs(at, v, program, "before");
            }
            "backoff_factor" => match number(v.get_ref()) {
                Some(f) if (1.0..=100.0).contains(&f) => b.backoff_factor = Some(f),
                _ => self.error(
                    at,
                    format!("expected a number from 1 to 100, found {}", describe(v.get_ref())),
                ),
            },
            "autorestart" => match v.get_ref() {
                DeValue::Boolean(true) => b.autorestart = AutoRestart::Always,
                DeValue::Boolean(false) => b.autorestart = AutoRestart::Never,
                DeValue::String(s) if s.eq_ignore_ascii_case("unexpected") => {
                    b.autorestart = AutoRestart::Unexpected
                }
                other => self.error(
                    at,
                    format!("expected true, false or \"unexpected\", found {}", describe(other)),
                ),
            },
            "exitcodes" => {
                if let Some(items) = self.array(at, v) {
                    b.exitcodes = items
                        .iter()
                        .filter_map(|i| self.integer(at, i, 0, 255).map(|c| c as i32))
                        .collect();
                }
            }
            "stopsignal" => {
                let parsed = match v.get_ref() {
                    DeValue::String(s) => parse_signal(s),
                    DeValue::Integer(i) => parse_signal(i.as_str()),
                    other => {
                        Err(format!("expected a signal name or number, found {}", describe(other)))
                    }
                };
                match parsed {
                    Ok(sig) => b.stopsignal = sig,
                    Err(e) => self.error(at, e),
                }
            }
            "user" => {
                if let Some(s) = self.expanded_string(at, v, vars) {
                    match self.run_as(&s) {
                        Ok(u) => b.user = Some(u),
                        Err(e) => self.error(at, e),
                    }
                }
            }
            "mask_env" => d.mask_env = self.strings(at, v).unwrap_or_default(),
            "limits" => (b.limits, b.cgroup) = self.limits(at, v),
            "healthcheck" => b.healthcheck = self.healthcheck(at, v),
            // Every other key has its reader in KEYS; a test reads each.
            _ => {}
        }
    }

    pub(super) fn command(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
        vars: &Vars,
    ) -> Option<Vec<String>> {
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
    pub(super) fn secrets(&mut self, spec: &ProcessSpec, named: &[String]) -> Vec<Vec<u8>> {
        fn strs(all: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
            all.iter().map(|(k, v)| (k.as_str(), v.as_str()))
        }
        let own = &spec.environment;
        if spec.clean_environment {
            return crate::logs::mask::secrets(strs(own), named);
        }
        let env = self.env;
        let inherited = self.inherited.get_or_insert_with(|| {
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect()
        });
        let known = |name: &str| own.iter().chain(inherited.iter()).any(|(k, _)| k == name);
        // A name in mask_env that the test environment provides through `env` only.
        let extra: Vec<(String, String)> =
            named.iter().filter(|n| !known(n)).filter_map(|n| Some((n.clone(), env(n)?))).collect();
        let inherited = strs(inherited).filter(|(k, _)| !own.iter().any(|(o, _)| o == k));
        crate::logs::mask::secrets(strs(own).chain(inherited).chain(strs(&extra)), named)
    }

    /// A logfile value: NONE (no file), AUTO (a file in childlogdir) or a path whose
    /// directory exists.
    pub(super) fn logfile(
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

    pub(super) fn environment(
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

    /// `listen`: "tcp://ADDRESS:PORT" (an IP address, [::1] for IPv6) or "unix:///PATH".
    pub(super) fn listen(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Vec<Listen> {
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
            } else if let Some(path) = unix_path(&item) {
                path.map(Listen::Unix)
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

    /// `depends_on = ["db", { name = "migrate", condition = "completed" }]`.
    pub(super) fn depends_on(&mut self, at: &At, v: &Spanned<DeValue<'s>>, from: &str) -> Vec<Dep> {
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
                            "condition" => {
                                const CONDITIONS: [Condition; 3] =
                                    [Condition::Started, Condition::Healthy, Condition::Completed];
                                let names = CONDITIONS.map(Condition::name);
                                if let Some(c) = self
                                    .choice(&at, v, &names)
                                    .and_then(|i| CONDITIONS.get(i).copied())
                                {
                                    condition = c;
                                }
                            }
                            other => self.error(
                                &at,
                                format!(
                                    "unknown key {other:?}; a dependency has name and condition"
                                ),
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
    pub(super) fn program_refs(
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
}

/// supervisord's default `result_handler`, the only one there is: OK takes the event.
const DEFAULT_HANDLER: &str = "supervisor.dispatchers:default_handler";

impl<'s> Loader<'s, '_> {
    /// The keys `[eventlisteners.NAME]` has besides a program's: `events` (required),
    /// `buffer_size`, and `result_handler` (supervisord's default only). The listener's stdin
    /// becomes a pipe, Kahi's end of the protocol.
    fn listener(
        &mut self,
        at: &At,
        own: &DeTable<'s>,
        spec: &mut ProcessSpec,
    ) -> Option<ListenerSpec> {
        let mut l = ListenerSpec::default();
        let mut ok = true;
        self.fields(at, own, Section::Listener, &mut l, |loader, at, name, v, l| {
            if name == "result_handler" {
                if loader.string(at, v).is_some_and(|h| h != DEFAULT_HANDLER) {
                    loader.error(
                        at,
                        format!("only supervisord's default, \"{DEFAULT_HANDLER}\", is available: its other handlers are Python functions, which Kahi does not run; act on the event in the listener and answer OK (or FAIL to have it sent again)"),
                    );
                    ok = false;
                }
                return;
            }
            if name != "events" {
                return;
            }
            match loader.event_types(at, v) {
                Some(types) => l.events = types,
                None => ok = false,
            }
        });
        if !own.contains_key("events") {
            self.error(at, "missing required key \"events\" (the event types it takes)");
            return None;
        }
        spec.stdin_pipe = true;
        ok.then_some(l)
    }

    /// A list of event types by name (`events` of a listener or a webhook): at least one,
    /// each known (an unknown one gets a "did you mean"), duplicates kept once.
    pub(super) fn event_types(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
    ) -> Option<Vec<crate::events::EventType>> {
        let names = self.strings(at, v)?;
        let mut ok = true;
        if names.is_empty() {
            self.error(at, "must name at least one event type");
            ok = false;
        }
        let mut types = Vec::new();
        for n in names {
            match crate::events::EventType::from_name(&n) {
                Some(t) if !types.contains(&t) => types.push(t),
                Some(_) => {}
                None => {
                    let all = crate::events::EventType::ALL.map(|t| t.name());
                    let hint = super::validate::closest(&n, all.into_iter())
                        .map(|c| format!("; did you mean {c:?}?"))
                        .unwrap_or_default();
                    self.error(at, format!("unknown event type {n:?}{hint}"));
                    ok = false;
                }
            }
        }
        ok.then_some(types)
    }

    /// What a listener may not set: its stdin and stdout are the protocol's, and it runs as a
    /// simple program.
    fn listener_rules(&mut self, at: &At, t: &DeTable<'s>, spec: &ProcessSpec) {
        const NOT_FOR_LISTENERS: [&str; 12] = [
            "stdin_pipe",
            "stdout_logfile",
            "stdout_logfile_maxbytes",
            "stdout_logfile_backups",
            "stdout_syslog",
            "stdout_capture_maxbytes",
            "stdout_events_enabled",
            "stdout_capturemode_maxbytes",
            "type",
            "listen",
            "accept",
            "max_instances",
        ];
        for key in NOT_FOR_LISTENERS {
            if let Some((at, _)) = self.entry(at, t, key) {
                self.error(
                    &at,
                    "does not apply to an event listener: its stdin and stdout carry the protocol, and it runs as type = \"simple\"",
                );
            }
        }
        if spec.redirect_stderr
            && let Some((at, _)) = self.entry(at, t, "redirect_stderr")
        {
            self.error(
                &at,
                "cannot be true for an event listener: its stdout carries the protocol",
            );
        }
    }
}

/// The path of a `unix:///PATH` address; None when `item` is not one.
pub(super) fn unix_path(item: &str) -> Option<Result<PathBuf, String>> {
    let path = item.strip_prefix("unix://")?;
    Some(if path.starts_with('/') {
        Ok(PathBuf::from(path))
    } else {
        Err(format!("{item:?}: expected an absolute path, such as unix:///run/kahi.sock"))
    })
}

impl Loader<'_, '_> {
    /// The user `spec` names ([`resolve_user`]), looked up once per load.
    pub(super) fn run_as(&mut self, spec: &str) -> Result<RunAs, String> {
        self.users.entry(spec.to_string()).or_insert_with(|| resolve_user(spec)).clone()
    }
}

/// `NAME`, `UID`, `NAME:GROUP`, `UID:GID`. Numbers need no user database.
fn resolve_user(spec: &str) -> Result<RunAs, String> {
    use crate::sys::users;
    use nix::unistd::{Gid, Uid};
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (name, uid, mut gid, by_name) = if let Ok(uid) = user.parse::<u32>() {
        let entry = users::user_by_uid(Uid::from_raw(uid)).ok().flatten();
        let gid = entry.as_ref().map_or(uid, |e| e.gid.as_raw());
        (entry.map_or_else(|| uid.to_string(), |e| e.name), uid, gid, false)
    } else {
        match users::user_by_name(user) {
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
        gid = super::values::gid(g)?;
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
            .and_then(|c| users::group_list(&c, Gid::from_raw(gid)).ok())
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(RunAs { name, uid, gid, groups })
}
