//! Typed readers of TOML values, each recording an error at the value's place and returning
//! None on a mismatch, and the places themselves: file, line, column and key path.

use super::*;

impl<'s> Loader<'s, '_> {
    /// Reads every key of `table`, a `section` at `at`, into `target`: a key with a reader in
    /// [`schema::KEYS`] by that reader, the other known keys and tables by `custom`, and an
    /// unknown key is an error that suggests the nearest one.
    pub(super) fn fields<T: schema::Target>(
        &mut self,
        at: &At,
        table: &DeTable<'s>,
        section: Section,
        target: &mut T,
        mut custom: impl FnMut(&mut Self, &At, &str, &Spanned<DeValue<'s>>, &mut T),
    ) {
        for (k, v) in table.iter() {
            let name = k.get_ref().as_ref();
            let at = self.child(at, v, name);
            match schema::find(section, name) {
                Some(key) => match T::reader(&key.set) {
                    Some(read) => self.read(&at, v, read, target),
                    None => custom(self, &at, name, v, target),
                },
                None if schema::tables(section).contains(&name) => {
                    custom(self, &at, name, v, target)
                }
                None => self.unknown(&at, k.span(), section, name),
            }
        }
    }

    /// One value through its reader: stored in `target`, or an error at `at`.
    fn read<T>(&mut self, at: &At, v: &Spanned<DeValue<'s>>, read: &Read<T>, target: &mut T) {
        match read {
            Read::Bool(set) => self.boolean(at, v).map(|b| set(target, b)),
            Read::Int(min, max, set) => self.integer(at, v, *min, *max).map(|n| set(target, n)),
            Read::Seconds(set) => self.seconds(at, v).map(|d| set(target, d)),
            Read::Size(set) => self.size(at, v).map(|n| set(target, n)),
            Read::Octal(set) => self.octal(at, v).map(|m| set(target, m)),
            Read::Choice(names, set) => self.choice(at, v, names).map(|i| set(target, i)),
        };
    }

    /// One of `names`, as its index.
    pub(super) fn choice(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
        names: &[&str],
    ) -> Option<usize> {
        let s = self.string(at, v)?;
        let found = names.iter().position(|n| *n == s);
        if found.is_none() {
            let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            let expected = match quoted.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            self.error(at, format!("expected {expected}, found {s:?}"));
        }
        found
    }

    /// The value of `key` in `table` (a table at `at`), with its place.
    pub(super) fn entry<'t>(
        &self,
        at: &At,
        table: &'t DeTable<'s>,
        key: &str,
    ) -> Option<(At, &'t Spanned<DeValue<'s>>)> {
        table.get(key).map(|v| (self.child(at, v, key), v))
    }

    // ---- typed getters: each records an error and returns None on a mismatch ----

    pub(super) fn string(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(at, format!("expected a string, found {}", describe(other)));
                None
            }
        }
    }

    pub(super) fn expand(&mut self, at: &At, s: &str, vars: &Vars) -> Option<String> {
        match expand::expand(s, vars, self.env) {
            Ok(x) => Some(x),
            Err(e) => {
                self.error(at, e);
                None
            }
        }
    }

    pub(super) fn expanded_string(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
        vars: &Vars,
    ) -> Option<String> {
        let s = self.string(at, v)?;
        self.expand(at, &s, vars)
    }

    pub(super) fn strings(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<Vec<String>> {
        let items = self.array(at, v)?;
        items.iter().map(|i| self.string(at, i)).collect()
    }

    pub(super) fn array<'v>(
        &mut self,
        at: &At,
        v: &'v Spanned<DeValue<'s>>,
    ) -> Option<&'v toml::de::DeArray<'s>> {
        match v.get_ref() {
            DeValue::Array(a) => Some(a),
            other => {
                self.error(at, format!("expected an array, found {}", describe(other)));
                None
            }
        }
    }

    pub(super) fn table<'v>(
        &mut self,
        at: &At,
        v: &'v Spanned<DeValue<'s>>,
    ) -> Option<&'v DeTable<'s>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.error(at, format!("expected a table, found {}", describe(other)));
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.error(at, format!("expected true or false, found {}", describe(other)));
                None
            }
        }
    }

    pub(super) fn integer(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            other => {
                self.error(at, format!("expected an integer, found {}", describe(other)));
                return None;
            }
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let range = match (min, max) {
                    (i64::MIN, i64::MAX) => "a 64-bit integer".to_string(),
                    (min, max) if max >= i64::from(u32::MAX) => format!("an integer >= {min}"),
                    (min, max) => format!("an integer from {min} to {max}"),
                };
                self.error(at, format!("expected {range}, found {}", describe(v.get_ref())));
                None
            }
        }
    }

    /// A duration in seconds: an integer or a float, not negative.
    pub(super) fn seconds(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<Duration> {
        match number(v.get_ref()) {
            Some(s) if s.is_finite() && (0.0..=1e9).contains(&s) => {
                Some(Duration::from_secs_f64(s))
            }
            _ => {
                self.error(
                    at,
                    format!("expected a number of seconds >= 0, found {}", describe(v.get_ref())),
                );
                None
            }
        }
    }

    /// An octal mode: a string of octal digits ("022", "0o022") or a TOML integer (0o022).
    pub(super) fn octal(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<u32> {
        let parsed = match v.get_ref() {
            DeValue::String(s) => {
                let digits = s.strip_prefix("0o").unwrap_or(s);
                u32::from_str_radix(digits, 8).ok()
            }
            // A decimal 700 would mean 0o1274: only 0, or TOML's own 0o700, is unambiguous.
            DeValue::Integer(i) if i.radix() == 10 && i.as_str() != "0" => {
                self.error(
                    at,
                    format!(
                        "{} is decimal; write a mode in octal, as \"0{0}\" or 0o{0}",
                        i.as_str()
                    ),
                );
                return None;
            }
            DeValue::Integer(i) => u32::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        match parsed {
            Some(m) if m <= 0o7777 => Some(m),
            _ => {
                self.error(
                    at,
                    format!(
                        "expected an octal mode such as \"022\", found {}",
                        describe(v.get_ref())
                    ),
                );
                None
            }
        }
    }

    /// The owner of a socket file, "USER" or "USER:GROUP" (names or numbers), as a uid and a
    /// gid (None: the group is left as it is). Only root may give a file to another user.
    pub(super) fn owner(
        &mut self,
        at: &At,
        v: &Spanned<DeValue<'s>>,
    ) -> Option<(u32, Option<u32>)> {
        let s = self.string(at, v)?;
        owner(&s).map_err(|e| self.error(at, e)).ok()
    }

    /// A byte size: an integer, or a string with a KB/MB/GB suffix (1024-based, as supervisord).
    pub(super) fn size(&mut self, at: &At, v: &Spanned<DeValue<'s>>) -> Option<usize> {
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix()).ok(),
            DeValue::String(s) => parse_size(s),
            _ => None,
        };
        match parsed {
            Some(n) if n <= (1 << 40) => Some(n as usize),
            _ => {
                self.error(
                    at,
                    format!(
                        "expected a size such as 1048576 or \"1MB\", found {}",
                        describe(v.get_ref())
                    ),
                );
                None
            }
        }
    }

    // ---- places and errors ----

    pub(super) fn at(&self, doc: usize, v: &Spanned<DeValue<'s>>, key: &str) -> At {
        At { doc, span: v.span(), key: key.to_string() }
    }

    pub(super) fn child(&self, parent: &At, v: &Spanned<DeValue<'s>>, key: &str) -> At {
        let plain = !key.is_empty()
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let key =
            if plain { format!("{}.{key}", parent.key) } else { format!("{}.{key:?}", parent.key) };
        At { doc: parent.doc, span: v.span(), key }
    }

    pub(super) fn place(&self, at: &At) -> String {
        let doc = &self.docs[at.doc];
        let (line, col) = line_col(doc.src, at.span.start);
        format!("{}:{line}:{col}", doc.file.display())
    }

    pub(super) fn error(&mut self, at: &At, message: impl Into<String>) {
        let doc = &self.docs[at.doc];
        let (line, column) = line_col(doc.src, at.span.start);
        self.errors.push(ConfigError {
            file: doc.file.to_path_buf(),
            line,
            column,
            key: at.key.clone(),
            message: message.into(),
        });
    }

    /// A finding of [`check`] at `at`, once (the processes of one program share their place).
    pub(super) fn note(&mut self, at: &At, severity: check::Severity, message: String) {
        let doc = &self.docs[at.doc];
        let (line, column) = line_col(doc.src, at.span.start);
        let error = ConfigError {
            file: doc.file.to_path_buf(),
            line,
            column,
            key: at.key.clone(),
            message,
        };
        let note = check::Note { severity, error };
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    pub(super) fn err_nopos_main(&mut self, message: String) {
        self.errors.push(nopos(self.docs[0].file, "programs", message));
    }

    /// An unknown key: the error points at the key itself, not its value.
    pub(super) fn unknown(
        &mut self,
        at: &At,
        key_span: Range<usize>,
        section: Section,
        name: &str,
    ) {
        let hint = schema::suggest(section, name)
            .map(|s| format!("; did you mean {s:?}?"))
            .unwrap_or_default();
        let what = if section == Section::Root { "unknown table or key" } else { "unknown key" };
        let at = At { span: key_span, ..at.clone() };
        self.error(&at, format!("{what}{hint}"));
    }
}

/// A TOML integer (in any radix) or float, as a float; None for any other value.
pub(super) fn number(v: &DeValue<'_>) -> Option<f64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        _ => None,
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
pub(super) fn line_col(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    let before = &src[..src.floor_char_boundary(at)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

pub(super) fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("string {s:?}"),
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// A group's number, or the number of the group of that name.
pub(super) fn gid(group: &str) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match crate::sys::users::group_by_name(group) {
        Ok(Some(e)) => Ok(e.gid.as_raw()),
        Ok(None) => Err(format!("no such group {group:?}")),
        Err(e) => Err(format!("unable to look up group {group:?}: {e}")),
    }
}

/// "USER" or "USER:GROUP", each a name or a number, as (uid, gid).
fn owner(spec: &str) -> Result<(u32, Option<u32>), String> {
    use crate::sys::users;
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match user.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => match users::user_by_name(user) {
            Ok(Some(u)) => u.uid.as_raw(),
            Ok(None) => return Err(format!("no such user {user:?} (expected USER or USER:GROUP)")),
            Err(e) => return Err(format!("unable to look up user {user:?}: {e}")),
        },
    };
    let gid = group.map(gid).transpose()?;
    let me = nix::unistd::geteuid();
    if !me.is_root() && me.as_raw() != uid {
        return Err(format!(
            "kahi runs as uid {me}, and only root can give a file to another user ({spec:?} is uid {uid})"
        ));
    }
    Ok((uid, gid))
}
