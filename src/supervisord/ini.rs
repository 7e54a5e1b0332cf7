//! supervisord's INI layer, as its `UnhosedConfigParser` (a Python `RawConfigParser` with
//! `inline_comment_prefixes=(';','#')` and `strict=False`, supervisord's options.py) reads a
//! file, and its `[include]` step: which sections and keys there are, each value with the file
//! and line it came from. Pure but for reading the included files (and globbing for them).
//!
//! The rules, each as configparser has it:
//! - a line whose stripped text starts with `;` or `#` is a comment, also when indented;
//! - `;` or `#` at the start of a line or after a space or tab ends the value (`a=b;c` keeps
//!   `b;c`); not quote-aware;
//! - `key = value` or `key: value` (the first `=` or `:`); keys are lower-cased and stripped,
//!   section names are kept as written (`[Program:x]` is not a program);
//! - a line indented deeper than its key continues the value, joined with `\n`; blank lines
//!   inside are kept, trailing ones dropped;
//! - `[DEFAULT]` gives its keys to every section;
//! - a section met again is merged into the first; a key met again: the last value wins;
//! - no interpolation here: supervisord's own `%(...)` expansion is [`super::format`].

use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// One value, and where its key was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    /// Index into [`Ini::files`].
    pub file: usize,
    pub line: usize,
    /// An inline comment (a `;` or `#` after whitespace) cut one of its lines.
    pub cut: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// As written between the brackets (not stripped, not lower-cased).
    pub name: String,
    /// The file and line where it first appeared.
    pub file: usize,
    pub line: usize,
    /// In the order first written.
    pub keys: Vec<(String, Value)>,
}

/// What the files say: the main file's sections and keys, then those its `[include]` adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    /// The files read, the main one first (absolute).
    pub files: Vec<PathBuf>,
    pub defaults: Vec<(String, Value)>,
    pub sections: Vec<Section>,
    /// What supervisord only warns about (an include pattern that matches nothing).
    pub warnings: Vec<ConfigError>,
    /// Whether users and the directories of paths are checked on this host, as supervisord
    /// checks them when it reads the file; else they are taken as written.
    pub host_checks: bool,
}

impl Ini {
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// A key of a section, or of `[DEFAULT]`, as configparser's `get` looks it up.
    pub fn get<'a>(&'a self, section: &'a Section, key: &str) -> Option<&'a Value> {
        lookup(&section.keys, key).or_else(|| lookup(&self.defaults, key))
    }

    /// The error `message` at the place of `v`, about `key`.
    pub fn error_at(&self, v: &Value, key: &str, message: impl Into<String>) -> ConfigError {
        self.error_line(v.file, v.line, key, message)
    }

