//! The schema, the manual and the example configuration agree.
//!
//! `man/kahi.toml.5` documents every key of [`super::schema::KEYS`], in its section, with the
//! schema's type, default and supervisord name, and no key the schema lacks;
//! `kahi.example.toml` mentions every key (set, or commented out with its default) and loads;
//! `man/kahi-ctl.1` describes every `kahi ctl` command and every request, reply, outcome and
//! error code of the control protocol. Each failure names what is missing and where.

use std::path::{Path, PathBuf};

use argh::SubCommands;

use super::schema::{KEYS, Key, Section};

const MAN_TOML: &str = "man/kahi.toml.5";
const MAN_CTL: &str = "man/kahi-ctl.1";
const EXAMPLE: &str = "kahi.example.toml";

/// A file of the source tree: its path and its text.
fn read(rel: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("unable to read {}: {e}", path.display()));
    (path, text)
}

/// How the manual and the example name a section.
fn label(section: Section) -> &'static str {
    match section {
        Section::Root => "top level",
        Section::Server => "[server]",
        Section::Http => "[server.http]",
        Section::HttpUser => "[[server.http.users]]",
        Section::Logging => "[logging]",
        Section::Program => "[programs.NAME]",
        Section::Limits => "[programs.NAME.limits]",
        Section::Healthcheck => "[programs.NAME.healthcheck]",
        Section::Group => "[groups.NAME]",
        Section::Listener => "[eventlisteners.NAME]",
        Section::Fcgi => "[fcgi_programs.NAME]",
        Section::Webhook => "[webhooks.NAME]",
    }
}

fn schema_key(section: Section, name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.section == section && k.name == name)
}

/// Fails with every problem found, one per line.
fn report(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}\n", problems.join("\n  "));
}

// ---- roff ----

/// The text a roff line shows: the escapes the manual uses resolved, fonts dropped.
fn unroff(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('-') => out.push('-'),
            Some('e' | '\\') => out.push('\\'),
            Some(' ') => out.push(' '),
            Some('&' | '%' | 'c') | None => {}
            Some('f') => {
                chars.next();
            }
            Some('(') => {
                let name: String = chars.by_ref().take(2).collect();
                match name.as_str() {
                    "dq" => out.push('"'),
                    "aq" => out.push('\''),
                    "bu" => out.push('\u{2022}'),
                    _ => {}
                }
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

/// The arguments of a macro line (`.BR a " b" c`), as roff splits them: at blanks, except
/// inside double quotes, where `""` stands for one quote.
fn macro_args(line: &str) -> Vec<String> {
    let rest = line.split_once(char::is_whitespace).map_or("", |(_, r)| r);
    let mut args = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let mut arg = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.next_if_eq(&'"').is_some() {
                        arg.push('"');
                        continue;
                    }
                    break;
                }
                arg.push(c);
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                arg.push(c);
            }
        }
        args.push(unroff(&arg));
    }
    args
}

/// The macro of a control line (`.TP` -> "TP"), or None for a text line.
fn macro_name(line: &str) -> Option<&str> {
    line.strip_prefix('.').map(|l| l.split_whitespace().next().unwrap_or(""))
}

/// A `.TP` entry: its line number (1-based), tag line and body lines.
struct Entry<'t> {
    line: usize,
    section: String,
    tag: &'t str,
    body: Vec<&'t str>,
}

/// Every `.TP` entry of a page, with the `.SH`/`.SS` heading it is under. The body runs to the
/// next entry, heading or paragraph macro.
fn entries(page: &str) -> Vec<Entry<'_>> {
    let lines: Vec<&str> = page.lines().collect();
    let mut out: Vec<Entry<'_>> = Vec::new();
    let mut heading = String::new();
    let mut open = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        match macro_name(line) {
            Some("SH" | "SS") => {
                heading = macro_args(line).join(" ");
                open = false;
            }
            Some("TP") if i + 1 < lines.len() => {
                out.push(Entry {
                    line: i + 2,
                    section: heading.clone(),
                    tag: lines[i + 1],
                    body: Vec::new(),
                });
                open = true;
                i += 1;
            }
            Some("TQ" | "PP" | "P" | "LP" | "IP" | "RS" | "RE") => open = false,
            _ => {
                if open && let Some(e) = out.last_mut() {
                    e.body.push(line);
                }
            }
        }
        i += 1;
    }
    out
}

