//! Loading: which files make up a configuration (the main file, then what its `include`
//! patterns match, each read once and size-capped by [`super::read`]), parsing each into a tree
//! that keeps positions, and the [`Loader`] that walks those trees into a [`Config`]: the
//! top-level tables here, the rest in the sibling modules. Nothing here starts anything.

use super::remote::{self, Fetch};
use super::*;

/// Loads `path` and everything it includes, expanding `${VAR}` from the daemon's environment.
/// A supervisord configuration (see [`crate::supervisord::looks_like`]) is read as supervisord
/// reads it.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    load_with(path, &|name| std::env::var(name).ok())
}

/// Which reader a configuration needs: told by its content, or said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Auto,
    Toml,
    Supervisord,
    /// Made by `kahi run` from a Procfile, once: not read again.
    Procfile,
}

/// [`load`], with the format said; the configuration remembers it for [`reload`].
pub fn load_as(path: &Path, format: Format) -> Result<Config, Vec<ConfigError>> {
    let env = |name: &str| std::env::var(name).ok();
    load_fetching(path, format, &env, Fetch::Now)
}

/// Why a configuration `kahi run` made is not read again.
const PROCFILE_ONCE: &str = "kahi run reads its Procfile once, as it starts: reread, update and \
                             reload do not apply (start kahi run again to read it anew)";

/// The configuration `old` was loaded from, read again as it was (same file, same format),
/// on the event loop: remote includes are read from their last good copies and fetched again
/// in the background ([`remote`]).
pub fn reload(old: &Config) -> Result<Config, Vec<ConfigError>> {
    let env = |name: &str| std::env::var(name).ok();
    load_fetching(&old.file, old.format, &env, Fetch::Background)
}

fn load_fetching(
    path: &Path,
    format: Format,
    env: &dyn Fn(&str) -> Option<String>,
    fetch: Fetch,
) -> Result<Config, Vec<ConfigError>> {
    let file = absolute(path);
    let supervisord = |src: &str| load_supervisord(&file, src, env);
    let mut config = match format {
        Format::Auto => match read::text(&file) {
            Ok(src) if crate::supervisord::looks_like(&src) => supervisord(&src),
            _ => load_toml(path, env, fetch),
        },
        Format::Toml => load_toml(path, env, fetch),
        Format::Supervisord => {
            let src = read::text(&file)
                .map_err(|e| vec![nopos(&file, "", format!("unable to read: {e}"))])?;
            supervisord(&src)
        }
        Format::Procfile => {
            return Err(vec![nopos(&file, "", PROCFILE_ONCE.to_string())]);
        }
    }?;
    config.format = format;
    Ok(config)
}

/// A supervisord configuration, written as Kahi's TOML and loaded as such: the same checks,
/// each error told at its supervisord line; what the migration noted comes as warnings.
fn load_supervisord(
    file: &Path,
    src: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let m = crate::supervisord::migrate(file, src, &crate::supervisord::process_env())?;
    let mut config = load_text(file, &m.toml, env)
        .map_err(|errors| errors.into_iter().map(|e| m.place(e)).collect::<Vec<_>>())?;
    for note in &mut config.notes {
        note.error = m.place(note.error.clone());
    }
    let migrated = m
        .notes
        .iter()
        .map(|n| check::Note { severity: check::Severity::Warning, error: n.error.clone() });
    config.notes.splice(0..0, migrated);
    Ok(config)
}

/// [`load`] with the environment given, for tests.
pub fn load_with(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    load_fetching(path, Format::Auto, env, Fetch::Now)
}

