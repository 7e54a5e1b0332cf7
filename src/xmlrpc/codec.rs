//! XML-RPC's wire format, bounded: a `methodCall` read into a method name and [`Value`]s, and
//! values and faults written as the `methodResponse` Python's `xmlrpc.client` reads. Pure.
//!
//! The reader is hand-written and small on purpose. It knows the little XML that XML-RPC
//! uses: elements, text, comments, `<?xml ...?>`, CDATA, the five predefined entities and
//! numeric character references. A DTD (and so any entity of one's own, the way to an entity
//! bomb) is refused, not skipped. It never recurses on the input: elements are read with an
//! explicit stack, at most [`MAX_DEPTH`] deep, and a value is made from the tree with a
//! recursion that this same cap bounds. Whatever the bytes, the answer is a value or an
//! [`Error`], never a panic.

use std::fmt::Write as _;

/// Elements open at once, at most; deeper is refused. A call's values nest some three
/// elements per level of array or struct, so this allows some twenty levels of those.
pub const MAX_DEPTH: usize = 64;
/// Elements and texts in a call, at most.
pub const MAX_NODES: usize = 100_000;

/// An XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Bool(bool),
    Str(String),
    Double(f64),
    /// `dateTime.iso8601`, as sent (`20260102T03:04:05`).
    DateTime(String),
    Base64(Vec<u8>),
    Array(Vec<Value>),
    /// Members in the order they came.
    Struct(Vec<(String, Value)>),
    /// The `nil` extension (`<nil/>`), as Python sends None with `allow_none`.
    Nil,
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A struct from (name, value) pairs.
    pub fn record(members: Vec<(&str, Value)>) -> Value {
        Value::Struct(members.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// A struct's member.
    pub fn member(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(m) => m.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why a call could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

fn err<T>(why: impl Into<String>) -> Result<T, Error> {
    Err(Error(why.into()))
}

/// A method call: its name and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub params: Vec<Value>,
}

/// Reads a `methodCall`.
pub fn parse_call(body: &[u8]) -> Result<Call, Error> {
    let text = std::str::from_utf8(body).map_err(|_| Error("the body is not UTF-8".into()))?;
    let root = parse_tree(text)?;
    if root.name != "methodCall" {
        return err(format!("expected <methodCall>, found <{}>", root.name));
    }
    let mut method = None;
    let mut params = Vec::new();
    for child in root.elements() {
        match child.name.as_str() {
            "methodName" => method = Some(child.text().trim().to_string()),
            "params" => {
                for param in child.elements() {
                    if param.name != "param" {
                        return err(format!("expected <param>, found <{}>", param.name));
                    }
                    let v = only_child(param, "value")?;
                    params.push(value(v, 0)?);
                }
            }
            other => return err(format!("unexpected <{other}> in <methodCall>")),
        }
    }
    match method {
        Some(m) if !m.is_empty() => Ok(Call { method: m, params }),
        _ => err("no <methodName>"),
    }
}

/// An element, with its children.
#[derive(Debug, Default)]
struct Element {
    name: String,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Its text, without its elements'.
    fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }
}

fn only_child<'a>(e: &'a Element, name: &str) -> Result<&'a Element, Error> {
    let mut it = e.elements();
    match (it.next(), it.next()) {
        (Some(c), None) if c.name == name => Ok(c),
        _ => err(format!("<{}> must hold one <{name}>", e.name)),
    }
}

