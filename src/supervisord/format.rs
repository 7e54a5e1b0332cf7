//! supervisord's `%` expansion: `expand(s, expansions, name)` is Python's `s % expansions`
//! (options.py), so every printf form works: `%(name)s`, `%(process_num)02d`, `%(name)-10s`,
//! `%(n)x`, `%%`. `process_num` and `numprocs` are integers, every other name a string, so
//! `%(ENV_X)d` fails. A lone `%` is an error, but `%s` (and `%r`, `%a`) without a name is not:
//! Python puts the whole table there; Kahi keeps the text and says so.
//!
//! [`expand`] can also keep some names as they are (`%(process_num)02d` left for Kahi to expand
//! per process) and escape the rest for a Kahi value (`%` -> `%%`, `$` -> `$$`). No I/O here.

use std::collections::BTreeMap;

/// A value of the expansion table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Str(String),
    Int(i64),
}

/// The names an option may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dict(pub BTreeMap<String, Val>);

impl Dict {
    pub fn set_str(&mut self, k: &str, v: impl Into<String>) {
        self.0.insert(k.to_string(), Val::Str(v.into()));
    }
    pub fn set_int(&mut self, k: &str, v: i64) {
        self.0.insert(k.to_string(), Val::Int(v));
    }
    /// `ENV_<NAME>` for each variable.
    pub fn with_env<'a>(mut self, vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        for (k, v) in vars {
            self.set_str(&format!("ENV_{k}"), v);
        }
        self
    }
}

/// The result: `plain` is what supervisord gets; `kahi` the same text for a Kahi value, with
/// the kept names left as written and every other `%` and `$` doubled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    pub plain: String,
    pub kahi: String,
    /// A `%s` without a name was met: supervisord would put its whole table there.
    pub whole_table: bool,
    /// A kept name was met.
    pub kept: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// `%(name)s` where the table has no such name.
    Missing(String),
    /// Any other error of Python's `%`, in Python's words.
    Bad(String),
}

impl FormatError {
    /// supervisord's message for the value `s` (options.py `expand`), with the names
    /// available when one is missing.
    pub fn message(&self, s: &str) -> String {
        match self {
            FormatError::Missing(name) => format!(
                "Format string {s:?} contains names ('{name}') which cannot be expanded (supervisord refuses it; \
                 an environment variable must be set)"
            ),
            FormatError::Bad(why) => {
                format!("Format string {s:?} is badly formatted: {why} (write %% for a literal %)")
            }
        }
    }
}