/// The words an entry's tag names: `.BR added ", " changed` -> ["added", "changed"].
fn tag_words(tag: &str) -> Vec<String> {
    let text = match macro_name(tag) {
        Some(_) => macro_args(tag).concat(),
        None => unroff(tag),
    };
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A heading of `kahi.toml(5)` that lists keys, and the section it documents.
fn key_section(heading: &str) -> Option<Section> {
    [
        Section::Root,
        Section::Server,
        Section::Http,
        Section::HttpUser,
        Section::Logging,
        Section::Program,
        Section::Limits,
        Section::Healthcheck,
        Section::Group,
        Section::Listener,
        Section::Fcgi,
        Section::Webhook,
    ]
    .into_iter()
    .find(|s| label(*s).eq_ignore_ascii_case(heading))
}

/// A key as `kahi.toml(5)` documents it.
struct ManKey {
    section: Section,
    name: String,
    line: usize,
    ty: Vec<String>,
    default: Vec<String>,
    supervisord: Vec<String>,
}

/// Every key entry of `kahi.toml(5)`, and the entries under a key heading that are not
/// written as `.TP` / `.B KEY`.
fn man_keys() -> (Vec<ManKey>, Vec<String>) {
    let (_, page) = read(MAN_TOML);
    let mut keys = Vec::new();
    let mut malformed = Vec::new();
    for e in entries(&page) {
        let Some(section) = key_section(&e.section) else { continue };
        let args = macro_args(e.tag);
        if macro_name(e.tag) != Some("B") || args.len() != 1 {
            malformed.push(format!(
                "{MAN_TOML}:{}: an entry under {:?} must be `.B KEY` alone, found {:?}",
                e.line, e.section, e.tag
            ));
            continue;
        }
        let field = |prefix: &str| -> Vec<String> {
            e.body
                .iter()
                .filter_map(|l| l.strip_prefix(prefix))
                .map(|v| unroff(v).trim().to_string())
                .collect()
        };
        keys.push(ManKey {
            section,
            name: args[0].clone(),
            line: e.line,
            ty: field("Type: "),
            default: field("Default: "),
            supervisord: field("supervisord: "),
        });
    }
    (keys, malformed)
}

#[test]
fn man_page_documents_every_key() {
    let (keys, malformed) = man_keys();
    report("man/kahi.toml.5 has key entries it cannot read", &malformed);
    let missing: Vec<String> = KEYS
        .iter()
        .filter(|k| !keys.iter().any(|m| m.section == k.section && m.name == k.name))
        .map(|k| {
            format!(
                "{} `{}` (add `.TP` / `.B {}` under `.SS \"{}\"`)",
                label(k.section),
                k.name,
                k.name,
                label(k.section)
            )
        })
        .collect();
    report(
        "man/kahi.toml.5 does not document these keys of the key table (src/config/schema/keys.rs)",
        &missing,
    );
}

#[test]
fn man_page_documents_no_key_the_schema_lacks() {
    let (keys, _) = man_keys();
    let mut problems = Vec::new();
    for (i, m) in keys.iter().enumerate() {
        if schema_key(m.section, &m.name).is_none() {
            problems.push(format!(
                "{MAN_TOML}:{}: {} `{}` is not in the key table",
                m.line,
                label(m.section),
                m.name
            ));
        }
        if let Some(first) = keys[..i].iter().find(|o| o.section == m.section && o.name == m.name) {
            problems.push(format!(
                "{MAN_TOML}:{}: {} `{}` is documented twice (first at line {})",
                m.line,
                label(m.section),
                m.name,
                first.line
            ));
        }
    }
    report("man/kahi.toml.5 documents keys that the key table does not have", &problems);
}

#[test]
fn man_page_types_defaults_and_supervisord_names_match_the_schema() {
    let (keys, _) = man_keys();
    let mut problems = Vec::new();
    for m in &keys {
        let Some(k) = schema_key(m.section, &m.name) else { continue };
        let want_supervisord = k.supervisord.unwrap_or("none (Kahi only)");
        for (field, got, want) in [
            ("Type", &m.ty, k.ty),
            ("Default", &m.default, k.default),
            ("supervisord", &m.supervisord, want_supervisord),
        ] {
            let place = format!("{MAN_TOML}:{}: {} `{}`", m.line, label(m.section), m.name);
            match got.as_slice() {
                [one] if one == want => {}
                [one] => problems.push(format!(
                    "{place}: the page says `{field}: {one}`, the key table says `{field}: {want}`"
                )),
                [] => problems.push(format!("{place}: no `{field}: {want}` line")),
                _ => problems.push(format!("{place}: more than one `{field}:` line")),
            }
        }
    }
    report("man/kahi.toml.5 disagrees with the key table", &problems);
}

// ---- the example ----

/// A key line of the example, set or commented out.
struct ExampleKey {
    section: Section,
    name: String,
    line: usize,
    commented: bool,
    value: String,
}

/// Every `key = value` and `# key = value` line of the example, with the table it is in.
/// Tables Kahi does not have are reported.
fn example_keys() -> (Vec<ExampleKey>, Vec<String>) {
    let (_, text) = read(EXAMPLE);
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    let mut section = Some(Section::Root);
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let table = line.trim_matches(['[', ']']);
            section = match table.split_once('.') {
                _ if table == "server.http.users" => Some(Section::HttpUser),
                Some(("programs", rest)) if rest.ends_with(".limits") => Some(Section::Limits),
                Some(("programs", rest)) if rest.ends_with(".healthcheck") => {
                    Some(Section::Healthcheck)
                }
                None if table == "server" => Some(Section::Server),
                Some(("server", "http")) => Some(Section::Http),
                None if table == "logging" => Some(Section::Logging),
                Some(("programs", _)) => Some(Section::Program),
                Some(("groups", _)) => Some(Section::Group),
                Some(("eventlisteners", _)) => Some(Section::Listener),
                Some(("fcgi_programs", _)) => Some(Section::Fcgi),
                Some(("webhooks", _)) => Some(Section::Webhook),
                _ => {
                    problems.push(format!("{EXAMPLE}:{}: unknown table {line}", i + 1));
                    None
                }
            };
            continue;
        }
        let (commented, body) = match line.strip_prefix('#') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, line),
        };
        let Some((name, value)) = body.split_once('=') else { continue };
        let name = name.trim();
        let is_key = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !value.starts_with('=');
        if let (true, Some(section)) = (is_key, section) {
            keys.push(ExampleKey {
                section,
                name: name.to_string(),
                line: i + 1,
                commented,
                value: value.trim().to_string(),
            });
        }
    }
    (keys, problems)
}