/// A `<value>` element's value. Recursion is bounded: the tree is at most [`MAX_DEPTH`] deep.
fn value(v: &Element, depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return err("nested too deeply");
    }
    let mut typed = v.elements();
    let Some(t) = typed.next() else {
        // No type: a string.
        return Ok(Value::Str(v.text()));
    };
    if typed.next().is_some() {
        return err("<value> holds more than one value");
    }
    let text = t.text();
    let num = || text.trim();
    Ok(match t.name.as_str() {
        "int" | "i4" | "i8" => match num().parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => return err(format!("bad <{}>: {:?}", t.name, clip(&text))),
        },
        "boolean" => match num() {
            "1" => Value::Bool(true),
            "0" => Value::Bool(false),
            other => return err(format!("bad <boolean>: {:?}", clip(other))),
        },
        "string" => Value::Str(text),
        "double" => match num().parse::<f64>() {
            Ok(d) => Value::Double(d),
            Err(_) => return err(format!("bad <double>: {:?}", clip(&text))),
        },
        "dateTime.iso8601" => Value::DateTime(num().to_string()),
        "base64" => {
            use base64::Engine;
            let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            match base64::engine::general_purpose::STANDARD.decode(clean) {
                Ok(b) => Value::Base64(b),
                Err(_) => return err("bad <base64>"),
            }
        }
        "nil" => Value::Nil,
        "array" => {
            let data = only_child(t, "data")?;
            let mut items = Vec::new();
            for item in data.elements() {
                if item.name != "value" {
                    return err(format!("expected <value> in <data>, found <{}>", item.name));
                }
                items.push(value(item, depth + 1)?);
            }
            Value::Array(items)
        }
        "struct" => {
            let mut members = Vec::new();
            for m in t.elements() {
                if m.name != "member" {
                    return err(format!("expected <member> in <struct>, found <{}>", m.name));
                }
                let (mut name, mut val) = (None, None);
                for part in m.elements() {
                    match part.name.as_str() {
                        "name" => name = Some(part.text()),
                        "value" => val = Some(value(part, depth + 1)?),
                        other => return err(format!("unexpected <{other}> in <member>")),
                    }
                }
                match (name, val) {
                    (Some(n), Some(v)) => members.push((n, v)),
                    _ => return err("a <member> needs a <name> and a <value>"),
                }
            }
            Value::Struct(members)
        }
        other => return err(format!("unknown type <{}>", clip(other))),
    })
}

/// At most 40 characters of something quoted in an error.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

/// Reads the document into its root element, with an explicit stack: no recursion.
fn parse_tree(text: &str) -> Result<Element, Error> {
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut nodes = 0usize;
    let mut rest = text;
    while !rest.is_empty() {
        nodes += 1;
        if nodes > MAX_NODES {
            return err("too many elements");
        }
        if let Some(after) = rest.strip_prefix("<?") {
            rest = skip_past(after, "?>")?;
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = skip_past(after, "-->")?;
        } else if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").ok_or(Error("an unclosed CDATA section".into()))?;
            let (data, tail) = after.split_at(end);
            text_node(&mut stack, data.to_string())?;
            rest = tail.get(3..).unwrap_or("");
        } else if rest.starts_with("<!") {
            return err("a DTD or declaration is not accepted");
        } else if let Some(after) = rest.strip_prefix("</") {
            let end = after.find('>').ok_or(Error("an unclosed end tag".into()))?;
            let name = after.get(..end).unwrap_or("").trim();
            let Some(done) = stack.pop() else { return err(format!("a stray </{name}>")) };
            if done.name != name {
                return err(format!("<{}> closed by </{name}>", done.name));
            }
            rest = after.get(end + 1..).unwrap_or("");
            close(&mut stack, &mut root, done)?;
        } else if let Some(after) = rest.strip_prefix('<') {
            let (tag, tail) = read_tag(after)?;
            rest = tail;
            let name = tag.trim_end_matches('/').split_whitespace().next().unwrap_or("");
            if name.is_empty() || !name.chars().all(is_name_char) {
                return err(format!("a bad tag name: {:?}", clip(name)));
            }
            if root.is_some() {
                return err("more than one root element");
            }
            let e = Element { name: name.to_string(), children: Vec::new() };
            if tag.ends_with('/') {
                close(&mut stack, &mut root, e)?;
            } else {
                if stack.len() >= MAX_DEPTH {
                    return err(format!("nested deeper than {MAX_DEPTH} elements"));
                }
                stack.push(e);
            }
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let (raw, tail) = rest.split_at(end);
            rest = tail;
            let decoded = unescape(raw)?;
            if stack.is_empty() {
                if !decoded.trim().is_empty() {
                    return err("text outside the root element");
                }
            } else {
                text_node(&mut stack, decoded)?;
            }
        }
    }
    if let Some(open) = stack.last() {
        return err(format!("the document ends inside <{}>", open.name));
    }
    root.ok_or(Error("no root element".into()))
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

/// The rest after `end`.
fn skip_past<'a>(s: &'a str, end: &str) -> Result<&'a str, Error> {
    match s.find(end) {
        Some(i) => Ok(s.get(i + end.len()..).unwrap_or("")),
        None => err(format!("{end:?} never comes")),
    }
}

