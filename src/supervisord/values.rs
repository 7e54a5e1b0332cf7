//! supervisord's value types (its datatypes.py), each accepting what Python accepts and
//! refusing, with supervisord's reason, what it refuses: booleans, Python integers, byte sizes,
//! octal modes, signals, autorestart, exit codes, lists, names, log levels, addresses, and
//! `environment=` (`dict_of_key_value_pairs`: a non-POSIX `shlex` token stream,
//! `KEY = VALUE <any one token> ...`). No I/O here.

/// `true yes on 1` / `false no off 0`, any case.
pub fn boolean(s: &str) -> Result<bool, String> {
    match s.to_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("not a valid boolean value: {s:?}")),
    }
}

/// Python's `int()`: surrounding whitespace, a sign, `_` between digits.
pub fn integer(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid literal for int() with base 10: {s:?}");
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return Err(bad());
    }
    let n: i64 = digits.replace('_', "").parse().map_err(|_| bad())?;
    Ok(if neg { -n } else { n })
}

/// Bytes, or a number with `KB`, `MB` or `GB` (any case, 1024-based).
pub fn byte_size(s: &str) -> Result<i64, String> {
    let lower = s.to_lowercase();
    for (suffix, m) in [("kb", 1i64 << 10), ("mb", 1 << 20), ("gb", 1 << 30)] {
        if let Some(n) = lower.strip_suffix(suffix) {
            return integer(n).map(|n| n.saturating_mul(m));
        }
    }
    integer(&lower)
}

/// `int(s, 8)`: `022`, `22`, `0o22`.
pub fn octal(s: &str) -> Result<u32, String> {
    let bad = || format!("{s} can not be converted to an octal type");
    let t = s.trim();
    let t = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")).unwrap_or(t);
    if t.is_empty() || t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return Err(bad());
    }
    u32::from_str_radix(&t.replace('_', ""), 8).map_err(|_| bad())
}

/// The `signal` module's names on Linux, with their numbers: what `signal_number` accepts.
const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGIOT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPOLL", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
    ("SIGRTMIN", 34),
    ("SIGRTMAX", 64),
    ("SIG_DFL", 0),
    ("SIG_IGN", 1),
    ("SIG_BLOCK", 0),
    ("SIG_UNBLOCK", 1),
    ("SIG_SETMASK", 2),
];

/// A signal number, or a name with or without `SIG`, any case.
pub fn signal_number(s: &str) -> Result<i32, String> {
    let num = match integer(s) {
        Ok(n) => i32::try_from(n).unwrap_or(-1),
        Err(_) => {
            let upper = s.trim().to_uppercase();
            let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
            match SIGNALS.iter().find(|(n, _)| *n == name) {
                Some((_, n)) => *n,
                None => return Err(format!("value {s:?} is not a valid signal name")),
            }
        }
    };
    if !SIGNALS.iter().any(|(_, n)| *n == num) {
        return Err(format!("value {s:?} is not a valid signal number"));
    }
    Ok(num)
}

/// `autorestart`: a boolean or `unexpected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoRestart {
    Always,
    Never,
    Unexpected,
}

pub fn auto_restart(s: &str) -> Result<AutoRestart, String> {
    if s.eq_ignore_ascii_case("unexpected") {
        return Ok(AutoRestart::Unexpected);
    }
    match boolean(s) {
        Ok(true) => Ok(AutoRestart::Always),
        Ok(false) => Ok(AutoRestart::Never),
        Err(_) => Err(format!("invalid 'autorestart' value {:?}", s.to_lowercase())),
    }
}

/// A comma list of exit codes 0-255; empty is none.
pub fn exitcodes(s: &str) -> Result<Vec<i32>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let bad = || format!("not a valid list of exit codes: {s:?}");
    s.split(',')
        .map(|c| match integer(c) {
            Ok(n) if (0..=255).contains(&n) => Ok(n as i32),
            _ => Err(bad()),
        })
        .collect()
}

/// A comma list, each item stripped; empty is none (a trailing comma gives an empty item).
pub fn list_of_strings(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split(',').map(|x| x.trim().to_string()).collect()
}

/// A process or group name: stripped, without space, `:` or `/`.
pub fn name(s: &str) -> Result<String, String> {
    let t = s.trim();
    for c in [' ', ':', '/'] {
        if t.contains(c) {
            return Err(format!("Invalid name: {s:?} because of character: {c:?}"));
        }
    }
    Ok(t.to_string())
}