/// Expands `s` with `dict`; names in `keep` are left as written in [`Expanded::kahi`].
pub fn expand(s: &str, dict: &Dict, keep: &[&str]) -> Result<Expanded, FormatError> {
    let mut out =
        Expanded { plain: String::new(), kahi: String::new(), whole_table: false, kept: false };
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        if c != '%' {
            out.plain.push(c);
            push_escaped(&mut out.kahi, c);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if i >= n {
            return Err(FormatError::Bad("incomplete format".into()));
        }
        let mut key: Option<String> = None;
        if chars[i] == '(' {
            // Python counts nested parentheses.
            let mut depth = 1;
            i += 1;
            let kstart = i;
            while i < n && depth > 0 {
                match chars[i] {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                i += 1;
            }
            if depth > 0 {
                return Err(FormatError::Bad("incomplete format key".into()));
            }
            key = Some(chars[kstart..i - 1].iter().collect());
        }
        let mut flags = String::new();
        while i < n && "-+ #0".contains(chars[i]) {
            flags.push(chars[i]);
            i += 1;
        }
        let width = digits(&chars, &mut i)?;
        let mut precision = None;
        if i < n && chars[i] == '.' {
            i += 1;
            precision = Some(digits(&chars, &mut i)?.unwrap_or(0));
        }
        while i < n && "hlL".contains(chars[i]) {
            i += 1;
        }
        if i >= n {
            return Err(FormatError::Bad("incomplete format".into()));
        }
        let conv = chars[i];
        i += 1;
        let spec: String = chars[start..i].iter().collect();
        if conv == '%' {
            out.plain.push('%');
            out.kahi.push_str("%%");
            continue;
        }
        let Some(key) = key else {
            // The table itself is the argument.
            match conv {
                's' | 'r' | 'a' => {
                    out.whole_table = true;
                    out.plain.push_str(&spec);
                    spec.chars().for_each(|c| push_escaped(&mut out.kahi, c));
                    continue;
                }
                'x' | 'X' | 'o' => {
                    return Err(FormatError::Bad(format!(
                        "%{conv} format: an integer is required, not dict"
                    )));
                }
                'd' | 'i' | 'u' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'c' => {
                    return Err(FormatError::Bad(format!(
                        "%{conv} format: a real number is required, not dict"
                    )));
                }
                _ => return Err(unsupported(conv, i - 1)),
            }
        };
        let Some(value) = dict.0.get(&key) else {
            if !"sraduixXoeEfFgGc".contains(conv) {
                return Err(unsupported(conv, i - 1));
            }
            return Err(FormatError::Missing(key));
        };
        let text = convert(value, conv, &flags, width, precision, i - 1)?;
        out.plain.push_str(&text);
        if keep.contains(&key.as_str()) {
            out.kahi.push_str(&spec);
            out.kept = true;
        } else {
            text.chars().for_each(|c| push_escaped(&mut out.kahi, c));
        }
    }
    Ok(out)
}

fn push_escaped(out: &mut String, c: char) {
    if c == '%' || c == '$' {
        out.push(c);
    }
    out.push(c);
}

fn unsupported(c: char, at: usize) -> FormatError {
    FormatError::Bad(format!("unsupported format character '{c}' ({:#x}) at index {at}", c as u32))
}

/// A width or precision: digits (a `*` needs a tuple, which a table is not).
fn digits(chars: &[char], i: &mut usize) -> Result<Option<usize>, FormatError> {
    if *i < chars.len() && chars[*i] == '*' {
        return Err(FormatError::Bad("* wants int".into()));
    }
    let start = *i;
    while *i < chars.len() && chars[*i].is_ascii_digit() {
        *i += 1;
    }
    if *i == start {
        return Ok(None);
    }
    let s: String = chars[start..*i].iter().collect();
    match s.parse::<usize>() {
        Ok(n) if n <= 10_000 => Ok(Some(n)),
        _ => Err(FormatError::Bad("width too big".into())),
    }
}

fn convert(
    v: &Val,
    conv: char,
    flags: &str,
    width: Option<usize>,
    precision: Option<usize>,
    at: usize,
) -> Result<String, FormatError> {
    let left = flags.contains('-');
    let body = match (conv, v) {
        ('s', Val::Str(s)) => truncate(s, precision),
        ('s', Val::Int(n)) => truncate(&n.to_string(), precision),
        ('r' | 'a', Val::Str(s)) => truncate(&repr(s), precision),
        ('r' | 'a', Val::Int(n)) => truncate(&n.to_string(), precision),
        ('c', Val::Int(n)) => match u32::try_from(*n).ok().and_then(char::from_u32) {
            Some(c) => c.to_string(),
            None => return Err(FormatError::Bad("%c arg not in range(0x110000)".into())),
        },
        ('c', Val::Str(s)) if s.chars().count() == 1 => s.clone(),
        ('c', Val::Str(_)) => {
            return Err(FormatError::Bad(
                "%c requires an int or a unicode character, not str".into(),
            ));
        }
        ('d' | 'i' | 'u' | 'x' | 'X' | 'o' | 'f' | 'F' | 'e' | 'E' | 'g' | 'G', Val::Int(n)) => {
            return Ok(number(*n, conv, flags, width, precision));
        }
        ('d' | 'i' | 'u' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G', Val::Str(_)) => {
            return Err(FormatError::Bad(format!(
                "%{conv} format: a real number is required, not str"
            )));
        }
        ('x' | 'X' | 'o', Val::Str(_)) => {
            return Err(FormatError::Bad(format!(
                "%{conv} format: an integer is required, not str"
            )));
        }
        _ => return Err(unsupported(conv, at)),
    };
    Ok(pad(&body, width, left, false, ""))
}

fn truncate(s: &str, precision: Option<usize>) -> String {
    match precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    }
}