#[test]
fn example_mentions_every_key() {
    let (keys, mut problems) = example_keys();
    for k in KEYS {
        if !keys.iter().any(|e| e.section == k.section && e.name == k.name) {
            let hint = if toml::from_str::<toml::Table>(&format!("v = {}", k.default)).is_ok() {
                format!("set it, or add `# {} = {}`", k.name, k.default)
            } else {
                format!("set it, or add `# {} = EXAMPLE` (its default: {})", k.name, k.default)
            };
            problems.push(format!("{} `{}` ({hint})", label(k.section), k.name));
        }
    }
    report(
        "kahi.example.toml does not mention these keys of the key table (src/config/schema/keys.rs)",
        &problems,
    );
}

#[test]
fn example_comments_out_only_real_keys_with_their_defaults() {
    let (keys, _) = example_keys();
    let parse = |v: &str| toml::from_str::<toml::Table>(&format!("v = {v}")).ok();
    let mut problems = Vec::new();
    for e in keys.iter().filter(|e| e.commented) {
        let place = format!("{EXAMPLE}:{}: `# {} = {}`", e.line, e.name, e.value);
        let Some(k) = schema_key(e.section, &e.name) else {
            problems.push(format!("{place}: {} has no key `{}`", label(e.section), e.name));
            continue;
        };
        // Only defaults that are TOML values can be shown; "the daemon's user" cannot.
        if let Some(default) = parse(k.default)
            && parse(&e.value) != Some(default)
        {
            problems.push(format!(
                "{place}: commented out, so it must show the default, {}",
                k.default
            ));
        }
    }
    report("kahi.example.toml comments out keys wrongly", &problems);
}

