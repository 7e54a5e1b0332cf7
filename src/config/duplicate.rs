//! The two places of a duplicate key. The TOML parser says where a key is defined again, but
//! neither which key (its full path) nor where it was defined first: this finds both, from
//! the line of the duplicate and the text before it. No I/O here.

use toml::de::{DeTable, DeValue};

use super::line_col;

/// For a "duplicate key" error at byte `at` of `src`: the key's dotted path and the message,
/// with the line where the key was first defined when that can be found. None when the line
/// cannot be read as a key or a table header (the parser's own message is then all there is).
pub fn duplicate(src: &str, at: usize) -> Option<(String, String)> {
    let at = src.floor_char_boundary(at.min(src.len()));
    let start = src[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = src[at..].find('\n').map_or(src.len(), |i| at + i);
    let (before, line) = (&src[..start], &src[start..end]);
    // The segments this line names, each with its byte range in the line.
    let (mut path, own) = match header(line) {
        Some(segments) => (Vec::new(), segments),
        None => {
            let eq = outside_quotes(line, '=')?;
            let (table, key) = (current_table(before)?, split_key(line, 0..eq)?);
            if at - start > eq {
                // Inside the value: an inline table.
                let mut path = table;
                path.extend(key.into_iter().map(|(s, _)| s));
                let rest = &line[at - start..];
                let len = rest.find(['=', ',', '}']).unwrap_or(rest.len());
                let inner = rest[..len].trim();
                return Some((
                    path.join("."),
                    format!("duplicate key {inner} in this inline table"),
                ));
            }
            (table, key)
        }
    };
    // The parser points at the segment that clashes, which may not be the last
    // (`a.b.c = 1` where `a.b` is already a string).
    let upto = own.iter().position(|(_, r)| r.contains(&(at - start))).unwrap_or(own.len() - 1);
    path.extend(own.into_iter().take(upto + 1).map(|(s, _)| s));
    let first = DeTable::parse(before).ok().and_then(|t| first_line(before, t.get_ref(), &path));
    let message = match first {
        Some(line) => format!("duplicate key (first at line {line})"),
        None => "duplicate key".to_string(),
    };
    Some((path.join("."), message))
}

/// The line of the key at `path` in `table`, parsed from `src`.
fn first_line(src: &str, mut table: &DeTable<'_>, path: &[String]) -> Option<usize> {
    let (last, parents) = path.split_last()?;
    for segment in parents {
        table = match table.get(segment.as_str())?.get_ref() {
            DeValue::Table(t) => t,
            // An array of tables: the key is in its last table, as the parser reads it.
            DeValue::Array(a) => match a.iter().last()?.get_ref() {
                DeValue::Table(t) => t,
                _ => return None,
            },
            _ => return None,
        };
    }
    let (key, _) = table.get_key_value(last.as_str())?;
    Some(line_col(src, key.span().start).0)
}

/// The table the lines after `before` belong to: its last header, or the root.
fn current_table(before: &str) -> Option<Vec<String>> {
    for line in before.lines().rev() {
        if let Some(segments) = header(line) {
            return Some(segments.into_iter().map(|(s, _)| s).collect());
        }
    }
    Some(Vec::new())
}

/// The segments of a `[a.b]` or `[[a.b]]` header line, with their ranges in the line.
fn header(line: &str) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    let indent = line.len() - line.trim_start().len();
    let rest = &line[indent..];
    let open = if rest.starts_with("[[") {
        2
    } else if rest.starts_with('[') {
        1
    } else {
        0
    };
    if open == 0 {
        return None;
    }
    let close = indent + open + outside_quotes(&rest[open..], ']')?;
    let after = line[close..].trim_start_matches(']').trim();
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    split_key(line, indent + open..close)
}

/// The dotted key in `line[range]`: each segment unquoted, with its range in the line.
fn split_key(
    line: &str,
    range: std::ops::Range<usize>,
) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    let mut segments = Vec::new();
    let mut from = range.start;
    loop {
        let rest = &line[from..range.end];
        let end = from + outside_quotes(rest, '.').unwrap_or(rest.len());
        let raw = &line[from..end];
        let lead = raw.len() - raw.trim_start().len();
        let text = raw.trim();
        let name = if let Some(q) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            q.to_string()
        } else if let Some(q) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
            q.to_string()
        } else if !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            text.to_string()
        } else {
            return None;
        };
        segments.push((name, from + lead..from + lead + text.len()));
        if end >= range.end {
            return Some(segments);
        }
        from = end + 1;
    }
}

/// The byte offset of the first `c` in `s` outside a quoted string.
fn outside_quotes(s: &str, c: char) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (i, ch) in s.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if ch == '\\' => escaped = true,
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None if ch == '"' || ch == '\'' => quote = Some(ch),
            None if ch == c => return Some(i),
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The duplicate the parser reports in `src`, as `duplicate` completes it.
    fn dup(src: &str) -> Option<(String, String)> {
        let e = DeTable::parse(src).expect_err("a duplicate key");
        assert_eq!(e.message().trim(), "duplicate key", "{src}");
        duplicate(src, e.span().expect("a span").start)
    }

    fn found(key: &str, first: usize) -> Option<(String, String)> {
        Some((key.to_string(), format!("duplicate key (first at line {first})")))
    }

    #[test]
    fn a_duplicate_key_is_named_with_its_first_line() {
        let src =
            "[programs.web]\ncommand = \"a\"\nautostart = true\n\nstartsecs = 1\ncommand = \"b\"\n";
        assert_eq!(dup(src), found("programs.web.command", 2));
        assert_eq!(dup("a.b = 1\na.b = 2\n"), found("a.b", 1));
        assert_eq!(dup("x = 1\n\"x\" = 2\n"), found("x", 1));
        assert_eq!(dup("[a]\nb.c = 1\nb.c = 2\n"), found("a.b.c", 2));
    }

    #[test]
    fn a_table_defined_twice_is_named_with_its_first_header() {
        let src = "[programs.web]\ncommand = \"a\"\n\n[programs.web]\ncommand = \"b\"\n";
        assert_eq!(dup(src), found("programs.web", 1));
        let src = "[programs]\nweb = { command = \"a\" }\n\n[ programs . web ] # again\n";
        assert_eq!(dup(src), found("programs.web", 2));
        let src = "[[groups]]\nname = 1\n[[groups]]\nname = 2\nname = 3\n";
        assert_eq!(dup(src), found("groups.name", 4));
    }

    #[test]
    fn without_a_first_place_the_key_is_still_named() {
        let inline = Some(("t".to_string(), "duplicate key a in this inline table".to_string()));
        assert_eq!(dup("t = { a = 1, a = 2 }\n"), inline);
    }
}
