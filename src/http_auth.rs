//! Who may ask what over HTTP: the role each request needs, HTTP Basic credentials checked
//! with bcrypt (on the front's checker threads, never on the event loop), and the throttle on
//! failed logins.

use std::collections::HashMap;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::api::{ApiError, ErrorCode};
use crate::config::{HttpUser, Role};
use crate::http::Answer;
use crate::http_tls::Peer;
use crate::http_wire::Req;

/// Whether the URL is the readiness probe's.
fn is_readyz(url: &str) -> bool {
    url.split('?').next().unwrap_or(url).trim_end_matches('/') == "/readyz"
}

pub use crate::http::required_role;

/// Consecutive failed logins for one user name from one address before that name must wait
/// there: another user at the same address (the same host, or behind the same NAT) is not
/// held by someone guessing this one's password.
const FREE_FAILURES: u32 = 5;
/// Consecutive failed logins from one address, whatever the names, before every name must
/// wait there: it slows one client trying many names. Looser, so that a guesser held to one
/// try per [`MAX_LOCKOUT`] on one name takes hours to reach it.
const FREE_ADDRESS_FAILURES: u32 = 50;
/// Failed logins per (user name or None for any, address): how many in a row, and until when
/// the key must wait.
type Failures = HashMap<(Option<String>, Peer), (u32, Instant)>;
/// Failure records kept at most; past this, the ones no longer waiting are forgotten.
const MAX_FAILURE_RECORDS: usize = 4096;
/// The longest wait.
const MAX_LOCKOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Authentication and authorization, on the listener threads (bcrypt is slow by design and
/// must never run on the loop).
pub struct Gate {
    users: Vec<HttpUser>,
    /// /metrics needs the viewer role.
    metrics_auth: bool,
    /// `Authorization` values that passed bcrypt once, and whose they are.
    known: Mutex<HashMap<String, usize>>,
    /// Failed logins per (user name, address) and per address (name None): how many in a
    /// row, and until when it must wait.
    failures: Mutex<Failures>,
    /// A hash to check unknown names against, so they take as long as known ones.
    decoy: OnceLock<String>,
}

pub enum Check {
    /// Let through; `authenticated` when credentials of a user came with it.
    Pass {
        authenticated: bool,
    },
    /// The credentials are new: check them with bcrypt (off the listener thread).
    Verify,
    Refuse(Answer),
}

impl Gate {
    pub fn new(users: Vec<HttpUser>, metrics_auth: bool) -> Gate {
        Gate {
            users,
            metrics_auth,
            known: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            decoy: OnceLock::new(),
        }
    }

    /// What can be decided without bcrypt.
    pub fn check(&self, rq: &Req) -> Check {
        if self.users.is_empty() {
            return Check::Pass { authenticated: false };
        }
        if rq.trusted {
            return Check::Pass { authenticated: true };
        }
        let need = match required_role(rq.method(), rq.url(), self.metrics_auth) {
            Some(need) => need,
            // /readyz tells a user which names are unknown, and nobody else: credentials
            // that come with it are checked like any others.
            None if is_readyz(rq.url()) && authorization(rq).is_some() => Role::Viewer,
            None => return Check::Pass { authenticated: false },
        };
        let Some(auth) = authorization(rq) else {
            return Check::Refuse(unauthorized("authentication required"));
        };
        if let Some(wait) = self.locked_out(rq, auth) {
            return Check::Refuse(Answer::json(
                429,
                &ApiError::new(
                    ErrorCode::Unauthorized,
                    format!(
                        "too many failed logins from this address; try again in {} s",
                        wait.as_secs() + 1
                    ),
                ),
            ));
        }
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner()).get(auth).copied();
        match known {
            Some(i) => self.allow(i, need),
            None => Check::Verify,
        }
    }

    /// Checks new credentials with bcrypt; remembers them when they are right, counts and
    /// logs the failure (with the peer's address) when not.
    pub fn verify(&self, rq: &Req) -> Result<(), Answer> {
        let need = required_role(rq.method(), rq.url(), self.metrics_auth).unwrap_or(Role::Viewer);
        let auth = authorization(rq).unwrap_or_default().to_string();
        let (name, password) = decode_basic(&auth).unwrap_or_default();
        let user = self.users.iter().position(|u| u.name == name);
        let hash = match user {
            Some(i) => self.users[i].password_hash.as_str(),
            None => self.decoy.get_or_init(|| {
                let cost = self.users[0].password_hash[4..6].parse().unwrap_or(12);
                bcrypt::hash("decoy", cost).unwrap_or_default()
            }),
        };
        let right = bcrypt::verify(&password, hash).unwrap_or(false) && user.is_some();
        let peer = rq.peer;
        match (right, user) {
            (true, Some(i)) => {
                if let Some(ip) = peer {
                    // The address has a user who knows a password: its count starts over.
                    let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
                    f.remove(&(Some(name.clone()), ip));
                    f.remove(&(None, ip));
                }
                let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
                if known.len() >= 1024 {
                    known.clear();
                }
                known.insert(auth, i);
                match self.allow(i, need) {
                    Check::Refuse(a) => Err(a),
                    _ => Ok(()),
                }
            }
            _ => {
                let n = match peer {
                    Some(ip) => {
                        let now = Instant::now();
                        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
                        if f.len() >= MAX_FAILURE_RECORDS {
                            f.retain(|_, (_, until)| *until > now);
                        }
                        count_failure(&mut f, (None, ip), FREE_ADDRESS_FAILURES, now);
                        count_failure(&mut f, (Some(name.clone()), ip), FREE_FAILURES, now)
                    }
                    None => 1,
                };
                let from = peer.map_or("an unknown address".to_string(), |ip| ip.to_string());
                if n <= FREE_FAILURES || n.is_power_of_two() {
                    log::warn!("HTTP: failed login for user {name:?} from {from} ({n} in a row)");
                }
                Err(unauthorized("wrong user name or password"))
            }
        }
    }

    /// How long the request must still wait after failed logins: for its user name from its
    /// address, or for any name from its address.
    fn locked_out(&self, rq: &Req, auth: &str) -> Option<std::time::Duration> {
        let ip = rq.peer?;
        let name = decode_basic(auth).map(|(name, _)| name).unwrap_or_default();
        let now = Instant::now();
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        [(Some(name), ip), (None, ip)]
            .iter()
            .filter_map(|key| f.get(key))
            .filter_map(|(_, until)| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
            .max()
    }

    fn allow(&self, user: usize, need: Role) -> Check {
        let u = &self.users[user];
        if u.role >= need {
            Check::Pass { authenticated: true }
        } else {
            Check::Refuse(Answer::error(&ApiError::new(
                ErrorCode::Forbidden,
                format!("user {} has role {}; this needs {}", u.name, u.role.name(), need.name()),
            )))
        }
    }
}

/// Starts `threads` threads that check new credentials with bcrypt, off the HTTP front (each
/// check takes tens of milliseconds by design). Requests wait in a queue of `queue` at most
/// (a full one refuses at once); `done` gets each request with its refusal, if any, and says
/// whether to go on.
pub fn start_checkers(
    threads: usize,
    queue: usize,
    gate: &Arc<Gate>,
    done: impl Fn(Req, Vec<u8>, Option<Answer>) -> bool + Send + Clone + 'static,
    loop_waker: &Arc<mio::Waker>,
) -> std::io::Result<SyncSender<(Req, Vec<u8>)>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Req, Vec<u8>)>(queue);
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..threads {
        let (rx, gate, done, loop_waker) =
            (rx.clone(), gate.clone(), done.clone(), loop_waker.clone());
        std::thread::Builder::new().name("http-verify".into()).spawn(move || {
            crate::logs::daemon_log::off_loop(loop_waker);
            loop {
                let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((rq, body)) = next else { return };
                let refused = gate.verify(&rq).err();
                if !done(rq, body, refused) {
                    return;
                }
            }
        })?;
    }
    Ok(tx)
}