#[test]
fn example_loads() {
    let (path, _) = read(EXAMPLE);
    let runtime = |name: &str| (name == "XDG_RUNTIME_DIR").then(|| "/run/user/1000".to_string());
    let config = super::load_with(&path, &runtime).unwrap_or_else(|errors| {
        let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        panic!("kahi.example.toml does not load:\n  {}\n", errors.join("\n  "))
    });
    assert_eq!(config.server.socket, Path::new("/run/user/1000/kahi-example.sock"));
    assert!(!config.processes.is_empty(), "kahi.example.toml starts no program");

    // Without XDG_RUNTIME_DIR the socket goes to /tmp.
    let config = super::load_with(&path, &|_| None).unwrap_or_else(|errors| {
        panic!("kahi.example.toml does not load without XDG_RUNTIME_DIR: {}", errors[0])
    });
    assert_eq!(config.server.socket, Path::new("/tmp/kahi-example.sock"));
}

/// Issue 12: stopping the example left the `sleep`s of its shell programs running for
/// seconds. A shell running other commands stops as a group, or its children outlive it.
#[test]
fn example_shell_programs_stop_as_a_group() {
    let (path, _) = read(EXAMPLE);
    let config = super::load_with(&path, &|_| None).unwrap_or_else(|e| panic!("{}", e[0]));
    let shells: Vec<&super::ProcessSpec> = config
        .processes
        .iter()
        .filter(|p| {
            let program = p.argv.first().map(|a| a.rsplit('/').next().unwrap_or(a));
            matches!(program, Some("sh" | "bash")) && p.argv.iter().any(|a| a == "-c")
        })
        .collect();
    assert!(shells.len() >= 4, "the example has fewer shell programs than expected");
    let loose: Vec<&str> =
        shells.iter().filter(|p| !p.stopasgroup).map(|p| p.name.as_str()).collect();
    assert!(loose.is_empty(), "{EXAMPLE}: set stopasgroup = true for {loose:?}");
}

// ---- kahi-ctl(1) ----

/// The variants of an enum, as serde names them, read from the error it gives for `probe`:
/// "unknown variant `?`, expected one of `a`, `b`". The list comes from the type itself.
fn variants<T: serde::de::DeserializeOwned>(probe: &str) -> Vec<String> {
    let err = match serde_json::from_str::<T>(probe) {
        Ok(_) => panic!("{probe} should not parse"),
        Err(e) => e.to_string(),
    };
    let (_, expected) = err
        .split_once("expected")
        .unwrap_or_else(|| panic!("serde's message changed shape: {err}"));
    let names: Vec<String> = expected.split('`').skip(1).step_by(2).map(str::to_string).collect();
    assert!(!names.is_empty(), "no variants in serde's message: {err}");
    names
}

/// The text of one `.SH` section of a page, resolved.
fn section_text(page: &str, heading: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in page.lines() {
        if macro_name(line) == Some("SH") {
            inside = macro_args(line).join(" ") == heading;
            continue;
        }
        if inside {
            let text =
                if macro_name(line).is_some() { macro_args(line).concat() } else { unroff(line) };
            out.push_str(&text);
            out.push('\n');
        }
    }
    out
}