/// supervisord's log level names, as Kahi's level (`blather` is its trace, `critical` its
/// error).
pub fn logging_level(s: &str) -> Result<&'static str, String> {
    match s.to_lowercase().as_str() {
        "critical" | "error" => Ok("error"),
        "warn" => Ok("warn"),
        "info" => Ok("info"),
        "debug" => Ok("debug"),
        "trace" | "blather" => Ok("trace"),
        _ => Err(format!("bad logging level name {s:?}")),
    }
}

/// `[inet_http_server] port`: `PORT`, `HOST:PORT`, `*:PORT` (split at the first `:`); an empty
/// host or `*` is every interface.
pub fn inet_address(s: &str) -> Result<(String, u16), String> {
    let (host, port) = match s.split_once(':') {
        Some((h, "")) => return Err(format!("no port number specified in {h:?}")),
        Some((h, p)) => (h.to_lowercase(), p),
        None => (String::new(), s),
    };
    let port = match integer(port) {
        Ok(n) if (1..=65535).contains(&n) => n as u16,
        _ => return Err(format!("not a valid port number: {port:?}")),
    };
    Ok((if host == "*" { String::new() } else { host }, port))
}

/// Variables in the order written.
pub type Pairs = Vec<(String, String)>;

/// `environment=`: supervisord's `dict_of_key_value_pairs`, pairs in the order written (a key
/// written twice keeps its first place and its last value). Also what was lost silently: the
/// pieces of an unquoted value that the tokenizer cut off (`$`, `#`, `?`, ...).
pub fn environment(s: &str) -> Result<(Pairs, Vec<String>), String> {
    let (tokens, comment) = shlex(s)?;
    let bad = || format!("Unexpected end of key/value pairs in value '{s}'");
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut lost = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if i + 3 > tokens.len() || tokens[i + 1] != "=" {
            return Err(bad());
        }
        let value = tokens[i + 2].trim_matches(['\'', '"']).to_string();
        if let Some(sep) = tokens.get(i + 3)
            && sep != ","
        {
            lost.push(format!("{}={value} is followed by {sep:?}, not a comma", tokens[i]));
        }
        match pairs.iter_mut().find(|(k, _)| *k == tokens[i]) {
            Some((_, v)) => *v = value,
            None => pairs.push((tokens[i].clone(), value)),
        }
        i += 4;
    }
    if comment {
        lost.push("an unquoted '#' starts a comment: the rest of its line is dropped".into());
    }
    Ok((pairs, lost))
}

/// Python's `shlex.shlex(s)` (non-POSIX) with `/.+-():` added to its word characters: words,
/// quoted strings (quotes kept), `#` comments to the end of the line, any other character a
/// token of its own. Also whether a comment was skipped (what it held is lost).
fn shlex(s: &str) -> Result<(Vec<String>, bool), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || "_/.+-():".contains(c);
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    let mut token = String::new();
    let mut comment = false;
    // ' ' between tokens, 'a' in a word, or the quote being read.
    let mut state = ' ';
    loop {
        let Some(c) = chars.next() else {
            if state == '"' || state == '\'' {
                return Err("No closing quotation".into());
            }
            if !token.is_empty() {
                tokens.push(token);
            }
            return Ok((tokens, comment));
        };
        match state {
            ' ' => {
                if " \t\r\n".contains(c) {
                } else if c == '#' {
                    skip_line(&mut chars);
                    comment = true;
                } else if word(c) {
                    token.push(c);
                    state = 'a';
                } else if c == '"' || c == '\'' {
                    token.push(c);
                    state = c;
                } else {
                    tokens.push(c.to_string());
                }
            }
            '"' | '\'' => {
                token.push(c);
                if c == state {
                    tokens.push(std::mem::take(&mut token));
                    state = ' ';
                }
            }
            _ => {
                if " \t\r\n".contains(c) {
                    tokens.push(std::mem::take(&mut token));
                    state = ' ';
                } else if c == '#' {
                    // The word goes on after the comment's line.
                    skip_line(&mut chars);
                    comment = true;
                } else if word(c) || c == '"' || c == '\'' {
                    token.push(c);
                } else {
                    tokens.push(std::mem::take(&mut token));
                    tokens.push(c.to_string());
                    state = ' ';
                }
            }
        }
    }
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if c == '\n' {
            break;
        }
    }
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;
