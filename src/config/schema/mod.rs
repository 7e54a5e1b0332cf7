//! The table of every configuration key Kahi accepts: where it lives, its type, its default,
//! one line of documentation and the supervisord option it corresponds to.
//!
//! The parser reads each key through its entry: a key with a [`Read`] is read and stored by it
//! (the value's type decides the reader and its error), the others by their section's own code;
//! a name with no entry is an unknown key (with a "did you mean"). Defaults live in the
//! `Default` of what a section fills in ([`super::ProcessSpec`], [`super::Server`], ...); the
//! `default` text here says the same, and a test checks that it does. Another test checks the
//! table against `man/kahi.toml.5` and `kahi.example.toml`, so the three never drift apart.
//! No I/O here.

use std::fmt;
use std::time::Duration;

use super::program::ProgramDraft;
use super::server::HttpDraft;
use super::tables::HealthDraft;
use super::{HealthAction, Kind, ListenerSpec, Logging, OnFailure, Server, WebhookSpec};

/// Which table a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The top level of the main file.
    Root,
    /// `[server]`
    Server,
    /// `[server.http]`
    Http,
    /// `[[server.http.users]]`
    HttpUser,
    /// `[logging]`
    Logging,
    /// `[programs.NAME]`
    Program,
    /// `[programs.NAME.limits]`
    Limits,
    /// `[programs.NAME.healthcheck]`
    Healthcheck,
    /// `[groups.NAME]`
    Group,
    /// What `[eventlisteners.NAME]` has besides the keys of a program.
    Listener,
    /// What `[fcgi_programs.NAME]` has besides the keys of a program.
    Fcgi,
    /// `[webhooks.NAME]`
    Webhook,
}

/// One configuration key.
#[derive(Debug)]
// The documentation test reads every field; the parser needs the names and readers.
#[cfg_attr(not(test), allow(dead_code))]
pub struct Key {
    pub section: Section,
    pub name: &'static str,
    pub ty: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
    /// The supervisord option with the same meaning, if any.
    pub supervisord: Option<&'static str>,
    /// How the loader reads and stores the value.
    pub set: Set,
}

/// A reader of one value and where it stores it in `T`, what a section fills in. A value of
/// the wrong type or out of range is an error at its place, and `T` keeps its default.
pub enum Read<T: 'static> {
    Bool(fn(&mut T, bool)),
    /// An integer from the first bound to the second, inclusive.
    Int(i64, i64, fn(&mut T, i64)),
    /// A number of seconds >= 0, integer or float.
    Seconds(fn(&mut T, Duration)),
    /// A size: bytes, or a string such as "64KB".
    Size(fn(&mut T, usize)),
    /// A mode: a string of octal digits or a TOML octal integer.
    Octal(fn(&mut T, u32)),
    /// One of the strings; the setter gets its index.
    Choice(&'static [&'static str], fn(&mut T, usize)),
}

/// Which section's reader a key has, or `Custom`: read by its section's own code (a table, a
/// list whose items are checked one by one, a value that depends on other keys or is expanded
/// per process).
pub enum Set {
    Custom,
    Program(Read<ProgramDraft>),
    Server(Read<Server>),
    Http(Read<HttpDraft>),
    Logging(Read<Logging>),
    Health(Read<HealthDraft>),
    Listener(Read<ListenerSpec>),
    Webhook(Read<WebhookSpec>),
}

impl Set {
    /// The section whose reader this is; None for `Custom`.
    pub fn section(&self) -> Option<Section> {
        match self {
            Set::Custom => None,
            Set::Program(_) => Some(Section::Program),
            Set::Server(_) => Some(Section::Server),
            Set::Http(_) => Some(Section::Http),
            Set::Logging(_) => Some(Section::Logging),
            Set::Health(_) => Some(Section::Healthcheck),
            Set::Listener(_) => Some(Section::Listener),
            Set::Webhook(_) => Some(Section::Webhook),
        }
    }
}

impl fmt::Debug for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.section() {
            Some(s) => write!(f, "Set::{s:?}"),
            None => f.write_str("Set::Custom"),
        }
    }
}

/// What a section fills in: where its keys' readers are in a [`Set`].
pub trait Target: Sized + 'static {
    fn reader(set: &Set) -> Option<&Read<Self>>;
}

macro_rules! target {
    ($t:ty, $variant:ident) => {
        impl Target for $t {
            fn reader(set: &Set) -> Option<&Read<Self>> {
                match set {
                    Set::$variant(r) => Some(r),
                    _ => None,
                }
            }
        }
    };
}
target!(ProgramDraft, Program);
target!(Server, Server);
target!(HttpDraft, Http);
target!(Logging, Logging);
target!(HealthDraft, Health);
target!(ListenerSpec, Listener);
target!(WebhookSpec, Webhook);