/// Python's repr of a str, for `%r`: single quotes unless the text holds one and no double.
fn repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::from(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

fn number(
    n: i64,
    conv: char,
    flags: &str,
    width: Option<usize>,
    precision: Option<usize>,
) -> String {
    let alt = flags.contains('#');
    let (mut digits, prefix) = match conv {
        'x' => (format!("{:x}", n.unsigned_abs()), if alt { "0x" } else { "" }),
        'X' => (format!("{:X}", n.unsigned_abs()), if alt { "0X" } else { "" }),
        'o' => (format!("{:o}", n.unsigned_abs()), if alt { "0o" } else { "" }),
        'f' | 'F' => (format!("{:.*}", precision.unwrap_or(6), n.unsigned_abs() as f64), ""),
        'e' | 'E' | 'g' | 'G' => (exponent(n.unsigned_abs() as f64, conv, precision, alt), ""),
        _ => (n.unsigned_abs().to_string(), ""),
    };
    if !matches!(conv, 'f' | 'F' | 'e' | 'E' | 'g' | 'G')
        && let Some(p) = precision
        && digits.len() < p
    {
        digits = format!("{}{digits}", "0".repeat(p - digits.len()));
    }
    let sign = if n < 0 {
        "-"
    } else if flags.contains('+') {
        "+"
    } else if flags.contains(' ') {
        " "
    } else {
        ""
    };
    let lead = format!("{sign}{prefix}");
    pad(&digits, width, flags.contains('-'), flags.contains('0'), &lead)
}

/// `%e` and `%g` (`%E`, `%G` in capitals) of `x` >= 0, as Python writes them: `e` with
/// `precision` digits after the point (default 6) and an exponent of two digits at least; `g`
/// with `precision` significant digits, as `f` when the exponent is from -4 to below it, else
/// as `e`, its trailing zeros dropped. `#` keeps the point and, for `g`, the zeros.
fn exponent(x: f64, conv: char, precision: Option<usize>, alt: bool) -> String {
    let e_form = |digits: usize| {
        let s = format!("{x:.digits$e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let point = if alt && !mantissa.contains('.') { "." } else { "" };
        let sign = if exp < 0 { '-' } else { '+' };
        (format!("{mantissa}{point}e{sign}{:02}", exp.unsigned_abs()), exp)
    };
    let text = if matches!(conv, 'e' | 'E') {
        e_form(precision.unwrap_or(6)).0
    } else {
        let p = precision.unwrap_or(6).max(1);
        let (e, exp) = e_form(p - 1);
        let mut text = if (-4..p as i32).contains(&exp) {
            format!("{x:.*}", (p as i32 - 1 - exp) as usize)
        } else {
            e
        };
        let (mantissa, tail) = match text.find('e') {
            Some(i) => text.split_at(i),
            None => (text.as_str(), ""),
        };
        if alt {
            if !mantissa.contains('.') {
                text = format!("{mantissa}.{tail}");
            }
        } else if mantissa.contains('.') {
            text = format!("{}{tail}", mantissa.trim_end_matches('0').trim_end_matches('.'));
        }
        text
    };
    if conv.is_ascii_uppercase() { text.to_uppercase() } else { text }
}

/// `lead` + `body`, padded to `width`: on the right when `left`, else with zeros after the lead
/// when `zero`, else with spaces before it.
fn pad(body: &str, width: Option<usize>, left: bool, zero: bool, lead: &str) -> String {
    let len = lead.chars().count() + body.chars().count();
    let fill = width.unwrap_or(0).saturating_sub(len);
    if left {
        format!("{lead}{body}{}", " ".repeat(fill))
    } else if zero {
        format!("{lead}{}{body}", "0".repeat(fill))
    } else {
        format!("{}{lead}{body}", " ".repeat(fill))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict() -> Dict {
        let mut d = Dict::default();
        d.set_str("program_name", "web");
        d.set_int("process_num", 3);
        d.set_int("numprocs", 2);
        d.set_str("ENV_HOME", "/root");
        d
    }

    /// Every case is what Python 3 prints for `spec % {"n": n}`.
    #[test]
    fn exponent_and_general_forms_are_pythons() {
        let cases: &[(&str, i64, &str)] = &[
            ("%(n)e", 0, "0.000000e+00"),
            ("%(n)e", 5, "5.000000e+00"),
            ("%(n)e", 125, "1.250000e+02"),
            ("%(n)e", -7, "-7.000000e+00"),
            ("%(n)e", 1234567, "1.234567e+06"),
            ("%(n)e", 100000, "1.000000e+05"),
            ("%(n)e", 1000000, "1.000000e+06"),
            ("%(n)e", 12345678901, "1.234568e+10"),
            ("%(n)E", 0, "0.000000E+00"),
            ("%(n)E", 5, "5.000000E+00"),
            ("%(n)E", 125, "1.250000E+02"),
            ("%(n)E", -7, "-7.000000E+00"),
            ("%(n)E", 1234567, "1.234567E+06"),
            ("%(n)E", 100000, "1.000000E+05"),
            ("%(n)E", 1000000, "1.000000E+06"),
            ("%(n)E", 12345678901, "1.234568E+10"),
            ("%(n).2e", 0, "0.00e+00"),
            ("%(n).2e", 5, "5.00e+00"),
            ("%(n).2e", 125, "1.25e+02"),
            ("%(n).2e", -7, "-7.00e+00"),
            ("%(n).2e", 1234567, "1.23e+06"),
            ("%(n).2e", 100000, "1.00e+05"),
            ("%(n).2e", 1000000, "1.00e+06"),
            ("%(n).2e", 12345678901, "1.23e+10"),
            ("%(n)g", 0, "0"),
            ("%(n)g", 5, "5"),
            ("%(n)g", 125, "125"),
            ("%(n)g", -7, "-7"),
            ("%(n)g", 1234567, "1.23457e+06"),
            ("%(n)g", 100000, "100000"),
            ("%(n)g", 1000000, "1e+06"),
            ("%(n)g", 12345678901, "1.23457e+10"),
            ("%(n)G", 0, "0"),
            ("%(n)G", 5, "5"),
            ("%(n)G", 125, "125"),
            ("%(n)G", -7, "-7"),
            ("%(n)G", 1234567, "1.23457E+06"),
            ("%(n)G", 100000, "100000"),
            ("%(n)G", 1000000, "1E+06"),
            ("%(n)G", 12345678901, "1.23457E+10"),
            ("%(n).3g", 0, "0"),
            ("%(n).3g", 5, "5"),
            ("%(n).3g", 125, "125"),
            ("%(n).3g", -7, "-7"),
            ("%(n).3g", 1234567, "1.23e+06"),
            ("%(n).3g", 100000, "1e+05"),
            ("%(n).3g", 1000000, "1e+06"),
            ("%(n).3g", 12345678901, "1.23e+10"),
            ("%(n)#g", 0, "0.00000"),
            ("%(n)#g", 5, "5.00000"),
            ("%(n)#g", 125, "125.000"),
            ("%(n)#g", -7, "-7.00000"),
            ("%(n)#g", 1234567, "1.23457e+06"),
            ("%(n)#g", 100000, "100000."),
            ("%(n)#g", 1000000, "1.00000e+06"),
            ("%(n)#g", 12345678901, "1.23457e+10"),
            ("%(n)#.0e", 0, "0.e+00"),
            ("%(n)#.0e", 5, "5.e+00"),
            ("%(n)#.0e", 125, "1.e+02"),
            ("%(n)#.0e", -7, "-7.e+00"),
            ("%(n)#.0e", 1234567, "1.e+06"),
            ("%(n)#.0e", 100000, "1.e+05"),
            ("%(n)#.0e", 1000000, "1.e+06"),
            ("%(n)#.0e", 12345678901, "1.e+10"),
            ("%(n).0e", 0, "0e+00"),
            ("%(n).0e", 5, "5e+00"),
            ("%(n).0e", 125, "1e+02"),
            ("%(n).0e", -7, "-7e+00"),
            ("%(n).0e", 1234567, "1e+06"),
            ("%(n).0e", 100000, "1e+05"),
            ("%(n).0e", 1000000, "1e+06"),
            ("%(n).0e", 12345678901, "1e+10"),
            ("%(n)+e", 0, "+0.000000e+00"),
            ("%(n)+e", 5, "+5.000000e+00"),
            ("%(n)+e", 125, "+1.250000e+02"),
            ("%(n)+e", -7, "-7.000000e+00"),
            ("%(n)+e", 1234567, "+1.234567e+06"),
            ("%(n)+e", 100000, "+1.000000e+05"),
            ("%(n)+e", 1000000, "+1.000000e+06"),
            ("%(n)+e", 12345678901, "+1.234568e+10"),
            ("%(n) g", 0, " 0"),
            ("%(n) g", 5, " 5"),
            ("%(n) g", 125, " 125"),
            ("%(n) g", -7, "-7"),
            ("%(n) g", 1234567, " 1.23457e+06"),
            ("%(n) g", 100000, " 100000"),
            ("%(n) g", 1000000, " 1e+06"),
            ("%(n) g", 12345678901, " 1.23457e+10"),
            ("%(n)015e", 0, "0000.000000e+00"),
            ("%(n)015e", 5, "0005.000000e+00"),
            ("%(n)015e", 125, "0001.250000e+02"),
            ("%(n)015e", -7, "-007.000000e+00"),
            ("%(n)015e", 1234567, "0001.234567e+06"),
            ("%(n)015e", 100000, "0001.000000e+05"),
            ("%(n)015e", 1000000, "0001.000000e+06"),
            ("%(n)015e", 12345678901, "0001.234568e+10"),
            ("%(n)-14e|", 0, "0.000000e+00  |"),
            ("%(n)-14e|", 5, "5.000000e+00  |"),
            ("%(n)-14e|", 125, "1.250000e+02  |"),
            ("%(n)-14e|", -7, "-7.000000e+00 |"),
            ("%(n)-14e|", 1234567, "1.234567e+06  |"),
            ("%(n)-14e|", 100000, "1.000000e+05  |"),
            ("%(n)-14e|", 1000000, "1.000000e+06  |"),
            ("%(n)-14e|", 12345678901, "1.234568e+10  |"),
            ("%(n)12.3G", 0, "           0"),
            ("%(n)12.3G", 5, "           5"),
            ("%(n)12.3G", 125, "         125"),
            ("%(n)12.3G", -7, "          -7"),
            ("%(n)12.3G", 1234567, "    1.23E+06"),
            ("%(n)12.3G", 100000, "       1E+05"),
            ("%(n)12.3G", 1000000, "       1E+06"),
            ("%(n)12.3G", 12345678901, "    1.23E+10"),
            ("%(n).0g", 0, "0"),
            ("%(n).0g", 5, "5"),
            ("%(n).0g", 125, "1e+02"),
            ("%(n).0g", -7, "-7"),
            ("%(n).0g", 1234567, "1e+06"),
            ("%(n).0g", 100000, "1e+05"),
            ("%(n).0g", 1000000, "1e+06"),
            ("%(n).0g", 12345678901, "1e+10"),
            ("%(n)#.3g", 0, "0.00"),
            ("%(n)#.3g", 5, "5.00"),
            ("%(n)#.3g", 125, "125."),
            ("%(n)#.3g", -7, "-7.00"),
            ("%(n)#.3g", 1234567, "1.23e+06"),
            ("%(n)#.3g", 100000, "1.00e+05"),
            ("%(n)#.3g", 1000000, "1.00e+06"),
            ("%(n)#.3g", 12345678901, "1.23e+10"),
        ];
        for (spec, n, want) in cases {
            let mut d = Dict::default();
            d.set_int("n", *n);
            assert_eq!(expand(spec, &d, &[]).unwrap().plain, *want, "{spec} % {n}");
        }
    }

    fn ok(s: &str) -> String {
        expand(s, &dict(), &[]).unwrap().plain
    }

    fn err(s: &str) -> FormatError {
        expand(s, &dict(), &[]).unwrap_err()
    }

    #[test]
    fn printf_forms_as_python_formats_them() {
        // Each expected value is what Python 3.11 prints for the same format and table.
        assert_eq!(ok("%(program_name)s_%(process_num)02d"), "web_03");
        assert_eq!(ok("%(process_num)d %(process_num)3d|%(process_num)-3d|"), "3   3|3  |");
        assert_eq!(
            ok("%(process_num)s %(numprocs)x %(process_num)#o %(process_num).3d"),
            "3 2 0o3 003"
        );
        assert_eq!(ok("%(process_num)+d %(process_num)05.2f"), "+3 03.00");
        assert_eq!(ok("%(program_name)5s|%(program_name)-5s|%(program_name).2s"), "  web|web  |we");
        assert_eq!(ok("%(program_name)05s"), "  web");
        assert_eq!(ok("%(program_name)r"), "'web'");
        assert_eq!(ok("%(ENV_HOME)s/x 100%%"), "/root/x 100%");
        assert_eq!(ok("no percent here"), "no percent here");
    }

    #[test]
    fn errors_as_python_raises_them() {
        assert_eq!(err("%(ENV_NOPE)s"), FormatError::Missing("ENV_NOPE".into()));
        assert_eq!(
            err("date +%Y"),
            FormatError::Bad("unsupported format character 'Y' (0x59) at index 7".into())
        );
        assert_eq!(err("100%"), FormatError::Bad("incomplete format".into()));
        assert_eq!(err("%(program_name"), FormatError::Bad("incomplete format key".into()));
        assert_eq!(
            err("%(ENV_HOME)d"),
            FormatError::Bad("%d format: a real number is required, not str".into())
        );
        assert_eq!(
            err("%d"),
            FormatError::Bad("%d format: a real number is required, not dict".into())
        );
        // ' ' is a flag: "% o" is an octal conversion of the table itself.
        assert_eq!(
            err("50% off"),
            FormatError::Bad("%o format: an integer is required, not dict".into())
        );
    }

    #[test]
    fn a_bare_s_is_kept_and_flagged() {
        let e = expand("date +%s", &dict(), &[]).unwrap();
        assert!(e.whole_table);
        assert_eq!(e.plain, "date +%s");
        assert_eq!(e.kahi, "date +%%s");
    }

    #[test]
    fn kept_names_stay_templates_and_the_rest_is_escaped_for_kahi() {
        let e =
            expand("/d/%(program_name)s_%(process_num)02d $HOME 5%%", &dict(), &["process_num"])
                .unwrap();
        assert_eq!(e.plain, "/d/web_03 $HOME 5%");
        assert_eq!(e.kahi, "/d/web_%(process_num)02d $$HOME 5%%");
        assert!(e.kept);
    }
}
