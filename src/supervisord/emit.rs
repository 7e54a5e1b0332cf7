//! The TOML a migration writes: tables and keys, each line remembering the place in the
//! supervisord files it comes from, so that an error Kahi's loader finds in the TOML is told
//! at the supervisord line. No I/O here.

use std::path::PathBuf;

use crate::config::ConfigError;

/// Where a line came from: (index into the files, line).
pub type Src = Option<(usize, usize)>;

#[derive(Debug, Default)]
pub struct Out {
    pub text: String,
    /// For each line of `text`, its source.
    pub sources: Vec<Src>,
}

impl Out {
    pub fn line(&mut self, s: &str, src: Src) {
        for l in s.split('\n') {
            self.text.push_str(l);
            self.text.push('\n');
            self.sources.push(src);
        }
    }

    /// A blank line, the source as a comment, and the table's header.
    pub fn table(&mut self, header: &str, src: Src, files: &[PathBuf]) {
        self.line("", None);
        if let Some((f, l)) = src
            && let Some(path) = files.get(f)
        {
            self.line(&format!("# {}:{l}", path.display()), src);
        }
        self.line(&format!("[{header}]"), src);
    }

    pub fn key(&mut self, key: &str, value: &str, src: Src) {
        self.line(&format!("{} = {value}", bare(key)), src);
    }

    /// `error`, from loading the TOML, told at the supervisord line its TOML line came from.
    pub fn place(&self, mut error: ConfigError, files: &[PathBuf]) -> ConfigError {
        if error.line > 0
            && let Some(Some((f, l))) = self.sources.get(error.line - 1)
            && let Some(path) = files.get(*f)
        {
            error.file = path.clone();
            error.line = *l;
            error.column = 1;
        }
        error
    }
}

/// A TOML basic string. Written by hand: the toml crate's serializer, which nothing else in
/// Kahi uses, adds 12 KB to the static binary for this.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn strings<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<String> = items.iter().map(|s| string(s.as_ref())).collect();
    format!("[{}]", parts.join(", "))
}

/// A key as TOML writes it: bare when it can be, else quoted.
pub fn bare(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_string()
    } else {
        string(key)
    }
}

/// An inline table of strings, in the order given.
pub fn inline(pairs: &[(String, String)]) -> String {
    let parts: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{} = {}", bare(k), string(v))).collect();
    format!("{{ {} }}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_keys_and_tables_are_valid_toml() {
        let mut out = Out::default();
        out.table(&format!("programs.{}", bare("a.b")), Some((0, 3)), &["/s.conf".into()]);
        out.key("command", &string("echo \"x\" \\ 'y'\n\u{1}\t"), Some((0, 4)));
        out.key("environment", &inline(&[("A B".into(), "1".into())]), Some((0, 5)));
        out.key("events", &strings(&["TICK_5"]), Some((0, 6)));
        let parsed: toml::Table = out.text.parse().unwrap();
        let p = &parsed["programs"]["a.b"];
        assert_eq!(p["command"].as_str(), Some("echo \"x\" \\ 'y'\n\u{1}\t"));
        assert_eq!(p["environment"]["A B"].as_str(), Some("1"));
        assert!(out.text.contains("# /s.conf:3\n"));
        assert_eq!(out.sources.len(), out.text.lines().count());
        let e = ConfigError {
            file: "/out.toml".into(),
            line: 4,
            column: 9,
            key: "programs.a.command".into(),
            message: "m".into(),
        };
        let placed = out.place(e, &["/s.conf".into()]);
        assert_eq!((placed.file.to_str(), placed.line), (Some("/s.conf"), 4));
    }
}