/// The tag words of the `.TP` entries under `.SH heading` (and its `.SS` subsections).
fn tags_under(page: &str, heading: &str) -> Vec<String> {
    let mut current = String::new();
    let mut words = Vec::new();
    for line in page.lines().collect::<Vec<_>>().windows(2) {
        if macro_name(line[0]) == Some("SH") {
            current = macro_args(line[0]).join(" ");
        }
        if current == heading && matches!(macro_name(line[0]), Some("TP" | "TQ")) {
            words.extend(tag_words(line[1]));
        }
    }
    words
}

#[test]
fn ctl_page_describes_every_command() {
    let (_, page) = read(MAN_CTL);
    let commands: Vec<&str> =
        <crate::cli::CtlCommand as SubCommands>::COMMANDS.iter().map(|c| c.name).collect();
    let described: Vec<String> = entries(&page)
        .iter()
        .filter(|e| e.section == "COMMANDS")
        .filter_map(|e| macro_args(e.tag).into_iter().next())
        .collect();
    let mut problems: Vec<String> = commands
        .iter()
        .filter(|c| !described.iter().any(|d| d == *c))
        .map(|c| format!("`kahi ctl {c}` has no `.TP` entry under .SH COMMANDS"))
        .collect();
    problems.extend(
        described
            .iter()
            .filter(|d| !commands.contains(&d.as_str()))
            .map(|d| format!("`kahi ctl {d}` is described, but src/cli.rs has no such command")),
    );
    report("man/kahi-ctl.1 and the commands of src/cli.rs disagree", &problems);
}

#[test]
fn ctl_page_documents_the_protocol() {
    use crate::api::{ErrorCode, Outcome, Reply, Request};
    let (_, page) = read(MAN_CTL);
    let protocol = section_text(&page, "PROTOCOL");
    let tags = tags_under(&page, "PROTOCOL");
    let mut problems = Vec::new();
    for cmd in variants::<Request>(r#"{"cmd":"?"}"#) {
        if !protocol.contains(&format!("{{\"cmd\": \"{cmd}\"")) {
            problems.push(format!("request {{\"cmd\": \"{cmd}\", ...}}"));
        }
    }
    for reply in variants::<Reply>(r#"{"reply":"?"}"#) {
        if !protocol.contains(&format!("{{\"reply\": \"{reply}\"")) {
            problems.push(format!("reply {{\"reply\": \"{reply}\", ...}}"));
        }
    }
    for outcome in variants::<Outcome>(r#""?""#) {
        if !tags.contains(&outcome) {
            problems.push(format!("outcome `{outcome}` (a `.TP` entry under PROTOCOL)"));
        }
    }
    for code in variants::<ErrorCode>(r#""?""#) {
        if !tags.contains(&code) {
            problems.push(format!("error code `{code}` (a `.TP` entry under PROTOCOL)"));
        }
    }
    report("man/kahi-ctl.1's PROTOCOL section does not document", &problems);
}

#[test]
fn the_readers_of_roff_read_roff() {
    assert_eq!(unroff(r"\fB\-\-check\fR \(dqa\(dq\e \(aqx\(aq\&."), r#"--check "a"\ 'x'."#);
    assert_eq!(macro_args(r#".BR status " [" \-\-json "]""#), ["status", " [", "--json", "]"]);
    assert_eq!(macro_args(r#".B """unexpected""""#), [r#""unexpected""#]);
    assert_eq!(tag_words(r#".BR added ", " changed"#), ["added", "changed"]);
    let page = ".SH A\n.TP\n.B x\nbody\n.PP\nafter\n.SS \"[server]\"\n.TP\n.B y\n";
    let e = entries(page);
    assert_eq!((e[0].line, e[0].tag, e[0].body.as_slice()), (3, ".B x", ["body"].as_slice()));
    assert_eq!((e[1].section.as_str(), e[1].tag), ("[server]", ".B y"));
}
