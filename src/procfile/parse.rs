//! What foreman reads, read as foreman reads it: the Procfile (`NAME: COMMAND` lines), `.env`
//! files (`KEY=VALUE` lines) and the formation (`web=2,worker=3`, `all=N`). Pure: the text is
//! given, nothing is opened here. Where foreman skips a line it cannot read, Kahi refuses it
//! with its place: a typo must not quietly leave a process out.

use std::path::Path;

use crate::config::ConfigError;

/// One `NAME: COMMAND` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub command: String,
    /// Its line, from 1.
    pub line: usize,
}

/// An error at `file:line`.
pub fn error(file: &Path, line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        line,
        column: if line == 0 { 0 } else { 1 },
        key: String::new(),
        message: message.into(),
    }
}

/// The lines of `text` as foreman splits them (a `\r\n` is a newline), numbered from 1.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).enumerate().map(|(i, l)| (i + 1, l))
}

/// The entries of a Procfile, in order. A line is foreman's `^([A-Za-z0-9_-]+):\s*(.+)$`;
/// blank lines and lines starting with `#` are skipped. Any other line, a name given twice
/// and a Procfile with no entry are errors.
pub fn procfile(file: &Path, text: &str) -> Result<Vec<Entry>, Vec<ConfigError>> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in lines(text) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let parsed = line.split_once(':').and_then(|(name, rest)| {
            let name_ok = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            let command = rest.trim_start();
            (name_ok && !command.is_empty()).then_some((name, command))
        });
        let Some((name, command)) = parsed else {
            errors.push(error(
                file,
                n,
                format!(
                    "expected NAME: COMMAND (a name of letters, digits, '_' and '-', a colon, \
                     then the command), found {line:?}"
                ),
            ));
            continue;
        };
        if let Some(first) = entries.iter().find(|e| e.name == name) {
            errors.push(error(
                file,
                n,
                format!("process type {name:?} is defined twice (first on line {})", first.line),
            ));
            continue;
        }
        entries.push(Entry { name: name.to_string(), command: command.to_string(), line: n });
    }
    if entries.is_empty() && errors.is_empty() {
        errors.push(error(file, 0, "no process types: expected lines of NAME: COMMAND"));
    }
    if errors.is_empty() { Ok(entries) } else { Err(errors) }
}

/// The variables of a `.env` file, in order: `KEY=VALUE` lines as foreman reads them, and
/// also `export KEY=VALUE`. Blank lines and lines starting with `#` are skipped. A value in
/// single quotes is taken as it is; in double quotes, `\n` is a newline and a backslash takes
/// the next character as it is; otherwise the value is the rest of the line (a `#` in it is
/// part of it, as in foreman), trailing whitespace removed. Any other line is an error.
pub fn env_file(file: &Path, text: &str) -> Result<Vec<(String, String)>, Vec<ConfigError>> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in lines(text) {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed.strip_prefix("export ").map(str::trim_start).unwrap_or(trimmed);
        let parsed = body.split_once('=').filter(|(key, _)| {
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        let Some((key, raw)) = parsed else {
            errors.push(error(file, n, format!("expected KEY=VALUE, found {line:?}")));
            continue;
        };
        let value = if let Some(v) = raw.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            v.to_string()
        } else if let Some(v) = raw.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            unescape(v)
        } else {
            raw.to_string()
        };
        // A later line wins, as in foreman.
        vars.retain(|(k, _)| k != key);
        vars.push((key.to_string(), value));
    }
    if errors.is_empty() { Ok(vars) } else { Err(errors) }
}

/// foreman's double quotes: `\n` is a newline, `\X` is X.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// How many processes of each type to run: `-m web=2,worker=3` (the types not named: none),
/// `all=N` (every type not named: N). Without `-m`: one of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formation {
    counts: Vec<(String, u32)>,
    all: u32,
}

impl Default for Formation {
    fn default() -> Self {
        Formation { counts: Vec::new(), all: 1 }
    }
}

/// At most this many processes of one type: PORT takes 100 a type.
pub const MAX_COUNT: u32 = 100;

