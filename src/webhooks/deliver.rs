//! A webhook's delivery thread: takes a job, POSTs it (HTTP/1.1, `Connection: close`, over
//! TCP or rustls), and on an error or a status other than 2xx tries again after a back-off
//! that doubles, up to `retries` times. Blocking calls, each bounded by the attempt's
//! deadline (`timeout`), on this thread only; but the host's look-up, which the system's
//! resolver bounds.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{Conn, io_error, status};
use super::{Counters, Job, Shared, body, tls};
use crate::config::WebhookSpec;

/// The longest wait between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The response head read at most, for its status line.
const HEAD_MAX: usize = 8 << 10;

/// The thread's body: until the webhook is closed.
pub(super) fn run(shared: &Shared) {
    background();
    let mut tls = tls::Cache::default();
    // Failures are logged as warnings when they begin, then quietly until a delivery
    // succeeds again: a receiver that is down does not flood the log.
    let mut failing = false;
    loop {
        let (job, spec) = {
            let mut q = shared.lock();
            loop {
                if q.closed {
                    return;
                }
                if let Some(job) = q.jobs.pop_front() {
                    q.busy = true;
                    break (job, Arc::clone(&q.spec));
                }
                q.waiting = true;
                q = match shared.cond.wait(q) {
                    Ok(q) => q,
                    Err(e) => e.into_inner(),
                };
                q.waiting = false;
            }
        };
        let done = deliver(shared, &spec, &mut tls, &job, &mut failing);
        let mut q = shared.lock();
        q.busy = false;
        drop(q);
        shared.cond.notify_all();
        if !done {
            return;
        }
    }
}

/// Makes the calling thread SCHED_BATCH. The loop hands a state change to every webhook just
/// after the restart it allows is spawned; with the default policy each delivery thread it
/// wakes may preempt whatever runs on its CPU (the program just started among them): with ten
/// webhooks that slowed a restart on two cores, several times over with a receiver that was
/// down (docs/performance.md, "A restart with webhooks"). A SCHED_BATCH thread does not
/// preempt on waking and keeps its full share of the CPU otherwise. Not SCHED_IDLE or nice 19:
/// a thread with so small a share, kept off a busy CPU while it holds its queue's lock, would
/// keep the loop waiting for that lock. The raw system call because musl's
/// `sched_setscheduler` fails with ENOSYS (POSIX makes the policy the process's; Linux sets it
/// per thread, pid 0 being the caller). A failure leaves the default policy, which works.
fn background() {
    // The kernel's `struct sched_param` is the priority alone (musl's adds fields it ignores);
    // SCHED_BATCH takes 0.
    let priority: libc::c_int = 0;
    // SAFETY: `priority` outlives the call, which only reads it.
    let r = unsafe {
        libc::syscall(libc::SYS_sched_setscheduler, 0, libc::SCHED_BATCH, &priority as *const _)
    };
    if r != 0 {
        log::debug!(
            "webhook delivery keeps the default scheduling: {}",
            io::Error::last_os_error()
        );
    }
}

/// Every attempt at one job. Returns false if the webhook was closed meanwhile.
fn deliver(
    shared: &Shared,
    spec: &WebhookSpec,
    tls: &mut tls::Cache,
    job: &Job,
    failing: &mut bool,
) -> bool {
    let name = &spec.name;
    let mut wait = spec.retry_backoff.min(BACKOFF_MAX);
    for attempt in 0..=spec.retries {
        let error = match post(spec, tls, job) {
            Ok(status) if (200..300).contains(&status) => {
                Counters::add(&shared.counters.delivered, 1);
                if std::mem::take(failing) {
                    log::info!("webhook {name}: delivering again to {}", spec.url);
                }
                return true;
            }
            Ok(status) => format!("answered {status}"),
            Err(e) => e,
        };
        let what = format!("event {} ({})", job.serial, job.event);
        if attempt == spec.retries {
            Counters::add(&shared.counters.failed, 1);
            let tries = spec.retries + 1;
            let line = format!(
                "webhook {name}: gave up on {what} after {tries} attempt(s) to {}: {error}",
                spec.url
            );
            say(failing, &line);
            return true;
        }
        let secs = wait.as_secs_f64();
        let retry = attempt + 1;
        let line = format!(
            "webhook {name}: unable to deliver {what} to {}: {error}; retry {retry} of {} in {secs:.1}s",
            spec.url, spec.retries
        );
        say(failing, &line);
        // The back-off, cut short if the webhook is removed.
        let q = shared.lock();
        let (q, _) = match shared.cond.wait_timeout_while(q, wait, |q| !q.closed) {
            Ok(r) => r,
            Err(e) => e.into_inner(),
        };
        if q.closed {
            return false;
        }
        drop(q);
        Counters::add(&shared.counters.retried, 1);
        wait = (wait * 2).min(BACKOFF_MAX);
    }
    true
}