    pub fn error_line(
        &self,
        file: usize,
        line: usize,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.files.get(file).cloned().unwrap_or_default(),
            line,
            column: usize::from(line > 0),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Reads `text` as file `file` (already in [`Ini::files`]) into the sections so far.
    /// Lines that are neither a section, a key nor a continuation are errors, each reported, as
    /// configparser reports them all in one `ParsingError`.
    pub fn parse(&mut self, file: usize, text: &str) -> Result<(), Vec<ConfigError>> {
        enum Cur {
            None,
            Defaults,
            Section(usize),
        }
        let mut errors = Vec::new();
        let mut cur = Cur::None;
        // The key being read (a continuation adds to it), and its pieces.
        let mut key: Option<String> = None;
        let mut indent_level = 0usize;
        // Values are kept as their pieces until the file ends, then joined; and whether an
        // inline comment cut one.
        let mut pieces: Vec<(bool, usize, String, Vec<String>, bool)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            let comment_start = comment_start(line);
            let value = line[..comment_start.unwrap_or(line.len())].trim();
            let cut = !value.is_empty() && comment_start.is_some();
            if value.is_empty() {
                // A blank line inside a value is kept, but not a comment line.
                if comment_start.is_none()
                    && key.is_some()
                    && let Some(last) = pieces.last_mut()
                {
                    last.3.push(String::new());
                }
                continue;
            }
            let cur_indent = line.find(|c: char| !c.is_whitespace()).map_or(0, |b| {
                // Python counts characters, not bytes.
                line[..b].chars().count()
            });
            if !matches!(cur, Cur::None) && key.is_some() && cur_indent > indent_level {
                if let Some(last) = pieces.last_mut() {
                    last.3.push(value.to_string());
                    last.4 |= cut;
                }
                continue;
            }
            indent_level = cur_indent;
            if let Some(header) = section_header(value) {
                if header == "DEFAULT" {
                    cur = Cur::Defaults;
                } else if let Some(i) = self.sections.iter().position(|s| s.name == header) {
                    cur = Cur::Section(i);
                } else {
                    self.sections.push(Section {
                        name: header.to_string(),
                        file,
                        line: lineno,
                        keys: Vec::new(),
                    });
                    cur = Cur::Section(self.sections.len() - 1);
                }
                key = None;
                continue;
            }
            if matches!(cur, Cur::None) {
                errors.push(self.error_line(
                    file,
                    lineno,
                    "",
                    format!(
                        "File contains no section headers: {line:?} comes before any [section] \
                         (supervisord refuses the file)"
                    ),
                ));
                // configparser stops at the first such line.
                return Err(errors);
            }
            match option_line(value) {
                Some((name, v)) if !name.is_empty() => {
                    let name = name.to_lowercase();
                    let section = match cur {
                        Cur::Section(i) => i,
                        _ => usize::MAX,
                    };
                    pieces.push((
                        section == usize::MAX,
                        section,
                        name.clone(),
                        vec![v.to_string()],
                        cut,
                    ));
                    // Where the value is, for errors: recorded now, joined at the end.
                    let at = Value { text: String::new(), file, line: lineno, cut: false };
                    self.set_raw(section, &name, at);
                    key = Some(name);
                }
                _ => {
                    errors.push(self.error_line(
                        file,
                        lineno,
                        "",
                        format!(
                            "{:?} is neither a [section] nor KEY=VALUE nor KEY: VALUE \
                             (supervisord refuses the file: Source contains parsing errors)",
                            line.trim()
                        ),
                    ));
                }
            }
        }
        // Join the pieces of each value as configparser does at the end of a file: with
        // newlines, trailing whitespace (and so trailing blank lines) removed. A key set twice
        // keeps the last.
        for (defaults, section, name, parts, cut) in pieces {
            let joined = parts.join("\n");
            let text = joined.trim_end().to_string();
            let keys = if defaults { &mut self.defaults } else { &mut self.sections[section].keys };
            if let Some((_, v)) = keys.iter_mut().rev().find(|(k, _)| *k == name)
                && v.file == file
            {
                // Only the last assignment in this file survives; its line is the one kept.
                v.text = text;
                v.cut = cut;
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Records that `name` is set at `at` (the value follows when the file is joined).
    fn set_raw(&mut self, section: usize, name: &str, at: Value) {
        let keys = if section == usize::MAX {
            &mut self.defaults
        } else {
            &mut self.sections[section].keys
        };
        match keys.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = at,
            None => keys.push((name.to_string(), at)),
        }
    }

    /// supervisord's `expand_here`: every value of every section (and the `[DEFAULT]` values
    /// each section sees) that holds `%(here)s` gets `here` in its place, in that section.
    pub fn expand_here(&mut self, here: &str) {
        const HERE: &str = "%(here)s";
        for s in 0..self.sections.len() {
            for (k, v) in &self.defaults {
                if v.text.contains(HERE) && lookup(&self.sections[s].keys, k).is_none() {
                    let value = Value { text: v.text.replace(HERE, here), ..v.clone() };
                    self.sections[s].keys.push((k.clone(), value));
                }
            }
            for (_, v) in &mut self.sections[s].keys {
                if v.text.contains(HERE) {
                    v.text = v.text.replace(HERE, here);
                }
            }
        }
    }
}

fn lookup<'a>(keys: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    keys.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Where a comment starts on `line`, if it has one: anywhere when the stripped line starts
/// with `;` or `#`; else a `;` or `#` at the start or after whitespace, as configparser finds
/// it: in rounds, each round taking the next `;` and the next `#`, the first round with one
/// that qualifies deciding. So in `a;b ;c #d` the `#` (the first `#`) wins over ` ;` (the
/// second `;`): the value is `a;b ;c`.
fn comment_start(line: &str) -> Option<usize> {
    if line.trim().starts_with([';', '#']) {
        return Some(0);
    }
    let mut from: Vec<(char, usize)> = vec![(';', 0), ('#', 0)];
    let mut best: Option<usize> = None;
    while best.is_none() && !from.is_empty() {
        let mut next = Vec::new();
        for (prefix, start) in from {
            let Some(i) = line[start..].find(prefix).map(|i| i + start) else { continue };
            next.push((prefix, i + 1));
            if line[..i].chars().next_back().is_none_or(char::is_whitespace) {
                best = Some(best.map_or(i, |b| b.min(i)));
            }
        }
        from = next;
    }
    best
}

/// `[NAME]` at the start of the stripped value: everything up to the last `]`, as
/// configparser's `\[(?P<header>.+)\]` matches.
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

/// `KEY = VALUE` or `KEY: VALUE`: split at the first `=` or `:`, both sides stripped.
fn option_line(value: &str) -> Option<(&str, &str)> {
    let i = value.find(['=', ':'])?;
    Some((value[..i].trim_end(), value[i + 1..].trim()))
}

/// Reads `main` and what its `[include]` section names, as supervisord's
/// `ServerOptions.read_config` does; `vars` expands `files` (here, host_node_name, ENV_*).
pub fn read(main: &Path, text: &str, vars: &super::format::Dict) -> Result<Ini, Vec<ConfigError>> {
    let main = std::path::absolute(main).unwrap_or_else(|_| main.to_path_buf());
    let here = main.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut ini = Ini { files: vec![main.clone()], ..Ini::default() };
    ini.parse(0, text)?;
    if ini.section("include").is_some() {
        ini.expand_here(&here.to_string_lossy());
        let include = ini.section("include").cloned().unwrap_or_else(|| Section {
            name: "include".into(),
            file: 0,
            line: 0,
            keys: Vec::new(),
        });
        let Some(files) = ini.get(&include, "files").cloned() else {
            return Err(vec![ini.error_line(
                include.file,
                include.line,
                "[include]",
                ".ini file has [include] section, but no files setting (supervisord refuses it)",
            )]);
        };
        let patterns = super::format::expand(&files.text, vars, &[])
            .map(|f| f.plain)
            .map_err(|e| vec![ini.error_at(&files, "[include] files", e.message(&files.text))])?;
        for pattern in patterns.split_whitespace() {
            let full = here.join(pattern);
            let options = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: true,
            };
            let mut matched: Vec<PathBuf> = match glob::glob_with(&full.to_string_lossy(), options)
            {
                Ok(paths) => paths.filter_map(Result::ok).collect(),
                Err(e) => {
                    return Err(vec![ini.error_at(
                        &files,
                        "[include] files",
                        format!("bad pattern {pattern:?}: {}", e.msg),
                    )]);
                }
            };
            if matched.is_empty() {
                let w = ini.error_at(
                    &files,
                    "[include] files",
                    format!("No file matches via include {:?}", full.display().to_string()),
                );
                ini.warnings.push(w);
                continue;
            }
            matched.sort();
            for path in matched {
                // configparser skips a file it cannot open; say so.
                let text = match crate::config::read::text(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        let w = ini.error_at(
                            &files,
                            "[include] files",
                            format!(
                                "{} is not read (supervisord skips it too): {e}",
                                path.display()
                            ),
                        );
                        ini.warnings.push(w);
                        continue;
                    }
                };
                let dir = path.parent().unwrap_or(Path::new("/")).to_string_lossy().into_owned();
                ini.files.push(path);
                ini.parse(ini.files.len() - 1, &text)?;
                ini.expand_here(&dir);
            }
        }
    }
    if ini.section("supervisord").is_none() {
        return Err(vec![ini.error_line(
            0,
            0,
            "",
            ".ini file does not include supervisord section (supervisord refuses it)",
        )]);
    }
    Ok(ini)
}

#[cfg(test)]
#[path = "ini_tests.rs"]
mod tests;