fn load_toml(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    fetch: Fetch,
) -> Result<Config, Vec<ConfigError>> {
    let file = absolute(path);
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut files = Vec::new();
    match read::text(&file) {
        Ok(src) => files.push((file.clone(), src)),
        Err(e) => return Err(vec![nopos(&file, "", format!("unable to read: {e}"))]),
    }
    // Which files make up the configuration: the main one and what its `include` matches. The
    // patterns are read here only to know what to read; the walk below checks them properly.
    let here = file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    let patterns: Vec<(String, usize)> = match DeTable::parse(&files[0].1) {
        Ok(t) => t
            .get_ref()
            .get("include")
            .and_then(|v| v.get_ref().as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|i| i.get_ref().as_str().map(|s| (s.to_string(), i.span().start)))
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let vars = file_vars(&file);
    let mut read: Vec<PathBuf> =
        vec![std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone())];
    for (raw, at) in patterns {
        let pattern = match expand::expand(&raw, &vars, env) {
            Ok(p) => p,
            Err(e) => {
                let (line, column) = line_col(&files[0].1, at);
                errors.push(ConfigError {
                    file: file.clone(),
                    line,
                    column,
                    key: "include".into(),
                    message: e,
                });
                continue;
            }
        };
        if remote::is_url(&pattern) {
            match remote::get(&pattern, fetch) {
                Ok(text) => files.push((PathBuf::from(remote::name(&pattern)), text)),
                Err(e) => {
                    let (line, column) = line_col(&files[0].1, at);
                    let message = format!("{}: {e}", remote::name(&pattern));
                    errors.push(ConfigError {
                        file: file.clone(),
                        line,
                        column,
                        key: "include".into(),
                        message,
                    });
                }
            }
            continue;
        }
        let full = here.join(&pattern);
        let matched = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => {
                let mut m: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                m.sort();
                m
            }
            Err(e) => {
                errors.push(nopos(&file, "include", format!("bad pattern {pattern:?}: {}", e.msg)));
                continue;
            }
        };
        if matched.is_empty() {
            // Said where the pattern is, as the other findings of a load are.
            let (line, column) = line_col(&files[0].1, at);
            let message = format!("no file matches {pattern:?}");
            let error =
                ConfigError { file: file.clone(), line, column, key: "include".into(), message };
            notes.push(check::Note { severity: check::Severity::Warning, error });
        }
        for path in matched {
            // A file matched twice (or the main file matching its own pattern) is read once.
            let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if read.contains(&canonical) {
                continue;
            }
            read.push(canonical);
            match read::text(&path) {
                Ok(src) => files.push((path, src)),
                Err(e) => {
                    errors.push(nopos(&path, "", format!("unable to read included file: {e}")))
                }
            }
        }
    }
    resolve(&files, errors, notes, env)
}

/// The configuration in the text `src` of `file`, checked as [`load_with`] checks it, but for
/// its includes: the patterns are checked, no file is read for them. For the fuzz targets,
/// which must not depend on files; `file` is notional (it names errors and sets `%(here)s`).
pub fn load_text(
    file: &Path,
    src: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    resolve(&[(file.to_path_buf(), src.to_string())], Vec::new(), Vec::new(), env)
}

/// Parses and checks `files` (the main file first, then its includes), after the `errors`
/// and `notes` met reading them.
pub(super) fn resolve(
    files: &[(PathBuf, String)],
    errors: Vec<ConfigError>,
    notes: Vec<check::Note>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let mut loader = Loader {
        env,
        errors,
        notes,
        docs: Vec::new(),
        childlogdir: std::env::temp_dir(),
        refs: Vec::new(),
        refs_checked: Vec::new(),
        inherited: None,
        users: HashMap::new(),
    };
    for (path, src) in files {
        loader.parse(path, src);
    }
    loader.run()
}

pub(super) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

pub(super) fn nopos(file: &Path, key: &str, message: String) -> ConfigError {
    ConfigError { file: file.to_path_buf(), line: 0, column: 0, key: key.to_string(), message }
}

/// A file being read: its text (for positions) and its parsed tree.
pub(super) struct Doc<'s> {
    pub(super) file: &'s Path,
    pub(super) src: &'s str,
    pub(super) table: DeTable<'s>,
}

/// Where a value is: which document, which span, which key path.
#[derive(Clone)]
pub(super) struct At {
    pub(super) doc: usize,
    pub(super) span: Range<usize>,
    pub(super) key: String,
}

pub(super) struct Loader<'s, 'e> {
    pub(super) env: &'e dyn Fn(&str) -> Option<String>,
    /// `[logging] childlogdir`, for AUTO log files.
    pub(super) childlogdir: PathBuf,
    pub(super) errors: Vec<ConfigError>,
    /// Findings of [`check`], which do not make the configuration invalid.
    pub(super) notes: Vec<check::Note>,
    pub(super) docs: Vec<Doc<'s>>,
    /// Every program named by depends_on, requires, after or before: (from, key, place, to).
    pub(super) refs: Vec<(String, &'static str, At, String)>,
    /// The references that named a known program: (from, to, place), to point at errors.
    pub(super) refs_checked: Vec<(String, String, At)>,
    /// The daemon's environment, as a program that does not clean its own inherits it: read
    /// at the first program that needs it.
    pub(super) inherited: Option<Vec<(String, String)>>,
    /// Each `user` this load has looked up, by its spelling: a thousand programs of one user
    /// ask the user database once (in a static binary that can mean two runs of `getent`).
    pub(super) users: HashMap<String, Result<RunAs, String>>,
}

/// Program name -> (its group, the group's priority).
pub(super) type Membership = HashMap<String, (String, Option<i64>)>;

/// A program table, not yet typed.
pub(super) struct ProgramTable<'s> {
    pub(super) name: String,
    /// From `[eventlisteners.*]`.
    pub(super) listener: bool,
    /// From `[fcgi_programs.*]`.
    pub(super) fcgi: bool,
    pub(super) doc: usize,
    pub(super) span: Range<usize>,
    pub(super) table: DeTable<'s>,
}

