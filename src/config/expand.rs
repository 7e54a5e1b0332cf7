//! Variable expansion in configuration values: `${VAR}` and `${VAR:-default}` from the daemon's
//! environment (`$$` is a literal `$`), and supervisord's `%(name)s` / `%(name)d` / `%(name)02d`
//! (`%%` is a literal `%`). No I/O here: the environment is passed in.

use std::collections::BTreeMap;

/// The names a `%(...)` expansion may use, with their values.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    strings: BTreeMap<String, String>,
    ints: BTreeMap<String, i64>,
}

impl Vars {
    pub fn set_str(&mut self, name: &str, value: impl Into<String>) {
        self.strings.insert(name.to_string(), value.into());
    }

    pub fn set_int(&mut self, name: &str, value: i64) {
        self.ints.insert(name.to_string(), value);
    }

    fn available(&self) -> String {
        let mut names: Vec<&str> =
            self.strings.keys().chain(self.ints.keys()).map(|s| s.as_str()).collect();
        names.sort_unstable();
        names.retain(|n| !n.starts_with("ENV_"));
        names.push("ENV_*");
        names.join(", ")
    }
}

/// Expands `input`; `env` answers `${VAR}` look-ups. The error says what is wrong, without place.
pub fn expand(
    input: &str,
    vars: &Vars,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if !input.contains(['$', '%']) {
        return Ok(input.to_string());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find(['$', '%']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let consumed = if tail.starts_with('$') {
            dollar(tail, env, &mut out)?
        } else {
            percent(tail, vars, env, &mut out)?
        };
        rest = &tail[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Handles a `$` at the start of `s`; returns the bytes consumed.
fn dollar(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<usize, String> {
    if s.starts_with("$$") {
        out.push('$');
        return Ok(2);
    }
    if !s.starts_with("${") {
        // A lone `$` (as in a shell command line) is kept as it is.
        out.push('$');
        return Ok(1);
    }
    let end = s.find('}').ok_or_else(|| format!("unterminated \"${{\" in {s:?}"))?;
    let inner = &s[2..end];
    let (name, default) = match inner.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (inner, None),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("bad variable name in \"${{{inner}}}\""));
    }
    match (env(name).filter(|v| default.is_none() || !v.is_empty()), default) {
        (Some(v), _) => out.push_str(&v),
        (None, Some(d)) => out.push_str(d),
        (None, None) => {
            return Err(format!(
                "environment variable {name} is not set (write ${{{name}:-}} for an empty default)"
            ));
        }
    }
    Ok(end + 1)
}

/// Handles a `%` at the start of `s`; returns the bytes consumed.
fn percent(
    s: &str,
    vars: &Vars,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<usize, String> {
    if s.starts_with("%%") {
        out.push('%');
        return Ok(2);
    }
    if !s.starts_with("%(") {
        // supervisord rejects a lone `%`; Kahi keeps it, so `date +%s` means what it says.
        out.push('%');
        return Ok(1);
    }
    let close = s.find(')').ok_or_else(|| format!("unterminated \"%(\" in {s:?}"))?;
    let name = &s[2..close];
    let spec = &s[close + 1..];
    // A conversion: optional flags/width, then one of s d i.
    let conv_len = spec.find(|c: char| !(c.is_ascii_digit() || c == '-')).unwrap_or(spec.len());
    let conv = spec[conv_len..].chars().next();
    let width_spec = &spec[..conv_len];
    let (left, zero, width) = parse_width(width_spec).ok_or_else(|| {
        format!("%({name}){width_spec}: the width must be a number, at most {MAX_WIDTH}")
    })?;
    let text = match conv {
        Some('s') => {
            if let Some(v) = vars.strings.get(name) {
                v.clone()
            } else if let Some(v) = vars.ints.get(name) {
                v.to_string()
            } else if let Some(v) = name.strip_prefix("ENV_").and_then(env) {
                // %(ENV_X)s: the program's own environment first (in `vars`), then the daemon's.
                v
            } else {
                return Err(unknown(name, vars));
            }
        }
        Some('d') | Some('i') => match vars.ints.get(name) {
            Some(v) => v.to_string(),
            None if vars.strings.contains_key(name) => {
                return Err(format!("%({name}) is a string: use %({name})s"));
            }
            None => return Err(unknown(name, vars)),
        },
        _ => return Err(format!("%({name}) must be followed by s or d, as in %({name})s")),
    };
    let padded = if text.len() >= width {
        text
    } else if left {
        format!("{text:<width$}")
    } else if zero {
        let (sign, digits) = text.strip_prefix('-').map_or(("", text.as_str()), |d| ("-", d));
        format!("{sign}{digits:0>w$}", w = width - sign.len())
    } else {
        format!("{text:>width$}")
    };
    out.push_str(&padded);
    Ok(close + 1 + conv_len + 1)
}

/// The widest `%(name)Nd` or `%(name)Ns`: far more than any name needs, and formatting
/// takes no width past 65,535 (it panics).
const MAX_WIDTH: usize = 1024;

/// The flags and width of a conversion: left-aligned (`-`), zero-padded (`0`), the width. None
/// when the width is not a number or is past [`MAX_WIDTH`].
fn parse_width(spec: &str) -> Option<(bool, bool, usize)> {
    let left = spec.starts_with('-');
    let digits = spec.trim_start_matches('-');
    let zero = digits.starts_with('0');
    let width = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    (width <= MAX_WIDTH).then_some((left, zero, width))
}

fn unknown(name: &str, vars: &Vars) -> String {
    if let Some(var) = name.strip_prefix("ENV_") {
        return format!("environment variable {var} is not set (in %({name})s)");
    }
    format!("%({name}) cannot be expanded here; available names: {}", vars.available())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/root".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn vars() -> Vars {
        let mut v = Vars::default();
        v.set_str("program_name", "web");
        v.set_int("process_num", 3);
        v.set_str("ENV_MINE", "mine");
        v
    }

    fn ex(s: &str) -> Result<String, String> {
        expand(s, &vars(), &env)
    }

    #[test]
    fn dollar_forms() {
        assert_eq!(ex("${HOME}/x").unwrap(), "/root/x");
        assert_eq!(ex("${NOPE:-dflt}").unwrap(), "dflt");
        assert_eq!(ex("${EMPTY:-dflt}").unwrap(), "dflt");
        assert_eq!(ex("$$HOME $1").unwrap(), "$HOME $1");
        assert!(ex("${NOPE}").unwrap_err().contains("NOPE is not set"));
        assert!(ex("${HOME").is_err());
    }

    #[test]
    fn percent_forms() {
        assert_eq!(ex("%(program_name)s_%(process_num)02d").unwrap(), "web_03");
        assert_eq!(
            ex("%(process_num)d|%(process_num)3d|%(process_num)-3d|").unwrap(),
            "3|  3|3  |"
        );
        assert_eq!(ex("100%% %(ENV_HOME)s %(ENV_MINE)s").unwrap(), "100% /root mine");
        assert_eq!(ex("date +%s").unwrap(), "date +%s");
        assert!(
            ex("%(group_name)s")
                .unwrap_err()
                .contains("available names: process_num, program_name, ENV_*")
        );
        assert!(ex("%(program_name)d").unwrap_err().contains("is a string"));
        assert!(ex("%(ENV_NOPE)s").unwrap_err().contains("NOPE is not set"));
        assert!(ex("%(program_name)x").is_err());
    }

    /// A width past what formatting takes (65,535) panicked, and a reread of such a file took
    /// the daemon down; one past usize was taken as no width at all.
    #[test]
    fn a_width_too_large_is_an_error() {
        assert_eq!(ex("%(process_num)01024d").unwrap().len(), 1024);
        for s in ["%(program_name)070000s", "%(process_num)099999999999d", "%(process_num)1025d"] {
            let e = ex(s).unwrap_err();
            assert!(e.contains("at most 1024"), "{s}: {e}");
        }
        let e = ex("%(process_num)99999999999999999999999d").unwrap_err();
        assert!(e.contains("at most 1024"), "{e}");
        assert!(ex("%(process_num)1-2d").unwrap_err().contains("width"));
    }
}
