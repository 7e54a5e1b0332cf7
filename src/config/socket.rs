//! The control socket of a configuration file, read leniently for `kahi ctl -c`: the client
//! needs `[server] socket` and nothing else, so an error anywhere else (a bad program table,
//! even broken TOML outside `[server]`) must not keep an operator from a running daemon.
//! The value is expanded exactly as [`super::load`] expands it. Reads one file; no other I/O.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::{ConfigError, absolute, default_socket, describe, expand, file_vars, line_col, nopos};

/// `[server] socket` of the file `path` (included files may not set it), or the default
/// socket when the file does not set it. An error only when the path itself cannot be known.
pub fn socket_of(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, ConfigError> {
    let file = absolute(path);
    let src =
        super::read::text(&file).map_err(|e| nopos(&file, "", format!("unable to read: {e}")))?;
    socket_in(&file, &src, env)
}

/// [`socket_of`] on the text `src` of `file`.
pub fn socket_in(
    file: &Path,
    src: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, ConfigError> {
    let error = |span: Range<usize>, key: &str, message: String| {
        let (line, column) = line_col(src, span.start);
        ConfigError { file: file.to_path_buf(), line, column, key: key.into(), message }
    };
    // When the file is not valid TOML, the [server] table alone may still be.
    let (text, offset) = match DeTable::parse(src) {
        Ok(_) => (src, 0),
        Err(_) => server_section(src),
    };
    let root = DeTable::parse(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start) + offset;
        error(at..at, "", format!("invalid TOML: {}", e.message().trim()))
    })?;
    let shift = |span: Range<usize>| span.start + offset..span.end + offset;
    let Some(server) = root.get_ref().get("server") else { return Ok(default_socket()) };
    let DeValue::Table(server) = server.get_ref() else {
        let found = describe(server.get_ref());
        return Err(error(
            shift(server.span()),
            "server",
            format!("expected a table, found {found}"),
        ));
    };
    let Some(socket) = server.get("socket") else { return Ok(default_socket()) };
    let DeValue::String(raw) = socket.get_ref() else {
        let found = describe(socket.get_ref());
        return Err(error(
            shift(socket.span()),
            "server.socket",
            format!("expected a string, found {found}"),
        ));
    };
    expand::expand(raw, &file_vars(file), env)
        .map(PathBuf::from)
        .map_err(|e| error(shift(socket.span()), "server.socket", e))
}

/// The `[server]` table's lines (its header to the next table header) and their offset in
/// `src`; else the lines before the first table header, where `server.socket = ...` may be.
fn server_section(src: &str) -> (&str, usize) {
    let mut start = None;
    let mut first_header = src.len();
    let mut offset = 0;
    for line in src.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            let name = trimmed.split('#').next().unwrap_or("").trim();
            if let Some(start) = start {
                return (&src[start..offset], start);
            }
            if name.starts_with("[[") {
                // An array of tables: never the [server] table.
            } else if name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).map(str::trim)
                == Some("server")
            {
                start = Some(offset);
            }
            first_header = first_header.min(offset);
        }
        offset += line.len();
    }
    match start {
        Some(start) => (&src[start..], start),
        None => (&src[..first_header], 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "RUN").then(|| "/var/run".to_string())
    }

    fn socket(src: &str) -> Result<PathBuf, String> {
        socket_in(Path::new("/etc/kahi/kahi.toml"), src, &env).map_err(|e| e.to_string())
    }

    #[test]
    fn the_socket_is_expanded_as_the_daemon_expands_it() {
        assert_eq!(socket("[server]\nsocket = \"/run/k.sock\"\n"), Ok("/run/k.sock".into()));
        assert_eq!(socket("[server]\nsocket = \"${RUN}/k.sock\"\n"), Ok("/var/run/k.sock".into()));
        assert_eq!(
            socket("[server]\nsocket = \"${NONE:-/tmp}/k.sock\"\n"),
            Ok("/tmp/k.sock".into())
        );
        assert_eq!(
            socket("[server]\nsocket = \"%(here)s/k.sock\"\n"),
            Ok("/etc/kahi/k.sock".into())
        );
        assert_eq!(socket("server.socket = \"/a.sock\"\n"), Ok("/a.sock".into()));
        assert_eq!(socket(""), Ok(default_socket()));
        assert_eq!(socket("[programs.web]\ncommand = \"x\"\n"), Ok(default_socket()));
    }

    #[test]
    fn errors_elsewhere_do_not_matter() {
        let good = Ok(PathBuf::from("/run/k.sock"));
        // A bad program table and an unknown key: errors for the daemon, not here.
        let src =
            "[server]\nsocket = \"/run/k.sock\"\nnope = 1\n\n[programs.web]\nstartsecs = \"x\"\n";
        assert_eq!(socket(src), good);
        // Broken TOML after the [server] table, and before it.
        let src =
            "[server]\nsocket = \"/run/k.sock\"\n\n[programs.web]\ncommand = \"unterminated\n";
        assert_eq!(socket(src), good);
        let src = "[programs.web]\ncommand = [\n\n[ server ] # the control socket\nsocket = \"/run/k.sock\"\n";
        assert_eq!(socket(src), good);
        let src = "server.socket = \"/run/k.sock\"\n\n[programs.web]\ncommand = = 1\n";
        assert_eq!(socket(src), good);
    }

    #[test]
    fn a_socket_that_cannot_be_known_is_an_error_with_its_place() {
        let file = "/etc/kahi/kahi.toml";
        assert_eq!(
            socket("[server]\nsocket = 5\n"),
            Err(format!("{file}:2:10: server.socket: expected a string, found integer 5"))
        );
        assert_eq!(
            socket("[programs.x]\ncommand = [\n[server]\nsocket = \"${X\"\n"),
            Err(format!("{file}:4:10: server.socket: unterminated \"${{\" in \"${{X\""))
        );
        assert_eq!(
            socket("[server]\nsocket = \"/a\" x\n[programs.x]\n"),
            Err(format!(
                "{file}:2:15: invalid TOML: unexpected key or value, expected newline, `#`"
            ))
        );
        assert_eq!(
            socket("server = 1\n"),
            Err(format!("{file}:1:10: server: expected a table, found integer 1"))
        );
    }
}