impl Formation {
    /// Reads `web=2,worker=3` (spaces ignored, as foreman does).
    pub fn parse(s: &str) -> Result<Formation, String> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let mut f = Formation { counts: Vec::new(), all: 0 };
        for pair in s.split(',').filter(|p| !p.is_empty()) {
            let (name, count) = pair
                .split_once('=')
                .ok_or_else(|| format!("-m: expected NAME=COUNT, found {pair:?}"))?;
            let count: u32 = count
                .parse()
                .ok()
                .filter(|n| *n <= MAX_COUNT)
                .ok_or_else(|| format!("-m: {pair:?}: the count must be 0 to {MAX_COUNT}"))?;
            if name == "all" {
                f.all = count;
            } else if name.is_empty() {
                return Err(format!("-m: {pair:?} names no process type"));
            } else {
                f.counts.retain(|(n, _)| n != name);
                f.counts.push((name.to_string(), count));
            }
        }
        Ok(f)
    }

    /// How many of `name` to run.
    pub fn count(&self, name: &str) -> u32 {
        self.counts.iter().find(|(n, _)| n == name).map_or(self.all, |(_, c)| *c)
    }

    /// The types named that `entries` does not define.
    pub fn unknown<'a>(&'a self, entries: &[Entry]) -> Vec<&'a str> {
        self.counts
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !entries.iter().any(|e| e.name == *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("/app/Procfile")
    }

    #[test]
    fn procfile_lines_as_foreman_reads_them() {
        let text = "# the stack\nweb: bundle exec rails s -p $PORT\r\n\nworker:python3 w.py\n  \nclock-2_x:   ./clock: tick \n";
        let entries = procfile(p(), text).unwrap();
        let got: Vec<(&str, &str, usize)> =
            entries.iter().map(|e| (e.name.as_str(), e.command.as_str(), e.line)).collect();
        assert_eq!(
            got,
            [
                ("web", "bundle exec rails s -p $PORT", 2),
                ("worker", "python3 w.py", 4),
                ("clock-2_x", "./clock: tick ", 6),
            ]
        );
    }

    #[test]
    fn a_bad_procfile_line_is_refused_at_its_line() {
        for (text, line) in [
            ("web: ok\nnot a process line\n", 2),
            ("web: ok\nweb.1: dots are not foreman's\n", 2),
            ("web:\n", 1),
            ("web:    \n", 1),
            (": nameless\n", 1),
            ("web ok: x\n", 1),
        ] {
            let errors = procfile(p(), text).unwrap_err();
            assert_eq!(errors.len(), 1, "{text:?}");
            assert_eq!(errors[0].line, line, "{text:?}");
            assert!(
                errors[0].to_string().starts_with(&format!("/app/Procfile:{line}:")),
                "{}",
                errors[0]
            );
        }
        let errors = procfile(p(), "web: a\nworker: b\nweb: c\n").unwrap_err();
        assert_eq!(errors[0].line, 3);
        assert!(errors[0].message.contains("first on line 1"), "{}", errors[0]);
        let errors = procfile(p(), "# nothing\n\n").unwrap_err();
        assert!(errors[0].message.contains("no process types"), "{}", errors[0]);
    }

    #[test]
    fn env_files_as_foreman_reads_them_with_export_and_comments() {
        let text = "# settings\nA=1\nexport B=two words\nC='single $X \\n'\nD=\"a\\nb \\\"q\\\" \\\\\"\nE=x # not a comment\nA=3\n\nF=\nG==eq\n";
        let vars = env_file(Path::new(".env"), text).unwrap();
        let got: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("B", "two words"),
                ("C", "single $X \\n"),
                ("D", "a\nb \"q\" \\"),
                ("E", "x # not a comment"),
                ("A", "3"),
                ("F", ""),
                ("G", "=eq"),
            ]
        );
        let errors = env_file(Path::new(".env"), "A=1\nno equals\nB C=2\n").unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3]);
    }

    #[test]
    fn formations() {
        let f = Formation::default();
        assert_eq!((f.count("web"), f.count("x")), (1, 1));
        let f = Formation::parse("web=2, worker = 3").unwrap();
        assert_eq!((f.count("web"), f.count("worker"), f.count("clock")), (2, 3, 0));
        let f = Formation::parse("all=2,web=0").unwrap();
        assert_eq!((f.count("web"), f.count("worker")), (0, 2));
        assert!(Formation::parse("web").is_err());
        assert!(Formation::parse("web=x").is_err());
        assert!(Formation::parse("web=101").is_err());
        assert!(Formation::parse("=2").is_err());
        let entries = procfile(p(), "web: a\n").unwrap();
        assert_eq!(Formation::parse("web=1,wrk=2").unwrap().unknown(&entries), ["wrk"]);
    }
}