/// Counts one more failed login under `key`; from the `free`-th in a row on, it must wait
/// 1 s, then twice as long each time, up to [`MAX_LOCKOUT`]. Returns the count.
fn count_failure(f: &mut Failures, key: (Option<String>, Peer), free: u32, now: Instant) -> u32 {
    let entry = f.entry(key).or_insert((0, now));
    entry.0 = entry.0.saturating_add(1);
    if entry.0 >= free {
        let wait = std::time::Duration::from_secs(1 << (entry.0 - free).min(9));
        entry.1 = now + wait.min(MAX_LOCKOUT);
    }
    entry.0
}

/// The role of the client of a request the front let through: every role when no user is
/// configured or its peer credentials stand in for a password, else the role of the user its
/// credentials name (the front checked them).
pub fn role_of(rq: &Req, users: &[HttpUser]) -> Option<Role> {
    if users.is_empty() || rq.trusted {
        return Some(Role::Admin);
    }
    let (name, _) = decode_basic(authorization(rq)?)?;
    users.iter().find(|u| u.name == name).map(|u| u.role)
}

/// The `Authorization` header's value.
fn authorization(rq: &Req) -> Option<&str> {
    rq.header("Authorization")
}

/// `Basic BASE64(name:password)` -> (name, password).
pub fn decode_basic(value: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

fn unauthorized(why: &str) -> Answer {
    let mut a = Answer::error(&ApiError::new(ErrorCode::Unauthorized, why));
    a.headers.push(("WWW-Authenticate", "Basic realm=\"kahi\", charset=\"UTF-8\"".into()));
    a
}