/// A start tag's inside (name and attributes, which are ignored) up to its `>`, quotes
/// respected, and the rest after it.
fn read_tag(s: &str) -> Result<(&str, &str), Error> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Ok((s.get(..i).unwrap_or(""), s.get(i + 1..).unwrap_or(""))),
            // Not even in an attribute's value, where XML forbids it too.
            (_, '<') => return err("'<' inside a tag"),
            _ => {}
        }
    }
    err("an unclosed tag")
}

fn text_node(stack: &mut [Element], text: String) -> Result<(), Error> {
    match stack.last_mut() {
        Some(top) => {
            top.children.push(Node::Text(text));
            Ok(())
        }
        None => err("text outside the root element"),
    }
}

/// A finished element goes into its parent, or becomes the root.
fn close(stack: &mut [Element], root: &mut Option<Element>, e: Element) -> Result<(), Error> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(e)),
        None if root.is_none() => *root = Some(e),
        None => return err("more than one root element"),
    }
    Ok(())
}

/// Text with its references replaced: the five predefined entities and `&#N;` / `&#xN;`.
fn unescape(raw: &str) -> Result<String, Error> {
    if !raw.contains('&') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(rest.get(..i).unwrap_or(""));
        let after = rest.get(i + 1..).unwrap_or("");
        let end = after.find(';').filter(|&e| e <= 12).ok_or(Error("a bad '&'".into()))?;
        let name = after.get(..end).unwrap_or("");
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    return err(format!("an unknown entity &{};", clip(name)));
                };
                match code.and_then(char::from_u32) {
                    Some(c) => c,
                    None => return err(format!("a bad character reference &{};", clip(name))),
                }
            }
        };
        out.push(c);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(out)
}

/// A successful `methodResponse` holding `v`.
pub fn response(v: &Value) -> Vec<u8> {
    // Sized once: a list of every process is some 100 KB, and growing to it by doubling
    // costs a copy and fresh pages at each step.
    let mut out = String::with_capacity(128 + size_hint(v));
    out.push_str("<?xml version=\"1.0\"?>\n<methodResponse>\n<params>\n<param>\n");
    write_value(&mut out, v);
    out.push_str("</param>\n</params>\n</methodResponse>\n");
    out.into_bytes()
}

/// A fault `methodResponse`.
pub fn fault(code: i64, text: &str) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version=\"1.0\"?>\n<methodResponse>\n<fault>\n");
    write_value(&mut out, &fault_struct(code, text));
    out.push_str("</fault>\n</methodResponse>\n");
    out.into_bytes()
}

/// A fault as a struct, as `system.multicall` reports one call's.
pub fn fault_struct(code: i64, text: &str) -> Value {
    Value::record(vec![("faultCode", Value::Int(code)), ("faultString", Value::str(text))])
}

/// About the bytes `v` takes written (a little more, so that it is seldom grown).
fn size_hint(v: &Value) -> usize {
    const TAGS: usize = 48;
    match v {
        Value::Str(s) | Value::DateTime(s) => TAGS + s.len() + s.len() / 8,
        Value::Base64(b) => TAGS + b.len() * 4 / 3 + 4,
        Value::Array(items) => TAGS + items.iter().map(size_hint).sum::<usize>(),
        Value::Struct(m) => {
            TAGS + m.iter().map(|(k, v)| 48 + k.len() + size_hint(v)).sum::<usize>()
        }
        _ => TAGS,
    }
}