impl<'s> Loader<'s, '_> {
    pub(super) fn run(&mut self) -> Result<Config, Vec<ConfigError>> {
        // A syntax error in any file stops here: positions past it mean nothing.
        if !self.errors.is_empty() || self.docs.is_empty() {
            return Err(std::mem::take(&mut self.errors));
        }
        let file = self.docs[0].file.to_path_buf();
        let mut server = None;
        let mut logging = None;
        let root = std::mem::take(&mut self.docs[0].table);
        for (k, v) in root.iter() {
            let at = self.at(0, v, k.get_ref());
            match k.get_ref().as_ref() {
                "include" => {
                    self.strings(&at, v);
                }
                "server" => server = self.table(&at, v).cloned().map(|t| (at.clone(), t)),
                "logging" => logging = self.table(&at, v).cloned().map(|t| (at.clone(), t)),
                "programs" | "eventlisteners" | "fcgi_programs" | "groups" | "webhooks" => {}
                other => self.unknown(&at, k.span(), Section::Root, other),
            }
        }
        self.docs[0].table = root;
        for doc in 1..self.docs.len() {
            self.check_included_root(doc);
        }

        let server = self.server(server);
        let logging = self.logging(logging);
        self.childlogdir = logging.childlogdir.clone();
        let (programs, groups) = self.collect_programs_and_groups();
        let (mut processes, infos) = self.programs(programs, &groups);
        self.check_dependencies(&mut processes);
        let webhooks = self.webhooks();

        if !self.errors.is_empty() {
            // In reading order: the main file first, then each included file, line by line.
            let order: Vec<PathBuf> = self.docs.iter().map(|d| d.file.to_path_buf()).collect();
            let rank = |e: &ConfigError| {
                (order.iter().position(|f| *f == e.file).unwrap_or(usize::MAX), e.line, e.column)
            };
            self.errors.sort_by_key(rank);
            return Err(std::mem::take(&mut self.errors));
        }
        if processes.is_empty() {
            let message =
                "no program is configured ([programs.NAME] tables): the daemon would run nothing";
            self.notes.push(check::Note {
                severity: check::Severity::Warning,
                error: nopos(&file, "programs", message.into()),
            });
        }
        let notes = std::mem::take(&mut self.notes);
        let format = Format::Auto;
        Ok(Config { file, server, logging, processes, programs: infos, notes, webhooks, format })
    }

    /// Parses one file; a syntax error is recorded.
    pub(super) fn parse(&mut self, file: &'s Path, src: &'s str) {
        match DeTable::parse(src) {
            Ok(table) => self.docs.push(Doc { file, src, table: table.into_inner() }),
            Err(e) => {
                let (line, column) = e.span().map(|s| line_col(src, s.start)).unwrap_or((0, 0));
                let message = e.message().trim();
                // The parser names neither the key nor its first place.
                let duplicate = e
                    .span()
                    .filter(|_| message == "duplicate key")
                    .and_then(|s| duplicate::duplicate(src, s.start));
                let (key, message) = duplicate
                    .unwrap_or_else(|| (String::new(), format!("invalid TOML: {message}")));
                self.errors.push(ConfigError {
                    file: file.to_path_buf(),
                    line,
                    column,
                    key,
                    message,
                });
            }
        }
    }

    pub(super) fn check_included_root(&mut self, doc: usize) {
        let root = std::mem::take(&mut self.docs[doc].table);
        for (k, v) in root.iter() {
            let at = self.at(doc, v, k.get_ref());
            match k.get_ref().as_ref() {
                "programs" | "eventlisteners" | "fcgi_programs" | "groups" | "webhooks" => {}
                "include" | "server" | "logging" => {
                    self.error(&at, "only the main file may set this; included files hold [programs.*], [eventlisteners.*], [fcgi_programs.*], [groups.*] and [webhooks.*] tables")
                }
                other => self.unknown(&at, k.span(), Section::Root, other),
            }
        }
        self.docs[doc].table = root;
    }
}

/// The expansions every value of a file may use: `%(here)s`, `%(host_node_name)s`.
pub(super) fn file_vars(file: &Path) -> Vars {
    let mut vars = Vars::default();
    vars.set_str(
        "here",
        file.parent().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default(),
    );
    let host =
        nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    vars.set_str("host_node_name", host);
    vars
}