/// A failure: a warning if deliveries were going well, else a debug line.
fn say(failing: &mut bool, line: &str) {
    if std::mem::replace(failing, true) {
        log::debug!("{line}");
    } else {
        log::warn!("{line}");
    }
}

/// One attempt: the status of the answer, or what went wrong. The whole attempt is bounded by
/// `timeout`, from the look-up to the status line.
fn post(spec: &WebhookSpec, tls: &mut tls::Cache, job: &Job) -> Result<u16, String> {
    let deadline = Instant::now() + spec.timeout;
    let mut conn = Conn::open(&spec.url, tls, &spec.ca_certs, deadline)?;
    conn.send(&request(spec, job)).map_err(|e| io_error(e, spec.timeout))?;
    status_of(&mut conn).map_err(|e| io_error(e, spec.timeout))
}

/// Reads the answer's status line.
fn status_of(conn: &mut Conn) -> io::Result<u16> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head.windows(2).position(|w| w == b"\r\n") {
            return status(&head[..end]).ok_or_else(|| {
                io::Error::other(format!(
                    "not an HTTP answer: {:?}",
                    String::from_utf8_lossy(&head[..end.min(80)])
                ))
            });
        }
        if head.len() > HEAD_MAX {
            return Err(io::Error::other("an answer without a status line"));
        }
        match conn.read(&mut buf)? {
            0 => return Err(io::Error::other("the receiver closed the connection unanswered")),
            n => head.extend_from_slice(&buf[..n]),
        }
    }
}

/// The request's bytes: head and body.
fn request(spec: &WebhookSpec, job: &Job) -> Vec<u8> {
    let has = |name: &str| spec.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
         X-Kahi-Event: {}\r\nX-Kahi-Serial: {}\r\n",
        spec.url.path,
        spec.url.host_header(),
        job.body.len(),
        job.event,
        job.serial
    );
    if !has("content-type") {
        head += "Content-Type: application/json\r\n";
    }
    if !has("user-agent") {
        head += &format!("User-Agent: kahi/{}\r\n", crate::VERSION);
    }
    if let Some(secret) = &spec.secret {
        head += &format!("X-Kahi-Signature: {}\r\n", body::signature(secret.as_bytes(), &job.body));
    }
    for (name, value) in &spec.headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += "\r\n";
    let mut out = head.into_bytes();
    out.extend_from_slice(&job.body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_framed_and_signed() {
        let spec = WebhookSpec {
            name: "ops".into(),
            url: crate::config::parse_url("http://example.com:8080/hook?x=1").unwrap(),
            secret: Some("Jefe".into()),
            headers: vec![("Content-Type".into(), "text/plain".into())],
            ..WebhookSpec::default()
        };
        let job =
            Job { event: "TICK_5", serial: 9, body: b"what do ya want for nothing?".to_vec() };
        let text = String::from_utf8(request(&spec, &job)).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "what do ya want for nothing?");
        let lines: Vec<&str> = head.split("\r\n").collect();
        assert_eq!(lines[0], "POST /hook?x=1 HTTP/1.1");
        for line in [
            "Host: example.com:8080",
            "Content-Length: 28",
            "X-Kahi-Event: TICK_5",
            "X-Kahi-Serial: 9",
            "X-Kahi-Signature: sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "Content-Type: text/plain",
        ] {
            assert!(lines.contains(&line), "{line} in {lines:?}");
        }
        assert!(!lines.contains(&"Content-Type: application/json"), "replaced: {lines:?}");
    }
}