/// Writes a value. Kahi's own replies nest a few levels at most, so recursion is fine here.
fn write_value(out: &mut String, v: &Value) {
    out.push_str("<value>");
    match v {
        Value::Int(i) => {
            // XML-RPC's int has 32 bits: larger is clamped, as supervisord's capped_int.
            let i = (*i).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
            let _ = write!(out, "<int>{i}</int>");
        }
        Value::Bool(b) => {
            let _ = write!(out, "<boolean>{}</boolean>", u8::from(*b));
        }
        Value::Str(s) => {
            out.push_str("<string>");
            escape(out, s);
            out.push_str("</string>");
        }
        Value::Double(d) => {
            let d = if d.is_finite() { *d } else { 0.0 };
            let _ = write!(out, "<double>{d:?}</double>");
        }
        Value::DateTime(s) => {
            out.push_str("<dateTime.iso8601>");
            escape(out, s);
            out.push_str("</dateTime.iso8601>");
        }
        Value::Base64(b) => {
            use base64::Engine;
            out.push_str("<base64>");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push_str("</base64>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>\n");
            for item in items {
                write_value(out, item);
            }
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>\n");
            for (k, v) in members {
                out.push_str("<member>\n<name>");
                escape(out, k);
                out.push_str("</name>\n");
                write_value(out, v);
                out.push_str("</member>\n");
            }
            out.push_str("</struct>");
        }
        Value::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>\n");
}

/// Text as XML character data. `\r` is written as a reference so that the reader's line-end
/// normalization keeps it; characters XML 1.0 cannot carry at all (most C0 controls, as in a
/// program's raw output) become U+FFFD rather than a response no parser accepts.
fn escape(out: &mut String, s: &str) {
    // Most text (names, states, descriptions) needs none of it: copied whole.
    let plain = |b: &u8| !matches!(b, b'&' | b'<' | b'>' | 0..=0x1f | 0xef);
    if s.as_bytes().iter().all(plain) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(body: &str) -> Result<Call, Error> {
        parse_call(body.as_bytes())
    }

    /// What Python's `xmlrpc.client.dumps((...), "m")` writes.
    #[test]
    fn reads_what_python_writes() {
        let body = "<?xml version='1.0'?>\n<methodCall>\n<methodName>supervisor.startProcess</methodName>\n<params>\n<param>\n<value><string>web</string></value>\n</param>\n<param>\n<value><boolean>0</boolean></value>\n</param>\n</params>\n</methodCall>\n";
        assert_eq!(
            call(body).unwrap(),
            Call {
                method: "supervisor.startProcess".into(),
                params: vec![Value::str("web"), Value::Bool(false)],
            }
        );
        let body = "<?xml version='1.0'?><methodCall><methodName>m</methodName><params><param><value><array><data><value><struct><member><name>methodName</name><value><string>a.b</string></value></member><member><name>params</name><value><array><data><value><int>-3</int></value><value><i4>4</i4></value><value><double>1.5</double></value><value>bare &amp; text</value><value><base64>aGk=\n</base64></value><value><nil/></value><value><dateTime.iso8601>20260102T03:04:05</dateTime.iso8601></value></data></array></value></member></struct></value></data></array></value></param></params></methodCall>";
        let c = call(body).unwrap();
        assert_eq!(c.method, "m");
        let Value::Array(items) = &c.params[0] else { panic!("{c:?}") };
        assert_eq!(items[0].member("methodName"), Some(&Value::str("a.b")));
        assert_eq!(
            items[0].member("params"),
            Some(&Value::Array(vec![
                Value::Int(-3),
                Value::Int(4),
                Value::Double(1.5),
                Value::str("bare & text"),
                Value::Base64(b"hi".to_vec()),
                Value::Nil,
                Value::DateTime("20260102T03:04:05".into()),
            ]))
        );
        // No params at all, an empty value, references, CDATA, a comment.
        let c =
            call("<methodCall><methodName>system.listMethods</methodName></methodCall>").unwrap();
        assert!(c.params.is_empty());
        let c = call("<methodCall><!-- hi --><methodName>m</methodName><params><param><value/></param><param><value>&#65;&#x42;&lt;<![CDATA[<x>]]></value></param></params></methodCall>").unwrap();
        assert_eq!(c.params, vec![Value::str(""), Value::str("AB<<x>")]);
    }

    #[test]
    fn refuses_what_is_not_a_call() {
        for bad in [
            "",
            "hello",
            "<methodCall>",
            "<methodCall><methodName>m</methodName>",
            "<methodCall></methodResponse>",
            "<methodResponse/>",
            "<methodCall><methodName></methodName></methodCall>",
            "<methodCall><methodName>m</methodName></methodCall><x/>",
            "<methodCall><methodName>m</methodName><params><param><value><int>x</int></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><int>99999999999999999999</int></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><boolean>2</boolean></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><blob/></value></param></params></methodCall>",
            "<methodCall><methodName>&bogus;</methodName></methodCall>",
            "<methodCall><methodName>&#xD800;</methodName></methodCall>",
            "<methodCall><methodName>a & b</methodName></methodCall>",
            "<methodCall a=\"<\"><methodName>m</methodName></methodCall>",
            "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a \"b\">]><methodCall><methodName>&a;</methodName></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><struct><member><value><int>1</int></value></member></struct></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><string>a</string><int>1</int></value></param></params></methodCall>",
        ] {
            assert!(call(bad).is_err(), "accepted {bad:?}");
        }
        assert!(parse_call(b"<methodCall>\xff</methodCall>").is_err());
    }

    /// Hostile bodies: each is refused (or read) quickly, never a panic or a blow-up.
    #[test]
    fn hostile_bodies_are_refused() {
        let deep = |n: usize| {
            let mut s = String::from("<methodCall><methodName>m</methodName><params><param>");
            for _ in 0..n {
                s.push_str("<value><array><data>");
            }
            for _ in 0..n {
                s.push_str("</data></array></value>");
            }
            s + "</param></params></methodCall>"
        };
        assert!(call(&deep(10)).is_ok());
        let e = call(&deep(100_000)).unwrap_err();
        assert!(e.0.contains("nested"), "{e:?}");
        // Elements only, deep, never closed.
        assert!(call(&"<a>".repeat(1_000_000)).is_err());
        // Many siblings.
        let wide = format!(
            "<methodCall><methodName>m</methodName><params>{}</params></methodCall>",
            "<param><value><int>1</int></value></param>".repeat(50_000)
        );
        assert!(call(&wide).is_err());
        // A huge string is read as it is: the size bound is the transport's.
        let big = "x".repeat(1 << 20);
        let body = format!(
            "<methodCall><methodName>m</methodName><params><param><value>{big}</value></param></params></methodCall>"
        );
        assert_eq!(call(&body).unwrap().params[0], Value::Str(big));
        // The billion laughs: refused at its DTD.
        let lol = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><methodCall><methodName>&lol2;</methodName></methodCall>";
        assert!(call(lol).unwrap_err().0.contains("DTD"));
        // Every prefix of a good call, and every byte flipped: no panic.
        let good = "<?xml version='1.0'?><methodCall><methodName>m</methodName><params><param><value><struct><member><name>a&amp;</name><value><array><data><value><i4>1</i4></value></data></array></value></member></struct></value></param></params></methodCall>";
        for i in 0..good.len() {
            let _ = parse_call(&good.as_bytes()[..i]);
            let mut b = good.as_bytes().to_vec();
            for x in [b'<', b'>', b'&', b'/', b'\'', b'!', b'?', 0xff] {
                b[i] = x;
                let _ = parse_call(&b);
            }
        }
    }

    #[test]
    fn writes_what_python_reads() {
        let v = Value::record(vec![
            ("name", Value::str("a<b>&c\r\n\u{1b}")),
            ("pid", Value::Int(42)),
            ("big", Value::Int(1 << 40)),
            ("ok", Value::Bool(true)),
            ("list", Value::Array(vec![Value::Double(0.5), Value::Nil])),
        ]);
        let out = String::from_utf8(response(&v)).unwrap();
        assert!(out.starts_with("<?xml version=\"1.0\"?>\n<methodResponse>\n<params>\n<param>\n"));
        assert!(out.contains("<string>a&lt;b&gt;&amp;c&#13;\n\u{FFFD}</string>"), "{out}");
        assert!(out.contains("<int>2147483647</int>"), "{out}");
        assert!(out.contains("<boolean>1</boolean>"));
        assert!(out.contains("<double>0.5</double>"));
        let f = String::from_utf8(fault(10, "BAD_NAME: x")).unwrap();
        assert!(f.contains("<fault>\n<value><struct>"), "{f}");
        assert!(f.contains("<name>faultCode</name>\n<value><int>10</int></value>"), "{f}");
        // What is written reads back (a response is a call's params in all but its root).
        let round = out.replace("methodResponse>", "methodCall>").replacen(
            "<methodCall>",
            "<methodCall><methodName>r</methodName>",
            1,
        );
        let c = call(&round).unwrap();
        let Value::Struct(m) = &c.params[0] else { panic!() };
        assert_eq!(m[0].1, Value::str("a<b>&c\r\n\u{FFFD}"));
    }
}