const fn key(
    section: Section,
    name: &'static str,
    ty: &'static str,
    default: &'static str,
    doc: &'static str,
    supervisord: Option<&'static str>,
    set: Set,
) -> Key {
    Key { section, name, ty, default, doc, supervisord, set }
}

const fn program(r: Read<ProgramDraft>) -> Set {
    Set::Program(r)
}
const fn server(r: Read<Server>) -> Set {
    Set::Server(r)
}
const fn http(r: Read<HttpDraft>) -> Set {
    Set::Http(r)
}
const fn logging(r: Read<Logging>) -> Set {
    Set::Logging(r)
}
const fn health(r: Read<HealthDraft>) -> Set {
    Set::Health(r)
}
const fn listener(r: Read<ListenerSpec>) -> Set {
    Set::Listener(r)
}
const fn webhook(r: Read<WebhookSpec>) -> Set {
    Set::Webhook(r)
}

/// The values of the `Choice` keys, in the order of their names.
const KINDS: [Kind; 4] = [Kind::Simple, Kind::Oneshot, Kind::Notify, Kind::Socket];
const ON_FAILURE: [OnFailure; 3] = [OnFailure::Stop, OnFailure::Restart, OnFailure::Ignore];
const HEALTH_ACTIONS: [HealthAction; 3] =
    [HealthAction::Restart, HealthAction::Stop, HealthAction::None];
const FORMATS: [super::WebhookFormat; 2] =
    [super::WebhookFormat::Json, super::WebhookFormat::Slack];

use Read::*;
use Section::*;
use Set::Custom;

mod keys;
pub use keys::KEYS;

/// The entry of `name` in `section`, if there is one.
pub fn find(section: Section, name: &str) -> Option<&'static Key> {
    keys_of(section).find(|k| k.name == name)
}

/// The keys of one section.
pub fn keys_of(section: Section) -> impl Iterator<Item = &'static Key> {
    KEYS.iter().filter(move |k| k.section == section)
}

/// The tables a section holds besides its keys, each a section of its own.
pub fn tables(section: Section) -> &'static [&'static str] {
    match section {
        Root => &[
            "server",
            "logging",
            "programs",
            "eventlisteners",
            "fcgi_programs",
            "groups",
            "webhooks",
        ],
        Server => &["http"],
        _ => &[],
    }
}

/// The known key closest to `name`, if it is close enough to be a likely typo.
pub fn suggest(section: Section, name: &str) -> Option<&'static str> {
    keys_of(section)
        .map(|k| k.name)
        .chain(tables(section).iter().copied())
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(d, candidate)| *d <= 2.max(candidate.len() / 4))
        .min()
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over bytes; the names compared are ASCII.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(suggest(Program, "startsec"), Some("startsecs"));
        assert_eq!(suggest(Program, "autorestrat"), Some("autorestart"));
        assert_eq!(suggest(Program, "stopsingal"), Some("stopsignal"));
        assert_eq!(suggest(Root, "program"), Some("programs"));
        assert_eq!(suggest(Program, "zzzzzz"), None);
    }

    #[test]
    fn every_key_is_documented() {
        for k in KEYS {
            assert!(!k.ty.is_empty() && !k.default.is_empty(), "{}: type and default", k.name);
            assert!(k.doc.ends_with('.'), "{}: doc is a sentence", k.name);
            assert!(k.supervisord.is_none_or(|s| !s.is_empty()), "{}", k.name);
        }
    }

    #[test]
    fn readers_belong_to_their_keys_section() {
        for k in KEYS {
            assert!(
                k.set.section().is_none_or(|s| s == k.section),
                "{}: reader of {:?}",
                k.name,
                k.set
            );
        }
    }

    /// Every index a `Choice` can give is one its setter takes.
    #[test]
    fn choices_have_a_value_for_each_name() {
        fn each<T: Default>(read: &Read<T>) {
            if let Choice(names, set) = read {
                (0..names.len()).for_each(|i| set(&mut T::default(), i));
            }
        }
        for k in KEYS {
            match &k.set {
                Set::Program(r) => each(r),
                Set::Server(r) => each(r),
                Set::Http(r) => each(r),
                Set::Logging(r) => each(r),
                Set::Health(r) => each(r),
                Set::Listener(r) => each(r),
                Set::Webhook(r) => each(r),
                Set::Custom => {}
            }
        }
    }

    #[test]
    fn keys_are_unique_per_section() {
        for (i, a) in KEYS.iter().enumerate() {
            for b in &KEYS[i + 1..] {
                assert!(!(a.section == b.section && a.name == b.name), "duplicate key {}", a.name);
            }
        }
    }
}
